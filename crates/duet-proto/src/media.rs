//! The media endpoints (`docs/protocol.md`, "Media"): upload with `POST /v1/media?type=…`, download
//! with `GET /v1/media/<UUID>[/large|/thumb]`. Answers use Tencent's field names, so that what an
//! upload returns drops straight into a `TIMImageElem`, `TIMSoundElem`, `TIMFileElem` or
//! `TIMVideoFileElem`.

use serde::{Deserialize, Serialize};

use crate::elem::ImageInfo;

/// Where files are uploaded (`POST`) and, followed by `/<UUID>`, downloaded (`GET`).
pub const MEDIA_PATH: &str = "/v1/media";

/// What an upload is, which decides its size limit and, for images, its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Image,
    Sound,
    File,
    Video,
}

impl MediaType {
    /// The name used in the `type=` query parameter.
    pub fn name(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Sound => "sound",
            MediaType::File => "file",
            MediaType::Video => "video",
        }
    }

    pub fn from_name(name: &str) -> Option<MediaType> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "image" => MediaType::Image,
            "sound" => MediaType::Sound,
            "file" => MediaType::File,
            "video" => MediaType::Video,
            _ => return None,
        })
    }
}

/// Which rendition of an image a download asks for: the path segment after the UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenditionName {
    /// No segment (or `original`): the file as uploaded.
    Original,
    /// `large`: longest side at most 720 px.
    Large,
    /// `thumb`: longest side at most 198 px.
    Thumb,
}

impl RenditionName {
    pub fn from_segment(s: &str) -> Option<RenditionName> {
        Some(match s {
            "" | "original" => RenditionName::Original,
            "large" => RenditionName::Large,
            "thumb" => RenditionName::Thumb,
            _ => return None,
        })
    }

    /// `ImageInfoArray`'s `Type`: 1 original, 2 large, 3 thumbnail.
    pub fn image_type(self) -> u64 {
        match self {
            RenditionName::Original => 1,
            RenditionName::Large => 2,
            RenditionName::Thumb => 3,
        }
    }
}

/// The query string of media requests: `type` and `filename` for uploads, and the credentials
/// (`identifier`, `usersig`) of both uploads and downloads, unless given as Basic auth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MediaQuery {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub filename: Option<String>,
    pub identifier: Option<String>,
    pub usersig: Option<String>,
}

/// A successful upload's own fields (inside the `ActionStatus`/`ErrorCode`/`ErrorInfo` envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uploaded {
    #[serde(rename = "UUID")]
    pub uuid: String,
    /// Where the file is downloaded (the original, for images).
    #[serde(rename = "URL")]
    pub url: String,
    /// Bytes of the file as uploaded.
    #[serde(rename = "Size")]
    pub size: u64,
    /// The `filename=` given at upload, or empty.
    #[serde(rename = "FileName", default)]
    pub file_name: String,
    /// Images only: JPG=1, GIF=2, PNG=3, BMP=4, other=255, read from the bytes.
    #[serde(rename = "ImageFormat", default, skip_serializing_if = "Option::is_none")]
    pub image_format: Option<u64>,
    /// Images only: original (1), large (2) and thumbnail (3), measured by the server.
    #[serde(rename = "ImageInfoArray", default, skip_serializing_if = "Option::is_none")]
    pub image_info_array: Option<Vec<ImageInfo>>,
}

/// The envelope of every media answer, read by clients before the rest of the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(rename = "ActionStatus", default)]
    pub action_status: String,
    #[serde(rename = "ErrorCode", default)]
    pub error_code: u32,
    #[serde(rename = "ErrorInfo", default)]
    pub error_info: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for t in [MediaType::Image, MediaType::Sound, MediaType::File, MediaType::Video] {
            assert_eq!(MediaType::from_name(t.name()), Some(t));
        }
        assert_eq!(MediaType::from_name("IMAGE"), Some(MediaType::Image));
        assert_eq!(MediaType::from_name("pdf"), None);
        assert_eq!(RenditionName::from_segment("large").map(RenditionName::image_type), Some(2));
        assert_eq!(RenditionName::from_segment("x"), None);
    }
}

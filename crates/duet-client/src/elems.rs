//! Constructors for message elements, one per element type, like Tencent's `createTextMessage`,
//! `createImageMessage`, …: they fill Tencent's defaults so that an app names only what matters.
//!
//! The element types themselves are [`duet_proto::elem`]'s; build one directly for the rarer fields.

use duet_proto::elem::{
    CustomElem, FaceElem, FileElem, ImageElem, ImageInfo, LocationElem, MsgElem, SoundElem, TextElem, VideoFileElem,
};

/// Tencent's default `Download_Flag`: download from the URL given.
const DOWNLOAD_FROM_URL: u64 = 2;

/// A `TIMTextElem`.
pub fn text(text: impl Into<String>) -> MsgElem {
    MsgElem::Text(TextElem { text: text.into() })
}

/// A `TIMFaceElem`: an app-defined emoji `index` and optional `data`.
pub fn face(index: i64, data: impl Into<String>) -> MsgElem {
    MsgElem::Face(FaceElem { index, data: data.into() })
}

/// A `TIMLocationElem`. Latitude must be within [-90, 90] and longitude within [-180, 180].
pub fn location(desc: impl Into<String>, latitude: f64, longitude: f64) -> MsgElem {
    MsgElem::Location(LocationElem { desc: desc.into(), latitude, longitude })
}

/// Which rendition of an image an [`ImageInfo`] describes (`Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// The image as uploaded.
    Original = 1,
    /// A large rendition.
    Large = 2,
    /// A thumbnail.
    Thumbnail = 3,
}

/// One rendition of an uploaded image.
pub fn image_info(kind: ImageKind, url: impl Into<String>, width: u64, height: u64, size: u64) -> ImageInfo {
    ImageInfo { kind: kind as u64, size, width, height, url: url.into() }
}

/// A `TIMImageElem` with the renditions already uploaded. `format`: JPG=1, GIF=2, PNG=3, BMP=4,
/// other=255. At least one rendition is required.
pub fn image(uuid: impl Into<String>, format: u64, renditions: Vec<ImageInfo>) -> MsgElem {
    MsgElem::Image(ImageElem { uuid: uuid.into(), image_format: format, image_info_array: renditions })
}

/// A `TIMSoundElem`: an uploaded voice clip of `seconds`, `size` bytes.
pub fn sound(url: impl Into<String>, size: u64, seconds: u64) -> MsgElem {
    MsgElem::Sound(SoundElem {
        url: url.into(),
        uuid: String::new(),
        size,
        second: seconds,
        download_flag: DOWNLOAD_FROM_URL,
    })
}

/// A `TIMFileElem`: an uploaded file.
pub fn file(url: impl Into<String>, file_name: impl Into<String>, file_size: u64) -> MsgElem {
    MsgElem::File(FileElem {
        url: url.into(),
        uuid: String::new(),
        file_size,
        file_name: file_name.into(),
        download_flag: DOWNLOAD_FROM_URL,
    })
}

/// A `TIMVideoFileElem`: an uploaded video (`format` such as `"mp4"`) and its thumbnail.
pub fn video(
    video_url: impl Into<String>,
    format: impl Into<String>,
    size: u64,
    seconds: u64,
    thumb_url: impl Into<String>,
    thumb_width: u64,
    thumb_height: u64,
) -> MsgElem {
    MsgElem::Video(VideoFileElem {
        video_url: video_url.into(),
        video_uuid: String::new(),
        video_size: size,
        video_second: seconds,
        video_format: format.into(),
        video_download_flag: DOWNLOAD_FROM_URL,
        thumb_url: thumb_url.into(),
        thumb_uuid: String::new(),
        thumb_size: 0,
        thumb_width,
        thumb_height,
        thumb_format: String::new(),
        thumb_download_flag: DOWNLOAD_FROM_URL,
    })
}

/// A `TIMCustomElem`: app-defined `data`; `desc` is the offline push text and `ext` its extension (a
/// custom message is pushed offline only when `desc` is set).
pub fn custom(data: impl Into<String>, desc: impl Into<String>, ext: impl Into<String>) -> MsgElem {
    MsgElem::Custom(CustomElem { data: data.into(), desc: desc.into(), ext: ext.into(), sound: String::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_proto::elem::parse_msg_body;

    #[test]
    fn every_constructor_makes_an_element_the_server_accepts() {
        let all = vec![
            text("hi"),
            face(3, "smile"),
            location("office", 22.5, 113.9),
            image("img-1", 3, vec![image_info(ImageKind::Original, "https://cdn/i.png", 640, 480, 1024)]),
            sound("https://cdn/s.aac", 2048, 3),
            file("https://cdn/f.pdf", "f.pdf", 4096),
            video("https://cdn/v.mp4", "mp4", 8192, 10, "https://cdn/t.jpg", 320, 180),
            custom("{\"k\":1}", "push text", ""),
        ];
        let json = serde_json::to_value(&all).unwrap();
        let parsed = parse_msg_body(Some(&json)).expect("the server's validation accepts them");
        assert_eq!(parsed, all);
        assert_eq!(json[0], serde_json::json!({"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}));
    }
}

//! Message elements: the items of a message's `MsgBody`, each `{"MsgType": "...", "MsgContent": {...}}`.
//!
//! Field names follow Tencent's message format page (1047/33527) exactly, quirks included: the image's
//! `URL` against the file's `Url`, `Download_Flag` against `VideoDownloadFlag`. Parsing validates what a
//! receiving client relies on (required URLs, coordinates in range, non-negative sizes) and answers
//! Tencent's 90010 otherwise; serialization writes the normalized element back. An optional number sent
//! as `""` or null (`ImageFormat`, `Download_Flag`, `ThumbSize`, ...) takes its default, as when left out;
//! a required one (`Width`, `FileSize`, ...) sent so is refused. Optional strings default to `""` anyway.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ApiError, code, lenient};

/// The largest `MsgBody`, in bytes of compact JSON, that one message may carry (Tencent's current 12 KB).
pub const MAX_BODY_BYTES: usize = 12 * 1024;

/// One element of a message body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "MsgType", content = "MsgContent")]
pub enum MsgElem {
    #[serde(rename = "TIMTextElem")]
    Text(TextElem),
    #[serde(rename = "TIMFaceElem")]
    Face(FaceElem),
    #[serde(rename = "TIMLocationElem")]
    Location(LocationElem),
    #[serde(rename = "TIMImageElem")]
    Image(ImageElem),
    #[serde(rename = "TIMSoundElem")]
    Sound(SoundElem),
    #[serde(rename = "TIMFileElem")]
    File(FileElem),
    #[serde(rename = "TIMVideoFileElem")]
    Video(VideoFileElem),
    #[serde(rename = "TIMCustomElem")]
    Custom(CustomElem),
}

impl MsgElem {
    /// The element's `MsgType`.
    pub fn msg_type(&self) -> &'static str {
        match self {
            MsgElem::Text(_) => "TIMTextElem",
            MsgElem::Face(_) => "TIMFaceElem",
            MsgElem::Location(_) => "TIMLocationElem",
            MsgElem::Image(_) => "TIMImageElem",
            MsgElem::Sound(_) => "TIMSoundElem",
            MsgElem::File(_) => "TIMFileElem",
            MsgElem::Video(_) => "TIMVideoFileElem",
            MsgElem::Custom(_) => "TIMCustomElem",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TextElem {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceElem {
    #[serde(deserialize_with = "lenient::i64")]
    pub index: i64,
    #[serde(default, deserialize_with = "lenient::string")]
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocationElem {
    #[serde(default, deserialize_with = "lenient::string")]
    pub desc: String,
    #[serde(deserialize_with = "lenient::f64")]
    pub latitude: f64,
    #[serde(deserialize_with = "lenient::f64")]
    pub longitude: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageElem {
    #[serde(rename = "UUID")]
    pub uuid: String,
    /// JPG=1, GIF=2, PNG=3, BMP=4, other=255.
    #[serde(rename = "ImageFormat", default = "other_format", deserialize_with = "lenient::u64_or::<OTHER_FORMAT, _>")]
    pub image_format: u64,
    #[serde(rename = "ImageInfoArray")]
    pub image_info_array: Vec<ImageInfo>,
}

/// `ImageFormat` when not given: "other".
const OTHER_FORMAT: u64 = 255;

fn other_format() -> u64 {
    OTHER_FORMAT
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// 1 = original, 2 = large, 3 = thumbnail.
    #[serde(rename = "Type", deserialize_with = "lenient::u64")]
    pub kind: u64,
    #[serde(rename = "Size", default, deserialize_with = "lenient::u64_or::<0, _>")]
    pub size: u64,
    #[serde(rename = "Width", deserialize_with = "lenient::u64")]
    pub width: u64,
    #[serde(rename = "Height", deserialize_with = "lenient::u64")]
    pub height: u64,
    #[serde(rename = "URL")]
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoundElem {
    #[serde(rename = "Url")]
    pub url: String,
    #[serde(rename = "UUID", default)]
    pub uuid: String,
    #[serde(rename = "Size", deserialize_with = "lenient::u64")]
    pub size: u64,
    #[serde(rename = "Second", deserialize_with = "lenient::u64")]
    pub second: u64,
    #[serde(
        rename = "Download_Flag",
        default = "download_flag",
        deserialize_with = "lenient::u64_or::<DOWNLOAD_FLAG, _>"
    )]
    pub download_flag: u64,
}

/// `Download_Flag` (and the video's flags) when not given: the only value Tencent documents.
const DOWNLOAD_FLAG: u64 = 2;

fn download_flag() -> u64 {
    DOWNLOAD_FLAG
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileElem {
    #[serde(rename = "Url")]
    pub url: String,
    #[serde(rename = "UUID", default)]
    pub uuid: String,
    #[serde(rename = "FileSize", deserialize_with = "lenient::u64")]
    pub file_size: u64,
    #[serde(rename = "FileName", alias = "fileName", default)]
    pub file_name: String,
    #[serde(
        rename = "Download_Flag",
        default = "download_flag",
        deserialize_with = "lenient::u64_or::<DOWNLOAD_FLAG, _>"
    )]
    pub download_flag: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VideoFileElem {
    pub video_url: String,
    #[serde(rename = "VideoUUID", default)]
    pub video_uuid: String,
    #[serde(deserialize_with = "lenient::u64")]
    pub video_size: u64,
    #[serde(deserialize_with = "lenient::u64")]
    pub video_second: u64,
    #[serde(default)]
    pub video_format: String,
    #[serde(default = "download_flag", deserialize_with = "lenient::u64_or::<DOWNLOAD_FLAG, _>")]
    pub video_download_flag: u64,
    #[serde(default)]
    pub thumb_url: String,
    #[serde(rename = "ThumbUUID", default)]
    pub thumb_uuid: String,
    #[serde(default, deserialize_with = "lenient::u64_or::<0, _>")]
    pub thumb_size: u64,
    #[serde(default, deserialize_with = "lenient::u64_or::<0, _>")]
    pub thumb_width: u64,
    #[serde(default, deserialize_with = "lenient::u64_or::<0, _>")]
    pub thumb_height: u64,
    #[serde(default)]
    pub thumb_format: String,
    #[serde(default = "download_flag", deserialize_with = "lenient::u64_or::<DOWNLOAD_FLAG, _>")]
    pub thumb_download_flag: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomElem {
    #[serde(default, deserialize_with = "lenient::string")]
    pub data: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub desc: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub ext: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub sound: String,
}

const KNOWN_TYPES: &str = "TIMTextElem, TIMFaceElem, TIMLocationElem, TIMImageElem, TIMSoundElem, \
                           TIMFileElem, TIMVideoFileElem, TIMCustomElem";

fn malformed(index: usize, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(code::MSG_ELEM_MALFORMED, format!("MsgBody[{index}]: {why}"))
}

/// Parses and validates a request's `MsgBody`: a non-empty array of elements (see [`validate_elems`]).
pub fn parse_msg_body(body: Option<&Value>) -> Result<Vec<MsgElem>, ApiError> {
    let items = match body {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => return Err(ApiError::new(code::MSG_BODY_NOT_ARRAY, "MsgBody is required")),
        Some(_) => return Err(ApiError::new(code::MSG_BODY_NOT_ARRAY, "MsgBody must be an array")),
    };
    let elems = items.iter().enumerate().map(|(i, item)| parse_elem(i, item)).collect::<Result<Vec<_>, _>>()?;
    validate_elems(&elems)?;
    Ok(elems)
}

/// Checks elements as a receiving client relies on them: at least one, at most one `TIMCustomElem`,
/// coordinates in range, URLs present, and at most [`MAX_BODY_BYTES`] of compact JSON, which it returns.
pub fn validate_elems(elems: &[MsgElem]) -> Result<String, ApiError> {
    if elems.is_empty() {
        return Err(ApiError::new(code::MSG_BODY_MALFORMED, "MsgBody must hold at least one element"));
    }
    for (i, elem) in elems.iter().enumerate() {
        check_elem(i, elem)?;
    }
    if elems.iter().filter(|e| matches!(e, MsgElem::Custom(_))).count() > 1 {
        return Err(ApiError::new(code::MSG_ELEM_MALFORMED, "MsgBody may hold at most one TIMCustomElem"));
    }
    let json = serde_json::to_string(elems)
        .map_err(|e| ApiError::new(code::MSG_ELEM_MALFORMED, format!("MsgBody cannot be encoded: {e}")))?;
    if json.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            code::MSG_TOO_LONG,
            format!("MsgBody is {} bytes, more than the limit of {MAX_BODY_BYTES}", json.len()),
        ));
    }
    Ok(json)
}

fn parse_elem(i: usize, item: &Value) -> Result<MsgElem, ApiError> {
    let Value::Object(obj) = item else {
        return Err(malformed(i, "an element must be an object"));
    };
    let kind = match obj.get("MsgType") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(malformed(i, "MsgType must be a string")),
        None => return Err(malformed(i, "MsgType is required")),
    };
    let content = match obj.get("MsgContent") {
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(malformed(i, "MsgContent must be an object")),
        None => return Err(malformed(i, "MsgContent is required")),
    };
    fn de<T: serde::de::DeserializeOwned>(i: usize, kind: &str, v: Value) -> Result<T, ApiError> {
        serde_json::from_value(v).map_err(|e| malformed(i, format_args!("{kind}: {e}")))
    }
    Ok(match kind {
        "TIMTextElem" => MsgElem::Text(de(i, kind, content)?),
        "TIMFaceElem" => MsgElem::Face(de(i, kind, content)?),
        "TIMLocationElem" => MsgElem::Location(de(i, kind, content)?),
        "TIMImageElem" => MsgElem::Image(de(i, kind, content)?),
        "TIMSoundElem" => MsgElem::Sound(de(i, kind, content)?),
        "TIMFileElem" => MsgElem::File(de(i, kind, content)?),
        "TIMVideoFileElem" => MsgElem::Video(de(i, kind, content)?),
        "TIMCustomElem" => MsgElem::Custom(de(i, kind, content)?),
        other => {
            return Err(malformed(i, format_args!("unknown MsgType {other:?}; expected one of {KNOWN_TYPES}")));
        }
    })
}

fn check_elem(i: usize, elem: &MsgElem) -> Result<(), ApiError> {
    match elem {
        MsgElem::Location(loc) => {
            if !(-90.0..=90.0).contains(&loc.latitude) {
                return Err(malformed(i, "TIMLocationElem: Latitude must be within [-90, 90]"));
            }
            if !(-180.0..=180.0).contains(&loc.longitude) {
                return Err(malformed(i, "TIMLocationElem: Longitude must be within [-180, 180]"));
            }
        }
        MsgElem::Image(img) => {
            if img.image_info_array.is_empty() {
                return Err(malformed(i, "TIMImageElem: ImageInfoArray must not be empty"));
            }
            for info in &img.image_info_array {
                if !(1..=3).contains(&info.kind) {
                    return Err(malformed(i, "TIMImageElem: ImageInfoArray Type must be 1, 2 or 3"));
                }
                require_url(i, "TIMImageElem", "URL", &info.url)?;
            }
        }
        MsgElem::Sound(s) => require_url(i, "TIMSoundElem", "Url", &s.url)?,
        MsgElem::File(f) => require_url(i, "TIMFileElem", "Url", &f.url)?,
        MsgElem::Video(v) => require_url(i, "TIMVideoFileElem", "VideoUrl", &v.video_url)?,
        MsgElem::Text(_) | MsgElem::Face(_) | MsgElem::Custom(_) => {}
    }
    Ok(())
}

fn require_url(i: usize, kind: &str, field: &str, url: &str) -> Result<(), ApiError> {
    if url.trim().is_empty() { Err(malformed(i, format_args!("{kind}: {field} is required"))) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_roundtrips_and_numbers_as_strings_are_accepted() {
        let body = json!([
            {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}},
            {"MsgType": "TIMFaceElem", "MsgContent": {"Index": "3", "Data": 7}},
        ]);
        let elems = parse_msg_body(Some(&body)).unwrap();
        assert_eq!(
            serde_json::to_value(&elems).unwrap(),
            json!([
                {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}},
                {"MsgType": "TIMFaceElem", "MsgContent": {"Index": 3, "Data": "7"}},
            ])
        );
    }

    #[test]
    fn bad_bodies_get_tencent_codes() {
        let cases = [
            (json!(null), code::MSG_BODY_NOT_ARRAY),
            (json!({"MsgType": "TIMTextElem"}), code::MSG_BODY_NOT_ARRAY),
            (json!([]), code::MSG_BODY_MALFORMED),
            (json!([{"MsgType": "TIMNopeElem", "MsgContent": {}}]), code::MSG_ELEM_MALFORMED),
            (json!([{"MsgType": "TIMTextElem", "MsgContent": {"Text": 5}}]), code::MSG_ELEM_MALFORMED),
            (
                json!([{"MsgType": "TIMLocationElem", "MsgContent": {"Latitude": 91, "Longitude": 0}}]),
                code::MSG_ELEM_MALFORMED,
            ),
            (json!([{"MsgType": "TIMFileElem", "MsgContent": {"Url": "", "FileSize": 1}}]), code::MSG_ELEM_MALFORMED),
            (json!([{"MsgType": "TIMFileElem", "MsgContent": {"Url": "u", "FileSize": -1}}]), code::MSG_ELEM_MALFORMED),
            (
                json!([{"MsgType": "TIMCustomElem", "MsgContent": {}}, {"MsgType": "TIMCustomElem", "MsgContent": {}}]),
                code::MSG_ELEM_MALFORMED,
            ),
            (
                json!([{"MsgType": "TIMTextElem", "MsgContent": {"Text": "x".repeat(MAX_BODY_BYTES)}}]),
                code::MSG_TOO_LONG,
            ),
        ];
        for (body, want) in cases {
            let got = parse_msg_body(Some(&body)).unwrap_err();
            assert_eq!(got.code, want, "{body}: {got}");
        }
    }
}

//! The message-log download (`open_msg_svc/get_history`, 1047/34885, 269/1650): the request, the
//! answer's `File` list, and the records the files hold.
//!
//! A file is a JSON object whose `MsgList` array holds one record per line, the way Tencent's files are
//! read by the parsers that exist for them: the first line opens the array ([`FILE_HEAD`]), each record
//! takes one line (a `,` ends every record line but the last), and the last line is `]}`
//! ([`FILE_TAIL`]). So the whole is one JSON value, and can also be read line by line.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::fields::Fields;
use crate::{ApiError, code};

/// The first line of a file (the records follow, one per line).
pub const FILE_HEAD: &[u8] = b"{\"MsgList\":[\n";
/// What separates two records: the `,` ending the earlier one's line.
pub const RECORD_SEPARATOR: &[u8] = b",\n";
/// The end of a file: the last record's line break, if any, goes before it.
pub const FILE_TAIL: &[u8] = b"]}\n";

/// `ChatType`: which log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatType {
    /// One-to-one messages.
    C2c,
    /// Group messages: Duet has no groups, so it never has a file of them.
    Group,
}

impl ChatType {
    /// Tencent's name.
    pub fn name(self) -> &'static str {
        match self {
            ChatType::C2c => "C2C",
            ChatType::Group => "Group",
        }
    }
}

/// `{"ChatType": "C2C", "MsgTime": "2015120121"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetHistory {
    pub chat_type: ChatType,
    /// `YYYYMMDDHH` as sent (a number is read as its digits); the calendar check is the caller's
    /// (`duet_core::msglog::Hour::parse`), with [`GetHistory::bad_msg_time`].
    pub msg_time: String,
}

impl GetHistory {
    /// Parses the body. A missing or unknown `ChatType` (names are case-sensitive, as Tencent lists them),
    /// or a `MsgTime` that is not a string or number, gets 60008.
    pub fn parse(body: &Value) -> Result<GetHistory, ApiError> {
        let f = Fields::of(body, code::BAD_REQUEST)?;
        let chat_type = match f.string("ChatType", code::BAD_REQUEST)?.as_str() {
            "C2C" => ChatType::C2c,
            "Group" => ChatType::Group,
            other => {
                return Err(ApiError::new(
                    code::BAD_REQUEST,
                    format!("ChatType {other:?} is neither \"C2C\" nor \"Group\""),
                ));
            }
        };
        let msg_time = match f.get(&["MsgTime"]) {
            None => return Err(ApiError::new(code::BAD_REQUEST, "MsgTime is required")),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(GetHistory::bad_msg_time()),
        };
        Ok(GetHistory { chat_type, msg_time })
    }

    /// The answer to a `MsgTime` that names no hour.
    pub fn bad_msg_time() -> ApiError {
        ApiError::new(code::BAD_REQUEST, "MsgTime must be an hour written YYYYMMDDHH, e.g. 2015120121")
    }
}

/// The answer: the request's `ChatType` and `MsgTime` (real answers echo them) and the hour's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryFiles {
    #[serde(rename = "ChatType")]
    pub chat_type: &'static str,
    #[serde(rename = "MsgTime")]
    pub msg_time: String,
    #[serde(rename = "File")]
    pub file: Vec<HistoryFile>,
}

/// One file of an hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryFile {
    /// Where to download it, until `ExpireTime`.
    #[serde(rename = "URL")]
    pub url: String,
    /// `YYYY-MM-DD HH:MM:SS` in the log's time zone.
    #[serde(rename = "ExpireTime")]
    pub expire_time: String,
    /// Bytes before gzip.
    #[serde(rename = "FileSize")]
    pub file_size: u64,
    /// MD5 of the bytes before gzip, lowercase hex.
    #[serde(rename = "FileMD5")]
    pub file_md5: String,
    /// Bytes of the gzip file.
    #[serde(rename = "GzipSize")]
    pub gzip_size: u64,
    /// MD5 of the gzip file, lowercase hex.
    #[serde(rename = "GzipMD5")]
    pub gzip_md5: String,
}

/// One message of a file: Tencent's C2C record fields that Duet has. (`MsgFromPlatform` and `ClientIP`
/// are not: Duet does not store them.)
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    #[serde(rename = "From_Account")]
    pub from: &'a str,
    #[serde(rename = "To_Account")]
    pub to: &'a str,
    /// Unix seconds.
    #[serde(rename = "MsgTimestamp")]
    pub time: i64,
    #[serde(rename = "MsgSeq")]
    pub seq: u32,
    #[serde(rename = "MsgRandom")]
    pub random: u32,
    /// `<MsgSeq>_<MsgRandom>_<MsgTimestamp>`.
    #[serde(rename = "MsgKey")]
    pub key: String,
    /// The stored `MsgBody`, as is.
    #[serde(rename = "MsgBody")]
    pub body: &'a RawValue,
    #[serde(rename = "CloudCustomData")]
    pub cloud_custom_data: &'a str,
}

impl Record<'_> {
    /// Appends the record, on one line without its line break, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_request_parses_and_bad_fields_get_60008() {
        let r = GetHistory::parse(&json!({"ChatType": "C2C", "MsgTime": "2015120121"})).unwrap();
        assert_eq!((r.chat_type, r.msg_time.as_str()), (ChatType::C2c, "2015120121"));
        let r = GetHistory::parse(&json!({"ChatType": "Group", "MsgTime": 2015120121})).unwrap();
        assert_eq!((r.chat_type, r.msg_time.as_str()), (ChatType::Group, "2015120121"));
        for bad in [
            json!({"MsgTime": "2015120121"}),
            json!({"ChatType": "c2c", "MsgTime": "2015120121"}),
            json!({"ChatType": "", "MsgTime": "2015120121"}),
            json!({"ChatType": 1, "MsgTime": "2015120121"}),
            json!({"ChatType": "C2C"}),
            json!({"ChatType": "C2C", "MsgTime": ["2015120121"]}),
            json!([]),
        ] {
            assert_eq!(GetHistory::parse(&bad).unwrap_err().code, code::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn a_record_is_one_line_with_tencents_names() {
        let body = serde_json::value::RawValue::from_string(
            r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a\nb"}}]"#.to_owned(),
        )
        .unwrap();
        let record = Record {
            from: "a",
            to: "b",
            time: 1_448_974_800,
            seq: 7,
            random: 9,
            key: "7_9_1448974800".into(),
            body: &body,
            cloud_custom_data: "x",
        };
        let mut out = Vec::new();
        record.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"From_Account":"a","To_Account":"b","MsgTimestamp":1448974800,"MsgSeq":7,"MsgRandom":9,"MsgKey":"7_9_1448974800","MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"a\nb"}}],"CloudCustomData":"x"}"#
        );
    }
}

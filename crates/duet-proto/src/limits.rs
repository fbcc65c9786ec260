//! The bounds of the values that cross the wire, each checked by one function that every door calls
//! (REST, the client protocol, media), so the doors cannot disagree:
//!
//! * text that names something (a UserID, a device id, a file or group name) holds no invisible
//!   character ([`is_invisible`]);
//! * a time the server keeps fits a JavaScript number ([`check_time`]), and one that would sort after
//!   everything to come is not accepted from the future ([`check_not_ahead`]);
//! * a message is at most [`MAX_MESSAGE_CONTENT_BYTES`] as Tencent counts it ([`check_message`]), so its
//!   encoded form is at most [`MAX_MESSAGE_BYTES`].
//!
//! `docs/rest-api.md` and `docs/protocol.md` list each limit with its source and code.

use serde_json::Value;

use crate::elem::{MsgElem, validate_elems};
use crate::{ApiError, code};

/// The largest integer a JavaScript number holds exactly (2^53 − 1): every time the server keeps fits it,
/// so a JavaScript client reads back what was stored.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// How far ahead of the server's clock a client's clock may run: a time from the future (an imported
/// message's) is accepted up to this many seconds ahead.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The longest device id of a client login, in bytes.
pub const MAX_DEVICE_ID_BYTES: usize = 128;
/// The longest push token a device may register (APNs tokens are 64 hex digits, FCM's ~160 bytes,
/// the Android makers' under 256).
pub const MAX_PUSH_TOKEN_BYTES: usize = 4096;
/// The longest push app id, and the longest language tag.
pub const MAX_PUSH_APP_ID_BYTES: usize = 128;
pub const MAX_LANG_BYTES: usize = 35;

/// The largest message, as Tencent counts it ("a one-to-one message must be no longer than 12 KB"): the
/// compact JSON of `MsgBody` and of `OfflinePushInfo`, plus `CloudCustomData` as written inside a JSON
/// string (escapes included), together.
pub const MAX_MESSAGE_CONTENT_BYTES: usize = 12 * 1024;

/// The largest message a client receives, encoded as the protocol's `Message` object: the content
/// ([`MAX_MESSAGE_CONTENT_BYTES`]; `OfflinePushInfo` is not sent to clients) plus the envelope (two
/// UserIDs, the key and numbers, the sender's nickname and avatar of at most 500 bytes each, each
/// string's JSON escapes included). An `entry` frame adds under 100 bytes to it.
pub const MAX_MESSAGE_BYTES: usize = MAX_MESSAGE_CONTENT_BYTES + 8 * 1024;

/// Whether `c` is invisible or changes how the text around it reads: a control character (Unicode
/// category Cc), a format character (Cf: the zero-width space and joiners, the bidirectional overrides
/// and isolates, the byte order mark, the soft hyphen, tag characters, ...), a line or paragraph separator
/// (Zl, Zp), or a noncharacter. Such characters make one identifier look like another, or like nothing.
pub fn is_invisible(c: char) -> bool {
    let n = u32::from(c);
    c.is_control()
        || matches!(
            n,
            0x00AD
                | 0x0600..=0x0605
                | 0x061C
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x180E
                | 0x200B..=0x200F
                | 0x2028..=0x202E
                | 0x2060..=0x2064
                | 0x2066..=0x206F
                | 0xFDD0..=0xFDEF
                | 0xFEFF
                | 0xFFF9..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0001
                | 0xE0020..=0xE007F
        )
        || n & 0xFFFE == 0xFFFE
}

/// Checks the characters of a name: none invisible ([`is_invisible`]), no surrounding whitespace. Says
/// what is wrong, naming the value as `what`.
pub fn check_visible(what: &str, s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| is_invisible(*c)) {
        return Err(format!("{what} {s:?} holds the invisible character U+{:04X}", u32::from(c)));
    }
    if s.trim() != s {
        return Err(format!("{what} {s:?} begins or ends with whitespace"));
    }
    Ok(())
}

/// Checks a client's device id: 1 to [`MAX_DEVICE_ID_BYTES`] bytes of visible text.
pub fn check_device_id(device: &str) -> Result<(), String> {
    if device.is_empty() || device.len() > MAX_DEVICE_ID_BYTES {
        return Err(format!("a device id is 1 to {MAX_DEVICE_ID_BYTES} bytes, not {}", device.len()));
    }
    check_visible("device id", device)
}

/// Checks a push registration's token (1 to [`MAX_PUSH_TOKEN_BYTES`] bytes of visible text), app id
/// and language (visible text, at most [`MAX_PUSH_APP_ID_BYTES`] and [`MAX_LANG_BYTES`] bytes).
pub fn check_push_registration(token: &str, app_id: Option<&str>, lang: Option<&str>) -> Result<(), String> {
    if token.is_empty() || token.len() > MAX_PUSH_TOKEN_BYTES {
        return Err(format!("a push token is 1 to {MAX_PUSH_TOKEN_BYTES} bytes, not {}", token.len()));
    }
    check_visible("push token", token)?;
    for (what, value, max) in [("app id", app_id, MAX_PUSH_APP_ID_BYTES), ("language", lang, MAX_LANG_BYTES)] {
        if let Some(v) = value {
            if v.is_empty() || v.len() > max {
                return Err(format!("a push {what} is 1 to {max} bytes, not {}", v.len()));
            }
            check_visible(what, v)?;
        }
    }
    Ok(())
}

/// Checks a time the server keeps (unix seconds): within `[0, 2^53 − 1]`.
pub fn check_time(t: i64) -> Result<i64, String> {
    if (0..=MAX_SAFE_INTEGER).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is not a time within [0, {MAX_SAFE_INTEGER}]"))
    }
}

/// Checks that a time given by a client is not ahead of the server's clock (`now`) by more than
/// [`MAX_CLOCK_SKEW_SECS`].
pub fn check_not_ahead(t: i64, now: i64) -> Result<i64, String> {
    if t > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        Err(format!("{t} is {} s ahead of the server's clock; at most {MAX_CLOCK_SKEW_SECS} s are allowed", t - now))
    } else {
        Ok(t)
    }
}

/// The bytes a message counts ([`MAX_MESSAGE_CONTENT_BYTES`]): `body_json` (the compact JSON of
/// `MsgBody`), `cloud_custom_data` as written inside a JSON string, and the compact JSON of `push`.
pub fn message_content_bytes(body_json: &str, cloud_custom_data: &str, push: Option<&Value>) -> usize {
    body_json.len() + json_string_len(cloud_custom_data) + push.map_or(0, |p| p.to_string().len())
}

/// Checks a message before anything is stored: its elements ([`validate_elems`]: 90002, 90010, 93000),
/// `push` (Tencent's `OfflinePushInfo`) an object (90043), and the whole at most
/// [`MAX_MESSAGE_CONTENT_BYTES`] (93000). Returns the compact JSON of `MsgBody`, stored as is.
pub fn check_message(body: &[MsgElem], cloud_custom_data: &str, push: Option<&Value>) -> Result<String, ApiError> {
    let body_json = validate_elems(body)?;
    if push.is_some_and(|p| !p.is_object()) {
        return Err(ApiError::new(code::MSG_OFFLINE_PUSH_INFO, "OfflinePushInfo must be an object"));
    }
    let total = message_content_bytes(&body_json, cloud_custom_data, push);
    if total > MAX_MESSAGE_CONTENT_BYTES {
        let ccd = json_string_len(cloud_custom_data);
        let push = push.map_or(0, |p| p.to_string().len());
        return Err(ApiError::new(
            code::MSG_TOO_LONG,
            format!(
                "the message is {total} bytes (MsgBody {}, CloudCustomData {ccd}, OfflinePushInfo {push}), more \
                 than the limit of {MAX_MESSAGE_CONTENT_BYTES}",
                body_json.len()
            ),
        ));
    }
    Ok(body_json)
}

/// Most bytes of a conversation's custom data (Tencent's limit for conversation custom data and
/// `CustomMark`).
pub const MAX_CONVERSATION_CUSTOM_DATA_BYTES: usize = 256;
/// Most bytes of a conversation's draft.
pub const MAX_DRAFT_BYTES: usize = 10 * 1024;

/// Checks a conversation's custom data and draft against their limits; `code` is the caller's.
pub fn check_conversation_settings(custom_data: Option<&str>, draft: Option<&str>, code: u32) -> Result<(), ApiError> {
    if let Some(data) = custom_data.filter(|d| d.len() > MAX_CONVERSATION_CUSTOM_DATA_BYTES) {
        let why = format!(
            "the conversation's custom data is {} bytes, more than the limit of {MAX_CONVERSATION_CUSTOM_DATA_BYTES}",
            data.len()
        );
        return Err(ApiError::new(code, why));
    }
    if let Some(draft) = draft.filter(|d| d.len() > MAX_DRAFT_BYTES) {
        let why = format!("the draft is {} bytes, more than the limit of {MAX_DRAFT_BYTES}", draft.len());
        return Err(ApiError::new(code, why));
    }
    Ok(())
}

/// Checks `CloudCustomData` alone against the message's limit: the edit of a message that keeps its body.
pub fn check_message_without_body(cloud_custom_data: &str) -> Result<(), ApiError> {
    let total = json_string_len(cloud_custom_data);
    if total > MAX_MESSAGE_CONTENT_BYTES {
        let why = format!("CloudCustomData is {total} bytes, more than the limit of {MAX_MESSAGE_CONTENT_BYTES}");
        return Err(ApiError::new(code::MSG_TOO_LONG, why));
    }
    Ok(())
}

/// The length of `s` written inside a JSON string, without the quotes: `"`, `\` and control characters
/// are escaped.
fn json_string_len(s: &str) -> usize {
    s.len()
        + s.bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 1,
                0..=0x1F => 5,
                _ => 0,
            })
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use serde_json::value::RawValue;

    use super::*;
    use crate::client::{Entry, Message, ServerFrame};
    use crate::elem::TextElem;

    #[test]
    fn invisible_characters_are_controls_formats_separators_and_noncharacters() {
        for c in ['\0', '\n', '\u{7F}', '\u{9F}', '\u{AD}', '\u{200B}', '\u{200D}', '\u{202E}', '\u{2066}', '\u{2028}']
            .into_iter()
            .chain(['\u{2029}', '\u{FEFF}', '\u{FFFE}', '\u{FFFF}', '\u{FDD0}', '\u{E0041}', '\u{1FFFF}', '\u{10FFFE}'])
        {
            assert!(is_invisible(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'Z', '0', ' ', '"', '\u{E9}', '\u{4E2D}', '\u{1F600}', '\u{FE0F}', '\u{A0}', '\u{FFFD}'] {
            assert!(!is_invisible(c), "U+{:04X}", u32::from(c));
        }
        assert!(check_visible("name", "ab\u{202E}cd").unwrap_err().contains("U+202E"));
        assert!(check_visible("name", " ab").is_err() && check_visible("name", "ab\u{3000}").is_err());
        assert_eq!(check_visible("name", "a b \u{4E2D}\u{1F600}"), Ok(()));
    }

    #[test]
    fn user_ids_are_refused_with_invisible_characters() {
        use crate::rest::validate_user_id;
        for bad in ["", " a", "a ", "a\u{0}", "a\u{200B}b", "\u{FEFF}a", "a\u{202E}", "a\u{2028}b", &"x".repeat(33)] {
            assert!(validate_user_id(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "a b", "Alice", "\u{4E2D}\u{6587}", "x@example.com", &"x".repeat(32)] {
            assert_eq!(validate_user_id(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn device_ids_are_1_to_128_bytes_of_visible_text() {
        assert_eq!(check_device_id("7c1e9b2a-uuid"), Ok(()));
        assert_eq!(check_device_id(&"d".repeat(MAX_DEVICE_ID_BYTES)), Ok(()));
        for bad in
            [String::new(), "d".repeat(MAX_DEVICE_ID_BYTES + 1), "d\u{0}".into(), "d\u{200B}".into(), " d".into()]
        {
            assert!(check_device_id(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_fit_a_javascript_number_and_come_from_the_present() {
        assert_eq!(check_time(0), Ok(0));
        assert_eq!(check_time(MAX_SAFE_INTEGER), Ok(MAX_SAFE_INTEGER));
        for bad in [-1, i64::MIN, MAX_SAFE_INTEGER + 1, i64::MAX] {
            assert!(check_time(bad).is_err(), "{bad}");
        }
        let now = 1_700_000_000;
        assert_eq!(check_not_ahead(now + MAX_CLOCK_SKEW_SECS, now), Ok(now + MAX_CLOCK_SKEW_SECS));
        assert_eq!(check_not_ahead(0, now), Ok(0));
        assert!(check_not_ahead(now + MAX_CLOCK_SKEW_SECS + 1, now).is_err());
        assert!(check_not_ahead(i64::MAX, i64::MAX - 1).is_ok(), "no overflow near the end of time");
    }

    fn text(n: usize) -> Vec<MsgElem> {
        vec![MsgElem::Text(TextElem { text: "t".repeat(n) })]
    }

    #[test]
    fn a_message_counts_its_body_cloud_custom_data_and_push_together() {
        let empty = serde_json::to_string(&text(0)).unwrap().len();
        let push = json!({"Desc": "d"});
        let push_len = push.to_string().len();
        // At the limit exactly, then one byte over in each part.
        let body_len = MAX_MESSAGE_CONTENT_BYTES - 1000 - push_len - empty;
        let json = check_message(&text(body_len), &"c".repeat(1000), Some(&push)).unwrap();
        assert_eq!(json.len() + 1000 + push_len, MAX_MESSAGE_CONTENT_BYTES);
        for (body, ccd, push) in [
            (body_len + 1, 1000, json!({"Desc": "d"})),
            (body_len, 1001, json!({"Desc": "d"})),
            (body_len, 1000, json!({"Desc": "dd"})),
        ] {
            let e = check_message(&text(body), &"c".repeat(ccd), Some(&push)).unwrap_err();
            assert_eq!(e.code, code::MSG_TOO_LONG, "{}", e.info);
        }
        // CloudCustomData counts as written in JSON: a control character is six bytes there.
        assert_eq!(message_content_bytes("", "a\"\\\n\u{1}\u{7F}\u{E9}", None), 1 + 2 + 2 + 2 + 6 + 1 + 2);
        let e = check_message(&text(1), &"\u{1}".repeat(MAX_MESSAGE_CONTENT_BYTES / 6), None).unwrap_err();
        assert_eq!(e.code, code::MSG_TOO_LONG);
        // The body's own checks keep their codes; a push that is not an object is 90043.
        assert_eq!(check_message(&[], "", None).unwrap_err().code, code::MSG_BODY_MALFORMED);
        assert_eq!(check_message(&text(1), "", Some(&json!("x"))).unwrap_err().code, code::MSG_OFFLINE_PUSH_INFO);
    }

    #[test]
    fn the_largest_message_a_client_receives_fits_max_message_bytes() {
        // Every part at its limit, written with as many escapes as it can hold.
        let ccd = "\u{1}".repeat(1000);
        let body_len = MAX_MESSAGE_CONTENT_BYTES - message_content_bytes("", &ccd, None);
        let empty = serde_json::to_string(&text(0)).unwrap().len();
        let body = check_message(&text(body_len - empty), &ccd, None).unwrap();
        let profile = "\u{1}".repeat(crate::rest::request::MAX_PROFILE_VALUE_BYTES);
        let id = "\"".repeat(crate::rest::MAX_USER_ID_BYTES);
        let msg = Message {
            from: id.clone(),
            to: id.clone(),
            msg_key: format!("{}_{}_{}", u32::MAX, u32::MAX, MAX_SAFE_INTEGER),
            seq: u32::MAX,
            random: u32::MAX,
            time: MAX_SAFE_INTEGER,
            conv_seq: u64::MAX,
            body: RawValue::from_string(body).unwrap(),
            cloud_custom_data: ccd,
            recalled: true,
            revoker: id.clone(),
            peer_read: true,
            need_read_receipt: true,
            receipt_time: MAX_SAFE_INTEGER,
            version: u32::MAX,
            nick: profile.clone(),
            face_url: profile,
            system: true,
        };
        let encoded = serde_json::to_string(&msg).unwrap();
        assert!(encoded.len() <= MAX_MESSAGE_BYTES, "{} > {MAX_MESSAGE_BYTES}", encoded.len());
        let entry = ServerFrame::Entry { entry: Entry::Msg { seq: u64::MAX, msg } };
        assert!(serde_json::to_string(&entry).unwrap().len() <= MAX_MESSAGE_BYTES + 100);
    }
}

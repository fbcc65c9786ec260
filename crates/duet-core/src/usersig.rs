//! UserSig v2: the HMAC-SHA256 login ticket of Tencent's TLSSigAPIv2 libraries.
//!
//! This module owns making a UserSig ([`generate`]) and checking one ([`verify`]).
//! A UserSig is a JSON document (`TLS.ver`, `TLS.identifier`, `TLS.sdkappid`, `TLS.expire`, `TLS.time`,
//! optional `TLS.userbuf`, `TLS.sig`), zlib-compressed and base64-encoded with `+/=` mapped to `*-_`.
//! `TLS.sig` is the standard-base64 HMAC-SHA256, keyed by the app's secret key *as text*, of
//!
//! ```text
//! TLS.identifier:<identifier>\n
//! TLS.sdkappid:<sdkappid>\n
//! TLS.time:<time>\n
//! TLS.expire:<expire>\n
//! [TLS.userbuf:<base64 userbuf>\n]
//! ```
//!
//! The official generators (python, node, PHP, Go, Java) differ in key order, whitespace, escaping and
//! zlib level, so [`verify`] parses the document properly and accepts any valid zlib stream; only the
//! signed fields matter. Verification never panics, whatever the input, and caps the inflated size.

use std::fmt::Write as _;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use flate2::Compression;
use hmac::{Hmac, Mac};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::DecompressorOxide;
use serde_json::{Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Largest inflated document accepted. Real ones are about 200 bytes; this stops zip bombs.
const MAX_DOCUMENT_LEN: usize = 16 * 1024;

/// Longest UserSig string accepted before any decoding (a stored-block stream of a maximal
/// document fits comfortably).
const MAX_USERSIG_LEN: usize = 32 * 1024;

/// How far ahead of the server's clock a UserSig's `TLS.time` may be: clocks drift, but a sig dated
/// further ahead would pass a later kick's "issued before" test (`Core::kick`) until its date came.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Standard alphabet; padding optional on input (some generators and URL handling drop it).
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a valid UserSig says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user (Tencent's UserID) the sig was issued to.
    pub identifier: String,
    /// The app the sig was issued for.
    pub sdkappid: u64,
    /// Issue time, unix seconds.
    pub time: i64,
    /// Validity in seconds after `time` (a duration, not an instant).
    pub expire: i64,
    /// The raw userbuf (TRTC "PrivateMapKey" data), when the sig carries one.
    pub userbuf: Option<Vec<u8>>,
}

/// Why a UserSig was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserSigError {
    /// The UserSig is the empty string.
    #[error("usersig is empty")]
    Empty,
    /// Not decodable: bad base64, bad or oversized zlib stream, not UTF-8, not a JSON object.
    #[error("usersig is malformed")]
    Malformed,
    /// A required field is absent or has the wrong JSON type.
    #[error("usersig lacks a required field or has one of the wrong type")]
    MissingField,
    /// The HMAC does not match: wrong key, or the signed fields were altered.
    #[error("usersig signature does not match")]
    BadSignature,
    /// Signed correctly, but `now > time + expire`.
    #[error("usersig has expired")]
    Expired,
    /// Signed correctly, but dated more than [`MAX_CLOCK_SKEW_SECS`] ahead of the server's clock.
    #[error("usersig is dated ahead of the server's clock")]
    IssuedAhead,
    /// Issued to another identifier.
    #[error("usersig was issued to a different identifier")]
    IdentifierMismatch,
    /// Issued for another SDKAppID.
    #[error("usersig was issued for a different sdkappid")]
    SdkAppIdMismatch,
}

/// Makes a UserSig exactly as Tencent's python TLSSigAPIv2 does (JSON with ", "/": " separators in the key order
/// TLS.ver, TLS.identifier, TLS.sdkappid, TLS.expire, TLS.time, [TLS.userbuf,] TLS.sig; zlib default level;
/// base64 with +→*, /→-, =→_).
///
/// Non-ASCII characters in `identifier` are written as `\uXXXX` escapes, as python's `json.dumps` does; the
/// signed string uses the identifier's UTF-8 bytes.
///
/// The JSON document is byte-for-byte python's. The deflate bytes are flate2's (its default miniz_oxide backend),
/// which for the same level need not match C zlib's, so the outer string can differ from python's while carrying
/// the same document; every verifier inflates it to that document.
pub fn generate(
    secret_key: &str,
    sdkappid: u64,
    identifier: &str,
    time: i64,
    expire: i64,
    userbuf: Option<&[u8]>,
) -> String {
    let userbuf_b64 = userbuf.map(|buf| STANDARD.encode(buf));
    let mac = signer(secret_key, identifier, sdkappid, time, expire, userbuf_b64.as_deref())
        .expect("hmac accepts keys of any length");
    let sig = STANDARD.encode(mac.finalize().into_bytes());

    let mut doc = String::with_capacity(256);
    doc.push_str(r#"{"TLS.ver": "2.0", "TLS.identifier": "#);
    push_python_json_str(&mut doc, identifier);
    // Writing to a String cannot fail.
    let _ = write!(doc, r#", "TLS.sdkappid": {sdkappid}, "TLS.expire": {expire}, "TLS.time": {time}"#);
    if let Some(b64) = &userbuf_b64 {
        let _ = write!(doc, r#", "TLS.userbuf": "{b64}""#);
    }
    let _ = write!(doc, r#", "TLS.sig": "{sig}"}}"#);

    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(doc.as_bytes()).expect("writing to a Vec cannot fail");
    let compressed = encoder.finish().expect("writing to a Vec cannot fail");

    STANDARD
        .encode(compressed)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            other => other,
        })
        .collect()
}

/// Verifies per §2.4: decode, inflate (any valid zlib stream, any level, stored blocks), parse JSON properly (any key
/// order/whitespace/escaped slashes; numbers may arrive as JSON numbers — also accept numeric strings for
/// sdkappid/time/expire leniently), check sdkappid, identifier, expiry (expired when now > time + expire, strict),
/// HMAC with constant-time compare (hmac's verify_slice), userbuf (if the sig carries TLS.userbuf, include the
/// `TLS.userbuf:<b64>\n` line in the signed content). Returns the claims.
///
/// Checks run in this order, so the first failure decides the error: empty, decoding ([`UserSigError::Malformed`]),
/// required fields ([`UserSigError::MissingField`]), sdkappid, identifier, signature, a `TLS.time` more than
/// [`MAX_CLOCK_SKEW_SECS`] after `now` ([`UserSigError::IssuedAhead`]; Tencent's libraries do not check
/// this), expiry. The signature is checked first so that a forged sig is never reported as merely expired.
pub fn verify(
    secret_key: &str,
    sdkappid: u64,
    identifier: &str,
    usersig: &str,
    now: i64,
) -> Result<Claims, UserSigError> {
    if usersig.is_empty() {
        return Err(UserSigError::Empty);
    }
    let compressed = decode_outer(usersig)?;
    let document = inflate(&compressed)?;
    let value: Value = serde_json::from_slice(&document).map_err(|_| UserSigError::Malformed)?;
    let Value::Object(doc) = value else {
        return Err(UserSigError::Malformed);
    };

    let doc_identifier = str_field(&doc, "TLS.identifier")?;
    let doc_sdkappid: u64 = int_field(&doc, "TLS.sdkappid", Value::as_u64)?;
    let time: i64 = int_field(&doc, "TLS.time", Value::as_i64)?;
    let expire: i64 = int_field(&doc, "TLS.expire", Value::as_i64)?;
    let sig = str_field(&doc, "TLS.sig")?;
    let userbuf_b64 = match doc.get("TLS.userbuf") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(UserSigError::MissingField),
    };
    // Java's old BASE64Encoder breaks lines inside the userbuf; the signed string keeps them, the bytes do not.
    let userbuf = match userbuf_b64 {
        None => None,
        Some(b64) => {
            let compact: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            Some(LENIENT_STANDARD.decode(compact).map_err(|_| UserSigError::Malformed)?)
        }
    };

    if doc_sdkappid != sdkappid {
        return Err(UserSigError::SdkAppIdMismatch);
    }
    if doc_identifier != identifier {
        return Err(UserSigError::IdentifierMismatch);
    }

    let tag = LENIENT_STANDARD.decode(sig).map_err(|_| UserSigError::BadSignature)?;
    signer(secret_key, doc_identifier, doc_sdkappid, time, expire, userbuf_b64)
        .map_err(|_| UserSigError::BadSignature)?
        .verify_slice(&tag)
        .map_err(|_| UserSigError::BadSignature)?;

    if i128::from(time) > i128::from(now) + i128::from(MAX_CLOCK_SKEW_SECS) {
        return Err(UserSigError::IssuedAhead);
    }
    if i128::from(now) > i128::from(time) + i128::from(expire) {
        return Err(UserSigError::Expired);
    }

    Ok(Claims { identifier: doc_identifier.to_owned(), sdkappid: doc_sdkappid, time, expire, userbuf })
}

/// An HMAC loaded with the signed string (§2.1).
fn signer(
    secret_key: &str,
    identifier: &str,
    sdkappid: u64,
    time: i64,
    expire: i64,
    userbuf_b64: Option<&str>,
) -> Result<HmacSha256, hmac::digest::InvalidLength> {
    let mut mac = HmacSha256::new_from_slice(secret_key.as_bytes())?;
    mac.update(b"TLS.identifier:");
    mac.update(identifier.as_bytes());
    mac.update(format!("\nTLS.sdkappid:{sdkappid}\nTLS.time:{time}\nTLS.expire:{expire}\n").as_bytes());
    if let Some(b64) = userbuf_b64 {
        mac.update(b"TLS.userbuf:");
        mac.update(b64.as_bytes());
        mac.update(b"\n");
    }
    Ok(mac)
}

/// Undoes the `*-_` mapping and base64-decodes. The plain `+/=` characters are refused, as Go's
/// verifier does: they never appear in a UserSig.
fn decode_outer(usersig: &str) -> Result<Vec<u8>, UserSigError> {
    if usersig.len() > MAX_USERSIG_LEN {
        return Err(UserSigError::Malformed);
    }
    let mut standard = Vec::with_capacity(usersig.len());
    for byte in usersig.bytes() {
        standard.push(match byte {
            b'*' => b'+',
            b'-' => b'/',
            b'_' => b'=',
            b'+' | b'/' | b'=' => return Err(UserSigError::Malformed),
            other => other,
        });
    }
    LENIENT_STANDARD.decode(standard).map_err(|_| UserSigError::Malformed)
}

thread_local! {
    /// One inflater per thread, reset for each UserSig. flate2's `Decompress` allocates (or, reset, zeroes)
    /// a 32 KiB window besides the decoder, a large part of a login's cost (docs/benchmarks.md, "UserSig is
    /// inflated without a window"). The whole document fits one output buffer, so the decoder alone does,
    /// without a window.
    static INFLATER: std::cell::RefCell<DecompressorOxide> = std::cell::RefCell::new(DecompressorOxide::new());
}

/// Inflates one complete zlib stream (header and Adler-32 checked), refusing truncated streams,
/// trailing bytes and output over [`MAX_DOCUMENT_LEN`].
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, UserSigError> {
    use miniz_oxide::inflate::core::inflate_flags::{
        TINFL_FLAG_COMPUTE_ADLER32, TINFL_FLAG_PARSE_ZLIB_HEADER, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    };
    let flags = TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_COMPUTE_ADLER32 | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    // A typical document is a few hundred bytes; a larger one is inflated again into the largest buffer
    // allowed, plus one byte so that a longer document shows as output left over.
    for size in [1024, MAX_DOCUMENT_LEN + 1] {
        let mut out = vec![0; size];
        let (status, consumed, written) = INFLATER.with_borrow_mut(|inflater| {
            inflater.init();
            miniz_oxide::inflate::core::decompress(inflater, compressed, &mut out, 0, flags)
        });
        match status {
            TINFLStatus::Done if consumed == compressed.len() && written <= MAX_DOCUMENT_LEN => {
                out.truncate(written);
                return Ok(out);
            }
            TINFLStatus::HasMoreOutput => continue,
            _ => return Err(UserSigError::Malformed),
        }
    }
    Err(UserSigError::Malformed)
}

fn str_field<'a>(doc: &'a Map<String, Value>, key: &str) -> Result<&'a str, UserSigError> {
    match doc.get(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(UserSigError::MissingField),
    }
}

/// An integer field, as a JSON integer or, leniently, as a string holding the integer in canonical decimal
/// (so the signed string is unambiguous).
fn int_field<T>(doc: &Map<String, Value>, key: &str, from_number: fn(&Value) -> Option<T>) -> Result<T, UserSigError>
where
    T: std::str::FromStr + ToString,
{
    match doc.get(key) {
        Some(number @ Value::Number(_)) => from_number(number).ok_or(UserSigError::MissingField),
        Some(Value::String(s)) => match s.parse::<T>() {
            Ok(n) if n.to_string() == *s => Ok(n),
            _ => Err(UserSigError::MissingField),
        },
        _ => Err(UserSigError::MissingField),
    }
}

/// Appends `s` as a JSON string the way python's `json.dumps` does by default (`ensure_ascii=True`):
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\uxxxx` (lowercase hex, surrogate pairs) for every other
/// character outside printable ASCII.
fn push_python_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";

    #[test]
    fn roundtrip() {
        // The last one makes a document past the first 1 KiB output buffer.
        let long = vec![b'x'; 3000];
        for userbuf in [None, Some(&b""[..]), Some(&b"abc"[..]), Some(&[0u8, 255, 62, 63][..]), Some(&long[..])] {
            for identifier in ["xiaojun", "a/b", "小军", "emoji😀", "q\"\\\n\u{7f}"] {
                let sig = generate(KEY, 1400000000, identifier, 1600000000, 86400, userbuf);
                let claims = verify(KEY, 1400000000, identifier, &sig, 1600000000).unwrap();
                assert_eq!(
                    claims,
                    Claims {
                        identifier: identifier.to_owned(),
                        sdkappid: 1400000000,
                        time: 1600000000,
                        expire: 86400,
                        userbuf: userbuf.map(<[u8]>::to_vec),
                    }
                );
            }
        }
    }

    #[test]
    fn python_escaping() {
        let mut out = String::new();
        push_python_json_str(&mut out, "a\"\\/\u{1}\u{7f}é小😀\t");
        assert_eq!(out, r#""a\"\\/\u0001\u007f\u00e9\u5c0f\ud83d\ude00\t""#);
    }

    #[test]
    fn never_panics_on_garbage() {
        let good = generate(KEY, 1400000000, "xiaojun", 1600000000, 86400, Some(b"abc"));
        let mut inputs: Vec<String> = vec![
            String::new(),
            "_".into(),
            "___".into(),
            "eJ".into(),
            "eJw_".into(),
            "*-_".repeat(100),
            "é".repeat(10),
            "\0".into(),
            "A".repeat(MAX_USERSIG_LEN + 1),
            good[..good.len() / 2].to_owned(),
            format!("{good}AAAA"),
        ];
        let bytes = good.as_bytes();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut mangled = bytes.to_vec();
                mangled[i] ^= flip;
                inputs.push(String::from_utf8_lossy(&mangled).into_owned());
            }
            inputs.push(String::from_utf8_lossy(&bytes[..i]).into_owned());
        }
        // The outer string is malleable without changing what it says: base64 padding is optional, and the bits
        // after the final deflate block are ignored by every inflater (python's zlib too). Anything accepted must
        // therefore carry exactly the original document.
        let document = |s: &str| decode_outer(s).and_then(|z| inflate(&z));
        let original = document(&good).unwrap();
        for input in &inputs {
            if verify(KEY, 1400000000, "xiaojun", input, 1600000000).is_ok() {
                assert_eq!(document(input).unwrap(), original, "accepted {input:?}");
            }
        }
        // The thread's inflater, left in any state by the garbage, still reads a good one.
        assert_eq!(document(&good).unwrap(), original);
        assert!(verify(KEY, 1400000000, "xiaojun", &good, 1600000000).is_ok());
    }

    #[test]
    fn zip_bomb_is_malformed() {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b' '; 1 << 20]).unwrap();
        let bomb = STANDARD.encode(encoder.finish().unwrap()).replace('+', "*").replace('/', "-").replace('=', "_");
        assert!(bomb.len() < MAX_USERSIG_LEN);
        assert_eq!(verify(KEY, 1400000000, "xiaojun", &bomb, 0), Err(UserSigError::Malformed));
        // Stopped mid-stream, the thread's inflater is reset for the next one.
        let good = generate(KEY, 1400000000, "xiaojun", 1600000000, 86400, None);
        assert!(verify(KEY, 1400000000, "xiaojun", &good, 1600000000).is_ok());
    }
}

//! UserSig v2 against the reference's §2.7 vector, real vectors made by Tencent's python and node
//! TLSSigAPIv2 libraries (`fixtures/usersig/vectors.json`, provenance in `make_vectors.sh`), the shapes
//! of the Go, PHP and Java libraries built by hand, and every refusal.

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use duet_core::usersig::{Claims, MAX_CLOCK_SKEW_SECS, UserSigError, generate, verify};
use flate2::Compression;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
const SDKAPPID: u64 = 1400000000;
const TIME: i64 = 1600000000;
const EXPIRE: i64 = 15552000;

/// §2.7: python's UserSig for xiaojun at the frozen time.
const REF_USERSIG: &str = "eJyrVgrxCdYrSy1SslJQMtIzUNJRAItkpqTmlWSmZUIkKjIT87NK82CSxSnZiQUFmSlAKUMTAyiAyqVWFGQWpYJkTE1NjRDiJZm5YFEzNPXFmekgGwyjTAPy0l2y3BNL01KDMwPynUorUjwizV29jb1CUhyzfAMsjYNNvMvCjH1tlWoBGhAzGw__";
const REF_DOCUMENT: &str = r#"{"TLS.ver": "2.0", "TLS.identifier": "xiaojun", "TLS.sdkappid": 1400000000, "TLS.expire": 15552000, "TLS.time": 1600000000, "TLS.sig": "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M="}"#;
const REF_SIG: &str = "1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3M=";
const REF_USERBUF_SIG: &str = "9tvdyuu11RSxrIwX0xC05oW7LdPxVnzkzBpcRT/UqfM=";

const VECTORS: &str = include_str!("fixtures/usersig/vectors.json");

// ---- helpers: an independent encoder/decoder for building and inspecting sigs ----

/// The standard-base64 HMAC of the signed string (§2.1), computed independently of the crate.
fn tls_sig(key: &str, identifier: &str, sdkappid: u64, time: i64, expire: i64, userbuf_b64: Option<&str>) -> String {
    let mut content =
        format!("TLS.identifier:{identifier}\nTLS.sdkappid:{sdkappid}\nTLS.time:{time}\nTLS.expire:{expire}\n");
    if let Some(b64) = userbuf_b64 {
        content.push_str(&format!("TLS.userbuf:{b64}\n"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(content.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn zlib(data: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::new(level));
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn outer(bytes: &[u8]) -> String {
    STANDARD.encode(bytes).replace('+', "*").replace('/', "-").replace('=', "_")
}

/// A UserSig carrying `document`, compressed at `level`.
fn usersig_of(document: &str, level: u32) -> String {
    outer(&zlib(document.as_bytes(), level))
}

fn unouter(usersig: &str) -> Vec<u8> {
    STANDARD.decode(usersig.replace('*', "+").replace('-', "/").replace('_', "=")).unwrap()
}

fn document_of(usersig: &str) -> String {
    let mut document = String::new();
    flate2::read::ZlibDecoder::new(&unouter(usersig)[..]).read_to_string(&mut document).unwrap();
    document
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn claims(identifier: &str, time: i64, expire: i64, userbuf: Option<&[u8]>) -> Claims {
    Claims { identifier: identifier.to_owned(), sdkappid: SDKAPPID, time, expire, userbuf: userbuf.map(<[u8]>::to_vec) }
}

/// Document text for the reference inputs, python layout, with the given sig value.
fn ref_document_with(fields: &str) -> String {
    format!("{{{fields}}}")
}

// ---- §2.7 reference vector ----

#[test]
fn reference_vector_verifies_through_its_last_second() {
    let expected = claims("xiaojun", TIME, EXPIRE, None);
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, TIME), Ok(expected.clone()));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, TIME + EXPIRE), Ok(expected.clone()));
    // Unlike the official verifiers, a sig dated more than the allowed clock skew ahead is refused: it
    // would outlive a kick made before its date.
    let earliest = TIME - MAX_CLOCK_SKEW_SECS;
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, earliest), Ok(expected));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, earliest - 1), Err(UserSigError::IssuedAhead));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, 0), Err(UserSigError::IssuedAhead));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, TIME + EXPIRE + 1), Err(UserSigError::Expired));
    assert_eq!(document_of(REF_USERSIG), REF_DOCUMENT);
}

#[test]
fn reference_vector_with_a_flipped_byte_is_refused() {
    let original = REF_USERSIG.as_bytes();
    let mut refused = 0;
    for position in 0..original.len() {
        for flip in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
            let mut mangled = original.to_vec();
            mangled[position] ^= flip;
            let mangled = String::from_utf8_lossy(&mangled).into_owned();
            for now in [TIME, TIME + EXPIRE + 1] {
                match verify(KEY, SDKAPPID, "xiaojun", &mangled, now) {
                    Err(UserSigError::Expired) => {
                        // Only possible if the signed fields survived intact.
                        assert_eq!(now, TIME + EXPIRE + 1);
                        assert_eq!(document_of(&mangled), REF_DOCUMENT, "{mangled}");
                    }
                    Err(_) => refused += 1,
                    Ok(_) => {
                        // Deflate ignores the bits after its final block, so a flip there changes the string but
                        // not the document; that is the same sig, not a forgery. Nothing else may pass.
                        assert_eq!(document_of(&mangled), REF_DOCUMENT, "accepted {mangled}");
                        assert!(position + 12 > original.len(), "accepted {mangled}");
                    }
                }
            }
        }
    }
    assert!(refused > original.len() * 9 * 2 * 9 / 10, "refused only {refused}");
}

#[test]
fn generate_makes_the_python_document_for_the_reference_inputs() {
    let generated = generate(KEY, SDKAPPID, "xiaojun", TIME, EXPIRE, None);
    // flate2 (miniz_oxide) and C zlib pick different deflate encodings at the same level, so the outer string is
    // not python's byte for byte; the document inside is, and so are the zlib header and TLS.sig.
    assert_eq!(document_of(&generated), REF_DOCUMENT);
    assert_eq!(&unouter(&generated)[..2], &[0x78, 0x9c]);
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", &generated, TIME), Ok(claims("xiaojun", TIME, EXPIRE, None)));
    assert_eq!(tls_sig(KEY, "xiaojun", SDKAPPID, TIME, EXPIRE, None), REF_SIG);
}

#[test]
fn reference_userbuf_variant() {
    assert_eq!(tls_sig(KEY, "xiaojun", SDKAPPID, TIME, EXPIRE, Some("YWJj")), REF_USERBUF_SIG);
    let generated = generate(KEY, SDKAPPID, "xiaojun", TIME, EXPIRE, Some(b"abc"));
    assert_eq!(
        document_of(&generated),
        format!(
            r#"{{"TLS.ver": "2.0", "TLS.identifier": "xiaojun", "TLS.sdkappid": 1400000000, "TLS.expire": 15552000, "TLS.time": 1600000000, "TLS.userbuf": "YWJj", "TLS.sig": "{REF_USERBUF_SIG}"}}"#
        )
    );
    assert_eq!(
        verify(KEY, SDKAPPID, "xiaojun", &generated, TIME + EXPIRE),
        Ok(claims("xiaojun", TIME, EXPIRE, Some(b"abc")))
    );
    // The signed string must carry the userbuf line: the same fields signed without it do not verify.
    let without_line = tls_sig(KEY, "xiaojun", SDKAPPID, TIME, EXPIRE, None);
    let doc = ref_document_with(&format!(
        r#""TLS.ver": "2.0", "TLS.identifier": "xiaojun", "TLS.sdkappid": 1400000000, "TLS.expire": 15552000, "TLS.time": 1600000000, "TLS.userbuf": "YWJj", "TLS.sig": "{without_line}""#
    ));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", &usersig_of(&doc, 6), TIME), Err(UserSigError::BadSignature));
    // And a userbuf-signed sig with the userbuf dropped from the document does not verify either.
    let doc = ref_document_with(&format!(
        r#""TLS.ver": "2.0", "TLS.identifier": "xiaojun", "TLS.sdkappid": 1400000000, "TLS.expire": 15552000, "TLS.time": 1600000000, "TLS.sig": "{REF_USERBUF_SIG}""#
    ));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", &usersig_of(&doc, 6), TIME), Err(UserSigError::BadSignature));
}

// ---- real vectors from the python and node libraries ----

struct Vector {
    library: String,
    identifier: String,
    time: i64,
    expire: i64,
    userbuf: Option<Vec<u8>>,
    usersig: String,
    document: String,
    tls_sig: String,
}

fn vectors() -> Vec<Vector> {
    let file: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(file["key"], KEY);
    assert_eq!(file["sdkappid"], SDKAPPID);
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            library: v["library"].as_str().unwrap().to_owned(),
            identifier: v["identifier"].as_str().unwrap().to_owned(),
            time: v["time"].as_i64().unwrap(),
            expire: v["expire"].as_i64().unwrap(),
            userbuf: v["userbuf_hex"].as_str().map(hex),
            usersig: v["usersig"].as_str().unwrap().to_owned(),
            document: v["document"].as_str().unwrap().to_owned(),
            tls_sig: v["tls_sig"].as_str().unwrap().to_owned(),
        })
        .collect()
}

#[test]
fn official_library_vectors_verify() {
    let vectors = vectors();
    let python = vectors.iter().filter(|v| v.library.starts_with("python")).count();
    let node = vectors.iter().filter(|v| v.library.starts_with("node")).count();
    assert!(python >= 7 && node >= 9, "python {python}, node {node}");
    for v in &vectors {
        let expected = Claims {
            identifier: v.identifier.clone(),
            sdkappid: SDKAPPID,
            time: v.time,
            expire: v.expire,
            userbuf: v.userbuf.clone(),
        };
        let check = |now| verify(KEY, SDKAPPID, &v.identifier, &v.usersig, now);
        assert_eq!(check(v.time), Ok(expected.clone()), "{} {}", v.library, v.usersig);
        assert_eq!(check(v.time + v.expire), Ok(expected), "{}", v.library);
        assert_eq!(check(v.time + v.expire + 1), Err(UserSigError::Expired), "{}", v.library);
        assert_eq!(verify(KEY, SDKAPPID, "someone-else", &v.usersig, v.time), Err(UserSigError::IdentifierMismatch));
        assert_eq!(verify(KEY, SDKAPPID + 1, &v.identifier, &v.usersig, v.time), Err(UserSigError::SdkAppIdMismatch));
        assert_eq!(
            verify(&KEY.replace('5', "6"), SDKAPPID, &v.identifier, &v.usersig, v.time),
            Err(UserSigError::BadSignature)
        );
        // The recorded document and TLS.sig are what the string carries and what §2.1 computes.
        assert_eq!(document_of(&v.usersig), v.document);
        let userbuf_b64 = v.userbuf.as_ref().map(|b| STANDARD.encode(b));
        assert_eq!(tls_sig(KEY, &v.identifier, SDKAPPID, v.time, v.expire, userbuf_b64.as_deref()), v.tls_sig);
    }
}

#[test]
fn generate_matches_python_documents_and_verifies_with_node_shapes() {
    for v in vectors() {
        let generated = generate(KEY, SDKAPPID, &v.identifier, v.time, v.expire, v.userbuf.as_deref());
        if v.library.starts_with("python") {
            // Same JSON text as json.dumps: separators, key order, \uXXXX escapes, quotes and backslashes.
            assert_eq!(document_of(&generated), v.document, "{}", v.identifier);
        }
        let doc: serde_json::Value = serde_json::from_str(&document_of(&generated)).unwrap();
        assert_eq!(doc["TLS.sig"], v.tls_sig.as_str(), "{}", v.identifier);
    }
}

// ---- the other official libraries' shapes, built by hand ----

/// Go (`tls-sig-api-v2-golang`): encoding/json of a struct (compact, HTML characters escaped as \u003c etc.,
/// non-ASCII raw, []byte as standard base64) plus the Encoder's newline, zlib.NoCompression by default.
#[test]
fn go_shape_verifies() {
    let identifier = "a<b>&c/小军";
    let time = 1700000000;
    let expire = 86400;
    for userbuf in [None, Some(&b"\x00\x01room\xff"[..])] {
        let userbuf_b64 = userbuf.map(|b| STANDARD.encode(b));
        let sig = tls_sig(KEY, identifier, SDKAPPID, time, expire, userbuf_b64.as_deref());
        let userbuf_field = userbuf_b64.as_ref().map(|b| format!(r#""TLS.userbuf":"{b}","#)).unwrap_or_default();
        let doc = format!(
            "{{\"TLS.ver\":\"2.0\",\"TLS.identifier\":\"a\\u003cb\\u003e\\u0026c/小军\",\"TLS.sdkappid\":{SDKAPPID},\
             \"TLS.expire\":{expire},\"TLS.time\":{time},{userbuf_field}\"TLS.sig\":\"{sig}\"}}\n"
        );
        for level in [0, 1] {
            let usersig = usersig_of(&doc, level);
            assert_eq!(&unouter(&usersig)[..2], &[0x78, 0x01]);
            if level == 0 {
                assert!(usersig.starts_with("eA"));
            }
            assert_eq!(
                verify(KEY, SDKAPPID, identifier, &usersig, time),
                Ok(claims(identifier, time, expire, userbuf)),
                "level {level}"
            );
        }
    }
}

/// PHP (`tls-sig-api-v2-php`): json_encode escapes `/` as `\/` (in TLS.sig, TLS.userbuf and the identifier)
/// and non-ASCII as \uXXXX; key order as python's, compact; gzcompress at its default level.
#[test]
fn php_shape_verifies() {
    let identifier = "team/小军";
    let time = 1700000000;
    let expire = 15552000;
    // A userbuf whose base64 has `/` and `+` in it.
    let userbuf: &[u8] = b"\xfb\xff\xbf\x3e";
    for userbuf in [None, Some(userbuf)] {
        let userbuf_b64 = userbuf.map(|b| STANDARD.encode(b));
        let sig = tls_sig(KEY, identifier, SDKAPPID, time, expire, userbuf_b64.as_deref());
        let php = |s: &str| s.replace('/', "\\/");
        let userbuf_field = userbuf_b64.as_ref().map(|b| format!(r#""TLS.userbuf":"{}","#, php(b))).unwrap_or_default();
        let doc = format!(
            r#"{{"TLS.ver":"2.0","TLS.identifier":"team\/\u5c0f\u519b","TLS.sdkappid":{SDKAPPID},"TLS.expire":{expire},"TLS.time":{time},{userbuf_field}"TLS.sig":"{}"}}"#,
            php(&sig)
        );
        assert!(doc.contains("\\/"));
        let usersig = usersig_of(&doc, 6);
        assert!(usersig.starts_with("eJ"));
        assert_eq!(
            verify(KEY, SDKAPPID, identifier, &usersig, time + expire),
            Ok(claims(identifier, time, expire, userbuf))
        );
    }
    // The reference sig, whose TLS.sig has no `/`, and the userbuf one, whose TLS.sig has one.
    let doc = format!(
        r#"{{"TLS.ver":"2.0","TLS.identifier":"xiaojun","TLS.sdkappid":1400000000,"TLS.expire":15552000,"TLS.time":1600000000,"TLS.userbuf":"YWJj","TLS.sig":"{}"}}"#,
        REF_USERBUF_SIG.replace('/', "\\/")
    );
    assert_eq!(
        verify(KEY, SDKAPPID, "xiaojun", &usersig_of(&doc, 6), TIME),
        Ok(claims("xiaojun", TIME, EXPIRE, Some(b"abc")))
    );
}

/// Java (`tls-sig-api-v2-java`): org.json's JSONObject is a HashMap, so the keys come out in hash order
/// (TLS.expire, TLS.ver, TLS.sdkappid, TLS.identifier, TLS.sig, TLS.userbuf, TLS.time for 16 buckets);
/// compact; Deflater default level. sun.misc.BASE64Encoder breaks the userbuf's base64 into 76-character
/// lines, and those line breaks are both in the JSON (as \n) and in the signed string.
#[test]
fn java_shape_verifies() {
    let identifier = "xiaojun";
    let time = 1700000000;
    let expire = 300;
    let long_userbuf: Vec<u8> = (0..=200u8).collect();
    let wrapped = STANDARD
        .encode(&long_userbuf)
        .as_bytes()
        .chunks(76)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(wrapped.contains('\n'));
    for userbuf in [None, Some((&b"abc"[..], "YWJj".to_owned())), Some((&long_userbuf[..], wrapped))] {
        let userbuf_b64 = userbuf.as_ref().map(|(_, b64)| b64.as_str());
        let sig = tls_sig(KEY, identifier, SDKAPPID, time, expire, userbuf_b64);
        let userbuf_field =
            userbuf_b64.map(|b| format!(r#""TLS.userbuf":"{}","#, b.replace('\n', "\\n"))).unwrap_or_default();
        let doc = format!(
            r#"{{"TLS.expire":{expire},"TLS.ver":"2.0","TLS.sdkappid":{SDKAPPID},"TLS.identifier":"{identifier}","TLS.sig":"{sig}",{userbuf_field}"TLS.time":{time}}}"#
        );
        let usersig = usersig_of(&doc, 6);
        assert_eq!(&unouter(&usersig)[..2], &[0x78, 0x9c]);
        assert_eq!(
            verify(KEY, SDKAPPID, identifier, &usersig, time),
            Ok(claims(identifier, time, expire, userbuf.map(|(raw, _)| raw)))
        );
    }
}

#[test]
fn every_zlib_level_verifies() {
    for (level, header) in [(0, 0x01), (1, 0x01), (6, 0x9c), (9, 0xda)] {
        let usersig = usersig_of(REF_DOCUMENT, level);
        assert_eq!(unouter(&usersig)[1], header, "level {level}");
        assert_eq!(
            verify(KEY, SDKAPPID, "xiaojun", &usersig, TIME),
            Ok(claims("xiaojun", TIME, EXPIRE, None)),
            "level {level}"
        );
    }
    assert!(usersig_of(REF_DOCUMENT, 9).starts_with("eN"));
}

#[test]
fn lenient_json_verifies() {
    let expected = Ok(claims("xiaojun", TIME, EXPIRE, None));
    let docs = [
        // Pretty-printed, any order, escaped slash and \u escapes for plain ASCII.
        format!(
            "{{\n\t\"TLS.sig\" : \"{}\",\r\n  \"TLS.time\":1600000000 ,\n  \"TLS.identifier\": \"\\u0078iaojun\",\n  \
             \"TLS.expire\": 15552000,\n  \"TLS.sdkappid\": 1400000000\n}}\n",
            REF_SIG.replace('/', "\\/")
        ),
        // Numbers as numeric strings, no TLS.ver, an unknown field.
        format!(
            r#"{{"TLS.identifier":"xiaojun","TLS.sdkappid":"1400000000","TLS.time":"1600000000","TLS.expire":"15552000","TLS.sig":"{REF_SIG}","extra":[1,{{"a":null}}]}}"#
        ),
        // A sig without its base64 padding.
        format!(
            r#"{{"TLS.identifier":"xiaojun","TLS.sdkappid":1400000000,"TLS.time":1600000000,"TLS.expire":15552000,"TLS.sig":"{}"}}"#,
            REF_SIG.trim_end_matches('=')
        ),
    ];
    for doc in &docs {
        assert_eq!(verify(KEY, SDKAPPID, "xiaojun", &usersig_of(doc, 6), TIME), expected, "{doc}");
    }
    // The outer string without its `_` padding (node's own decoder re-pads).
    let unpadded = REF_USERSIG.trim_end_matches('_');
    assert_ne!(unpadded, REF_USERSIG);
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", unpadded, TIME), expected);
}

// ---- refusals ----

/// The reference document with `fields` in place of the usual ones.
fn doc_with(fields: &[(&str, &str)]) -> String {
    let mut all = vec![
        ("TLS.ver", r#""2.0""#.to_owned()),
        ("TLS.identifier", r#""xiaojun""#.to_owned()),
        ("TLS.sdkappid", "1400000000".to_owned()),
        ("TLS.expire", "15552000".to_owned()),
        ("TLS.time", "1600000000".to_owned()),
        ("TLS.sig", format!(r#""{REF_SIG}""#)),
    ];
    for (key, value) in fields {
        all.retain(|(k, _)| k != key);
        if !value.is_empty() {
            all.push((key, (*value).to_owned()));
        }
    }
    let body: Vec<String> = all.iter().map(|(k, v)| format!(r#""{k}": {v}"#)).collect();
    format!("{{{}}}", body.join(", "))
}

fn check(usersig: &str) -> Result<Claims, UserSigError> {
    verify(KEY, SDKAPPID, "xiaojun", usersig, TIME)
}

#[test]
fn doc_with_is_faithful() {
    assert_eq!(check(&usersig_of(&doc_with(&[]), 6)), Ok(claims("xiaojun", TIME, EXPIRE, None)));
}

#[test]
fn empty_is_refused() {
    assert_eq!(check(""), Err(UserSigError::Empty));
}

#[test]
fn expired_is_refused() {
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, TIME + EXPIRE + 1), Err(UserSigError::Expired));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", REF_USERSIG, i64::MAX), Err(UserSigError::Expired));
    // time + expire beyond i64 does not overflow into "expired long ago" or a panic.
    let time = i64::MAX - 5;
    let expire = i64::MAX;
    let usersig = generate(KEY, SDKAPPID, "xiaojun", time, expire, None);
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", &usersig, i64::MAX), Ok(claims("xiaojun", time, expire, None)));
    let negative = generate(KEY, SDKAPPID, "xiaojun", TIME, -1, None);
    assert_eq!(check(&negative), Err(UserSigError::Expired));
}

#[test]
fn dated_ahead_is_refused_after_the_signature_and_before_expiry() {
    let ahead = generate(KEY, SDKAPPID, "xiaojun", TIME + MAX_CLOCK_SKEW_SECS + 1, EXPIRE, None);
    assert_eq!(check(&ahead), Err(UserSigError::IssuedAhead));
    let at_the_skew = generate(KEY, SDKAPPID, "xiaojun", TIME + MAX_CLOCK_SKEW_SECS, EXPIRE, None);
    assert_eq!(check(&at_the_skew), Ok(claims("xiaojun", TIME + MAX_CLOCK_SKEW_SECS, EXPIRE, None)));
    // A forged sig is reported as forged, whatever its date; one dated far ahead never overflows.
    let wrong_key = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_eq!(
        check(&generate(wrong_key, SDKAPPID, "xiaojun", i64::MAX, EXPIRE, None)),
        Err(UserSigError::BadSignature)
    );
    assert_eq!(check(&generate(KEY, SDKAPPID, "xiaojun", i64::MAX, -1, None)), Err(UserSigError::IssuedAhead));
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", &ahead, i64::MIN), Err(UserSigError::IssuedAhead));
}

#[test]
fn forged_is_refused() {
    let wrong_key = "0000000000000000000000000000000000000000000000000000000000000000";
    let forged = generate(wrong_key, SDKAPPID, "xiaojun", TIME, EXPIRE, None);
    assert_eq!(check(&forged), Err(UserSigError::BadSignature));
    // A forged sig is reported as forged, never as merely expired.
    assert_eq!(verify(KEY, SDKAPPID, "xiaojun", &forged, TIME + EXPIRE + 1), Err(UserSigError::BadSignature));
    // The key is the text, not its hex decoding, and is case-sensitive.
    let upper = generate(&KEY.to_uppercase(), SDKAPPID, "xiaojun", TIME, EXPIRE, None);
    assert_eq!(check(&upper), Err(UserSigError::BadSignature));
    // Altered signed fields under the original TLS.sig.
    for fields in [
        [("TLS.expire", "999999999")],
        [("TLS.time", "1600000001")],
        [("TLS.userbuf", r#""YWJj""#)],
        [("TLS.sig", r#""1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3N=""#)],
        [("TLS.sig", r#""1Z5PngDjGaufeSiPoBuxdHY7EK3JTdAjMP93S4KvV3""#)],
        [("TLS.sig", r#""not base64!""#)],
        [("TLS.sig", r#""""#)],
    ] {
        let doc = doc_with(&fields);
        assert_eq!(check(&usersig_of(&doc, 6)), Err(UserSigError::BadSignature), "{doc}");
    }
    // An extra copy of the MAC (64 bytes) is not a prefix match.
    let doubled = format!(
        r#""{}""#,
        STANDARD.encode([STANDARD.decode(REF_SIG).unwrap(), STANDARD.decode(REF_SIG).unwrap()].concat())
    );
    assert_eq!(check(&usersig_of(&doc_with(&[("TLS.sig", &doubled)]), 6)), Err(UserSigError::BadSignature));
}

#[test]
fn malformed_is_refused() {
    let ref_zlib = unouter(REF_USERSIG);
    let json = REF_DOCUMENT.as_bytes();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(json).unwrap();
    let raw_deflate = {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(json).unwrap();
        e.finish().unwrap()
    };
    let mut bad_adler = ref_zlib.clone();
    *bad_adler.last_mut().unwrap() ^= 0x01;
    let mut bad_header = ref_zlib.clone();
    bad_header[1] ^= 0x01;
    let bomb = zlib(&vec![b' '; 1 << 20], 9);

    let cases: Vec<(&str, String)> = vec![
        ("bad base64 characters", "!!!!".into()),
        ("plain = padding", REF_USERSIG.replace('_', "=")),
        ("whitespace", format!("{REF_USERSIG}\n")),
        ("impossible base64 length", "eJyrV".into()),
        ("non-ASCII", "eJyr小".into()),
        ("padding only", "____".into()),
        ("not zlib", outer(b"hello, world")),
        ("raw deflate", outer(&raw_deflate)),
        ("gzip", outer(&gzip.finish().unwrap())),
        ("truncated zlib", outer(&ref_zlib[..ref_zlib.len() - 6])),
        ("zlib without its trailer", outer(&ref_zlib[..ref_zlib.len() - 4])),
        ("bad adler-32", outer(&bad_adler)),
        ("bad zlib header", outer(&bad_header)),
        ("trailing bytes", outer(&[&ref_zlib[..], b"\0"].concat())),
        ("two streams", outer(&[&ref_zlib[..], &ref_zlib[..]].concat())),
        ("zip bomb", outer(&bomb)),
        ("not json", usersig_of("hello", 6)),
        ("empty document", usersig_of("", 6)),
        ("truncated json", usersig_of(&REF_DOCUMENT[..REF_DOCUMENT.len() - 1], 6)),
        ("json array", usersig_of("[1, 2]", 6)),
        ("json string", usersig_of(r#""TLS.sig""#, 6)),
        ("json null", usersig_of("null", 6)),
        ("trailing json", usersig_of(&format!("{REF_DOCUMENT} {{}}"), 6)),
        ("deep nesting", usersig_of(&"[".repeat(10_000), 9)),
        ("userbuf not base64", usersig_of(&doc_with(&[("TLS.userbuf", r#""@@@""#)]), 6)),
    ];
    for (what, usersig) in &cases {
        assert_eq!(check(usersig), Err(UserSigError::Malformed), "{what}");
    }
    // Plain `+` and `/` never appear in a UserSig (python's 小军 vector has both `*` and `-`).
    let v = vectors().into_iter().find(|v| v.usersig.contains('*') && v.usersig.contains('-')).unwrap();
    assert!(verify(KEY, SDKAPPID, &v.identifier, &v.usersig, v.time).is_ok());
    for plain in [v.usersig.replace('*', "+"), v.usersig.replace('-', "/")] {
        assert_eq!(verify(KEY, SDKAPPID, &v.identifier, &plain, v.time), Err(UserSigError::Malformed));
    }
    // Invalid UTF-8 inside the document.
    let mut latin1 = REF_DOCUMENT.as_bytes().to_vec();
    latin1[20] = 0xe9;
    assert_eq!(check(&outer(&zlib(&latin1, 6))), Err(UserSigError::Malformed));
    // Too long to be a UserSig at all.
    assert_eq!(check(&"A".repeat(1 << 20)), Err(UserSigError::Malformed));
}

#[test]
fn missing_or_mistyped_fields_are_refused() {
    let cases: &[(&str, &str)] = &[
        ("TLS.identifier", ""),
        ("TLS.sdkappid", ""),
        ("TLS.time", ""),
        ("TLS.expire", ""),
        ("TLS.sig", ""),
        ("TLS.identifier", "123"),
        ("TLS.identifier", "null"),
        ("TLS.identifier", r#"["xiaojun"]"#),
        ("TLS.sdkappid", r#""abc""#),
        ("TLS.sdkappid", "-1"),
        ("TLS.sdkappid", "1.4e9"),
        ("TLS.sdkappid", "1400000000.0"),
        ("TLS.sdkappid", "18446744073709551616"),
        ("TLS.sdkappid", r#""+1400000000""#),
        ("TLS.sdkappid", r#"" 1400000000""#),
        ("TLS.time", "true"),
        ("TLS.time", r#""""#),
        ("TLS.time", "{}"),
        ("TLS.expire", r#""0015552000""#),
        ("TLS.expire", "9223372036854775808"),
        ("TLS.sig", "5"),
        ("TLS.sig", "null"),
        ("TLS.userbuf", "7"),
        ("TLS.userbuf", "null"),
    ];
    for (key, value) in cases {
        let doc = doc_with(&[(key, value)]);
        assert_eq!(check(&usersig_of(&doc, 6)), Err(UserSigError::MissingField), "{doc}");
    }
    assert_eq!(check(&usersig_of("{}", 6)), Err(UserSigError::MissingField));
}

#[test]
fn wrong_identifier_is_refused() {
    for other in ["XiaoJun", "xiaojun ", "", "xiao", "xiaojun\n"] {
        assert_eq!(verify(KEY, SDKAPPID, other, REF_USERSIG, TIME), Err(UserSigError::IdentifierMismatch), "{other:?}");
    }
    // The identifier is checked before the signature.
    let forged = generate("wrong", SDKAPPID, "xiaojun", TIME, EXPIRE, None);
    assert_eq!(verify(KEY, SDKAPPID, "alice", &forged, TIME), Err(UserSigError::IdentifierMismatch));
}

#[test]
fn wrong_sdkappid_is_refused() {
    for other in [0, 1400000001, 1400000000 + (1 << 32)] {
        assert_eq!(verify(KEY, other, "xiaojun", REF_USERSIG, TIME), Err(UserSigError::SdkAppIdMismatch));
    }
    // The sdkappid is checked before the identifier.
    assert_eq!(verify(KEY, 1, "alice", REF_USERSIG, TIME), Err(UserSigError::SdkAppIdMismatch));
}

#[test]
fn error_messages_are_lowercase_without_trailing_period() {
    for error in [
        UserSigError::Empty,
        UserSigError::Malformed,
        UserSigError::MissingField,
        UserSigError::BadSignature,
        UserSigError::Expired,
        UserSigError::IssuedAhead,
        UserSigError::IdentifierMismatch,
        UserSigError::SdkAppIdMismatch,
    ] {
        let message = error.to_string();
        assert!(!message.is_empty());
        assert_eq!(message, message.to_lowercase());
        assert!(!message.ends_with('.'), "{message}");
    }
}

//! APNs against a local HTTP/2 endpoint: the request Apple documents, a provider token that verifies
//! with the key's public half, and each kind of answer mapped to its outcome.

mod common;

use std::io::Write;
use std::time::Duration;

use axum::http::{Method, Version};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{now, target};
use duet_core::push::{ApnsOptions, Notification, Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::apns::{Apns, ApnsConfig};
use duet_test_support::endpoint::{Answer, Endpoint};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use tempfile::NamedTempFile;

const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "DEF123GHIJ";
const TOPIC: &str = "com.example.chat";
const DEVICE: &str = "8f3c2a1b9e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c";

/// A P-256 key written as a `.p8` file, and its public point.
struct P8 {
    file: NamedTempFile,
    public: Vec<u8>,
}

fn p8() -> P8 {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let mut file = NamedTempFile::new().unwrap();
    file.write_all(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes()).unwrap();
    P8 { file, public: pair.public_key().as_ref().to_vec() }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn config(key: &P8, url: &str) -> ApnsConfig {
    ApnsConfig {
        key_file: key.file.path().to_owned(),
        key_id: KEY_ID.into(),
        team_id: TEAM_ID.into(),
        topic: TOPIC.into(),
        sandbox: false,
        url: Some(url.into()),
    }
}

fn apns(key: &P8, endpoint: &Endpoint) -> Apns {
    Apns::new(&config(key, &endpoint.url), &Clients::new(None).unwrap()).unwrap()
}

fn notification() -> Notification {
    Notification {
        body: "are you coming tonight?".into(),
        msg_key: "1700000000_42_7".into(),
        apns: ApnsOptions {
            sound: "ping.caf".into(),
            subtitle: "Friends".into(),
            mutable_content: true,
            interruption_level: "time-sensitive".into(),
            ..ApnsOptions::default()
        },
        ..common::notification()
    }
}

/// Checks the provider token's ES256 signature (R‖S, 64 bytes) with `public`; returns its header and
/// claims.
fn verify_jwt(jwt: &str, public: &[u8]) -> (Value, Value) {
    let (header, claims) = common::verify_jws(jwt, &ECDSA_P256_SHA256_FIXED, public);
    let signature = URL_SAFE_NO_PAD.decode(jwt.rsplit('.').next().unwrap()).unwrap();
    assert_eq!(signature.len(), 64, "ES256 signs R||S, not DER");
    (header, claims)
}

#[tokio::test]
async fn an_alert_goes_over_http2_with_apples_headers_payload_and_a_signed_token() {
    let endpoint = Endpoint::start(|_| Answer::empty(200)).await;
    let key = p8();
    let apns = apns(&key, &endpoint);
    let before = now();
    assert_eq!(apns.send(&target(DEVICE), &notification()).await, Outcome::Sent);
    let after = now();

    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.version, Version::HTTP_2);
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path(), format!("/3/device/{DEVICE}"));
    assert_eq!(r.header("apns-topic"), Some(TOPIC));
    assert_eq!(r.header("apns-push-type"), Some("alert"));
    assert_eq!(r.header("apns-priority"), Some("10"));
    assert_eq!(r.header("apns-collapse-id"), Some("1700000000_42_7"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let expiration: u64 = r.header("apns-expiration").unwrap().parse().unwrap();
    let week = 7 * 24 * 3600;
    assert!((before + week..=after + week).contains(&expiration), "apns-expiration {expiration}");

    let jwt = r.header("authorization").unwrap().strip_prefix("bearer ").expect("authorization: bearer <jwt>");
    let (header, claims) = verify_jwt(jwt, &key.public);
    assert_eq!(header, json!({"alg": "ES256", "kid": KEY_ID}));
    assert_eq!(claims["iss"], TEAM_ID);
    let iat = claims["iat"].as_u64().unwrap();
    assert!((before..=after).contains(&iat), "iat {iat}");
    assert_eq!(claims.as_object().unwrap().len(), 2, "claims are iss and iat: {claims}");

    assert_eq!(
        r.json(),
        json!({
            "aps": {
                "alert": {"title": "Alice", "subtitle": "Friends", "body": "are you coming tonight?"},
                "badge": 3,
                "sound": "ping.caf",
                "mutable-content": 1,
                "interruption-level": "time-sensitive",
            },
            "ext": r#"{"conv":"c2c_alice"}"#,
            "from": "alice",
            "msg_key": "1700000000_42_7",
        })
    );
}

#[tokio::test]
async fn a_voip_push_goes_to_the_voip_topic_of_the_targets_app() {
    let endpoint = Endpoint::start(|_| Answer::empty(200)).await;
    let key = p8();
    let apns = apns(&key, &endpoint);
    let mut n = notification();
    n.apns.voip = true;
    n.badge = None;
    n.msg_key = "k".repeat(65);
    let target = Target { token: DEVICE.into(), app_id: Some("com.example.other".into()) };
    assert_eq!(apns.send(&target, &n).await, Outcome::Sent);

    let r = &endpoint.requests()[0];
    assert_eq!(r.header("apns-topic"), Some("com.example.other.voip"));
    assert_eq!(r.header("apns-push-type"), Some("voip"));
    assert_eq!(r.header("apns-priority"), Some("10"));
    assert_eq!(r.header("apns-collapse-id"), None, "a msg_key over 64 bytes is not a collapse id");
    let body = r.json();
    assert!(body["aps"].get("badge").is_none(), "no badge when the notification leaves it alone: {body}");
}

#[tokio::test]
async fn one_provider_token_serves_many_pushes() {
    let endpoint = Endpoint::start(|_| Answer::empty(200)).await;
    let key = p8();
    let apns = apns(&key, &endpoint);
    for _ in 0..3 {
        assert_eq!(apns.send(&target(DEVICE), &notification()).await, Outcome::Sent);
    }
    let tokens: Vec<String> =
        endpoint.requests().iter().map(|r| r.header("authorization").unwrap().to_owned()).collect();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "re-signed per request: {tokens:?}");
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let endpoint = Endpoint::start(|r| {
        let reason = |status, reason: &str| Answer::json(status, json!({"reason": reason}));
        match r.path().trim_start_matches("/3/device/") {
            "aa01" => Answer::empty(200),
            "aa02" => Answer::json(410, json!({"reason": "Unregistered", "timestamp": 1_700_000_000_000u64})),
            "aa03" => reason(400, "BadDeviceToken"),
            "aa04" => reason(400, "DeviceTokenNotForTopic"),
            "aa05" => reason(503, "ServiceUnavailable"),
            "aa06" => {
                let mut a = reason(429, "TooManyRequests");
                a.headers.push(("retry-after", "120".into()));
                a
            }
            "aa07" => reason(413, "PayloadTooLarge"),
            "aa08" => Answer { body: "<html>oops</html>".into(), ..Answer::empty(500) },
            "aa09" => {
                Answer { status: 400, headers: Vec::new(), body: "not json".into(), delay: std::time::Duration::ZERO }
            }
            "aa0a" => reason(403, "InvalidProviderToken"),
            "aa0b" => reason(403, "ExpiredProviderToken"),
            _ => reason(400, "BadPath"),
        }
    })
    .await;
    let key = p8();
    let apns = apns(&key, &endpoint);
    let send = |token: &'static str| {
        let apns = &apns;
        async move { apns.send(&target(token), &notification()).await }
    };

    assert_eq!(send("aa01").await, Outcome::Sent);
    assert!(matches!(send("aa02").await, Outcome::InvalidToken { reason } if reason.contains("Unregistered")));
    assert!(matches!(send("aa03").await, Outcome::InvalidToken { reason } if reason.contains("BadDeviceToken")));
    assert!(matches!(send("aa04").await, Outcome::InvalidToken { .. }));
    assert!(matches!(send("aa05").await, Outcome::Retry { after: None, .. }));
    assert!(matches!(send("aa06").await, Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(120)));
    assert!(matches!(send("aa07").await, Outcome::Failed { reason } if reason.contains("PayloadTooLarge")));
    assert!(matches!(send("aa08").await, Outcome::Retry { .. }));
    assert!(matches!(send("aa09").await, Outcome::Failed { .. }));
    // A token signed a moment ago is not re-signed when refused (Apple rate-limits re-signing): an invalid
    // one is the configuration, an expired one the clock.
    assert!(matches!(send("aa0a").await, Outcome::Failed { reason } if reason.contains("key_id")));
    assert!(matches!(send("aa0b").await, Outcome::Retry { .. }));
    assert_eq!(endpoint.requests_to("/3/device/aa0a").len(), 1);
    assert_eq!(endpoint.requests_to("/3/device/aa0b").len(), 1);
    let tokens: Vec<String> =
        endpoint.requests().iter().map(|r| r.header("authorization").unwrap().to_owned()).collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "re-signed: {tokens:?}");
}

#[tokio::test]
async fn what_cannot_be_sent_is_not_sent() {
    let endpoint = Endpoint::start(|_| Answer::empty(200)).await;
    let key = p8();
    let apns = apns(&key, &endpoint);
    // Not hex: it would change the request's path.
    let outcome = apns.send(&target("../../x?y"), &notification()).await;
    assert!(matches!(outcome, Outcome::InvalidToken { .. }), "{outcome:?}");
    let mut big = notification();
    big.body = "x".repeat(5000);
    assert!(matches!(apns.send(&target(DEVICE), &big).await, Outcome::Failed { reason } if reason.contains("4096")));
    assert!(endpoint.requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_service_is_a_retry() {
    let url = common::unreachable_url();
    let key = p8();
    let apns = Apns::new(&config(&key, &url), &Clients::new(None).unwrap()).unwrap();
    let outcome = apns.send(&target(DEVICE), &notification()).await;
    assert!(matches!(&outcome, Outcome::Retry { after: None, reason } if !reason.contains(DEVICE)), "{outcome:?}");
}

#[test]
fn a_bad_key_file_is_named() {
    let clients = Clients::new(None).unwrap();
    let key = p8();
    let mut missing = config(&key, "http://127.0.0.1:1");
    missing.key_file = "/nonexistent/AuthKey.p8".into();
    let error = Apns::new(&missing, &clients).err().unwrap().to_string();
    assert!(error.starts_with("[push.apns]: key_file /nonexistent/AuthKey.p8"), "{error}");

    let mut garbage = NamedTempFile::new().unwrap();
    garbage.write_all(b"not a key").unwrap();
    let mut bad = config(&key, "http://127.0.0.1:1");
    bad.key_file = garbage.path().to_owned();
    let error = Apns::new(&bad, &clients).err().unwrap().to_string();
    assert!(error.contains("key_file"), "{error}");

    let mut no_team = config(&key, "http://127.0.0.1:1");
    no_team.team_id = String::new();
    let error = Apns::new(&no_team, &clients).err().unwrap().to_string();
    assert_eq!(error, "[push.apns]: team_id is empty");
}

#[test]
fn the_config_section_rejects_unknown_fields_and_defaults_to_production() {
    let config: ApnsConfig =
        serde_json::from_value(json!({"key_file": "k.p8", "key_id": "K", "team_id": "T", "topic": "a.b"})).unwrap();
    assert!(!config.sandbox);
    assert_eq!(config.url, None);
    let typo = serde_json::from_value::<ApnsConfig>(
        json!({"key_file": "k.p8", "key_id": "K", "team_id": "T", "topic": "a.b", "sandbx": true}),
    );
    assert!(typo.is_err());
}

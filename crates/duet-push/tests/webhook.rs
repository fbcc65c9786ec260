//! The webhook against a local endpoint: the signed JSON request its module documents, and each answer
//! mapped to its outcome.

mod common;

use std::time::Duration;

use axum::http::Method;
use common::now;
use duet_core::push::{AndroidOptions, ApnsOptions, Notification, Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::webhook::{Webhook, WebhookConfig};
use duet_test_support::endpoint::{Answer, Endpoint};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

const SECRET: &str = "a shared secret";

fn webhook(url: &str) -> Webhook {
    let config = WebhookConfig { url: url.into(), secret: SECRET.into() };
    Webhook::new(&config, &Clients::new(None).unwrap()).unwrap()
}

fn notification() -> Notification {
    Notification {
        body: "are you coming tonight?".into(),
        msg_key: "1700000000_42_7".into(),
        apns: ApnsOptions { sound: "ping.caf".into(), voip: true, ..ApnsOptions::default() },
        android: AndroidOptions {
            xiaomi_channel_id: "chat".into(),
            vivo_classification: Some(1),
            ..AndroidOptions::default()
        },
        ..common::notification()
    }
}

#[tokio::test]
async fn a_push_is_json_signed_over_timestamp_and_body() {
    let endpoint = Endpoint::start(|_| Answer::empty(204)).await;
    let webhook = webhook(&format!("{}/hooks/duet-push", endpoint.url));
    let target = Target { token: "device-token-1".into(), app_id: Some("com.example.chat".into()) };
    let before = now();
    assert_eq!(webhook.send(&target, &notification()).await, Outcome::Sent);
    let after = now();

    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path(), "/hooks/duet-push");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let timestamp = r.header("x-duet-timestamp").unwrap();
    let seconds: u64 = timestamp.parse().unwrap();
    assert!((before..=after).contains(&seconds), "timestamp {seconds}");

    let signature = r.header("x-duet-signature").unwrap().strip_prefix("sha256=").expect("sha256=<hex>");
    assert_eq!(signature.len(), 64);
    assert!(signature.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "lowercase hex");
    let signature: Vec<u8> =
        (0..64).step_by(2).map(|i| u8::from_str_radix(&signature[i..i + 2], 16).unwrap()).collect();
    let mac = |key: &[u8], body: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    };
    mac(SECRET.as_bytes(), &r.body).verify_slice(&signature).expect("HMAC-SHA256 of <timestamp>.<body>");
    assert!(mac(b"another secret", &r.body).verify_slice(&signature).is_err());
    assert!(mac(SECRET.as_bytes(), b"{}").verify_slice(&signature).is_err());

    assert_eq!(
        r.json(),
        json!({
            "token": "device-token-1",
            "app_id": "com.example.chat",
            "title": "Alice",
            "body": "are you coming tonight?",
            "ext": r#"{"conv":"c2c_alice"}"#,
            "badge": 3,
            "from": "alice",
            "to": "bob",
            "msg_key": "1700000000_42_7",
            "apns": {
                "sound": "ping.caf", "subtitle": "", "image": "", "mutable_content": false, "voip": true,
                "interruption_level": "",
            },
            "android": {
                "sound": "", "huawei_channel_id": "", "huawei_category": "", "huawei_importance": "",
                "huawei_image": "", "honor_importance": "", "honor_image": "", "xiaomi_channel_id": "chat",
                "oppo_channel_id": "", "oppo_category": "", "oppo_notify_level": null, "google_channel_id": "",
                "google_image": "", "vivo_classification": 1, "vivo_category": "",
            },
        })
    );
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let endpoint = Endpoint::start(|r| match r.json()["token"].as_str().unwrap() {
        "ok" => Answer::empty(200),
        "gone" => Answer::json(410, json!({"error": "unknown token"})),
        "busy" => Answer {
            status: 503,
            headers: vec![("retry-after", "7".into())],
            body: String::new(),
            delay: std::time::Duration::ZERO,
        },
        "limited" => Answer::empty(429),
        "broken" => Answer {
            status: 500,
            headers: Vec::new(),
            body: "<html>oops</html>".into(),
            delay: std::time::Duration::ZERO,
        },
        "rejected" => Answer::json(400, json!({"error": "bad request"})),
        _ => Answer::empty(404),
    })
    .await;
    let webhook = webhook(&endpoint.url);
    let send = |token: &'static str| {
        let webhook = &webhook;
        async move { webhook.send(&Target { token: token.into(), app_id: None }, &notification()).await }
    };
    assert_eq!(send("ok").await, Outcome::Sent);
    assert!(matches!(send("gone").await, Outcome::InvalidToken { .. }));
    assert!(matches!(send("busy").await, Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)));
    assert!(matches!(send("limited").await, Outcome::Retry { after: None, .. }));
    assert!(matches!(send("broken").await, Outcome::Retry { .. }));
    assert!(matches!(send("rejected").await, Outcome::Failed { reason } if reason.contains("400")));
    // A wrong URL must not wipe the tokens: 404 is a failure, not an invalid token.
    assert!(matches!(send("unknown").await, Outcome::Failed { .. }));
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_retry() {
    let url = format!("{}/push", common::unreachable_url());
    let outcome = webhook(&url).send(&Target { token: "t".into(), app_id: None }, &notification()).await;
    assert!(matches!(outcome, Outcome::Retry { after: None, .. }), "{outcome:?}");
}

#[test]
fn the_config_is_checked() {
    let clients = Clients::new(None).unwrap();
    let no_secret = WebhookConfig { url: "https://gw.example/push".into(), secret: String::new() };
    assert_eq!(Webhook::new(&no_secret, &clients).err().unwrap().to_string(), "[push.webhook]: secret is empty");
    let not_http = WebhookConfig { url: "gw.example/push".into(), secret: SECRET.into() };
    assert!(Webhook::new(&not_http, &clients).err().unwrap().to_string().contains("url"));
    assert!(serde_json::from_value::<WebhookConfig>(json!({"url": "https://x", "secret": "s", "x": 1})).is_err());
}

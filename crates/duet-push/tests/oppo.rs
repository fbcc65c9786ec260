//! The OPPO provider against a local endpoint that plays both OPPO's auth call and its unicast API.

mod common;

use common::{NextAnswer, kind, notification, now_ms};
use duet_core::push::{Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::oppo::{Oppo, OppoConfig};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const AUTH_PATH: &str = "/server/v1/auth";
const SEND_PATH: &str = "/server/v1/message/notification/unicast";
const TOKEN: &str = "OPPO_CN_6f3a0b8d1c2e4f5a9b7c";
const APP_KEY: &str = "3f1a2b9c8d";
const MASTER_SECRET: &str = "9e8d7c6b5a4f3e2d1c0b";

fn config(endpoint: &Endpoint, extra: Value) -> OppoConfig {
    let base = json!({
        "app_key": APP_KEY,
        "master_secret": MASTER_SECRET,
        "url": format!("{}{SEND_PATH}", endpoint.url),
        "auth_url": format!("{}{AUTH_PATH}", endpoint.url),
    });
    common::config(base, extra)
}

fn provider(config: &OppoConfig) -> Oppo {
    Oppo::new(config, &Clients::new(None).unwrap()).unwrap()
}

fn target() -> Target {
    common::target(TOKEN)
}

/// An auth endpoint that hands out `AT-1`, `AT-2`, … (created now) and a send endpoint that answers
/// `send(request)`.
async fn start(send: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Endpoint {
    let issue = |token: &str| {
        let data = json!({"auth_token": token, "create_time": now_ms() as u64});
        Answer::json(200, json!({"code": 0, "message": "Success", "data": data}))
    };
    common::start_with_auth(AUTH_PATH, issue, send).await
}

fn ok() -> Answer {
    Answer::json(200, json!({"code": 0, "message": "Success", "data": {"message_id": "5f0e-1"}}))
}

#[tokio::test]
async fn sends_the_documented_request() {
    let endpoint = start(|_| ok()).await;
    let c = config(&endpoint, json!({"channel_id": "chat"}));
    let before = now_ms();

    assert_eq!(provider(&c).send(&target(), &notification()).await, Outcome::Sent);

    let auth = &endpoint.requests_to(AUTH_PATH)[0];
    assert_eq!(auth.method, "POST");
    assert_eq!(auth.header("content-type"), Some("application/x-www-form-urlencoded"));
    let names: Vec<String> = auth.form().into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["app_key", "timestamp", "sign"]);
    assert_eq!(auth.form_value("app_key").as_deref(), Some(APP_KEY));
    let timestamp = auth.form_value("timestamp").unwrap();
    let ms: u128 = timestamp.parse().expect("milliseconds");
    assert!(before <= ms && ms <= now_ms(), "{timestamp} is not now in milliseconds");
    // sha256(app_key + timestamp + master_secret), lowercase hex.
    let digest = Sha256::digest(format!("{APP_KEY}{timestamp}{MASTER_SECRET}").as_bytes());
    let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(auth.form_value("sign"), Some(expected));

    let sends = endpoint.requests_to(SEND_PATH);
    assert_eq!(sends.len(), 1);
    let send = &sends[0];
    assert_eq!(send.method, "POST");
    assert_eq!(send.header("auth_token"), Some("AT-1"));
    assert_eq!(send.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form = send.form();
    assert_eq!(form.len(), 1, "{form:?}");
    assert_eq!(form[0].0, "message");
    let mut message: Value = serde_json::from_str(&form[0].1).unwrap();
    let parameters = message["notification"]["action_parameters"].as_str().expect("a JSON string");
    let parameters: Value = serde_json::from_str(parameters).unwrap();
    assert_eq!(parameters, json!({"ext": r#"{"conv":"c2c_alice"}"#, "from": "alice", "msg_key": "1_2_3"}));
    message["notification"]["action_parameters"] = json!("…");
    assert_eq!(
        message,
        json!({
            "target_type": 2,
            "target_value": TOKEN,
            "notification": {
                "style": 1,
                "title": "Alice",
                "content": "See you at 8?",
                "click_action_type": 0,
                "action_parameters": "…",
                "channel_id": "chat",
                "category": "IM",
                "notify_level": 2,
                "off_line": true,
                "off_line_ttl": 86400,
            },
        })
    );
}

#[tokio::test]
async fn the_push_options_override_the_configuration_and_the_token_is_reused() {
    let endpoint = start(|_| ok()).await;
    let p = provider(&config(&endpoint, json!({"channel_id": "chat", "category": "IM", "notify_level": 2})));
    let mut n = notification();
    n.android.oppo_channel_id = "calls".into();
    n.android.oppo_category = "ACCOUNT".into();
    n.android.oppo_notify_level = Some(16);
    n.body = "x".repeat(250);
    assert_eq!(p.send(&target(), &n).await, Outcome::Sent);
    assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);

    assert_eq!(endpoint.requests_to(AUTH_PATH).len(), 1);
    let sends = endpoint.requests_to(SEND_PATH);
    let message: Value = serde_json::from_str(&sends[0].form_value("message").unwrap()).unwrap();
    let n = &message["notification"];
    assert_eq!(
        (&n["channel_id"], &n["category"], &n["notify_level"]),
        (&json!("calls"), &json!("ACCOUNT"), &json!(16))
    );
    assert_eq!(n["content"].as_str().unwrap().chars().count(), 200, "style 1 holds 200 characters");
    assert_eq!(sends[1].header("auth_token"), Some("AT-1"));
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let next = NextAnswer::default();
    let endpoint = start(next.responder()).await;
    let p = provider(&config(&endpoint, json!({})));
    let code = |code: i64, message: &str| json!({"code": code, "message": message}).to_string();
    let cases = [
        (200, code(0, "Success"), "sent"),
        (200, code(10000, "Invalid RegistrationId"), "invalid"),
        (200, code(10001, "Invalid RegistrationId"), "invalid"),
        (200, code(13, "Calls Too Frequent"), "retry"),
        (200, code(-1, "Service Currently Unavailable"), "retry"),
        (502, String::new(), "retry"),
        (200, "<html/>".into(), "retry"),
        (200, code(33, "The number of messages exceeds the daily limit"), "failed"),
        (200, code(14, "Invalid AppKey"), "failed"),
        (400, String::new(), "failed"),
    ];
    for (status, body, expected) in cases {
        next.set(status, &body);
        let outcome = p.send(&target(), &notification()).await;
        assert_eq!(kind(&outcome), expected, "HTTP {status} {body}: {outcome:?}");
    }
    assert_eq!(endpoint.requests_to(AUTH_PATH).len(), 1, "no answer above is an auth failure");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retry() {
    let url = common::unreachable_url();
    let c: OppoConfig = serde_json::from_value(json!({
        "app_key": "k", "master_secret": "s", "url": url, "auth_url": format!("{url}{AUTH_PATH}"),
    }))
    .unwrap();
    assert!(matches!(provider(&c).send(&target(), &notification()).await, Outcome::Retry { .. }));
}

#[tokio::test]
async fn an_invalid_auth_token_is_renewed_once_and_the_push_sent_again() {
    let endpoint = start(|r| {
        if r.header("auth_token") == Some("AT-1") {
            Answer::json(200, json!({"code": 11, "message": "Invalid AuthToken"}))
        } else {
            ok()
        }
    })
    .await;
    let p = provider(&config(&endpoint, json!({})));
    assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);
    assert_eq!(endpoint.requests_to(AUTH_PATH).len(), 2);
    let tokens: Vec<_> =
        endpoint.requests_to(SEND_PATH).iter().map(|r| r.header("auth_token").unwrap().to_owned()).collect();
    assert_eq!(tokens, ["AT-1", "AT-2"]);
}

#[tokio::test]
async fn an_auth_token_refused_after_renewal_fails_without_a_loop() {
    let endpoint = start(|_| Answer::json(200, json!({"code": 11, "message": "Invalid AuthToken"}))).await;
    let p = provider(&config(&endpoint, json!({})));
    assert!(matches!(p.send(&target(), &notification()).await, Outcome::Failed { .. }));
    assert_eq!(endpoint.requests_to(AUTH_PATH).len(), 2);
    assert_eq!(endpoint.requests_to(SEND_PATH).len(), 2);
}

#[tokio::test]
async fn a_refused_auth_call_fails_and_a_busy_one_retries() {
    let endpoint = Endpoint::start(|r| {
        if r.form_value("app_key").as_deref() == Some("wrong") {
            Answer::json(200, json!({"code": 14, "message": "Invalid AppKey"}))
        } else {
            Answer::json(200, json!({"code": 13, "message": "Calls Too Frequent"}))
        }
    })
    .await;
    let wrong = provider(&config(&endpoint, json!({"app_key": "wrong"})));
    assert!(matches!(wrong.send(&target(), &notification()).await, Outcome::Failed { .. }));
    let busy = provider(&config(&endpoint, json!({})));
    assert!(matches!(busy.send(&target(), &notification()).await, Outcome::Retry { .. }));
    assert!(endpoint.requests_to(SEND_PATH).is_empty(), "nothing is sent without a token");
}

#[tokio::test]
async fn the_configuration_is_checked() {
    let clients = Clients::new(None).unwrap();
    let base = json!({"app_key": "k", "master_secret": "topsecret"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        serde_json::from_value::<OppoConfig>(c).unwrap()
    };
    for (field, value) in [
        ("app_key", json!("")),
        ("master_secret", json!("")),
        ("channel_id", json!(" ")),
        ("notify_level", json!(0)),
        ("url", json!("nope")),
        ("auth_url", json!("ftp://x")),
    ] {
        let error = Oppo::new(&with(field, value), &clients).err().expect(field).to_string();
        assert!(error.starts_with("[push.oppo]: ") && error.contains(field), "{error}");
    }
    assert!(
        serde_json::from_value::<OppoConfig>(json!({"app_key": "k", "master_secret": "s", "app_secret": "s"})).is_err()
    );
    let c = with("category", json!("IM"));
    assert!(!format!("{c:?}").contains("topsecret"));
    assert_eq!((c.category.as_str(), c.notify_level, c.channel_id.as_deref()), ("IM", 2, None));
    assert_eq!(c.url, "https://api.push.oppomobile.com/server/v1/message/notification/unicast");
    assert_eq!(c.auth_url, "https://api.push.oppomobile.com/server/v1/auth");
}

//! The vivo provider against a local endpoint that plays both vivo's auth call and its send API.

mod common;

use common::{NextAnswer, kind, notification, now_ms};
use duet_core::push::{Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::vivo::{Vivo, VivoConfig};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use md5::{Digest, Md5};
use serde_json::{Value, json};

const AUTH_PATH: &str = "/message/auth";
const SEND_PATH: &str = "/message/send";
const TOKEN: &str = "16198876351234567890123";
const APP_ID: u64 = 10004;
const APP_KEY: &str = "25509283-3767-4b9e-83fe-b6e55ac6243e";
const APP_SECRET: &str = "21dd8d0c-0a7f-4d8e-bd6a-9e3f2b2c1a00";

fn config(endpoint: &Endpoint, extra: Value) -> VivoConfig {
    let base = json!({
        "app_id": APP_ID,
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "url": format!("{}{SEND_PATH}", endpoint.url),
        "auth_url": format!("{}{AUTH_PATH}", endpoint.url),
    });
    common::config(base, extra)
}

fn provider(config: &VivoConfig) -> Vivo {
    Vivo::new(config, &Clients::new(None).unwrap()).unwrap()
}

fn target() -> Target {
    common::target(TOKEN)
}

/// An auth endpoint that hands out `AT-1`, `AT-2`, … and a send endpoint that answers `send(request)`.
async fn start(send: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Endpoint {
    let issue = |token: &str| Answer::json(200, json!({"result": 0, "desc": "请求成功", "authToken": token}));
    common::start_with_auth(AUTH_PATH, issue, send).await
}

fn ok() -> Answer {
    Answer::json(200, json!({"result": 0, "desc": "请求成功", "taskId": "7"}))
}

#[tokio::test]
async fn sends_the_documented_request() {
    let endpoint = start(|_| ok()).await;
    let c = config(&endpoint, json!({"category": "IM"}));
    let before = now_ms();

    assert_eq!(provider(&c).send(&target(), &notification()).await, Outcome::Sent);

    let auth = &endpoint.requests_to(AUTH_PATH)[0];
    assert_eq!(auth.method, "POST");
    assert_eq!(auth.header("content-type"), Some("application/json"));
    let body = auth.json();
    let timestamp = body["timestamp"].as_u64().expect("timestamp is a number") as u128;
    assert!(before <= timestamp && timestamp <= now_ms(), "{timestamp} is not now in milliseconds");
    // md5(appId + appKey + timestamp + appSecret), lowercase hex.
    let digest = Md5::digest(format!("{APP_ID}{APP_KEY}{timestamp}{APP_SECRET}").as_bytes());
    let sign: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(body, json!({"appId": APP_ID, "appKey": APP_KEY, "timestamp": timestamp as u64, "sign": sign}));

    let sends = endpoint.requests_to(SEND_PATH);
    assert_eq!(sends.len(), 1);
    let send = &sends[0];
    assert_eq!(send.method, "POST");
    assert_eq!(send.header("authToken"), Some("AT-1"));
    assert_eq!(send.header("content-type"), Some("application/json"));
    let mut body = send.json();
    let request_id = body["requestId"].as_str().expect("a requestId").to_owned();
    assert!(!request_id.is_empty() && request_id.len() <= 64, "{request_id}");
    body["requestId"] = json!("…");
    assert_eq!(
        body,
        json!({
            "appId": APP_ID,
            "regId": TOKEN,
            "notifyType": 4,
            "title": "Alice",
            "content": "See you at 8?",
            "timeToLive": 86400,
            "skipType": 1,
            "classification": 1,
            "category": "IM",
            "clientCustomMap": {"ext": r#"{"conv":"c2c_alice"}"#, "from": "alice", "msg_key": "1_2_3"},
            "requestId": "…",
            "pushMode": 0,
        })
    );
}

#[tokio::test]
async fn the_push_options_override_the_configuration_and_each_request_has_its_own_id() {
    let endpoint = start(|_| ok()).await;
    let p = provider(&config(&endpoint, json!({"category": "IM", "classification": 1, "push_mode": 1})));
    let mut n = notification();
    n.android.vivo_classification = Some(0);
    n.android.vivo_category = "MARKETING".into();
    n.title = "标题".repeat(11);
    assert_eq!(p.send(&target(), &n).await, Outcome::Sent);
    assert_eq!(p.send(&target(), &n).await, Outcome::Sent);

    assert_eq!(endpoint.requests_to(AUTH_PATH).len(), 1, "the auth token is reused");
    let bodies: Vec<Value> = endpoint.requests_to(SEND_PATH).iter().map(Recorded::json).collect();
    assert_eq!((&bodies[0]["classification"], &bodies[0]["category"]), (&json!(0), &json!("MARKETING")));
    assert_eq!(bodies[0]["pushMode"], 1);
    // 20 CJK characters at most: 19 and an ellipsis.
    assert_eq!(bodies[0]["title"], format!("{}标…", "标题".repeat(9)));
    assert_ne!(bodies[0]["requestId"], bodies[1]["requestId"]);
}

#[tokio::test]
async fn a_target_of_another_app_is_not_sent() {
    let endpoint = start(|_| ok()).await;
    let p = provider(&config(&endpoint, json!({})));
    let other = Target { token: TOKEN.into(), app_id: Some("10005".into()) };
    assert!(matches!(p.send(&other, &notification()).await, Outcome::Failed { .. }));
    assert!(endpoint.requests().is_empty());
    let same = Target { token: TOKEN.into(), app_id: Some(APP_ID.to_string()) };
    assert_eq!(p.send(&same, &notification()).await, Outcome::Sent);
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let next = NextAnswer::default();
    let endpoint = start(next.responder()).await;
    let p = provider(&config(&endpoint, json!({})));
    let result = |result: i64| json!({"result": result, "desc": "d"}).to_string();
    let invalid_user = |status: Value| {
        json!({"result": 0, "desc": "请求成功", "taskId": "7", "invalidUser": {"userid": TOKEN, "status": status}})
            .to_string()
    };
    let cases = [
        (200, result(0), "sent"),
        (200, invalid_user(json!(1)), "invalid"),
        (200, invalid_user(json!(2)), "invalid"),
        (200, invalid_user(json!("3")), "invalid"),
        (200, invalid_user(json!(4)), "failed"),
        (200, result(10302), "invalid"),
        (200, result(10072), "retry"),
        (503, String::new(), "retry"),
        (200, "{".into(), "retry"),
        (200, result(10070), "failed"),
        (200, result(10094), "failed"),
        (404, String::new(), "failed"),
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
    let c: VivoConfig = serde_json::from_value(json!({
        "app_id": 1, "app_key": "k", "app_secret": "s", "url": url, "auth_url": format!("{url}{AUTH_PATH}"),
    }))
    .unwrap();
    assert!(matches!(provider(&c).send(&target(), &notification()).await, Outcome::Retry { .. }));
}

#[tokio::test]
async fn a_failed_authentication_renews_the_token_once_and_sends_again() {
    let endpoint = start(|r| {
        if r.header("authToken") == Some("AT-1") {
            Answer::json(200, json!({"result": 10000, "desc": "权限认证失败"}))
        } else {
            ok()
        }
    })
    .await;
    let p = provider(&config(&endpoint, json!({})));
    assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);
    assert_eq!(endpoint.requests_to(AUTH_PATH).len(), 2);
    let tokens: Vec<_> =
        endpoint.requests_to(SEND_PATH).iter().map(|r| r.header("authToken").unwrap().to_owned()).collect();
    assert_eq!(tokens, ["AT-1", "AT-2"]);
}

#[tokio::test]
async fn an_auth_token_refused_after_renewal_fails_without_a_loop() {
    let endpoint = start(|_| Answer::json(200, json!({"result": 10000, "desc": "权限认证失败"}))).await;
    let p = provider(&config(&endpoint, json!({})));
    assert!(matches!(p.send(&target(), &notification()).await, Outcome::Failed { .. }));
    assert_eq!(endpoint.requests_to(AUTH_PATH).len(), 2);
    assert_eq!(endpoint.requests_to(SEND_PATH).len(), 2);
}

#[tokio::test]
async fn a_refused_auth_call_fails() {
    let endpoint = Endpoint::start(|_| Answer::json(200, json!({"result": 10201, "desc": "appKey不能为空"}))).await;
    let p = provider(&config(&endpoint, json!({})));
    assert!(matches!(p.send(&target(), &notification()).await, Outcome::Failed { .. }));
    assert!(endpoint.requests_to(SEND_PATH).is_empty());
}

#[tokio::test]
async fn the_configuration_is_checked() {
    let clients = Clients::new(None).unwrap();
    let base = json!({"app_id": 1, "app_key": "k", "app_secret": "topsecret"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        serde_json::from_value::<VivoConfig>(c).unwrap()
    };
    for (field, value) in [
        ("app_id", json!(0)),
        ("app_key", json!("")),
        ("app_secret", json!("")),
        ("classification", json!(2)),
        ("push_mode", json!(3)),
        ("category", json!("")),
        ("url", json!("x")),
        ("auth_url", json!("file:///etc/passwd")),
    ] {
        let error = Vivo::new(&with(field, value), &clients).err().expect(field).to_string();
        assert!(error.starts_with("[push.vivo]: ") && error.contains(field), "{error}");
    }
    let unknown = json!({"app_id": 1, "app_key": "k", "app_secret": "s", "master_secret": "s"});
    assert!(serde_json::from_value::<VivoConfig>(unknown).is_err());
    assert!(serde_json::from_value::<VivoConfig>(json!({"app_id": "1", "app_key": "k", "app_secret": "s"})).is_err());
    let c = with("push_mode", json!(0));
    assert!(!format!("{c:?}").contains("topsecret"));
    assert_eq!((c.classification, c.category.as_deref(), c.push_mode), (1, None, 0));
    assert_eq!(c.url, "https://api-push.vivo.com.cn/message/send");
    assert_eq!(c.auth_url, "https://api-push.vivo.com.cn/message/auth");
}

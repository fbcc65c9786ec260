//! The Honor provider against a local endpoint that plays both Honor's IAM token server and Honor Push.

mod common;

use common::{NextAnswer, kind, now_ms};
use duet_core::push::{Notification, Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::honor::{Honor, HonorConfig};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use serde_json::{Value, json};

const TOKEN_PATH: &str = "/auth/token";
const SEND_PATH: &str = "/api/v1/104400000/sendMessage";
const TOKEN: &str = "BQAAAADq9oK7AAAByWx2c2cQk3d1oZs9lfXy";

fn config(endpoint: &Endpoint, extra: Value) -> HonorConfig {
    let base = json!({
        "app_id": "104400000",
        "client_id": "honor-client",
        "client_secret": "s3cr+t/with=",
        "url": endpoint.url,
        "token_url": format!("{}{TOKEN_PATH}", endpoint.url),
    });
    common::config(base, extra)
}

fn provider(config: &HonorConfig) -> Honor {
    Honor::new(config, &Clients::new(None).unwrap()).unwrap()
}

fn target() -> Target {
    common::target(TOKEN)
}

/// The shared push with a badge over Honor's 99.
fn notification() -> Notification {
    Notification { badge: Some(120), ..common::notification() }
}

/// A token endpoint that hands out `AT-1`, `AT-2`, … and a send endpoint that answers `send(request)`.
async fn start(send: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Endpoint {
    let issue =
        |token: &str| Answer::json(200, json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}));
    common::start_with_auth(TOKEN_PATH, issue, send).await
}

fn ok() -> Answer {
    Answer::json(200, json!({"code": 200, "message": "success", "data": {"sendResult": true, "requestId": "r1"}}))
}

#[tokio::test]
async fn sends_the_documented_request() {
    let endpoint = start(|_| ok()).await;
    let c = config(&endpoint, json!({"badge_class": "com.example.MainActivity"}));
    let mut n = notification();
    n.android.honor_importance = "LOW".into();
    n.android.honor_image = "https://img/x.png".into();
    let before = now_ms();

    assert_eq!(provider(&c).send(&target(), &n).await, Outcome::Sent);

    let token = &endpoint.requests_to(TOKEN_PATH)[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.header("content-type"), Some("application/x-www-form-urlencoded"));
    let expected =
        [("grant_type", "client_credentials"), ("client_id", "honor-client"), ("client_secret", "s3cr+t/with=")];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(token.form(), expected);

    let sends = endpoint.requests_to(SEND_PATH);
    assert_eq!(sends.len(), 1);
    let send = &sends[0];
    assert_eq!(send.method, "POST");
    assert_eq!(send.header("authorization"), Some("Bearer AT-1"));
    assert_eq!(send.header("content-type"), Some("application/json"));
    let timestamp: u128 = send.header("timestamp").expect("a timestamp header").parse().expect("milliseconds");
    assert!(before <= timestamp && timestamp <= now_ms(), "{timestamp} is not now in milliseconds");
    let mut body = send.json();
    let data: Value = serde_json::from_str(body["data"].as_str().expect("data is a string")).unwrap();
    assert_eq!(data, json!({"ext": r#"{"conv":"c2c_alice"}"#, "from": "alice", "msg_key": "1_2_3"}));
    body["data"] = json!("…");
    assert_eq!(
        body,
        json!({
            "data": "…",
            "notification": {"title": "Alice", "body": "See you at 8?"},
            "android": {
                "ttl": "86400s",
                "targetUserType": 0,
                "notification": {
                    "title": "Alice",
                    "body": "See you at 8?",
                    "importance": "LOW",
                    "image": "https://img/x.png",
                    "clickAction": {"type": 3},
                    "badge": {"setNum": 99, "badgeClass": "com.example.MainActivity"},
                },
            },
            "token": [TOKEN],
        })
    );
}

#[tokio::test]
async fn the_target_names_the_app_and_no_badge_class_means_no_badge() {
    let endpoint = start(|_| ok()).await;
    let p = provider(&config(&endpoint, json!({})));
    let t = Target { token: TOKEN.into(), app_id: Some("104499999".into()) };
    assert_eq!(p.send(&t, &notification()).await, Outcome::Sent);
    let send = &endpoint.requests_to("/api/v1/104499999/sendMessage")[0];
    let n = &send.json()["android"]["notification"];
    assert!(n.get("badge").is_none());
    assert_eq!(n["importance"], "NORMAL");
    assert!(n.get("image").is_none());
    // The token is reused for the next push.
    assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);
    assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 1);
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let next = NextAnswer::default();
    let endpoint = start(next.responder()).await;
    let p = provider(&config(&endpoint, json!({})));
    let with_data = |code: Value, data: Value| json!({"code": code, "message": "m", "data": data}).to_string();
    let cases = [
        (200, with_data(json!(200), json!({"sendResult": true, "failTokens": [], "expireTokens": []})), "sent"),
        (200, with_data(json!(80000000), json!({})), "sent"),
        (200, with_data(json!("0"), Value::Null), "sent"),
        (200, with_data(json!(200), json!({"sendResult": false, "failTokens": [TOKEN]})), "invalid"),
        (200, with_data(json!(200), json!({"sendResult": false, "expireTokens": [TOKEN]})), "invalid"),
        (200, with_data(json!(80300007), Value::Null), "invalid"),
        (200, with_data(json!(200), json!({"failTokens": ["another"]})), "sent"),
        (503, String::new(), "retry"),
        (500, "<html/>".into(), "retry"),
        (200, with_data(json!(503), Value::Null), "retry"),
        (200, "not json".into(), "retry"),
        (400, with_data(json!(80100003), Value::Null), "failed"),
        (404, String::new(), "failed"),
    ];
    for (status, body, expected) in cases {
        next.set(status, &body);
        let outcome = p.send(&target(), &notification()).await;
        assert_eq!(kind(&outcome), expected, "HTTP {status} {body}: {outcome:?}");
    }
    assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 1, "no answer above is an auth failure");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retry() {
    let url = common::unreachable_url();
    let c: HonorConfig = serde_json::from_value(json!({
        "app_id": "1", "client_id": "c", "client_secret": "s", "url": url, "token_url": format!("{url}{TOKEN_PATH}"),
    }))
    .unwrap();
    assert!(matches!(provider(&c).send(&target(), &notification()).await, Outcome::Retry { .. }));
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_once_and_the_push_sent_again() {
    let refusals: [fn() -> Answer; 3] = [
        || Answer::json(200, json!({"code": 80200003, "message": "token expired"})),
        || Answer::json(200, json!({"code": 80200001, "message": "oauth authentication error"})),
        || Answer::empty(401),
    ];
    for refusal in refusals {
        let endpoint =
            start(move |r| if r.header("authorization") == Some("Bearer AT-1") { refusal() } else { ok() }).await;
        let p = provider(&config(&endpoint, json!({})));
        assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);
        assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 2);
        let auth: Vec<_> =
            endpoint.requests_to(SEND_PATH).iter().map(|r| r.header("authorization").unwrap().to_owned()).collect();
        assert_eq!(auth, ["Bearer AT-1", "Bearer AT-2"]);
    }
}

#[tokio::test]
async fn a_token_refused_after_renewal_fails_without_a_loop() {
    let endpoint = start(|_| Answer::empty(401)).await;
    let p = provider(&config(&endpoint, json!({})));
    assert!(matches!(p.send(&target(), &notification()).await, Outcome::Failed { .. }));
    assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 2);
    assert_eq!(endpoint.requests_to(SEND_PATH).len(), 2);
}

#[tokio::test]
async fn a_refused_token_request_fails() {
    let endpoint = Endpoint::start(|_| Answer::json(401, json!({"error": "invalid_client"}))).await;
    let p = provider(&config(&endpoint, json!({})));
    assert!(matches!(p.send(&target(), &notification()).await, Outcome::Failed { .. }));
    assert!(endpoint.requests_to(SEND_PATH).is_empty());
}

#[tokio::test]
async fn the_configuration_is_checked() {
    let clients = Clients::new(None).unwrap();
    let base = json!({"app_id": "1", "client_id": "c", "client_secret": "topsecret"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        serde_json::from_value::<HonorConfig>(c).unwrap()
    };
    for (field, value) in [
        ("app_id", json!("")),
        ("client_id", json!(" ")),
        ("client_secret", json!("")),
        ("importance", json!("HIGH")),
        ("badge_class", json!("")),
        ("url", json!("push.example")),
        ("token_url", json!("mailto:x@y")),
    ] {
        let error = Honor::new(&with(field, value), &clients).err().expect(field).to_string();
        assert!(error.starts_with("[push.honor]: ") && error.contains(field), "{error}");
    }
    assert!(
        serde_json::from_value::<HonorConfig>(
            json!({"app_id": "1", "client_id": "c", "client_secret": "s", "app_secret": "s"})
        )
        .is_err()
    );
    let c = with("badge_class", json!("com.example.Main"));
    assert!(!format!("{c:?}").contains("topsecret"));
    assert_eq!(c.url, "https://push-api.cloud.honor.com");
    assert_eq!(c.token_url, "https://iam.developer.honor.com/auth/token");
}

//! The Huawei provider against a local endpoint that plays both the OAuth server and Push Kit.

mod common;

use common::{NextAnswer, kind, notification};
use duet_core::push::{AndroidOptions, Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::huawei::{Huawei, HuaweiConfig};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use serde_json::{Value, json};

const TOKEN_PATH: &str = "/oauth2/v3/token";
const TOKEN: &str = "IQAAAACy0kYnAADG1GQ2dJpeTcRpeNl4sVn0tY8Z";

fn config(endpoint: &Endpoint, extra: Value) -> HuaweiConfig {
    let base = json!({
        "app_id": "101234567",
        "client_secret": "s3cr+t/with=",
        "url": endpoint.url,
        "token_url": format!("{}{TOKEN_PATH}", endpoint.url),
    });
    common::config(base, extra)
}

fn provider(config: &HuaweiConfig) -> Huawei {
    Huawei::new(config, &Clients::new(None).unwrap()).unwrap()
}

fn target() -> Target {
    common::target(TOKEN)
}

/// A token endpoint that hands out `AT-1`, `AT-2`, … and a send endpoint that answers `send(request)`.
async fn start(send: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Endpoint {
    let issue =
        |token: &str| Answer::json(200, json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}));
    common::start_with_auth(TOKEN_PATH, issue, send).await
}

fn ok() -> Answer {
    Answer::json(200, json!({"code": "80000000", "msg": "Success", "requestId": "15"}))
}

#[tokio::test]
async fn sends_the_documented_request() {
    let endpoint = start(|_| ok()).await;
    let c = config(&endpoint, json!({"badge_class": "com.example.MainActivity", "channel_id": "chat"}));
    let mut n = notification();
    n.android =
        AndroidOptions { huawei_importance: "LOW".into(), huawei_image: "https://img/x.png".into(), ..n.android };

    assert_eq!(provider(&c).send(&target(), &n).await, Outcome::Sent);

    let token = &endpoint.requests_to(TOKEN_PATH)[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.header("content-type"), Some("application/x-www-form-urlencoded"));
    let expected =
        [("grant_type", "client_credentials"), ("client_id", "101234567"), ("client_secret", "s3cr+t/with=")];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(token.form(), expected);
    assert!(std::str::from_utf8(&token.body).unwrap().contains("client_secret=s3cr%2Bt%2Fwith%3D"));

    let sends = endpoint.requests_to("/v1/101234567/messages:send");
    assert_eq!(sends.len(), 1);
    let send = &sends[0];
    assert_eq!(send.method, "POST");
    assert_eq!(send.header("authorization"), Some("Bearer AT-1"));
    assert_eq!(send.header("content-type"), Some("application/json; charset=UTF-8"));
    let body = send.json();
    let data: Value = serde_json::from_str(body["message"]["data"].as_str().expect("data is a string")).unwrap();
    assert_eq!(data, json!({"ext": r#"{"conv":"c2c_alice"}"#, "from": "alice", "msg_key": "1_2_3"}));
    let mut body = body;
    body["message"]["data"] = json!("…");
    assert_eq!(
        body,
        json!({
            "validate_only": false,
            "message": {
                "data": "…",
                "android": {
                    "urgency": "HIGH",
                    "category": "IM",
                    "ttl": "86400s",
                    "notification": {
                        "title": "Alice",
                        "body": "See you at 8?",
                        "importance": "LOW",
                        "channel_id": "chat",
                        "image": "https://img/x.png",
                        "click_action": {"type": 3},
                        "badge": {"set_num": 3, "class": "com.example.MainActivity"},
                    },
                },
                "token": [TOKEN],
            },
        })
    );
}

#[tokio::test]
async fn the_push_options_override_the_configuration_and_the_target_names_the_app() {
    let endpoint = start(|_| ok()).await;
    let c = config(&endpoint, json!({"client_id": "oauth-client", "channel_id": "chat", "category": "VOIP"}));
    let mut n = notification();
    n.badge = None;
    n.android.huawei_channel_id = "calls".into();
    n.android.huawei_category = "IM".into();
    let t = Target { token: TOKEN.into(), app_id: Some("109999999".into()) };

    assert_eq!(provider(&c).send(&t, &n).await, Outcome::Sent);

    assert_eq!(endpoint.requests_to(TOKEN_PATH)[0].form_value("client_id").as_deref(), Some("oauth-client"));
    let send = &endpoint.requests_to("/v1/109999999/messages:send")[0];
    let android = &send.json()["message"]["android"];
    assert_eq!(android["category"], "IM");
    assert_eq!(android["notification"]["channel_id"], "calls");
    assert_eq!(android["notification"]["importance"], "NORMAL");
    // No badge asked for, and none without a configured badge class either.
    assert!(android["notification"].get("badge").is_none());
}

#[tokio::test]
async fn the_access_token_is_fetched_once_and_reused() {
    let endpoint = start(|_| ok()).await;
    let p = provider(&config(&endpoint, json!({})));
    assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);
    assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);
    assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 1);
    let sends = endpoint.requests_to("/v1/101234567/messages:send");
    assert!(sends.iter().all(|r| r.header("authorization") == Some("Bearer AT-1")));
    assert_eq!(sends.len(), 2);
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let next = NextAnswer::default();
    let endpoint = start(next.responder()).await;
    let p = provider(&config(&endpoint, json!({})));
    let partial = json!({"success": 0, "failure": 1, "illegal_tokens": [TOKEN]}).to_string();
    let other = json!({"success": 1, "failure": 1, "illegal_tokens": ["another"]}).to_string();
    let cases = [
        (200, json!({"code": "80000000", "msg": "Success"}).to_string(), "sent"),
        (503, json!({"code": "80000000"}).to_string(), "retry"),
        (502, String::new(), "retry"),
        (500, "<html>oops</html>".into(), "retry"),
        (200, "not json".into(), "retry"),
        (200, json!({"code": "81000001", "msg": "internal error"}).to_string(), "retry"),
        (200, json!({"code": "80300007", "msg": "all the tokens are invalid"}).to_string(), "invalid"),
        (400, json!({"code": "80300007", "msg": "all the tokens are invalid"}).to_string(), "invalid"),
        (200, json!({"code": "80100000", "msg": partial}).to_string(), "invalid"),
        (200, json!({"code": "80100000", "msg": other}).to_string(), "sent"),
        (400, json!({"code": "80100003", "msg": "bad message"}).to_string(), "failed"),
        (200, json!({"code": "80300002", "msg": "no permission"}).to_string(), "failed"),
        (200, json!({"code": 80000000}).to_string(), "sent"),
        (404, String::new(), "failed"),
    ];
    for (status, body, expected) in cases {
        next.set(status, &body);
        let outcome = p.send(&target(), &notification()).await;
        assert_eq!(kind(&outcome), expected, "HTTP {status} {body}: {outcome:?}");
        assert!(!format!("{outcome:?}").contains(TOKEN), "the reason holds the whole token: {outcome:?}");
    }
    assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 1, "no answer above is an auth failure");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retry() {
    let url = common::unreachable_url();
    let c: HuaweiConfig = serde_json::from_value(json!({
        "app_id": "1", "client_secret": "s", "url": url, "token_url": format!("{url}{TOKEN_PATH}"),
    }))
    .unwrap();
    assert!(matches!(provider(&c).send(&target(), &notification()).await, Outcome::Retry { .. }));
}

/// An endpoint whose send refuses `AT-1` with `refusal` and accepts any other token.
async fn refusing_the_first_token(refusal: fn() -> Answer) -> Endpoint {
    start(move |r| if r.header("authorization") == Some("Bearer AT-1") { refusal() } else { ok() }).await
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_once_and_the_push_sent_again() {
    let refusals: [fn() -> Answer; 3] = [
        || Answer::json(200, json!({"code": "80200003", "msg": "oauth token expired"})),
        || Answer::json(401, json!({"code": "80200001", "msg": "oauth authentication error"})),
        || Answer::empty(401),
    ];
    for refusal in refusals {
        let endpoint = refusing_the_first_token(refusal).await;
        let p = provider(&config(&endpoint, json!({})));
        assert_eq!(p.send(&target(), &notification()).await, Outcome::Sent);
        assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 2);
        let sends = endpoint.requests_to("/v1/101234567/messages:send");
        let auth: Vec<_> = sends.iter().map(|r| r.header("authorization").unwrap().to_owned()).collect();
        assert_eq!(auth, ["Bearer AT-1", "Bearer AT-2"]);
    }
}

#[tokio::test]
async fn a_token_refused_after_renewal_fails_without_a_loop() {
    let endpoint = start(|_| Answer::json(200, json!({"code": "80200003", "msg": "oauth token expired"}))).await;
    let p = provider(&config(&endpoint, json!({})));
    assert!(matches!(p.send(&target(), &notification()).await, Outcome::Failed { .. }));
    assert_eq!(endpoint.requests_to(TOKEN_PATH).len(), 2);
    assert_eq!(endpoint.requests_to("/v1/101234567/messages:send").len(), 2);
}

#[tokio::test]
async fn a_refused_token_request_fails_and_a_busy_one_retries() {
    let endpoint = Endpoint::start(|r| {
        if r.form_value("client_secret").as_deref() == Some("wrong") {
            Answer::json(400, json!({"error": 1101, "error_description": "invalid client secret"}))
        } else {
            Answer::empty(503)
        }
    })
    .await;
    let wrong = provider(&config(&endpoint, json!({"client_secret": "wrong"})));
    assert!(matches!(wrong.send(&target(), &notification()).await, Outcome::Failed { .. }));
    let busy = provider(&config(&endpoint, json!({})));
    assert!(matches!(busy.send(&target(), &notification()).await, Outcome::Retry { .. }));
    assert!(endpoint.requests().iter().all(|r| r.path() == TOKEN_PATH), "nothing is sent without a token");
}

#[tokio::test]
async fn the_configuration_is_checked() {
    let clients = Clients::new(None).unwrap();
    let base = json!({"app_id": "1", "client_secret": "topsecret"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        serde_json::from_value::<HuaweiConfig>(c).unwrap()
    };
    for (field, value) in [
        ("client_secret", json!("")),
        ("app_id", json!(" ")),
        ("client_id", json!("")),
        ("importance", json!("URGENT")),
        ("badge_class", json!("")),
        ("url", json!("ftp://push")),
        ("token_url", json!("not a url")),
    ] {
        let error = Huawei::new(&with(field, value), &clients).err().expect(field).to_string();
        assert!(error.starts_with("[push.huawei]: ") && error.contains(field), "{error}");
    }
    assert!(
        serde_json::from_value::<HuaweiConfig>(json!({"app_id": "1", "client_secret": "s", "app_secret": "s"}))
            .is_err()
    );
    assert!(!format!("{:?}", with("client_id", json!("c"))).contains("topsecret"));
    let defaults = with("client_id", json!("c"));
    assert_eq!(defaults.url, "https://push-api.cloud.huawei.com");
    assert_eq!(defaults.token_url, "https://oauth-login.cloud.huawei.com/oauth2/v3/token");
}

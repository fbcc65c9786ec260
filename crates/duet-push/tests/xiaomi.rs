//! Xiaomi against a local endpoint: the form and the `Authorization: key=` header its API documents, and
//! each answer code mapped to its outcome.

mod common;

use std::time::Duration;

use axum::http::Method;
use common::target;
use duet_core::push::{AndroidOptions, Notification, Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::xiaomi::{Xiaomi, XiaomiConfig};
use duet_test_support::endpoint::{Answer, Endpoint};
use serde_json::json;

const SECRET: &str = "xiaomi-app-secret==";
const PATH: &str = "/v3/message/regid";

fn config(url: &str) -> XiaomiConfig {
    XiaomiConfig {
        app_secret: SECRET.into(),
        package_name: "com.example.chat".into(),
        channel_id: Some("high_system".into()),
        url: Some(url.into()),
    }
}

fn xiaomi(url: &str) -> Xiaomi {
    Xiaomi::new(&config(url), &Clients::new(None).unwrap()).unwrap()
}

fn notification() -> Notification {
    Notification { body: "are you coming tonight?".into(), msg_key: "1700000000_42_7".into(), ..common::notification() }
}

fn ok() -> Answer {
    Answer::json(
        200,
        json!({"result": "ok", "trace_id": "Xcm1", "code": 0, "data": {"id": "scm01b"}, "description": "成功", "info": "Received push messages for 1 REGID"}),
    )
}

fn code(code: i64, description: &str) -> Answer {
    Answer::json(
        200,
        json!({"result": "error", "trace_id": "Xcm2", "code": code, "description": description, "reason": description}),
    )
}

#[tokio::test]
async fn a_push_is_a_form_with_the_app_secret_in_the_header() {
    let endpoint = Endpoint::start(|_| ok()).await;
    let xiaomi = xiaomi(&endpoint.url);
    assert_eq!(xiaomi.send(&target("regid-1"), &notification()).await, Outcome::Sent);

    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path(), PATH);
    assert_eq!(r.header("authorization"), Some("key=xiaomi-app-secret=="));
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded;charset=UTF-8"));
    let mut form = r.form();
    form.sort();
    let mut expected: Vec<(String, String)> = [
        ("registration_id", "regid-1"),
        ("restricted_package_name", "com.example.chat"),
        ("title", "Alice"),
        ("description", "are you coming tonight?"),
        ("payload", r#"{"conv":"c2c_alice"}"#),
        ("notify_type", "-1"),
        ("pass_through", "0"),
        ("extra.notify_effect", "1"),
        ("extra.channel_id", "high_system"),
        ("extra.from", "alice"),
        ("extra.msg_key", "1700000000_42_7"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    expected.sort();
    assert_eq!(form, expected);
}

#[tokio::test]
async fn the_target_and_notification_override_package_and_channel() {
    let endpoint = Endpoint::start(|_| ok()).await;
    let xiaomi = xiaomi(&endpoint.url);
    let mut n = notification();
    n.android = AndroidOptions { xiaomi_channel_id: "chat_private".into(), ..AndroidOptions::default() };
    n.title = "长".repeat(60);
    let target = Target { token: "regid-1".into(), app_id: Some("com.example.lite".into()) };
    assert_eq!(xiaomi.send(&target, &n).await, Outcome::Sent);
    let r = &endpoint.requests()[0];
    assert_eq!(r.form_value("restricted_package_name").as_deref(), Some("com.example.lite"));
    assert_eq!(r.form_value("extra.channel_id").as_deref(), Some("chat_private"));
    let title = r.form_value("title").unwrap();
    assert!(title.chars().count() < 50, "Xiaomi wants a title under 50 characters: {title}");
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let endpoint = Endpoint::start(|r| match r.form_value("registration_id").unwrap().as_str() {
        "ok" => ok(),
        "listed-bad" => Answer::json(
            200,
            json!({"result": "ok", "code": 0, "data": {"id": "scm01b", "bad_regids": "listed-bad"}, "description": "成功"}),
        ),
        "none-valid" => code(20301, "No valid targets!"),
        "busy" => code(10002, "system busy"),
        "too-often" => code(10027, "API called too often"),
        "down" => Answer { status: 503, headers: vec![("retry-after", "60".into())], body: String::new(), delay: std::time::Duration::ZERO },
        "quota" => code(10034, "too many messages today"),
        "auth" => code(21301, "authentication failed"),
        "html" => Answer { status: 200, headers: Vec::new(), body: "<html>maintenance</html>".into(), delay: std::time::Duration::ZERO },
        _ => code(99999, "something else"),
    })
    .await;
    let xiaomi = xiaomi(&endpoint.url);
    let send = |token: &'static str| {
        let xiaomi = &xiaomi;
        async move { xiaomi.send(&target(token), &notification()).await }
    };
    assert_eq!(send("ok").await, Outcome::Sent);
    assert!(matches!(send("listed-bad").await, Outcome::InvalidToken { .. }));
    assert!(matches!(send("none-valid").await, Outcome::InvalidToken { reason } if reason.contains("20301")));
    assert!(matches!(send("busy").await, Outcome::Retry { .. }));
    assert!(matches!(send("too-often").await, Outcome::Retry { .. }));
    assert!(matches!(send("down").await, Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(60)));
    assert!(matches!(send("quota").await, Outcome::Failed { reason } if reason.contains("10034")));
    assert!(matches!(send("auth").await, Outcome::Failed { reason } if reason.contains("app_secret")));
    assert!(matches!(send("html").await, Outcome::Failed { .. }));
    assert!(matches!(send("other").await, Outcome::Failed { reason } if reason.contains("99999")));
}

#[test]
fn the_config_is_checked() {
    let clients = Clients::new(None).unwrap();
    let mut no_secret = config("http://127.0.0.1:1");
    no_secret.app_secret = " ".into();
    assert_eq!(Xiaomi::new(&no_secret, &clients).err().unwrap().to_string(), "[push.xiaomi]: app_secret is empty");
    let defaults: XiaomiConfig =
        serde_json::from_value(json!({"app_secret": "s", "package_name": "com.example.chat"})).unwrap();
    assert_eq!(defaults.channel_id, None);
    assert_eq!(defaults.url, None);
    assert!(
        serde_json::from_value::<XiaomiConfig>(json!({"app_secret": "s", "package_name": "p", "channel": "c"}))
            .is_err()
    );
}

//! The Meizu provider against a local endpoint that plays Meizu's pushByPushId API. Meizu has no token
//! call: every request is signed.

mod common;

use common::{NextAnswer, kind};
use duet_core::push::{Notification, Outcome, Provider, Target};
use duet_push::Clients;
use duet_push::meizu::{Meizu, MeizuConfig};
use duet_test_support::endpoint::{Answer, Endpoint};
use md5::{Digest, Md5};
use serde_json::{Value, json};

const PATH: &str = "/garcia/api/server/push/varnished/pushByPushId";
const TOKEN: &str = "ULY6c596e6b7f4a4d63615c5b43497f0577727f5a4260";
const APP_ID: &str = "110567";
const APP_SECRET: &str = "a3f3c3b9d1e24e8f9a8b7c6d5e4f3a2b";

/// Meizu's signature as its API document states it, written apart from the provider's: the
/// parameters but `sign`, by name, as `k=v` with raw values and nothing between, then the secret; MD5
/// in lowercase hex.
fn meizu_sign(params: &[(String, String)], secret: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sign").collect();
    sorted.sort();
    let base: String = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<String>() + secret;
    Md5::digest(base.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_tests_signature_reproduces_meizus_example() {
    // MEIZUPUSH/PushAPI README, 接口签名规范: the secret there is the literal placeholder.
    let params = [
        ("appId", "10000"),
        ("pushIds", "RA50c6348036344485d01776773577c64740465480a6b"),
        ("messageJson", r#"{"title":"title","content":"content","pushTimeInfo":{"offLine":1,"validTime":24}}"#),
    ];
    let params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(meizu_sign(&params, "<APP_SECRET>"), "ac076ff25d9900015a681cb5172aa53b");
}

fn config(endpoint: &Endpoint, extra: Value) -> MeizuConfig {
    let base = json!({"app_id": APP_ID, "app_secret": APP_SECRET, "url": format!("{}{PATH}", endpoint.url)});
    common::config(base, extra)
}

fn provider(config: &MeizuConfig) -> Meizu {
    Meizu::new(config, &Clients::new(None).unwrap()).unwrap()
}

fn target() -> Target {
    common::target(TOKEN)
}

/// The shared push with a body that urlencoding changes.
fn notification() -> Notification {
    Notification { body: "See you at 8? & bring 100% of the cake = yes".into(), ..common::notification() }
}

fn ok() -> Answer {
    Answer::json(200, json!({"code": "200", "message": "", "msgId": "c2ee5c3b", "value": {}}))
}

#[tokio::test]
async fn sends_the_documented_signed_request() {
    let endpoint = Endpoint::start(|_| ok()).await;
    let c = config(&endpoint, json!({"activity": "com.example.ChatActivity"}));

    assert_eq!(provider(&c).send(&target(), &notification()).await, Outcome::Sent);

    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path(), PATH);
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded;charset=UTF-8"));
    let form = r.form();
    let mut names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["appId", "messageJson", "pushIds", "sign"]);
    assert_eq!(r.form_value("appId").as_deref(), Some(APP_ID));
    assert_eq!(r.form_value("pushIds").as_deref(), Some(TOKEN));
    assert_eq!(r.form_value("sign"), Some(meizu_sign(&form, APP_SECRET)));
    // The values travel urlencoded; the signature is over the raw ones.
    assert!(!std::str::from_utf8(&r.body).unwrap().contains('{'));

    let message: Value = serde_json::from_str(&r.form_value("messageJson").unwrap()).unwrap();
    assert_eq!(
        message,
        json!({
            "noticeBarInfo": {"noticeBarType": 0, "title": "Alice", "content": "See you at 8? & bring 100% of the cake = yes"},
            "clickTypeInfo": {
                "clickType": 1,
                "activity": "com.example.ChatActivity",
                "parameters": {"ext": r#"{"conv":"c2c_alice"}"#, "from": "alice", "msg_key": "1_2_3"},
            },
            "pushTimeInfo": {"offLine": 1, "validTime": 24},
        })
    );
}

#[tokio::test]
async fn without_an_activity_a_tap_opens_the_app_and_long_text_is_cut() {
    let endpoint = Endpoint::start(|_| ok()).await;
    let mut n = notification();
    n.title = "t".repeat(40);
    n.body = "好".repeat(150);
    assert_eq!(provider(&config(&endpoint, json!({}))).send(&target(), &n).await, Outcome::Sent);
    let r = &endpoint.requests()[0];
    let message: Value = serde_json::from_str(&r.form_value("messageJson").unwrap()).unwrap();
    assert_eq!(message["clickTypeInfo"]["clickType"], 0);
    assert!(message["clickTypeInfo"].get("activity").is_none());
    assert_eq!(message["noticeBarInfo"]["title"].as_str().unwrap().chars().count(), 32);
    assert_eq!(message["noticeBarInfo"]["content"].as_str().unwrap().chars().count(), 100);
    assert_eq!(r.form_value("sign"), Some(meizu_sign(&r.form(), APP_SECRET)));
}

#[tokio::test]
async fn a_target_of_another_app_is_not_sent() {
    let endpoint = Endpoint::start(|_| ok()).await;
    let p = provider(&config(&endpoint, json!({})));
    let other = Target { token: TOKEN.into(), app_id: Some("110568".into()) };
    assert!(matches!(p.send(&other, &notification()).await, Outcome::Failed { .. }));
    assert!(endpoint.requests().is_empty());
    let same = Target { token: TOKEN.into(), app_id: Some(APP_ID.into()) };
    assert_eq!(p.send(&same, &notification()).await, Outcome::Sent);
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let next = NextAnswer::default();
    let endpoint = Endpoint::start(next.responder()).await;
    let p = provider(&config(&endpoint, json!({})));
    let processed = |value: Value| json!({"code": "200", "message": "", "msgId": "m", "value": value}).to_string();
    let top = |code: &str| json!({"code": code, "message": "m", "value": "", "redirect": ""}).to_string();
    let cases = [
        (200, processed(json!({})), "sent"),
        (200, processed(json!({"110002": [TOKEN]})), "invalid"),
        (200, processed(json!({"110003": [TOKEN]})), "invalid"),
        (200, processed(json!({"msgId": "m", "respTarget": {"110003": [TOKEN]}})), "invalid"),
        (200, processed(json!({"513": [TOKEN]})), "retry"),
        (200, processed(json!({"519": [TOKEN]})), "retry"),
        (200, processed(json!({"520": [TOKEN]})), "failed"),
        (200, processed(json!({"201": [TOKEN]})), "failed"),
        (200, top("110010"), "retry"),
        (200, top("1003"), "retry"),
        (200, top("1001"), "retry"),
        (200, top("500"), "retry"),
        (200, top("1006"), "failed"),
        (200, top("110000"), "failed"),
        (502, String::new(), "retry"),
        (200, "<html>".into(), "retry"),
        (403, String::new(), "failed"),
    ];
    for (status, body, expected) in cases {
        next.set(status, &body);
        let outcome = p.send(&target(), &notification()).await;
        assert_eq!(kind(&outcome), expected, "HTTP {status} {body}: {outcome:?}");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retry() {
    let url = format!("{}{PATH}", common::unreachable_url());
    let c: MeizuConfig = serde_json::from_value(json!({"app_id": "1", "app_secret": "s", "url": url})).unwrap();
    assert!(matches!(provider(&c).send(&target(), &notification()).await, Outcome::Retry { .. }));
}

#[tokio::test]
async fn the_configuration_is_checked() {
    let clients = Clients::new(None).unwrap();
    let base = json!({"app_id": "1", "app_secret": "topsecret"});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        serde_json::from_value::<MeizuConfig>(c).unwrap()
    };
    for (field, value) in
        [("app_id", json!("")), ("app_secret", json!("")), ("activity", json!(" ")), ("url", json!("//x"))]
    {
        let error = Meizu::new(&with(field, value), &clients).err().expect(field).to_string();
        assert!(error.starts_with("[push.meizu]: ") && error.contains(field), "{error}");
    }
    assert!(serde_json::from_value::<MeizuConfig>(json!({"app_id": "1", "app_secret": "s", "app_key": "k"})).is_err());
    let c = with("activity", json!("com.example.Main"));
    assert!(!format!("{c:?}").contains("topsecret"));
    assert_eq!(c.url, "https://server-api-push.meizu.com/garcia/api/server/push/varnished/pushByPushId");
}

//! `C2C.CallbackBeforeSendMsg` against a backend the test starts: Tencent's query and signature, and
//! what each answer does to a client send and a REST `sendmsg` (allow, rewrite, refuse, drop, a custom
//! code), and what a slow or failing backend does under each failure rule.

use std::time::Duration;

use duet_callback::{CallbacksConfig, FailureRule, sign};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use duet_test_support::{SDKAPPID, TestServer, WsClient, text};
use serde_json::{Value, json};

const TOKEN: &str = "callback-token";

async fn server(backend: &Endpoint, tweak: impl FnOnce(&mut CallbacksConfig)) -> TestServer {
    let mut callbacks = CallbacksConfig::new(format!("{}/im", backend.url));
    callbacks.token = Some(TOKEN.into());
    // Only the before-send callback: the after-event ones have their tests in `after_events.rs`.
    callbacks.commands = Some(vec!["C2C.CallbackBeforeSendMsg".into()]);
    tweak(&mut callbacks);
    let server = TestServer::spawn_with(|c| c.callbacks = Some(callbacks)).await;
    server.import(&["alice", "bob"]).await;
    server
}

fn ok(extra: Value) -> Answer {
    let mut body = json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    Answer::json(200, body)
}

/// The message's text decides the backend's answer.
fn moderate(r: &Recorded) -> Answer {
    let text = r.json()["MsgBody"][0]["MsgContent"]["Text"].as_str().unwrap_or_default().to_owned();
    match text.as_str() {
        "refuse" => Answer::json(200, json!({"ActionStatus": "OK", "ErrorCode": 1, "ErrorInfo": ""})),
        "drop" => Answer::json(200, json!({"ActionStatus": "OK", "ErrorCode": 2, "ErrorInfo": ""})),
        "custom" => Answer::json(200, json!({"ActionStatus": "OK", "ErrorCode": 120_005, "ErrorInfo": "no ads here"})),
        "rewrite" => ok(json!({"MsgBody": text_body("re***te"), "CloudCustomData": "checked"})),
        "bad rewrite" => ok(json!({"MsgBody": [{"MsgType": "TIMNoSuchElem", "MsgContent": {}}]})),
        _ => ok(json!({})),
    }
}

fn text_body(s: &str) -> Value {
    text(s)
}

async fn rest_send(server: &TestServer, random: u32, msg: &str) -> Value {
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": random, "MsgBody": text(msg)});
    server.rest("openim/sendmsg", body).await
}

/// bob's history with alice, oldest first, as (text, CloudCustomData).
async fn history(server: &TestServer) -> Vec<(String, String)> {
    let r = server
        .rest(
            "openim/admin_getroammsg",
            json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 100, "MinTime": 0, "MaxTime": 4_000_000_000u64}),
        )
        .await;
    r["MsgList"]
        .as_array()
        .expect("MsgList")
        .iter()
        .map(|m| {
            let text = m["MsgBody"][0]["MsgContent"]["Text"].as_str().unwrap_or_default().to_owned();
            (text, m["CloudCustomData"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_carries_tencents_query_signature_and_body() {
    let backend = Endpoint::start(moderate).await;
    let server = server(&backend, |_| {}).await;
    let r = rest_send(&server, 7, "hello").await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let mut alice = WsClient::login(&server, "alice").await;
    let sent = alice.send("bob", 8, text("from the app")).await;
    assert_eq!(sent["op"], "sent", "{sent}");

    let calls = backend.requests();
    assert_eq!(calls.len(), 2);
    for (call, platform) in calls.iter().zip(["RESTAPI", "Android"]) {
        assert_eq!(call.path(), "/im");
        let query: Vec<(String, String)> =
            form_urlencoded::parse(call.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(get("SdkAppid"), SDKAPPID.to_string());
        assert_eq!(get("CallbackCommand"), "C2C.CallbackBeforeSendMsg");
        assert_eq!(get("contenttype"), "json");
        assert_eq!(get("OptPlatform"), platform);
        let time: u64 = get("RequestTime").parse().expect("RequestTime is unix seconds");
        assert_eq!(get("Sign"), sign(TOKEN, time), "Sign = sha256(token + RequestTime)");
    }
    let ip = form_urlencoded::parse(calls[1].uri.query().unwrap().as_bytes())
        .find(|(k, _)| k == "ClientIP")
        .map(|(_, v)| v.into_owned());
    assert_eq!(ip.as_deref(), Some("127.0.0.1"), "a client send names its address");
    let body = calls[0].json();
    assert_eq!(body["CallbackCommand"], "C2C.CallbackBeforeSendMsg");
    assert_eq!((body["From_Account"].as_str(), body["To_Account"].as_str()), (Some("alice"), Some("bob")));
    assert_eq!(body["MsgRandom"], 7);
    assert_eq!(body["OnlineOnlyFlag"], 0);
    assert_eq!(body["MsgBody"], text("hello"));
    assert!(body["MsgTime"].as_i64().is_some() && body["MsgKey"].as_str().is_some(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_allows_rewrites_refuses_drops_or_answers_its_own_code() {
    let backend = Endpoint::start(moderate).await;
    let server = server(&backend, |_| {}).await;
    let mut alice = WsClient::login(&server, "alice").await;

    assert_eq!(rest_send(&server, 1, "fine").await["ErrorCode"], 0);
    let r = rest_send(&server, 2, "refuse").await;
    assert_eq!(r["ErrorCode"], 20006, "{r}");
    let r = rest_send(&server, 3, "custom").await;
    assert_eq!((r["ErrorCode"].as_u64(), r["ErrorInfo"].as_str()), (Some(120_005), Some("no ads here")), "{r}");
    let r = rest_send(&server, 4, "drop").await;
    assert_eq!(r["ErrorCode"], 0, "a dropped message looks sent: {r}");
    let r = rest_send(&server, 5, "rewrite").await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = rest_send(&server, 6, "bad rewrite").await;
    assert_eq!(r["ErrorCode"], 90010, "a rewritten body is checked like a client's: {r}");

    // The same through the client protocol.
    let refused = alice.send("bob", 11, text("refuse")).await;
    assert_eq!((refused["op"].as_str(), refused["code"].as_u64()), (Some("error"), Some(20006)), "{refused}");
    let custom = alice.send("bob", 12, text("custom")).await;
    assert_eq!((custom["code"].as_u64(), custom["info"].as_str()), (Some(120_005), Some("no ads here")), "{custom}");
    let dropped = alice.send("bob", 13, text("drop")).await;
    assert_eq!((dropped["op"].as_str(), dropped["conv_seq"].as_u64()), (Some("sent"), Some(0)), "{dropped}");
    let rewritten = alice.send("bob", 14, text("rewrite")).await;
    assert_eq!(rewritten["op"], "sent", "{rewritten}");

    // What bob has: the allowed one and the two rewritten ones, as rewritten.
    let expected = [("fine", ""), ("re***te", "checked"), ("re***te", "checked")];
    let got = history(&server).await;
    assert_eq!(got, expected.map(|(t, c)| (t.to_owned(), c.to_owned())));
    // batchsendmsg and a message that forbids it pass no callback.
    let calls = backend.requests().len();
    let batch = json!({"From_Account": "alice", "To_Account": ["bob"], "MsgRandom": 21, "MsgBody": text("refuse")});
    assert_eq!(server.rest("openim/batchsendmsg", batch).await["ErrorCode"], 0);
    let forbid = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 22, "MsgBody": text("refuse"),
                        "ForbidCallbackControl": ["ForbidBeforeSendMsgCallback"]});
    assert_eq!(server.rest("openim/sendmsg", forbid).await["ErrorCode"], 0);
    assert_eq!(backend.requests().len(), calls, "no callback for either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_failing_backend_delivers_or_refuses_as_configured() {
    let slow = Endpoint::start(|r| moderate(r).after(Duration::from_millis(800))).await;
    let failing = Endpoint::start(|_| Answer::json(500, json!({"oops": true}))).await;
    for (backend, rule) in [(&slow, FailureRule::Deliver), (&failing, FailureRule::Deliver)] {
        let server = server(backend, |c| {
            c.before_send_timeout_ms = 200;
            c.before_send_failure = rule;
        })
        .await;
        let r = rest_send(&server, 1, "refuse").await;
        assert_eq!(r["ErrorCode"], 0, "the backend did not answer in time: delivered as it is ({r})");
        assert_eq!(history(&server).await, [("refuse".to_owned(), String::new())]);
    }
    for backend in [&slow, &failing] {
        let server = server(backend, |c| {
            c.before_send_timeout_ms = 200;
            c.before_send_failure = FailureRule::Refuse;
        })
        .await;
        let r = rest_send(&server, 1, "fine").await;
        assert_eq!(r["ErrorCode"], 80003, "{r}");
        let mut alice = WsClient::login(&server, "alice").await;
        let refused = alice.send("bob", 2, text("fine")).await;
        assert_eq!(refused["code"], 80003, "{refused}");
        assert_eq!(history(&server).await, []);
    }
}

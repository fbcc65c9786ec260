//! The global mute (`openconfigsvr/setnospeaking`, `openconfigsvr/getnospeaking`) against the real
//! server on `127.0.0.1:0` with a manual clock: Tencent's request and answer shapes and each error code
//! (`shared/reference/tencent-rest-api.md` §3.12), and what a mute does to sends: a muted user's client
//! sends get 20012, store nothing and never reach the before-send callback; the admin's REST sends as
//! that user are not checked; a timed mute ends by itself; a mute survives a restart and dies with its
//! account.

use std::time::Duration;

use duet_callback::CallbacksConfig;
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use duet_test_support::{SDKAPPID, TestServer, WsClient, text};
use serde_json::{Value, json};

/// `NospeakingTime` for good.
const FOREVER: u64 = 4_294_967_295;

async fn server(users: &[&str]) -> TestServer {
    let s = TestServer::spawn().await;
    s.import(users).await;
    s
}

async fn set(s: &TestServer, body: Value) -> Value {
    s.rest("openconfigsvr/setnospeaking", body).await
}

async fn set_ok(s: &TestServer, body: Value) {
    let r = set(s, body.clone()).await;
    assert_eq!(r, json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}), "setnospeaking {body}");
}

async fn get(s: &TestServer, user: &str) -> Value {
    s.rest("openconfigsvr/getnospeaking", json!({ "Get_Account": user })).await
}

/// `getnospeaking`'s two times for `user`, after checking the whole answer's shape.
async fn times(s: &TestServer, user: &str) -> (u64, u64) {
    let r = get(s, user).await;
    let (c2c, group) = (r["C2CmsgNospeakingTime"].as_u64(), r["GroupmsgNospeakingTime"].as_u64());
    let (Some(c2c), Some(group)) = (c2c, group) else { panic!("getnospeaking {user}: {r}") };
    assert_eq!(
        r,
        json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0,
               "C2CmsgNospeakingTime": c2c, "GroupmsgNospeakingTime": group}),
        "getnospeaking {user}"
    );
    (c2c, group)
}

/// The code of a client `send` (0 when sent).
async fn client_send(ws: &mut WsClient, to: &str, random: u32, body: Value) -> u64 {
    let r = ws.send(to, random, body).await;
    match r["op"].as_str() {
        Some("sent") => 0,
        Some("error") => r["code"].as_u64().expect("an error's code"),
        _ => panic!("a send answered {r}"),
    }
}

/// The texts of `op`'s history with `peer`, oldest first.
async fn history(s: &TestServer, op: &str, peer: &str) -> Vec<String> {
    let r = s
        .rest(
            "openim/admin_getroammsg",
            json!({"Operator_Account": op, "Peer_Account": peer, "MaxCnt": 100, "MinTime": 0, "MaxTime": 4_000_000_000u64}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    r["MsgList"]
        .as_array()
        .expect("MsgList")
        .iter()
        .map(|m| m["MsgBody"][0]["MsgContent"]["Text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_get_answer_in_tencents_shapes_and_get_tells_what_remains() {
    let s = server(&["alice"]).await;
    assert_eq!(times(&s, "alice").await, (0, 0), "no one is muted at first");

    // Tencent's own example: C2C for good, groups for 7200 s.
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": FOREVER, "GroupmsgNospeakingTime": 7200})).await;
    assert_eq!(times(&s, "alice").await, (FOREVER, 7200));
    // Tencent's example answers 7196 a few seconds later: what remains.
    s.clock.advance_secs(4);
    assert_eq!(times(&s, "alice").await, (FOREVER, 7196));

    // A time not given leaves that mute as it is; numbers may come as strings, `""` is not given.
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": "3600", "GroupmsgNospeakingTime": ""})).await;
    assert_eq!(times(&s, "alice").await, (3600, 7196));
    set_ok(&s, json!({"Set_Account": "alice", "GroupmsgNospeakingTime": 0})).await;
    assert_eq!(times(&s, "alice").await, (3600, 0));
    s.clock.advance_secs(600);
    assert_eq!(times(&s, "alice").await, (3000, 0));
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 0})).await;
    assert_eq!(times(&s, "alice").await, (0, 0));

    // The largest time below "for good" is a timed mute.
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": FOREVER - 1})).await;
    assert_eq!(times(&s, "alice").await, (FOREVER - 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_tencents_code_and_changes_nothing() {
    let s = server(&["alice"]).await;
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 60, "GroupmsgNospeakingTime": 70})).await;

    let set_cases = [
        (json!({"C2CmsgNospeakingTime": 10}), 130004),
        (json!({"Set_Account": null, "C2CmsgNospeakingTime": 10}), 130004),
        (json!({"Set_Account": 5, "C2CmsgNospeakingTime": 10}), 130005),
        (json!({"Set_Account": "", "C2CmsgNospeakingTime": 10}), 130005),
        (json!({"Set_Account": " alice", "C2CmsgNospeakingTime": 10}), 130005),
        (json!({"Set_Account": "nobody", "C2CmsgNospeakingTime": 10}), 130005),
        (json!({"Set_Account": "alice"}), 130008),
        (json!({"Set_Account": "alice", "C2CmsgNospeakingTime": "", "GroupmsgNospeakingTime": null}), 130008),
        (json!({"Set_Account": "alice", "C2CmsgNospeakingTime": -1}), 130006),
        (json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 4_294_967_296u64}), 130006),
        (json!({"Set_Account": "alice", "C2CmsgNospeakingTime": "soon"}), 130006),
        (json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 1.5}), 130006),
        (json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 10, "GroupmsgNospeakingTime": [1]}), 130007),
        (json!(["alice"]), 130001),
    ];
    for (body, code) in set_cases {
        let r = set(&s, body.clone()).await;
        assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("FAIL"), Some(code)), "{body}: {r}");
    }
    let get_cases = [
        (json!({}), 130002),
        (json!({"Get_Account": 7}), 130003),
        (json!({"Get_Account": ""}), 130003),
        (json!({"Get_Account": "nobody"}), 130003),
        (json!("alice"), 130001),
    ];
    for (body, code) in get_cases {
        let r = s.rest("openconfigsvr/getnospeaking", body.clone()).await;
        assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("FAIL"), Some(code)), "{body}: {r}");
    }
    assert_eq!(times(&s, "alice").await, (60, 70), "no refused request changed the mute");

    // Whole failure bodies: the envelope, with no ErrorDisplay.
    let r = get(&s, "nobody").await;
    assert_eq!(
        r,
        json!({"ActionStatus": "FAIL", "ErrorInfo": "account \"nobody\" does not exist; import it first", "ErrorCode": 130003})
    );
    let query = s.admin_query();
    let r = s.rest_raw(&format!("/v4/openconfigsvr/setnospeaking?{query}"), "{not json").await;
    assert_eq!(r["ErrorCode"], 130001, "{r}");
    assert!(r["ErrorInfo"].as_str().unwrap().starts_with("Fail to Parse json data of body, Please check it"), "{r}");

    // Only app admins may call: Tencent's generic 60010.
    let sig = s.usersig("alice");
    let path = format!("/v4/openconfigsvr/getnospeaking?sdkappid={SDKAPPID}&identifier=alice&usersig={sig}");
    let r = s.rest_raw(&path, json!({"Get_Account": "alice"}).to_string()).await;
    assert_eq!(r["ErrorCode"], 60010, "{r}");
    // Other commands of the service are not served.
    let r = s.rest("openconfigsvr/getappinfo", json!({})).await;
    assert_eq!(r["ErrorCode"], 60009, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_users_client_sends_get_20012_and_store_nothing_until_unmuted() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = WsClient::login(&s, "alice").await;
    let mut bob = WsClient::login(&s, "bob").await;
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 3600})).await;

    let refused = alice.send("bob", 1, text("hello")).await;
    assert_eq!((refused["op"].as_str(), refused["code"].as_u64()), (Some("error"), Some(20012)), "{refused}");
    assert_eq!(refused["info"], "the sender is muted");
    let online_only = alice
        .request(json!({"op": "send", "to": "bob", "random": 2, "body": text("typing"), "online_only": true}))
        .await;
    assert_eq!(online_only["code"], 20012, "online-only messages are refused too: {online_only}");
    assert_eq!(client_send(&mut alice, "alice", 3, text("note to self")).await, 20012, "to oneself too");
    assert_eq!(history(&s, "bob", "alice").await, Vec::<String>::new(), "nothing stored");
    assert_eq!(history(&s, "alice", "alice").await, Vec::<String>::new());
    let unread = s.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "bob"})).await;
    assert_eq!(unread["AllC2CUnreadMsgNum"], 0, "{unread}");

    // Only the muted user: bob still sends to alice.
    assert_eq!(client_send(&mut bob, "alice", 4, text("hi alice")).await, 0);
    // A group mute alone refuses no one-to-one message.
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 0, "GroupmsgNospeakingTime": FOREVER})).await;
    assert_eq!(client_send(&mut alice, "bob", 5, text("unmuted")).await, 0);
    // Muted for good, then unmuted.
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": FOREVER})).await;
    assert_eq!(client_send(&mut alice, "bob", 6, text("muted again")).await, 20012);
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 0})).await;
    assert_eq!(client_send(&mut alice, "bob", 7, text("unmuted again")).await, 0);
    assert_eq!(history(&s, "bob", "alice").await, ["hi alice", "unmuted", "unmuted again"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_mute_ends_by_itself() {
    let s = server(&["alice", "bob"]).await;
    let mut alice = WsClient::login(&s, "alice").await;
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 60})).await;
    assert_eq!(client_send(&mut alice, "bob", 1, text("at once")).await, 20012);
    s.clock.advance_secs(59);
    assert_eq!(client_send(&mut alice, "bob", 2, text("59 s later")).await, 20012);
    assert_eq!(times(&s, "alice").await, (1, 0));
    s.clock.advance_secs(1);
    assert_eq!(times(&s, "alice").await, (0, 0));
    assert_eq!(client_send(&mut alice, "bob", 3, text("60 s later")).await, 0);
    assert_eq!(history(&s, "bob", "alice").await, ["60 s later"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_sends_as_a_muted_user_are_not_checked() {
    let s = server(&["alice", "bob"]).await;
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": FOREVER})).await;
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("from the app")});
    let r = s.rest("openim/sendmsg", body).await;
    assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("OK"), Some(0)), "{r}");
    let batch = json!({"From_Account": "alice", "To_Account": ["bob"], "MsgRandom": 2, "MsgBody": text("batch")});
    let r = s.rest("openim/batchsendmsg", batch).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(history(&s, "bob", "alice").await, ["from the app", "batch"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_survives_a_restart_and_dies_with_its_account() {
    let s = server(&["alice", "bob", "carol"]).await;
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 3600, "GroupmsgNospeakingTime": FOREVER})).await;
    set_ok(&s, json!({"Set_Account": "bob", "C2CmsgNospeakingTime": FOREVER})).await;
    set_ok(&s, json!({"Set_Account": "carol", "C2CmsgNospeakingTime": 10})).await;

    // carol's mute ends while the server is down.
    s.clock.advance_secs(10);
    let s = s.restart().await;
    assert_eq!(times(&s, "alice").await, (3590, FOREVER));
    assert_eq!(times(&s, "bob").await, (FOREVER, 0));
    assert_eq!(times(&s, "carol").await, (0, 0));
    let mut alice = WsClient::login(&s, "alice").await;
    assert_eq!(client_send(&mut alice, "carol", 1, text("after the restart")).await, 20012);
    let mut carol = WsClient::login(&s, "carol").await;
    assert_eq!(client_send(&mut carol, "alice", 2, text("my mute ended")).await, 0);
    drop((alice, carol));
    s.stop().await;

    // Deleted, an account's mute goes with it: imported again, it is not muted.
    let s = server(&["alice", "bob"]).await;
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": FOREVER})).await;
    let r = s.rest("im_open_login_svc/account_delete", json!({"DeleteItem": [{"UserID": "alice"}]})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    assert_eq!(get(&s, "alice").await["ErrorCode"], 130003, "a deleted account has no mute to read");
    s.import(&["alice"]).await;
    assert_eq!(times(&s, "alice").await, (0, 0));
    let mut alice = WsClient::login(&s, "alice").await;
    assert_eq!(client_send(&mut alice, "bob", 1, text("a new alice")).await, 0);
    let s = s.restart().await;
    assert_eq!(times(&s, "alice").await, (0, 0), "nor after a restart");
}

/// The backend's answer: allow everything.
fn allow(_: &Recorded) -> Answer {
    Answer::json(200, json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}))
}

fn command(r: &Recorded) -> String {
    form_urlencoded::parse(r.uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "CallbackCommand")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The calls of `cmd` the backend got, waiting (at most 10 s) until there are `n`.
async fn calls(backend: &Endpoint, cmd: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let got: Vec<Value> = backend.requests().iter().filter(|r| command(r) == cmd).map(Recorded::json).collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} {cmd} callbacks within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_before_send_callback_is_not_called_for_a_muted_sender() {
    let backend = Endpoint::start(allow).await;
    let mut callbacks = CallbacksConfig::new(format!("{}/im", backend.url));
    callbacks.commands = Some(vec!["C2C.CallbackBeforeSendMsg".into(), "C2C.CallbackAfterSendMsg".into()]);
    let s = TestServer::spawn_with(|c| c.callbacks = Some(callbacks)).await;
    s.import(&["alice", "bob"]).await;
    set_ok(&s, json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 3600})).await;

    let mut alice = WsClient::login(&s, "alice").await;
    assert_eq!(client_send(&mut alice, "bob", 1, text("muted")).await, 20012);
    // The after-send callback tells of the refused send, as of the permission policy's refusals.
    let after = calls(&backend, "C2C.CallbackAfterSendMsg", 1).await;
    assert_eq!((after[0]["From_Account"].as_str(), after[0]["MsgBody"].clone()), (Some("alice"), text("muted")));
    assert_eq!((after[0]["SendMsgResult"].as_i64(), after[0]["UnreadMsgNum"].as_i64()), (Some(20012), Some(-1)));
    assert!(calls(&backend, "C2C.CallbackBeforeSendMsg", 0).await.is_empty(), "not asked for a muted sender");

    // A sender that is not muted is asked about, and so is the admin's REST send as alice.
    let mut bob = WsClient::login(&s, "bob").await;
    assert_eq!(client_send(&mut bob, "alice", 2, text("from bob")).await, 0);
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 3, "MsgBody": text("from the app")});
    assert_eq!(s.rest("openim/sendmsg", body).await["ErrorCode"], 0);
    let before = calls(&backend, "C2C.CallbackBeforeSendMsg", 2).await;
    let asked: Vec<_> = before.iter().map(|b| (b["From_Account"].clone(), b["MsgBody"].clone())).collect();
    assert_eq!(asked, [(json!("bob"), text("from bob")), (json!("alice"), text("from the app"))]);
}

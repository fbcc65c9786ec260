//! Identifiers and values at every door (REST, the client protocol, media): UserIDs without invisible
//! characters, compared byte for byte; times that fit a JavaScript number and are not in the future where
//! that would stick; bounded device ids; UserSigs not dated ahead of the server's clock. Each attack is
//! refused with Tencent's code (or the protocol's) and stores nothing.

use std::time::Duration;

use duet_core::clock::Clock;
use duet_core::usersig;
use duet_test_support::{ADMIN, SDKAPPID, SECRET_KEY, TestServer, WsClient, text};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// 2^53 − 1, the largest integer a JavaScript number holds exactly.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// UserIDs that look like others, or like nothing: right-to-left override, zero-width space, byte order
/// mark, line separator, soft hyphen, NUL.
const INVISIBLE: [&str; 6] = ["ab\u{202E}c", "a\u{200B}b", "\u{FEFF}ab", "a\u{2028}b", "a\u{AD}b", "a\u{0}b"];

/// A raw protocol client: requests and their answers, and whether the server closed the connection.
struct Raw {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Raw {
    async fn connect(s: &TestServer) -> Raw {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/connect", s.addr)).await.unwrap();
        Raw { ws, next_id: 0 }
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await.expect("no frame within 5 s") {
                Some(Ok(Ws::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn request(&mut self, mut frame: Value) -> Value {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        self.ws.send(Ws::Text(frame.to_string().into())).await.unwrap();
        loop {
            let f = self.next().await.expect("the connection closed before the answer");
            if f["id"] == self.next_id {
                return f;
            }
        }
    }

    async fn login(s: &TestServer, user: &str, sig: &str, device: &str) -> (Raw, Value) {
        let mut raw = Raw::connect(s).await;
        let reply = raw
            .request(json!({"op": "login", "protocol": 1, "user": user, "usersig": sig, "platform": "Android",
                            "device": device}))
            .await;
        (raw, reply)
    }

    async fn closed(&mut self) -> bool {
        self.next().await.is_none()
    }
}

fn sig_at(user: &str, time: i64) -> String {
    usersig::generate(SECRET_KEY, SDKAPPID, user, time, 86_400, None)
}

/// Uploads a small file as `user` with `sig`; the HTTP status and the answer.
async fn upload(s: &TestServer, user: &str, sig: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/media", s.base_url()))
        .query(&[("type", "file"), ("filename", "f.txt"), ("identifier", user), ("usersig", sig)])
        .body("hello")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Every file under the media directory but the index.
fn stored_files(dir: &std::path::Path) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    walk(&p)
                } else {
                    usize::from(!p.file_name().unwrap().to_string_lossy().starts_with("media.db"))
                }
            })
            .sum()
    }
    walk(dir)
}

/// A REST call made as `identifier` with `sig`.
async fn rest_as(s: &TestServer, identifier: &str, sig: &str, path: &str, body: Value) -> Value {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("sdkappid", &SDKAPPID.to_string())
        .append_pair("identifier", identifier)
        .append_pair("usersig", sig)
        .finish();
    s.rest_raw(&format!("/v4/{path}?{query}"), body.to_string()).await
}

async fn sync(s: &TestServer, user: &str) -> Vec<Value> {
    let mut c = WsClient::login(s, user).await;
    c.request(json!({"op": "sync", "after": 0})).await["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn user_ids_with_invisible_characters_are_refused_at_every_door() {
    let s = TestServer::spawn().await;
    s.import(&["alice"]).await;
    let mut alice = WsClient::login(&s, "alice").await;
    for id in INVISIBLE {
        let r = s.rest("im_open_login_svc/account_import", json!({"UserID": id})).await;
        assert_eq!(r["ErrorCode"], 70402, "account_import {id:?}: {r}");
        let r = s.rest("im_open_login_svc/multiaccount_import", json!({"Accounts": [id]})).await;
        assert_eq!(r["FailAccounts"], json!([id]), "multiaccount_import {id:?}: {r}");
        let r = s.rest("openim/sendmsg", json!({"To_Account": id, "MsgRandom": 1, "MsgBody": text("x")})).await;
        assert_eq!(r["ErrorCode"], 90003, "sendmsg to {id:?}: {r}");
        let r = alice.send(id, 1, text("x")).await;
        assert_eq!(r["code"], 7003, "client send to {id:?}: {r}");

        // Its own valid UserSig does not make it a user, over any door.
        let sig = s.usersig(id);
        let (mut raw, r) = Raw::login(&s, id, &sig, "d").await;
        assert_eq!(r["code"], 7003, "login as {id:?}: {r}");
        assert!(raw.closed().await);
        let (status, r) = upload(&s, id, &sig).await;
        assert_eq!((status, &r["ErrorCode"]), (401, &json!(70013)), "upload as {id:?}: {r}");
        let r =
            rest_as(&s, id, &sig, "im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": "alice"}]})).await;
        assert_eq!(r["ErrorCode"], 70013, "REST as {id:?}: {r}");
    }
    assert_eq!(stored_files(&s.config.media.dir), 0, "no upload was kept");
    assert!(sync(&s, "alice").await.is_empty(), "no message was stored");
    s.stop().await;
}

#[tokio::test]
async fn user_ids_are_compared_byte_for_byte() {
    let s = TestServer::spawn().await;
    // "é" as one code point, and as "e" with a combining accent: two accounts, as "Bob" and "bob" are.
    s.import(&["Bob", "caf\u{E9}"]).await;
    let check = json!({"CheckItem": [{"UserID": "Bob"}, {"UserID": "bob"}, {"UserID": "caf\u{E9}"}, {"UserID": "cafe\u{301}"}]});
    let r = s.rest("im_open_login_svc/account_check", check).await;
    let status: Vec<&Value> = r["ResultItem"].as_array().unwrap().iter().map(|i| &i["AccountStatus"]).collect();
    assert_eq!(status, ["Imported", "NotImported", "Imported", "NotImported"], "{r}");
    // A UserSig names one exact UserID.
    let (_, r) = Raw::login(&s, "bob", &s.usersig("Bob"), "d").await;
    assert_eq!(r["code"], 70013, "{r}");
    s.stop().await;
}

#[tokio::test]
async fn read_times_must_fit_a_javascript_number_and_never_run_ahead_of_the_clock() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let mut bob = WsClient::login(&s, "bob").await;
    for time in [json!(i64::MIN), json!(-1), json!(MAX_SAFE_INTEGER + 1), json!(i64::MAX)] {
        let r = bob.request(json!({"op": "mark_read", "peer": "alice", "time": time})).await;
        assert_eq!((&r["op"], &r["code"]), (&json!("error"), &json!(6017)), "mark_read at {time}: {r}");
        let r = s
            .rest(
                "openim/admin_set_msg_read",
                json!({"Report_Account": "bob", "Peer_Account": "alice", "MsgReadTime": time}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 90001, "admin_set_msg_read at {time}: {r}");
    }
    let page = bob.request(json!({"op": "sync", "after": 0})).await;
    assert_eq!(page["entries"], json!([]), "no read entry was logged");

    // A read time ahead of the clock reads as now: what alice sends later is unread.
    let now = s.clock.now_secs();
    let r = bob.request(json!({"op": "mark_read", "peer": "alice", "time": now + 86_400})).await;
    assert_eq!(r["op"], "ok", "{r}");
    let r = s
        .rest(
            "openim/admin_set_msg_read",
            json!({"Report_Account": "bob", "Peer_Account": "alice", "MsgReadTime": MAX_SAFE_INTEGER}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    s.clock.advance_secs(60);
    let r = s
        .rest(
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("new")}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = s.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "bob"})).await;
    assert_eq!(r["AllC2CUnreadMsgNum"], 1, "{r}");
    let page = bob.request(json!({"op": "sync", "after": 0})).await;
    let reads: Vec<i64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "read")
        .map(|e| e["time"].as_i64().unwrap())
        .collect();
    assert_eq!(reads, [now, now], "the read entries say when they were made");
    s.stop().await;
}

#[tokio::test]
async fn imported_messages_may_not_be_dated_in_the_future() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let now = s.clock.now_secs();
    let import = |random: u32, time: Value| {
        json!({"SyncFromOldSystem": 5, "From_Account": "alice", "To_Account": "bob", "MsgRandom": random,
               "MsgTimeStamp": time, "MsgBody": text("old")})
    };
    for (random, time) in [(1, json!(i64::MAX)), (2, json!(MAX_SAFE_INTEGER + 1)), (3, json!(now + 301))] {
        let r = s.rest("openim/importmsg", import(random, time.clone())).await;
        assert_eq!(r["ErrorCode"], 90006, "MsgTimeStamp {time}: {r}");
    }
    let r = s.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "bob"})).await;
    assert_eq!(r["AllC2CUnreadMsgNum"], 0, "nothing was imported: {r}");
    // Five minutes of clock skew are allowed, and the unread count they make can be cleared once it passes.
    let r = s.rest("openim/importmsg", import(4, json!(now + 300))).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    s.clock.advance_secs(300);
    let r = s.rest("openim/admin_set_msg_read", json!({"Report_Account": "bob", "Peer_Account": "alice"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = s.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "bob"})).await;
    assert_eq!(r["AllC2CUnreadMsgNum"], 0, "{r}");
    s.stop().await;
}

#[tokio::test]
async fn friend_times_must_fit_a_javascript_number() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let item = json!({"To_Account": "bob", "AddSource": "AddSource_Type_Web", "AddTime": MAX_SAFE_INTEGER + 1});
    let r = s.rest("sns/friend_import", json!({"From_Account": "alice", "AddFriendItem": [item]})).await;
    assert_eq!(r["ErrorCode"], 30001, "{r}");
    let r = s.rest("sns/friend_get", json!({"From_Account": "alice", "StartIndex": 0})).await;
    assert_eq!(r["FriendNum"], 0, "{r}");
    s.stop().await;
}

#[tokio::test]
async fn device_ids_are_at_most_128_bytes_of_visible_text() {
    let s = TestServer::spawn().await;
    let sig = s.usersig("bob");
    for device in ["x".repeat(60 * 1024), "x".repeat(129), String::new(), "d\u{202E}1".into(), "d\u{0}".into()] {
        let (mut raw, r) = Raw::login(&s, "bob", &sig, &device).await;
        assert_eq!(r["code"], 6017, "device of {} bytes: {r}", device.len());
        assert!(raw.closed().await);
    }
    let r = s.rest("openim/query_online_status", json!({"To_Account": ["bob"]})).await;
    assert_eq!(r["ErrorList"][0]["ErrorCode"], 70107, "no login registered bob: {r}");
    let (_, r) = Raw::login(&s, "bob", &sig, &"x".repeat(128)).await;
    assert_eq!(r["op"], "logged_in", "{r}");
    s.stop().await;
}

#[tokio::test]
async fn usersigs_dated_ahead_of_the_clock_are_refused_so_none_outlives_a_kick() {
    let s = TestServer::spawn().await;
    s.import(&["bob"]).await;
    let now = s.clock.now_secs();

    // Five minutes of clock skew are tolerated; more is refused at every door.
    let r = rest_as(
        &s,
        ADMIN,
        &sig_at(ADMIN, now + 300),
        "im_open_login_svc/account_check",
        json!({"CheckItem": [{"UserID": "bob"}]}),
    )
    .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let ahead = sig_at(ADMIN, now + 301);
    let r =
        rest_as(&s, ADMIN, &ahead, "im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": "bob"}]})).await;
    assert_eq!(r["ErrorCode"], 70003, "{r}");
    let (status, r) = upload(&s, "bob", &sig_at("bob", now + 3600)).await;
    assert_eq!((status, &r["ErrorCode"]), (401, &json!(70003)), "{r}");
    assert_eq!(stored_files(&s.config.media.dir), 0);

    // A sig dated a day ahead, made before a kick, would have passed the kick's "issued before" test.
    let tomorrow = sig_at("bob", now + 86_400);
    let r = s.rest("im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let (mut raw, r) = Raw::login(&s, "bob", &tomorrow, "d").await;
    assert_eq!(r["code"], 70003, "{r}");
    assert!(raw.closed().await);
    // Once its day has come it is an ordinary sig issued after the kick.
    s.clock.advance_secs(86_400);
    let (_, r) = Raw::login(&s, "bob", &tomorrow, "d").await;
    assert_eq!(r["op"], "logged_in", "{r}");
    s.stop().await;
}

#[tokio::test]
async fn upload_names_with_invisible_characters_are_refused() {
    let s = TestServer::spawn().await;
    // "invoice\u{202E}fdp.exe" shows as "invoiceexe.pdf".
    for name in ["invoice\u{202E}fdp.exe", "a\u{200B}.txt", "a\u{0}.txt", "a/b.txt"] {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/media", s.base_url()))
            .query(&[("type", "file"), ("filename", name), ("identifier", "alice"), ("usersig", &s.usersig("alice"))])
            .body("hello")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let r: Value = resp.json().await.unwrap();
        assert_eq!((status, &r["ErrorCode"]), (400, &json!(60008)), "{name:?}: {r}");
    }
    assert_eq!(stored_files(&s.config.media.dir), 0);
    s.stop().await;
}

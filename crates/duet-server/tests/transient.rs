//! Transient sessions (`"transient": true` at login): one-shot tools beside the user's devices. They take no
//! slot of the multi-device policy, kick no one and are not kicked by another login, leave the user's
//! online status alone, get pushes only when `live`, and are still closed by the admin's kick. A user has
//! at most 16 at once: another replaces the oldest.

use std::collections::VecDeque;
use std::time::Duration;

use duet_test_support::{TestServer, text};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(5);

/// A raw protocol client; frames that arrive while waiting for an answer are kept as events.
struct Raw {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    events: VecDeque<Value>,
    next_id: u64,
}

impl Raw {
    /// Logs `user` in with `extra` fields added to the login frame; asserts success.
    async fn login(server: &TestServer, user: &str, platform: &str, device: &str, extra: Value) -> Raw {
        let url = format!("ws://{}/v1/connect", server.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connect");
        let mut raw = Raw { ws, events: VecDeque::new(), next_id: 0 };
        let mut frame = json!({"op": "login", "protocol": 1, "user": user, "usersig": server.usersig(user),
                               "platform": platform, "device": device});
        for (k, v) in extra.as_object().unwrap() {
            frame[k] = v.clone();
        }
        let reply = raw.request(frame).await;
        assert_eq!(reply["op"], "logged_in", "{reply}");
        raw
    }

    async fn device(server: &TestServer, user: &str, platform: &str, device: &str) -> Raw {
        Raw::login(server, user, platform, device, json!({})).await
    }

    async fn transient(server: &TestServer, user: &str, platform: &str, device: &str, live: bool) -> Raw {
        Raw::login(server, user, platform, device, json!({"transient": true, "live": live})).await
    }

    async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("no frame within 5 s") {
                Some(Ok(Ws::Text(t))) => return Some(serde_json::from_str(&t).expect("frames are JSON")),
                Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn request(&mut self, mut frame: Value) -> Value {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        self.ws.send(Ws::Text(frame.to_string().into())).await.expect("sending a frame");
        loop {
            let f = self.next().await.expect("the connection closed before the answer");
            if f["id"] == self.next_id && f["op"] != "entry" {
                return f;
            }
            self.events.push_back(f);
        }
    }

    async fn event(&mut self) -> Value {
        match self.events.pop_front() {
            Some(e) => e,
            None => self.next().await.expect("the connection closed before an event"),
        }
    }

    /// Answers a ping, and nothing came before the answer (no kick, no push).
    async fn alone_and_alive(&mut self) {
        let pong = self.request(json!({"op": "ping"})).await;
        assert_eq!(pong["op"], "pong", "{pong}");
        assert!(self.events.is_empty(), "unexpected frames: {:?}", self.events);
    }

    async fn closed(&mut self) -> bool {
        self.next().await.is_none()
    }
}

async fn status(server: &TestServer, user: &str) -> Value {
    let r = server.rest("openim/query_online_status", json!({"To_Account": [user], "IsNeedDetail": 1})).await;
    r["QueryResult"][0].clone()
}

async fn sendmsg(server: &TestServer, seq: u32, msg: &str) {
    let body = json!({"From_Account": "administrator", "To_Account": "bob", "MsgSeq": seq, "MsgRandom": seq,
                      "MsgBody": text(msg)});
    let r = server.rest("openim/sendmsg", body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

#[tokio::test]
async fn a_transient_session_neither_kicks_nor_is_kicked_by_the_multi_device_policy() {
    let server = TestServer::spawn_with(|c| c.core.login_policy.mode = duet_core::hub::MultiLogin::Single).await;
    let mut phone = Raw::device(&server, "bob", "iPhone", "p1").await;
    // Same user, the policy's one group, even the same device id: the device stays.
    let mut tool = Raw::transient(&server, "bob", "iPhone", "p1", false).await;
    let mut tool2 = Raw::transient(&server, "bob", "Linux", "cli", true).await;
    phone.alone_and_alive().await;
    let s = status(&server, "bob").await;
    assert_eq!(
        s["Detail"],
        json!([{"Platform": "iPhone", "Status": "Online"}]),
        "transient sessions are not shown: {s}"
    );

    // A new device replaces the phone under `single`, and leaves the transient sessions alone.
    let _web = Raw::device(&server, "bob", "Web", "w1").await;
    assert_eq!(phone.event().await["op"], "kicked");
    assert!(phone.closed().await);
    tool.alone_and_alive().await;
    let sent =
        tool.request(json!({"op": "send", "to": "administrator", "random": 7, "body": text("from a tool")})).await;
    assert_eq!(sent["op"], "sent", "a transient session makes requests: {sent}");
    tool2.request(json!({"op": "ping"})).await;
}

#[tokio::test]
async fn a_transient_session_gets_pushes_only_when_live() {
    let server = TestServer::spawn().await;
    server.import(&["bob"]).await;
    let mut quiet = Raw::transient(&server, "bob", "Linux", "q", false).await;
    let mut live = Raw::transient(&server, "bob", "Linux", "l", true).await;
    let mut phone = Raw::device(&server, "bob", "Android", "p").await;
    sendmsg(&server, 1, "hello").await;
    for session in [&mut phone, &mut live] {
        let e = session.event().await;
        assert_eq!(e["entry"]["msg"]["body"], text("hello"), "{e}");
    }
    // The push went to every session in one call: had the quiet one got it, it would precede this answer.
    quiet.alone_and_alive().await;
    let page = quiet.request(json!({"op": "sync", "after": 0})).await;
    assert_eq!(page["entries"][0]["msg"]["body"], text("hello"), "it pulls what it wants: {page}");
}

#[tokio::test]
async fn a_transient_session_leaves_presence_alone_and_the_admin_kick_closes_it() {
    let server = TestServer::spawn().await;
    server.import(&["bob"]).await;
    let mut tool = Raw::transient(&server, "bob", "Linux", "cli", false).await;
    assert_eq!(status(&server, "bob").await["Status"], "Offline", "a transient session is not a device online");

    // The user's phone drops while the tool is connected: the user is PushOnline, as with no tool.
    let phone = Raw::device(&server, "bob", "iPhone", "p1").await;
    assert_eq!(status(&server, "bob").await["Status"], "Online");
    drop(phone);
    let deadline = tokio::time::Instant::now() + WAIT;
    while status(&server, "bob").await["Status"] != "PushOnline" {
        assert!(tokio::time::Instant::now() < deadline, "not PushOnline: {}", status(&server, "bob").await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The tool logging out does not end the phone's PushOnline state either.
    let mut other = Raw::transient(&server, "bob", "Linux", "cli2", false).await;
    assert_eq!(other.request(json!({"op": "logout"})).await["op"], "ok");
    assert!(other.closed().await);
    assert_eq!(status(&server, "bob").await["Status"], "PushOnline");

    server.clock.advance_secs(1);
    let r = server.rest("im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let e = tool.event().await;
    assert_eq!((e["op"].as_str(), e["code"].as_u64()), (Some("kicked"), Some(6208)), "{e}");
    assert!(tool.closed().await);
}

#[tokio::test]
async fn a_user_holds_at_most_16_transient_sessions_and_a_new_one_replaces_the_oldest() {
    let server = TestServer::spawn().await;
    let mut phone = Raw::device(&server, "bob", "iPhone", "p1").await;
    let mut tools = Vec::new();
    for i in 0..duet_core::hub::MAX_TRANSIENT_SESSIONS {
        tools.push(Raw::transient(&server, "bob", "Linux", &format!("cli{i}"), false).await);
    }
    for tool in &mut tools {
        tool.alone_and_alive().await;
    }
    // One more: the oldest goes, closed as replaced (4001), without a `kicked` event.
    let mut newest = Raw::transient(&server, "bob", "Linux", "cli-new", false).await;
    match tokio::time::timeout(WAIT, tools[0].ws.next()).await.expect("the oldest is closed") {
        Some(Ok(Ws::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4001, "{frame:?}"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    for tool in &mut tools[1..] {
        tool.alone_and_alive().await;
    }
    newest.alone_and_alive().await;
    // Devices are not counted, nor touched.
    phone.alone_and_alive().await;
}

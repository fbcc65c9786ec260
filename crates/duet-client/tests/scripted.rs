//! The SDK against a scripted server: a WebSocket on `127.0.0.1:0` that the test drives frame by
//! frame, to produce what a real server does only by accident: gaps, duplicates, dropped connections in
//! the middle of a request, unreadable frames, missing pongs.

mod common;

use std::time::Duration;

use common::*;
use duet_client::{Client, ClientConfig, ConnectionState, Error, Event, Events, Platform};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const T: i64 = 1_700_000_000;

struct Fake {
    listener: TcpListener,
}

impl Fake {
    async fn start() -> Fake {
        Fake { listener: TcpListener::bind("127.0.0.1:0").await.unwrap() }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.listener.local_addr().unwrap())
    }

    async fn accept(&self) -> Conn {
        within("a client connection", async {
            let (stream, _) = self.listener.accept().await.unwrap();
            let ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            Conn { ws }
        })
        .await
    }
}

struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Conn {
    /// The next frame that is not a ping (pings are answered).
    async fn recv(&mut self) -> Value {
        within("a frame from the client", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(WsMessage::Text(t))) => {
                        let v: Value = serde_json::from_str(t.as_str()).unwrap();
                        if v["op"] == "ping" {
                            self.send(json!({"op": "pong", "id": v["id"], "server_time": T * 1000})).await;
                            continue;
                        }
                        return v;
                    }
                    Some(Ok(_)) => continue,
                    other => panic!("the client connection ended: {other:?}"),
                }
            }
        })
        .await
    }

    async fn expect(&mut self, op: &str) -> Value {
        let f = self.recv().await;
        assert_eq!(f["op"], op, "expected {op}, got {f}");
        f
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(WsMessage::text(v.to_string())).await.unwrap();
    }

    async fn send_raw(&mut self, m: WsMessage) {
        self.ws.send(m).await.unwrap();
    }

    async fn login(&mut self, latest: u64) -> Value {
        let f = self.expect("login").await;
        assert_eq!(f["protocol"], 1);
        self.send(
            json!({"op": "logged_in", "id": f["id"], "user": f["user"], "server_time": T * 1000, "latest": latest}),
        )
        .await;
        f
    }

    /// Answers the next `sync`, which must start after `after`.
    async fn sync(&mut self, after: u64, entries: Vec<Value>, latest: u64, more: bool) {
        let f = self.expect("sync").await;
        assert_eq!(f["after"], after, "{f}");
        self.send(json!({"op": "synced", "id": f["id"], "entries": entries, "latest": latest, "more": more})).await;
    }

    async fn conversations(&mut self, items: Value) {
        let f = self.expect("conversations").await;
        self.send(json!({"op": "conversations", "id": f["id"], "items": items})).await;
    }
}

fn message(from: &str, to: &str, conv_seq: u64, random: u32, text: &str) -> Value {
    json!({"from": from, "to": to, "msg_key": format!("{conv_seq}_{random}_{}", T + conv_seq as i64),
           "seq": conv_seq, "random": random, "time": T + conv_seq as i64, "conv_seq": conv_seq,
           "body": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]})
}

/// A message entry from alice to bob; conv_seq follows the log seq.
fn msg_entry(seq: u64, text: &str) -> Value {
    json!({"kind": "msg", "seq": seq, "msg": message("alice", "bob", seq, seq as u32, text)})
}

fn live(entry: Value) -> Value {
    json!({"op": "entry", "entry": entry})
}

fn bob_config(fake: &Fake) -> ClientConfig {
    config(&fake.base_url(), "bob", "sig", Platform::IPhone)
}

/// Connects bob to the fake; the fake answers login with `latest`, then `script` runs the catch-up.
async fn connect(fake: &Fake, cfg: ClientConfig, latest: u64) -> (Client, Events, Conn) {
    let connecting = tokio::spawn(Client::connect(cfg));
    let mut conn = fake.accept().await;
    conn.login(latest).await;
    if latest > 0 {
        let entries = (1..=latest).map(|s| msg_entry(s, &format!("m{s}"))).collect();
        conn.sync(0, entries, latest, false).await;
    }
    conn.conversations(json!([])).await;
    let (client, mut events) = within("connect", connecting).await.unwrap().expect("connect");
    until_sync_complete(&mut events).await;
    (client, events, conn)
}

/// Logs `client` out, answering its `logout` on `conn`; the event stream then ends.
async fn logout(client: &Client, conn: &mut Conn, events: &mut Events) {
    let logging_out = tokio::spawn({
        let client = client.clone();
        async move { client.logout().await }
    });
    let f = conn.expect("logout").await;
    conn.send(json!({"op": "ok", "id": f["id"]})).await;
    within("logout", logging_out).await.unwrap().unwrap();
    let rest = until_end(events).await;
    assert_eq!(rest.last(), Some(&Event::Connection(ConnectionState::Disconnected { reason: "logged out".into() })));
}

#[tokio::test]
async fn gaps_are_filled_duplicates_dropped_and_everything_raised_once_in_order() {
    let fake = Fake::start().await;
    let connecting = tokio::spawn(Client::connect(bob_config(&fake)));
    let mut c = fake.accept().await;
    let login = c.login(3).await;
    assert_eq!((login["user"].as_str(), login["platform"].as_str()), (Some("bob"), Some("iPhone")));
    // The catch-up comes in two pages.
    c.sync(0, vec![msg_entry(1, "m1"), msg_entry(2, "m2")], 3, true).await;
    c.sync(2, vec![msg_entry(3, "m3")], 3, false).await;
    c.conversations(
        json!([{"peer": "alice", "last": message("alice", "bob", 3, 3, "m3"), "unread": 3, "time": T + 3}]),
    )
    .await;
    let (bob, mut events) = connecting.await.unwrap().unwrap();
    let sync = within("the catch-up", async {
        let mut v = vec![next(&mut events).await, next(&mut events).await];
        v.extend(until_sync_complete(&mut events).await);
        v
    })
    .await;
    assert_eq!(
        describe_all(&sync),
        [
            "connecting",
            "connected",
            "sync-started",
            "msg alice->bob: m1",
            "msg alice->bob: m2",
            "msg alice->bob: m3",
            "conv alice unread 3",
            "sync-complete"
        ]
    );

    c.send(live(msg_entry(4, "m4"))).await;
    c.send(live(msg_entry(4, "m4"))).await; // a duplicate
    c.send(live(msg_entry(2, "m2"))).await; // an old one
    c.send(live(msg_entry(7, "m7"))).await; // 5 and 6 were lost
    // The client pulls from its cursor before applying 7.
    c.sync(4, vec![msg_entry(5, "m5"), msg_entry(6, "m6"), msg_entry(7, "m7")], 7, false).await;
    c.send(live(msg_entry(7, "m7"))).await; // late duplicate of what the sync brought
    c.send(live(json!({"kind": "msg", "seq": 0, "msg": message("alice", "bob", 0, 99, "typing")}))).await;
    c.send(live(json!({"kind": "read", "seq": 8, "peer": "alice", "time": T + 7}))).await;
    c.send(live(json!({"kind": "recall", "seq": 9, "peer": "alice", "msg_key": format!("7_7_{}", T + 7)}))).await;

    let mut seen = Vec::new();
    within("the live entries", async {
        loop {
            let e = next(&mut events).await;
            let last = matches!(e, Event::MessageRecalled { .. });
            seen.push(e);
            if last {
                break;
            }
        }
        // The recall changes the conversation's last message.
        seen.push(next(&mut events).await);
    })
    .await;
    assert_eq!(
        describe_all(&seen),
        [
            "msg alice->bob: m4",
            "conv alice unread 4",
            "msg alice->bob: m5",
            "msg alice->bob: m6",
            "msg alice->bob: m7",
            "conv alice unread 7",
            "msg alice->bob: typing",
            "conv alice unread 0",
            &format!("recalled alice 7_7_{}", T + 7),
            "conv alice unread 0",
        ]
    );
    let Some(Event::ConversationChanged(conv)) = seen.last() else { unreachable!() };
    assert!(conv.last.as_ref().unwrap().recalled);

    // The local store has 1..7 and knows 7 was recalled; the online-only message is not stored.
    let page = bob.get_messages("alice", 10, None).await.unwrap();
    assert_eq!(page.iter().map(|m| m.conv_seq).collect::<Vec<_>>(), [7, 6, 5, 4, 3, 2, 1]);
    assert!(page[0].recalled);
    assert_eq!(page[0].log_seq, Some(7));

    logout(&bob, &mut c, &mut events).await;
}

#[tokio::test]
async fn a_send_cut_off_by_a_lost_connection_is_retried_and_not_raised_back() {
    let fake = Fake::start().await;
    let (bob, mut events, mut c) = connect(&fake, bob_config(&fake), 0).await;

    let sending = tokio::spawn({
        let bob = bob.clone();
        async move { bob.send_text("alice", "hello").await }
    });
    let first = c.expect("send").await;
    assert_eq!(first["to"], "alice");
    // The server committed it (log seq 1) but the connection drops before `sent`.
    drop(c);
    match next(&mut events).await {
        Event::Connection(ConnectionState::Disconnected { .. }) => {}
        other => panic!("expected a disconnection, got {other:?}"),
    }

    let mut c = fake.accept().await;
    c.login(1).await;
    let random = first["random"].as_u64().unwrap() as u32;
    let own = json!({"kind": "msg", "seq": 1, "msg": message("bob", "alice", 1, random, "hello")});
    c.sync(0, vec![own], 1, false).await;
    // The retry: the same random and body.
    let retry = c.expect("send").await;
    assert_eq!((&retry["random"], &retry["body"]), (&first["random"], &first["body"]));
    c.send(json!({"op": "sent", "id": retry["id"], "msg_key": format!("1_{random}_{}", T + 1),
                  "seq": 1, "random": random, "time": T + 1, "conv_seq": 1, "log_seq": 1}))
        .await;
    c.conversations(json!([])).await;
    let sent = within("the retried send", sending).await.unwrap().expect("sent after the reconnect");
    assert_eq!((sent.conv_seq, sent.log_seq), (1, Some(1)));

    let resync = until_sync_complete(&mut events).await;
    assert!(
        !resync.iter().any(|e| matches!(e, Event::NewMessage(_))),
        "bob's own message is not raised back: {resync:?}"
    );
    // The next live entry is raised as usual.
    c.send(live(msg_entry(2, "reply"))).await;
    assert_eq!(next_message(&mut events).await.text(), "reply");
    logout(&bob, &mut c, &mut events).await;
}

#[tokio::test]
async fn requests_wait_for_the_reconnection_or_fail_when_it_never_comes() {
    let fake = Fake::start().await;
    let mut cfg = bob_config(&fake);
    cfg.request_timeout = Duration::from_millis(1500);
    let (bob, mut events, c) = connect(&fake, cfg, 0).await;
    drop(c);
    match next(&mut events).await {
        Event::Connection(ConnectionState::Disconnected { .. }) => {}
        other => panic!("expected a disconnection, got {other:?}"),
    }
    // Issued while disconnected: waits, then goes out on the new connection.
    let asking = tokio::spawn({
        let bob = bob.clone();
        async move { bob.conversations().await }
    });
    let mut c = fake.accept().await;
    c.login(0).await;
    c.conversations(json!([])).await; // the catch-up's
    c.conversations(json!([{"peer": "carol", "last": null, "unread": 0, "time": T}])).await;
    let list = within("conversations", asking).await.unwrap().unwrap();
    assert_eq!(list[0].peer, "carol");
    until_sync_complete(&mut events).await;

    // Now the server goes away for good: requests fail with a clear error at their deadline.
    drop(c);
    drop(fake);
    let err = bob.send_text("alice", "anyone?").await.expect_err("no server");
    assert!(matches!(err, Error::NotConnected(_)), "{err}");
    assert!(err.to_string().starts_with("not connected"), "{err}");
    // Logging out while disconnected just stops.
    within("logout", bob.logout()).await.unwrap();
    let rest = until_end(&mut events).await;
    assert!(matches!(
        rest.last(),
        Some(Event::Connection(ConnectionState::Disconnected { reason })) if reason == "logged out"
    ));
}

#[tokio::test]
async fn bad_frames_never_break_the_client() {
    let fake = Fake::start().await;
    let (bob, mut events, mut c) = connect(&fake, bob_config(&fake), 0).await;
    c.send_raw(WsMessage::text("not json")).await;
    c.send_raw(WsMessage::text(r#"{"op":"from_the_future","x":1}"#)).await;
    c.send_raw(WsMessage::binary(vec![1, 2, 3])).await;
    c.send(json!({"op": "entry", "entry": {"kind": "msg", "seq": "one"}})).await;
    c.send(json!({"op": "synced", "id": 999, "entries": [], "latest": 0, "more": false})).await;
    c.send(json!({"op": "ok", "id": 12345})).await;
    // A message whose body holds an element this SDK does not know: the rest of it is kept.
    let mut odd = message("alice", "bob", 1, 1, "known");
    odd["body"].as_array_mut().unwrap().push(json!({"MsgType": "TIMFutureElem", "MsgContent": {}}));
    c.send(live(json!({"kind": "msg", "seq": 1, "msg": odd}))).await;
    let m = next_message(&mut events).await;
    assert_eq!((m.text().as_str(), m.elems.len()), ("known", 1));

    // An unreadable answer fails its request with a protocol error; the session goes on.
    let asking = tokio::spawn({
        let bob = bob.clone();
        async move { bob.conversations().await }
    });
    let f = c.expect("conversations").await;
    c.send(json!({"op": "conversations", "id": f["id"], "items": "nope"})).await;
    let err = within("conversations", asking).await.unwrap().expect_err("unreadable");
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    // An answer of the wrong kind, too.
    let asking = tokio::spawn({
        let bob = bob.clone();
        async move { bob.mark_read("alice").await }
    });
    let f = c.expect("mark_read").await;
    c.send(json!({"op": "pong", "id": f["id"], "server_time": 0})).await;
    let err = within("mark_read", asking).await.unwrap().expect_err("wrong op");
    assert!(matches!(err, Error::Protocol(_)), "{err}");

    c.send(live(msg_entry(2, "still here"))).await;
    assert_eq!(next_message(&mut events).await.text(), "still here");
    logout(&bob, &mut c, &mut events).await;
}

#[tokio::test]
async fn a_missing_pong_means_a_dead_connection() {
    let fake = Fake::start().await;
    let mut cfg = bob_config(&fake);
    cfg.heartbeat = Duration::from_millis(100);
    cfg.request_timeout = Duration::from_millis(500);
    let (bob, mut events, mut c) = connect(&fake, cfg, 0).await;
    // Swallow pings without answering.
    let ping = within("a ping", async {
        loop {
            match c.ws.next().await {
                Some(Ok(WsMessage::Text(t))) if t.as_str().contains("\"ping\"") => return t,
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await;
    assert!(ping.as_str().starts_with(r#"{"op":"ping","id":"#), "{ping}");
    // The client gives up on this connection and comes back.
    let mut c2 = fake.accept().await;
    c2.login(0).await;
    c2.conversations(json!([])).await;
    let resync = within("the reconnection", async {
        let mut seen = Vec::new();
        loop {
            let e = next(&mut events).await;
            let done = e == Event::SyncComplete;
            seen.push(e);
            if done {
                return seen;
            }
        }
    })
    .await;
    assert_eq!(describe_all(&resync), ["disconnected", "connecting", "connected", "sync-started", "sync-complete"]);
    drop(c);
    logout(&bob, &mut c2, &mut events).await;
}

#[tokio::test]
async fn kicked_and_expired_sessions_stop_the_client() {
    let fake = Fake::start().await;
    let (bob, mut events, mut c) = connect(&fake, bob_config(&fake), 0).await;
    c.send(json!({"op": "kicked", "code": 6208, "info": "logged in elsewhere"})).await;
    assert_eq!(next_app_event(&mut events).await, Event::Kicked { code: 6208, info: "logged in elsewhere".into() });
    until_end(&mut events).await;
    assert!(matches!(bob.send_text("alice", "x").await, Err(Error::Closed)));
    drop(c);

    let (_bob, mut events, mut c) = connect(&fake, bob_config(&fake), 0).await;
    c.send(json!({"op": "sig_expired", "code": 6206, "info": "expired"})).await;
    assert_eq!(next_app_event(&mut events).await, Event::SigExpired);
    until_end(&mut events).await;

    // An expired UserSig at login: connect fails with the server's code.
    let connecting = tokio::spawn(Client::connect(bob_config(&fake)));
    let mut c = fake.accept().await;
    let f = c.expect("login").await;
    c.send(json!({"op": "error", "id": f["id"], "code": 70001, "info": "usersig expired"})).await;
    let err = within("connect", connecting).await.unwrap().expect_err("refused");
    assert_eq!(err.code(), Some(70001));
}

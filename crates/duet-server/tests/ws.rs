//! The client protocol over a raw WebSocket (no SDK): login and its refusals, live pushes, sync from a
//! cursor, the multi-device policy, kicks, presence, read state, online-only messages and recent contacts.

use std::collections::VecDeque;
use std::time::Duration;

use duet_core::clock::Clock;
use duet_test_support::{SDKAPPID, SECRET_KEY, TestServer, text};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(5);

/// A raw protocol client: frames in, frames out; events that arrive while waiting for an answer are kept.
struct Raw {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    events: VecDeque<Value>,
    next_id: u64,
}

impl Raw {
    async fn connect(server: &TestServer) -> Raw {
        let url = format!("ws://{}/v1/connect", server.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connect");
        Raw { ws, events: VecDeque::new(), next_id: 0 }
    }

    /// Connects and logs in with a fresh UserSig; asserts success.
    async fn login(server: &TestServer, user: &str, platform: &str, device: &str) -> (Raw, Value) {
        let mut raw = Raw::connect(server).await;
        let reply = raw.login_with(user, &server.usersig(user), platform, device).await;
        assert_eq!(reply["op"], "logged_in", "{reply}");
        (raw, reply)
    }

    async fn login_with(&mut self, user: &str, sig: &str, platform: &str, device: &str) -> Value {
        self.request(
            json!({"op": "login", "protocol": 1, "user": user, "usersig": sig, "platform": platform, "device": device}),
        )
        .await
    }

    async fn send(&mut self, frame: Value) {
        self.ws.send(Ws::Text(frame.to_string().into())).await.expect("sending a frame");
    }

    /// The next frame from the server (`None`: the connection closed).
    async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("no frame within 5 s") {
                Some(Ok(Ws::Text(t))) => return Some(serde_json::from_str(&t).expect("frames are JSON")),
                Some(Ok(Ws::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends a request with a fresh id and returns the answer carrying that id.
    async fn request(&mut self, mut frame: Value) -> Value {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        self.send(frame).await;
        loop {
            let f = self.next().await.expect("the connection closed before the answer");
            if f["id"] == self.next_id && f["op"] != "entry" {
                return f;
            }
            self.events.push_back(f);
        }
    }

    /// The next event (a frame that answers no request).
    async fn event(&mut self) -> Value {
        match self.events.pop_front() {
            Some(e) => e,
            None => self.next().await.expect("the connection closed before an event"),
        }
    }

    async fn closed(&mut self) -> bool {
        self.next().await.is_none()
    }
}

async fn sendmsg(server: &TestServer, from: &str, to: &str, seq: u32, msg: &str) -> Value {
    let r = server
        .rest(
            "openim/sendmsg",
            json!({"From_Account": from, "To_Account": to, "MsgSeq": seq, "MsgRandom": seq + 1000, "MsgBody": text(msg)}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    r
}

async fn status(server: &TestServer, user: &str) -> Value {
    let r = server.rest("openim/query_online_status", json!({"To_Account": [user], "IsNeedDetail": 1})).await;
    r["QueryResult"][0].clone()
}

#[tokio::test]
async fn a_request_before_login_is_refused_with_6014() {
    let server = TestServer::spawn().await;
    let mut raw = Raw::connect(&server).await;
    let reply = raw.request(json!({"op": "sync", "after": 0})).await;
    assert_eq!((reply["op"].as_str(), reply["code"].as_u64()), (Some("error"), Some(6014)), "{reply}");
    assert!(raw.closed().await);
}

#[tokio::test]
async fn bad_logins_get_tencent_codes_and_the_connection_closes() {
    let server = TestServer::spawn().await;
    let now = server.clock.now_secs();
    let cases = [
        (duet_core::usersig::generate(SECRET_KEY, SDKAPPID, "bob", now - 100, 10, None), "bob", 70001),
        (duet_core::usersig::generate(SECRET_KEY, SDKAPPID, "alice", now, 100, None), "bob", 70013),
        (duet_core::usersig::generate("another key", SDKAPPID, "bob", now, 100, None), "bob", 70009),
        (duet_core::usersig::generate(SECRET_KEY, 1, "bob", now, 100, None), "bob", 70014),
        ("garbage".to_owned(), "bob", 70003),
        (String::new(), "bob", 70002),
        (server.usersig("x".repeat(33).as_str()), &*"x".repeat(33), 7003),
    ];
    for (sig, user, code) in cases {
        let mut raw = Raw::connect(&server).await;
        let reply = raw.login_with(user, &sig, "iPhone", "d1").await;
        assert_eq!(reply["code"], code, "{user}: {reply}");
        assert!(raw.closed().await, "the connection closes after a refused login");
    }
    let mut raw = Raw::connect(&server).await;
    let sig = server.usersig("bob");
    let reply = raw
        .request(
            json!({"op": "login", "protocol": 2, "user": "bob", "usersig": sig, "platform": "iPhone", "device": "d"}),
        )
        .await;
    assert_eq!(reply["code"], 6022, "{reply}");
}

#[tokio::test]
async fn every_relationship_request_refuses_an_invalid_user_id_with_7003() {
    let server = TestServer::spawn().await;
    let (mut raw, _) = Raw::login(&server, "alice", "Web", "d1").await;
    let long = "x".repeat(33);
    for peer in ["", " bob", long.as_str(), "b\u{7}ob"] {
        for op in ["friend_delete", "friend_accept", "friend_decline", "black_delete", "black_add"] {
            let reply = raw.request(json!({"op": op, "peer": peer, "single": true})).await;
            assert_eq!(
                (reply["op"].as_str(), reply["code"].as_u64()),
                (Some("error"), Some(7003)),
                "{op} {peer:?}: {reply}"
            );
        }
        let reply = raw.request(json!({"op": "friend_add", "to": peer})).await;
        assert_eq!(reply["code"], 7003, "friend_add {peer:?}: {reply}");
    }
    // A valid UserID with no account is answered as such, not as an invalid one.
    let reply = raw.request(json!({"op": "friend_delete", "peer": "nobody", "single": true})).await;
    assert_eq!(reply["code"], 31704, "{reply}");
}

#[tokio::test]
async fn first_login_registers_the_account() {
    let server = TestServer::spawn().await;
    let (_bob, reply) = Raw::login(&server, "newcomer", "Android", "d1").await;
    assert_eq!(reply["latest"], 0);
    let r = server.rest("im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": "newcomer"}]})).await;
    assert_eq!(r["ResultItem"][0]["AccountStatus"], "Imported", "{r}");
}

#[tokio::test]
async fn a_client_send_is_pushed_to_the_peer_and_to_the_senders_log() {
    let server = TestServer::spawn().await;
    let (mut alice, _) = Raw::login(&server, "alice", "iPhone", "a1").await;
    let (mut bob, _) = Raw::login(&server, "bob", "Android", "b1").await;
    let sent = alice.request(json!({"op": "send", "to": "bob", "seq": 5, "random": 77, "body": text("hi bob")})).await;
    assert_eq!(sent["op"], "sent", "{sent}");
    assert_eq!(sent["msg_key"], format!("5_77_{}", server.clock.now_secs()));
    assert_eq!((sent["conv_seq"].as_u64(), sent["log_seq"].as_u64()), (Some(1), Some(1)));

    let entry = bob.event().await;
    assert_eq!(entry["op"], "entry");
    assert_eq!(entry["entry"]["kind"], "msg");
    assert_eq!(entry["entry"]["seq"], 1);
    let msg = &entry["entry"]["msg"];
    assert_eq!((msg["from"].as_str(), msg["to"].as_str()), (Some("alice"), Some("bob")));
    assert_eq!(msg["body"], text("hi bob"));
    assert_eq!(msg["msg_key"], sent["msg_key"]);
    // The sender's own log has it too, for her other devices.
    let own = alice.event().await;
    assert_eq!(
        (own["entry"]["seq"].as_u64(), own["entry"]["msg"]["msg_key"].clone()),
        (Some(1), sent["msg_key"].clone())
    );

    // Bad sends are refused with Tencent's codes.
    let bad = alice.request(json!({"op": "send", "to": "nobody", "random": 1, "body": text("x")})).await;
    assert_eq!(bad["code"], 90012, "{bad}");
    let bad = alice.request(json!({"op": "send", "to": "bob", "random": 1, "body": []})).await;
    assert_eq!(bad["code"], 90002, "{bad}");
    let bad = alice
        .request(json!({"op": "send", "to": "bob", "random": 1, "body": [{"MsgType": "TIMLocationElem", "MsgContent": {"Latitude": 99, "Longitude": 0}}]}))
        .await;
    assert_eq!(bad["code"], 90010, "{bad}");
    let bad = alice.request(json!({"op": "send", "to": "bob"})).await;
    assert_eq!(bad["code"], 6017, "{bad}");
}

#[tokio::test]
async fn offline_messages_wait_in_the_log_and_sync_pages_from_a_cursor() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    for i in 1..=5 {
        sendmsg(&server, "alice", "bob", i, &format!("m{i}")).await;
    }
    let (mut bob, reply) = Raw::login(&server, "bob", "iPhone", "b1").await;
    assert_eq!(reply["latest"], 5);
    let page = bob.request(json!({"op": "sync", "after": 0, "limit": 3})).await;
    assert_eq!(page["op"], "synced", "{page}");
    assert_eq!(page["more"], true);
    let seqs: Vec<u64> = page["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let page = bob.request(json!({"op": "sync", "after": 3})).await;
    let bodies: Vec<Value> = page["entries"].as_array().unwrap().iter().map(|e| e["entry"].clone()).collect();
    assert_eq!(page["more"], false);
    assert_eq!(page["entries"][0]["msg"]["body"], text("m4"));
    assert_eq!(page["entries"][1]["msg"]["conv_seq"], 5);
    assert_eq!(bodies.len(), 2);
}

#[tokio::test]
async fn sync_positions_never_go_back_when_the_whole_log_expires_and_the_server_restarts() {
    let server = TestServer::spawn_with(|c| c.purge_interval = Duration::from_millis(20)).await;
    server.import(&["alice", "bob"]).await;
    for i in 1..=3 {
        sendmsg(&server, "alice", "bob", i, &format!("m{i}")).await;
    }
    // Past both retentions: the purge removes every entry of bob's log (and the conversation, whose unread
    // count is how we see the purge has run).
    server.clock.advance_secs(8 * 86_400);
    let unread = || async { server.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "bob"})).await };
    wait_for(unread, |r| r["AllC2CUnreadMsgNum"] == 0).await;
    let (_bob, reply) = Raw::login(&server, "bob", "iPhone", "b1").await;
    assert_eq!(reply["latest"], 3, "an emptied log keeps its position");
    drop(_bob);

    let server = server.restart().await;
    sendmsg(&server, "alice", "bob", 4, "m4").await;
    let (mut bob, reply) = Raw::login(&server, "bob", "iPhone", "b1").await;
    assert_eq!(reply["latest"], 4, "the next entry follows the last one ever given, across the restart");
    let page = bob.request(json!({"op": "sync", "after": 3})).await;
    assert_eq!(page["entries"][0]["seq"], 4, "{page}");
    assert_eq!(page["entries"][0]["msg"]["body"], text("m4"));
}

#[tokio::test]
async fn a_log_entry_whose_message_expired_first_delivers_nothing_even_if_a_new_message_reuses_its_row() {
    // History kept 1 day, offline entries 7: bob's entry outlives its message.
    let server = TestServer::spawn_with(|c| {
        c.purge_interval = Duration::from_millis(20);
        c.core.roaming_retention_secs = 86_400;
    })
    .await;
    server.import(&["alice", "bob", "carol", "dave"]).await;
    sendmsg(&server, "alice", "bob", 1, "for bob").await;
    server.clock.advance_secs(2 * 86_400);
    let unread = || async { server.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "bob"})).await };
    wait_for(unread, |r| r["AllC2CUnreadMsgNum"] == 0).await;
    // Every message is gone, so the next one may get the deleted one's row id.
    sendmsg(&server, "carol", "dave", 2, "for dave").await;

    let (mut bob, reply) = Raw::login(&server, "bob", "iPhone", "b1").await;
    assert_eq!(reply["latest"], 1);
    let page = bob.request(json!({"op": "sync", "after": 0})).await;
    assert_eq!(page["entries"], json!([]), "nothing of carol's message reaches bob: {page}");
}

#[tokio::test]
async fn a_second_device_on_the_same_platform_kicks_the_first() {
    let server = TestServer::spawn().await;
    let (mut phone1, _) = Raw::login(&server, "bob", "iPhone", "p1").await;
    let (mut pc, _) = Raw::login(&server, "bob", "PC", "pc1").await;
    let (mut phone2, _) = Raw::login(&server, "bob", "iPhone", "p2").await;
    let kicked = phone1.event().await;
    assert_eq!((kicked["op"].as_str(), kicked["code"].as_u64()), (Some("kicked"), Some(6208)), "{kicked}");
    assert!(phone1.closed().await);
    // The PC and the new phone both stay and both get the next message.
    sendmsg(&server, "administrator", "bob", 1, "to every device").await;
    for device in [&mut pc, &mut phone2] {
        let e = device.event().await;
        assert_eq!(e["entry"]["msg"]["body"], text("to every device"), "{e}");
    }
    let s = status(&server, "bob").await;
    assert_eq!(s["Status"], "Online", "{s}");
    assert_eq!(s["Detail"].as_array().unwrap().len(), 2, "{s}");
}

#[tokio::test]
async fn the_single_platform_policy_keeps_one_device() {
    let server = TestServer::spawn_with(|c| c.core.login_policy.mode = duet_core::hub::MultiLogin::Single).await;
    let (mut phone, _) = Raw::login(&server, "bob", "iPhone", "p1").await;
    let (_web, _) = Raw::login(&server, "bob", "Web", "w1").await;
    assert_eq!(phone.event().await["op"], "kicked");
}

#[tokio::test]
async fn two_instances_per_platform_when_configured() {
    let server = TestServer::spawn_with(|c| c.core.login_policy.instances = 2).await;
    let (mut p1, _) = Raw::login(&server, "bob", "Android", "p1").await;
    let (mut p2, _) = Raw::login(&server, "bob", "Android", "p2").await;
    let (_p3, _) = Raw::login(&server, "bob", "Android", "p3").await;
    assert_eq!(p1.event().await["op"], "kicked", "the earliest of three goes");
    let pong = p2.request(json!({"op": "ping"})).await;
    assert_eq!(pong["op"], "pong", "{pong}");
}

#[tokio::test]
async fn rest_kick_logs_out_every_device_and_revokes_old_sigs() {
    let server = TestServer::spawn().await;
    let old_sig = server.usersig("bob");
    let (mut phone, _) = Raw::login(&server, "bob", "iPhone", "p1").await;
    let (mut pc, _) = Raw::login(&server, "bob", "PC", "pc1").await;
    server.clock.advance_secs(1);
    let r = server.rest("im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    for device in [&mut phone, &mut pc] {
        let e = device.event().await;
        assert_eq!(e["op"], "kicked", "{e}");
        assert!(device.closed().await);
    }
    assert_eq!(status(&server, "bob").await["Status"], "Offline");
    let mut again = Raw::connect(&server).await;
    assert_eq!(again.login_with("bob", &old_sig, "iPhone", "p1").await["code"], 70052);
    let (_fresh, _) = Raw::login(&server, "bob", "iPhone", "p1").await;
}

#[tokio::test]
async fn presence_is_online_then_push_online_after_a_mobile_drop_and_offline_after_logout() {
    let server = TestServer::spawn().await;
    server.import(&["bob"]).await;
    assert_eq!(status(&server, "bob").await["Status"], "Offline");
    let (phone, _) = Raw::login(&server, "bob", "iPhone", "p1").await;
    let s = status(&server, "bob").await;
    assert_eq!((s["Status"].as_str(), s["State"].as_str()), (Some("Online"), Some("Online")));
    assert_eq!(s["Detail"], json!([{"Platform": "iPhone", "Status": "Online"}]));
    drop(phone);
    let push_online = wait_for(|| status(&server, "bob"), |s| s["Status"] == "PushOnline").await;
    assert_eq!(push_online["Detail"], json!([{"Platform": "iPhone", "Status": "PushOnline"}]));
    // Seven days later it is Offline.
    server.clock.advance_secs(7 * 86_400 + 1);
    assert_eq!(status(&server, "bob").await["Status"], "Offline");

    let (mut phone, _) = Raw::login(&server, "bob", "iPhone", "p1").await;
    assert_eq!(phone.request(json!({"op": "logout"})).await["op"], "ok");
    assert!(phone.closed().await);
    wait_for(|| status(&server, "bob"), |s| s["Status"] == "Offline").await;
    // A desktop that drops is simply Offline.
    let (pc, _) = Raw::login(&server, "bob", "PC", "pc").await;
    drop(pc);
    wait_for(|| status(&server, "bob"), |s| s["Status"] == "Offline").await;
}

#[tokio::test]
async fn a_sig_that_expires_while_online_ends_the_session() {
    let server = TestServer::spawn().await;
    let sig = duet_core::usersig::generate(SECRET_KEY, SDKAPPID, "bob", server.clock.now_secs(), 60, None);
    let mut bob = Raw::connect(&server).await;
    assert_eq!(bob.login_with("bob", &sig, "iPhone", "p").await["op"], "logged_in");
    server.clock.advance_secs(61);
    bob.send(json!({"op": "ping", "id": 9})).await;
    let e = bob.next().await.unwrap();
    assert_eq!((e["op"].as_str(), e["code"].as_u64()), (Some("sig_expired"), Some(6206)), "{e}");
    assert!(bob.closed().await);
}

#[tokio::test]
async fn read_state_follows_to_the_other_devices() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    sendmsg(&server, "alice", "bob", 1, "read me").await;
    let (mut phone, _) = Raw::login(&server, "bob", "iPhone", "p").await;
    let (mut pc, _) = Raw::login(&server, "bob", "PC", "pc").await;
    let convs = phone.request(json!({"op": "conversations"})).await;
    assert_eq!(convs["items"][0]["unread"], 1, "{convs}");
    assert_eq!(phone.request(json!({"op": "mark_read", "peer": "alice"})).await["op"], "ok");
    for device in [&mut pc, &mut phone] {
        let e = device.event().await;
        assert_eq!(e["entry"]["kind"], "read", "{e}");
        assert_eq!(e["entry"]["peer"], "alice");
    }
    let convs = pc.request(json!({"op": "conversations"})).await;
    assert_eq!(convs["items"][0]["unread"], 0, "{convs}");
}

#[tokio::test]
async fn online_only_messages_reach_live_devices_and_are_never_stored() {
    let server = TestServer::spawn().await;
    let (mut alice, _) = Raw::login(&server, "alice", "iPhone", "a").await;
    let (mut bob, _) = Raw::login(&server, "bob", "iPhone", "b").await;
    let sent = alice
        .request(json!({"op": "send", "to": "bob", "random": 1, "online_only": true, "body": text("typing…")}))
        .await;
    assert_eq!((sent["conv_seq"].as_u64(), sent["log_seq"].as_u64()), (Some(0), Some(0)), "{sent}");
    let e = bob.event().await;
    assert_eq!((e["entry"]["seq"].as_u64(), e["entry"]["msg"]["conv_seq"].as_u64()), (Some(0), Some(0)));
    let page = bob.request(json!({"op": "sync", "after": 0})).await;
    assert_eq!(page["entries"], json!([]), "nothing was logged");
    let history = bob.request(json!({"op": "history", "peer": "alice", "count": 10})).await;
    assert_eq!(history["messages"], json!([]), "nothing was stored");
    // To an offline user it is lost, as Tencent's MsgLifeTime 0.
    server.import(&["carol"]).await;
    alice.request(json!({"op": "send", "to": "carol", "random": 2, "online_only": true, "body": text("gone")})).await;
    let (mut carol, reply) = Raw::login(&server, "carol", "iPhone", "c").await;
    assert_eq!(reply["latest"], 0);
    assert_eq!(carol.request(json!({"op": "sync", "after": 0})).await["entries"], json!([]));
}

#[tokio::test]
async fn history_pages_newest_first_and_says_when_it_is_complete() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    for i in 1..=5 {
        sendmsg(&server, "alice", "bob", i, &format!("m{i}")).await;
        server.clock.advance_secs(1);
    }
    let (mut bob, _) = Raw::login(&server, "bob", "iPhone", "b").await;
    let page = bob.request(json!({"op": "history", "peer": "alice", "count": 3})).await;
    let convs: Vec<u64> =
        page["messages"].as_array().unwrap().iter().map(|m| m["conv_seq"].as_u64().unwrap()).collect();
    assert_eq!(convs, [5, 4, 3]);
    assert_eq!(page["complete"], false);
    let before = page["messages"][2]["msg_key"].clone();
    let page = bob.request(json!({"op": "history", "peer": "alice", "count": 3, "before": before})).await;
    let convs: Vec<u64> =
        page["messages"].as_array().unwrap().iter().map(|m| m["conv_seq"].as_u64().unwrap()).collect();
    assert_eq!(convs, [2, 1]);
    assert_eq!(page["complete"], true);
}

#[tokio::test]
async fn recent_contacts_keep_100_latest_first_and_expire_with_their_last_message() {
    let server = TestServer::spawn().await;
    let peers: Vec<String> = (0..101).map(|i| format!("peer{i:03}")).collect();
    let mut accounts: Vec<&str> = peers.iter().map(String::as_str).collect();
    accounts.push("bob");
    for chunk in accounts.chunks(100) {
        let r = server.rest("im_open_login_svc/multiaccount_import", json!({"Accounts": chunk})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    for (i, peer) in peers.iter().enumerate() {
        sendmsg(&server, peer, "bob", i as u32 + 1, "hello").await;
        server.clock.advance_secs(1);
    }
    let list = server.rest("recentcontact/get_list", json!({"From_Account": "bob", "TimeStamp": 0, "StartIndex": 0, "TopTimeStamp": 0, "TopStartIndex": 0, "AssistFlags": 7})).await;
    assert_eq!(list["ErrorCode"], 0, "{list}");
    let items = list["SessionItem"].as_array().unwrap();
    assert_eq!(items.len(), 100, "101 peers, 100 kept");
    assert_eq!(items[0]["To_Account"], "peer100", "latest first");
    assert_eq!(items[99]["To_Account"], "peer001", "the oldest (peer000) was dropped");
    assert_eq!(list["CompleteFlag"], 1);
    assert_eq!(items[0]["Type"], 1);

    // The SDK view agrees.
    let (mut bob, _) = Raw::login(&server, "bob", "iPhone", "b").await;
    let convs = bob.request(json!({"op": "conversations"})).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 100);
    assert_eq!(convs["items"][0]["peer"], "peer100");
    assert_eq!(convs["items"][0]["last"]["body"], text("hello"));

    // Delete one conversation (and its history on bob's side).
    let r = server
        .rest(
            "recentcontact/delete",
            json!({"From_Account": "bob", "Type": 1, "To_Account": "peer100", "ClearRamble": 1}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let list = server.rest("recentcontact/get_list", json!({"From_Account": "bob", "StartIndex": 0})).await;
    assert_eq!(list["SessionItem"][0]["To_Account"], "peer099");
    let roam = server.rest("openim/admin_getroammsg", json!({"Operator_Account": "bob", "Peer_Account": "peer100", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64})).await;
    assert_eq!(roam["MsgCnt"], 0, "ClearRamble hid the history from bob: {roam}");
    let roam = server.rest("openim/admin_getroammsg", json!({"Operator_Account": "peer100", "Peer_Account": "bob", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64})).await;
    assert_eq!(roam["MsgCnt"], 1, "the peer still sees it: {roam}");

    // A conversation whose last message expired is gone.
    server.clock.advance_secs(7 * 86_400 - 50);
    let list = server.rest("recentcontact/get_list", json!({"From_Account": "bob", "StartIndex": 0})).await;
    let left = list["SessionItem"].as_array().unwrap();
    assert!(left.len() < 99 && !left.is_empty(), "older conversations expired: {}", left.len());
    assert!(left.iter().all(|i| i["MsgTime"].as_i64().unwrap() >= server.clock.now_secs() - 7 * 86_400));

    let r = server.rest("recentcontact/get_list", json!({"From_Account": "nobody"})).await;
    assert_eq!(r["ErrorCode"], 50001, "{r}");
    let r = server.rest("recentcontact/delete", json!({"From_Account": "bob", "Type": 2, "To_Account": "x"})).await;
    assert_eq!(r["ErrorCode"], 50002, "{r}");
}

async fn wait_for<F, Fut>(fetch: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let v = fetch().await;
        if done(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not reached: {v}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

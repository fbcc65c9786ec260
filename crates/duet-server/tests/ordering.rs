//! Same-second order (issue 13, item 1): messages sent in one second, through REST, through the
//! WebSocket and both mixed, read back from both sides through every path (`admin_getroammsg` with
//! `LastMsgKey` paging, WebSocket `history` paging, `conversations`, `recentcontact/get_list`), come back
//! in the order they were sent; and the recent-contacts cap evicts the earliest conversations of a second.
//! The test clock stands still, so every message of a test is sent in the same second.

use duet_test_support::WsClient;
use duet_test_support::{TestServer, text};
use serde_json::{Value, json};

const FAR_FUTURE: i64 = 4_000_000_000;
const N: usize = 50;

/// The text of a REST history item or a WebSocket message.
fn text_of(m: &Value) -> String {
    let body = if m["MsgBody"].is_array() { &m["MsgBody"] } else { &m["body"] };
    body[0]["MsgContent"]["Text"].as_str().unwrap_or_else(|| panic!("a text message: {m}")).to_owned()
}

fn expected() -> Vec<String> {
    (0..N).map(|k| format!("m{k}")).collect()
}

/// `operator`'s history with `peer` through `admin_getroammsg`, oldest first, paged `page` at a time by
/// `LastMsgKey` (pages go back in time, each ascending).
async fn roam(s: &TestServer, operator: &str, peer: &str, page: u32) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    let mut last_key = Value::Null;
    for _ in 0..100 {
        let mut body = json!({"Operator_Account": operator, "Peer_Account": peer, "MaxCnt": page,
                              "MinTime": 0, "MaxTime": FAR_FUTURE});
        if !last_key.is_null() {
            body["LastMsgKey"] = last_key.clone();
        }
        let r = s.rest("openim/admin_getroammsg", body).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
        let items = r["MsgList"].as_array().expect("MsgList").clone();
        let texts: Vec<String> = items.iter().map(text_of).collect();
        all.splice(0..0, texts);
        if r["Complete"] == 1 {
            return all;
        }
        last_key = r["LastMsgKey"].clone();
    }
    panic!("admin_getroammsg paging did not end");
}

/// `client`'s history with `peer` through WebSocket `history` frames, oldest first, paged `page` at a time.
async fn ws_history(client: &mut WsClient, peer: &str, page: u32) -> Vec<String> {
    let mut newest_first: Vec<String> = Vec::new();
    let mut before = Value::Null;
    for _ in 0..100 {
        let mut frame = json!({"op": "history", "peer": peer, "count": page});
        if !before.is_null() {
            frame["before"] = before.clone();
        }
        let r = client.request(frame).await;
        assert_eq!(r["op"], "history", "{r}");
        let messages = r["messages"].as_array().expect("messages");
        newest_first.extend(messages.iter().map(text_of));
        if r["complete"] == true {
            newest_first.reverse();
            return newest_first;
        }
        before = messages.last().expect("a page that is not complete has messages")["msg_key"].clone();
    }
    panic!("history paging did not end");
}

/// Checks every read path from both sides: both histories in send order, and the conversation's last
/// message the last one sent.
async fn assert_in_send_order(s: &TestServer, alice: &mut WsClient, bob: &mut WsClient) {
    for page in [7, 50] {
        assert_eq!(roam(s, "alice", "bob", page).await, expected(), "alice's roaming history, pages of {page}");
        assert_eq!(roam(s, "bob", "alice", page).await, expected(), "bob's roaming history, pages of {page}");
        assert_eq!(ws_history(alice, "bob", page).await, expected(), "alice's WebSocket history, pages of {page}");
        assert_eq!(ws_history(bob, "alice", page).await, expected(), "bob's WebSocket history, pages of {page}");
    }
    let last = format!("m{}", N - 1);
    for (client, peer) in [(&mut *alice, "bob"), (&mut *bob, "alice")] {
        let r = client.request(json!({"op": "conversations"})).await;
        let item = &r["items"][0];
        assert_eq!(item["peer"], peer, "{r}");
        assert_eq!(text_of(&item["last"]), last, "the conversation's last message: {r}");
        assert_eq!(item["conv_seq"], N, "{r}");
    }
    // Same-second keys of the server's picking follow the send order.
    let r = alice.request(json!({"op": "history", "peer": "bob", "count": 50})).await;
    let seqs: Vec<u64> = r["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "MsgSeqs decrease newest first: {seqs:?}");
}

async fn rest_send(s: &TestServer, from: &str, to: &str, k: usize) {
    let r = s
        .rest(
            "openim/sendmsg",
            json!({"From_Account": from, "To_Account": to, "MsgRandom": 1000 + k, "MsgBody": text(&format!("m{k}"))}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

async fn ws_send(client: &mut WsClient, to: &str, k: usize) {
    let r = client.send(to, 2000 + k as u32, text(&format!("m{k}"))).await;
    assert_eq!(r["op"], "sent", "{r}");
}

#[tokio::test]
async fn fifty_rest_sends_in_one_second_read_back_in_send_order_everywhere() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let (mut alice, mut bob) = (WsClient::login(&s, "alice").await, WsClient::login(&s, "bob").await);
    for k in 0..N {
        rest_send(&s, "alice", "bob", k).await;
    }
    assert_in_send_order(&s, &mut alice, &mut bob).await;
}

#[tokio::test]
async fn fifty_websocket_sends_in_one_second_read_back_in_send_order_everywhere() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let (mut alice, mut bob) = (WsClient::login(&s, "alice").await, WsClient::login(&s, "bob").await);
    for k in 0..N {
        ws_send(&mut alice, "bob", k).await;
    }
    assert_in_send_order(&s, &mut alice, &mut bob).await;
}

#[tokio::test]
async fn rest_and_websocket_sends_mixed_in_both_directions_keep_send_order() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let (mut alice, mut bob) = (WsClient::login(&s, "alice").await, WsClient::login(&s, "bob").await);
    for k in 0..N {
        match k % 4 {
            0 => rest_send(&s, "alice", "bob", k).await,
            1 => ws_send(&mut bob, "alice", k).await,
            2 => ws_send(&mut alice, "bob", k).await,
            _ => rest_send(&s, "bob", "alice", k).await,
        }
    }
    assert_in_send_order(&s, &mut alice, &mut bob).await;
}

#[tokio::test]
async fn a_msgseq_the_caller_gives_orders_messages_within_the_second() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    for (seq, name) in [(30, "c"), (10, "a"), (20, "b")] {
        let r = s
            .rest(
                "openim/sendmsg",
                json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": seq, "MsgRandom": seq,
                       "MsgBody": text(name)}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
        assert!(r["MsgKey"].as_str().unwrap().starts_with(&format!("{seq}_")), "{r}");
    }
    assert_eq!(roam(&s, "bob", "alice", 20).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn batch_and_single_sends_share_one_increasing_msgseq_per_conversation() {
    let s = TestServer::spawn().await;
    s.import(&["admin1", "alice", "bob"]).await;
    let mut sent = Vec::new();
    for k in 0..3 {
        let r = s
            .rest(
                "openim/sendmsg",
                json!({"From_Account": "admin1", "To_Account": "alice", "MsgRandom": k, "MsgBody": text("x")}),
            )
            .await;
        sent.push(r["MsgKey"].as_str().unwrap().to_owned());
    }
    // One MsgKey for the whole batch, above what either conversation had.
    let r = s
        .rest(
            "openim/batchsendmsg",
            json!({"From_Account": "admin1", "To_Account": ["alice", "bob"], "MsgRandom": 9, "MsgBody": text("b")}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let batch = r["MsgKey"].as_str().unwrap().to_owned();
    let seq = |key: &str| key.split('_').next().unwrap().parse::<u32>().unwrap();
    assert_eq!(sent.iter().map(|k| seq(k)).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(seq(&batch), 4);
    let r = s
        .rest(
            "openim/sendmsg",
            json!({"From_Account": "admin1", "To_Account": "bob", "MsgRandom": 10, "MsgBody": text("after")}),
        )
        .await;
    assert_eq!(seq(r["MsgKey"].as_str().unwrap()), 5, "bob's conversation continues above the batch: {r}");
    assert_eq!(roam(&s, "bob", "admin1", 20).await, ["b", "after"]);
}

/// Tencent's recent-contacts cap keeps the latest conversations; of several in one second, the last ones.
#[tokio::test]
async fn the_recent_contacts_cap_evicts_the_earliest_conversations_of_a_second() {
    let s = TestServer::spawn_with(|c| c.core.recent_contacts_max = 3).await;
    let peers = ["p1", "p2", "p3", "p4", "p5"];
    s.import(&peers).await;
    s.import(&["alice"]).await;
    for p in peers {
        rest_send(&s, p, "alice", 0).await;
    }
    let r = s
        .rest(
            "recentcontact/get_list",
            json!({"From_Account": "alice", "TimeStamp": 0, "StartIndex": 0,
                                                     "TopTimeStamp": 0, "TopStartIndex": 0, "AssistFlags": 0}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let listed: Vec<&str> =
        r["SessionItem"].as_array().unwrap().iter().map(|i| i["To_Account"].as_str().unwrap()).collect();
    assert_eq!(listed, ["p5", "p4", "p3"]);
    let mut alice = WsClient::login(&s, "alice").await;
    let r = alice.request(json!({"op": "conversations"})).await;
    let listed: Vec<&str> = r["items"].as_array().unwrap().iter().map(|i| i["peer"].as_str().unwrap()).collect();
    assert_eq!(listed, ["p5", "p4", "p3"]);
    // The senders' side: each has alice as its one conversation.
    let mut p1 = WsClient::login(&s, "p1").await;
    let r = p1.request(json!({"op": "conversations"})).await;
    assert_eq!(r["items"][0]["peer"], "alice", "{r}");
}

/// Issue 13, item 4: a connection's sends commit in frame order even when the permission check of one
/// must read the store (a recipient not in the relation cache yet) and the next needs no read (a recipient
/// cached already): frames written back to back, answers collected after.
#[tokio::test]
async fn sends_of_one_connection_commit_in_frame_order_with_a_cold_relation_cache() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Ws;

    // alice sends 101 messages at once, over the default burst of the per-user send rate (100).
    let s = TestServer::spawn_with(|c| {
        c.core.permissions.friends_only = false;
        c.rate_limits.sends_per_sec = 0;
    })
    .await;
    let recipients: Vec<String> = (0..N).map(|k| format!("cold{k}")).collect();
    let names: Vec<&str> = recipients.iter().map(String::as_str).collect();
    s.import(&names).await;
    s.import(&["alice", "warm"]).await;
    // `warm` is in the relation cache from now on.
    WsClient::login(&s, "alice").await.send("warm", 1, text("hello")).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/v1/connect", s.base_url().replace("http", "ws")))
        .await
        .expect("websocket connect");
    let login = json!({"op": "login", "id": 1, "protocol": 1, "user": "alice", "usersig": s.usersig("alice"),
                       "platform": "PC", "device": "d"});
    ws.send(Ws::Text(login.to_string().into())).await.unwrap();
    // Frame 2k: to a recipient never looked up; frame 2k+1: to `warm`.
    let frames = 2 * N;
    for i in 0..frames {
        let to = if i % 2 == 0 { recipients[i / 2].as_str() } else { "warm" };
        let frame = json!({"op": "send", "id": 100 + i, "to": to, "random": i, "body": text(&format!("f{i}"))});
        ws.feed(Ws::Text(frame.to_string().into())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut log_seqs = vec![0u64; frames];
    let mut answered = 0;
    while answered < frames {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("answers");
        let Some(Ok(Ws::Text(t))) = next else { panic!("the connection closed") };
        let f: Value = serde_json::from_str(&t).unwrap();
        if f["op"] == "sent" {
            let i = f["id"].as_u64().unwrap() as usize - 100;
            log_seqs[i] = f["log_seq"].as_u64().unwrap();
            answered += 1;
        } else {
            assert_ne!(f["op"], "error", "{f}");
        }
    }
    // alice's log numbers her copies in commit order.
    assert!(log_seqs.windows(2).all(|w| w[0] < w[1]), "sender log positions in frame order: {log_seqs:?}");
}

//! Lost pushes are repaired: a push dropped on a live connection is recovered by the SDK's sequence-gap
//! pull, and pushes lost with a killed connection are recovered by the resync after reconnecting. The
//! app sees every message exactly once, in order.

use std::time::Duration;

use duet_client::{Client, ClientConfig, ConnectionState, Event, Events};
use duet_test_support::{Proxy, TestServer, text};
use serde_json::json;

async fn sendmsg(server: &TestServer, seq: u32) {
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": seq, "MsgRandom": seq, "MsgBody": text(&format!("m{seq}"))});
    let r = server.rest("openim/sendmsg", body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

/// The texts of the next `n` new messages.
async fn messages(events: &mut Events, n: usize) -> Vec<String> {
    messages_and_reconnects(events, n).await.0
}

/// The texts of the next `n` new messages, and how many times the SDK reconnected meanwhile.
async fn messages_and_reconnects(events: &mut Events, n: usize) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut reconnects = 0;
    while seen.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived: {seen:?}", seen.len()))
            .expect("the event stream ended");
        match event {
            Event::NewMessage(m) => seen.push(m.text()),
            Event::Connection(ConnectionState::Connected) => reconnects += 1,
            _ => {}
        }
    }
    (seen, reconnects)
}

async fn wait_sync_complete(events: &mut Events) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("no sync-complete").unwrap() {
            Event::SyncComplete => return,
            Event::NewMessage(m) => panic!("unexpected message {m:?}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_pushes_and_killed_connections_lose_and_duplicate_nothing() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let proxy = Proxy::start(server.addr).await;
    let (bob, mut events) = Client::connect(ClientConfig::new(proxy.base_url(), "bob", server.usersig("bob")))
        .await
        .expect("bob connects through the proxy");
    wait_sync_complete(&mut events).await;

    // 1. A push lost on a live connection: m1's frame never reaches bob; m2's reveals the gap.
    proxy.drop_next_entries(1);
    for seq in 1..=3 {
        sendmsg(&server, seq).await;
    }
    assert_eq!(messages(&mut events, 3).await, ["m1", "m2", "m3"]);
    assert_eq!(proxy.dropped(), 1, "the push really was dropped");

    // 2. The connection is killed while messages stream in; the SDK reconnects and resyncs.
    let sender = tokio::spawn({
        let server_url = server.base_url();
        let query = server.admin_query();
        async move {
            let http = reqwest::Client::new();
            for seq in 4..=30u32 {
                let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": seq, "MsgRandom": seq, "MsgBody": text(&format!("m{seq}"))});
                let r: serde_json::Value = http
                    .post(format!("{server_url}/v4/openim/sendmsg?{query}"))
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(r["ErrorCode"], 0, "{r}");
            }
        }
    });
    let first = messages(&mut events, 5).await;
    proxy.sever();
    sender.await.unwrap();
    let (rest, reconnects) = messages_and_reconnects(&mut events, 22).await;
    assert_eq!(reconnects, 1, "the SDK reconnected once after the connection was killed");
    let all: Vec<String> = first.into_iter().chain(rest).collect();
    let expected: Vec<String> = (4..=30).map(|i| format!("m{i}")).collect();
    assert_eq!(all, expected, "every message once, in order");

    // Nothing more arrives: no late duplicate.
    sendmsg(&server, 31).await;
    assert_eq!(messages(&mut events, 1).await, ["m31"]);
    bob.logout().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_push_of_the_newest_entry_is_found_by_the_heartbeat() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let proxy = Proxy::start(server.addr).await;
    let mut config = ClientConfig::new(proxy.base_url(), "bob", server.usersig("bob"));
    config.heartbeat = Duration::from_millis(200);
    let (bob, mut events) = Client::connect(config).await.expect("bob connects through the proxy");
    wait_sync_complete(&mut events).await;

    // The only push is lost and no later entry reveals the gap: the pong's `latest` does.
    proxy.drop_next_entries(1);
    sendmsg(&server, 1).await;
    assert_eq!(messages(&mut events, 1).await, ["m1"]);
    assert_eq!(proxy.dropped(), 1, "the push really was dropped");
    bob.logout().await.unwrap();
}

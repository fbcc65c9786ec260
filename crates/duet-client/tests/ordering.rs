//! The SDK's order of messages and conversations (issue 13, items 1 and 5): messages of one second read
//! back in send order from events, the local store and the server; conversations of one second latest
//! first; and messages imported into a conversation's past show on a device that already holds it.
//!
//! Whether a page came from the local store is told by moving the server's clock past its retention:
//! the server then has nothing, so whatever a page still holds came from the SDK's store.

mod common;

use common::*;
use duet_client::{Client, ClientConfig, LocalStoreConfig, Message, Platform};
use duet_test_support::{T0_MS, TestServer, text};
use serde_json::json;

const N: usize = 50;

fn user_config(server: &TestServer, user: &str, store: Option<&std::path::Path>) -> ClientConfig {
    let c = config(&server.base_url(), user, &server.usersig(user), Platform::Linux);
    match store {
        Some(dir) => c.store(LocalStoreConfig::Sqlite(dir.to_owned())),
        None => c,
    }
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages.iter().map(Message::text).collect()
}

/// `client`'s whole history with `peer`, oldest first, paged `page` at a time.
async fn history(client: &Client, peer: &str, page: u32) -> Vec<String> {
    let mut newest_first = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..200 {
        let got = client.get_messages(peer, page, before.as_deref()).await.expect("a history page");
        let Some(last) = got.last() else {
            newest_first.reverse();
            return newest_first;
        };
        before = Some(last.msg_key.clone());
        newest_first.extend(texts(&got));
    }
    panic!("paging does not end");
}

/// 50 messages in one second, alternating REST and the SDK, alice and bob: every device and every read
/// path has them in send order, whether the page comes from the server or from the local store.
#[tokio::test]
async fn fifty_messages_of_one_second_keep_send_order_in_events_store_and_server() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (alice, _alice_events, _) = connect_synced(user_config(&server, "alice", None)).await;
    let (bob, mut bob_events, _) = connect_synced(user_config(&server, "bob", Some(dir.path()))).await;
    let expected: Vec<String> = (0..N).map(|k| format!("m{k}")).collect();
    for (k, body) in expected.iter().enumerate() {
        match k % 4 {
            0 => drop(rest_send(&server, "alice", "bob", k as u32, body).await),
            1 => drop(bob.send_text("alice", body).await.expect("bob sends")),
            2 => drop(alice.send_text("bob", body).await.expect("alice sends")),
            _ => drop(rest_send(&server, "bob", "alice", k as u32, body).await),
        }
    }
    // bob hears alice's messages in send order (his own sends are not raised again).
    let mut heard = Vec::new();
    while heard.len() < N / 2 {
        let m = next_message(&mut bob_events).await;
        heard.push(m.text());
    }
    let from_alice: Vec<String> =
        expected.iter().enumerate().filter(|(k, _)| k % 4 == 0 || k % 4 == 2).map(|(_, t)| t.clone()).collect();
    assert_eq!(heard, from_alice);

    // A device that logs in later pulls history from the server; bob has most of it locally.
    for page in [7, 50] {
        assert_eq!(history(&bob, "alice", page).await, expected, "bob, pages of {page}");
        assert_eq!(history(&alice, "bob", page).await, expected, "alice, pages of {page}");
    }
    let local = bob.local_conversations().await.unwrap();
    assert_eq!(local[0].last.as_ref().map(Message::text), Some(format!("m{}", N - 1)));
    let listed = bob.conversations().await.unwrap();
    assert_eq!(listed[0].last.as_ref().map(Message::text), Some(format!("m{}", N - 1)));

    // The server forgets; bob's store still answers every page, in the same order.
    server.clock.advance_secs(8 * 86_400);
    for page in [7, 50] {
        assert_eq!(history(&bob, "alice", page).await, expected, "bob's store, pages of {page}");
    }
    // A fresh process on bob's store: the order and the coverage survived.
    bob.logout().await.unwrap();
    until_end(&mut bob_events).await;
    let (bob, _events, _) = connect_synced(user_config(&server, "bob", Some(dir.path()))).await;
    assert_eq!(history(&bob, "alice", 9).await, expected, "bob's store after a restart");
}

/// Five conversations touched in one second are listed latest first by the SDK, as by the server.
#[tokio::test]
async fn conversations_of_one_second_are_listed_latest_first() {
    let server = TestServer::spawn().await;
    let peers = ["p1", "p2", "p3", "p4", "p5"];
    server.import(&peers).await;
    server.import(&["bob"]).await;
    let (bob, mut events, _) = connect_synced(user_config(&server, "bob", None)).await;
    for (k, p) in peers.iter().enumerate() {
        rest_send(&server, p, "bob", k as u32, "hi").await;
        next_message(&mut events).await;
    }
    let order = |list: Vec<duet_client::Conversation>| list.into_iter().map(|c| c.peer).collect::<Vec<_>>();
    let newest_first: Vec<String> = peers.iter().rev().map(|p| p.to_string()).collect();
    assert_eq!(order(bob.local_conversations().await.unwrap()), newest_first, "live updates");
    assert_eq!(order(bob.conversations().await.unwrap()), newest_first, "the server's list");
    assert_eq!(order(bob.local_conversations().await.unwrap()), newest_first, "after the server's list");
    // A later message in the same second moves its conversation to the top.
    rest_send(&server, "p2", "bob", 9, "again").await;
    next_message(&mut events).await;
    assert_eq!(order(bob.local_conversations().await.unwrap()), ["p2", "p5", "p4", "p3", "p1"]);
}

/// Issue 13, item 5: history imported into the past of a conversation a device holds shows on that device
/// as on a fresh one, whether the device was offline during the import or online.
#[tokio::test]
async fn messages_imported_into_the_past_show_on_a_device_that_holds_the_conversation() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let t0 = T0_MS / 1000;
    let dir = tempfile::tempdir().unwrap();
    let import = |i: i64| {
        let server = &server;
        async move {
            let r = server
                .rest(
                    "openim/importmsg",
                    json!({"SyncFromOldSystem": 2, "From_Account": "alice", "To_Account": "bob",
                           "MsgRandom": 500 + i, "MsgTimeStamp": t0 - 3600 + i * 60, "MsgBody": text(&format!("old {i}"))}),
                )
                .await;
            assert_eq!(r["ErrorCode"], 0, "importmsg: {r}");
        }
    };

    // bob holds the whole conversation: one live message.
    rest_send(&server, "alice", "bob", 1, "live").await;
    let (bob, mut events, _) = connect_synced(user_config(&server, "bob", Some(dir.path()))).await;
    assert_eq!(texts(&bob.get_messages("alice", 20, None).await.unwrap()), ["live"]);
    bob.logout().await.unwrap();
    until_end(&mut events).await;

    // While bob is away, three older messages are imported (no sync-log entry: history only).
    for i in 0..3 {
        import(i).await;
    }
    let (bob, mut events, _) = connect_synced(user_config(&server, "bob", Some(dir.path()))).await;
    let want = ["live", "old 2", "old 1", "old 0"];
    assert_eq!(texts(&bob.get_messages("alice", 20, None).await.unwrap()), want, "the device that held it");
    // Another platform, so that the two devices of bob stay online together.
    let phone = config(&server.base_url(), "bob", &server.usersig("bob"), Platform::IPhone);
    let (fresh, _fresh_events, _) = connect_synced(phone).await;
    assert_eq!(texts(&fresh.get_messages("alice", 20, None).await.unwrap()), want, "a fresh device");

    // Online this time: one more import, noticed with the next live message.
    import(3).await;
    server.clock.advance_secs(1);
    rest_send(&server, "alice", "bob", 2, "later").await;
    while next_message(&mut events).await.text() != "later" {}
    let want = ["later", "live", "old 3", "old 2", "old 1", "old 0"];
    assert_eq!(texts(&bob.get_messages("alice", 20, None).await.unwrap()), want, "noticed online");
    // Paged by two, from the store and the server alike.
    let mut all = history(&bob, "alice", 2).await;
    all.reverse();
    assert_eq!(all, want);

    // All of it is now held: the store answers once the server has forgotten.
    server.clock.advance_secs(8 * 86_400);
    assert_eq!(texts(&bob.get_messages("alice", 20, None).await.unwrap()), want, "from bob's store");
}

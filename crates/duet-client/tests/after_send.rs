//! What follows a send, through the SDK against the real server: recall, the conversation's read receipt
//! and message read receipts. Each reaches two devices of one user and the peer's device; one device is
//! away during the change and catches up when it logs in again.

mod common;

use common::*;
use duet_client::{Client, Event, Events, Message, Platform, SendOptions, elems};
use duet_test_support::{T0_MS, TestServer, text};
use serde_json::json;

async fn recalled(events: &mut Events) -> (String, String, String) {
    next_matching(events, "a recall", |e| match e {
        Event::MessageRecalled { peer, msg_key, by } => Some((peer, msg_key, by)),
        _ => None,
    })
    .await
}

async fn peer_read(events: &mut Events) -> (String, i64) {
    next_matching(events, "a read receipt", |e| match e {
        Event::PeerRead { peer, time } => Some((peer, time)),
        _ => None,
    })
    .await
}

async fn receipt(events: &mut Events) -> (String, String, i64) {
    next_matching(events, "a message read receipt", |e| match e {
        Event::ReadReceipt { peer, msg_key, time } => Some((peer, msg_key, time)),
        _ => None,
    })
    .await
}

const NOW: i64 = T0_MS / 1000;

#[tokio::test]
async fn a_recall_reaches_every_device_and_a_device_away_catches_up() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (pc, mut pc_events, _) = connect_synced(device_in(&server, "alice", dir.path())).await;
    let (bob, mut bob_events, _) = connect_synced(user_config(&server, "bob", Platform::Android)).await;

    let oops = phone.send_text("bob", "oops").await.unwrap();
    assert_eq!(next_message(&mut bob_events).await.text(), "oops");
    assert_eq!(next_message(&mut pc_events).await.text(), "oops");
    assert_eq!(bob.local_conversations().await.unwrap()[0].unread, 1);
    // The PC goes away before the recall.
    pc.logout().await.unwrap();

    phone.recall("bob", &oops.msg_key).await.expect("a recall within the window");
    assert_eq!(recalled(&mut bob_events).await, ("alice".into(), oops.msg_key.clone(), "alice".into()));
    assert_eq!(recalled(&mut phone_events).await, ("bob".into(), oops.msg_key.clone(), "alice".into()));
    // The peer's history and conversation show it recalled, without content, and no longer unread.
    let page = bob.get_messages("alice", 10, None).await.unwrap();
    assert!(page[0].recalled && page[0].elems.is_empty() && page[0].revoker == "alice", "{:?}", page[0]);
    let conv = next_matching(&mut bob_events, "bob's conversation", |e| match e {
        Event::ConversationChanged(c) if c.unread == 0 => Some(c),
        _ => None,
    })
    .await;
    assert!(conv.last.as_ref().is_some_and(|m| m.recalled && m.elems.is_empty()), "{conv:?}");
    let on_server = bob.conversations().await.unwrap();
    assert_eq!(on_server[0].unread, 0);
    assert!(on_server[0].last.as_ref().is_some_and(|m| m.recalled && m.elems.is_empty()));

    // The PC comes back: the sync brings the recall, and its local copy loses the content.
    let (pc, mut pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    let sync = until_sync_complete(&mut pc_events).await;
    assert!(
        sync.iter().any(
            |e| matches!(e, Event::MessageRecalled { msg_key, by, .. } if *msg_key == oops.msg_key && by == "alice")
        ),
        "{sync:?}"
    );
    let local = pc.get_messages("bob", 10, None).await.unwrap();
    assert!(local[0].recalled && local[0].elems.is_empty(), "{:?}", local[0]);

    // Not twice; not someone else's message; not a key that names nothing.
    assert_eq!(server_code(phone.recall("bob", &oops.msg_key).await.unwrap_err()), 20023);
    assert_eq!(server_code(bob.recall("alice", &oops.msg_key).await.unwrap_err()), 20022);
    assert_eq!(server_code(phone.recall("bob", "1_2_3").await.unwrap_err()), 20022);
    // An online-only message was never stored: there is nothing to recall.
    let live = SendOptions { online_only: true, ..SendOptions::default() };
    let typing = phone.send_message("bob", vec![elems::text("typing")], live).await.unwrap();
    assert_eq!(server_code(phone.recall("bob", &typing.msg_key).await.unwrap_err()), 20022);

    // After the window (2 minutes by default): 20016, and the message stays.
    let late = phone.send_text("bob", "too late").await.unwrap();
    server.clock.advance_secs(121);
    assert_eq!(server_code(phone.recall("bob", &late.msg_key).await.unwrap_err()), 20016);
    let found = bob.find_messages("alice", &[&late.msg_key]).await.unwrap();
    assert!(found[0].as_ref().is_some_and(|m| !m.recalled && m.text() == "too late"));

    // The admin has no window, and its recall names the admin.
    let r = server
        .rest("openim/admin_msgwithdraw", json!({"From_Account": "alice", "To_Account": "bob", "MsgKey": late.msg_key}))
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(recalled(&mut bob_events).await, ("alice".into(), late.msg_key.clone(), "administrator".into()));
    assert_eq!(recalled(&mut phone_events).await.2, "administrator");
    assert_eq!(recalled(&mut pc_events).await.2, "administrator");

    for c in [phone, pc, bob] {
        c.logout().await.unwrap();
    }
}

#[tokio::test]
async fn the_recall_window_is_configurable() {
    let server = TestServer::spawn_with(|c| c.core.recall_window_secs = 10).await;
    server.import(&["alice", "bob"]).await;
    let (alice, _events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let first = alice.send_text("bob", "one").await.unwrap();
    let second = alice.send_text("bob", "two").await.unwrap();
    server.clock.advance_secs(10);
    alice.recall("bob", &first.msg_key).await.expect("at the window's end");
    server.clock.advance_secs(1);
    assert_eq!(server_code(alice.recall("bob", &second.msg_key).await.unwrap_err()), 20016);
    alice.logout().await.unwrap();
}

#[tokio::test]
async fn marking_read_sends_the_peer_a_read_receipt() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (pc, mut pc_events, _) = connect_synced(device_in(&server, "alice", dir.path())).await;
    let (bob, mut bob_events, _) = connect_synced(user_config(&server, "bob", Platform::Android)).await;

    phone.send_text("bob", "m1").await.unwrap();
    assert_eq!(next_message(&mut pc_events).await.text(), "m1");
    pc.logout().await.unwrap();
    phone.send_text("bob", "m2").await.unwrap();
    assert_eq!(next_message(&mut bob_events).await.text(), "m1");
    assert_eq!(next_message(&mut bob_events).await.text(), "m2");
    let mine = phone.get_messages("bob", 10, None).await.unwrap();
    assert!(mine.iter().all(|m| !m.peer_read), "nothing read yet: {mine:?}");

    server.clock.advance_secs(5);
    bob.mark_read("alice").await.unwrap();
    assert_eq!(peer_read(&mut phone_events).await, ("bob".into(), NOW + 5));
    let conv = next_matching(&mut phone_events, "alice's conversation", |e| match e {
        Event::ConversationChanged(c) if c.peer_read_time > 0 => Some(c),
        _ => None,
    })
    .await;
    assert_eq!(conv.peer_read_time, NOW + 5);
    let mine = phone.get_messages("bob", 10, None).await.unwrap();
    assert_eq!(
        mine.iter().map(|m| (m.text(), m.peer_read)).collect::<Vec<_>>(),
        [("m2".into(), true), ("m1".into(), true)]
    );
    assert!(mine.iter().all(|m| conv.is_peer_read(m)));
    // The server's list says it too, to a device that asks.
    assert_eq!(phone.conversations().await.unwrap()[0].peer_read_time, NOW + 5);

    // A message sent after the read is not read.
    server.clock.advance_secs(1);
    let m3 = phone.send_text("bob", "m3").await.unwrap();
    let found = phone.find_messages("bob", &[&m3.msg_key]).await.unwrap();
    assert!(found[0].as_ref().is_some_and(|m| !m.peer_read));

    // The PC, away during the read, catches up.
    let (pc, mut pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    let sync = until_sync_complete(&mut pc_events).await;
    assert!(sync.contains(&Event::PeerRead { peer: "bob".into(), time: NOW + 5 }), "{sync:?}");
    let local = pc.local_conversations().await.unwrap();
    assert_eq!(local[0].peer_read_time, NOW + 5);
    let page = pc.get_messages("bob", 10, None).await.unwrap();
    let read: Vec<(String, bool)> = page.iter().map(|m| (m.text(), m.peer_read)).collect();
    assert_eq!(read, [("m3".into(), false), ("m2".into(), true), ("m1".into(), true)]);

    // A read that moves nothing sends no receipt: the next one the phone hears of is a later read.
    bob.mark_read("alice").await.unwrap();
    server.clock.advance_secs(1);
    bob.mark_read("alice").await.unwrap();
    assert_eq!(peer_read(&mut phone_events).await, ("bob".into(), NOW + 6));
    assert_eq!(peer_read(&mut phone_events).await, ("bob".into(), NOW + 7));

    for c in [phone, pc, bob] {
        c.logout().await.unwrap();
    }
}

#[tokio::test]
async fn message_read_receipts_reach_the_senders_devices_and_leave_unread_alone() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (pc, _pc_events, _) = connect_synced(device_in(&server, "alice", dir.path())).await;
    let (bob, mut bob_events, _) = connect_synced(user_config(&server, "bob", Platform::Android)).await;
    pc.logout().await.unwrap();

    let ask = SendOptions { need_read_receipt: true, ..SendOptions::default() };
    let asked = phone.send_message("bob", vec![elems::text("please confirm")], ask).await.unwrap();
    let plain = phone.send_text("bob", "no receipt").await.unwrap();
    // The REST API's IsNeedReadReceipt asks too.
    let r = server
        .rest(
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 7, "MsgBody": text("by rest"), "IsNeedReadReceipt": 1}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let rest_key = r["MsgKey"].as_str().unwrap().to_owned();
    let got: Vec<Message> = vec![
        next_message(&mut bob_events).await,
        next_message(&mut bob_events).await,
        next_message(&mut bob_events).await,
    ];
    let asks: Vec<(String, bool)> = got.iter().map(|m| (m.text(), m.need_read_receipt)).collect();
    assert_eq!(asks, [("please confirm".into(), true), ("no receipt".into(), false), ("by rest".into(), true)]);

    server.clock.advance_secs(3);
    let acknowledged =
        bob.send_read_receipts("alice", &[&asked.msg_key, &plain.msg_key, &rest_key, "1_1_1"]).await.unwrap();
    assert_eq!(acknowledged, [asked.msg_key.clone(), rest_key.clone()], "only what asked for one");
    assert_eq!(receipt(&mut phone_events).await, ("bob".into(), asked.msg_key.clone(), NOW + 3));
    assert_eq!(receipt(&mut phone_events).await, ("bob".into(), rest_key.clone(), NOW + 3));
    // A receipt is not a read.
    assert_eq!(bob.conversations().await.unwrap()[0].unread, 3);
    let found = phone.find_messages("bob", &[&asked.msg_key, &plain.msg_key, "1_1_1"]).await.unwrap();
    let states: Vec<Option<(bool, Option<i64>, bool)>> =
        found.iter().map(|m| m.as_ref().map(|m| (m.need_read_receipt, m.receipt_time, m.peer_read))).collect();
    assert_eq!(states, [Some((true, Some(NOW + 3), false)), Some((false, None, false)), None]);
    // A second receipt changes nothing and tells no one.
    server.clock.advance_secs(1);
    assert_eq!(bob.send_read_receipts("alice", &[&asked.msg_key]).await.unwrap(), vec![asked.msg_key.clone()]);

    // The PC catches up with both receipts, once each, and keeps them in its store.
    let (pc, mut pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    let sync = until_sync_complete(&mut pc_events).await;
    let receipts: Vec<&Event> = sync.iter().filter(|e| matches!(e, Event::ReadReceipt { .. })).collect();
    assert_eq!(
        receipts,
        [
            &Event::ReadReceipt { peer: "bob".into(), msg_key: asked.msg_key.clone(), time: NOW + 3 },
            &Event::ReadReceipt { peer: "bob".into(), msg_key: rest_key.clone(), time: NOW + 3 },
        ]
    );
    let page = pc.get_messages("bob", 10, None).await.unwrap();
    let by_key = |k: &str| page.iter().find(|m| m.msg_key == k).map(|m| m.receipt_time);
    assert_eq!((by_key(&asked.msg_key), by_key(&plain.msg_key)), (Some(Some(NOW + 3)), Some(None)));

    // Bad requests: no keys, too many, a malformed one.
    assert_eq!(server_code(bob.send_read_receipts("alice", &[]).await.unwrap_err()), 6017);
    let many: Vec<String> = (0..101).map(|n| format!("{n}_1_1")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(server_code(bob.find_messages("alice", &many).await.unwrap_err()), 6017);
    assert_eq!(server_code(bob.find_messages("alice", &["nope"]).await.unwrap_err()), 90054);

    for c in [phone, pc, bob] {
        c.logout().await.unwrap();
    }
}

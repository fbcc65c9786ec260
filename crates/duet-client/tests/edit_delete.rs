//! Edit, one-sided delete, clearing a conversation's history and deleting a conversation, through the SDK
//! against the real server. Each reaches two devices of one user (one away during the change, catching up
//! when it logs in again) and, for an edit, the peer's device.

mod common;

use common::*;
use duet_client::{Client, Error, Event, Events, Message, Platform, elems};
use duet_test_support::TestServer;
use serde_json::json;

async fn modified(events: &mut Events) -> Message {
    next_matching(events, "an edit", |e| match e {
        Event::MessageModified(m) => Some(m),
        _ => None,
    })
    .await
}

fn texts(ms: &[Message]) -> Vec<String> {
    ms.iter().map(Message::text).collect()
}

#[tokio::test]
async fn an_edit_reaches_both_sides_and_a_device_away_catches_up() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (pc, mut pc_events, _) = connect_synced(device_in(&server, "alice", dir.path())).await;
    let (bob, mut bob_events, _) = connect_synced(user_config(&server, "bob", Platform::Android)).await;

    let sent = phone.send_text("bob", "teh").await.unwrap();
    assert_eq!(next_message(&mut bob_events).await.text(), "teh");
    assert_eq!(next_message(&mut pc_events).await.text(), "teh");
    pc.logout().await.unwrap();

    let edited = phone.modify("bob", &sent.msg_key, Some(vec![elems::text("the")]), Some("fixed"), Some(0)).await;
    let edited = edited.expect("an edit of the version seen");
    assert_eq!((edited.text(), edited.cloud_custom_data.as_str(), edited.version), ("the".into(), "fixed", 1));
    for events in [&mut bob_events, &mut phone_events] {
        let m = modified(events).await;
        assert_eq!((m.msg_key.as_str(), m.text(), m.version), (sent.msg_key.as_str(), "the".to_owned(), 1));
    }
    // History and the conversation list show the new content, on the server and in the local store.
    assert_eq!(texts(&bob.get_messages("alice", 10, None).await.unwrap()), ["the"]);
    let on_server = bob.conversations().await.unwrap();
    assert_eq!(on_server[0].last.as_ref().map(Message::text), Some("the".into()));
    let local = bob.local_conversations().await.unwrap();
    assert_eq!(local[0].last.as_ref().map(|m| (m.text(), m.version)), Some(("the".into(), 1)));

    // Someone edited it since version 0: a conflict, with the latest version.
    match phone.modify("bob", &sent.msg_key, Some(vec![elems::text("teh!")]), None, Some(0)).await {
        Err(Error::EditConflict { latest: Some(latest), .. }) => {
            assert_eq!((latest.text(), latest.version), ("the".into(), 1));
        }
        other => panic!("a stale version conflicts, got {other:?}"),
    }
    // Only text and custom elements; only one's own message; only a message that exists.
    let image = elems::image("u1", 1, vec![]);
    let e = phone.modify("bob", &sent.msg_key, Some(vec![image]), None, None).await.unwrap_err();
    assert_eq!(e.code(), Some(6017), "{e:?}");
    assert_eq!(
        server_code(bob.modify("alice", &sent.msg_key, Some(vec![elems::text("x")]), None, None).await.unwrap_err()),
        20022
    );
    assert_eq!(server_code(phone.modify("bob", "1_2_3", None, Some("x"), None).await.unwrap_err()), 20022);
    // The app admin edits it too (REST): everyone hears of it.
    let r = server
        .rest(
            "openim/modify_c2c_msg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgKey": sent.msg_key, "MsgBody": [
                {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "card", "Desc": "", "Ext": ""}}
            ]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(modified(&mut bob_events).await.version, 2);

    // The PC comes back: the sync brings both edits, and its local copy is the latest.
    let (pc, mut pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    let sync = until_sync_complete(&mut pc_events).await;
    let edits: Vec<u32> = sync
        .iter()
        .filter_map(|e| match e {
            Event::MessageModified(m) => Some(m.version),
            _ => None,
        })
        .collect();
    assert_eq!(edits, [2, 2], "each edit's entry carries the message as it is now: {sync:?}");
    let local = pc.get_messages("bob", 10, None).await.unwrap();
    assert_eq!((local[0].version, local[0].elems.len(), local[0].cloud_custom_data.as_str()), (2, 1, "fixed"));
    assert!(matches!(local[0].elems[0], duet_client::MsgElem::Custom(_)), "{:?}", local[0]);
}

#[tokio::test]
async fn a_delete_reaches_the_users_devices_and_the_peer_keeps_the_message() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (pc, mut pc_events, _) = connect_synced(device_in(&server, "alice", dir.path())).await;
    let (bob, _bob_events, _) = connect_synced(user_config(&server, "bob", Platform::Android)).await;

    let mut keys = Vec::new();
    for n in 1..=3 {
        keys.push(bob.send_text("alice", &format!("m{n}")).await.unwrap().msg_key);
        assert_eq!(next_message(&mut phone_events).await.text(), format!("m{n}"));
        assert_eq!(next_message(&mut pc_events).await.text(), format!("m{n}"));
    }
    pc.logout().await.unwrap();
    assert_eq!(phone.local_conversations().await.unwrap()[0].unread, 3);

    // The newest (and unread) one, and a key that names nothing: one is deleted.
    let deleted = phone.delete_messages("bob", &[&keys[2], "1_2_3"]).await.unwrap();
    assert_eq!(deleted, [keys[2].clone()]);
    let gone = next_matching(&mut phone_events, "a delete", |e| match e {
        Event::MessageDeleted { peer, msg_key } => Some((peer, msg_key)),
        _ => None,
    })
    .await;
    assert_eq!(gone, ("bob".to_owned(), keys[2].clone()));
    assert_eq!(texts(&phone.get_messages("bob", 10, None).await.unwrap()), ["m2", "m1"]);
    assert_eq!(texts(&bob.get_messages("alice", 10, None).await.unwrap()), ["m3", "m2", "m1"], "the peer keeps it");
    let conv = &phone.local_conversations().await.unwrap()[0];
    assert_eq!((conv.unread, conv.last.as_ref().map(Message::text)), (2, Some("m2".into())));
    let on_server = &phone.conversations().await.unwrap()[0];
    assert_eq!((on_server.unread, on_server.last.as_ref().map(Message::text)), (2, Some("m2".into())));

    // At most 50 at once; nothing is sent for an invalid call.
    let many: Vec<String> = (0..51).map(|n| format!("{n}_1_1")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(phone.delete_messages("bob", &many).await.unwrap_err().code(), Some(6017));

    // A second unread one, and an edit of it after: the PC will apply all three in one batch.
    assert_eq!(phone.delete_messages("bob", &[&keys[1]]).await.unwrap(), [keys[1].clone()]);
    let r = server
        .rest(
            "openim/modify_c2c_msg",
            json!({"From_Account": "bob", "To_Account": "alice", "MsgKey": keys[1], "MsgBody": [
                {"MsgType": "TIMTextElem", "MsgContent": {"Text": "m2 edited"}}
            ]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");

    // The PC comes back: the deletes reach it, its local history loses the messages (the later edit does
    // not bring one back), and the unread count drops by each.
    let (pc, mut pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    let sync = until_sync_complete(&mut pc_events).await;
    assert!(describe_all(&sync).contains(&format!("deleted bob {}", keys[2])), "{sync:?}");
    assert!(describe_all(&sync).contains(&format!("deleted bob {}", keys[1])), "{sync:?}");
    assert_eq!(texts(&pc.get_messages("bob", 10, None).await.unwrap()), ["m1"]);
    let conv = &pc.local_conversations().await.unwrap()[0];
    assert_eq!((conv.unread, conv.last.as_ref().map(Message::text)), (1, Some("m1".into())));
    // The local store itself holds neither (history above may have been answered by the server).
    pc.logout().await.unwrap();
    use duet_client::store::LocalStore;
    let file = duet_client::store::SqliteStore::file_in(dir.path(), "alice");
    let local = duet_client::store::SqliteStore::open(&file, "alice").unwrap();
    for key in &keys[1..] {
        assert_eq!(local.message("bob", key).unwrap(), None, "{key} stays deleted");
    }
    assert!(local.message("bob", &keys[0]).unwrap().is_some());
}

#[tokio::test]
async fn clearing_history_and_deleting_a_conversation_reach_the_users_devices() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (pc, mut pc_events, _) = connect_synced(device_in(&server, "alice", dir.path())).await;
    let (bob, _bob_events, _) = connect_synced(user_config(&server, "bob", Platform::Android)).await;
    for n in 1..=2 {
        bob.send_text("alice", &format!("b{n}")).await.unwrap();
        next_message(&mut phone_events).await;
        next_message(&mut pc_events).await;
    }
    rest_send(&server, "carol", "alice", 1, "from carol").await;
    next_message(&mut phone_events).await;
    next_message(&mut pc_events).await;
    pc.logout().await.unwrap();

    // Clear bob's history: the conversation stays, empty and read; bob keeps his.
    phone.clear_history("bob").await.unwrap();
    next_matching(&mut phone_events, "a clear", |e| {
        matches!(e, Event::HistoryCleared { ref peer } if peer == "bob").then_some(())
    })
    .await;
    assert!(phone.get_messages("bob", 10, None).await.unwrap().is_empty());
    assert_eq!(texts(&bob.get_messages("alice", 10, None).await.unwrap()), ["b2", "b1"]);
    let listed = phone.conversations().await.unwrap();
    let bob_conv = listed.iter().find(|c| c.peer == "bob").expect("the cleared conversation is still listed");
    assert_eq!((bob_conv.unread, bob_conv.last.is_none()), (0, true));
    // A message after the clear is history again.
    bob.send_text("alice", "b3").await.unwrap();
    next_message(&mut phone_events).await;
    assert_eq!(texts(&phone.get_messages("bob", 10, None).await.unwrap()), ["b3"]);

    // Delete carol's conversation (its messages stay); then bob's with its history, through REST.
    phone.delete_conversation("carol", false).await.unwrap();
    let r = server
        .rest(
            "recentcontact/delete",
            json!({"From_Account": "alice", "Type": 1, "To_Account": "bob", "ClearRamble": 1}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    for peer in ["carol", "bob"] {
        next_matching(&mut phone_events, "a deleted conversation", |e| {
            matches!(e, Event::ConversationDeleted { peer: ref p } if p == peer).then_some(())
        })
        .await;
    }
    assert!(phone.conversations().await.unwrap().is_empty());
    assert!(phone.local_conversations().await.unwrap().is_empty());
    assert_eq!(texts(&phone.get_messages("carol", 10, None).await.unwrap()), ["from carol"]);
    assert!(phone.get_messages("bob", 10, None).await.unwrap().is_empty());

    // The PC catches up on all of it.
    let (pc, mut pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    let sync = describe_all(&until_sync_complete(&mut pc_events).await);
    for expected in ["cleared bob", "conversation-deleted carol", "conversation-deleted bob"] {
        assert!(sync.iter().any(|e| e == expected), "{expected}: {sync:?}");
    }
    assert!(pc.local_conversations().await.unwrap().is_empty());
    assert!(pc.get_messages("bob", 10, None).await.unwrap().is_empty());
    assert_eq!(texts(&pc.get_messages("carol", 10, None).await.unwrap()), ["from carol"]);
}

#[tokio::test]
async fn conversation_settings_reach_every_device_and_order_the_list() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (pc, mut pc_events, _) = connect_synced(device_in(&server, "alice", dir.path())).await;
    rest_send(&server, "bob", "alice", 1, "from bob").await;
    next_message(&mut phone_events).await;
    next_message(&mut pc_events).await;
    rest_send(&server, "carol", "alice", 2, "from carol").await;
    next_message(&mut phone_events).await;
    next_message(&mut pc_events).await;
    let order = |list: Vec<duet_client::Conversation>| list.into_iter().map(|c| c.peer).collect::<Vec<_>>();
    assert_eq!(order(phone.conversations().await.unwrap()), ["carol", "bob"]);
    pc.logout().await.unwrap();

    // Pin bob, star him, keep a draft and data about him; quiet carol.
    let change = duet_client::ConversationChange {
        pinned: Some(true),
        set_marks: 1,
        custom_data: Some("vip".into()),
        draft: Some("see you at".into()),
        ..Default::default()
    };
    phone.update_conversation("bob", change).await.unwrap();
    let quiet = duet_client::ConversationChange { receive_opt: Some(2), ..Default::default() };
    phone.update_conversation("carol", quiet).await.unwrap();
    let bob = next_matching(&mut phone_events, "bob's settings", |e| match e {
        Event::ConversationChanged(c) if c.peer == "bob" && c.settings.pinned => Some(c),
        _ => None,
    })
    .await;
    assert_eq!(
        (bob.settings.marks, bob.settings.custom_data.as_str(), bob.settings.draft.as_str()),
        (1, "vip", "see you at")
    );
    assert!(bob.settings.draft_time > 0);
    assert_eq!(order(phone.local_conversations().await.unwrap()), ["bob", "carol"], "pinned first");
    let on_server = phone.conversations().await.unwrap();
    assert_eq!(order(on_server.clone()), ["bob", "carol"]);
    assert_eq!(on_server[1].settings.receive_opt, 2);
    // REST: bob is pinned (TopFlag) and first; carol's unread leaves the total.
    let r = server.rest("recentcontact/get_list", json!({"From_Account": "alice", "StartIndex": 0})).await;
    let items: Vec<(String, u64)> = r["SessionItem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["To_Account"].as_str().unwrap().to_owned(), i["TopFlag"].as_u64().unwrap()))
        .collect();
    assert_eq!(items, [("bob".to_owned(), 1), ("carol".to_owned(), 0)], "{r}");
    let r = server.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "alice"})).await;
    assert_eq!(r["AllC2CUnreadMsgNum"], 1, "carol's conversation is quiet: {r}");
    // Bad values are refused before anything changes.
    let long = duet_client::ConversationChange { custom_data: Some("x".repeat(257)), ..Default::default() };
    assert_eq!(phone.update_conversation("bob", long).await.unwrap_err().code(), Some(6017));
    let bad = duet_client::ConversationChange { receive_opt: Some(7), ..Default::default() };
    assert_eq!(phone.update_conversation("bob", bad).await.unwrap_err().code(), Some(6017));

    // The PC comes back with the same settings and order.
    let (pc, mut pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    until_sync_complete(&mut pc_events).await;
    let local = pc.local_conversations().await.unwrap();
    assert_eq!(order(local.clone()), ["bob", "carol"]);
    assert_eq!((local[0].settings.pinned, local[0].settings.draft.as_str()), (true, "see you at"));
    assert_eq!(local[1].settings.receive_opt, 2);
    // And keeps them across a restart of the app (its local store).
    pc.logout().await.unwrap();
    let (pc, _pc_events) = Client::connect(device_in(&server, "alice", dir.path())).await.unwrap();
    let local = pc.local_conversations().await.unwrap();
    assert_eq!((local[0].peer.as_str(), local[0].settings.custom_data.as_str()), ("bob", "vip"));
}

async fn typing(events: &mut Events) -> (String, bool) {
    next_matching(events, "a typing event", |e| match e {
        Event::Typing { from, typing } => Some((from, typing)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn typing_reaches_the_peers_live_devices_only_and_is_rate_limited() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol"]).await;
    let (alice, mut alice_events, _) = connect_synced(user_config(&server, "alice", Platform::IPhone)).await;
    let (bob, mut bob_events, _) = connect_synced(user_config(&server, "bob", Platform::Android)).await;

    // Every key press may say so: the first passes, the rest of the second are dropped; a stop passes.
    for _ in 0..10 {
        alice.send_typing("bob", true).await.unwrap();
    }
    alice.send_typing("bob", false).await.unwrap();
    assert_eq!(typing(&mut bob_events).await, ("alice".to_owned(), true));
    assert_eq!(typing(&mut bob_events).await, ("alice".to_owned(), false), "nine of ten were dropped");
    // The fake Tencent apps use keeps working: an online-only custom message.
    let live = duet_client::SendOptions { online_only: true, ..Default::default() };
    alice.send_message("bob", vec![elems::custom("typing", "", "")], live).await.unwrap();
    assert!(matches!(next_message(&mut bob_events).await.elems[0], duet_client::MsgElem::Custom(_)));

    // Never stored: a device that logs in later hears nothing of it.
    let (_late, mut late_events, sync) = connect_synced(user_config(&server, "bob", Platform::Pc)).await;
    assert!(!describe_all(&sync).iter().any(|e| e.starts_with("typing")), "{sync:?}");
    // A blacklist stops it; an unknown peer is refused.
    bob.add_to_blacklist("alice").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    alice.send_typing("bob", true).await.unwrap();
    bob.send_typing("alice", true).await.unwrap();
    assert_eq!(typing(&mut alice_events).await, ("bob".to_owned(), true), "bob may still tell alice");
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), typing(&mut late_events)).await;
    assert!(quiet.is_err(), "a blacklisted sender's typing reaches no one: {quiet:?}");
    assert_eq!(server_code(alice.send_typing("nobody", true).await.unwrap_err()), 90012);
}

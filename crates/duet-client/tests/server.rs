//! The SDK against the real server on `127.0.0.1:0`: offline catch-up, live messages, history filled
//! from the server, several devices, persistence, kicks and refused logins.

mod common;

use common::*;
use duet_client::{Client, ClientConfig, Error, Event, LocalStoreConfig, Message, Platform, SendOptions, elems};
use duet_test_support::{Proxy, T0_MS, TestServer, text};
use serde_json::json;

fn texts(messages: &[Message]) -> Vec<String> {
    messages.iter().map(Message::text).collect()
}

fn conv_seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.conv_seq).collect()
}

fn user_config(server: &TestServer, user: &str, platform: Platform) -> ClientConfig {
    config(&server.base_url(), user, &server.usersig(user), platform)
}

#[tokio::test]
async fn offline_messages_then_live_then_history_filled_from_the_server() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol"]).await;
    let t0 = T0_MS / 1000;

    // Old history imported from a previous system: in the conversation, never in bob's sync log.
    for i in 0..5u32 {
        let (from, to) = if i % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
        let r = server
            .rest(
                "openim/importmsg",
                json!({"SyncFromOldSystem": 2, "From_Account": from, "To_Account": to,
                       "MsgRandom": 1000 + i, "MsgTimeStamp": t0 - 3600 + i64::from(i) * 60,
                       "MsgBody": text(&format!("old {i}"))}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 0, "importmsg: {r}");
    }

    // carol writes first, so that alice's is the latest conversation.
    server.clock.advance_secs(1);
    rest_send(&server, "carol", "bob", 1, "from carol").await;

    // alice writes through the SDK and through REST while bob is offline.
    let (alice, _alice_events, _) = connect_synced(user_config(&server, "alice", Platform::Mac)).await;
    server.clock.advance_secs(1);
    let one = alice.send_text("bob", "one").await.expect("sending one");
    server.clock.advance_secs(1);
    rest_send(&server, "alice", "bob", 2, "two").await;
    server.clock.advance_secs(1);
    let three = alice
        .send_message(
            "bob",
            vec![elems::text("three")],
            SendOptions { cloud_custom_data: "ccd".into(), ..SendOptions::default() },
        )
        .await
        .expect("sending three");
    assert_eq!((one.conv_seq, three.conv_seq), (6, 8), "after the 5 imported messages");
    assert!(one.log_seq.is_some(), "an SDK send is logged for the sender's devices");

    // bob comes online: the catch-up raises the offline messages in order, then the conversations.
    let (bob, mut bob_events) =
        Client::connect(user_config(&server, "bob", Platform::IPhone)).await.expect("bob connects");
    let sync = until_sync_complete(&mut bob_events).await;
    assert_eq!(
        describe_all(&sync),
        vec![
            "sync-started",
            "msg carol->bob: from carol",
            "msg alice->bob: one",
            "msg alice->bob: two",
            "msg alice->bob: three",
            "conv alice unread 3",
            "conv carol unread 1",
            "sync-complete",
        ]
    );
    let Event::NewMessage(m3) = &sync[4] else { unreachable!() };
    assert_eq!(m3.msg_key, three.msg_key);
    assert_eq!(m3.cloud_custom_data, "ccd");
    assert!(m3.log_seq.is_some());
    let Event::ConversationChanged(conv) = &sync[5] else { unreachable!() };
    assert_eq!(conv.last.as_ref().map(Message::text).as_deref(), Some("three"));

    // A live message.
    server.clock.advance_secs(1);
    rest_send(&server, "alice", "bob", 3, "four").await;
    let four = next_message(&mut bob_events).await;
    assert_eq!((four.text().as_str(), four.conv_seq), ("four", 9));
    match next_app_event(&mut bob_events).await {
        Event::ConversationChanged(c) => assert_eq!((c.peer.as_str(), c.unread), ("alice", 4)),
        other => panic!("expected the conversation to change, got {other:?}"),
    }

    // Paging back by two: 9..6 are local; 5..1 only exist on the server.
    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = bob.get_messages("alice", 2, before.as_deref()).await.expect("a history page");
        if page.is_empty() {
            break;
        }
        before = page.last().map(|m| m.msg_key.clone());
        pages.push(conv_seqs(&page));
        assert!(pages.len() < 10, "paging does not end: {pages:?}");
    }
    assert_eq!(pages, vec![vec![9, 8], vec![7, 6], vec![5, 4], vec![3, 2], vec![1]]);

    // Everything is local now: once the server's retention has dropped the conversation, the SDK
    // still answers the whole of it from its store.
    server.clock.advance_secs(8 * 86_400);
    let all = bob.get_messages("alice", 50, None).await.expect("history");
    assert_eq!(conv_seqs(&all), (1..=9).rev().collect::<Vec<_>>());
    assert_eq!(texts(&all), ["four", "three", "two", "one", "old 4", "old 3", "old 2", "old 1", "old 0"]);

    // mark_read clears the unread count locally too.
    bob.mark_read("alice").await.expect("mark_read");
    let local = bob.local_conversations().await.unwrap();
    let alice_conv = local.iter().find(|c| c.peer == "alice").expect("alice's conversation");
    assert_eq!(alice_conv.unread, 0);

    bob.logout().await.expect("bob logs out");
    alice.logout().await.expect("alice logs out");
    let rest = until_end(&mut bob_events).await;
    assert!(
        matches!(rest.last(), Some(Event::Connection(duet_client::ConnectionState::Disconnected { .. }))),
        "{rest:?}"
    );
    assert!(matches!(bob.send_text("alice", "late").await, Err(Error::Closed)));
}

#[tokio::test]
async fn two_devices_see_each_message_once_and_their_own_sends_once() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let (phone, mut phone_events, _) = connect_synced(user_config(&server, "bob", Platform::IPhone)).await;
    let (pc, mut pc_events, _) = connect_synced(user_config(&server, "bob", Platform::Pc)).await;
    let (alice, mut alice_events, _) = connect_synced(user_config(&server, "alice", Platform::Android)).await;
    assert_ne!(phone.device(), pc.device());

    for t in ["a1", "a2", "a3"] {
        alice.send_text("bob", t).await.expect("alice sends");
    }
    rest_send(&server, "alice", "bob", 9, "a4").await;
    for events in [&mut phone_events, &mut pc_events] {
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(next_message(events).await.text());
        }
        assert_eq!(got, ["a1", "a2", "a3", "a4"]);
    }

    // bob writes from the phone: the PC raises it, the phone does not.
    let sent = phone.send_text("alice", "from the phone").await.expect("bob sends");
    let on_pc = next_message(&mut pc_events).await;
    assert_eq!((on_pc.from.as_str(), on_pc.text().as_str()), ("bob", "from the phone"));
    assert_eq!(on_pc.msg_key, sent.msg_key);
    assert_eq!(on_pc.log_seq, sent.log_seq);
    let on_alice = next_message(&mut alice_events).await;
    assert_eq!(on_alice.text(), "from the phone");

    // The phone's next message is alice's marker: its own message was not raised back to it.
    alice.send_text("bob", "marker").await.unwrap();
    assert_eq!(next_message(&mut phone_events).await.text(), "marker");
    assert_eq!(next_message(&mut pc_events).await.text(), "marker");

    // The phone's history holds its own message, from the local store.
    let page = phone.get_messages("alice", 2, None).await.unwrap();
    assert_eq!(texts(&page), ["marker", "from the phone"]);

    for c in [phone, pc, alice] {
        c.logout().await.unwrap();
    }
}

#[tokio::test]
async fn a_persistent_store_resumes_from_its_cursor() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = || user_config(&server, "bob", Platform::Linux).store(LocalStoreConfig::Sqlite(dir.path().to_owned()));

    rest_send(&server, "alice", "bob", 1, "first").await;
    let (bob, mut events, sync) = connect_synced(cfg()).await;
    assert_eq!(describe_all(&sync), ["sync-started", "msg alice->bob: first", "conv alice unread 1", "sync-complete"]);
    let device = bob.device().to_owned();
    bob.logout().await.unwrap();
    until_end(&mut events).await;

    server.clock.advance_secs(1);
    rest_send(&server, "alice", "bob", 2, "second").await;
    let (bob, _events, sync) = connect_synced(cfg()).await;
    assert_eq!(
        describe_all(&sync),
        ["sync-started", "msg alice->bob: second", "conv alice unread 2", "sync-complete"],
        "only what arrived since the last run is raised"
    );
    assert_eq!(bob.device(), device, "the device id is kept in the store");
    let page = bob.get_messages("alice", 10, None).await.unwrap();
    assert_eq!(texts(&page), ["second", "first"]);
    bob.logout().await.unwrap();
}

#[tokio::test]
async fn an_admin_kick_ends_the_client() {
    let server = TestServer::spawn().await;
    server.import(&["bob"]).await;
    let (bob, mut events, _) = connect_synced(user_config(&server, "bob", Platform::IPhone)).await;
    let r = server.rest("im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    assert_eq!(r["ErrorCode"], 0, "kick: {r}");
    match next_app_event(&mut events).await {
        Event::Kicked { code, .. } => assert_eq!(code, 6208),
        other => panic!("expected a kick, got {other:?}"),
    }
    until_end(&mut events).await;
    assert!(matches!(bob.send_text("alice", "x").await, Err(Error::Closed)));
    bob.logout().await.expect("logging out a stopped client is harmless");
}

#[tokio::test]
async fn a_refused_login_fails_connect_with_the_servers_code() {
    let server = TestServer::spawn().await;
    let err = Client::connect(config(&server.base_url(), "bob", "not a usersig", Platform::Web))
        .await
        .expect_err("a bad usersig is refused");
    assert!(matches!(err, Error::Server { code, .. } if (70001..=70052).contains(&code)), "{err}");

    let sig = server.usersig("alice");
    let err = Client::connect(config(&server.base_url(), "bob", &sig, Platform::Web))
        .await
        .expect_err("alice's usersig does not log bob in");
    assert_eq!(err.code(), Some(70013), "{err}");
}

#[tokio::test]
async fn server_refusals_reach_the_caller_and_the_session_goes_on() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let (alice, _events, _) = connect_synced(user_config(&server, "alice", Platform::Web)).await;
    let err = alice.send_text("nobody", "hi").await.expect_err("unknown recipient");
    assert!(matches!(err.code(), Some(90012 | 20003)), "{err}");
    let bad = elems::location("nowhere", 91.0, 0.0);
    let err = alice.send_message("bob", vec![bad], SendOptions::default()).await.expect_err("latitude out of range");
    assert_eq!(err.code(), Some(90010), "{err}");
    assert!(matches!(alice.send_message("bob", vec![], SendOptions::default()).await, Err(Error::InvalidArgument(_))));
    // Still logged in.
    alice.send_text("bob", "fine").await.expect("a good send");
    alice.logout().await.unwrap();
}

#[tokio::test]
async fn online_only_messages_reach_live_devices_once_and_are_not_stored() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let (bob, mut bob_events, _) = connect_synced(user_config(&server, "bob", Platform::IPhone)).await;
    let (alice, _a, _) = connect_synced(user_config(&server, "alice", Platform::Pc)).await;
    let typing = alice
        .send_message(
            "bob",
            vec![elems::custom("typing", "", "")],
            SendOptions { online_only: true, ..SendOptions::default() },
        )
        .await
        .expect("online-only send");
    assert_eq!((typing.conv_seq, typing.log_seq), (0, None));
    let m = next_message(&mut bob_events).await;
    assert!(m.is_online_only());
    assert_eq!(m.log_seq, None);
    alice.send_text("bob", "stored").await.unwrap();
    assert_eq!(next_message(&mut bob_events).await.text(), "stored");
    let page = bob.get_messages("alice", 10, None).await.unwrap();
    assert_eq!(texts(&page), ["stored"]);
    bob.logout().await.unwrap();
    alice.logout().await.unwrap();
}

#[tokio::test]
async fn a_lost_push_is_recovered_from_the_log() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let proxy = Proxy::start(server.addr).await;
    let bob_cfg = config(&proxy.base_url(), "bob", &server.usersig("bob"), Platform::Android);
    let (bob, mut bob_events, _) = connect_synced(bob_cfg).await;
    let (alice, _a, _) = connect_synced(user_config(&server, "alice", Platform::Pc)).await;

    proxy.drop_next_entries(1);
    alice.send_text("bob", "lost on the way").await.unwrap();
    alice.send_text("bob", "arrives").await.unwrap();
    let first = next_message(&mut bob_events).await;
    let second = next_message(&mut bob_events).await;
    assert_eq!(proxy.dropped(), 1);
    assert_eq!((first.text().as_str(), second.text().as_str()), ("lost on the way", "arrives"));
    assert_eq!(second.log_seq, first.log_seq.map(|s| s + 1));

    // Nothing is raised twice: the next message is the next one sent.
    alice.send_text("bob", "after").await.unwrap();
    assert_eq!(next_message(&mut bob_events).await.text(), "after");
    bob.logout().await.unwrap();
    alice.logout().await.unwrap();
}

#[tokio::test]
async fn a_severed_connection_reconnects_and_catches_up() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let proxy = Proxy::start(server.addr).await;
    let bob_cfg = config(&proxy.base_url(), "bob", &server.usersig("bob"), Platform::IPhone);
    let (bob, mut bob_events, _) = connect_synced(bob_cfg).await;
    rest_send(&server, "alice", "bob", 1, "before").await;
    assert_eq!(next_message(&mut bob_events).await.text(), "before");

    proxy.sever();
    within("the disconnection", async {
        while !matches!(
            next(&mut bob_events).await,
            Event::Connection(duet_client::ConnectionState::Disconnected { .. })
        ) {}
    })
    .await;
    // Sent while bob is (probably) away, and a request of bob's issued meanwhile.
    server.clock.advance_secs(1);
    rest_send(&server, "alice", "bob", 2, "while away").await;
    let sent = bob.send_text("alice", "queued").await.expect("sent once reconnected");

    // The catch-up after the reconnection, then whatever follows: "while away" exactly once.
    let seen = within("the catch-up after reconnecting", async {
        let mut seen = Vec::new();
        loop {
            let e = next_app_event(&mut bob_events).await;
            let done = e == Event::SyncComplete;
            seen.push(describe(&e));
            if done {
                return seen;
            }
        }
    })
    .await;
    assert_eq!(seen.first().map(String::as_str), Some("sync-started"), "{seen:?}");
    let away = seen.iter().filter(|e| *e == "msg alice->bob: while away").count();
    assert_eq!(away, 1, "{seen:?}");
    assert!(!seen.iter().any(|e| e.contains("queued") || e.contains("before")), "{seen:?}");

    let page = bob.get_messages("alice", 10, None).await.unwrap();
    assert_eq!(texts(&page), ["queued", "while away", "before"]);
    assert_eq!(page[0].msg_key, sent.msg_key);
    bob.logout().await.unwrap();
}

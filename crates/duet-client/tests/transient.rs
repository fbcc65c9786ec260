//! `SessionKind::Transient`: a client beside the user's devices that logs none of them out, and
//! `media::download`, which needs no client at all.

mod common;

use common::*;
use duet_client::{Event, Platform, SessionKind, media};
use duet_test_support::{TestServer, text};
use serde_json::json;

#[tokio::test]
async fn transient_clients_on_the_devices_platform_log_no_device_out() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let bob = |kind| config(&server.base_url(), "bob", &server.usersig("bob"), Platform::Linux).session(kind);
    let (_device, mut device_events, _) = connect_synced(bob(SessionKind::Device)).await;
    let (quiet, mut quiet_events, _) = connect_synced(bob(SessionKind::Transient { live: false })).await;
    let (_live, mut live_events, _) = connect_synced(bob(SessionKind::Transient { live: true })).await;

    // A send from the transient client reaches bob's device like a send from another device.
    quiet.send_text("alice", "from a script").await.unwrap();
    assert_eq!(next_message(&mut device_events).await.text(), "from a script");
    assert_eq!(next_message(&mut live_events).await.text(), "from a script");

    server.clock.advance_secs(1); // history is in time order; within a second, in MsgSeq order
    let r = server
        .rest(
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("hi bob")}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(next_message(&mut device_events).await.text(), "hi bob", "the device was not kicked");
    assert_eq!(next_message(&mut live_events).await.text(), "hi bob", "a live transient client gets pushes");
    // The quiet one heard nothing (it asks when it wants to know): no kick, no push.
    let history = quiet.get_messages("alice", 10, None).await.unwrap();
    assert_eq!(history[0].text(), "hi bob");
    while let Some(e) = quiet_events.try_recv() {
        assert!(!matches!(e, Event::Kicked { .. } | Event::NewMessage(_)), "{e:?}");
    }
}

#[tokio::test]
async fn media_download_needs_no_login_and_registers_no_account() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "some notes").unwrap();
    let (alice, _events, _) =
        connect_synced(config(&server.base_url(), "alice", &server.usersig("alice"), Platform::Mac)).await;
    let duet_client::MsgElem::File(up) = alice.create_file_message(&path, |_, _| {}).await.unwrap() else {
        panic!("not a file element")
    };

    let as_alice = config(&server.base_url(), "alice", &server.usersig("alice"), Platform::Linux);
    let out = dir.path().join("out.txt");
    assert_eq!(media::download(&as_alice, &up.uuid, &out, |_, _| {}).await.unwrap(), 10);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "some notes");

    // carol has no account: the download is refused, and carol still has none.
    let as_carol = config(&server.base_url(), "carol", &server.usersig("carol"), Platform::Linux);
    assert!(media::download(&as_carol, &up.uuid, dir.path().join("x"), |_, _| {}).await.is_err());
    let r = server.rest("im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": "carol"}]})).await;
    assert_eq!(r["ResultItem"][0]["AccountStatus"], "NotImported", "{r}");
}

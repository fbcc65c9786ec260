//! Sender info and system notifications, end to end: every delivered message carries the sender's
//! nickname and avatar as they were when it was sent, and a message from the app admin is marked as a
//! system notification, custom payload intact.

mod common;

use common::*;
use duet_client::{MsgElem, Platform, SendOptions, elems};
use duet_proto::elem::CustomElem;
use duet_test_support::{TestServer, text};
use serde_json::json;

#[tokio::test]
async fn messages_carry_the_senders_profile_as_it_was_and_admin_messages_are_system() {
    let server = TestServer::spawn().await;
    let r = server
        .rest(
            "im_open_login_svc/account_import",
            json!({"UserID": "alice", "Nick": "Alice A", "FaceUrl": "https://img.example/a.png"}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    server.import(&["bob"]).await;
    let (bob, mut events, _) =
        connect_synced(config(&server.base_url(), "bob", &server.usersig("bob"), Platform::IPhone)).await;

    // Through REST, as alice.
    let r = server
        .rest(
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("first")}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let first = next_message(&mut events).await;
    assert_eq!((first.sender.nick.as_str(), first.sender.face_url.as_str()), ("Alice A", "https://img.example/a.png"));
    assert!(!first.sender.system, "a user's message is not a system message");

    // alice renames herself, then sends through the SDK: the new message has the new name.
    server.clock.advance_secs(1);
    let r = server
        .rest(
            "profile/portrait_set",
            json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "Alice B"}]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let (alice, _alice_events, _) =
        connect_synced(config(&server.base_url(), "alice", &server.usersig("alice"), Platform::Mac)).await;
    alice.send_message("bob", vec![elems::text("second")], SendOptions::default()).await.unwrap();
    let second = next_message(&mut events).await;
    assert_eq!(second.sender.nick, "Alice B");

    // History from the server keeps each message's sender as it was when sent.
    let (fresh, _fresh_events, _) =
        connect_synced(config(&server.base_url(), "bob", &server.usersig("bob"), Platform::Pc)).await;
    let history = fresh.get_messages("alice", 10, None).await.unwrap();
    let nicks: Vec<&str> = history.iter().map(|m| m.sender.nick.as_str()).collect();
    assert_eq!(nicks, ["Alice B", "Alice A"], "newest first");

    // The admin as itself: a system notification, its custom payload intact.
    server.clock.advance_secs(1);
    let custom = json!([{"MsgType": "TIMCustomElem", "MsgContent": {"Data": "{\"kind\":\"red_packet\",\"amount\":88}", "Desc": "a red packet", "Ext": "ext-1"}}]);
    let r = server.rest("openim/sendmsg", json!({"To_Account": "bob", "MsgRandom": 2, "MsgBody": custom})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let notice = next_message(&mut events).await;
    assert!(notice.sender.system, "{notice:?}");
    assert_eq!(notice.from, "administrator");
    assert_eq!(
        notice.elems,
        vec![MsgElem::Custom(CustomElem {
            data: "{\"kind\":\"red_packet\",\"amount\":88}".into(),
            desc: "a red packet".into(),
            ext: "ext-1".into(),
            sound: String::new(),
        })]
    );

    // The admin sending as alice is alice's message, not a system one.
    let r = server
        .rest(
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 3, "MsgBody": text("as alice")}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let as_alice = next_message(&mut events).await;
    assert!(!as_alice.sender.system);
    assert_eq!(as_alice.sender.nick, "Alice B");

    for c in [bob, alice, fresh] {
        c.logout().await.unwrap();
    }
}

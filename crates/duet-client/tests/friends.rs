//! Friends, friend requests and blacklists through the SDK against the real server: the request flow
//! (NeedConfirm → accept, → decline, DenyAny) with its events on every device of both users, blacklist
//! events, and the permission policy's codes reaching the app.

mod common;

use common::*;
use duet_client::{AddFriendOptions, Client, Error, Event, Events, FriendAddResult, Platform, RelationEvent};
use duet_test_support::TestServer;
use serde_json::json;

fn describe_relation(e: &RelationEvent) -> String {
    match e {
        RelationEvent::FriendAdded { friend } => format!("friend+ {}", friend.peer),
        RelationEvent::FriendRemoved { peer } => format!("friend- {peer}"),
        RelationEvent::RequestReceived { request } => format!("request< {}: {}", request.from, request.wording),
        RelationEvent::RequestSent { request } => format!("request> {}", request.to),
        RelationEvent::RequestDeleted { from, to, reason } => format!("request-x {from}->{to} {reason:?}"),
        RelationEvent::BlackAdded { entry } => format!("black+ {}", entry.peer),
        RelationEvent::BlackRemoved { peer } => format!("black- {peer}"),
        RelationEvent::RelationsChanged => "changed".to_owned(),
    }
}

/// The next `n` relation events, skipping every other event.
async fn relations(events: &mut Events, n: usize) -> Vec<String> {
    within("waiting for relation events", async {
        let mut seen = Vec::new();
        while seen.len() < n {
            match events.recv().await {
                Some(Event::Relation(r)) => seen.push(describe_relation(&r)),
                Some(_) => {}
                None => panic!("the event stream ended"),
            }
        }
        seen
    })
    .await
}

async fn connect(server: &TestServer, user: &str, platform: Platform) -> (Client, Events) {
    let (client, events, _) = connect_synced(config(&server.base_url(), user, &server.usersig(user), platform)).await;
    (client, events)
}

async fn allow_type(server: &TestServer, user: &str, value: &str) {
    server.set_profile(user, "Tag_Profile_IM_AllowType", json!(value)).await;
}

fn code(r: Result<impl std::fmt::Debug, Error>) -> Option<u32> {
    r.expect_err("the server should refuse").code()
}

fn peers(list: &[duet_client::Friend]) -> Vec<&str> {
    list.iter().map(|f| f.peer.as_str()).collect()
}

#[tokio::test]
async fn a_request_that_needs_confirmation_is_accepted_with_events_on_every_device() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let (alice, mut alice_events) = connect(&server, "alice", Platform::Pc).await;
    let (bob_phone, mut bob_phone_events) = connect(&server, "bob", Platform::IPhone).await;
    let (bob_mac, mut bob_mac_events) = connect(&server, "bob", Platform::Mac).await;

    // bob has the default AllowType, NeedConfirm: the request waits.
    let opts =
        AddFriendOptions { wording: "hi bob".into(), source: "AddSource_Type_Test".into(), ..Default::default() };
    assert_eq!(alice.add_friend("bob", opts).await.expect("adding bob"), FriendAddResult::Pending);
    for events in [&mut bob_phone_events, &mut bob_mac_events] {
        assert_eq!(relations(events, 1).await, ["request< alice: hi bob"]);
    }
    assert_eq!(relations(&mut alice_events, 1).await, ["request> bob"]);
    let requests = bob_mac.friend_requests().await.expect("listing requests");
    assert_eq!((requests.incoming.len(), requests.incoming[0].from.as_str()), (1, "alice"));
    assert_eq!(alice.friend_requests().await.expect("listing").outgoing[0].to, "bob");
    assert!(alice.friends().await.expect("listing friends").is_empty());

    bob_phone.accept_friend_request("alice").await.expect("accepting");
    for events in [&mut bob_phone_events, &mut bob_mac_events] {
        assert_eq!(relations(events, 2).await, ["request-x alice->bob Accepted", "friend+ alice"]);
    }
    assert_eq!(relations(&mut alice_events, 2).await, ["request-x alice->bob Accepted", "friend+ bob"]);
    assert_eq!(peers(&alice.friends().await.unwrap()), ["bob"]);
    assert_eq!(peers(&bob_mac.friends().await.unwrap()), ["alice"]);
    assert_eq!(bob_mac.friend_requests().await.unwrap(), Default::default());
    let friend = &alice.friends().await.unwrap()[0];
    assert_eq!((friend.source.as_str(), friend.wording.as_str()), ("AddSource_Type_Test", "hi bob"));

    // Accepting again finds no request (30614); deleting both ways tells both sides.
    assert_eq!(code(bob_phone.accept_friend_request("alice").await), Some(30614));
    alice.delete_friend("bob", true).await.expect("deleting bob");
    assert_eq!(relations(&mut alice_events, 1).await, ["friend- bob"]);
    for events in [&mut bob_phone_events, &mut bob_mac_events] {
        assert_eq!(relations(events, 1).await, ["friend- alice"]);
    }
    assert_eq!(code(alice.delete_friend("bob", true).await), Some(31704));
}

#[tokio::test]
async fn a_declined_request_is_gone_on_every_device() {
    let server = TestServer::spawn().await;
    server.import(&["carol", "bob"]).await;
    let (carol, mut carol_events) = connect(&server, "carol", Platform::Android).await;
    let (_bob_phone, mut bob_phone_events) = connect(&server, "bob", Platform::IPhone).await;
    let (bob_web, mut bob_web_events) = connect(&server, "bob", Platform::Web).await;

    assert_eq!(carol.add_friend("bob", AddFriendOptions::default()).await.unwrap(), FriendAddResult::Pending);
    assert_eq!(relations(&mut carol_events, 1).await, ["request> bob"]);
    bob_web.decline_friend_request("carol").await.expect("declining");
    for events in [&mut bob_phone_events, &mut bob_web_events] {
        assert_eq!(relations(events, 2).await, ["request< carol: ", "request-x carol->bob Declined"]);
    }
    assert_eq!(relations(&mut carol_events, 1).await, ["request-x carol->bob Declined"]);
    assert!(carol.friends().await.unwrap().is_empty());
    assert_eq!(carol.friend_requests().await.unwrap(), Default::default());
    assert_eq!(code(bob_web.decline_friend_request("carol").await), Some(30614));
}

#[tokio::test]
async fn deny_any_refuses_requests_and_blacklists_are_told_to_every_device() {
    let server = TestServer::spawn().await;
    server.import(&["dave", "bob"]).await;
    allow_type(&server, "bob", "AllowType_Type_DenyAny").await;
    let (dave, mut dave_events) = connect(&server, "dave", Platform::Android).await;
    let (bob_phone, mut bob_phone_events) = connect(&server, "bob", Platform::IPhone).await;
    let (bob_mac, mut bob_mac_events) = connect(&server, "bob", Platform::Mac).await;

    assert_eq!(code(dave.add_friend("bob", AddFriendOptions::default()).await), Some(30516));
    assert!(bob_phone.friend_requests().await.unwrap().incoming.is_empty());

    // The next relation event bob's devices see is the blacklist: the refused request raised none.
    bob_phone.add_to_blacklist("dave").await.expect("blacklisting dave");
    for events in [&mut bob_phone_events, &mut bob_mac_events] {
        assert_eq!(relations(events, 1).await, ["black+ dave"]);
    }
    assert_eq!(bob_mac.blacklist().await.unwrap().iter().map(|b| b.peer.as_str()).collect::<Vec<_>>(), ["dave"]);
    assert_eq!(code(dave.add_friend("bob", AddFriendOptions::default()).await), Some(30525));
    assert_eq!(code(bob_mac.add_to_blacklist("dave").await), Some(30001));

    // bob accepts anyone now, but has dave in his blacklist: 30515 for bob's own request.
    allow_type(&server, "dave", "AllowType_Type_AllowAny").await;
    assert_eq!(code(bob_mac.add_friend("dave", AddFriendOptions::default()).await), Some(30515));
    bob_mac.remove_from_blacklist("dave").await.expect("unblocking");
    for events in [&mut bob_phone_events, &mut bob_mac_events] {
        assert_eq!(relations(events, 1).await, ["black- dave"]);
    }
    assert_eq!(bob_mac.add_friend("dave", AddFriendOptions::default()).await.unwrap(), FriendAddResult::Added);
    assert_eq!(relations(&mut dave_events, 1).await, ["friend+ bob"]);
    for events in [&mut bob_phone_events, &mut bob_mac_events] {
        assert_eq!(relations(events, 1).await, ["friend+ dave"]);
    }

    // Blacklisting a friend ends the friendship, told to both sides.
    dave.add_to_blacklist("bob").await.expect("blacklisting bob");
    assert_eq!(relations(&mut dave_events, 2).await, ["black+ bob", "friend- bob"]);
    for events in [&mut bob_phone_events, &mut bob_mac_events] {
        assert_eq!(relations(events, 1).await, ["friend- dave"]);
    }
}

#[tokio::test]
async fn friends_only_refusals_reach_the_app_with_tencents_codes() {
    let server = TestServer::spawn_with(|c| c.core.permissions.friends_only = true).await;
    server.import(&["erin", "frank"]).await;
    allow_type(&server, "frank", "AllowType_Type_AllowAny").await;
    let (erin, _erin_events) = connect(&server, "erin", Platform::Android).await;
    assert_eq!(code(erin.send_text("frank", "hi").await), Some(20009));
    let single = AddFriendOptions { single: true, ..Default::default() };
    assert_eq!(erin.add_friend("frank", single).await.unwrap(), FriendAddResult::Added);
    assert_eq!(code(erin.send_text("frank", "hi").await), Some(20010));
    assert_eq!(erin.add_friend("frank", AddFriendOptions::default()).await.unwrap(), FriendAddResult::Added);
    erin.send_text("frank", "hi").await.expect("two-way friends may talk");
}

#[tokio::test]
async fn accepting_a_request_keeps_the_requesters_existing_entry() {
    let server = TestServer::spawn().await;
    server.import(&["gina", "hank"]).await;
    // gina has hank one way already, with a remark, a group and a custom tag.
    let r = server
        .rest(
            "sns/friend_import",
            json!({"From_Account": "gina", "AddFriendItem": [{
                "To_Account": "hank", "Remark": "Hanky", "GroupName": ["Work"], "AddSource": "AddSource_Type_Web",
                "AddTime": 1_600_000_000, "CustomItem": [{"Tag": "Tag_SNS_Custom_Nick", "Value": "h"}]
            }]}),
        )
        .await;
    assert!(r.get("Fail_Account").is_none(), "{r}");
    // gina asks for the other direction too; hank (NeedConfirm) must accept.
    let (gina, _gina_events) = connect(&server, "gina", Platform::Web).await;
    let (hank, _hank_events) = connect(&server, "hank", Platform::Android).await;
    let opts = AddFriendOptions { remark: "new remark".into(), ..Default::default() };
    assert_eq!(gina.add_friend("hank", opts).await.unwrap(), FriendAddResult::Pending);
    hank.accept_friend_request("gina").await.expect("accepting");

    assert_eq!(peers(&hank.friends().await.unwrap()), ["gina"]);
    let tags = ["Tag_SNS_IM_Remark", "Tag_SNS_IM_Group", "Tag_SNS_IM_AddTime", "Tag_SNS_Custom_Nick"];
    let r = server
        .rest("sns/friend_get_list", json!({"From_Account": "gina", "To_Account": ["hank"], "TagList": tags}))
        .await;
    assert_eq!(
        r["InfoItem"][0]["SnsProfileItem"],
        json!([
            {"Tag": "Tag_SNS_IM_Remark", "Value": "Hanky"},
            {"Tag": "Tag_SNS_IM_Group", "Value": ["Work"]},
            {"Tag": "Tag_SNS_IM_AddTime", "Value": 1_600_000_000},
            {"Tag": "Tag_SNS_Custom_Nick", "Value": "h"}
        ]),
        "{r}"
    );
}

#[tokio::test]
async fn a_bulk_change_is_told_as_one_relations_changed_event_and_the_session_survives_it() {
    let server = TestServer::spawn().await;
    server.import(&["ivan"]).await;
    // More friends than a session's queue holds events (1 024).
    let ids: Vec<String> = (0..1_100).map(|i| format!("f{i}")).collect();
    for chunk in ids.chunks(100) {
        let r = server.rest("im_open_login_svc/multiaccount_import", json!({ "Accounts": chunk })).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    for chunk in ids.chunks(1_000) {
        let items: Vec<_> =
            chunk.iter().map(|id| json!({"To_Account": id, "AddSource": "AddSource_Type_Web"})).collect();
        let r = server.rest("sns/friend_import", json!({"From_Account": "ivan", "AddFriendItem": items})).await;
        assert!(r.get("Fail_Account").is_none(), "{r}");
    }
    let (ivan, mut events) = connect(&server, "ivan", Platform::Web).await;
    assert_eq!(ivan.friends().await.unwrap().len(), 1_100);

    let r =
        server.rest("sns/friend_delete_all", json!({"From_Account": "ivan", "DeleteType": "Delete_Type_Both"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(next_relation_on_the_same_connection(&mut events).await, "changed");
    assert!(ivan.friends().await.expect("the same session re-lists").is_empty());

    // A small change after it is told as itself, on the same connection.
    allow_type(&server, "f0", "AllowType_Type_AllowAny").await;
    let single = AddFriendOptions { single: true, ..Default::default() };
    assert_eq!(ivan.add_friend("f0", single).await.unwrap(), FriendAddResult::Added);
    assert_eq!(next_relation_on_the_same_connection(&mut events).await, "friend+ f0");
}

/// The next relation event; fails if the connection dropped before it.
async fn next_relation_on_the_same_connection(events: &mut Events) -> String {
    within("waiting for a relation event", async {
        loop {
            match events.recv().await {
                Some(Event::Relation(r)) => return describe_relation(&r),
                Some(Event::Connection(state)) => panic!("the session was dropped: {state:?}"),
                Some(_) => {}
                None => panic!("the event stream ended"),
            }
        }
    })
    .await
}

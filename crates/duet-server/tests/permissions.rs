//! The permission policy on the client send path, over a raw WebSocket: every combination of the app's
//! mode (default / friends-only) and blacklist check (silent / report) with every relationship between
//! sender and recipient (two-way friends, one-way either way, none, blacklisted either way, admin sender),
//! with Tencent's exact codes (20007, 20009, 20010, 20011); and the admin's REST sends, which pass every
//! check, as in Tencent IM.

use duet_core::relations::BlacklistCheck;
use duet_test_support::{ADMIN, TestServer, WsClient, text};
use serde_json::{Value, json};

/// How sender and recipient relate before the send.
#[derive(Debug, Clone, Copy)]
enum Rel {
    BothWay,
    /// The sender has the recipient as a friend; not the other way.
    SenderHas,
    /// The recipient has the sender as a friend; not the other way.
    RecipientHas,
    None,
    /// The recipient blacklisted the sender (which ended any friendship).
    RecipientBlocks,
    /// The sender blacklisted the recipient.
    SenderBlocks,
}

const RELATIONS: [Rel; 6] =
    [Rel::BothWay, Rel::SenderHas, Rel::RecipientHas, Rel::None, Rel::RecipientBlocks, Rel::SenderBlocks];

/// What the sender sees and whether the recipient gets the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// A normal-looking `sent`; nothing stored or delivered.
    Dropped,
    Refused(u64),
}

fn expected(friends_only: bool, report: bool, rel: Rel) -> Outcome {
    match (rel, friends_only) {
        (Rel::RecipientBlocks, _) => {
            if report {
                Outcome::Refused(20007)
            } else {
                Outcome::Dropped
            }
        }
        (_, false) => Outcome::Delivered,
        (Rel::BothWay, true) => Outcome::Delivered,
        (Rel::SenderHas, true) => Outcome::Refused(20010),
        (Rel::RecipientHas, true) => Outcome::Refused(20011),
        (Rel::None | Rel::SenderBlocks, true) => Outcome::Refused(20009),
    }
}

async fn ok(server: &TestServer, path: &str, body: Value) {
    let r = server.rest(path, body).await;
    assert_eq!(r["ErrorCode"], 0, "{path}: {r}");
    assert!(r.get("Fail_Account").is_none(), "{path}: {r}");
}

async fn one_way(server: &TestServer, from: &str, to: &str) {
    ok(
        server,
        "sns/friend_import",
        json!({"From_Account": from, "AddFriendItem": [{"To_Account": to, "AddSource": "AddSource_Type_Test"}]}),
    )
    .await;
}

async fn relate(server: &TestServer, sender: &str, recipient: &str, rel: Rel) {
    match rel {
        Rel::BothWay => {
            one_way(server, sender, recipient).await;
            one_way(server, recipient, sender).await;
        }
        Rel::SenderHas => one_way(server, sender, recipient).await,
        Rel::RecipientHas => one_way(server, recipient, sender).await,
        Rel::None => {}
        Rel::RecipientBlocks => {
            // A friendship first: the blacklist ends it.
            one_way(server, sender, recipient).await;
            one_way(server, recipient, sender).await;
            ok(server, "sns/black_list_add", json!({"From_Account": recipient, "To_Account": [sender]})).await;
        }
        Rel::SenderBlocks => {
            ok(server, "sns/black_list_add", json!({"From_Account": sender, "To_Account": [recipient]})).await;
        }
    }
}

/// Messages in the conversation, as the admin sees `owner`'s side of it.
async fn history_len(server: &TestServer, owner: &str, peer: &str) -> usize {
    let r = server
        .rest(
            "openim/admin_getroammsg",
            json!({"Operator_Account": owner, "Peer_Account": peer, "MaxCnt": 100, "MinTime": 0, "MaxTime": 4_000_000_000u64}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    r["MsgCnt"].as_u64().unwrap() as usize
}

/// The entries of `user`'s sync log.
async fn log_len(server: &TestServer, user: &str) -> usize {
    let mut raw = WsClient::login(server, user).await;
    let r = raw.request(json!({"op": "sync", "after": 0})).await;
    assert_eq!(r["op"], "synced", "{r}");
    r["entries"].as_array().unwrap().len()
}

async fn matrix(friends_only: bool, report: bool) {
    let server = TestServer::spawn_with(|c| {
        c.core.permissions.friends_only = friends_only;
        c.core.permissions.blacklist = if report { BlacklistCheck::Report } else { BlacklistCheck::Silent };
    })
    .await;
    let mode = format!("friends_only={friends_only} report={report}");
    for (i, rel) in RELATIONS.into_iter().enumerate() {
        let (sender, recipient) = (format!("s{i}"), format!("r{i}"));
        server.import(&[&sender, &recipient]).await;
        relate(&server, &sender, &recipient, rel).await;
        let mut raw = WsClient::login(&server, &sender).await;
        let reply = raw.send(&recipient, 1, text("hi")).await;
        let outcome = match reply["op"].as_str() {
            Some("sent") if reply["conv_seq"] == 0 && reply["log_seq"] == 0 => Outcome::Dropped,
            Some("sent") => Outcome::Delivered,
            Some("error") => Outcome::Refused(reply["code"].as_u64().unwrap()),
            _ => panic!("{mode} {rel:?}: unexpected answer {reply}"),
        };
        assert_eq!(outcome, expected(friends_only, report, rel), "{mode} {rel:?}: {reply}");
        if outcome == Outcome::Dropped {
            // It looks sent: a MsgKey of the sender's MsgRandom and the current time.
            let key = reply["msg_key"].as_str().unwrap();
            assert!(key.ends_with(&format!("_1_{}", server.clock_secs())), "{key}");
        }
        let stored = usize::from(outcome == Outcome::Delivered);
        assert_eq!(history_len(&server, &recipient, &sender).await, stored, "{mode} {rel:?}: recipient's history");
        assert_eq!(history_len(&server, &sender, &recipient).await, stored, "{mode} {rel:?}: sender's history");
        assert_eq!(log_len(&server, &recipient).await, stored, "{mode} {rel:?}: recipient's sync log");

        // The admin's REST send as the sender passes every check.
        let r = server
            .rest(
                "openim/sendmsg",
                json!({"From_Account": sender, "To_Account": recipient, "MsgRandom": 2, "MsgBody": text("from the backend")}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 0, "{mode} {rel:?}: {r}");
        assert_eq!(history_len(&server, &recipient, &sender).await, stored + 1, "{mode} {rel:?}: REST send");
    }

    // An admin logged in as a client sends to anyone, even to a user who blacklisted the admin.
    server.import(&["lonely"]).await;
    ok(&server, "sns/black_list_add", json!({"From_Account": "lonely", "To_Account": [ADMIN]})).await;
    let mut admin = WsClient::login(&server, ADMIN).await;
    let reply = admin.send("lonely", 3, text("hi")).await;
    assert_eq!(reply["op"], "sent", "{mode} admin: {reply}");
    assert_ne!(reply["conv_seq"], 0, "{mode} admin: {reply}");
    assert_eq!(history_len(&server, "lonely", ADMIN).await, 1, "{mode} admin");
    // And the admin's REST send as itself.
    let r =
        server.rest("openim/sendmsg", json!({"To_Account": "lonely", "MsgRandom": 4, "MsgBody": text("notice")})).await;
    assert_eq!(r["ErrorCode"], 0, "{mode}: {r}");
    assert_eq!(history_len(&server, "lonely", ADMIN).await, 2, "{mode} admin REST");
}

trait ClockSecs {
    fn clock_secs(&self) -> i64;
}

impl ClockSecs for TestServer {
    fn clock_secs(&self) -> i64 {
        use duet_core::clock::Clock;
        self.clock.now_secs()
    }
}

#[tokio::test]
async fn default_mode_silent_blacklist() {
    matrix(false, false).await;
}

#[tokio::test]
async fn default_mode_reported_blacklist() {
    matrix(false, true).await;
}

#[tokio::test]
async fn friends_only_silent_blacklist() {
    matrix(true, false).await;
}

#[tokio::test]
async fn friends_only_reported_blacklist() {
    matrix(true, true).await;
}

#[tokio::test]
async fn the_policy_follows_relationship_changes_at_once() {
    let server = TestServer::spawn_with(|c| c.core.permissions.friends_only = true).await;
    server.import(&["alice", "bob"]).await;
    let mut alice = WsClient::login(&server, "alice").await;
    assert_eq!(alice.send("bob", 1, text("hi")).await["code"], 20009);
    // Friends through the client protocol: bob accepts anyone.
    ok(
        &server,
        "profile/portrait_set",
        json!({"From_Account": "bob", "ProfileItem": [{"Tag": "Tag_Profile_IM_AllowType", "Value": "AllowType_Type_AllowAny"}]}),
    )
    .await;
    let r = alice.request(json!({"op": "friend_add", "to": "bob", "source": "Android"})).await;
    assert_eq!((r["op"].as_str(), r["code"].as_u64()), (Some("error"), Some(30001)), "a malformed source: {r}");
    let r = alice.request(json!({"op": "friend_add", "to": "bob", "source": "AddSource_Type_Android"})).await;
    assert_eq!((r["op"].as_str(), r["pending"].as_bool()), (Some("friend_add_result"), Some(false)), "{r}");
    assert_eq!(alice.send("bob", 2, text("hi")).await["op"], "sent");
    // bob removes alice one way: alice is no longer bob's friend.
    let mut bob = WsClient::login(&server, "bob").await;
    let r = bob.request(json!({"op": "friend_delete", "peer": "alice", "single": true})).await;
    assert_eq!(r["op"], "ok", "{r}");
    assert_eq!(alice.send("bob", 3, text("hi")).await["code"], 20010);
    assert_eq!(bob.send("alice", 4, text("hi")).await["code"], 20011);
    // bob blacklists alice: dropped silently (Tencent's default), and alice can no longer add bob.
    assert_eq!(bob.request(json!({"op": "black_add", "peer": "alice"})).await["op"], "ok");
    let reply = alice.send("bob", 5, text("hi")).await;
    assert_eq!((reply["op"].as_str(), reply["conv_seq"].as_u64()), (Some("sent"), Some(0)), "{reply}");
    let r = alice.request(json!({"op": "friend_add", "to": "bob"})).await;
    assert_eq!((r["op"].as_str(), r["code"].as_u64()), (Some("error"), Some(30525)), "{r}");
    assert_eq!(bob.request(json!({"op": "black_delete", "peer": "alice"})).await["op"], "ok");
    assert_eq!(
        alice.send("bob", 6, text("hi")).await["code"],
        20009,
        "the blacklist ended alice's side of the friendship too"
    );
}

//! Databases written at earlier schema versions open with today's `SqliteStore::open`, which migrates them
//! forward to `SCHEMA_VERSION`, and read back, through the store traits, exactly what was stored in them.
//!
//! `tests/fixtures/duet-v<N>.db` is a small database at schema version N (`PRAGMA user_version`) holding
//! what [`write`] stores: three accounts with profiles, C2C messages both ways (text, custom and image
//! elements, cloud custom data, a read receipt asked), a read mark, conversations with unread counts, a pin
//! and a draft, a friend and a blacklist entry, a push device and a mute. [`expect`] reads it all back.
//!
//! - `duet-v12.db` was written by the store at schema 12, then `VACUUM`ed. The fixture of the current
//!   version is written (or rewritten) by running this test with `DUET_WRITE_FIXTURE=1`:
//!
//!   ```text
//!   DUET_WRITE_FIXTURE=1 cargo test -p duet-store-sqlite --test upgrade
//!   ```
//!
//!   The test fails while `duet-v<SCHEMA_VERSION>.db` is missing, so the change that adds schema 13 also
//!   adds `duet-v13.db` beside the others.
//! - `duet-v10.db` is `duet-v12.db` with migrations 12 and 11 undone (they add the search index, derived
//!   from the messages, and nothing else), so every run migrates real data through 11 and 12, the index's
//!   backfill included (made with SQLite 3.43 or later, which knows the FTS5 table's `contentless_delete`):
//!
//!   ```text
//!   cp duet-v12.db duet-v10.db && sqlite3 duet-v10.db "DROP TRIGGER messages_search_delete; \
//!     DROP TABLE message_search; DROP TABLE search_mark; PRAGMA user_version = 10; VACUUM;"
//!   ```
//!
//! Older fixtures are never rewritten: they stand for what older builds left on disk, which every later
//! build must open. When a migration changes how the data reads back, [`expect`] changes, not a fixture.

mod common;

use common::fixtures;

use std::path::Path;

use duet_core::model::{
    Blocked, ConversationView, Friend, HistoryQuery, LogEntry, LogEvent, Mute, NewAccount, Outgoing, Platform,
    ProfileValue, ProviderKind, PushDevice, SearchQuery, SenderCopy, SettingsChange, StoredMessage, TAG_IMAGE,
    TAG_NICK,
};
use duet_core::store::{
    AccountStore, MessageStore, PushStore, RelationChange, RelationData, RelationStore, SendOutcome, SendPlan,
};
use duet_store_sqlite::{Durability, SCHEMA_VERSION, SqliteStore};

/// Every time in the fixture is this second or shortly after.
const T: i64 = 1_700_000_000;
const WEEK: i64 = 604_800;
const GENDER: &str = "Tag_Profile_IM_Gender";
const LEVEL: &str = "Tag_Profile_IM_Level";
const TEAM: &str = "Tag_Profile_Custom_Team";
const IMAGE_UUID: &str = "5f0c2a9e8d7b6c5a4f3e2d1c0b9a8f7e";

fn text(s: &str) -> ProfileValue {
    ProfileValue::Text(s.to_owned())
}

fn text_body(s: &str) -> String {
    format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"{s}"}}}}]"#)
}

fn custom_body() -> String {
    r#"[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"{\"type\":\"order\",\"id\":42}","Desc":"order","Ext":"shop","Sound":""}}]"#.to_owned()
}

fn image_body() -> String {
    format!(
        r#"[{{"MsgType":"TIMImageElem","MsgContent":{{"UUID":"{IMAGE_UUID}","ImageFormat":3,"ImageInfoArray":[{{"Type":1,"Size":1834,"Width":40,"Height":30,"URL":""}},{{"Type":2,"Size":1834,"Width":40,"Height":30,"URL":""}},{{"Type":3,"Size":912,"Width":20,"Height":15,"URL":""}}]}}}}]"#
    )
}

/// Message `random` from `from` to `to` at `time`, the store picking its `MsgSeq`.
fn plan(random: u32, from: &str, to: &str, time: i64, body: String) -> SendPlan {
    let mut dedup_key = [0; 16];
    dedup_key[..4].copy_from_slice(&random.to_le_bytes());
    SendPlan {
        msg: Outgoing {
            from: from.to_owned(),
            to: vec![to.to_owned()],
            seq: None,
            random,
            body,
            cloud_custom_data: String::new(),
            push_info: None,
            lifetime_secs: WEEK as u32,
            sender_copy: SenderCopy::Sync,
            no_unread: false,
            no_last_msg: false,
            need_read_receipt: false,
        },
        time,
        dedup_key,
        dedup_since_ms: time * 1000 - 600_000,
        now_ms: time * 1000,
        offline_until: time + WEEK,
        max_conversations: 100,
        push: false,
        after_send: None,
    }
}

async fn send(s: &SqliteStore, plan: SendPlan) {
    match s.send(plan).await.unwrap() {
        SendOutcome::Sent(sent) => assert!(sent.failed.is_empty()),
        other => panic!("not stored: {other:?}"),
    }
}

fn bob_phone() -> PushDevice {
    PushDevice {
        user: "bob".into(),
        device: "phone".into(),
        platform: Platform::IPhone,
        provider: ProviderKind::Apns,
        token: "apns-token-of-bobs-phone".into(),
        app_id: None,
        lang: Some("en".into()),
        seen_at: T + 80,
    }
}

fn alices_friend() -> Friend {
    let mut bob = Friend::new("bob", T + 5);
    bob.remark = "Bobby".into();
    bob.groups = vec!["work".into()];
    bob.add_source = "AddSource_Type_Web".into();
    bob.custom = vec![("Tag_SNS_Custom_Since".into(), ProfileValue::Number(2019))];
    bob
}

/// What every fixture holds, stored through the store traits.
async fn write(s: &SqliteStore) {
    let alice = NewAccount {
        id: "alice".into(),
        nick: Some("Alice".into()),
        face_url: Some("https://img.example/alice.png".into()),
    };
    let plain = |id: &str| NewAccount { id: id.into(), nick: None, face_url: None };
    s.import_accounts(vec![alice, plain("bob"), plain("carol")], T).await.unwrap();
    let bob_profile = vec![
        (TAG_NICK.to_owned(), text("Bob")),
        (GENDER.to_owned(), text("Gender_Type_Male")),
        (LEVEL.to_owned(), ProfileValue::Number(7)),
        (TEAM.to_owned(), text("blue")),
    ];
    assert!(s.set_profile("bob".into(), bob_profile, None).await.unwrap());

    send(s, plan(11, "alice", "bob", T + 10, text_body("hello bob"))).await;
    let mut second = plan(22, "bob", "alice", T + 20, text_body("hi alice, 你好"));
    second.msg.cloud_custom_data = r#"{"mood":"happy"}"#.into();
    send(s, second).await;
    let mut third = plan(33, "alice", "bob", T + 30, custom_body());
    third.msg.need_read_receipt = true;
    send(s, third).await;
    send(s, plan(44, "bob", "alice", T + 40, image_body())).await;
    send(s, plan(55, "carol", "alice", T + 50, text_body("are you there?"))).await;

    // alice read bob's first message (not the image); bob read nothing.
    assert!(s.set_read("alice".into(), "bob".into(), T + 20, T + WEEK, None).await.unwrap());
    let pin = SettingsChange { pinned: Some(true), ..SettingsChange::default() };
    s.update_conversation("alice".into(), "bob".into(), pin, T + 60, T + WEEK).await.unwrap().unwrap();
    let draft = SettingsChange { draft: Some("see you at 5".into()), ..SettingsChange::default() };
    s.update_conversation("alice".into(), "carol".into(), draft, T + 61, T + WEEK).await.unwrap().unwrap();

    let relations = vec![
        RelationChange::PutFriend { owner: "alice".into(), friend: alices_friend() },
        RelationChange::PutFriend { owner: "bob".into(), friend: Friend::new("alice", T + 5) },
        RelationChange::PutBlocked { owner: "alice".into(), entry: Blocked { peer: "carol".into(), time: T + 70 } },
    ];
    s.apply_relations(relations, Vec::new()).await.unwrap();
    assert!(s.register_device(bob_phone()).await.unwrap());
    assert!(s.set_mute("carol".into(), Mute { c2c_until: T + 3600, group_until: 0 }).await.unwrap());
}

/// A time as `T+<seconds>`, or `0`.
fn at(time: i64) -> String {
    if time == 0 { "0".into() } else { format!("T+{}", time - T) }
}

/// A message as `from>to #random @time+N seq/conv_seq body custom [read] [receipt] (sender's nick)`.
fn describe(m: &StoredMessage) -> String {
    format!(
        "{}>{} #{} @T+{} {}/{} {} {:?}{}{} ({})",
        m.from,
        m.to,
        m.key.random,
        m.key.time - T,
        m.key.seq,
        m.conv_seq,
        m.body,
        m.cloud_custom_data,
        if m.peer_read { " read" } else { "" },
        if m.need_receipt { " receipt" } else { "" },
        m.sender.nick.as_deref().unwrap_or("-"),
    )
}

fn describe_entry(e: &LogEntry) -> String {
    match &e.event {
        LogEvent::Message(m) => format!("{} msg {}>{} #{}", e.seq, m.from, m.to, m.key.random),
        LogEvent::Read { peer, time } => format!("{} read {peer} {}", e.seq, at(*time)),
        LogEvent::PeerRead { peer, time } => format!("{} peer_read {peer} {}", e.seq, at(*time)),
        LogEvent::Settings { peer, settings } => {
            format!("{} settings {peer} pinned {} draft {:?}", e.seq, at(settings.pinned_at), settings.draft)
        }
        other => format!("{} {other:?}", e.seq),
    }
}

fn describe_conversation(c: &ConversationView) -> String {
    let last = c.last.as_ref().map_or(0, |m| m.key.random);
    format!(
        "{} unread {} last #{last} @{} conv_seq {} peer_read {} pinned {} draft {:?}",
        c.peer,
        c.unread,
        at(c.time),
        c.conv_seq,
        at(c.peer_read_time),
        at(c.settings.pinned_at),
        c.settings.draft
    )
}

async fn history(s: &SqliteStore, operator: &str, peer: &str) -> Vec<String> {
    let q = HistoryQuery {
        operator: operator.into(),
        peer: peer.into(),
        min_time: 0,
        max_time: i64::MAX,
        before: None,
        limit: 100,
    };
    let page = s.history(q).await.unwrap();
    assert!(!page.more);
    page.messages.iter().map(describe).collect()
}

async fn log(s: &SqliteStore, user: &str) -> Vec<String> {
    let page = s.log_after(user.into(), 0, 100, 1 << 20).await.unwrap();
    assert!(!page.more);
    page.entries.iter().map(describe_entry).collect()
}

async fn found(s: &SqliteStore, owner: &str, keyword: &str) -> Vec<u32> {
    let q = SearchQuery {
        owner: owner.into(),
        keywords: vec![keyword.into()],
        peer: None,
        sender: None,
        types: Vec::new(),
        min_time: 0,
        max_time: i64::MAX,
        after: None,
        limit: 10,
    };
    s.search(q).await.unwrap().hits.iter().map(|h| h.message.key.random).collect()
}

/// Reads back everything [`write`] stored, then stores more: the migrated store goes on numbering.
async fn expect(s: &SqliteStore, fixture: &str) {
    let exist = s.accounts_exist(vec!["alice".into(), "bob".into(), "carol".into(), "dave".into()]).await.unwrap();
    assert_eq!(exist, [true, true, true, false], "{fixture}");
    let tags: Vec<String> = [TAG_NICK, TAG_IMAGE, GENDER, LEVEL, TEAM].map(str::to_owned).to_vec();
    let profiles = s.profiles(vec!["alice".into(), "bob".into(), "carol".into()], tags).await.unwrap();
    let tagged =
        |items: &[(&str, ProfileValue)]| Some(items.iter().map(|(t, v)| ((*t).to_owned(), v.clone())).collect());
    assert_eq!(
        profiles,
        [
            tagged(&[(TAG_NICK, text("Alice")), (TAG_IMAGE, text("https://img.example/alice.png"))]),
            tagged(&[
                (TAG_NICK, text("Bob")),
                (GENDER, text("Gender_Type_Male")),
                (LEVEL, ProfileValue::Number(7)),
                (TEAM, text("blue"))
            ]),
            Some(Vec::new()),
        ],
        "{fixture}"
    );

    let alice_bob = [
        format!("bob>alice #44 @T+40 4/4 {} \"\" (Bob)", image_body()),
        format!("alice>bob #33 @T+30 3/3 {} \"\" receipt (Alice)", custom_body()),
        format!(
            "bob>alice #22 @T+20 2/2 {} \"{{\\\"mood\\\":\\\"happy\\\"}}\" read (Bob)",
            text_body("hi alice, 你好")
        ),
        format!("alice>bob #11 @T+10 1/1 {} \"\" (Alice)", text_body("hello bob")),
    ];
    assert_eq!(history(s, "alice", "bob").await, alice_bob, "{fixture}");
    assert_eq!(history(s, "bob", "alice").await, alice_bob, "{fixture}: the same from bob's side");
    assert_eq!(
        history(s, "alice", "carol").await,
        [format!("carol>alice #55 @T+50 1/1 {} \"\" (-)", text_body("are you there?"))],
        "{fixture}"
    );

    let conversations = |user: &str| {
        let user = user.to_owned();
        async move { s.conversations(user, 10).await.unwrap().iter().map(describe_conversation).collect::<Vec<_>>() }
    };
    assert_eq!(
        conversations("alice").await,
        [
            "bob unread 1 last #44 @T+40 conv_seq 4 peer_read 0 pinned T+60 draft \"\"",
            "carol unread 1 last #55 @T+50 conv_seq 1 peer_read 0 pinned 0 draft \"see you at 5\"",
        ],
        "{fixture}: pinned first"
    );
    assert_eq!(
        conversations("bob").await,
        ["alice unread 2 last #44 @T+40 conv_seq 4 peer_read T+20 pinned 0 draft \"\""],
        "{fixture}"
    );
    assert_eq!(s.unread("bob".into(), vec!["alice".into(), "carol".into()]).await.unwrap(), [2, 0], "{fixture}");
    assert_eq!(s.unread_total("alice".into()).await.unwrap(), 2, "{fixture}");

    assert_eq!(
        log(s, "alice").await,
        [
            "1 msg alice>bob #11",
            "2 msg bob>alice #22",
            "3 msg alice>bob #33",
            "4 msg bob>alice #44",
            "5 msg carol>alice #55",
            "6 read bob T+20",
            "7 settings bob pinned T+60 draft \"\"",
            "8 settings carol pinned 0 draft \"see you at 5\"",
        ],
        "{fixture}"
    );
    assert_eq!(
        log(s, "bob").await,
        [
            "1 msg alice>bob #11",
            "2 msg bob>alice #22",
            "3 msg alice>bob #33",
            "4 msg bob>alice #44",
            "5 peer_read alice T+20"
        ],
        "{fixture}"
    );
    assert_eq!(s.latest_seq("carol".into()).await.unwrap(), Some(1), "{fixture}: carol's copy of her send");

    let alice = s.load_relations("alice".into()).await.unwrap();
    let blocked = Blocked { peer: "carol".into(), time: T + 70 };
    let expected =
        RelationData { friends: vec![alices_friend()], blacklist: vec![blocked], incoming: vec![], outgoing: vec![] };
    assert_eq!(alice, expected, "{fixture}");
    assert_eq!(s.load_relations("bob".into()).await.unwrap().friends, [Friend::new("alice", T + 5)], "{fixture}");
    assert_eq!(s.push_devices().await.unwrap(), [bob_phone()], "{fixture}");
    assert_eq!(s.mutes().await.unwrap(), [("carol".to_owned(), Mute { c2c_until: T + 3600, group_until: 0 })]);

    // The search index holds the stored messages (built by migration 11 for a database from before it).
    assert_eq!(found(s, "alice", "你好").await, [22], "{fixture}");
    assert_eq!(found(s, "bob", "hello").await, [11], "{fixture}");
    assert_eq!(found(s, "carol", "there").await, [55], "{fixture}");

    // The migrated store goes on: the next message takes the next positions.
    send(s, plan(66, "alice", "bob", T + 100, text_body("still here"))).await;
    assert_eq!(
        history(s, "bob", "alice").await[0],
        format!("alice>bob #66 @T+100 5/5 {} \"\" (Alice)", text_body("still here"))
    );
    assert_eq!(s.latest_seq("bob".into()).await.unwrap(), Some(6), "{fixture}");
    assert_eq!(s.unread("bob".into(), vec!["alice".into()]).await.unwrap(), [3], "{fixture}");
    assert_eq!(found(s, "bob", "still").await, [66], "{fixture}");
}

fn user_version(path: &Path) -> usize {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
}

/// Writes `duet-v<SCHEMA_VERSION>.db` (see the module's doc).
async fn write_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("duet.db");
    let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
    write(&store).await;
    drop(store);
    common::save(&path, &fixtures().join(format!("duet-v{SCHEMA_VERSION}.db")));
}

#[tokio::test]
async fn every_fixture_migrates_to_the_current_schema_and_reads_back_whole() {
    if std::env::var_os("DUET_WRITE_FIXTURE").is_some_and(|v| v == "1") {
        write_fixture().await;
    }
    let found = common::numbered("duet-v");
    let versions: Vec<usize> = found.iter().map(|(v, _)| *v).collect();
    assert!(
        versions.contains(&SCHEMA_VERSION),
        "no fixture of the current schema version {SCHEMA_VERSION} (found {versions:?}): write one with \
         DUET_WRITE_FIXTURE=1 cargo test -p duet-store-sqlite --test upgrade, and commit it"
    );
    assert!(versions.iter().any(|&v| v < SCHEMA_VERSION), "an older fixture makes every run migrate: {versions:?}");

    for (version, fixture) in found {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let size = std::fs::metadata(&fixture).unwrap().len();
        assert!(size < 300 * 1024, "{name} is {size} bytes: keep fixtures small (VACUUM)");
        assert_eq!(user_version(&fixture), version, "{name} is at the version its name says");
        // Opened in place it would be migrated: a copy is.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        std::fs::copy(&fixture, &path).unwrap();
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        assert_eq!(user_version(&path), SCHEMA_VERSION, "{name} migrated to the current version");
        expect(&store, &name).await;
        drop(store);
    }
}

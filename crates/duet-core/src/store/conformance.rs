//! The store conformance suite: what every backend of the storage traits ([`Store`], [`MediaIndex`]) does,
//! as tests each backend runs against a fresh instance of itself. [`store_conformance_suite!`] expands one
//! `#[tokio::test]` per test of this module, so a backend's crate runs them all with one line:
//!
//! ```text
//! duet_core::store_conformance_suite!(fresh_backend());
//! ```
//!
//! where `fresh_backend()` (any expression, `.await` allowed) makes a [`Backend`]. The in-memory store runs
//! it in duet-core, SQLite in `duet-store-sqlite/tests/conformance.rs`; a new backend passes it before
//! it is used. A rule the traits' docs state belongs here, checked on what the operations return.
//!
//! [`store_conformance_suite!`]: crate::store_conformance_suite

use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::media::{ImageMeta, MediaIndex, MediaItem, MediaKind, Rendition, RenditionKind};
use crate::model::event::{AfterEvent, EventKind, Pair, QueuedEvent};
use crate::model::{Blocked, Friend, FriendRequest};
use crate::model::{
    Delivery, HistoryQuery, Import, LogEntry, LogEvent, MsgKey, Mute, NewAccount, Outgoing, ProfileValue, Purged,
    SearchCursor, SearchQuery, SenderCopy, SenderInfo, Sent, StoredMessage, TAG_IMAGE, TAG_NICK,
};
use crate::model::{Dnd, DndWindow, Platform, ProviderKind, PushDevice, ReceiveOpt, SettingsChange, Settle};
use crate::store::{Cutoffs, Edit, Imported, Modified, SendOutcome, SendPlan, Store, Withdrawn};
use crate::store::{RelationChange, RelationData};

/// A fresh backend for one test: its store, its media index, and what must outlive both (a temporary
/// directory, say).
pub struct Backend<S, M> {
    pub store: Arc<S>,
    pub media: Arc<M>,
    /// Declared last: dropped after the store and the index.
    _keep: Option<Box<dyn Any + Send>>,
}

impl<S, M> Backend<S, M> {
    pub fn new(store: S, media: M) -> Backend<S, M> {
        Backend { store: Arc::new(store), media: Arc::new(media), _keep: None }
    }

    /// Keeps `guard` until the test ends, after the store and the index are dropped.
    pub fn keeping(mut self, guard: impl Any + Send) -> Backend<S, M> {
        self._keep = Some(Box::new(guard));
        self
    }
}

/// Expands one `#[tokio::test]` per conformance test, each given a fresh [`Backend`] made by `$backend`
/// (evaluated in each test's async body). The calling crate needs `tokio` with its `macros` and `rt`
/// features.
#[macro_export]
macro_rules! store_conformance_suite {
    (@tests $backend:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                $crate::store::conformance::$test($backend).await;
            }
        )*
    };
    // `$backend` gives an `Option<Backend>`: `None` skips each test (a backend that needs a server the
    // environment did not name).
    (optional: $backend:expr) => {
        $crate::store_conformance_suite!(match $backend {
            Some(backend) => backend,
            None => {
                eprintln!("skipped: this backend's server is not configured");
                return;
            }
        });
    };
    ($backend:expr) => {
        $crate::store_conformance_suite!(@tests $backend;
            accounts_are_created_once_and_updated_by_import,
            set_profile_writes_only_to_an_existing_account,
            delete_accounts_removes_the_account_its_data_and_its_relation_rows,
            revoke_sigs_and_revocations,
            set_mute_and_mutes,
            a_new_account_inherits_nothing_of_a_deleted_one,
            send_reports_its_key_positions_and_failures,
            a_store_picked_msg_seq_grows_per_conversation,
            a_later_send_is_never_dated_before_its_conversation,
            a_retry_within_the_window_returns_the_first_result,
            a_send_whose_msg_key_is_taken_stores_nothing,
            a_send_from_a_missing_sender_writes_nothing,
            a_send_to_missing_recipients_only_writes_nothing,
            the_sender_copy_decides_the_senders_side,
            a_message_to_oneself_is_stored_once,
            no_unread_and_no_last_msg,
            the_delivery_hook_gets_each_commits_entries_in_commit_order,
            history_pages_newest_first_in_storing_order,
            history_says_what_the_recipient_has_read,
            import_stores_once_per_key_and_needs_both_accounts,
            withdraw_recalls_once_and_tells_both_sides,
            set_read_recounts_unread,
            read_receipts_mark_messages_that_ask_once_and_tell_the_sender,
            log_after_pages_by_count,
            log_after_ends_a_page_after_the_entry_that_passes_max_bytes,
            conversations_list_the_latest_first_and_the_cap_keeps_the_newest,
            delete_conversation_removes_one_side_and_can_hide_its_history,
            modify_edits_the_latest_version_and_tells_both_sides,
            delete_messages_hides_them_from_one_side_on_its_devices,
            clear_history_keeps_the_conversation_without_its_messages,
            conversation_settings_pin_mark_and_quiet_a_conversation,
            do_not_disturb_windows_are_kept_per_user,
            purge_removes_what_each_cutoff_covers,
            search_matches_keywords_sender_types_and_time_in_the_owners_conversations,
            search_pages_with_its_cursor_without_gaps_or_duplicates,
            search_never_finds_recalled_hidden_purged_or_orphaned_messages,
            search_finds_an_edited_message_by_its_new_text_only,
            purging_offline_copies_keeps_history_and_log_positions,
            a_log_entry_whose_message_expired_is_skipped,
            export_reads_every_stored_message_of_a_range_in_pages,
            relations_are_stored_and_changed_in_order,
            push_devices_register_replace_and_a_token_has_one_holder,
            a_send_queues_one_push_per_device_of_each_recipient_in_its_commit,
            pushes_are_claimed_once_under_a_lease_and_settled,
            unregistering_a_device_drops_its_queued_pushes,
            a_push_whose_message_expired_is_dropped_at_claim,
            callback_events_are_written_in_their_commits_with_its_facts,
            callback_events_are_claimed_in_order_per_user_under_a_lease,
            media_items_and_grants,
            media_expire_forgets_unused_items_and_dooms_their_blobs,
            media_uploads_begun_and_never_recorded_are_doomed,
            media_forget_users_drops_their_grants_and_ownership,
            ops_stats_count_accounts_and_messages_and_a_writable_store_says_so,
        );
    };
}

/// The suite's clock: every time is this second or near it.
const T: i64 = 1_700_000_000;
const WEEK: i64 = 604_800;

fn account(id: &str) -> NewAccount {
    NewAccount { id: id.to_owned(), nick: None, face_url: None }
}

async fn create<S: Store>(s: &S, ids: &[&str]) {
    s.import_accounts(ids.iter().map(|&id| account(id)).collect(), T).await.unwrap();
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|&s| s.to_owned()).collect()
}

fn body(n: u32) -> String {
    format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"m{n}"}}}}]"#)
}

/// Message `n` (its `MsgRandom`, and the start of its dedup key) sent at second `time`: the store picks its
/// `MsgSeq`, the sender's devices get a copy, the dedup window is ten minutes.
fn plan(n: u32, from: &str, to: &[&str], time: i64) -> SendPlan {
    let mut dedup_key = [0; 16];
    dedup_key[..4].copy_from_slice(&n.to_le_bytes());
    SendPlan {
        msg: Outgoing {
            from: from.to_owned(),
            to: strings(to),
            seq: None,
            random: n,
            body: body(n),
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

/// Sends, expecting the send to be stored (not a duplicate).
async fn send<S: Store>(s: &S, plan: SendPlan) -> Sent {
    match s.send(plan).await.unwrap() {
        SendOutcome::Sent(sent) => sent,
        other => panic!("not stored: {other:?}"),
    }
}

/// Message `n` to import, with the conversation's next `MsgSeq`.
fn import(n: u32, from: &str, to: &str, time: i64, counts_unread: bool) -> Import {
    Import {
        from: from.to_owned(),
        to: to.to_owned(),
        seq: None,
        random: n,
        time,
        body: body(n),
        cloud_custom_data: String::new(),
        counts_unread,
    }
}

fn query(operator: &str, peer: &str, limit: usize) -> HistoryQuery {
    HistoryQuery {
        operator: operator.to_owned(),
        peer: peer.to_owned(),
        min_time: 0,
        max_time: i64::MAX,
        before: None,
        limit,
    }
}

/// `operator`'s whole view of the conversation, newest first.
async fn history<S: Store>(s: &S, operator: &str, peer: &str) -> Vec<StoredMessage> {
    let page = s.history(query(operator, peer, 1000)).await.unwrap();
    assert!(!page.more);
    page.messages
}

/// The `MsgRandom`s (the suite's message numbers) of `operator`'s view, newest first.
async fn numbers<S: Store>(s: &S, operator: &str, peer: &str) -> Vec<u32> {
    history(s, operator, peer).await.iter().map(|m| m.key.random).collect()
}

/// An entry as `<seq> msg <from>><to> #<n>`, `<seq> read <peer> <time - T>`, `<seq> recall <peer> #<n>`
/// (with ` by <by>` when someone else than its sender recalled it), `<seq> peer_read <peer> <time - T>`,
/// `<seq> receipt <peer> #<n> <time - T>`, `<seq> modified <from>><to> #<n> v<version>`,
/// `<seq> deleted <peer> #<n>` or `<seq> cleared <peer> <upto>` (with ` conversation` when it went too).
fn describe(e: &LogEntry) -> String {
    match &e.event {
        LogEvent::Message(m) => format!("{} msg {}>{} #{}", e.seq, m.from, m.to, m.key.random),
        LogEvent::Read { peer, time } => format!("{} read {peer} {}", e.seq, time - T),
        LogEvent::Recall { peer, key, by } => format!("{} recall {peer} #{} by {by}", e.seq, key.random),
        LogEvent::PeerRead { peer, time } => format!("{} peer_read {peer} {}", e.seq, time - T),
        LogEvent::Receipt { peer, key, time } => format!("{} receipt {peer} #{} {}", e.seq, key.random, time - T),
        LogEvent::Modified(m) => format!("{} modified {}>{} #{} v{}", e.seq, m.from, m.to, m.key.random, m.version),
        LogEvent::Deleted { peer, key } => format!("{} deleted {peer} #{}", e.seq, key.random),
        LogEvent::Settings { peer, settings } => format!(
            "{} settings {peer} pinned {} marks {} {:?} {:?} receive {}",
            e.seq,
            settings.pinned_at > 0,
            settings.marks,
            settings.custom_data,
            settings.draft,
            settings.receive.number()
        ),
        LogEvent::Cleared { peer, upto, conversation } => {
            format!("{} cleared {peer} {upto}{}", e.seq, if *conversation { " conversation" } else { "" })
        }
    }
}

/// `user`'s whole sync log, described.
async fn log<S: Store>(s: &S, user: &str) -> Vec<String> {
    let page = s.log_after(user.to_owned(), 0, 1000, usize::MAX).await.unwrap();
    assert!(!page.more);
    page.entries.iter().map(describe).collect()
}

async fn latest<S: Store>(s: &S, user: &str) -> Option<u64> {
    s.latest_seq(user.to_owned()).await.unwrap()
}

async fn unread<S: Store>(s: &S, owner: &str, peers: &[&str]) -> Vec<u64> {
    s.unread(owner.to_owned(), strings(peers)).await.unwrap()
}

/// The peers of `user`'s recent contacts, latest first.
async fn contacts<S: Store>(s: &S, user: &str) -> Vec<String> {
    s.conversations(user.to_owned(), 100).await.unwrap().into_iter().map(|c| c.peer).collect()
}

fn text(s: &str) -> ProfileValue {
    ProfileValue::Text(s.to_owned())
}

fn tagged(tag: &str, value: ProfileValue) -> (String, ProfileValue) {
    (tag.to_owned(), value)
}

const LEVEL: &str = "Tag_Profile_IM_Level";

// ---- accounts ------------------------------------------------------------------------------------------

pub async fn accounts_are_created_once_and_updated_by_import<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    let ann = NewAccount { id: "a".into(), nick: Some("Ann".into()), face_url: None };
    s.import_accounts(vec![ann, account("b")], T).await.unwrap();
    assert_eq!(s.accounts_exist(strings(&["a", "b", "nobody"])).await.unwrap(), [true, true, false]);

    // Importing an existing account sets what is given and leaves the rest.
    let face = NewAccount { id: "a".into(), nick: None, face_url: Some("https://a/face.png".into()) };
    s.import_accounts(vec![face], T + 1).await.unwrap();
    let tags = strings(&[TAG_NICK, TAG_IMAGE, LEVEL]);
    let profiles = s.profiles(strings(&["a", "b", "nobody"]), tags).await.unwrap();
    let a = vec![tagged(TAG_NICK, text("Ann")), tagged(TAG_IMAGE, text("https://a/face.png"))];
    assert_eq!(profiles, [Some(a), Some(vec![]), None]);

    assert_eq!(latest(s, "a").await, Some(0), "an account starts with an empty log");
    assert_eq!(latest(s, "nobody").await, None);
}

pub async fn set_profile_writes_only_to_an_existing_account<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a"]).await;
    let items = vec![tagged(LEVEL, ProfileValue::Number(7)), tagged(TAG_NICK, text("Ann"))];
    assert!(s.set_profile("a".into(), items, None).await.unwrap());
    assert!(s.set_profile("a".into(), vec![tagged(LEVEL, ProfileValue::Number(8))], None).await.unwrap());
    let profiles = s.profiles(strings(&["a"]), strings(&[TAG_NICK, LEVEL])).await.unwrap();
    assert_eq!(profiles, [Some(vec![tagged(TAG_NICK, text("Ann")), tagged(LEVEL, ProfileValue::Number(8))])]);

    assert!(!s.set_profile("nobody".into(), vec![tagged(LEVEL, ProfileValue::Number(1))], None).await.unwrap());
    assert_eq!(s.profiles(strings(&["nobody"]), strings(&[LEVEL])).await.unwrap(), [None]);
    create(s, &["nobody"]).await;
    let profiles = s.profiles(strings(&["nobody"]), strings(&[LEVEL])).await.unwrap();
    assert_eq!(profiles, [Some(vec![])], "nothing was written for the missing account");
}

fn request(from: &str, to: &str) -> FriendRequest {
    FriendRequest {
        from: from.into(),
        to: to.into(),
        wording: "hi".into(),
        source: "AddSource_Type_Web".into(),
        remark: String::new(),
        group: String::new(),
        time: T,
    }
}

fn names(d: &RelationData, id: &str) -> bool {
    d.friends.iter().any(|f| f.peer == id)
        || d.blacklist.iter().any(|b| b.peer == id)
        || d.incoming.iter().any(|r| r.from == id)
        || d.outgoing.iter().any(|r| r.to == id)
}

pub async fn delete_accounts_removes_the_account_its_data_and_its_relation_rows<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    s.set_profile("b".into(), vec![tagged(TAG_NICK, text("Bee"))], None).await.unwrap();
    send(s, plan(1, "a", &["b"], T)).await;
    send(s, plan(2, "b", &["c"], T)).await;
    let mut tagged_friend = Friend::new("b", T);
    tagged_friend.custom = vec![tagged("Tag_SNS_Custom_X", text("x"))];
    let changes = vec![
        RelationChange::PutFriend { owner: "a".into(), friend: tagged_friend },
        RelationChange::PutFriend { owner: "b".into(), friend: Friend::new("a", T) },
        RelationChange::PutBlocked { owner: "c".into(), entry: Blocked { peer: "b".into(), time: T } },
        RelationChange::PutBlocked { owner: "b".into(), entry: Blocked { peer: "c".into(), time: T } },
        RelationChange::PutRequest(request("b", "c")),
        RelationChange::PutRequest(request("a", "b")),
        RelationChange::PutFriend { owner: "a".into(), friend: Friend::new("c", T) },
        // Rows may name an ID with no account (left by an earlier version): they go too.
        RelationChange::PutFriend { owner: "a".into(), friend: Friend::new("gone", T) },
        RelationChange::PutRequest(request("gone", "c")),
    ];
    s.apply_relations(changes, Vec::new()).await.unwrap();

    assert_eq!(s.delete_accounts(strings(&["b", "gone", "nobody"])).await.unwrap(), [true, false, false]);
    assert_eq!(s.accounts_exist(strings(&["a", "b", "c"])).await.unwrap(), [true, false, true]);
    for user in ["a", "c"] {
        let d = s.load_relations(user.into()).await.unwrap();
        assert!(!names(&d, "b") && !names(&d, "gone"), "{user}: {d:?}");
    }
    let a = s.load_relations("a".into()).await.unwrap();
    assert_eq!(a.friends, [Friend::new("c", T)], "rows not naming b stay");
    assert_eq!(s.load_relations("b".into()).await.unwrap(), RelationData::default());
    assert_eq!(latest(s, "b").await, None);
    assert!(s.log_after("b".into(), 0, 10, usize::MAX).await.unwrap().entries.is_empty());
    assert_eq!(contacts(s, "b").await, Vec::<String>::new());
    assert_eq!(contacts(s, "a").await, Vec::<String>::new(), "a deleted peer is no recent contact");
    assert_eq!(contacts(s, "c").await, Vec::<String>::new());

    // Created again, the ID starts with nothing of the deleted account.
    create(s, &["b"]).await;
    assert_eq!(s.profiles(strings(&["b"]), strings(&[TAG_NICK])).await.unwrap(), [Some(vec![])]);
    assert_eq!(s.load_relations("b".into()).await.unwrap(), RelationData::default());
    assert_eq!(latest(s, "b").await, Some(0));
    assert_eq!(contacts(s, "b").await, Vec::<String>::new());
}

pub async fn revoke_sigs_and_revocations<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    assert!(s.revocations().await.unwrap().is_empty());
    assert!(s.revoke_sigs("a".into(), T + 10).await.unwrap());
    assert!(!s.revoke_sigs("nobody".into(), T).await.unwrap());
    assert_eq!(s.revocations().await.unwrap(), [("a".to_owned(), T + 10)]);

    assert!(s.revoke_sigs("a".into(), T + 20).await.unwrap());
    assert!(s.revoke_sigs("b".into(), T + 5).await.unwrap());
    let mut all = s.revocations().await.unwrap();
    all.sort();
    assert_eq!(all, [("a".to_owned(), T + 20), ("b".to_owned(), T + 5)]);

    s.delete_accounts(strings(&["a"])).await.unwrap();
    assert_eq!(s.revocations().await.unwrap(), [("b".to_owned(), T + 5)]);
}

pub async fn set_mute_and_mutes<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    assert!(s.mutes().await.unwrap().is_empty());
    let a = Mute { c2c_until: T + 60, group_until: 0 };
    assert!(s.set_mute("a".into(), a).await.unwrap());
    assert!(!s.set_mute("nobody".into(), a).await.unwrap());
    assert_eq!(s.mutes().await.unwrap(), [("a".to_owned(), a)]);

    // Both times replace the stored ones; the largest time is kept as it is.
    let a = Mute { c2c_until: Mute::FOREVER, group_until: T + 7200 };
    assert!(s.set_mute("a".into(), a).await.unwrap());
    let b_mute = Mute { c2c_until: 0, group_until: T - 1 };
    assert!(s.set_mute("b".into(), b_mute).await.unwrap());
    let mut all = s.mutes().await.unwrap();
    all.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(all, [("a".to_owned(), a), ("b".to_owned(), b_mute)], "a past time is listed too");

    // Unmuted, an account is no longer listed; deleted, its mute goes with it.
    assert!(s.set_mute("b".into(), Mute::default()).await.unwrap());
    assert_eq!(s.mutes().await.unwrap(), [("a".to_owned(), a)]);
    s.delete_accounts(strings(&["a"])).await.unwrap();
    assert!(s.mutes().await.unwrap().is_empty());
    create(s, &["a"]).await;
    assert!(s.mutes().await.unwrap().is_empty(), "a new account of the same ID is not muted");
}

pub async fn a_new_account_inherits_nothing_of_a_deleted_one<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    send(s, plan(2, "b", &["a"], T)).await;
    assert!(s.set_read("a".into(), "b".into(), T, T + WEEK, None).await.unwrap());
    // b is the account created last: whatever numbers a backend gives accounts, it does not give b's again.
    assert_eq!(s.delete_accounts(strings(&["b"])).await.unwrap(), [true]);
    create(s, &["m"]).await;
    assert_eq!(numbers(s, "m", "a").await, Vec::<u32>::new());
    assert_eq!(s.history(query("a", "m", 10)).await.unwrap().conv_seq, 0);
    assert_eq!(contacts(s, "a").await, Vec::<String>::new());
    assert_eq!(unread(s, "a", &["m"]).await, [0]);
    let sent = send(s, plan(3, "a", &["m"], T + 1)).await;
    assert_eq!((sent.key.seq, sent.conv_seq), (1, 1), "a conversation of its own");

    // The same UserID created again starts with nothing either.
    assert_eq!(s.delete_accounts(strings(&["m"])).await.unwrap(), [true]);
    create(s, &["b"]).await;
    assert_eq!(numbers(s, "b", "a").await, Vec::<u32>::new());
    assert_eq!(contacts(s, "a").await, Vec::<String>::new());
    assert_eq!(log(s, "b").await, Vec::<String>::new());
}

// ---- send ----------------------------------------------------------------------------------------------

pub async fn send_reports_its_key_positions_and_failures<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    // An empty value is no avatar.
    s.set_profile("a".into(), vec![tagged(TAG_NICK, text("Ann")), tagged(TAG_IMAGE, text(""))], None).await.unwrap();
    let mut p = plan(1, "a", &["b", "nobody", "c"], T);
    p.msg.seq = Some(7);
    p.msg.cloud_custom_data = "cd".into();
    let sent = send(s, p).await;
    let key = MsgKey { seq: 7, random: 1, time: T };
    let expected = Sent { key, failed: strings(&["nobody"]), duplicate: false, conv_seq: 1, sender_log_seq: 1 };
    assert_eq!(sent, expected);

    // Each recipient's log has the message, and the sender's has a copy for each (SenderCopy::Sync).
    assert_eq!(log(s, "b").await, ["1 msg a>b #1"]);
    assert_eq!(log(s, "c").await, ["1 msg a>c #1"]);
    assert_eq!(log(s, "a").await, ["1 msg a>b #1", "2 msg a>c #1"]);
    assert_eq!(latest(s, "a").await, Some(2));

    let ann = SenderInfo { nick: Some("Ann".into()), face_url: None };
    let stored = StoredMessage::fresh("a", "b", key, 1, &body(1), "cd", &ann);
    let page = s.log_after("b".into(), 0, 10, usize::MAX).await.unwrap();
    let LogEvent::Message(m) = &page.entries[0].event else { panic!("{page:?}") };
    assert_eq!(**m, stored);
    assert_eq!(history(s, "b", "a").await, std::slice::from_ref(&stored));
    assert_eq!(history(s, "a", "b").await, [stored]);
}

pub async fn a_store_picked_msg_seq_grows_per_conversation<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    assert_eq!(send(s, plan(1, "a", &["b"], T)).await.key.seq, 1);
    assert_eq!(send(s, plan(2, "a", &["b"], T)).await.key.seq, 2);
    // The sender's MsgSeq is kept, and the store's count goes on without it.
    let mut given = plan(3, "a", &["b"], T);
    given.msg.seq = Some(100);
    assert_eq!(send(s, given).await.key.seq, 100);
    assert_eq!(send(s, plan(4, "b", &["a"], T)).await.key.seq, 3, "both directions share the count");
    // Each conversation counts on its own; a batch takes one number above each recipient's.
    assert_eq!(send(s, plan(5, "a", &["c"], T)).await.key.seq, 1);
    let batch = send(s, plan(6, "a", &["c", "b"], T)).await;
    assert_eq!((batch.key.seq, batch.conv_seq), (4, 2), "conv_seq is the first recipient's");
    assert_eq!(send(s, plan(7, "a", &["c"], T)).await.key.seq, 5);

    // History is by (time, MsgSeq, MsgRandom): the store's numbers keep the storing order.
    assert_eq!(numbers(s, "a", "b").await, [3, 6, 4, 2, 1]);
    let conv_seqs: Vec<u64> = history(s, "a", "b").await.iter().map(|m| m.conv_seq).collect();
    assert_eq!(conv_seqs, [3, 5, 4, 2, 1]);
    assert_eq!(numbers(s, "c", "a").await, [7, 6, 5]);
}

pub async fn a_later_send_is_never_dated_before_its_conversation<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    // Two sends that raced across a second boundary reach the store in the other order.
    let first = send(s, plan(1, "a", &["b"], T + 1)).await;
    let second = send(s, plan(2, "b", &["a"], T)).await;
    assert_eq!((first.key.time, second.key.time), (T + 1, T + 1));
    assert_eq!((first.key.seq, second.key.seq), (1, 2));
    assert_eq!(numbers(s, "a", "b").await, [2, 1]);
}

pub async fn a_retry_within_the_window_returns_the_first_result<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let p = plan(1, "a", &["b", "nobody"], T);
    let first = send(s, p.clone()).await;
    assert_eq!((first.failed.clone(), first.duplicate), (strings(&["nobody"]), false));

    // Five seconds later, with the window starting right at the first send: a retry.
    let mut retry = p.clone();
    retry.time += 5;
    retry.now_ms += 5_000;
    retry.dedup_since_ms = p.now_ms;
    let outcome = s.send(retry).await.unwrap();
    assert_eq!(outcome, SendOutcome::Duplicate(Sent { duplicate: true, ..first.clone() }));
    assert_eq!((latest(s, "a").await, latest(s, "b").await), (Some(1), Some(1)), "nothing was written");
    assert_eq!(numbers(s, "a", "b").await, [1]);

    // Once the first send is before the window, the same dedup key is a new send...
    let mut late = p.clone();
    late.time = T + 700;
    late.now_ms = (T + 700) * 1000;
    late.dedup_since_ms = p.now_ms + 1;
    let again = send(s, late.clone()).await;
    assert_eq!((again.key.time, again.conv_seq, again.duplicate), (T + 700, 2, false));
    // ...whose retries get its result.
    late.now_ms += 1_000;
    assert_eq!(s.send(late).await.unwrap(), SendOutcome::Duplicate(Sent { duplicate: true, ..again }));
    assert_eq!(numbers(s, "b", "a").await, [1, 1]);
}

pub async fn a_send_whose_msg_key_is_taken_stores_nothing<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let mut first = plan(1, "a", &["b"], T);
    first.msg.seq = Some(5);
    send(s, first).await;
    // Another send (another dedup key), the other way, with the same MsgSeq, MsgRandom and second.
    let mut same_key = plan(2, "b", &["a"], T);
    same_key.msg.seq = Some(5);
    same_key.msg.random = 1;
    let sent = send(s, same_key).await;
    assert_eq!((sent.key, sent.conv_seq, sent.sender_log_seq), (MsgKey { seq: 5, random: 1, time: T }, 0, 0));
    assert_eq!(history(s, "a", "b").await.len(), 1);
    assert_eq!(log(s, "a").await, ["1 msg a>b #1"]);
    assert_eq!(log(s, "b").await, ["1 msg a>b #1"]);
}

pub async fn a_send_from_a_missing_sender_writes_nothing<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["b"]).await;
    let p = plan(1, "nobody", &["b"], T);
    assert_eq!(s.send(p.clone()).await.unwrap(), SendOutcome::NoSuchSender("nobody".into()));
    assert_eq!(latest(s, "b").await, Some(0));
    assert_eq!(contacts(s, "b").await, Vec::<String>::new());
    // Not even its dedup entry: once the sender exists, the same send is new.
    create(s, &["nobody"]).await;
    let sent = send(s, p).await;
    assert_eq!((sent.conv_seq, sent.duplicate), (1, false));
}

pub async fn a_send_to_missing_recipients_only_writes_nothing<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a"]).await;
    let p = plan(1, "a", &["nobody", "ghost"], T);
    let sent = send(s, p.clone()).await;
    assert_eq!((sent.failed, sent.conv_seq, sent.sender_log_seq), (strings(&["nobody", "ghost"]), 0, 0));
    assert_eq!(latest(s, "a").await, Some(0));
    assert_eq!(contacts(s, "a").await, Vec::<String>::new());
    // No dedup entry either: the retry is answered the same way, not as a duplicate.
    assert!(!send(s, p).await.duplicate);
}

pub async fn the_sender_copy_decides_the_senders_side<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c", "d"]).await;
    let modes = [(1, "b", SenderCopy::Sync), (2, "c", SenderCopy::History), (3, "d", SenderCopy::Nothing)];
    let mut sender_log_seqs = Vec::new();
    for (n, to, mode) in modes {
        let mut p = plan(n, "a", &[to], T);
        p.msg.sender_copy = mode;
        sender_log_seqs.push(send(s, p).await.sender_log_seq);
    }
    assert_eq!(sender_log_seqs, [1, 0, 0]);
    assert_eq!(log(s, "a").await, ["1 msg a>b #1"], "only Sync reaches the sender's devices");
    assert_eq!(log(s, "b").await, ["1 msg a>b #1"]);
    assert_eq!(log(s, "c").await, ["1 msg a>c #2"]);
    assert_eq!(log(s, "d").await, ["1 msg a>d #3"]);
    assert_eq!(numbers(s, "a", "b").await, [1]);
    assert_eq!(numbers(s, "a", "c").await, [2]);
    assert_eq!(numbers(s, "a", "d").await, Vec::<u32>::new(), "Nothing: not in the sender's history");
    assert_eq!(numbers(s, "d", "a").await, [3]);
    assert_eq!(contacts(s, "a").await, ["c", "b"], "Nothing: no recent contact on the sender's side");
    assert_eq!(contacts(s, "d").await, ["a"]);
}

pub async fn a_message_to_oneself_is_stored_once<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a"]).await;
    let sent = send(s, plan(1, "a", &["a"], T)).await;
    assert_eq!((sent.conv_seq, sent.sender_log_seq), (1, 0), "the recipient's entry is the only one");
    assert_eq!(log(s, "a").await, ["1 msg a>a #1"]);
    assert_eq!(numbers(s, "a", "a").await, [1]);
    assert_eq!(contacts(s, "a").await, ["a"]);
}

pub async fn no_unread_and_no_last_msg<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    let mut p = plan(2, "a", &["b"], T + 1);
    p.msg.no_unread = true;
    send(s, p).await;
    assert_eq!(unread(s, "b", &["a"]).await, [1], "NoUnread is not counted");
    let mut p = plan(3, "a", &["b"], T + 2);
    p.msg.no_last_msg = true;
    send(s, p).await;
    assert_eq!(unread(s, "b", &["a"]).await, [2]);

    let b_side = s.conversations("b".into(), 10).await.unwrap();
    assert_eq!(b_side.len(), 1);
    let c = &b_side[0];
    assert_eq!((c.peer.as_str(), c.unread, c.time, c.conv_seq), ("a", 2, T + 1, 3));
    assert_eq!(c.last.as_ref().map(|m| m.key.random), Some(2), "NoLastMsg leaves the last message");
    let a_side = s.conversations("a".into(), 10).await.unwrap();
    assert_eq!(a_side.iter().map(|c| (c.peer.as_str(), c.unread, c.time)).collect::<Vec<_>>(), [("b", 0, T + 1)]);
    assert_eq!(a_side[0].last.as_ref().map(|m| m.key.random), Some(2));

    // A conversation whose only message is NoLastMsg is no recent contact, but it counts as unread.
    let mut p = plan(4, "a", &["c"], T + 3);
    p.msg.no_last_msg = true;
    send(s, p).await;
    assert_eq!(contacts(s, "c").await, Vec::<String>::new());
    assert_eq!(unread(s, "c", &["a"]).await, [1]);
    assert_eq!(numbers(s, "c", "a").await, [4]);
}

pub async fn the_delivery_hook_gets_each_commits_entries_in_commit_order<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let got = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    let sink = got.clone();
    s.set_delivery_hook(Arc::new(move |batch: Vec<Delivery>| {
        let batch: Vec<String> = batch.iter().map(|d| format!("{}: {}", d.user, describe(&d.entry))).collect();
        sink.lock().unwrap().push(batch);
    }));

    let first = send(s, plan(1, "a", &["b"], T)).await;
    assert!(s.set_read("b".into(), "a".into(), T, T + WEEK, None).await.unwrap());
    assert_eq!(
        s.withdraw("a".into(), "b".into(), first.key, "a".into(), T + WEEK, None).await.unwrap(),
        Withdrawn::Done
    );
    assert_eq!(s.import(import(2, "a", "b", T - 10, true), T + WEEK, 100).await.unwrap(), Imported::Stored);
    // What appends nothing calls nothing.
    assert_eq!(s.import(import(3, "a", "b", T - 9, false), T + WEEK, 100).await.unwrap(), Imported::Stored);
    send(s, plan(4, "a", &["nobody"], T)).await;
    assert!(s.clear_conversation("b".into(), "a".into(), false, true, T + WEEK).await.unwrap());

    let expected = [
        vec!["b: 1 msg a>b #1", "a: 1 msg a>b #1"],
        vec!["b: 2 read a 0", "a: 2 peer_read b 0"],
        vec!["b: 3 recall a #1 by a", "a: 3 recall b #1 by a"],
        vec!["b: 4 msg a>b #2"],
        vec!["b: 5 cleared a 0 conversation"],
    ];
    assert_eq!(*got.lock().unwrap(), expected);
    assert_eq!(
        log(s, "b").await,
        ["1 msg a>b #1", "2 read a 0", "3 recall a #1 by a", "4 msg a>b #2", "5 cleared a 0 conversation"]
    );
}

// ---- history -------------------------------------------------------------------------------------------

/// A page of a's view of the conversation with b: its message numbers and whether more remain.
async fn page<S: Store>(s: &S, range: (i64, i64), before: Option<MsgKey>, limit: usize) -> (Vec<u32>, bool) {
    let q = HistoryQuery { min_time: range.0, max_time: range.1, before, ..query("a", "b", limit) };
    let page = s.history(q).await.unwrap();
    (page.messages.iter().map(|m| m.key.random).collect(), page.more)
}

pub async fn history_pages_newest_first_in_storing_order<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let mut keys = std::collections::HashMap::new();
    for n in 1..=5 {
        let (from, to) = if n % 2 == 1 { ("a", "b") } else { ("b", "a") };
        keys.insert(n, send(s, plan(n, from, &[to], T)).await.key);
    }
    send(s, plan(6, "a", &["b"], T + 1)).await;
    assert_eq!(s.import(import(7, "a", "b", T - 5, false), T + WEEK, 100).await.unwrap(), Imported::Stored);
    // The same second and MsgSeq: MsgRandom orders them.
    for n in [8, 9] {
        let mut p = plan(n, "a", &["b"], T + 2);
        p.msg.seq = Some(50);
        send(s, p).await;
    }

    assert_eq!(numbers(s, "a", "b").await, [9, 8, 6, 5, 4, 3, 2, 1, 7]);
    assert_eq!(numbers(s, "b", "a").await, [9, 8, 6, 5, 4, 3, 2, 1, 7]);
    let all = (0, i64::MAX);
    assert_eq!(page(s, all, None, 4).await, (vec![9, 8, 6, 5], true));
    assert_eq!(page(s, all, Some(keys[&5]), 4).await, (vec![4, 3, 2, 1], true));
    assert_eq!(page(s, all, Some(keys[&1]), 4).await, (vec![7], false));
    // The time range is inclusive at both ends.
    assert_eq!(page(s, (T, T), None, 10).await, (vec![5, 4, 3, 2, 1], false));
    assert_eq!(page(s, (T, T), None, 5).await, (vec![5, 4, 3, 2, 1], false));
    assert_eq!(page(s, (T, T), None, 4).await, (vec![5, 4, 3, 2], true));
    assert_eq!(page(s, (T - 5, T + 1), Some(keys[&2]), 10).await, (vec![1, 7], false));

    let full = s.history(query("a", "b", 2)).await.unwrap();
    assert_eq!(full.conv_seq, 9, "the conversation's highest position");
    let unknown = s.history(query("a", "nobody", 10)).await.unwrap();
    assert_eq!((unknown.messages.len(), unknown.more, unknown.conv_seq), (0, false, 0));
}

pub async fn history_says_what_the_recipient_has_read<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    send(s, plan(2, "a", &["b"], T + 2)).await;
    send(s, plan(3, "b", &["a"], T + 2)).await;
    let read = |op: &'static str| async move {
        history(s, op, if op == "a" { "b" } else { "a" })
            .await
            .iter()
            .map(|m| (m.key.random, m.peer_read))
            .collect::<Vec<_>>()
    };
    assert!(s.set_read("b".into(), "a".into(), T + 1, T + WEEK, None).await.unwrap());
    // Both sides see whether each message's recipient has read it.
    assert_eq!(read("a").await, [(3, false), (2, false), (1, true)]);
    assert_eq!(read("b").await, [(3, false), (2, false), (1, true)]);
    assert!(s.set_read("a".into(), "b".into(), T + 2, T + WEEK, None).await.unwrap());
    assert_eq!(read("a").await, [(3, true), (2, false), (1, true)]);
    assert_eq!(read("b").await, [(3, true), (2, false), (1, true)]);
}

// ---- import --------------------------------------------------------------------------------------------

pub async fn import_stores_once_per_key_and_needs_both_accounts<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    let mut old = import(2, "a", "b", T - 100, true);
    old.seq = Some(40);
    assert_eq!(s.import(old.clone(), T + WEEK, 100).await.unwrap(), Imported::Stored);
    assert_eq!(s.import(old.clone(), T + WEEK, 100).await.unwrap(), Imported::Duplicate);
    let reversed = Import { from: "b".into(), to: "a".into(), ..old };
    assert_eq!(s.import(reversed, T + WEEK, 100).await.unwrap(), Imported::Duplicate, "either direction");
    assert_eq!(s.import(import(3, "b", "a", T - 50, false), T + WEEK, 100).await.unwrap(), Imported::Stored);

    let missing = [
        (import(4, "nobody", "b", T, true), Imported::NoSuchSender("nobody".into())),
        (import(5, "a", "nobody", T, true), Imported::NoSuchRecipient("nobody".into())),
        (import(6, "nobody", "ghost", T, true), Imported::NoSuchSender("nobody".into())),
    ];
    for (msg, outcome) in missing {
        assert_eq!(s.import(msg, T + WEEK, 100).await.unwrap(), outcome);
    }

    let stored: Vec<(u32, MsgKey, u64)> =
        history(s, "b", "a").await.iter().map(|m| (m.key.random, m.key, m.conv_seq)).collect();
    let key = |seq, random, time| MsgKey { seq, random, time };
    let expected = [(1, key(1, 1, T), 1), (3, key(2, 3, T - 50), 3), (2, key(40, 2, T - 100), 2)];
    assert_eq!(stored, expected, "an import without MsgSeq gets the conversation's next");
    // Real time (counts_unread) is counted and logged; history is neither.
    assert_eq!(log(s, "b").await, ["1 msg a>b #1", "2 msg a>b #2"]);
    assert_eq!(log(s, "a").await, ["1 msg a>b #1"]);
    assert_eq!(unread(s, "b", &["a"]).await, [2]);
    assert_eq!(unread(s, "a", &["b"]).await, [0]);
    // An import into the past leaves the conversation's last message.
    let c = &s.conversations("b".into(), 10).await.unwrap()[0];
    assert_eq!((c.last.as_ref().map(|m| m.key.random), c.time, c.conv_seq), (Some(1), T, 3));
}

// ---- withdraw ------------------------------------------------------------------------------------------

pub async fn withdraw_recalls_once_and_tells_both_sides<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let key = send(s, plan(1, "a", &["b"], T)).await.key;
    let mut p = plan(2, "a", &["b"], T);
    p.msg.sender_copy = SenderCopy::Nothing;
    let hidden = send(s, p).await.key;
    assert_eq!(unread(s, "b", &["a"]).await, [2]);
    let withdraw = |from: &str, to: &str, key| s.withdraw(from.into(), to.into(), key, from.into(), T + WEEK, None);

    assert_eq!(withdraw("b", "a", key).await.unwrap(), Withdrawn::NotFound, "only its sender recalls it");
    assert_eq!(withdraw("a", "b", MsgKey { random: 99, ..key }).await.unwrap(), Withdrawn::NotFound);
    assert_eq!(withdraw("a", "nobody", key).await.unwrap(), Withdrawn::NotFound);
    assert_eq!(withdraw("a", "b", key).await.unwrap(), Withdrawn::Done);
    assert_eq!(withdraw("a", "b", key).await.unwrap(), Withdrawn::AlreadyRecalled);

    assert_eq!(unread(s, "b", &["a"]).await, [1]);
    let recalled = |ms: Vec<StoredMessage>| ms.iter().map(|m| (m.key.random, m.recalled)).collect::<Vec<_>>();
    assert_eq!(recalled(history(s, "b", "a").await), [(2, false), (1, true)]);
    assert_eq!(recalled(history(s, "a", "b").await), [(1, true)]);
    assert_eq!(log(s, "b").await, ["1 msg a>b #1", "2 msg a>b #2", "3 recall a #1 by a"]);
    assert_eq!(log(s, "a").await, ["1 msg a>b #1", "2 recall b #1 by a"]);
    let revokers = |ms: Vec<StoredMessage>| ms.iter().map(|m| m.revoker.clone()).collect::<Vec<_>>();
    assert_eq!(revokers(history(s, "b", "a").await), [None, Some("a".to_owned())]);

    // A message the sender kept nothing of: only the recipient is told. An admin's recall names the admin.
    assert_eq!(
        s.withdraw("a".into(), "b".into(), hidden, "admin".into(), T + WEEK, None).await.unwrap(),
        Withdrawn::Done
    );
    assert_eq!(log(s, "b").await[3..], ["4 recall a #2 by admin"]);
    assert_eq!(revokers(history(s, "b", "a").await), [Some("admin".to_owned()), Some("a".to_owned())]);
    assert_eq!(latest(s, "a").await, Some(2));
    assert_eq!(unread(s, "b", &["a"]).await, [0]);
    // The conversation's last message shows the recall.
    let last = s.conversations("b".into(), 10).await.unwrap()[0].last.clone().unwrap();
    assert_eq!((last.key.random, last.recalled), (2, true));
}

// ---- read state ----------------------------------------------------------------------------------------

pub async fn set_read_recounts_unread<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    for (n, time) in [(1, T), (2, T + 1), (3, T + 2)] {
        send(s, plan(n, "a", &["b"], time)).await;
    }
    send(s, plan(4, "c", &["b"], T + 2)).await;
    assert_eq!(unread(s, "b", &["a", "c", "nobody"]).await, [3, 1, 0]);
    assert_eq!(s.unread_total("b".into()).await.unwrap(), 4);
    assert_eq!(s.unread_total("nobody".into()).await.unwrap(), 0);
    assert_eq!(unread(s, "nobody", &["a"]).await, [0]);

    assert!(s.set_read("b".into(), "a".into(), T + 1, T + WEEK, None).await.unwrap());
    assert_eq!(unread(s, "b", &["a"]).await, [1], "read up to and including T + 1");
    assert_eq!(s.unread_total("b".into()).await.unwrap(), 2);
    let page = s.log_after("b".into(), 4, 10, usize::MAX).await.unwrap();
    assert_eq!(page.entries.iter().map(describe).collect::<Vec<_>>(), ["5 read a 1"]);
    assert_eq!(unread(s, "a", &["b"]).await, [0], "the other side is its own");
    // The sender gets the read receipt, and sees it in its conversation and history.
    assert_eq!(log(s, "a").await[3..], ["4 peer_read b 1"]);
    let peer_read_time = |owner: &'static str| async move {
        let list = s.conversations(owner.into(), 10).await.unwrap();
        list.iter().map(|c| (c.peer.clone(), c.peer_read_time)).collect::<Vec<_>>()
    };
    assert_eq!(peer_read_time("a").await, [("b".to_owned(), T + 1)]);
    assert_eq!(peer_read_time("b").await, [("c".to_owned(), 0), ("a".to_owned(), 0)]);
    let read = |ms: Vec<StoredMessage>| ms.iter().map(|m| (m.key.random, m.peer_read)).collect::<Vec<_>>();
    assert_eq!(read(history(s, "a", "b").await), [(3, false), (2, true), (1, true)]);

    assert!(s.set_read("b".into(), "a".into(), T, T + WEEK, None).await.unwrap());
    assert_eq!(unread(s, "b", &["a"]).await, [1], "a read time never moves back");
    assert_eq!(log(s, "a").await.len(), 4, "a read that moves nothing sends no receipt");
    // What arrives dated at or before the read time is not counted.
    assert!(s.set_read("b".into(), "a".into(), T + 5, T + WEEK, None).await.unwrap());
    assert_eq!(unread(s, "b", &["a"]).await, [0]);
    assert_eq!(log(s, "a").await[4..], ["5 peer_read b 5"]);
    send(s, plan(5, "a", &["b"], T + 3)).await;
    assert_eq!(unread(s, "b", &["a"]).await, [0]);
    send(s, plan(6, "a", &["b"], T + 6)).await;
    assert_eq!(unread(s, "b", &["a"]).await, [1]);

    assert!(!s.set_read("nobody".into(), "a".into(), T, T + WEEK, None).await.unwrap());
    assert!(!s.set_read("b".into(), "nobody".into(), T, T + WEEK, None).await.unwrap());
    // Reading a conversation never written counts nothing and makes no recent contact.
    assert!(s.set_read("c".into(), "a".into(), T, T + WEEK, None).await.unwrap());
    assert_eq!(unread(s, "c", &["a"]).await, [0]);
    assert_eq!(contacts(s, "c").await, ["b"]);
}

// ---- message read receipts -----------------------------------------------------------------------------

pub async fn read_receipts_mark_messages_that_ask_once_and_tell_the_sender<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    let mut asks = plan(1, "a", &["b"], T);
    asks.msg.need_read_receipt = true;
    let asks = send(s, asks).await.key;
    let plain = send(s, plan(2, "a", &["b"], T)).await.key;
    let mut recalled = plan(3, "a", &["b"], T);
    recalled.msg.need_read_receipt = true;
    let recalled = send(s, recalled).await.key;
    s.withdraw("a".into(), "b".into(), recalled, "a".into(), T + WEEK, None).await.unwrap();
    let mut other = plan(4, "c", &["b"], T);
    other.msg.need_read_receipt = true;
    let other = send(s, other).await.key;
    let missing = MsgKey { seq: 99, random: 99, time: T };
    // The recipient's log carries the request.
    let page = s.log_after("b".into(), 0, 1, usize::MAX).await.unwrap();
    assert!(matches!(&page.entries[0].event, LogEvent::Message(m) if m.need_receipt && m.key == asks));
    let ack = |reader: &str, sender: &str, keys: Vec<MsgKey>, time| {
        s.ack_receipts(reader.into(), sender.into(), keys, time, T + WEEK)
    };

    // Only b's messages from a that ask for a receipt and were not recalled.
    let got = ack("b", "a", vec![asks, plain, recalled, other, missing], T + 10).await.unwrap();
    assert_eq!(got, [Some(T + 10), None, None, None, None]);
    assert_eq!(log(s, "a").await[4..], ["5 receipt b #1 10"]);
    assert_eq!(unread(s, "b", &["a"]).await, [2], "a receipt is not a read");
    // Once: a second receipt keeps the first time and tells no one.
    assert_eq!(ack("b", "a", vec![asks], T + 20).await.unwrap(), [Some(T + 10)]);
    assert_eq!(log(s, "a").await.len(), 5);
    // The sender cannot acknowledge its own message; unknown accounts find nothing.
    assert_eq!(ack("a", "b", vec![asks], T + 20).await.unwrap(), [None]);
    assert_eq!(ack("nobody", "a", vec![asks], T + 20).await.unwrap(), [None]);

    // Both sides find the message with its receipt; a key that names nothing finds nothing.
    let found = s.find_messages("a".into(), "b".into(), vec![asks, plain, missing]).await.unwrap();
    let view = |m: &Option<StoredMessage>| m.as_ref().map(|m| (m.key.random, m.need_receipt, m.receipt_time));
    assert_eq!(
        found.iter().map(view).collect::<Vec<_>>(),
        [Some((1, true, Some(T + 10))), Some((2, false, None)), None]
    );
    let found = s.find_messages("b".into(), "a".into(), vec![recalled]).await.unwrap();
    assert_eq!(found[0].as_ref().map(|m| (m.recalled, m.revoker.clone())), Some((true, Some("a".to_owned()))));
    assert_eq!(s.find_messages("c".into(), "a".into(), vec![asks]).await.unwrap(), [None], "another conversation");
    let history = history(s, "a", "b").await;
    assert_eq!(history.iter().find(|m| m.key == asks).and_then(|m| m.receipt_time), Some(T + 10));
    // Hidden from the owner (its history cleared): not found.
    assert!(s.clear_conversation("a".into(), "b".into(), true, true, T + WEEK).await.unwrap());
    assert_eq!(s.find_messages("a".into(), "b".into(), vec![asks]).await.unwrap(), [None]);
}

// ---- sync log ------------------------------------------------------------------------------------------

/// A page of `user`'s log: its entries' sequence numbers, whether more remain, and the log's latest.
async fn log_page<S: Store>(s: &S, user: &str, after: u64, limit: usize, max_bytes: usize) -> (Vec<u64>, bool, u64) {
    let page = s.log_after(user.into(), after, limit, max_bytes).await.unwrap();
    (page.entries.iter().map(|e| e.seq).collect(), page.more, page.latest)
}

pub async fn log_after_pages_by_count<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    for n in 1..=5 {
        send(s, plan(n, "a", &["b"], T)).await;
    }
    let max = usize::MAX;
    assert_eq!(log_page(s, "b", 0, 2, max).await, (vec![1, 2], true, 5));
    assert_eq!(log_page(s, "b", 2, 2, max).await, (vec![3, 4], true, 5));
    assert_eq!(log_page(s, "b", 4, 2, max).await, (vec![5], false, 5));
    assert_eq!(log_page(s, "b", 5, 2, max).await, (vec![], false, 5));
    assert_eq!(log_page(s, "b", 0, 5, max).await, (vec![1, 2, 3, 4, 5], false, 5));
    assert_eq!(log_page(s, "a", 3, 10, max).await, (vec![4, 5], false, 5));
    assert_eq!(log_page(s, "nobody", 0, 10, max).await, (vec![], false, 0));
}

pub async fn log_after_ends_a_page_after_the_entry_that_passes_max_bytes<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    // Each message counts body + custom data + the sender's nickname and avatar: 10 + 0 + 3 + 5 = 18 bytes.
    let profile = vec![tagged(TAG_NICK, text("Ann")), tagged(TAG_IMAGE, text("f.png"))];
    s.set_profile("a".into(), profile, None).await.unwrap();
    for n in 1..=5 {
        let mut p = plan(n, "a", &["b"], T);
        p.msg.body = "0123456789".into();
        if n == 4 {
            p.msg.cloud_custom_data = "0123456789".into(); // 28 bytes
        }
        send(s, p).await;
    }
    assert!(s.set_read("b".into(), "a".into(), T, T + WEEK, None).await.unwrap()); // entry 6, no text
    send(s, plan(7, "a", &["b"], T)).await;

    assert_eq!(log_page(s, "b", 0, 10, 30).await, (vec![1, 2], true, 7), "18, then 36 passes 30");
    assert_eq!(log_page(s, "b", 0, 10, 17).await, (vec![1], true, 7), "the sender's profile counts");
    assert_eq!(log_page(s, "b", 0, 10, 0).await, (vec![1], true, 7), "a page holds one entry at least");
    assert_eq!(log_page(s, "b", 3, 10, 27).await, (vec![4], true, 7), "custom data counts");
    assert_eq!(log_page(s, "b", 5, 10, 1).await, (vec![6, 7], false, 7), "a read entry has no text");
    assert_eq!(log_page(s, "b", 6, 10, 1).await, (vec![7], false, 7));
    assert_eq!(log_page(s, "b", 0, 1, usize::MAX).await, (vec![1], true, 7));
}

// ---- conversations -------------------------------------------------------------------------------------

pub async fn conversations_list_the_latest_first_and_the_cap_keeps_the_newest<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c", "d", "e"]).await;
    let capped = |n, from: &str, time| SendPlan { max_conversations: 3, ..plan(n, from, &["a"], time) };
    for (n, from) in [(1, "b"), (2, "c"), (3, "d")] {
        send(s, capped(n, from, T)).await;
    }
    assert_eq!(contacts(s, "a").await, ["d", "c", "b"], "of the same second, the latest stored first");
    send(s, capped(4, "b", T + 1)).await;
    assert_eq!(contacts(s, "a").await, ["b", "d", "c"]);
    // A fourth conversation evicts the least recent.
    send(s, capped(5, "e", T + 1)).await;
    assert_eq!(contacts(s, "a").await, ["e", "b", "d"]);
    assert_eq!(unread(s, "a", &["c"]).await, [0], "its unread count went with it");
    let listed = s.conversations("a".into(), 2).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.peer.as_str()).collect::<Vec<_>>(), ["e", "b"]);

    let b_side = &listed[1];
    assert_eq!((b_side.unread, b_side.time, b_side.conv_seq), (2, T + 1, 2));
    let last = b_side.last.as_ref().unwrap();
    assert_eq!((last.from.as_str(), last.to.as_str(), last.key.random, last.conv_seq), ("b", "a", 4, 2));
    assert_eq!(last.body, body(4));
    let senders = s.conversations("b".into(), 10).await.unwrap();
    assert_eq!(senders.iter().map(|c| (c.peer.as_str(), c.unread)).collect::<Vec<_>>(), [("a", 0)]);
}

pub async fn delete_conversation_removes_one_side_and_can_hide_its_history<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    send(s, plan(2, "b", &["a"], T)).await;
    assert_eq!(unread(s, "a", &["b"]).await, [1]);

    assert!(s.clear_conversation("a".into(), "b".into(), false, true, T + WEEK).await.unwrap());
    assert_eq!(contacts(s, "a").await, Vec::<String>::new());
    assert_eq!(unread(s, "a", &["b"]).await, [0]);
    assert_eq!(numbers(s, "a", "b").await, [2, 1], "history stays without clear_history");
    assert_eq!(contacts(s, "b").await, ["a"], "the peer's side stays");

    assert!(s.clear_conversation("a".into(), "b".into(), true, true, T + WEEK).await.unwrap());
    assert_eq!(numbers(s, "a", "b").await, Vec::<u32>::new());
    assert_eq!(numbers(s, "b", "a").await, [2, 1], "hidden from the owner only");
    // What comes later is shown and listed again.
    send(s, plan(3, "b", &["a"], T + 1)).await;
    assert_eq!(numbers(s, "a", "b").await, [3]);
    assert_eq!(contacts(s, "a").await, ["b"]);

    assert!(
        s.clear_conversation("a".into(), "c".into(), true, true, T + WEEK).await.unwrap(),
        "no conversation: nothing to do"
    );
    assert!(!s.clear_conversation("a".into(), "nobody".into(), false, true, T + WEEK).await.unwrap());
    assert!(!s.clear_conversation("nobody".into(), "a".into(), true, true, T + WEEK).await.unwrap());
}

// ---- edit and delete -----------------------------------------------------------------------------------

fn edit(key: MsgKey, body: Option<String>, data: Option<&str>, base_version: Option<u32>) -> Edit {
    Edit { from: "a".into(), to: "b".into(), key, body, cloud_custom_data: data.map(str::to_owned), base_version }
}

pub async fn modify_edits_the_latest_version_and_tells_both_sides<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let key = send(s, plan(1, "a", &["b"], T)).await.key;
    let modify = |e: Edit| s.modify(e, T + WEEK);

    let Modified::Done(m) = modify(edit(key, Some(body(10)), None, Some(0))).await.unwrap() else {
        panic!("the first edit of version 0 is done");
    };
    assert_eq!((m.body.clone(), m.cloud_custom_data.clone(), m.version), (body(10), String::new(), 1));
    // Only the custom data: the body stays.
    let Modified::Done(m) = modify(edit(key, None, Some("cd"), None)).await.unwrap() else {
        panic!("an edit without a version edits the latest");
    };
    assert_eq!((m.body.clone(), m.cloud_custom_data.as_str(), m.version), (body(10), "cd", 2));
    // A stale version: refused, with the message as it is.
    match modify(edit(key, Some(body(11)), None, Some(1))).await.unwrap() {
        Modified::Conflict(m) => assert_eq!((m.body, m.version), (body(10), 2)),
        other => panic!("a stale version conflicts, not {other:?}"),
    }
    // Only the sender's message to the recipient, by its key.
    let wrong_way = Edit { from: "b".into(), to: "a".into(), ..edit(key, Some(body(12)), None, None) };
    assert_eq!(modify(wrong_way).await.unwrap(), Modified::NotFound);
    assert_eq!(
        modify(edit(MsgKey { random: 99, ..key }, Some(body(12)), None, None)).await.unwrap(),
        Modified::NotFound
    );

    assert_eq!(log(s, "b").await, ["1 msg a>b #1", "2 modified a>b #1 v2", "3 modified a>b #1 v2"]);
    assert_eq!(log(s, "a").await, ["1 msg a>b #1", "2 modified a>b #1 v2", "3 modified a>b #1 v2"]);
    let shown = |ms: Vec<StoredMessage>| ms.iter().map(|m| (m.body.clone(), m.version)).collect::<Vec<_>>();
    assert_eq!(shown(history(s, "b", "a").await), [(body(10), 2)]);
    let last = s.conversations("b".into(), 10).await.unwrap()[0].last.clone().unwrap();
    assert_eq!((last.body, last.cloud_custom_data.as_str()), (body(10), "cd"), "the conversation shows the edit");

    // Recalled: no more edits. Hidden from the sender: only the recipient is told.
    assert_eq!(s.withdraw("a".into(), "b".into(), key, "a".into(), T + WEEK, None).await.unwrap(), Withdrawn::Done);
    assert_eq!(modify(edit(key, Some(body(13)), None, None)).await.unwrap(), Modified::Recalled);
    let mut p = plan(2, "a", &["b"], T);
    p.msg.sender_copy = SenderCopy::Nothing;
    let hidden = send(s, p).await.key;
    assert!(matches!(modify(edit(hidden, Some(body(14)), None, None)).await.unwrap(), Modified::Done(_)));
    assert_eq!(log(s, "b").await[4..], ["5 msg a>b #2", "6 modified a>b #2 v1"]);
    assert_eq!(log(s, "a").await.len(), 4, "the sender kept nothing of #2");
}

pub async fn delete_messages_hides_them_from_one_side_on_its_devices<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let mut keys = Vec::new();
    for (n, time) in [(1, T), (2, T + 1), (3, T + 2)] {
        keys.push(send(s, plan(n, "a", &["b"], time)).await.key);
    }
    assert_eq!(unread(s, "b", &["a"]).await, [3]);
    let delete =
        |owner: &str, peer: &str, keys: Vec<MsgKey>| s.delete_messages(owner.into(), peer.into(), keys, T + WEEK);

    // The recipient deletes the newest and an unknown key: one done, the unread count and last message follow.
    let unknown = MsgKey { random: 99, ..keys[0] };
    assert_eq!(delete("b", "a", vec![keys[2], unknown]).await.unwrap(), [true, false]);
    assert_eq!(numbers(s, "b", "a").await, [2, 1]);
    assert_eq!(numbers(s, "a", "b").await, [3, 2, 1], "the peer keeps it");
    assert_eq!(unread(s, "b", &["a"]).await, [2]);
    let last = |owner: &str| {
        let owner = owner.to_owned();
        async move { s.conversations(owner, 10).await.unwrap()[0].last.as_ref().map(|m| m.key.random) }
    };
    assert_eq!(last("b").await, Some(2));
    assert_eq!(last("a").await, Some(3));
    // Twice: nothing more. The sender deletes its copy: the recipient keeps it.
    assert_eq!(delete("b", "a", vec![keys[2]]).await.unwrap(), [false]);
    assert_eq!(delete("a", "b", vec![keys[0]]).await.unwrap(), [true]);
    assert_eq!(numbers(s, "a", "b").await, [3, 2]);
    assert_eq!(numbers(s, "b", "a").await, [2, 1]);
    assert_eq!(s.find_messages("a".into(), "b".into(), vec![keys[0]]).await.unwrap(), [None]);
    assert_eq!(unread(s, "b", &["a"]).await, [2], "the sender's delete leaves the recipient's count");

    assert_eq!(log(s, "b").await[3..], ["4 deleted a #3"]);
    assert_eq!(log(s, "a").await[3..], ["4 deleted b #1"]);
    // A read message deleted leaves the count; deleting every message empties the conversation's last.
    assert!(s.set_read("b".into(), "a".into(), T + 1, T + WEEK, None).await.unwrap());
    assert_eq!(unread(s, "b", &["a"]).await, [0]);
    assert_eq!(delete("b", "a", vec![keys[0], keys[1]]).await.unwrap(), [true, true]);
    assert_eq!(unread(s, "b", &["a"]).await, [0]);
    assert_eq!(numbers(s, "b", "a").await, Vec::<u32>::new());
    assert_eq!(delete("nobody", "a", vec![keys[0]]).await.unwrap(), [false]);
    // A message its recipient deleted no longer counts: recalling it then takes nothing off again.
    let fresh = send(s, plan(5, "a", &["b"], T + 5)).await.key;
    send(s, plan(6, "a", &["b"], T + 6)).await;
    assert_eq!(unread(s, "b", &["a"]).await, [2]);
    assert_eq!(delete("b", "a", vec![fresh]).await.unwrap(), [true]);
    assert_eq!(unread(s, "b", &["a"]).await, [1]);
    assert_eq!(s.withdraw("a".into(), "b".into(), fresh, "a".into(), T + WEEK, None).await.unwrap(), Withdrawn::Done);
    assert_eq!(unread(s, "b", &["a"]).await, [1], "the recall of a deleted message leaves the count");
}

pub async fn clear_history_keeps_the_conversation_without_its_messages<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    send(s, plan(2, "b", &["a"], T)).await;
    send(s, plan(3, "a", &["b"], T + 1)).await;
    assert_eq!(unread(s, "b", &["a"]).await, [2]);

    assert!(s.clear_conversation("b".into(), "a".into(), true, false, T + WEEK).await.unwrap());
    assert_eq!(numbers(s, "b", "a").await, Vec::<u32>::new());
    assert_eq!(numbers(s, "a", "b").await, [3, 2, 1], "the peer keeps its history");
    assert_eq!(unread(s, "b", &["a"]).await, [0]);
    let listed = s.conversations("b".into(), 10).await.unwrap();
    assert_eq!(listed.iter().map(|c| (c.peer.as_str(), c.last.is_some())).collect::<Vec<_>>(), [("a", false)]);
    assert_eq!(log(s, "b").await[3..], ["4 cleared a 3"]);
    // What comes later is history again, and the conversation's last.
    send(s, plan(4, "a", &["b"], T + 2)).await;
    assert_eq!(numbers(s, "b", "a").await, [4]);
    assert_eq!(unread(s, "b", &["a"]).await, [1]);
    assert_eq!(s.conversations("b".into(), 10).await.unwrap()[0].last.as_ref().map(|m| m.key.random), Some(4));
    assert!(!s.clear_conversation("b".into(), "nobody".into(), true, false, T + WEEK).await.unwrap());
}

pub async fn conversation_settings_pin_mark_and_quiet_a_conversation<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c", "d"]).await;
    send(s, plan(1, "b", &["a"], T)).await;
    send(s, plan(2, "c", &["a"], T + 1)).await;
    send(s, plan(3, "d", &["a"], T + 2)).await;
    let update = |peer: &str, change: SettingsChange, now: i64| {
        s.update_conversation("a".into(), peer.into(), change, now, T + WEEK)
    };
    let order = || async { contacts(s, "a").await };
    assert_eq!(order().await, ["d", "c", "b"]);

    // Pinned first, the latest pinned first; pinning again keeps the first pin's time.
    let pin = |on| SettingsChange { pinned: Some(on), ..SettingsChange::default() };
    let b = update("b", pin(true), T + 10).await.unwrap().unwrap();
    assert_eq!(b.pinned_at, T + 10);
    update("c", pin(true), T + 11).await.unwrap();
    assert_eq!(update("b", pin(true), T + 12).await.unwrap().unwrap().pinned_at, T + 10);
    assert_eq!(order().await, ["c", "b", "d"]);
    update("c", pin(false), T + 13).await.unwrap();
    assert_eq!(order().await, ["b", "d", "c"]);

    // Marks set then cleared, custom data, a draft (and its removal), the receive option.
    let change = SettingsChange {
        set_marks: 0b1011,
        clear_marks: 0b0010,
        custom_data: Some("cd".into()),
        draft: Some("wip".into()),
        receive: Some(ReceiveOpt::NotNotify),
        ..SettingsChange::default()
    };
    let d = update("d", change, T + 20).await.unwrap().unwrap();
    assert_eq!((d.marks, d.custom_data.as_str(), d.draft.as_str(), d.draft_time), (0b1001, "cd", "wip", T + 20));
    let listed = s.conversations("a".into(), 10).await.unwrap();
    let d_view = listed.iter().find(|c| c.peer == "d").unwrap();
    assert_eq!(d_view.settings, d);
    let cleared = SettingsChange { draft: Some(String::new()), ..SettingsChange::default() };
    let d = update("d", cleared, T + 21).await.unwrap().unwrap();
    assert_eq!((d.draft.as_str(), d.draft_time, d.marks), ("", 0, 0b1001), "the rest stays");

    // A quiet conversation is left out of the unread total (its own count stays).
    assert_eq!(unread(s, "a", &["b", "c", "d"]).await, [1, 1, 1]);
    assert_eq!(s.unread_total("a".into()).await.unwrap(), 2);

    // Every change is a settings entry in the owner's log, as the settings are now.
    let entries = log(s, "a").await;
    assert_eq!(entries.len(), 3 + 6);
    assert_eq!(entries[8], "9 settings d pinned false marks 9 \"cd\" \"\" receive 2");
    assert_eq!(entries[3], "4 settings b pinned true marks 0 \"\" \"\" receive 0");
    assert!(log(s, "b").await.iter().all(|e| !e.contains("settings")), "the peer is not told");

    // Deleting the conversation resets its settings but the receive option.
    assert!(s.clear_conversation("a".into(), "d".into(), false, true, T + WEEK).await.unwrap());
    send(s, plan(4, "d", &["a"], T + 30)).await;
    let listed = s.conversations("a".into(), 10).await.unwrap();
    let d_view = listed.iter().find(|c| c.peer == "d").unwrap();
    assert_eq!(
        (d_view.settings.marks, d_view.settings.custom_data.as_str(), d_view.settings.receive),
        (0, "", ReceiveOpt::NotNotify)
    );
    assert_eq!(update("nobody", pin(true), T).await.unwrap(), None);
}

pub async fn do_not_disturb_windows_are_kept_per_user<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let daily =
        Dnd { receive: ReceiveOpt::NotNotify, window: DndWindow::Daily { start_secs: 79_200 }, duration_secs: 28_800 };
    let once = Dnd { receive: ReceiveOpt::NotReceive, window: DndWindow::From { start: T }, duration_secs: 0 };
    assert!(s.set_dnd("a".into(), Some(daily)).await.unwrap());
    assert!(s.set_dnd("b".into(), Some(once)).await.unwrap());
    assert!(!s.set_dnd("nobody".into(), Some(once)).await.unwrap());
    let mut all = s.dnds().await.unwrap();
    all.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(all, [("a".to_owned(), daily), ("b".to_owned(), once)]);
    assert!(s.set_dnd("b".into(), None).await.unwrap());
    assert_eq!(s.dnds().await.unwrap(), [("a".to_owned(), daily)]);
    // 22:00 to 06:00 UTC: on at 23:00 and 05:59:59, off at 06:00 and at noon.
    let day = 1_700_006_400; // a midnight, UTC
    assert!(daily.quiet_at(day + 23 * 3600) && daily.quiet_at(day + 6 * 3600 - 1));
    assert!(!daily.quiet_at(day + 6 * 3600) && !daily.quiet_at(day + 12 * 3600));
    assert!(once.quiet_at(T) && once.quiet_at(T + WEEK) && !once.quiet_at(T - 1), "0: always, from its start");
    // An account's deletion takes its window.
    assert_eq!(s.delete_accounts(vec!["a".into()]).await.unwrap(), [true]);
    assert_eq!(s.dnds().await.unwrap(), []);
}

// ---- retention -----------------------------------------------------------------------------------------

pub async fn purge_removes_what_each_cutoff_covers<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    let old = SendPlan { offline_until: T + 10, ..plan(1, "a", &["b"], T) };
    let new = SendPlan { offline_until: T + 200, ..plan(2, "a", &["c"], T + 100) };
    send(s, old.clone()).await;
    send(s, new.clone()).await;

    let cut = Cutoffs { roaming_before: T + 50, offline_before: T + 50, dedup_before_ms: (T + 50) * 1000 };
    let purged = s.purge(cut).await.unwrap();
    // The old message; both sides of its conversation; its two log entries; its dedup entry.
    assert_eq!(purged, Purged { messages: 1, offline: 2, conversations: 2, dedup: 1 });
    assert_eq!(s.purge(cut).await.unwrap(), Purged::default(), "nothing left to purge");

    assert_eq!(numbers(s, "a", "b").await, Vec::<u32>::new());
    assert_eq!(numbers(s, "a", "c").await, [2]);
    assert_eq!(contacts(s, "a").await, ["c"]);
    assert_eq!(contacts(s, "b").await, Vec::<String>::new());
    assert_eq!(log(s, "a").await, ["2 msg a>c #2"]);
    assert_eq!(log(s, "b").await, Vec::<String>::new());
    assert_eq!((latest(s, "a").await, latest(s, "b").await), (Some(2), Some(1)), "log positions stay");

    // The kept send's retries are still recognised; the purged one's is a new send.
    let retry = SendPlan { now_ms: new.now_ms + 1_000, dedup_since_ms: 0, ..new };
    assert!(matches!(s.send(retry).await.unwrap(), SendOutcome::Duplicate(_)));
    let again = send(s, SendPlan { dedup_since_ms: 0, ..old }).await;
    assert!(!again.duplicate);
    assert_eq!(log(s, "b").await, ["2 msg a>b #1"], "the log goes on from its position");
}

fn text_body(t: &str) -> String {
    format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":{}}}}}]"#, serde_json::Value::from(t))
}

/// Message `n` from `from` to `to` at `time` with the given body.
async fn send_body<S: Store>(s: &S, n: u32, from: &str, to: &str, time: i64, body: String) -> MsgKey {
    let mut p = plan(n, from, &[to], time);
    p.msg.body = body;
    send(s, p).await.key
}

fn search_query(owner: &str, keywords: &[&str]) -> SearchQuery {
    SearchQuery {
        owner: owner.to_owned(),
        keywords: strings(keywords),
        peer: None,
        sender: None,
        types: Vec::new(),
        min_time: 0,
        max_time: i64::MAX,
        after: None,
        limit: 100,
    }
}

/// The message numbers of a whole search (one page), newest first.
async fn found<S: Store>(s: &S, q: SearchQuery) -> Vec<u32> {
    let page = s.search(q).await.unwrap();
    assert_eq!(page.next(), None, "one page");
    page.hits.iter().map(|h| h.message.key.random).collect()
}

pub async fn search_matches_keywords_sender_types_and_time_in_the_owners_conversations<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    send_body(s, 1, "a", "b", T, text_body("hello world")).await;
    send_body(s, 2, "b", "a", T + 1, text_body("Hello again, 你好世界")).await;
    send_body(s, 3, "a", "c", T + 2, text_body("world peace")).await;
    let file = r#"[{"MsgType":"TIMFileElem","MsgContent":{"UUID":"f1","FileName":"world report.pdf","FileSize":1,"Download_Flag":2}}]"#;
    send_body(s, 4, "c", "a", T + 3, file.into()).await;
    send_body(s, 5, "c", "b", T + 4, text_body("hello world")).await;
    let image = r#"[{"MsgType":"TIMImageElem","MsgContent":{"UUID":"world","ImageFormat":1,"ImageInfoArray":[]}}]"#;
    send_body(s, 6, "a", "c", T + 5, image.into()).await;
    let custom = r#"[{"MsgType":"TIMCustomElem","MsgContent":{"Data":"peace","Desc":"[红包] lucky","Ext":"world"}}]"#;
    send_body(s, 7, "a", "c", T + 6, custom.into()).await;
    let q = |keywords: &[&str]| search_query("a", keywords);

    // Across the owner's conversations, newest first; never another user's (#5), never ids or data.
    assert_eq!(found(s, q(&["world"])).await, [4, 3, 1]);
    assert_eq!(found(s, search_query("b", &["world"])).await, [5, 1]);
    assert_eq!(found(s, q(&["HELLO"])).await, [2, 1], "case-insensitive");
    assert_eq!(found(s, q(&["peace"])).await, [3], "a custom element's Data is not text");
    // Chinese: any run of characters inside the text, one character included.
    assert_eq!(found(s, q(&["世界"])).await, [2]);
    assert_eq!(found(s, q(&["你好世界"])).await, [2]);
    assert_eq!(found(s, q(&["好"])).await, [2]);
    assert_eq!(found(s, q(&["红包"])).await, [7], "a custom element's Desc is");
    // Every keyword must match.
    assert_eq!(found(s, q(&["hello", "你好"])).await, [2]);
    assert_eq!(found(s, q(&["hello", "peace"])).await, Vec::<u32>::new());
    // One conversation; one sender; types; a time range.
    assert_eq!(found(s, SearchQuery { peer: Some("c".into()), ..q(&["world"]) }).await, [4, 3]);
    assert_eq!(found(s, SearchQuery { sender: Some("b".into()), ..q(&[]) }).await, [2]);
    assert_eq!(found(s, SearchQuery { sender: Some("a".into()), ..q(&["world"]) }).await, [3, 1]);
    assert_eq!(found(s, SearchQuery { types: strings(&["TIMImageElem"]), ..q(&[]) }).await, [6]);
    let both = strings(&["TIMFileElem", "TIMCustomElem"]);
    assert_eq!(found(s, SearchQuery { types: both, ..q(&[]) }).await, [7, 4]);
    assert_eq!(found(s, SearchQuery { types: strings(&["TIMTextElem"]), ..q(&["report"]) }).await, Vec::<u32>::new());
    assert_eq!(found(s, SearchQuery { min_time: T + 1, max_time: T + 2, ..q(&["world"]) }).await, [3]);
    assert_eq!(found(s, SearchQuery { min_time: T + 5, ..q(&[]) }).await, [7, 6]);
    // Unknown users find nothing.
    assert_eq!(found(s, search_query("nobody", &["world"])).await, Vec::<u32>::new());
    assert_eq!(found(s, SearchQuery { peer: Some("nobody".into()), ..q(&["world"]) }).await, Vec::<u32>::new());
    assert_eq!(found(s, SearchQuery { sender: Some("nobody".into()), ..q(&[]) }).await, Vec::<u32>::new());
    // A hit is the message as history shows it.
    let page = s.search(q(&["again"])).await.unwrap();
    let m = &page.hits[0].message;
    assert_eq!((m.from.as_str(), m.to.as_str(), m.body.clone()), ("b", "a", text_body("Hello again, 你好世界")));
    assert_eq!(m, &history(s, "a", "b").await[0]);
}

pub async fn search_pages_with_its_cursor_without_gaps_or_duplicates<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    // 25 matches, several in each second, in two conversations; others that do not match between them.
    for n in 1..=25u32 {
        let (from, to) = if n % 3 == 0 { ("c", "a") } else { ("a", "b") };
        send_body(s, n, from, to, T + i64::from(n / 4), text_body(&format!("ping {n}"))).await;
        send_body(s, 100 + n, from, to, T + i64::from(n / 4), text_body("pong")).await;
    }
    let mut seen = Vec::new();
    let mut after: Option<SearchCursor> = None;
    let mut pages = 0;
    loop {
        let page = s.search(SearchQuery { after, limit: 10, ..search_query("a", &["ping"]) }).await.unwrap();
        pages += 1;
        if pages == 2 {
            // Stored while paging, newer than every page: not in the later pages, which go on where they were.
            send_body(s, 99, "a", "b", T + 100, text_body("ping late")).await;
        }
        seen.extend(page.hits.iter().map(|h| (h.message.key.time, h.message.key.random)));
        match page.next() {
            Some(next) => {
                assert_eq!(page.hits.len(), 10);
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<(i64, u32)> = (1..=25u32).map(|n| (T + i64::from(n / 4), n)).collect();
    // Newest first: by time, then the later stored first.
    expected.sort_by(|x, y| y.cmp(x));
    assert_eq!(seen, expected, "every match once, newest first");
    // A cursor past the end: nothing.
    let last = SearchCursor { time: 0, id: 0 };
    assert_eq!(found(s, SearchQuery { after: Some(last), ..search_query("a", &["ping"]) }).await, Vec::<u32>::new());
}

pub async fn search_never_finds_recalled_hidden_purged_or_orphaned_messages<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c", "d"]).await;
    let recalled = send_body(s, 1, "a", "b", T, text_body("secret one")).await;
    let deleted = send_body(s, 2, "a", "b", T + 1, text_body("secret two")).await;
    send_body(s, 3, "c", "a", T + 2, text_body("secret three")).await;
    let mut p = plan(4, "a", &["b"], T + 3);
    p.msg.body = text_body("secret four");
    p.msg.sender_copy = SenderCopy::Nothing;
    send(s, p).await;
    send_body(s, 5, "d", "a", T + 4, text_body("secret five")).await;
    send_body(s, 6, "a", "b", T + 100, text_body("secret six")).await;
    let secret = |owner: &str| search_query(owner, &["secret"]);
    assert_eq!(found(s, secret("a")).await, [6, 5, 3, 2, 1]);
    assert_eq!(found(s, secret("b")).await, [6, 4, 2, 1]);

    // Recalled: on neither side. Deleted by b: a still finds it. Cleared by a: b still finds them.
    assert_eq!(
        s.withdraw("a".into(), "b".into(), recalled, "a".into(), T + WEEK, None).await.unwrap(),
        Withdrawn::Done
    );
    assert_eq!(s.delete_messages("b".into(), "a".into(), vec![deleted], T + WEEK).await.unwrap(), [true]);
    assert_eq!(found(s, secret("a")).await, [6, 5, 3, 2]);
    assert_eq!(found(s, secret("b")).await, [6, 4]);
    assert!(s.clear_conversation("a".into(), "c".into(), true, false, T + WEEK).await.unwrap());
    assert_eq!(found(s, secret("a")).await, [6, 5, 2]);
    assert_eq!(found(s, secret("c")).await, [3]);
    // A deleted account's messages are found by no one.
    assert_eq!(s.delete_accounts(vec!["d".into()]).await.unwrap(), [true]);
    assert_eq!(found(s, secret("a")).await, [6, 2]);
    // Purged: gone.
    let cut = Cutoffs { roaming_before: T + 50, offline_before: 0, dedup_before_ms: 0 };
    s.purge(cut).await.unwrap();
    assert_eq!(found(s, secret("a")).await, [6]);
    assert_eq!(found(s, secret("b")).await, [6]);
    assert_eq!(found(s, secret("c")).await, Vec::<u32>::new());
}

pub async fn search_finds_an_edited_message_by_its_new_text_only<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    let key = send_body(s, 1, "a", "b", T, text_body("draft wording")).await;
    send_body(s, 2, "b", "a", T + 1, text_body("reply wording")).await;
    assert_eq!(found(s, search_query("b", &["draft"])).await, [1]);
    let Modified::Done(_) = s.modify(edit(key, Some(text_body("final text")), None, None), T + WEEK).await.unwrap()
    else {
        panic!("edited");
    };
    for owner in ["a", "b"] {
        assert_eq!(found(s, search_query(owner, &["draft"])).await, Vec::<u32>::new());
        assert_eq!(found(s, search_query(owner, &["final"])).await, [1]);
        assert_eq!(found(s, search_query(owner, &["wording"])).await, [2]);
    }
    // Editing the custom data alone leaves the text as it is.
    let Modified::Done(_) = s.modify(edit(key, None, Some("draft"), None), T + WEEK).await.unwrap() else {
        panic!("edited");
    };
    assert_eq!(found(s, search_query("a", &["final"])).await, [1]);
    assert_eq!(found(s, search_query("a", &["draft"])).await, Vec::<u32>::new());
}

pub async fn purging_offline_copies_keeps_history_and_log_positions<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    send(s, SendPlan { offline_until: T + 10, ..plan(1, "a", &["b"], T) }).await;
    send(s, SendPlan { offline_until: T + 30, ..plan(2, "a", &["b"], T) }).await;
    let cut = Cutoffs { roaming_before: 0, offline_before: T + 20, dedup_before_ms: 0 };
    assert_eq!(s.purge(cut).await.unwrap(), Purged { offline: 2, ..Purged::default() });
    assert_eq!(log(s, "b").await, ["2 msg a>b #2"]);
    assert_eq!(log(s, "a").await, ["2 msg a>b #2"]);
    assert_eq!(numbers(s, "b", "a").await, [2, 1], "history is the roaming retention's");
    assert_eq!(contacts(s, "b").await, ["a"]);
    send(s, plan(3, "a", &["b"], T + 1)).await;
    assert_eq!(log(s, "b").await, ["2 msg a>b #2", "3 msg a>b #3"]);
}

pub async fn a_log_entry_whose_message_expired_is_skipped<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    send(s, plan(2, "a", &["b"], T + 100)).await;
    let cut = Cutoffs { roaming_before: T + 50, offline_before: 0, dedup_before_ms: 0 };
    // The conversation's last message is the newer one: the conversation stays.
    assert_eq!(s.purge(cut).await.unwrap(), Purged { messages: 1, ..Purged::default() });
    assert_eq!(log(s, "b").await, ["2 msg a>b #2"]);
    assert_eq!(log_page(s, "b", 0, 10, usize::MAX).await, (vec![2], false, 2));
    assert_eq!(contacts(s, "b").await, ["a"]);
    assert_eq!(numbers(s, "b", "a").await, [2]);
}

// ---- relations -----------------------------------------------------------------------------------------

/// Every message of the range whole, in pages of `limit`, as `<from>><to> #<n>` (with ` recalled`).
async fn exported<S: Store>(s: &S, start: i64, end: i64, limit: usize) -> Vec<String> {
    let (mut out, mut after) = (Vec::new(), None);
    for _ in 0..100 {
        let page = s.export_messages(start, end, after, limit).await.unwrap();
        assert!(page.messages.len() <= limit.max(1));
        for m in &page.messages {
            let recalled = if m.recalled { " recalled" } else { "" };
            out.push(format!("{}>{} #{}{recalled}", m.from, m.to, m.key.random));
        }
        match page.next {
            Some(next) => {
                assert!(after.is_none_or(|a| next > a), "the cursor moves on");
                after = Some(next);
            }
            None => return out,
        }
    }
    panic!("the export does not end");
}

pub async fn export_reads_every_stored_message_of_a_range_in_pages<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    s.import(import(9, "c", "a", T - 1, false), T + WEEK, 100).await.unwrap();
    let first = send(s, plan(1, "a", &["b"], T)).await.key;
    send(s, plan(2, "b", &["a"], T)).await;
    send(s, plan(3, "a", &["b", "c"], T + 1)).await;
    let mut hidden = plan(4, "a", &["b"], T + 2);
    hidden.msg.sender_copy = SenderCopy::Nothing;
    send(s, hidden).await;
    send(s, plan(5, "b", &["b"], T + 3)).await;
    send(s, plan(6, "a", &["b"], T + 3600)).await;
    // Recalled, and hidden from one side: each is still stored, and exported.
    assert_eq!(s.withdraw("a".into(), "b".into(), first, "a".into(), T + WEEK, None).await.unwrap(), Withdrawn::Done);
    assert!(s.clear_conversation("b".into(), "a".into(), true, true, T + WEEK).await.unwrap());

    let hour = ["a>b #1 recalled", "b>a #2", "a>b #3", "a>c #3", "a>b #4", "b>b #5"];
    for limit in [0, 1, 2, 5, 6, 100] {
        assert_eq!(exported(s, T, T + 3600, limit).await, hour, "pages of {limit}");
    }
    assert_eq!(exported(s, T - 1, T, 10).await, ["c>a #9"], "the start is in the range");
    assert_eq!(exported(s, T + 3600, T + 7200, 10).await, ["a>b #6"], "the end is not");
    assert_eq!(exported(s, T + 7200, T + 10_800, 10).await, Vec::<String>::new());
    let page = s.export_messages(T, T + 3600, None, 2).await.unwrap();
    assert_eq!(page.messages[0].body, body(1), "the body as stored");
    assert!(page.next.is_some());

    // Purged by retention: gone. A deleted account's messages: no UserID left to name them by.
    let cut = Cutoffs { roaming_before: T + 1, offline_before: 0, dedup_before_ms: 0 };
    s.purge(cut).await.unwrap();
    assert_eq!(s.delete_accounts(strings(&["c"])).await.unwrap(), [true]);
    assert_eq!(exported(s, T - 1, T + 3600, 1).await, ["a>b #3", "a>b #4", "b>b #5"]);
}

pub async fn relations_are_stored_and_changed_in_order<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    let mut friend = Friend::new("b", T);
    friend.remark = "Bee".into();
    friend.groups = strings(&["work", "gym"]);
    friend.add_source = "AddSource_Type_Web".into();
    friend.add_wording = "hello".into();
    friend.custom = vec![tagged("Tag_SNS_Custom_A", text("x")), tagged("Tag_SNS_Custom_B", ProfileValue::Number(2))];
    let blocked = Blocked { peer: "c".into(), time: T + 1 };
    s.apply_relations(
        vec![
            RelationChange::PutFriend { owner: "a".into(), friend: friend.clone() },
            RelationChange::PutFriend { owner: "b".into(), friend: Friend::new("a", T) },
            RelationChange::PutBlocked { owner: "a".into(), entry: blocked.clone() },
            RelationChange::PutRequest(request("a", "d")),
            RelationChange::PutRequest(request("e", "a")),
        ],
        Vec::new(),
    )
    .await
    .unwrap();
    let a = s.load_relations("a".into()).await.unwrap();
    let expected = RelationData {
        friends: vec![friend],
        blacklist: vec![blocked],
        incoming: vec![request("e", "a")],
        outgoing: vec![request("a", "d")],
    };
    assert_eq!(a, expected, "stored whole, whether or not the accounts exist");
    assert_eq!(s.load_relations("d".into()).await.unwrap().incoming, [request("a", "d")]);
    assert_eq!(s.load_relations("b".into()).await.unwrap().friends, [Friend::new("a", T)]);
    assert_eq!(s.load_relations("nobody".into()).await.unwrap(), RelationData::default());

    // A put replaces the entry whole, custom values included.
    let mut replaced = Friend::new("b", T + 2);
    replaced.custom = vec![tagged("Tag_SNS_Custom_C", text("y"))];
    let put = RelationChange::PutFriend { owner: "a".into(), friend: replaced.clone() };
    s.apply_relations(vec![put], Vec::new()).await.unwrap();
    assert_eq!(s.load_relations("a".into()).await.unwrap().friends, [replaced]);

    // In order: a delete after a put in the same batch leaves nothing.
    s.apply_relations(
        vec![
            RelationChange::PutFriend { owner: "a".into(), friend: Friend::new("c", T) },
            RelationChange::DeleteFriend { owner: "a".into(), peer: "c".into() },
            RelationChange::DeleteFriend { owner: "a".into(), peer: "b".into() },
            RelationChange::DeleteBlocked { owner: "a".into(), peer: "c".into() },
            RelationChange::DeleteRequest { from: "a".into(), to: "d".into() },
            RelationChange::DeleteRequest { from: "e".into(), to: "a".into() },
            RelationChange::PutBlocked { owner: "a".into(), entry: Blocked { peer: "f".into(), time: T } },
            RelationChange::PutFriend { owner: "a".into(), friend: Friend::new("b", T + 3) },
        ],
        Vec::new(),
    )
    .await
    .unwrap();
    let a = s.load_relations("a".into()).await.unwrap();
    let expected = RelationData {
        friends: vec![Friend::new("b", T + 3)],
        blacklist: vec![Blocked { peer: "f".into(), time: T }],
        ..RelationData::default()
    };
    assert_eq!(a, expected, "a deleted friend put back has none of its old values");
    assert_eq!(s.load_relations("b".into()).await.unwrap().friends, [Friend::new("a", T)]);
    assert_eq!(s.load_relations("d".into()).await.unwrap(), RelationData::default());
}

// ---- media ---------------------------------------------------------------------------------------------

/// An image uploaded by alice: its large rendition is the original's blob, its thumbnail a blob of its own.
fn image(uuid: &str, last_used: i64) -> MediaItem {
    let rendition = |kind, width, height, size, blob: String| Rendition { kind, width, height, size, blob };
    MediaItem {
        uuid: uuid.into(),
        kind: MediaKind::Image,
        owner: "alice".into(),
        size: 10,
        file_name: "a.png".into(),
        image: Some(ImageMeta {
            format: 3,
            renditions: vec![
                rendition(RenditionKind::Original, 4, 2, 10, uuid.into()),
                rendition(RenditionKind::Large, 4, 2, 10, uuid.into()),
                rendition(RenditionKind::Thumb, 2, 1, 5, format!("{uuid}.thumb")),
            ],
        }),
        created: last_used,
        last_used,
    }
}

fn file(uuid: &str, owner: &str, last_used: i64) -> MediaItem {
    MediaItem {
        uuid: uuid.into(),
        kind: MediaKind::File,
        owner: owner.into(),
        size: 1234,
        file_name: "notes.txt".into(),
        image: None,
        created: last_used,
        last_used,
    }
}

async fn doomed<M: MediaIndex>(m: &M) -> Vec<String> {
    let mut keys = m.doomed(1000).await.unwrap();
    keys.sort();
    keys
}

async fn last_used<M: MediaIndex>(m: &M, uuid: &str) -> Option<i64> {
    m.get(strings(&[uuid])).await.unwrap()[0].as_ref().map(|i| i.last_used)
}

pub async fn media_items_and_grants<S, M: MediaIndex>(b: Backend<S, M>) {
    let m = &*b.media;
    m.insert(image("a", 100)).await.unwrap();
    m.insert(file("f", "bob", 200)).await.unwrap();
    let got = m.get(strings(&["a", "zz", "f"])).await.unwrap();
    assert_eq!(got, [Some(image("a", 100)), None, Some(file("f", "bob", 200))]);

    assert!(!m.granted("a".into(), "bob".into()).await.unwrap());
    let granted = m.grant(strings(&["a", "zz"]), strings(&["alice", "bob"]), 300).await.unwrap();
    assert_eq!(granted, ["a"], "an unknown item is left out");
    assert!(m.granted("a".into(), "bob".into()).await.unwrap());
    assert!(m.granted("a".into(), "alice".into()).await.unwrap());
    assert!(!m.granted("f".into(), "alice".into()).await.unwrap());
    assert!(!m.granted("zz".into(), "bob".into()).await.unwrap());
    assert_eq!(last_used(m, "a").await, Some(300));
    assert_eq!(m.grant(strings(&["a"]), strings(&["carol"]), 250).await.unwrap(), ["a"]);
    assert_eq!(last_used(m, "a").await, Some(300), "the last use never moves back");
    assert!(m.granted("a".into(), "carol".into()).await.unwrap());
}

pub async fn media_expire_forgets_unused_items_and_dooms_their_blobs<S, M: MediaIndex>(b: Backend<S, M>) {
    let m = &*b.media;
    m.insert(image("a", 100)).await.unwrap();
    m.insert(image("b", 200)).await.unwrap();
    m.insert(file("c", "bob", 150)).await.unwrap();
    m.grant(strings(&["a"]), strings(&["bob"]), 100).await.unwrap();

    assert_eq!(m.expire(250, 1).await.unwrap(), 1, "at most the limit");
    assert_eq!(m.get(strings(&["a", "b", "c"])).await.unwrap().iter().filter(|i| i.is_some()).count(), 2);
    assert_eq!(last_used(m, "a").await, None, "the least recently used first");
    assert_eq!(m.expire(250, 10).await.unwrap(), 2);
    assert_eq!(m.expire(250, 10).await.unwrap(), 0);
    assert_eq!(m.get(strings(&["a", "b", "c"])).await.unwrap(), [None, None, None]);
    assert_eq!(doomed(m).await, ["a", "a.thumb", "b", "b.thumb", "c"]);
    assert_eq!(m.doomed(2).await.unwrap().len(), 2);

    // A doomed key stays until its blob is deleted and it is forgotten.
    m.forget_doomed(strings(&["a", "b"])).await.unwrap();
    assert_eq!(doomed(m).await, ["a.thumb", "b.thumb", "c"]);
    // The grants went with the item: an item stored again under the id has none of them.
    m.insert(image("a", 300)).await.unwrap();
    assert!(!m.granted("a".into(), "bob".into()).await.unwrap());

    // A use after the cutoff keeps the item.
    m.insert(image("d", 100)).await.unwrap();
    assert_eq!(m.grant(strings(&["d"]), strings(&["bob"]), 400).await.unwrap(), ["d"]);
    assert_eq!(m.expire(350, 10).await.unwrap(), 1, "only a (300) is before 350");
    assert_eq!(last_used(m, "d").await, Some(400));
    // An expired item is granted to nobody, and nothing is written for it.
    assert_eq!(m.grant(strings(&["a", "d"]), strings(&["carol"]), 500).await.unwrap(), ["d"]);
    assert!(!m.granted("a".into(), "carol".into()).await.unwrap());
}

pub async fn media_uploads_begun_and_never_recorded_are_doomed<S, M: MediaIndex>(b: Backend<S, M>) {
    let m = &*b.media;
    m.begin("c".into(), 100).await.unwrap();
    m.begin("d".into(), 100).await.unwrap();
    m.insert(image("d", 100)).await.unwrap();
    m.begin("e".into(), 300).await.unwrap();
    assert_eq!(m.expire(200, 10).await.unwrap(), 2, "c never recorded, d unused");
    assert_eq!(doomed(m).await, ["c", "c.large", "c.thumb", "d", "d.thumb"]);

    m.abandon("e".into()).await.unwrap();
    assert_eq!(doomed(m).await.len(), 8, "e's possible blobs");
    m.abandon("e".into()).await.unwrap();
    m.abandon("never".into()).await.unwrap();
    assert_eq!(doomed(m).await.len(), 8, "nothing more: neither is begun");
    assert_eq!(m.expire(1000, 10).await.unwrap(), 0, "nothing left begun");

    // A recorded upload is no longer begun.
    m.begin("g".into(), 100).await.unwrap();
    m.insert(image("g", 2000)).await.unwrap();
    assert_eq!(m.expire(1000, 10).await.unwrap(), 0);
    // The limit covers items and uploads together, items first.
    m.forget_doomed(doomed(m).await).await.unwrap();
    m.begin("h".into(), 100).await.unwrap();
    m.begin("i".into(), 100).await.unwrap();
    m.insert(file("j", "bob", 100)).await.unwrap();
    assert_eq!(m.expire(1000, 2).await.unwrap(), 2);
    assert_eq!(m.get(strings(&["j"])).await.unwrap(), [None]);
    assert_eq!(m.expire(1000, 2).await.unwrap(), 1);
    assert_eq!(doomed(m).await.len(), 7, "j, and three keys for each of h and i");
}

pub async fn media_forget_users_drops_their_grants_and_ownership<S, M: MediaIndex>(b: Backend<S, M>) {
    let m = &*b.media;
    m.insert(image("a", 100)).await.unwrap();
    m.insert(file("b", "bob", 100)).await.unwrap();
    m.grant(strings(&["a"]), strings(&["alice", "bob", "carol"]), 100).await.unwrap();
    m.grant(strings(&["b"]), strings(&["bob", "alice"]), 100).await.unwrap();

    m.forget_users(strings(&["bob"])).await.unwrap();
    assert!(!m.granted("a".into(), "bob".into()).await.unwrap());
    assert!(!m.granted("b".into(), "bob".into()).await.unwrap());
    for (uuid, user) in [("a", "alice"), ("a", "carol"), ("b", "alice")] {
        assert!(m.granted(uuid.into(), user.into()).await.unwrap(), "{user}'s grant of {uuid} stays");
    }
    let owners: Vec<String> =
        m.get(strings(&["a", "b"])).await.unwrap().into_iter().flatten().map(|i| i.owner).collect();
    assert_eq!(owners, ["alice", ""], "bob's upload is nobody's");
}

fn device(user: &str, device: &str, provider: ProviderKind, token: &str) -> PushDevice {
    PushDevice {
        user: user.to_owned(),
        device: device.to_owned(),
        platform: Platform::IPhone,
        provider,
        token: token.to_owned(),
        app_id: None,
        lang: None,
        seen_at: T,
    }
}

async fn devices<S: Store>(s: &S) -> Vec<String> {
    let mut all: Vec<String> = s
        .push_devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| format!("{}/{} {}:{}", d.user, d.device, d.provider, d.token))
        .collect();
    all.sort();
    all
}

/// What `claim_pushes` returns, as "user/device #random".
async fn claim<S: Store>(s: &S, now: i64) -> Vec<(u64, String)> {
    let claimed = s.claim_pushes("node".into(), now, now + 60, 100).await.unwrap();
    claimed
        .into_iter()
        .map(|p| (p.id, format!("{}/{} #{}", p.device.user, p.device.device, p.message.key.random)))
        .collect()
}

fn pushed(n: u32, from: &str, to: &[&str], time: i64) -> SendPlan {
    SendPlan { push: true, ..plan(n, from, to, time) }
}

pub async fn push_devices_register_replace_and_a_token_has_one_holder<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    assert!(!s.register_device(device("nobody", "d", ProviderKind::Apns, "t0")).await.unwrap());
    assert!(s.register_device(device("a", "phone", ProviderKind::Apns, "t1")).await.unwrap());
    assert!(s.register_device(device("a", "pad", ProviderKind::Fcm, "t2")).await.unwrap());
    assert_eq!(devices(s).await, ["a/pad fcm:t2", "a/phone apns:t1"]);
    // The same device again: replaced.
    s.register_device(device("a", "phone", ProviderKind::Xiaomi, "t3")).await.unwrap();
    assert_eq!(devices(s).await, ["a/pad fcm:t2", "a/phone xiaomi:t3"]);
    // The same token from another user's device (the phone changed hands): the old holder loses it.
    s.register_device(device("b", "phone", ProviderKind::Fcm, "t2")).await.unwrap();
    assert_eq!(devices(s).await, ["a/phone xiaomi:t3", "b/phone fcm:t2"]);
    // The same token with another provider is another token.
    s.register_device(device("a", "pad", ProviderKind::Apns, "t2")).await.unwrap();
    assert_eq!(devices(s).await, ["a/pad apns:t2", "a/phone xiaomi:t3", "b/phone fcm:t2"]);
    assert_eq!(s.remove_push_token(ProviderKind::Fcm, "t2".into()).await.unwrap(), 1);
    assert_eq!(devices(s).await, ["a/pad apns:t2", "a/phone xiaomi:t3"]);
    s.device_seen("a".into(), "pad".into(), T + 50).await.unwrap();
    s.device_seen("a".into(), "pad".into(), T + 10).await.unwrap();
    let pad = s.push_devices().await.unwrap().into_iter().find(|d| d.device == "pad").unwrap();
    assert_eq!(pad.seen_at, T + 50, "seen_at never goes back");
    s.unregister_devices("a".into(), Some("pad".into())).await.unwrap();
    assert_eq!(devices(s).await, ["a/phone xiaomi:t3"]);
    s.unregister_devices("a".into(), None).await.unwrap();
    assert_eq!(devices(s).await, Vec::<String>::new());
    // A deleted account takes its registrations with it.
    s.register_device(device("b", "phone", ProviderKind::Fcm, "t4")).await.unwrap();
    s.delete_accounts(vec!["b".into()]).await.unwrap();
    assert_eq!(devices(s).await, Vec::<String>::new());
}

pub async fn a_send_queues_one_push_per_device_of_each_recipient_in_its_commit<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b", "c"]).await;
    s.register_device(device("b", "phone", ProviderKind::Apns, "tb1")).await.unwrap();
    s.register_device(device("b", "pad", ProviderKind::Xiaomi, "tb2")).await.unwrap();
    s.register_device(device("a", "phone", ProviderKind::Apns, "ta")).await.unwrap();
    // Not queued: a send that asks for no push.
    send(s, plan(1, "a", &["b"], T)).await;
    // Queued for each device of each recipient, never for the sender, never for a message to oneself.
    send(s, pushed(2, "a", &["b", "c"], T)).await;
    send(s, pushed(3, "a", &["a"], T)).await;
    assert_eq!(s.push_backlog().await.unwrap(), (2, Some(T)));
    let mut got: Vec<String> = claim(s, T).await.into_iter().map(|(_, p)| p).collect();
    got.sort();
    assert_eq!(got, ["b/pad #2", "b/phone #2"]);
    // A retry of the send queues nothing more.
    let retry = SendPlan { now_ms: (T + 1) * 1000, ..pushed(2, "a", &["b", "c"], T) };
    assert!(matches!(s.send(retry).await.unwrap(), SendOutcome::Duplicate(_)));
    assert_eq!(s.push_backlog().await.unwrap().0, 2);
    // What the outbox holds of the message.
    let info = SendPlan {
        msg: Outgoing { push_info: Some(r#"{"Desc":"x"}"#.into()), ..plan(4, "a", &["b"], T).msg },
        ..pushed(4, "a", &["b"], T)
    };
    send(s, info).await;
    let p = s.claim_pushes("node".into(), T, T + 60, 100).await.unwrap();
    let p = p.iter().find(|p| p.message.key.random == 4).expect("the push of message 4");
    assert_eq!((p.message.from.as_str(), p.message.to.as_str()), ("a", "b"));
    assert_eq!(p.message.body, body(4));
    assert_eq!(p.message.push_info.as_deref(), Some(r#"{"Desc":"x"}"#));
    assert_eq!((p.attempts, p.queued_at), (0, T));
    assert_eq!(p.unread, 3, "b's unread count when claimed: messages 1, 2 and 4 (1 was not pushed, but counts)");
}

pub async fn pushes_are_claimed_once_under_a_lease_and_settled<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    s.register_device(device("b", "phone", ProviderKind::Apns, "t")).await.unwrap();
    for n in 1..=3 {
        send(s, pushed(n, "a", &["b"], T)).await;
    }
    let first = claim(s, T).await;
    assert_eq!(first.len(), 3);
    assert_eq!(claim(s, T + 10).await, [], "held by their lease");
    let ids: Vec<u64> = first.iter().map(|(id, _)| *id).collect();
    s.settle_pushes(vec![(ids[0], Settle::Done), (ids[1], Settle::Retry { at: T + 100 })]).await.unwrap();
    // The third's lease runs out: claimed again; the second is due at T + 100, with one attempt counted.
    let again = claim(s, T + 61).await;
    assert_eq!(again.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [ids[2]]);
    assert_eq!(claim(s, T + 99).await, []);
    let retried = s.claim_pushes("node".into(), T + 200, T + 260, 100).await.unwrap();
    assert_eq!(
        retried.iter().map(|p| (p.id, p.attempts)).collect::<Vec<_>>(),
        [(ids[2], 0), (ids[1], 1)],
        "oldest due first"
    );
    // A stopped node's leases are released at its next start.
    s.release_pushes("node".into()).await.unwrap();
    assert_eq!(claim(s, T + 201).await.len(), 2);
    s.settle_pushes(vec![(ids[1], Settle::Done), (ids[2], Settle::Done), (999, Settle::Done)]).await.unwrap();
    assert_eq!(s.push_backlog().await.unwrap(), (0, None));
}

pub async fn unregistering_a_device_drops_its_queued_pushes<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    s.register_device(device("b", "phone", ProviderKind::Apns, "t1")).await.unwrap();
    s.register_device(device("b", "pad", ProviderKind::Apns, "t2")).await.unwrap();
    send(s, pushed(1, "a", &["b"], T)).await;
    s.unregister_devices("b".into(), Some("phone".into())).await.unwrap();
    assert_eq!(claim(s, T).await.into_iter().map(|(_, p)| p).collect::<Vec<_>>(), ["b/pad #1"]);
    send(s, pushed(2, "a", &["b"], T)).await;
    // A token the provider called invalid takes its pushes with it.
    s.remove_push_token(ProviderKind::Apns, "t2".into()).await.unwrap();
    assert_eq!(s.push_backlog().await.unwrap().0, 0);
    // A device registered again with a new token keeps its queue.
    s.register_device(device("b", "pad", ProviderKind::Apns, "t3")).await.unwrap();
    send(s, pushed(3, "a", &["b"], T)).await;
    s.register_device(device("b", "pad", ProviderKind::Apns, "t4")).await.unwrap();
    let p = s.claim_pushes("node".into(), T, T + 60, 100).await.unwrap();
    assert_eq!(p.iter().map(|p| p.device.token.as_str()).collect::<Vec<_>>(), ["t4"]);
}

pub async fn a_push_whose_message_expired_is_dropped_at_claim<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    s.register_device(device("b", "phone", ProviderKind::Apns, "t")).await.unwrap();
    send(s, pushed(1, "a", &["b"], T)).await;
    let cut = Cutoffs { roaming_before: T + 50, offline_before: T + 50, dedup_before_ms: 0 };
    s.purge(cut).await.unwrap();
    assert_eq!(claim(s, T + 60).await, []);
    assert_eq!(s.push_backlog().await.unwrap(), (0, None), "dropped, not left behind");
}

/// An event of `user` at second `time`.
fn event(user: &str, time: i64, kind: EventKind) -> AfterEvent {
    AfterEvent { user: user.to_owned(), time_ms: time * 1000, platform: "RESTAPI".into(), client_ip: None, kind }
}

fn state_change(user: &str, time: i64, action: &str) -> AfterEvent {
    event(user, time, EventKind::StateChange { action: action.into(), reason: "Register".into() })
}

async fn claim_events<S: Store>(s: &S, now: i64) -> Vec<QueuedEvent> {
    s.claim_events("node".into(), now, now + 60, 100).await.unwrap()
}

pub async fn callback_events_are_written_in_their_commits_with_its_facts<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    create(s, &["a", "b"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    let sent_event = |n: u32| {
        event(
            "a",
            T,
            EventKind::SendMsg {
                from: "a".into(),
                to: "b".into(),
                seq: 0,
                random: n,
                time: T,
                online_only: false,
                body: body(n),
                cloud_custom_data: String::new(),
                result: 0,
                error_info: String::new(),
                unread: 0,
            },
        )
    };
    let sent = send(s, SendPlan { after_send: Some(sent_event(2)), ..plan(2, "a", &["b"], T) }).await;
    // A retry writes nothing, its event neither; nor does a send whose key is taken.
    let retry = s.send(SendPlan { after_send: Some(sent_event(2)), ..plan(2, "a", &["b"], T) }).await.unwrap();
    assert!(matches!(retry, SendOutcome::Duplicate(_)));
    let recall = EventKind::MsgWithdraw { from: "a".into(), to: "b".into(), key: sent.key.to_string(), unread: 9 };
    assert_eq!(
        s.withdraw("a".into(), "b".into(), sent.key, "a".into(), T + WEEK, Some(event("a", T, recall.clone())))
            .await
            .unwrap(),
        Withdrawn::Done
    );
    // A recall that finds nothing announces nothing.
    let missing = MsgKey { seq: 99, random: 99, time: T };
    assert_eq!(
        s.withdraw("a".into(), "b".into(), missing, "a".into(), T + WEEK, Some(event("a", T, recall))).await.unwrap(),
        Withdrawn::NotFound
    );
    let report = EventKind::MsgReport { reporter: "a".into(), peer: "b".into(), last_read_time: T, unread: 9 };
    assert!(s.set_read("a".into(), "b".into(), T, T + WEEK, Some(event("a", T, report.clone()))).await.unwrap());
    assert!(!s.set_read("a".into(), "nobody".into(), T, T + WEEK, Some(event("a", T, report))).await.unwrap());
    let portrait =
        EventKind::PortraitSet { operator: "admin".into(), items: vec![("Tag_Profile_IM_Nick".into(), "A".into())] };
    let nick = vec![(TAG_NICK.to_owned(), ProfileValue::Text("A".into()))];
    assert!(s.set_profile("b".into(), nick.clone(), Some(event("b", T, portrait.clone()))).await.unwrap());
    assert!(!s.set_profile("nobody".into(), nick, Some(event("nobody", T, portrait))).await.unwrap());
    let pair = Pair { from: "a".into(), to: "b".into(), initiator: None };
    let blocked = event("a", T, EventKind::BlackListAdd { pairs: vec![pair] });
    let change = RelationChange::PutBlocked { owner: "a".into(), entry: Blocked { peer: "b".into(), time: T } };
    s.apply_relations(vec![change], vec![blocked.clone()]).await.unwrap();

    let claimed = claim_events(s, T).await;
    let kinds: Vec<EventKind> = claimed.iter().map(|e| e.event.kind.clone()).collect();
    assert_eq!(kinds.len(), 5, "one event per operation that took place: {kinds:#?}");
    let EventKind::SendMsg { seq, time, unread, .. } = &kinds[0] else { panic!("{:?}", kinds[0]) };
    assert_eq!((*seq, *time), (sent.key.seq, sent.key.time), "the store's MsgSeq filled in");
    assert_eq!(*unread, 2, "b's total unread after the send: messages 1 and 2");
    assert!(
        matches!(kinds[1], EventKind::MsgWithdraw { unread: 1, .. }),
        "b's unread after the recall: {:?}",
        kinds[1]
    );
    assert!(matches!(kinds[2], EventKind::MsgReport { unread: 0, .. }), "a's own unread: {:?}", kinds[2]);
    assert!(matches!(kinds[3], EventKind::PortraitSet { .. }));
    assert_eq!(claimed[4].event, blocked);
    assert!(claimed.windows(2).all(|w| w[0].id < w[1].id), "in commit order");
    assert!(claimed.iter().all(|e| e.attempts == 0 && e.queued_at == T));
    assert_eq!(s.event_backlog().await.unwrap(), (5, Some(T)));
}

pub async fn callback_events_are_claimed_in_order_per_user_under_a_lease<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    let queued = vec![
        state_change("a", T, "Login"),
        state_change("b", T, "Login"),
        state_change("a", T, "Logout"),
        state_change("a", T + 1, "Login"),
    ];
    s.queue_events(queued.clone(), T).await.unwrap();
    let first = claim_events(s, T + 1).await;
    assert_eq!(first.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), queued, "in the order written");
    let ids: Vec<u64> = first.iter().map(|e| e.id).collect();
    assert_eq!(claim_events(s, T + 10).await, [], "held by their lease");
    // a's first failed: its later ones are released untried and wait behind it; b's went through.
    s.settle_events(vec![
        (ids[0], Settle::Retry { at: T + 100 }),
        (ids[1], Settle::Done),
        (ids[2], Settle::Release),
        (ids[3], Settle::Release),
    ])
    .await
    .unwrap();
    s.queue_events(vec![state_change("b", T + 20, "Logout")], T + 20).await.unwrap();
    let b_only = claim_events(s, T + 20).await;
    assert_eq!(b_only.len(), 1, "a's events wait for its first one: {b_only:?}");
    assert_eq!(b_only[0].event.user, "b");
    assert!(b_only[0].id > ids[3], "ids are never reused");
    s.settle_events(vec![(b_only[0].id, Settle::Done)]).await.unwrap();
    let retried = claim_events(s, T + 100).await;
    assert_eq!(
        retried.iter().map(|e| (e.id, e.attempts)).collect::<Vec<_>>(),
        [(ids[0], 1), (ids[2], 0), (ids[3], 0)],
        "the retry first, then the rest of a's, in order"
    );
    // A stopped node's leases are released at its next start.
    s.release_events("node".into()).await.unwrap();
    assert_eq!(claim_events(s, T + 101).await.len(), 3);
    assert_eq!(s.event_backlog().await.unwrap(), (3, Some(T)));
    s.settle_events(ids.iter().map(|id| (*id, Settle::Done)).chain([(999, Settle::Done)]).collect()).await.unwrap();
    assert_eq!(s.event_backlog().await.unwrap(), (0, None));
    s.queue_events(vec![state_change("a", T + 200, "Login")], T + 200).await.unwrap();
    let last = claim_events(s, T + 200).await;
    assert!(last[0].id > b_only[0].id, "ids are never reused, even when the outbox was empty");
}

pub async fn ops_stats_count_accounts_and_messages_and_a_writable_store_says_so<S: Store, M>(b: Backend<S, M>) {
    let s = &*b.store;
    s.check_writable().await.expect("an open store takes writes");
    let empty = s.stats().await.unwrap();
    assert_eq!((empty.accounts, empty.messages), (0, 0));
    create(s, &["a", "b", "c"]).await;
    send(s, plan(1, "a", &["b"], T)).await;
    send(s, plan(2, "b", &["a"], T)).await;
    send(s, plan(3, "a", &["nobody"], T)).await;
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.accounts, stats.messages), (3, 2), "a send to nobody stores nothing");
    s.delete_accounts(strings(&["c"])).await.unwrap();
    assert_eq!(s.stats().await.unwrap().accounts, 2);
    s.check_writable().await.expect("still writable");
}

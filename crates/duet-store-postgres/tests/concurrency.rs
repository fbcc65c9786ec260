//! PostgreSQL's own promises, beyond the conformance suite: several nodes (several `PgStore`s on one
//! database, each with its own writer and pool) writing for the same users at once number each sync log and
//! each conversation without gaps or repeats, and store a retry taken by two nodes at once once. And what a
//! send writes to the outboxes (pushes, callback events) in its commit, read straight from the tables.
//! Skipped when `DUET_TEST_POSTGRES_URL` is unset.

use std::collections::BTreeSet;
use std::sync::Arc;

use duet_core::model::event::{AfterEvent, EventKind};
use duet_core::model::{HistoryQuery, NewAccount, Outgoing, ReceiveOpt, SenderCopy, SettingsChange};
use duet_core::store::{AccountStore, MessageStore, SendOutcome, SendPlan};
use duet_store_postgres::PgStore;
use duet_store_postgres::testing::TestDb;
use tokio_postgres::NoTls;

const T: i64 = 1_700_000_000;
const WEEK: i64 = 604_800;

/// Message `n` from `from` to `to`, the store picking its `MsgSeq`; its dedup key starts with `n`.
fn plan(n: u32, from: &str, to: &str) -> SendPlan {
    let mut dedup_key = [0; 16];
    dedup_key[..4].copy_from_slice(&n.to_le_bytes());
    SendPlan {
        msg: Outgoing {
            from: from.to_owned(),
            to: vec![to.to_owned()],
            seq: None,
            random: n,
            body: format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"m{n}"}}}}]"#),
            cloud_custom_data: String::new(),
            push_info: None,
            lifetime_secs: WEEK as u32,
            sender_copy: SenderCopy::Sync,
            no_unread: false,
            no_last_msg: false,
            need_read_receipt: false,
        },
        time: T,
        dedup_key,
        dedup_since_ms: T * 1000 - 600_000,
        now_ms: T * 1000,
        offline_until: T + WEEK,
        max_conversations: 100,
        push: false,
        after_send: None,
    }
}

/// Two nodes on one fresh schema, with accounts `ids`.
async fn two_nodes(ids: &[&str]) -> Option<(TestDb, Arc<PgStore>, Arc<PgStore>)> {
    let db = TestDb::create().await?;
    let one = Arc::new(PgStore::open(&db.url()).await.expect("opening node one"));
    let two = Arc::new(PgStore::open(&db.url()).await.expect("opening node two"));
    let accounts = ids.iter().map(|&id| NewAccount { id: id.to_owned(), nick: None, face_url: None }).collect();
    one.import_accounts(accounts, T).await.unwrap();
    Some((db, one, two))
}

/// Every message of the conversation, as `a` sees it.
async fn conv_seqs(s: &PgStore, a: &str, b: &str) -> Vec<u64> {
    let q = HistoryQuery {
        operator: a.into(),
        peer: b.into(),
        min_time: 0,
        max_time: i64::MAX,
        before: None,
        limit: 100_000,
    };
    let mut seqs: Vec<u64> = s.history(q).await.unwrap().messages.iter().map(|m| m.conv_seq).collect();
    seqs.sort_unstable();
    seqs
}

async fn log_seqs(s: &PgStore, user: &str) -> Vec<u64> {
    s.log_after(user.into(), 0, 100_000, usize::MAX).await.unwrap().entries.iter().map(|e| e.seq).collect()
}

/// Sends from both nodes at once, many in flight on each, in both directions of one conversation and into a
/// second one: each sync log is numbered 1..=N, each conversation 1..=M, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_sending_for_the_same_users_number_without_gaps_or_repeats() {
    let Some((_db, one, two)) = two_nodes(&["a", "b", "c"]).await else {
        return;
    };
    const TASKS: u32 = 8;
    const EACH: u32 = 25;
    let mut handles = Vec::new();
    for (node_no, node) in [(0, &one), (1, &two)] {
        for task in 0..TASKS {
            let node = Arc::clone(node);
            handles.push(tokio::spawn(async move {
                for i in 0..EACH {
                    let n = node_no * 100_000 + task * 1000 + i;
                    // a<->b alternating, and every fourth from c to a (a's log has two writers' conversations).
                    let (from, to) = match i % 4 {
                        0 | 2 => ("a", "b"),
                        1 => ("b", "a"),
                        _ => ("c", "a"),
                    };
                    match node.send(plan(n, from, to)).await.unwrap() {
                        SendOutcome::Sent(sent) => assert!(sent.failed.is_empty() && sent.conv_seq > 0),
                        other => panic!("send {n}: {other:?}"),
                    }
                }
            }));
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    let total = u64::from(2 * TASKS * EACH);
    let with_c = u64::from(2 * TASKS * (EACH / 4));
    let ab = total - with_c;
    let expect = |n: u64| (1..=n).collect::<Vec<u64>>();
    for node in [&one, &two] {
        assert_eq!(log_seqs(node, "a").await, expect(total), "a's log");
        assert_eq!(log_seqs(node, "b").await, expect(ab), "b's log");
        assert_eq!(log_seqs(node, "c").await, expect(with_c), "c's log");
        assert_eq!(node.latest_seq("a".into()).await.unwrap(), Some(total));
        assert_eq!(conv_seqs(node, "a", "b").await, expect(ab), "a-b positions");
        assert_eq!(conv_seqs(node, "c", "a").await, expect(with_c), "c-a positions");
    }
    // The MsgSeqs the store picked are distinct in each conversation, and follow the storing order.
    let q = HistoryQuery {
        operator: "a".into(),
        peer: "b".into(),
        min_time: 0,
        max_time: i64::MAX,
        before: None,
        limit: 100_000,
    };
    let page = one.history(q).await.unwrap();
    let keys: BTreeSet<u32> = page.messages.iter().map(|m| m.key.seq).collect();
    assert_eq!(keys.len() as u64, ab);
    let mut by_position: Vec<_> = page.messages.iter().map(|m| (m.conv_seq, m.key.seq)).collect();
    by_position.sort_unstable();
    assert!(by_position.windows(2).all(|w| w[0].1 < w[1].1), "MsgSeq grows with the position");
}

/// The same send taken by both nodes at once (a client's retry reaching two nodes): stored once, and the
/// other node answers with the first's result.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_taken_by_two_nodes_at_once_is_stored_once() {
    let Some((_db, one, two)) = two_nodes(&["a", "b"]).await else {
        return;
    };
    const ROUNDS: u32 = 30;
    for n in 1..=ROUNDS {
        let (x, y) = tokio::join!(one.send(plan(n, "a", "b")), two.send(plan(n, "a", "b")));
        let (sent, dup) = match (x.unwrap(), y.unwrap()) {
            (SendOutcome::Sent(s), SendOutcome::Duplicate(d)) | (SendOutcome::Duplicate(d), SendOutcome::Sent(s)) => {
                (s, d)
            }
            other => panic!("round {n}: {other:?}"),
        };
        assert!(dup.duplicate && !sent.duplicate);
        assert_eq!((dup.key, dup.conv_seq, dup.sender_log_seq), (sent.key, sent.conv_seq, sent.sender_log_seq));
    }
    let all = (1..=u64::from(ROUNDS)).collect::<Vec<_>>();
    assert_eq!(conv_seqs(&one, "a", "b").await, all);
    assert_eq!(log_seqs(&two, "a").await, all);
    assert_eq!(log_seqs(&two, "b").await, all);
}

/// What a send writes beside the message in its commit: a push per device of each recipient (never the
/// sender's, never for a conversation whose receive option is not "receive"), and the after-send event
/// once (not for a retry).
#[tokio::test]
async fn a_send_writes_its_pushes_and_its_event_in_its_commit() {
    let Some((db, one, _two)) = two_nodes(&["a", "b"]).await else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(&db.url(), NoTls).await.unwrap();
    let conn = tokio::spawn(connection);
    client
        .batch_execute(
            "INSERT INTO push_devices (uid, device, platform, provider, token, seen_at) \
             SELECT uid, d, 'iOS', 'apns', user_id || d, 0 FROM accounts, unnest(ARRAY['phone', 'pad']) d",
        )
        .await
        .unwrap();
    let count = async |sql: &str| client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0);
    let event = AfterEvent {
        user: "a".into(),
        time_ms: T * 1000,
        platform: "RESTAPI".into(),
        client_ip: None,
        kind: EventKind::StateChange { action: "Login".into(), reason: "Register".into() },
    };
    let pushed = SendPlan { push: true, after_send: Some(event), ..plan(1, "a", "b") };
    assert!(matches!(one.send(pushed.clone()).await.unwrap(), SendOutcome::Sent(_)));
    assert!(matches!(one.send(pushed).await.unwrap(), SendOutcome::Duplicate(_)));
    let to_b = "SELECT count(*) FROM push_outbox p JOIN accounts a USING (uid) WHERE a.user_id = 'b'";
    assert_eq!(count(to_b).await, 2, "one per device of the recipient");
    assert_eq!(count("SELECT count(*) FROM push_outbox").await, 2, "none to the sender");
    assert_eq!(count("SELECT count(*) FROM callback_outbox").await, 1, "the event, once");

    let quiet = SettingsChange { receive: Some(ReceiveOpt::NotReceive), ..SettingsChange::default() };
    one.update_conversation("b".into(), "a".into(), quiet, T, T + WEEK).await.unwrap();
    one.send(SendPlan { push: true, ..plan(2, "a", "b") }).await.unwrap();
    assert_eq!(count(to_b).await, 2, "nothing for a conversation b does not receive");
    one.send(SendPlan { push: false, ..plan(3, "b", "a") }).await.unwrap();
    assert_eq!(count("SELECT count(*) FROM push_outbox").await, 2, "nothing when the plan says no push");
    drop(client);
    conn.await.unwrap().unwrap();
}

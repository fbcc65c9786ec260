//! `duet_store_sqlite::backup` on a store that keeps committing sends while it is copied: every copy is one
//! snapshot of the database, holds every send acknowledged before it began, passes `backup::check`; and
//! `check` and the summaries refuse what is not a database of theirs.

use std::sync::Arc;
use std::time::Duration;

use duet_core::model::{NewAccount, Outgoing, SenderCopy};
use duet_core::store::{AccountStore, MessageStore, SendOutcome, SendPlan};
use duet_store_sqlite::backup::{self, BackupError};
use duet_store_sqlite::{Durability, SCHEMA_VERSION, SqliteMediaIndex, SqliteStore};

const T: i64 = 1_700_000_000;

fn plan(n: u32) -> SendPlan {
    let mut dedup_key = [0; 16];
    dedup_key[..4].copy_from_slice(&n.to_le_bytes());
    SendPlan {
        msg: Outgoing {
            from: "a".into(),
            to: vec!["b".into()],
            seq: None,
            random: n,
            body: format!(r#"[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"m{n}"}}}}]"#),
            cloud_custom_data: String::new(),
            push_info: None,
            lifetime_secs: 604_800,
            sender_copy: SenderCopy::Sync,
            no_unread: false,
            no_last_msg: false,
            need_read_receipt: false,
        },
        time: T,
        dedup_key,
        dedup_since_ms: T * 1000 - 600_000,
        now_ms: T * 1000,
        offline_until: T + 604_800,
        max_conversations: 100,
        push: false,
        after_send: None,
    }
}

/// One integer from the database at `path`.
fn int(path: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_taken_while_sends_commit_is_one_snapshot_with_every_acknowledged_send() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("duet.db");
    let store = Arc::new(SqliteStore::open(&path, Durability::Fsync).unwrap());
    // Enough rows that a copy takes a while (~10 MB), during which the sender goes on committing.
    let many = (0..100_000).map(|i| NewAccount { id: format!("user{i:06}"), nick: None, face_url: None }).collect();
    store.import_accounts(many, T).await.unwrap();
    let pair = ["a", "b"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None }).to_vec();
    store.import_accounts(pair, T).await.unwrap();

    // One sender, one send at a time: `acked` is how many were acknowledged.
    let (acked_tx, mut acked) = tokio::sync::watch::channel(0u32);
    let (stop_tx, mut stop) = tokio::sync::oneshot::channel::<()>();
    let sender = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 1.. {
                match store.send(plan(n)).await.unwrap() {
                    SendOutcome::Sent(_) => acked_tx.send_replace(n),
                    other => panic!("send {n}: {other:?}"),
                };
                if stop.try_recv().is_ok() {
                    break;
                }
            }
        })
    };

    let mut copied_meanwhile = Vec::new();
    for round in 0..4 {
        let want = 20 * (round + 1);
        tokio::time::timeout(Duration::from_secs(30), acked.wait_for(|n| *n >= want)).await.unwrap().unwrap();
        let before = *acked.borrow();
        let copy = dir.path().join(format!("copy{round}.db"));
        let (src, dest) = (path.clone(), copy.clone());
        let copied = tokio::task::spawn_blocking(move || backup::copy(&src, &dest)).await.unwrap().unwrap();
        let after = *acked.borrow();
        copied_meanwhile.push(after - before);
        assert_eq!(copied.bytes, std::fs::metadata(&copy).unwrap().len());

        backup::check(&copy).unwrap();
        let summary = backup::store_summary(&copy).unwrap();
        assert_eq!(summary.schema_version, SCHEMA_VERSION);
        assert_eq!(summary.accounts, 100_002);
        // Every send acknowledged before the copy began, and at most the one in flight when it ended.
        let messages = u32::try_from(summary.messages).unwrap();
        assert!((before..=after + 1).contains(&messages), "copied {messages}, acked {before} before, {after} after");
        // One snapshot: the conversation's counter, its messages' positions and both sync logs agree.
        assert_eq!(int(&copy, "SELECT seq FROM threads"), i64::from(messages));
        assert_eq!(int(&copy, "SELECT max(conv_seq) FROM messages"), i64::from(messages));
        for user in ["a", "b"] {
            let log = |what: &str| {
                int(
                    &copy,
                    &format!(
                        "SELECT {what} FROM inbox WHERE uid = (SELECT uid FROM accounts WHERE user_id = '{user}')"
                    ),
                )
            };
            assert_eq!((log("count(*)"), log("max(seq)")), (i64::from(messages), i64::from(messages)), "{user}");
        }
        let unread = "SELECT unread FROM conversations WHERE owner = (SELECT uid FROM accounts WHERE user_id = 'b')";
        assert_eq!(int(&copy, unread), i64::from(messages));
    }
    stop_tx.send(()).unwrap();
    sender.await.unwrap();
    eprintln!("sends acknowledged while each copy ran: {copied_meanwhile:?}");

    // A copy never overwrites a file, and needs its source.
    let taken = dir.path().join("copy0.db");
    assert!(matches!(backup::copy(&path, &taken), Err(BackupError::Exists(p)) if p == taken));
    let nowhere = dir.path().join("nowhere.db");
    assert!(matches!(backup::copy(&nowhere, &dir.path().join("x.db")), Err(BackupError::Missing(_))));
}

#[tokio::test]
async fn check_and_the_summaries_refuse_what_is_not_their_database() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = backup::check(&garbage).unwrap_err();
    assert!(matches!(err, BackupError::NotADatabase { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{} is not a SQLite database", garbage.display()));
    assert!(matches!(backup::store_summary(&garbage), Err(BackupError::NotADatabase { .. })));

    // A media index is a SQLite database, but not a store's.
    let media = dir.path().join("media.db");
    drop(SqliteMediaIndex::open(&media).unwrap());
    backup::check(&media).unwrap();
    assert_eq!(backup::media_summary(&media).unwrap(), backup::MediaSummary { uploads: 0, blobs: Vec::new() });
    assert!(matches!(backup::store_summary(&media), Err(BackupError::Read { .. })));

    // A store newer than this build.
    let newer = dir.path().join("duet.db");
    drop(SqliteStore::open(&newer, Durability::Relaxed).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    let err = backup::store_summary(&newer).unwrap_err();
    assert!(
        matches!(err, BackupError::NewerSchema { found, known, .. } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION)
    );
}

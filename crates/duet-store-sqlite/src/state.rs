//! The writer's memory: what the writer thread keeps between jobs so that a send is plain inserts and
//! updates (uids, senders' profiles, each user's last sync-log position, each conversation's counters),
//! the dedup table's index, and the messages waiting for the search index. One [`WriterState`] lives on the writer thread, which passes it `&mut` to
//! every job of a batch and, once the batch is over, either [`WriterState::commit`]s it (the batch
//! committed: what it changed stays) or [`WriterState::rollback`]s it (the batch was rolled back: the
//! memory goes back to what the tables hold). It is neither `Send` nor `Sync`: no other thread, and no
//! read connection, can see it.

use std::collections::HashMap;

use duet_core::model::SenderInfo;
use rusqlite::{Connection, Result};

/// Entries each cache holds at most; a full cache starts over (every entry can be read back from the
/// database), so memory stays bounded however many users and conversations there are.
const CACHE_MAX: usize = 1 << 18;

pub(crate) struct WriterState {
    /// UserID -> uid. Uids never change while an account exists; entries go with their account.
    pub(crate) uids: HashMap<String, i64>,
    /// uid -> nickname and avatar. Every profile write forgets the user's entry.
    pub(crate) senders: HashMap<i64, SenderInfo>,
    /// uid -> the last sequence number of the user's sync log, so that an append is one insert. Read on
    /// first use from `ops::LATEST_SEQ`.
    pub(crate) log_seqs: HashMap<i64, i64>,
    /// (lo, hi) -> the conversation's counters (the writer makes every change to `threads`), so that
    /// taking the next position is a plain update.
    pub(crate) threads: HashMap<(i64, i64), Thread>,
    /// The dedup table's index.
    pub(crate) dedup: DedupIndex,
    /// The messages stored but not yet in the search index.
    pub(crate) search: crate::search::Queue,
    /// Whether a job of the current batch failed after writing: the batch must be rolled back whole.
    poisoned: bool,
    /// Makes it neither `Send` nor `Sync`: the writer thread builds it and keeps it to itself.
    _single_thread: std::marker::PhantomData<*const ()>,
}

/// A conversation's counters (a row of `threads`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Thread {
    /// The last position taken (`conv_seq`).
    pub(crate) conv_seq: u64,
    /// The last `MsgSeq` the store picked for a message that had none.
    pub(crate) key_seq: u32,
    /// The latest time of a message in the conversation (a send is never dated before it).
    pub(crate) last_time: i64,
    /// Whether the row exists.
    pub(crate) stored: bool,
}

impl Thread {
    /// The `MsgSeq` the next message without one gets. (Wrapping: only same-second order at the wrap,
    /// four billion messages into a conversation, would suffer.)
    pub(crate) fn next_key_seq(&self) -> u32 {
        self.key_seq.wrapping_add(1)
    }
}

/// The dedup table's index: the first 8 bytes of each key -> the row with the first result. Complete (not
/// a cache): loaded at start, extended by every send, pruned by the purge.
#[derive(Default)]
pub(crate) struct DedupIndex {
    rows: HashMap<u64, i64>,
    /// This batch's changes to `rows`: the key and the row it pointed to before.
    undo: Vec<(u64, Option<i64>)>,
}

impl DedupIndex {
    /// The row of the send whose key starts like `key`'s.
    pub(crate) fn get(&self, short: u64) -> Option<i64> {
        self.rows.get(&short).copied()
    }

    /// Points `short` at `row`, undone if the batch is rolled back.
    pub(crate) fn insert(&mut self, short: u64, row: i64) {
        let before = self.rows.insert(short, row);
        self.undo.push((short, before));
    }

    /// Forgets the rows before `boundary` (a purge deleted them). Not undone by a rollback: the purge
    /// deletes only rows older than the dedup window, which no send counts as a first result, and the next
    /// purge deletes them again.
    pub(crate) fn forget_before(&mut self, boundary: i64) {
        self.rows.retain(|_, id| *id >= boundary);
    }
}

/// The first 8 bytes of a dedup key, the index's key.
pub(crate) fn dedup_short(key: &[u8; 16]) -> u64 {
    u64::from_le_bytes([key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7]])
}

/// Inserts into a cache, starting it over when full (see [`CACHE_MAX`]).
pub(crate) fn remember<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= CACHE_MAX {
        map.clear();
    }
    map.insert(key, value);
}

impl WriterState {
    /// The writer's memory at start: empty caches and the dedup index loaded from its table.
    pub(crate) fn load(c: &Connection) -> Result<WriterState> {
        let mut rows = HashMap::new();
        let mut stmt = c.prepare("SELECT id, key FROM dedup ORDER BY id")?;
        let mut found = stmt.query([])?;
        while let Some(r) = found.next()? {
            let key: Vec<u8> = r.get(1)?;
            if let Ok(key) = <[u8; 16]>::try_from(key.as_slice()) {
                rows.insert(dedup_short(&key), r.get(0)?);
            }
        }
        Ok(WriterState {
            uids: HashMap::new(),
            senders: HashMap::new(),
            log_seqs: HashMap::new(),
            threads: HashMap::new(),
            dedup: DedupIndex { rows, undo: Vec::new() },
            search: crate::search::Queue::default(),
            poisoned: false,
            _single_thread: std::marker::PhantomData,
        })
    }

    /// Marks the current batch as failed after writing: it must be rolled back whole.
    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Whether a job of the current batch failed after writing.
    pub(crate) fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// The batch committed: what it changed stays.
    pub(crate) fn commit(&mut self) {
        self.dedup.undo.clear();
        self.search.commit();
        self.poisoned = false;
    }

    /// The batch was rolled back: the caches, which may hold what it wrote, are emptied (they refill from
    /// the tables), the dedup index is put back as it was before the batch, and so is the search queue.
    pub(crate) fn rollback(&mut self) {
        self.search.rollback();
        self.uids.clear();
        self.senders.clear();
        self.log_seqs.clear();
        self.threads.clear();
        while let Some((key, before)) = self.dedup.undo.pop() {
            match before {
                Some(id) => self.dedup.rows.insert(key, id),
                None => self.dedup.rows.remove(&key),
            };
        }
        self.poisoned = false;
    }
}

#[cfg(test)]
mod tests {
    use duet_core::model::{Delivery, NewAccount, Outgoing, ProfileValue, SenderCopy, TAG_NICK};
    use duet_core::store::{SendOutcome, SendPlan};
    use rusqlite::Connection;

    use super::WriterState;
    use crate::ops;

    const T0: i64 = 1_700_000_000_000;

    fn open() -> (Connection, WriterState) {
        let c = Connection::open_in_memory().unwrap();
        crate::migrate(&c).unwrap();
        c.execute_batch(crate::relations::SCHEMA).unwrap();
        let w = WriterState::load(&c).unwrap();
        (c, w)
    }

    /// Runs `f` as one batch, committed or rolled back as the writer does.
    fn batch<R>(
        c: &Connection,
        w: &mut WriterState,
        commit: bool,
        f: impl FnOnce(&Connection, &mut WriterState) -> rusqlite::Result<R>,
    ) -> R {
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        let r = f(c, w).unwrap();
        if commit {
            c.execute_batch("COMMIT").unwrap();
            w.commit();
        } else {
            c.execute_batch("ROLLBACK").unwrap();
            w.rollback();
        }
        r
    }

    fn account(id: &str) -> NewAccount {
        NewAccount { id: id.into(), nick: None, face_url: None }
    }

    /// A send from `a` to `to`, its dedup key starting with `n`, its `MsgSeq` picked by the store.
    fn plan(n: u8, to: &[&str], now_ms: i64) -> SendPlan {
        let mut dedup_key = [0; 16];
        dedup_key[0] = n;
        SendPlan {
            msg: Outgoing {
                from: "a".into(),
                to: to.iter().map(|&t| t.to_owned()).collect(),
                seq: None,
                random: u32::from(n),
                body: r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]"#.into(),
                cloud_custom_data: String::new(),
                push_info: None,
                lifetime_secs: 604_800,
                sender_copy: SenderCopy::Sync,
                no_unread: false,
                no_last_msg: false,
                need_read_receipt: false,
            },
            time: now_ms / 1000,
            dedup_key,
            dedup_since_ms: now_ms - 600_000,
            now_ms,
            offline_until: now_ms / 1000 + 604_800,
            max_conversations: 100,
            push: false,
            after_send: None,
        }
    }

    /// Every row of the tables a send or an account touches, in a stable order.
    fn dump(c: &Connection) -> Vec<String> {
        let mut rows = Vec::new();
        for table in ["accounts", "profiles", "messages", "threads", "inbox", "conversations", "dedup"] {
            let mut stmt = c.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let columns = stmt.column_count();
            let mut found = stmt.query([]).unwrap();
            while let Some(r) = found.next().unwrap() {
                let values: Vec<_> = (0..columns).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect();
                rows.push(format!("{table}: {}", values.join(", ")));
            }
        }
        rows.sort();
        rows
    }

    /// What the batch after the failed one does: a retry of the first send, a new account, and a send to
    /// the account the failed batch created (and lost), the new one and `b`.
    fn after(c: &Connection, w: &mut WriterState) -> (SendOutcome, Vec<(SendOutcome, Vec<Delivery>)>) {
        batch(c, w, true, |c, w| {
            let (retry, _) = ops::send(c, w, &plan(1, &["b"], T0 + 2_000))?;
            ops::import_accounts(c, w, &[account("d")], 2)?;
            let next = ops::send(c, w, &plan(3, &["b", "c", "d"], T0 + 3_000))?;
            Ok((retry, vec![next]))
        })
    }

    /// A batch that fails after a send (and after creating an account and changing a profile) leaves the
    /// next batch's dedup, sync-log positions, conversation counters, uid and sender caches exactly as if
    /// it never ran: the same outcomes, the same entries, the same rows, the same dedup index.
    #[test]
    fn a_rolled_back_batch_leaves_the_memory_as_if_it_never_ran() {
        let mut timelines = Vec::new();
        for fail_a_batch in [false, true] {
            let (c, mut w) = open();
            batch(&c, &mut w, true, |c, w| ops::import_accounts(c, w, &[account("a"), account("b")], 1));
            let (first, _) = batch(&c, &mut w, true, |c, w| ops::send(c, w, &plan(1, &["b"], T0)));
            assert!(matches!(first, SendOutcome::Sent(_)), "{first:?}");
            if fail_a_batch {
                batch(&c, &mut w, false, |c, w| {
                    ops::import_accounts(c, w, &[account("c")], 1)?;
                    ops::set_profile(c, w, "a", &[(TAG_NICK.to_owned(), ProfileValue::Text("Ann".into()))], None)?;
                    // Another dedup key with the same first 8 bytes: it takes the first send's entry over.
                    let mut colliding = plan(1, &["b", "c"], T0 + 1_000);
                    colliding.dedup_key[15] = 9;
                    let (outcome, deliveries) = ops::send(c, w, &colliding)?;
                    assert!(matches!(outcome, SendOutcome::Sent(_)) && deliveries.len() == 4, "{outcome:?}");
                    ops::set_read(c, w, "b", "a", T0 / 1000, T0 / 1000 + 604_800, None)?;
                    Ok(())
                });
                assert!(w.dedup.undo.is_empty() && !w.poisoned());
                assert!(w.uids.is_empty() && w.senders.is_empty() && w.log_seqs.is_empty() && w.threads.is_empty());
            }
            let (retry, next) = after(&c, &mut w);
            timelines.push((retry, next, dump(&c), w.dedup.rows.clone()));
        }
        let (clean, failed) = (&timelines[0], &timelines[1]);
        assert_eq!(clean.0, failed.0, "the retry");
        assert_eq!(clean.1, failed.1, "the next send and its entries");
        assert_eq!(clean.2, failed.2, "the tables");
        assert_eq!(clean.3, failed.3, "the dedup index");

        let SendOutcome::Duplicate(retry) = &failed.0 else { panic!("{:?}", failed.0) };
        assert_eq!((retry.conv_seq, retry.sender_log_seq), (1, 1), "the first send's result");
        let (SendOutcome::Sent(next), deliveries) = &failed.1[0] else { panic!("{:?}", failed.1) };
        assert_eq!(next.failed, ["c"], "the rolled-back account is unknown");
        assert_eq!((next.key.seq, next.conv_seq, next.sender_log_seq), (2, 2, 2));
        let seqs: Vec<_> = deliveries.iter().map(|d| (d.user.as_str(), d.entry.seq)).collect();
        assert_eq!(seqs, [("b", 2), ("a", 2), ("d", 1), ("a", 3)]);
    }

    /// Sends queue their messages for the search index instead of indexing them: a rolled-back batch's
    /// leave the queue, an index flush that is rolled back leaves the queue whole, a committed one empties it
    /// and records the last message indexed. A crash (the writer's memory lost) leaves the messages past
    /// that mark out of the index until `catch_up` indexes them, also after a purge of the newest messages
    /// let SQLite give their ids out again.
    #[test]
    fn the_search_queue_follows_the_batches_and_a_crash_is_caught_up() {
        use duet_core::store::Cutoffs;
        let rows = |c: &Connection| c.query_row("SELECT count(*) FROM message_search", [], |r| r.get::<_, i64>(0));
        let mark = |c: &Connection| c.query_row("SELECT upto FROM search_mark", [], |r| r.get::<_, i64>(0));
        let (c, mut w) = open();
        batch(&c, &mut w, true, |c, w| ops::import_accounts(c, w, &[account("a"), account("b")], 1));
        batch(&c, &mut w, true, |c, w| {
            ops::send(c, w, &plan(1, &["b"], T0))?;
            ops::send(c, w, &plan(2, &["b"], T0 + 1))
        });
        batch(&c, &mut w, false, |c, w| ops::send(c, w, &plan(3, &["b"], T0 + 2)));
        assert_eq!((rows(&c).unwrap(), w.search.len()), (0, 2), "queued, the rolled-back send's gone");
        batch(&c, &mut w, false, |c, w| w.search.flush(c));
        assert_eq!((rows(&c).unwrap(), w.search.len(), mark(&c).unwrap()), (0, 2, 0), "a rolled-back flush");
        batch(&c, &mut w, true, |c, w| w.search.flush(c));
        assert_eq!((rows(&c).unwrap(), w.search.len(), mark(&c).unwrap()), (2, 0, 2));

        // The writer dies with two messages queued; the next start indexes them.
        batch(&c, &mut w, true, |c, w| {
            ops::send(c, w, &plan(4, &["b"], T0 + 3))?;
            ops::send(c, w, &plan(5, &["b"], T0 + 4))
        });
        drop(w);
        assert_eq!(crate::search::catch_up(&c).unwrap(), 2);
        assert_eq!((rows(&c).unwrap(), mark(&c).unwrap()), (4, 4));
        assert_eq!(crate::search::catch_up(&c).unwrap(), 0, "nothing is indexed twice");

        // A purge of every message, then a send queued and lost: it takes id 1 again, below the mark of
        // before the purge, and is still found missing.
        let mut w = WriterState::load(&c).unwrap();
        batch(&c, &mut w, true, |c, w| ops::send(c, w, &plan(6, &["b"], T0 + 5)));
        let cut = Cutoffs { roaming_before: i64::MAX, offline_before: 0, dedup_before_ms: 0 };
        let purged = batch(&c, &mut w, true, |c, w| ops::purge(c, w, cut));
        assert_eq!((purged.messages, rows(&c).unwrap(), w.search.len(), mark(&c).unwrap()), (5, 0, 0, 0));
        let (ops_outcome, _) = batch(&c, &mut w, true, |c, w| ops::send(c, w, &plan(7, &["b"], T0 + 6)));
        assert!(matches!(ops_outcome, duet_core::store::SendOutcome::Sent(_)), "{ops_outcome:?}");
        assert_eq!(c.query_row("SELECT max(id) FROM messages", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
        drop(w);
        assert_eq!(crate::search::catch_up(&c).unwrap(), 1);
        assert_eq!((rows(&c).unwrap(), mark(&c).unwrap()), (1, 1));
    }

    /// A committed batch's dedup entries stay; a rolled-back one's go, and the entries they replaced come
    /// back.
    #[test]
    fn commit_keeps_the_dedup_index_and_rollback_restores_it() {
        let (c, mut w) = open();
        batch(&c, &mut w, true, |c, w| ops::import_accounts(c, w, &[account("a"), account("b")], 1));
        batch(&c, &mut w, true, |c, w| ops::send(c, w, &plan(1, &["b"], T0)));
        let committed = w.dedup.rows.clone();
        assert_eq!(committed.len(), 1);
        batch(&c, &mut w, false, |c, w| {
            let mut colliding = plan(1, &["b"], T0 + 1);
            colliding.dedup_key[15] = 9;
            ops::send(c, w, &colliding)?;
            ops::send(c, w, &plan(2, &["b"], T0 + 2))
        });
        assert_eq!(w.dedup.rows, committed);
        batch(&c, &mut w, true, |c, w| ops::send(c, w, &plan(2, &["b"], T0 + 3)));
        assert_eq!(w.dedup.rows.len(), 2);
        assert!(w.dedup.undo.is_empty());
    }
}

//! [`Sequencer`]: the at-least-once delivery rules of the sync log, with no I/O so they can be tested
//! alone.
//!
//! The cursor is the highest `seq` applied. A live entry is applied only when it is `cursor + 1`; one at
//! or below the cursor is a duplicate and dropped (the app must see each entry once); one beyond is a
//! gap: it waits in a buffer while the client pulls `sync` from the cursor, and is released once the
//! entries before it have been applied. Entries from a `sync` answer are authoritative: the cursor may
//! jump over seqs the log no longer holds (retention).

use std::collections::BTreeMap;

use duet_proto::client::Entry;

/// What to do with a live entry.
#[derive(Debug)]
pub(crate) enum Live {
    /// Apply these, in order: the entry and any buffered ones that now follow it.
    Apply(Vec<Entry>),
    /// At or below the cursor: already applied.
    Duplicate,
    /// Buffered behind a gap: pull `sync` from the cursor.
    Gap,
}

/// What follows the last page of a sync round.
#[derive(Debug)]
pub(crate) struct Finish {
    /// Buffered entries to apply now, in order.
    pub(crate) ready: Vec<Entry>,
    /// Buffered entries still wait behind a gap the round could not cover: pull again from the cursor.
    pub(crate) again: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    cursor: u64,
    buffer: BTreeMap<u64, Entry>,
}

impl Sequencer {
    pub(crate) fn new(cursor: u64) -> Sequencer {
        Sequencer { cursor, buffer: BTreeMap::new() }
    }

    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Whether entries wait behind a gap.
    #[cfg(test)]
    pub(crate) fn has_gap(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// A live entry with `seq > 0` (online-only entries bypass the sequencer).
    pub(crate) fn live(&mut self, entry: Entry) -> Live {
        let seq = entry.seq();
        if seq <= self.cursor {
            return Live::Duplicate;
        }
        if seq > self.cursor + 1 {
            self.buffer.insert(seq, entry);
            return Live::Gap;
        }
        self.cursor = seq;
        let mut out = vec![entry];
        self.drain_into(&mut out);
        Live::Apply(out)
    }

    /// One page of a `sync` answer: every entry newer than the cursor, in `seq` order, then whatever
    /// buffered entries now follow.
    pub(crate) fn synced(&mut self, mut entries: Vec<Entry>) -> Vec<Entry> {
        entries.sort_by_key(Entry::seq);
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let seq = e.seq();
            if seq <= self.cursor {
                continue;
            }
            if seq > self.cursor + 1 {
                tracing::debug!(cursor = self.cursor, seq, "sync skips seqs the log no longer holds");
            }
            self.cursor = seq;
            out.push(e);
        }
        self.drain_into(&mut out);
        out
    }

    /// The last page of a round has been applied, and the log's last seq was `latest` when the server
    /// answered. Buffered entries at or below `latest` were covered by the round: any seq still missing
    /// before them is gone from the log, so they are released in order. Entries beyond `latest` arrived
    /// after the server answered; if a gap remains before them, pull again.
    pub(crate) fn finish(&mut self, latest: u64) -> Finish {
        let mut out = Vec::new();
        self.drain_into(&mut out);
        while let Some(entry) = self.buffer.first_entry() {
            if *entry.key() > latest {
                break;
            }
            let e = entry.remove();
            tracing::debug!(
                cursor = self.cursor,
                seq = e.seq(),
                "releasing an entry past seqs the log no longer holds"
            );
            self.cursor = e.seq();
            out.push(e);
            self.drain_into(&mut out);
        }
        Finish { ready: out, again: !self.buffer.is_empty() }
    }

    fn drain_into(&mut self, out: &mut Vec<Entry>) {
        while let Some(entry) = self.buffer.first_entry() {
            let seq = *entry.key();
            if seq <= self.cursor {
                entry.remove();
            } else if seq == self.cursor + 1 {
                out.push(entry.remove());
                self.cursor = seq;
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(seq: u64) -> Entry {
        Entry::Read { seq, peer: "alice".into(), time: seq as i64 }
    }

    fn seqs(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(Entry::seq).collect()
    }

    fn applied(live: Live) -> Vec<u64> {
        match live {
            Live::Apply(v) => seqs(&v),
            other => panic!("expected entries to apply, got {other:?}"),
        }
    }

    #[test]
    fn in_order_entries_apply_and_duplicates_drop() {
        let mut s = Sequencer::new(4);
        assert_eq!(applied(s.live(e(5))), vec![5]);
        assert_eq!(applied(s.live(e(6))), vec![6]);
        assert!(matches!(s.live(e(6)), Live::Duplicate));
        assert!(matches!(s.live(e(2)), Live::Duplicate));
        assert_eq!(s.cursor(), 6);
    }

    #[test]
    fn a_gap_buffers_until_sync_fills_it() {
        let mut s = Sequencer::new(10);
        assert!(matches!(s.live(e(13)), Live::Gap));
        assert!(matches!(s.live(e(14)), Live::Gap));
        assert!(matches!(s.live(e(13)), Live::Gap), "a repeated buffered entry stays buffered once");
        assert_eq!(s.cursor(), 10, "nothing newer is applied before the gap is filled");
        assert!(s.has_gap());
        // The sync answer carries 11..13; 13 is applied once, then the buffered 14 follows.
        let out = s.synced(vec![e(11), e(12), e(13)]);
        assert_eq!(seqs(&out), vec![11, 12, 13, 14]);
        assert_eq!(s.cursor(), 14);
        assert!(!s.has_gap());
        let f = s.finish(14);
        assert!(f.ready.is_empty() && !f.again);
    }

    #[test]
    fn a_live_entry_that_fills_the_gap_releases_the_buffer() {
        let mut s = Sequencer::new(0);
        assert!(matches!(s.live(e(3)), Live::Gap));
        assert!(matches!(s.live(e(2)), Live::Gap));
        assert_eq!(applied(s.live(e(1))), vec![1, 2, 3]);
        // The sync started for the gap then answers with what was applied already: all duplicates.
        assert!(s.synced(vec![e(1), e(2), e(3)]).is_empty());
    }

    #[test]
    fn sync_pages_jump_over_expired_seqs_and_skip_applied_ones() {
        let mut s = Sequencer::new(0);
        // A fresh device: the log starts at 57 (older entries expired); pages may come unsorted.
        assert_eq!(seqs(&s.synced(vec![e(58), e(57)])), vec![57, 58]);
        assert_eq!(seqs(&s.synced(vec![e(58), e(59)])), vec![59]);
        assert_eq!(s.cursor(), 59);
    }

    #[test]
    fn finish_releases_entries_the_round_covered_and_pulls_again_for_newer_ones() {
        // 11 expired from the log: the round answered up to latest 12 without it.
        let mut s = Sequencer::new(10);
        assert!(matches!(s.live(e(12)), Live::Gap));
        assert!(s.synced(vec![]).is_empty());
        let f = s.finish(12);
        assert_eq!(seqs(&f.ready), vec![12], "12 was covered by the round");
        assert!(!f.again);

        // The server answered with latest 20 before 22 was appended, and 21 was lost in between.
        let mut s = Sequencer::new(19);
        assert!(matches!(s.live(e(22)), Live::Gap));
        assert_eq!(seqs(&s.synced(vec![e(20)])), vec![20]);
        let f = s.finish(20);
        assert!(f.ready.is_empty() && f.again);
        assert_eq!(s.cursor(), 20);
        assert_eq!(seqs(&s.synced(vec![e(21), e(22)])), vec![21, 22]);
        let f = s.finish(22);
        assert!(f.ready.is_empty() && !f.again);
    }

    #[test]
    fn every_entry_is_applied_exactly_once_whatever_the_arrival_order() {
        // Deliver 1..=30 live with duplicates and reordering, then a sync of everything: each seq
        // comes out once, in order.
        let order: Vec<u64> = (1..=30)
            .flat_map(|i| {
                let j = (i * 7) % 30 + 1;
                [j, i, j]
            })
            .collect();
        let mut s = Sequencer::new(0);
        let mut out = Vec::new();
        for seq in order {
            if let Live::Apply(v) = s.live(e(seq)) {
                out.extend(seqs(&v));
            }
        }
        out.extend(seqs(&s.synced((1..=30).map(e).collect())));
        out.extend(seqs(&s.finish(30).ready));
        assert_eq!(out, (1..=30).collect::<Vec<_>>());
    }
}

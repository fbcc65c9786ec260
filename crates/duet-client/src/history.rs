//! When the local store can answer a history page by itself.
//!
//! A conversation's messages are ordered as the server's history orders them: by time, then `MsgSeq`,
//! then `MsgRandom` (a message's [`Position`]). They are also numbered by `conv_seq`, from 1 without
//! gaps, in the order the server stored them. The two orders differ when a message is imported into the
//! conversation's past, so holding consecutive `conv_seq`s says nothing about which positions are held.
//!
//! What the client knows it holds of a conversation is its [`Coverage`]: every message numbered up to
//! `through` whose position is at or after `from`. It is established by the server's answers (a history
//! page says the conversation's highest `conv_seq` when it was read) and by the first message of a
//! conversation (`conv_seq` 1), and grows with every message stored whose `conv_seq` is the next one.
//! `known` is the highest `conv_seq` the client has heard of (from messages, history pages and the
//! conversation list). A page is answered locally only when nothing numbered above `through` is known
//! to exist, and the page lies within `from`.

use crate::model::Message;

/// Where a message sits in its conversation's history: (time, `MsgSeq`, `MsgRandom`).
pub type Position = (i64, u32, u32);

impl Message {
    /// Where the message sits in its conversation's history (the server's order).
    pub(crate) fn position(&self) -> Position {
        (self.time, self.seq, self.random)
    }
}

/// Which positions of a conversation a [`Coverage`] speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// None yet.
    Nothing,
    /// Those at or after this one.
    From(Position),
    /// All, from the conversation's beginning.
    All,
}

impl Held {
    fn includes(self, at: Position) -> bool {
        match self {
            Held::Nothing => false,
            Held::From(from) => at >= from,
            Held::All => true,
        }
    }

    /// Whether this speaks for every position `other` speaks for.
    fn reaches(self, other: Held) -> bool {
        match (self, other) {
            (_, Held::Nothing) | (Held::All, _) => true,
            (Held::From(a), Held::From(b)) => a <= b,
            _ => false,
        }
    }
}

/// What the local store is known to hold of one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Which positions this speaks for.
    pub held: Held,
    /// Every message positioned where `held` says and numbered up to this `conv_seq` is held.
    pub through: u64,
    /// The highest `conv_seq` known to exist.
    pub known: u64,
}

impl Default for Coverage {
    fn default() -> Coverage {
        Coverage { held: Held::Nothing, through: 0, known: 0 }
    }
}

impl Coverage {
    /// A message numbered `conv_seq` exists.
    pub fn heard_of(&mut self, conv_seq: u64) {
        self.known = self.known.max(conv_seq);
    }

    /// The server answered a page of the messages positioned before `before` (`None`: the newest page) with
    /// `page` (newest first, now stored); `complete`: nothing older exists; `conv_seq`: the conversation's
    /// highest `conv_seq` when the page was read. Records what that proves.
    pub fn server_page(&mut self, before: Option<Position>, page: &[Message], complete: bool, conv_seq: u64) {
        self.heard_of(conv_seq);
        let reached = match (complete, page.last()) {
            (true, _) => Held::All,
            (false, Some(oldest)) => Held::From(oldest.position()),
            (false, None) => return,
        };
        match before {
            // Every message up to `conv_seq` positioned at or after the page's oldest is in the page.
            None => {
                let fresh = Coverage { held: reached, through: conv_seq, known: self.known };
                if !(self.through >= fresh.through && self.held.reaches(fresh.held)) {
                    *self = fresh;
                }
            }
            // The page continues what is covered: the coverage reaches back as far, up to what both hold.
            Some(before) if self.held.includes(before) => {
                if reached.reaches(self.held) {
                    self.held = reached;
                }
                self.through = self.through.min(conv_seq);
            }
            // Between the cursor and what is covered lies the unknown: the page proves nothing more.
            Some(_) => {}
        }
    }

    /// A message numbered `conv_seq` was stored.
    pub fn stored(&mut self, conv_seq: u64) {
        self.heard_of(conv_seq);
        if self.held == Held::Nothing && conv_seq == 1 {
            // The conversation's first message: nothing can be positioned before what is held.
            *self = Coverage { held: Held::All, through: 0, known: self.known };
        }
    }

    /// Moves `through` up over the stored `conv_seq`s that follow it; `held_above` lists the stored
    /// `conv_seq`s above `through`, ascending.
    pub fn extend(&mut self, held_above: impl IntoIterator<Item = u64>) {
        if self.held == Held::Nothing {
            return;
        }
        for held in held_above {
            if held == self.through + 1 {
                self.through = held;
            } else if held > self.through {
                break;
            }
        }
    }

    /// The page of `count` messages positioned before some cursor, if `local` (the stored messages
    /// positioned before it, newest first, at most `count`) is all of it.
    pub fn page(&self, count: usize, local: Vec<Message>) -> Option<Vec<Message>> {
        if self.held == Held::Nothing || self.through < self.known {
            return None;
        }
        let whole = match local.get(count.saturating_sub(1)) {
            _ if count == 0 => true,
            Some(oldest) => self.held.includes(oldest.position()),
            None => self.held == Held::All,
        };
        whole.then(|| local.into_iter().take(count).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::msg;

    /// Messages by `conv_seq`, each at the time given.
    fn msgs(items: &[(u64, i64)]) -> Vec<Message> {
        items.iter().map(|&(c, t)| msg("alice", "bob", c, t)).collect()
    }

    /// Stores `conv_seq`, `all` being every `conv_seq` held afterwards.
    fn store(cov: &mut Coverage, conv_seq: u64, all: &[u64]) {
        cov.stored(conv_seq);
        let through = cov.through;
        cov.extend(all.iter().copied().filter(|&c| c > through));
    }

    fn page(cov: &Coverage, count: usize, local: &[(u64, i64)]) -> Option<Vec<u64>> {
        cov.page(count, msgs(local)).map(|v| v.iter().map(|m| m.conv_seq).collect())
    }

    #[test]
    fn the_first_message_starts_a_coverage_that_grows_with_the_next() {
        let mut cov = Coverage::default();
        assert_eq!(page(&cov, 10, &[]), None, "nothing is known");
        store(&mut cov, 1, &[1]);
        store(&mut cov, 2, &[1, 2]);
        assert_eq!(cov, Coverage { held: Held::All, through: 2, known: 2 });
        assert_eq!(page(&cov, 10, &[(2, 101), (1, 100)]), Some(vec![2, 1]));
        assert_eq!(page(&cov, 1, &[(2, 101)]), Some(vec![2]));
        // 4 arrives before 3: 3 exists somewhere, so pages go to the server until it is held.
        store(&mut cov, 4, &[1, 2, 4]);
        assert_eq!(cov.through, 2);
        assert_eq!(page(&cov, 10, &[(4, 103), (2, 101), (1, 100)]), None);
        store(&mut cov, 3, &[1, 2, 3, 4]);
        assert_eq!(cov.through, 4);
        assert_eq!(page(&cov, 10, &[(4, 103), (3, 102), (2, 101), (1, 100)]), Some(vec![4, 3, 2, 1]));
    }

    #[test]
    fn a_message_imported_into_the_past_sends_pages_to_the_server_until_a_page_covers_it() {
        // Held: 1..=3. The conversation list says 4 exists (imported at time 50, before all of them).
        let mut cov = Coverage { held: Held::All, through: 3, known: 3 };
        cov.heard_of(4);
        assert_eq!(page(&cov, 10, &[(3, 102), (2, 101), (1, 100)]), None);
        // The server's newest page has all four, and says it read conv_seq 4.
        let answer = msgs(&[(3, 102), (2, 101), (1, 100), (4, 50)]);
        cov.server_page(None, &answer, true, 4);
        assert_eq!(cov, Coverage { held: Held::All, through: 4, known: 4 });
        assert_eq!(page(&cov, 10, &[(3, 102), (2, 101), (1, 100), (4, 50)]), Some(vec![3, 2, 1, 4]));
    }

    #[test]
    fn server_pages_extend_the_coverage_back_only_from_within_it() {
        let mut cov = Coverage::default();
        let newest = msgs(&[(10, 110), (9, 109)]);
        cov.server_page(None, &newest, false, 10);
        assert_eq!(cov, Coverage { held: Held::From(newest[1].position()), through: 10, known: 10 });
        assert_eq!(page(&cov, 2, &[(10, 110), (9, 109)]), Some(vec![10, 9]));
        assert_eq!(page(&cov, 3, &[(10, 110), (9, 109), (5, 105)]), None, "8..6 may exist");
        // A page from a cursor outside the coverage proves nothing about what lies between.
        let far = msgs(&[(2, 102), (1, 101)]);
        let mut other = cov;
        other.server_page(Some(msgs(&[(3, 103)])[0].position()), &far, true, 10);
        assert_eq!(other, cov);
        // The page right below the coverage extends it to the beginning.
        let next = msgs(&[(8, 108), (7, 107), (6, 106), (5, 105)]);
        cov.server_page(Some(newest[1].position()), &next, true, 11);
        assert_eq!(cov.held, Held::All);
        assert_eq!(cov.through, 10, "what was covered before is known only up to 10");
        assert_eq!(cov.known, 11);
        assert_eq!(page(&cov, 10, &[(10, 110), (9, 109), (8, 108)]), None, "11 is known and not held");
        store(&mut cov, 11, &[5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(page(&cov, 3, &[(11, 111), (10, 110), (9, 109)]), Some(vec![11, 10, 9]));
    }

    #[test]
    fn an_older_newest_page_does_not_shrink_a_wider_coverage() {
        let mut cov = Coverage { held: Held::All, through: 12, known: 12 };
        cov.server_page(None, &msgs(&[(12, 112)]), false, 12);
        assert_eq!(cov, Coverage { held: Held::All, through: 12, known: 12 });
    }

    #[test]
    fn zero_count_is_an_empty_page() {
        let cov = Coverage { held: Held::All, through: 0, known: 0 };
        assert_eq!(page(&cov, 0, &[]), Some(vec![]));
    }
}

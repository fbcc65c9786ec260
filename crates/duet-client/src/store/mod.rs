//! The local store: what one installation remembers between runs.
//!
//! It keeps the sync cursor (the highest log `seq` applied), the messages seen (by peer, `msg_key`,
//! position in history and `conv_seq`), what is known to be held of each conversation
//! ([`Coverage`]), the recent-contact list and the device id. [`LocalStore`] is deliberately small
//! and synchronous; it has two implementations, [`MemoryStore`] and [`SqliteStore`]. The client's
//! actor calls it through a small handle that runs a blocking backend (SQLite) on tokio's blocking
//! pool so that disk I/O never stalls an async worker.
//!
//! Writes come in [`Batch`]es that a backend applies atomically, so that a crash never leaves the
//! cursor ahead of the messages it covers.

mod memory;
mod sqlite;

use std::sync::Arc;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

pub use crate::history::{Coverage, Held, Position};
use crate::model::{Conversation, Message};

/// The local store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store holds data this version cannot read, or belongs to another user.
    #[error("{0}")]
    Invalid(String),
    /// The blocking task running a store call failed.
    #[error("store task failed: {0}")]
    Task(String),
}

/// A stored message, the conversation it belongs to, and whether this installation sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    /// The other side of the conversation.
    pub peer: String,
    /// The message.
    pub message: Message,
    /// Sent from this device: when it comes back through the sync log it is not raised again.
    pub sent_here: bool,
}

/// What a store holds at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The highest sync-log `seq` applied (0 for a fresh store).
    pub cursor: u64,
    /// The device id saved by an earlier run, if any.
    pub device: Option<String>,
    /// The recent contacts, in no particular order.
    pub conversations: Vec<Conversation>,
    /// What is known to be held of each conversation, by peer, in no particular order.
    pub coverage: Vec<(String, Coverage)>,
}

/// Changes applied together, atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Messages to insert or update (by peer and `msg_key`). An update keeps `recalled` (with its
    /// `revoker` and no elements), `sent_here`, `log_seq` and `receipt_time` once set, and the content
    /// of a later `version` than its own. Applied after `deletions` and `clears`.
    pub messages: Vec<MessageRecord>,
    /// Messages to flag as recalled, their elements and custom data dropped: `(peer, msg_key, by)`.
    pub recalls: Vec<(String, String, String)>,
    /// Read receipts of messages: `(peer, msg_key, time)`.
    pub receipts: Vec<(String, String, i64)>,
    /// Messages to remove (deleted from this user's side): `(peer, msg_key)`.
    pub deletions: Vec<(String, String)>,
    /// Conversations whose history was cleared: every message of `peer` numbered up to `conv_seq` goes.
    pub clears: Vec<(String, u64)>,
    /// Conversations to remove from the list (their messages stay unless cleared too).
    pub removed_conversations: Vec<String>,
    /// Drop every stored conversation before writing `conversations` (a full list from the server).
    pub replace_conversations: bool,
    /// Conversations to insert or replace. Their last messages are stored as messages too.
    pub conversations: Vec<Conversation>,
    /// The new sync cursor.
    pub cursor: Option<u64>,
    /// What is now known to be held of these conversations (by peer), replacing what was.
    pub coverage: Vec<(String, Coverage)>,
}

impl Batch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.recalls.is_empty()
            && self.receipts.is_empty()
            && self.deletions.is_empty()
            && self.clears.is_empty()
            && self.removed_conversations.is_empty()
            && !self.replace_conversations
            && self.conversations.is_empty()
            && self.cursor.is_none()
            && self.coverage.is_empty()
    }
}

/// The operations the client needs from a local store. Each call is short; a backend that blocks (disk)
/// says so with [`LocalStore::is_blocking`] and is then called from tokio's blocking pool.
pub trait LocalStore: Send + Sync + 'static {
    /// Whether calls may block on I/O.
    fn is_blocking(&self) -> bool {
        true
    }
    /// The cursor, the device id and the conversations.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Saves the device id.
    fn set_device(&self, device: &str) -> Result<(), StoreError>;
    /// Applies a batch atomically.
    fn commit(&self, batch: &Batch) -> Result<(), StoreError>;
    /// The message `msg_key` of the conversation with `peer`.
    fn message(&self, peer: &str, msg_key: &str) -> Result<Option<MessageRecord>, StoreError>;
    /// Up to `limit` stored messages of the conversation with `peer` positioned before `before` (all when
    /// `None`), newest first in history's order (time, `MsgSeq`, `MsgRandom`). Online-only messages are
    /// never stored.
    fn messages_before(&self, peer: &str, before: Option<Position>, limit: usize) -> Result<Vec<Message>, StoreError>;
    /// The stored `conv_seq`s of the conversation with `peer` above `after`, ascending, at most `limit`.
    fn conv_seqs_above(&self, peer: &str, after: u64, limit: usize) -> Result<Vec<u64>, StoreError>;
    /// How many stored messages `peer` sent after `time` (unix seconds).
    fn count_from_after(&self, peer: &str, time: i64) -> Result<u64, StoreError>;
}

/// How the actor calls a [`LocalStore`]: directly for a memory store, on the blocking pool otherwise.
#[derive(Clone)]
pub(crate) struct StoreHandle {
    store: Arc<dyn LocalStore>,
}

impl StoreHandle {
    pub(crate) fn new(store: Arc<dyn LocalStore>) -> StoreHandle {
        StoreHandle { store }
    }

    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn LocalStore) -> Result<R, StoreError> + Send + 'static,
    {
        if !self.store.is_blocking() {
            return f(&*self.store);
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store)).await.map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// The conformance tests every backend passes.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use crate::elems;
    use crate::model::ConversationSettings;

    pub(crate) fn msg(from: &str, to: &str, conv_seq: u64, time: i64) -> Message {
        Message {
            from: from.into(),
            to: to.into(),
            msg_key: format!("{conv_seq}_{time}_{time}"),
            seq: conv_seq as u32,
            random: time as u32,
            time,
            conv_seq,
            elems: vec![elems::text(format!("m{conv_seq}"))],
            cloud_custom_data: String::new(),
            recalled: false,
            revoker: String::new(),
            peer_read: false,
            need_read_receipt: false,
            receipt_time: None,
            version: 0,
            log_seq: None,
            sender: crate::model::Sender { nick: format!("nick of {from}"), face_url: String::new(), system: false },
        }
    }

    fn rec(message: Message, sent_here: bool) -> MessageRecord {
        MessageRecord { peer: "alice".into(), message, sent_here }
    }

    pub(crate) fn run(store: &dyn LocalStore) {
        let fresh = store.load().unwrap();
        assert_eq!(fresh, Snapshot::default());

        store.set_device("dev-1").unwrap();
        let mut m1 = msg("alice", "bob", 1, 100);
        m1.log_seq = Some(4);
        let m2 = msg("bob", "alice", 2, 101);
        let m3 = msg("alice", "bob", 3, 102);
        let m5 = msg("alice", "bob", 5, 104);
        let conv = Conversation {
            peer: "alice".into(),
            last: Some(m5.clone()),
            unread: 2,
            time: 104,
            peer_read_time: 103,
            settings: ConversationSettings { pinned: true, draft: "wip".into(), ..Default::default() },
        };
        store
            .commit(&Batch {
                messages: vec![rec(m1.clone(), false), rec(m2.clone(), true), rec(m3.clone(), false)],
                conversations: vec![conv.clone()],
                cursor: Some(9),
                ..Batch::default()
            })
            .unwrap();

        let snap = store.load().unwrap();
        assert_eq!(snap.cursor, 9);
        assert_eq!(snap.device.as_deref(), Some("dev-1"));
        assert_eq!(snap.conversations, vec![conv.clone()]);

        // The conversation's last message was stored with it.
        assert_eq!(store.conv_seqs_above("alice", 0, 10).unwrap(), vec![1, 2, 3, 5]);
        assert_eq!(store.conv_seqs_above("alice", 2, 1).unwrap(), vec![3]);
        assert!(store.conv_seqs_above("nobody", 0, 10).unwrap().is_empty());
        let below = store.messages_before("alice", Some(m5.position()), 10).unwrap();
        let seqs: Vec<u64> = below.iter().map(|m| m.conv_seq).collect();
        assert_eq!(seqs, vec![3, 2, 1]);
        assert_eq!(store.messages_before("alice", None, 2).unwrap().len(), 2);
        assert_eq!(below[2], m1);
        // History's order is by time, then MsgSeq, then MsgRandom, whatever the conv_seq: an imported
        // message (conv_seq 6, an earlier time) sits among the older ones.
        let mut imported = msg("alice", "bob", 6, 100);
        imported.seq = 0;
        imported.msg_key = "0_100_100".into();
        let mut same_second = msg("alice", "bob", 7, 101);
        same_second.seq = 3;
        same_second.msg_key = "3_101_101".into();
        store
            .commit(&Batch {
                messages: vec![rec(imported.clone(), false), rec(same_second.clone(), false)],
                ..Batch::default()
            })
            .unwrap();
        let all: Vec<u64> = store.messages_before("alice", None, 10).unwrap().iter().map(|m| m.conv_seq).collect();
        assert_eq!(all, vec![5, 3, 7, 2, 1, 6]);
        let older: Vec<u64> = store
            .messages_before("alice", Some(same_second.position()), 2)
            .unwrap()
            .iter()
            .map(|m| m.conv_seq)
            .collect();
        assert_eq!(older, vec![2, 1]);

        // An update keeps the flags once set and the log seq once known.
        let mut m1_again = m1.clone();
        m1_again.log_seq = None;
        let mut m2_again = m2.clone();
        m2_again.log_seq = Some(6);
        store
            .commit(&Batch {
                messages: vec![rec(m1_again, false), rec(m2_again, false)],
                recalls: vec![("alice".into(), m3.msg_key.clone(), "alice".into())],
                receipts: vec![("alice".into(), m2.msg_key.clone(), 150)],
                ..Batch::default()
            })
            .unwrap();
        let got1 = store.message("alice", &m1.msg_key).unwrap().unwrap();
        assert_eq!(got1.message.log_seq, Some(4));
        let got2 = store.message("alice", &m2.msg_key).unwrap().unwrap();
        assert!(got2.sent_here);
        assert_eq!(got2.message.log_seq, Some(6));
        assert_eq!(got2.message.receipt_time, Some(150));
        // A recall keeps who recalled it and drops the content, also when the message is stored again.
        let recalled = |store: &dyn LocalStore| store.message("alice", &m3.msg_key).unwrap().unwrap().message;
        let got3 = recalled(store);
        assert!(got3.recalled && got3.elems.is_empty() && got3.revoker == "alice", "{got3:?}");
        store.commit(&Batch { messages: vec![rec(m3.clone(), false)], ..Batch::default() }).unwrap();
        let got3 = recalled(store);
        assert!(got3.recalled && got3.elems.is_empty() && got3.revoker == "alice", "{got3:?}");
        // A receipt stays once known.
        store.commit(&Batch { messages: vec![rec(m2.clone(), false)], ..Batch::default() }).unwrap();
        assert_eq!(store.message("alice", &m2.msg_key).unwrap().unwrap().message.receipt_time, Some(150));
        assert!(store.message("carol", &m3.msg_key).unwrap().is_none());

        // Received from alice after 100: the one at 101, m3 (102) and m5 (104); m2 is bob's own.
        assert_eq!(store.count_from_after("alice", 100).unwrap(), 3);

        // A full list from the server replaces the old one.
        let carol = Conversation::empty("carol");
        let carol = Conversation { time: 50, ..carol };
        store
            .commit(&Batch {
                replace_conversations: true,
                conversations: vec![carol.clone()],
                cursor: Some(10),
                ..Batch::default()
            })
            .unwrap();
        let snap = store.load().unwrap();
        assert_eq!(snap.conversations, vec![carol]);
        assert_eq!(snap.cursor, 10);
        assert!(Batch::default().is_empty());

        // Coverage is kept per conversation, replaced by each batch that names it.
        assert!(snap.coverage.is_empty());
        let partial = Coverage { held: Held::From(m2.position()), through: 5, known: 7 };
        let whole = Coverage { held: Held::All, through: 3, known: 3 };
        let none = Coverage { held: Held::Nothing, through: 0, known: 9 };
        let coverage = vec![("alice".to_owned(), partial), ("carol".to_owned(), whole), ("dave".to_owned(), none)];
        store.commit(&Batch { coverage, ..Batch::default() }).unwrap();
        store.commit(&Batch { coverage: vec![("carol".into(), partial)], ..Batch::default() }).unwrap();
        let mut got = store.load().unwrap().coverage;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, vec![("alice".into(), partial), ("carol".into(), partial), ("dave".into(), none)]);
    }
}

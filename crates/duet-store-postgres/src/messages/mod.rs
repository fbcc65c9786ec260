//! Messages, conversations, the sync logs, history, and the export (`sql/messages.sql`), with the meaning
//! the embedded store gives them (its `ops.rs`, ported).
//!
//! Nothing is kept in memory between jobs: several nodes write the same database. Every counter lives in a
//! row only written under the account locks the writer takes first ([`crate::writer`]): a user's sync-log
//! position in `accounts.log_seq`, a conversation's positions in `threads` (both of its users are locked by
//! every job that changes it), and the dedup entries in `dedup`, keyed by their sender.
//!
//! - [`write`]: sends and imports, and the helpers every write shares (the sync log, the conversations).
//! - [`change`]: what changes stored messages and conversations afterwards (recall, read, receipts, edits,
//!   deletes, settings) and the purge.
//! - [`read`]: history, the sync log, the recent contacts, unread counts, the export.

mod change;
mod read;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use duet_core::model::event::AfterEvent;
use duet_core::model::{
    ConversationSettings, ConversationView, ExportCursor, ExportPage, HistoryPage, HistoryQuery, Import, LogPage,
    MsgKey, Purged, ReceiveOpt, SearchPage, SearchQuery, SenderInfo, SettingsChange, StoredMessage,
};
use duet_core::store::{
    Cutoffs, DeliveryHook, Edit, Imported, MessageExport, MessageStore, Modified, SendOutcome, SendPlan, StoreError,
    Withdrawn,
};
use tokio_postgres::Row;

use crate::writer::Conn;
use crate::{PgStore, execute};

// `messages.flags`.
const RECALLED: i32 = 1;
const HIDDEN_FROM_SENDER: i32 = 2;
const HIDDEN_FROM_RECEIVER: i32 = 4;
const NO_UNREAD: i32 = 8;
const NEED_RECEIPT: i32 = 16;

// `inbox.kind`.
const KIND_MSG: i16 = 0;
const KIND_READ: i16 = 1;
const KIND_RECALL: i16 = 2;
/// The peer read what the user sent up to `time` (`peer` the reader).
const KIND_PEER_READ: i16 = 3;
/// The peer acknowledged message `msg_id` (whose time is `time`) with a read receipt.
const KIND_RECEIPT: i16 = 4;
/// Message `msg_id` (whose time is `time`) was edited.
const KIND_MODIFY: i16 = 5;
/// The user deleted message `msg_id` (whose time is `time`) from its side.
const KIND_DELETE: i16 = 6;
/// The user cleared its history with `peer` up to position `time` (a `conv_seq`; 0: nothing cleared).
const KIND_CLEAR: i16 = 7;
/// As [`KIND_CLEAR`], and the user deleted the conversation.
const KIND_CLEAR_CONVERSATION: i16 = 8;
/// The user changed its settings of the conversation with `peer` (read from `conversation_settings`).
const KIND_SETTINGS: i16 = 9;

/// The advisory lock a purge holds (one node purges at a time), with the schema's hash (several Duets, or
/// test runs, may share a database in schemas of their own): "purg" in ASCII.
const PURGE_LOCK: i32 = 0x7075_7267;

/// A message's columns, as [`read_message`] reads them.
pub(crate) const MESSAGE_COLUMNS: &str = "m.sender, m.receiver, m.time, m.seq, m.random, m.conv_seq, m.body, \
                               m.cloud_custom_data, m.flags, m.sender_nick, m.sender_face, m.revoker, \
                               m.receipt_time, m.version";
/// How many columns [`MESSAGE_COLUMNS`] selects.
pub(crate) const MESSAGE_COLUMN_COUNT: usize = 14;

/// A conversation's settings, selected from `conversation_settings cs` (all NULL when it has none).
const SETTINGS_COLUMNS: &str = "cs.pinned_at, cs.marks, cs.custom_data, cs.draft, cs.draft_time, cs.receive_opt";

/// SQL true of a message `m` shown on the side of the user `$1`.
const SHOWN_TO_OWNER: &str = "NOT (m.sender = $1 AND m.flags & 2 <> 0) AND NOT (m.receiver = $1 AND m.flags & 4 <> 0)";

/// Reads a message row selected as [`MESSAGE_COLUMNS`] starting at column `at`, naming the two parties.
pub(crate) fn read_message(r: &Row, at: usize, names: impl Fn(i64) -> String) -> StoredMessage {
    let flags: i32 = r.get(at + 8);
    let from = names(r.get(at));
    let revoker = (flags & RECALLED != 0).then(|| r.get::<_, Option<String>>(at + 11).unwrap_or_else(|| from.clone()));
    StoredMessage {
        to: names(r.get(at + 1)),
        key: MsgKey {
            time: r.get(at + 2),
            seq: r.get::<_, i64>(at + 3) as u32,
            random: r.get::<_, i64>(at + 4) as u32,
        },
        conv_seq: r.get::<_, i64>(at + 5).max(0) as u64,
        body: r.get(at + 6),
        cloud_custom_data: r.get(at + 7),
        recalled: flags & RECALLED != 0,
        revoker,
        peer_read: false,
        need_receipt: flags & NEED_RECEIPT != 0,
        receipt_time: r.get(at + 12),
        sender: SenderInfo { nick: r.get(at + 9), face_url: r.get(at + 10) },
        version: r.get::<_, i32>(at + 13).max(0) as u32,
        encoded: Default::default(),
        from,
    }
}

/// Reads [`SETTINGS_COLUMNS`] starting at column `at`; the defaults where there is no row.
fn read_settings(r: &Row, at: usize) -> ConversationSettings {
    ConversationSettings {
        pinned_at: r.get::<_, Option<i64>>(at).unwrap_or(0),
        marks: r.get::<_, Option<i64>>(at + 1).unwrap_or(0) as u64,
        custom_data: r.get::<_, Option<String>>(at + 2).unwrap_or_default(),
        draft: r.get::<_, Option<String>>(at + 3).unwrap_or_default(),
        draft_time: r.get::<_, Option<i64>>(at + 4).unwrap_or(0),
        receive: ReceiveOpt::from_number(r.get::<_, Option<i16>>(at + 5).unwrap_or(0).max(0) as u64)
            .unwrap_or_default(),
    }
}

/// A `MsgKey`'s numbers as the columns hold them.
fn key_params(k: &MsgKey) -> (i64, i64, i64) {
    (k.time, i64::from(k.seq), i64::from(k.random))
}

/// Deletes what names account `uid` as its owner (its sync log, its side of each conversation, its
/// conversation settings, its dedup entries, its messages' search entries), in the transaction deleting the
/// account. Messages and conversation counters stay (the peer's history keeps them).
pub(crate) async fn drop_user(c: &Conn, uid: i64) -> Result<(), StoreError> {
    crate::search::drop_user(c, uid).await?;
    for sql in [
        "DELETE FROM inbox WHERE uid = $1",
        "DELETE FROM conversations WHERE owner = $1",
        "DELETE FROM conversation_settings WHERE owner = $1",
        "DELETE FROM dedup WHERE sender = $1",
    ] {
        execute(c, sql, &[&uid]).await?;
    }
    Ok(())
}

#[async_trait]
impl MessageStore for PgStore {
    fn set_delivery_hook(&self, hook: DeliveryHook) {
        self.writer().set_hook(hook);
    }

    async fn send(&self, plan: SendPlan) -> Result<SendOutcome, StoreError> {
        let mut users = plan.msg.to.clone();
        users.push(plan.msg.from.clone());
        let plan = Arc::new(plan);
        self.writer()
            .write(users, move |c, locks| {
                let plan = plan.clone();
                Box::pin(async move { write::send(&c, &locks, &plan).await })
            })
            .await
    }

    async fn import(&self, msg: Import, offline_until: i64, max_conversations: usize) -> Result<Imported, StoreError> {
        let users = vec![msg.from.clone(), msg.to.clone()];
        let msg = Arc::new(msg);
        self.writer()
            .write(users, move |c, locks| {
                let msg = msg.clone();
                Box::pin(async move { write::import(&c, &locks, &msg, offline_until, max_conversations).await })
            })
            .await
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryPage, StoreError> {
        read::history(self, &q).await
    }

    async fn withdraw(
        &self,
        from: String,
        to: String,
        key: MsgKey,
        by: String,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<Withdrawn, StoreError> {
        let users = vec![from.clone(), to.clone()];
        self.writer()
            .write(users, move |c, locks| {
                let (from, to, by, event) = (from.clone(), to.clone(), by.clone(), event.clone());
                Box::pin(async move { change::withdraw(&c, &locks, &from, &to, key, &by, log_expire_at, event).await })
            })
            .await
    }

    async fn set_read(
        &self,
        owner: String,
        peer: String,
        time: i64,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError> {
        let users = vec![owner.clone(), peer.clone()];
        self.writer()
            .write(users, move |c, locks| {
                let (owner, peer, event) = (owner.clone(), peer.clone(), event.clone());
                Box::pin(async move { change::set_read(&c, &locks, &owner, &peer, time, log_expire_at, event).await })
            })
            .await
    }

    async fn ack_receipts(
        &self,
        reader: String,
        sender: String,
        keys: Vec<MsgKey>,
        time: i64,
        log_expire_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let users = vec![reader.clone(), sender.clone()];
        self.writer()
            .write(users, move |c, locks| {
                let (reader, sender, keys) = (reader.clone(), sender.clone(), keys.clone());
                Box::pin(
                    async move { change::ack_receipts(&c, &locks, &reader, &sender, &keys, time, log_expire_at).await },
                )
            })
            .await
    }

    async fn find_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        read::find_messages(self, &owner, &peer, &keys).await
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchPage, StoreError> {
        crate::search::search(self, q).await
    }

    async fn unread(&self, owner: String, peers: Vec<String>) -> Result<Vec<u64>, StoreError> {
        read::unread(self, &owner, &peers).await
    }

    async fn unread_total(&self, owner: String) -> Result<u64, StoreError> {
        read::unread_total(self, &owner).await
    }

    async fn latest_seq(&self, user: String) -> Result<Option<u64>, StoreError> {
        read::latest_seq(self, &user).await
    }

    async fn log_after(&self, user: String, after: u64, limit: usize, max_bytes: usize) -> Result<LogPage, StoreError> {
        read::log_after(self, &user, after, limit, max_bytes).await
    }

    async fn conversations(&self, user: String, limit: usize) -> Result<Vec<ConversationView>, StoreError> {
        read::conversations(self, &user, limit).await
    }

    async fn update_conversation(
        &self,
        owner: String,
        peer: String,
        change: SettingsChange,
        now: i64,
        log_expire_at: i64,
    ) -> Result<Option<ConversationSettings>, StoreError> {
        let users = vec![owner.clone(), peer.clone()];
        self.writer()
            .write(users, move |c, locks| {
                let (owner, peer, change) = (owner.clone(), peer.clone(), change.clone());
                Box::pin(async move {
                    change::update_conversation(&c, &locks, &owner, &peer, &change, now, log_expire_at).await
                })
            })
            .await
    }

    async fn modify(&self, edit: Edit, log_expire_at: i64) -> Result<Modified, StoreError> {
        let users = vec![edit.from.clone(), edit.to.clone()];
        self.writer()
            .write(users, move |c, locks| {
                let edit = edit.clone();
                Box::pin(async move { change::modify(&c, &locks, &edit, log_expire_at).await })
            })
            .await
    }

    async fn delete_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
        log_expire_at: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let users = vec![owner.clone(), peer.clone()];
        self.writer()
            .write(users, move |c, locks| {
                let (owner, peer, keys) = (owner.clone(), peer.clone(), keys.clone());
                Box::pin(async move { change::delete_messages(&c, &locks, &owner, &peer, &keys, log_expire_at).await })
            })
            .await
    }

    async fn clear_conversation(
        &self,
        owner: String,
        peer: String,
        clear_history: bool,
        delete_conversation: bool,
        log_expire_at: i64,
    ) -> Result<bool, StoreError> {
        let users = vec![owner.clone(), peer.clone()];
        self.writer()
            .write(users, move |c, locks| {
                let (owner, peer) = (owner.clone(), peer.clone());
                Box::pin(async move {
                    change::clear_conversation(
                        &c,
                        &locks,
                        &owner,
                        &peer,
                        clear_history,
                        delete_conversation,
                        log_expire_at,
                    )
                    .await
                })
            })
            .await
    }

    /// Runs on a connection of its own, not in a group commit (a purge is long and touches no counter), and
    /// on one node at a time: the others find the advisory lock taken and purge nothing this round.
    async fn purge(&self, cutoffs: Cutoffs) -> Result<Purged, StoreError> {
        let c: Conn = std::sync::Arc::new(self.reader().await?);
        c.batch_execute("BEGIN").await.map_err(crate::backend)?;
        let purged = async {
            let locked = crate::query_opt(
                &c,
                "SELECT pg_try_advisory_xact_lock(hashtext(current_schema()), $1)",
                &[&PURGE_LOCK],
            )
            .await?
            .is_some_and(|r| r.get::<_, bool>(0));
            if locked { change::purge(&c, cutoffs).await } else { Ok(Purged::default()) }
        }
        .await;
        match purged {
            Ok(p) => {
                c.batch_execute("COMMIT").await.map_err(crate::backend)?;
                Ok(p)
            }
            Err(e) => {
                let _ = c.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl MessageExport for PgStore {
    async fn export_messages(
        &self,
        start: i64,
        end: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        read::export_messages(self, start, end, after, limit).await
    }
}

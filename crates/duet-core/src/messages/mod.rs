//! The messages service: sending ([`send`], the pipeline), and what follows a message: the sync log
//! devices read, history, recall, read state, unread counts, recent contacts, imports and retention.
//! Every write commits first; the sync-log entries it appended then go to the [`fanout`]'s subscribers.

pub mod fanout;
pub mod send;

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::callbacks::{BeforeSendHook, EventKind, Notifier, Source};
use crate::clock::Clock;
use crate::error::Error;
use crate::media::Media;
use crate::model::{
    ConversationSettings, ConversationView, HistoryPage, HistoryQuery, Import, LogPage, MsgKey, Purged, SearchPage,
    SearchQuery, SettingsChange, StoredMessage,
};
use crate::push::Pusher;
use crate::relations::Relations;
use crate::store::{self, Cutoffs, Edit, Imported, Modified, Store, Withdrawn};
pub use fanout::{Fanout, Subscriber};
pub use send::{CallbackSource, Content, Draft, Encoded, Origin, Prepared, SendError};

/// How long messages and their traces are kept, and how many conversations; how long a sender may take
/// one back.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// How long a message waits in the sync log for offline devices, at most (Tencent: 7 days).
    pub offline_secs: i64,
    /// How long history is kept (Tencent: 7 days).
    pub roaming_secs: i64,
    /// How long a retry of the same message is recognised (Tencent: "within the same second"; Duet: longer).
    pub dedup_window_secs: i64,
    /// Recent contacts kept per user (Tencent: 100).
    pub recent_contacts_max: usize,
    /// How long after sending the sender may recall a message (Tencent: 2 minutes).
    pub recall_window_secs: i64,
}

pub struct Messages {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    accounts: Arc<Accounts>,
    relations: Arc<Relations>,
    media: Option<Arc<Media>>,
    push: Arc<Pusher>,
    /// The app's before-send callback, when configured.
    before_send: Option<Arc<dyn BeforeSendHook>>,
    /// The after-event callbacks.
    notifier: Arc<Notifier>,
    fanout: Fanout,
    retention: Retention,
}

impl Messages {
    #[expect(clippy::too_many_arguments, reason = "the services a send uses, wired once by `Core::open`")]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        accounts: Arc<Accounts>,
        relations: Arc<Relations>,
        media: Option<Arc<Media>>,
        push: Arc<Pusher>,
        before_send: Option<Arc<dyn BeforeSendHook>>,
        notifier: Arc<Notifier>,
        fanout: Fanout,
        retention: Retention,
    ) -> Messages {
        Messages { store, clock, accounts, relations, media, push, before_send, notifier, fanout, retention }
    }

    /// The last sequence number of `user`'s sync log.
    pub async fn latest_seq(&self, user: &str) -> Result<u64, Error> {
        self.store.latest_seq(user.to_owned()).await?.ok_or_else(|| Error::NoSuchAccount(user.to_owned()))
    }

    /// `user`'s sync log after `after`: at most `limit` entries, and fewer once their messages' text passes
    /// `max_bytes` (see [`crate::store::MessageStore::log_after`]).
    pub async fn sync(&self, user: &str, after: u64, limit: usize, max_bytes: usize) -> Result<LogPage, Error> {
        Ok(self.store.log_after(user.to_owned(), after, limit, max_bytes).await?)
    }

    /// `user`'s recent contacts, latest first.
    pub async fn conversations(&self, user: &str) -> Result<Vec<ConversationView>, Error> {
        store::require(&*self.store, user).await?;
        let mut items = self.store.conversations(user.to_owned(), self.retention.recent_contacts_max).await?;
        let cutoff = self.roaming_cutoff();
        items.retain(|c| c.time >= cutoff);
        Ok(items)
    }

    /// Removes `owner`'s conversation with `peer` (and with `clear_history`, hides its messages from `owner`),
    /// on every device of `owner`.
    pub async fn delete_conversation(&self, owner: &str, peer: &str, clear_history: bool) -> Result<(), Error> {
        store::require_pair(&*self.store, owner, peer).await?;
        let expire = self.log_expire_at();
        self.store.clear_conversation(owner.to_owned(), peer.to_owned(), clear_history, true, expire).await?;
        Ok(())
    }

    /// Changes `owner`'s settings of the conversation with `peer` (pin, marks, custom data, draft, receive
    /// option), on every device of `owner`; returns them as they are now.
    pub async fn update_conversation(
        &self,
        owner: &str,
        peer: &str,
        change: SettingsChange,
    ) -> Result<ConversationSettings, Error> {
        store::require_pair(&*self.store, owner, peer).await?;
        let (now, expire) = (self.clock.now_secs(), self.log_expire_at());
        let updated = self.store.update_conversation(owner.to_owned(), peer.to_owned(), change, now, expire).await?;
        updated.ok_or_else(|| Error::NoSuchAccount(peer.to_owned()))
    }

    /// Clears `owner`'s history of the conversation with `peer` (the peer keeps it); the conversation stays,
    /// without a last message or unread ones.
    pub async fn clear_history(&self, owner: &str, peer: &str) -> Result<(), Error> {
        store::require_pair(&*self.store, owner, peer).await?;
        let expire = self.log_expire_at();
        self.store.clear_conversation(owner.to_owned(), peer.to_owned(), true, false, expire).await?;
        Ok(())
    }

    /// Deletes messages from `owner`'s side of the conversation with `peer`, on every device of `owner`;
    /// the peer keeps them. For each key, whether it named a message `owner` still had.
    pub async fn delete(&self, owner: &str, peer: &str, keys: Vec<MsgKey>) -> Result<Vec<bool>, Error> {
        store::require_pair(&*self.store, owner, peer).await?;
        let expire = self.log_expire_at();
        Ok(self.store.delete_messages(owner.to_owned(), peer.to_owned(), keys, expire).await?)
    }

    /// Edits a message `edit.from` sent `edit.to` (an app admin's REST edit, or through [`Messages::edit`]
    /// the sender's own): both sides' devices get the message as it is now, which is returned.
    pub async fn modify(&self, edit: Edit) -> Result<StoredMessage, Error> {
        store::require_pair(&*self.store, &edit.from, &edit.to).await?;
        let expire = self.log_expire_at();
        match self.store.modify(edit, expire).await? {
            Modified::Done(m) => Ok(m),
            Modified::NotFound => Err(Error::NoSuchMessage),
            Modified::Recalled => Err(Error::AlreadyRecalled),
            Modified::Conflict(m) => Err(Error::EditConflict(Box::new(m))),
        }
    }

    /// The sender's own edit of a message it sent `peer` (see [`Messages::modify`]); `base_version` is the
    /// version the sender saw (else [`Error::EditConflict`]).
    pub async fn edit(
        &self,
        user: &str,
        peer: &str,
        key: MsgKey,
        body: Option<String>,
        cloud_custom_data: Option<String>,
        base_version: Option<u32>,
    ) -> Result<StoredMessage, Error> {
        let edit = Edit { from: user.to_owned(), to: peer.to_owned(), key, body, cloud_custom_data, base_version };
        self.modify(edit).await
    }

    fn log_expire_at(&self) -> i64 {
        self.clock.now_secs() + self.retention.offline_secs
    }

    /// Imports a historical message with its original time.
    pub async fn import(&self, msg: Import) -> Result<(), Error> {
        let offline_until = msg.time.saturating_add(self.retention.offline_secs);
        match self.store.import(msg, offline_until, self.retention.recent_contacts_max).await? {
            Imported::Stored | Imported::Duplicate => Ok(()),
            Imported::NoSuchSender(from) => Err(Error::NoSuchSender(from)),
            Imported::NoSuchRecipient(to) => Err(Error::NoSuchAccount(to)),
        }
    }

    /// A page of one side's history, within the roaming retention.
    pub async fn history(&self, mut q: HistoryQuery) -> Result<HistoryPage, Error> {
        store::require_pair(&*self.store, &q.operator, &q.peer).await?;
        q.min_time = q.min_time.max(self.roaming_cutoff());
        if q.min_time > q.max_time || q.limit == 0 {
            return Ok(HistoryPage { messages: Vec::new(), more: false, conv_seq: 0 });
        }
        Ok(self.store.history(q).await?)
    }

    /// A page of a search of `q.owner`'s own history (see [`SearchQuery`]), within the roaming retention;
    /// the owner must exist (a peer or sender that does not exist finds nothing).
    pub async fn search(&self, mut q: SearchQuery) -> Result<SearchPage, Error> {
        store::require(&*self.store, &q.owner).await?;
        q.min_time = q.min_time.max(self.roaming_cutoff());
        q.limit = q.limit.min(crate::model::search::MAX_SEARCH_PAGE);
        if q.min_time > q.max_time || q.limit == 0 {
            return Ok(SearchPage { hits: Vec::new(), more: false });
        }
        Ok(self.store.search(q).await?)
    }

    /// The sender's own recall of a message it sent `peer` (else [`Error::NoSuchMessage`]), within the
    /// recall window (else [`Error::RecallTooLate`]); then as [`Messages::withdraw`], by the sender.
    pub async fn recall(&self, user: &str, peer: &str, key: MsgKey, source: &Source) -> Result<(), Error> {
        let found = self.store.find_messages(user.to_owned(), peer.to_owned(), vec![key]).await?;
        match found.into_iter().next().flatten() {
            Some(m) if m.from == user => {}
            _ => return Err(Error::NoSuchMessage),
        }
        let window = self.retention.recall_window_secs;
        if self.clock.now_secs().saturating_sub(key.time) > window {
            return Err(Error::RecallTooLate(window));
        }
        self.withdraw(user, peer, key, user, source).await
    }

    /// Recalls a message on behalf of `by` (its sender, or an admin: no time limit); it stays in history
    /// flagged as recalled (clients see no body), and both sides' devices are told who recalled it (and
    /// the app's backend, asked by `source`).
    pub async fn withdraw(&self, from: &str, to: &str, key: MsgKey, by: &str, source: &Source) -> Result<(), Error> {
        store::require_pair(&*self.store, from, to).await?;
        let expire = self.clock.now_secs() + self.retention.offline_secs;
        let kind = EventKind::MsgWithdraw { from: from.to_owned(), to: to.to_owned(), key: key.to_string(), unread: 0 };
        let event = self.notifier.event(from, source.platform, source.client_ip.as_deref(), kind);
        match self.store.withdraw(from.to_owned(), to.to_owned(), key, by.to_owned(), expire, event).await? {
            Withdrawn::Done => {
                self.notifier.wake();
                Ok(())
            }
            Withdrawn::NotFound => Err(Error::NoSuchMessage),
            Withdrawn::AlreadyRecalled => Err(Error::AlreadyRecalled),
        }
    }

    /// Marks what `owner` received from `peer` up to `time` (default: now) as read, on every device.
    /// A time ahead of the clock reads as now: nothing sent later has been read yet, and a read time
    /// never moves back, so a future one would keep every later message from counting as unread.
    ///
    /// The app's backend is told (`C2C.CallbackAfterMsgReport`), as from `source`.
    pub async fn set_read(&self, owner: &str, peer: &str, time: Option<i64>, source: &Source) -> Result<(), Error> {
        store::require_pair(&*self.store, owner, peer).await?;
        let now = self.clock.now_secs();
        let time = time.map_or(now, |t| t.min(now));
        let expire = now + self.retention.offline_secs;
        let kind =
            EventKind::MsgReport { reporter: owner.to_owned(), peer: peer.to_owned(), last_read_time: time, unread: 0 };
        let event = self.notifier.event(owner, source.platform, source.client_ip.as_deref(), kind);
        let queued = event.is_some();
        self.store.set_read(owner.to_owned(), peer.to_owned(), time, expire, event).await?;
        if queued {
            self.notifier.wake();
        }
        Ok(())
    }

    /// `reader` acknowledges messages `sender` sent it (those sent with `need_read_receipt`) with read
    /// receipts; the sender's devices are told. Unread counts stay. For each key, the receipt's time, or
    /// `None` when no such message wants one.
    pub async fn send_receipts(
        &self,
        reader: &str,
        sender: &str,
        keys: Vec<MsgKey>,
    ) -> Result<Vec<Option<i64>>, Error> {
        store::require_pair(&*self.store, reader, sender).await?;
        let now = self.clock.now_secs();
        let expire = now + self.retention.offline_secs;
        Ok(self.store.ack_receipts(reader.to_owned(), sender.to_owned(), keys, now, expire).await?)
    }

    /// The messages of `keys` in `owner`'s view of the conversation with `peer` (within the roaming
    /// retention); `None` for a key that names none.
    pub async fn find(&self, owner: &str, peer: &str, keys: Vec<MsgKey>) -> Result<Vec<Option<StoredMessage>>, Error> {
        store::require_pair(&*self.store, owner, peer).await?;
        let cutoff = self.roaming_cutoff();
        let found = self.store.find_messages(owner.to_owned(), peer.to_owned(), keys).await?;
        Ok(found.into_iter().map(|m| m.filter(|m| m.key.time >= cutoff)).collect())
    }

    /// `owner`'s unread count from each peer; `None` for a peer that does not exist.
    pub async fn unread(&self, owner: &str, peers: Vec<String>) -> Result<Vec<Option<u64>>, Error> {
        store::require(&*self.store, owner).await?;
        let exist = self.store.accounts_exist(peers.clone()).await?;
        let counts = self.store.unread(owner.to_owned(), peers).await?;
        Ok(exist.into_iter().zip(counts).map(|(e, n)| e.then_some(n)).collect())
    }

    pub async fn unread_total(&self, owner: &str) -> Result<u64, Error> {
        store::require(&*self.store, owner).await?;
        Ok(self.store.unread_total(owner.to_owned()).await?)
    }

    /// Deletes expired history, sync-log entries, conversations and dedup entries.
    pub async fn purge_expired(&self) -> Result<Purged, Error> {
        let now_ms = self.clock.now_ms();
        let cutoffs = Cutoffs {
            roaming_before: self.roaming_cutoff(),
            offline_before: now_ms.div_euclid(1000),
            dedup_before_ms: now_ms - self.retention.dedup_window_secs * 1000,
        };
        Ok(self.store.purge(cutoffs).await?)
    }

    fn roaming_cutoff(&self) -> i64 {
        self.clock.now_secs() - self.retention.roaming_secs
    }
}

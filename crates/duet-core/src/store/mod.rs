//! The storage traits: domain-level operations, each atomic, that every backend (SQLite now, PostgreSQL
//! later) implements with the same meaning. A backend acknowledges a write only after it is durable
//! under the configured durability mode.
//!
//! The rules that need a consistent view (dedup, "does the recipient exist", unread counters) live
//! inside these operations, so that a backend can run each one as a single transaction.
//!
//! The media index ([`crate::media::MediaIndex`]) is a store of its own, beside these.

use std::sync::Arc;

use async_trait::async_trait;

#[cfg(any(test, feature = "testsuite"))]
pub mod conformance;
#[cfg(any(test, feature = "testsuite"))]
pub mod memory;

use crate::error::Error;
pub use crate::error::{BoxError, StoreError};
use crate::model::event::{AfterEvent, QueuedEvent};
use crate::model::{
    Blocked, ConversationSettings, ConversationView, Delivery, Dnd, ExportCursor, ExportPage, Friend, FriendRequest,
    HistoryPage, HistoryQuery, Import, LogPage, MsgKey, Mute, NewAccount, Outgoing, ProfileValue, ProviderKind, Purged,
    PushDevice, QueuedPush, SearchPage, SearchQuery, Sent, SettingsChange, Settle, StoredMessage,
};

/// A send, as the domain planned it: the store commits it or reports a duplicate.
#[derive(Debug, Clone)]
pub struct SendPlan {
    pub msg: Outgoing,
    /// The message's time (unix seconds): with `msg.random` and its `MsgSeq` (the sender's, or else the
    /// conversation's next, picked by the store) it makes the `MsgKey` of a new message.
    pub time: i64,
    /// Identifies retries: a hash of sender, recipients, `MsgSeq` (or its absence), `MsgRandom` and content.
    pub dedup_key: [u8; 16],
    /// An earlier send with the same `dedup_key` at or after this time (unix ms) is a duplicate.
    pub dedup_since_ms: i64,
    pub now_ms: i64,
    /// Unix seconds after which the sync-log entries expire.
    pub offline_until: i64,
    /// Recent contacts kept per user; the least recent beyond go.
    pub max_conversations: usize,
    /// Queue a push to every registered device of each recipient (not the sender), in the outbox, in
    /// the same commit as the message. `false`: the message is never pushed (no provider configured,
    /// `PushFlag` 1).
    pub push: bool,
    /// The after-send callback's event, written in the same commit (once per recipient that exists, with
    /// the key and the recipient's unread count filled in: [`AfterEvent::fill`]); `None`: no callback.
    pub after_send: Option<AfterEvent>,
}

/// What a send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Committed, for every recipient that exists (the others are listed in [`Sent::failed`]).
    Sent(Sent),
    /// A retry within the dedup window: the first send's result (with [`Sent::duplicate`] set); nothing
    /// was written.
    Duplicate(Sent),
    /// The sender (named) does not exist: nothing was written.
    NoSuchSender(String),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Stored,
    /// A message with the same `MsgSeq`, `MsgRandom` and time is in the conversation already.
    Duplicate,
    /// The sender (named) does not exist: nothing was written.
    NoSuchSender(String),
    /// The recipient (named) does not exist: nothing was written.
    NoSuchRecipient(String),
}

/// What a recall found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawn {
    Done,
    NotFound,
    AlreadyRecalled,
}

/// An edit of a stored message: whichever of `body` (`MsgBody` as compact JSON) and `cloud_custom_data`
/// is given replaces the message's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The message's sender and recipient.
    pub from: String,
    pub to: String,
    pub key: MsgKey,
    pub body: Option<String>,
    pub cloud_custom_data: Option<String>,
    /// The version the editor saw; another one stored is a conflict. `None`: whatever is stored.
    pub base_version: Option<u32>,
}

/// What an edit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modified {
    /// Edited: the message as it is now (its version one more).
    Done(StoredMessage),
    NotFound,
    /// Recalled messages are not edited.
    Recalled,
    /// Edited by someone else since `base_version`: the message as it is now, unchanged.
    Conflict(StoredMessage),
}

/// Times before which stored data has expired, in unix seconds (ms for dedup entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub roaming_before: i64,
    pub offline_before: i64,
    pub dedup_before_ms: i64,
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates the accounts that do not exist; sets the given nick/avatar of all.
    async fn import_accounts(&self, accounts: Vec<NewAccount>, now: i64) -> Result<(), StoreError>;
    /// Deletes accounts, their profiles and every relation row that names them on either side (friends,
    /// friend tags, blacklists, friend requests: see [`RelationStore`]), all in one
    /// transaction; `false` for each that did not exist. Relation rows naming an ID are deleted even when
    /// its account is already gone.
    async fn delete_accounts(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError>;
    /// Which of `ids` exist.
    async fn accounts_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError>;
    /// Invalidates the account's UserSigs issued before `before` (unix seconds); `false` if no such account.
    async fn revoke_sigs(&self, id: String, before: i64) -> Result<bool, StoreError>;
    /// Every account with revoked UserSigs, and the time before which its sigs are refused.
    async fn revocations(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Sets the account's mute (both times, replacing the stored ones); `false` if no such account.
    async fn set_mute(&self, id: String, mute: Mute) -> Result<bool, StoreError>;
    /// Every account whose mute is not the default (either time not 0, past or not), and its mute. An
    /// account's deletion deletes its mute.
    async fn mutes(&self) -> Result<Vec<(String, Mute)>, StoreError>;
    /// Sets profile values, and queues `event` (the profile callback) in the same commit; `false` if the
    /// account does not exist (nothing is written then).
    async fn set_profile(
        &self,
        id: String,
        items: Vec<(String, ProfileValue)>,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError>;
    /// The stored values of `tags` for each of `ids`; `None` for an account that does not exist.
    async fn profiles(
        &self,
        ids: Vec<String>,
        tags: Vec<String>,
    ) -> Result<Vec<Option<Vec<(String, ProfileValue)>>>, StoreError>;
}

/// Receives the sync-log entries each commit appended, in commit order, before the writers are answered.
/// The hub uses it to push entries to live devices in log order.
pub type DeliveryHook = Arc<dyn Fn(Vec<Delivery>) + Send + Sync>;

#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Sets where the entries appended by `send`, `import`, `withdraw` and `set_read` go once committed.
    /// Without a hook they are dropped (nothing is live).
    fn set_delivery_hook(&self, hook: DeliveryHook);
    /// Commits a send: the message, both sides' sync-log entries and conversations, and the dedup entry.
    /// A duplicate returns the first send's result and writes nothing, and so does a send whose sender
    /// does not exist; recipients that do not exist are listed in [`Sent::failed`].
    ///
    /// A message without a `MsgSeq` gets one the store picks: one number for all its recipients, greater
    /// than every `MsgSeq` the store picked before in each of its conversations. History orders by
    /// (time, `MsgSeq`, `MsgRandom`), so same-second messages keep the order in which they were stored.
    async fn send(&self, plan: SendPlan) -> Result<SendOutcome, StoreError>;
    /// Imports a historical message under its key (with the conversation's next `MsgSeq` when it has
    /// none), unless the conversation has a message with the same key already (either direction). Writes
    /// nothing when either account does not exist.
    async fn import(&self, msg: Import, offline_until: i64, max_conversations: usize) -> Result<Imported, StoreError>;
    /// A page of one side's view of a conversation, newest first.
    async fn history(&self, q: HistoryQuery) -> Result<HistoryPage, StoreError>;
    /// Recalls the message `from` sent `to` with `key`, on behalf of `by` (the sender, or an admin):
    /// flagged in history with its revoker, no longer counted as unread, and a recall entry (expiring at
    /// `log_expire_at`) appended to both sides' logs; `event` (the recall callback, with the recipient's
    /// unread count filled in) is queued in the same commit when the recall is done.
    async fn withdraw(
        &self,
        from: String,
        to: String,
        key: MsgKey,
        by: String,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<Withdrawn, StoreError>;
    /// Marks what `owner` received from `peer` at or before `time` as read, and appends a read entry to
    /// `owner`'s log and, when `owner`'s read time moved forward, a peer-read entry (the read receipt) to
    /// `peer`'s; `event` (the read-report callback, with `owner`'s unread count filled in) is queued in
    /// the same commit. `false` if either account does not exist.
    async fn set_read(
        &self,
        owner: String,
        peer: String,
        time: i64,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError>;
    /// `reader` acknowledges messages `sender` sent it with read receipts at `time`: each message of `keys`
    /// that `sender` sent `reader`, asked a receipt for and has not recalled gets its receipt time, and the
    /// first receipt of each appends a receipt entry to `sender`'s log. Unread counts do not change. For
    /// each key, the message's receipt time (an earlier receipt's when it had one), or `None` when no
    /// such message wants a receipt.
    async fn ack_receipts(
        &self,
        reader: String,
        sender: String,
        keys: Vec<MsgKey>,
        time: i64,
        log_expire_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError>;
    /// The messages of `keys` in `owner`'s view of the conversation with `peer` (not those `owner` hid),
    /// `None` for a key that names none.
    async fn find_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
    ) -> Result<Vec<Option<StoredMessage>>, StoreError>;
    /// A page of a search of `q.owner`'s own view of its history, newest first (see [`SearchQuery`]): never a
    /// recalled message, nor one hidden from the owner (deleted, cleared, not kept on the sender's side), nor
    /// one whose peer's account was deleted. At most `min(q.limit, MAX_SEARCH_PAGE)` messages; an owner
    /// that does not exist has none. A search sees every message whose send or import was acknowledged
    /// before the search began, with the text of the last edit acknowledged before it began (a backend may
    /// index a message's searchable text, [`crate::model::Searchable`], after the commit that stores it, but
    /// then brings its index up to date before it searches); a message leaves the search with the commit of
    /// its recall, its purge or its sender's or recipient's account deletion.
    ///
    /// [`MAX_SEARCH_PAGE`]: crate::model::search::MAX_SEARCH_PAGE
    async fn search(&self, q: SearchQuery) -> Result<SearchPage, StoreError>;
    /// `owner`'s unread count from each of `peers` (a peer with no conversation has 0).
    async fn unread(&self, owner: String, peers: Vec<String>) -> Result<Vec<u64>, StoreError>;
    /// `owner`'s unread count over all conversations, but those whose receive option is not
    /// [`ReceiveOpt::Receive`](crate::model::ReceiveOpt::Receive).
    async fn unread_total(&self, owner: String) -> Result<u64, StoreError>;
    /// The last sequence number of `user`'s sync log; `None` if the account does not exist.
    async fn latest_seq(&self, user: String) -> Result<Option<u64>, StoreError>;
    /// `user`'s sync-log entries after `after`, at most `limit`. Entries whose message expired are skipped.
    /// Fewer than `limit` when the text of the entries' messages (body, custom data, the sender's nickname
    /// and avatar) passes `max_bytes`: the page ends after the entry that passed it (so it holds one at
    /// least) and says there is more.
    async fn log_after(&self, user: String, after: u64, limit: usize, max_bytes: usize) -> Result<LogPage, StoreError>;
    /// `user`'s recent contacts with a last message, latest first.
    async fn conversations(&self, user: String, limit: usize) -> Result<Vec<ConversationView>, StoreError>;
    /// Applies `change` to `owner`'s settings of the conversation with `peer` (at `now`, for the pin and
    /// draft times) and appends a settings entry with the result to `owner`'s log. `None` if either account
    /// does not exist.
    async fn update_conversation(
        &self,
        owner: String,
        peer: String,
        change: SettingsChange,
        now: i64,
        log_expire_at: i64,
    ) -> Result<Option<ConversationSettings>, StoreError>;
    /// Edits a message (see [`Edit`]): the sides that show it get a modified entry (expiring at
    /// `log_expire_at`) with the message as it is now.
    async fn modify(&self, edit: Edit, log_expire_at: i64) -> Result<Modified, StoreError>;
    /// Deletes messages of `keys` from `owner`'s side of the conversation with `peer` (the peer keeps
    /// them): hidden from `owner`'s history, no longer unread, no longer the conversation's last message
    /// (the latest one left is), and a deleted entry per message appended to `owner`'s log. For each key,
    /// whether it named a message `owner` still had.
    async fn delete_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
        log_expire_at: i64,
    ) -> Result<Vec<bool>, StoreError>;
    /// Clears `owner`'s history of the conversation with `peer` (every message stored so far is hidden from
    /// `owner`, none is unread) and, with `delete_conversation`, removes `owner`'s side of the conversation
    /// too, with its settings but the receive option (else it stays, without a last message); a cleared entry goes to `owner`'s log. Without
    /// `clear_history` only the conversation goes (its messages stay in history), with the same entry.
    /// `false` if either account does not exist.
    async fn clear_conversation(
        &self,
        owner: String,
        peer: String,
        clear_history: bool,
        delete_conversation: bool,
        log_expire_at: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes what has expired.
    async fn purge(&self, cutoffs: Cutoffs) -> Result<Purged, StoreError>;
}

/// Every stored message of a time range, for the hourly message log and `duet export`: a read of its own,
/// apart from [`MessageStore`], so that a read-only opening of a database (beside a running server) can
/// serve it without a writer.
#[async_trait]
pub trait MessageExport: Send + Sync + 'static {
    /// Every stored message whose time is in [`start`, `end`) (unix seconds), after `after`, at most
    /// `limit` (at least 1 is read when `limit` is 0), in (time, id) order. Messages recalled or hidden
    /// from one side are in it (each is still stored); messages the retention purged are not, and neither
    /// is a message whose sender or recipient account was deleted (the store keeps no UserID for it).
    /// A batch send is one message per recipient.
    async fn export_messages(
        &self,
        start: i64,
        end: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> Result<ExportPage, StoreError>;
}

/// Everything stored about one user's relations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationData {
    pub friends: Vec<Friend>,
    pub blacklist: Vec<Blocked>,
    /// Requests others sent this user.
    pub incoming: Vec<FriendRequest>,
    /// Requests this user sent.
    pub outgoing: Vec<FriendRequest>,
}

/// One write to the relationship tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationChange {
    /// Inserts or replaces `friend` in `owner`'s list.
    PutFriend {
        owner: String,
        friend: Friend,
    },
    DeleteFriend {
        owner: String,
        peer: String,
    },
    PutBlocked {
        owner: String,
        entry: Blocked,
    },
    DeleteBlocked {
        owner: String,
        peer: String,
    },
    /// Inserts or replaces the request from `from` to `to`.
    PutRequest(FriendRequest),
    DeleteRequest {
        from: String,
        to: String,
    },
}

/// The relationship chain's storage. Every backend implements it with the same meaning.
///
/// Rows name users by UserID. Deleting an account ([`crate::store::AccountStore::delete_accounts`]) deletes
/// every relation row that names it, on either side, in the same transaction as the account: a re-created
/// account with the same UserID starts with no relations.
#[async_trait]
pub trait RelationStore: Send + Sync + 'static {
    /// Everything stored about `user`'s relations (empty for an unknown user).
    async fn load_relations(&self, user: String) -> Result<RelationData, StoreError>;
    /// Applies the changes in order, and queues `events` (the relation callbacks), atomically: all or none.
    async fn apply_relations(&self, changes: Vec<RelationChange>, events: Vec<AfterEvent>) -> Result<(), StoreError>;
}

/// Devices' push registrations and the push outbox. A push is queued by [`MessageStore::send`] (see
/// [`SendPlan::push`]) in the message's own commit, so neither exists without the other.
///
/// The outbox is claimed with a lease: a claimed push is invisible to other claims until its lease ends,
/// so with several nodes each push is held by one worker at a time, and a worker that dies leaves its
/// pushes to be claimed again when their leases end.
#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    /// Registers `device` (replacing what that device of that user registered before). A token belongs
    /// to one device: the same provider and token registered by another device or user before is
    /// removed, with the pushes queued for it. `false` if the account does not exist (nothing written).
    async fn register_device(&self, device: PushDevice) -> Result<bool, StoreError>;
    /// Removes `user`'s registration of `device` (every device of the user with `None`) and the pushes
    /// queued for them.
    async fn unregister_devices(&self, user: String, device: Option<String>) -> Result<(), StoreError>;
    /// Forgets every registration of `token` with `provider` (the provider said it is invalid) and the
    /// pushes queued for it; how many registrations went.
    async fn remove_push_token(&self, provider: ProviderKind, token: String) -> Result<u64, StoreError>;
    /// The device was connected until `at` (unix seconds).
    async fn device_seen(&self, user: String, device: String, at: i64) -> Result<(), StoreError>;
    /// Every registration.
    async fn push_devices(&self) -> Result<Vec<PushDevice>, StoreError>;
    /// Claims up to `limit` queued pushes that are due at `now` and not held (never claimed, or their
    /// lease ended), oldest due first, for `owner` until `lease_until`, each with its recipient's total
    /// unread count. A push whose message is gone (expired) is removed instead of returned.
    async fn claim_pushes(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedPush>, StoreError>;
    /// Settles claimed pushes: removed, or due again later with one more attempt counted. A push no
    /// longer in the outbox (its device unregistered meanwhile) is skipped.
    async fn settle_pushes(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError>;
    /// Releases the leases `owner` holds (at start: what a stopped process had claimed is due again).
    async fn release_pushes(&self, owner: String) -> Result<(), StoreError>;
    /// How many pushes are queued, and when the oldest was (unix seconds), for the operator.
    async fn push_backlog(&self) -> Result<(u64, Option<i64>), StoreError>;
    /// Sets `user`'s do-not-disturb window (`None`: none). `false` if the account does not exist.
    async fn set_dnd(&self, user: String, dnd: Option<Dnd>) -> Result<bool, StoreError>;
    /// Every user's do-not-disturb window.
    async fn dnds(&self) -> Result<Vec<(String, Dnd)>, StoreError>;
}

/// The outbox of the after-event callbacks ([`crate::callbacks`]). An event is written in the commit of
/// what it announces (by [`MessageStore::send`], [`MessageStore::withdraw`], [`MessageStore::set_read`],
/// [`RelationStore::apply_relations`], [`AccountStore::set_profile`]), or by [`CallbackStore::queue_events`]
/// for what has no other commit.
///
/// Claimed with a lease, as pushes are; and one user's events are claimed in the order they were written:
/// an event is not claimed while an earlier one of the same user is held or waits for a retry.
#[async_trait]
pub trait CallbackStore: Send + Sync + 'static {
    /// Commits `events` (queued at `now`, unix seconds).
    async fn queue_events(&self, events: Vec<AfterEvent>, now: i64) -> Result<(), StoreError>;
    /// Claims up to `limit` events due at `now` and not held, in the order they were written, for `owner`
    /// until `lease_until`; never one with an earlier event of the same user held or waiting for a retry.
    /// An event this version cannot read is removed instead of returned.
    async fn claim_events(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError>;
    /// Settles claimed events: removed, due again later with one more attempt counted, or released as
    /// they were.
    async fn settle_events(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError>;
    /// Releases the leases `owner` holds (at start: what a stopped process had claimed is due again).
    async fn release_events(&self, owner: String) -> Result<(), StoreError>;
    /// How many events are queued, and when the oldest was (unix seconds), for the operator.
    async fn event_backlog(&self) -> Result<(u64, Option<i64>), StoreError>;
}

/// What the operator asks of a backend: whether it takes writes now (readiness), and its figures.
#[async_trait]
pub trait OpsStore: Send + Sync + 'static {
    /// Succeeds when a write would commit now: the store has not stopped (a failed fsync stops the
    /// embedded store for good), and its database answers a write round trip (an empty transaction
    /// through the same path as sends). The caller bounds the wait.
    async fn check_writable(&self) -> Result<(), StoreError>;
    /// Counts and sizes for `duet status`; counting may scan tables, so it is not for a hot path.
    async fn stats(&self) -> Result<StoreStats, StoreError>;
}

/// A backend's figures (see [`OpsStore::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Accounts that exist.
    pub accounts: u64,
    /// Messages stored (within roaming retention: older ones are purged).
    pub messages: u64,
    /// Bytes the database takes on disk (with its write-ahead log), when the backend can tell.
    pub bytes: Option<u64>,
}

/// A complete backend.
pub trait Store:
    AccountStore + MessageStore + MessageExport + RelationStore + PushStore + CallbackStore + OpsStore
{
}

impl<T: AccountStore + MessageStore + MessageExport + RelationStore + PushStore + CallbackStore + OpsStore> Store
    for T
{
}

/// What one claim of an outbox's worker (push, callbacks) gave.
pub(crate) enum Claimed<T> {
    /// Rows to send.
    Some(Vec<T>),
    /// Nothing due, or the claim failed: the worker waited (for a wake-up, at most a second) and claims
    /// again.
    Nothing,
    /// The store is closed: the worker stops.
    Closed,
}

/// Reads a worker's claim of `what`: a failure is logged and waited out a second, an empty claim waits
/// for `wake` (a commit that queued rows) or a second (retries that fell due).
pub(crate) async fn claimed<T>(
    claim: Result<Vec<T>, StoreError>,
    wake: &tokio::sync::Notify,
    what: &'static str,
) -> Claimed<T> {
    match claim {
        Ok(rows) if !rows.is_empty() => Claimed::Some(rows),
        Ok(_) => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified()).await;
            Claimed::Nothing
        }
        Err(StoreError::Closed) => Claimed::Closed,
        Err(e) => {
            tracing::warn!(error = %e, what, "claiming an outbox's rows failed");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Claimed::Nothing
        }
    }
}

/// `id`'s account must exist.
pub(crate) async fn require(store: &dyn Store, id: &str) -> Result<(), Error> {
    match store.accounts_exist(vec![id.to_owned()]).await?[..] {
        [true] => Ok(()),
        _ => Err(Error::NoSuchAccount(id.to_owned())),
    }
}

/// Both accounts must exist: the first is reported as the sender, the second as the recipient.
pub(crate) async fn require_pair(store: &dyn Store, first: &str, second: &str) -> Result<(), Error> {
    match store.accounts_exist(vec![first.to_owned(), second.to_owned()]).await?[..] {
        [false, _] => Err(Error::NoSuchSender(first.to_owned())),
        [_, false] => Err(Error::NoSuchAccount(second.to_owned())),
        _ => Ok(()),
    }
}

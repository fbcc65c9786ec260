//! [`Core`]: the service every transport calls. It holds the app's identity, the store, the clock and the
//! hub of live sessions, and applies the rules of one-to-one chat around each store operation: a write
//! is committed first, then its sync-log entries are pushed to the live devices concerned.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::Error;
use crate::clock::Clock;
use crate::fanout::{Fanout, Subscriber};
use crate::hub::{Hub, KickReason, LoginPolicy, Presence, Session, SessionKind};
use crate::media::Media;
use crate::model::{
    ConversationView, HistoryPage, HistoryQuery, Import, LogPage, MsgKey, NewAccount, Platform, ProfileValue, Purged,
};
use crate::relations::{Permissions, Relations};
use crate::store::{Cutoffs, Imported, Store, Withdrawn};
use crate::usersig::{self, Claims, UserSigError};

/// The app's identity, the retention rules and the session policy.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub sdkappid: u64,
    pub secret_key: String,
    /// UserIDs allowed to call the REST API and to send as anyone.
    pub admins: Vec<String>,
    /// How long a message waits in the sync log for offline devices, at most (Tencent: 7 days).
    pub offline_retention_secs: i64,
    /// How long history is kept (Tencent: 7 days).
    pub roaming_retention_secs: i64,
    /// How long a retry of the same message is recognised (Tencent: "within the same second"; Duet: longer).
    pub dedup_window_secs: i64,
    /// Recent contacts kept per user (Tencent: 100).
    pub recent_contacts_max: usize,
    /// Which devices of a user may be online together.
    pub login_policy: LoginPolicy,
    /// Who may message whom on the client send path (Tencent's defaults: anyone; blacklists drop silently).
    pub permissions: Permissions,
}

impl CoreConfig {
    pub const DAY: i64 = 86_400;

    /// Tencent's defaults for everything but the app's identity.
    pub fn new(sdkappid: u64, secret_key: impl Into<String>) -> CoreConfig {
        CoreConfig {
            sdkappid,
            secret_key: secret_key.into(),
            admins: vec!["administrator".into()],
            offline_retention_secs: 7 * Self::DAY,
            roaming_retention_secs: 7 * Self::DAY,
            dedup_window_secs: 600,
            recent_contacts_max: 100,
            login_policy: LoginPolicy::default(),
            permissions: Permissions::default(),
        }
    }
}

/// Why a UserSig was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Sig(#[from] UserSigError),
    /// The sig was issued before the account was kicked.
    #[error("usersig was invalidated by a kick; generate a new one")]
    Revoked,
}

/// Why a device login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Core(#[from] Error),
}

/// A device that logged in.
#[derive(Debug)]
pub struct LoggedIn {
    pub session: Session,
    pub claims: Claims,
    /// The last sequence number of the user's sync log.
    pub latest: u64,
}

pub struct Core {
    pub(crate) config: CoreConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hub: Arc<Hub>,
    /// Where committed sync-log entries go (the hub first).
    pub(crate) fanout: Fanout,
    /// The relationship cache the send check reads (see [`crate::relations`]).
    pub(crate) relations: Relations,
    /// Account -> unix seconds before which its UserSigs are refused (set by kick). Kept in memory so
    /// that authenticating costs no storage read; loaded at start, written through on each kick.
    revoked: RwLock<HashMap<String, i64>>,
    /// Uploaded files, when the server serves them.
    media: Option<Arc<Media>>,
}

impl Core {
    /// Opens the domain over `store`: loads revocations and makes sure every admin account exists.
    pub async fn open(config: CoreConfig, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Result<Core, Error> {
        let revoked = store.revocations().await?.into_iter().collect();
        let admins = config.admins.iter().map(|id| NewAccount { id: id.clone(), nick: None, face_url: None }).collect();
        store.import_accounts(admins, clock.now_secs()).await?;
        let hub = Arc::new(Hub::default());
        let fanout = Fanout::default();
        fanout.subscribe(hub.clone());
        let subscribers = fanout.clone();
        store.set_delivery_hook(Arc::new(move |deliveries| subscribers.deliver(&deliveries)));
        Ok(Core {
            config,
            store,
            clock,
            hub,
            fanout,
            relations: Relations::default(),
            revoked: RwLock::new(revoked),
            media: None,
        })
    }

    /// The same domain, serving uploaded files from `media` (and purging them with the history).
    pub fn with_media(mut self, media: Arc<Media>) -> Core {
        self.media = Some(media);
        self
    }

    pub fn media(&self) -> Option<&Arc<Media>> {
        self.media.as_ref()
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Adds a subscriber of committed sync-log entries (see [`crate::fanout`]), after the hub.
    pub fn subscribe(&self, subscriber: Arc<dyn Subscriber>) {
        self.fanout.subscribe(subscriber);
    }

    pub fn is_admin(&self, id: &str) -> bool {
        self.config.admins.iter().any(|a| a == id)
    }

    /// Checks that `usersig` is a valid, current ticket of this app for `identifier`.
    pub fn authenticate(&self, identifier: &str, usersig: &str) -> Result<Claims, AuthError> {
        let claims =
            usersig::verify(&self.config.secret_key, self.config.sdkappid, identifier, usersig, self.clock.now_secs())?;
        let revoked_before = self.revoked.read().unwrap_or_else(|e| e.into_inner()).get(identifier).copied();
        if revoked_before.is_some_and(|before| claims.time < before) {
            return Err(AuthError::Revoked);
        }
        Ok(claims)
    }

    // ---- accounts and profiles -------------------------------------------------------------------

    pub async fn import_accounts(&self, accounts: Vec<NewAccount>) -> Result<(), Error> {
        Ok(self.store.import_accounts(accounts, self.clock.now_secs()).await?)
    }

    pub async fn delete_accounts(&self, ids: Vec<String>) -> Result<Vec<bool>, Error> {
        // Access to uploads goes first: if the deletion then fails, the user has lost access to files, never
        // kept it past the deletion (the media index is a database of its own, not in the same commit).
        if let Some(media) = &self.media {
            media.forget_users(ids.clone()).await?;
        }
        let existed = self.delete_accounts_and_relations(ids.clone()).await?;
        for (id, existed) in ids.iter().zip(&existed) {
            if *existed {
                self.hub.kick_all(id, KickReason::Admin);
            }
        }
        Ok(existed)
    }

    pub async fn accounts_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, Error> {
        Ok(self.store.accounts_exist(ids).await?)
    }

    /// Invalidates every UserSig of `id` issued before now and logs out all its devices.
    pub async fn kick(&self, id: &str) -> Result<(), Error> {
        let now = self.clock.now_secs();
        if !self.store.revoke_sigs(id.to_owned(), now).await? {
            return Err(Error::NoSuchAccount(id.to_owned()));
        }
        self.revoked.write().unwrap_or_else(|e| e.into_inner()).insert(id.to_owned(), now);
        self.hub.kick_all(id, KickReason::Admin);
        Ok(())
    }

    pub async fn set_profile(&self, id: &str, items: Vec<(String, ProfileValue)>) -> Result<(), Error> {
        if self.store.set_profile(id.to_owned(), items).await? {
            Ok(())
        } else {
            Err(Error::NoSuchAccount(id.to_owned()))
        }
    }

    pub async fn profiles(
        &self,
        ids: Vec<String>,
        tags: Vec<String>,
    ) -> Result<Vec<Option<Vec<(String, ProfileValue)>>>, Error> {
        Ok(self.store.profiles(ids, tags).await?)
    }

    // ---- device sessions ---------------------------------------------------------------------------

    /// Logs a session in: checks the UserSig, registers the user on first login, and, for a device,
    /// applies the multi-device policy (kicking what it no longer allows; see [`SessionKind`]).
    pub async fn login(
        &self,
        user: &str,
        usersig: &str,
        platform: Platform,
        device: &str,
        kind: SessionKind,
    ) -> Result<LoggedIn, LoginError> {
        let claims = self.authenticate(user, usersig)?;
        let latest = match self.store.latest_seq(user.to_owned()).await.map_err(Error::from)? {
            Some(latest) => latest,
            None => {
                // The first login registers the account, as in Tencent IM.
                let account = NewAccount { id: user.to_owned(), nick: None, face_url: None };
                self.store.import_accounts(vec![account], self.clock.now_secs()).await.map_err(Error::from)?;
                0
            }
        };
        let session = self.hub.register(self.config.login_policy, user, platform, device, kind);
        Ok(LoggedIn { session, claims, latest })
    }

    /// The device's connection ended without a logout: a mobile device stays `PushOnline`.
    pub fn disconnect(&self, session: &Session) {
        self.hub.unregister(session, Some(self.clock.now_secs()));
    }

    /// The session logged out; a device's logout ends the user's `PushOnline` state.
    pub fn logout(&self, session: &Session) {
        self.hub.unregister(session, None);
        if session.kind == SessionKind::Device
            && !matches!(self.hub.presence(&session.user, self.clock.now_secs()), Presence::Online(_))
        {
            self.hub.clear_push_online(&session.user);
        }
    }

    pub fn presence(&self, user: &str) -> Presence {
        self.hub.presence(user, self.clock.now_secs())
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
        self.require(user).await?;
        let mut items = self.store.conversations(user.to_owned(), self.config.recent_contacts_max).await?;
        let cutoff = self.roaming_cutoff();
        items.retain(|c| c.time >= cutoff);
        Ok(items)
    }

    /// Removes `owner`'s conversation with `peer` (and with `clear_history`, hides its messages from `owner`).
    pub async fn delete_conversation(&self, owner: &str, peer: &str, clear_history: bool) -> Result<(), Error> {
        self.require_pair(owner, peer).await?;
        self.store.delete_conversation(owner.to_owned(), peer.to_owned(), clear_history).await?;
        Ok(())
    }

    // ---- messages ----------------------------------------------------------------------------------

    /// Imports a historical message with its original time.
    pub async fn import(&self, msg: Import) -> Result<(), Error> {
        let offline_until = msg.time.saturating_add(self.config.offline_retention_secs);
        match self.store.import(msg, offline_until, self.config.recent_contacts_max).await? {
            Imported::Stored | Imported::Duplicate => Ok(()),
            Imported::NoSuchSender(from) => Err(Error::NoSuchSender(from)),
            Imported::NoSuchRecipient(to) => Err(Error::NoSuchAccount(to)),
        }
    }

    /// A page of one side's history, within the roaming retention.
    pub async fn history(&self, mut q: HistoryQuery) -> Result<HistoryPage, Error> {
        self.require_pair(&q.operator, &q.peer).await?;
        q.min_time = q.min_time.max(self.roaming_cutoff());
        if q.min_time > q.max_time || q.limit == 0 {
            return Ok(HistoryPage { messages: Vec::new(), more: false, conv_seq: 0 });
        }
        Ok(self.store.history(q).await?)
    }

    /// Recalls a message; it stays in history flagged as recalled, and both sides' devices are told.
    pub async fn withdraw(&self, from: &str, to: &str, key: MsgKey) -> Result<(), Error> {
        self.require_pair(from, to).await?;
        let expire = self.clock.now_secs() + self.config.offline_retention_secs;
        match self.store.withdraw(from.to_owned(), to.to_owned(), key, expire).await? {
            Withdrawn::Done => Ok(()),
            Withdrawn::NotFound => Err(Error::NoSuchMessage),
            Withdrawn::AlreadyRecalled => Err(Error::AlreadyRecalled),
        }
    }

    /// Marks what `owner` received from `peer` up to `time` (default: now) as read, on every device.
    /// A time ahead of the clock reads as now: nothing sent later has been read yet, and a read time
    /// never moves back, so a future one would keep every later message from counting as unread.
    pub async fn set_read(&self, owner: &str, peer: &str, time: Option<i64>) -> Result<(), Error> {
        self.require_pair(owner, peer).await?;
        let now = self.clock.now_secs();
        let time = time.map_or(now, |t| t.min(now));
        let expire = now + self.config.offline_retention_secs;
        self.store.set_read(owner.to_owned(), peer.to_owned(), time, expire).await?;
        Ok(())
    }

    /// `owner`'s unread count from each peer; `None` for a peer that does not exist.
    pub async fn unread(&self, owner: &str, peers: Vec<String>) -> Result<Vec<Option<u64>>, Error> {
        self.require(owner).await?;
        let exist = self.store.accounts_exist(peers.clone()).await?;
        let counts = self.store.unread(owner.to_owned(), peers).await?;
        Ok(exist.into_iter().zip(counts).map(|(e, n)| e.then_some(n)).collect())
    }

    pub async fn unread_total(&self, owner: &str) -> Result<u64, Error> {
        self.require(owner).await?;
        Ok(self.store.unread_total(owner.to_owned()).await?)
    }

    /// Deletes expired history, sync-log entries, conversations and dedup entries.
    pub async fn purge_expired(&self) -> Result<Purged, Error> {
        let now_ms = self.clock.now_ms();
        let cutoffs = Cutoffs {
            roaming_before: self.roaming_cutoff(),
            offline_before: now_ms.div_euclid(1000),
            dedup_before_ms: now_ms - self.config.dedup_window_secs * 1000,
        };
        Ok(self.store.purge(cutoffs).await?)
    }

    fn roaming_cutoff(&self) -> i64 {
        self.clock.now_secs() - self.config.roaming_retention_secs
    }

    pub(crate) async fn require(&self, id: &str) -> Result<(), Error> {
        match self.store.accounts_exist(vec![id.to_owned()]).await?[..] {
            [true] => Ok(()),
            _ => Err(Error::NoSuchAccount(id.to_owned())),
        }
    }

    /// Both accounts must exist: the first is reported as the sender, the second as the recipient.
    async fn require_pair(&self, first: &str, second: &str) -> Result<(), Error> {
        match self.store.accounts_exist(vec![first.to_owned(), second.to_owned()]).await?[..] {
            [false, _] => Err(Error::NoSuchSender(first.to_owned())),
            [_, false] => Err(Error::NoSuchAccount(second.to_owned())),
            _ => Ok(()),
        }
    }
}

//! The accounts service: who exists, who may act for the app, whose UserSigs still count and who is
//! muted. It owns account creation and deletion, profiles, UserSig verification, the kick that revokes a
//! user's sigs, and the global mute (`openconfigsvr/setnospeaking`) that the send pipeline's permit stage
//! reads.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::callbacks::{EventKind, Notifier, Source};
use crate::clock::Clock;
use crate::error::{Error, StoreError};
use crate::hub::{Hub, KickReason, Notice};
use crate::media::Media;
use crate::model::{Mute, NewAccount, ProfileValue};
use crate::push::Pusher;
use crate::relations::Relations;
use crate::store::{self, Store};
use crate::usersig::{self, Claims, UserSigError};

/// Why a UserSig was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Sig(#[from] UserSigError),
    /// The sig was issued before the account was kicked.
    #[error("usersig was invalidated by a kick; generate a new one")]
    Revoked,
}

/// How long one kind of a user's sends is muted: as set, from now; as read, what remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteTime {
    /// Not muted (as set: unmute).
    Off,
    /// Muted for this many seconds (more than 0).
    Secs(u32),
    /// Muted for good.
    Forever,
}

impl MuteTime {
    /// The until-time of a mute of this length set at `now`.
    fn until(self, now: i64) -> i64 {
        match self {
            MuteTime::Off | MuteTime::Secs(0) => 0,
            MuteTime::Secs(secs) => now + i64::from(secs),
            MuteTime::Forever => Mute::FOREVER,
        }
    }

    /// What remains at `now` of a mute until `until`.
    fn left(until: i64, now: i64) -> MuteTime {
        match until {
            Mute::FOREVER => MuteTime::Forever,
            until if until > now => MuteTime::Secs(u32::try_from(until - now).unwrap_or(u32::MAX)),
            _ => MuteTime::Off,
        }
    }
}

/// The app's identity: what its UserSigs are checked against, and its admins.
#[derive(Debug, Clone)]
pub struct AppIdentity {
    pub sdkappid: u64,
    pub secret_key: crate::redact::Secret,
    /// UserIDs allowed to call the REST API and to send as anyone.
    pub admins: Vec<String>,
}

pub struct Accounts {
    app: AppIdentity,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    relations: Arc<Relations>,
    media: Option<Arc<Media>>,
    push: Arc<Pusher>,
    notifier: Arc<Notifier>,
    /// Account -> unix seconds before which its UserSigs are refused (set by kick). Kept in memory so
    /// that authenticating costs no storage read; loaded at start, written through on each kick.
    revoked: RwLock<HashMap<String, i64>>,
    /// Account -> its mute, for the accounts whose mute is not the default. Kept in memory so that a send
    /// costs no storage read (nothing at all while no one is muted); loaded at start, written through by
    /// [`Accounts::set_mute`], emptied of deleted accounts.
    mutes: RwLock<HashMap<String, Mute>>,
    /// Serialises the writes of mutes (and account deletions), each held across its store write, so that
    /// `mutes` changes in the order the store does.
    mute_writes: tokio::sync::Mutex<()>,
}

impl Accounts {
    /// Loads the revocations and makes sure every admin account exists.
    #[expect(clippy::too_many_arguments, reason = "the services accounts reach, wired once by `Core::open`")]
    pub async fn open(
        app: AppIdentity,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hub: Arc<Hub>,
        relations: Arc<Relations>,
        media: Option<Arc<Media>>,
        push: Arc<Pusher>,
        notifier: Arc<Notifier>,
    ) -> Result<Accounts, StoreError> {
        let revoked = store.revocations().await?.into_iter().collect();
        let now = clock.now_secs();
        // Mutes that have ended are left out: they mute nothing, and read as no mute.
        let mutes = store.mutes().await?.into_iter().filter(|(_, m)| m.c2c_until > now || m.group_until > now);
        let admins = app.admins.iter().map(|id| NewAccount { id: id.clone(), nick: None, face_url: None }).collect();
        store.import_accounts(admins, now).await?;
        Ok(Accounts {
            app,
            store,
            clock,
            hub,
            relations,
            media,
            push,
            notifier,
            revoked: RwLock::new(revoked),
            mutes: RwLock::new(mutes.collect()),
            mute_writes: tokio::sync::Mutex::default(),
        })
    }

    pub fn is_admin(&self, id: &str) -> bool {
        self.app.admins.iter().any(|a| a == id)
    }

    /// Checks that `usersig` is a valid, current ticket of this app for `identifier`.
    pub fn authenticate(&self, identifier: &str, usersig: &str) -> Result<Claims, AuthError> {
        let claims = usersig::verify(
            self.app.secret_key.expose(),
            self.app.sdkappid,
            identifier,
            usersig,
            self.clock.now_secs(),
        )?;
        let revoked_before = self.revoked.read().unwrap_or_else(|e| e.into_inner()).get(identifier).copied();
        if revoked_before.is_some_and(|before| claims.time < before) {
            return Err(AuthError::Revoked);
        }
        Ok(claims)
    }

    /// Creates the accounts that do not exist; sets the given nick/avatar of all.
    pub async fn import(&self, accounts: Vec<NewAccount>) -> Result<(), Error> {
        Ok(self.store.import_accounts(accounts, self.clock.now_secs()).await?)
    }

    /// Deletes accounts with their profiles, relations and access to uploads, and logs out their devices;
    /// `false` for each that did not exist.
    pub async fn delete(&self, ids: Vec<String>) -> Result<Vec<bool>, Error> {
        // Access to uploads goes first: if the deletion then fails, the user has lost access to files, never
        // kept it past the deletion (the media index is a database of its own, not in the same commit).
        if let Some(media) = &self.media {
            media.forget_users(ids.clone()).await?;
        }
        // Held across the deletion, so that no mute set meanwhile is lost or outlives its account.
        let _mute_writes = self.mute_writes.lock().await;
        let existed = self.relations.delete_accounts_and_relations(ids.clone()).await?;
        {
            let mut mutes = self.mutes.write().unwrap_or_else(|e| e.into_inner());
            for (id, _) in ids.iter().zip(&existed).filter(|(_, existed)| **existed) {
                mutes.remove(id);
            }
        }
        for (id, existed) in ids.iter().zip(&existed) {
            if *existed {
                self.hub.kick_all(id, KickReason::Admin);
                let user = id.clone();
                self.hub.publish(Notice::Kick { user, reason: KickReason::Admin, revoked_before: None, deleted: true });
            }
        }
        Ok(existed)
    }

    /// Which of `ids` exist.
    pub async fn exist(&self, ids: Vec<String>) -> Result<Vec<bool>, Error> {
        Ok(self.store.accounts_exist(ids).await?)
    }

    /// `id`'s account must exist.
    pub async fn require(&self, id: &str) -> Result<(), Error> {
        store::require(&*self.store, id).await
    }

    /// Invalidates every UserSig of `id` issued before now and logs out all its devices.
    pub async fn kick(&self, id: &str) -> Result<(), Error> {
        let now = self.clock.now_secs();
        if !self.store.revoke_sigs(id.to_owned(), now).await? {
            return Err(Error::NoSuchAccount(id.to_owned()));
        }
        self.revoked.write().unwrap_or_else(|e| e.into_inner()).insert(id.to_owned(), now);
        self.hub.kick_all(id, KickReason::Admin);
        let user = id.to_owned();
        self.hub.publish(Notice::Kick { user, reason: KickReason::Admin, revoked_before: Some(now), deleted: false });
        // Kicked devices get no more pushes.
        self.push.unregister(id, None).await?;
        Ok(())
    }

    /// Mutes or unmutes `id`'s one-to-one (`c2c`) and group sends from now (Duet has no groups: that
    /// mute is kept and read back, and refuses nothing). `None` leaves that mute as it is.
    pub async fn set_mute(&self, id: &str, c2c: Option<MuteTime>, group: Option<MuteTime>) -> Result<(), Error> {
        let _writing = self.mute_writes.lock().await;
        let now = self.clock.now_secs();
        let old = self.mutes.read().unwrap_or_else(|e| e.into_inner()).get(id).copied().unwrap_or_default();
        // A mute that has ended is written as none.
        let kept = |until: i64| if until > now { until } else { 0 };
        let mute = Mute {
            c2c_until: c2c.map_or(kept(old.c2c_until), |t| t.until(now)),
            group_until: group.map_or(kept(old.group_until), |t| t.until(now)),
        };
        if !self.store.set_mute(id.to_owned(), mute).await? {
            return Err(Error::NoSuchAccount(id.to_owned()));
        }
        self.remember_mute(id, mute);
        self.hub.publish(Notice::Mute { user: id.to_owned(), mute });
        Ok(())
    }

    fn remember_mute(&self, id: &str, mute: Mute) {
        let mut mutes = self.mutes.write().unwrap_or_else(|e| e.into_inner());
        if mute == Mute::default() {
            mutes.remove(id);
        } else {
            mutes.insert(id.to_owned(), mute);
        }
    }

    /// Another node kicked `id` (refusing its UserSigs issued before `revoked_before`) or deleted its
    /// account: this node's memory of it follows, and its sessions here are logged out.
    pub(crate) fn kicked_elsewhere(&self, id: &str, reason: KickReason, revoked_before: Option<i64>, deleted: bool) {
        if let Some(before) = revoked_before {
            let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
            let at = revoked.entry(id.to_owned()).or_insert(before);
            *at = (*at).max(before);
        }
        if deleted {
            self.mutes.write().unwrap_or_else(|e| e.into_inner()).remove(id);
            self.relations.forget_deleted(&[id.to_owned()]);
        }
        self.hub.kick_all(id, reason);
    }

    /// Another node set `id`'s mute.
    pub(crate) fn muted_elsewhere(&self, id: &str, mute: Mute) {
        self.remember_mute(id, mute);
    }

    /// What remains of `id`'s one-to-one and group mutes.
    pub async fn mute(&self, id: &str) -> Result<(MuteTime, MuteTime), Error> {
        self.require(id).await?;
        let mute = self.mutes.read().unwrap_or_else(|e| e.into_inner()).get(id).copied().unwrap_or_default();
        let now = self.clock.now_secs();
        Ok((MuteTime::left(mute.c2c_until, now), MuteTime::left(mute.group_until, now)))
    }

    /// Whether `id`'s one-to-one sends are muted now: the send pipeline's first check of a client send. A
    /// hash lookup, none while no one is muted.
    pub fn c2c_muted(&self, id: &str) -> bool {
        let mutes = self.mutes.read().unwrap_or_else(|e| e.into_inner());
        !mutes.is_empty() && mutes.get(id).is_some_and(|m| m.c2c_until > self.clock.now_secs())
    }

    /// Sets profile values of `id`, as `source` asks; the app's backend is told
    /// (`Profile.CallbackPortraitSet`).
    pub async fn set_profile(
        &self,
        id: &str,
        items: Vec<(String, ProfileValue)>,
        source: &Source,
    ) -> Result<(), Error> {
        let shown = items
            .iter()
            .map(|(tag, value)| {
                let value = match value {
                    ProfileValue::Text(t) => serde_json::Value::from(t.as_str()),
                    ProfileValue::Number(n) => serde_json::Value::from(*n),
                };
                (tag.clone(), value)
            })
            .collect();
        let operator = source.admin.clone().unwrap_or_else(|| id.to_owned());
        let kind = EventKind::PortraitSet { operator, items: shown };
        let event = self.notifier.event(id, source.platform, source.client_ip.as_deref(), kind);
        let queued = event.is_some();
        if self.store.set_profile(id.to_owned(), items, event).await? {
            if queued {
                self.notifier.wake();
            }
            Ok(())
        } else {
            Err(Error::NoSuchAccount(id.to_owned()))
        }
    }

    /// The stored values of `tags` for each of `ids`; `None` for an account that does not exist.
    pub async fn profiles(
        &self,
        ids: Vec<String>,
        tags: Vec<String>,
    ) -> Result<Vec<Option<Vec<(String, ProfileValue)>>>, Error> {
        Ok(self.store.profiles(ids, tags).await?)
    }
}

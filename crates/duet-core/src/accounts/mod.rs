//! The accounts service: who exists, who may act for the app, and whose UserSigs still count. It owns
//! account creation and deletion, profiles, UserSig verification and the kick that revokes a user's sigs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::callbacks::{EventKind, Notifier, Source};
use crate::clock::Clock;
use crate::error::{Error, StoreError};
use crate::hub::{Hub, KickReason};
use crate::media::Media;
use crate::model::{NewAccount, ProfileValue};
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

/// The app's identity: what its UserSigs are checked against, and its admins.
#[derive(Debug, Clone)]
pub struct AppIdentity {
    pub sdkappid: u64,
    pub secret_key: String,
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
        let admins = app.admins.iter().map(|id| NewAccount { id: id.clone(), nick: None, face_url: None }).collect();
        store.import_accounts(admins, clock.now_secs()).await?;
        Ok(Accounts { app, store, clock, hub, relations, media, push, notifier, revoked: RwLock::new(revoked) })
    }

    pub fn is_admin(&self, id: &str) -> bool {
        self.app.admins.iter().any(|a| a == id)
    }

    /// Checks that `usersig` is a valid, current ticket of this app for `identifier`.
    pub fn authenticate(&self, identifier: &str, usersig: &str) -> Result<Claims, AuthError> {
        let claims =
            usersig::verify(&self.app.secret_key, self.app.sdkappid, identifier, usersig, self.clock.now_secs())?;
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
        let existed = self.relations.delete_accounts_and_relations(ids.clone()).await?;
        for (id, existed) in ids.iter().zip(&existed) {
            if *existed {
                self.hub.kick_all(id, KickReason::Admin);
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
        // Kicked devices get no more pushes.
        self.push.unregister(id, None).await?;
        Ok(())
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

//! The sessions service: a device or a tool logs in with its UserSig, is registered in the [`Hub`] under
//! the multi-device policy, and logs out or disconnects; presence follows. The first login of a UserID
//! registers its account, as in Tencent IM.

use std::sync::Arc;

use crate::accounts::{Accounts, AuthError};
use crate::clock::Clock;
use crate::error::Error;
use crate::hub::{Hub, LoginPolicy, Presence, Session, SessionKind};
use crate::model::{NewAccount, Platform};
use crate::push::Pusher;
use crate::store::Store;
use crate::usersig::Claims;

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

pub struct Sessions {
    accounts: Arc<Accounts>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    push: Arc<Pusher>,
    policy: LoginPolicy,
}

impl Sessions {
    pub fn new(
        accounts: Arc<Accounts>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hub: Arc<Hub>,
        push: Arc<Pusher>,
        policy: LoginPolicy,
    ) -> Sessions {
        Sessions { accounts, store, clock, hub, push, policy }
    }

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
        let claims = self.accounts.authenticate(user, usersig)?;
        let latest = match self.store.latest_seq(user.to_owned()).await.map_err(Error::from)? {
            Some(latest) => latest,
            None => {
                let account = NewAccount { id: user.to_owned(), nick: None, face_url: None };
                self.accounts.import(vec![account]).await?;
                0
            }
        };
        let session = self.hub.register(self.policy, user, platform, device, kind);
        // The devices this login logged out lose their push registrations, as a logout would.
        for displaced in &session.displaced {
            if let Err(e) = self.push.unregister(user, Some(displaced)).await {
                tracing::warn!(error = %e, user, "ending a displaced device's push registration failed");
            }
        }
        Ok(LoggedIn { session, claims, latest })
    }

    /// The device's connection ended without a logout: a mobile device stays `PushOnline`, and a device
    /// registered for push gets pushes from now on.
    pub async fn disconnect(&self, session: &Session) {
        self.hub.unregister(session, Some(self.clock.now_secs()));
        if session.kind == SessionKind::Device
            && let Err(e) = self.push.disconnected(session).await
        {
            tracing::warn!(error = %e, user = session.user, "recording a device's disconnect for push failed");
        }
    }

    /// The session logged out; a device's logout ends the user's `PushOnline` state and its push
    /// registration.
    pub async fn logout(&self, session: &Session) {
        self.hub.unregister(session, None);
        if session.kind == SessionKind::Device
            && let Err(e) = self.push.unregister(&session.user, Some(&session.device)).await
        {
            tracing::warn!(error = %e, user = session.user, "ending a device's push registration failed");
        }
        if session.kind == SessionKind::Device
            && !matches!(self.hub.presence(&session.user, self.clock.now_secs()), Presence::Online(_))
        {
            self.hub.clear_push_online(&session.user);
        }
    }

    pub fn presence(&self, user: &str) -> Presence {
        self.hub.presence(user, self.clock.now_secs())
    }
}

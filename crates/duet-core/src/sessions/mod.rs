//! The sessions service: a device or a tool logs in with its UserSig, is registered in the [`Hub`] under
//! the multi-device policy, and logs out or disconnects; presence follows. The first login of a UserID
//! registers its account, as in Tencent IM.

use std::sync::Arc;

use crate::accounts::{Accounts, AuthError};
use crate::callbacks::{EventKind, Notifier, opt_platform};
use crate::clock::Clock;
use crate::error::Error;
use crate::hub::{Hub, KickReason, LoginPolicy, Notice, Presence, Session, SessionKind};
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
    notifier: Arc<Notifier>,
    policy: LoginPolicy,
}

/// How a device's connection ended without a logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Closed by the client, the network, or the server (a kick, a slow reader, shutdown).
    Closed,
    /// Nothing heard for the idle timeout.
    TimedOut,
    /// The same device connected again, and this connection is stale: the device is still online.
    Replaced,
}

impl Sessions {
    pub fn new(
        accounts: Arc<Accounts>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hub: Arc<Hub>,
        push: Arc<Pusher>,
        notifier: Arc<Notifier>,
        policy: LoginPolicy,
    ) -> Sessions {
        Sessions { accounts, store, clock, hub, push, notifier, policy }
    }

    /// Tells the app's backend that a device's state changed (`State.StateChange`): `action` `Login`,
    /// `Logout` or `Disconnect`, for Tencent's `reason`. A tool's transient session tells nothing.
    async fn state_changed(&self, session: &Session, action: &str, reason: &str) {
        if session.kind != SessionKind::Device {
            return;
        }
        let kind = EventKind::StateChange { action: action.to_owned(), reason: reason.to_owned() };
        let platform = opt_platform(session.platform);
        let Some(event) = self.notifier.event(&session.user, platform, session.client_ip.as_deref(), kind) else {
            return;
        };
        if let Err(e) = self.notifier.queue(vec![event]).await {
            tracing::warn!(error = %e, user = session.user, action, "queueing the state-change callback failed");
        }
    }

    /// Logs a session in: checks the UserSig, registers the user on first login, and, for a device,
    /// applies the multi-device policy (kicking what it no longer allows; see [`SessionKind`]). `client_ip`:
    /// where the device connects from, for the app's callbacks.
    pub async fn login(
        &self,
        user: &str,
        usersig: &str,
        platform: Platform,
        device: &str,
        kind: SessionKind,
        client_ip: Option<String>,
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
        let mut session = self.hub.register(self.policy, user, platform, device, kind);
        session.client_ip = client_ip;
        if kind == SessionKind::Device
            && let Some(directory) = self.hub.directory()
        {
            // The policy covers the user's devices on every node: those elsewhere that no longer fit go too.
            let elsewhere = directory.elsewhere(user).await;
            let here = self.hub.devices_in_group(self.policy, user, platform);
            for (other, reason) in self.policy.displaced_elsewhere(platform, device, here, &elsewhere.devices) {
                if reason == KickReason::OtherDevice {
                    session.displaced.push(other.clone());
                }
                self.hub.publish(Notice::KickDevice { user: user.to_owned(), device: other, reason });
            }
        }
        self.state_changed(&session, "Login", "Register").await;
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
    pub async fn disconnect(&self, session: &Session, gone: Gone) {
        self.hub.unregister(session, Some(self.clock.now_secs()));
        match gone {
            Gone::Closed => self.state_changed(session, "Disconnect", "LinkClose").await,
            Gone::TimedOut => self.state_changed(session, "Disconnect", "TimeOut").await,
            Gone::Replaced => {}
        }
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
        self.state_changed(session, "Logout", "Unregister").await;
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

    /// `user`'s status over the whole cluster: online on the platforms of its devices on every node, else
    /// `PushOnline` from this node or another (a node that died leaves its mobile devices `PushOnline`).
    pub async fn presence(&self, user: &str) -> Presence {
        let now = self.clock.now_secs();
        let here = self.hub.presence(user, now);
        let Some(directory) = self.hub.directory() else { return here };
        let elsewhere = directory.elsewhere(user).await;
        let mut platforms = match here {
            Presence::Online(p) => p,
            _ => Vec::new(),
        };
        platforms.extend(elsewhere.devices.iter().map(|d| d.platform));
        if !platforms.is_empty() {
            return Presence::Online(platforms);
        }
        let latest = |a: Option<(Platform, i64)>, b: Option<(Platform, i64)>| match (a, b) {
            (Some(x), Some(y)) => Some(if y.1 > x.1 { y } else { x }),
            (x, y) => x.or(y),
        };
        match latest(self.hub.push_online_since(user), elsewhere.push_online) {
            Some((platform, at)) if now - at < crate::hub::PUSH_ONLINE_SECS => Presence::PushOnline(platform),
            _ => Presence::Offline,
        }
    }
}

//! Offline push: a device registers the token its maker's push service gave it; a committed message to
//! a user with registered devices queues one push per device in the store's outbox, in the message's own
//! commit ([`crate::store::SendPlan::push`]); a worker ([`Pusher::run`]) claims queued pushes with a lease
//! and sends them through the providers, a bounded number at a time per provider.
//!
//! When a device is pushed to (Tencent's rules): while it is not connected (a mobile device that dropped
//! its connection without logging out is `PushOnline`), or connected with its app in the background. Not:
//! when connected in the foreground (it got the message over the connection), when it logged out or was
//! kicked (its registration is gone), when it has been away longer than [`PushConfig::stale_after_secs`]
//! (7 days), for a message with `OfflinePushInfo.PushFlag` 1, an online-only message, a message the
//! permission policy dropped (never stored), or one of custom elements without a `Desc`.
//!
//! A push is settled once: sent, or dropped (a permanent failure, a token the provider calls invalid,
//! which is then forgotten, too many attempts, too old); a transient failure is tried again with
//! exponential backoff. A push is removed from the outbox right after its provider accepted it: only a
//! crash between the two sends it again.

pub mod content;
pub mod provider;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use content::{Languages, Texts};
pub use provider::{
    AndroidOptions, ApnsOptions, Notification, Outcome, Provider, ProviderKind, Target, UnknownProvider,
};

use crate::clock::Clock;
use crate::error::Error;
use crate::hub::{DeviceState, Hub, Session, SessionKind};
use crate::model::{Delivery, Dnd, LogEvent, Outgoing, PushDevice, QueuedPush, ReceiveOpt, Settle};
use crate::redact::redact;
use crate::store::{self, Claimed, Store};

/// How pushes are sent.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// A device away longer than this gets no more pushes (Tencent: `PushOnline` lasts 7 days).
    pub stale_after_secs: i64,
    /// A push not sent this long after its message is dropped.
    pub max_age_secs: i64,
    /// Transient failures tried again at most this many times.
    pub max_attempts: u32,
    /// Pushes sent at once per provider.
    pub concurrency: usize,
    /// How long a claimed push is held by its worker before another may claim it.
    pub lease_secs: i64,
    /// Pushes claimed per round.
    pub batch: usize,
    /// This node's name in the outbox's leases.
    pub node: String,
    /// The default texts by language.
    pub languages: Languages,
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            stale_after_secs: 7 * 86_400,
            max_age_secs: 86_400,
            max_attempts: 10,
            concurrency: 32,
            lease_secs: 60,
            batch: 256,
            node: "duet".into(),
            languages: Languages::default(),
        }
    }
}

/// What a device asks to register. `Debug` shows the token redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Registration {
    pub provider: ProviderKind,
    pub token: String,
    pub app_id: Option<String>,
    pub lang: Option<String>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Registration { provider, token, app_id, lang } = self;
        f.debug_struct("Registration")
            .field("provider", provider)
            .field("token", &redact(token))
            .field("app_id", app_id)
            .field("lang", lang)
            .finish()
    }
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The server has no `[push.<provider>]` configured.
    #[error("push provider {0} is not configured on this server")]
    NotConfigured(ProviderKind),
    /// Only a device registers (a transient session has no push of its own).
    #[error("only a device session can register for push")]
    NotADevice,
    #[error(transparent)]
    Domain(#[from] Error),
}

/// Per provider: what became of its pushes since start.
#[derive(Debug, Default)]
pub struct ProviderStats {
    pub sent: AtomicU64,
    /// Transient failures (each tried again later).
    pub retried: AtomicU64,
    /// Permanent failures and pushes given up on.
    pub failed: AtomicU64,
    /// Not sent because no longer needed (the device came back, or went stale).
    pub skipped: AtomicU64,
    pub tokens_removed: AtomicU64,
}

/// The push service.
pub struct Pusher {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    clock: Arc<dyn Clock>,
    config: PushConfig,
    providers: HashMap<ProviderKind, Arc<dyn Provider>>,
    stats: HashMap<ProviderKind, ProviderStats>,
    /// Users with at least one registration: a commit to one of them wakes the worker.
    users: RwLock<HashSet<String>>,
    /// Each user's do-not-disturb window (no push while it is on), as the store has it.
    dnd: RwLock<HashMap<String, Dnd>>,
    wake: tokio::sync::Notify,
}

impl Pusher {
    /// Opens the service over the store's registrations: users with registered mobile devices that are not
    /// connected are `PushOnline` again, as they were before a restart.
    pub async fn open(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        clock: Arc<dyn Clock>,
        config: PushConfig,
        providers: Vec<Arc<dyn Provider>>,
    ) -> Result<Pusher, Error> {
        let devices = if providers.is_empty() { Vec::new() } else { store.push_devices().await? };
        if !providers.is_empty() {
            // What this node had claimed before it stopped is due again.
            store.release_pushes(config.node.clone()).await?;
        }
        let now = clock.now_secs();
        let mut users = HashSet::new();
        for d in &devices {
            users.insert(d.user.clone());
            if d.platform.is_mobile() && now - d.seen_at < config.stale_after_secs {
                hub.restore_push_online(&d.user, d.platform, d.seen_at);
            }
        }
        let dnd = store.dnds().await?.into_iter().collect();
        let providers: HashMap<_, _> = providers.into_iter().map(|p| (p.kind(), p)).collect();
        let stats = providers.keys().map(|k| (*k, ProviderStats::default())).collect();
        Ok(Pusher {
            store,
            hub,
            clock,
            config,
            providers,
            stats,
            users: RwLock::new(users),
            dnd: RwLock::new(dnd),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Sets `user`'s do-not-disturb window over all conversations (`None`: none): while it is on, nothing
    /// sent to the user is pushed (a message sent in the window is not pushed after it either).
    pub async fn set_dnd(&self, user: &str, dnd: Option<Dnd>) -> Result<(), Error> {
        let dnd = dnd.filter(|d| d.receive != ReceiveOpt::Receive);
        if !self.store.set_dnd(user.to_owned(), dnd).await? {
            return Err(Error::NoSuchAccount(user.to_owned()));
        }
        let mut all = self.dnd.write().unwrap_or_else(|e| e.into_inner());
        match dnd {
            Some(d) => all.insert(user.to_owned(), d),
            None => all.remove(user),
        };
        Ok(())
    }

    /// `user`'s do-not-disturb window, if any.
    pub fn dnd(&self, user: &str) -> Option<Dnd> {
        self.dnd.read().unwrap_or_else(|e| e.into_inner()).get(user).copied()
    }

    /// Whether any provider is configured (without one, nothing is queued and registrations are refused).
    pub fn enabled(&self) -> bool {
        !self.providers.is_empty()
    }

    /// The providers configured, by name.
    pub fn providers(&self) -> Vec<ProviderKind> {
        let mut kinds: Vec<ProviderKind> = self.providers.keys().copied().collect();
        kinds.sort();
        kinds
    }

    pub fn stats(&self, provider: ProviderKind) -> Option<&ProviderStats> {
        self.stats.get(&provider)
    }

    /// Whether a message is queued for push when committed: a provider is configured, the message is
    /// stored (not online only), and its `OfflinePushInfo` allows it.
    pub fn queues(&self, msg: &Outgoing) -> bool {
        self.enabled() && msg.lifetime_secs > 0 && content::may_push(msg.push_info.as_deref())
    }

    /// Registers `session`'s device for push, replacing what it registered before.
    pub async fn register(&self, session: &Session, reg: Registration) -> Result<(), RegisterError> {
        if session.kind != SessionKind::Device {
            return Err(RegisterError::NotADevice);
        }
        if !self.providers.contains_key(&reg.provider) {
            return Err(RegisterError::NotConfigured(reg.provider));
        }
        let device = PushDevice {
            user: session.user.clone(),
            device: session.device.clone(),
            platform: session.platform,
            provider: reg.provider,
            token: reg.token,
            app_id: reg.app_id,
            lang: reg.lang,
            seen_at: self.clock.now_secs(),
        };
        if !self.store.register_device(device).await.map_err(Error::from)? {
            return Err(Error::NoSuchAccount(session.user.clone()).into());
        }
        self.users.write().unwrap_or_else(|e| e.into_inner()).insert(session.user.clone());
        Ok(())
    }

    /// Ends the push registration of `user`'s `device` (every device with `None`): a logout, a kick.
    pub async fn unregister(&self, user: &str, device: Option<&str>) -> Result<(), Error> {
        if !self.enabled() {
            return Ok(());
        }
        self.store.unregister_devices(user.to_owned(), device.map(str::to_owned)).await?;
        Ok(())
    }

    /// `session`'s connection ended without a logout: its device is away from now on.
    pub async fn disconnected(&self, session: &Session) -> Result<(), Error> {
        if !self.enabled() || !self.users.read().unwrap_or_else(|e| e.into_inner()).contains(&session.user) {
            return Ok(());
        }
        let now = self.clock.now_secs();
        self.store.device_seen(session.user.clone(), session.device.clone(), now).await?;
        Ok(())
    }

    /// Sends queued pushes until the process ends: claims what is due, sends it (at most
    /// [`PushConfig::concurrency`] at once per provider), settles it, and sleeps until a commit queues
    /// more or a retry falls due.
    pub async fn run(self: Arc<Self>) {
        if !self.enabled() {
            return;
        }
        let mut report = tokio::time::Instant::now() + REPORT_EVERY;
        let mut reported = Vec::new();
        let limits: HashMap<ProviderKind, Arc<tokio::sync::Semaphore>> = self
            .providers
            .keys()
            .map(|k| (*k, Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)))))
            .collect();
        loop {
            if tokio::time::Instant::now() >= report {
                report = tokio::time::Instant::now() + REPORT_EVERY;
                self.report(&mut reported).await;
            }
            let now = self.clock.now_secs();
            let lease_until = now + self.config.lease_secs;
            let claim = self.store.claim_pushes(self.config.node.clone(), now, lease_until, self.config.batch).await;
            let claimed = match store::claimed(claim, &self.wake, "pushes").await {
                Claimed::Some(claimed) => claimed,
                Claimed::Nothing => continue,
                Claimed::Closed => return,
            };
            let full = claimed.len() == self.config.batch;
            let mut tasks = tokio::task::JoinSet::new();
            for push in claimed {
                let Some(limit) = limits.get(&push.device.provider).cloned() else {
                    // A registration with a provider no longer configured: nothing can send it.
                    tasks.spawn(async move { (push.id, Settled::Skip) });
                    continue;
                };
                let this = self.clone();
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    let settled = this.send(&push).await;
                    (push.id, settled)
                });
            }
            let mut settled = Vec::new();
            while let Some(done) = tasks.join_next().await {
                if let Ok((id, s)) = done {
                    settled.push((id, s));
                }
            }
            let now = self.clock.now_secs();
            let settle = settled
                .iter()
                .map(|(id, s)| match s {
                    Settled::Retry { attempts } => (*id, Settle::Retry { at: now + backoff(*attempts) }),
                    _ => (*id, Settle::Done),
                })
                .collect();
            if let Err(e) = self.store.settle_pushes(settle).await {
                tracing::warn!(error = %e, "push: settling sent pushes failed; their leases will run out");
            }
            if !full {
                let _ = tokio::time::timeout(Duration::from_millis(50), self.wake.notified()).await;
            }
        }
    }

    /// Logs each provider's totals, and the outbox's depth, when they changed since the last report.
    async fn report(&self, last: &mut Vec<[u64; 5]>) {
        let mut now = Vec::new();
        for kind in self.providers() {
            let s = &self.stats[&kind];
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            now.push([load(&s.sent), load(&s.retried), load(&s.failed), load(&s.skipped), load(&s.tokens_removed)]);
        }
        if now == *last {
            return;
        }
        let (queued, oldest) = self.store.push_backlog().await.unwrap_or((0, None));
        let oldest_age_secs = oldest.map(|t| self.clock.now_secs() - t);
        for (kind, [sent, retried, failed, skipped, tokens_removed]) in self.providers().into_iter().zip(&now) {
            tracing::info!(provider = %kind, sent, retried, failed, skipped, tokens_removed, "push: totals since start");
        }
        tracing::info!(queued, oldest_age_secs, "push: outbox");
        *last = now;
    }

    /// Sends one claimed push and says how to settle it.
    async fn send(&self, push: &QueuedPush) -> Settled {
        let d = &push.device;
        let Some(provider) = self.providers.get(&d.provider) else { return Settled::Skip };
        let stats = &self.stats[&d.provider];
        let now = self.clock.now_secs();
        let mut state = self.hub.device_state(&d.user, &d.device);
        if state == DeviceState::Away
            && let Some(directory) = self.hub.directory()
        {
            // Connected to another node of the cluster?
            let elsewhere = directory.elsewhere(&d.user).await;
            if let Some(e) = elsewhere.devices.iter().find(|e| e.device == d.device) {
                state = if e.background { DeviceState::Background } else { DeviceState::Foreground };
            }
        }
        if state == DeviceState::Foreground
            || (state == DeviceState::Away && now - d.seen_at >= self.config.stale_after_secs)
        {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Settled::Skip;
        }
        if self.dnd(&d.user).is_some_and(|dnd| dnd.quiet_at(push.queued_at)) {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Settled::Skip;
        }
        if now - push.queued_at > self.config.max_age_secs {
            tracing::info!(provider = %d.provider, user = d.user, "push: dropped, older than the maximum age");
            stats.failed.fetch_add(1, Ordering::Relaxed);
            return Settled::Failed;
        }
        let texts = self.config.languages.texts(d.lang.as_deref());
        let Some(notification) = content::notification(&push.message, &texts, Some(push.unread)) else {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Settled::Skip;
        };
        let target = Target { token: d.token.clone(), app_id: d.app_id.clone() };
        match provider.send(&target, &notification).await {
            Outcome::Sent => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                Settled::Sent
            }
            Outcome::Retry { reason, .. } if push.attempts + 1 < self.config.max_attempts => {
                stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::info!(provider = %d.provider, token = %redact(&d.token), reason, attempt = push.attempts + 1, "push: will try again");
                Settled::Retry { attempts: push.attempts }
            }
            Outcome::Retry { reason, .. } => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(provider = %d.provider, token = %redact(&d.token), reason, "push: dropped after its last attempt");
                Settled::Failed
            }
            Outcome::InvalidToken { reason } => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(provider = %d.provider, token = %redact(&d.token), reason, "push: token invalid, forgetting it");
                match self.store.remove_push_token(d.provider, d.token.clone()).await {
                    Ok(n) => {
                        stats.tokens_removed.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => tracing::warn!(error = %e, "push: forgetting an invalid token failed"),
                }
                Settled::Failed
            }
            Outcome::Failed { reason } => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(provider = %d.provider, token = %redact(&d.token), reason, "push: failed");
                Settled::Failed
            }
        }
    }
}

impl Pusher {
    /// Wakes the worker when a commit queued pushes (a stored message to a user with registrations). Called
    /// for each commit, on the store's writer thread: it only looks at a set and notifies.
    pub fn committed(&self, deliveries: &[Delivery]) {
        if !self.enabled() {
            return;
        }
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let queued = deliveries
            .iter()
            .any(|d| d.entry.seq > 0 && matches!(d.entry.event, LogEvent::Message(_)) && users.contains(&d.user));
        if queued {
            self.wake.notify_one();
        }
    }
}

/// How often the worker logs the providers' totals (when they changed).
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// What became of one claimed push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Sent,
    /// Not needed any more.
    Skip,
    /// Given up on.
    Failed,
    /// Try again; `attempts` before this one.
    Retry {
        attempts: u32,
    },
}

/// Seconds before attempt `attempts + 1` is tried again: 2, 4, 8, … up to an hour.
fn backoff(attempts: u32) -> i64 {
    2i64.saturating_pow(attempts.saturating_add(1)).min(3600)
}

#[test]
fn backoff_doubles_up_to_an_hour() {
    assert_eq!((0..5).map(backoff).collect::<Vec<_>>(), [2, 4, 8, 16, 32]);
    assert_eq!(backoff(11), 3600);
    assert_eq!(backoff(u32::MAX), 3600);
}

//! [`Core`]: the domain's services, wired together once at start. Transports hold an `Arc<Core>` and
//! call the service a request is about; the services call each other one way (see the crate's docs).

use std::sync::Arc;

use crate::accounts::{Accounts, AppIdentity};
use crate::callbacks::{BeforeSendHook, EventSink, Notifier, NotifyConfig};
use crate::clock::Clock;
use crate::error::Error;
use crate::hub::{Hub, LoginPolicy, Notice, Push};
use crate::media::Media;
use crate::messages::{Fanout, Messages, Retention, Subscriber};
use crate::push::{Provider, PushConfig, Pusher};
use crate::redact::Secret;
use crate::relations::{Permissions, Relations};
use crate::sessions::Sessions;
use crate::store::Store;

/// Entries read at once to push what another node committed, and their text's most bytes.
const REMOTE_PAGE: usize = 200;
const REMOTE_PAGE_BYTES: usize = 1 << 20;

/// The app's identity, the retention rules and the session policy.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub sdkappid: u64,
    /// The key UserSigs are signed with (`Debug` shows it redacted).
    pub secret_key: Secret,
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
    /// How long after sending the sender may recall a message (Tencent: 2 minutes); admins have no limit.
    pub recall_window_secs: i64,
    /// Which devices of a user may be online together.
    pub login_policy: LoginPolicy,
    /// Who may message whom on the client send path (Tencent's defaults: anyone; blacklists drop silently).
    pub permissions: Permissions,
    /// How offline pushes are sent (the providers themselves are given to [`Core::open`]).
    pub push: PushConfig,
    /// How after-event callbacks are sent (the backend itself is given to [`Core::open`]).
    pub notify: NotifyConfig,
}

impl CoreConfig {
    pub const DAY: i64 = 86_400;

    /// Tencent's defaults for everything but the app's identity.
    pub fn new(sdkappid: u64, secret_key: impl Into<String>) -> CoreConfig {
        CoreConfig {
            sdkappid,
            secret_key: Secret::new(secret_key),
            admins: vec!["administrator".into()],
            offline_retention_secs: 7 * Self::DAY,
            roaming_retention_secs: 7 * Self::DAY,
            dedup_window_secs: 600,
            recent_contacts_max: 100,
            recall_window_secs: 120,
            login_policy: LoginPolicy::default(),
            permissions: Permissions::default(),
            push: PushConfig::default(),
            notify: NotifyConfig::default(),
        }
    }
}

/// What the domain reaches outside itself through, each optional: uploaded files, push providers, the
/// app backend's before-send callback.
#[derive(Default)]
pub struct Adapters {
    /// Uploaded files, when the server serves them.
    pub media: Option<Arc<Media>>,
    /// The push providers configured (none: nothing is pushed).
    pub push: Vec<Arc<dyn Provider>>,
    /// The app backend's `C2C.CallbackBeforeSendMsg`, when configured.
    pub before_send: Option<Arc<dyn BeforeSendHook>>,
    /// Where the after-event callbacks go, when configured.
    pub after_events: Option<Arc<dyn EventSink>>,
}

/// The domain: one of each service, and the hub of live sessions they share.
pub struct Core {
    config: CoreConfig,
    clock: Arc<dyn Clock>,
    hub: Arc<Hub>,
    /// Where committed sync-log entries go (the hub first).
    fanout: Fanout,
    accounts: Arc<Accounts>,
    sessions: Sessions,
    relations: Arc<Relations>,
    messages: Messages,
    media: Option<Arc<Media>>,
    push: Arc<Pusher>,
    notifier: Arc<Notifier>,
}

impl Core {
    /// Opens the domain over `store` and its `adapters` (media, push providers, callbacks): loads
    /// revocations, makes sure every admin account exists, and sends what the store commits to the hub.
    pub async fn open(
        config: CoreConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        adapters: Adapters,
    ) -> Result<Core, Error> {
        let Adapters { media, push: push_providers, before_send, after_events } = adapters;
        let notifier = Arc::new(Notifier::new(store.clone(), clock.clone(), after_events, config.notify.clone()));
        let hub = Arc::new(Hub::default());
        let fanout = Fanout::default();
        fanout.subscribe(hub.clone());
        let push = Arc::new(
            Pusher::open(store.clone(), hub.clone(), clock.clone(), config.push.clone(), push_providers).await?,
        );
        fanout.subscribe(push.clone());
        let subscribers = fanout.clone();
        store.set_delivery_hook(Arc::new(move |deliveries| subscribers.deliver(&deliveries)));
        let relations =
            Arc::new(Relations::new(store.clone(), clock.clone(), hub.clone(), notifier.clone(), config.permissions));
        let app = AppIdentity {
            sdkappid: config.sdkappid,
            secret_key: config.secret_key.clone(),
            admins: config.admins.clone(),
        };
        let accounts = Arc::new(
            Accounts::open(
                app,
                store.clone(),
                clock.clone(),
                hub.clone(),
                relations.clone(),
                media.clone(),
                push.clone(),
                notifier.clone(),
            )
            .await?,
        );
        let sessions = Sessions::new(
            accounts.clone(),
            store.clone(),
            clock.clone(),
            hub.clone(),
            push.clone(),
            notifier.clone(),
            config.login_policy,
        );
        let retention = Retention {
            offline_secs: config.offline_retention_secs,
            roaming_secs: config.roaming_retention_secs,
            dedup_window_secs: config.dedup_window_secs,
            recent_contacts_max: config.recent_contacts_max,
            recall_window_secs: config.recall_window_secs,
        };
        let messages = Messages::new(
            store,
            clock.clone(),
            accounts.clone(),
            relations.clone(),
            media.clone(),
            push.clone(),
            before_send,
            notifier.clone(),
            fanout.clone(),
            retention,
        );
        Ok(Core { config, clock, hub, fanout, accounts, sessions, relations, messages, media, push, notifier })
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// Live sessions, by user.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Accounts, profiles, UserSigs, kicks.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Logins, logouts, presence.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Friends, friend requests, blacklists.
    pub fn relations(&self) -> &Relations {
        &self.relations
    }

    /// Sending, the sync log, history, read state, recent contacts.
    pub fn messages(&self) -> &Messages {
        &self.messages
    }

    /// Uploaded files, when the server serves them.
    pub fn media(&self) -> Option<&Arc<Media>> {
        self.media.as_ref()
    }

    /// Offline push: registrations and the outbox's worker ([`Pusher::run`]).
    pub fn push(&self) -> &Arc<Pusher> {
        &self.push
    }

    /// The after-event callbacks: which are wanted, their counts, the outbox's worker ([`Notifier::run`]).
    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.notifier
    }

    /// `from` is typing (or stopped) to `to`: told to `to`'s live devices, never stored, nothing for one
    /// offline. The permission policy applies as to a message: a recipient who blacklisted `from` (or, in
    /// friends-only mode, is not a friend) hears nothing, and a refusal is reported as a send's would be.
    pub async fn typing(&self, from: &str, to: &str, typing: bool) -> Result<(), Error> {
        if from == to {
            return Ok(());
        }
        if !self.accounts.is_admin(from) {
            match self.relations.permit(from, to).await? {
                (_, Some(false)) => return Err(Error::NoSuchAccount(to.to_owned())),
                (crate::relations::Verdict::Drop, _) => return Ok(()),
                (crate::relations::Verdict::Allow, _) => {}
            }
        }
        self.hub.notify(to, crate::hub::Outbound::Typing { from: from.into(), typing });
        self.hub.publish(Notice::Typing { to: to.to_owned(), from: from.to_owned(), typing });
        Ok(())
    }

    /// Acts on what another node of the cluster told (see [`crate::hub::peers`]): pushes entries it
    /// committed to this node's sessions, from the store; follows its kicks, mutes and relation writes.
    pub async fn receive(&self, notice: Notice) -> Result<(), Error> {
        match notice {
            Notice::Entries { user, seqs } => self.deliver_committed_elsewhere(&user, &seqs).await?,
            Notice::Kick { user, reason, revoked_before, deleted } => {
                self.accounts.kicked_elsewhere(&user, reason, revoked_before, deleted)
            }
            Notice::Mute { user, mute } => self.accounts.muted_elsewhere(&user, mute),
            Notice::Relations { users } => self.relations.changed_elsewhere(&users),
            Notice::Typing { to, from, typing } => {
                self.hub.notify(&to, crate::hub::Outbound::Typing { from: from.into(), typing })
            }
            Notice::KickDevice { user, device, reason } => self.hub.kick_device(&user, &device, reason),
        }
        Ok(())
    }

    /// Pushes `user`'s entries `seqs`, committed by another node, to the user's sessions here (if any),
    /// read from the store. Entries the log no longer has (expired) are skipped.
    async fn deliver_committed_elsewhere(&self, user: &str, seqs: &[u64]) -> Result<(), Error> {
        let (Some(&first), Some(&last)) = (seqs.iter().min(), seqs.iter().max()) else { return Ok(()) };
        if first == 0 || !self.hub.has_sessions(user) {
            return Ok(());
        }
        let mut after = first - 1;
        while after < last {
            let limit = usize::try_from(last - after).unwrap_or(usize::MAX).min(REMOTE_PAGE);
            let page = self.messages.sync(user, after, limit, REMOTE_PAGE_BYTES).await?;
            let Some(end) = page.entries.last().map(|e| e.seq) else { break };
            for entry in page.entries {
                if entry.seq <= last && seqs.contains(&entry.seq) {
                    self.hub.deliver(user, Arc::new(Push::new(entry)));
                }
            }
            after = end;
        }
        Ok(())
    }

    /// Adds a subscriber of committed sync-log entries (see [`crate::messages::fanout`]), after the hub.
    pub fn subscribe(&self, subscriber: Arc<dyn Subscriber>) {
        self.fanout.subscribe(subscriber);
    }
}

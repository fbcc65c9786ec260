//! The hub: every live device session of this node, by user, and the delivery of sync-log entries to them.
//!
//! A session is a bounded queue of [`Outbound`] events owned by one connection handler. Delivery never
//! waits: when a session's queue is full the session is dropped from the hub (its handler sees the queue
//! close and closes the connection), and the client catches up from its cursor when it reconnects. So a
//! slow reader never stalls a sender or anyone else.
//!
//! The multi-device policy ([`MultiLogin`]) decides which sessions may coexist; a login beyond it kicks
//! the earliest session of the same group. A [`SessionKind::Transient`] session (a one-shot tool beside
//! the user's devices) stands outside the policy: it takes no slot, kicks no device, is kicked only by the
//! admin (or the account's deletion) or replaced by the user's [`MAX_TRANSIENT_SESSIONS`]th next one,
//! leaves the user's presence alone, and gets pushes only when `live`.

pub mod peers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use crate::model::{LogEntry, Platform};
pub use peers::{DeviceEntry, Directory, Elsewhere, NodeState, Notice, Peers};

/// Events a session's queue holds at most before the session counts as lagging and is dropped.
pub const SESSION_QUEUE: usize = 1024;
/// Transient sessions one user may have at once; another replaces the oldest. A tool's session that was
/// never closed (a killed script) goes that way, and a user cannot hold sessions without limit.
pub const MAX_TRANSIENT_SESSIONS: usize = 16;
/// How long a mobile device stays `PushOnline` after its connection dropped (Tencent: 7 days).
pub const PUSH_ONLINE_SECS: i64 = 7 * 86_400;

/// Which devices of one user may be online together (Tencent's multi-terminal policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiLogin {
    /// One device in all.
    Single,
    /// One native device and one Web.
    Dual,
    /// One mobile, one desktop and one Web.
    Triple,
    /// Every platform at once.
    Multi,
}

/// The login policy: which devices coexist, and how many of each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub mode: MultiLogin,
    /// Devices allowed per group (per platform under [`MultiLogin::Multi`]).
    pub instances: usize,
}

impl Default for LoginPolicy {
    /// Tencent's default: one device per platform.
    fn default() -> LoginPolicy {
        LoginPolicy { mode: MultiLogin::Multi, instances: 1 }
    }
}

impl LoginPolicy {
    /// Of a user's devices on other nodes (`elsewhere`), those that a login of `device` on `platform` logs
    /// out, with `here` devices of the login's group on this node once it is in (itself included): the
    /// same device (replaced), and in the login's group the oldest beyond what the policy allows.
    pub fn displaced_elsewhere(
        self,
        platform: Platform,
        device: &str,
        here: usize,
        elsewhere: &[DeviceEntry],
    ) -> Vec<(String, KickReason)> {
        let mut out: Vec<(String, KickReason)> =
            elsewhere.iter().filter(|d| d.device == device).map(|d| (d.device.clone(), KickReason::Replaced)).collect();
        let mut group: Vec<&DeviceEntry> =
            elsewhere.iter().filter(|d| d.device != device && self.group(d.platform) == self.group(platform)).collect();
        group.sort_by_key(|d| d.since_ms);
        let allowed = self.instances.max(1).saturating_sub(here);
        let excess = group.len().saturating_sub(allowed);
        out.extend(group.into_iter().take(excess).map(|d| (d.device.clone(), KickReason::OtherDevice)));
        out
    }

    fn group(self, p: Platform) -> u8 {
        match self.mode {
            MultiLogin::Single => 0,
            MultiLogin::Dual => u8::from(p == Platform::Web),
            MultiLogin::Triple => match p {
                Platform::IPhone | Platform::Android | Platform::IPad => 0,
                Platform::Pc | Platform::Mac | Platform::Linux => 1,
                Platform::Web => 2,
            },
            MultiLogin::Multi => p as u8,
        }
    }
}

/// What a session is to the multi-device policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionKind {
    /// One of the user's devices: takes a slot of the policy (kicking what no longer fits), makes the
    /// user Online, receives every push.
    #[default]
    Device,
    /// Beside the devices: no slot, no kick either way, no presence; pushes only when `live`.
    Transient { live: bool },
}

impl SessionKind {
    fn is_device(self) -> bool {
        self == SessionKind::Device
    }

    /// Whether pushes (entries, relation events) go to this session.
    fn pushed(self) -> bool {
        !matches!(self, SessionKind::Transient { live: false })
    }
}

/// A sync-log entry on its way to a user's devices, encoded for the wire at most once however many
/// devices receive it.
#[derive(Debug)]
pub struct Push {
    pub entry: LogEntry,
    /// The transport's encoding of `entry`, filled by the first connection that sends it.
    pub encoded: OnceLock<Arc<str>>,
    /// When the hub got it (after the commit, or from another node), for the delivery latency.
    pub since: std::time::Instant,
}

impl Push {
    pub fn new(entry: LogEntry) -> Push {
        Push { entry, encoded: OnceLock::new(), since: std::time::Instant::now() }
    }
}

/// What a session's connection handler receives.
#[derive(Debug, Clone)]
pub enum Outbound {
    Entry(Arc<Push>),
    /// The session was logged out; the handler tells the client and closes.
    Kicked(KickReason),
    /// The user's friends, friend requests or blacklist changed.
    Relation(Arc<crate::model::RelationEvent>),
    /// `from` started (`true`) or stopped typing to the user: shown live, never stored.
    Typing {
        from: Arc<str>,
        typing: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// A login on another device, beyond the multi-device policy.
    OtherDevice,
    /// The admin kicked the user.
    Admin,
    /// The same device logged in again (a reconnect that overtook the old connection), or, for a transient
    /// session, the user's [`MAX_TRANSIENT_SESSIONS`] later ones did.
    Replaced,
}

/// A live session, owned by its connection handler. Dropping it does not unregister it; call
/// [`crate::sessions::Sessions::disconnect`] or [`crate::sessions::Sessions::logout`].
#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub user: String,
    pub platform: Platform,
    /// The device id its login gave.
    pub device: String,
    pub kind: SessionKind,
    pub events: mpsc::Receiver<Outbound>,
    /// The other devices of the user this login logged out (beyond the multi-device policy): their
    /// push registrations end with them.
    pub displaced: Vec<String>,
    /// Where the device connects from, when the transport knows (for the app's callbacks).
    pub client_ip: Option<String>,
}

struct Slot {
    id: u64,
    platform: Platform,
    device: String,
    kind: SessionKind,
    tx: mpsc::Sender<Outbound>,
    /// The app said it went to the background (`background` frame): pushes reach it too.
    background: bool,
    /// When it connected (unix ms, the system's clock: only to tell the cluster which is older).
    since_ms: i64,
}

/// Whether a device is connected, as offline push sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// Connected, with the app in the foreground: it gets its messages over the connection only.
    Foreground,
    /// Connected, with the app in the background: it gets pushes too.
    Background,
    /// Not connected on this node.
    Away,
}

/// A user's status as Tencent defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Connected on these platforms.
    Online(Vec<Platform>),
    /// A mobile device dropped its connection without logging out, less than 7 days ago.
    PushOnline(Platform),
    Offline,
}

#[derive(Default)]
pub struct Hub {
    sessions: Mutex<HashMap<String, Vec<Slot>>>,
    /// Users whose mobile device dropped without logging out: platform and when.
    push_online: Mutex<HashMap<String, (Platform, i64)>>,
    next_id: AtomicU64,
    /// The other nodes, when this one is in a cluster.
    peers: OnceLock<Arc<dyn Peers>>,
    /// Where the cluster keeps who is connected where.
    directory: OnceLock<Arc<dyn Directory>>,
}

impl Hub {
    /// Joins a cluster: [`Hub::publish`] tells `peers` from now on (set once; later calls are ignored).
    pub fn set_peers(&self, peers: Arc<dyn Peers>) {
        let _ = self.peers.set(peers);
    }

    /// Keeps the cluster's directory up to date from now on (set once; later calls are ignored).
    pub fn set_directory(&self, directory: Arc<dyn Directory>) {
        let _ = self.directory.set(directory);
    }

    /// The cluster's directory, if this node is in one.
    pub fn directory(&self) -> Option<&Arc<dyn Directory>> {
        self.directory.get()
    }

    /// Tells the directory what this node now holds of `user`.
    fn announce(&self, user: &str) {
        let Some(directory) = self.directory.get() else { return };
        let devices = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
            .map(|slots| {
                slots
                    .iter()
                    .filter(|s| s.kind.is_device())
                    .map(|s| DeviceEntry {
                        device: s.device.clone(),
                        platform: s.platform,
                        background: s.background,
                        since_ms: s.since_ms,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let push_online = self.push_online.lock().unwrap_or_else(|e| e.into_inner()).get(user).copied();
        directory.record(user, NodeState { devices, push_online });
    }

    /// How many device sessions of `user` on this node are in `platform`'s group of `policy`.
    pub fn devices_in_group(&self, policy: LoginPolicy, user: &str, platform: Platform) -> usize {
        let all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        all.get(user).map_or(0, |slots| {
            slots.iter().filter(|s| s.kind.is_device() && policy.group(s.platform) == policy.group(platform)).count()
        })
    }

    /// Logs out `user`'s sessions of `device` here (another node's login took its place).
    pub fn kick_device(&self, user: &str, device: &str, reason: KickReason) {
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slots) = all.get_mut(user) else { return };
        slots.retain(|s| {
            let kick = s.kind.is_device() && s.device == device;
            if kick {
                let _ = s.tx.try_send(Outbound::Kicked(reason));
            }
            !kick
        });
        if slots.is_empty() {
            all.remove(user);
        }
        drop(all);
        self.announce(user);
    }

    /// Whether this node is one of a cluster (other nodes write too).
    pub fn clustered(&self) -> bool {
        self.peers.get().is_some()
    }

    /// Tells the other nodes, if any.
    pub fn publish(&self, notice: Notice) {
        if let Some(peers) = self.peers.get() {
            peers.publish(notice);
        }
    }

    /// Whether this node has a live session of `user` (that takes pushes).
    pub fn has_sessions(&self, user: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
            .is_some_and(|slots| slots.iter().any(|s| s.kind.pushed()))
    }

    /// Registers a session for `user` on `device`; a device kicks what the policy no longer allows, a
    /// transient session nothing.
    pub fn register(
        &self,
        policy: LoginPolicy,
        user: &str,
        platform: Platform,
        device: &str,
        kind: SessionKind,
    ) -> Session {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, events) = mpsc::channel(SESSION_QUEUE);
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let slots = all.entry(user.to_owned()).or_default();
        if !kind.is_device() {
            let transient: Vec<u64> = slots.iter().filter(|s| !s.kind.is_device()).map(|s| s.id).collect();
            let excess = (transient.len() + 1).saturating_sub(MAX_TRANSIENT_SESSIONS);
            let replaced = &transient[..excess];
            slots.retain(|s| {
                let replace = replaced.contains(&s.id);
                if replace {
                    let _ = s.tx.try_send(Outbound::Kicked(KickReason::Replaced));
                }
                !replace
            });
            slots.push(Slot {
                id,
                platform,
                device: device.to_owned(),
                kind,
                tx,
                background: false,
                since_ms: now_ms(),
            });
            let device = device.to_owned();
            return Session {
                id,
                user: user.to_owned(),
                platform,
                device,
                kind,
                events,
                displaced: Vec::new(),
                client_ip: None,
            };
        }
        let group = policy.group(platform);
        // The same device again: the old connection is stale.
        slots.retain(|s| {
            let same = s.kind.is_device() && s.device == device;
            if same {
                let _ = s.tx.try_send(Outbound::Kicked(KickReason::Replaced));
            }
            !same
        });
        // Oldest first; keep `instances - 1` of the group so the new one fits.
        let in_group: Vec<u64> =
            slots.iter().filter(|s| s.kind.is_device() && policy.group(s.platform) == group).map(|s| s.id).collect();
        let excess = (in_group.len() + 1).saturating_sub(policy.instances.max(1));
        let kicked: Vec<u64> = in_group.into_iter().take(excess).collect();
        let mut displaced = Vec::new();
        slots.retain(|s| {
            let kick = kicked.contains(&s.id);
            if kick {
                let _ = s.tx.try_send(Outbound::Kicked(KickReason::OtherDevice));
                displaced.push(s.device.clone());
            }
            !kick
        });
        slots.push(Slot { id, platform, device: device.to_owned(), kind, tx, background: false, since_ms: now_ms() });
        drop(all);
        self.push_online.lock().unwrap_or_else(|e| e.into_inner()).remove(user);
        self.announce(user);
        Session {
            id,
            user: user.to_owned(),
            platform,
            device: device.to_owned(),
            kind,
            events,
            displaced,
            client_ip: None,
        }
    }

    /// Removes a session. `push_online_at`: the connection dropped without a logout at this time (a mobile
    /// device that was the user's last device leaves the user `PushOnline`).
    pub fn unregister(&self, session: &Session, push_online_at: Option<i64>) {
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slots) = all.get_mut(&session.user) else {
            return;
        };
        let before = slots.len();
        slots.retain(|s| s.id != session.id);
        let removed = slots.len() < before;
        let no_device = !slots.iter().any(|s| s.kind.is_device());
        if slots.is_empty() {
            all.remove(&session.user);
        }
        drop(all);
        let mobile_device = session.kind.is_device() && session.platform.is_mobile();
        if let (true, true, Some(at), true) = (removed, no_device, push_online_at, mobile_device) {
            let mut push_online = self.push_online.lock().unwrap_or_else(|e| e.into_inner());
            push_online.insert(session.user.clone(), (session.platform, at));
        }
        if removed && session.kind.is_device() {
            self.announce(&session.user);
        }
    }

    /// Pushes an entry to every live session of `user`; drops sessions that cannot keep up.
    pub fn deliver(&self, user: &str, push: Arc<Push>) {
        self.notify(user, Outbound::Entry(push));
    }

    /// Sends an event (a sync-log entry, or another event) to every live session of `user` that takes
    /// pushes; drops sessions that cannot keep up (they resync when they come back).
    pub fn notify(&self, user: &str, event: Outbound) {
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slots) = all.get_mut(user) else { return };
        let mut dropped_device = false;
        slots.retain(|s| {
            let keep = !s.kind.pushed()
                || match s.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(user, session = s.id, "session cannot keep up; dropping it, it will resync");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                };
            dropped_device |= !keep && s.kind.is_device();
            keep
        });
        if slots.is_empty() {
            all.remove(user);
        }
        drop(all);
        if dropped_device {
            self.announce(user);
        }
    }

    /// Logs out every session of `user`, transient ones included.
    pub fn kick_all(&self, user: &str, reason: KickReason) {
        let slots = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(user).unwrap_or_default();
        for s in slots {
            let _ = s.tx.try_send(Outbound::Kicked(reason));
        }
        self.push_online.lock().unwrap_or_else(|e| e.into_inner()).remove(user);
        self.announce(user);
    }

    /// Makes `user` `PushOnline` on `platform` since `at` unless connected (at start, from the durable
    /// push registrations: a restart does not forget who is `PushOnline`).
    pub fn restore_push_online(&self, user: &str, platform: Platform, at: i64) {
        if self.sessions.lock().unwrap_or_else(|e| e.into_inner()).contains_key(user) {
            return;
        }
        let mut push_online = self.push_online.lock().unwrap_or_else(|e| e.into_inner());
        let entry = push_online.entry(user.to_owned()).or_insert((platform, at));
        if entry.1 < at {
            *entry = (platform, at);
        }
    }

    /// The platform and time of `user`'s `PushOnline` state on this node, if any.
    pub fn push_online_since(&self, user: &str) -> Option<(Platform, i64)> {
        self.push_online.lock().unwrap_or_else(|e| e.into_inner()).get(user).copied()
    }

    /// Forgets a `PushOnline` state (after a device's logout).
    pub fn clear_push_online(&self, user: &str) {
        self.push_online.lock().unwrap_or_else(|e| e.into_inner()).remove(user);
        self.announce(user);
    }

    pub fn presence(&self, user: &str, now: i64) -> Presence {
        if let Some(slots) = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(user) {
            let devices: Vec<Platform> = slots.iter().filter(|s| s.kind.is_device()).map(|s| s.platform).collect();
            if !devices.is_empty() {
                return Presence::Online(devices);
            }
        }
        match self.push_online.lock().unwrap_or_else(|e| e.into_inner()).get(user) {
            Some((platform, at)) if now - at < PUSH_ONLINE_SECS => Presence::PushOnline(*platform),
            _ => Presence::Offline,
        }
    }

    /// Marks the session's app as in the background (or back in the foreground).
    pub fn set_background(&self, session: &Session, background: bool) {
        let mut all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = all.get_mut(&session.user).and_then(|s| s.iter_mut().find(|s| s.id == session.id)) {
            slot.background = background;
        }
        drop(all);
        self.announce(&session.user);
    }

    /// Whether `user`'s `device` is connected here, and with its app in the foreground.
    pub fn device_state(&self, user: &str, device: &str) -> DeviceState {
        let all = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let slot = all.get(user).and_then(|s| s.iter().find(|s| s.kind.is_device() && s.device == device));
        match slot {
            Some(s) if s.background => DeviceState::Background,
            Some(_) => DeviceState::Foreground,
            None => DeviceState::Away,
        }
    }

    /// The number of live sessions (for metrics and tests).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;

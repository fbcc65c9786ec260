//! The other nodes of a cluster, as the hub and the services reach them: what one node tells the others
//! ([`Notice`]) so that their in-memory state (live sessions, caches of relations, revocations and mutes)
//! follows what this node committed, and the bus that carries it ([`Peers`]).
//!
//! The store stays the source of truth: a notice only says that something changed and where to look. A
//! node alone has no peers (nothing is published).

use async_trait::async_trait;

use crate::hub::KickReason;
use crate::model::{Mute, Platform};

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Sync-log entries with these numbers were committed for `user`: a node with its live sessions reads
    /// them from the store and pushes them.
    Entries { user: String, seqs: Vec<u64> },
    /// `user`'s sessions are logged out; its UserSigs issued before `revoked_before` are refused; with
    /// `deleted`, its account is gone.
    Kick { user: String, reason: KickReason, revoked_before: Option<i64>, deleted: bool },
    /// `user`'s mute is now `mute` (the default: none).
    Mute { user: String, mute: Mute },
    /// The relations of these users changed: cached copies are stale, and their devices are told.
    Relations { users: Vec<String> },
    /// `from` started or stopped typing to `to`.
    Typing { to: String, from: String, typing: bool },
    /// `user`'s device `device` is logged out from whichever node holds it (a login elsewhere beyond the
    /// multi-device policy, or the same device again).
    KickDevice { user: String, device: String, reason: KickReason },
}

/// A device session as the cluster's directory keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub device: String,
    pub platform: Platform,
    /// The app is in the background (it gets offline pushes too).
    pub background: bool,
    /// When it connected (unix ms), to log out the oldest first.
    pub since_ms: i64,
}

/// What one node holds of a user: its device sessions there, and whether the user is `PushOnline` from a
/// mobile device that left that node without logging out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeState {
    pub devices: Vec<DeviceEntry>,
    pub push_online: Option<(Platform, i64)>,
}

/// What the other nodes hold of a user (those that are alive; a node that stopped answering counts as
/// gone, and its mobile devices as `PushOnline` since it was last heard of).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elsewhere {
    pub devices: Vec<DeviceEntry>,
    pub push_online: Option<(Platform, i64)>,
}

/// Where the nodes of a cluster keep who is connected where (the bus's key-value store, with expiry).
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// This node's state of `user` is now `state` (written in the background: must not block).
    fn record(&self, user: &str, state: NodeState);
    /// What the other nodes hold of `user`.
    async fn elsewhere(&self, user: &str) -> Elsewhere;
}

/// Carries notices to the other nodes (the NATS bus). `publish` must not block: it runs on the store's
/// commit path and under the services' locks.
pub trait Peers: Send + Sync + 'static {
    fn publish(&self, notice: Notice);
}

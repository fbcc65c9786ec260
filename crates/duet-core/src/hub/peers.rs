//! The other nodes of a cluster, as the hub and the services reach them: what one node tells the others
//! ([`Notice`]) so that their in-memory state (live sessions, caches of relations, revocations and mutes)
//! follows what this node committed, and the bus that carries it ([`Peers`]).
//!
//! The store stays the source of truth: a notice only says that something changed and where to look. A
//! node alone has no peers (nothing is published).

use crate::hub::KickReason;
use crate::model::Mute;

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
}

/// Carries notices to the other nodes (the NATS bus). `publish` must not block: it runs on the store's
/// commit path and under the services' locks.
pub trait Peers: Send + Sync + 'static {
    fn publish(&self, notice: Notice);
}

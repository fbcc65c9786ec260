//! Duet's domain: what a one-to-one chat server does, without sockets, SQL or HTTP.
//!
//! [`Core`] holds one of each service; a transport calls the service a request is about. The services,
//! each in its own module, and what they use (every arrow points one way; `tests/module_graph.rs`
//! fails on a cycle):
//!
//! * [`messages`]: sending ([`messages::send`], the pipeline: validate, permit, media grants, store,
//!   fan-out), the sync log, history, recall, read state, unread counts, recent contacts, retention.
//!   Uses accounts, relations, media, the store and the [`hub`] (through [`messages::fanout`]).
//! * [`sessions`]: logins under the multi-device policy, logouts, presence. Uses accounts and the hub.
//! * [`accounts`]: accounts, profiles, UserSig checks, kicks, mutes. Uses relations (a deletion takes the
//!   user's relations with it), media (and the user's access to uploads) and the hub (its devices go).
//! * [`relations`]: friends, friend requests, blacklists, and the permission policy
//!   ([`relations::policy`]) a client send passes. Uses the store and the hub (devices hear of changes).
//! * [`media`]: the rules of uploaded files (limits, who may read, expiry) and their storage traits.
//!
//! Below them: [`hub`] (this node's live sessions), [`store`] (the storage traits every backend
//! implements), [`error`], [`model`] (plain data), [`msglog`] (the message log's hours and time zone),
//! [`usersig`] (Tencent's UserSig v2), [`clock`], [`redact`] (how secrets show in logs).

pub mod accounts;
pub mod callbacks;
pub mod clock;
pub mod error;
pub mod hub;
pub mod media;
pub mod messages;
pub mod model;
pub mod msglog;
pub mod push;
pub mod redact;
pub mod relations;
pub mod retention;
pub mod sessions;
pub mod store;
pub mod usersig;

mod core;

pub use crate::accounts::AuthError;
pub use crate::core::{Adapters, Core, CoreConfig};
pub use crate::error::Error;
pub use crate::sessions::{LoggedIn, LoginError};

//! Duet's domain: what a one-to-one chat server does, without sockets, SQL or HTTP.
//!
//! * [`Core`] is the service the transports call: accounts, profiles, sending, history, read state,
//!   unread counts, retention. It owns the rules (dedup, sender sync, offline lifetime) and talks to a
//!   [`Store`](store::Store) for durable state.
//! * [`send`] is a send's pipeline: validate, permit, media grants, store, fan-out ([`fanout`]: the
//!   subscribers of committed sync-log entries, the [`hub`] of live sessions first).
//! * [`relations`] holds the relationship chain (friends, requests, blacklists) and the send permission policy.
//! * [`store`] declares the domain-level storage traits every backend implements.
//! * [`usersig`] makes and verifies Tencent's UserSig v2 tickets.
//! * [`media`] holds the rules of uploaded files (limits, who may read, expiry) and their storage traits.
//! * [`clock`] gives time, so tests can move it.

pub mod clock;
pub mod fanout;
pub mod hub;
pub mod media;
pub mod model;
pub mod relations;
pub mod retention;
pub mod send;
pub mod store;
pub mod usersig;

mod core;
mod error;

pub use crate::core::{AuthError, Core, CoreConfig, LoggedIn, LoginError};
pub use crate::error::Error;

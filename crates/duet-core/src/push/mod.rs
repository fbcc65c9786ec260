//! Offline push: devices register tokens, and what a commit queues in the store's outbox goes out
//! through the providers.

pub mod provider;

pub use provider::{
    AndroidOptions, ApnsOptions, Notification, Outcome, Provider, ProviderKind, Target, UnknownProvider, redact,
};

//! The domain's errors. Each transport maps them to its wire codes in one place.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named account was never imported (or was deleted).
    #[error("account {0:?} does not exist")]
    NoSuchAccount(String),
    /// The sender named in a message does not exist.
    #[error("sender {0:?} does not exist")]
    NoSuchSender(String),
    /// The message to act on was not found.
    #[error("message not found")]
    NoSuchMessage,
    /// The message was recalled already.
    #[error("message already recalled")]
    AlreadyRecalled,
    /// A relationship operation on one peer failed (friends, requests, blacklists).
    #[error(transparent)]
    Relation(#[from] crate::relations::RelationError),
    /// A message names an upload its sender may not read.
    #[error("the message refers to media {0}, which the sender may not read")]
    MediaForbidden(String),
    /// The permission policy refused a client send.
    #[error(transparent)]
    Refused(#[from] crate::relations::SendRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

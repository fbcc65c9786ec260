//! The domain's errors, shared by every service: [`Error`], and the store's [`StoreError`]. Each
//! transport maps them to its wire codes in one place.

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
    /// The edit named a version of the message that is no longer the stored one: the message as it is now.
    #[error("the message was edited since (it is at version {}): edit its latest version", .0.version)]
    EditConflict(Box<crate::model::StoredMessage>),
    /// The sender's recall came after the recall window (the seconds given).
    #[error("the message was sent more than {0} seconds ago and can no longer be recalled")]
    RecallTooLate(i64),
    /// A relationship operation on one peer failed (friends, requests, blacklists).
    #[error(transparent)]
    Relation(#[from] RelationError),
    /// A message names an upload its sender may not read.
    #[error("the message refers to media {0}, which the sender may not read")]
    MediaForbidden(String),
    /// The permission policy refused a client send.
    #[error(transparent)]
    Refused(#[from] SendRefusal),
    /// The app's before-send callback refused the send, with this code (Tencent's 20006, the backend's
    /// own, or 80003 when the backend failed and the server refuses then).
    #[error("refused by the app's backend ({code}): {info}")]
    CallbackRefused { code: u32, info: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a relationship operation on one target failed. Each has Tencent's code (see the server's error
/// mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelationError {
    #[error("the account does not exist")]
    NoSuchAccount,
    #[error("a user cannot be their own friend or blacklist entry")]
    IsSelf,
    #[error("the peer is in the user's blacklist")]
    InOwnBlacklist,
    #[error("the user is in the peer's blacklist")]
    InPeerBlacklist,
    #[error("the peer accepts no friend requests")]
    PeerDeniesAll,
    #[error("the user has the most friends allowed")]
    OwnFriendLimit,
    #[error("the peer has the most friends allowed")]
    PeerFriendLimit,
    #[error("the peer has the most pending requests allowed")]
    PendingLimit,
    #[error("the blacklist is full")]
    BlacklistLimit,
    #[error("the peer is not a friend")]
    NotFriend,
    #[error("no pending request from the peer")]
    NoRequest,
    #[error("the peer is in the blacklist already")]
    AlreadyBlocked,
    #[error("the peer is not in the blacklist")]
    NotBlocked,
}

/// Why a client send was refused at the permit stage: the sender's mute, or the permission policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendRefusal {
    /// The sender's one-to-one messages are muted (`openconfigsvr/setnospeaking`).
    #[error("the sender is muted")]
    Muted,
    /// The sender is in the recipient's blacklist (reported only with `BlacklistCheck::Report`).
    #[error("the sender is in the recipient's blacklist")]
    Blacklisted,
    /// Friends-only: neither has the other as a friend.
    #[error("the two users are not friends")]
    NotFriends,
    /// Friends-only: the recipient does not have the sender as a friend.
    #[error("the sender is not the recipient's friend")]
    NotRecipientsFriend,
    /// Friends-only: the sender does not have the recipient as a friend.
    #[error("the recipient is not the sender's friend")]
    NotSendersFriend,
}

impl SendRefusal {
    /// Tencent's code for the refusal (what the sender gets, and the after-send callback's `SendMsgResult`).
    pub fn code(self) -> u32 {
        match self {
            SendRefusal::Muted => 20012,
            SendRefusal::Blacklisted => 20007,
            SendRefusal::NotFriends => 20009,
            SendRefusal::NotRecipientsFriend => 20010,
            SendRefusal::NotSendersFriend => 20011,
        }
    }
}

/// Any error a backend reports as the cause of a [`StoreError::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store operation that failed. What it did when it did not fail is its outcome type
/// (`store::SendOutcome`, `store::Imported`, ...), not an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed, for logs, never for clients: the cause is its source. Its text repeats the
    /// whole chain too, so that a log line written with `%error` says why.
    #[error("storage backend: {}", chain(.0))]
    Backend(#[source] BoxError),
    /// The store is shutting down or its writer is gone.
    #[error("storage is closed")]
    Closed,
}

/// Writes an error and its sources, joined by `: `.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

fn chain(e: &BoxError) -> Chain<'_> {
    Chain(&**e)
}

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

//! [`Error`]: everything a [`Client`](crate::Client) call can fail with, and the Tencent code of each.
//!
//! Server refusals keep the server's code and text ([`Error::Server`]); failures on this side of the
//! wire get Tencent's client codes from [`Error::code`] (6012 timeout, 6014 not logged in, 6017 invalid
//! parameters, 9508 disconnected), so an app ported from Tencent's SDK can keep its error handling.

use std::time::Duration;

use duet_proto::client::code;

use crate::store::StoreError;

/// Tencent's "request timed out" (the SDK side's 6012).
pub const CODE_TIMEOUT: u32 = 6012;
/// Tencent's "network disconnected" (9508).
pub const CODE_DISCONNECTED: u32 = 9508;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the request with one of Tencent's codes (see `docs/protocol.md`).
    #[error("server refused the request: {info} ({code})")]
    Server {
        /// Tencent's numeric code.
        code: u32,
        /// The server's explanation.
        info: String,
    },
    /// An edit named a version of the message that someone else edited since (the server's 20028):
    /// `latest` is the message as it is now, when the server still has it.
    #[error("{info} (20028)")]
    EditConflict {
        /// The server's explanation.
        info: String,
        /// The message as it is now.
        latest: Option<Box<crate::Message>>,
    },
    /// The server did not answer within the request timeout.
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    /// The client stayed disconnected for the whole request timeout.
    #[error("not connected: no connection to the server within {0:?}")]
    NotConnected(Duration),
    /// The client was logged out, kicked, lost its UserSig, or every handle was dropped.
    #[error("the client is closed")]
    Closed,
    /// The server sent something the protocol does not allow.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The WebSocket could not be opened or failed.
    #[error("connection failed: {0}")]
    Connect(String),
    /// A call's arguments are invalid; nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The configuration is invalid (for example a server URL that is not http(s)).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// A local I/O failure (creating the store directory).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Tencent's code for this failure: the server's own code, or the client code Tencent's SDKs use.
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::Server { code, .. } => Some(*code),
            Error::EditConflict { .. } => Some(duet_proto::code::MSG_MODIFY_CONFLICT),
            Error::Timeout(_) => Some(CODE_TIMEOUT),
            Error::NotConnected(_) | Error::Connect(_) => Some(CODE_DISCONNECTED),
            Error::Closed => Some(code::NOT_LOGGED_IN),
            Error::InvalidArgument(_) => Some(code::INVALID_PARAMS),
            Error::Protocol(_) | Error::Config(_) | Error::Store(_) | Error::Io(_) => None,
        }
    }

    /// Whether retrying later may succeed (timeouts and connection trouble).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::NotConnected(_) | Error::Connect(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_codes_are_tencents() {
        let e = Error::Server { code: 90012, info: "To_Account does not exist".into() };
        assert_eq!(e.code(), Some(90012));
        assert_eq!(e.to_string(), "server refused the request: To_Account does not exist (90012)");
        assert_eq!(Error::Closed.code(), Some(6014));
        assert!(Error::Timeout(Duration::from_secs(1)).to_string().starts_with("no answer"));
    }
}

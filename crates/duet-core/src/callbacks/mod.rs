//! The app backend's callbacks, Tencent's third-party callback contract:
//!
//! - `C2C.CallbackBeforeSendMsg`, a stage of the send pipeline ([`crate::messages::send`]) that may let a
//!   message through (rewritten or not), refuse it, or drop it silently ([`BeforeSendHook`]);
//! - the after-event callbacks ([`crate::model::event`]): each event is written to the store's outbox in the commit of
//!   what it announces, and [`Notifier::run`] sends them to the [`EventSink`], at least once and in order
//!   per user.
//!
//! The HTTP client that carries them lives in `duet-callback`; the domain only sees the two traits.

pub mod notifier;

use async_trait::async_trait;

pub use crate::model::event::{AfterEvent, Command, EventKind, Pair, QueuedEvent};
pub use notifier::{CommandStats, EventSink, Failure, Notifier, NotifyConfig, Stats};

/// What the before-send callback is shown of a message (Tencent's request body, less the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeforeSendMsg {
    pub from: String,
    pub to: String,
    /// The sender's `MsgSeq`, or 0 when the server picks it (at the commit, after this stage).
    pub seq: u32,
    pub random: u32,
    /// The send's time (unix seconds).
    pub time: i64,
    pub online_only: bool,
    /// `MsgBody` as compact JSON.
    pub body: String,
    pub cloud_custom_data: String,
    /// Who sent it, as Tencent's `OptPlatform` names it (`RESTAPI`, `iOS`, `Android`, `Web`, …).
    pub platform: &'static str,
    /// The sender's address, when it came over a connection.
    pub client_ip: Option<String>,
}

/// The after-send callback's event of a message as `msg` shows it, with its outcome: `result` 0 or the
/// refusal's code, and the recipient's total unread count (−1 when refused; the store fills in the real
/// one of a stored message).
pub fn after_send(msg: &BeforeSendMsg, result: u32, error_info: &str, unread: i64) -> EventKind {
    EventKind::SendMsg {
        from: msg.from.clone(),
        to: msg.to.clone(),
        seq: msg.seq,
        random: msg.random,
        time: msg.time,
        online_only: msg.online_only,
        body: msg.body.clone(),
        cloud_custom_data: msg.cloud_custom_data.clone(),
        result,
        error_info: error_info.to_owned(),
        unread,
    }
}

/// The app backend's decision.
#[derive(Debug, Clone, PartialEq)]
pub enum BeforeSendVerdict {
    /// Send it; a `MsgBody` (a JSON array) or `CloudCustomData` given replaces the message's.
    Allow { body: Option<serde_json::Value>, cloud_custom_data: Option<String> },
    /// Refuse it: the sender gets `code` (20006, or the backend's own in 120001–130000; 80003 when the
    /// backend failed and the server is told to refuse then) and `info`.
    Refuse { code: u32, info: String },
    /// Drop it silently: the sender sees a normal success, nothing is stored or delivered.
    Drop,
}

/// Where a send's before-send callback goes. The implementation applies the timeout, the bound on
/// concurrent calls and the failure rule, so that every call ends in a verdict.
#[async_trait]
pub trait BeforeSendHook: Send + Sync + 'static {
    async fn before_send(&self, msg: BeforeSendMsg) -> BeforeSendVerdict;
}

/// Who caused an event, as the callbacks tell the app's backend (`OptPlatform`, `ClientIP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Tencent's `OptPlatform` (see [`opt_platform`]); `RESTAPI` for the admin API.
    pub platform: &'static str,
    /// The caller's address, when it came over a connection.
    pub client_ip: Option<String>,
    /// The app admin who asked, for a request of the admin API (Tencent's `Admin_Account`,
    /// `Operator_Account`); `None`: the user itself.
    pub admin: Option<String>,
}

impl Source {
    /// The admin REST API, called by `admin`.
    pub fn rest(admin: &str) -> Source {
        Source { platform: "RESTAPI", client_ip: None, admin: Some(admin.to_owned()) }
    }

    /// A device of `platform` at `ip`.
    pub fn device(platform: crate::model::Platform, ip: impl ToString) -> Source {
        Source { platform: opt_platform(platform), client_ip: Some(ip.to_string()), admin: None }
    }
}

/// Tencent's `OptPlatform` for a device's platform.
pub fn opt_platform(platform: crate::model::Platform) -> &'static str {
    use crate::model::Platform;
    match platform {
        Platform::IPhone => "iOS",
        Platform::Android => "Android",
        Platform::IPad => "iPad",
        Platform::Pc => "Windows",
        Platform::Mac => "macOS",
        Platform::Linux => "Unknown",
        Platform::Web => "Web",
    }
}

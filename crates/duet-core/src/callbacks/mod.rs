//! The app backend's callbacks, Tencent's third-party callback contract. Today: `C2C.CallbackBeforeSendMsg`,
//! a stage of the send pipeline ([`crate::messages::send`]) that may let a message through (rewritten or
//! not), refuse it, or drop it silently. The HTTP client that carries it lives in `duet-callback`; the
//! domain only sees [`BeforeSendHook`].

use async_trait::async_trait;

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

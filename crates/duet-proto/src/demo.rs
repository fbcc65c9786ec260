//! The demo page's one request (`POST /demo/usersig`, served only in demo mode): a UserSig for any user
//! but the app's admins, so a browser can log in without an app backend. The field names follow Tencent's
//! web SDK (`SDKAppID`, `userID`, `userSig`), which the page hands them to.

use serde::{Deserialize, Serialize};

/// Where the demo page and its files are served.
pub const PATH: &str = "/demo";
/// Where the page asks for a UserSig.
pub const USERSIG_PATH: &str = "/demo/usersig";

/// `{"userID": "alice"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserSigRequest {
    #[serde(rename = "userID")]
    pub user_id: String,
}

/// `{"SDKAppID": 1400000000, "userID": "alice", "userSig": "…", "expireSecs": 86400}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserSigAnswer {
    #[serde(rename = "SDKAppID")]
    pub sdkappid: u64,
    #[serde(rename = "userID")]
    pub user_id: String,
    #[serde(rename = "userSig")]
    pub user_sig: String,
    #[serde(rename = "expireSecs")]
    pub expire_secs: i64,
}

/// A refused request: `{"error": "…"}`, with an HTTP status that says why (400, 403, 429).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    pub error: String,
}

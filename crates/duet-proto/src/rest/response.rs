//! REST response shapes. Every response carries `ActionStatus`, `ErrorCode` and `ErrorInfo` first; the
//! profile, sns and recentcontact families add `ErrorDisplay`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ApiError;

/// `ActionStatus`, `ErrorInfo`, `ErrorCode` around a command's own fields.
#[derive(Debug, Serialize)]
pub struct Reply<T: Serialize> {
    #[serde(rename = "ActionStatus")]
    pub action_status: &'static str,
    #[serde(rename = "ErrorInfo")]
    pub error_info: String,
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
    #[serde(rename = "ErrorDisplay", skip_serializing_if = "Option::is_none")]
    pub error_display: Option<&'static str>,
    #[serde(flatten)]
    pub body: T,
}

/// A command with no fields of its own.
#[derive(Debug, Serialize)]
pub struct Empty {}

impl<T: Serialize> Reply<T> {
    /// A success; `display` adds the empty `ErrorDisplay` of the services that have one.
    pub fn ok(body: T, display: bool) -> Reply<T> {
        Reply {
            action_status: "OK",
            error_info: String::new(),
            error_code: 0,
            error_display: display.then_some(""),
            body,
        }
    }
}

impl Reply<Empty> {
    pub fn fail(err: &ApiError, display: bool) -> Reply<Empty> {
        Reply {
            action_status: "FAIL",
            error_info: err.info.clone(),
            error_code: err.code,
            error_display: display.then_some(""),
            body: Empty {},
        }
    }
}

/// One result of `account_delete`.
#[derive(Debug, Serialize)]
pub struct DeleteResultItem {
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
    #[serde(rename = "UserID")]
    pub user_id: String,
}

#[derive(Debug, Serialize)]
pub struct AccountDeleteReply {
    #[serde(rename = "ResultItem")]
    pub result_item: Vec<DeleteResultItem>,
}

/// One result of `account_check`.
#[derive(Debug, Serialize)]
pub struct CheckResultItem {
    #[serde(rename = "UserID")]
    pub user_id: String,
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
    /// `Imported` or `NotImported`.
    #[serde(rename = "AccountStatus")]
    pub account_status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AccountCheckReply {
    #[serde(rename = "ResultItem")]
    pub result_item: Vec<CheckResultItem>,
}

#[derive(Debug, Serialize)]
pub struct MultiAccountImportReply {
    #[serde(rename = "FailAccounts")]
    pub fail_accounts: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ProfileItem {
    #[serde(rename = "Tag")]
    pub tag: String,
    #[serde(rename = "Value")]
    pub value: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct UserProfileItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "ProfileItem")]
    pub profile_item: Vec<ProfileItem>,
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
}

#[derive(Debug, Serialize)]
pub struct PortraitGetReply {
    #[serde(rename = "UserProfileItem")]
    pub user_profile_item: Vec<UserProfileItem>,
    #[serde(rename = "Fail_Account", skip_serializing_if = "Vec::is_empty")]
    pub fail_account: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SendMsgReply {
    #[serde(rename = "MsgTime")]
    pub msg_time: i64,
    #[serde(rename = "MsgKey")]
    pub msg_key: String,
}

#[derive(Debug, Serialize)]
pub struct AccountError {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
}

#[derive(Debug, Serialize)]
pub struct BatchSendMsgReply {
    #[serde(rename = "MsgKey")]
    pub msg_key: String,
    #[serde(rename = "ErrorList", skip_serializing_if = "Vec::is_empty")]
    pub error_list: Vec<AccountError>,
}

/// One message of `admin_getroammsg`.
#[derive(Debug, Serialize)]
pub struct RoamMsg {
    #[serde(rename = "From_Account")]
    pub from_account: String,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "MsgSeq")]
    pub msg_seq: u32,
    #[serde(rename = "MsgRandom")]
    pub msg_random: u32,
    #[serde(rename = "MsgTimeStamp")]
    pub msg_time_stamp: i64,
    /// `0` normal, `8` recalled.
    #[serde(rename = "MsgFlagBits")]
    pub msg_flag_bits: u32,
    #[serde(rename = "IsPeerRead")]
    pub is_peer_read: u32,
    #[serde(rename = "MsgKey")]
    pub msg_key: String,
    /// The stored body, written out as it was validated: serialized once, at send time.
    #[serde(rename = "MsgBody")]
    pub msg_body: Box<RawValue>,
    #[serde(rename = "CloudCustomData")]
    pub cloud_custom_data: String,
}

/// Flag bits of a recalled message in `MsgFlagBits`.
pub const MSG_FLAG_RECALLED: u32 = 8;

#[derive(Debug, Serialize)]
pub struct GetRoamMsgReply {
    #[serde(rename = "Complete")]
    pub complete: u32,
    #[serde(rename = "MsgCnt")]
    pub msg_cnt: usize,
    #[serde(rename = "LastMsgTime")]
    pub last_msg_time: i64,
    #[serde(rename = "LastMsgKey")]
    pub last_msg_key: String,
    #[serde(rename = "MsgList")]
    pub msg_list: Vec<RoamMsg>,
}

/// `delete_c2c_msg_ramble`: the keys that named no message the operator still had.
#[derive(Debug, Serialize)]
pub struct DeleteMsgRambleReply {
    #[serde(rename = "InvalidMsgKeyList")]
    pub invalid_msg_key_list: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AllUnreadReply {
    #[serde(rename = "AllC2CUnreadMsgNum")]
    pub all_c2c_unread_msg_num: u64,
}

#[derive(Debug, Serialize)]
pub struct PeerUnread {
    #[serde(rename = "Peer_Account")]
    pub peer_account: String,
    #[serde(rename = "C2CUnreadMsgNum")]
    pub c2c_unread_msg_num: u64,
}

#[derive(Debug, Serialize)]
pub struct PeerError {
    #[serde(rename = "Peer_Account")]
    pub peer_account: String,
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
}

#[derive(Debug, Serialize)]
pub struct PeerUnreadReply {
    #[serde(rename = "C2CUnreadMsgNumList")]
    pub list: Vec<PeerUnread>,
    #[serde(rename = "ErrorList", skip_serializing_if = "Vec::is_empty")]
    pub error_list: Vec<PeerError>,
}

#[derive(Debug, Serialize)]
pub struct PlatformStatus {
    #[serde(rename = "Platform")]
    pub platform: String,
    #[serde(rename = "Status")]
    pub status: &'static str,
}

/// One user's status. Tencent's pages disagree on `Status` vs `State`; both are written.
#[derive(Debug, Serialize)]
pub struct OnlineStatus {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "Status")]
    pub status: &'static str,
    #[serde(rename = "State")]
    pub state: &'static str,
    #[serde(rename = "Detail", skip_serializing_if = "Option::is_none")]
    pub detail: Option<Vec<PlatformStatus>>,
}

#[derive(Debug, Serialize)]
pub struct QueryOnlineStatusReply {
    #[serde(rename = "QueryResult")]
    pub query_result: Vec<OnlineStatus>,
    #[serde(rename = "ErrorList", skip_serializing_if = "Vec::is_empty")]
    pub error_list: Vec<AccountError>,
}

/// One conversation of `recentcontact/get_list`.
#[derive(Debug, Serialize)]
pub struct SessionItem {
    /// 1 = C2C.
    #[serde(rename = "Type")]
    pub kind: u32,
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "MsgTime")]
    pub msg_time: i64,
    #[serde(rename = "TopFlag")]
    pub top_flag: u32,
}

/// `mark_contact`: one result per `MarkItem`, in order.
#[derive(Debug, Serialize)]
pub struct MarkContactReply {
    #[serde(rename = "ResultItem")]
    pub result_item: Vec<MarkResult>,
}

#[derive(Debug, Serialize)]
pub struct MarkResult {
    #[serde(rename = "OptType")]
    pub opt_type: u32,
    #[serde(rename = "ContactItem")]
    pub contact_item: serde_json::Value,
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
}

#[derive(Debug, Serialize)]
pub struct RecentContactListReply {
    #[serde(rename = "CompleteFlag")]
    pub complete_flag: u32,
    #[serde(rename = "TimeStamp")]
    pub time_stamp: i64,
    #[serde(rename = "StartIndex")]
    pub start_index: usize,
    #[serde(rename = "TopTimeStamp")]
    pub top_time_stamp: i64,
    #[serde(rename = "TopStartIndex")]
    pub top_start_index: usize,
    #[serde(rename = "SessionItem")]
    pub session_item: Vec<SessionItem>,
}

/// `openconfigsvr/getnospeaking`: each mute's remaining seconds; `0` not muted, `4294967295` for good.
#[derive(Debug, Serialize)]
pub struct GetNoSpeakingReply {
    #[serde(rename = "C2CmsgNospeakingTime")]
    pub c2c: u32,
    #[serde(rename = "GroupmsgNospeakingTime")]
    pub group: u32,
}

/// `duet/status` (Duet's own, not Tencent's): the server at a glance, for `duet status` and the admin page.
/// Counts of connections are this node's; the store's figures are the whole store's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatusReply {
    pub version: String,
    /// Unix seconds.
    pub started_at: i64,
    pub uptime_secs: i64,
    /// Whether `/readyz` would answer ready now.
    pub ready: bool,
    /// `embedded` (SQLite in the data directory) or `postgres`.
    pub store: String,
    /// Whether this node is one of several (a bus is configured).
    pub clustered: bool,
    /// Logged-in client connections on this node.
    pub connections: u64,
    /// The same, by Tencent's platform name (`iPhone`, `Android`, `Web`, ...); platforms with none are left out.
    pub connections_by_platform: std::collections::BTreeMap<String, u64>,
    /// Accounts that exist.
    pub accounts: u64,
    /// Messages stored (within the roaming retention).
    pub messages: u64,
    /// Bytes the store takes on disk (the embedded database with its log, or the PostgreSQL database).
    pub store_bytes: Option<u64>,
    pub roaming_retention_secs: i64,
    pub offline_retention_secs: i64,
    /// `None` when no push provider is configured.
    pub push_outbox: Option<OutboxStatus>,
    /// `None` when no callback URL is configured.
    pub callback_outbox: Option<OutboxStatus>,
}

/// An outbox's rows waiting, and the age of the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OutboxStatus {
    pub depth: u64,
    pub oldest_age_secs: i64,
}

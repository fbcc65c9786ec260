//! The Tencent-compatible REST API: `POST /v4/<service>/<command>?sdkappid=&identifier=&usersig=&random=&contenttype=json`.
//!
//! * [`Command`] names every endpoint Duet serves, from its `(service, command)` path.
//! * [`parse_body`] reads a request body as JSON, with the service's code when it is not.
//! * [`request`] parses request bodies into typed requests, leniently (old and new field names, numbers
//!   as strings) but with Tencent's error code for each thing that is wrong.
//! * [`sns`] holds the relationship chain's requests and replies (`sns/friend_*`, `sns/black_list_*`).
//! * [`msglog`] holds `open_msg_svc/get_history` and the records of the message-log files.
//! * [`response`] holds the response shapes and the `ActionStatus`/`ErrorCode`/`ErrorInfo` envelope.

pub mod msglog;
pub mod request;
pub mod response;
pub mod sns;

mod fields;

pub use fields::{MAX_USER_ID_BYTES, validate_user_id};

use serde_json::Value;

use crate::{ApiError, code};

/// The REST services Duet knows, each with its own codes for "admin required" and "bad JSON".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Login,
    Profile,
    OpenIm,
    RecentContact,
    Sns,
    /// `open_msg_svc`: the message-log download.
    MsgSvc,
    /// `openconfigsvr`: the global mute.
    OpenConfigSvr,
    /// `duet`: Duet's own admin commands, not Tencent's (`status`).
    Duet,
}

impl Service {
    pub fn from_path(s: &str) -> Option<Service> {
        Some(match s {
            "im_open_login_svc" => Service::Login,
            "profile" => Service::Profile,
            "openim" => Service::OpenIm,
            "recentcontact" => Service::RecentContact,
            "sns" => Service::Sns,
            "open_msg_svc" => Service::MsgSvc,
            "openconfigsvr" => Service::OpenConfigSvr,
            "duet" => Service::Duet,
            _ => return None,
        })
    }

    /// The code this service answers when the caller is not an app admin.
    pub fn admin_required_code(self) -> u32 {
        match self {
            Service::Login => code::ACCOUNT_ADMIN_REQUIRED,
            Service::Profile => code::PROFILE_ADMIN_REQUIRED,
            Service::OpenIm => code::MSG_ADMIN_REQUIRED,
            Service::RecentContact => code::CONTACT_ADMIN_REQUIRED,
            Service::Sns => code::SNS_ADMIN_REQUIRED,
            // Tencent publishes no admin-required code of its own for these two.
            Service::MsgSvc | Service::OpenConfigSvr | Service::Duet => code::ADMIN_REQUIRED,
        }
    }

    /// The code this service answers when the body is not valid JSON.
    pub fn json_parse_code(self) -> u32 {
        match self {
            Service::Login => code::ACCOUNT_INVALID_PARAMS,
            Service::Profile => code::PROFILE_JSON_PARSE,
            Service::OpenIm => code::MSG_JSON_PARSE,
            Service::RecentContact => code::CONTACT_JSON_PARSE,
            Service::Sns => code::SNS_JSON_PARSE,
            Service::MsgSvc | Service::Duet => code::JSON_PARSE,
            Service::OpenConfigSvr => code::NOSPEAKING_JSON_PARSE,
        }
    }

    /// Whether this service's responses carry `ErrorDisplay` (the profile, sns and recentcontact families).
    pub fn has_error_display(self) -> bool {
        matches!(self, Service::Profile | Service::Sns | Service::RecentContact)
    }
}

/// Every REST command Duet serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    AccountImport,
    MultiAccountImport,
    AccountDelete,
    AccountCheck,
    Kick,
    PortraitSet,
    PortraitGet,
    SendMsg,
    BatchSendMsg,
    ImportMsg,
    AdminGetRoamMsg,
    AdminMsgWithdraw,
    AdminSetMsgRead,
    C2cMsgReadReceipt,
    ModifyC2cMsg,
    DeleteC2cMsgRamble,
    GetC2cUnreadMsgNum,
    QueryOnlineStatus,
    RecentContactGetList,
    RecentContactDelete,
    MarkContact,
    FriendAdd,
    FriendImport,
    FriendUpdate,
    FriendDelete,
    FriendDeleteAll,
    FriendCheck,
    FriendGet,
    FriendGetList,
    BlackListAdd,
    BlackListDelete,
    BlackListGet,
    BlackListCheck,
    GetHistory,
    SetNoSpeaking,
    GetNoSpeaking,
    /// `duet/status`: the server at a glance (`duet status`).
    Status,
}

impl Command {
    /// The command served at `/v4/<service>/<command>`, if any.
    pub fn from_path(service: Service, command: &str) -> Option<Command> {
        use Command::*;
        Some(match (service, command) {
            (Service::Login, "account_import") => AccountImport,
            (Service::Login, "multiaccount_import") => MultiAccountImport,
            (Service::Login, "account_delete") => AccountDelete,
            (Service::Login, "account_check") => AccountCheck,
            (Service::Login, "kick") => Kick,
            (Service::Profile, "portrait_set") => PortraitSet,
            (Service::Profile, "portrait_get") => PortraitGet,
            (Service::OpenIm, "sendmsg") => SendMsg,
            (Service::OpenIm, "batchsendmsg") => BatchSendMsg,
            (Service::OpenIm, "importmsg") => ImportMsg,
            (Service::OpenIm, "admin_getroammsg") => AdminGetRoamMsg,
            (Service::OpenIm, "admin_msgwithdraw") => AdminMsgWithdraw,
            (Service::OpenIm, "admin_set_msg_read") => AdminSetMsgRead,
            (Service::OpenIm, "c2c_msg_read_receipt") => C2cMsgReadReceipt,
            (Service::OpenIm, "modify_c2c_msg") => ModifyC2cMsg,
            (Service::OpenIm, "delete_c2c_msg_ramble") => DeleteC2cMsgRamble,
            (Service::OpenIm, "get_c2c_unread_msg_num") => GetC2cUnreadMsgNum,
            (Service::OpenIm, "query_online_status" | "querystate") => QueryOnlineStatus,
            (Service::RecentContact, "get_list") => RecentContactGetList,
            (Service::RecentContact, "delete") => RecentContactDelete,
            (Service::RecentContact, "mark_contact") => MarkContact,
            (Service::Sns, "friend_add") => FriendAdd,
            (Service::Sns, "friend_import") => FriendImport,
            (Service::Sns, "friend_update") => FriendUpdate,
            (Service::Sns, "friend_delete") => FriendDelete,
            (Service::Sns, "friend_delete_all") => FriendDeleteAll,
            (Service::Sns, "friend_check") => FriendCheck,
            (Service::Sns, "friend_get") => FriendGet,
            (Service::Sns, "friend_get_list") => FriendGetList,
            (Service::Sns, "black_list_add") => BlackListAdd,
            (Service::Sns, "black_list_delete") => BlackListDelete,
            (Service::Sns, "black_list_get") => BlackListGet,
            (Service::Sns, "black_list_check") => BlackListCheck,
            (Service::MsgSvc, "get_history") => GetHistory,
            (Service::OpenConfigSvr, "setnospeaking") => SetNoSpeaking,
            (Service::OpenConfigSvr, "getnospeaking") => GetNoSpeaking,
            (Service::Duet, "status") => Status,
            _ => return None,
        })
    }
}

/// The query parameters of a REST call that Duet reads; others (`random`, `contenttype`, `apn`, ...) are ignored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuthParams {
    pub sdkappid: Option<String>,
    pub identifier: Option<String>,
    pub usersig: Option<String>,
}

impl AuthParams {
    /// Reads the parameters from decoded `(name, value)` pairs; the first occurrence of a name wins.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> AuthParams {
        let mut p = AuthParams::default();
        for (k, v) in pairs {
            let slot = match k {
                "sdkappid" => &mut p.sdkappid,
                "identifier" => &mut p.identifier,
                "usersig" => &mut p.usersig,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.to_owned());
            }
        }
        p
    }
}

/// A request body as JSON, whatever the Content-Type says; an empty (or all-whitespace) body reads as
/// `{}`. Not JSON: the service's [`Service::json_parse_code`]. The typed requests ([`request`], [`sns`])
/// are then parsed from the value.
pub fn parse_body(service: Service, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(service.json_parse_code(), format!("Fail to Parse json data of body, Please check it: {e}"))
    })
}

/// Parses a `MsgKey` of Tencent's `<MsgSeq>_<MsgRandom>_<MsgTime>` form.
pub fn parse_msg_key(key: &str) -> Option<(u32, u32, i64)> {
    let mut parts = key.split('_');
    let seq = parts.next()?.parse().ok()?;
    let random = parts.next()?.parse().ok()?;
    let time = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((seq, random, time))
}

/// Formats a `MsgKey` of Tencent's `<MsgSeq>_<MsgRandom>_<MsgTime>` form.
pub fn format_msg_key(seq: u32, random: u32, time: i64) -> String {
    format!("{seq}_{random}_{time}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_keys_roundtrip_and_garbage_is_refused() {
        assert_eq!(parse_msg_key(&format_msg_key(89541, 2574206, 1572870301)), Some((89541, 2574206, 1572870301)));
        for bad in ["", "1_2", "1_2_3_4", "a_2_3", "1__3", "-1_2_3", "4294967296_1_1"] {
            assert_eq!(parse_msg_key(bad), None, "{bad}");
        }
    }
}

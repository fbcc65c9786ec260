//! Typed REST requests, parsed from JSON bodies with Tencent's error codes.
//!
//! Real clients differ (reference §10): old and new field names are both accepted (`UserID`/`Identifier`,
//! `Operator_Account`/`From_Account`, `Accounts`/`AccountList`), integers may arrive as strings, an optional
//! field sent as `""` is absent (`fields` says which fields keep `""` as a value, and why), and unknown
//! fields are ignored.

use serde_json::Value;

use super::fields::{Fields, validate_user_id};
use crate::elem::{MsgElem, parse_msg_body};
use crate::{ApiError, code, lenient, limits};

/// Most accounts one account or profile call may name.
pub const MAX_ACCOUNT_BATCH: usize = 100;
/// Most recipients of one `batchsendmsg`, and accounts of one `query_online_status`.
pub const MAX_RECIPIENTS: usize = 500;
/// Most peers one `get_c2c_unread_msg_num` may name.
pub const MAX_UNREAD_PEERS: usize = 10;
/// The longest offline retention a message may ask for: 7 days.
pub const MAX_MSG_LIFETIME: u32 = 604_800;

/// One account to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountImport {
    pub user_id: String,
    pub nick: Option<String>,
    pub face_url: Option<String>,
}

impl AccountImport {
    pub fn parse(body: &Value) -> Result<AccountImport, ApiError> {
        let f = Fields::of(body, code::ACCOUNT_INVALID_PARAMS)?;
        // Stored as the profile's Tag_Profile_IM_Nick and Tag_Profile_IM_Image, with their limit (Tencent
        // answers 40601 here too).
        let profile_text = |name: &str| -> Result<Option<String>, ApiError> {
            let v = f.opt_string(name, code::ACCOUNT_INVALID_PARAMS)?;
            if let Some(v) = &v {
                check_profile_text(name, v, MAX_PROFILE_VALUE_BYTES)?;
            }
            Ok(v)
        };
        Ok(AccountImport {
            user_id: f.account(&["UserID", "Identifier"], code::ACCOUNT_INVALID_PARAMS)?,
            nick: profile_text("Nick")?,
            face_url: profile_text("FaceUrl")?,
        })
    }
}

/// `multiaccount_import`: either `{"Accounts":["id",...]}` or `{"AccountList":[{"UserID","Nick","FaceUrl"},...]}`.
///
/// Invalid ids do not fail the call: they come back in `FailAccounts`, as Tencent does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiAccountImport {
    pub accounts: Vec<AccountImport>,
    pub invalid: Vec<String>,
}

impl MultiAccountImport {
    pub fn parse(body: &Value) -> Result<MultiAccountImport, ApiError> {
        let f = Fields::of(body, code::ACCOUNT_INVALID_PARAMS)?;
        let items = match f.get(&["Accounts", "AccountList"]) {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => {
                return Err(ApiError::new(code::ACCOUNT_INVALID_PARAMS, "Accounts must be a non-empty array"));
            }
        };
        if items.len() > MAX_ACCOUNT_BATCH {
            return Err(too_many_accounts(items.len()));
        }
        let mut out = MultiAccountImport { accounts: Vec::new(), invalid: Vec::new() };
        for item in items {
            match item {
                Value::String(id) => match validate_user_id(id) {
                    Ok(()) => out.accounts.push(AccountImport { user_id: id.clone(), nick: None, face_url: None }),
                    Err(_) => out.invalid.push(id.clone()),
                },
                Value::Object(_) => match AccountImport::parse(item) {
                    Ok(a) => out.accounts.push(a),
                    Err(_) => out.invalid.push(match item.get("UserID") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => String::new(),
                    }),
                },
                other => out.invalid.push(other.to_string()),
            }
        }
        Ok(out)
    }
}

fn too_many_accounts(n: usize) -> ApiError {
    ApiError::new(
        code::ACCOUNT_INVALID_PARAMS,
        format!("the request names {n} accounts, more than {MAX_ACCOUNT_BATCH}"),
    )
}

/// `account_delete` (`DeleteItem`) and `account_check` (`CheckItem`): a list of `{"UserID": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountList {
    pub user_ids: Vec<String>,
}

impl AccountList {
    pub fn parse(body: &Value, list: &str) -> Result<AccountList, ApiError> {
        let f = Fields::of(body, code::ACCOUNT_INVALID_PARAMS)?;
        let items = match f.get(&[list]) {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => {
                return Err(ApiError::new(code::ACCOUNT_INVALID_PARAMS, format!("{list} must be a non-empty array")));
            }
        };
        if items.len() > MAX_ACCOUNT_BATCH {
            return Err(too_many_accounts(items.len()));
        }
        let user_ids = items
            .iter()
            .map(|item| {
                let f = Fields::of(item, code::ACCOUNT_INVALID_PARAMS)?;
                f.account(&["UserID", "Identifier"], code::ACCOUNT_INVALID_PARAMS)
            })
            .collect::<Result<_, _>>()?;
        Ok(AccountList { user_ids })
    }
}

/// `kick`: `{"UserID": ...}` (older clients: `Identifier`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kick {
    pub user_id: String,
}

impl Kick {
    pub fn parse(body: &Value) -> Result<Kick, ApiError> {
        let f = Fields::of(body, code::ACCOUNT_INVALID_PARAMS)?;
        Ok(Kick { user_id: f.account(&["UserID", "Identifier"], code::ACCOUNT_INVALID_PARAMS)? })
    }
}

/// A profile value: Tencent's tags are either strings or unsigned integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileValue {
    Text(String),
    Number(u64),
}

impl ProfileValue {
    pub fn to_json(&self) -> Value {
        match self {
            ProfileValue::Text(s) => Value::String(s.clone()),
            ProfileValue::Number(n) => Value::from(*n),
        }
    }
}

/// The value kinds of profile tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// A string of at most this many bytes.
    Text(usize),
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
    /// An unsigned 32-bit integer.
    U32,
}

const ALLOW_TYPES: &[&str] = &["AllowType_Type_NeedConfirm", "AllowType_Type_AllowAny", "AllowType_Type_DenyAny"];
const GENDERS: &[&str] = &["Gender_Type_Unknown", "Gender_Type_Female", "Gender_Type_Male"];
const ADMIN_FORBID: &[&str] = &["AdminForbid_Type_None", "AdminForbid_Type_SendOut"];
/// Longest value of a text tag (Tencent: 500 bytes).
pub const MAX_PROFILE_VALUE_BYTES: usize = 500;

fn standard_tag(tag: &str) -> Option<TagKind> {
    Some(match tag {
        "Tag_Profile_IM_Nick" | "Tag_Profile_IM_SelfSignature" | "Tag_Profile_IM_Image" => {
            TagKind::Text(MAX_PROFILE_VALUE_BYTES)
        }
        "Tag_Profile_IM_Location" => TagKind::Text(16),
        "Tag_Profile_IM_Gender" => TagKind::Choice(GENDERS),
        "Tag_Profile_IM_AllowType" => TagKind::Choice(ALLOW_TYPES),
        "Tag_Profile_IM_AdminForbidType" => TagKind::Choice(ADMIN_FORBID),
        "Tag_Profile_IM_BirthDay"
        | "Tag_Profile_IM_Language"
        | "Tag_Profile_IM_MsgSettings"
        | "Tag_Profile_IM_Level"
        | "Tag_Profile_IM_Role" => TagKind::U32,
        _ => return None,
    })
}

/// Whether `tag` is a valid custom tag: `Tag_Profile_Custom_` and 1 to 8 ASCII letters.
fn is_custom_tag(tag: &str) -> bool {
    tag.strip_prefix("Tag_Profile_Custom_")
        .is_some_and(|k| (1..=8).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// Whether `tag` names a profile field Duet stores (standard or custom).
pub fn is_known_tag(tag: &str) -> bool {
    standard_tag(tag).is_some() || is_custom_tag(tag)
}

/// The value a tag reads as before anyone set it.
pub fn default_profile_value(tag: &str) -> ProfileValue {
    match standard_tag(tag) {
        Some(TagKind::U32) => ProfileValue::Number(0),
        Some(TagKind::Choice(choices)) => ProfileValue::Text(choices[0].into()),
        _ => ProfileValue::Text(String::new()),
    }
}

fn profile_value(tag: &str, v: &Value) -> Result<ProfileValue, ApiError> {
    let Some(kind) = standard_tag(tag).or(is_custom_tag(tag).then_some(TagKind::Text(MAX_PROFILE_VALUE_BYTES))) else {
        return Err(ApiError::new(code::PROFILE_TAG_UNKNOWN, format!("unknown profile tag {tag:?}")));
    };
    let text = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(ApiError::new(code::PROFILE_BAD_VALUE_TYPE, format!("{tag} takes a string value"))),
    };
    match kind {
        TagKind::Text(max) => {
            let s = text(v)?;
            check_profile_text(tag, &s, max)?;
            Ok(ProfileValue::Text(s))
        }
        TagKind::Choice(choices) => {
            let s = text(v)?;
            if !choices.contains(&s.as_str()) {
                return Err(ApiError::new(
                    code::PROFILE_BAD_STANDARD_VALUE,
                    format!("{tag} must be one of {}", choices.join(", ")),
                ));
            }
            Ok(ProfileValue::Text(s))
        }
        TagKind::U32 => {
            lenient::as_u64(v).filter(|n| u32::try_from(*n).is_ok()).map(ProfileValue::Number).ok_or_else(|| {
                ApiError::new(code::PROFILE_BAD_VALUE_TYPE, format!("{tag} takes an unsigned 32-bit integer"))
            })
        }
    }
}

/// Checks the length of a text profile value (Tencent: 500 bytes; 40601 beyond).
fn check_profile_text(name: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.len() > max {
        return Err(ApiError::new(
            code::PROFILE_VALUE_TOO_LONG,
            format!("{name} is {} bytes, more than {max}", s.len()),
        ));
    }
    Ok(())
}

/// `portrait_set`: `{"From_Account": ..., "ProfileItem": [{"Tag": ..., "Value": ...}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortraitSet {
    pub from: String,
    pub items: Vec<(String, ProfileValue)>,
}

impl PortraitSet {
    pub fn parse(body: &Value) -> Result<PortraitSet, ApiError> {
        let f = Fields::of(body, code::PROFILE_JSON_PARSE)?;
        let from = f.account(&["From_Account"], code::PROFILE_JSON_PARSE)?;
        let items = match f.get(&["ProfileItem"]) {
            Some(Value::Array(items)) if !items.is_empty() => items,
            _ => {
                return Err(ApiError::new(code::PROFILE_JSON_PARSE, "ProfileItem must be a non-empty array"));
            }
        };
        let items = items
            .iter()
            .map(|item| {
                let tag = match item.get("Tag") {
                    Some(Value::String(t)) => t.clone(),
                    _ => {
                        return Err(ApiError::new(code::PROFILE_JSON_PARSE, "each ProfileItem needs a string Tag"));
                    }
                };
                let value = item
                    .get("Value")
                    .ok_or_else(|| ApiError::new(code::PROFILE_JSON_PARSE, format!("{tag} has no Value")))?;
                Ok((tag.clone(), profile_value(&tag, value)?))
            })
            .collect::<Result<_, _>>()?;
        Ok(PortraitSet { from, items })
    }
}

/// `portrait_get`: `{"To_Account": [...], "TagList": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortraitGet {
    pub to: Vec<String>,
    pub tags: Vec<String>,
}

impl PortraitGet {
    pub fn parse(body: &Value) -> Result<PortraitGet, ApiError> {
        let f = Fields::of(body, code::PROFILE_JSON_PARSE)?;
        let to = f.accounts("To_Account", code::PROFILE_JSON_PARSE, MAX_ACCOUNT_BATCH, code::PROFILE_JSON_PARSE)?;
        let tags = f.opt_strings("TagList", code::PROFILE_JSON_PARSE)?;
        if tags.is_empty() {
            return Err(ApiError::new(code::PROFILE_JSON_PARSE, "TagList must be a non-empty array of strings"));
        }
        if let Some(bad) = tags.iter().find(|t| !is_known_tag(t)) {
            return Err(ApiError::new(code::PROFILE_TAG_UNKNOWN, format!("unknown profile tag {bad:?}")));
        }
        Ok(PortraitGet { to, tags })
    }
}

/// `SyncOtherMachine`: whether the message also goes to the sender's devices and roaming storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOtherMachine {
    /// `1`: sync to the sender's online devices and keep in the sender's history.
    Yes,
    /// `2`: do not sync to the sender at all.
    No,
}

/// The fields `sendmsg` and `batchsendmsg` share.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// `None`: the admin sends as itself.
    pub from: Option<String>,
    pub sync_other_machine: Option<SyncOtherMachine>,
    /// Offline retention in seconds; `0` = online only. Values over 7 days are clamped, as Tencent does.
    pub lifetime: u32,
    pub seq: Option<u32>,
    pub random: u32,
    pub body: Vec<MsgElem>,
    pub cloud_custom_data: Option<String>,
    pub no_unread: bool,
    pub no_last_msg: bool,
    /// `OfflinePushInfo`, kept verbatim for offline push.
    pub offline_push_info: Option<Value>,
    pub need_read_receipt: bool,
    /// `ForbidCallbackControl` holds `ForbidBeforeSendMsgCallback`: no before-send callback for this one.
    pub forbid_before_send: bool,
    /// `ForbidCallbackControl` holds `ForbidAfterSendMsgCallback`: no after-send callback for this one.
    pub forbid_after_send: bool,
    /// `body` as the compact JSON [`OutgoingMessage::check`] measured when the request was read.
    pub body_json: String,
}

impl OutgoingMessage {
    fn parse(f: &Fields<'_>) -> Result<OutgoingMessage, ApiError> {
        let sync_other_machine = match f.opt_u32("SyncOtherMachine", code::MSG_SYNC_OTHER_MACHINE)? {
            None => None,
            Some(1) => Some(SyncOtherMachine::Yes),
            Some(2) => Some(SyncOtherMachine::No),
            Some(n) => {
                return Err(ApiError::new(
                    code::MSG_SYNC_OTHER_MACHINE,
                    format!("SyncOtherMachine must be 1 or 2, not {n}"),
                ));
            }
        };
        let lifetime =
            f.opt_u32("MsgLifeTime", code::MSG_LIFETIME_INVALID)?.unwrap_or(MAX_MSG_LIFETIME).min(MAX_MSG_LIFETIME);
        let online_only = f.opt_u32("OnlineOnlyFlag", code::MSG_JSON_PARSE)? == Some(1);
        let controls = f.opt_strings("SendMsgControl", code::MSG_JSON_PARSE)?;
        let forbid_callbacks = f.opt_strings("ForbidCallbackControl", code::MSG_JSON_PARSE)?;
        let offline_push_info = match f.given(&["OfflinePushInfo"]) {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => {
                return Err(ApiError::new(code::MSG_OFFLINE_PUSH_INFO, "OfflinePushInfo must be an object"));
            }
        };
        let mut msg = OutgoingMessage {
            from: f.opt_account(&["From_Account"], code::MSG_FROM_ACCOUNT_INVALID)?,
            sync_other_machine,
            lifetime: if online_only { 0 } else { lifetime },
            seq: f.opt_u32("MsgSeq", code::MSG_SEQ_INVALID)?,
            random: f.u32("MsgRandom", code::MSG_RANDOM_INVALID)?,
            body: parse_msg_body(f.get(&["MsgBody"]))?,
            // "" is empty content (what an absent one stores too), not an absence.
            cloud_custom_data: f.opt_content("CloudCustomData", code::MSG_JSON_PARSE)?,
            no_unread: controls.iter().any(|c| c == "NoUnread"),
            no_last_msg: controls.iter().any(|c| c == "NoLastMsg"),
            offline_push_info,
            need_read_receipt: f.opt_u32("IsNeedReadReceipt", code::MSG_JSON_PARSE)? == Some(1),
            forbid_before_send: forbid_callbacks.iter().any(|c| c == "ForbidBeforeSendMsgCallback"),
            forbid_after_send: forbid_callbacks.iter().any(|c| c == "ForbidAfterSendMsgCallback"),
            body_json: String::new(),
        };
        msg.body_json = msg.check()?;
        Ok(msg)
    }

    /// Checks the whole message against its limits ([`limits::check_message`]: 12 KB of `MsgBody`,
    /// `CloudCustomData` and `OfflinePushInfo` together); returns the compact JSON of `MsgBody`. Parsing
    /// checks it; check again after changing the body (the server's description of uploads).
    pub fn check(&self) -> Result<String, ApiError> {
        let ccd = self.cloud_custom_data.as_deref().unwrap_or_default();
        limits::check_message(&self.body, ccd, self.offline_push_info.as_ref())
    }
}

/// `sendmsg`: one message to one user.
#[derive(Debug, Clone, PartialEq)]
pub struct SendMsg {
    pub to: String,
    pub msg: OutgoingMessage,
}

impl SendMsg {
    pub fn parse(body: &Value) -> Result<SendMsg, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        Ok(SendMsg { to: f.account(&["To_Account"], code::MSG_TO_ACCOUNT_INVALID)?, msg: OutgoingMessage::parse(&f)? })
    }
}

/// `batchsendmsg`: one message to up to 500 users.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSendMsg {
    pub to: Vec<String>,
    pub msg: OutgoingMessage,
}

impl BatchSendMsg {
    pub fn parse(body: &Value) -> Result<BatchSendMsg, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let to = f.accounts("To_Account", code::MSG_TO_ACCOUNT_INVALID, MAX_RECIPIENTS, code::MSG_TOO_MANY_ACCOUNTS)?;
        Ok(BatchSendMsg { to, msg: OutgoingMessage::parse(&f)? })
    }
}

/// `importmsg`: a historical message, with its original time.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportMsg {
    /// `2`: history, no unread; `1` and `5`: real-time import, counted as unread.
    pub counts_unread: bool,
    pub from: String,
    pub to: String,
    pub seq: Option<u32>,
    pub random: u32,
    pub time: i64,
    pub body: Vec<MsgElem>,
    pub cloud_custom_data: Option<String>,
    /// `body` as the compact JSON [`ImportMsg::check`] measured when the request was read.
    pub body_json: String,
}

impl ImportMsg {
    /// Parses an import at `now` (the server's clock, unix seconds): `MsgTimeStamp` is a time the server
    /// keeps ([`limits::check_time`]) no more than [`limits::MAX_CLOCK_SKEW_SECS`] ahead of `now`, since
    /// history sorts by it: a message dated in the far future would stay the newest, and unread, forever.
    pub fn parse(body: &Value, now: i64) -> Result<ImportMsg, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let counts_unread = match f.u32("SyncFromOldSystem", code::MSG_SYNC_FROM_OLD_SYSTEM)? {
            2 => false,
            1 | 5 => true,
            n => {
                return Err(ApiError::new(
                    code::MSG_SYNC_FROM_OLD_SYSTEM,
                    format!("SyncFromOldSystem must be 1, 2 or 5, not {n}"),
                ));
            }
        };
        let mut msg = ImportMsg {
            counts_unread,
            from: f.account(&["From_Account"], code::MSG_FROM_ACCOUNT_INVALID)?,
            to: f.account(&["To_Account"], code::MSG_TO_ACCOUNT_INVALID)?,
            seq: f.opt_u32("MsgSeq", code::MSG_SEQ_INVALID)?,
            random: f.u32("MsgRandom", code::MSG_RANDOM_INVALID)?,
            time: f.stored_time(&["MsgTimeStamp"], code::MSG_TIMESTAMP_INVALID).and_then(|t| {
                limits::check_not_ahead(t, now)
                    .map_err(|why| ApiError::new(code::MSG_TIMESTAMP_INVALID, format!("MsgTimeStamp: {why}")))
            })?,
            body: parse_msg_body(f.get(&["MsgBody"]))?,
            // "" is empty content, as for sendmsg.
            cloud_custom_data: f.opt_content("CloudCustomData", code::MSG_JSON_PARSE)?,
            body_json: String::new(),
        };
        msg.body_json = msg.check()?;
        Ok(msg)
    }

    /// Checks the whole message against its limits, as [`OutgoingMessage::check`] does.
    pub fn check(&self) -> Result<String, ApiError> {
        limits::check_message(&self.body, self.cloud_custom_data.as_deref().unwrap_or_default(), None)
    }
}

/// `admin_getroammsg`: a page of one side's view of a conversation, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRoamMsg {
    pub operator: String,
    pub peer: String,
    pub max_cnt: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub last_msg_key: Option<(u32, u32, i64)>,
}

impl GetRoamMsg {
    pub fn parse(body: &Value) -> Result<GetRoamMsg, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let operator = f.account(&["Operator_Account", "From_Account"], code::MSG_FROM_ACCOUNT_INVALID)?;
        let peer = f.account(&["Peer_Account", "To_Account"], code::MSG_TO_ACCOUNT_INVALID)?;
        let max_cnt = f.u32("MaxCnt", code::MSG_JSON_PARSE)?;
        let min_time = f.time(&["MinTime"], code::MSG_JSON_PARSE)?;
        let max_time = f.time(&["MaxTime"], code::MSG_JSON_PARSE)?;
        if min_time > max_time {
            return Err(ApiError::new(code::MSG_JSON_PARSE, "MinTime must not be after MaxTime"));
        }
        // Absent or "": from the newest message (Tencent's first page).
        let last_msg_key = match f.opt_string("LastMsgKey", code::MSG_JSON_PARSE)? {
            None => None,
            Some(k) => Some(
                super::parse_msg_key(&k)
                    .ok_or_else(|| ApiError::new(code::MSG_KEY_INVALID, format!("LastMsgKey {k:?} is not a MsgKey")))?,
            ),
        };
        Ok(GetRoamMsg { operator, peer, max_cnt, min_time, max_time, last_msg_key })
    }
}

/// `admin_msgwithdraw`: recall one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgWithdraw {
    pub from: String,
    pub to: String,
    pub key: (u32, u32, i64),
}

impl MsgWithdraw {
    pub fn parse(body: &Value) -> Result<MsgWithdraw, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let from = f.account(&["From_Account"], code::MSG_FROM_ACCOUNT_INVALID)?;
        let to = f.account(&["To_Account"], code::MSG_TO_ACCOUNT_INVALID)?;
        let key = f.string("MsgKey", code::MSG_KEY_INVALID)?;
        let key = super::parse_msg_key(&key)
            .ok_or_else(|| ApiError::new(code::MSG_KEY_INVALID, format!("MsgKey {key:?} is not a MsgKey")))?;
        Ok(MsgWithdraw { from, to, key })
    }
}

/// `admin_set_msg_read`: mark what `report` received from `peer` up to a time as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMsgRead {
    pub report: String,
    pub peer: String,
    /// Unix seconds; `None` = now.
    pub read_time: Option<i64>,
}

impl SetMsgRead {
    pub fn parse(body: &Value) -> Result<SetMsgRead, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        Ok(SetMsgRead {
            report: f.account(&["Report_Account"], code::MSG_FROM_ACCOUNT_INVALID)?,
            peer: f.account(&["Peer_Account"], code::MSG_TO_ACCOUNT_INVALID)?,
            read_time: f.opt_stored_time(&["MsgReadTime"], code::MSG_JSON_PARSE)?,
        })
    }
}

/// `c2c_msg_read_receipt`: `operator` acknowledges messages `peer` sent it with read receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgReadReceipt {
    pub operator: String,
    pub peer: String,
    /// The messages' `MsgKey`s, as (`MsgSeq`, `MsgRandom`, time).
    pub keys: Vec<(u32, u32, i64)>,
}

impl MsgReadReceipt {
    /// Messages one call may acknowledge.
    pub const MAX_MESSAGES: usize = 100;

    pub fn parse(body: &Value) -> Result<MsgReadReceipt, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let operator = f.account(&["Operator_Account"], code::MSG_FROM_ACCOUNT_INVALID)?;
        let peer = f.account(&["Peer_Account"], code::MSG_TO_ACCOUNT_INVALID)?;
        let infos = match f.get(&["C2CMsgInfo"]) {
            Some(Value::Array(items)) if !items.is_empty() && items.len() <= Self::MAX_MESSAGES => items,
            _ => {
                let why = format!("C2CMsgInfo must be an array of 1 to {} messages", Self::MAX_MESSAGES);
                return Err(ApiError::new(code::MSG_JSON_PARSE, why));
            }
        };
        let mut keys = Vec::with_capacity(infos.len());
        for info in infos {
            let m = Fields::of(info, code::MSG_JSON_PARSE)?;
            // Each message is one `peer` sent `operator` (Tencent: From_Account matches Peer_Account,
            // To_Account matches Operator_Account).
            if m.account(&["From_Account"], code::MSG_FROM_ACCOUNT_INVALID)? != peer {
                return Err(ApiError::new(code::MSG_JSON_PARSE, "each C2CMsgInfo's From_Account must be Peer_Account"));
            }
            if m.account(&["To_Account"], code::MSG_TO_ACCOUNT_INVALID)? != operator {
                let why = "each C2CMsgInfo's To_Account must be Operator_Account";
                return Err(ApiError::new(code::MSG_JSON_PARSE, why));
            }
            let key = m.string("MsgKey", code::MSG_KEY_INVALID)?;
            keys.push(
                super::parse_msg_key(&key)
                    .ok_or_else(|| ApiError::new(code::MSG_KEY_INVALID, format!("MsgKey {key:?} is not a MsgKey")))?,
            );
        }
        Ok(MsgReadReceipt { operator, peer, keys })
    }
}

/// `modify_c2c_msg`: edit a message `from` sent `to`; whichever of `MsgBody` and `CloudCustomData` is given
/// replaces the stored one (`""` is not given: a client that sends it for an unset field keeps the data).
#[derive(Debug, Clone, PartialEq)]
pub struct ModifyC2cMsg {
    pub from: String,
    pub to: String,
    pub key: (u32, u32, i64),
    /// The new `MsgBody`, and its compact JSON as checked.
    pub body: Option<(Vec<MsgElem>, String)>,
    pub cloud_custom_data: Option<String>,
}

impl ModifyC2cMsg {
    pub fn parse(body: &Value) -> Result<ModifyC2cMsg, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let from = f.account(&["From_Account"], code::MSG_FROM_ACCOUNT_INVALID)?;
        let to = f.account(&["To_Account"], code::MSG_TO_ACCOUNT_INVALID)?;
        let key = f.string("MsgKey", code::MSG_KEY_INVALID)?;
        let key = super::parse_msg_key(&key)
            .ok_or_else(|| ApiError::new(code::MSG_KEY_INVALID, format!("MsgKey {key:?} is not a MsgKey")))?;
        let cloud_custom_data = f.opt_string("CloudCustomData", code::MSG_JSON_PARSE)?;
        let body = match f.given(&["MsgBody"]) {
            None => None,
            Some(v) => {
                let elems = parse_msg_body(Some(v))?;
                let json = limits::check_message(&elems, cloud_custom_data.as_deref().unwrap_or_default(), None)?;
                Some((elems, json))
            }
        };
        if body.is_none() && cloud_custom_data.is_none() {
            return Err(ApiError::new(code::MSG_JSON_PARSE, "give MsgBody or CloudCustomData (or both) to change"));
        }
        if let (None, Some(data)) = (&body, &cloud_custom_data) {
            limits::check_message_without_body(data)?;
        }
        Ok(ModifyC2cMsg { from, to, key, body, cloud_custom_data })
    }
}

/// `delete_c2c_msg_ramble`: `operator` deletes messages of its conversation with `peer` from its own side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteC2cMsgRamble {
    pub operator: String,
    pub peer: String,
    /// The keys as given, each with its parsed (`MsgSeq`, `MsgRandom`, time).
    pub keys: Vec<(String, (u32, u32, i64))>,
}

impl DeleteC2cMsgRamble {
    /// Messages one call may delete (Tencent's limit).
    pub const MAX_MESSAGES: usize = 30;

    pub fn parse(body: &Value) -> Result<DeleteC2cMsgRamble, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let operator = f.account(&["Operator_Account"], code::MSG_FROM_ACCOUNT_INVALID)?;
        let peer = f.account(&["Peer_Account"], code::MSG_TO_ACCOUNT_INVALID)?;
        let list = f.opt_strings("MsgKeyList", code::MSG_JSON_PARSE)?;
        if list.is_empty() || list.len() > Self::MAX_MESSAGES {
            let why = format!("MsgKeyList must hold 1 to {} MsgKeys", Self::MAX_MESSAGES);
            return Err(ApiError::new(code::MSG_JSON_PARSE, why));
        }
        let keys = list
            .into_iter()
            .map(|k| match super::parse_msg_key(&k) {
                Some(key) => Ok((k, key)),
                None => Err(ApiError::new(code::MSG_KEY_INVALID, format!("MsgKey {k:?} is not a MsgKey"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(DeleteC2cMsgRamble { operator, peer, keys })
    }
}

/// `get_c2c_unread_msg_num`: a user's unread count, in all or for up to 10 peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadNum {
    pub to: String,
    pub peers: Option<Vec<String>>,
}

impl UnreadNum {
    pub fn parse(body: &Value) -> Result<UnreadNum, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        let to = f.account(&["To_Account"], code::MSG_TO_ACCOUNT_INVALID)?;
        let peers = match f.given(&["Peer_Account"]) {
            None => None,
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(_) => Some(f.accounts(
                "Peer_Account",
                code::MSG_JSON_PARSE,
                MAX_UNREAD_PEERS,
                code::MSG_TOO_MANY_REQUESTED,
            )?),
        };
        Ok(UnreadNum { to, peers })
    }
}

/// `query_online_status` (and the legacy `querystate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOnlineStatus {
    pub to: Vec<String>,
    pub need_detail: bool,
}

impl QueryOnlineStatus {
    pub fn parse(body: &Value) -> Result<QueryOnlineStatus, ApiError> {
        let f = Fields::of(body, code::MSG_JSON_PARSE)?;
        Ok(QueryOnlineStatus {
            to: f.accounts("To_Account", code::MSG_JSON_PARSE, MAX_RECIPIENTS, code::MSG_TOO_MANY_ACCOUNTS)?,
            need_detail: f.opt_u32("IsNeedDetail", code::MSG_JSON_PARSE)? == Some(1),
        })
    }
}

/// `recentcontact/get_list`: a user's conversations, paged by `StartIndex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentContactGetList {
    pub from: String,
    pub start_index: usize,
}

impl RecentContactGetList {
    pub fn parse(body: &Value) -> Result<RecentContactGetList, ApiError> {
        let f = Fields::of(body, code::CONTACT_JSON_PARSE)?;
        let from = f.account(&["From_Account"], code::CONTACT_JSON_PARSE)?;
        for name in ["TimeStamp", "TopTimeStamp", "TopStartIndex", "AssistFlags"] {
            f.opt_time(&[name], code::CONTACT_JSON_PARSE)?;
        }
        let start_index = f.opt_time(&["StartIndex"], code::CONTACT_JSON_PARSE)?.unwrap_or(0);
        Ok(RecentContactGetList { from, start_index: usize::try_from(start_index).unwrap_or(usize::MAX) })
    }
}

/// `recentcontact/mark_contact`: set or clear marks and the custom mark of up to 100 conversations of one
/// account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkContact {
    pub from: String,
    pub items: Vec<MarkItem>,
}

/// One conversation's change in `mark_contact`, or why it cannot be made (answered in its `ResultItem`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkItem {
    pub opt_type: u32,
    /// The item's `ContactItem` as sent, echoed in its result.
    pub contact: Value,
    pub change: Result<MarkChange, ApiError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkChange {
    pub peer: String,
    /// Mark bits to set, then to clear.
    pub set: u64,
    pub clear: u64,
    pub custom_mark: Option<String>,
}

impl MarkContact {
    /// Conversations one call may mark (Tencent's limit).
    pub const MAX_ITEMS: usize = 100;

    pub fn parse(body: &Value) -> Result<MarkContact, ApiError> {
        let f = Fields::of(body, code::CONTACT_JSON_PARSE)?;
        let from = f.account(&["From_Account"], code::CONTACT_JSON_PARSE)?;
        let items = match f.get(&["MarkItem"]) {
            Some(Value::Array(items)) if !items.is_empty() && items.len() <= Self::MAX_ITEMS => items,
            _ => {
                let why = format!("MarkItem must be an array of 1 to {} items", Self::MAX_ITEMS);
                return Err(ApiError::new(code::CONTACT_JSON_PARSE, why));
            }
        };
        let items = items.iter().map(MarkItem::parse).collect::<Result<_, _>>()?;
        Ok(MarkContact { from, items })
    }
}

impl MarkItem {
    /// A malformed item fails the call; one Duet cannot apply (a group, a bad bit) fails only its result.
    fn parse(item: &Value) -> Result<MarkItem, ApiError> {
        let f = Fields::of(item, code::CONTACT_JSON_PARSE)?;
        let opt_type = f.u32("OptType", code::CONTACT_JSON_PARSE)?;
        let contact = f.get(&["ContactItem"]).cloned().unwrap_or(Value::Null);
        let change = (|| {
            if !(1..=3).contains(&opt_type) {
                return Err(ApiError::new(
                    code::CONTACT_JSON_PARSE,
                    format!("OptType must be 1, 2 or 3, not {opt_type}"),
                ));
            }
            let c = Fields::of(&contact, code::CONTACT_JSON_PARSE)?;
            match c.u32("Type", code::CONTACT_JSON_PARSE)? {
                1 => {}
                2 => return Err(ApiError::new(code::CONTACT_JSON_PARSE, "Type 2 (group conversations) is not served")),
                n => return Err(ApiError::new(code::CONTACT_JSON_PARSE, format!("Type must be 1 (C2C), not {n}"))),
            }
            let peer = c.account(&["To_Account"], code::CONTACT_JSON_PARSE)?;
            let bits = |name: &str| -> Result<u64, ApiError> {
                let Some(v) = f.given(&[name]) else { return Ok(0) };
                let Value::Array(ns) = v else {
                    return Err(ApiError::new(
                        code::CONTACT_JSON_PARSE,
                        format!("{name} must be an array of bit numbers"),
                    ));
                };
                ns.iter().try_fold(0u64, |acc, n| match n.as_u64() {
                    Some(n) if n < 64 => Ok(acc | 1 << n),
                    _ => Err(ApiError::new(code::CONTACT_JSON_PARSE, format!("{name}: {n} is not a bit number 0-63"))),
                })
            };
            let standard = opt_type & 1 != 0;
            let custom = opt_type & 2 != 0;
            let custom_mark = if custom { f.opt_content("CustomMark", code::CONTACT_JSON_PARSE)? } else { None };
            limits::check_conversation_settings(custom_mark.as_deref(), None, code::CONTACT_JSON_PARSE)?;
            Ok(MarkChange {
                peer,
                set: if standard { bits("SetMark")? } else { 0 },
                clear: if standard { bits("ClearMark")? } else { 0 },
                custom_mark,
            })
        })();
        Ok(MarkItem { opt_type, contact, change })
    }
}

/// `recentcontact/delete`: remove one C2C conversation, optionally with its history (`ClearRamble`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentContactDelete {
    pub from: String,
    pub to: String,
    pub clear_ramble: bool,
}

impl RecentContactDelete {
    pub fn parse(body: &Value) -> Result<RecentContactDelete, ApiError> {
        let f = Fields::of(body, code::CONTACT_JSON_PARSE)?;
        let from = f.account(&["From_Account"], code::CONTACT_JSON_PARSE)?;
        match f.u32("Type", code::CONTACT_JSON_PARSE)? {
            1 => {}
            2 => {
                return Err(ApiError::new(
                    code::CONTACT_JSON_PARSE,
                    "Type 2 (group conversations) is not served: Duet is one-to-one only",
                ));
            }
            n => {
                return Err(ApiError::new(code::CONTACT_JSON_PARSE, format!("Type must be 1 (C2C), not {n}")));
            }
        }
        Ok(RecentContactDelete {
            from,
            to: f.account(&["To_Account"], code::CONTACT_JSON_PARSE)?,
            clear_ramble: f.opt_u32("ClearRamble", code::CONTACT_JSON_PARSE)? == Some(1),
        })
    }
}

/// A `NospeakingTime` that mutes for good (`0xFFFFFFFF`); `0` unmutes, any other value mutes for that many
/// seconds.
pub const NOSPEAKING_FOREVER: u32 = u32::MAX;

/// `openconfigsvr/setnospeaking`: mutes or unmutes an account's one-to-one and group messages. A time
/// not given leaves that mute as it is; at least one is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNoSpeaking {
    pub account: String,
    /// `C2CmsgNospeakingTime`: seconds from now, `0` (unmute) or [`NOSPEAKING_FOREVER`].
    pub c2c: Option<u32>,
    /// `GroupmsgNospeakingTime`, likewise (kept and answered; Duet has no groups).
    pub group: Option<u32>,
}

impl SetNoSpeaking {
    pub fn parse(body: &Value) -> Result<SetNoSpeaking, ApiError> {
        let f = Fields::of(body, code::NOSPEAKING_JSON_PARSE)?;
        let account = nospeaking_account(
            &f,
            "Set_Account",
            code::NOSPEAKING_SET_ACCOUNT_MISSING,
            code::NOSPEAKING_SET_ACCOUNT_INVALID,
        )?;
        let c2c = f.opt_u32("C2CmsgNospeakingTime", code::NOSPEAKING_C2C_TIME_INVALID)?;
        let group = f.opt_u32("GroupmsgNospeakingTime", code::NOSPEAKING_GROUP_TIME_INVALID)?;
        if c2c.is_none() && group.is_none() {
            return Err(ApiError::new(
                code::NOSPEAKING_NO_TIME,
                "C2CmsgNospeakingTime or GroupmsgNospeakingTime is required",
            ));
        }
        Ok(SetNoSpeaking { account, c2c, group })
    }
}

/// `openconfigsvr/getnospeaking`: an account's mutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetNoSpeaking {
    pub account: String,
}

impl GetNoSpeaking {
    pub fn parse(body: &Value) -> Result<GetNoSpeaking, ApiError> {
        let f = Fields::of(body, code::NOSPEAKING_JSON_PARSE)?;
        let account = nospeaking_account(
            &f,
            "Get_Account",
            code::NOSPEAKING_GET_ACCOUNT_MISSING,
            code::NOSPEAKING_GET_ACCOUNT_INVALID,
        )?;
        Ok(GetNoSpeaking { account })
    }
}

/// The account of a mute request: Tencent has one code for a missing field and one for an invalid one
/// (not a string, not a valid UserID, `""`).
fn nospeaking_account(f: &Fields<'_>, name: &str, missing: u32, invalid: u32) -> Result<String, ApiError> {
    if f.get(&[name]).is_none() {
        return Err(ApiError::new(missing, format!("{name} is required")));
    }
    f.account(&[name], invalid)
}

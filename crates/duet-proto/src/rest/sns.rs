//! The relationship chain (`sns/*`): friends and blacklists. Request parsing with Tencent's codes (every
//! malformed field is 30001) and the reply shapes, with Tencent's field names and spelling quirks
//! (`Fail_Account`, `CheckResult_Type_AWithB`, `BlackCheckResult_Type_NO`, `CurruentSequence`).

use serde::Serialize;
use serde_json::Value;

use super::fields::Fields;
use super::request::{ProfileValue, is_known_tag};
use crate::{ApiError, code, lenient};

/// Most accounts one call may name (`To_Account`, `AddFriendItem`, ...).
pub const MAX_SNS_ACCOUNTS: usize = 1_000;
/// Most friends one `friend_get_list` may name (Tencent recommends 100).
pub const MAX_GET_LIST: usize = 100;
/// Most entries one `black_list_get` page may ask for.
pub const MAX_BLACKLIST_PAGE: u32 = 1_000;
/// Longest remark, in bytes.
pub const MAX_REMARK_BYTES: usize = 96;
/// Longest `AddWording`, in bytes.
pub const MAX_WORDING_BYTES: usize = 256;
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 30;
/// Most groups per friend.
pub const MAX_GROUPS: usize = 32;
/// Longest custom friend tag value, in bytes.
pub const MAX_SNS_VALUE_BYTES: usize = 500;

pub const TAG_SNS_GROUP: &str = "Tag_SNS_IM_Group";
pub const TAG_SNS_REMARK: &str = "Tag_SNS_IM_Remark";
pub const TAG_SNS_ADD_SOURCE: &str = "Tag_SNS_IM_AddSource";
pub const TAG_SNS_ADD_WORDING: &str = "Tag_SNS_IM_AddWording";
pub const TAG_SNS_ADD_TIME: &str = "Tag_SNS_IM_AddTime";

const BAD: u32 = code::SNS_INVALID_PARAMS;

fn bad(info: impl Into<String>) -> ApiError {
    ApiError::new(BAD, info)
}

/// Whether `tag` is a custom friend tag: `Tag_SNS_Custom_` and 1 to 8 ASCII letters.
pub fn is_custom_sns_tag(tag: &str) -> bool {
    tag.strip_prefix("Tag_SNS_Custom_")
        .is_some_and(|k| (1..=8).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// Whether `tag` names friend data: a standard `Tag_SNS_IM_*` tag or a custom one.
pub fn is_sns_tag(tag: &str) -> bool {
    matches!(tag, TAG_SNS_GROUP | TAG_SNS_REMARK | TAG_SNS_ADD_SOURCE | TAG_SNS_ADD_WORDING | TAG_SNS_ADD_TIME)
        || is_custom_sns_tag(tag)
}

/// `AddSource_Type_` and 1 to 8 ASCII letters.
fn add_source(s: String) -> Result<String, ApiError> {
    let ok = s
        .strip_prefix("AddSource_Type_")
        .is_some_and(|k| (1..=8).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphabetic()));
    if ok { Ok(s) } else { Err(bad(format!("AddSource {s:?} must be AddSource_Type_ and 1 to 8 letters"))) }
}

/// Checks the fields of a friend request made from a client (`friend_add` of the client protocol), with
/// the limits of the REST API; the source may be empty there.
pub fn check_request_fields(source: &str, wording: &str, remark: &str) -> Result<(), ApiError> {
    if !source.is_empty() {
        add_source(source.to_owned())?;
    }
    limited("wording", Some(wording.to_owned()), MAX_WORDING_BYTES)?;
    limited("remark", Some(remark.to_owned()), MAX_REMARK_BYTES)?;
    Ok(())
}

fn limited(name: &str, v: Option<String>, max: usize) -> Result<String, ApiError> {
    let s = v.unwrap_or_default();
    if s.len() > max {
        return Err(bad(format!("{name} is {} bytes, more than {max}", s.len())));
    }
    Ok(s)
}

fn group_name(g: &str) -> Result<String, ApiError> {
    if g.is_empty() || g.len() > MAX_GROUP_NAME_BYTES || g.chars().any(crate::limits::is_invisible) {
        return Err(bad(format!(
            "group name {g:?} must be 1 to {MAX_GROUP_NAME_BYTES} bytes, no invisible characters"
        )));
    }
    Ok(g.to_owned())
}

/// A friend's groups: an array of names, or one name. `""` is no group, so `Tag_SNS_IM_Group` set to `""`
/// by `friend_update` clears the groups; an empty name inside an array is refused, as Tencent does.
fn groups(v: &Value) -> Result<Vec<String>, ApiError> {
    let items = match v {
        Value::Array(items) => items,
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![group_name(s)?]),
        _ => return Err(bad("GroupName must be an array of strings")),
    };
    if items.len() > MAX_GROUPS {
        return Err(bad(format!("a friend may be in at most {MAX_GROUPS} groups")));
    }
    items
        .iter()
        .map(|g| match g {
            Value::String(s) => group_name(s),
            _ => Err(bad("GroupName must be an array of strings")),
        })
        .collect()
}

fn custom_value(tag: &str, v: &Value) -> Result<ProfileValue, ApiError> {
    match v {
        Value::String(s) if s.len() <= MAX_SNS_VALUE_BYTES => Ok(ProfileValue::Text(s.clone())),
        Value::String(_) => Err(bad(format!("{tag} is longer than {MAX_SNS_VALUE_BYTES} bytes"))),
        other => lenient::as_u64(other)
            .filter(|n| u32::try_from(*n).is_ok())
            .map(ProfileValue::Number)
            .ok_or_else(|| bad(format!("{tag} takes a string or an unsigned 32-bit integer"))),
    }
}

/// The items of a non-empty array field, at most [`MAX_SNS_ACCOUNTS`].
fn items<'a>(f: &Fields<'a>, name: &str) -> Result<&'a Vec<Value>, ApiError> {
    match f.get(&[name]) {
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.len() > MAX_SNS_ACCOUNTS {
                return Err(bad(format!("{name} holds {} items, more than {MAX_SNS_ACCOUNTS}", items.len())));
            }
            Ok(items)
        }
        _ => Err(bad(format!("{name} must be a non-empty array"))),
    }
}

fn from_account(f: &Fields<'_>) -> Result<String, ApiError> {
    f.account(&["From_Account"], BAD)
}

fn to_accounts(f: &Fields<'_>) -> Result<Vec<String>, ApiError> {
    f.accounts("To_Account", BAD, MAX_SNS_ACCOUNTS, BAD)
}

/// `AddType`: both lists, or only the requester's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddType {
    Both,
    Single,
}

/// One `AddFriendItem` of `friend_add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddFriendItem {
    pub to: String,
    pub remark: String,
    /// `GroupName`: one group here.
    pub group: String,
    pub source: String,
    pub wording: String,
}

/// `friend_add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendAdd {
    pub from: String,
    pub items: Vec<AddFriendItem>,
    /// `Add_Type_Both` (the default) or `Add_Type_Single`.
    pub add_type: AddType,
    /// `ForceAddFlags: 1`: add whatever the targets' `AllowType`.
    pub force: bool,
}

impl FriendAdd {
    pub fn parse(body: &Value) -> Result<FriendAdd, ApiError> {
        let f = Fields::of(body, BAD)?;
        let from = from_account(&f)?;
        let items = items(&f, "AddFriendItem")?
            .iter()
            .map(|item| {
                let i = Fields::of(item, BAD)?;
                Ok(AddFriendItem {
                    to: i.account(&["To_Account"], BAD)?,
                    remark: limited("Remark", i.opt_string("Remark", BAD)?, MAX_REMARK_BYTES)?,
                    group: match i.opt_string("GroupName", BAD)? {
                        None => String::new(),
                        Some(g) => group_name(&g)?,
                    },
                    source: add_source(i.string("AddSource", BAD)?)?,
                    wording: limited("AddWording", i.opt_string("AddWording", BAD)?, MAX_WORDING_BYTES)?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        let add_type = match f.opt_string("AddType", BAD)?.as_deref() {
            None | Some("Add_Type_Both") => AddType::Both,
            Some("Add_Type_Single") => AddType::Single,
            Some(other) => return Err(bad(format!("AddType {other:?} must be Add_Type_Both or Add_Type_Single"))),
        };
        // Tencent documents 1 = force and 0 = normal; some clients send 2 for normal.
        let force = f.opt_u32("ForceAddFlags", BAD)? == Some(1);
        Ok(FriendAdd { from, items, add_type, force })
    }
}

/// One `AddFriendItem` of `friend_import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFriendItem {
    pub to: String,
    pub remark: String,
    pub groups: Vec<String>,
    pub source: String,
    pub wording: String,
    /// `AddTime`; now when absent.
    pub add_time: Option<i64>,
    pub custom: Vec<(String, ProfileValue)>,
}

/// `friend_import`: one-way friends written as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendImport {
    pub from: String,
    pub items: Vec<ImportFriendItem>,
}

impl FriendImport {
    pub fn parse(body: &Value) -> Result<FriendImport, ApiError> {
        let f = Fields::of(body, BAD)?;
        let from = from_account(&f)?;
        let items = items(&f, "AddFriendItem")?
            .iter()
            .map(|item| {
                let i = Fields::of(item, BAD)?;
                i.opt_time(&["RemarkTime"], BAD)?;
                Ok(ImportFriendItem {
                    to: i.account(&["To_Account"], BAD)?,
                    remark: limited("Remark", i.opt_string("Remark", BAD)?, MAX_REMARK_BYTES)?,
                    groups: i.given(&["GroupName"]).map(groups).transpose()?.unwrap_or_default(),
                    source: add_source(i.string("AddSource", BAD)?)?,
                    wording: limited("AddWording", i.opt_string("AddWording", BAD)?, MAX_WORDING_BYTES)?,
                    add_time: i.opt_stored_time(&["AddTime"], BAD)?,
                    custom: match i.given(&["CustomItem"]) {
                        None => Vec::new(),
                        Some(Value::Array(tags)) => tags.iter().map(custom_item).collect::<Result<_, _>>()?,
                        Some(_) => return Err(bad("CustomItem must be an array")),
                    },
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(FriendImport { from, items })
    }
}

fn custom_item(item: &Value) -> Result<(String, ProfileValue), ApiError> {
    let i = Fields::of(item, BAD)?;
    let tag = i.string("Tag", BAD)?;
    if !is_custom_sns_tag(&tag) {
        return Err(bad(format!("{tag:?} is not a custom friend tag (Tag_SNS_Custom_ and 1 to 8 letters)")));
    }
    // A value, not an optional field: "" is an empty text.
    let value = i.get(&["Value"]).ok_or_else(|| bad(format!("{tag} has no Value")))?;
    Ok((tag.clone(), custom_value(&tag, value)?))
}

/// A friend field `friend_update` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnsValue {
    Remark(String),
    Groups(Vec<String>),
    Custom(String, ProfileValue),
}

/// `friend_update`: `UpdateItem: [{To_Account, SnsItem: [{Tag, Value}]}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendUpdate {
    pub from: String,
    pub items: Vec<(String, Vec<SnsValue>)>,
}

impl FriendUpdate {
    pub fn parse(body: &Value) -> Result<FriendUpdate, ApiError> {
        let f = Fields::of(body, BAD)?;
        let from = from_account(&f)?;
        let items = items(&f, "UpdateItem")?
            .iter()
            .map(|item| {
                let i = Fields::of(item, BAD)?;
                let to = i.account(&["To_Account"], BAD)?;
                let values = match i.get(&["SnsItem"]) {
                    Some(Value::Array(v)) if !v.is_empty() => v,
                    _ => return Err(bad("SnsItem must be a non-empty array")),
                };
                let values = values
                    .iter()
                    .map(|v| {
                        let v = Fields::of(v, BAD)?;
                        let tag = v.string("Tag", BAD)?;
                        // The value set, not an optional field: "" clears the remark, the groups or a
                        // custom tag.
                        let value = v.get(&["Value"]).ok_or_else(|| bad(format!("{tag} has no Value")))?;
                        Ok(match tag.as_str() {
                            TAG_SNS_REMARK => match value {
                                Value::String(s) => {
                                    SnsValue::Remark(limited("Remark", Some(s.clone()), MAX_REMARK_BYTES)?)
                                }
                                _ => return Err(bad("Tag_SNS_IM_Remark takes a string")),
                            },
                            TAG_SNS_GROUP => SnsValue::Groups(groups(value)?),
                            t if is_custom_sns_tag(t) => SnsValue::Custom(tag.clone(), custom_value(&tag, value)?),
                            _ => {
                                return Err(bad(format!(
                                    "{tag:?} cannot be updated: only the remark, groups and custom tags"
                                )));
                            }
                        })
                    })
                    .collect::<Result<_, ApiError>>()?;
                Ok((to, values))
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(FriendUpdate { from, items })
    }
}

/// `DeleteType` of `friend_delete` and `friend_delete_all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteType {
    Single,
    Both,
}

fn delete_type(f: &Fields<'_>, default: DeleteType) -> Result<DeleteType, ApiError> {
    match f.opt_string("DeleteType", BAD)?.as_deref() {
        None => Ok(default),
        Some("Delete_Type_Single") => Ok(DeleteType::Single),
        Some("Delete_Type_Both") => Ok(DeleteType::Both),
        Some(other) => Err(bad(format!("DeleteType {other:?} must be Delete_Type_Single or Delete_Type_Both"))),
    }
}

/// `friend_delete`. Without `DeleteType` only the user's list changes (`Delete_Type_Single`): Tencent's
/// REST page leaves the default unsaid, so Duet takes the non-destructive one, as `friend_delete_all` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendDelete {
    pub from: String,
    pub to: Vec<String>,
    pub delete_type: DeleteType,
}

impl FriendDelete {
    pub fn parse(body: &Value) -> Result<FriendDelete, ApiError> {
        let f = Fields::of(body, BAD)?;
        Ok(FriendDelete {
            from: from_account(&f)?,
            to: to_accounts(&f)?,
            delete_type: delete_type(&f, DeleteType::Single)?,
        })
    }
}

/// `friend_delete_all`. Without `DeleteType` only the user's list is emptied (Tencent's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendDeleteAll {
    pub from: String,
    pub delete_type: DeleteType,
}

impl FriendDeleteAll {
    pub fn parse(body: &Value) -> Result<FriendDeleteAll, ApiError> {
        let f = Fields::of(body, BAD)?;
        Ok(FriendDeleteAll { from: from_account(&f)?, delete_type: delete_type(&f, DeleteType::Single)? })
    }
}

/// `friend_check` and `black_list_check`: `CheckType` both ways or single.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationCheck {
    pub from: String,
    pub to: Vec<String>,
    pub both: bool,
}

impl RelationCheck {
    /// `prefix`: `CheckResult_Type` (friends) or `BlackCheckResult_Type` (blacklists).
    pub fn parse(body: &Value, prefix: &str) -> Result<RelationCheck, ApiError> {
        let f = Fields::of(body, BAD)?;
        let from = from_account(&f)?;
        let to = to_accounts(&f)?;
        let check = f.string("CheckType", BAD)?;
        let both = match check.strip_prefix(prefix) {
            Some("_Both") => true,
            Some("_Single") => false,
            _ => return Err(bad(format!("CheckType {check:?} must be {prefix}_Both or {prefix}_Single"))),
        };
        Ok(RelationCheck { from, to, both })
    }
}

/// `friend_get`: a page of the friend list from `StartIndex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendGet {
    pub from: String,
    pub start_index: usize,
}

impl FriendGet {
    pub fn parse(body: &Value) -> Result<FriendGet, ApiError> {
        let f = Fields::of(body, BAD)?;
        let from = from_account(&f)?;
        let start = f.time(&["StartIndex"], BAD)?;
        f.opt_time(&["StandardSequence"], BAD)?;
        f.opt_time(&["CustomSequence"], BAD)?;
        Ok(FriendGet { from, start_index: usize::try_from(start).unwrap_or(usize::MAX) })
    }
}

/// `friend_get_list`: chosen friends' data and profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendGetList {
    pub from: String,
    pub to: Vec<String>,
    /// Profile tags (`Tag_Profile_*`) and friend tags (`Tag_SNS_*`), in the order asked.
    pub tags: Vec<String>,
}

impl FriendGetList {
    pub fn parse(body: &Value) -> Result<FriendGetList, ApiError> {
        let f = Fields::of(body, BAD)?;
        let from = from_account(&f)?;
        let to = f.accounts("To_Account", BAD, MAX_GET_LIST, BAD)?;
        let tags = f.opt_strings("TagList", BAD)?;
        if tags.is_empty() {
            return Err(bad("TagList must be a non-empty array of strings"));
        }
        if let Some(t) = tags.iter().find(|t| !is_sns_tag(t) && !is_known_tag(t)) {
            return Err(bad(format!("unknown tag {t:?}")));
        }
        Ok(FriendGetList { from, to, tags })
    }
}

/// `black_list_add` and `black_list_delete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlackListChange {
    pub from: String,
    pub to: Vec<String>,
}

impl BlackListChange {
    pub fn parse(body: &Value) -> Result<BlackListChange, ApiError> {
        let f = Fields::of(body, BAD)?;
        Ok(BlackListChange { from: from_account(&f)?, to: to_accounts(&f)? })
    }
}

/// `black_list_get`: a page of the blacklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlackListGet {
    pub from: String,
    pub start_index: usize,
    pub max_limited: u32,
}

impl BlackListGet {
    pub fn parse(body: &Value) -> Result<BlackListGet, ApiError> {
        let f = Fields::of(body, BAD)?;
        let from = from_account(&f)?;
        let start = f.time(&["StartIndex"], BAD)?;
        let max_limited = f.u32("MaxLimited", BAD)?;
        if max_limited == 0 || max_limited > MAX_BLACKLIST_PAGE {
            return Err(bad(format!("MaxLimited must be 1 to {MAX_BLACKLIST_PAGE}")));
        }
        f.opt_time(&["LastSequence"], BAD)?;
        Ok(BlackListGet { from, start_index: usize::try_from(start).unwrap_or(usize::MAX), max_limited })
    }
}

// ---- replies ------------------------------------------------------------------------------------------

/// The per-account result of the batch commands.
#[derive(Debug, Serialize)]
pub struct ResultItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
}

/// `friend_add`, `friend_import`, `friend_update`, `friend_delete`, `black_list_add`, `black_list_delete`.
#[derive(Debug, Serialize)]
pub struct ResultItemReply {
    #[serde(rename = "ResultItem")]
    pub result_item: Vec<ResultItem>,
    /// The accounts whose item failed; absent when none did.
    #[serde(rename = "Fail_Account", skip_serializing_if = "Vec::is_empty")]
    pub fail_account: Vec<String>,
}

/// One result of `friend_check` and `black_list_check`.
#[derive(Debug, Serialize)]
pub struct CheckItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "Relation")]
    pub relation: String,
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
}

#[derive(Debug, Serialize)]
pub struct FriendCheckReply {
    #[serde(rename = "InfoItem")]
    pub info_item: Vec<CheckItem>,
    #[serde(rename = "Fail_Account", skip_serializing_if = "Vec::is_empty")]
    pub fail_account: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BlackListCheckReply {
    #[serde(rename = "BlackListCheckItem")]
    pub items: Vec<CheckItem>,
    #[serde(rename = "Fail_Account", skip_serializing_if = "Vec::is_empty")]
    pub fail_account: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TagValue {
    #[serde(rename = "Tag")]
    pub tag: String,
    #[serde(rename = "Value")]
    pub value: Value,
}

#[derive(Debug, Serialize)]
pub struct UserDataItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "ValueItem")]
    pub value_item: Vec<TagValue>,
}

#[derive(Debug, Serialize)]
pub struct FriendGetReply {
    #[serde(rename = "UserDataItem")]
    pub user_data_item: Vec<UserDataItem>,
    #[serde(rename = "StandardSequence")]
    pub standard_sequence: u64,
    #[serde(rename = "CustomSequence")]
    pub custom_sequence: u64,
    #[serde(rename = "FriendNum")]
    pub friend_num: usize,
    /// 1 when this page is the last.
    #[serde(rename = "CompleteFlag")]
    pub complete_flag: u32,
    #[serde(rename = "NextStartIndex")]
    pub next_start_index: usize,
}

#[derive(Debug, Serialize)]
pub struct FriendGetListItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "SnsProfileItem", skip_serializing_if = "Option::is_none")]
    pub sns_profile_item: Option<Vec<TagValue>>,
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
}

#[derive(Debug, Serialize)]
pub struct FriendGetListReply {
    #[serde(rename = "InfoItem")]
    pub info_item: Vec<FriendGetListItem>,
    #[serde(rename = "Fail_Account", skip_serializing_if = "Vec::is_empty")]
    pub fail_account: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BlackListItem {
    #[serde(rename = "To_Account")]
    pub to_account: String,
    #[serde(rename = "AddBlackTimeStamp")]
    pub add_black_time_stamp: i64,
}

#[derive(Debug, Serialize)]
pub struct BlackListGetReply {
    #[serde(rename = "BlackListItem")]
    pub black_list_item: Vec<BlackListItem>,
    /// Where the next page starts; 0 when this page is the last.
    #[serde(rename = "StartIndex")]
    pub start_index: usize,
    /// Tencent's spelling.
    #[serde(rename = "CurruentSequence")]
    pub current_sequence: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn friend_add_defaults_and_refusals() {
        let r = FriendAdd::parse(
            &json!({"From_Account": "a", "AddFriendItem": [{"To_Account": "b", "AddSource": "AddSource_Type_Web"}]}),
        )
        .unwrap();
        assert_eq!((r.add_type, r.force, r.items[0].source.as_str()), (AddType::Both, false, "AddSource_Type_Web"));
        for bad in [
            json!({"From_Account": "a", "AddFriendItem": []}),
            json!({"From_Account": "a", "AddFriendItem": [{"To_Account": "b"}]}),
            json!({"From_Account": "a", "AddFriendItem": [{"To_Account": "b", "AddSource": "Web"}]}),
            json!({"From_Account": "a", "AddFriendItem": [{"To_Account": "b", "AddSource": "AddSource_Type_123"}]}),
            json!({"From_Account": "a", "AddType": "Add_Type_Three", "AddFriendItem": [{"To_Account": "b", "AddSource": "AddSource_Type_X"}]}),
            json!({"AddFriendItem": [{"To_Account": "b", "AddSource": "AddSource_Type_X"}]}),
        ] {
            assert_eq!(FriendAdd::parse(&bad).unwrap_err().code, 30001, "{bad}");
        }
    }

    #[test]
    fn tags_are_classified() {
        assert!(is_sns_tag("Tag_SNS_IM_Remark") && is_sns_tag("Tag_SNS_Custom_Test"));
        assert!(!is_sns_tag("Tag_SNS_Custom_TooLongKey") && !is_sns_tag("Tag_Profile_IM_Nick"));
    }
}

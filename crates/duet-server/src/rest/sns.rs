//! The relationship chain commands (`sns/friend_*`, `sns/black_list_*`): parse, call the domain, shape
//! Tencent's replies. Batch commands answer per account (`ResultItem`, `Fail_Account`) with a top-level
//! `ErrorCode` 0; only a bad body, an unknown `From_Account` or a storage failure fail the whole call.

use duet_core::Core;
use duet_core::model::ProfileValue as ModelValue;
use duet_core::relations::{AddFriend, Added, Direction, Friend, FriendEdit, Relation, RelationError};
use duet_proto::rest::request::{ProfileValue, default_profile_value};
use duet_proto::rest::sns::*;
use duet_proto::rest::{Command, Service};
use duet_proto::{ApiError, code};
use serde_json::Value;

use super::{Json, error};

/// Friends per `friend_get` page (Tencent: up to 500).
pub(crate) const FRIEND_PAGE: usize = 500;

pub(crate) async fn handle(core: &Core, command: Command, body: &Value) -> Result<Json, ApiError> {
    let service = Service::Sns;
    let fail = |e| error::core(command, service, e);
    use Command::*;
    match command {
        FriendAdd => {
            let r = duet_proto::rest::sns::FriendAdd::parse(body)?;
            let to: Vec<String> = r.items.iter().map(|i| i.to.clone()).collect();
            let items = r
                .items
                .into_iter()
                .map(|i| AddFriend { to: i.to, remark: i.remark, group: i.group, source: i.source, wording: i.wording })
                .collect();
            let direction = match r.add_type {
                AddType::Both => Direction::Both,
                AddType::Single => Direction::Single,
            };
            let results = core.relations().add_friends(&r.from, items, direction, r.force).await.map_err(fail)?;
            let results = results.into_iter().map(|r| match r {
                Ok(Added::Done) => Ok(()),
                Ok(Added::Pending) => Err((code::SNS_NEED_CONFIRM, "Err_SNS_FriendAdd_Need_Confirm")),
                Err(e) => Err(error::relation(e)),
            });
            ok(result_items(to, results))
        }
        FriendImport => {
            let r = duet_proto::rest::sns::FriendImport::parse(body)?;
            let now = core.clock().now_secs();
            let to: Vec<String> = r.items.iter().map(|i| i.to.clone()).collect();
            let friends = r
                .items
                .into_iter()
                .map(|i| Friend {
                    peer: i.to,
                    remark: i.remark,
                    groups: i.groups,
                    add_source: i.source,
                    add_wording: i.wording,
                    add_time: i.add_time.unwrap_or(now),
                    custom: i.custom.into_iter().map(|(t, v)| (t, to_model(v))).collect(),
                })
                .collect();
            let results = core.relations().import_friends(&r.from, friends).await.map_err(fail)?;
            ok(result_items(to, results.into_iter().map(|r| r.map_err(error::relation))))
        }
        FriendUpdate => {
            let r = duet_proto::rest::sns::FriendUpdate::parse(body)?;
            let to: Vec<String> = r.items.iter().map(|(t, _)| t.clone()).collect();
            let updates = r
                .items
                .into_iter()
                .map(|(peer, values)| {
                    let update: FriendEdit = Box::new(move |mut f: Friend| {
                        for v in values {
                            match v {
                                SnsValue::Remark(s) => f.remark = s,
                                SnsValue::Groups(g) => f.groups = g,
                                SnsValue::Custom(tag, value) => {
                                    f.custom.retain(|(t, _)| *t != tag);
                                    f.custom.push((tag, to_model(value)));
                                }
                            }
                        }
                        f
                    });
                    (peer, update)
                })
                .collect();
            let results = core.relations().update_friends(&r.from, updates).await.map_err(fail)?;
            ok(result_items(to, results.into_iter().map(|r| r.map_err(error::relation))))
        }
        FriendDelete => {
            let r = duet_proto::rest::sns::FriendDelete::parse(body)?;
            let results = core.relations().delete_friends(&r.from, r.to.clone(), direction(r.delete_type)).await.map_err(fail)?;
            ok(result_items(r.to, results.into_iter().map(|r| r.map_err(error::relation))))
        }
        FriendDeleteAll => {
            let r = duet_proto::rest::sns::FriendDeleteAll::parse(body)?;
            core.relations().delete_all_friends(&r.from, direction(r.delete_type)).await.map_err(fail)?;
            ok(duet_proto::rest::response::Empty {})
        }
        FriendCheck => {
            let r = RelationCheck::parse(body, "CheckResult_Type")?;
            let relations = core.relations().check_friends(&r.from, r.to.clone()).await.map_err(fail)?;
            let (items, fail_account) = check_items(r.to, relations, r.both, "CheckResult_Type", "NoRelation");
            ok(FriendCheckReply { info_item: items, fail_account })
        }
        BlackListCheck => {
            let r = RelationCheck::parse(body, "BlackCheckResult_Type")?;
            let relations = core.relations().check_blacklists(&r.from, r.to.clone()).await.map_err(fail)?;
            let (items, fail_account) = check_items(r.to, relations, r.both, "BlackCheckResult_Type", "NO");
            ok(BlackListCheckReply { items, fail_account })
        }
        FriendGet => {
            let r = duet_proto::rest::sns::FriendGet::parse(body)?;
            let friends = core.relations().friends(&r.from).await.map_err(fail)?;
            let total = friends.len();
            let user_data_item: Vec<UserDataItem> = friends
                .into_iter()
                .skip(r.start_index)
                .take(FRIEND_PAGE)
                .map(|f| UserDataItem { to_account: f.peer.clone(), value_item: friend_tags(&f) })
                .collect();
            let next = r.start_index.saturating_add(user_data_item.len());
            let complete = next >= total;
            ok(FriendGetReply {
                user_data_item,
                standard_sequence: 0,
                custom_sequence: 0,
                friend_num: total,
                complete_flag: u32::from(complete),
                next_start_index: if complete { 0 } else { next },
            })
        }
        FriendGetList => {
            let r = duet_proto::rest::sns::FriendGetList::parse(body)?;
            let friends = core.relations().friends(&r.from).await.map_err(fail)?;
            let profile_tags: Vec<String> = r.tags.iter().filter(|t| !is_sns_tag(t)).cloned().collect();
            let profiles = if profile_tags.is_empty() {
                vec![None; r.to.len()]
            } else {
                core.accounts().profiles(r.to.clone(), profile_tags).await.map_err(fail)?
            };
            let mut reply = FriendGetListReply { info_item: Vec::new(), fail_account: Vec::new() };
            for (to, profile) in r.to.into_iter().zip(profiles) {
                let Some(friend) = friends.iter().find(|f| f.peer == to) else {
                    reply.fail_account.push(to.clone());
                    reply.info_item.push(FriendGetListItem {
                        to_account: to,
                        sns_profile_item: None,
                        result_code: code::SNS_INVALID_PARAMS,
                        result_info: "Err_SNS_FriendGetList_Friend_Not_Exist".into(),
                    });
                    continue;
                };
                let sns = friend_tags(friend);
                let profile = profile.unwrap_or_default();
                let items = r
                    .tags
                    .iter()
                    .filter_map(|tag| {
                        if is_sns_tag(tag) {
                            return sns
                                .iter()
                                .find(|t| t.tag == *tag)
                                .map(|t| TagValue { tag: tag.clone(), value: t.value.clone() });
                        }
                        let value = profile
                            .iter()
                            .find(|(t, _)| t == tag)
                            .map(|(_, v)| model_json(v.clone()))
                            .unwrap_or_else(|| default_profile_value(tag).to_json());
                        Some(TagValue { tag: tag.clone(), value })
                    })
                    .collect();
                reply.info_item.push(FriendGetListItem {
                    to_account: to,
                    sns_profile_item: Some(items),
                    result_code: 0,
                    result_info: String::new(),
                });
            }
            ok(reply)
        }
        BlackListAdd => {
            let r = BlackListChange::parse(body)?;
            let results = core.relations().add_to_blacklist(&r.from, r.to.clone()).await.map_err(fail)?;
            ok(result_items(r.to, results.into_iter().map(|r| r.map_err(error::relation))))
        }
        BlackListDelete => {
            let r = BlackListChange::parse(body)?;
            let results = core.relations().remove_from_blacklist(&r.from, r.to.clone()).await.map_err(fail)?;
            ok(result_items(r.to, results.into_iter().map(|r| r.map_err(error::relation))))
        }
        BlackListGet => {
            let r = duet_proto::rest::sns::BlackListGet::parse(body)?;
            let list = core.relations().blacklist(&r.from).await.map_err(fail)?;
            let total = list.len();
            let black_list_item: Vec<BlackListItem> = list
                .into_iter()
                .skip(r.start_index)
                .take(r.max_limited as usize)
                .map(|b| BlackListItem { to_account: b.peer, add_black_time_stamp: b.time })
                .collect();
            let next = r.start_index.saturating_add(black_list_item.len());
            ok(BlackListGetReply {
                black_list_item,
                start_index: if next >= total { 0 } else { next },
                current_sequence: 0,
            })
        }
        _ => Err(error::internal(service)),
    }
}

fn ok<T: serde::Serialize>(body: T) -> Result<Json, ApiError> {
    Ok(Json::ok(body, Service::Sns))
}

fn direction(d: DeleteType) -> Direction {
    match d {
        DeleteType::Single => Direction::Single,
        DeleteType::Both => Direction::Both,
    }
}

fn result_items(to: Vec<String>, results: impl Iterator<Item = Result<(), (u32, &'static str)>>) -> ResultItemReply {
    let mut reply = ResultItemReply { result_item: Vec::new(), fail_account: Vec::new() };
    for (to_account, r) in to.into_iter().zip(results) {
        let (result_code, info) = r.err().unwrap_or((0, ""));
        if result_code != 0 {
            reply.fail_account.push(to_account.clone());
        }
        reply.result_item.push(ResultItem { to_account, result_code, result_info: info.into() });
    }
    reply
}

fn check_items(
    to: Vec<String>,
    relations: Vec<Option<Relation>>,
    both: bool,
    prefix: &str,
    none: &str,
) -> (Vec<CheckItem>, Vec<String>) {
    let mut fail = Vec::new();
    let items = to
        .into_iter()
        .zip(relations)
        .map(|(to_account, relation)| {
            let Some(relation) = relation else {
                fail.push(to_account.clone());
                let (result_code, info) = error::relation(RelationError::NoSuchAccount);
                return CheckItem {
                    to_account,
                    relation: format!("{prefix}_{none}"),
                    result_code,
                    result_info: info.into(),
                };
            };
            // A single check looks at the user's own list only.
            let relation = match (both, relation) {
                (false, Relation::BothWay | Relation::AWithB) => "AWithB",
                (false, _) => none,
                (true, Relation::BothWay) => "BothWay",
                (true, Relation::AWithB) => "AWithB",
                (true, Relation::BWithA) => "BWithA",
                (true, Relation::None) => none,
            };
            CheckItem {
                to_account,
                relation: format!("{prefix}_{relation}"),
                result_code: 0,
                result_info: String::new(),
            }
        })
        .collect();
    (items, fail)
}

/// A friend's data as `Tag_SNS_*` values; empty optional fields are left out, as Tencent does.
fn friend_tags(f: &Friend) -> Vec<TagValue> {
    let mut tags = Vec::new();
    let mut push = |tag: &str, value: Value| tags.push(TagValue { tag: tag.into(), value });
    if !f.add_source.is_empty() {
        push(TAG_SNS_ADD_SOURCE, Value::from(f.add_source.clone()));
    }
    if !f.remark.is_empty() {
        push(TAG_SNS_REMARK, Value::from(f.remark.clone()));
    }
    if !f.groups.is_empty() {
        push(TAG_SNS_GROUP, Value::from(f.groups.clone()));
    }
    if !f.add_wording.is_empty() {
        push(TAG_SNS_ADD_WORDING, Value::from(f.add_wording.clone()));
    }
    push(TAG_SNS_ADD_TIME, Value::from(f.add_time));
    for (tag, value) in &f.custom {
        push(tag, model_json(value.clone()));
    }
    tags
}

fn to_model(v: ProfileValue) -> ModelValue {
    match v {
        ProfileValue::Text(s) => ModelValue::Text(s),
        ProfileValue::Number(n) => ModelValue::Number(n),
    }
}

fn model_json(v: ModelValue) -> Value {
    match v {
        ModelValue::Text(s) => Value::String(s),
        ModelValue::Number(n) => Value::from(n),
    }
}

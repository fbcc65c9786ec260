//! The relationship chain commands (`sns/friend_*`, `sns/black_list_*`): parse, call the domain, shape
//! Tencent's replies. Batch commands answer per account (`ResultItem`, `Fail_Account`) with a top-level
//! `ErrorCode` 0; only a bad body, an unknown `From_Account` or a storage failure fail the whole call.

use duet_core::callbacks::Source;
use duet_core::relations::{AddFriend, Added, Direction, Friend, FriendEdit, Relation, RelationError};
use duet_proto::rest::request::default_profile_value;
use duet_proto::rest::sns::*;
use duet_proto::{ApiError, code};
use serde_json::Value;

use super::profile::{to_json, to_model};
use super::{Ctx, Json, error};

/// Friends per `friend_get` page (Tencent: up to 500).
pub(crate) const FRIEND_PAGE: usize = 500;

/// `friend_add`: adds friends, or leaves a pending request where the peer's `AllowType` asks for
/// confirmation (unless `ForceAddFlags`).
pub(super) async fn friend_add(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = FriendAdd::parse(body)?;
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
    let source = Source::rest(ctx.caller);
    let results =
        ctx.core.relations().add_friends(&r.from, items, direction, r.force, &source).await.map_err(ctx.fail())?;
    let results = results.into_iter().map(|r| match r {
        Ok(Added::Done) => Ok(()),
        Ok(Added::Pending) => Err((code::SNS_NEED_CONFIRM, "Err_SNS_FriendAdd_Need_Confirm")),
        Err(e) => Err(error::relation(e)),
    });
    ctx.ok(result_items(to, results))
}

/// `friend_import`: makes friendships with the given data, without asking the peers.
pub(super) async fn friend_import(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = FriendImport::parse(body)?;
    let now = ctx.core.clock().now_secs();
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
    let source = Source::rest(ctx.caller);
    let results = ctx.core.relations().import_friends(&r.from, friends, &source).await.map_err(ctx.fail())?;
    ctx.ok(result_items(to, results.into_iter().map(|r| r.map_err(error::relation))))
}

/// `friend_update`: changes the remark, groups or custom fields of existing friends.
pub(super) async fn friend_update(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = FriendUpdate::parse(body)?;
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
    let results = ctx.core.relations().update_friends(&r.from, updates).await.map_err(ctx.fail())?;
    ctx.ok(result_items(to, results.into_iter().map(|r| r.map_err(error::relation))))
}

/// `friend_delete`: ends friendships, one way or both.
pub(super) async fn friend_delete(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = FriendDelete::parse(body)?;
    let results = ctx
        .core
        .relations()
        .delete_friends(&r.from, r.to.clone(), direction(r.delete_type), &Source::rest(ctx.caller))
        .await
        .map_err(ctx.fail())?;
    ctx.ok(result_items(r.to, results.into_iter().map(|r| r.map_err(error::relation))))
}

/// `friend_delete_all`: ends every friendship of an account, one way or both.
pub(super) async fn friend_delete_all(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = FriendDeleteAll::parse(body)?;
    let source = Source::rest(ctx.caller);
    ctx.core.relations().delete_all_friends(&r.from, direction(r.delete_type), &source).await.map_err(ctx.fail())?;
    ctx.ok(duet_proto::rest::response::Empty {})
}

/// `friend_check`: how an account and each peer relate as friends, on its list only or both.
pub(super) async fn friend_check(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = RelationCheck::parse(body, "CheckResult_Type")?;
    let relations = ctx.core.relations().check_friends(&r.from, r.to.clone()).await.map_err(ctx.fail())?;
    let (items, fail_account) = check_items(r.to, relations, r.both, "CheckResult_Type", "NoRelation");
    ctx.ok(FriendCheckReply { info_item: items, fail_account })
}

/// `friend_get`: a page of an account's friends with their `Tag_SNS_*` data.
pub(super) async fn friend_get(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = FriendGet::parse(body)?;
    let friends = ctx.core.relations().friends(&r.from).await.map_err(ctx.fail())?;
    let total = friends.len();
    let user_data_item: Vec<UserDataItem> = friends
        .into_iter()
        .skip(r.start_index)
        .take(FRIEND_PAGE)
        .map(|f| UserDataItem { to_account: f.peer.clone(), value_item: friend_tags(&f) })
        .collect();
    let next = r.start_index.saturating_add(user_data_item.len());
    let complete = next >= total;
    ctx.ok(FriendGetReply {
        user_data_item,
        standard_sequence: 0,
        custom_sequence: 0,
        friend_num: total,
        complete_flag: u32::from(complete),
        next_start_index: if complete { 0 } else { next },
    })
}

/// `friend_get_list`: the asked friend (`Tag_SNS_*`) and profile fields of the given friends.
pub(super) async fn friend_get_list(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = FriendGetList::parse(body)?;
    let friends = ctx.core.relations().friends(&r.from).await.map_err(ctx.fail())?;
    let profile_tags: Vec<String> = r.tags.iter().filter(|t| !is_sns_tag(t)).cloned().collect();
    let profiles = if profile_tags.is_empty() {
        vec![None; r.to.len()]
    } else {
        ctx.core.accounts().profiles(r.to.clone(), profile_tags).await.map_err(ctx.fail())?
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
                    .map(|(_, v)| to_json(v.clone()))
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
    ctx.ok(reply)
}

/// `black_list_add`: puts peers on an account's blacklist.
pub(super) async fn black_list_add(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = BlackListChange::parse(body)?;
    let source = Source::rest(ctx.caller);
    let results = ctx.core.relations().add_to_blacklist(&r.from, r.to.clone(), &source).await.map_err(ctx.fail())?;
    ctx.ok(result_items(r.to, results.into_iter().map(|r| r.map_err(error::relation))))
}

/// `black_list_delete`: takes peers off an account's blacklist.
pub(super) async fn black_list_delete(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = BlackListChange::parse(body)?;
    let source = Source::rest(ctx.caller);
    let results =
        ctx.core.relations().remove_from_blacklist(&r.from, r.to.clone(), &source).await.map_err(ctx.fail())?;
    ctx.ok(result_items(r.to, results.into_iter().map(|r| r.map_err(error::relation))))
}

/// `black_list_get`: a page of an account's blacklist.
pub(super) async fn black_list_get(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = BlackListGet::parse(body)?;
    let list = ctx.core.relations().blacklist(&r.from).await.map_err(ctx.fail())?;
    let total = list.len();
    let black_list_item: Vec<BlackListItem> = list
        .into_iter()
        .skip(r.start_index)
        .take(r.max_limited as usize)
        .map(|b| BlackListItem { to_account: b.peer, add_black_time_stamp: b.time })
        .collect();
    let next = r.start_index.saturating_add(black_list_item.len());
    ctx.ok(BlackListGetReply {
        black_list_item,
        start_index: if next >= total { 0 } else { next },
        current_sequence: 0,
    })
}

/// `black_list_check`: how an account and each peer relate by blacklists, on its list only or both.
pub(super) async fn black_list_check(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = RelationCheck::parse(body, "BlackCheckResult_Type")?;
    let relations = ctx.core.relations().check_blacklists(&r.from, r.to.clone()).await.map_err(ctx.fail())?;
    let (items, fail_account) = check_items(r.to, relations, r.both, "BlackCheckResult_Type", "NO");
    ctx.ok(BlackListCheckReply { items, fail_account })
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
        push(tag, to_json(value.clone()));
    }
    tags
}

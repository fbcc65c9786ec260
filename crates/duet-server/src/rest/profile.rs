//! The profile commands (`profile/portrait_*`), and the conversion of profile values between the wire
//! and the domain that the relationship chain ([`super::sns`]) shares.

use duet_core::model;
use duet_proto::rest::request::{self as req, ProfileValue, default_profile_value};
use duet_proto::rest::response::*;
use duet_proto::{ApiError, code};
use serde_json::Value;

use super::{Ctx, Json};

/// `portrait_set`: sets profile fields of one account.
pub(super) async fn portrait_set(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::PortraitSet::parse(body)?;
    let items = r.items.into_iter().map(|(tag, v)| (tag, to_model(v))).collect();
    let source = duet_core::callbacks::Source::rest(ctx.caller);
    ctx.core.accounts().set_profile(&r.from, items, &source).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `portrait_get`: the asked profile fields of each account, a field never set as its default.
pub(super) async fn portrait_get(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::PortraitGet::parse(body)?;
    let profiles = ctx.core.accounts().profiles(r.to.clone(), r.tags.clone()).await.map_err(ctx.fail())?;
    let mut reply = PortraitGetReply { user_profile_item: Vec::new(), fail_account: Vec::new() };
    for (to_account, profile) in r.to.into_iter().zip(profiles) {
        let Some(stored) = profile else {
            reply.fail_account.push(to_account.clone());
            reply.user_profile_item.push(UserProfileItem {
                to_account,
                profile_item: Vec::new(),
                result_code: code::PROFILE_ACCOUNT_MISSING,
                result_info: "Err_Profile_Account_Not_Exist".into(),
            });
            continue;
        };
        let profile_item = r
            .tags
            .iter()
            .map(|tag| {
                let value = stored
                    .iter()
                    .find(|(t, _)| t == tag)
                    .map(|(_, v)| to_json(v.clone()))
                    .unwrap_or_else(|| default_profile_value(tag).to_json());
                ProfileItem { tag: tag.clone(), value }
            })
            .collect();
        reply.user_profile_item.push(UserProfileItem {
            to_account,
            profile_item,
            result_code: 0,
            result_info: String::new(),
        });
    }
    ctx.ok(reply)
}

/// A profile value from the wire, as the domain keeps it.
pub(super) fn to_model(v: ProfileValue) -> model::ProfileValue {
    match v {
        ProfileValue::Text(s) => model::ProfileValue::Text(s),
        ProfileValue::Number(n) => model::ProfileValue::Number(n),
    }
}

/// A profile value the domain keeps, as the wire shows it.
pub(super) fn to_json(v: model::ProfileValue) -> Value {
    match v {
        model::ProfileValue::Text(s) => Value::String(s),
        model::ProfileValue::Number(n) => Value::from(n),
    }
}

//! The conversation list commands (`recentcontact/*`).

use duet_proto::ApiError;
use duet_proto::rest::request as req;
use duet_proto::rest::response::*;
use serde_json::Value;

use duet_core::model::SettingsChange;

use super::{Ctx, Json};

/// Most conversations one `recentcontact/get_list` page returns.
const MAX_CONTACT_PAGE: usize = 100;

/// `get_list`: a page of an account's conversations.
pub(super) async fn get_list(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::RecentContactGetList::parse(body)?;
    let items = ctx.core.messages().conversations(&r.from).await.map_err(ctx.fail())?;
    let total = items.len();
    let session_item: Vec<SessionItem> = items
        .into_iter()
        .skip(r.start_index)
        .take(MAX_CONTACT_PAGE)
        .map(|c| SessionItem {
            kind: 1,
            to_account: c.peer,
            msg_time: c.time,
            top_flag: u32::from(c.settings.pinned_at > 0),
        })
        .collect();
    let next = r.start_index.saturating_add(session_item.len());
    ctx.ok(RecentContactListReply {
        complete_flag: u32::from(next >= total),
        time_stamp: session_item.last().map_or(0, |s| s.msg_time),
        start_index: next,
        top_time_stamp: 0,
        top_start_index: 0,
        session_item,
    })
}

/// `delete`: removes a conversation from an account's list, and with `ClearRamble` its messages from
/// the account's history.
pub(super) async fn delete(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::RecentContactDelete::parse(body)?;
    ctx.core.messages().delete_conversation(&r.from, &r.to, r.clear_ramble).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `mark_contact`: sets and clears marks and the custom mark (the conversation's custom data) of an
/// account's conversations; each item has its own result. The account's devices get a settings entry.
pub(super) async fn mark_contact(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::MarkContact::parse(body)?;
    ctx.core.accounts().require(&r.from).await.map_err(ctx.fail())?;
    let mut result_item = Vec::with_capacity(r.items.len());
    for item in r.items {
        let outcome = match item.change {
            Err(e) => Err(e),
            Ok(c) => {
                let change = SettingsChange {
                    set_marks: c.set,
                    clear_marks: c.clear,
                    custom_data: c.custom_mark,
                    ..SettingsChange::default()
                };
                ctx.core.messages().update_conversation(&r.from, &c.peer, change).await.map(drop).map_err(ctx.fail())
            }
        };
        let (result_code, result_info) = match outcome {
            Ok(()) => (0, String::new()),
            Err(e) => (e.code, e.info),
        };
        result_item.push(MarkResult { opt_type: item.opt_type, contact_item: item.contact, result_code, result_info });
    }
    ctx.ok(MarkContactReply { result_item })
}

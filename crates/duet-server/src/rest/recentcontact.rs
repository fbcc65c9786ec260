//! The conversation list commands (`recentcontact/*`).

use duet_proto::ApiError;
use duet_proto::rest::request as req;
use duet_proto::rest::response::*;
use serde_json::Value;

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
        .map(|c| SessionItem { kind: 1, to_account: c.peer, msg_time: c.time, top_flag: 0 })
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

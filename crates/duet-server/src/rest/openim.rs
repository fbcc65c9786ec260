//! The one-to-one message commands (`openim/*`): sends and imports through the domain's send pipeline
//! (`duet_core::messages::send`), history, recall, read marks, unread counts and online status.

use duet_core::callbacks::Source;
use duet_core::hub::Presence;
use duet_core::messages::{CallbackSource, Content, Draft, Encoded, Origin, SendError};
use duet_core::model::{self, HistoryQuery, MsgKey, Platform, SenderCopy};
use duet_core::store::Edit;
use duet_proto::rest::request::{self as req, SyncOtherMachine};
use duet_proto::rest::response::*;
use duet_proto::{ApiError, code};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Ctx, Json, error};
use crate::content::WireContent;

/// Most messages one `admin_getroammsg` page returns, whatever `MaxCnt` asks.
const MAX_ROAM_PAGE: usize = 100;

/// `sendmsg`: a message to one account.
pub(super) async fn sendmsg(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::SendMsg::parse(body)?;
    let (before_send, after_send) = (!r.msg.forbid_before_send, !r.msg.forbid_after_send);
    let mut draft = draft(ctx, vec![r.to.clone()], r.msg);
    // `sendmsg` passes the app's callbacks, unless the message forbids them; `batchsendmsg` never.
    draft.callback = Some(CallbackSource { source: Source::rest(ctx.caller), before_send, after_send });
    let sent = send(ctx, draft).await?;
    if !sent.failed.is_empty() {
        return Err(error::core(ctx.command, ctx.service, duet_core::Error::NoSuchAccount(r.to)));
    }
    ctx.ok(SendMsgReply { msg_time: sent.key.time, msg_key: sent.key.to_string() })
}

/// `batchsendmsg`: one message to many accounts; the ones that do not exist are listed, with
/// `ActionStatus` `SomeError`.
pub(super) async fn batchsendmsg(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::BatchSendMsg::parse(body)?;
    let count = r.to.len();
    let sent = send(ctx, draft(ctx, r.to, r.msg)).await?;
    let msg_key = sent.key.to_string();
    if sent.failed.len() == count {
        return Err(ApiError::new(code::MSG_TO_ACCOUNT_NOT_FOUND, "invalid To_Account"));
    }
    let error_list: Vec<_> = sent
        .failed
        .into_iter()
        .map(|to_account| AccountError { to_account, error_code: code::ACCOUNT_NOT_FOUND })
        .collect();
    let status = if error_list.is_empty() { "OK" } else { "SomeError" };
    Ok(Json::with_status(status, BatchSendMsgReply { msg_key, error_list }, ctx.service))
}

/// `importmsg`: a historical message, with its original time.
pub(super) async fn importmsg(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let core = ctx.core;
    let fail = ctx.fail();
    let r = req::ImportMsg::parse(body, core.clock().now_secs())?;
    let ccd = r.cloud_custom_data.unwrap_or_default();
    let mut content = WireContent::checked(ctx.media_base, r.body, r.body_json, ccd, None);
    core.messages()
        .grant_import_media(ctx.caller, &r.from, &r.to, &mut content)
        .await
        .map_err(|e| send_error(e, fail))?;
    let Encoded { body, cloud_custom_data, .. } = content.encode();
    let import = model::Import {
        from: r.from,
        to: r.to,
        seq: r.seq,
        random: r.random,
        time: r.time,
        body,
        cloud_custom_data,
        counts_unread: r.counts_unread,
    };
    core.messages().import(import).await.map_err(fail)?;
    ctx.ok(Empty {})
}

/// `admin_getroammsg`: a page of the history between two accounts, oldest first.
pub(super) async fn admin_getroammsg(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::GetRoamMsg::parse(body)?;
    let q = HistoryQuery {
        operator: r.operator,
        peer: r.peer,
        min_time: r.min_time,
        max_time: r.max_time,
        before: r.last_msg_key.map(|(seq, random, time)| MsgKey { seq, random, time }),
        limit: (r.max_cnt as usize).min(MAX_ROAM_PAGE),
    };
    let page = ctx.core.messages().history(q).await.map_err(ctx.fail())?;
    // The store pages newest first; Tencent lists a page oldest first, and its cursor is the oldest.
    let mut msg_list = Vec::with_capacity(page.messages.len());
    for m in page.messages.into_iter().rev() {
        let msg_body = RawValue::from_string(m.body).map_err(|e| {
            tracing::error!(error = %e, "a stored message body is not JSON");
            error::internal(ctx.service)
        })?;
        msg_list.push(RoamMsg {
            from_account: m.from,
            to_account: m.to,
            msg_seq: m.key.seq,
            msg_random: m.key.random,
            msg_time_stamp: m.key.time,
            msg_flag_bits: if m.recalled { MSG_FLAG_RECALLED } else { 0 },
            is_peer_read: u32::from(m.peer_read),
            msg_key: m.key.to_string(),
            msg_body,
            cloud_custom_data: m.cloud_custom_data,
        });
    }
    let (last_msg_time, last_msg_key) =
        msg_list.first().map(|m| (m.msg_time_stamp, m.msg_key.clone())).unwrap_or_default();
    ctx.ok(GetRoamMsgReply {
        complete: u32::from(!page.more),
        msg_cnt: msg_list.len(),
        last_msg_time,
        last_msg_key,
        msg_list,
    })
}

/// `admin_msgwithdraw`: recalls a message.
pub(super) async fn admin_msgwithdraw(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::MsgWithdraw::parse(body)?;
    let (seq, random, time) = r.key;
    let key = MsgKey { seq, random, time };
    let source = Source::rest(ctx.caller);
    ctx.core.messages().withdraw(&r.from, &r.to, key, ctx.caller, &source).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `admin_set_msg_read`: marks what one account received from another as read.
pub(super) async fn admin_set_msg_read(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::SetMsgRead::parse(body)?;
    let source = Source::rest(ctx.caller);
    ctx.core.messages().set_read(&r.report, &r.peer, r.read_time, &source).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `c2c_msg_read_receipt`: one account's read receipts of messages another sent it; the sender's devices
/// are told. Keys of messages that asked for no receipt are passed over, as the client protocol does.
pub(super) async fn c2c_msg_read_receipt(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::MsgReadReceipt::parse(body)?;
    let keys = r.keys.into_iter().map(|(seq, random, time)| MsgKey { seq, random, time }).collect();
    ctx.core.messages().send_receipts(&r.operator, &r.peer, keys).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `modify_c2c_msg`: edits a message (its `MsgBody`, its `CloudCustomData`, or both); both sides' devices
/// get the message as it is now.
pub(super) async fn modify_c2c_msg(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::ModifyC2cMsg::parse(body)?;
    let (seq, random, time) = r.key;
    let edit = Edit {
        from: r.from,
        to: r.to,
        key: MsgKey { seq, random, time },
        body: r.body.map(|(_, json)| json),
        cloud_custom_data: r.cloud_custom_data,
        base_version: None,
    };
    ctx.core.messages().modify(edit).await.map_err(ctx.fail())?;
    ctx.ok(Empty {})
}

/// `delete_c2c_msg_ramble`: deletes messages from one side of a conversation; the other side keeps them.
/// Keys that name no message the operator still has are listed in `InvalidMsgKeyList`.
pub(super) async fn delete_c2c_msg_ramble(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::DeleteC2cMsgRamble::parse(body)?;
    let keys = r.keys.iter().map(|(_, (seq, random, time))| MsgKey { seq: *seq, random: *random, time: *time });
    let deleted = ctx.core.messages().delete(&r.operator, &r.peer, keys.collect()).await.map_err(ctx.fail())?;
    let invalid = r.keys.into_iter().zip(deleted).filter(|(_, done)| !done).map(|((k, _), _)| k).collect();
    ctx.ok(DeleteMsgRambleReply { invalid_msg_key_list: invalid })
}

/// `get_c2c_unread_msg_num`: an account's unread count, in all or per peer.
pub(super) async fn get_c2c_unread_msg_num(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::UnreadNum::parse(body)?;
    match r.peers {
        None => {
            let n = ctx.core.messages().unread_total(&r.to).await.map_err(ctx.fail())?;
            ctx.ok(AllUnreadReply { all_c2c_unread_msg_num: n })
        }
        Some(peers) => {
            let counts = ctx.core.messages().unread(&r.to, peers.clone()).await.map_err(ctx.fail())?;
            let mut reply = PeerUnreadReply { list: Vec::new(), error_list: Vec::new() };
            for (peer_account, n) in peers.into_iter().zip(counts) {
                match n {
                    Some(n) => reply.list.push(PeerUnread { peer_account, c2c_unread_msg_num: n }),
                    None => reply.error_list.push(PeerError { peer_account, error_code: code::ACCOUNT_NOT_FOUND }),
                }
            }
            ctx.ok(reply)
        }
    }
}

/// `query_online_status` (and its old name `querystate`): each account's presence, per platform on ask.
pub(super) async fn query_online_status(ctx: Ctx<'_>, body: &Value) -> Result<Json, ApiError> {
    let r = req::QueryOnlineStatus::parse(body)?;
    let exist = ctx.core.accounts().exist(r.to.clone()).await.map_err(ctx.fail())?;
    let mut reply = QueryOnlineStatusReply { query_result: Vec::new(), error_list: Vec::new() };
    for (to_account, exists) in r.to.into_iter().zip(exist) {
        if !exists {
            reply.error_list.push(AccountError { to_account, error_code: code::ACCOUNT_NOT_FOUND });
            continue;
        }
        let (status, platforms) = match ctx.core.sessions().presence(&to_account).await {
            Presence::Online(platforms) => ("Online", platforms.into_iter().map(|p| (p, "Online")).collect()),
            Presence::PushOnline(platform) => ("PushOnline", vec![(platform, "PushOnline")]),
            Presence::Offline => ("Offline", Vec::new()),
        };
        // Tencent's examples show no Detail for an Offline account.
        let detail = (r.need_detail && !platforms.is_empty()).then(|| {
            platforms
                .into_iter()
                .map(|(p, status): (Platform, &'static str)| PlatformStatus { platform: p.name().into(), status })
                .collect()
        });
        reply.query_result.push(OnlineStatus { to_account, status, state: status, detail });
    }
    ctx.ok(reply)
}

/// A send of the admin's, through the domain's pipeline (`duet_core::messages::send`).
async fn send(ctx: Ctx<'_>, draft: Draft<WireContent<'_>>) -> Result<model::Sent, ApiError> {
    let fail = ctx.fail();
    let prepared =
        ctx.core.messages().prepare_send(Origin::Admin(ctx.caller), draft).await.map_err(|e| send_error(e, fail))?;
    prepared.commit(ctx.core.messages()).await.map_err(fail)
}

fn send_error(e: SendError<ApiError>, fail: impl Fn(duet_core::Error) -> ApiError) -> ApiError {
    match e {
        SendError::Content(e) => e,
        SendError::Domain(e) => fail(e),
    }
}

/// The send a REST message asks for: `From_Account`, or the admin itself.
fn draft<'a>(ctx: Ctx<'a>, to: Vec<String>, m: req::OutgoingMessage) -> Draft<WireContent<'a>> {
    let ccd = m.cloud_custom_data.unwrap_or_default();
    Draft {
        from: m.from.unwrap_or_else(|| ctx.caller.to_owned()),
        to,
        seq: m.seq,
        random: m.random,
        content: WireContent::checked(ctx.media_base, m.body, m.body_json, ccd, m.offline_push_info),
        lifetime_secs: m.lifetime,
        sender_copy: match m.sync_other_machine {
            None => SenderCopy::History,
            Some(SyncOtherMachine::Yes) => SenderCopy::Sync,
            Some(SyncOtherMachine::No) => SenderCopy::Nothing,
        },
        no_unread: m.no_unread,
        no_last_msg: m.no_last_msg,
        need_read_receipt: m.need_read_receipt,
        callback: None,
    }
}

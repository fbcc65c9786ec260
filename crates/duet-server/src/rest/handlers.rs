//! One function per REST command: parse the typed request, call the domain, shape Tencent's reply.

use duet_core::Core;
use duet_core::hub::Presence;
use duet_core::model::{self, HistoryQuery, MsgKey, NewAccount, Platform, SenderCopy};
use duet_core::messages::{Content, Draft, Encoded, Origin, SendError};
use duet_proto::rest::request::{self as req, ProfileValue, SyncOtherMachine, default_profile_value};
use duet_proto::rest::response::*;
use duet_proto::rest::{Command, Service};
use duet_proto::{ApiError, code};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Json, error};
use crate::content::WireContent;

/// Most messages one `admin_getroammsg` page returns, whatever `MaxCnt` asks.
const MAX_ROAM_PAGE: usize = 100;
/// Most conversations one `recentcontact/get_list` page returns.
const MAX_CONTACT_PAGE: usize = 100;

pub(crate) async fn handle(
    core: &Core,
    media_base: &str,
    caller: &str,
    service: Service,
    command: Command,
    body: &Value,
) -> Result<Json, ApiError> {
    if service == Service::Sns {
        return super::sns::handle(core, command, body).await;
    }
    let fail = |e| error::core(command, service, e);
    let ok = |body| Ok(Json::ok(body, service));
    use Command::*;
    match command {
        AccountImport => {
            let r = req::AccountImport::parse(body)?;
            core.accounts().import(vec![new_account(r)]).await.map_err(fail)?;
            ok(Empty {})
        }
        MultiAccountImport => {
            let r = req::MultiAccountImport::parse(body)?;
            core.accounts().import(r.accounts.into_iter().map(new_account).collect()).await.map_err(fail)?;
            Ok(Json::ok(MultiAccountImportReply { fail_accounts: r.invalid }, service))
        }
        AccountDelete => {
            let r = req::AccountList::parse(body, "DeleteItem")?;
            let existed = core.accounts().delete(r.user_ids.clone()).await.map_err(fail)?;
            let result_item = r
                .user_ids
                .into_iter()
                .zip(existed)
                .map(|(user_id, existed)| DeleteResultItem {
                    result_code: if existed { 0 } else { code::ACCOUNT_NOT_FOUND },
                    result_info: if existed { String::new() } else { "Err_TLS_PT_Open_Login_Account_Not_Exist".into() },
                    user_id,
                })
                .collect();
            Ok(Json::ok(AccountDeleteReply { result_item }, service))
        }
        AccountCheck => {
            let r = req::AccountList::parse(body, "CheckItem")?;
            let exist = core.accounts().exist(r.user_ids.clone()).await.map_err(fail)?;
            let result_item = r
                .user_ids
                .into_iter()
                .zip(exist)
                .map(|(user_id, exists)| CheckResultItem {
                    user_id,
                    result_code: 0,
                    result_info: String::new(),
                    account_status: if exists { "Imported" } else { "NotImported" },
                })
                .collect();
            Ok(Json::ok(AccountCheckReply { result_item }, service))
        }
        Kick => {
            let r = req::Kick::parse(body)?;
            core.accounts().kick(&r.user_id).await.map_err(fail)?;
            ok(Empty {})
        }
        PortraitSet => {
            let r = req::PortraitSet::parse(body)?;
            let items = r.items.into_iter().map(|(tag, v)| (tag, to_model(v))).collect();
            core.accounts().set_profile(&r.from, items).await.map_err(fail)?;
            ok(Empty {})
        }
        PortraitGet => portrait_get(core, req::PortraitGet::parse(body)?, service).await.map_err(fail),
        SendMsg => {
            let r = req::SendMsg::parse(body)?;
            let sent = send(core, caller, draft(media_base, caller, vec![r.to.clone()], r.msg), fail).await?;
            if !sent.failed.is_empty() {
                return Err(error::core(command, service, duet_core::Error::NoSuchAccount(r.to)));
            }
            Ok(Json::ok(SendMsgReply { msg_time: sent.key.time, msg_key: sent.key.to_string() }, service))
        }
        BatchSendMsg => {
            let r = req::BatchSendMsg::parse(body)?;
            let count = r.to.len();
            let sent = send(core, caller, draft(media_base, caller, r.to, r.msg), fail).await?;
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
            Ok(Json::with_status(status, BatchSendMsgReply { msg_key, error_list }, service))
        }
        ImportMsg => {
            let r = req::ImportMsg::parse(body, core.clock().now_secs())?;
            let ccd = r.cloud_custom_data.unwrap_or_default();
            let mut content = WireContent::checked(media_base, r.body, r.body_json, ccd, None);
            core.messages().grant_import_media(caller, &r.from, &r.to, &mut content).await.map_err(|e| send_error(e, fail))?;
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
            ok(Empty {})
        }
        AdminGetRoamMsg => {
            let r = req::GetRoamMsg::parse(body)?;
            let q = HistoryQuery {
                operator: r.operator,
                peer: r.peer,
                min_time: r.min_time,
                max_time: r.max_time,
                before: r.last_msg_key.map(|(seq, random, time)| MsgKey { seq, random, time }),
                limit: (r.max_cnt as usize).min(MAX_ROAM_PAGE),
            };
            let page = core.messages().history(q).await.map_err(fail)?;
            roam_reply(page, service)
        }
        AdminMsgWithdraw => {
            let r = req::MsgWithdraw::parse(body)?;
            let (seq, random, time) = r.key;
            core.messages().withdraw(&r.from, &r.to, MsgKey { seq, random, time }).await.map_err(fail)?;
            ok(Empty {})
        }
        AdminSetMsgRead => {
            let r = req::SetMsgRead::parse(body)?;
            core.messages().set_read(&r.report, &r.peer, r.read_time).await.map_err(fail)?;
            ok(Empty {})
        }
        GetC2cUnreadMsgNum => {
            let r = req::UnreadNum::parse(body)?;
            match r.peers {
                None => {
                    let n = core.messages().unread_total(&r.to).await.map_err(fail)?;
                    Ok(Json::ok(AllUnreadReply { all_c2c_unread_msg_num: n }, service))
                }
                Some(peers) => {
                    let counts = core.messages().unread(&r.to, peers.clone()).await.map_err(fail)?;
                    let mut reply = PeerUnreadReply { list: Vec::new(), error_list: Vec::new() };
                    for (peer_account, n) in peers.into_iter().zip(counts) {
                        match n {
                            Some(n) => reply.list.push(PeerUnread { peer_account, c2c_unread_msg_num: n }),
                            None => {
                                reply.error_list.push(PeerError { peer_account, error_code: code::ACCOUNT_NOT_FOUND })
                            }
                        }
                    }
                    Ok(Json::ok(reply, service))
                }
            }
        }
        QueryOnlineStatus => {
            let r = req::QueryOnlineStatus::parse(body)?;
            let exist = core.accounts().exist(r.to.clone()).await.map_err(fail)?;
            let mut reply = QueryOnlineStatusReply { query_result: Vec::new(), error_list: Vec::new() };
            for (to_account, exists) in r.to.into_iter().zip(exist) {
                if !exists {
                    reply.error_list.push(AccountError { to_account, error_code: code::ACCOUNT_NOT_FOUND });
                    continue;
                }
                let (status, platforms) = match core.sessions().presence(&to_account) {
                    Presence::Online(platforms) => ("Online", platforms.into_iter().map(|p| (p, "Online")).collect()),
                    Presence::PushOnline(platform) => ("PushOnline", vec![(platform, "PushOnline")]),
                    Presence::Offline => ("Offline", Vec::new()),
                };
                // Tencent's examples show no Detail for an Offline account.
                let detail = (r.need_detail && !platforms.is_empty()).then(|| {
                    platforms
                        .into_iter()
                        .map(|(p, status): (Platform, &'static str)| PlatformStatus {
                            platform: p.name().into(),
                            status,
                        })
                        .collect()
                });
                reply.query_result.push(OnlineStatus { to_account, status, state: status, detail });
            }
            Ok(Json::ok(reply, service))
        }
        RecentContactGetList => {
            let r = req::RecentContactGetList::parse(body)?;
            let items = core.messages().conversations(&r.from).await.map_err(fail)?;
            let total = items.len();
            let session_item: Vec<SessionItem> = items
                .into_iter()
                .skip(r.start_index)
                .take(MAX_CONTACT_PAGE)
                .map(|c| SessionItem { kind: 1, to_account: c.peer, msg_time: c.time, top_flag: 0 })
                .collect();
            let next = r.start_index.saturating_add(session_item.len());
            let reply = RecentContactListReply {
                complete_flag: u32::from(next >= total),
                time_stamp: session_item.last().map_or(0, |s| s.msg_time),
                start_index: next,
                top_time_stamp: 0,
                top_start_index: 0,
                session_item,
            };
            Ok(Json::ok(reply, service))
        }
        RecentContactDelete => {
            let r = req::RecentContactDelete::parse(body)?;
            core.messages().delete_conversation(&r.from, &r.to, r.clear_ramble).await.map_err(fail)?;
            ok(Empty {})
        }
        // The relationship chain is served by `sns::handle`, above.
        _ => Err(error::internal(service)),
    }
}

fn new_account(r: req::AccountImport) -> NewAccount {
    NewAccount { id: r.user_id, nick: r.nick, face_url: r.face_url }
}

fn to_model(v: ProfileValue) -> model::ProfileValue {
    match v {
        ProfileValue::Text(s) => model::ProfileValue::Text(s),
        ProfileValue::Number(n) => model::ProfileValue::Number(n),
    }
}

fn to_json(v: model::ProfileValue) -> Value {
    match v {
        model::ProfileValue::Text(s) => Value::String(s),
        model::ProfileValue::Number(n) => Value::from(n),
    }
}

/// A send of the admin's, through the domain's pipeline (`duet_core::messages::send`).
async fn send(
    core: &Core,
    caller: &str,
    draft: Draft<WireContent<'_>>,
    fail: impl Fn(duet_core::Error) -> ApiError,
) -> Result<model::Sent, ApiError> {
    let prepared = core.messages().prepare_send(Origin::Admin(caller), draft).await.map_err(|e| send_error(e, &fail))?;
    prepared.commit(core.messages()).await.map_err(fail)
}

fn send_error(e: SendError<ApiError>, fail: impl Fn(duet_core::Error) -> ApiError) -> ApiError {
    match e {
        SendError::Content(e) => e,
        SendError::Domain(e) => fail(e),
    }
}

/// The send a REST message asks for: `From_Account`, or the admin itself.
fn draft<'a>(media_base: &'a str, caller: &str, to: Vec<String>, m: req::OutgoingMessage) -> Draft<WireContent<'a>> {
    let ccd = m.cloud_custom_data.unwrap_or_default();
    Draft {
        from: m.from.unwrap_or_else(|| caller.to_owned()),
        to,
        seq: m.seq,
        random: m.random,
        content: WireContent::checked(media_base, m.body, m.body_json, ccd, m.offline_push_info),
        lifetime_secs: m.lifetime,
        sender_copy: match m.sync_other_machine {
            None => SenderCopy::History,
            Some(SyncOtherMachine::Yes) => SenderCopy::Sync,
            Some(SyncOtherMachine::No) => SenderCopy::Nothing,
        },
        no_unread: m.no_unread,
        no_last_msg: m.no_last_msg,
        need_read_receipt: m.need_read_receipt,
    }
}

async fn portrait_get(core: &Core, r: req::PortraitGet, service: Service) -> Result<Json, duet_core::Error> {
    let profiles = core.accounts().profiles(r.to.clone(), r.tags.clone()).await?;
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
    Ok(Json::ok(reply, service))
}

fn roam_reply(page: model::HistoryPage, service: Service) -> Result<Json, ApiError> {
    // The store pages newest first; Tencent lists a page oldest first, and its cursor is the oldest.
    let mut msg_list = Vec::with_capacity(page.messages.len());
    for m in page.messages.into_iter().rev() {
        let msg_body = RawValue::from_string(m.body).map_err(|e| {
            tracing::error!(error = %e, "a stored message body is not JSON");
            error::internal(service)
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
    Ok(Json::ok(
        GetRoamMsgReply {
            complete: u32::from(!page.more),
            msg_cnt: msg_list.len(),
            last_msg_time,
            last_msg_key,
            msg_list,
        },
        service,
    ))
}

//! The REST request bodies (`/v4/<service>/<command>`), decoded as the server decodes them: the first
//! byte picks the command (resolved from its path, as `rest::dispatch` does), the rest is the body,
//! read by `rest::parse_body` and then by the command's typed parser (`rest::request`, `rest::sns`),
//! the lenient `""`-is-absent readers included.
//!
//! Besides not panicking, what a parser accepts must hold what the server relies on: every UserID it
//! returns passes `validate_user_id`, a message's limits check passes again on what was parsed and gives
//! a `MsgBody` that reads back as the same elements, a `MsgKey` formats back to itself, times are ones
//! the server keeps.

#![no_main]

use duet_proto::elem::{MsgElem, parse_msg_body, validate_elems};
use duet_proto::limits::{self, MAX_MESSAGE_CONTENT_BYTES};
use duet_proto::rest::request::{self as req, OutgoingMessage};
use duet_proto::rest::{Command, Service, format_msg_key, parse_body, parse_msg_key, validate_user_id};
use duet_proto::rest::{msglog, sns};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every command the server serves, by its path.
const PATHS: &[(&str, &str)] = &[
    ("im_open_login_svc", "account_import"),
    ("im_open_login_svc", "multiaccount_import"),
    ("im_open_login_svc", "account_delete"),
    ("im_open_login_svc", "account_check"),
    ("im_open_login_svc", "kick"),
    ("profile", "portrait_set"),
    ("profile", "portrait_get"),
    ("openim", "sendmsg"),
    ("openim", "batchsendmsg"),
    ("openim", "importmsg"),
    ("openim", "admin_getroammsg"),
    ("openim", "admin_msgwithdraw"),
    ("openim", "admin_set_msg_read"),
    ("openim", "get_c2c_unread_msg_num"),
    ("openim", "query_online_status"),
    ("recentcontact", "get_list"),
    ("recentcontact", "delete"),
    ("sns", "friend_add"),
    ("sns", "friend_import"),
    ("sns", "friend_update"),
    ("sns", "friend_delete"),
    ("sns", "friend_delete_all"),
    ("sns", "friend_check"),
    ("sns", "friend_get"),
    ("sns", "friend_get_list"),
    ("sns", "black_list_add"),
    ("sns", "black_list_delete"),
    ("sns", "black_list_get"),
    ("sns", "black_list_check"),
    ("open_msg_svc", "get_history"),
    // Added later: at the end, so that the seeds' first bytes keep naming the commands they were made for.
    ("openim", "c2c_msg_read_receipt"),
    ("openconfigsvr", "setnospeaking"),
    ("openconfigsvr", "getnospeaking"),
    ("openim", "modify_c2c_msg"),
    ("openim", "delete_c2c_msg_ramble"),
    ("recentcontact", "mark_contact"),
    ("duet", "status"),
];

/// The server's clock for `importmsg` (an instant of 2026).
const NOW: i64 = 1_780_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let (service, command) = PATHS[usize::from(pick) % PATHS.len()];
    let service = Service::from_path(service).expect("a served service");
    let command = Command::from_path(service, command).expect("a served command");
    if let Ok(value) = parse_body(service, body) {
        decode(command, &value);
    }
});

fn decode(command: Command, body: &Value) {
    use Command::*;
    match command {
        AccountImport => {
            if let Ok(r) = req::AccountImport::parse(body) {
                user(&r.user_id);
            }
        }
        MultiAccountImport => {
            if let Ok(r) = req::MultiAccountImport::parse(body) {
                assert!(r.accounts.len() + r.invalid.len() <= req::MAX_ACCOUNT_BATCH);
                r.accounts.iter().for_each(|a| user(&a.user_id));
            }
        }
        AccountDelete | AccountCheck => {
            let list = if command == AccountDelete { "DeleteItem" } else { "CheckItem" };
            if let Ok(r) = req::AccountList::parse(body, list) {
                users(&r.user_ids);
            }
        }
        Kick => {
            if let Ok(r) = req::Kick::parse(body) {
                user(&r.user_id);
            }
        }
        PortraitSet => {
            if let Ok(r) = req::PortraitSet::parse(body) {
                user(&r.from);
                for (tag, value) in &r.items {
                    assert!(req::is_known_tag(tag), "{tag:?}");
                    let _ = value.to_json().to_string();
                }
            }
        }
        PortraitGet => {
            if let Ok(r) = req::PortraitGet::parse(body) {
                users(&r.to);
                assert!(r.tags.iter().all(|t| req::is_known_tag(t)));
            }
        }
        SendMsg => {
            if let Ok(r) = req::SendMsg::parse(body) {
                user(&r.to);
                message(&r.msg);
            }
        }
        BatchSendMsg => {
            if let Ok(r) = req::BatchSendMsg::parse(body) {
                users(&r.to);
                message(&r.msg);
            }
        }
        ImportMsg => {
            if let Ok(r) = req::ImportMsg::parse(body, NOW) {
                user(&r.from);
                user(&r.to);
                assert_eq!(limits::check_time(r.time), Ok(r.time));
                assert!(r.time <= NOW + limits::MAX_CLOCK_SKEW_SECS);
                let json = r.check().expect("a parsed import passes its limits again");
                reads_back(&json, &r.body);
            }
        }
        AdminGetRoamMsg => {
            if let Ok(r) = req::GetRoamMsg::parse(body) {
                user(&r.operator);
                user(&r.peer);
                assert!(0 <= r.min_time && r.min_time <= r.max_time);
                if let Some((seq, random, time)) = r.last_msg_key {
                    assert_eq!(parse_msg_key(&format_msg_key(seq, random, time)), Some((seq, random, time)));
                }
            }
        }
        AdminMsgWithdraw => {
            if let Ok(r) = req::MsgWithdraw::parse(body) {
                user(&r.from);
                user(&r.to);
                let (seq, random, time) = r.key;
                assert_eq!(parse_msg_key(&format_msg_key(seq, random, time)), Some(r.key));
            }
        }
        AdminSetMsgRead => {
            if let Ok(r) = req::SetMsgRead::parse(body) {
                user(&r.report);
                user(&r.peer);
                if let Some(t) = r.read_time {
                    assert_eq!(limits::check_time(t), Ok(t));
                }
            }
        }
        C2cMsgReadReceipt => {
            if let Ok(r) = req::MsgReadReceipt::parse(body) {
                user(&r.operator);
                user(&r.peer);
                assert!(!r.keys.is_empty() && r.keys.len() <= req::MsgReadReceipt::MAX_MESSAGES);
                for &(seq, random, time) in &r.keys {
                    assert_eq!(parse_msg_key(&format_msg_key(seq, random, time)), Some((seq, random, time)));
                }
            }
        }
        GetC2cUnreadMsgNum => {
            if let Ok(r) = req::UnreadNum::parse(body) {
                user(&r.to);
                if let Some(peers) = &r.peers {
                    assert!(!peers.is_empty() && peers.len() <= req::MAX_UNREAD_PEERS);
                    users(peers);
                }
            }
        }
        QueryOnlineStatus => {
            if let Ok(r) = req::QueryOnlineStatus::parse(body) {
                assert!(r.to.len() <= req::MAX_RECIPIENTS);
                users(&r.to);
            }
        }
        RecentContactGetList => {
            if let Ok(r) = req::RecentContactGetList::parse(body) {
                user(&r.from);
            }
        }
        RecentContactDelete => {
            if let Ok(r) = req::RecentContactDelete::parse(body) {
                user(&r.from);
                user(&r.to);
            }
        }
        FriendAdd => {
            if let Ok(r) = sns::FriendAdd::parse(body) {
                user(&r.from);
                for i in &r.items {
                    user(&i.to);
                    assert!(i.remark.len() <= sns::MAX_REMARK_BYTES && i.wording.len() <= sns::MAX_WORDING_BYTES);
                    assert!(i.group.len() <= sns::MAX_GROUP_NAME_BYTES);
                }
            }
        }
        FriendImport => {
            if let Ok(r) = sns::FriendImport::parse(body) {
                user(&r.from);
                for i in &r.items {
                    user(&i.to);
                    assert!(i.groups.len() <= sns::MAX_GROUPS);
                    assert!(i.custom.iter().all(|(tag, _)| sns::is_custom_sns_tag(tag)));
                    if let Some(t) = i.add_time {
                        assert_eq!(limits::check_time(t), Ok(t));
                    }
                }
            }
        }
        FriendUpdate => {
            if let Ok(r) = sns::FriendUpdate::parse(body) {
                user(&r.from);
                r.items.iter().for_each(|(to, _)| user(to));
            }
        }
        FriendDelete => {
            if let Ok(r) = sns::FriendDelete::parse(body) {
                user(&r.from);
                users(&r.to);
            }
        }
        FriendDeleteAll => {
            if let Ok(r) = sns::FriendDeleteAll::parse(body) {
                user(&r.from);
            }
        }
        FriendCheck | BlackListCheck => {
            let prefix = if command == FriendCheck { "CheckResult_Type" } else { "BlackCheckResult_Type" };
            if let Ok(r) = sns::RelationCheck::parse(body, prefix) {
                user(&r.from);
                users(&r.to);
            }
        }
        FriendGet => {
            if let Ok(r) = sns::FriendGet::parse(body) {
                user(&r.from);
            }
        }
        FriendGetList => {
            if let Ok(r) = sns::FriendGetList::parse(body) {
                user(&r.from);
                users(&r.to);
                assert!(!r.tags.is_empty());
            }
        }
        BlackListAdd | BlackListDelete => {
            if let Ok(r) = sns::BlackListChange::parse(body) {
                user(&r.from);
                users(&r.to);
            }
        }
        BlackListGet => {
            if let Ok(r) = sns::BlackListGet::parse(body) {
                user(&r.from);
                assert!((1..=sns::MAX_BLACKLIST_PAGE).contains(&r.max_limited));
            }
        }
        GetHistory => {
            if let Ok(r) = msglog::GetHistory::parse(body) {
                // The hour is the caller's to check; parsing only keeps what was sent, as text.
                assert!(matches!(r.chat_type.name(), "C2C" | "Group"));
                assert!(r.msg_time.len() <= body.to_string().len());
            }
        }
        SetNoSpeaking => {
            if let Ok(r) = req::SetNoSpeaking::parse(body) {
                user(&r.account);
                assert!(r.c2c.is_some() || r.group.is_some());
            }
        }
        GetNoSpeaking => {
            if let Ok(r) = req::GetNoSpeaking::parse(body) {
                user(&r.account);
            }
        }
        // Reads no field of its body: the envelope's parse above is all there is.
        Status => {}
        ModifyC2cMsg => {
            if let Ok(r) = req::ModifyC2cMsg::parse(body) {
                user(&r.from);
                user(&r.to);
                assert!(r.body.is_some() || r.cloud_custom_data.is_some());
                if let Some((elems, json)) = &r.body {
                    assert_eq!(validate_elems(elems).as_deref(), Ok(json.as_str()));
                }
            }
        }
        DeleteC2cMsgRamble => {
            if let Ok(r) = req::DeleteC2cMsgRamble::parse(body) {
                user(&r.operator);
                user(&r.peer);
                assert!(!r.keys.is_empty() && r.keys.len() <= req::DeleteC2cMsgRamble::MAX_MESSAGES);
                for (text, (seq, random, time)) in &r.keys {
                    assert_eq!(parse_msg_key(text), Some((*seq, *random, *time)));
                }
            }
        }
        MarkContact => {
            if let Ok(r) = req::MarkContact::parse(body) {
                user(&r.from);
                assert!(!r.items.is_empty() && r.items.len() <= req::MarkContact::MAX_ITEMS);
                for change in r.items.iter().filter_map(|i| i.change.as_ref().ok()) {
                    user(&change.peer);
                    assert!(
                        change
                            .custom_mark
                            .as_ref()
                            .is_none_or(|m| m.len() <= limits::MAX_CONVERSATION_CUSTOM_DATA_BYTES)
                    );
                }
            }
        }
    }
}

fn user(id: &str) {
    assert_eq!(validate_user_id(id), Ok(()), "a parsed UserID {id:?}");
}

fn users(ids: &[String]) {
    assert!(!ids.is_empty());
    ids.iter().for_each(|id| user(id));
}

/// A parsed `sendmsg`/`batchsendmsg` message: within its limits, its body stored as compact JSON that
/// reads back as the same elements.
fn message(msg: &OutgoingMessage) {
    if let Some(from) = &msg.from {
        user(from);
    }
    assert!(msg.lifetime <= req::MAX_MSG_LIFETIME);
    let json = msg.check().expect("a parsed message passes its limits again");
    let ccd = msg.cloud_custom_data.as_deref().unwrap_or_default();
    assert!(limits::message_content_bytes(&json, ccd, msg.offline_push_info.as_ref()) <= MAX_MESSAGE_CONTENT_BYTES);
    reads_back(&json, &msg.body);
}

/// The stored `MsgBody` (what clients later read) parses as the elements that were checked.
fn reads_back(json: &str, body: &[MsgElem]) {
    let value: Value = serde_json::from_str(json).expect("the stored MsgBody is JSON");
    let again = parse_msg_body(Some(&value)).expect("the stored MsgBody is valid");
    assert_eq!(again, body, "the stored MsgBody {json}");
    let elems: Vec<MsgElem> = serde_json::from_str(json).expect("clients read the stored MsgBody");
    assert_eq!(elems, body);
}

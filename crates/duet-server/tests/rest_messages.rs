//! The `openim` REST endpoints (C2C messages, unread counts, online status), driven over HTTP against the
//! real server on `127.0.0.1:0` with a manual clock. Whole response bodies are checked with insta file
//! snapshots (`tests/snapshots/rest_messages__*.snap`); every snapshot was read and checked against
//! Tencent's documented answer (`shared/reference/tencent-rest-api.md` §3, §4, §10).
//!
//! The clock starts at `T0_MS` and only moves when a test moves it, so `MsgTime` and `MsgKey` are
//! deterministic whenever `MsgSeq` is given.

use std::collections::HashSet;
use std::sync::Arc;

use duet_test_support::{ADMIN, T0_MS, TestServer, text};
use serde_json::{Value, json};

/// The test clock's start, in unix seconds.
const T0: i64 = T0_MS / 1000;
/// A `MaxTime` later than any message of these tests.
const FAR_FUTURE: i64 = 4_000_000_000;
/// Tencent's prefix for a body that is not JSON.
const PARSE_PREFIX: &str = "Fail to Parse json data of body, Please check it";

async fn server(users: &[&str]) -> TestServer {
    let s = TestServer::spawn().await;
    s.import(users).await;
    s
}

/// A `sendmsg` body from `from` (or the admin, when `None`).
fn msg(from: Option<&str>, to: &str, seq: u32, random: u32, body: Value) -> Value {
    let mut m = json!({ "To_Account": to, "MsgSeq": seq, "MsgRandom": random, "MsgBody": body });
    if let Some(from) = from {
        m["From_Account"] = json!(from);
    }
    m
}

/// `m` with `extra`'s fields added (or replaced).
fn with(mut m: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().expect("extra fields are an object") {
        m[k] = v.clone();
    }
    m
}

/// `m` without the field `name`.
fn without(mut m: Value, name: &str) -> Value {
    m.as_object_mut().expect("an object").remove(name);
    m
}

async fn send(s: &TestServer, body: Value) -> Value {
    s.rest("openim/sendmsg", body).await
}

async fn send_ok(s: &TestServer, body: Value) -> Value {
    let r = send(s, body.clone()).await;
    assert_eq!(r["ErrorCode"], 0, "sendmsg {body}: {r}");
    assert_eq!(r["ActionStatus"], "OK", "sendmsg {body}: {r}");
    r
}

async fn import_msg(s: &TestServer, body: Value) -> Value {
    s.rest("openim/importmsg", body).await
}

/// One page of `op`'s view of the conversation with `peer` (current request shape).
async fn roam(s: &TestServer, op: &str, peer: &str) -> Value {
    let r = s
        .rest(
            "openim/admin_getroammsg",
            json!({ "Operator_Account": op, "Peer_Account": peer, "MaxCnt": 100, "MinTime": 0, "MaxTime": FAR_FUTURE }),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "admin_getroammsg {op}/{peer}: {r}");
    r
}

/// Every message of `op`'s view, oldest first, following the documented continuation
/// (`MaxTime` = previous `LastMsgTime`, `LastMsgKey` = previous `LastMsgKey`) until `Complete` is 1.
async fn history(s: &TestServer, op: &str, peer: &str, max_cnt: u32) -> Vec<Value> {
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut req =
        json!({ "Operator_Account": op, "Peer_Account": peer, "MaxCnt": max_cnt, "MinTime": 0, "MaxTime": FAR_FUTURE });
    for _ in 0..1000 {
        let r = s.rest("openim/admin_getroammsg", req.clone()).await;
        assert_eq!(r["ErrorCode"], 0, "admin_getroammsg {req}: {r}");
        let list = r["MsgList"].as_array().expect("MsgList").clone();
        assert_eq!(r["MsgCnt"], list.len(), "MsgCnt counts MsgList: {r}");
        pages.push(list);
        if r["Complete"] == 1 {
            return pages.into_iter().rev().flatten().collect();
        }
        req["MaxTime"] = r["LastMsgTime"].clone();
        req["LastMsgKey"] = r["LastMsgKey"].clone();
    }
    panic!("admin_getroammsg never answered Complete 1 for {op}/{peer}");
}

fn keys(list: &[Value]) -> Vec<String> {
    list.iter().map(|m| m["MsgKey"].as_str().expect("MsgKey").to_owned()).collect()
}

async fn unread_total(s: &TestServer, to: &str) -> u64 {
    let r = s.rest("openim/get_c2c_unread_msg_num", json!({ "To_Account": to })).await;
    assert_eq!(r["ErrorCode"], 0, "get_c2c_unread_msg_num {to}: {r}");
    r["AllC2CUnreadMsgNum"].as_u64().expect("AllC2CUnreadMsgNum")
}

async fn unread_from(s: &TestServer, to: &str, peer: &str) -> u64 {
    let r = s.rest("openim/get_c2c_unread_msg_num", json!({ "To_Account": to, "Peer_Account": [peer] })).await;
    assert_eq!(r["ErrorCode"], 0, "get_c2c_unread_msg_num {to}/{peer}: {r}");
    r["C2CUnreadMsgNumList"][0]["C2CUnreadMsgNum"].as_u64().expect("C2CUnreadMsgNum")
}

// ---------------------------------------------------------------------------------------------------
// sendmsg
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn sendmsg_without_from_account_sends_as_the_admin() {
    let s = server(&["bob"]).await;
    let r = send(&s, msg(None, "bob", 1, 11, text("from the admin"))).await;
    insta::assert_json_snapshot!("sendmsg_as_admin", r);
    insta::assert_json_snapshot!("sendmsg_as_admin_history", roam(&s, "bob", ADMIN).await);
    assert_eq!(unread_total(&s, "bob").await, 1);
}

#[tokio::test]
async fn sendmsg_with_from_account_sends_as_that_user() {
    let s = server(&["alice", "bob"]).await;
    let r = send(&s, msg(Some("alice"), "bob", 2, 22, text("hi bob"))).await;
    insta::assert_json_snapshot!("sendmsg_as_user", r);
    // Both sides see the message, with alice as the sender.
    let alice_view = roam(&s, "alice", "bob").await;
    insta::assert_json_snapshot!("sendmsg_as_user_history", alice_view);
    assert_eq!(roam(&s, "bob", "alice").await, alice_view, "both sides see the same message");
    // The admin's conversation with bob is untouched.
    assert_eq!(roam(&s, ADMIN, "bob").await["MsgCnt"], 0);
    assert_eq!(unread_from(&s, "bob", "alice").await, 1);
    assert_eq!(unread_total(&s, "alice").await, 0, "a sender has nothing unread");
}

#[tokio::test]
async fn sendmsg_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice", "bob"]).await;
    let ok = msg(Some("alice"), "bob", 1, 1, text("x"));
    let two_custom = json!([
        { "MsgType": "TIMCustomElem", "MsgContent": { "Data": "a" } },
        { "MsgType": "TIMCustomElem", "MsgContent": { "Data": "b" } },
    ]);
    let unknown_type = json!([{ "MsgType": "TIMNopeElem", "MsgContent": { "Text": "?" } }]);
    let cases: Vec<(&str, Value, u32)> = vec![
        ("to_account_missing", without(ok.clone(), "To_Account"), 90003),
        ("to_account_not_imported", with(ok.clone(), json!({ "To_Account": "ghost" })), 90012),
        ("from_account_not_imported", with(ok.clone(), json!({ "From_Account": "ghost" })), 90008),
        ("msg_random_missing", without(ok.clone(), "MsgRandom"), 90005),
        ("msg_random_not_a_number", with(ok.clone(), json!({ "MsgRandom": "abc" })), 90005),
        ("msg_random_negative", with(ok.clone(), json!({ "MsgRandom": -1 })), 90005),
        ("msg_random_over_u32", with(ok.clone(), json!({ "MsgRandom": 4_294_967_296u64 })), 90005),
        ("msg_body_missing", without(ok.clone(), "MsgBody"), 90007),
        ("msg_body_not_an_array", with(ok.clone(), json!({ "MsgBody": { "MsgType": "TIMTextElem" } })), 90007),
        ("msg_body_empty", with(ok.clone(), json!({ "MsgBody": [] })), 90002),
        ("two_custom_elems", with(ok.clone(), json!({ "MsgBody": two_custom })), 90010),
        ("unknown_msg_type", with(ok.clone(), json!({ "MsgBody": unknown_type })), 90010),
        ("body_over_12kb", with(ok.clone(), json!({ "MsgBody": text(&"x".repeat(13_000)) })), 93000),
        ("sync_other_machine_3", with(ok.clone(), json!({ "SyncOtherMachine": 3 })), 90031),
        ("sync_other_machine_not_a_number", with(ok.clone(), json!({ "SyncOtherMachine": "x" })), 90031),
        ("msg_life_time_not_a_number", with(ok.clone(), json!({ "MsgLifeTime": "abc" })), 90044),
        ("offline_push_info_not_an_object", with(ok.clone(), json!({ "OfflinePushInfo": "push" })), 90043),
    ];
    for (name, body, code) in cases {
        let r = send(&s, body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{name}: {r}");
        insta::assert_json_snapshot!(format!("sendmsg_error_{name}"), r);
    }
    // Nothing was stored by any refused request.
    assert_eq!(roam(&s, "alice", "bob").await["MsgCnt"], 0);
    assert_eq!(unread_total(&s, "bob").await, 0);
}

#[tokio::test]
async fn sendmsg_accepts_msg_random_as_a_string_number() {
    let s = server(&["alice", "bob"]).await;
    let r = send(&s, with(msg(Some("alice"), "bob", 3, 0, text("x")), json!({ "MsgRandom": "12345" }))).await;
    insta::assert_json_snapshot!("sendmsg_msg_random_string", r);
    assert_eq!(roam(&s, "bob", "alice").await["MsgList"][0]["MsgRandom"], 12345);
}

#[tokio::test]
async fn sendmsg_without_msg_seq_picks_one() {
    let s = server(&["alice", "bob"]).await;
    let r = send_ok(&s, without(msg(Some("alice"), "bob", 0, 55, text("no seq")), "MsgSeq")).await;
    assert_eq!(r["MsgTime"], T0);
    let key = r["MsgKey"].as_str().expect("MsgKey").to_owned();
    let parts: Vec<&str> = key.split('_').collect();
    assert_eq!(parts.len(), 3, "MsgKey {key} is <seq>_<random>_<time>");
    let seq: u32 = parts[0].parse().unwrap_or_else(|_| panic!("MsgKey {key}: the seq is a u32"));
    assert_eq!(parts[1], "55", "MsgKey {key}: the random is MsgRandom");
    assert_eq!(parts[2], T0.to_string(), "MsgKey {key}: the time is MsgTime");
    assert!(key.len() <= 50, "MsgKey is at most 50 characters");
    let stored = roam(&s, "bob", "alice").await;
    assert_eq!(stored["MsgList"][0]["MsgSeq"], seq, "history has the seq the key names");
    assert_eq!(stored["MsgList"][0]["MsgKey"], key.as_str());
}

/// One element of each type, with every field Tencent's message format page lists (1047/33527).
fn every_element() -> Vec<Value> {
    vec![
        json!({ "MsgType": "TIMTextElem", "MsgContent": { "Text": "hello world" } }),
        json!({ "MsgType": "TIMFaceElem", "MsgContent": { "Index": 1, "Data": "content" } }),
        json!({ "MsgType": "TIMLocationElem", "MsgContent": {
            "Desc": "someinfo", "Latitude": 29.340656774469956, "Longitude": 116.77497920478824 } }),
        json!({ "MsgType": "TIMImageElem", "MsgContent": {
            "UUID": "1853095_D61040894AC3DE44CDFFFB3EC7EB720F",
            "ImageFormat": 1,
            "ImageInfoArray": [
                { "Type": 1, "Size": 1853095, "Width": 2448, "Height": 3264,
                  "URL": "https://example.com/image/original.jpg" },
                { "Type": 3, "Size": 2356, "Width": 150, "Height": 200,
                  "URL": "https://example.com/image/thumb.jpg" },
                { "Type": 2, "Size": 0, "Width": 0, "Height": 0,
                  "URL": "https://example.com/image/large.jpg" },
            ] } }),
        json!({ "MsgType": "TIMSoundElem", "MsgContent": {
            "Url": "https://example.com/sound/abc.mp3", "UUID": "1053D4E8A2F7D5E9C76D3B1E4F0A2B3C",
            "Size": 62351, "Second": 1, "Download_Flag": 2 } }),
        json!({ "MsgType": "TIMFileElem", "MsgContent": {
            "Url": "https://example.com/file/trim.mov", "UUID": "6E0F5C1B3A2D4E8F9A7B6C5D4E3F2A1B",
            "FileSize": 1773552, "FileName": "trim.B75D5F9B.MOV", "Download_Flag": 2 } }),
        json!({ "MsgType": "TIMVideoFileElem", "MsgContent": {
            "VideoUrl": "https://example.com/video/v.mp4", "VideoUUID": "5da38ba89d6521011e1f6f3fd6692e35",
            "VideoSize": 1194603, "VideoSecond": 5, "VideoFormat": "mp4", "VideoDownloadFlag": 2,
            "ThumbUrl": "https://example.com/video/t.jpg", "ThumbUUID": "6edaffedef5150684510cf97957b7bc8",
            "ThumbSize": 13907, "ThumbWidth": 720, "ThumbHeight": 1280, "ThumbFormat": "JPG",
            "ThumbDownloadFlag": 2 } }),
        json!({ "MsgType": "TIMCustomElem", "MsgContent": {
            "Data": "message", "Desc": "notification", "Ext": "url", "Sound": "dingdong.aiff" } }),
    ]
}

#[tokio::test]
async fn sendmsg_stores_every_element_type_as_sent() {
    let s = server(&["alice", "bob"]).await;
    let elements = every_element();
    for (i, elem) in elements.iter().enumerate() {
        let i = i as u32;
        send_ok(&s, msg(Some("alice"), "bob", 100 + i, 200 + i, json!([elem]))).await;
    }
    let r = roam(&s, "bob", "alice").await;
    let list = r["MsgList"].as_array().expect("MsgList");
    assert_eq!(list.len(), elements.len());
    for (m, elem) in list.iter().zip(&elements) {
        assert_eq!(m["MsgBody"], json!([elem]), "{} comes back as sent", elem["MsgType"]);
    }
    insta::assert_json_snapshot!("sendmsg_every_element_history", r);
}

#[tokio::test]
async fn sendmsg_stores_several_elements_in_one_message_in_order() {
    let s = server(&["alice", "bob"]).await;
    // Every type once: one custom element is allowed alongside the others.
    let body = Value::Array(every_element().into_iter().rev().collect());
    let r = send_ok(&s, msg(Some("alice"), "bob", 9, 99, body.clone())).await;
    insta::assert_json_snapshot!("sendmsg_several_elements", r);
    let stored = roam(&s, "alice", "bob").await;
    assert_eq!(stored["MsgCnt"], 1);
    assert_eq!(stored["MsgList"][0]["MsgBody"], body, "elements keep their order and content");
}

#[tokio::test]
async fn sendmsg_body_limit_is_12_kb_of_utf8() {
    let s = server(&["alice", "bob"]).await;
    let overhead = text("").to_string().len();
    let limit = 12 * 1024;
    // Exactly at the limit: accepted.
    send_ok(&s, msg(Some("alice"), "bob", 1, 1, text(&"x".repeat(limit - overhead)))).await;
    // One byte over: 93000.
    let r = send(&s, msg(Some("alice"), "bob", 2, 2, text(&"x".repeat(limit - overhead + 1)))).await;
    assert_eq!(r["ErrorCode"], 93000, "{r}");
    insta::assert_json_snapshot!("sendmsg_body_one_byte_over", r);
    // The limit counts bytes, not characters: 4100 CJK characters are 12,300 bytes.
    let r = send(&s, msg(Some("alice"), "bob", 3, 3, text(&"字".repeat(4100)))).await;
    assert_eq!(r["ErrorCode"], 93000, "{r}");
    send_ok(&s, msg(Some("alice"), "bob", 4, 4, text(&"字".repeat(4000)))).await;
    assert_eq!(roam(&s, "bob", "alice").await["MsgCnt"], 2);
}

#[tokio::test]
async fn sendmsg_sync_other_machine_decides_the_senders_copy() {
    let s = server(&["alice", "bob"]).await;
    send_ok(&s, with(msg(Some("alice"), "bob", 1, 1, text("default")), json!({}))).await;
    send_ok(&s, with(msg(Some("alice"), "bob", 2, 2, text("sync 1")), json!({ "SyncOtherMachine": 1 }))).await;
    send_ok(&s, with(msg(Some("alice"), "bob", 3, 3, text("sync 2")), json!({ "SyncOtherMachine": 2 }))).await;
    // SyncOtherMachine as a string number is read like the number.
    send_ok(&s, with(msg(Some("alice"), "bob", 4, 4, text("sync \"2\"")), json!({ "SyncOtherMachine": "2" }))).await;

    let senders_view = roam(&s, "alice", "bob").await;
    insta::assert_json_snapshot!("sendmsg_sync_other_machine_sender_view", senders_view);
    let recipients_view = roam(&s, "bob", "alice").await;
    insta::assert_json_snapshot!("sendmsg_sync_other_machine_recipient_view", recipients_view);
    assert_eq!(keys(senders_view["MsgList"].as_array().unwrap()), ["1_1_1700000000", "2_2_1700000000"]);
    assert_eq!(recipients_view["MsgCnt"], 4, "the recipient gets every message");
    // The old request shape finds a SyncOtherMachine=2 message only from the recipient's side.
    let old_shape = |from: &str, to: &str| json!({ "From_Account": from, "To_Account": to, "MaxCnt": 100, "MinTime": 0, "MaxTime": FAR_FUTURE });
    assert_eq!(s.rest("openim/admin_getroammsg", old_shape("bob", "alice")).await["MsgCnt"], 4);
    assert_eq!(s.rest("openim/admin_getroammsg", old_shape("alice", "bob")).await["MsgCnt"], 2);
    assert_eq!(unread_from(&s, "bob", "alice").await, 4);
}

#[tokio::test]
async fn sendmsg_msg_life_time() {
    let s = server(&["alice", "bob"]).await;
    // 0: online only. Acknowledged, but not stored and not counted.
    let r = send(&s, with(msg(Some("alice"), "bob", 1, 1, text("typing…")), json!({ "MsgLifeTime": 0 }))).await;
    insta::assert_json_snapshot!("sendmsg_msg_life_time_0", r);
    assert_eq!(roam(&s, "bob", "alice").await["MsgCnt"], 0, "an online-only message is not in history");
    assert_eq!(roam(&s, "alice", "bob").await["MsgCnt"], 0);
    assert_eq!(unread_total(&s, "bob").await, 0, "an online-only message is not unread");
    // OnlineOnlyFlag 1 means the same.
    send_ok(&s, with(msg(Some("alice"), "bob", 2, 2, text("typing…")), json!({ "OnlineOnlyFlag": 1 }))).await;
    assert_eq!(roam(&s, "bob", "alice").await["MsgCnt"], 0);

    // More than 7 days is clamped to 7 days, not refused; a string number is read as a number.
    let r = send(&s, with(msg(Some("alice"), "bob", 3, 3, text("long")), json!({ "MsgLifeTime": 10_000_000 }))).await;
    insta::assert_json_snapshot!("sendmsg_msg_life_time_over_7_days", r);
    send_ok(&s, with(msg(Some("alice"), "bob", 4, 4, text("week")), json!({ "MsgLifeTime": "604800" }))).await;
    send_ok(&s, with(msg(Some("alice"), "bob", 5, 5, text("minute")), json!({ "MsgLifeTime": 60 }))).await;
    assert_eq!(
        keys(roam(&s, "bob", "alice").await["MsgList"].as_array().unwrap()),
        ["3_3_1700000000", "4_4_1700000000", "5_5_1700000000"]
    );
    assert_eq!(unread_total(&s, "bob").await, 3);

    let r = send(&s, with(msg(Some("alice"), "bob", 6, 6, text("bad")), json!({ "MsgLifeTime": -1 }))).await;
    assert_eq!(r["ErrorCode"], 90044, "{r}");
}

#[tokio::test]
async fn sendmsg_cloud_custom_data_is_returned_in_history() {
    let s = server(&["alice", "bob"]).await;
    let custom = r#"{"order":42,"note":"“quoted” ünïcode"}"#;
    send_ok(&s, with(msg(Some("alice"), "bob", 1, 1, text("with data")), json!({ "CloudCustomData": custom }))).await;
    send_ok(&s, msg(Some("alice"), "bob", 2, 2, text("without data"))).await;
    let r = roam(&s, "bob", "alice").await;
    insta::assert_json_snapshot!("sendmsg_cloud_custom_data_history", r);
    assert_eq!(r["MsgList"][0]["CloudCustomData"], custom);
    assert_eq!(r["MsgList"][1]["CloudCustomData"], "", "absent CloudCustomData reads as empty");
}

#[tokio::test]
async fn sendmsg_no_unread_leaves_the_unread_count_alone() {
    let s = server(&["alice", "bob"]).await;
    send_ok(&s, msg(Some("alice"), "bob", 1, 1, text("counted"))).await;
    let r = send(&s, with(msg(Some("alice"), "bob", 2, 2, text("silent")), json!({ "SendMsgControl": ["NoUnread"] })))
        .await;
    insta::assert_json_snapshot!("sendmsg_no_unread", r);
    assert_eq!(unread_from(&s, "bob", "alice").await, 1, "NoUnread is not counted");
    assert_eq!(unread_total(&s, "bob").await, 1);
    assert_eq!(roam(&s, "bob", "alice").await["MsgCnt"], 2, "a NoUnread message is still in history");
}

/// `NoLastMsg` only keeps the conversation list's last message as it is (reference §3.1); the message is
/// still unread for the recipient unless `NoUnread` is given too.
#[tokio::test]
async fn sendmsg_no_last_msg_is_stored_and_still_counted_unread() {
    let s = server(&["alice", "bob"]).await;
    let no_last = json!({ "SendMsgControl": ["NoLastMsg"] });
    let r = send(&s, with(msg(Some("alice"), "bob", 1, 1, text("first, no last")), no_last.clone())).await;
    insta::assert_json_snapshot!("sendmsg_no_last_msg", r);
    assert_eq!(unread_from(&s, "bob", "alice").await, 1);
    send_ok(&s, msg(Some("alice"), "bob", 2, 2, text("normal"))).await;
    assert_eq!(unread_from(&s, "bob", "alice").await, 2);
    s.clock.advance_secs(1);
    send_ok(&s, with(msg(Some("alice"), "bob", 3, 3, text("later, no last")), no_last.clone())).await;
    assert_eq!(roam(&s, "bob", "alice").await["MsgCnt"], 3, "NoLastMsg messages are in history");
    assert_eq!(
        unread_from(&s, "bob", "alice").await,
        3,
        "NoLastMsg (without NoUnread) must still count as unread in an existing conversation"
    );
    // Both controls together: neither last message nor unread.
    send_ok(
        &s,
        with(msg(Some("alice"), "bob", 4, 4, text("neither")), json!({ "SendMsgControl": ["NoLastMsg", "NoUnread"] })),
    )
    .await;
    assert_eq!(unread_from(&s, "bob", "alice").await, 3);
}

#[tokio::test]
async fn sendmsg_accepts_offline_push_info_and_other_optional_fields() {
    let s = server(&["alice", "bob"]).await;
    let body = with(
        msg(Some("alice"), "bob", 1, 1, text("push me")),
        json!({
            "OfflinePushInfo": {
                "PushFlag": 0,
                "Title": "Title",
                "Desc": "offline push text",
                "Ext": "{\"k\":\"v\"}",
                "AndroidInfo": { "Sound": "android.mp3", "VIVOClassification": 1, "HuaWeiImportance": "NORMAL" },
                "ApnsInfo": { "Sound": "apns.mp3", "BadgeMode": 1, "Title": "apns title", "SubTitle": "sub", "MutableContent": 1 }
            },
            "IsNeedReadReceipt": 1,
            "SupportMessageExtension": 0,
            "ForbidCallbackControl": ["ForbidBeforeSendMsgCallback", "ForbidAfterSendMsgCallback"],
            "SendMsgControl": ["WithMuteNotifications"],
            "MsgTimeStamp": T0 - 5,
            "UnknownField": "ignored"
        }),
    );
    let r = send(&s, body).await;
    insta::assert_json_snapshot!("sendmsg_offline_push_info", r);
    let stored = roam(&s, "bob", "alice").await;
    assert_eq!(stored["MsgCnt"], 1);
    assert_eq!(stored["MsgList"][0]["MsgBody"], text("push me"));
}

#[tokio::test]
async fn sendmsg_retry_returns_the_first_result_and_stores_nothing_new() {
    let s = server(&["alice", "bob"]).await;
    let first = msg(Some("alice"), "bob", 7, 8, text("hello"));
    let r1 = send_ok(&s, first.clone()).await;
    assert_eq!(r1["MsgKey"], "7_8_1700000000");

    // A retry 100 s later: the first send's MsgTime and MsgKey, nothing stored.
    s.clock.advance_secs(100);
    let r2 = send_ok(&s, first.clone()).await;
    assert_eq!(r2, r1, "a retry is answered with the first result");
    assert_eq!(history(&s, "bob", "alice", 100).await.len(), 1, "a retry stores nothing");
    assert_eq!(unread_total(&s, "bob").await, 1, "a retry is not counted again");

    // Same MsgSeq and MsgRandom, different content: a new message.
    let r3 = send_ok(&s, msg(Some("alice"), "bob", 7, 8, text("something else"))).await;
    assert_eq!(r3["MsgKey"], format!("7_8_{}", T0 + 100));
    assert_eq!(history(&s, "bob", "alice", 100).await.len(), 2);

    // Past the 600 s window the same request is a new message.
    s.clock.advance_secs(501);
    let r4 = send_ok(&s, first.clone()).await;
    assert_eq!(r4["MsgKey"], format!("7_8_{}", T0 + 601));
    let all = history(&s, "bob", "alice", 100).await;
    assert_eq!(keys(&all), ["7_8_1700000000", "7_8_1700000100", "7_8_1700000601"]);
    assert_eq!(unread_total(&s, "bob").await, 3);
    insta::assert_json_snapshot!("sendmsg_retry_responses", json!([r1, r2, r3, r4]));
}

/// A `MsgKey` names one message of a conversation: recall and history paging take it back. Two sends in the
/// same second with the same `MsgSeq` and `MsgRandom` (Tencent deduplicates by `MsgRandom` within a second)
/// must not leave two messages under one key.
#[tokio::test]
async fn sendmsg_never_stores_two_messages_under_one_msg_key() {
    let s = server(&["alice", "bob"]).await;
    // An older message, so that paging has something past the colliding pair.
    send_ok(&s, msg(Some("alice"), "bob", 1, 1, text("older"))).await;
    s.clock.advance_secs(1);
    let a = send_ok(&s, msg(Some("alice"), "bob", 7, 8, text("one"))).await;
    let b = send(&s, msg(Some("alice"), "bob", 7, 8, text("two"))).await;
    let list = history(&s, "bob", "alice", 100).await;
    let all = keys(&list);
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "two stored messages share a MsgKey: {all:?} (responses {a} and {b})");
    // Paging one message at a time terminates and returns each message once.
    let paged = history(&s, "bob", "alice", 1).await;
    assert_eq!(keys(&paged), all, "paging with MaxCnt 1 returns each message once");
}

#[tokio::test]
async fn sendmsg_200_concurrent_sends_are_all_stored_once() {
    let s = Arc::new(server(&["alice", "bob"]).await);
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rest("openim/sendmsg", msg(Some("alice"), "bob", i, 10_000 + i, text(&format!("message {i}")))).await
        }));
    }
    let mut sent = HashSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.expect("a send task panicked");
        assert_eq!(r["ErrorCode"], 0, "send {i}: {r}");
        assert_eq!(r["MsgKey"], format!("{i}_{}_{T0}", 10_000 + i), "send {i}: {r}");
        sent.insert(r["MsgKey"].as_str().unwrap().to_owned());
    }
    assert_eq!(sent.len(), 200);
    let list = history(&s, "bob", "alice", 100).await;
    let stored = keys(&list);
    assert_eq!(stored.len(), 200, "every send is in history exactly once");
    assert_eq!(stored.iter().collect::<HashSet<_>>().len(), 200, "no message is stored twice");
    assert_eq!(stored.into_iter().collect::<HashSet<_>>(), sent);
    // Same second: history is ordered by MsgSeq.
    let seqs: Vec<u64> = list.iter().map(|m| m["MsgSeq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..200).collect::<Vec<u64>>());
    assert_eq!(unread_total(&s, "bob").await, 200);
}

// ---------------------------------------------------------------------------------------------------
// batchsendmsg
// ---------------------------------------------------------------------------------------------------

fn batch(from: &str, to: Value, seq: u32, random: u32, body: Value) -> Value {
    json!({ "From_Account": from, "To_Account": to, "MsgSeq": seq, "MsgRandom": random, "MsgBody": body })
}

#[tokio::test]
async fn batchsendmsg_all_recipients_ok_share_one_msg_key() {
    let s = server(&["alice", "bob", "carol"]).await;
    let r = s.rest("openim/batchsendmsg", batch("alice", json!(["bob", "carol"]), 5, 6, text("to all"))).await;
    insta::assert_json_snapshot!("batchsendmsg_all_ok", r);
    for peer in ["bob", "carol"] {
        let h = roam(&s, peer, "alice").await;
        assert_eq!(keys(h["MsgList"].as_array().unwrap()), ["5_6_1700000000"], "{peer}");
        assert_eq!(h["MsgList"][0]["To_Account"], peer);
        assert_eq!(unread_from(&s, peer, "alice").await, 1);
    }
    assert_eq!(roam(&s, "alice", "bob").await["MsgCnt"], 1, "the sender keeps a copy per conversation");
}

#[tokio::test]
async fn batchsendmsg_some_recipients_missing_is_some_error() {
    let s = server(&["alice", "bob", "carol"]).await;
    let to = json!(["bob", "ghost1", "carol", "ghost2"]);
    let r = s.rest("openim/batchsendmsg", batch("alice", to, 5, 6, text("to some"))).await;
    insta::assert_json_snapshot!("batchsendmsg_some_error", r);
    assert_eq!(r["ActionStatus"], "SomeError");
    assert_eq!(r["ErrorCode"], 0);
    assert_eq!(roam(&s, "bob", "alice").await["MsgCnt"], 1);
    assert_eq!(roam(&s, "carol", "alice").await["MsgCnt"], 1);
}

#[tokio::test]
async fn batchsendmsg_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice", "bob"]).await;
    let too_many: Vec<String> = (0..501).map(|i| format!("user{i}")).collect();
    let cases: Vec<(&str, Value, u32)> = vec![
        ("all_recipients_missing", batch("alice", json!(["ghost1", "ghost2"]), 1, 1, text("x")), 90012),
        ("over_500_recipients", batch("alice", json!(too_many), 1, 1, text("x")), 90011),
        ("to_account_not_an_array", batch("alice", json!("bob"), 1, 1, text("x")), 90003),
        ("to_account_empty", batch("alice", json!([]), 1, 1, text("x")), 90003),
        ("to_account_missing", without(batch("alice", json!(["bob"]), 1, 1, text("x")), "To_Account"), 90003),
        ("from_account_not_imported", batch("ghost", json!(["bob"]), 1, 1, text("x")), 90008),
        ("msg_random_missing", without(batch("alice", json!(["bob"]), 1, 1, text("x")), "MsgRandom"), 90005),
        ("msg_body_not_an_array", batch("alice", json!(["bob"]), 1, 1, json!("hello")), 90007),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/batchsendmsg", body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{name}: {r}");
        insta::assert_json_snapshot!(format!("batchsendmsg_error_{name}"), r);
    }
    assert_eq!(roam(&s, "bob", "alice").await["MsgCnt"], 0);
}

#[tokio::test]
async fn batchsendmsg_takes_up_to_500_recipients() {
    let s = server(&["alice"]).await;
    let users: Vec<String> = (0..500).map(|i| format!("user{i}")).collect();
    for chunk in users.chunks(100) {
        let r = s.rest("im_open_login_svc/multiaccount_import", json!({ "Accounts": chunk })).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let r = s.rest("openim/batchsendmsg", batch("alice", json!(users), 1, 2, text("broadcast"))).await;
    assert_eq!(r["ActionStatus"], "OK", "{r}");
    assert_eq!(r["MsgKey"], "1_2_1700000000");
    assert!(r.get("ErrorList").is_none(), "no ErrorList when every recipient got it: {r}");
    assert_eq!(roam(&s, "user499", "alice").await["MsgCnt"], 1);
}

/// A recipient named twice gets the message once: it is one message with one `MsgKey`.
#[tokio::test]
async fn batchsendmsg_recipient_named_twice_gets_the_message_once() {
    let s = server(&["alice", "bob"]).await;
    let r = s.rest("openim/batchsendmsg", batch("alice", json!(["bob", "bob"]), 1, 2, text("once"))).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(keys(&history(&s, "bob", "alice", 100).await), ["1_2_1700000000"], "stored once");
    assert_eq!(unread_from(&s, "bob", "alice").await, 1, "counted once");
}

// ---------------------------------------------------------------------------------------------------
// importmsg
// ---------------------------------------------------------------------------------------------------

fn import(sync: Value, from: &str, to: &str, seq: u32, random: u32, time: i64, body: Value) -> Value {
    json!({
        "SyncFromOldSystem": sync, "From_Account": from, "To_Account": to,
        "MsgSeq": seq, "MsgRandom": random, "MsgTimeStamp": time, "MsgBody": body,
    })
}

#[tokio::test]
async fn importmsg_sync_from_old_system_decides_unread() {
    let s = server(&["alice", "bob"]).await;
    // 2: history, not unread.
    let r = import_msg(&s, import(json!(2), "alice", "bob", 1, 1, T0 - 300, text("history"))).await;
    insta::assert_json_snapshot!("importmsg_ok", r);
    assert_eq!(unread_total(&s, "bob").await, 0, "SyncFromOldSystem 2 is not unread");
    // 1 (older docs) and 5 (current docs): real-time import, counted as unread.
    let r = import_msg(&s, import(json!(1), "alice", "bob", 2, 2, T0 - 200, text("realtime 1"))).await;
    assert_eq!(r, json!({ "ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0 }));
    assert_eq!(unread_total(&s, "bob").await, 1);
    let r = import_msg(&s, import(json!(5), "alice", "bob", 3, 3, T0 - 100, text("realtime 5"))).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(unread_from(&s, "bob", "alice").await, 2);
    // As a string number, and with CloudCustomData.
    let r = import_msg(
        &s,
        with(
            import(json!("2"), "bob", "alice", 4, 4, T0 - 50, text("reply")),
            json!({ "CloudCustomData": "imported data" }),
        ),
    )
    .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(unread_total(&s, "alice").await, 0);
    insta::assert_json_snapshot!("importmsg_history", roam(&s, "alice", "bob").await);
}

#[tokio::test]
async fn importmsg_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice", "bob"]).await;
    let ok = import(json!(2), "alice", "bob", 1, 1, T0 - 10, text("x"));
    let cases: Vec<(&str, Value, u32)> = vec![
        ("sync_from_old_system_missing", without(ok.clone(), "SyncFromOldSystem"), 90030),
        ("sync_from_old_system_3", with(ok.clone(), json!({ "SyncFromOldSystem": 3 })), 90030),
        ("sync_from_old_system_not_a_number", with(ok.clone(), json!({ "SyncFromOldSystem": "x" })), 90030),
        ("msg_time_stamp_missing", without(ok.clone(), "MsgTimeStamp"), 90006),
        ("msg_time_stamp_not_a_number", with(ok.clone(), json!({ "MsgTimeStamp": "yesterday" })), 90006),
        ("msg_random_missing", without(ok.clone(), "MsgRandom"), 90005),
        ("from_account_missing", without(ok.clone(), "From_Account"), 90008),
        ("from_account_not_imported", with(ok.clone(), json!({ "From_Account": "ghost" })), 90008),
        ("to_account_missing", without(ok.clone(), "To_Account"), 90003),
        ("to_account_not_imported", with(ok.clone(), json!({ "To_Account": "ghost" })), 90012),
        ("msg_body_not_an_array", with(ok.clone(), json!({ "MsgBody": "x" })), 90007),
        ("msg_body_empty", with(ok.clone(), json!({ "MsgBody": [] })), 90002),
    ];
    for (name, body, code) in cases {
        let r = import_msg(&s, body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{name}: {r}");
        insta::assert_json_snapshot!(format!("importmsg_error_{name}"), r);
    }
    assert_eq!(roam(&s, "alice", "bob").await["MsgCnt"], 0);
}

#[tokio::test]
async fn importmsg_duplicates_are_not_stored_twice() {
    let s = server(&["alice", "bob"]).await;
    let first = import(json!(5), "alice", "bob", 10, 20, T0 - 60, text("original"));
    assert_eq!(import_msg(&s, first.clone()).await["ErrorCode"], 0);
    // The same import again.
    let r = import_msg(&s, first.clone()).await;
    assert_eq!(
        r,
        json!({ "ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0 }),
        "a duplicate import is acknowledged"
    );
    // Same MsgSeq, MsgRandom and MsgTimeStamp with From/To swapped and other content: a duplicate too.
    let swapped = import(json!(5), "bob", "alice", 10, 20, T0 - 60, text("overwrite?"));
    assert_eq!(import_msg(&s, swapped).await["ErrorCode"], 0);
    let list = history(&s, "alice", "bob", 100).await;
    assert_eq!(list.len(), 1, "duplicates are not stored: {list:?}");
    assert_eq!(list[0]["MsgBody"], text("original"), "a later import does not overwrite the first");
    assert_eq!(list[0]["From_Account"], "alice");
    assert_eq!(unread_from(&s, "bob", "alice").await, 1, "a duplicate is not counted again");
    assert_eq!(unread_from(&s, "alice", "bob").await, 0);
    // Another MsgTimeStamp is another message.
    assert_eq!(import_msg(&s, import(json!(5), "alice", "bob", 10, 20, T0 - 59, text("later"))).await["ErrorCode"], 0);
    assert_eq!(history(&s, "alice", "bob", 100).await.len(), 2);
}

#[tokio::test]
async fn importmsg_out_of_order_history_is_sorted_by_time_then_seq() {
    let s = server(&["alice", "bob"]).await;
    let imports = [
        (T0 - 100, 5, "alice"),
        (T0 - 200, 1, "bob"),
        (T0 - 100, 2, "alice"),
        (T0 - 100, 9, "bob"),
        (T0 - 300, 7, "alice"),
        (T0 - 200, 3, "alice"),
    ];
    for (i, (time, seq, from)) in imports.into_iter().enumerate() {
        let to = if from == "alice" { "bob" } else { "alice" };
        let r = import_msg(&s, import(json!(2), from, to, seq, 1000 + i as u32, time, text(&format!("#{i}")))).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let r = roam(&s, "alice", "bob").await;
    insta::assert_json_snapshot!("importmsg_out_of_order_history", r);
    let order: Vec<(i64, u64)> = r["MsgList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["MsgTimeStamp"].as_i64().unwrap(), m["MsgSeq"].as_u64().unwrap()))
        .collect();
    assert_eq!(order, [(T0 - 300, 7), (T0 - 200, 1), (T0 - 200, 3), (T0 - 100, 2), (T0 - 100, 5), (T0 - 100, 9)]);
}

// ---------------------------------------------------------------------------------------------------
// admin_getroammsg
// ---------------------------------------------------------------------------------------------------

/// 25 messages between alice and bob, 3 per second (the last second has 1), with MsgSeq falling within
/// each second so that history order (time, then MsgSeq) differs from send order. Returns the keys in
/// history order.
async fn send_25(s: &TestServer) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..25u32 {
        if i > 0 && i % 3 == 0 {
            s.clock.advance_secs(1);
        }
        let (from, to) = if i % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
        let seq = 1000 - i;
        let r = send_ok(s, msg(Some(from), to, seq, i, text(&format!("message {i}")))).await;
        sent.push((r["MsgTime"].as_i64().unwrap(), seq, r["MsgKey"].as_str().unwrap().to_owned()));
    }
    sent.sort();
    sent.into_iter().map(|(_, _, k)| k).collect()
}

#[tokio::test]
async fn getroammsg_accepts_both_request_shapes() {
    let s = server(&["alice", "bob"]).await;
    send_ok(&s, msg(Some("alice"), "bob", 1, 1, text("a to b"))).await;
    send_ok(&s, msg(Some("bob"), "alice", 2, 2, text("b to a"))).await;
    let new_shape = s
        .rest(
            "openim/admin_getroammsg",
            json!({ "Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 10, "MinTime": T0 - 10, "MaxTime": T0 + 10 }),
        )
        .await;
    insta::assert_json_snapshot!("getroammsg_two_messages", new_shape);
    let old_shape = s
        .rest(
            "openim/admin_getroammsg",
            json!({ "From_Account": "alice", "To_Account": "bob", "MaxCnt": 10, "MinTime": T0 - 10, "MaxTime": T0 + 10 }),
        )
        .await;
    assert_eq!(old_shape, new_shape, "From_Account/To_Account mean Operator_Account/Peer_Account");
    // Numbers as strings are accepted.
    let strings = s
        .rest(
            "openim/admin_getroammsg",
            json!({ "Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": "10",
                    "MinTime": (T0 - 10).to_string(), "MaxTime": (T0 + 10).to_string() }),
        )
        .await;
    assert_eq!(strings, new_shape);
}

#[tokio::test]
async fn getroammsg_pages_back_in_time_until_complete() {
    let s = server(&["alice", "bob"]).await;
    let expected = send_25(&s).await;
    assert_eq!(expected.len(), 25);

    let mut req = json!({ "Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 10, "MinTime": 0, "MaxTime": FAR_FUTURE });
    let mut pages = Vec::new();
    let mut summaries = Vec::new();
    loop {
        let r = s.rest("openim/admin_getroammsg", req.clone()).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
        let list = r["MsgList"].as_array().unwrap().clone();
        assert!(!list.is_empty(), "a page before Complete 1 is not empty: {r}");
        // Ascending within the page; the cursor names the page's oldest message.
        let order: Vec<(i64, u64)> =
            list.iter().map(|m| (m["MsgTimeStamp"].as_i64().unwrap(), m["MsgSeq"].as_u64().unwrap())).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "a page is oldest first: {order:?}");
        assert_eq!(r["LastMsgKey"], list[0]["MsgKey"], "LastMsgKey is the page's oldest message");
        assert_eq!(r["LastMsgTime"], list[0]["MsgTimeStamp"]);
        summaries.push(json!({
            "MsgCnt": r["MsgCnt"], "Complete": r["Complete"], "LastMsgTime": r["LastMsgTime"],
            "LastMsgKey": r["LastMsgKey"], "Keys": keys(&list),
        }));
        if pages.is_empty() {
            insta::assert_json_snapshot!("getroammsg_25_first_page", r);
        }
        pages.push(list);
        if r["Complete"] == 1 {
            break;
        }
        assert!(pages.len() < 10, "paging does not end");
        req["MaxTime"] = r["LastMsgTime"].clone();
        req["LastMsgKey"] = r["LastMsgKey"].clone();
    }
    insta::assert_json_snapshot!("getroammsg_25_pages", summaries);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    // Pages go back in time: every message of a page is older than every message of the page before.
    for w in pages.windows(2) {
        let newer_oldest = (w[0][0]["MsgTimeStamp"].as_i64(), w[0][0]["MsgSeq"].as_u64());
        let older_newest = (w[1].last().unwrap()["MsgTimeStamp"].as_i64(), w[1].last().unwrap()["MsgSeq"].as_u64());
        assert!(older_newest < newer_oldest, "pages go back in time");
    }
    let all: Vec<Value> = pages.into_iter().rev().flatten().collect();
    assert_eq!(keys(&all), expected, "no message missing or repeated");

    // With MaxCnt 5 the fifth page holds the last 5 messages and is already Complete.
    let by5 = history(&s, "bob", "alice", 5).await;
    assert_eq!(keys(&by5), expected);
    let mut req =
        json!({ "Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 5, "MinTime": 0, "MaxTime": FAR_FUTURE });
    let mut completes = Vec::new();
    for _ in 0..5 {
        let r = s.rest("openim/admin_getroammsg", req.clone()).await;
        completes.push(r["Complete"].as_u64().unwrap());
        req["MaxTime"] = r["LastMsgTime"].clone();
        req["LastMsgKey"] = r["LastMsgKey"].clone();
    }
    assert_eq!(completes, [0, 0, 0, 0, 1]);
}

#[tokio::test]
async fn getroammsg_min_and_max_time_bound_the_range() {
    let s = server(&["alice", "bob"]).await;
    send_25(&s).await; // seconds T0 .. T0+8
    let range = |min: i64, max: i64| json!({ "Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 100, "MinTime": min, "MaxTime": max });
    let r = s.rest("openim/admin_getroammsg", range(T0 + 2, T0 + 4)).await;
    insta::assert_json_snapshot!("getroammsg_time_range", r);
    let times: Vec<i64> =
        r["MsgList"].as_array().unwrap().iter().map(|m| m["MsgTimeStamp"].as_i64().unwrap()).collect();
    assert_eq!(times, [T0 + 2, T0 + 2, T0 + 2, T0 + 3, T0 + 3, T0 + 3, T0 + 4, T0 + 4, T0 + 4], "bounds are inclusive");
    assert_eq!(r["Complete"], 1);
    // One second.
    assert_eq!(s.rest("openim/admin_getroammsg", range(T0 + 8, T0 + 8)).await["MsgCnt"], 1);
    // A range with nothing in it.
    let r = s.rest("openim/admin_getroammsg", range(T0 + 100, T0 + 200)).await;
    insta::assert_json_snapshot!("getroammsg_empty_range", r);
    // Before the first message.
    assert_eq!(s.rest("openim/admin_getroammsg", range(T0 - 100, T0 - 1)).await["MsgCnt"], 0);
}

#[tokio::test]
async fn getroammsg_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice", "bob"]).await;
    send_ok(&s, msg(Some("alice"), "bob", 1, 1, text("x"))).await;
    let ok = json!({ "Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 10, "MinTime": 0, "MaxTime": FAR_FUTURE });
    let cases: Vec<(&str, Value, u32)> = vec![
        ("operator_not_imported", with(ok.clone(), json!({ "Operator_Account": "ghost" })), 90008),
        ("peer_not_imported", with(ok.clone(), json!({ "Peer_Account": "ghost" })), 90003),
        ("operator_missing", without(ok.clone(), "Operator_Account"), 90008),
        ("peer_missing", without(ok.clone(), "Peer_Account"), 90003),
        ("last_msg_key_malformed", with(ok.clone(), json!({ "LastMsgKey": "not-a-key" })), 90054),
        ("last_msg_key_too_many_parts", with(ok.clone(), json!({ "LastMsgKey": "1_1_1_1" })), 90054),
        ("max_cnt_missing", without(ok.clone(), "MaxCnt"), 90001),
        ("min_time_missing", without(ok.clone(), "MinTime"), 90001),
        ("max_time_missing", without(ok.clone(), "MaxTime"), 90001),
        ("min_time_after_max_time", with(ok.clone(), json!({ "MinTime": T0 + 10, "MaxTime": T0 })), 90001),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/admin_getroammsg", body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{name}: {r}");
        insta::assert_json_snapshot!(format!("getroammsg_error_{name}"), r);
    }
}

#[tokio::test]
async fn c2c_msg_read_receipt_acknowledges_what_asked_and_tells_the_sender() {
    let s = server(&["alice", "bob", "carol"]).await;
    let asked =
        send_ok(&s, with(msg(Some("alice"), "bob", 1, 1, text("ack me")), json!({"IsNeedReadReceipt": 1}))).await;
    let asked = asked["MsgKey"].as_str().unwrap().to_owned();
    let plain =
        send_ok(&s, msg(Some("alice"), "bob", 2, 2, text("plain"))).await["MsgKey"].as_str().unwrap().to_owned();
    let info = |key: &str| json!({"From_Account": "alice", "To_Account": "bob", "MsgKey": key});
    let body = |infos: Vec<Value>| json!({"Operator_Account": "bob", "Peer_Account": "alice", "C2CMsgInfo": infos});
    s.clock.advance_secs(4);
    // A message that asked for no receipt is passed over; the call succeeds.
    let r = s.rest("openim/c2c_msg_read_receipt", body(vec![info(&asked), info(&plain)])).await;
    assert_eq!((r["ErrorCode"].as_u64(), r["ActionStatus"].as_str()), (Some(0), Some("OK")), "{r}");
    assert_eq!(unread_from(&s, "bob", "alice").await, 2, "a receipt is not a read");
    // alice's devices learn it from her sync log.
    let mut alice = duet_test_support::WsClient::login(&s, "alice").await;
    let synced = alice.request(json!({"op": "sync", "after": 0})).await;
    let receipts: Vec<&Value> =
        synced["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "receipt").collect();
    assert_eq!(receipts, [&json!({"kind": "receipt", "seq": 1, "peer": "bob", "msg_key": asked, "time": T0 + 4})]);
    let found = alice.request(json!({"op": "find", "peer": "bob", "msg_keys": [asked, plain]})).await;
    let times: Vec<&Value> = found["messages"].as_array().unwrap().iter().map(|m| &m["receipt_time"]).collect();
    assert_eq!(times, [&json!(T0 + 4), &Value::Null], "{found}");

    let cases = [
        ("no operator", json!({"Peer_Account": "alice", "C2CMsgInfo": [info(&asked)]}), 90008),
        (
            "unknown operator",
            json!({"Operator_Account": "nobody", "Peer_Account": "alice", "C2CMsgInfo": [
                {"From_Account": "alice", "To_Account": "nobody", "MsgKey": asked}
            ]}),
            90008,
        ),
        ("no peer", json!({"Operator_Account": "bob", "C2CMsgInfo": [info(&asked)]}), 90003),
        ("no messages", body(vec![]), 90001),
        (
            "messages not an array",
            json!({"Operator_Account": "bob", "Peer_Account": "alice", "C2CMsgInfo": "x"}),
            90001,
        ),
        ("another sender", body(vec![json!({"From_Account": "carol", "To_Account": "bob", "MsgKey": asked})]), 90001),
        (
            "another recipient",
            body(vec![json!({"From_Account": "alice", "To_Account": "carol", "MsgKey": asked})]),
            90001,
        ),
        ("a malformed key", body(vec![info("nope")]), 90054),
        ("too many", body((0..101).map(|n| info(&format!("{n}_1_1"))).collect()), 90001),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/c2c_msg_read_receipt", body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{name}: {r}");
    }
}

#[tokio::test]
async fn getroammsg_is_peer_read_follows_admin_set_msg_read() {
    let s = server(&["alice", "bob"]).await;
    send_ok(&s, msg(Some("alice"), "bob", 1, 1, text("a1 at T0"))).await;
    send_ok(&s, msg(Some("bob"), "alice", 2, 2, text("b1 at T0"))).await;
    s.clock.advance_secs(10);
    send_ok(&s, msg(Some("alice"), "bob", 3, 3, text("a2 at T0+10"))).await;
    assert_eq!(unread_from(&s, "bob", "alice").await, 2);
    assert_eq!(unread_from(&s, "alice", "bob").await, 1);

    // bob reads up to T0+5 (MsgReadTime as an integer): alice's first message is read.
    let r = s
        .rest(
            "openim/admin_set_msg_read",
            json!({ "Report_Account": "bob", "Peer_Account": "alice", "MsgReadTime": T0 + 5 }),
        )
        .await;
    insta::assert_json_snapshot!("set_msg_read_ok", r);
    assert_eq!(unread_from(&s, "bob", "alice").await, 1);
    let alice_view = roam(&s, "alice", "bob").await;
    insta::assert_json_snapshot!("getroammsg_is_peer_read_partial", alice_view);
    let flags: Vec<u64> =
        alice_view["MsgList"].as_array().unwrap().iter().map(|m| m["IsPeerRead"].as_u64().unwrap()).collect();
    assert_eq!(flags, [1, 0, 0], "a1 read by bob; b1 not read by alice; a2 not read yet");
    assert_eq!(roam(&s, "bob", "alice").await["MsgList"], alice_view["MsgList"], "both views agree on IsPeerRead");

    // MsgReadTime as a string (its documented type).
    let r = s
        .rest(
            "openim/admin_set_msg_read",
            json!({ "Report_Account": "bob", "Peer_Account": "alice", "MsgReadTime": (T0 + 10).to_string() }),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(unread_from(&s, "bob", "alice").await, 0);
    // MsgReadTime absent: now.
    let r = s.rest("openim/admin_set_msg_read", json!({ "Report_Account": "alice", "Peer_Account": "bob" })).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(unread_total(&s, "alice").await, 0);
    let alice_view = roam(&s, "alice", "bob").await;
    insta::assert_json_snapshot!("getroammsg_is_peer_read_all", alice_view);
    let flags: Vec<u64> =
        alice_view["MsgList"].as_array().unwrap().iter().map(|m| m["IsPeerRead"].as_u64().unwrap()).collect();
    assert_eq!(flags, [1, 1, 1]);

    // A read mark does not move back.
    let r = s
        .rest(
            "openim/admin_set_msg_read",
            json!({ "Report_Account": "bob", "Peer_Account": "alice", "MsgReadTime": T0 }),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(unread_from(&s, "bob", "alice").await, 0);
    // New messages after the read mark are unread again.
    s.clock.advance_secs(1);
    send_ok(&s, msg(Some("alice"), "bob", 4, 4, text("a3"))).await;
    assert_eq!(unread_from(&s, "bob", "alice").await, 1);
}

#[tokio::test]
async fn set_msg_read_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice", "bob"]).await;
    let ok = json!({ "Report_Account": "bob", "Peer_Account": "alice", "MsgReadTime": T0 });
    let cases: Vec<(&str, Value, u32)> = vec![
        ("report_account_not_imported", with(ok.clone(), json!({ "Report_Account": "ghost" })), 90008),
        ("peer_account_not_imported", with(ok.clone(), json!({ "Peer_Account": "ghost" })), 90003),
        ("report_account_missing", without(ok.clone(), "Report_Account"), 90008),
        ("peer_account_missing", without(ok.clone(), "Peer_Account"), 90003),
        ("msg_read_time_not_a_number", with(ok.clone(), json!({ "MsgReadTime": "soon" })), 90001),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/admin_set_msg_read", body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        insta::assert_json_snapshot!(format!("set_msg_read_error_{name}"), r);
    }
}

// ---------------------------------------------------------------------------------------------------
// admin_msgwithdraw
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn msgwithdraw_recalls_once_and_drops_the_unread_count() {
    let s = server(&["alice", "bob"]).await;
    let first = send_ok(&s, msg(Some("alice"), "bob", 1, 1, text("oops"))).await;
    send_ok(&s, msg(Some("alice"), "bob", 2, 2, text("fine"))).await;
    assert_eq!(unread_from(&s, "bob", "alice").await, 2);
    let key = first["MsgKey"].clone();

    let withdraw = json!({ "From_Account": "alice", "To_Account": "bob", "MsgKey": key });
    let r = s.rest("openim/admin_msgwithdraw", withdraw.clone()).await;
    insta::assert_json_snapshot!("msgwithdraw_ok", r);
    assert_eq!(unread_from(&s, "bob", "alice").await, 1, "a recalled message is no longer unread");

    // The recalled message stays in history with MsgFlagBits 8, on both sides.
    let bob_view = roam(&s, "bob", "alice").await;
    insta::assert_json_snapshot!("msgwithdraw_history", bob_view);
    let flags: Vec<u64> =
        bob_view["MsgList"].as_array().unwrap().iter().map(|m| m["MsgFlagBits"].as_u64().unwrap()).collect();
    assert_eq!(flags, [8, 0]);
    assert_eq!(roam(&s, "alice", "bob").await["MsgList"], bob_view["MsgList"]);

    // Again: already recalled.
    let r = s.rest("openim/admin_msgwithdraw", withdraw).await;
    assert_eq!(r["ErrorCode"], 20023, "{r}");
    insta::assert_json_snapshot!("msgwithdraw_again", r);
    assert_eq!(unread_from(&s, "bob", "alice").await, 1, "a second recall changes nothing");

    // A read message can be recalled too, and the unread count does not go negative.
    s.rest("openim/admin_set_msg_read", json!({ "Report_Account": "bob", "Peer_Account": "alice" })).await;
    assert_eq!(unread_from(&s, "bob", "alice").await, 0);
    let r = s
        .rest(
            "openim/admin_msgwithdraw",
            json!({ "From_Account": "alice", "To_Account": "bob", "MsgKey": "2_2_1700000000" }),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(unread_from(&s, "bob", "alice").await, 0);
}

#[tokio::test]
async fn msgwithdraw_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice", "bob"]).await;
    send_ok(&s, msg(Some("alice"), "bob", 1, 1, text("x"))).await;
    // An online-only message was never stored.
    send_ok(&s, with(msg(Some("alice"), "bob", 2, 2, text("online")), json!({ "MsgLifeTime": 0 }))).await;
    let ok = json!({ "From_Account": "alice", "To_Account": "bob", "MsgKey": "1_1_1700000000" });
    let cases: Vec<(&str, Value, u32)> = vec![
        ("unknown_key", with(ok.clone(), json!({ "MsgKey": "1_2_1700000000" })), 20022),
        ("online_only_message", with(ok.clone(), json!({ "MsgKey": "2_2_1700000000" })), 20022),
        ("recipient_as_sender", with(ok.clone(), json!({ "From_Account": "bob", "To_Account": "alice" })), 20022),
        ("malformed_key", with(ok.clone(), json!({ "MsgKey": "abc" })), 90054),
        ("key_missing", without(ok.clone(), "MsgKey"), 90054),
        ("from_account_not_imported", with(ok.clone(), json!({ "From_Account": "ghost" })), 90008),
        ("to_account_not_imported", with(ok.clone(), json!({ "To_Account": "ghost" })), 90003),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/admin_msgwithdraw", body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{name}: {r}");
        insta::assert_json_snapshot!(format!("msgwithdraw_error_{name}"), r);
    }
    assert_eq!(roam(&s, "bob", "alice").await["MsgList"][0]["MsgFlagBits"], 0, "nothing was recalled");
}

// ---------------------------------------------------------------------------------------------------
// get_c2c_unread_msg_num
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn unread_msg_num_in_total_and_per_peer() {
    let s = server(&["alice", "bob", "carol", "dave"]).await;
    for i in 0..3 {
        send_ok(&s, msg(Some("alice"), "bob", i, i, text("from alice"))).await;
    }
    send_ok(&s, msg(Some("carol"), "bob", 9, 9, text("from carol"))).await;

    let r = s.rest("openim/get_c2c_unread_msg_num", json!({ "To_Account": "bob" })).await;
    insta::assert_json_snapshot!("unread_total", r);
    assert_eq!(r["AllC2CUnreadMsgNum"], 4);

    let r = s
        .rest(
            "openim/get_c2c_unread_msg_num",
            json!({ "To_Account": "bob", "Peer_Account": ["alice", "carol", "dave"] }),
        )
        .await;
    insta::assert_json_snapshot!("unread_per_peer", r);

    let r = s
        .rest("openim/get_c2c_unread_msg_num", json!({ "To_Account": "bob", "Peer_Account": ["alice", "ghost"] }))
        .await;
    insta::assert_json_snapshot!("unread_per_peer_unknown_peer", r);
    assert_eq!(r["ErrorCode"], 0);

    assert_eq!(unread_total(&s, "alice").await, 0);
    assert_eq!(unread_total(&s, "dave").await, 0, "an account with no conversation has 0");
}

#[tokio::test]
async fn unread_msg_num_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice", "bob"]).await;
    let eleven: Vec<String> = (0..11).map(|i| format!("peer{i}")).collect();
    let cases: Vec<(&str, Value, u32)> = vec![
        ("to_account_not_imported", json!({ "To_Account": "ghost" }), 90003),
        ("to_account_not_imported_with_peers", json!({ "To_Account": "ghost", "Peer_Account": ["alice"] }), 90003),
        ("to_account_missing", json!({}), 90003),
        ("over_10_peers", json!({ "To_Account": "bob", "Peer_Account": eleven }), 90018),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/get_c2c_unread_msg_num", body).await;
        assert_eq!(r["ErrorCode"], code, "{name}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{name}: {r}");
        insta::assert_json_snapshot!(format!("unread_error_{name}"), r);
    }
    // Exactly 10 peers is allowed.
    let ten: Vec<String> = (0..10).map(|i| format!("peer{i}")).collect();
    let r = s.rest("openim/get_c2c_unread_msg_num", json!({ "To_Account": "bob", "Peer_Account": ten })).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(r["ErrorList"].as_array().map(Vec::len), Some(10), "every unknown peer is in ErrorList: {r}");
}

// ---------------------------------------------------------------------------------------------------
// query_online_status / querystate
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn query_online_status_reports_offline_accounts_and_unknown_ones() {
    let s = server(&["alice", "bob"]).await;
    let r = s.rest("openim/query_online_status", json!({ "To_Account": ["alice", "bob"] })).await;
    insta::assert_json_snapshot!("query_online_status_known", r);
    assert!(r.get("ErrorList").is_none(), "no ErrorList when every account exists: {r}");

    let r = s.rest("openim/query_online_status", json!({ "To_Account": ["alice", "ghost", "bob"] })).await;
    insta::assert_json_snapshot!("query_online_status_unknown", r);
    assert_eq!(r["ErrorCode"], 0);

    // The legacy command answers the same.
    for body in [json!({ "To_Account": ["alice", "bob"] }), json!({ "To_Account": ["alice", "ghost", "bob"] })] {
        assert_eq!(
            s.rest("openim/querystate", body.clone()).await,
            s.rest("openim/query_online_status", body).await,
            "querystate is query_online_status"
        );
    }
}

/// With `IsNeedDetail` 1 Tencent lists an online account's platforms in `Detail`; every example of both
/// pages (1047/35477 and the querystate page, 2020 to 2025) shows an `Offline` account without `Detail`.
#[tokio::test]
async fn query_online_status_with_detail() {
    let s = server(&["alice", "bob"]).await;
    let r = s
        .rest("openim/query_online_status", json!({ "IsNeedDetail": 1, "To_Account": ["alice", "bob", "ghost"] }))
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    for item in r["QueryResult"].as_array().expect("QueryResult") {
        assert_eq!(item["Status"], "Offline", "{r}");
        assert!(item.get("Detail").is_none(), "an Offline account has no Detail: {item}");
    }
    insta::assert_json_snapshot!("query_online_status_detail", r);
    assert_eq!(
        s.rest("openim/querystate", json!({ "IsNeedDetail": 1, "To_Account": ["alice", "bob", "ghost"] })).await,
        r
    );
    // IsNeedDetail 0 is the same as absent.
    assert_eq!(
        s.rest("openim/query_online_status", json!({ "IsNeedDetail": 0, "To_Account": ["alice"] })).await,
        s.rest("openim/query_online_status", json!({ "To_Account": ["alice"] })).await,
    );
}

#[tokio::test]
async fn query_online_status_refuses_bad_requests_with_tencent_codes() {
    let s = server(&["alice"]).await;
    let too_many: Vec<String> = (0..501).map(|i| format!("user{i}")).collect();
    let cases: Vec<(&str, Value, u32)> = vec![
        ("over_500_accounts", json!({ "To_Account": too_many }), 90011),
        ("to_account_missing", json!({}), 90001),
        ("to_account_empty", json!({ "To_Account": [] }), 90001),
    ];
    for command in ["query_online_status", "querystate"] {
        for (name, body, code) in &cases {
            let r = s.rest(&format!("openim/{command}"), body.clone()).await;
            assert_eq!(r["ErrorCode"], *code, "{command} {name}: {r}");
            assert_eq!(r["ActionStatus"], "FAIL", "{command} {name}: {r}");
            if command == "query_online_status" {
                insta::assert_json_snapshot!(format!("query_online_status_error_{name}"), r);
            }
        }
    }
    // Exactly 500 is allowed.
    let five_hundred: Vec<String> = (0..500).map(|i| format!("user{i}")).collect();
    let r = s.rest("openim/query_online_status", json!({ "To_Account": five_hundred })).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

// ---------------------------------------------------------------------------------------------------
// Bodies that are not a JSON object
// ---------------------------------------------------------------------------------------------------

const OPENIM_COMMANDS: [&str; 10] = [
    "sendmsg",
    "batchsendmsg",
    "importmsg",
    "admin_getroammsg",
    "admin_msgwithdraw",
    "admin_set_msg_read",
    "c2c_msg_read_receipt",
    "get_c2c_unread_msg_num",
    "query_online_status",
    "querystate",
];

#[tokio::test]
async fn malformed_json_is_90001_with_tencents_error_info() {
    let s = server(&["alice", "bob"]).await;
    for command in OPENIM_COMMANDS {
        for body in ["{\"To_Account\": ", "not json", "{\"To_Account\": \"bob\"", "{To_Account: bob}"] {
            let r = s.rest_raw(&format!("/v4/openim/{command}?{}", s.admin_query()), body).await;
            assert_eq!(r["ErrorCode"], 90001, "{command} {body:?}: {r}");
            assert_eq!(r["ActionStatus"], "FAIL", "{command} {body:?}: {r}");
            let info = r["ErrorInfo"].as_str().unwrap_or_default();
            assert!(info.starts_with(PARSE_PREFIX), "{command} {body:?}: ErrorInfo {info:?}");
        }
    }
    let r = s.rest_raw(&format!("/v4/openim/sendmsg?{}", s.admin_query()), "{\"To_Account\": ").await;
    insta::assert_json_snapshot!("malformed_json", r);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_90001() {
    let s = server(&["alice", "bob"]).await;
    for command in OPENIM_COMMANDS {
        for body in ["[]", "[{\"To_Account\": \"bob\"}]", "\"bob\"", "42", "null"] {
            let r = s.rest_raw(&format!("/v4/openim/{command}?{}", s.admin_query()), body).await;
            assert_eq!(r["ErrorCode"], 90001, "{command} {body:?}: {r}");
            assert_eq!(r["ActionStatus"], "FAIL", "{command} {body:?}: {r}");
        }
    }
    let r = s.rest_raw(&format!("/v4/openim/sendmsg?{}", s.admin_query()), "[{\"To_Account\": \"bob\"}]").await;
    insta::assert_json_snapshot!("json_array_body", r);
}

/// The texts of `op`'s view of the conversation with `peer`, oldest first (`getroammsg`'s order).
async fn roam_texts(s: &TestServer, op: &str, peer: &str) -> Vec<String> {
    let r = roam(s, op, peer).await;
    r["MsgList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["MsgBody"][0]["MsgContent"]["Text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn modify_c2c_msg_edits_the_body_or_the_custom_data_for_both_sides() {
    let s = server(&["alice", "bob", "carol"]).await;
    let key = send_ok(&s, with(msg(Some("alice"), "bob", 1, 1, text("teh typo")), json!({"CloudCustomData": "v0"})))
        .await["MsgKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let edit = |extra: Value| with(json!({"From_Account": "alice", "To_Account": "bob", "MsgKey": key}), extra);

    // Tencent's shape: the body only; an unset CloudCustomData sent as "" keeps the stored one.
    let r = s.rest("openim/modify_c2c_msg", edit(json!({"MsgBody": text("the typo"), "CloudCustomData": ""}))).await;
    assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("OK"), Some(0)), "{r}");
    for side in [("alice", "bob"), ("bob", "alice")] {
        assert_eq!(roam_texts(&s, side.0, side.1).await, ["the typo"], "{side:?}");
        assert_eq!(roam(&s, side.0, side.1).await["MsgList"][0]["CloudCustomData"], "v0");
    }
    // The custom data only: the body stays.
    let r = s.rest("openim/modify_c2c_msg", edit(json!({"CloudCustomData": "v1"}))).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let m = roam(&s, "bob", "alice").await["MsgList"][0].clone();
    assert_eq!(
        (m["MsgBody"][0]["MsgContent"]["Text"].as_str(), m["CloudCustomData"].as_str()),
        (Some("the typo"), Some("v1"))
    );
    // Both sides' devices hear of it through their sync logs.
    for user in ["alice", "bob"] {
        let mut ws = duet_test_support::WsClient::login(&s, user).await;
        let synced = ws.request(json!({"op": "sync", "after": 0})).await;
        let edits: Vec<&Value> =
            synced["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "modified").collect();
        assert_eq!(edits.len(), 2, "{user}: {synced}");
        assert_eq!(edits[1]["msg"]["version"], 2, "{user}: {synced}");
        assert_eq!(edits[1]["msg"]["cloud_custom_data"], "v1");
    }

    let cases = [
        ("nothing to change", edit(json!({})), 90001),
        ("only empty custom data", edit(json!({"CloudCustomData": ""})), 90001),
        ("no sender", json!({"To_Account": "bob", "MsgKey": key, "MsgBody": text("x")}), 90008),
        ("no recipient", json!({"From_Account": "alice", "MsgKey": key, "MsgBody": text("x")}), 90003),
        ("no key", json!({"From_Account": "alice", "To_Account": "bob", "MsgBody": text("x")}), 90054),
        ("a malformed key", edit(json!({"MsgKey": "nope", "MsgBody": text("x")})), 90054),
        ("a body that is not an array", edit(json!({"MsgBody": {"MsgType": "TIMTextElem"}})), 90007),
        ("an unknown sender", edit(json!({"From_Account": "nobody", "MsgBody": text("x")})), 90008),
        ("another conversation", edit(json!({"To_Account": "carol", "MsgBody": text("x")})), 20022),
        (
            "the other direction",
            edit(json!({"From_Account": "bob", "To_Account": "alice", "MsgBody": text("x")})),
            20022,
        ),
        ("too long", edit(json!({"MsgBody": text(&"x".repeat(13_000))})), 93000),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/modify_c2c_msg", body).await;
        assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("FAIL"), Some(code)), "{name}: {r}");
    }
    // A recalled message is not edited.
    let r =
        s.rest("openim/admin_msgwithdraw", json!({"From_Account": "alice", "To_Account": "bob", "MsgKey": key})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = s.rest("openim/modify_c2c_msg", edit(json!({"MsgBody": text("again")}))).await;
    assert_eq!(r["ErrorCode"], 20023, "{r}");
}

#[tokio::test]
async fn delete_c2c_msg_ramble_deletes_from_the_operators_side_only() {
    let s = server(&["alice", "bob"]).await;
    let mut keys = Vec::new();
    for n in 1..=3 {
        let r = send_ok(&s, msg(Some("alice"), "bob", n, n, text(&format!("m{n}")))).await;
        keys.push(r["MsgKey"].as_str().unwrap().to_owned());
    }
    assert_eq!(unread_from(&s, "bob", "alice").await, 3);
    let body = |keys: Vec<String>| json!({"Operator_Account": "bob", "Peer_Account": "alice", "MsgKeyList": keys});

    let r = s.rest("openim/delete_c2c_msg_ramble", body(vec![keys[2].clone(), "1_2_3".into()])).await;
    assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("OK"), Some(0)), "{r}");
    assert_eq!(r["InvalidMsgKeyList"], json!(["1_2_3"]), "a key that names no message of bob's: {r}");
    assert_eq!(roam_texts(&s, "bob", "alice").await, ["m1", "m2"]);
    assert_eq!(roam_texts(&s, "alice", "bob").await, ["m1", "m2", "m3"], "the peer keeps it");
    assert_eq!(unread_from(&s, "bob", "alice").await, 2, "a deleted unread message no longer counts");
    // Deleted already: invalid now. bob's devices hear of it; alice's do not.
    let r = s.rest("openim/delete_c2c_msg_ramble", body(vec![keys[2].clone()])).await;
    assert_eq!(r["InvalidMsgKeyList"], json!([keys[2]]), "{r}");
    let mut ws = duet_test_support::WsClient::login(&s, "bob").await;
    let synced = ws.request(json!({"op": "sync", "after": 3})).await;
    assert_eq!(synced["entries"], json!([{"kind": "deleted", "seq": 4, "peer": "alice", "msg_key": keys[2]}]));
    let mut ws = duet_test_support::WsClient::login(&s, "alice").await;
    let synced = ws.request(json!({"op": "sync", "after": 3})).await;
    assert_eq!(synced["entries"], json!([]), "{synced}");

    let cases = [
        ("no operator", json!({"Peer_Account": "alice", "MsgKeyList": [keys[0]]}), 90008),
        (
            "an unknown operator",
            json!({"Operator_Account": "nobody", "Peer_Account": "alice", "MsgKeyList": [keys[0]]}),
            90008,
        ),
        ("no peer", json!({"Operator_Account": "bob", "MsgKeyList": [keys[0]]}), 90003),
        ("no keys", json!({"Operator_Account": "bob", "Peer_Account": "alice"}), 90001),
        ("an empty list", body(vec![]), 90001),
        ("a malformed key", body(vec!["nope".into()]), 90054),
        ("more than 30", body((0..31).map(|n| format!("{n}_1_1")).collect()), 90001),
    ];
    for (name, body, code) in cases {
        let r = s.rest("openim/delete_c2c_msg_ramble", body).await;
        assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("FAIL"), Some(code)), "{name}: {r}");
    }
    assert_eq!(roam_texts(&s, "bob", "alice").await, ["m1", "m2"], "failed calls deleted nothing");
}

#[tokio::test]
async fn mark_contact_sets_and_clears_marks_and_the_custom_mark_per_item() {
    let s = server(&["alice", "bob", "carol"]).await;
    send_ok(&s, msg(Some("bob"), "alice", 1, 1, text("hi"))).await;
    let contact = |to: &str| json!({"Type": 1, "To_Account": to});
    let body = json!({"From_Account": "alice", "MarkItem": [
        {"OptType": 3, "ContactItem": contact("bob"), "SetMark": [0, 3, 40], "CustomMark": "abcd"},
        {"OptType": 1, "ContactItem": contact("nobody"), "SetMark": [1]},
        {"OptType": 1, "ContactItem": {"Type": 2, "ToGroupId": "g1"}, "SetMark": [1]},
        {"OptType": 1, "ContactItem": contact("carol"), "SetMark": [64]},
    ]});
    let r = s.rest("recentcontact/mark_contact", body).await;
    assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("OK"), Some(0)), "{r}");
    let codes: Vec<u64> =
        r["ResultItem"].as_array().unwrap().iter().map(|i| i["ResultCode"].as_u64().unwrap()).collect();
    assert_eq!(codes, [0, 50001, 50002, 50002], "{r}");
    assert_eq!(r["ResultItem"][0]["ContactItem"], contact("bob"), "each result names its conversation: {r}");
    // Clear one standard mark; the custom mark stays when OptType leaves it out.
    let body = json!({"From_Account": "alice", "MarkItem": [
        {"OptType": 1, "ContactItem": contact("bob"), "ClearMark": [3], "CustomMark": "ignored"}
    ]});
    assert_eq!(s.rest("recentcontact/mark_contact", body).await["ResultItem"][0]["ResultCode"], 0);
    // alice's devices hear of both changes, as the settings are now.
    let mut ws = duet_test_support::WsClient::login(&s, "alice").await;
    let synced = ws.request(json!({"op": "sync", "after": 1})).await;
    let settings: Vec<&Value> = synced["entries"].as_array().unwrap().iter().map(|e| &e["settings"]).collect();
    let expected_marks = 1u64 | 1 << 40;
    assert_eq!(settings.last().unwrap()["marks"], expected_marks, "{synced}");
    assert_eq!(settings.last().unwrap()["custom_data"], "abcd", "{synced}");
    let listed = ws.request(json!({"op": "conversations"})).await;
    assert_eq!(listed["items"][0]["settings"], json!({"marks": expected_marks, "custom_data": "abcd"}), "{listed}");

    let cases = [
        ("no account", json!({"MarkItem": [{"OptType": 1, "ContactItem": contact("bob")}]}), 50002),
        (
            "an unknown account",
            json!({"From_Account": "nobody", "MarkItem": [{"OptType": 1, "ContactItem": contact("bob")}]}),
            50001,
        ),
        ("no items", json!({"From_Account": "alice"}), 50002),
        (
            "too many items",
            json!({"From_Account": "alice", "MarkItem": vec![json!({"OptType": 1, "ContactItem": contact("bob")}); 101]}),
            50002,
        ),
        (
            "an item without OptType",
            json!({"From_Account": "alice", "MarkItem": [{"ContactItem": contact("bob")}]}),
            50002,
        ),
    ];
    for (name, body, code) in cases {
        let r = s.rest("recentcontact/mark_contact", body).await;
        assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("FAIL"), Some(code)), "{name}: {r}");
    }
}

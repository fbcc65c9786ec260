//! Real clients send `""` for the optional fields they leave unset (a struct serialized without
//! `omitempty`, a form's empty input), and Tencent accepts it. One test per REST request type sends its
//! optional fields as `""` and checks, through the front door, that the effect is that of leaving them out:
//! the friend is added, the message is stored and readable, the profile keeps its nickname.
//!
//! The fields where `""` is a value keep it: a profile or friend-field value set to `""` clears that field,
//! `CloudCustomData: ""` is empty content, `LastMsgKey: ""` asks for the first page. A required field sent
//! as `""` keeps the error code it had before (the last test). Request types without optional fields
//! (`account_delete`, `account_check`, `kick`, `portrait_get`, `admin_msgwithdraw`, `friend_check`,
//! `friend_get_list`, `black_list_add`, `black_list_delete`, `black_list_check`) are covered there.

use duet_test_support::{ADMIN, T0_MS, TestServer, text};
use serde_json::{Value, json};

const T0: i64 = T0_MS / 1000;
const FAR_FUTURE: i64 = 4_000_000_000;
const SOURCE: &str = "AddSource_Type_XXX";

async fn server(users: &[&str]) -> TestServer {
    let s = TestServer::spawn().await;
    s.import(users).await;
    s
}

async fn ok(s: &TestServer, path: &str, body: Value) -> Value {
    let r = s.rest(path, body.clone()).await;
    assert_eq!(r["ErrorCode"], 0, "{path} {body}: {r}");
    r
}

/// `user`'s values of `tags`, in order.
async fn profile(s: &TestServer, user: &str, tags: &[&str]) -> Vec<Value> {
    let r = ok(s, "profile/portrait_get", json!({"To_Account": [user], "TagList": tags})).await;
    r["UserProfileItem"][0]["ProfileItem"].as_array().unwrap().iter().map(|i| i["Value"].clone()).collect()
}

/// `op`'s whole view of the conversation with `peer`.
async fn roam(s: &TestServer, op: &str, peer: &str) -> Vec<Value> {
    let body =
        json!({"Operator_Account": op, "Peer_Account": peer, "MaxCnt": 100, "MinTime": 0, "MaxTime": FAR_FUTURE});
    let r = ok(s, "openim/admin_getroammsg", body).await;
    r["MsgList"].as_array().unwrap().clone()
}

async fn unread_total(s: &TestServer, to: &str) -> Value {
    ok(s, "openim/get_c2c_unread_msg_num", json!({"To_Account": to})).await["AllC2CUnreadMsgNum"].clone()
}

/// `user`'s friends, each with its `ValueItem` as a tag → value object.
async fn friends(s: &TestServer, user: &str) -> Value {
    let r = ok(s, "sns/friend_get", json!({"From_Account": user, "StartIndex": 0})).await;
    let mut out = serde_json::Map::new();
    for item in r["UserDataItem"].as_array().unwrap() {
        let values = item["ValueItem"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["Tag"].as_str().unwrap().to_owned(), v["Value"].clone()));
        out.insert(item["To_Account"].as_str().unwrap().to_owned(), Value::Object(values.collect()));
    }
    Value::Object(out)
}

async fn relation(s: &TestServer, from: &str, to: &str) -> Value {
    let body = json!({"From_Account": from, "To_Account": [to], "CheckType": "CheckResult_Type_Both"});
    ok(s, "sns/friend_check", body).await["InfoItem"][0]["Relation"].clone()
}

/// The optional fields `sendmsg` and `batchsendmsg` share, all sent as `""`, `OfflinePushInfo`'s too.
fn unset_send_fields(mut body: Value) -> Value {
    let unset = json!({
        "From_Account": "", "SyncOtherMachine": "", "MsgLifeTime": "", "MsgSeq": "", "OnlineOnlyFlag": "",
        "MsgTimeStamp": "", "CloudCustomData": "", "SendMsgControl": "", "ForbidCallbackControl": "",
        "SupportMessageExtension": "", "IsNeedReadReceipt": "",
        "OfflinePushInfo": {
            "PushFlag": "", "Title": "", "Desc": "", "Ext": "",
            "AndroidInfo": {"Sound": "", "HuaWeiChannelID": "", "XiaoMiChannelID": "", "OPPOChannelID": "",
                            "GoogleChannelID": "", "VIVOClassification": "", "HuaWeiImportance": ""},
            "ApnsInfo": {"Sound": "", "BadgeMode": "", "Title": "", "SubTitle": "", "Image": "", "MutableContent": ""}
        }
    });
    body.as_object_mut().unwrap().extend(unset.as_object().unwrap().clone());
    body
}

// ---------------------------------------------------------------------------------------------------------
// Accounts and profiles

#[tokio::test]
async fn account_import_and_multiaccount_import_leave_nick_and_face_url_alone_when_empty() {
    let s = server(&[]).await;
    let tags = ["Tag_Profile_IM_Nick", "Tag_Profile_IM_Image"];
    ok(
        &s,
        "im_open_login_svc/account_import",
        json!({"UserID": "alice", "Nick": "Alice", "FaceUrl": "http://a/alice.png"}),
    )
    .await;
    ok(&s, "im_open_login_svc/account_import", json!({"UserID": "alice", "Nick": "", "FaceUrl": ""})).await;
    assert_eq!(profile(&s, "alice", &tags).await, ["Alice", "http://a/alice.png"], "\"\" is no new nickname");

    let r = ok(
        &s,
        "im_open_login_svc/multiaccount_import",
        json!({"AccountList": [{"UserID": "alice", "Nick": "", "FaceUrl": ""}, {"UserID": "bob", "Nick": "", "FaceUrl": ""}]}),
    )
    .await;
    assert_eq!(r["FailAccounts"], json!([]), "{r}");
    assert_eq!(profile(&s, "alice", &tags).await, ["Alice", "http://a/alice.png"]);
    assert_eq!(profile(&s, "bob", &tags).await, ["", ""], "bob was imported without a profile");
}

#[tokio::test]
async fn portrait_set_with_an_empty_value_clears_a_text_tag() {
    let s = server(&["alice"]).await;
    let tags = ["Tag_Profile_IM_Nick", "Tag_Profile_IM_SelfSignature", "Tag_Profile_Custom_Mood"];
    let set = |values: [&str; 3]| {
        let items: Vec<Value> = tags.iter().zip(values).map(|(t, v)| json!({"Tag": t, "Value": v})).collect();
        json!({"From_Account": "alice", "ProfileItem": items})
    };
    ok(&s, "profile/portrait_set", set(["Alice", "hi", "happy"])).await;
    assert_eq!(profile(&s, "alice", &tags).await, ["Alice", "hi", "happy"]);
    // The value is what is set, so "" is a value here: it clears the field.
    ok(&s, "profile/portrait_set", set(["", "", ""])).await;
    assert_eq!(profile(&s, "alice", &tags).await, ["", "", ""]);
}

// ---------------------------------------------------------------------------------------------------------
// Messages

#[tokio::test]
async fn sendmsg_with_optional_fields_empty_is_an_ordinary_send_by_the_admin() {
    let s = server(&["alice", "bob"]).await;
    let body = unset_send_fields(json!({"To_Account": "bob", "MsgRandom": 7, "MsgBody": text("from the admin")}));
    let r = ok(&s, "openim/sendmsg", body).await;
    assert_eq!(r["MsgTime"], T0, "{r}");

    // From_Account "" = the admin; SyncOtherMachine "" = kept in the sender's history; MsgLifeTime "" and
    // OnlineOnlyFlag "" = stored for 7 days; SendMsgControl "" = counted as unread.
    let seen_by_bob = roam(&s, "bob", ADMIN).await;
    assert_eq!(seen_by_bob.len(), 1, "{seen_by_bob:?}");
    let m = &seen_by_bob[0];
    assert_eq!(
        (&m["From_Account"], &m["To_Account"], &m["MsgBody"]),
        (&json!(ADMIN), &json!("bob"), &text("from the admin"))
    );
    assert_eq!(m["CloudCustomData"], "");
    assert_eq!(m["MsgKey"], r["MsgKey"]);
    assert_eq!(roam(&s, ADMIN, "bob").await.len(), 1, "the sender's history has it");
    assert_eq!(unread_total(&s, "bob").await, 1);

    // An OfflinePushInfo left unset as "" is no push information at all.
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 8, "MsgBody": text("hi"), "OfflinePushInfo": ""});
    ok(&s, "openim/sendmsg", body).await;
    assert_eq!(roam(&s, "bob", "alice").await[0]["MsgBody"], text("hi"));
    assert_eq!(unread_total(&s, "bob").await, 2);
}

#[tokio::test]
async fn message_elements_read_empty_optional_numbers_as_their_defaults() {
    let s = server(&["alice", "bob"]).await;
    let body = json!([
        {"MsgType": "TIMImageElem", "MsgContent": {"UUID": "", "ImageFormat": "", "ImageInfoArray": [
            {"Type": 1, "Size": "", "Width": 10, "Height": 20, "URL": "https://example.com/i.jpg"}]}},
        {"MsgType": "TIMSoundElem", "MsgContent": {"Url": "https://example.com/s.mp3", "UUID": "", "Size": 5, "Second": 1, "Download_Flag": ""}},
        {"MsgType": "TIMFileElem", "MsgContent": {"Url": "https://example.com/f.bin", "UUID": "", "FileSize": 9, "FileName": "", "Download_Flag": ""}},
        {"MsgType": "TIMVideoFileElem", "MsgContent": {"VideoUrl": "https://example.com/v.mp4", "VideoUUID": "", "VideoSize": 3,
            "VideoSecond": 2, "VideoFormat": "", "VideoDownloadFlag": "", "ThumbUrl": "", "ThumbUUID": "", "ThumbSize": "",
            "ThumbWidth": "", "ThumbHeight": "", "ThumbFormat": "", "ThumbDownloadFlag": ""}},
        {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "", "Desc": "", "Ext": "", "Sound": ""}},
    ]);
    ok(&s, "openim/sendmsg", json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": body}))
        .await;
    let stored = roam(&s, "bob", "alice").await;
    assert_eq!(
        stored[0]["MsgBody"],
        json!([
            {"MsgType": "TIMImageElem", "MsgContent": {"UUID": "", "ImageFormat": 255, "ImageInfoArray": [
                {"Type": 1, "Size": 0, "Width": 10, "Height": 20, "URL": "https://example.com/i.jpg"}]}},
            {"MsgType": "TIMSoundElem", "MsgContent": {"Url": "https://example.com/s.mp3", "UUID": "", "Size": 5, "Second": 1, "Download_Flag": 2}},
            {"MsgType": "TIMFileElem", "MsgContent": {"Url": "https://example.com/f.bin", "UUID": "", "FileSize": 9, "FileName": "", "Download_Flag": 2}},
            {"MsgType": "TIMVideoFileElem", "MsgContent": {"VideoUrl": "https://example.com/v.mp4", "VideoUUID": "", "VideoSize": 3,
                "VideoSecond": 2, "VideoFormat": "", "VideoDownloadFlag": 2, "ThumbUrl": "", "ThumbUUID": "", "ThumbSize": 0,
                "ThumbWidth": 0, "ThumbHeight": 0, "ThumbFormat": "", "ThumbDownloadFlag": 2}},
            {"MsgType": "TIMCustomElem", "MsgContent": {"Data": "", "Desc": "", "Ext": "", "Sound": ""}},
        ])
    );
}

#[tokio::test]
async fn batchsendmsg_with_optional_fields_empty_reaches_every_recipient() {
    let s = server(&["bob", "carol"]).await;
    let body = unset_send_fields(json!({"To_Account": ["bob", "carol"], "MsgRandom": 9, "MsgBody": text("to all")}));
    let r = ok(&s, "openim/batchsendmsg", body).await;
    assert_eq!(r["ActionStatus"], "OK", "{r}");
    for to in ["bob", "carol"] {
        let seen = roam(&s, to, ADMIN).await;
        assert_eq!(seen.len(), 1, "{to}: {seen:?}");
        assert_eq!(
            (&seen[0]["From_Account"], &seen[0]["MsgBody"], &seen[0]["MsgKey"]),
            (&json!(ADMIN), &text("to all"), &r["MsgKey"])
        );
        assert_eq!(unread_total(&s, to).await, 1, "{to}");
    }
}

#[tokio::test]
async fn importmsg_with_msg_seq_and_cloud_custom_data_empty_is_stored_at_its_time() {
    let s = server(&["alice", "bob"]).await;
    let body = json!({"SyncFromOldSystem": 2, "From_Account": "alice", "To_Account": "bob", "MsgSeq": "", "MsgRandom": 3,
                      "MsgTimeStamp": T0 - 60, "MsgBody": text("old"), "CloudCustomData": ""});
    ok(&s, "openim/importmsg", body).await;
    let seen = roam(&s, "bob", "alice").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (&seen[0]["MsgTimeStamp"], &seen[0]["MsgBody"], &seen[0]["CloudCustomData"]),
        (&json!(T0 - 60), &text("old"), &json!(""))
    );
    assert_eq!(seen[0]["MsgRandom"], 3);
}

#[tokio::test]
async fn admin_getroammsg_reads_an_empty_last_msg_key_as_the_first_page_and_an_empty_name_as_unset() {
    let s = server(&["alice", "bob"]).await;
    for i in 1..=3 {
        ok(
            &s,
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": i, "MsgBody": text("m")}),
        )
        .await;
    }
    let body = json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 2, "MinTime": 0, "MaxTime": FAR_FUTURE, "LastMsgKey": ""});
    let r = ok(&s, "openim/admin_getroammsg", body).await;
    assert_eq!((&r["MsgCnt"], &r["Complete"]), (&json!(2), &json!(0)), "{r}");
    // A client that fills both request shapes, leaving one empty, means the other one.
    let body = json!({"Operator_Account": "", "Peer_Account": "", "From_Account": "bob", "To_Account": "alice",
                      "MaxCnt": 10, "MinTime": 0, "MaxTime": FAR_FUTURE, "LastMsgKey": ""});
    let r = ok(&s, "openim/admin_getroammsg", body).await;
    assert_eq!((&r["MsgCnt"], &r["Complete"]), (&json!(3), &json!(1)), "{r}");
}

#[tokio::test]
async fn admin_set_msg_read_with_an_empty_read_time_reads_up_to_now() {
    let s = server(&["alice", "bob"]).await;
    ok(
        &s,
        "openim/sendmsg",
        json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("m")}),
    )
    .await;
    assert_eq!(unread_total(&s, "bob").await, 1);
    ok(&s, "openim/admin_set_msg_read", json!({"Report_Account": "bob", "Peer_Account": "alice", "MsgReadTime": ""}))
        .await;
    assert_eq!(unread_total(&s, "bob").await, 0);
}

#[tokio::test]
async fn get_c2c_unread_msg_num_with_an_empty_peer_list_answers_the_total() {
    let s = server(&["alice", "bob"]).await;
    ok(
        &s,
        "openim/sendmsg",
        json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("m")}),
    )
    .await;
    let r = ok(&s, "openim/get_c2c_unread_msg_num", json!({"To_Account": "bob", "Peer_Account": ""})).await;
    assert_eq!(r["AllC2CUnreadMsgNum"], 1, "{r}");
}

#[tokio::test]
async fn query_online_status_with_an_empty_detail_flag_answers_without_detail() {
    let s = server(&["alice"]).await;
    let r = ok(
        &s,
        "openim/query_online_status",
        json!({"To_Account": ["alice"], "IsNeedDetail": "", "IsReturnInstid": ""}),
    )
    .await;
    assert_eq!(r["QueryResult"], json!([{"To_Account": "alice", "Status": "Offline", "State": "Offline"}]), "{r}");
}

// ---------------------------------------------------------------------------------------------------------
// Conversations

#[tokio::test]
async fn recentcontact_get_list_and_delete_read_empty_numbers_as_unset() {
    let s = server(&["alice", "bob", "carol"]).await;
    ok(
        &s,
        "openim/sendmsg",
        json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("a")}),
    )
    .await;
    s.clock.advance_secs(1);
    ok(
        &s,
        "openim/sendmsg",
        json!({"From_Account": "carol", "To_Account": "bob", "MsgRandom": 2, "MsgBody": text("c")}),
    )
    .await;
    let list = json!({"From_Account": "bob", "TimeStamp": "", "StartIndex": "", "TopTimeStamp": "", "TopStartIndex": "", "AssistFlags": ""});
    let r = ok(&s, "recentcontact/get_list", list.clone()).await;
    let peers: Vec<&Value> = r["SessionItem"].as_array().unwrap().iter().map(|i| &i["To_Account"]).collect();
    assert_eq!(peers, ["carol", "alice"], "{r}");

    // ClearRamble "" is 0: the conversation goes, its history stays.
    let body = json!({"From_Account": "bob", "Type": 1, "To_Account": "carol", "ToGroupid": "", "ClearRamble": ""});
    ok(&s, "recentcontact/delete", body).await;
    let r = ok(&s, "recentcontact/get_list", list).await;
    assert_eq!(r["SessionItem"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["SessionItem"][0]["To_Account"], "alice", "{r}");
    assert_eq!(roam(&s, "bob", "carol").await.len(), 1, "the history was not cleared");
}

// ---------------------------------------------------------------------------------------------------------
// Relationship chain

#[tokio::test]
async fn friend_add_with_empty_remark_group_and_wording_adds_the_friend() {
    let s = server(&["alice", "bob", "carol"]).await;
    // What a popular client sends by default.
    let body = json!({"From_Account": "alice", "ForceAddFlags": 1, "AddFriendItem": [
        {"To_Account": "bob", "Remark": "", "GroupName": "", "AddSource": SOURCE, "AddWording": ""}]});
    let r = ok(&s, "sns/friend_add", body).await;
    assert_eq!(r["ResultItem"], json!([{"To_Account": "bob", "ResultCode": 0, "ResultInfo": ""}]), "{r}");
    assert_eq!(relation(&s, "alice", "bob").await, "CheckResult_Type_BothWay");
    assert_eq!(friends(&s, "alice").await["bob"], json!({"Tag_SNS_IM_AddSource": SOURCE, "Tag_SNS_IM_AddTime": T0}));

    // AddType "" is Add_Type_Both; ForceAddFlags "" is a normal add, which carol's AllowAny lets through.
    s.set_profile("carol", "Tag_Profile_IM_AllowType", json!("AllowType_Type_AllowAny")).await;
    let body = json!({"From_Account": "alice", "AddType": "", "ForceAddFlags": "", "AddFriendItem": [
        {"To_Account": "carol", "Remark": "", "GroupName": "", "AddSource": SOURCE, "AddWording": ""}]});
    let r = ok(&s, "sns/friend_add", body).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    assert_eq!(relation(&s, "alice", "carol").await, "CheckResult_Type_BothWay");
}

#[tokio::test]
async fn friend_import_with_empty_optional_fields_imports_the_friend_now() {
    let s = server(&["alice", "bob"]).await;
    let body = json!({"From_Account": "alice", "AddFriendItem": [
        {"To_Account": "bob", "Remark": "", "RemarkTime": "", "GroupName": "", "AddSource": SOURCE, "AddWording": "",
         "AddTime": "", "CustomItem": ""}]});
    let r = ok(&s, "sns/friend_import", body).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    assert_eq!(relation(&s, "alice", "bob").await, "CheckResult_Type_AWithB");
    assert_eq!(friends(&s, "alice").await["bob"], json!({"Tag_SNS_IM_AddSource": SOURCE, "Tag_SNS_IM_AddTime": T0}));
}

#[tokio::test]
async fn friend_update_with_empty_values_clears_the_remark_the_groups_and_a_custom_tag() {
    let s = server(&["alice", "bob"]).await;
    let body = json!({"From_Account": "alice", "AddFriendItem": [
        {"To_Account": "bob", "Remark": "B", "GroupName": ["Work"], "AddSource": SOURCE, "AddTime": T0,
         "CustomItem": [{"Tag": "Tag_SNS_Custom_Note", "Value": "n"}]}]});
    ok(&s, "sns/friend_import", body).await;
    let update = |remark: Value, group: Value, note: Value| {
        json!({"From_Account": "alice", "UpdateItem": [{"To_Account": "bob", "SnsItem": [
            {"Tag": "Tag_SNS_IM_Remark", "Value": remark}, {"Tag": "Tag_SNS_IM_Group", "Value": group},
            {"Tag": "Tag_SNS_Custom_Note", "Value": note}]}]})
    };
    let r = ok(&s, "sns/friend_update", update(json!(""), json!(""), json!(""))).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    // An empty remark and no groups are left out of the answer, as Tencent does.
    assert_eq!(
        friends(&s, "alice").await["bob"],
        json!({"Tag_SNS_IM_AddSource": SOURCE, "Tag_SNS_IM_AddTime": T0, "Tag_SNS_Custom_Note": ""})
    );
}

#[tokio::test]
async fn friend_delete_and_friend_delete_all_with_an_empty_delete_type_delete_one_way() {
    let s = server(&["alice", "bob", "carol"]).await;
    let add = json!({"From_Account": "alice", "ForceAddFlags": 1, "AddFriendItem": [
        {"To_Account": "bob", "AddSource": SOURCE}, {"To_Account": "carol", "AddSource": SOURCE}]});
    ok(&s, "sns/friend_add", add).await;
    let r =
        ok(&s, "sns/friend_delete", json!({"From_Account": "alice", "To_Account": ["bob"], "DeleteType": ""})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    assert_eq!(relation(&s, "alice", "bob").await, "CheckResult_Type_BWithA");
    ok(&s, "sns/friend_delete_all", json!({"From_Account": "alice", "DeleteType": ""})).await;
    assert_eq!(relation(&s, "alice", "carol").await, "CheckResult_Type_BWithA");
}

#[tokio::test]
async fn friend_get_and_black_list_get_read_empty_sequences_as_unset() {
    let s = server(&["alice", "bob", "carol"]).await;
    ok(&s, "sns/friend_add", json!({"From_Account": "alice", "ForceAddFlags": 1, "AddFriendItem": [{"To_Account": "bob", "AddSource": SOURCE}]}))
        .await;
    ok(&s, "sns/black_list_add", json!({"From_Account": "alice", "To_Account": ["carol"]})).await;
    let body = json!({"From_Account": "alice", "StartIndex": 0, "StandardSequence": "", "CustomSequence": ""});
    let r = ok(&s, "sns/friend_get", body).await;
    assert_eq!((&r["FriendNum"], &r["UserDataItem"][0]["To_Account"]), (&json!(1), &json!("bob")), "{r}");
    let body = json!({"From_Account": "alice", "StartIndex": 0, "MaxLimited": 10, "LastSequence": ""});
    let r = ok(&s, "sns/black_list_get", body).await;
    assert_eq!(r["BlackListItem"], json!([{"To_Account": "carol", "AddBlackTimeStamp": T0}]), "{r}");
}

// ---------------------------------------------------------------------------------------------------------
// Required fields

#[tokio::test]
async fn a_required_field_sent_empty_keeps_its_error_code_and_changes_nothing() {
    let s = server(&["alice", "bob"]).await;
    let send = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("m")});
    let with = |base: &Value, field: &str| {
        let mut b = base.clone();
        b[field] = json!("");
        b
    };
    let import = json!({"SyncFromOldSystem": 2, "From_Account": "alice", "To_Account": "bob", "MsgRandom": 1,
                        "MsgTimeStamp": T0, "MsgBody": text("m")});
    let roam =
        json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 1, "MinTime": 0, "MaxTime": FAR_FUTURE});
    let withdraw = json!({"From_Account": "alice", "To_Account": "bob", "MsgKey": "1_1_1700000000"});
    let add = |item: Value| json!({"From_Account": "alice", "AddFriendItem": [item]});
    let cases: Vec<(&str, Value, u32)> = vec![
        ("im_open_login_svc/account_import", json!({"UserID": "", "Nick": "x"}), 70402),
        ("im_open_login_svc/multiaccount_import", json!({"Accounts": ""}), 70402),
        ("im_open_login_svc/account_delete", json!({"DeleteItem": [{"UserID": ""}]}), 70402),
        ("im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": ""}]}), 70402),
        ("im_open_login_svc/kick", json!({"UserID": ""}), 70402),
        (
            "profile/portrait_set",
            json!({"From_Account": "", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "x"}]}),
            40001,
        ),
        ("profile/portrait_set", json!({"From_Account": "alice", "ProfileItem": [{"Tag": "", "Value": "x"}]}), 40009),
        // "" is no integer and none of the fixed choices: these values are refused, not reset.
        (
            "profile/portrait_set",
            json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_BirthDay", "Value": ""}]}),
            40610,
        ),
        (
            "profile/portrait_set",
            json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_AllowType", "Value": ""}]}),
            40605,
        ),
        ("profile/portrait_get", json!({"To_Account": "", "TagList": ["Tag_Profile_IM_Nick"]}), 40001),
        ("openim/sendmsg", with(&send, "To_Account"), 90003),
        ("openim/sendmsg", with(&send, "MsgRandom"), 90005),
        ("openim/sendmsg", with(&send, "MsgBody"), 90007),
        ("openim/batchsendmsg", with(&send, "To_Account"), 90003),
        ("openim/importmsg", with(&import, "SyncFromOldSystem"), 90030),
        ("openim/importmsg", with(&import, "From_Account"), 90008),
        ("openim/importmsg", with(&import, "To_Account"), 90003),
        ("openim/importmsg", with(&import, "MsgRandom"), 90005),
        ("openim/importmsg", with(&import, "MsgTimeStamp"), 90006),
        ("openim/admin_getroammsg", with(&roam, "Operator_Account"), 90008),
        ("openim/admin_getroammsg", with(&roam, "Peer_Account"), 90003),
        ("openim/admin_getroammsg", with(&roam, "MaxCnt"), 90001),
        ("openim/admin_getroammsg", with(&roam, "MinTime"), 90001),
        ("openim/admin_msgwithdraw", with(&withdraw, "From_Account"), 90008),
        ("openim/admin_msgwithdraw", with(&withdraw, "To_Account"), 90003),
        ("openim/admin_msgwithdraw", with(&withdraw, "MsgKey"), 90054),
        ("openim/admin_set_msg_read", json!({"Report_Account": "", "Peer_Account": "alice"}), 90008),
        ("openim/get_c2c_unread_msg_num", json!({"To_Account": ""}), 90003),
        ("openim/query_online_status", json!({"To_Account": ""}), 90001),
        ("recentcontact/get_list", json!({"From_Account": ""}), 50002),
        ("recentcontact/delete", json!({"From_Account": "bob", "Type": "", "To_Account": "alice"}), 50002),
        ("recentcontact/delete", json!({"From_Account": "bob", "Type": 1, "To_Account": ""}), 50002),
        ("sns/friend_add", add(json!({"To_Account": "", "AddSource": SOURCE})), 30001),
        ("sns/friend_add", add(json!({"To_Account": "bob", "AddSource": ""})), 30001),
        ("sns/friend_import", add(json!({"To_Account": "bob", "AddSource": ""})), 30001),
        (
            "sns/friend_import",
            add(json!({"To_Account": "bob", "AddSource": SOURCE, "CustomItem": [{"Tag": "", "Value": "x"}]})),
            30001,
        ),
        (
            "sns/friend_update",
            json!({"From_Account": "alice", "UpdateItem": [{"To_Account": "bob", "SnsItem": [{"Tag": "", "Value": "x"}]}]}),
            30001,
        ),
        ("sns/friend_delete", json!({"From_Account": "", "To_Account": ["bob"]}), 30001),
        ("sns/friend_check", json!({"From_Account": "alice", "To_Account": ["bob"], "CheckType": ""}), 30001),
        ("sns/friend_get", json!({"From_Account": "alice", "StartIndex": ""}), 30001),
        (
            "sns/friend_get_list",
            json!({"From_Account": "alice", "To_Account": [""], "TagList": ["Tag_SNS_IM_Remark"]}),
            30001,
        ),
        ("sns/black_list_add", json!({"From_Account": "alice", "To_Account": ""}), 30001),
        ("sns/black_list_delete", json!({"From_Account": "alice", "To_Account": [""]}), 30001),
        ("sns/black_list_get", json!({"From_Account": "alice", "StartIndex": 0, "MaxLimited": ""}), 30001),
        ("sns/black_list_check", json!({"From_Account": "alice", "To_Account": ["bob"], "CheckType": ""}), 30001),
    ];
    for (path, body, code) in cases {
        let r = s.rest(path, body.clone()).await;
        assert_eq!(r["ErrorCode"], code, "{path} {body}: {r}");
        assert_eq!(r["ActionStatus"], "FAIL", "{path} {body}: {r}");
    }
    assert!(roam_is_empty(&s).await, "no refused send or import stored anything");
    assert_eq!(relation(&s, "alice", "bob").await, "CheckResult_Type_NoRelation");
    assert_eq!(profile(&s, "alice", &["Tag_Profile_IM_Nick"]).await, [""]);
}

async fn roam_is_empty(s: &TestServer) -> bool {
    roam(s, "alice", "bob").await.is_empty() && roam(s, "bob", "alice").await.is_empty()
}

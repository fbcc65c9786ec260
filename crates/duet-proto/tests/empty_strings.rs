//! Every optional field of every REST request Duet parses, sent as `""`, parses as if it were left out;
//! the fields where `""` is a value keep it. The server's tests (`rest_empty_strings.rs`) check the effects.

use duet_proto::ApiError;
use duet_proto::rest::{request as req, sns};
use serde_json::{Value, json};

/// The server's clock for `importmsg`, which refuses message times ahead of it.
const NOW: i64 = 1_700_000_000;

type Parse = fn(&Value) -> Result<String, ApiError>;

fn debug<T: std::fmt::Debug>(r: Result<T, ApiError>) -> Result<String, ApiError> {
    r.map(|v| format!("{v:?}"))
}

/// Splits a JSON pointer into its parent's pointer and the last key.
fn split(pointer: &str) -> (&str, &str) {
    pointer.rsplit_once('/').expect("a JSON pointer")
}

fn with_empty(body: &Value, pointer: &str) -> Value {
    let mut b = body.clone();
    let (parent, key) = split(pointer);
    b.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("the parent is an object")
        .insert(key.into(), json!(""));
    b
}

fn without(body: &Value, pointer: &str) -> Value {
    let mut b = body.clone();
    let (parent, key) = split(pointer);
    b.pointer_mut(parent).and_then(Value::as_object_mut).expect("the parent is an object").remove(key);
    b
}

/// The request types with optional fields: how to parse one, a valid body, and its optional fields.
fn cases() -> Vec<(&'static str, Parse, Value, Vec<&'static str>)> {
    let text = json!([{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]);
    let send_fields = vec![
        "/From_Account",
        "/SyncOtherMachine",
        "/MsgLifeTime",
        "/MsgSeq",
        "/OnlineOnlyFlag",
        "/SendMsgControl",
        "/OfflinePushInfo",
        "/IsNeedReadReceipt",
        "/MsgTimeStamp",
        "/ForbidCallbackControl",
        "/SupportMessageExtension",
    ];
    let send = json!({"From_Account": "alice", "SyncOtherMachine": 2, "MsgLifeTime": 60, "MsgSeq": 5, "MsgRandom": 6,
        "OnlineOnlyFlag": 1, "SendMsgControl": ["NoUnread"], "OfflinePushInfo": {"Desc": "d"}, "IsNeedReadReceipt": 1,
        "MsgTimeStamp": 1, "ForbidCallbackControl": ["ForbidBeforeSendMsgCallback"], "SupportMessageExtension": 1,
        "MsgBody": text, "CloudCustomData": "c"});
    let mut batch = send.clone();
    batch["To_Account"] = json!(["bob", "carol"]);
    let mut send_one = send;
    send_one["To_Account"] = json!("bob");
    vec![
        (
            "account_import",
            |b| debug(req::AccountImport::parse(b)),
            json!({"UserID": "alice", "Nick": "A", "FaceUrl": "u"}),
            vec!["/Nick", "/FaceUrl"],
        ),
        (
            "multiaccount_import",
            |b| debug(req::MultiAccountImport::parse(b)),
            json!({"AccountList": [{"UserID": "alice", "Nick": "A", "FaceUrl": "u"}]}),
            vec!["/AccountList/0/Nick", "/AccountList/0/FaceUrl"],
        ),
        ("sendmsg", |b| debug(req::SendMsg::parse(b)), send_one, send_fields.clone()),
        ("batchsendmsg", |b| debug(req::BatchSendMsg::parse(b)), batch, send_fields),
        (
            "importmsg",
            |b| debug(req::ImportMsg::parse(b, NOW)),
            json!({"SyncFromOldSystem": 2, "From_Account": "alice", "To_Account": "bob", "MsgSeq": 1, "MsgRandom": 2,
                   "MsgTimeStamp": 3, "MsgBody": text}),
            vec!["/MsgSeq"],
        ),
        (
            "admin_getroammsg",
            |b| debug(req::GetRoamMsg::parse(b)),
            json!({"Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 1, "MinTime": 0, "MaxTime": 9,
                   "LastMsgKey": "1_2_3"}),
            vec!["/LastMsgKey"],
        ),
        (
            "admin_set_msg_read",
            |b| debug(req::SetMsgRead::parse(b)),
            json!({"Report_Account": "alice", "Peer_Account": "bob", "MsgReadTime": 5}),
            vec!["/MsgReadTime"],
        ),
        (
            "get_c2c_unread_msg_num",
            |b| debug(req::UnreadNum::parse(b)),
            json!({"To_Account": "alice", "Peer_Account": ["bob"]}),
            vec!["/Peer_Account"],
        ),
        (
            "query_online_status",
            |b| debug(req::QueryOnlineStatus::parse(b)),
            json!({"To_Account": ["alice"], "IsNeedDetail": 1}),
            vec!["/IsNeedDetail"],
        ),
        (
            "recentcontact/get_list",
            |b| debug(req::RecentContactGetList::parse(b)),
            json!({"From_Account": "alice", "TimeStamp": 1, "StartIndex": 2, "TopTimeStamp": 3, "TopStartIndex": 4,
                   "AssistFlags": 7}),
            vec!["/TimeStamp", "/StartIndex", "/TopTimeStamp", "/TopStartIndex", "/AssistFlags"],
        ),
        (
            "recentcontact/delete",
            |b| debug(req::RecentContactDelete::parse(b)),
            json!({"From_Account": "alice", "Type": 1, "To_Account": "bob", "ClearRamble": 1}),
            vec!["/ClearRamble"],
        ),
        (
            "friend_add",
            |b| debug(sns::FriendAdd::parse(b)),
            json!({"From_Account": "alice", "AddType": "Add_Type_Single", "ForceAddFlags": 1, "AddFriendItem": [
                {"To_Account": "bob", "Remark": "r", "GroupName": "g", "AddSource": "AddSource_Type_X", "AddWording": "w"}]}),
            vec![
                "/AddType",
                "/ForceAddFlags",
                "/AddFriendItem/0/Remark",
                "/AddFriendItem/0/GroupName",
                "/AddFriendItem/0/AddWording",
            ],
        ),
        (
            "friend_import",
            |b| debug(sns::FriendImport::parse(b)),
            json!({"From_Account": "alice", "AddFriendItem": [{"To_Account": "bob", "Remark": "r", "RemarkTime": 1,
                "GroupName": ["g"], "AddSource": "AddSource_Type_X", "AddWording": "w", "AddTime": 2,
                "CustomItem": [{"Tag": "Tag_SNS_Custom_X", "Value": "x"}]}]}),
            vec![
                "/AddFriendItem/0/Remark",
                "/AddFriendItem/0/RemarkTime",
                "/AddFriendItem/0/GroupName",
                "/AddFriendItem/0/AddWording",
                "/AddFriendItem/0/AddTime",
                "/AddFriendItem/0/CustomItem",
            ],
        ),
        (
            "friend_delete",
            |b| debug(sns::FriendDelete::parse(b)),
            json!({"From_Account": "alice", "To_Account": ["bob"], "DeleteType": "Delete_Type_Both"}),
            vec!["/DeleteType"],
        ),
        (
            "friend_delete_all",
            |b| debug(sns::FriendDeleteAll::parse(b)),
            json!({"From_Account": "alice", "DeleteType": "Delete_Type_Both"}),
            vec!["/DeleteType"],
        ),
        (
            "friend_get",
            |b| debug(sns::FriendGet::parse(b)),
            json!({"From_Account": "alice", "StartIndex": 0, "StandardSequence": 1, "CustomSequence": 2}),
            vec!["/StandardSequence", "/CustomSequence"],
        ),
        (
            "setnospeaking",
            |b| debug(req::SetNoSpeaking::parse(b)),
            json!({"Set_Account": "alice", "C2CmsgNospeakingTime": 60, "GroupmsgNospeakingTime": 0}),
            vec!["/C2CmsgNospeakingTime", "/GroupmsgNospeakingTime"],
        ),
        (
            "black_list_get",
            |b| debug(sns::BlackListGet::parse(b)),
            json!({"From_Account": "alice", "StartIndex": 0, "MaxLimited": 10, "LastSequence": 3}),
            vec!["/LastSequence"],
        ),
    ]
}

#[test]
fn an_optional_field_sent_empty_parses_as_if_left_out() {
    let mut wrong = Vec::new();
    for (name, parse, body, fields) in cases() {
        assert!(parse(&body).is_ok(), "{name}: the base body parses: {:?}", parse(&body));
        let (mut all_empty, mut all_out) = (body.clone(), body.clone());
        for field in fields {
            let (empty, out) = (parse(&with_empty(&body, field)), parse(&without(&body, field)));
            assert!(out.is_ok(), "{name}: leaving {field} out is valid: {out:?}");
            if empty != out {
                wrong.push(format!("{name} {field}: {empty:?}"));
            }
            (all_empty, all_out) = (with_empty(&all_empty, field), without(&all_out, field));
        }
        if parse(&all_empty) != parse(&all_out) {
            wrong.push(format!("{name}, all optional fields at once: {:?}", parse(&all_empty)));
        }
    }
    assert!(wrong.is_empty(), "optional fields sent as \"\" that do not parse as absent:\n{}", wrong.join("\n"));
}

#[test]
fn cloud_custom_data_keeps_an_empty_string_as_empty_content() {
    let body = json!({"To_Account": "bob", "MsgRandom": 1, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}],
                      "CloudCustomData": ""});
    assert_eq!(req::SendMsg::parse(&body).unwrap().msg.cloud_custom_data.as_deref(), Some(""));
    let mut import = body.clone();
    import.as_object_mut().unwrap().extend(
        json!({"SyncFromOldSystem": 2, "From_Account": "alice", "MsgTimeStamp": 1}).as_object().unwrap().clone(),
    );
    assert_eq!(req::ImportMsg::parse(&import, NOW).unwrap().cloud_custom_data.as_deref(), Some(""));
}

#[test]
fn a_profile_or_friend_field_set_to_empty_is_cleared() {
    let set = json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": ""},
                                                            {"Tag": "Tag_Profile_Custom_Mood", "Value": ""}]});
    let r = req::PortraitSet::parse(&set).unwrap();
    assert_eq!(
        r.items,
        [
            ("Tag_Profile_IM_Nick".to_owned(), req::ProfileValue::Text(String::new())),
            ("Tag_Profile_Custom_Mood".to_owned(), req::ProfileValue::Text(String::new()))
        ]
    );
    let update = json!({"From_Account": "alice", "UpdateItem": [{"To_Account": "bob", "SnsItem": [
        {"Tag": "Tag_SNS_IM_Remark", "Value": ""}, {"Tag": "Tag_SNS_IM_Group", "Value": ""},
        {"Tag": "Tag_SNS_Custom_X", "Value": ""}]}]});
    let r = sns::FriendUpdate::parse(&update).unwrap();
    assert_eq!(
        r.items[0].1,
        [
            sns::SnsValue::Remark(String::new()),
            sns::SnsValue::Groups(Vec::new()),
            sns::SnsValue::Custom("Tag_SNS_Custom_X".into(), req::ProfileValue::Text(String::new()))
        ]
    );
}

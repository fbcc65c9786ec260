//! The relationship chain over REST (`sns/friend_*`, `sns/black_list_*`), driven over HTTP against the
//! real server. Bodies are checked whole against snapshots of Tencent's shapes (reference §6): per-item
//! `ResultCode`s with a top-level `ErrorCode` 0, `Fail_Account` only when an item failed.

use duet_test_support::{SDKAPPID, TestServer};
use insta::assert_json_snapshot;
use serde_json::{Value, json};

const SOURCE: &str = "AddSource_Type_Web";

async fn add(server: &TestServer, from: &str, to: &[&str], extra: Value) -> Value {
    let items: Vec<Value> = to.iter().map(|t| json!({"To_Account": t, "AddSource": SOURCE})).collect();
    let mut body = json!({"From_Account": from, "AddFriendItem": items});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    server.rest("sns/friend_add", body).await
}

async fn allow_type(server: &TestServer, user: &str, value: &str) {
    server.set_profile(user, "Tag_Profile_IM_AllowType", json!(value)).await;
}

async fn check(server: &TestServer, from: &str, to: &[&str], kind: &str) -> Value {
    server.rest("sns/friend_check", json!({"From_Account": from, "To_Account": to, "CheckType": kind})).await
}

async fn friend_ids(server: &TestServer, user: &str) -> Vec<String> {
    let r = server.rest("sns/friend_get", json!({"From_Account": user, "StartIndex": 0})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    r["UserDataItem"].as_array().unwrap().iter().map(|i| i["To_Account"].as_str().unwrap().to_owned()).collect()
}

async fn import_many(server: &TestServer, prefix: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for chunk in ids.chunks(100) {
        let r = server.rest("im_open_login_svc/multiaccount_import", json!({ "Accounts": chunk })).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    ids
}

// ---------------------------------------------------------------------------------------------------------
// friend_add and friend_check

#[tokio::test]
async fn friend_add_with_allow_any_makes_two_way_friends_and_friend_check_reports_each_relation() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol", "dave"]).await;
    for u in ["bob", "carol", "dave"] {
        allow_type(&server, u, "AllowType_Type_AllowAny").await;
    }
    let r = add(&server, "alice", &["bob"], json!({})).await;
    assert_json_snapshot!("friend_add_both_ok", r);
    let r = add(&server, "alice", &["carol"], json!({"AddType": "Add_Type_Single"})).await;
    assert_json_snapshot!("friend_add_single_ok", r);
    let r = add(&server, "dave", &["alice"], json!({"AddType": "Add_Type_Single", "ForceAddFlags": 1})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");

    let r = check(&server, "alice", &["bob", "carol", "dave", "erin", "nobody"], "CheckResult_Type_Both").await;
    assert_json_snapshot!("friend_check_both", r);
    let r = check(&server, "alice", &["bob", "carol", "dave", "erin"], "CheckResult_Type_Single").await;
    assert_json_snapshot!("friend_check_single", r);
}

#[tokio::test]
async fn friend_add_answers_each_item_with_tencents_code() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "confirm", "deny", "blocked_by_me", "blocks_me", "forced"]).await;
    allow_type(&server, "deny", "AllowType_Type_DenyAny").await;
    let r = server.rest("sns/black_list_add", json!({"From_Account": "alice", "To_Account": ["blocked_by_me"]})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = server.rest("sns/black_list_add", json!({"From_Account": "blocks_me", "To_Account": ["alice"]})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");

    // "confirm" has the default AllowType (NeedConfirm): the request waits (30539).
    let r =
        add(&server, "alice", &["confirm", "deny", "blocked_by_me", "blocks_me", "alice", "nobody"], json!({})).await;
    assert_json_snapshot!("friend_add_item_codes", r);

    // The admin's ForceAddFlags skips AllowType, not blacklists.
    allow_type(&server, "forced", "AllowType_Type_DenyAny").await;
    let r = add(&server, "alice", &["forced", "blocks_me"], json!({"ForceAddFlags": 1})).await;
    assert_json_snapshot!("friend_add_forced", r);
    let r = check(&server, "alice", &["forced", "confirm"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_BothWay", "{r}");
    assert_eq!(r["InfoItem"][1]["Relation"], "CheckResult_Type_NoRelation", "a pending request is no friendship: {r}");

    // Adding again what exists is a success that changes nothing.
    let r = add(&server, "alice", &["forced"], json!({})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    assert_eq!(friend_ids(&server, "alice").await, ["forced"]);
}

#[tokio::test]
async fn a_request_the_other_way_is_accepted_by_adding_back() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let r = add(&server, "alice", &["bob"], json!({})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 30539, "{r}");
    // bob adding alice answers alice's pending request: both lists, no new request.
    let r = add(&server, "bob", &["alice"], json!({})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    let r = check(&server, "alice", &["bob"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_BothWay", "{r}");
}

#[tokio::test]
async fn sns_refuses_bad_bodies_unknown_users_and_non_admins() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let cases = [
        ("friend_add", json!({"AddFriendItem": [{"To_Account": "bob", "AddSource": SOURCE}]}), "no_from"),
        ("friend_add", json!({"From_Account": "alice", "AddFriendItem": []}), "empty_items"),
        ("friend_add", json!({"From_Account": "alice", "AddFriendItem": [{"To_Account": "bob"}]}), "no_source"),
        (
            "friend_add",
            json!({"From_Account": "alice", "AddFriendItem": [{"To_Account": "bob", "AddSource": SOURCE, "Remark": "r".repeat(97)}]}),
            "long_remark",
        ),
        (
            "friend_add",
            json!({"From_Account": "ghost", "AddFriendItem": [{"To_Account": "bob", "AddSource": SOURCE}]}),
            "unknown_from",
        ),
        (
            "friend_delete",
            json!({"From_Account": "alice", "To_Account": [], "DeleteType": "Delete_Type_Both"}),
            "delete_empty",
        ),
        (
            "friend_delete",
            json!({"From_Account": "alice", "To_Account": ["bob"], "DeleteType": "Delete_Type_All"}),
            "delete_type",
        ),
        ("friend_check", json!({"From_Account": "alice", "To_Account": ["bob"]}), "check_no_type"),
        ("friend_get", json!({"From_Account": "alice"}), "get_no_start"),
        (
            "friend_get_list",
            json!({"From_Account": "alice", "To_Account": ["bob"], "TagList": ["Tag_Bogus"]}),
            "get_list_tag",
        ),
        (
            "black_list_get",
            json!({"From_Account": "alice", "StartIndex": 0, "MaxLimited": 1001, "LastSequence": 0}),
            "black_get_limit",
        ),
        (
            "black_list_check",
            json!({"From_Account": "alice", "To_Account": ["bob"], "CheckType": "CheckResult_Type_Both"}),
            "black_check_type",
        ),
        (
            "black_list_add",
            json!({"From_Account": "alice", "To_Account": (0..1001).map(|i| format!("u{i}")).collect::<Vec<_>>()}),
            "black_add_too_many",
        ),
    ];
    for (command, body, name) in cases {
        let r = server.rest(&format!("sns/{command}"), body).await;
        assert_json_snapshot!(format!("sns_refused_{name}"), r);
    }
    let r = server.rest_raw(&format!("/v4/sns/friend_add?{}", server.admin_query()), "{not json").await;
    assert_json_snapshot!("sns_refused_not_json", r);
    let q =
        format!("sdkappid={SDKAPPID}&identifier=alice&usersig={}&random=1&contenttype=json", server.usersig("alice"));
    let r = server
        .rest_raw(&format!("/v4/sns/friend_get?{q}"), json!({"From_Account": "alice", "StartIndex": 0}).to_string())
        .await;
    assert_json_snapshot!("sns_refused_not_admin", r);
}

// ---------------------------------------------------------------------------------------------------------
// friend_import, friend_update, friend_get, friend_get_list

#[tokio::test]
async fn imported_friends_carry_their_data_which_friend_update_changes() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol", "dave"]).await;
    let r = server
        .rest(
            "profile/portrait_set",
            json!({"From_Account": "bob", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "Bob"}]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0);
    let r = server
        .rest(
            "sns/friend_import",
            json!({"From_Account": "alice", "AddFriendItem": [
                {"To_Account": "bob", "Remark": "B", "RemarkTime": 1420000001, "GroupName": ["Friends", "Work"],
                 "AddSource": "AddSource_Type_Android", "AddWording": "hi", "AddTime": 1420000001,
                 "CustomItem": [{"Tag": "Tag_SNS_Custom_Test", "Value": "x"}, {"Tag": "Tag_SNS_Custom_Num", "Value": 7}]},
                {"To_Account": "carol", "AddSource": "AddSource_Type_IOS"},
                {"To_Account": "nobody", "AddSource": "AddSource_Type_IOS"},
                {"To_Account": "alice", "AddSource": "AddSource_Type_IOS"}
            ]}),
        )
        .await;
    assert_json_snapshot!("friend_import_items", r);
    // One way only.
    let r = check(&server, "alice", &["bob"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_AWithB", "{r}");

    let r = server
        .rest(
            "sns/friend_update",
            json!({"From_Account": "alice", "UpdateItem": [
                {"To_Account": "carol", "SnsItem": [
                    {"Tag": "Tag_SNS_IM_Remark", "Value": "C"}, {"Tag": "Tag_SNS_IM_Group", "Value": ["Family"]},
                    {"Tag": "Tag_SNS_Custom_Test", "Value": "y"}]},
                {"To_Account": "dave", "SnsItem": [{"Tag": "Tag_SNS_IM_Remark", "Value": "D"}]}
            ]}),
        )
        .await;
    assert_json_snapshot!("friend_update_items", r);
    let r = server
        .rest(
            "sns/friend_update",
            json!({"From_Account": "alice", "UpdateItem": [{"To_Account": "carol", "SnsItem": [{"Tag": "Tag_SNS_IM_AddTime", "Value": 1}]}]}),
        )
        .await;
    assert_json_snapshot!("friend_update_refuses_add_time", r);

    let r =
        server.rest("sns/friend_get", json!({"From_Account": "alice", "StartIndex": 0, "StandardSequence": 0})).await;
    assert_json_snapshot!("friend_get_all", r);

    let r = server
        .rest(
            "sns/friend_get_list",
            json!({"From_Account": "alice", "To_Account": ["bob", "carol", "dave"],
                   "TagList": ["Tag_Profile_IM_Nick", "Tag_SNS_IM_Remark", "Tag_SNS_IM_Group", "Tag_SNS_Custom_Test", "Tag_SNS_IM_AddTime"]}),
        )
        .await;
    assert_json_snapshot!("friend_get_list", r);
}

#[tokio::test]
async fn friend_get_pages_by_500_and_a_user_has_at_most_3000_friends() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let ids = import_many(&server, "f", 3001).await;
    for chunk in ids[..3000].chunks(1000) {
        let items: Vec<Value> = chunk.iter().map(|t| json!({"To_Account": t, "AddSource": SOURCE})).collect();
        let r = server.rest("sns/friend_import", json!({"From_Account": "alice", "AddFriendItem": items})).await;
        assert!(r.get("Fail_Account").is_none(), "{}", r["Fail_Account"]);
    }
    let r = server
        .rest(
            "sns/friend_import",
            json!({"From_Account": "alice", "AddFriendItem": [{"To_Account": ids[3000], "AddSource": SOURCE}]}),
        )
        .await;
    assert_json_snapshot!("friend_import_over_the_limit", r);
    let r = add(&server, "alice", &[&ids[3000]], json!({"ForceAddFlags": 1})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 30010, "{r}");
    // The other way round, alice's full list refuses the two-way add from f3000.
    let r = add(&server, &ids[3000], &["alice"], json!({"ForceAddFlags": 1})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 30014, "{r}");

    let mut start = 0;
    let mut seen = 0;
    loop {
        let r = server.rest("sns/friend_get", json!({"From_Account": "alice", "StartIndex": start})).await;
        assert_eq!(r["FriendNum"], 3000, "{}", r["FriendNum"]);
        let page = r["UserDataItem"].as_array().unwrap().len();
        seen += page;
        if r["CompleteFlag"] == 1 {
            assert_eq!((page, r["NextStartIndex"].as_u64()), (500, Some(0)));
            break;
        }
        assert_eq!(page, 500);
        start = r["NextStartIndex"].as_u64().unwrap();
        assert_eq!(start as usize, seen);
    }
    assert_eq!(seen, 3000);
}

// ---------------------------------------------------------------------------------------------------------
// friend_delete, friend_delete_all

#[tokio::test]
async fn friend_delete_removes_one_or_both_directions_and_31704_for_non_friends() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol", "dave", "erin"]).await;
    let r = add(&server, "alice", &["bob", "carol", "dave", "erin"], json!({"ForceAddFlags": 1})).await;
    assert!(r.get("Fail_Account").is_none(), "{r}");

    let r = server
        .rest(
            "sns/friend_delete",
            json!({"From_Account": "alice", "To_Account": ["bob"], "DeleteType": "Delete_Type_Single"}),
        )
        .await;
    assert_json_snapshot!("friend_delete_single", r);
    let r = check(&server, "alice", &["bob"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_BWithA", "{r}");

    // Without DeleteType only alice's list changes (Delete_Type_Single, as for friend_delete_all).
    let r = server
        .rest("sns/friend_delete", json!({"From_Account": "alice", "To_Account": ["carol", "bob", "nobody"]}))
        .await;
    assert_json_snapshot!("friend_delete_default_and_not_friends", r);
    let r = check(&server, "alice", &["carol"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_BWithA", "carol keeps alice: {r}");

    // Delete_Type_Both removes both directions.
    let r = server
        .rest(
            "sns/friend_delete",
            json!({"From_Account": "alice", "To_Account": ["erin"], "DeleteType": "Delete_Type_Both"}),
        )
        .await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    let r = check(&server, "alice", &["erin"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_NoRelation", "{r}");

    // friend_delete_all: one way by default.
    let r = server.rest("sns/friend_delete_all", json!({"From_Account": "alice"})).await;
    assert_json_snapshot!("friend_delete_all", r);
    assert!(friend_ids(&server, "alice").await.is_empty());
    assert_eq!(friend_ids(&server, "dave").await, ["alice"]);
    let r =
        server.rest("sns/friend_delete_all", json!({"From_Account": "dave", "DeleteType": "Delete_Type_Both"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert!(friend_ids(&server, "dave").await.is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// blacklists

#[tokio::test]
async fn blacklists_end_friendships_and_requests_and_are_paged_and_checked() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol", "dave"]).await;
    let r = add(&server, "alice", &["bob"], json!({"ForceAddFlags": 1})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0);
    let r = add(&server, "carol", &["alice"], json!({})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 30539, "carol's request waits: {r}");

    server.clock.advance_secs(1);
    let r = server
        .rest("sns/black_list_add", json!({"From_Account": "alice", "To_Account": ["bob", "carol", "alice", "nobody"]}))
        .await;
    assert_json_snapshot!("black_list_add_items", r);
    let r = server.rest("sns/black_list_add", json!({"From_Account": "alice", "To_Account": ["bob"]})).await;
    assert_json_snapshot!("black_list_add_again", r);
    let r = server.rest("sns/black_list_add", json!({"From_Account": "dave", "To_Account": ["alice"]})).await;
    assert_eq!(r["ErrorCode"], 0);

    // The friendship is gone both ways, and carol's request with it.
    let r = check(&server, "alice", &["bob"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_NoRelation", "{r}");
    let r = add(&server, "carol", &["alice"], json!({"ForceAddFlags": 1})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 30525, "{r}");

    let r = server
        .rest(
            "sns/black_list_get",
            json!({"From_Account": "alice", "StartIndex": 0, "MaxLimited": 1, "LastSequence": 0}),
        )
        .await;
    assert_json_snapshot!("black_list_get_first_page", r);
    let r = server
        .rest(
            "sns/black_list_get",
            json!({"From_Account": "alice", "StartIndex": 1, "MaxLimited": 30, "LastSequence": 0}),
        )
        .await;
    assert_json_snapshot!("black_list_get_last_page", r);

    let r = server
        .rest(
            "sns/black_list_check",
            json!({"From_Account": "alice", "To_Account": ["bob", "dave", "carol", "nobody"], "CheckType": "BlackCheckResult_Type_Both"}),
        )
        .await;
    assert_json_snapshot!("black_list_check_both", r);
    let r = server
        .rest(
            "sns/black_list_check",
            json!({"From_Account": "alice", "To_Account": ["bob", "dave"], "CheckType": "BlackCheckResult_Type_Single"}),
        )
        .await;
    assert_json_snapshot!("black_list_check_single", r);

    let r = server.rest("sns/black_list_delete", json!({"From_Account": "alice", "To_Account": ["bob", "dave"]})).await;
    assert_json_snapshot!("black_list_delete_items", r);
}

#[tokio::test]
async fn a_blacklist_holds_at_most_1000() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let ids = import_many(&server, "b", 1001).await;
    let r = server.rest("sns/black_list_add", json!({"From_Account": "alice", "To_Account": ids[..1000]})).await;
    assert!(r.get("Fail_Account").is_none(), "{}", r["Fail_Account"]);
    let r = server.rest("sns/black_list_add", json!({"From_Account": "alice", "To_Account": [ids[1000]]})).await;
    assert_json_snapshot!("black_list_add_over_the_limit", r);
}

// ---------------------------------------------------------------------------------------------------------
// lifecycle

#[tokio::test]
async fn relations_survive_a_restart_and_go_with_a_deleted_account() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob", "carol"]).await;
    let r = add(&server, "alice", &["bob", "carol"], json!({"ForceAddFlags": 1})).await;
    assert!(r.get("Fail_Account").is_none(), "{r}");
    let r = server.rest("sns/black_list_add", json!({"From_Account": "bob", "To_Account": ["carol"]})).await;
    assert_eq!(r["ErrorCode"], 0);

    let server = server.restart().await;
    assert_eq!(friend_ids(&server, "alice").await, ["bob", "carol"]);
    let r = server
        .rest(
            "sns/black_list_check",
            json!({"From_Account": "bob", "To_Account": ["carol"], "CheckType": "BlackCheckResult_Type_Single"}),
        )
        .await;
    assert_eq!(r["BlackListCheckItem"][0]["Relation"], "BlackCheckResult_Type_AWithB", "{r}");

    let r = server.rest("im_open_login_svc/account_delete", json!({"DeleteItem": [{"UserID": "carol"}]})).await;
    assert_eq!(r["ErrorCode"], 0);
    assert_eq!(friend_ids(&server, "alice").await, ["bob"]);
    server.import(&["carol"]).await;
    let r = check(&server, "alice", &["carol"], "CheckResult_Type_Both").await;
    assert_eq!(r["InfoItem"][0]["Relation"], "CheckResult_Type_NoRelation", "a re-created account starts afresh: {r}");
    let r = server
        .rest(
            "sns/black_list_get",
            json!({"From_Account": "bob", "StartIndex": 0, "MaxLimited": 10, "LastSequence": 0}),
        )
        .await;
    assert_eq!(r["BlackListItem"], json!([]), "{r}");

    // After a restart too (the rows are gone, not only the cache).
    let server = server.restart().await;
    assert_eq!(friend_ids(&server, "alice").await, ["bob"]);
    assert!(friend_ids(&server, "carol").await.is_empty());
}

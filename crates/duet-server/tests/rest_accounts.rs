//! The account and profile endpoints (`im_open_login_svc/*`, `profile/portrait_*`) and the REST gateway in
//! front of every endpoint, driven over HTTP against the real server. Every body is checked whole against a
//! snapshot that records what Tencent answers (reference §1, §2.6, §5).

use duet_core::clock::Clock;
use duet_core::usersig;
use duet_test_support::{ADMIN, SDKAPPID, SECRET_KEY, TestServer};
use insta::assert_json_snapshot;
use serde_json::{Value, json};

/// The query string of a call made as `identifier` with `usersig`.
fn query(identifier: &str, sig: &str) -> String {
    format!("sdkappid={SDKAPPID}&identifier={identifier}&usersig={sig}&random=99&contenttype=json")
}

/// `n` distinct valid UserIDs.
fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}")).collect()
}

/// Checks what every REST answer must be: HTTP 200, a JSON Content-Type and a JSON body; returns the body.
async fn json_reply(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "Tencent's REST API always answers HTTP 200");
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
    assert!(
        content_type.as_deref().is_some_and(|c| c.starts_with("application/json")),
        "content-type {content_type:?}"
    );
    let bytes = resp.bytes().await.expect("reading the response");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("the response is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

async fn check(server: &TestServer, users: &[&str]) -> Value {
    let items: Vec<Value> = users.iter().map(|u| json!({ "UserID": u })).collect();
    server.rest("im_open_login_svc/account_check", json!({ "CheckItem": items })).await
}

async fn portrait_get(server: &TestServer, users: &[&str], tags: &[&str]) -> Value {
    server.rest("profile/portrait_get", json!({ "To_Account": users, "TagList": tags })).await
}

// ---------------------------------------------------------------------------------------------------------
// account_import

#[tokio::test]
async fn account_import_takes_userid_or_the_old_identifier_with_nick_and_face_url() {
    let server = TestServer::spawn().await;

    let r = server
        .rest(
            "im_open_login_svc/account_import",
            json!({"UserID": "alice", "Nick": "Alice", "FaceUrl": "http://www.qq.com/alice.png"}),
        )
        .await;
    assert_json_snapshot!("account_import_ok", r);

    let r = server.rest("im_open_login_svc/account_import", json!({"Identifier": "bob"})).await;
    assert_json_snapshot!("account_import_identifier_ok", r);

    // Exactly 32 bytes is the longest UserID Tencent accepts.
    let r = server.rest("im_open_login_svc/account_import", json!({"UserID": "a".repeat(32)})).await;
    assert_eq!(r, json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}));

    let r = check(&server, &["alice", "bob", &"a".repeat(32)]).await;
    assert_json_snapshot!("account_import_then_check", r);

    // Nick and FaceUrl are the profile's Tag_Profile_IM_Nick and Tag_Profile_IM_Image.
    let r = portrait_get(&server, &["alice", "bob"], &["Tag_Profile_IM_Nick", "Tag_Profile_IM_Image"]).await;
    assert_json_snapshot!("account_import_then_portrait_get", r);
}

#[tokio::test]
async fn account_import_is_idempotent() {
    let server = TestServer::spawn().await;
    for _ in 0..2 {
        let r = server.rest("im_open_login_svc/account_import", json!({"UserID": "alice", "Nick": "Alice"})).await;
        assert_json_snapshot!("account_import_again_ok", r);
    }
    // Importing again with other values updates them (Tencent: one internal ID, the new values win).
    let r = server.rest("im_open_login_svc/account_import", json!({"UserID": "alice", "Nick": "Alice 2"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    // ... and leaves what it does not name alone.
    let r = server.rest("im_open_login_svc/account_import", json!({"UserID": "alice"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = portrait_get(&server, &["alice"], &["Tag_Profile_IM_Nick"]).await;
    assert_json_snapshot!("account_import_again_then_portrait_get", r);
}

#[tokio::test]
async fn account_import_refuses_a_missing_or_malformed_userid_with_70402() {
    let server = TestServer::spawn().await;
    let cases = [
        ("missing", json!({"Nick": "nobody"})),
        ("too_long", json!({"UserID": "a".repeat(33)})),
        ("empty", json!({"UserID": ""})),
        ("number", json!({"UserID": 12345})),
        ("nick_not_string", json!({"UserID": "alice", "Nick": 7})),
        ("body_is_array", json!(["alice"])),
    ];
    for (name, body) in cases {
        let r = server.rest("im_open_login_svc/account_import", body).await;
        assert_json_snapshot!(format!("account_import_invalid_{name}"), r);
    }
    let r = server
        .rest_raw(&format!("/v4/im_open_login_svc/account_import?{}", server.admin_query()), "{\"UserID\": \"alice\"")
        .await;
    assert_json_snapshot!("account_import_body_not_json", r);

    // Nothing was imported by the refused calls.
    let r = check(&server, &["alice", &"a".repeat(32)]).await;
    assert_eq!(r["ResultItem"][0]["AccountStatus"], "NotImported", "{r}");
}

// ---------------------------------------------------------------------------------------------------------
// multiaccount_import

#[tokio::test]
async fn multiaccount_import_takes_accounts_strings() {
    let server = TestServer::spawn().await;
    let r =
        server.rest("im_open_login_svc/multiaccount_import", json!({"Accounts": ["test1", "test2", "test3"]})).await;
    assert_json_snapshot!("multiaccount_import_accounts_ok", r);
    // Importing existing accounts again is not a failure.
    let r = server.rest("im_open_login_svc/multiaccount_import", json!({"Accounts": ["test1", "test4"]})).await;
    assert_json_snapshot!("multiaccount_import_accounts_again_ok", r);
    let r = check(&server, &["test1", "test2", "test3", "test4", "test5"]).await;
    assert_json_snapshot!("multiaccount_import_accounts_then_check", r);
}

#[tokio::test]
async fn multiaccount_import_takes_account_list_objects() {
    let server = TestServer::spawn().await;
    let r = server
        .rest(
            "im_open_login_svc/multiaccount_import",
            json!({"AccountList": [
                {"UserID": "UserID_001", "Nick": "Nick_001", "FaceUrl": "http://www.qq.com/1"},
                {"UserID": "UserID_002", "Nick": "Nick_002"},
                {"UserID": "UserID_003"},
            ]}),
        )
        .await;
    assert_json_snapshot!("multiaccount_import_account_list_ok", r);
    let r = portrait_get(
        &server,
        &["UserID_001", "UserID_002", "UserID_003"],
        &["Tag_Profile_IM_Nick", "Tag_Profile_IM_Image"],
    )
    .await;
    assert_json_snapshot!("multiaccount_import_account_list_then_portrait_get", r);
}

#[tokio::test]
async fn multiaccount_import_reports_invalid_ids_in_fail_accounts() {
    let server = TestServer::spawn().await;
    let too_long = "b".repeat(33);
    let r = server
        .rest("im_open_login_svc/multiaccount_import", json!({"Accounts": ["good1", too_long, "", "good2"]}))
        .await;
    assert_json_snapshot!("multiaccount_import_accounts_partial", r);

    let r = server
        .rest(
            "im_open_login_svc/multiaccount_import",
            json!({"AccountList": [{"UserID": "good3"}, {"UserID": "c".repeat(33)}, {"UserID": "good4", "Nick": 5}]}),
        )
        .await;
    assert_json_snapshot!("multiaccount_import_account_list_partial", r);

    let r = check(&server, &["good1", "good2", "good3", "good4"]).await;
    assert_json_snapshot!("multiaccount_import_partial_then_check", r);
}

#[tokio::test]
async fn multiaccount_import_refuses_more_than_100_or_a_missing_list_with_70402() {
    let server = TestServer::spawn().await;

    // 100 is the most one call may import.
    let r = server.rest("im_open_login_svc/multiaccount_import", json!({"Accounts": ids(100)})).await;
    assert_eq!(r, json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "FailAccounts": []}));

    let r = server.rest("im_open_login_svc/multiaccount_import", json!({"Accounts": ids(101)})).await;
    assert_json_snapshot!("multiaccount_import_too_many", r);
    let list: Vec<Value> = ids(101).into_iter().map(|id| json!({ "UserID": id })).collect();
    let r = server.rest("im_open_login_svc/multiaccount_import", json!({ "AccountList": list })).await;
    assert_json_snapshot!("multiaccount_import_too_many_account_list", r);

    for (name, body) in
        [("missing", json!({})), ("empty", json!({"Accounts": []})), ("not_array", json!({"Accounts": "test1"}))]
    {
        let r = server.rest("im_open_login_svc/multiaccount_import", body).await;
        assert_json_snapshot!(format!("multiaccount_import_{name}"), r);
    }
}

// ---------------------------------------------------------------------------------------------------------
// account_delete and account_check

#[tokio::test]
async fn account_delete_reports_each_item_and_70107_for_accounts_that_do_not_exist() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let r = server
        .rest(
            "im_open_login_svc/account_delete",
            json!({"DeleteItem": [{"UserID": "alice"}, {"UserID": "ghost"}, {"UserID": "bob"}]}),
        )
        .await;
    assert_json_snapshot!("account_delete_mixed", r);

    let r = check(&server, &["alice", "bob"]).await;
    assert_json_snapshot!("account_delete_then_check", r);

    // Deleting again: every item is now missing.
    let r = server.rest("im_open_login_svc/account_delete", json!({"DeleteItem": [{"UserID": "alice"}]})).await;
    assert_json_snapshot!("account_delete_again", r);

    // A deleted account can be imported again.
    server.import(&["alice"]).await;
    let r = check(&server, &["alice"]).await;
    assert_eq!(r["ResultItem"][0]["AccountStatus"], "Imported", "{r}");
}

#[tokio::test]
async fn account_delete_also_deletes_the_profile() {
    let server = TestServer::spawn().await;
    let r = server.rest("im_open_login_svc/account_import", json!({"UserID": "alice", "Nick": "Alice"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = server.rest("im_open_login_svc/account_delete", json!({"DeleteItem": [{"UserID": "alice"}]})).await;
    assert_eq!(r["ResultItem"][0]["ResultCode"], 0, "{r}");
    server.import(&["alice"]).await;
    let r = portrait_get(&server, &["alice"], &["Tag_Profile_IM_Nick"]).await;
    assert_eq!(r["UserProfileItem"][0]["ProfileItem"], json!([{"Tag": "Tag_Profile_IM_Nick", "Value": ""}]), "{r}");
}

#[tokio::test]
async fn account_delete_refuses_more_than_100_or_a_missing_list_with_70402() {
    let server = TestServer::spawn().await;
    let items = |n| ids(n).into_iter().map(|id| json!({ "UserID": id })).collect::<Vec<_>>();

    let r = server.rest("im_open_login_svc/account_delete", json!({"DeleteItem": items(100)})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(r["ResultItem"].as_array().map(Vec::len), Some(100), "{r}");

    let r = server.rest("im_open_login_svc/account_delete", json!({"DeleteItem": items(101)})).await;
    assert_json_snapshot!("account_delete_too_many", r);
    for (name, body) in [
        ("missing", json!({})),
        ("empty", json!({"DeleteItem": []})),
        ("item_without_userid", json!({"DeleteItem": [{"Nick": "x"}]})),
        ("userid_number", json!({"DeleteItem": [{"UserID": 1}]})),
    ] {
        let r = server.rest("im_open_login_svc/account_delete", body).await;
        assert_json_snapshot!(format!("account_delete_{name}"), r);
    }
}

#[tokio::test]
async fn account_check_tells_imported_from_not_imported() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let r = check(&server, &["alice", "ghost", ADMIN]).await;
    assert_json_snapshot!("account_check_mixed", r);
}

#[tokio::test]
async fn account_check_refuses_more_than_100_or_a_missing_list_with_70402() {
    let server = TestServer::spawn().await;
    let items = |n| ids(n).into_iter().map(|id| json!({ "UserID": id })).collect::<Vec<_>>();

    let r = server.rest("im_open_login_svc/account_check", json!({"CheckItem": items(100)})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(r["ResultItem"].as_array().map(Vec::len), Some(100), "{r}");

    let r = server.rest("im_open_login_svc/account_check", json!({"CheckItem": items(101)})).await;
    assert_json_snapshot!("account_check_too_many", r);
    for (name, body) in [("missing", json!({})), ("empty", json!({"CheckItem": []}))] {
        let r = server.rest("im_open_login_svc/account_check", body).await;
        assert_json_snapshot!(format!("account_check_{name}"), r);
    }
}

// ---------------------------------------------------------------------------------------------------------
// kick

#[tokio::test]
async fn kick_takes_userid_or_identifier_and_refuses_unknown_accounts_with_70107() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;

    let r = server.rest("im_open_login_svc/kick", json!({"UserID": "alice"})).await;
    assert_json_snapshot!("kick_ok", r);
    let r = server.rest("im_open_login_svc/kick", json!({"Identifier": "bob"})).await;
    assert_json_snapshot!("kick_identifier_ok", r);

    let r = server.rest("im_open_login_svc/kick", json!({"UserID": "ghost"})).await;
    assert_json_snapshot!("kick_unknown_account", r);
    let r = server.rest("im_open_login_svc/kick", json!({})).await;
    assert_json_snapshot!("kick_missing_userid", r);
}

#[tokio::test]
async fn kick_invalidates_the_usersigs_issued_before_it() {
    let server = TestServer::spawn_with(|c| c.core.admins.push("ops".into())).await;
    let path = "/v4/im_open_login_svc/account_check";
    let body = json!({"CheckItem": [{"UserID": "ops"}]}).to_string();
    let old_sig = server.usersig("ops");

    let r = server.rest_raw(&format!("{path}?{}", query("ops", &old_sig)), body.clone()).await;
    assert_json_snapshot!("kick_before", r);

    server.clock.advance_secs(1);
    let r = server.rest("im_open_login_svc/kick", json!({"UserID": "ops"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");

    let r = server.rest_raw(&format!("{path}?{}", query("ops", &old_sig)), body.clone()).await;
    assert_json_snapshot!("kick_old_sig_refused", r);

    // A UserSig generated after the kick works.
    let new_sig = server.usersig("ops");
    let r = server.rest_raw(&format!("{path}?{}", query("ops", &new_sig)), body.clone()).await;
    assert_json_snapshot!("kick_new_sig_ok", r);

    // The kick is stored: it outlives a restart.
    let server = server.restart().await;
    let r = server.rest_raw(&format!("{path}?{}", query("ops", &old_sig)), body.clone()).await;
    assert_eq!(r["ErrorCode"], 70052, "{r}");
    let r = server.rest_raw(&format!("{path}?{}", query("ops", &new_sig)), body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

// ---------------------------------------------------------------------------------------------------------
// portrait_set and portrait_get

#[tokio::test]
async fn portrait_set_stores_standard_custom_and_integer_tags() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let r = server
        .rest(
            "profile/portrait_set",
            json!({"From_Account": "alice", "ProfileItem": [
                {"Tag": "Tag_Profile_IM_Nick", "Value": "MyNickName"},
                {"Tag": "Tag_Profile_IM_Image", "Value": "http://www.qq.com/alice.png"},
                {"Tag": "Tag_Profile_IM_AllowType", "Value": "AllowType_Type_DenyAny"},
                {"Tag": "Tag_Profile_IM_Level", "Value": 7},
                {"Tag": "Tag_Profile_IM_Role", "Value": "3"},
                {"Tag": "Tag_Profile_Custom_Hobby", "Value": "chess"},
            ]}),
        )
        .await;
    assert_json_snapshot!("portrait_set_ok", r);

    let r = portrait_get(
        &server,
        &["alice"],
        &[
            "Tag_Profile_IM_Nick",
            "Tag_Profile_IM_Image",
            "Tag_Profile_IM_AllowType",
            "Tag_Profile_IM_Level",
            "Tag_Profile_IM_Role",
            "Tag_Profile_Custom_Hobby",
        ],
    )
    .await;
    assert_json_snapshot!("portrait_set_then_get", r);

    // Values of exactly 500 bytes are accepted; setting a tag again replaces it.
    let r = server
        .rest(
            "profile/portrait_set",
            json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "n".repeat(500)}]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = portrait_get(&server, &["alice"], &["Tag_Profile_IM_Nick"]).await;
    assert_eq!(r["UserProfileItem"][0]["ProfileItem"][0]["Value"], "n".repeat(500), "{r}");
}

#[tokio::test]
async fn portrait_set_refuses_bad_tags_and_values() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let set = |tag: &str, value: Value| json!({"From_Account": "alice", "ProfileItem": [{"Tag": tag, "Value": value}]});
    let cases = [
        ("allow_type_invalid", set("Tag_Profile_IM_AllowType", json!("AllowType_Type_Whatever"))),
        ("custom_keyword_digits", set("Tag_Profile_Custom_Hobby1", json!("x"))),
        ("custom_keyword_too_long", set("Tag_Profile_Custom_Favourite", json!("x"))),
        ("custom_keyword_empty", set("Tag_Profile_Custom_", json!("x"))),
        ("unknown_tag", set("Tag_Profile_IM_Mood", json!("happy"))),
        ("nick_too_long", set("Tag_Profile_IM_Nick", json!("n".repeat(501)))),
        ("custom_too_long", set("Tag_Profile_Custom_Hobby", json!("h".repeat(501)))),
        ("nick_number", set("Tag_Profile_IM_Nick", json!(42))),
        ("level_not_number", set("Tag_Profile_IM_Level", json!("high"))),
        ("level_negative", set("Tag_Profile_IM_Level", json!(-1))),
        ("level_over_u32", set("Tag_Profile_IM_Level", json!(4_294_967_296u64))),
    ];
    for (name, body) in cases {
        let r = server.rest("profile/portrait_set", body).await;
        assert_json_snapshot!(format!("portrait_set_{name}"), r);
    }

    // A refused call changes nothing, not even its valid items.
    let r = server
        .rest(
            "profile/portrait_set",
            json!({"From_Account": "alice", "ProfileItem": [
                {"Tag": "Tag_Profile_IM_Nick", "Value": "Alice"},
                {"Tag": "Tag_Profile_IM_AllowType", "Value": "nope"},
            ]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 40605, "{r}");
    let r = portrait_get(&server, &["alice"], &["Tag_Profile_IM_Nick"]).await;
    assert_eq!(r["UserProfileItem"][0]["ProfileItem"][0]["Value"], "", "{r}");
}

#[tokio::test]
async fn portrait_set_refuses_an_account_that_was_not_imported_with_40003() {
    let server = TestServer::spawn().await;
    let r = server
        .rest(
            "profile/portrait_set",
            json!({"From_Account": "ghost", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "Boo"}]}),
        )
        .await;
    assert_json_snapshot!("portrait_set_account_missing", r);
}

#[tokio::test]
async fn portrait_set_without_from_account_is_a_malformed_request_40001() {
    // A missing From_Account is a malformed request (40001), not an account that does not exist (40003).
    let server = TestServer::spawn().await;
    let r = server
        .rest("profile/portrait_set", json!({"ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "Alice"}]}))
        .await;
    assert_json_snapshot!("portrait_set_malformed_missing_from_account", r);
}

#[tokio::test]
async fn portrait_set_refuses_a_malformed_request_with_40001() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    for (name, body) in [
        ("missing_profile_item", json!({"From_Account": "alice"})),
        ("empty_profile_item", json!({"From_Account": "alice", "ProfileItem": []})),
        ("item_without_tag", json!({"From_Account": "alice", "ProfileItem": [{"Value": "Alice"}]})),
        ("item_without_value", json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick"}]})),
    ] {
        let r = server.rest("profile/portrait_set", body).await;
        assert_json_snapshot!(format!("portrait_set_malformed_{name}"), r);
    }
    let r = server.rest_raw(&format!("/v4/profile/portrait_set?{}", server.admin_query()), "{\"From_Account\":").await;
    assert_json_snapshot!("portrait_set_body_not_json", r);
}

#[tokio::test]
async fn portrait_get_reports_unknown_accounts_per_item_with_40003() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let r = server
        .rest(
            "profile/portrait_set",
            json!({"From_Account": "alice", "ProfileItem": [{"Tag": "Tag_Profile_IM_Nick", "Value": "Alice"}]}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");

    let r = portrait_get(&server, &["alice", "ghost"], &["Tag_Profile_IM_Nick"]).await;
    assert_json_snapshot!("portrait_get_unknown_account", r);
}

#[tokio::test]
async fn portrait_get_answers_never_set_tags_with_their_defaults() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let r = portrait_get(
        &server,
        &["alice"],
        &[
            "Tag_Profile_IM_Nick",
            "Tag_Profile_IM_Gender",
            "Tag_Profile_IM_AllowType",
            "Tag_Profile_IM_Level",
            "Tag_Profile_IM_BirthDay",
            "Tag_Profile_Custom_Hobby",
        ],
    )
    .await;
    assert_json_snapshot!("portrait_get_never_set", r);
}

#[tokio::test]
async fn portrait_get_refuses_bad_requests() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;

    let many = ids(101);
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let r = portrait_get(&server, &many, &["Tag_Profile_IM_Nick"]).await;
    assert_json_snapshot!("portrait_get_too_many", r);

    let r = portrait_get(&server, &["alice"], &["Tag_Profile_IM_Mood"]).await;
    assert_json_snapshot!("portrait_get_unknown_tag", r);

    let r = server.rest("profile/portrait_get", json!({"To_Account": ["alice"]})).await;
    assert_json_snapshot!("portrait_get_missing_tag_list", r);
}

#[tokio::test]
async fn portrait_get_without_to_account_is_a_malformed_request_40001() {
    // A missing or empty To_Account is a malformed request (40001), not an account that does not exist (40003).
    let server = TestServer::spawn().await;
    let r = server.rest("profile/portrait_get", json!({"TagList": ["Tag_Profile_IM_Nick"]})).await;
    assert_json_snapshot!("portrait_get_missing_to_account", r);
    let r = server.rest("profile/portrait_get", json!({"To_Account": [], "TagList": ["Tag_Profile_IM_Nick"]})).await;
    assert_json_snapshot!("portrait_get_empty_to_account", r);
}

// ---------------------------------------------------------------------------------------------------------
// The REST gateway

#[tokio::test]
async fn unknown_paths_are_refused_with_60009() {
    let server = TestServer::spawn().await;
    let q = server.admin_query();
    for (name, path) in [
        ("unknown_command", format!("/v4/openim/nosuch?{q}")),
        ("unknown_service", format!("/v4/nosuch/sendmsg?{q}")),
        ("not_v4", format!("/v3/openim/sendmsg?{q}")),
        ("no_command", format!("/v4/openim?{q}")),
        ("root", "/".to_owned()),
    ] {
        let r = server.rest_raw(&path, "{}").await;
        assert_json_snapshot!(format!("gateway_path_{name}"), r);
    }
}

#[tokio::test]
async fn sdkappid_missing_is_60012_and_wrong_is_60006() {
    let server = TestServer::spawn().await;
    let sig = server.usersig(ADMIN);
    let path = "/v4/im_open_login_svc/account_check";
    let body = r#"{"CheckItem":[{"UserID":"administrator"}]}"#;

    let r = server.rest_raw(&format!("{path}?identifier={ADMIN}&usersig={sig}&random=1&contenttype=json"), body).await;
    assert_json_snapshot!("gateway_sdkappid_missing", r);
    let r = server
        .rest_raw(&format!("{path}?sdkappid=1400000001&identifier={ADMIN}&usersig={sig}&contenttype=json"), body)
        .await;
    assert_json_snapshot!("gateway_sdkappid_wrong", r);
    let r =
        server.rest_raw(&format!("{path}?sdkappid=abc&identifier={ADMIN}&usersig={sig}&contenttype=json"), body).await;
    assert_json_snapshot!("gateway_sdkappid_not_a_number", r);
}

#[tokio::test]
async fn usersig_failures_have_tencents_codes() {
    let server = TestServer::spawn().await;
    let path = "/v4/im_open_login_svc/account_check";
    let body = r#"{"CheckItem":[{"UserID":"administrator"}]}"#;
    let now = server.clock.now_secs();

    let cases = [
        ("missing", format!("sdkappid={SDKAPPID}&identifier={ADMIN}&random=1&contenttype=json")),
        ("empty", query(ADMIN, "")),
        ("garbage", query(ADMIN, "not-a-usersig")),
        ("other_identifier", query(ADMIN, &server.usersig("alice"))),
        ("other_key", query(ADMIN, &usersig::generate(&"0".repeat(64), SDKAPPID, ADMIN, now, 86_400, None))),
        ("expired", query(ADMIN, &usersig::generate(SECRET_KEY, SDKAPPID, ADMIN, now - 1000, 10, None))),
        ("other_sdkappid", query(ADMIN, &usersig::generate(SECRET_KEY, SDKAPPID + 1, ADMIN, now, 86_400, None))),
    ];
    for (name, q) in cases {
        let r = server.rest_raw(&format!("{path}?{q}"), body).await;
        assert_json_snapshot!(format!("gateway_usersig_{name}"), r);
    }
}

#[tokio::test]
async fn a_missing_identifier_is_refused() {
    let server = TestServer::spawn().await;
    let sig = server.usersig(ADMIN);
    let r = server
        .rest_raw(
            &format!("/v4/im_open_login_svc/account_check?sdkappid={SDKAPPID}&usersig={sig}&contenttype=json"),
            r#"{"CheckItem":[{"UserID":"administrator"}]}"#,
        )
        .await;
    assert_json_snapshot!("gateway_identifier_missing", r);
}

#[tokio::test]
async fn a_valid_usersig_of_a_non_admin_gets_each_services_admin_code() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let q = query("alice", &server.usersig("alice"));
    for (name, path, body) in [
        ("login", "im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": "alice"}]})),
        ("profile", "profile/portrait_get", json!({"To_Account": ["alice"], "TagList": ["Tag_Profile_IM_Nick"]})),
        (
            "openim",
            "openim/sendmsg",
            json!({"To_Account": "alice", "MsgRandom": 1, "MsgBody": duet_test_support::text("hi")}),
        ),
    ] {
        let r = server.rest_raw(&format!("/v4/{path}?{q}"), body.to_string()).await;
        assert_json_snapshot!(format!("gateway_not_admin_{name}"), r);
    }
}

#[tokio::test]
async fn extra_query_parameters_and_a_missing_random_are_accepted() {
    let server = TestServer::spawn().await;
    let sig = server.usersig(ADMIN);
    // The legacy PHP sample: usersig first, no random, an obsolete apn=0.
    let r = server
        .rest_raw(
            &format!(
                "/v4/im_open_login_svc/account_import?usersig={sig}&apn=0&identifier={ADMIN}&sdkappid={SDKAPPID}&contenttype=json&foo=bar"
            ),
            r#"{"UserID":"alice"}"#,
        )
        .await;
    assert_json_snapshot!("gateway_extra_params_ok", r);
}

#[tokio::test]
async fn the_body_is_json_whatever_the_content_type() {
    let server = TestServer::spawn().await;
    let http = reqwest::Client::new();
    let url = format!("{}/v4/im_open_login_svc/account_import?{}", server.base_url(), server.admin_query());
    for (user, content_type) in [
        ("plain", Some("text/plain")),
        ("json", Some("application/json; charset=utf-8")),
        ("form", Some("application/x-www-form-urlencoded")),
        ("none", None),
    ] {
        let mut req = http.post(&url).body(json!({ "UserID": user }).to_string());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = json_reply(req.send().await.expect("sending")).await;
        assert_eq!(r, json!({"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}), "content-type {content_type:?}");
    }
    let r = check(&server, &["plain", "json", "form", "none"]).await;
    assert_json_snapshot!("gateway_content_types_then_check", r);
}

#[tokio::test]
async fn an_empty_body_reads_as_an_empty_object() {
    let server = TestServer::spawn().await;
    let r = server.rest_raw(&format!("/v4/im_open_login_svc/account_check?{}", server.admin_query()), "").await;
    assert_json_snapshot!("gateway_empty_body", r);
}

#[tokio::test]
async fn an_empty_body_to_a_profile_command_is_a_malformed_request_40001() {
    let server = TestServer::spawn().await;
    let r = server.rest_raw(&format!("/v4/profile/portrait_get?{}", server.admin_query()), "").await;
    assert_json_snapshot!("gateway_empty_body_profile", r);
}

#[tokio::test]
async fn a_get_with_a_json_body_is_served_like_a_post() {
    // PY2 calls account_check with GET and a body.
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/v4/im_open_login_svc/account_check?{}", server.base_url(), server.admin_query()))
        .body(json!({"CheckItem": [{"UserID": "alice"}, {"UserID": "ghost"}]}).to_string())
        .send()
        .await
        .expect("sending");
    let r = json_reply(resp).await;
    assert_json_snapshot!("gateway_get_with_body", r);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_a_json_answer() {
    let server = TestServer::spawn().await;
    let body = json!({"UserID": "alice", "Nick": "n".repeat(2 * 1024 * 1024)}).to_string();
    let r = server.rest_raw(&format!("/v4/im_open_login_svc/account_import?{}", server.admin_query()), body).await;
    assert_json_snapshot!("gateway_body_too_large", r);
    let r = check(&server, &["alice"]).await;
    assert_eq!(r["ResultItem"][0]["AccountStatus"], "NotImported", "{r}");
}

//! Size limits of a message, through every door that stores one (REST `sendmsg`, `batchsendmsg`,
//! `importmsg`, the client protocol's `send`): Tencent's 12 KB counts the whole message, `MsgBody`,
//! `CloudCustomData` and `OfflinePushInfo` together (`docs/rest-api.md` §3.3). Each attack is answered with
//! 93000 and leaves nothing behind: no history, no sync-log entry, no grant of an upload.

use duet_proto::limits::{MAX_MESSAGE_BYTES, MAX_MESSAGE_CONTENT_BYTES};
use duet_test_support::{TestServer, WsClient, text};
use serde_json::{Value, json};

/// A `sendmsg` body from alice to bob.
fn msg(random: u32, body: Value) -> Value {
    json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": random, "MsgBody": body})
}

fn with(mut m: Value, name: &str, v: Value) -> Value {
    m[name] = v;
    m
}

/// How many messages `op` sees in the conversation with `peer`.
async fn stored(s: &TestServer, op: &str, peer: &str) -> u64 {
    let r = s
        .rest(
            "openim/admin_getroammsg",
            json!({"Operator_Account": op, "Peer_Account": peer, "MaxCnt": 100, "MinTime": 0, "MaxTime": 4_000_000_000u64}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    r["MsgCnt"].as_u64().unwrap()
}

/// The entries of `user`'s sync log.
async fn log(s: &TestServer, user: &str) -> Vec<Value> {
    let mut c = WsClient::login(s, user).await;
    let page = c.request(json!({"op": "sync", "after": 0})).await;
    assert_eq!(page["op"], "synced", "{page}");
    page["entries"].as_array().unwrap().clone()
}

/// The number of bytes the message's parts are counted as: the compact JSON of `MsgBody` and of
/// `OfflinePushInfo`, and `CloudCustomData` as it is written inside a JSON string.
fn content_bytes(body: &Value, ccd: &str, push: Option<&Value>) -> usize {
    body.to_string().len() + (Value::from(ccd).to_string().len() - 2) + push.map_or(0, |p| p.to_string().len())
}

/// A text body whose compact JSON is exactly `n` bytes.
fn body_of(n: usize) -> Value {
    let empty = text("").to_string().len();
    text(&"b".repeat(n - empty))
}

#[tokio::test]
async fn rest_sends_count_cloud_custom_data_and_offline_push_info_in_the_12_kb() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob", "carol"]).await;
    let big = "c".repeat(100 * 1024);
    let cases = [
        ("a 100 KB CloudCustomData", with(msg(1, text("hi")), "CloudCustomData", json!(big))),
        ("a 100 KB OfflinePushInfo", with(msg(2, text("hi")), "OfflinePushInfo", json!({"Desc": "d", "Ext": big}))),
        // Each part is under 12 KB; together they are over.
        (
            "8 KB of MsgBody and 5 KB of CloudCustomData",
            with(msg(3, body_of(8 * 1024)), "CloudCustomData", json!("c".repeat(5 * 1024))),
        ),
        (
            "CloudCustomData that grows when written as JSON",
            with(msg(4, text("hi")), "CloudCustomData", json!("\u{1}".repeat(4 * 1024))),
        ),
    ];
    for (what, m) in cases {
        let r = s.rest("openim/sendmsg", m.clone()).await;
        assert_eq!(r["ErrorCode"], 93000, "sendmsg with {what}: {r}");
        let mut batch = m.clone();
        batch["To_Account"] = json!(["bob", "carol"]);
        let r = s.rest("openim/batchsendmsg", batch).await;
        assert_eq!(r["ErrorCode"], 93000, "batchsendmsg with {what}: {r}");
        // importmsg has no OfflinePushInfo (Tencent's field list): it is ignored there, not stored.
        if m.get("OfflinePushInfo").is_none() {
            let mut import = m;
            import["SyncFromOldSystem"] = json!(5);
            import["MsgTimeStamp"] = json!(1_699_999_000);
            let r = s.rest("openim/importmsg", import).await;
            assert_eq!(r["ErrorCode"], 93000, "importmsg with {what}: {r}");
        }
    }
    assert_eq!(stored(&s, "alice", "bob").await, 0);
    assert_eq!(stored(&s, "alice", "carol").await, 0);
    assert!(log(&s, "bob").await.is_empty(), "nothing reached bob's log");

    // At the limit, counted the same way, a message is stored.
    let push = json!({"Desc": "d", "Ext": "e"});
    let ccd = "c".repeat(2000);
    let fixed = content_bytes(&text(""), &ccd, Some(&push));
    let body = body_of(MAX_MESSAGE_CONTENT_BYTES - fixed + text("").to_string().len());
    assert_eq!(content_bytes(&body, &ccd, Some(&push)), MAX_MESSAGE_CONTENT_BYTES);
    let at_limit = with(with(msg(5, body.clone()), "CloudCustomData", json!(ccd)), "OfflinePushInfo", push.clone());
    let r = s.rest("openim/sendmsg", at_limit.clone()).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    // One byte more is refused.
    let over = with(at_limit, "CloudCustomData", json!(format!("{ccd}c")));
    let r = s.rest("openim/sendmsg", with(over, "MsgRandom", json!(6))).await;
    assert_eq!(r["ErrorCode"], 93000, "{r}");
    assert_eq!(stored(&s, "alice", "bob").await, 1);
    s.stop().await;
}

#[tokio::test]
async fn client_sends_count_cloud_custom_data_and_push_in_the_12_kb() {
    let s = TestServer::spawn().await;
    s.import(&["bob"]).await;
    let mut alice = WsClient::login(&s, "alice").await;
    let send = |random: u32, extra: Value| {
        let mut f = json!({"op": "send", "to": "bob", "random": random, "body": text("hi")});
        for (k, v) in extra.as_object().unwrap() {
            f[k] = v.clone();
        }
        f
    };
    // 60 KB of cloud_custom_data fits in a 64 KiB frame, and was stored until now.
    let r = alice.request(send(1, json!({"cloud_custom_data": "c".repeat(60 * 1024)}))).await;
    assert_eq!((&r["op"], &r["code"]), (&json!("error"), &json!(93000)), "{r}");
    let r = alice.request(send(2, json!({"push": {"Title": "t", "Ext": "e".repeat(60 * 1024)}}))).await;
    assert_eq!((&r["op"], &r["code"]), (&json!("error"), &json!(93000)), "{r}");
    let r = alice.request(send(3, json!({"body": body_of(8 * 1024), "cloud_custom_data": "c".repeat(5 * 1024)}))).await;
    assert_eq!((&r["op"], &r["code"]), (&json!("error"), &json!(93000)), "{r}");
    // `push` is Tencent's OfflinePushInfo: an object, as over REST.
    let r = alice.request(send(4, json!({"push": "not an object"}))).await;
    assert_eq!((&r["op"], &r["code"]), (&json!("error"), &json!(90043)), "{r}");
    assert_eq!(stored(&s, "alice", "bob").await, 0);
    assert!(log(&s, "bob").await.is_empty(), "nothing reached bob's log");

    // At the limit: stored, and its entry is within the documented frame size.
    let ccd = "c".repeat(3000);
    let body = body_of(MAX_MESSAGE_CONTENT_BYTES - content_bytes(&text(""), &ccd, None) + text("").to_string().len());
    assert_eq!(content_bytes(&body, &ccd, None), MAX_MESSAGE_CONTENT_BYTES);
    let r = alice.request(send(5, json!({"body": body, "cloud_custom_data": ccd}))).await;
    assert_eq!(r["op"], "sent", "{r}");
    let entries = log(&s, "bob").await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0]["msg"].to_string().len() <= MAX_MESSAGE_BYTES, "a message is at most MAX_MESSAGE_BYTES");
    s.stop().await;
}

#[tokio::test]
async fn a_message_refused_for_its_size_grants_none_of_its_uploads() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let url =
        format!("{}/v1/media?type=file&filename=f.txt&identifier=alice&usersig={}", s.base_url(), s.usersig("alice"));
    let up: Value = reqwest::Client::new().post(url).body("hello").send().await.unwrap().json().await.unwrap();
    let file = json!([{"MsgType": "TIMFileElem", "MsgContent": {"UUID": up["UUID"], "Url": up["URL"], "FileSize": 5}}]);
    let download = |user: &'static str| {
        let url = format!("{}?identifier={user}&usersig={}", up["URL"].as_str().unwrap(), s.usersig(user));
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };

    let mut alice = WsClient::login(&s, "alice").await;
    let big_ccd = "c".repeat(12 * 1024);
    let r = alice
        .request(json!({"op": "send", "to": "bob", "random": 1, "body": file, "cloud_custom_data": big_ccd}))
        .await;
    assert_eq!(r["code"], 93000, "{r}");
    let mut big_body = file.as_array().unwrap().clone();
    big_body.push(text(&"b".repeat(12 * 1024))[0].clone());
    let r = alice.send("bob", 2, json!(big_body)).await;
    assert_eq!(r["code"], 93000, "{r}");
    let r = s.rest("openim/sendmsg", with(msg(3, file.clone()), "CloudCustomData", json!(big_ccd))).await;
    assert_eq!(r["ErrorCode"], 93000, "{r}");
    assert_eq!(download("bob").await, 403, "bob was granted nothing");
    assert_eq!(stored(&s, "alice", "bob").await, 0);
    s.stop().await;
}

#[tokio::test]
async fn imported_nicknames_and_avatars_keep_the_profile_limit_of_500_bytes() {
    let s = TestServer::spawn().await;
    for field in ["Nick", "FaceUrl"] {
        let r = s.rest("im_open_login_svc/account_import", json!({"UserID": "bob", field: "n".repeat(501)})).await;
        assert_eq!(r["ErrorCode"], 40601, "{field}: {r}");
        let r = s
            .rest(
                "im_open_login_svc/multiaccount_import",
                json!({"AccountList": [{"UserID": "carol", field: "n".repeat(501)}]}),
            )
            .await;
        assert_eq!(r["FailAccounts"], json!(["carol"]), "{field}: {r}");
    }
    let r =
        s.rest("im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": "bob"}, {"UserID": "carol"}]})).await;
    assert_eq!(r["ResultItem"][0]["AccountStatus"], "NotImported", "{r}");
    assert_eq!(r["ResultItem"][1]["AccountStatus"], "NotImported", "{r}");
    let r = s.rest("im_open_login_svc/account_import", json!({"UserID": "bob", "Nick": "n".repeat(500)})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    s.stop().await;
}

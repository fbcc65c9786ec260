//! The hourly message log through the front door: messages sent over two hours of the test clock, the
//! clock moved past them, each hour's file fetched through `open_msg_svc/get_history` and downloaded from
//! its signed URL; sizes, MD5s and records checked; empty, future and expired hours; refused URLs; and a
//! server that was down catching up.

use std::io::Read;
use std::time::Duration;

use duet_test_support::{TestServer, text};
use md5::{Digest, Md5};
use serde_json::{Value, json};

/// The test clock's start, 2023-11-14T22:13:20Z, is 06:13:20 on 15 November in Beijing.
const FIRST_HOUR: &str = "2023111506";
const SECOND_HOUR: &str = "2023111507";

async fn spawn() -> TestServer {
    TestServer::spawn_with(|c| c.message_log.check_interval = Duration::from_millis(20)).await
}

async fn send(s: &TestServer, from: &str, to: &str, n: u32) {
    let body = json!({"From_Account": from, "To_Account": to, "MsgRandom": n, "MsgBody": text(&format!("m{n}"))});
    let r = s.rest("openim/sendmsg", body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

async fn get_history(s: &TestServer, hour: &str) -> Value {
    s.rest("open_msg_svc/get_history", json!({"ChatType": "C2C", "MsgTime": hour})).await
}

/// Asks for the hour until its file is there (the job runs every 20 ms), for at most 10 s.
async fn wait_for_file(s: &TestServer, hour: &str) -> Value {
    for _ in 0..500 {
        let r = get_history(s, hour).await;
        if r["ErrorCode"] == 0 {
            return r;
        }
        assert_eq!(r["ErrorCode"], 1004, "{r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the file of {hour} was not written");
}

/// Downloads the hour's file and checks it against its `File` entry; returns its `MsgList`.
async fn download(s: &TestServer, answer: &Value) -> Vec<Value> {
    let files = answer["File"].as_array().expect("a File array");
    assert_eq!(files.len(), 1, "{answer}");
    let f = &files[0];
    let url = f["URL"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/v1/msglog/C2C-", s.base_url())), "the request's host: {url}");
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/gzip");
    let gz = resp.bytes().await.unwrap();
    assert_eq!(f["GzipSize"], gz.len() as u64);
    assert_eq!(f["GzipMD5"], hex(&Md5::digest(&gz)));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(f["FileSize"], plain.len() as u64);
    assert_eq!(f["FileMD5"], hex(&Md5::digest(&plain)));
    let text = String::from_utf8(plain).unwrap();
    // One JSON value, and one record per line: `{"MsgList":[`, records ending in `,` but the last, `]}`.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!((lines[0], *lines.last().unwrap()), ("{\"MsgList\":[", "]}"));
    for (i, line) in lines[1..lines.len() - 1].iter().enumerate() {
        let record = line.strip_suffix(',').unwrap_or(line);
        assert_eq!(line.ends_with(','), i + 3 < lines.len(), "line {i}: {line}");
        serde_json::from_str::<Value>(record).unwrap();
    }
    let whole: Value = serde_json::from_str(&text).unwrap();
    whole["MsgList"].as_array().unwrap().clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<from>><to> <text>` of each record, in file order.
fn described(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{}>{} {}",
                r["From_Account"].as_str().unwrap(),
                r["To_Account"].as_str().unwrap(),
                r["MsgBody"][0]["MsgContent"]["Text"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn each_hour_is_one_file_with_every_message_once() {
    let s = spawn().await;
    s.import(&["alice", "bob", "carol"]).await;
    send(&s, "alice", "bob", 1).await;
    send(&s, "bob", "alice", 2).await;
    s.clock.advance_secs(600);
    send(&s, "alice", "carol", 3).await;
    let r = s
        .rest(
            "openim/batchsendmsg",
            json!({"From_Account": "carol", "To_Account": ["alice", "bob"], "MsgRandom": 4, "MsgBody": text("m4")}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(get_history(&s, FIRST_HOUR).await["ErrorCode"], 1004, "the hour has not ended");

    // 07:10 in Beijing: the first hour is written; the second hour's messages are not in it.
    s.clock.advance_secs(2800);
    let first = wait_for_file(&s, FIRST_HOUR).await;
    assert_eq!((first["ChatType"].as_str(), first["MsgTime"].as_str()), (Some("C2C"), Some(FIRST_HOUR)));
    assert_eq!((first["ActionStatus"].as_str(), first["ErrorInfo"].as_str()), (Some("OK"), Some("")));
    send(&s, "bob", "carol", 5).await;
    let recall = send_key(&s, "carol", "alice", 6).await;
    // Recalled and hidden from one side: still in its hour's file.
    let r = s
        .rest("openim/admin_msgwithdraw", json!({"From_Account": "carol", "To_Account": "alice", "MsgKey": recall}))
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let r = s
        .rest(
            "recentcontact/delete",
            json!({"From_Account": "bob", "Type": 1, "To_Account": "carol", "ClearRamble": 1}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");

    let records = download(&s, &first).await;
    assert_eq!(
        described(&records),
        ["alice>bob m1", "bob>alice m2", "alice>carol m3", "carol>alice m4", "carol>bob m4"]
    );
    let r = &records[0];
    assert_eq!(r["MsgTimestamp"], 1_700_000_000);
    assert_eq!(r["MsgRandom"], 1);
    assert_eq!(r["MsgKey"], format!("{}_1_1700000000", r["MsgSeq"]));
    assert_eq!(r["CloudCustomData"], "");

    s.clock.advance_secs(3600);
    let second = wait_for_file(&s, SECOND_HOUR).await;
    assert_eq!(described(&download(&s, &second).await), ["bob>carol m5", "carol>alice m6"]);

    // Files sit under the data directory, each with its sidecar, nothing half-written.
    let dir = s.data_dir().join("msglog");
    for hour in [FIRST_HOUR, SECOND_HOUR] {
        assert!(dir.join(format!("C2C-{hour}.gz")).is_file());
        assert!(dir.join(format!("C2C-{hour}.json")).is_file());
    }
    // A write in progress (a sidecar or the writer's marker, just after the file was answered for) has its
    // .tmp for a moment: nothing half-written stays.
    let half_written =
        || std::fs::read_dir(&dir).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
    for _ in 0..100 {
        if !half_written() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!half_written());
    s.stop().await;
}

/// Sends and returns the `MsgKey`.
async fn send_key(s: &TestServer, from: &str, to: &str, n: u32) -> String {
    let body = json!({"From_Account": from, "To_Account": to, "MsgRandom": n, "MsgBody": text(&format!("m{n}"))});
    let r = s.rest("openim/sendmsg", body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    r["MsgKey"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn empty_future_expired_and_malformed_hours() {
    let s = spawn().await;
    s.import(&["alice", "bob"]).await;
    send(&s, "alice", "bob", 1).await;
    s.clock.advance_secs(3600);
    let first = wait_for_file(&s, FIRST_HOUR).await;

    // An hour without messages has no file: Tencent's answer for an hour with none.
    let empty = get_history(&s, "2023111505").await;
    assert_eq!(empty, json!({"ActionStatus": "FAIL", "ErrorInfo": "Err_File_Not_Ready", "ErrorCode": 1004}));
    assert!(!s.data_dir().join("msglog/C2C-2023111505.gz").exists());
    assert_eq!(get_history(&s, "2030010100").await["ErrorCode"], 1004, "a future hour");
    let group = s.rest("open_msg_svc/get_history", json!({"ChatType": "Group", "MsgTime": FIRST_HOUR})).await;
    assert_eq!(group["ErrorCode"], 1004, "Duet has no group messages: {group}");
    assert_eq!(get_history(&s, "2023110100").await["ErrorCode"], 1005, "past the 7 days");
    for bad in [
        json!({"ChatType": "C2C", "MsgTime": "2023111524"}),
        json!({"ChatType": "C2C", "MsgTime": "20231115"}),
        json!({"ChatType": "c2c", "MsgTime": FIRST_HOUR}),
        json!({"MsgTime": FIRST_HOUR}),
    ] {
        let r = s.rest("open_msg_svc/get_history", bad.clone()).await;
        assert_eq!((r["ActionStatus"].as_str(), r["ErrorCode"].as_u64()), (Some("FAIL"), Some(60008)), "{bad}: {r}");
    }

    // URLs: the signed one works until it expires; a tampered one never does; a deleted file is gone.
    let url = first["File"][0]["URL"].as_str().unwrap().to_owned();
    let expires: i64 = url.split("expires=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    assert_eq!(expires, 1_700_000_000 + 3600 + 3600, "an hour from when it was asked for");
    assert_eq!(first["File"][0]["ExpireTime"], "2023-11-15 08:13:20", "in Beijing time");
    assert_eq!(status(&url).await, 200);
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut tampered = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "0" { "1" } else { "0" };
    tampered.replace_range(sig_at..sig_at + 1, flipped);
    assert_eq!(status(&tampered).await, 403);
    let later = url.replace(&format!("expires={expires}"), &format!("expires={}", expires + 86_400));
    assert_eq!(status(&later).await, 403, "a longer expiry is not signed");
    let other = url.replace(FIRST_HOUR, "2023111505");
    assert_eq!(status(&other).await, 403, "the signature covers the name");
    assert_eq!(status(url.split('?').next().unwrap()).await, 403, "unsigned");
    s.clock.advance_secs(3601);
    assert_eq!(status(&url).await, 403, "expired");
    let fresh = wait_for_file(&s, FIRST_HOUR).await["File"][0]["URL"].as_str().unwrap().to_owned();
    assert_eq!(status(&fresh).await, 200);

    // Past the retention the files go, and the hour answers 1005.
    s.clock.advance_secs(7 * 86_400);
    let gone = s.data_dir().join(format!("msglog/C2C-{FIRST_HOUR}.gz"));
    for _ in 0..500 {
        if !gone.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!gone.exists(), "deleted past the retention");
    assert!(!s.data_dir().join(format!("msglog/C2C-{FIRST_HOUR}.json")).exists());
    let expired = get_history(&s, FIRST_HOUR).await;
    assert_eq!(expired, json!({"ActionStatus": "FAIL", "ErrorInfo": "Err_File_Expired", "ErrorCode": 1005}));
    s.stop().await;
}

async fn status(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_deleted_file_is_404_and_a_server_that_was_down_catches_up() {
    let s = spawn().await;
    s.import(&["alice", "bob"]).await;
    send(&s, "alice", "bob", 1).await;
    s.clock.advance_secs(3600);
    let first = wait_for_file(&s, FIRST_HOUR).await;
    let url = first["File"][0]["URL"].as_str().unwrap().to_owned();
    std::fs::remove_file(s.data_dir().join(format!("msglog/C2C-{FIRST_HOUR}.gz"))).unwrap();
    assert_eq!(status(&url).await, 404);

    // Messages of the second hour, then the server stops before the hour ends and starts 3 hours later.
    send(&s, "bob", "alice", 2).await;
    let s = s.restart().await;
    s.clock.advance_secs(3 * 3600);
    let second = wait_for_file(&s, SECOND_HOUR).await;
    assert_eq!(described(&download(&s, &second).await), ["bob>alice m2"]);
    assert_eq!(get_history(&s, "2023111509").await["ErrorCode"], 1004, "no messages in the hours after");
    s.stop().await;
}

//! The `duet` binary killed with SIGKILL in the middle of a stream of sends loses nothing it acknowledged.

mod common;

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const KEY: &str = "crash-test-secret-key";
const SDKAPPID: u64 = 1_400_000_123;

fn start(data: &std::path::Path) -> (Child, String) {
    common::start(data, SDKAPPID, KEY)
}

fn admin_url(addr: &str, path: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let sig = duet_core::usersig::generate(KEY, SDKAPPID, "administrator", now, 3600, None);
    format!(
        "http://{addr}/v4/{path}?sdkappid={SDKAPPID}&identifier=administrator&usersig={sig}&random=1&contenttype=json"
    )
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> reqwest::Result<Value> {
    http.post(url).body(body.to_string()).send().await?.json().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_acks_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(data.path());
    let http = reqwest::Client::new();
    for user in ["alice", "bob"] {
        let r =
            post(&http, &admin_url(&addr, "im_open_login_svc/account_import"), json!({"UserID": user})).await.unwrap();
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }

    // Four senders stream messages; the process is killed while they are in flight.
    let url = Arc::new(admin_url(&addr, "openim/sendmsg"));
    let mut senders = Vec::new();
    for task in 0..4u32 {
        let (http, url) = (http.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..100_000u32 {
                let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": i, "MsgRandom": task,
                    "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": format!("{task}-{i}")}}]});
                match post(&http, &url, body).await {
                    Ok(r) if r["ErrorCode"] == 0 => acked.push(r["MsgKey"].as_str().unwrap().to_owned()),
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(acked.len() > 10, "too few sends were acknowledged before the kill ({})", acked.len());

    let (mut child, addr) = start(data.path());
    let mut stored = std::collections::HashSet::new();
    let mut last_key = String::new();
    loop {
        let body = json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 100, "MinTime": 0,
            "MaxTime": 4_000_000_000u64, "LastMsgKey": last_key});
        let r = post(&http, &admin_url(&addr, "openim/admin_getroammsg"), body).await.unwrap();
        assert_eq!(r["ErrorCode"], 0, "{r}");
        for m in r["MsgList"].as_array().unwrap() {
            assert!(stored.insert(m["MsgKey"].as_str().unwrap().to_owned()), "a message is listed twice: {m}");
        }
        if r["Complete"] == 1 {
            break;
        }
        last_key = r["LastMsgKey"].as_str().unwrap().to_owned();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let lost: Vec<_> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages were lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

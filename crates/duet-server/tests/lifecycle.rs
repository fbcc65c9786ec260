//! Start, restart and stop the real server: acknowledged messages and the dedup window survive a restart,
//! retention deletes what expired, and shutdown leaves nothing running.

use std::time::Duration;

use duet_test_support::{TestServer, text};
use serde_json::{Value, json};

async fn history(server: &TestServer, operator: &str, peer: &str) -> Vec<Value> {
    let r = server
        .rest(
            "openim/admin_getroammsg",
            json!({"Operator_Account": operator, "Peer_Account": peer, "MaxCnt": 100, "MinTime": 0, "MaxTime": 4_000_000_000u64}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    r["MsgList"].as_array().cloned().unwrap_or_default()
}

fn send_body(seq: u32, msg: &str) -> Value {
    json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": seq, "MsgRandom": 1000 + seq, "MsgBody": text(msg)})
}

#[tokio::test]
async fn acknowledged_messages_and_the_dedup_window_survive_a_restart() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let mut keys = Vec::new();
    for seq in 1..=20 {
        let r = server.rest("openim/sendmsg", send_body(seq, &format!("m{seq}"))).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
        keys.push(r["MsgKey"].as_str().unwrap().to_owned());
        server.clock.advance_secs(1);
    }

    let server = server.restart().await;

    let after: Vec<String> =
        history(&server, "bob", "alice").await.iter().map(|m| m["MsgKey"].as_str().unwrap().to_owned()).collect();
    assert_eq!(after, keys, "every acknowledged message is there after the restart, in order");

    // A retry of the last send, after the restart and 60 s later, is still recognised.
    server.clock.advance_secs(60);
    let retry = server.rest("openim/sendmsg", send_body(20, "m20")).await;
    assert_eq!(retry["MsgKey"], keys[19].as_str(), "{retry}");
    assert_eq!(history(&server, "bob", "alice").await.len(), 20, "the retry stored nothing new");
    server.stop().await;
}

#[tokio::test]
async fn retention_deletes_expired_history_and_unread_counts() {
    let server = TestServer::spawn_with(|c| c.purge_interval = Duration::from_millis(20)).await;
    server.import(&["alice", "bob"]).await;
    let r = server.rest("openim/sendmsg", send_body(1, "old")).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    server.clock.advance_secs(6 * 86_400);
    let r = server.rest("openim/sendmsg", send_body(2, "newer")).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert_eq!(history(&server, "bob", "alice").await.len(), 2);

    // Day 7 + 1 s: the first message is past the 7-day roaming retention, the second is not.
    server.clock.advance_secs(86_400 + 1);
    let left = wait_for(|| async { history(&server, "bob", "alice").await }, |h| h.len() == 1).await;
    assert_eq!(left[0]["MsgBody"], text("newer"));

    // Past the second one too: history is empty and the conversation is gone.
    server.clock.advance_secs(6 * 86_400);
    assert!(history(&server, "bob", "alice").await.is_empty(), "history past the retention is not served");
    let unread = || async { server.rest("openim/get_c2c_unread_msg_num", json!({"To_Account": "bob"})).await };
    wait_for(unread, |r| r["AllC2CUnreadMsgNum"] == 0).await;

    // The purge deleted the rows, not just hid them: with a longer retention nothing comes back.
    let server = server.restart_with(|c| c.core.roaming_retention_secs = 30 * 86_400).await;
    assert!(history(&server, "bob", "alice").await.is_empty(), "expired messages were really deleted");
    server.stop().await;
}

#[tokio::test]
async fn roaming_retention_is_configurable() {
    let server = TestServer::spawn_with(|c| c.core.roaming_retention_secs = 86_400).await;
    server.import(&["alice", "bob"]).await;
    server.rest("openim/sendmsg", send_body(1, "short-lived")).await;
    server.clock.advance_secs(86_400 + 1);
    assert!(history(&server, "bob", "alice").await.is_empty(), "history past the retention is not served");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_stops_serving_and_releases_the_port() {
    let server = TestServer::spawn().await;
    let addr = server.addr;
    server.import(&["alice"]).await;
    server.stop().await;
    // Nothing is left listening: the port can be bound again and connections are refused.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the server still accepts connections");
    tokio::net::TcpListener::bind(addr).await.expect("the port is free again");
}

/// Polls `fetch` until `done` holds, for at most 10 s.
async fn wait_for<T, F, Fut>(fetch: F, done: impl Fn(&T) -> bool) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = fetch().await;
        if done(&value) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not reached within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

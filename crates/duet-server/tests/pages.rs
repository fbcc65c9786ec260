//! Sync and history pages are bounded in bytes as well as count (issue 14, item 1): with large messages a
//! page holds fewer than asked for, says there is more, and paging still gets every message once.

use duet_proto::client::MAX_PAGE_BYTES;
use duet_test_support::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

const N: usize = 150;

/// Sends `frame` and returns the answer's text.
async fn ask(
    ws: &mut (impl SinkExt<Ws, Error = impl std::fmt::Debug> + StreamExt<Item = Result<Ws, impl std::fmt::Debug>> + Unpin),
    frame: Value,
) -> String {
    ws.send(Ws::Text(frame.to_string().into())).await.unwrap();
    loop {
        let Some(Ok(Ws::Text(t))) = ws.next().await else { panic!("the connection ended") };
        let f: Value = serde_json::from_str(&t).unwrap();
        if f["id"] == frame["id"] {
            return t.to_string();
        }
    }
}

#[tokio::test]
async fn pages_of_large_messages_stay_within_the_byte_limit_and_paging_gets_them_all() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let text = "x".repeat(11 * 1024);
    for k in 0..N {
        let r = s
            .rest(
                "openim/sendmsg",
                json!({"From_Account": "bob", "To_Account": "alice", "MsgRandom": k,
                       "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": format!("{k} {text}")}}]}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let url = format!("{}/v1/connect", s.base_url().replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let login = json!({"op": "login", "id": 1, "protocol": 1, "user": "alice", "usersig": s.usersig("alice"),
                       "platform": "Android", "device": "d"});
    ask(&mut ws, login).await;
    // Envelope: the frame's own fields around the entries.
    let bound = MAX_PAGE_BYTES + 256;

    let (mut after, mut seen, mut pages, mut id) = (0, 0, 0, 10);
    loop {
        id += 1;
        let t = ask(&mut ws, json!({"op": "sync", "id": id, "after": after, "limit": 500})).await;
        assert!(t.len() <= bound, "a synced frame of {} bytes", t.len());
        let f: Value = serde_json::from_str(&t).unwrap();
        let entries = f["entries"].as_array().unwrap();
        assert!(!entries.is_empty(), "{}", &t[..200]);
        seen += entries.len();
        pages += 1;
        after = entries.last().unwrap()["seq"].as_u64().unwrap();
        if f["more"] == false {
            break;
        }
    }
    assert_eq!((seen, after), (N, N as u64));
    assert!(pages > 1, "150 messages of 11 KB do not fit one page");

    let (mut before, mut texts) = (Value::Null, Vec::new());
    loop {
        id += 1;
        let mut frame = json!({"op": "history", "id": id, "peer": "bob", "count": 100});
        if !before.is_null() {
            frame["before"] = before.clone();
        }
        let t = ask(&mut ws, frame).await;
        assert!(t.len() <= bound, "a history frame of {} bytes", t.len());
        let f: Value = serde_json::from_str(&t).unwrap();
        let messages = f["messages"].as_array().unwrap();
        texts.extend(messages.iter().map(|m| m["body"][0]["MsgContent"]["Text"].as_str().unwrap().to_owned()));
        if f["complete"] == true {
            break;
        }
        before = messages.last().unwrap()["msg_key"].clone();
    }
    let firsts: Vec<usize> = texts.iter().map(|t| t.split(' ').next().unwrap().parse().unwrap()).collect();
    assert_eq!(firsts, (0..N).rev().collect::<Vec<_>>(), "every message once, newest first");
}

//! Floods and guessing (`docs/security.md`, *Floods and guessing*): one user sending as fast as a socket
//! allows, and logins with UserSigs that do not verify, from one address or for one account. Each test
//! performs the attack against the real server and checks what gets through, the error code, and that
//! everyone else is served meanwhile.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use duet_core::clock::Clock;
use duet_test_support::WsClient;
use duet_test_support::{SDKAPPID, SECRET_KEY, TestServer, text};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{WebSocketStream, client_async};

/// A raw WebSocket to `server` from the loopback address `from` (any of 127.0.0.0/8 reaches a server on
/// 127.0.0.1), so that tests can play several client addresses.
async fn connect_from(server: &TestServer, from: [u8; 4]) -> WebSocketStream<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let (ws, _) = client_async(format!("ws://{}/v1/connect", server.addr), tcp).await.unwrap();
    ws
}

/// Reads frames until one with `id`; panics if none comes within 5 s.
async fn answer(ws: &mut WebSocketStream<TcpStream>, id: u64) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("an answer within 5 s") {
            Some(Ok(Ws::Text(t))) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                if f["id"] == id {
                    return f;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the connection ended before the answer: {other:?}"),
        }
    }
}

/// Logs `user` in with `usersig` from `from`; returns the answer (`logged_in` or `error`).
async fn login_from(server: &TestServer, from: [u8; 4], user: &str, usersig: &str) -> Value {
    let mut ws = connect_from(server, from).await;
    let login = json!({"op": "login", "id": 1, "protocol": 1, "user": user, "usersig": usersig,
                       "platform": "Android", "device": "phone"});
    ws.send(Ws::Text(login.to_string().into())).await.unwrap();
    answer(&mut ws, 1).await
}

/// A UserSig of `user` made with another key: well-formed, but it does not verify.
fn forged(server: &TestServer, user: &str) -> String {
    duet_core::usersig::generate("not-the-key", SDKAPPID, user, server.clock.now_secs(), 86_400, None)
}

#[tokio::test]
async fn a_flooding_user_is_held_to_the_rate_and_others_are_served_meanwhile() {
    let server = TestServer::spawn_with(|c| {
        c.rate_limits.sends_per_sec = 200;
        c.rate_limits.send_burst = 50;
    })
    .await;
    server.import(&["mallory", "victim", "alice", "bob"]).await;

    // Mallory writes 3 000 sends as fast as the socket takes them, on two devices, never waiting for an
    // answer, and reads the answers on the side.
    let mut floods = Vec::new();
    for (platform, device) in [("Web", "a"), ("PC", "b")] {
        let mut ws = connect_from(&server, [127, 0, 0, 1]).await;
        let login = json!({"op": "login", "id": 1, "protocol": 1, "user": "mallory",
                           "usersig": server.usersig("mallory"), "platform": platform, "device": device});
        ws.send(Ws::Text(login.to_string().into())).await.unwrap();
        assert_eq!(answer(&mut ws, 1).await["op"], "logged_in");
        floods.push(ws);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, ws) in floods.into_iter().enumerate() {
        let (mut tx, mut rx) = ws.split();
        let writer = tokio::spawn(async move {
            for i in 0..1_500u64 {
                let send = json!({"op": "send", "id": i + 2, "to": "victim", "random": n as u64 * 10_000 + i,
                                  "body": text("spam")});
                if tx.send(Ws::Text(send.to_string().into())).await.is_err() {
                    break;
                }
            }
            tx
        });
        let reader = tokio::spawn(async move {
            let (mut sent, mut refused, mut other) = (0u64, 0u64, Vec::new());
            while sent + refused < 1_500 {
                let Ok(Some(Ok(Ws::Text(t)))) = tokio::time::timeout(Duration::from_secs(60), rx.next()).await else {
                    break;
                };
                let f: Value = serde_json::from_str(&t).unwrap();
                match (f["op"].as_str(), f["code"].as_u64()) {
                    (Some("sent"), _) => sent += 1,
                    (Some("error"), Some(7008)) => {
                        assert!(f["info"].as_str().unwrap().contains("at most 200 messages a second"), "{f}");
                        refused += 1;
                    }
                    (Some("entry"), _) => {}
                    _ => other.push(f),
                }
            }
            (sent, refused, other)
        });
        tasks.push((writer, reader));
    }

    // Meanwhile alice talks to bob, one message every 20 ms, and times each answer.
    let mut alice = WsClient::login(&server, "alice").await;
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let t = Instant::now();
        let reply = alice.send("bob", i, text(&format!("hello {i}"))).await;
        assert_eq!(reply["op"], "sent", "{reply}");
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (mut sent, mut refused) = (0, 0);
    for (writer, reader) in tasks {
        let (s, r, other) = reader.await.unwrap();
        assert!(other.is_empty(), "unexpected frames: {other:?}");
        sent += s;
        refused += r;
        drop(writer.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(sent + refused, 3_000, "every send is answered");
    // The burst, then 200 a second, over both devices together.
    let allowed = 50.0 + 200.0 * elapsed;
    assert!((sent as f64) <= allowed + 1.0, "{sent} sends accepted in {elapsed:.1} s; at most {allowed:.0} allowed");
    assert!(sent >= 50, "the burst is allowed: {sent}");
    assert!(refused > 0);
    // Refused sends stored nothing.
    assert_eq!(stored(&server, "victim", "mallory").await, sent);
    // Alice was served throughout: every send answered within a second (they take milliseconds).
    assert!(slowest < Duration::from_secs(1), "alice's slowest send took {slowest:?}");
}

#[tokio::test]
async fn failed_logins_from_one_address_lock_that_address_only() {
    let server = TestServer::spawn_with(|c| {
        c.rate_limits.failed_logins_per_ip = 10;
        c.rate_limits.failed_logins_per_account = 1_000;
    })
    .await;
    server.import(&["alice", "bob"]).await;
    let attacker = [127, 0, 0, 2];
    // Guessing bob's UserSig, and others' (each account fails only a few times).
    let mut codes = Vec::new();
    for i in 0..40 {
        let user = if i % 2 == 0 { "bob".to_owned() } else { format!("guess{i}") };
        let reply = login_from(&server, attacker, &user, &forged(&server, &user)).await;
        assert_eq!(reply["op"], "error");
        codes.push(reply["code"].as_u64().unwrap());
    }
    // The first ten are checked (and fail: another key's sig), the rest refused unchecked.
    assert!(codes[..10].iter().all(|&c| c == 70009), "{codes:?}");
    assert!(codes[10..].iter().all(|&c| c == 70050), "{codes:?}");
    // Even a genuine sig is refused from that address for now...
    let reply = login_from(&server, attacker, "alice", &server.usersig("alice")).await;
    assert_eq!((reply["op"].as_str(), reply["code"].as_u64()), (Some("error"), Some(70050)), "{reply}");
    assert!(reply["info"].as_str().unwrap().contains("from this address"), "{reply}");
    // ...while every other address logs in, bob included.
    for user in ["alice", "bob"] {
        let reply = login_from(&server, [127, 0, 0, 3], user, &server.usersig(user)).await;
        assert_eq!(reply["op"], "logged_in", "{reply}");
    }
    // The REST API counts the same way: the locked address is refused, another is not.
    let bad =
        format!("v4/openim/sendmsg?sdkappid={}&identifier=administrator&usersig=x&random=1&contenttype=json", SDKAPPID);
    let reply = rest_from(&server, attacker, &bad).await;
    assert_eq!(reply["ErrorCode"], 70050, "{reply}");
    let good = format!("v4/openim/sendmsg?{}", server.admin_query());
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": text("hi")});
    let reply = rest_from_with(&server, [127, 0, 0, 3], &good, &body).await;
    assert_eq!(reply["ErrorCode"], 0, "{reply}");
}

#[tokio::test]
async fn failed_logins_for_one_account_lock_that_account_only() {
    let server = TestServer::spawn_with(|c| {
        c.rate_limits.failed_logins_per_ip = 1_000;
        c.rate_limits.failed_logins_per_account = 5;
    })
    .await;
    server.import(&["alice", "bob"]).await;
    // Guessing alice's UserSig from many addresses.
    let mut codes = Vec::new();
    for i in 0..12u8 {
        let reply = login_from(&server, [127, 0, 1, i + 1], "alice", &forged(&server, "alice")).await;
        codes.push(reply["code"].as_u64().unwrap());
    }
    assert!(codes[..5].iter().all(|&c| c == 70009), "{codes:?}");
    assert!(codes[5..].iter().all(|&c| c == 70050), "{codes:?}");
    let reply = login_from(&server, [127, 0, 2, 1], "alice", &server.usersig("alice")).await;
    assert_eq!(reply["code"], 70050, "{reply}");
    assert!(reply["info"].as_str().unwrap().contains("for this account"), "{reply}");
    // Other accounts, from the same addresses, are not touched.
    let reply = login_from(&server, [127, 0, 1, 1], "bob", &server.usersig("bob")).await;
    assert_eq!(reply["op"], "logged_in", "{reply}");
}

#[tokio::test]
async fn expired_usersigs_are_not_failed_logins() {
    // A client whose app hands out expired sigs retries with them: that is not guessing, and must not
    // lock its address out once it has a fresh one.
    let server = TestServer::spawn_with(|c| c.rate_limits.failed_logins_per_ip = 3).await;
    server.import(&["alice"]).await;
    let expired =
        duet_core::usersig::generate(SECRET_KEY, SDKAPPID, "alice", server.clock.now_secs() - 3_600, 60, None);
    for _ in 0..10 {
        let reply = login_from(&server, [127, 0, 0, 4], "alice", &expired).await;
        assert_eq!(reply["code"], 70001, "{reply}");
    }
    let reply = login_from(&server, [127, 0, 0, 4], "alice", &server.usersig("alice")).await;
    assert_eq!(reply["op"], "logged_in", "{reply}");
}

/// How many messages `operator`'s history with `peer` holds (`admin_getroammsg`, paged by `LastMsgKey`).
async fn stored(server: &TestServer, operator: &str, peer: &str) -> u64 {
    let (mut count, mut last_key) = (0, Value::Null);
    loop {
        let mut body = json!({"Operator_Account": operator, "Peer_Account": peer, "MaxCnt": 100,
                              "MinTime": 0, "MaxTime": 4_000_000_000u64});
        if !last_key.is_null() {
            body["LastMsgKey"] = last_key.clone();
        }
        let r = server.rest("openim/admin_getroammsg", body).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
        count += r["MsgCnt"].as_u64().unwrap();
        if r["Complete"] == 1 {
            return count;
        }
        last_key = r["LastMsgKey"].clone();
    }
}

/// A REST call with an empty JSON body from the loopback address `from`, over a raw HTTP/1.1 connection.
async fn rest_from(server: &TestServer, from: [u8; 4], path_and_query: &str) -> Value {
    rest_from_with(server, from, path_and_query, &json!({})).await
}

async fn rest_from_with(server: &TestServer, from: [u8; 4], path_and_query: &str, body: &Value) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut tcp = socket.connect(server.addr).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST /{path_and_query} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8(response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("a response");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

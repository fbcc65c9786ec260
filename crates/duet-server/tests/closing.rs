//! How the server closes a WebSocket (issue 13, item 6): every close it makes carries a code and a reason
//! (`docs/protocol.md`, *Closing*), after an `error` (or `kicked`) frame where the protocol has one.

use std::time::Duration;

use duet_test_support::{TestServer, WsClient};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(s: &TestServer) -> Socket {
    let url = format!("{}/v1/connect", s.base_url().replacen("http", "ws", 1));
    tokio_tungstenite::connect_async(url).await.expect("websocket connect").0
}

async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Ws::Text(frame.to_string().into())).await.expect("sending a frame");
}

async fn login(s: &TestServer, user: &str, device: &str) -> Socket {
    let mut ws = connect(s).await;
    send(
        &mut ws,
        json!({"op": "login", "id": 1, "protocol": 1, "user": user, "usersig": s.usersig(user),
                         "platform": "Android", "device": device}),
    )
    .await;
    let reply = next_text(&mut ws).await;
    assert_eq!(reply["op"], "logged_in", "{reply}");
    ws
}

async fn next_text(ws: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s") {
            Some(Ok(Ws::Text(t))) => return serde_json::from_str(&t).expect("JSON"),
            Some(Ok(_)) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The text frames up to the close, and the close frame's code and reason.
async fn until_close(ws: &mut Socket) -> (Vec<Value>, u16, String) {
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("the server closes within 10 s") {
            Some(Ok(Ws::Text(t))) => frames.push(serde_json::from_str(&t).expect("JSON")),
            Some(Ok(Ws::Close(Some(close)))) => return (frames, close.code.into(), close.reason.to_string()),
            Some(Ok(Ws::Close(None))) => panic!("a close frame without a code, after {frames:?}"),
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame ({other:?}), after {frames:?}"),
        }
    }
}

fn codes(frames: &[Value]) -> Vec<Value> {
    frames.iter().map(|f| f["code"].clone()).collect()
}

#[tokio::test]
async fn a_binary_frame_gets_an_error_then_close_1003_before_and_after_login() {
    let s = TestServer::spawn().await;
    s.import(&["bob"]).await;
    let mut ws = connect(&s).await;
    ws.send(Ws::Binary(vec![1, 2, 3].into())).await.unwrap();
    let (frames, code, reason) = until_close(&mut ws).await;
    assert_eq!((codes(&frames), code), (vec![json!(6017)], 1003), "{frames:?} {reason}");
    assert!(reason.contains("binary"), "{reason}");

    let mut ws = login(&s, "bob", "d1").await;
    ws.send(Ws::Binary(vec![1, 2, 3].into())).await.unwrap();
    let (frames, code, _) = until_close(&mut ws).await;
    assert_eq!((codes(&frames), code), (vec![json!(6017)], 1003), "{frames:?}");
}

#[tokio::test]
async fn a_frame_over_64_kib_gets_an_error_then_close_1009() {
    let s = TestServer::spawn().await;
    s.import(&["bob"]).await;
    let mut ws = login(&s, "bob", "d1").await;
    let huge = json!({"op": "ping", "id": 2, "pad": "x".repeat(70 * 1024)});
    send(&mut ws, huge).await;
    let (frames, code, reason) = until_close(&mut ws).await;
    assert_eq!((codes(&frames), code), (vec![json!(6017)], 1009), "{frames:?} {reason}");
    assert!(frames[0]["info"].as_str().unwrap().contains("65536"), "{frames:?}");
}

#[tokio::test]
async fn a_refused_login_gets_its_error_then_close_1008() {
    let s = TestServer::spawn().await;
    s.import(&["bob"]).await;
    let mut ws = connect(&s).await;
    send(&mut ws, json!({"op": "ping", "id": 5})).await;
    let (frames, code, _) = until_close(&mut ws).await;
    assert_eq!((codes(&frames), code), (vec![json!(6014)], 1008), "a frame before login: {frames:?}");
    assert_eq!(frames[0]["id"], 5);

    let mut ws = connect(&s).await;
    send(
        &mut ws,
        json!({"op": "login", "id": 1, "protocol": 1, "user": "bob", "usersig": "not-a-sig",
                         "platform": "Android", "device": "d"}),
    )
    .await;
    let (frames, code, reason) = until_close(&mut ws).await;
    assert_eq!(code, 1008, "{frames:?}");
    assert_eq!(frames[0]["op"], "error", "{frames:?}");
    assert_eq!(reason, "login refused");
}

#[tokio::test]
async fn silence_before_and_after_login_gets_close_4000() {
    let s = TestServer::spawn_with(|c| {
        c.ws.login = Duration::from_millis(300);
        c.ws.idle = Duration::from_millis(600);
    })
    .await;
    s.import(&["bob"]).await;
    let mut ws = connect(&s).await;
    let (frames, code, reason) = until_close(&mut ws).await;
    assert_eq!((frames.len(), code), (0, 4000), "{reason}");
    assert!(reason.contains("login"), "{reason}");

    let mut ws = login(&s, "bob", "d1").await;
    let (frames, code, reason) = until_close(&mut ws).await;
    assert_eq!((frames.len(), code), (0, 4000), "{frames:?} {reason}");
    assert!(reason.starts_with("idle"), "{reason}");
}

#[tokio::test]
async fn logout_closes_1000_and_a_kick_4001_after_its_frame() {
    let s = TestServer::spawn().await;
    s.import(&["bob"]).await;
    let mut ws = login(&s, "bob", "d1").await;
    send(&mut ws, json!({"op": "logout", "id": 2})).await;
    let (frames, code, reason) = until_close(&mut ws).await;
    assert_eq!((frames[0]["op"].clone(), code), (json!("ok"), 1000), "{frames:?} {reason}");

    let mut first = login(&s, "bob", "d1").await;
    // Another Android device: the policy allows one per platform.
    let _second = WsClient::login(&s, "bob").await;
    let (frames, code, _) = until_close(&mut first).await;
    assert_eq!((frames[0]["op"].clone(), code), (json!("kicked"), 4001), "{frames:?}");
}

#[tokio::test]
async fn shutdown_answers_what_was_read_then_closes_1001() {
    let s = TestServer::spawn().await;
    s.import(&["bob"]).await;
    let mut ws = login(&s, "bob", "d1").await;
    // Read and answered before the shutdown: the connection is live.
    send(&mut ws, json!({"op": "ping", "id": 2})).await;
    assert_eq!(next_text(&mut ws).await["op"], "pong");
    let stopping = tokio::spawn(s.stop());
    let (frames, code, reason) = until_close(&mut ws).await;
    assert_eq!(code, 1001, "{frames:?} {reason}");
    stopping.await.unwrap();
}

#[tokio::test]
async fn shutdown_answers_every_send_it_read_and_stores_only_those() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    let ws = login(&s, "alice", "d1").await;
    let (mut tx, mut rx) = ws.split();
    // A send every millisecond, and the shutdown asked for while they arrive.
    let writer = tokio::spawn(async move {
        for i in 0..100u32 {
            let frame =
                json!({"op": "send", "id": 10 + i, "to": "bob", "random": i, "body": duet_test_support::text("x")});
            if tx.send(Ws::Text(frame.to_string().into())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let restarting = tokio::spawn(s.restart());
    let mut answers = Vec::new();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.next()).await.expect("the server closes within 10 s") {
            Some(Ok(Ws::Text(t))) => answers.push(serde_json::from_str::<Value>(&t).unwrap()),
            Some(Ok(Ws::Close(Some(close)))) => break u16::from(close.code),
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    };
    writer.await.unwrap();
    assert_eq!(code, 1001);
    answers.retain(|f| f["op"] != "entry");
    assert!(answers.iter().all(|f| f["op"] == "sent"), "every answer is a success: {answers:?}");
    assert!(answers.len() > 1, "sends were answered before the shutdown: {answers:?}");
    let s = restarting.await.unwrap();
    // What was answered is stored, and nothing else: no send was read and dropped, or stored unanswered.
    let r = s
        .rest(
            "openim/admin_getroammsg",
            json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 100, "MinTime": 0,
                   "MaxTime": 4_000_000_000u64}),
        )
        .await;
    assert_eq!(r["MsgCnt"].as_u64(), Some(answers.len() as u64), "{r}");
}

/// A raw connection upgraded to a WebSocket by hand, for frames no WebSocket library writes.
async fn raw_upgrade(s: &TestServer) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = format!(
        "GET /v1/connect HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        s.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// Writes `frame` and reads the server's frames up to its close frame: the close code.
async fn close_code_after(s: &TestServer, frame: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = raw_upgrade(s).await;
    tcp.write_all(frame).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut bytes)).await.expect("closed in 10 s");
    // Server frames are unmasked; skip text frames (an `error`) to the close frame (opcode 8).
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let (opcode, mut len, mut start) = (bytes[at] & 0x0f, usize::from(bytes[at + 1] & 0x7f), at + 2);
        if len == 126 {
            len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            start += 2;
        }
        if opcode == 8 {
            return u16::from_be_bytes([bytes[start], bytes[start + 1]]);
        }
        at = start + len;
    }
    panic!("no close frame in {bytes:?}");
}

#[tokio::test]
async fn an_unmasked_frame_closes_1002_and_a_text_frame_that_is_not_utf8_closes_1007() {
    let s = TestServer::spawn().await;
    // A client must mask its frames (RFC 6455 §5.1).
    assert_eq!(close_code_after(&s, b"\x81\x02hi").await, 1002);
    // A masked text frame (mask 0) carrying bytes that are not UTF-8.
    assert_eq!(close_code_after(&s, b"\x81\x82\x00\x00\x00\x00\xff\xfe").await, 1007);
}

/// A client that asks for pages and stops reading is cut off once a write to it has waited the write
/// timeout (`docs/security.md`: "at the latest when that write has waited"), not after waiting again to
/// flush and again to send a close frame it would never read (two or three timeouts in all, before).
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_one_write_timeout_after_its_writes_block() {
    let s = TestServer::spawn_with(|c| c.ws.write = Duration::from_secs(2)).await;
    s.import(&["alice", "bob"]).await;
    // alice's log: 100 messages of 10 KB, so each page asked is ~1 MB.
    let text = "x".repeat(10_000);
    for k in 0..100 {
        let body = json!({"From_Account": "bob", "To_Account": "alice", "MsgRandom": k,
                          "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]});
        assert_eq!(s.rest("openim/sendmsg", body).await["ErrorCode"], 0);
    }
    // A 4 KiB receive buffer: the server's writes wait after a few KiB.
    let addr: std::net::SocketAddr = s.base_url().trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/v1/connect");
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.unwrap();
    send(
        &mut ws,
        json!({"op": "login", "id": 1, "protocol": 1, "user": "alice", "usersig": s.usersig("alice"),
               "platform": "Android", "device": "phone"}),
    )
    .await;
    assert_eq!(next_text(&mut ws).await["op"], "logged_in");
    for id in 2..18 {
        let frame = json!({"op": "sync", "id": id, "after": 0, "limit": 500});
        ws.feed(Ws::Text(frame.to_string().into())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let asked = std::time::Instant::now();
    // Pings the server does not read while it waits to write: once it lets go of the socket with them
    // unread, the kernel resets the connection, and the next ping fails.
    for id in 100.. {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if ws.send(Ws::Text(json!({"op": "ping", "id": id}).to_string().into())).await.is_err() {
            break;
        }
        assert!(asked.elapsed() < Duration::from_secs(10), "still connected after 10 s");
    }
    let took = asked.elapsed();
    // One timeout and the time to read a page and fill the buffers: well under two timeouts.
    assert!(took < Duration::from_millis(3500), "cut off {took:?} after its requests, with a 2 s write timeout");
}

//! Clients that hold connections without using them, through the front door (raw TCP to the real
//! server on `127.0.0.1:0`, with the deadlines under test set short): a socket that never speaks,
//! headers dribbled a byte at a time, an idle keep-alive connection, a stalled upload, a stalled REST
//! body and a download nobody reads are all cut off, while a WebSocket outlives the HTTP deadlines; and connections over the caps (per address, in all) are refused without
//! touching anyone else's. Attackers connect from 127.0.0.2, the legitimate clients from 127.0.0.1.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use duet_test_support::{TestServer, WsClient};
use futures_util::stream;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// How long the server lets a connection closed for a deadline finish closing.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A connection to `server` from `from`.
async fn connect_from(server: SocketAddr, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).expect("binding a loopback source address");
    socket.connect(server).await.expect("connecting")
}

/// Reads until the server closes the connection (end of stream or reset), for at most `within`; returns
/// what it sent before.
async fn until_closed(tcp: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.expect("the server did not close the connection in time");
    got
}

/// A REST request with an empty body (any path is answered, with HTTP 200 and Tencent's envelope).
const REQUEST: &[u8] = b"POST /v4/openim/sendmsg HTTP/1.1\r\nHost: duet\r\nContent-Length: 0\r\n\r\n";

/// Reads one HTTP/1.1 response with a Content-Length: its status and body; `None` if the connection
/// closed first.
async fn response(tcp: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let status = head.split_whitespace().nth(1)?.parse().ok()?;
            let length: usize =
                head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= end + 4 + length {
                return Some((status, got[end + 4..end + 4 + length].to_vec()));
            }
        }
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A new connection from `from` that makes one request and keeps the connection; `None` if refused.
async fn served(server: SocketAddr, from: [u8; 4]) -> Option<TcpStream> {
    let mut tcp = connect_from(server, from).await;
    tcp.write_all(REQUEST).await.ok()?;
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), response(&mut tcp)).await.expect("an answer")?;
    assert_eq!(status, 200);
    Some(tcp)
}

/// [`served`] until it succeeds, for at most 5 s: the server notices closed connections on its own time.
async fn eventually_served(server: SocketAddr, from: [u8; 4]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while served(server, from).await.is_none() {
        assert!(Instant::now() < deadline, "still refused 5 s after the attacker left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_closed_at_the_header_timeout() {
    let timeout = Duration::from_millis(500);
    let server = TestServer::spawn_with(|c| c.http.header_timeout = timeout).await;
    let started = Instant::now();
    let mut tcp = connect_from(server.addr, ATTACKER).await;
    assert!(until_closed(&mut tcp, Duration::from_secs(5)).await.is_empty(), "closed without an answer");
    assert!(started.elapsed() >= timeout, "not before the header timeout: {:?}", started.elapsed());
    server.stop().await;
}

#[tokio::test]
async fn headers_dribbled_a_byte_at_a_time_are_cut_at_the_header_timeout() {
    let timeout = Duration::from_millis(600);
    let server = TestServer::spawn_with(|c| c.http.header_timeout = timeout).await;
    // Headers that would take 10 s at one byte every 50 ms, each byte resetting any per-read timer.
    let head = format!("POST /v4/openim/sendmsg HTTP/1.1\r\nHost: duet\r\nX-Pad: {}\r\n", "a".repeat(200));
    let tcp = connect_from(server.addr, ATTACKER).await;
    let (mut reader, mut writer) = tcp.into_split();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for byte in head.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    });
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "closed without an answer: {read:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout && elapsed < Duration::from_secs(3), "cut at the header timeout: {elapsed:?}");
    dribble.abort();
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout_and_a_dribbled_second_request_sooner() {
    let (header, idle) = (Duration::from_millis(400), Duration::from_millis(1500));
    let server = TestServer::spawn_with(|c| {
        c.http.header_timeout = header;
        c.http.idle_timeout = idle;
    })
    .await;

    // Answered, then idle: closed at the idle timeout, not the (shorter) header timeout.
    let mut tcp = served(server.addr, ATTACKER).await.expect("served");
    let idle_from = Instant::now();
    assert!(until_closed(&mut tcp, Duration::from_secs(5)).await.is_empty());
    let elapsed = idle_from.elapsed();
    // The server's idle time starts when it sent the answer, a little before this side read it.
    let early = Duration::from_millis(100);
    assert!(
        elapsed + early >= idle && elapsed < idle + Duration::from_secs(2),
        "closed at the idle timeout: {elapsed:?}"
    );

    // A keep-alive connection answered, then a second request started but dribbled: cut at the header
    // timeout counted from its first byte.
    let mut tcp = served(server.addr, ATTACKER).await.expect("served");
    let started = Instant::now();
    tcp.write_all(b"POST /v4/openim/sendmsg HTTP/1.1\r\nHo").await.unwrap();
    assert!(until_closed(&mut tcp, Duration::from_secs(5)).await.is_empty());
    let elapsed = started.elapsed();
    assert!(elapsed >= header && elapsed < idle, "cut at the header timeout: {elapsed:?}");

    // A connection in use stays open past both.
    let mut tcp = served(server.addr, ATTACKER).await.expect("served");
    let until = Instant::now() + idle + header;
    while Instant::now() < until {
        tokio::time::sleep(header / 2).await;
        tcp.write_all(REQUEST).await.expect("still open");
        assert_eq!(response(&mut tcp).await.expect("still answered").0, 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_websocket_outlives_the_http_deadlines() {
    let (header, idle) = (Duration::from_millis(300), Duration::from_millis(500));
    let server = TestServer::spawn_with(|c| {
        c.http.header_timeout = header;
        c.http.idle_timeout = idle;
        c.http.send_timeout = idle;
    })
    .await;
    server.import(&["alice", "bob"]).await;
    let mut ws = WsClient::login(&server, "alice").await;
    // Past every HTTP deadline: the upgraded connection is the WebSocket layer's, with its own limits.
    tokio::time::sleep(header + idle + CLOSE_GRACE).await;
    let r = ws.send("bob", 1, duet_test_support::text("still here")).await;
    assert_eq!(r["op"], "sent", "{r}");
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_upload_is_cut_and_its_blob_removed_while_a_slow_legitimate_one_succeeds() {
    let window = Duration::from_secs(1);
    let server = TestServer::spawn_with(|c| {
        c.http.upload_min_bytes = 64 * 1024;
        c.http.upload_window = window;
    })
    .await;
    server.import(&["alice"]).await;
    let auth = format!("identifier=alice&usersig={}", server.usersig("alice"));

    // The stalled upload: 1 MiB announced, 10 KiB sent, then nothing.
    let mut stalled = connect_from(server.addr, ATTACKER).await;
    let head = format!(
        "POST /v1/media?type=file&filename=stalled.bin&{auth} HTTP/1.1\r\nHost: duet\r\nContent-Length: 1048576\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&[7u8; 10 * 1024]).await.unwrap();

    // Meanwhile a slow but steady upload: 100 KiB every 100 ms for 2.5 s, well above 64 KiB a second.
    let chunks = stream::unfold(0u32, |i| async move {
        if i == 25 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(vec![1u8; 100 * 1024]), i + 1))
    });
    let url = format!("{}/v1/media?type=file&filename=steady.bin&{auth}", server.base_url());
    let steady = reqwest::Client::new().post(url).body(reqwest::Body::wrap_stream(chunks)).send();

    let (cut, steady) = tokio::join!(tokio::time::timeout(Duration::from_secs(10), response(&mut stalled)), steady);
    let (status, body) = cut.expect("answered in time").expect("an answer before the close");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["ActionStatus"], "FAIL", "{body}");
    assert!(until_closed(&mut stalled, Duration::from_secs(5)).await.is_empty(), "then closed");

    let steady = steady.expect("the steady upload");
    assert_eq!(steady.status(), 200);
    let steady: Value = steady.json().await.unwrap();
    assert_eq!(steady["Size"], 25 * 100 * 1024, "{steady}");

    // Only the steady upload's blob is kept; nothing of the stalled one, even in tmp/.
    let uuid = steady["UUID"].as_str().unwrap().to_owned();
    let mut files = Vec::new();
    let mut dirs = vec![server.config.media.dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.file_name().unwrap().to_string_lossy().starts_with("media.db") {
                files.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    assert_eq!(files, vec![uuid]);
    server.stop().await;
}

#[tokio::test]
async fn a_download_the_client_stops_reading_is_cut_at_the_send_timeout() {
    let timeout = Duration::from_millis(500);
    let server = TestServer::spawn_with(|c| c.http.send_timeout = timeout).await;
    server.import(&["alice"]).await;
    let auth = format!("identifier=alice&usersig={}", server.usersig("alice"));
    let size = 16 * 1024 * 1024;
    let url = format!("{}/v1/media?type=file&filename=big.bin&{auth}", server.base_url());
    let r: Value = reqwest::Client::new().post(url).body(vec![3u8; size]).send().await.unwrap().json().await.unwrap();
    let uuid = r["UUID"].as_str().unwrap().to_owned();

    // A small receive buffer, so that little of the file fits in the sockets' buffers.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(ATTACKER), 0)).unwrap();
    let mut tcp = socket.connect(server.addr).await.unwrap();
    let get = format!("GET /v1/media/{uuid}?{auth} HTTP/1.1\r\nHost: duet\r\n\r\n");
    tcp.write_all(get.as_bytes()).await.unwrap();
    // The attack: reading nothing for longer than the send timeout.
    tokio::time::sleep(3 * timeout).await;
    let got = until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&got[..got.len().min(100)]));
    assert!(got.len() < size, "cut off before the end: {} of {size} bytes", got.len());

    // Someone reading is served the whole file.
    let url = format!("{}/v1/media/{uuid}?{auth}", server.base_url());
    assert_eq!(reqwest::get(url).await.unwrap().bytes().await.unwrap().len(), size);
    server.stop().await;
}

#[tokio::test]
async fn a_rest_body_not_received_in_time_is_answered_and_the_connection_closed() {
    let server = TestServer::spawn_with(|c| c.http.body_timeout = Duration::from_millis(500)).await;
    let mut tcp = connect_from(server.addr, ATTACKER).await;
    let query = server.admin_query();
    let head = format!("POST /v4/openim/sendmsg?{query} HTTP/1.1\r\nHost: duet\r\nContent-Length: 100\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(b"{\"From_Ac").await.unwrap();
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), response(&mut tcp))
        .await
        .expect("answered in time")
        .expect("an answer");
    assert!(started.elapsed() >= Duration::from_millis(450));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "Tencent's REST API always answers HTTP 200");
    assert_eq!(body["ErrorCode"], 60008, "{body}");
    assert_eq!(body["ErrorInfo"], "the request body was not received in time");
    assert!(until_closed(&mut tcp, Duration::from_secs(5)).await.is_empty(), "then closed");
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_refused_and_others_are_served() {
    let server = TestServer::spawn_with(|c| c.http.max_connections_per_ip = Some(5)).await;
    let mut attacker = Vec::new();
    for _ in 0..5 {
        attacker.push(served(server.addr, ATTACKER).await.expect("under the cap"));
    }
    // The sixth from that address is closed at once, unanswered.
    let started = Instant::now();
    assert!(served(server.addr, ATTACKER).await.is_none(), "over the cap");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Another address is served, REST and WebSocket alike.
    assert!(served(server.addr, [127, 0, 0, 1]).await.is_some());
    server.import(&["alice"]).await;
    drop(WsClient::login(&server, "alice").await);
    // The attacker leaves: its address is served again.
    drop(attacker);
    eventually_served(server.addr, ATTACKER).await;
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_total_cap_are_refused_until_some_close() {
    let server = TestServer::spawn_with(|c| {
        c.http.max_connections = Some(5);
        // Else half the total.
        c.http.max_connections_per_ip = Some(5);
    })
    .await;
    // The attacker takes every slot left (the test client may hold one already).
    let mut attacker = Vec::new();
    while let Some(tcp) = served(server.addr, ATTACKER).await {
        attacker.push(tcp);
        assert!(attacker.len() <= 5, "more connections than the cap");
    }
    assert!(attacker.len() >= 4, "{} served", attacker.len());
    // Everyone is refused now, at once.
    let started = Instant::now();
    assert!(served(server.addr, [127, 0, 0, 1]).await.is_none());
    assert!(started.elapsed() < Duration::from_secs(2));
    // The attacker leaves: others are served again.
    drop(attacker);
    eventually_served(server.addr, [127, 0, 0, 1]).await;
    server.stop().await;
}

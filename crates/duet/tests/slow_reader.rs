//! Issue 14, item 1, performed against the real `duet serve` process: a client that asks for its whole sync
//! log again and again and never reads. Each such connection is cut off once a write to it has waited for
//! the write timeout (here 2 s), and what it made the server hold is bounded by the page limits, so the
//! server's memory stays within a few pages per connection and comes back down, while an honest client
//! is served throughout. The RSS is read from `/proc/<pid>/status`.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

const KEY: &str = "slow-reader-secret-key";
const SDKAPPID: u64 = 1_400_000_125;
const MB: u64 = 1024 * 1024;

fn sig(user: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    duet_core::usersig::generate(KEY, SDKAPPID, user, now, 3600, None)
}

/// The process's open sockets.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0)
}

async fn rest(http: &reqwest::Client, addr: &str, path: &str, body: Value) -> Value {
    let q = format!(
        "sdkappid={SDKAPPID}&identifier=administrator&usersig={}&random=1&contenttype=json",
        sig("administrator")
    );
    let r: Value =
        http.post(format!("http://{addr}/v4/{path}?{q}")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["ErrorCode"], 0, "{path}: {r}");
    r
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects with a small receive buffer (so the server's writes block soon) and logs `user` in.
async fn login(addr: &str, user: &str, device: &str) -> Socket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let url = format!("ws://{addr}/v1/connect");
    let (mut ws, _) = tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
        .await
        .expect("websocket handshake");
    let login = json!({"op": "login", "id": 1, "protocol": 1, "user": user, "usersig": sig(user),
                       "platform": "Android", "device": device});
    ws.send(Ws::Text(login.to_string().into())).await.unwrap();
    loop {
        let Some(Ok(Ws::Text(t))) = ws.next().await else { panic!("no login answer") };
        let f: Value = serde_json::from_str(&t).unwrap();
        if f["id"] == 1 {
            assert_eq!(f["op"], "logged_in", "{f}");
            return ws;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_are_cut_off_and_their_memory_freed() {
    let data = tempfile::tempdir().unwrap();
    let conf = data.path().join("duet.toml");
    std::fs::write(&conf, "[websocket]\nwrite_timeout_secs = 2\n").unwrap();
    let (mut child, addr) = common::start_with(data.path(), SDKAPPID, KEY, &["--config", conf.to_str().unwrap()]);
    let pid = child.id();
    let http = reqwest::Client::new();
    rest(&http, &addr, "im_open_login_svc/multiaccount_import", json!({"Accounts": ["alice", "bob", "carol"]})).await;
    // alice's sync log: 500 messages of 11 KB each (5.5 MB), the most a message may carry.
    let text = "x".repeat(11 * 1024);
    for k in 0..500 {
        rest(
            &http,
            &addr,
            "openim/sendmsg",
            json!({"From_Account": "bob", "To_Account": "alice", "MsgRandom": k,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}),
        )
        .await;
    }
    // An honest client, served throughout.
    let mut carol = login(&addr, "carol", "carol-phone").await;
    let baseline = common::rss(pid);
    let sockets_before = sockets(pid);

    // The attack, twice: ten logins of alice in a row (each kicks the one before), each asking for
    // everything many times over, none ever reading.
    for attack in 0..2 {
        let mut attackers = Vec::new();
        let mut peak = baseline;
        for round in 0..10 {
            let mut ws = login(&addr, "alice", &format!("attacker-{attack}-{round}")).await;
            for i in 0..64 {
                let frame = json!({"op": "sync", "id": 100 + i, "after": 0, "limit": 500});
                ws.feed(Ws::Text(frame.to_string().into())).await.unwrap();
            }
            ws.flush().await.unwrap();
            attackers.push(ws);
            peak = peak.max(common::rss(pid));
            // The honest client still gets answers at once.
            let t = Instant::now();
            carol.send(Ws::Text(json!({"op": "ping", "id": 1000 + round}).to_string().into())).await.unwrap();
            loop {
                let Some(Ok(Ws::Text(t))) = carol.next().await else { panic!("carol's connection ended") };
                if serde_json::from_str::<Value>(&t).unwrap()["op"] == "pong" {
                    break;
                }
            }
            assert!(t.elapsed() < Duration::from_secs(2), "carol waited {:?} for a pong", t.elapsed());
        }
        // Past the write timeout every attacker's connection is cut off.
        let until = Instant::now() + Duration::from_secs(20);
        while sockets(pid) > sockets_before && Instant::now() < until {
            peak = peak.max(common::rss(pid));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let now = common::rss(pid);
        println!(
            "attack {attack}: RSS baseline {} MB, peak {} MB, after {} MB; {} sockets ({sockets_before} before)",
            baseline / MB,
            peak / MB,
            now / MB,
            sockets(pid)
        );
        assert_eq!(sockets(pid), sockets_before, "every attacker's connection was closed");
        assert!(peak < baseline + 96 * MB, "peak {} MB over a baseline of {} MB", peak / MB, baseline / MB);
        // What the server keeps after an attack (read connections' page caches, the allocator's reserve) is
        // bounded, however many attacks came before.
        assert!(now < baseline + 48 * MB, "{} MB after an attack, over a baseline of {} MB", now / MB, baseline / MB);
        drop(attackers);
    }
    let _ = child.kill();
    let _ = child.wait();
}

//! The attack of issue 14 against the real binary, run with 1 024 descriptors (`ulimit -n 1024`): 1 100
//! connections that never speak. With the default caps they lock nobody out: one address holds at most
//! half the total cap, the rest is refused at once, and a legitimate REST call is answered during the
//! attack. With the caps lifted the server runs out of descriptors, and its accept loop waits and
//! recovers as the header timeout closes the silent sockets. And `duet serve` raises its soft limit.
//! Attackers connect from 127.0.0.2, the legitimate client from 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const KEY: &str = "connections-test-key";
const SDKAPPID: u64 = 1_400_000_000;
const ATTACKERS: usize = 1100;

/// `duet serve` under `sh -c 'ulimit …'`, with its log lines collected.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _data: tempfile::TempDir,
}

impl Server {
    /// Starts `duet serve` after `ulimit` (e.g. `-n 1024`: soft and hard limits), with `toml` as its
    /// configuration file.
    fn start(ulimit: &str, toml: &str) -> Server {
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("duet.toml");
        std::fs::write(&config, toml).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_duet"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path().join("data"))
            .arg("--config")
            .arg(&config)
            .env("DUET_SDKAPPID", SDKAPPID.to_string())
            .env("DUET_SECRET_KEY", KEY)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting duet");
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("addr=").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or_default().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(20)).expect("duet did not report its address");
        Server { child, addr: addr.parse().unwrap(), log, _data: data }
    }

    /// Waits up to 20 s for a log line containing every one of `words`; returns it.
    async fn logged(&self, words: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.log.lock().unwrap().iter().find(|l| words.iter().all(|w| l.contains(w))).cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line with {words:?}: {:#?}", self.log.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An account import as the admin from 127.0.0.1, with a fresh connection.
    async fn rest(&self, user: &str, timeout: Duration) -> reqwest::Result<Value> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let sig = duet_core::usersig::generate(KEY, SDKAPPID, "administrator", now, 3600, None);
        let url = format!(
            "http://{}/v4/im_open_login_svc/account_import?sdkappid={SDKAPPID}&identifier=administrator&usersig={sig}\
             &random=1&contenttype=json",
            self.addr
        );
        let http = reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 1])).timeout(timeout).build()?;
        http.post(url).body(json!({"UserID": user}).to_string()).send().await?.json().await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This test process needs more descriptors than the server it attacks.
fn enough_descriptors() {
    let raised = duet_server::open_files::raise().expect("raising this test's open-file limit");
    assert!(raised.now.is_none_or(|n| n >= 1500), "this test needs 1 500 descriptors; the hard limit is {raised:?}");
}

/// `n` connections from 127.0.0.2 that never send a byte.
async fn silent_connections(server: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(IpAddr::from([127, 0, 0, 2]), 0)).unwrap();
        out.push(socket.connect(server).await.expect("the kernel queues the connection"));
    }
    out
}

/// How many of `connections` the server still holds open (it closed the others: end of stream or reset).
fn still_open(connections: &[TcpStream]) -> usize {
    let mut buf = [0u8; 1];
    connections
        .iter()
        .filter(|c| matches!(c.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_silent_connections_with_1024_descriptors_lock_nobody_out() {
    enough_descriptors();
    let server = Server::start("-n 1024", "");
    // The defaults for 1 024 descriptors: 90% of what a reserve of 128 leaves, and half that per address.
    server.logged(&["duet is serving", "max_connections=806", "max_connections_per_ip=403"]).await;

    let attack_started = Instant::now();
    let attacker = silent_connections(server.addr, ATTACKERS).await;
    // A legitimate call is answered while the attacker holds its connections, well before the header
    // timeout (10 s) would have closed them.
    let r = server.rest("alice", Duration::from_secs(5)).await.expect("the legitimate call");
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert!(attack_started.elapsed() < Duration::from_secs(9), "answered during the attack");
    // Accepted in order, the attacker's connections were all taken before the legitimate one: the
    // server holds 403 of them and closed the rest at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while still_open(&attacker) != 403 {
        assert!(Instant::now() < deadline, "{} of the attacker's connections are open, not 403", still_open(&attacker));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.logged(&["refusing connections over a cap", "cap=\"max_connections_per_ip\""]).await;
    let r = server.rest("bob", Duration::from_secs(5)).await.expect("another legitimate call");
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_survives_running_out_of_descriptors() {
    enough_descriptors();
    // Caps above the limit: only the descriptors stop the attacker.
    let toml = "[http]\nmax_connections = 100000\nmax_connections_per_ip = 100000\nheader_timeout_secs = 2\n";
    let server = Server::start("-n 1024", toml);
    server.logged(&["duet is serving", "max_connections=100000"]).await;

    let attacker = silent_connections(server.addr, ATTACKERS).await;
    server.logged(&["accepting connections failed", "Too many open files"]).await;
    // The legitimate call waits in the listen queue until the header timeout closes silent sockets and
    // gives descriptors back; the attacker never leaves.
    let r = server.rest("alice", Duration::from_secs(20)).await.expect("the legitimate call");
    assert_eq!(r["ErrorCode"], 0, "{r}");
    server.logged(&["accepting connections again"]).await;
    let r = server.rest("bob", Duration::from_secs(5)).await.expect("another legitimate call");
    assert_eq!(r["ErrorCode"], 0, "{r}");
    drop(attacker);
}

#[tokio::test]
async fn serve_raises_its_soft_open_file_limit_to_the_hard_limit() {
    let hard = Command::new("sh").args(["-c", "ulimit -H -n"]).output().unwrap();
    let hard = String::from_utf8(hard.stdout).unwrap().trim().to_owned();
    let server = Server::start("-S -n 512", "");
    if hard == "512" {
        server.logged(&["open-file limit", "limit=512"]).await;
    } else {
        let to = if hard == "unlimited" { (1u64 << 20).to_string() } else { hard };
        server.logged(&["raised the open-file limit", "from=512", &format!("to={to}")]).await;
    }
}

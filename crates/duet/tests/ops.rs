//! The operator's view of a running `duet serve`: readiness (`/readyz`) turns off when the store stops and
//! while the server drains at shutdown, and `/metrics` counts exactly the traffic it served.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const KEY: &str = "ops-test-secret-key";
const SDKAPPID: u64 = 1_400_000_321;

/// A `duet serve` with a metrics listener; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    metrics: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `duet serve` over `data` with `--metrics-listen 127.0.0.1:0` and `args`, and reads both addresses
/// from its log.
fn start(data: &std::path::Path, args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--no-demo", "--data"])
        .arg(data)
        .args(args)
        .env("DUET_SDKAPPID", SDKAPPID.to_string())
        .env("DUET_SECRET_KEY", KEY)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("DUET_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting duet");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            for field in ["metrics_listen=", " addr="] {
                if let Some(value) = line.split(field).nth(1) {
                    let _ = tx.send((field, value.split_whitespace().next().unwrap_or_default().to_owned()));
                }
            }
        }
    });
    let mut found = HashMap::new();
    while found.len() < 2 {
        let (field, value) = rx.recv_timeout(Duration::from_secs(20)).expect("duet did not report its addresses");
        found.insert(field, value);
    }
    Server { child, addr: found[" addr="].clone(), metrics: found["metrics_listen="].clone() }
}

fn admin_url(addr: &str, path: &str) -> String {
    let sig = sig("administrator");
    format!(
        "http://{addr}/v4/{path}?sdkappid={SDKAPPID}&identifier=administrator&usersig={sig}&random=1&contenttype=json"
    )
}

fn sig(user: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    duet_core::usersig::generate(KEY, SDKAPPID, user, now, 3600, None)
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Value {
    http.post(url).body(body.to_string()).send().await.unwrap().json().await.unwrap()
}

/// `/readyz`'s status and body; `None` when nothing answers.
async fn ready(http: &reqwest::Client, addr: &str) -> Option<(u16, String)> {
    let r = http.get(format!("http://{addr}/readyz")).send().await.ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

/// Polls `check` every 20 ms until it gives `Some`, for at most `within`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_off_when_the_store_stops_and_liveness_stays() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let http = reqwest::Client::new();
    for addr in [&server.addr, &server.metrics] {
        assert_eq!(ready(&http, addr).await, Some((200, "ready\n".into())), "on {addr}");
        let live = http.get(format!("http://{addr}/healthz")).send().await.unwrap();
        assert_eq!(live.status(), 200);
    }

    // The write-ahead log vanishes under the store: its next sync fails, and the fsync-failure rule stops
    // the store for good (crates/duet-store-sqlite, `writer`).
    std::fs::remove_file(data.path().join("duet.db-wal")).unwrap();
    let (status, body) = eventually(Duration::from_secs(10), "readiness to turn off", || async {
        ready(&http, &server.metrics).await.filter(|(s, _)| *s == 503)
    })
    .await;
    assert_eq!((status, body.as_str()), (503, "not ready: store\n"));
    let r = post(&http, &admin_url(&server.addr, "openim/sendmsg"), json!({"To_Account": "administrator", "MsgRandom": 1,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "after"}}]}))
    .await;
    assert_ne!(r["ErrorCode"], 0, "a send was acknowledged by a stopped store: {r}");
    // Still alive (the process answers), and the metric says what /readyz says.
    assert_eq!(http.get(format!("http://{}/healthz", server.addr)).send().await.unwrap().status(), 200);
    let metrics = http.get(format!("http://{}/metrics", server.metrics)).send().await.unwrap().text().await.unwrap();
    assert_eq!(sample(&metrics, "duet_ready", &[]), Some(0.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_off_while_draining_at_shutdown() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), &["--drain-secs", "2"]);
    let http = reqwest::Client::new();
    assert_eq!(ready(&http, &server.addr).await, Some((200, "ready\n".into())));

    let began = Instant::now();
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    // Both listeners still answer, not ready, for the drain delay.
    for addr in [server.addr.clone(), server.metrics.clone()] {
        let (status, body) = eventually(Duration::from_secs(5), "readiness to turn off", || async {
            ready(&http, &addr).await.filter(|(s, _)| *s == 503)
        })
        .await;
        assert_eq!((status, body.as_str()), (503, "not ready: draining\n"));
    }
    assert!(began.elapsed() < Duration::from_secs(2), "the drain delay passed before readiness was seen off");
    // Then the server stops on its own.
    let exit = eventually(Duration::from_secs(20), "the server to exit", || {
        let exited = server.child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(exit.success(), "{exit:?}");
    assert!(began.elapsed() >= Duration::from_secs(2), "stopped before the drain delay");
}

/// The value of the sample `name{labels}` in a Prometheus text exposition (labels in any order).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        if metric != name {
            return None;
        }
        let mut found: Vec<(&str, &str)> = rest
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('=').map(|(k, v)| (k, v.trim_matches('"'))))
            .collect();
        let mut wanted = labels.to_vec();
        found.sort_unstable();
        wanted.sort_unstable();
        (found == wanted).then(|| value.parse().ok()).flatten()
    })
}

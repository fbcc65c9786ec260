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
    let r = post(
        &http,
        &admin_url(&server.addr, "openim/sendmsg"),
        json!({"To_Account": "administrator", "MsgRandom": 1,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "after"}}]}),
    )
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

async fn import(http: &reqwest::Client, addr: &str, users: &[&str]) {
    for user in users {
        let r = post(http, &admin_url(addr, "im_open_login_svc/account_import"), json!({"UserID": user})).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
}

async fn rest_send(http: &reqwest::Client, addr: &str, from: &str, to: &str, random: u32) -> Value {
    let body = json!({"From_Account": from, "To_Account": to, "MsgRandom": random, "SyncOtherMachine": 2,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": format!("hello {random}")}}]});
    post(http, &admin_url(addr, "openim/sendmsg"), body).await
}

/// `duet status`, run as an operator would beside the server (the key from the data directory).
fn duet_status(data: &std::path::Path, server: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["status", "--server", &format!("http://{server}"), "--data"])
        .arg(data)
        .args(extra)
        .env_remove("DUET_SECRET_KEY")
        .env("DUET_SDKAPPID", SDKAPPID.to_string())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duet_status_tells_the_servers_figures() {
    let data = tempfile::tempdir().unwrap();
    // The key is in the data directory, as `serve` generates it: `duet status` signs with it.
    std::fs::create_dir_all(data.path()).unwrap();
    std::fs::write(data.path().join("secret_key"), KEY).unwrap();
    let server = start(data.path(), &["--admin-page"]);
    let http = reqwest::Client::new();
    import(&http, &server.addr, &["alice", "bob", "carol"]).await;
    for random in 1..=4 {
        assert_eq!(rest_send(&http, &server.addr, "alice", "bob", random).await["ErrorCode"], 0);
    }
    let mut clients = Vec::new();
    for (user, platform) in [("bob", duet_client::Platform::Web), ("carol", duet_client::Platform::Android)] {
        let mut config = duet_client::ClientConfig::new(format!("http://{}", server.addr), user, sig(user));
        config.platform = platform;
        let (client, events) = duet_client::Client::connect(config).await.expect("logs in");
        clients.push((client, events));
    }

    let out = duet_status(data.path(), &server.addr, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["ErrorCode"], 0, "{s}");
    assert_eq!(s["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["Ready"], true);
    assert_eq!(s["Store"], "embedded");
    // The three imported and the admin, whose first REST call registered it.
    assert_eq!(s["Accounts"], 4, "{s}");
    assert_eq!(s["Messages"], 4, "{s}");
    assert_eq!(s["Connections"], 2, "{s}");
    assert_eq!(s["ConnectionsByPlatform"], json!({"Android": 1, "Web": 1}), "{s}");
    assert_eq!(s["RoamingRetentionSecs"], 7 * 86_400);
    assert_eq!(s["PushOutbox"], Value::Null);
    assert!(s["StoreBytes"].as_u64().unwrap() > 0);

    let out = duet_status(data.path(), &server.addr, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.starts_with(&format!("duet {} at http://{}: ready\n", env!("CARGO_PKG_VERSION"), server.addr)),
        "{table}"
    );
    for line in [
        "  accounts     4\n",
        "  messages     4\n",
        "  connections  2 (Android 1, Web 1)\n",
        "  retention    history 7 days, offline 7 days\n",
        "  push         no provider configured\n",
    ] {
        assert!(table.contains(line), "{line:?} missing from:\n{table}");
    }

    // A connection that ends stops counting.
    let (carol, _) = clients.pop().unwrap();
    carol.logout().await.unwrap();
    let connections = eventually(Duration::from_secs(5), "carol's connection to end", || async {
        let out = duet_status(data.path(), &server.addr, &["--json"]);
        let s: Value = serde_json::from_slice(&out.stdout).ok()?;
        (s["Connections"] == 1).then_some(s["ConnectionsByPlatform"].clone())
    })
    .await;
    assert_eq!(connections, json!({"Web": 1}));

    // The admin page is served when asked for; the status itself needs the admin's UserSig.
    let page = http.get(format!("http://{}/admin", server.addr)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().await.unwrap().contains("/admin/admin.js"));
    let script = http.get(format!("http://{}/admin/admin.js", server.addr)).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("/v4/duet/status"));
    let url = format!(
        "http://{}/v4/duet/status?sdkappid={SDKAPPID}&identifier=alice&usersig={}&random=1&contenttype=json",
        server.addr,
        sig("alice")
    );
    let refused = post(&http, &url, json!({})).await;
    assert_eq!(refused["ErrorCode"], 60010, "{refused}");
    assert_eq!(refused.get("Accounts"), None, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_is_off_by_default_and_status_fails_clearly() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let http = reqwest::Client::new();
    for path in ["/admin", "/admin/", "/admin/admin.js"] {
        let r = http.get(format!("http://{}{path}", server.addr)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // A wrong key: the server refuses the UserSig, and `duet status` says so in one line.
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["status", "--server", &format!("http://{}", server.addr), "--secret-key", "not-the-key"])
        .env("DUET_SDKAPPID", SDKAPPID.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: ") && err.contains("refused") && err.contains("ErrorCode 70"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Nobody there.
    drop(server);
    let out = Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["status", "--server", "http://127.0.0.1:9", "--secret-key", KEY])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: asking http://127.0.0.1:9 for its status"), "{err}");
    // The request's URL carries the UserSig: the error names the server, never the URL.
    assert!(!err.contains("usersig") && !err.contains("/v4/"), "{err}");
}

/// Scrapes `/metrics`.
async fn scrape(http: &reqwest::Client, server: &Server) -> String {
    http.get(format!("http://{}/metrics", server.metrics)).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_exactly_the_traffic_served() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let http = reqwest::Client::new();
    let before = scrape(&http, &server).await;
    assert_eq!(sample(&before, "duet_messages_total", &[("path", "rest"), ("outcome", "sent")]), None);
    assert_eq!(sample(&before, "duet_ready", &[]), None, "nothing probed readiness yet");

    // REST: 3 imports, 3 sends, and one to a missing account (90012).
    import(&http, &server.addr, &["alice", "bob"]).await;
    import(&http, &server.addr, &["carol"]).await;
    for random in [11, 12, 13] {
        assert_eq!(rest_send(&http, &server.addr, "alice", "bob", random).await["ErrorCode"], 0);
    }
    let refused = rest_send(&http, &server.addr, "alice", "nobody", 14).await;
    assert_eq!(refused["ErrorCode"], 90012, "{refused}");

    // Clients: bob logs in twice (one login refused: a UserSig of another key), sends 2 messages and logs
    // out; carol stays.
    let url = format!("http://{}", server.addr);
    let wrong = duet_core::usersig::generate("another-key", SDKAPPID, "bob", 1_700_000_000, 86_400 * 3650, None);
    let refused = duet_client::Client::connect(duet_client::ClientConfig::new(url.clone(), "bob", wrong)).await;
    assert!(refused.is_err());
    let (bob, _bob_events) =
        duet_client::Client::connect(duet_client::ClientConfig::new(url.clone(), "bob", sig("bob"))).await.unwrap();
    let (_carol, _carol_events) =
        duet_client::Client::connect(duet_client::ClientConfig::new(url.clone(), "carol", sig("carol"))).await.unwrap();
    bob.send_text("alice", "one").await.unwrap();
    bob.send_text("carol", "two").await.unwrap();
    bob.logout().await.unwrap();

    let text = eventually(Duration::from_secs(10), "bob's session to end", || async {
        let text = scrape(&http, &server).await;
        (sample(&text, "duet_logouts_total", &[("reason", "logout")]) == Some(1.0)).then_some(text)
    })
    .await;
    let m = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels).unwrap_or(0.0);
    assert_eq!(m("duet_messages_total", &[("path", "rest"), ("outcome", "sent")]), 3.0, "{text}");
    assert_eq!(m("duet_messages_total", &[("path", "rest"), ("outcome", "refused")]), 1.0, "{text}");
    assert_eq!(m("duet_messages_total", &[("path", "client"), ("outcome", "sent")]), 2.0, "{text}");
    assert_eq!(m("duet_send_ack_seconds_count", &[("path", "rest")]), 3.0, "{text}");
    assert_eq!(m("duet_send_ack_seconds_count", &[("path", "client")]), 2.0, "{text}");
    assert_eq!(m("duet_logins_total", &[("outcome", "ok"), ("code", "0")]), 2.0, "{text}");
    assert_eq!(m("duet_logins_total", &[("outcome", "refused"), ("code", "70009")]), 1.0, "{text}");
    assert_eq!(m("duet_rest_requests_total", &[("command", "im_open_login_svc/account_import"), ("code", "0")]), 3.0);
    assert_eq!(m("duet_rest_requests_total", &[("command", "openim/sendmsg"), ("code", "0")]), 3.0);
    assert_eq!(m("duet_rest_requests_total", &[("command", "openim/sendmsg"), ("code", "90012")]), 1.0);
    assert_eq!(m("duet_rest_request_seconds_count", &[("command", "openim/sendmsg")]), 4.0);
    let platforms = ["iPhone", "Android", "iPad", "PC", "Mac", "Linux", "Web"];
    let connections: f64 = platforms.iter().map(|p| m("duet_connections", &[("platform", p)])).sum();
    assert_eq!(connections, 1.0, "carol only: {text}");
    // Pushed to live sessions: carol's message, and bob's own copy of each of his two sends (a client send
    // enters the sender's sync log too); alice was never online.
    assert_eq!(m("duet_delivery_seconds_count", &[]), 3.0, "{text}");
    assert!(m("duet_store_commit_batch_size_count", &[]) >= 1.0);
    assert!(m("process_resident_memory_bytes", &[]) > 1e6);
    assert!(m("process_open_fds", &[]) > 3.0);
    assert!(text.contains("# HELP duet_messages_total "), "described metrics have HELP lines");
}

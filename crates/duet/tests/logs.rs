//! The server's log lines (`docs/operations.md`, "Logs") through the real binary. With `--log-format
//! json` every line is one JSON object; a REST call gets one line once answered (its command, Tencent
//! code, HTTP status, duration, identifier and request id, the id echoed in `X-Request-Id`), a WebSocket
//! session a `login` line and a `session ended` line carrying the connection's span (its `conn` id, the
//! user, platform and device), a refused login a `login refused` line; and no secret appears in full
//! anywhere: not the app's key, a UserSig used, the push token, the webhook's secret, the callbacks'
//! token or the signature in a callback's URL. The format is chosen by flag, environment or file, text
//! by default; any other value is refused with status 2.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_client::{Client, ClientConfig, Platform, PushConfig};
use duet_core::redact::redact;
use duet_test_support::endpoint::{Answer, Endpoint};
use serde_json::{Value, json};

const SDKAPPID: u64 = 1_400_000_321;
const KEY: &str = "logs-test-secret-key-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const PUSH_TOKEN: &str = "bob-push-token-6a0c1f9e8d7b5a4c3b2a1908f7e6d5c4";
const WEBHOOK_SECRET: &str = "webhook-secret-92e1c0b7a6f5e4d3";
const CALLBACK_TOKEN: &str = "callback-token-5d4c3b2a19087f6e";
const WAIT: Duration = Duration::from_secs(20);

/// A `duet serve` whose output lines are kept as they come.
struct Server {
    child: Child,
    /// stdout's lines, then stderr's, as they arrive.
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    /// Bumped at each line.
    arrived: tokio::sync::watch::Receiver<usize>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `duet serve` over `data` on an ephemeral port with the test's app identity, `args` and `envs`.
fn serve(data: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut child = duet()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env("DUET_SDKAPPID", SDKAPPID.to_string())
        .env("DUET_SECRET_KEY", KEY)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting duet serve");
    let (tx, arrived) = tokio::sync::watch::channel(0);
    let tx = Arc::new(tx);
    let keep = |pipe: Box<dyn std::io::Read + Send>, into: Arc<Mutex<Vec<String>>>| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                into.lock().unwrap().push(line);
                tx.send_modify(|n| *n += 1);
            }
        });
    };
    let (out, err) = (Arc::default(), Arc::default());
    keep(Box::new(child.stdout.take().unwrap()), Arc::clone(&out));
    keep(Box::new(child.stderr.take().unwrap()), Arc::clone(&err));
    Server { child, out, err, arrived }
}

/// The binary, with none of the caller's `DUET_*` settings that would change what the tests expect.
fn duet() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    for var in ["DUET_LOG_FORMAT", "DUET_CONFIG", "DUET_DATA", "DUET_ADMINS", "DUET_LISTEN", "DUET_DEMO"] {
        cmd.env_remove(var);
    }
    cmd
}

impl Server {
    /// The first stdout line `found` accepts, waiting for it as lines arrive.
    async fn line(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let mut arrived = self.arrived.clone();
        let look = async {
            loop {
                arrived.borrow_and_update();
                if let Some(line) = self.out.lock().unwrap().iter().find(|l| found(l)) {
                    return line.clone();
                }
                if arrived.changed().await.is_err() {
                    panic!("the server's output ended before {what}: {:#?}", self.all());
                }
            }
        };
        tokio::time::timeout(WAIT, look).await.unwrap_or_else(|_| panic!("no {what} in {:#?}", self.all()))
    }

    /// The first JSON line `found` accepts (lines that are not JSON are skipped here; see [`Server::json`]).
    async fn json_line(&self, what: &str, found: impl Fn(&Value) -> bool) -> Value {
        let line = self.line(what, |l| serde_json::from_str::<Value>(l).is_ok_and(|v| found(&v))).await;
        serde_json::from_str(&line).unwrap()
    }

    /// Every stdout line, each parsed as a JSON object: fails on the first that is not one.
    fn json(&self) -> Vec<Value> {
        let out = self.out.lock().unwrap();
        out.iter()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(v) if v.is_object() => v,
                _ => panic!("not a JSON object: {l:?}"),
            })
            .collect()
    }

    /// stdout and stderr, all of it.
    fn all(&self) -> String {
        let (out, err) = (self.out.lock().unwrap().join("\n"), self.err.lock().unwrap().join("\n"));
        format!("{out}\n{err}")
    }

    /// The address a JSON-logging server serves on.
    async fn json_addr(&self) -> String {
        let serving = self.json_line("the serving line", |v| v["message"] == "duet is serving").await;
        serving["addr"].as_str().expect("the serving line's addr").to_owned()
    }
}

fn usersig(key: &str, user: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    duet_core::usersig::generate(key, SDKAPPID, user, now, 86_400, None)
}

/// An address nothing listens on: connections to it are refused at once.
fn refusing_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Calls `/v4/{path}` as the admin with `body`, with `X-Request-Id: request_id` when given; returns the
/// answer's `X-Request-Id` and body.
async fn rest(addr: &str, admin_sig: &str, path: &str, request_id: Option<&str>, body: Value) -> (String, Value) {
    let url = format!(
        "http://{addr}/v4/{path}?sdkappid={SDKAPPID}&identifier=administrator&usersig={admin_sig}&random=7&contenttype=json"
    );
    let mut request = reqwest::Client::new().post(url).body(body.to_string());
    if let Some(id) = request_id {
        request = request.header("X-Request-Id", id);
    }
    let response = request.send().await.unwrap();
    let echoed = response.headers().get("x-request-id").expect("an X-Request-Id in the answer");
    let echoed = echoed.to_str().unwrap().to_owned();
    (echoed, response.json().await.unwrap())
}

fn client_config(addr: &str, user: &str, sig: &str, platform: Platform, device: &str) -> ClientConfig {
    let mut config = ClientConfig::new(format!("http://{addr}"), user, sig);
    config.platform = platform;
    config.device = Some(device.to_owned());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_each_call_and_session_and_never_a_secret_in_full() {
    let dir = tempfile::tempdir().unwrap();
    // The push gateway refuses the token and echoes it back, as some makers do.
    let gateway =
        Endpoint::start(|r| Answer::json(410, json!({"reason": "Unregistered", "token": r.json()["token"]}))).await;
    let config = dir.path().join("duet.toml");
    let toml = format!(
        "[push.webhook]\nurl = \"{}/push\"\nsecret = \"{WEBHOOK_SECRET}\"\n\n[callbacks]\nurl = \"http://{}/cb\"\n\
         token = \"{CALLBACK_TOKEN}\"\n",
        gateway.url,
        refusing_addr()
    );
    std::fs::write(&config, toml).unwrap();
    let server = serve(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap(), "--log-format", "json"],
        &[("RUST_LOG", "info,duet_server::rest=debug")],
    );
    let addr = server.json_addr().await;
    let admin_sig = usersig(KEY, "administrator");

    // A call that succeeds, named by the caller; one that fails (no such recipient), named by the server.
    let accounts = json!({"Accounts": ["alice", "bob"]});
    let (echoed, r) =
        rest(&addr, &admin_sig, "im_open_login_svc/multiaccount_import", Some("import-1"), accounts).await;
    assert_eq!((echoed.as_str(), &r["ErrorCode"]), ("import-1", &json!(0)), "{r}");
    let to_ghost = json!({"From_Account": "alice", "To_Account": "ghost", "MsgRandom": 1, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]});
    let (generated, r) = rest(&addr, &admin_sig, "openim/sendmsg", None, to_ghost).await;
    assert_eq!(r["ErrorCode"], 90012, "{r}");
    assert!(generated.len() == 16 && generated.bytes().all(|b| b.is_ascii_hexdigit()), "{generated:?}");

    // bob's phone logs in, registers for push and drops its connection; alice logs in and out; mallory's
    // sig is signed with another key.
    let (bob_sig, alice_sig, mallory_sig) =
        (usersig(KEY, "bob"), usersig(KEY, "alice"), usersig("another-key-entirely-0123456789", "mallory"));
    let (bob, _bob_events) = Client::connect(client_config(&addr, "bob", &bob_sig, Platform::Android, "bob-phone"))
        .await
        .expect("bob logs in");
    let push = PushConfig { provider: "webhook".into(), token: PUSH_TOKEN.into(), ..PushConfig::default() };
    bob.set_offline_push_config(push).await.expect("bob registers for push");
    drop(bob);
    let bob_end =
        server.json_line("bob's session end", |v| v["message"] == "session ended" && v["span"]["user"] == "bob");
    let bob_end = bob_end.await;
    let (alice, _alice_events) = Client::connect(client_config(&addr, "alice", &alice_sig, Platform::Web, "alice-web"))
        .await
        .expect("alice logs in");
    alice.logout().await.unwrap();
    let refused = Client::connect(client_config(&addr, "mallory", &mallory_sig, Platform::Mac, "m")).await;
    assert!(refused.is_err(), "mallory's sig is not the app's");

    // A message to bob, away: its push is refused by the gateway, which names the token.
    let to_bob = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 2, "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "ping"}}]});
    let (_, r) = rest(&addr, &admin_sig, "openim/sendmsg", None, to_bob).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let forgotten =
        server.json_line("the refused token", |v| v["message"] == "push: token invalid, forgetting it").await;
    assert_eq!(forgotten["token"], redact(PUSH_TOKEN).to_string(), "{forgotten}");
    assert!(forgotten["reason"].as_str().unwrap().contains(&redact(PUSH_TOKEN).to_string()), "{forgotten}");
    let retried = server.json_line("a failed callback", |v| v["message"] == "callbacks: will try again").await;
    let reason = retried["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("request: ") && reason.contains("Connection refused"),
        "the cause, not the URL: {retried}"
    );
    let alice_end =
        server.json_line("alice's logout", |v| v["message"] == "session ended" && v["span"]["user"] == "alice");
    let alice_end = alice_end.await;
    server.json_line("mallory's refusal", |v| v["message"] == "login refused").await;

    // Every line is a JSON object with the time, level, target and message.
    let lines = server.json();
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "no {key} in {line}");
        }
    }
    let only = |what: &str, found: &dyn Fn(&Value) -> bool| {
        let matching: Vec<&Value> = lines.iter().filter(|v| found(v)).collect();
        assert_eq!(matching.len(), 1, "one {what}: {matching:#?}");
        matching[0].clone()
    };

    // One line per REST call, once answered.
    let imported = only("import line", &|v| v["message"] == "rest call" && v["request_id"] == "import-1");
    assert_eq!(imported["level"], "INFO");
    assert_eq!(imported["command"], "im_open_login_svc/multiaccount_import");
    assert_eq!((&imported["code"], &imported["status"]), (&json!(0), &json!(200)));
    assert_eq!(imported["identifier"], "administrator");
    assert!(imported["duration_us"].is_u64(), "{imported}");
    let failed = only("failed send's line", &|v| v["message"] == "rest call" && v["request_id"] == generated);
    assert_eq!(
        (&failed["command"], &failed["code"], &failed["status"]),
        (&json!("openim/sendmsg"), &json!(90012), &json!(200))
    );
    assert!(failed["duration_us"].is_u64(), "{failed}");
    assert_eq!(lines.iter().filter(|v| v["message"] == "rest call").count(), 3, "three calls, three lines");
    // What the call logs inside carries its span.
    let inside = only("refusal logged inside the call", &|v| v["message"] == "rest request refused");
    assert_eq!(inside["span"]["request_id"], generated, "{inside}");
    assert_eq!(
        (&inside["span"]["command"], &inside["span"]["user"]),
        (&json!("openim/sendmsg"), &json!("administrator"))
    );

    // A login line and a session-end line per session, in the connection's span.
    let bob_in = only("bob's login", &|v| v["message"] == "login" && v["user"] == "bob");
    assert_eq!(
        (&bob_in["platform"], &bob_in["device"], &bob_in["kind"]),
        (&json!("Android"), &json!("bob-phone"), &json!("device"))
    );
    let conn = bob_in["span"]["conn"].as_str().expect("the connection's id");
    assert_eq!(bob_in["span"]["ip"], "127.0.0.1");
    assert_eq!(bob_end["span"]["conn"], conn, "the same connection: {bob_end}");
    assert_eq!((&bob_end["span"]["platform"], &bob_end["span"]["device"]), (&json!("Android"), &json!("bob-phone")));
    assert_eq!((&bob_end["end"], bob_end["close_code"].is_null()), (&json!("Gone"), true), "{bob_end}");
    assert!(bob_end["session_ms"].is_u64(), "{bob_end}");
    let alice_in = only("alice's login", &|v| v["message"] == "login" && v["user"] == "alice");
    assert_ne!(alice_in["span"]["conn"], conn, "a connection id of its own");
    assert_eq!((&alice_end["end"], &alice_end["close_code"]), (&json!("Logout"), &json!(1000)), "{alice_end}");
    assert_eq!(alice_end["span"]["conn"], alice_in["span"]["conn"]);
    let mallory = only("mallory's refusal", &|v| v["message"] == "login refused");
    assert_eq!((&mallory["span"]["user"], &mallory["code"]), (&json!("mallory"), &json!(70009)), "{mallory}");
    assert!(mallory["reason"].as_str().is_some_and(|r| !r.is_empty()), "{mallory}");
    assert_eq!(lines.iter().filter(|v| v["message"] == "login").count(), 2, "mallory did not log in");

    // No secret in full, anywhere.
    let all = server.all();
    for (what, secret) in [
        ("the app's key", KEY),
        ("the admin's UserSig", admin_sig.as_str()),
        ("bob's UserSig", bob_sig.as_str()),
        ("alice's UserSig", alice_sig.as_str()),
        ("mallory's UserSig", mallory_sig.as_str()),
        ("the push token", PUSH_TOKEN),
        ("the webhook's secret", WEBHOOK_SECRET),
        ("the callbacks' token", CALLBACK_TOKEN),
        ("a callback's signature", "Sign="),
        ("a query string", "usersig="),
    ] {
        assert!(!all.contains(secret), "{what} is in the log:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_format_is_text_by_default_and_chosen_by_flag_then_environment_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("json.toml");
    std::fs::write(&json_file, "log_format = \"json\"\n").unwrap();
    let json_file = json_file.to_str().unwrap();
    // (case, arguments, environment, JSON expected)
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 5] = [
        ("nothing said", &[], &[], false),
        (
            "--log-format text over DUET_LOG_FORMAT=json",
            &["--log-format", "text"],
            &[("DUET_LOG_FORMAT", "json")],
            false,
        ),
        ("DUET_LOG_FORMAT=text over the file's json", &["--config", json_file], &[("DUET_LOG_FORMAT", "text")], false),
        ("the file's json", &["--config", json_file], &[], true),
        ("DUET_LOG_FORMAT=json", &[], &[("DUET_LOG_FORMAT", "json")], true),
    ];
    for (i, (case, args, envs, json)) in cases.into_iter().enumerate() {
        let server = serve(&dir.path().join(format!("data{i}")), args, envs);
        let serving = server.line("the serving line", |l| l.contains("duet is serving")).await;
        let parsed = serde_json::from_str::<Value>(&serving).ok();
        if json {
            let addr = parsed.as_ref().and_then(|v| v["addr"].as_str());
            assert!(addr.is_some_and(|a| a.starts_with("127.0.0.1:")), "{case}: {serving}");
            server.json();
        } else {
            assert!(parsed.is_none(), "{case}: text, not JSON: {serving}");
            assert!(serving.contains(" INFO ") && serving.contains(" addr=127.0.0.1:"), "{case}: {serving}");
        }
    }
}

#[test]
fn a_format_other_than_text_or_json_is_refused_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let yaml_file = dir.path().join("yaml.toml");
    std::fs::write(&yaml_file, "log_format = \"yaml\"\n").unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = duet();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--secret-key", KEY, "--data"]).arg(&data).args(args);
        if let Some(value) = env {
            cmd.env("DUET_LOG_FORMAT", value);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).trim().to_owned())
    };
    let (status, stderr) = run(&["--log-format", "yaml"], None);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("'yaml'") && stderr.contains("--log-format") && stderr.contains("json"), "{stderr}");
    let (status, stderr) = run(&[], Some("yaml"));
    assert_eq!(status, Some(2), "{stderr}");
    assert_eq!(stderr, "error: invalid value \"yaml\" in DUET_LOG_FORMAT: expected one of text, json");
    let (status, stderr) = run(&["--config", yaml_file.to_str().unwrap()], None);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("log_format") && stderr.contains("yaml"), "{stderr}");
}

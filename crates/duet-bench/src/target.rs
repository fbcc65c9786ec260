//! The server under load: either one the bench starts (`duet serve --listen 127.0.0.1:0` over a
//! temporary data directory, with a random secret key, stopped with SIGTERM at the end), or a running one
//! given by URL. Also the admin's REST calls every scenario needs (account import, sendmsg).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::BenchError;
use crate::args::{Durability, TargetArgs};

/// Most log lines kept from a started server (for the report and for errors).
const LOG_TAIL: usize = 40;
/// How long a started server has to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a started server has to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Target {
    /// `http://host:port`, no trailing slash.
    pub base: String,
    /// `ws://host:port/v1/connect`.
    pub ws_url: String,
    pub addr: SocketAddr,
    /// Every node's address and WebSocket URL (the first is `addr`, `ws_url`): user i connects to node i mod N.
    pub nodes: Vec<(SocketAddr, String)>,
    pub secret_key: String,
    pub sdkappid: u64,
    pub admin: String,
    /// The servers' PIDs, when known: their CPU and memory are sampled (added up).
    pub pids: Vec<u32>,
    pub durability: Option<Durability>,
    own: Option<OwnServer>,
    pub(crate) http: reqwest::Client,
    admin_sig: String,
}

/// A server process the bench started.
struct OwnServer {
    child: Child,
    log: Arc<Mutex<ServerLog>>,
    data: tempfile::TempDir,
}

/// What a started server logged that deserves attention.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServerLog {
    pub warnings: u64,
    pub errors: u64,
    /// Sessions the server dropped because their outbound queue was full.
    pub dropped_sessions: u64,
    /// The last lines at WARN or ERROR, and anything on stderr (panics).
    pub tail: VecDeque<String>,
}

impl Target {
    /// Where the server keeps its data, when the bench started it (a server elsewhere may be on another
    /// disk or machine: its disk is not probed).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.own.as_ref().map(|own| own.data.path())
    }

    /// Starts a server or checks the given one answers.
    /// `send_limit`: the server the bench starts keeps its per-user send rate (the hostile scenarios);
    /// otherwise it is lifted far away, as the closed loop sends faster than any user does.
    pub async fn open(args: &TargetArgs, duet_exe: &Path, send_limit: bool) -> Result<Target, BenchError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BenchError::Setup(format!("http client: {e}")))?;
        let (bases, secret_key, pids, durability, own) = match &args.server {
            Some(urls) => {
                let key = args.secret_key.clone().ok_or_else(|| {
                    BenchError::Setup("--server needs --secret-key (or DUET_SECRET_KEY) for UserSigs".into())
                })?;
                let bases: Vec<String> = urls.split(',').map(|u| u.trim().trim_end_matches('/').to_owned()).collect();
                (bases, key, args.server_pid.clone(), None, None)
            }
            None => {
                let key: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
                let (own, addr) = OwnServer::start(duet_exe, args, &key, send_limit)?;
                let pid = own.child.id();
                (vec![format!("http://{addr}")], key, vec![pid], Some(args.durability), Some(own))
            }
        };
        let mut nodes = Vec::with_capacity(bases.len());
        for base in &bases {
            let authority = base
                .strip_prefix("http://")
                .ok_or_else(|| BenchError::Setup(format!("{base}: only http:// servers can be loaded (no TLS)")))?;
            let addr = tokio::net::lookup_host(authority)
                .await
                .map_err(|e| BenchError::Setup(format!("resolving {authority}: {e}")))?
                .next()
                .ok_or_else(|| BenchError::Setup(format!("{authority} resolves to no address")))?;
            nodes.push((addr, format!("ws://{authority}{}", duet_proto::client::CONNECT_PATH)));
        }
        let base = bases[0].clone();
        let (addr, ws_url) = nodes[0].clone();
        let now = unix_now();
        let admin_sig = duet_core::usersig::generate(&secret_key, args.sdkappid, &args.admin, now, 7 * 86_400, None);
        let target = Target {
            ws_url,
            base,
            addr,
            nodes,
            secret_key,
            sdkappid: args.sdkappid,
            admin: args.admin.clone(),
            pids,
            durability,
            own,
            http,
            admin_sig,
        };
        target.wait_ready().await?;
        Ok(target)
    }

    /// Waits until the REST API answers, and checks the admin's UserSig is accepted.
    async fn wait_ready(&self) -> Result<(), BenchError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.admin("im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": self.admin}]})).await {
                Ok(_) => return Ok(()),
                Err(BenchError::Rest { code, info, .. }) if code != 0 => {
                    return Err(BenchError::Setup(format!(
                        "the server refuses the admin {:?}: {code} {info}",
                        self.admin
                    )));
                }
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The node user `i` connects to: its address and WebSocket URL.
    pub fn node(&self, i: usize) -> (SocketAddr, &str) {
        let (addr, url) = &self.nodes[i % self.nodes.len()];
        (*addr, url)
    }

    /// A UserSig for `user`, valid for a day.
    pub fn usersig(&self, user: &str) -> String {
        duet_core::usersig::generate(&self.secret_key, self.sdkappid, user, unix_now(), 86_400, None)
    }

    /// UserSigs for `users`, made before a timed phase.
    pub fn usersigs(&self, users: &[String]) -> Vec<String> {
        users.iter().map(|u| self.usersig(u)).collect()
    }

    /// The URL of an admin REST command (`openim/sendmsg`, ...).
    pub fn admin_url(&self, command: &str) -> String {
        format!(
            "{}/v4/{command}?sdkappid={}&identifier={}&usersig={}&random=1&contenttype=json",
            self.base, self.sdkappid, self.admin, self.admin_sig
        )
    }

    /// Calls an admin REST command; `Err` unless `ErrorCode` is 0.
    pub async fn admin(&self, command: &str, body: Value) -> Result<Value, BenchError> {
        rest_call(&self.http, &self.admin_url(command), body.to_string()).await
    }

    /// Registers accounts, 100 per `multiaccount_import`, a few calls at a time.
    pub async fn import_accounts(&self, users: &[String]) -> Result<(), BenchError> {
        use futures_util::StreamExt;
        let calls = users
            .chunks(duet_proto::rest::request::MAX_ACCOUNT_BATCH)
            .map(|chunk| self.admin("im_open_login_svc/multiaccount_import", json!({ "Accounts": chunk })));
        let results: Vec<_> = futures_util::stream::iter(calls).buffer_unordered(8).collect().await;
        for r in results {
            let r = r?;
            if let Some(failed) = r["FailAccounts"].as_array().filter(|a| !a.is_empty()) {
                return Err(BenchError::Setup(format!("accounts not imported: {failed:?}")));
            }
        }
        Ok(())
    }

    /// Makes each pair (u0, u1), (u2, u3), ... two-way friends, a few `sns/friend_import` calls at a time.
    pub async fn make_friends(&self, users: &[String]) -> Result<(), BenchError> {
        use futures_util::StreamExt;
        let calls = users.chunks(2).flat_map(|pair| {
            [(&pair[0], &pair[1]), (&pair[1], &pair[0])].map(|(from, to)| {
                let item = json!({"To_Account": to, "AddSource": "AddSource_Type_Bench"});
                self.admin("sns/friend_import", json!({"From_Account": from, "AddFriendItem": [item]}))
            })
        });
        let results: Vec<_> = futures_util::stream::iter(calls).buffer_unordered(8).collect().await;
        for r in results {
            let r = r?;
            if let Some(failed) = r["Fail_Account"].as_array().filter(|a| !a.is_empty()) {
                return Err(BenchError::Setup(format!("friends not imported: {failed:?}")));
            }
        }
        Ok(())
    }

    /// Sends messages through the admin's `openim/sendmsg`, `concurrency` calls in flight; stops at the first
    /// refusal.
    pub async fn send_many(
        &self,
        jobs: Vec<Outgoing>,
        concurrency: usize,
        bar: &indicatif::ProgressBar,
    ) -> Result<(), BenchError> {
        use futures_util::StreamExt;
        let url = self.admin_url("openim/sendmsg");
        let calls = jobs.into_iter().map(|job| {
            let url = &url;
            async move {
                let r = rest_call(&self.http, url, job.sendmsg_body()).await;
                bar.inc(1);
                r
            }
        });
        let mut results = futures_util::stream::iter(calls).buffer_unordered(concurrency.max(1));
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(())
    }

    /// Stops a started server gracefully (SIGTERM, then SIGKILL after a grace period); returns its log.
    pub async fn shutdown(mut self) -> Option<ServerLog> {
        let mut own = self.own.take()?;
        let log = own.log.clone();
        tokio::task::spawn_blocking(move || own.stop()).await.ok();
        let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Some(log)
    }
}

/// One message for the admin's `sendmsg`.
pub struct Outgoing {
    pub from: String,
    pub to: String,
    pub mark: crate::ws::Mark,
    pub body_bytes: usize,
}

impl Outgoing {
    /// The `sendmsg` body: in both sides' history, not in the sender's sync log (no `SyncOtherMachine`),
    /// `MsgRandom` the message's number.
    pub fn sendmsg_body(&self) -> String {
        json!({
            "From_Account": self.from,
            "To_Account": self.to,
            "MsgRandom": self.mark.k as u32,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": self.mark.text(self.body_bytes)}}],
        })
        .to_string()
    }
}

/// POSTs a REST call; `Err` unless the reply's `ErrorCode` is 0.
pub async fn rest_call(http: &reqwest::Client, url: &str, body: String) -> Result<Value, BenchError> {
    let path = url.split('?').next().unwrap_or(url).to_owned();
    let reply: Value = http
        .post(url)
        .body(body)
        .send()
        .await
        .map_err(|e| BenchError::Http(format!("{path}: {e}")))?
        .json()
        .await
        .map_err(|e| BenchError::Http(format!("{path}: {e}")))?;
    match reply["ErrorCode"].as_u64() {
        Some(0) => Ok(reply),
        code => Err(BenchError::Rest {
            path,
            code: code.unwrap_or(u64::MAX),
            info: reply["ErrorInfo"].as_str().unwrap_or_default().to_owned(),
        }),
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl OwnServer {
    fn start(
        exe: &Path,
        args: &TargetArgs,
        key: &str,
        send_limit: bool,
    ) -> Result<(OwnServer, SocketAddr), BenchError> {
        let data = match &args.data_dir {
            Some(dir) => tempfile::Builder::new().prefix("duet-bench-").tempdir_in(dir),
            None => tempfile::Builder::new().prefix("duet-bench-").tempdir(),
        }
        .map_err(|e| BenchError::Setup(format!("creating the data directory: {e}")))?;
        let mut command = Command::new(exe);
        command.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(data.path());
        if let Some(config) = &args.server_config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .env_remove("DUET_CONFIG")
            .env_remove("DUET_ADMINS")
            .env_remove("DUET_LISTEN")
            .env_remove("DUET_DATA")
            .env("DUET_SECRET_KEY", key)
            .env("DUET_SDKAPPID", args.sdkappid.to_string())
            .env("DUET_DURABILITY", args.durability.name())
            // Every simulated client connects from this host's one address, and `idle` opens as many as the
            // open-file limit allows: the server's caps must not stand in the way.
            .env("DUET_MAX_CONNECTIONS", "1000000")
            .env("DUET_MAX_CONNECTIONS_PER_IP", "1000000")
            // The closed loop sends as fast as the server answers: far above the per-user rate an app's
            // users reach. The limit stays on (so its cost is measured), far away, except for the
            // scenarios that measure it.
            .env_remove("DUET_SENDS_PER_SEC")
            .envs((!send_limit).then_some(("DUET_SENDS_PER_SEC", "1000000")))
            .env("RUST_LOG", "info")
            // Text lines: the address is read from them.
            .env("DUET_LOG_FORMAT", "text")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::Setup(format!("starting {}: {e}", exe.display())))?;
        let log = Arc::new(Mutex::new(ServerLog::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(addr) = line.split(" addr=").nth(1) {
                        let _ = tx.send(addr.split_whitespace().next().unwrap_or_default().to_owned());
                    }
                    note(&log, line, false);
                }
            });
        }
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    note(&log, line, true);
                }
            });
        }
        let mut own = OwnServer { child, log, data };
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a,
            Err(_) => {
                own.stop();
                let tail = own.log.lock().unwrap_or_else(|e| e.into_inner()).tail.clone();
                return Err(BenchError::Setup(format!(
                    "{} did not report its address: {}",
                    exe.display(),
                    Vec::from(tail).join(" | ")
                )));
            }
        };
        let addr =
            addr.parse().map_err(|_| BenchError::Setup(format!("the server reported {addr:?} as its address")))?;
        Ok((own, addr))
    }

    /// SIGTERM (through kill(1): the workspace forbids `unsafe`), a grace period, then SIGKILL.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn note(log: &Mutex<ServerLog>, line: String, stderr: bool) {
    let warn = line.contains(" WARN ");
    let error = line.contains(" ERROR ");
    let dropped = line.contains("cannot keep up");
    if !(warn || error || dropped || stderr) {
        return;
    }
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.warnings += u64::from(warn);
    log.errors += u64::from(error);
    log.dropped_sessions += u64::from(dropped);
    if log.tail.len() == LOG_TAIL {
        log.tail.pop_front();
    }
    log.tail.push_back(line);
}

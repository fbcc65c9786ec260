//! Test support: [`TestServer::spawn`] runs the real server on `127.0.0.1:0` over a temporary data
//! directory and a [`ManualClock`], and offers helpers to call the REST API as the app admin.
//! [`TestServer::spawn_tls`] serves `https://` and `wss://` with a certificate from a CA made for the
//! test ([`TestCerts`]).
//!
//! The clock starts at [`T0_MS`] and only moves when a test moves it, so response bodies (`MsgTime`,
//! `MsgKey`) are deterministic and can be snapshot-tested whole.

mod certs;
pub mod crafted;
pub mod endpoint;
mod proxy;
mod ws;

pub use certs::TestCerts;
pub use proxy::Proxy;
pub use ws::WsClient;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use duet_core::clock::{Clock, ManualClock};
use duet_core::usersig;
use duet_server::Config;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The SDKAppID of every test server.
pub const SDKAPPID: u64 = 1_400_000_000;
/// The secret key of every test server (the key of Tencent's own examples).
pub const SECRET_KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
/// The app admin.
pub const ADMIN: &str = "administrator";
/// Where the test clock starts: 2023-11-14T22:13:20Z.
pub const T0_MS: i64 = 1_700_000_000_000;

pub struct TestServer {
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    data: TempDir,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), duet_server::ServerError>>,
    http: reqwest::Client,
    /// The CA and certificate it serves with, when it serves TLS.
    certs: Option<Arc<TestCerts>>,
}

impl TestServer {
    /// A server with Tencent's defaults.
    pub async fn spawn() -> TestServer {
        TestServer::spawn_with(|_| {}).await
    }

    /// A server whose configuration `tweak` may change first.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::spawn_with_certs(tweak, None).await
    }

    /// A server with Tencent's defaults serving TLS only, with a certificate for `localhost` and
    /// `127.0.0.1` from a CA made for this server ([`TestServer::certs`]); [`TestServer::base_url`] is
    /// `https://…`, and the REST helpers trust that CA.
    pub async fn spawn_tls() -> TestServer {
        TestServer::spawn_tls_with(|_| {}).await
    }

    /// [`TestServer::spawn_tls`] with a configuration `tweak` may change first.
    pub async fn spawn_tls_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let certs = Arc::new(TestCerts::generate());
        let tls = certs.server_tls();
        TestServer::spawn_with_certs(
            |config| {
                config.tls = Some(tls);
                tweak(config);
            },
            Some(certs),
        )
        .await
    }

    async fn spawn_with_certs(tweak: impl FnOnce(&mut Config), certs: Option<Arc<TestCerts>>) -> TestServer {
        let data = tempfile::tempdir().expect("creating a temporary data directory");
        let mut config = Config::new(SDKAPPID, SECRET_KEY, data.path());
        tweak(&mut config);
        TestServer::start(config, data, Arc::new(ManualClock::new(T0_MS)), certs).await
    }

    async fn start(
        config: Config,
        data: TempDir,
        clock: Arc<ManualClock>,
        certs: Option<Arc<TestCerts>>,
    ) -> TestServer {
        let listener = duet_server::bind(([127, 0, 0, 1], 0).into()).expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let store = duet_server::open_store(&config).await.expect("opening the store");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(duet_server::run(
            config.clone(),
            listener,
            store,
            clock.clone() as Arc<dyn Clock>,
            shutdown.clone().cancelled_owned(),
        ));
        let mut http = reqwest::Client::builder();
        if let Some(certs) = &certs {
            let ca = reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).expect("the test CA");
            http = http.tls_built_in_root_certs(false).add_root_certificate(ca);
        }
        let http = http.build().expect("http client");
        let server = TestServer { addr, clock, config, data, shutdown, task, http, certs };
        server.wait_ready().await;
        server
    }

    /// Waits until the server answers (it opens the store and imports the admins before serving).
    async fn wait_ready(&self) {
        for _ in 0..200 {
            if self.http.post(self.base_url()).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the test server did not come up at {}", self.addr);
    }

    /// Stops the server gracefully and asserts it shut down cleanly.
    pub async fn stop(self) -> (TempDir, Config, Arc<ManualClock>) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(std::time::Duration::from_secs(15), self.task)
            .await
            .expect("the server did not stop within 15 s")
            .expect("the server task panicked");
        result.expect("the server failed");
        (self.data, self.config, self.clock)
    }

    /// Stops the server and starts a new one over the same data directory and clock.
    pub async fn restart(self) -> TestServer {
        self.restart_with(|_| {}).await
    }

    /// Stops the server and starts a new one over the same data and clock, with `tweak`ed configuration.
    pub async fn restart_with(self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let certs = self.certs.clone();
        let (data, mut config, clock) = self.stop().await;
        tweak(&mut config);
        TestServer::start(config, data, clock, certs).await
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// `http://127.0.0.1:port`, or `https://` when it serves TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.certs.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA and certificate of a server started with [`TestServer::spawn_tls`].
    pub fn certs(&self) -> Option<&TestCerts> {
        self.certs.as_deref()
    }

    /// A UserSig for `user`, issued now by the test clock, valid for 180 days.
    pub fn usersig(&self, user: &str) -> String {
        usersig::generate(SECRET_KEY, SDKAPPID, user, self.clock.now_secs(), 180 * 86_400, None)
    }

    /// The query string of a REST call made by the admin.
    pub fn admin_query(&self) -> String {
        format!("sdkappid={SDKAPPID}&identifier={ADMIN}&usersig={}&random=99&contenttype=json", self.usersig(ADMIN))
    }

    /// Calls `/v4/{path}` as the admin with a JSON body; returns the response body.
    pub async fn rest(&self, path: &str, body: Value) -> Value {
        self.rest_raw(&format!("/v4/{path}?{}", self.admin_query()), body.to_string()).await
    }

    /// POSTs `body` to `path_and_query` as is (no Content-Type); asserts HTTP 200 and a JSON body.
    pub async fn rest_raw(&self, path_and_query: &str, body: impl Into<reqwest::Body>) -> Value {
        let resp = self
            .http
            .post(format!("{}{path_and_query}", self.base_url()))
            .body(body)
            .send()
            .await
            .expect("sending a REST request");
        assert_eq!(resp.status(), 200, "Tencent's REST API always answers HTTP 200");
        let bytes = resp.bytes().await.expect("reading the response");
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("the response is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    }

    /// Imports accounts, asserting success.
    /// Sets one profile tag of `user` through `profile/portrait_set`; asserts success.
    pub async fn set_profile(&self, user: &str, tag: &str, value: Value) {
        let body = serde_json::json!({"From_Account": user, "ProfileItem": [{"Tag": tag, "Value": value}]});
        let r = self.rest("profile/portrait_set", body).await;
        assert_eq!(r["ErrorCode"], 0, "setting {tag} of {user}: {r}");
    }

    pub async fn import(&self, users: &[&str]) {
        for user in users {
            let r = self.rest("im_open_login_svc/account_import", serde_json::json!({ "UserID": user })).await;
            assert_eq!(r["ErrorCode"], 0, "importing {user}: {r}");
        }
    }
}

/// A text `MsgBody`.
pub fn text(s: &str) -> Value {
    serde_json::json!([{ "MsgType": "TIMTextElem", "MsgContent": { "Text": s } }])
}

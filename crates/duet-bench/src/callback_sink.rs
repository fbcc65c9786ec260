//! `pairs --slow-callback-ms MS`: a local HTTP endpoint that plays the app's backend for
//! `C2C.CallbackBeforeSendMsg` (the server the bench starts calls it before every send), and the one
//! slow user whose sends that backend answers late.
//!
//! The endpoint answers "send it" (`ErrorCode` 0) at once, except to a message from the slow user, which
//! it answers after MS milliseconds; it counts both kinds of call. The slow user sends over REST
//! (`openim/sendmsg`, which passes the before-send callback like a client's send) with [`SLOW_IN_FLIGHT`]
//! calls in flight, to a peer of its own that stays offline, for as long as the pairs run. REST rather
//! than a WebSocket: a connection handles its sends in order, so one slow user on one WebSocket would
//! have one send in flight at a time, while REST keeps many of the server's callback calls waiting at
//! once (the load a slow backend puts on the server). Afterwards the peer pulls its sync log: every
//! acknowledged slow send must be there once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::BenchError;
use crate::stats::{self, Latency};
use crate::target::{Outgoing, Target};
use crate::ws::{self, Ledger, Mark};

/// The slow user's `sendmsg` calls in flight.
pub const SLOW_IN_FLIGHT: usize = 32;

/// Tencent's "send it as it is" answer.
const ALLOW: &str = r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}"#;

/// The before-send callbacks, as a pairs report shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallbackReport {
    /// How long the endpoint took to answer the slow user's messages (0: no slow user ran).
    pub slow_callback_ms: u64,
    /// Before-send calls the endpoint answered at once (every pairs send makes one).
    pub before_send_fast_calls: u64,
    /// Before-send calls for the slow user's messages, answered after `slow_callback_ms`.
    pub before_send_slow_calls: u64,
    /// The slow user's sends, when one ran.
    pub slow_sender: Option<SlowSenderReport>,
}

/// What the slow user's sends got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlowSenderReport {
    pub user: String,
    /// `sendmsg` calls kept in flight.
    pub in_flight: usize,
    /// Seconds from its first send to its last answer (it runs through every step, warm-ups included).
    pub duration_s: f64,
    pub sends_ok: u64,
    pub sends_failed: u64,
    /// Every `sendmsg` call of the run: request → answer.
    pub latency: Latency,
    /// Acknowledged sends missing from the peer's sync log, and sends found there twice.
    pub missing: u64,
    pub duplicates: u64,
}

/// The backend endpoint: answers every before-send call, the slow user's after the delay.
pub struct Sink {
    pub url: String,
    pub slow_user: String,
    pub delay: Duration,
    fast: Arc<AtomicU64>,
    slow: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start(slow_user: String, delay: Duration) -> Result<Sink, BenchError> {
        let (fast, slow) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (f, s, user) = (fast.clone(), slow.clone(), slow_user.clone());
        let app = axum::Router::new().route(
            "/callback",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (f, s, user) = (f.clone(), s.clone(), user.clone());
                async move {
                    let from = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v.get("From_Account").and_then(Value::as_str).map(|a| a == user));
                    if from == Some(true) {
                        tokio::time::sleep(delay).await;
                        s.fetch_add(1, Relaxed);
                    } else {
                        f.fetch_add(1, Relaxed);
                    }
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], ALLOW)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| BenchError::Setup(format!("starting the callback endpoint: {e}")))?;
        let addr = listener.local_addr().map_err(|e| BenchError::Setup(format!("callback endpoint: {e}")))?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { url: format!("http://{addr}/callback"), slow_user, delay, fast, slow, task })
    }

    pub fn fast_calls(&self) -> u64 {
        self.fast.load(Relaxed)
    }

    pub fn slow_calls(&self) -> u64 {
        self.slow.load(Relaxed)
    }

    /// The server's configuration that points its before-send callback (only that one) here, with the
    /// server's defaults for the rest (a 2 s timeout, 256 calls in flight).
    pub fn server_config(&self) -> String {
        format!("[callbacks]\nurl = \"{}\"\ncommands = [\"C2C.CallbackBeforeSendMsg\"]\n", self.url)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The slow user's REST senders, running until [`SlowSender::finish`].
pub struct SlowSender {
    user: String,
    peer: String,
    in_flight: usize,
    started: Instant,
    stop: CancellationToken,
    shared: Arc<Shared>,
    workers: Vec<tokio::task::JoinHandle<hdrhistogram::Histogram<u64>>>,
}

struct Shared {
    epoch: Instant,
    next_k: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    acked: Mutex<Ledger>,
    first_error: Mutex<Option<String>>,
}

impl SlowSender {
    /// Registers `user` and its offline `peer`, and starts `in_flight` senders from `user` to `peer`.
    pub async fn start(
        target: &Target,
        user: String,
        peer: String,
        friends: bool,
        body_bytes: usize,
        in_flight: usize,
    ) -> Result<SlowSender, BenchError> {
        let both = [user.clone(), peer.clone()];
        target.import_accounts(&both).await?;
        if friends {
            target.make_friends(&both).await?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BenchError::Setup(format!("http client: {e}")))?;
        let url = Arc::new(target.admin_url("openim/sendmsg"));
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            next_k: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            acked: Mutex::new(Ledger::default()),
            first_error: Mutex::new(None),
        });
        let stop = CancellationToken::new();
        let in_flight = in_flight.max(1);
        let workers = (0..in_flight)
            .map(|_| {
                let (http, url, shared, stop) = (http.clone(), url.clone(), shared.clone(), stop.clone());
                let (from, to) = (user.clone(), peer.clone());
                tokio::spawn(async move {
                    let mut latency = stats::histogram();
                    // A call in flight is finished, not cancelled: its outcome is known.
                    while !stop.is_cancelled() {
                        let k = shared.next_k.fetch_add(1, Relaxed);
                        let t = Instant::now();
                        let job = Outgoing {
                            from: from.clone(),
                            to: to.clone(),
                            mark: Mark {
                                step: ws::WARMUP,
                                t: t.duration_since(shared.epoch).as_nanos() as u64,
                                k,
                                from: 0,
                            },
                            body_bytes,
                        };
                        match crate::target::rest_call(&http, &url, job.sendmsg_body()).await {
                            Ok(_) => {
                                stats::record(&mut latency, t.elapsed().as_nanos() as u64);
                                shared.acked.lock().unwrap_or_else(|e| e.into_inner()).record(k);
                                shared.ok.fetch_add(1, Relaxed);
                            }
                            Err(e) => {
                                shared.failed.fetch_add(1, Relaxed);
                                shared
                                    .first_error
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .get_or_insert_with(|| e.to_string());
                                // Don't spin on a server that refuses everything.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                    latency
                })
            })
            .collect();
        Ok(SlowSender { user, peer, in_flight, started: Instant::now(), stop, shared, workers })
    }

    /// Stops the senders (each finishes its call in flight), then checks the peer's sync log. `src`:
    /// the loopback source address index of the peer's connection. Returns the report and the failed
    /// checks.
    pub async fn finish(self, target: &Target, src: usize) -> Result<(SlowSenderReport, Vec<String>), BenchError> {
        self.stop.cancel();
        let mut latency = stats::histogram();
        for w in self.workers {
            let h = w.await.map_err(|e| BenchError::Protocol(format!("a slow sender task failed: {e}")))?;
            let _ = latency.add(&h);
        }
        let duration_s = stats::round3(self.started.elapsed().as_secs_f64());
        let marks = ws::pull_all(target, &self.peer, src).await?;
        let acked = std::mem::take(&mut *self.shared.acked.lock().unwrap_or_else(|e| e.into_inner()));
        let mut got = Ledger::default();
        for m in &marks {
            got.record(m.k);
        }
        let sent = self.shared.next_k.load(Relaxed);
        let missing = (0..sent).filter(|&k| acked.has(k) && !got.has(k)).count() as u64;
        let sends_failed = self.shared.failed.load(Relaxed);
        let mut failures = Vec::new();
        if missing > 0 {
            failures.push(format!("slow sender: {missing} acknowledged messages are not in the peer's log"));
        }
        if got.duplicates > 0 {
            failures.push(format!("slow sender: {} messages are in the peer's log twice", got.duplicates));
        }
        if sends_failed > 0 {
            let first = self.shared.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            failures.push(format!("slow sender: {sends_failed} sends failed, first: {}", first.unwrap_or_default()));
        }
        let report = SlowSenderReport {
            user: self.user,
            in_flight: self.in_flight,
            duration_s,
            sends_ok: self.shared.ok.load(Relaxed),
            sends_failed,
            latency: Latency::of(&latency),
            missing,
            duplicates: got.duplicates,
        };
        Ok((report, failures))
    }
}

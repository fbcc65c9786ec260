//! `pairs` (the ejabberd harness's W1): U users online in fixed pairs (0↔1, 2↔3, ...), each sending
//! ~100-byte texts to its partner.
//!
//! Open loop: a ticker spreads the total offered rate round-robin over all users in 2 ms ticks. Closed
//! loop: each user keeps W messages in flight, sending a new one each time the partner receives one.
//! Each step has a warm-up (delivered, not measured) and a measured window, then a drain. Latency is
//! send → arrival at the partner, same clock, same process; the ack latency is send → `sent`.
//!
//! Each connection is two tasks: a writer (commands → frames, batched, one flush per batch) and a reader
//! (frames → counts), so a slow server never finds both sides blocked on writes. The server also pushes
//! each sent message to the sender's own connection (its sync log): those are told apart by the mark's
//! sender and not counted as deliveries. Arrivals go through the protocol's cursor rule; a connection the
//! server drops is resynced from its cursor at the end, so "exactly once" is checked over live pushes and
//! pulls together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use duet_proto::client::{ClientFrame, Entry, ServerFrame};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::args::PairsArgs;
use crate::stats::{Latency, Progress, Recorder, round1, round3};
use crate::sys::{self, CpuUsage, CpuWindow, DiskProbe, DiskStats};
use crate::target::Target;
use crate::ws::{self, Buffers, Inbox, Ledger, Mark, Scanned, Ws};
use crate::{BenchError, Outcome};

/// Frames a writer feeds before it flushes.
const BATCH: usize = 64;
/// Histogram shards (connection index modulo this).
const SHARDS: usize = 16;
/// How long the connections get to close after logging out.
const LOGOUT_GRACE: Duration = Duration::from_secs(60);
/// The open loop's tick: each tick offers the sends due since the last.
pub(crate) const TICK: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, serde::Serialize)]
pub struct PairsReport {
    pub users: usize,
    pub pairs: usize,
    pub body_bytes: usize,
    pub login_s: f64,
    pub logins_per_s: f64,
    pub steps: Vec<StepReport>,
    /// Messages sent over the whole run (warm-ups and drains included).
    pub sent: u64,
    /// Of those, arrived at the partner (first arrivals).
    pub delivered: u64,
    pub undelivered: u64,
    /// Second arrivals of a message under a new log seq (stored twice).
    pub duplicates: u64,
    /// `send` requests answered with an error.
    pub send_errors: u64,
    /// Live entries that skipped ahead of the cursor (each pulled with `sync`).
    pub gaps: u64,
    /// Entries received again at or below the cursor (allowed by the protocol).
    pub redelivered: u64,
    /// The sender's own copies (its sync log), not counted as deliveries.
    pub own_copies: u64,
    /// Connections the server closed during the run.
    pub disconnects: u64,
    /// Messages that had not arrived live by the end (dropped connections, steps that did not drain) and
    /// were then pulled from the log with `sync`. They count as delivered.
    pub recovered_by_resync: u64,
    pub server_rss_bytes_before_login: Option<u64>,
    pub server_rss_bytes_after_login: Option<u64>,
    pub server_rss_bytes_end: Option<u64>,
    /// With `--push`: the pushes the bench's webhook received (one per message sent).
    pub pushes_received: Option<u64>,
    /// With `--slow-callback-ms`: the before-send calls the bench's endpoint answered, and the slow user's
    /// sends (absent from the document without the flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<crate::callback_sink::CallbackReport>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    /// `open` (offered rate) or `closed` (W in flight per user).
    pub mode: &'static str,
    pub offered_per_s: Option<u64>,
    pub window_per_user: Option<u32>,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Messages sent in the measured window.
    pub sent_measured: u64,
    pub delivered_measured: u64,
    pub undelivered_measured: u64,
    pub achieved_send_per_s: f64,
    /// Arrivals per second during the measured window.
    pub delivered_per_s: f64,
    /// Every message of the step arrived within the drain time.
    pub drained: bool,
    /// Send → arrival at the partner, messages sent in the window.
    pub latency: Latency,
    /// Send → `sent` answer.
    pub ack_latency: Latency,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    /// The disk's own sync latency during the window (a 4 KiB write and fdatasync every 50 ms in the
    /// server's data directory): the floor under the latency tail with fsync durability. Only for a server
    /// the bench started.
    #[serde(flatten)]
    pub disk: Option<DiskStats>,
    pub server_cpu_us_per_msg: Option<f64>,
    pub gen_cpu_us_per_msg: Option<f64>,
    pub server_rss_bytes_start: Option<u64>,
    pub server_rss_bytes_end: Option<u64>,
    /// The harness's bar for an open-loop step: drained, p99 < 100 ms, delivered ≥ 95 % of offered.
    pub passed: Option<bool>,
}

enum Cmd {
    Send,
    Sync { after: u64 },
    Logout,
}

/// Counters every task of the run shares.
pub(crate) struct Shared {
    epoch: Instant,
    /// The step stamped on messages sent now ([`ws::WARMUP`] outside measured windows).
    phase: AtomicU8,
    closed_loop: AtomicBool,
    closing: AtomicBool,
    requested: AtomicU64,
    sent: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    send_errors: AtomicU64,
    disconnects: AtomicU64,
    sent_by_step: Vec<AtomicU64>,
    delivered_by_step: Vec<AtomicU64>,
    /// Messages each connection sent.
    sent_by_conn: Vec<AtomicU64>,
    first_error: std::sync::Mutex<Option<String>>,
    /// Send → arrival, by step.
    pub e2e: Recorder,
    ack: Recorder,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Messages sent stamped with `step`.
    pub fn sent_in(&self, step: u8) -> u64 {
        self.sent_by_step[usize::from(step)].load(Relaxed)
    }
}

/// What one connection's reader knows at the end.
struct ConnState {
    me: u32,
    partner: u32,
    user: String,
    inbox: Inbox<Option<Mark>>,
    /// Messages from the partner.
    ledger: Ledger,
    own_copies: u64,
    foreign: u64,
    /// The server closed the connection before the run ended.
    lost: bool,
    /// The connection was closed (by the server) when the reader ended.
    closed: bool,
}

impl ConnState {
    /// A message reached this connection (live or pulled); `true` if it is a first arrival from the partner.
    fn arrived(&mut self, m: Mark, now: u64, shared: &Shared) -> bool {
        if m.from == self.me {
            self.own_copies += 1;
            return false;
        }
        if m.from != self.partner {
            self.foreign += 1;
            return false;
        }
        if !self.ledger.record(m.k) {
            shared.duplicates.fetch_add(1, Relaxed);
            return false;
        }
        shared.delivered.fetch_add(1, Relaxed);
        shared.delivered_by_step[usize::from(m.step)].fetch_add(1, Relaxed);
        if m.step != ws::WARMUP {
            shared.e2e.record(self.me as usize, m.step, now.saturating_sub(m.t));
        }
        true
    }

    /// Applies marks in log order; returns how many were first arrivals from the partner.
    fn apply(&mut self, marks: impl IntoIterator<Item = Option<Mark>>, shared: &Shared) -> u64 {
        let now = shared.now_ns();
        marks.into_iter().flatten().map(|m| u64::from(self.arrived(m, now, shared))).sum()
    }

    /// Applies a `synced` answer: first arrivals from the partner, and `Some(after)` if another pull is needed.
    fn pulled(&mut self, entries: &[Entry], latest: u64, more: bool, shared: &Shared) -> (u64, Option<u64>) {
        let mut marks = Vec::with_capacity(entries.len());
        for e in entries {
            if self.inbox.pulled(e.seq()) {
                marks.push(match e {
                    Entry::Msg { msg, .. } => Mark::find(msg.body.get()),
                    _ => None,
                });
            }
        }
        let (ready, again) = self.inbox.synced(latest, more);
        marks.extend(ready);
        (self.apply(marks, shared), again)
    }
}

pub(crate) async fn run(
    args: &PairsArgs,
    target: &Target,
    push: Option<&crate::push_sink::Sink>,
    callback: Option<&crate::callback_sink::Sink>,
    progress: &Progress,
) -> Result<Outcome<PairsReport>, BenchError> {
    if args.users < 2 || !args.users.is_multiple_of(2) {
        return Err(BenchError::Args("--users must be an even number, at least 2".into()));
    }
    if args.warmup >= args.duration {
        return Err(BenchError::Args("--warmup must be shorter than --duration".into()));
    }
    let steps: Vec<StepPlan> = match &args.closed {
        Some(ws) => ws.iter().map(|&w| StepPlan::Closed(w.max(1))).collect(),
        None => args.rate.iter().map(|&r| StepPlan::Open(r.max(1))).collect(),
    };
    if steps.is_empty() || steps.len() > 250 {
        return Err(BenchError::Args("give between 1 and 250 rates or windows".into()));
    }
    let u = args.users;
    let users: Vec<String> = (0..u).map(|i| format!("{}p{i}", crate::run_prefix())).collect();
    target.import_accounts(&users).await?;
    if args.friends {
        target.make_friends(&users).await?;
    }
    let rss_before = sys::servers_rss(&target.pids);
    let mut fleet =
        Fleet::start(target, users, args.body_bytes, args.target.login_concurrency, push.is_some(), progress).await?;
    let login_s = fleet.login_s;
    progress.line(&format!("pairs: {u} users logged in in {login_s:.2} s"));
    let rss_after_login = sys::servers_rss(&target.pids);
    // The slow user sends through every step; its peer's connection comes after the pairs' addresses.
    let slow = match callback.filter(|c| !c.delay.is_zero()) {
        Some(c) => Some(
            crate::callback_sink::SlowSender::start(
                target,
                c.slow_user.clone(),
                format!("{}slowpeer", crate::run_prefix()),
                args.friends,
                args.body_bytes,
                crate::callback_sink::SLOW_IN_FLIGHT,
            )
            .await?,
        ),
        None => None,
    };

    let mut metas = Vec::new();
    for (n, plan) in steps.iter().enumerate() {
        let meta = match *plan {
            StepPlan::Open(rate) => open_step(n as u8, rate, args, &mut fleet, target, progress).await,
            StepPlan::Closed(w) => closed_step(n as u8, w, args, &mut fleet, target, progress).await,
        };
        let drained = meta.drained;
        progress.line(&format!(
            "{}: delivered {:.0}/s, server CPU {}, drained: {drained}",
            plan.label(),
            meta.delivered_per_s,
            meta.cpu.server_cpu_pct.map_or("n/a".into(), |c| format!("{c:.0} %")),
        ));
        metas.push((*plan, meta));
        if !drained {
            progress.line("the backlog did not drain; stopping the ramp");
            break;
        }
    }

    let slow = match slow {
        Some(s) => Some(s.finish(target, u).await?),
        None => None,
    };
    let shared = fleet.shared.clone();
    // Every stored message is pushed: wait for the pushes before the logouts end the registrations.
    let pushes = match push {
        Some(sink) => {
            let stored = shared.sent.load(Relaxed);
            let deadline = Instant::now() + std::time::Duration::from_secs_f64(args.drain.max(1.0));
            while sink.received() < stored && Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Some((sink.received(), stored))
        }
        None => None,
    };
    let mut tally = fleet.finish(target, args.target.login_concurrency).await?;
    if let Some((received, stored)) = pushes
        && received != stored
    {
        tally.failures.push(format!("{received} pushes reached the webhook for {stored} messages sent"));
    }
    let callbacks = callback.map(|c| {
        let (fast, sent) = (c.fast_calls(), shared.sent.load(Relaxed));
        if fast != sent {
            tally.notes.push(format!(
                "the before-send endpoint was called for {fast} of {sent} pairs sends (the others failed in the \
                 server: see its log)"
            ));
        }
        let slow_sender = slow.map(|(report, failures)| {
            tally.failures.extend(failures);
            report
        });
        crate::callback_sink::CallbackReport {
            slow_callback_ms: c.delay.as_millis() as u64,
            before_send_fast_calls: fast,
            before_send_slow_calls: c.slow_calls(),
            slow_sender,
        }
    });
    let steps: Vec<StepReport> = metas
        .into_iter()
        .enumerate()
        .map(|(n, (plan, meta))| step_report(n as u8, plan, meta, args, &shared))
        .collect();
    let report = PairsReport {
        users: u,
        pairs: u / 2,
        body_bytes: args.body_bytes,
        login_s: round3(login_s),
        logins_per_s: round1(u as f64 / login_s.max(1e-9)),
        steps,
        sent: tally.sent,
        delivered: tally.delivered,
        undelivered: tally.undelivered,
        duplicates: tally.duplicates,
        send_errors: tally.send_errors,
        gaps: tally.gaps,
        redelivered: tally.redelivered,
        own_copies: tally.own_copies,
        disconnects: tally.disconnects,
        recovered_by_resync: tally.recovered,
        server_rss_bytes_before_login: rss_before,
        server_rss_bytes_after_login: rss_after_login,
        server_rss_bytes_end: sys::servers_rss(&target.pids),
        pushes_received: pushes.map(|(received, _)| received),
        callbacks,
    };
    Ok(Outcome { report, failures: tally.failures, notes: tally.notes })
}

/// U logged-in users in fixed pairs (0↔1, 2↔3, ...), each connection a writer and a reader task, with the
/// counters they share: the machinery of `pairs`, which `soak` drives too. The driver offers sends
/// ([`Fleet::offer`] open loop, [`Fleet::fill`] closed loop) and stamps them with a step ([`Fleet::set_phase`]);
/// [`Fleet::finish`] logs everyone out, resyncs what is missing and checks that every message arrived
/// exactly once.
pub(crate) struct Fleet {
    pub shared: Arc<Shared>,
    pub login_s: f64,
    txs: Vec<mpsc::UnboundedSender<Cmd>>,
    writers: Vec<tokio::task::JoinHandle<()>>,
    readers: Vec<tokio::task::JoinHandle<ConnState>>,
    stop: CancellationToken,
    /// The next user to send, open loop (round-robin).
    next: usize,
    /// Sends offered so far, open loop.
    offered: u64,
}

/// What [`Fleet::finish`] found over the whole run.
pub(crate) struct Tally {
    pub sent: u64,
    pub delivered: u64,
    pub undelivered: u64,
    pub duplicates: u64,
    pub send_errors: u64,
    pub gaps: u64,
    pub redelivered: u64,
    pub own_copies: u64,
    pub disconnects: u64,
    pub recovered: u64,
    /// Failed exactly-once checks.
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

impl Fleet {
    /// Logs `users` in (an even number; connection `i` uses source address index `i`) and starts their tasks.
    pub async fn start(
        target: &Target,
        users: Vec<String>,
        body_bytes: usize,
        login_concurrency: usize,
        push: bool,
        progress: &Progress,
    ) -> Result<Fleet, BenchError> {
        let u = users.len();
        let sigs = target.usersigs(&users);
        let bar = progress.bar(u as u64, "login");
        let t0 = Instant::now();
        let (mut conns, _) = ws::login_all(target, &users, &sigs, login_concurrency, Buffers::Large, &bar).await?;
        let login_s = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if push {
            let registrations =
                conns.iter_mut().zip(&users).map(|((ws, _), user)| crate::push_sink::register(ws, user));
            futures_util::stream::iter(registrations)
                .buffer_unordered(login_concurrency.max(1))
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<()>, BenchError>>()?;
        }

        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            phase: AtomicU8::new(ws::WARMUP),
            closed_loop: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            requested: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            sent_by_step: (0..256).map(|_| AtomicU64::new(0)).collect(),
            delivered_by_step: (0..256).map(|_| AtomicU64::new(0)).collect(),
            sent_by_conn: (0..u).map(|_| AtomicU64::new(0)).collect(),
            first_error: std::sync::Mutex::new(None),
            e2e: Recorder::new(SHARDS),
            ack: Recorder::new(SHARDS),
        });

        // Channels first: a reader needs its partner's writer (closed loop) and its own (sync).
        let stop = CancellationToken::new();
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..u).map(|_| mpsc::unbounded_channel::<Cmd>()).unzip();
        let mut writers = Vec::with_capacity(u);
        let mut readers = Vec::with_capacity(u);
        for (i, ((conn, latest), rx)) in conns.into_iter().zip(rxs).enumerate() {
            let partner = i ^ 1;
            let (sink, stream) = conn.split();
            writers.push(tokio::spawn(writer(sink, rx, i as u32, users[partner].clone(), body_bytes, shared.clone())));
            let state = ConnState {
                me: i as u32,
                partner: partner as u32,
                user: users[i].clone(),
                inbox: Inbox::new(latest),
                ledger: Ledger::default(),
                own_copies: 0,
                foreign: 0,
                lost: false,
                closed: false,
            };
            readers.push(tokio::spawn(reader(
                stream,
                state,
                txs[i].clone(),
                txs[partner].clone(),
                shared.clone(),
                stop.clone(),
            )));
        }
        Ok(Fleet { shared, login_s, txs, writers, readers, stop, next: 0, offered: 0 })
    }

    /// Stamps messages sent from now on with `step` ([`ws::WARMUP`]: not measured).
    pub fn set_phase(&self, step: u8) {
        self.shared.phase.store(step, Relaxed);
    }

    /// Open loop: offers sends round-robin over the users until `due` have been offered in all.
    pub fn offer(&mut self, due: u64) {
        while self.offered < due {
            let _ = self.txs[self.next].send(Cmd::Send);
            self.next = (self.next + 1) % self.txs.len();
            self.offered += 1;
            self.shared.requested.fetch_add(1, Relaxed);
        }
    }

    /// Closed loop: each user sends `w` messages, then one more each time its partner receives one, until
    /// [`Fleet::stop_closed_loop`].
    pub fn fill(&self, w: u32) {
        self.shared.closed_loop.store(true, Relaxed);
        for tx in &self.txs {
            for _ in 0..w {
                self.shared.requested.fetch_add(1, Relaxed);
                let _ = tx.send(Cmd::Send);
            }
        }
    }

    pub fn stop_closed_loop(&self) {
        self.shared.closed_loop.store(false, Relaxed);
    }

    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Relaxed)
    }

    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Relaxed)
    }

    /// Connections the server has not closed.
    pub fn open_conns(&self) -> u64 {
        (self.txs.len() as u64).saturating_sub(self.shared.disconnects.load(Relaxed))
    }

    /// Waits until every requested message was sent and every sent one arrived or was refused.
    pub async fn drain(&self, limit: Duration) -> bool {
        drain(&self.shared, limit).await
    }

    /// Logs everyone out, pulls what dropped connections missed, and checks that every message sent
    /// arrived exactly once.
    pub async fn finish(self, target: &Target, login_concurrency: usize) -> Result<Tally, BenchError> {
        let Fleet { shared, txs, writers, readers, stop, .. } = self;
        let u = txs.len();
        // The server answers a logout after every request before it, so a closed connection has had all
        // its sends handled; after a grace period the readers stop waiting anyway.
        shared.closing.store(true, Relaxed);
        for tx in &txs {
            let _ = tx.send(Cmd::Logout);
        }
        drop(txs);
        let grace = tokio::time::sleep(LOGOUT_GRACE);
        tokio::pin!(grace);
        let mut states = Vec::with_capacity(u);
        let mut unclosed = 0;
        for mut r in readers {
            let st = tokio::select! {
                st = &mut r => st,
                () = &mut grace, if !stop.is_cancelled() => {
                    stop.cancel();
                    r.await
                }
            };
            let st = st.map_err(|e| BenchError::Protocol(format!("a reader task failed: {e}")))?;
            unclosed += u64::from(!st.closed);
            states.push(st);
        }
        for w in writers {
            w.abort();
        }
        // Connections the server dropped, and any still short of messages (a step that did not drain): pull
        // what they missed, as a reconnecting client would. What is not in the log then is lost.
        let shared_ref = &*shared;
        let pulls = states
            .iter_mut()
            .filter(|st| st.lost || shared_ref.sent_by_conn[st.partner as usize].load(Relaxed) > st.ledger.unique)
            .map(|st| resync(target, st, shared_ref));
        let pulled: Vec<Result<u64, BenchError>> =
            futures_util::stream::iter(pulls).buffer_unordered(login_concurrency.max(1)).collect().await;
        let mut recovered = 0;
        for p in pulled {
            recovered += p?;
        }

        let sent = shared.sent.load(Relaxed);
        let send_errors = shared.send_errors.load(Relaxed);
        let duplicates: u64 = states.iter().map(|s| s.ledger.duplicates).sum();
        let foreign: u64 = states.iter().map(|s| s.foreign).sum();
        let mut failures = Vec::new();
        // Per pair: what the sender sent against what its partner received.
        let mut undelivered = 0;
        for st in &states {
            let sent_to_me = shared.sent_by_conn[st.partner as usize].load(Relaxed);
            undelivered += sent_to_me.saturating_sub(st.ledger.unique);
        }
        let undelivered = undelivered.saturating_sub(send_errors);
        if undelivered > 0 {
            failures.push(format!("{undelivered} of {sent} messages never arrived"));
        }
        if duplicates > 0 {
            failures.push(format!("{duplicates} messages arrived twice (under different log seqs)"));
        }
        if send_errors > 0 {
            let first = shared.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            failures.push(format!("{send_errors} sends were refused, first: {}", first.unwrap_or_default()));
        }
        if foreign > 0 {
            failures.push(format!("{foreign} messages arrived at a user they were not sent to"));
        }
        let mut notes = Vec::new();
        let disconnects = shared.disconnects.load(Relaxed);
        if disconnects > 0 {
            notes.push(format!("the server closed {disconnects} connections during the run"));
        }
        if recovered > 0 {
            notes.push(format!(
                "{recovered} messages had not arrived live by the end and were pulled with sync afterwards"
            ));
        }
        if unclosed > 0 {
            notes.push(format!(
                "{unclosed} connections were still busy {} s after logging out (a server backlog); sends still \
                 queued in the server then count as undelivered",
                LOGOUT_GRACE.as_secs()
            ));
        }
        let gaps: u64 = states.iter().map(|s| s.inbox.gaps).sum();
        if gaps > 0 {
            notes.push(format!(
                "{gaps} times a live entry arrived ahead of the cursor (pushes out of seq order, or lost); each was buffered and a sync pull started, as the protocol asks"
            ));
        }
        Ok(Tally {
            sent,
            delivered: states.iter().map(|s| s.ledger.unique).sum(),
            undelivered,
            duplicates,
            send_errors,
            gaps,
            redelivered: states.iter().map(|s| s.inbox.redelivered).sum(),
            own_copies: states.iter().map(|s| s.own_copies).sum(),
            disconnects,
            recovered,
            failures,
            notes,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum StepPlan {
    Open(u64),
    Closed(u32),
}

impl StepPlan {
    fn label(&self) -> String {
        match self {
            StepPlan::Open(r) => format!("{r} msg/s offered"),
            StepPlan::Closed(w) => format!("closed loop W={w}"),
        }
    }
}

/// What the driver measured during a step (or a soak's interval).
pub(crate) struct StepMeta {
    pub window_s: f64,
    pub delivered_per_s: f64,
    pub cpu: CpuUsage,
    pub disk: Option<DiskStats>,
    pub delivered_in_window: u64,
    pub rss_start: Option<u64>,
    pub rss_end: Option<u64>,
    pub drained: bool,
}

/// The window's counters at its start.
pub(crate) struct Window {
    at: Instant,
    cpu: CpuWindow,
    disk: Option<DiskProbe>,
    delivered: u64,
    rss: Option<u64>,
}

impl Window {
    pub fn open(fleet: &Fleet, target: &Target) -> Window {
        Window {
            at: Instant::now(),
            cpu: CpuWindow::start(&target.pids),
            disk: target.data_dir().and_then(DiskProbe::start),
            delivered: fleet.delivered(),
            rss: sys::servers_rss(&target.pids),
        }
    }

    pub fn close(self, fleet: &Fleet, target: &Target) -> StepMeta {
        let window_s = self.at.elapsed().as_secs_f64();
        let cpu = self.cpu.finish();
        let delivered = fleet.delivered() - self.delivered;
        let disk = self.disk.and_then(DiskProbe::finish);
        StepMeta {
            window_s,
            delivered_per_s: delivered as f64 / window_s.max(1e-9),
            cpu,
            disk,
            delivered_in_window: delivered,
            rss_start: self.rss,
            rss_end: sys::servers_rss(&target.pids),
            drained: false,
        }
    }
}

async fn open_step(
    step: u8,
    rate: u64,
    args: &PairsArgs,
    fleet: &mut Fleet,
    target: &Target,
    progress: &Progress,
) -> StepMeta {
    let duration = Duration::from_secs_f64(args.duration);
    let warmup = Duration::from_secs_f64(args.warmup);
    let bar = progress.timed(duration, &format!("{rate}/s"));
    fleet.set_phase(ws::WARMUP);
    let start = Instant::now();
    let base = fleet.offered;
    let mut window = None;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        if elapsed >= warmup && window.is_none() {
            fleet.set_phase(step);
            window = Some(Window::open(fleet, target));
        }
        fleet.offer(base + (rate as f64 * elapsed.as_secs_f64()) as u64);
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!("sent {} delivered {}", fleet.sent(), fleet.delivered()));
    }
    let window = window.unwrap_or_else(|| Window::open(fleet, target));
    let mut meta = window.close(fleet, target);
    meta.drained = fleet.drain(Duration::from_secs_f64(args.drain)).await;
    bar.finish_and_clear();
    meta
}

async fn closed_step(
    step: u8,
    w: u32,
    args: &PairsArgs,
    fleet: &mut Fleet,
    target: &Target,
    progress: &Progress,
) -> StepMeta {
    let duration = Duration::from_secs_f64(args.duration);
    let warmup = Duration::from_secs_f64(args.warmup);
    let bar = progress.timed(duration, &format!("W={w}"));
    fleet.set_phase(ws::WARMUP);
    fleet.fill(w);
    let start = Instant::now();
    let mut window = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        if elapsed >= warmup && window.is_none() {
            fleet.set_phase(step);
            window = Some(Window::open(fleet, target));
        }
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!("delivered {}", fleet.delivered()));
    }
    let window = window.unwrap_or_else(|| Window::open(fleet, target));
    let mut meta = window.close(fleet, target);
    fleet.stop_closed_loop();
    meta.drained = fleet.drain(Duration::from_secs_f64(args.drain)).await;
    bar.finish_and_clear();
    meta
}

/// Waits until every requested message was sent and every sent one arrived or was refused.
async fn drain(shared: &Shared, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let sent = shared.sent.load(Relaxed);
        let done = shared.delivered.load(Relaxed) + shared.send_errors.load(Relaxed);
        if sent == shared.requested.load(Relaxed) && done >= sent {
            return true;
        }
        if Instant::now() > deadline || shared.disconnects.load(Relaxed) > 0 {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn step_report(step: u8, plan: StepPlan, meta: StepMeta, args: &PairsArgs, shared: &Shared) -> StepReport {
    let latency = Latency::of(&shared.e2e.merged(step));
    let ack_latency = Latency::of(&shared.ack.merged(step));
    let sent_measured = shared.sent_by_step[usize::from(step)].load(Relaxed);
    let delivered_measured = shared.delivered_by_step[usize::from(step)].load(Relaxed);
    let per_msg = |us: Option<f64>| {
        us.filter(|_| meta.delivered_in_window > 0).map(|us| round1(us / meta.delivered_in_window as f64))
    };
    let (offered, window_per_user, passed) = match plan {
        StepPlan::Open(rate) => (
            Some(rate),
            None,
            Some(
                meta.drained
                    && latency.count > 0
                    && latency.p99_ms < 100.0
                    && meta.delivered_per_s >= 0.95 * rate as f64,
            ),
        ),
        StepPlan::Closed(w) => (None, Some(w), None),
    };
    let cpu = meta.cpu.rounded();
    StepReport {
        mode: match plan {
            StepPlan::Open(_) => "open",
            StepPlan::Closed(_) => "closed",
        },
        offered_per_s: offered,
        window_per_user,
        duration_s: args.duration,
        warmup_s: args.warmup,
        sent_measured,
        delivered_measured,
        undelivered_measured: sent_measured.saturating_sub(delivered_measured),
        achieved_send_per_s: round1(sent_measured as f64 / meta.window_s.max(1e-9)),
        delivered_per_s: round1(meta.delivered_per_s),
        drained: meta.drained,
        latency,
        ack_latency,
        server_cpu_us_per_msg: per_msg(meta.cpu.server_cpu_us),
        gen_cpu_us_per_msg: per_msg(meta.cpu.gen_cpu_us),
        cpu,
        disk: meta.disk,
        server_rss_bytes_start: meta.rss_start,
        server_rss_bytes_end: meta.rss_end,
        passed,
    }
}

/// Commands → frames: one flush per batch of up to [`BATCH`] frames, until logout or a write fails.
async fn writer(
    mut sink: SplitSink<Ws, WsMessage>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    me: u32,
    partner: String,
    body_bytes: usize,
    shared: Arc<Shared>,
) {
    let mut k = 0u64;
    let mut last_t = 0u64;
    let mut next_id = 2u64;
    while let Some(first) = rx.recv().await {
        let mut cmd = Some(first);
        let mut fed = 0;
        while let Some(c) = cmd.take() {
            let frame = match c {
                Cmd::Send => {
                    let step = shared.phase.load(Relaxed);
                    let t = shared.now_ns().max(last_t + 1);
                    last_t = t;
                    let mark = Mark { step, t, k, from: me };
                    shared.sent.fetch_add(1, Relaxed);
                    shared.sent_by_step[usize::from(step)].fetch_add(1, Relaxed);
                    shared.sent_by_conn[me as usize].fetch_add(1, Relaxed);
                    let frame = ClientFrame::Send {
                        id: ws::send_id(step, t),
                        to: partner.clone(),
                        seq: None,
                        random: k as u32,
                        body: mark.body(body_bytes),
                        cloud_custom_data: String::new(),
                        online_only: false,
                        push: None,
                        need_read_receipt: false,
                    };
                    k += 1;
                    frame
                }
                Cmd::Sync { after } => {
                    next_id += 1;
                    ClientFrame::Sync { id: next_id, after, limit: Some(duet_proto::client::MAX_SYNC_BATCH) }
                }
                Cmd::Logout => {
                    let _ = sink.send(WsMessage::Text(ws::encode(&ClientFrame::Logout { id: 1 }).into())).await;
                    return;
                }
            };
            if sink.feed(WsMessage::Text(ws::encode(&frame).into())).await.is_err() {
                return;
            }
            fed += 1;
            if fed < BATCH {
                cmd = rx.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Frames → counts, until the connection closes.
async fn reader(
    mut stream: SplitStream<Ws>,
    mut st: ConnState,
    own: mpsc::UnboundedSender<Cmd>,
    partner: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> ConnState {
    loop {
        let msg = tokio::select! {
            biased;
            msg = stream.next() => msg,
            () = stop.cancelled() => return st,
        };
        let text = match msg {
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(WsMessage::Close(_)) | Err(_)) | None => break,
            Some(Ok(_)) => continue,
        };
        match ws::scan(&text) {
            Scanned::Entry { seq, mark } => match st.inbox.live(seq, mark) {
                ws::Live::Apply(marks) => {
                    let new = st.apply(marks, &shared);
                    if shared.closed_loop.load(Relaxed) {
                        for _ in 0..new {
                            shared.requested.fetch_add(1, Relaxed);
                            let _ = partner.send(Cmd::Send);
                        }
                    }
                }
                ws::Live::Buffered(Some(after)) => {
                    let _ = own.send(Cmd::Sync { after });
                }
                ws::Live::Buffered(None) | ws::Live::Skip => {}
            },
            Scanned::Sent { id } => {
                let (step, t) = ws::split_send_id(id);
                if step != ws::WARMUP {
                    shared.ack.record(st.me as usize, step, shared.now_ns().saturating_sub(t));
                }
            }
            Scanned::Other(ServerFrame::Synced { entries, latest, more, .. }) => {
                let (new, again) = st.pulled(&entries, latest, more, &shared);
                if shared.closed_loop.load(Relaxed) {
                    for _ in 0..new {
                        shared.requested.fetch_add(1, Relaxed);
                        let _ = partner.send(Cmd::Send);
                    }
                }
                if let Some(after) = again {
                    let _ = own.send(Cmd::Sync { after });
                }
            }
            Scanned::Other(ServerFrame::Error { id, code, info }) => {
                if id >= ws::SMALL_IDS {
                    shared.send_errors.fetch_add(1, Relaxed);
                }
                let mut first = shared.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| format!("{}: {code} {info}", st.user));
            }
            Scanned::Other(ServerFrame::Kicked { .. } | ServerFrame::SigExpired { .. }) => break,
            Scanned::Other(_) => {}
            Scanned::Garbage(text) => {
                let mut first = shared.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert_with(|| format!("{}: not a frame: {text}", st.user));
            }
        }
    }
    st.closed = true;
    if !shared.closing.load(Relaxed) {
        st.lost = true;
        shared.disconnects.fetch_add(1, Relaxed);
    }
    st
}

/// Logs a dropped connection's user in again and pulls everything after its cursor.
async fn resync(target: &Target, st: &mut ConnState, shared: &Shared) -> Result<u64, BenchError> {
    let (mut conn, _) = ws::open(target, &st.user, st.me as usize, Buffers::Large).await?;
    let mut recovered = 0;
    st.inbox.reset();
    let mut after = Some(st.inbox.start_pull());
    let mut id = 100;
    while let Some(a) = after {
        id += 1;
        conn.send(ws::sync_frame(id, a)).await.map_err(|e| BenchError::Connect(format!("{}: {e}", st.user)))?;
        after = None;
        while let Some(msg) = tokio::time::timeout(ws::LOGIN_TIMEOUT, conn.next())
            .await
            .map_err(|_| BenchError::Protocol(format!("{}: no answer to sync", st.user)))?
        {
            let Ok(WsMessage::Text(text)) = msg else { continue };
            if let Scanned::Other(ServerFrame::Synced { id: got, entries, latest, more }) = ws::scan(&text)
                && got == id
            {
                let (new, again) = st.pulled(&entries, latest, more, shared);
                recovered += new;
                after = again;
                break;
            }
        }
    }
    let _ = conn.close(None).await;
    Ok(recovered)
}

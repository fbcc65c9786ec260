//! `rest`: C concurrent HTTP/1.1 keep-alive clients, each its own connection, call the admin's
//! `openim/sendmsg` back to back (client i sends from its own user to its own peer) for the duration.
//! Reported: requests per second and latency in the measured window. Checked afterwards: each peer logs
//! in and pulls its whole sync log; every acknowledged message is there exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::args::RestArgs;
use crate::stats::{self, Latency, Progress, round1};
use crate::sys::{CpuUsage, CpuWindow};
use crate::target::{Outgoing, Target};
use crate::ws::{self, Ledger, Mark};
use crate::{BenchError, Outcome};

/// The phase after the measured window: clients stop.
const STOP: u8 = 254;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RestReport {
    pub clients: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    /// Requests answered OK during the measured window, per second.
    pub req_per_s: f64,
    /// Requests sent in the measured window: request → full response.
    pub latency: Latency,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    pub server_cpu_us_per_req: Option<f64>,
    /// Acknowledged messages missing from the recipient's sync log.
    pub missing: u64,
    pub duplicates: u64,
    /// Messages whose request failed but which were stored all the same.
    pub stored_without_ack: u64,
}

struct Shared {
    epoch: Instant,
    phase: AtomicU8,
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

/// What one client did.
struct ClientResult {
    acked: Ledger,
    sent: u64,
    latency: hdrhistogram::Histogram<u64>,
}

pub(crate) async fn run(
    args: &RestArgs,
    target: &Target,
    progress: &Progress,
) -> Result<Outcome<RestReport>, BenchError> {
    if args.clients == 0 {
        return Err(BenchError::Args("--clients must be at least 1".into()));
    }
    if args.warmup >= args.duration {
        return Err(BenchError::Args("--warmup must be shorter than --duration".into()));
    }
    let prefix = crate::run_prefix();
    let senders: Vec<String> = (0..args.clients).map(|i| format!("{prefix}rs{i}")).collect();
    let peers: Vec<String> = (0..args.clients).map(|i| format!("{prefix}rr{i}")).collect();
    target.import_accounts(&senders.iter().chain(&peers).cloned().collect::<Vec<_>>()).await?;

    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        phase: AtomicU8::new(ws::WARMUP),
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: std::sync::Mutex::new(None),
    });
    let url = Arc::new(target.admin_url("openim/sendmsg"));
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BenchError::Setup(format!("http client: {e}")))?;
        tasks.push(tokio::spawn(client(
            http,
            url.clone(),
            i as u32,
            senders[i].clone(),
            peers[i].clone(),
            args.body_bytes,
            shared.clone(),
        )));
    }

    let duration = Duration::from_secs_f64(args.duration);
    let warmup = Duration::from_secs_f64(args.warmup);
    let bar = progress.timed(duration, "sendmsg");
    let start = Instant::now();
    let mut window = None;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            break;
        }
        if elapsed >= warmup && window.is_none() {
            shared.phase.store(0, Relaxed);
            window = Some((Instant::now(), CpuWindow::start(&target.pids), shared.ok.load(Relaxed)));
        }
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!("{} ok", shared.ok.load(Relaxed)));
    }
    let (w_start, cpu, ok0) = window.unwrap_or_else(|| (Instant::now(), CpuWindow::start(&target.pids), 0));
    let window_s = w_start.elapsed().as_secs_f64();
    let ok_in_window = shared.ok.load(Relaxed) - ok0;
    let cpu = cpu.finish();
    shared.phase.store(STOP, Relaxed);
    bar.finish_and_clear();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.map_err(|e| BenchError::Protocol(format!("a client task failed: {e}")))?);
    }
    let mut latency = stats::histogram();
    for r in &results {
        let _ = latency.add(&r.latency);
    }

    // Every acknowledged message must be in its peer's sync log, once.
    let bar = progress.bar(args.clients as u64, "verify");
    let checks = results.iter().enumerate().map(|(i, r)| {
        let (peer, bar) = (&peers[i], &bar);
        async move {
            let marks = ws::pull_all(target, peer, i).await?;
            bar.inc(1);
            let mut got = Ledger::default();
            for m in marks.into_iter().filter(|m| m.from == i as u32) {
                got.record(m.k);
            }
            let (mut missing, mut unacked) = (0u64, 0u64);
            for k in 0..r.sent {
                match (r.acked.has(k), got.has(k)) {
                    (true, false) => missing += 1,
                    (false, true) => unacked += 1,
                    _ => {}
                }
            }
            Ok::<_, BenchError>((missing, got.duplicates, unacked))
        }
    });
    let verified: Vec<_> =
        futures_util::stream::iter(checks).buffer_unordered(args.target.login_concurrency.max(1)).collect().await;
    bar.finish_and_clear();
    let (mut missing, mut duplicates, mut stored_without_ack) = (0, 0, 0);
    for v in verified {
        let (m, d, u) = v?;
        missing += m;
        duplicates += d;
        stored_without_ack += u;
    }

    let requests_failed = shared.failed.load(Relaxed);
    let mut failures = Vec::new();
    if missing > 0 {
        failures.push(format!("rest: {missing} acknowledged messages are not in the recipient's log"));
    }
    if duplicates > 0 {
        failures.push(format!("rest: {duplicates} messages are in the recipient's log twice"));
    }
    if requests_failed > 0 {
        let first = shared.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        failures.push(format!("rest: {requests_failed} requests failed, first: {}", first.unwrap_or_default()));
    }
    let report = RestReport {
        clients: args.clients,
        duration_s: args.duration,
        warmup_s: args.warmup,
        requests_ok: shared.ok.load(Relaxed),
        requests_failed,
        req_per_s: round1(ok_in_window as f64 / window_s.max(1e-9)),
        latency: Latency::of(&latency),
        server_cpu_us_per_req: cpu
            .server_cpu_us
            .filter(|_| ok_in_window > 0)
            .map(|us| round1(us / ok_in_window as f64)),
        cpu: cpu.rounded(),
        missing,
        duplicates,
        stored_without_ack,
    };
    Ok(Outcome { report, failures, notes: Vec::new() })
}

fn note_error(shared: &Shared, e: String) {
    let mut first = shared.first_error.lock().unwrap_or_else(|e| e.into_inner());
    first.get_or_insert(e);
}

async fn client(
    http: reqwest::Client,
    url: Arc<String>,
    me: u32,
    from: String,
    to: String,
    body_bytes: usize,
    shared: Arc<Shared>,
) -> ClientResult {
    let mut out = ClientResult { acked: Ledger::default(), sent: 0, latency: stats::histogram() };
    loop {
        let step = shared.phase.load(Relaxed);
        if step == STOP {
            return out;
        }
        let t = Instant::now();
        let job = Outgoing {
            from: from.clone(),
            to: to.clone(),
            mark: Mark { step, t: t.duration_since(shared.epoch).as_nanos() as u64, k: out.sent, from: me },
            body_bytes,
        };
        out.sent += 1;
        match crate::target::rest_call(&http, &url, job.sendmsg_body()).await {
            Ok(_) => {
                if step != ws::WARMUP {
                    stats::record(&mut out.latency, t.elapsed().as_nanos() as u64);
                }
                out.acked.record(job.mark.k);
                shared.ok.fetch_add(1, Relaxed);
            }
            Err(e) => {
                shared.failed.fetch_add(1, Relaxed);
                note_error(&shared, e.to_string());
                // Don't spin on a server that refuses everything.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

//! `idle` (the harness's W2): N registered users log in (200 logins in flight) and stay connected doing
//! nothing. The server's RSS is sampled before the logins, after a settle time and after an idle hold;
//! the growth divided by N is its memory per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::args::IdleArgs;
use crate::stats::{Latency, Progress, round1, round3};
use crate::sys::{self, CpuWindow};
use crate::target::Target;
use crate::ws::{self, Buffers};
use crate::{BenchError, Outcome};

/// Files kept free for the runtime, the REST client and the like.
const FD_MARGIN: u64 = 200;

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleReport {
    pub conns_requested: usize,
    pub conns: usize,
    /// This process's open-files limit (after raising the soft limit to the hard one).
    pub nofile_limit: u64,
    pub login_s: f64,
    pub logins_per_s: f64,
    /// Connect → `logged_in`, per connection.
    pub login_latency: Latency,
    pub login_server_cpu_pct: Option<f64>,
    pub login_gen_cpu_pct: Option<f64>,
    pub server_cpu_us_per_login: Option<f64>,
    pub server_rss_bytes_before: Option<u64>,
    pub server_rss_bytes_after: Option<u64>,
    pub server_rss_bytes_after_hold: Option<u64>,
    pub rss_bytes_per_conn: Option<f64>,
    pub rss_bytes_per_conn_after_hold: Option<f64>,
    pub idle_server_cpu_pct: Option<f64>,
    pub gen_rss_bytes: Option<u64>,
    pub alive_at_end: usize,
    pub settle_s: f64,
    pub hold_s: f64,
}

pub(crate) async fn run(
    args: &IdleArgs,
    target: &Target,
    progress: &Progress,
) -> Result<Outcome<IdleReport>, BenchError> {
    let limit = sys::raise_nofile();
    let mut notes = Vec::new();
    let cap = limit.soft.saturating_sub(FD_MARGIN) as usize;
    let n = args.conns.min(cap);
    if n < args.conns {
        notes.push(format!(
            "capped at {n} connections: this process may open {} files (hard limit {})",
            limit.soft, limit.hard
        ));
    }
    if n == 0 {
        return Err(BenchError::Args("no connection to open".into()));
    }
    let users: Vec<String> = (0..n).map(|i| format!("{}i{i}", crate::run_prefix())).collect();
    target.import_accounts(&users).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = sys::servers_rss(&target.pids);

    let sigs = target.usersigs(&users);
    let bar = progress.bar(n as u64, "login");
    let cpu = CpuWindow::start(&target.pids);
    let t0 = Instant::now();
    let (conns, login_latency) =
        ws::login_all(target, &users, &sigs, args.target.login_concurrency, Buffers::Small, &bar).await?;
    let login_s = t0.elapsed().as_secs_f64();
    let login_cpu = cpu.finish();
    bar.finish_and_clear();
    progress.line(&format!("idle: {n} logged in in {login_s:.2} s ({:.0}/s)", n as f64 / login_s));

    let stop = CancellationToken::new();
    let dropped = Arc::new(AtomicU64::new(0));
    let holders: Vec<_> =
        conns.into_iter().map(|(conn, _)| tokio::spawn(hold(conn, stop.clone(), dropped.clone()))).collect();

    let bar = progress.timed(Duration::from_secs_f64(args.settle + args.hold), "idle");
    let t_idle = Instant::now();
    let tick = |bar: &indicatif::ProgressBar| bar.set_position(t_idle.elapsed().as_millis() as u64);
    sleep_ticking(Duration::from_secs_f64(args.settle), &bar, tick).await;
    let rss_after = sys::servers_rss(&target.pids);
    let gen_rss = sys::rss(None);
    let idle_cpu = CpuWindow::start(&target.pids);
    sleep_ticking(Duration::from_secs_f64(args.hold), &bar, tick).await;
    let idle_cpu = idle_cpu.finish();
    let rss_after_hold = sys::servers_rss(&target.pids);
    bar.finish_and_clear();
    let alive = n - dropped.load(Relaxed) as usize;

    stop.cancel();
    for h in holders {
        let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
    }

    let per_conn = |after: Option<u64>| match (rss_before, after) {
        (Some(b), Some(a)) => Some(round1((a as f64 - b as f64) / n as f64)),
        _ => None,
    };
    let mut failures = Vec::new();
    if alive < n {
        failures.push(format!("{} of {n} idle connections were closed by the server", n - alive));
    }
    let report = IdleReport {
        conns_requested: args.conns,
        conns: n,
        nofile_limit: limit.soft,
        login_s: round3(login_s),
        logins_per_s: round1(n as f64 / login_s.max(1e-9)),
        login_latency: Latency::of(&login_latency),
        login_server_cpu_pct: login_cpu.server_cpu_pct.map(round1),
        login_gen_cpu_pct: login_cpu.gen_cpu_pct.map(round1),
        server_cpu_us_per_login: login_cpu.server_cpu_us.map(|us| round1(us / n as f64)),
        server_rss_bytes_before: rss_before,
        server_rss_bytes_after: rss_after,
        server_rss_bytes_after_hold: rss_after_hold,
        rss_bytes_per_conn: per_conn(rss_after),
        rss_bytes_per_conn_after_hold: per_conn(rss_after_hold),
        idle_server_cpu_pct: idle_cpu.server_cpu_pct.map(round1),
        gen_rss_bytes: gen_rss,
        alive_at_end: alive,
        settle_s: args.settle,
        hold_s: args.hold,
    };
    Ok(Outcome { report, failures, notes })
}

async fn sleep_ticking(d: Duration, bar: &indicatif::ProgressBar, tick: impl Fn(&indicatif::ProgressBar)) {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        tokio::time::sleep_until(end.min(tokio::time::Instant::now() + Duration::from_millis(200))).await;
        tick(bar);
    }
}

/// Keeps one connection open, reading (and so answering pings) until told to stop.
async fn hold(mut conn: ws::Ws, stop: CancellationToken, dropped: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = conn.close(None).await;
                return;
            }
            msg = conn.next() => match msg {
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => {
                    dropped.fetch_add(1, Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

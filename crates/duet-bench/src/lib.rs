//! Duet's load generator, behind `duet bench <scenario>`.
//!
//! [`run`] loads a server with one [`Scenario`] and returns a [`Report`]: a human summary
//! ([`Report::summary`]) or one JSON document ([`Report::to_json`]) whose field names carry their unit.
//! [`run_cli`] is the whole of `duet bench`: a multi-thread runtime, the run, the printout.
//!
//! The target is either a server the bench starts (the `duet` binary's `serve`, on `127.0.0.1:0` over
//! a temporary data directory) or a running one (`--server URL --secret-key K [--server-pid PID]`). The
//! workloads are the ejabberd peer harness's (`shared/peers/ejabberd/`), so the numbers compare.
//!
//! Correctness comes first: every scenario checks that each message it sent arrived exactly once, and
//! [`Report::correct`] is `false` (with [`Report::failures`] saying why) when that does not hold.
//!
//! * `args`: the command line (clap).
//! * `target`: starting or reaching the server; the admin's REST calls.
//! * `ws`: the light client-protocol side (marks, cursor rule, ledger).
//! * `stats`: HDR histograms and the progress bar. `sys`: `/proc` sampling.
//! * `pairs`, `idle`, `offline`, `history`, `rest`: the scenarios.

mod args;
pub mod history;
pub mod idle;
pub mod offline;
pub mod pairs;
pub mod rest;
mod stats;
mod sys;
mod target;
mod ws;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

pub use crate::args::{
    BenchArgs, Durability, HistoryArgs, IdleArgs, OfflineArgs, PairsArgs, RestArgs, Scenario, TargetArgs,
};
pub use crate::stats::Latency;
pub use crate::sys::CpuUsage;
pub use crate::target::ServerLog;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid arguments: {0}")]
    Args(String),
    #[error("setting up: {0}")]
    Setup(String),
    #[error("connecting: {0}")]
    Connect(String),
    #[error("{what} refused: {code} {info}")]
    Refused { what: String, code: u32, info: String },
    #[error("{path}: error {code}: {info}")]
    Rest { path: String, code: u64, info: String },
    #[error("http: {0}")]
    Http(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// A scenario's result before it becomes a [`Report`].
pub(crate) struct Outcome<R> {
    pub report: R,
    /// Failed correctness checks.
    pub failures: Vec<String>,
    /// What deserves attention without being wrong.
    pub notes: Vec<String>,
}

/// The result of one `duet bench` run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub scenario: &'static str,
    /// Every correctness check passed: each message sent arrived exactly once.
    pub correct: bool,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
    pub server: ServerInfo,
    pub generator: GeneratorInfo,
    pub elapsed_s: f64,
    #[serde(flatten)]
    pub details: Details,
    /// What a server started by the bench logged at WARN/ERROR, and sessions it dropped.
    pub server_log: Option<ServerLog>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    pub url: String,
    /// The bench started this server (and stopped it afterwards).
    pub started_by_bench: bool,
    /// The durability of a server the bench started.
    pub durability: Option<Durability>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratorInfo {
    /// Cores of this machine (the server and the generator share them when both run here).
    pub cores: usize,
    pub version: &'static str,
}

/// The scenario's own figures, under its name in the JSON document.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Details {
    Pairs(pairs::PairsReport),
    Idle(idle::IdleReport),
    Offline(offline::OfflineReport),
    History(history::HistoryReport),
    Rest(rest::RestReport),
}

impl Report {
    /// Every correctness check passed.
    pub fn passed(&self) -> bool {
        self.correct
    }

    /// One JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"encoding the report: {e}\"}}"))
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let server = match (self.server.started_by_bench, self.server.durability) {
            (true, Some(d)) => format!("a server started by the bench ({}, {})", self.server.url, d.name()),
            _ => format!("the server at {}", self.server.url),
        };
        let _ = writeln!(
            out,
            "duet bench {}: {server}, {} cores shared with the generator, {:.1} s",
            self.scenario, self.generator.cores, self.elapsed_s
        );
        match &self.details {
            Details::Pairs(r) => summary::pairs(&mut out, r),
            Details::Idle(r) => summary::idle(&mut out, r),
            Details::Offline(r) => summary::offline(&mut out, r),
            Details::History(r) => summary::history(&mut out, r),
            Details::Rest(r) => summary::rest(&mut out, r),
        }
        if let Some(log) = &self.server_log
            && log.warnings + log.errors + log.dropped_sessions > 0
        {
            let _ = writeln!(
                out,
                "server log: {} warnings, {} errors, {} sessions dropped for not keeping up",
                log.warnings, log.errors, log.dropped_sessions
            );
            for line in log.tail.iter().rev().take(5).rev() {
                let _ = writeln!(out, "  {line}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        if self.correct {
            let _ = writeln!(out, "correctness: OK, every message arrived exactly once");
        } else {
            let _ = writeln!(out, "correctness: FAILED");
            for f in &self.failures {
                let _ = writeln!(out, "  {f}");
            }
        }
        out
    }
}

/// Runs one scenario. `duet_exe` is the `duet` binary, started as the server unless `--server` is given
/// (`std::env::current_exe()` when called from `duet bench`).
pub async fn run(args: &BenchArgs, duet_exe: &Path) -> Result<Report, BenchError> {
    let scenario = &args.scenario;
    let targs = scenario.target();
    let progress = stats::Progress::new(targs.json);
    // Before the server starts, so it inherits the raised limit.
    sys::raise_nofile();
    let started = Instant::now();
    let target = target::Target::open(targs, duet_exe).await?;
    let server = ServerInfo {
        url: target.base.clone(),
        started_by_bench: targs.server.is_none(),
        durability: target.durability,
        pid: target.pid,
    };
    let result = match scenario {
        Scenario::Pairs(a) => pairs::run(a, &target, &progress).await.map(|o| o.map(Details::Pairs)),
        Scenario::Idle(a) => idle::run(a, &target, &progress).await.map(|o| o.map(Details::Idle)),
        Scenario::Offline(a) => offline::run(a, &target, &progress).await.map(|o| o.map(Details::Offline)),
        Scenario::History(a) => history::run(a, &target, &progress).await.map(|o| o.map(Details::History)),
        Scenario::Rest(a) => rest::run(a, &target, &progress).await.map(|o| o.map(Details::Rest)),
    };
    let server_log = target.shutdown().await;
    let outcome = result?;
    Ok(Report {
        scenario: scenario.name(),
        correct: outcome.failures.is_empty(),
        failures: outcome.failures,
        notes: outcome.notes,
        server,
        generator: GeneratorInfo { cores: sys::cores(), version: env!("CARGO_PKG_VERSION") },
        elapsed_s: stats::round1(started.elapsed().as_secs_f64()),
        details: outcome.report,
        server_log,
    })
}

/// `duet bench`: runs the scenario on a new multi-thread runtime and prints the summary, or the JSON
/// document with `--json`, to stdout. The caller exits non-zero unless [`Report::passed`].
pub fn run_cli(args: BenchArgs, duet_exe: PathBuf) -> Result<Report, BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(BenchError::Runtime)?;
    let report = runtime.block_on(run(&args, &duet_exe))?;
    if args.scenario.target().json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.summary());
    }
    Ok(report)
}

impl<R> Outcome<R> {
    fn map<S>(self, f: impl FnOnce(R) -> S) -> Outcome<S> {
        Outcome { report: f(self.report), failures: self.failures, notes: self.notes }
    }
}

/// A prefix for this run's user names, so runs against one server never share users.
fn run_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("bench{:06x}", rand::random::<u32>() & 0xff_ffff))
}

mod summary {
    //! The human summaries, one per scenario.

    use std::fmt::Write as _;

    use crate::stats::fmt_ms;
    use crate::sys::CpuUsage;
    use crate::{history, idle, offline, pairs, rest};

    fn opt(v: Option<f64>, unit: &str) -> String {
        v.map_or("n/a".into(), |v| format!("{v:.0}{unit}"))
    }

    fn cpu(c: &CpuUsage) -> String {
        format!(
            "server CPU {}, generator CPU {}, machine busy {}",
            opt(c.server_cpu_pct, " %"),
            opt(c.gen_cpu_pct, " %"),
            opt(c.machine_busy_pct, " %")
        )
    }

    fn mib(b: Option<u64>) -> String {
        b.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
    }

    pub fn pairs(out: &mut String, r: &pairs::PairsReport) {
        let _ = writeln!(
            out,
            "{} users ({} pairs), {}-byte texts; logins: {:.2} s ({:.0}/s); server RSS {} → {} after login",
            r.users,
            r.pairs,
            r.body_bytes,
            r.login_s,
            r.logins_per_s,
            mib(r.server_rss_bytes_before_login),
            mib(r.server_rss_bytes_after_login)
        );
        let _ = writeln!(
            out,
            "{:<16} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7} {:>6} {:>14}",
            "step",
            "delivered/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "ack p99",
            "srv CPU%",
            "srv µs/msg",
            "gen CPU%",
            "undeliv",
            "pass",
            "disk sync max"
        );
        for s in &r.steps {
            let label = match (s.offered_per_s, s.window_per_user) {
                (Some(rate), _) => format!("{rate}/s open"),
                (_, Some(w)) => format!("W={w} closed"),
                _ => "?".into(),
            };
            let _ = writeln!(
                out,
                "{:<16} {:>11.0} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7} {:>6} {:>14}",
                label,
                s.delivered_per_s,
                fmt_ms(s.latency.p50_ms),
                fmt_ms(s.latency.p99_ms),
                fmt_ms(s.latency.p999_ms),
                fmt_ms(s.latency.max_ms),
                fmt_ms(s.ack_latency.p99_ms),
                opt(s.cpu.server_cpu_pct, ""),
                opt(s.server_cpu_us_per_msg, ""),
                opt(s.cpu.gen_cpu_pct, ""),
                s.undelivered_measured,
                match s.passed {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                },
                s.disk.map_or("n/a".into(), |d| format!("{} ms", fmt_ms(d.disk_fsync_max_ms)))
            );
        }
        let _ = writeln!(
            out,
            "messages: {} sent, {} delivered, {} undelivered, {} duplicates, {} refused; {} gaps, {} disconnects; server RSS at end {}",
            r.sent,
            r.delivered,
            r.undelivered,
            r.duplicates,
            r.send_errors,
            r.gaps,
            r.disconnects,
            mib(r.server_rss_bytes_end)
        );
    }

    pub fn idle(out: &mut String, r: &idle::IdleReport) {
        let _ = writeln!(
            out,
            "{} idle connections (of {} asked; open-files limit {}): logins {:.2} s = {:.0}/s, login latency {}",
            r.conns,
            r.conns_requested,
            r.nofile_limit,
            r.login_s,
            r.logins_per_s,
            r.login_latency.short()
        );
        let _ = writeln!(
            out,
            "server RSS {} → {} ({} after {:.0} s idle): {} bytes per connection ({} after the hold)",
            mib(r.server_rss_bytes_before),
            mib(r.server_rss_bytes_after),
            mib(r.server_rss_bytes_after_hold),
            r.hold_s,
            opt(r.rss_bytes_per_conn, ""),
            opt(r.rss_bytes_per_conn_after_hold, "")
        );
        let _ = writeln!(
            out,
            "server CPU during logins {} ({} µs per login), while idle {}; generator CPU {}, RSS {}; alive at the end: {}",
            opt(r.login_server_cpu_pct, " %"),
            opt(r.server_cpu_us_per_login, ""),
            opt(r.idle_server_cpu_pct, " %"),
            opt(r.login_gen_cpu_pct, " %"),
            mib(r.gen_rss_bytes),
            r.alive_at_end
        );
    }

    pub fn offline(out: &mut String, r: &offline::OfflineReport) {
        for c in &r.cases {
            let _ = writeln!(
                out,
                "{} users x {} messages: stored in {:.2} s ({:.0}/s); all delivered {} ms after the first connect ({} of {} users complete)",
                c.users,
                c.msgs_per_user,
                c.store_s,
                c.stored_per_s,
                c.all_delivered_ms.map_or("n/a".into(), |v| format!("{v:.1}")),
                c.users_complete,
                c.users
            );
            if let Some(v) = c.login_to_sync_complete_ms {
                let _ = writeln!(
                    out,
                    "  login → sync complete (all entries + conversations): {v:.1} ms; connect → all: {} ms",
                    fmt_ms(c.per_user_connect_to_all.max_ms)
                );
            } else {
                let _ = writeln!(
                    out,
                    "  per user: connect → all {}; login → sync complete {}",
                    c.per_user_connect_to_all.short(),
                    c.per_user_login_to_sync_complete.short()
                );
            }
            let _ = writeln!(
                out,
                "  {}; {} server µs per message; {} undelivered, {} duplicates",
                cpu(&c.cpu),
                opt(c.server_cpu_us_per_msg, ""),
                c.undelivered,
                c.duplicates
            );
        }
    }

    pub fn history(out: &mut String, r: &history::HistoryReport) {
        let _ = writeln!(
            out,
            "{} messages stored in {:.2} s ({:.0}/s); {} pages of {} ({} pass(es)): {:.0} pages/s",
            r.messages, r.store_s, r.stored_per_s, r.pages, r.page_size, r.passes, r.pages_per_s
        );
        let _ = writeln!(out, "per page: {}", r.page_latency.short());
        let _ = writeln!(
            out,
            "{}; {} server µs per page; {} missing, {} duplicates, {} listed after a newer one",
            cpu(&r.cpu),
            opt(r.server_cpu_us_per_page, ""),
            r.missing,
            r.duplicates,
            r.order_violations
        );
    }

    pub fn rest(out: &mut String, r: &rest::RestReport) {
        let _ = writeln!(
            out,
            "{} keep-alive clients, {:.0} s ({:.0} s warm-up): {:.0} req/s, {}",
            r.clients,
            r.duration_s,
            r.warmup_s,
            r.req_per_s,
            r.latency.short()
        );
        let _ = writeln!(
            out,
            "{}; {} server µs per request; {} ok, {} failed; {} acknowledged but missing, {} duplicates, {} stored without ack",
            cpu(&r.cpu),
            opt(r.server_cpu_us_per_req, ""),
            r.requests_ok,
            r.requests_failed,
            r.missing,
            r.duplicates,
            r.stored_without_ack
        );
    }
}

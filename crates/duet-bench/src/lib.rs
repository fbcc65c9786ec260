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
//! * `pairs`, `idle`, `offline`, `history`, `search`, `rest`, `flood`, `soak`: the scenarios. `pairs::Fleet` (users
//!   in pairs at an offered rate, checked exactly once) is shared by `pairs` and `soak`, `flood::Flood` by
//!   `flood` and `soak`; `hostile` holds `soak`'s non-readers and slow uploaders. `push_sink` and
//!   `callback_sink` are the app's push gateway and callback backend that `pairs --push` and
//!   `pairs --slow-callback-ms` serve to the server they start.

mod args;
mod callback_sink;
pub mod flood;
pub mod history;
mod hostile;
pub mod idle;
pub mod offline;
pub mod pairs;
mod push_sink;
pub mod rest;
pub mod search;
pub mod soak;
mod stats;
mod sys;
mod target;
mod ws;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

pub use crate::args::{
    BenchArgs, Durability, FloodArgs, HistoryArgs, IdleArgs, OfflineArgs, PairsArgs, RestArgs, Scenario, SearchArgs,
    SoakArgs, TargetArgs,
};
pub use crate::callback_sink::{CallbackReport, SlowSenderReport};
pub use crate::hostile::{Attack, NonReaderReport, SlowUploaderReport};
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
    Search(search::SearchReport),
    Rest(rest::RestReport),
    Flood(flood::FloodReport),
    Soak(soak::SoakReport),
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
            Details::Search(r) => summary::search(&mut out, r),
            Details::Rest(r) => summary::rest(&mut out, r),
            Details::Flood(r) => summary::flood(&mut out, r),
            Details::Soak(r) => summary::soak(&mut out, r),
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
    let send_limit = matches!(scenario, Scenario::Flood(_) | Scenario::Soak(_));
    // `pairs --push` and `pairs --slow-callback-ms`: the server the bench starts pushes every message to a
    // webhook the bench serves, and calls a before-send callback the bench serves.
    let (push, callback) = match scenario {
        Scenario::Pairs(a) => {
            let push = if a.push { Some(push_sink::Sink::start().await?) } else { None };
            let callback = match a.slow_callback_ms {
                Some(ms) => Some(
                    callback_sink::Sink::start(format!("{}slow", run_prefix()), std::time::Duration::from_millis(ms))
                        .await?,
                ),
                None => None,
            };
            (push, callback)
        }
        _ => (None, None),
    };
    let extra_config: String = push
        .iter()
        .map(push_sink::Sink::server_config)
        .chain(callback.iter().map(callback_sink::Sink::server_config))
        .collect();
    let (_extra_config_file, targs) = if extra_config.is_empty() {
        (None, std::borrow::Cow::Borrowed(targs))
    } else {
        if targs.server.is_some() || targs.server_config.is_some() {
            return Err(BenchError::Args(
                "--push and --slow-callback-ms configure the server the bench starts: not with --server or \
                 --server-config"
                    .into(),
            ));
        }
        let write = |e: std::io::Error| BenchError::Setup(format!("writing the server's configuration: {e}"));
        let mut file = tempfile::NamedTempFile::new().map_err(write)?;
        std::io::Write::write_all(&mut file, extra_config.as_bytes()).map_err(write)?;
        let mut targs = targs.clone();
        targs.server_config = Some(file.path().to_owned());
        (Some(file), std::borrow::Cow::Owned(targs))
    };
    let targs = &*targs;
    let target = target::Target::open(targs, duet_exe, send_limit).await?;
    let server = ServerInfo {
        url: target.base.clone(),
        started_by_bench: targs.server.is_none(),
        durability: target.durability,
        pid: target.pids.first().copied(),
    };
    let result = match scenario {
        Scenario::Pairs(a) => {
            pairs::run(a, &target, push.as_ref(), callback.as_ref(), &progress).await.map(|o| o.map(Details::Pairs))
        }
        Scenario::Idle(a) => idle::run(a, &target, &progress).await.map(|o| o.map(Details::Idle)),
        Scenario::Offline(a) => offline::run(a, &target, &progress).await.map(|o| o.map(Details::Offline)),
        Scenario::History(a) => history::run(a, &target, &progress).await.map(|o| o.map(Details::History)),
        Scenario::Search(a) => search::run(a, &target, &progress).await.map(|o| o.map(Details::Search)),
        Scenario::Rest(a) => rest::run(a, &target, &progress).await.map(|o| o.map(Details::Rest)),
        Scenario::Flood(a) => flood::run(a, &target, &progress).await.map(|o| o.map(Details::Flood)),
        Scenario::Soak(a) => soak::run(a, &target, &progress).await.map(|o| o.map(Details::Soak)),
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
    use crate::{flood, history, idle, offline, pairs, rest, search, soak};

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
        if let Some(n) = r.pushes_received {
            let _ = writeln!(out, "push: {n} pushes reached the webhook (every device in the background)");
        }
        if let Some(c) = &r.callbacks {
            let _ = writeln!(
                out,
                "before-send callback: {} calls answered at once, {} answered after {} ms (the slow user's)",
                c.before_send_fast_calls, c.before_send_slow_calls, c.slow_callback_ms
            );
            if let Some(s) = &c.slow_sender {
                let _ = writeln!(
                    out,
                    "slow user {} ({} sendmsg in flight, {:.1} s): {} sent, {} failed; latency {}",
                    s.user,
                    s.in_flight,
                    s.duration_s,
                    s.sends_ok,
                    s.sends_failed,
                    s.latency.short()
                );
            }
        }
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

    pub fn search(out: &mut String, r: &search::SearchReport) {
        let _ = writeln!(
            out,
            "{} messages among {} users imported in {:.1} s ({:.0}/s, {} server µs each)",
            r.messages,
            r.users,
            r.store_s,
            r.stored_per_s,
            opt(r.server_cpu_us_per_import, "")
        );
        let _ = writeln!(
            out,
            "index: {} bytes per message (messages table {}, whole database {})",
            opt(r.index_bytes_per_message, ""),
            opt(r.message_bytes_per_message, ""),
            opt(r.database_bytes_per_message, "")
        );
        let _ = writeln!(
            out,
            "{} keyword searches across one user's conversations, pages of {}: {}",
            r.queries,
            r.limit,
            r.latency.short()
        );
        let _ = writeln!(out, "  Latin words: {}", r.latin_latency.short());
        let _ = writeln!(out, "  Chinese words: {}", r.chinese_latency.short());
        let _ = writeln!(
            out,
            "{:.1} hits per search, {} found nothing, {} had more than a page; {}; {} server µs per search",
            r.hits_per_search,
            r.empty_searches,
            r.searches_with_more,
            cpu(&r.cpu),
            opt(r.server_cpu_us_per_search, "")
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

    fn codes(by_code: &std::collections::BTreeMap<u32, u64>) -> String {
        if by_code.is_empty() {
            return "none".into();
        }
        by_code.iter().map(|(code, n)| format!("{n} × {code}")).collect::<Vec<_>>().join(", ")
    }

    pub fn flood(out: &mut String, r: &flood::FloodReport) {
        let t = &r.totals;
        let _ = writeln!(
            out,
            "{} flooder(s), {} sends in flight each, {}-byte texts, {:.1} s: {} attempted ({:.0}/s), {} accepted \
             ({:.0}/s), {} refused ({}), {} unanswered",
            r.flooders,
            r.window,
            r.body_bytes,
            r.duration_s,
            t.attempted,
            t.attempted_per_s,
            t.accepted,
            t.accepted_per_s,
            t.refused,
            codes(&t.refused_by_code),
            t.unanswered
        );
        let _ = writeln!(
            out,
            "delivered to the peers: {}; ack latency {}; {}; server RSS {} → {}",
            t.delivered,
            t.ack_latency.short(),
            cpu(&r.cpu),
            mib(r.server_rss_bytes_start),
            mib(r.server_rss_bytes_end)
        );
        if r.per_flooder.len() > 1 {
            for f in &r.per_flooder {
                let _ = writeln!(
                    out,
                    "  {}: {} attempted, {} accepted, {} refused ({}), {} unanswered, {} delivered",
                    f.user,
                    f.attempted,
                    f.accepted,
                    f.refused,
                    codes(&f.refused_by_code),
                    f.unanswered,
                    f.delivered
                );
            }
        }
    }

    pub fn soak(out: &mut String, r: &soak::SoakReport) {
        let _ = writeln!(
            out,
            "{} users in pairs, {} msg/s offered for {:.0} s ({}-byte texts), intervals of {:.0} s; logins {:.2} s \
             ({:.0}/s); server RSS {} → {} after login",
            r.connections,
            r.rate_per_s,
            r.duration_s,
            r.body_bytes,
            r.interval_s,
            r.login_s,
            r.logins_per_s,
            mib(r.server_rss_bytes_before_login),
            mib(r.server_rss_bytes_after_login)
        );
        let _ = writeln!(
            out,
            "{:>4} {:>7} {:>11} {:>7} {:>7} {:>7} {:>8} {:>8} {:>10} {:>7} {:>6} {:>9} {:>11} {:>10} {:>11}",
            "int",
            "end s",
            "delivered/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "srv CPU%",
            "machine%",
            "RSS MiB",
            "fds",
            "open",
            "disk max",
            "nonread cut",
            "upload cut",
            "flood ok/no"
        );
        for i in &r.intervals {
            let _ = writeln!(
                out,
                "{:>4} {:>7.0} {:>11.0} {:>7} {:>7} {:>7} {:>8} {:>8} {:>10} {:>7} {:>6} {:>9} {:>11} {:>10} {:>11}",
                i.index,
                i.end_s,
                i.delivered_per_s,
                fmt_ms(i.latency.p50_ms),
                fmt_ms(i.latency.p99_ms),
                fmt_ms(i.latency.max_ms),
                opt(i.cpu.server_cpu_pct, ""),
                opt(i.cpu.machine_busy_pct, ""),
                i.server_rss_bytes.map_or("n/a".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
                i.server_open_files.map_or("n/a".into(), |n| n.to_string()),
                i.connections_open,
                i.disk.map_or("n/a".into(), |d| format!("{} ms", fmt_ms(d.disk_fsync_max_ms))),
                format!("{}/{}", i.non_reader_cuts, i.non_reader_attacks),
                format!("{}/{}", i.uploads_cut, i.uploads),
                format!("{}/{}", i.flood_accepted, i.flood_refused)
            );
        }
        let v = &r.verdict;
        let _ = writeln!(
            out,
            "verdict: {}. RSS {} → {} ({}; budget {}): {}; p99 {} ms (first two intervals) → {} ms (last two), \
             ×{:.2}: {}; hostile clients cut off: {}; exactly once: {}",
            if v.passed { "PASS" } else { "FAIL" },
            mib(v.rss_first_bytes),
            mib(v.rss_last_bytes),
            v.rss_growth_bytes.map_or("n/a".into(), |g| format!("{:+.1} MiB", g as f64 / 1048576.0)),
            mib(Some(v.rss_budget_bytes)),
            match v.rss_within_budget {
                Some(true) => "within",
                Some(false) => "OVER",
                None => "unknown (no server PID)",
            },
            fmt_ms(v.p99_first_ms),
            fmt_ms(v.p99_last_ms),
            v.p99_drift_ratio,
            if v.p99_steady { "steady" } else { "DRIFT" },
            if v.hostile_cut_off { "yes" } else { "NO" },
            if v.exactly_once { "yes" } else { "NO" }
        );
        let attacks: Vec<_> = r.non_readers.iter().flat_map(|n| n.attacks.iter().cloned()).collect();
        if !attacks.is_empty() {
            let _ = writeln!(out, "non-readers ({}): {} attacks", r.non_readers.len(), attacks.len());
            for (outcome, n, lo, hi) in soak::by_outcome(&attacks) {
                let _ = writeln!(out, "  {n} × {outcome}, {lo:.1}–{hi:.1} s after their requests");
            }
        }
        let uploads: Vec<_> = r.slow_uploaders.iter().flat_map(|u| u.uploads.iter().cloned()).collect();
        if !uploads.is_empty() {
            let _ = writeln!(out, "slow uploaders ({}): {} uploads", r.slow_uploaders.len(), uploads.len());
            for (outcome, n, lo, hi) in soak::by_outcome(&uploads) {
                let _ = writeln!(out, "  {n} × {outcome}, {lo:.1}–{hi:.1} s after their first byte");
            }
        }
        if let Some(t) = &r.flood {
            let _ = writeln!(
                out,
                "flooders ({}): {} attempted, {} accepted ({:.0}/s), {} refused ({}), {} unanswered",
                r.flooders.len(),
                t.attempted,
                t.accepted,
                t.accepted_per_s,
                t.refused,
                codes(&t.refused_by_code),
                t.unanswered
            );
            for f in r.flooders.iter().filter(|f| f.closed_by_server.is_some()) {
                let _ =
                    writeln!(out, "  {} closed by the server: {}", f.user, f.closed_by_server.as_deref().unwrap_or(""));
            }
        }
        if let Some(n) = r.media_tmp_files_at_end {
            let _ = writeln!(out, "files left in the server's media/tmp: {n}");
        }
        let _ = writeln!(
            out,
            "messages: {} sent, {} delivered, {} undelivered, {} duplicates, {} refused; {} gaps, {} pair connections \
             closed by the server",
            r.sent, r.delivered, r.undelivered, r.duplicates, r.send_errors, r.gaps, r.disconnects
        );
    }
}

//! Prometheus metrics at `/metrics`, on a listener of their own (`--metrics-listen`, off by default).
//!
//! The code records through the `metrics` facade (`metrics::counter!` and friends, in every crate that
//! has something to count); until [`install`] sets the Prometheus recorder, the facade's calls do
//! nothing, so a server without `--metrics-listen` pays nothing for them. The recorder is process-wide
//! (several servers in one test process share it).
//!
//! What is already counted elsewhere is read at scrape time rather than counted twice: the push
//! providers' and the callbacks' totals (`Pusher::stats`, `Notifier::stats`), the outboxes' depth and
//! age (the store), and the process's memory, CPU and descriptors (`/proc/self`). The names follow
//! Prometheus's conventions: `duet_` first, base units (`_seconds`, `_bytes`), `_total` on counters; the
//! list is in `docs/operations.md`.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use duet_core::Core;
use duet_core::model::ProviderKind;
use duet_core::model::event::Command;
use duet_core::store::Store;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Latency buckets, in seconds: from half a millisecond (a relaxed commit) to ten seconds (a stalled disk).
const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
/// Jobs per group commit (the writers take at most 512).
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often histograms' samples are folded into their buckets (they queue until then).
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub(crate) fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), &BATCH_BUCKETS))
                .expect("the bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "another metrics recorder was installed first; /metrics shows only what is read at scrape time"
                );
            }
            describe();
            metrics::gauge!("duet_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// Every metric the code records, with its unit and help text: the list `docs/operations.md` explains.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("duet_build_info", "The running version (label `version`), always 1.");
    describe_gauge!("duet_ready", "1 while /readyz answers ready, 0 once a check failed or shutdown began.");
    describe_counter!("duet_logins_total", "Client logins by outcome (ok, refused) and Tencent error code.");
    describe_counter!("duet_logouts_total", "Client sessions ended, by how they ended (logout, closed, idle, ...).");
    describe_counter!(
        "duet_messages_total",
        "C2C sends by path (rest, client) and outcome (sent, duplicate, dropped, refused, invalid, error); a batch send counts once."
    );
    describe_histogram!(
        "duet_send_ack_seconds",
        Unit::Seconds,
        "From a send's validation to its acknowledgement (committed), by path."
    );
    describe_histogram!(
        "duet_delivery_seconds",
        Unit::Seconds,
        "From a committed entry reaching this node's hub to its frame being written to a connection."
    );
    describe_counter!("duet_rest_requests_total", "REST API calls by command and answered ErrorCode (0: success).");
    describe_histogram!("duet_rest_request_seconds", Unit::Seconds, "REST API call duration, by command.");
    describe_counter!(
        "duet_connections_dropped_total",
        "Connections the server cut, by reason (slow: a consumer that did not keep up)."
    );
    describe_counter!("duet_sync_pulls_total", "Sync-log pulls (sync frames) answered.");
    describe_counter!("duet_media_bytes_total", Unit::Bytes, "Media bytes uploaded (in) and served (out).");
    describe_histogram!("duet_store_commit_batch_size", "Jobs per group commit.");
    describe_histogram!(
        "duet_store_commit_seconds",
        Unit::Seconds,
        "A group commit's transaction, from begin to commit."
    );
    describe_histogram!(
        "duet_store_fsync_seconds",
        Unit::Seconds,
        "Syncs of the write-ahead log (embedded store, fsync durability)."
    );
    describe_gauge!("duet_store_writer_queue_depth", "Writes waiting for the writer when its last batch began.");
    describe_gauge!("duet_store_wal_bytes", Unit::Bytes, "Write-ahead log content not yet restarted (embedded store).");
    describe_histogram!("duet_store_checkpoint_seconds", Unit::Seconds, "WAL checkpoints (embedded store), by mode.");
    describe_counter!("duet_retention_deleted_total", "Rows the retention purge deleted, by kind.");
}

/// What `/metrics` renders: the recorder's metrics and those read at scrape time.
#[derive(Clone)]
pub(crate) struct Exporter {
    pub handle: PrometheusHandle,
    pub core: Arc<Core>,
    pub store: Arc<dyn Store>,
    pub census: Arc<super::census::Census>,
}

impl Exporter {
    /// Folds the histograms' samples into their buckets every few seconds, until `stop`.
    pub(crate) async fn upkeep(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => self.handle.run_upkeep(),
            }
        }
    }

    pub(crate) async fn render(&self) -> String {
        let mut out = self.handle.render();
        header(&mut out, "duet_connections", "gauge", "Logged-in client connections on this node, by platform.");
        for (platform, n) in self.census.snapshot() {
            let _ = writeln!(out, "duet_connections{{platform=\"{}\"}} {n}", platform.name());
        }
        self.outboxes(&mut out).await;
        self.push_totals(&mut out);
        self.callback_totals(&mut out);
        process(&mut out);
        out
    }

    async fn outboxes(&self, out: &mut String) {
        let now = self.core.clock().now_secs();
        let mut rows = Vec::new();
        if self.core.push().enabled()
            && let Ok(backlog) = self.store.push_backlog().await
        {
            rows.push(("push", backlog));
        }
        if self.core.notifier().stats().is_some()
            && let Ok(backlog) = self.store.event_backlog().await
        {
            rows.push(("callbacks", backlog));
        }
        header(out, "duet_outbox_depth", "gauge", "Rows waiting in an outbox (push, callbacks).");
        for (outbox, (depth, _)) in &rows {
            let _ = writeln!(out, "duet_outbox_depth{{outbox=\"{outbox}\"}} {depth}");
        }
        header(out, "duet_outbox_oldest_age_seconds", "gauge", "Age of the oldest row waiting in an outbox.");
        for (outbox, (_, oldest)) in &rows {
            let age = oldest.map_or(0, |t| (now - t).max(0));
            let _ = writeln!(out, "duet_outbox_oldest_age_seconds{{outbox=\"{outbox}\"}} {age}");
        }
    }

    fn push_totals(&self, out: &mut String) {
        let push = self.core.push();
        let kinds: Vec<ProviderKind> = push.providers();
        if kinds.is_empty() {
            return;
        }
        header(out, "duet_push_total", "counter", "Offline pushes by provider and outcome, since start.");
        for kind in kinds {
            let Some(s) = push.stats(kind) else { continue };
            let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            let outcomes = [
                ("sent", load(&s.sent)),
                ("retried", load(&s.retried)),
                ("failed", load(&s.failed)),
                ("skipped", load(&s.skipped)),
                ("token_removed", load(&s.tokens_removed)),
            ];
            for (outcome, n) in outcomes {
                let _ = writeln!(out, "duet_push_total{{provider=\"{kind}\",outcome=\"{outcome}\"}} {n}");
            }
        }
    }

    fn callback_totals(&self, out: &mut String) {
        let Some(stats) = self.core.notifier().stats() else { return };
        header(
            out,
            "duet_callback_total",
            "counter",
            "Callbacks to the app backend by command and outcome, since start.",
        );
        for command in Command::ALL {
            let [sent, failed, timed_out, retried, dropped] = stats.of(command).snapshot();
            let outcomes = [
                ("sent", sent),
                ("failed", failed),
                ("timed_out", timed_out),
                ("retried", retried),
                ("dropped", dropped),
            ];
            for (outcome, n) in outcomes {
                let name = command.name();
                let _ = writeln!(out, "duet_callback_total{{command=\"{name}\",outcome=\"{outcome}\"}} {n}");
            }
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The process's own figures, with the names every Prometheus client library uses.
fn process(out: &mut String) {
    let Some(p) = ProcessFigures::read() else { return };
    let rows: [(&str, &str, &str, f64); 4] = [
        ("process_cpu_seconds_total", "counter", "User and system CPU time spent.", p.cpu_seconds),
        ("process_resident_memory_bytes", "gauge", "Resident memory size.", p.resident_bytes as f64),
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size.", p.virtual_bytes as f64),
        ("process_open_fds", "gauge", "Open file descriptors (each connection is one).", p.open_fds as f64),
    ];
    for (name, kind, help, value) in rows {
        header(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    if let Some(start) = p.start_time_seconds {
        header(out, "process_start_time_seconds", "gauge", "Start time since the epoch.");
        let _ = writeln!(out, "process_start_time_seconds {start}");
    }
    if let Some(max) = p.max_fds {
        header(out, "process_max_fds", "gauge", "The open-file limit.");
        let _ = writeln!(out, "process_max_fds {max}");
    }
}

struct ProcessFigures {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    open_fds: usize,
    max_fds: Option<u64>,
    start_time_seconds: Option<f64>,
}

impl ProcessFigures {
    /// From `/proc/self/stat` (fields after the command's closing parenthesis, which may hold spaces).
    fn read() -> Option<ProcessFigures> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Numbered from 3 (state) in proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as u64;
        // The boot time is in /proc/stat, which a hardened unit may hide (`ProcSubset=pid`).
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|t| t.trim().parse::<u64>().ok())));
        Some(ProcessFigures {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            resident_bytes: field(24)? * page,
            virtual_bytes: field(23)?,
            open_fds: std::fs::read_dir("/proc/self/fd").map(Iterator::count).unwrap_or(0),
            max_fds: crate::open_files::limit(),
            start_time_seconds: boot.zip(field(22)).map(|(boot, start)| boot as f64 + start as f64 / ticks),
        })
    }
}

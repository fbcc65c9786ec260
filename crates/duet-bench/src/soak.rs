//! `soak`: C users online in fixed pairs at a steady open-loop rate for a long while (10 000 users,
//! 2 000 msg/s, 10 minutes by default), with hostile clients mixed in (`hostile`: non-readers and slow
//! uploaders; `flood`: flooders), reported per interval: delivered msg/s, end-to-end latency of the
//! messages sent in the interval, the server's CPU, RSS and open files, the disk's sync latency, the
//! connections still open, and what the hostile clients met.
//!
//! The pairs are `pairs`'s machinery ([`Fleet`]): each interval stamps its messages with its own step, so
//! latency is per interval, and at the end every message must have arrived exactly once. The verdict
//! compares the server's RSS at the end of the first interval and of the last (within a budget), the p99
//! of the last two intervals with the first two's (drift), and checks that every hostile client was cut
//! off, and none held on longer than the slowest cut.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::args::SoakArgs;
use crate::flood::{Flood, FloodTotals, FlooderReport};
use crate::hostile::{self, Attack, Endpoint, HostileCounters, NonReaderReport, SlowUploaderReport};
use crate::pairs::{Fleet, StepMeta, TICK, Window};
use crate::stats::{Latency, Progress, fmt_ms, round1, round3};
use crate::sys::{self, CpuUsage, DiskStats};
use crate::target::{Outgoing, Target};
use crate::ws::Mark;
use crate::{BenchError, Outcome};

/// Files kept free for the runtime, the REST client and the like.
const FD_MARGIN: u64 = 200;
/// A p99 increase below this is never called drift, whatever the ratio.
const DRIFT_FLOOR_MS: f64 = 5.0;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SoakReport {
    pub connections: usize,
    pub rate_per_s: u64,
    pub duration_s: f64,
    pub interval_s: f64,
    pub body_bytes: usize,
    pub login_s: f64,
    pub logins_per_s: f64,
    pub server_rss_bytes_before_login: Option<u64>,
    pub server_rss_bytes_after_login: Option<u64>,
    pub intervals: Vec<IntervalReport>,
    pub verdict: Verdict,
    /// Messages the pairs sent over the whole run.
    pub sent: u64,
    pub delivered: u64,
    pub undelivered: u64,
    pub duplicates: u64,
    pub send_errors: u64,
    pub gaps: u64,
    /// Pair connections the server closed.
    pub disconnects: u64,
    pub recovered_by_resync: u64,
    pub non_readers: Vec<NonReaderReport>,
    pub slow_uploaders: Vec<SlowUploaderReport>,
    pub flood: Option<FloodTotals>,
    pub flooders: Vec<FlooderReport>,
    /// Files left in the started server's `media/tmp` a second after the run (uploads cut off must leave
    /// nothing).
    pub media_tmp_files_at_end: Option<usize>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IntervalReport {
    pub index: usize,
    /// End of the interval, seconds since the load started.
    pub end_s: f64,
    /// Messages the pairs sent in the interval.
    pub sent: u64,
    /// Arrivals at the pairs per second during the interval.
    pub delivered_per_s: f64,
    /// Send → arrival, messages sent in the interval.
    pub latency: Latency,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    #[serde(flatten)]
    pub disk: Option<DiskStats>,
    /// At the end of the interval.
    pub server_rss_bytes: Option<u64>,
    pub server_open_files: Option<u64>,
    /// Pair connections the server had not closed.
    pub connections_open: u64,
    /// Hostile events during the interval.
    pub non_reader_attacks: u64,
    pub non_reader_cuts: u64,
    pub uploads: u64,
    pub uploads_cut: u64,
    pub flood_accepted: u64,
    pub flood_refused: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The server's RSS at the end of the first interval and of the last.
    pub rss_first_bytes: Option<u64>,
    pub rss_last_bytes: Option<u64>,
    pub rss_growth_bytes: Option<i64>,
    pub rss_budget_bytes: u64,
    pub rss_within_budget: Option<bool>,
    /// p99 of the first two intervals (their mean), and of the last two.
    pub p99_first_ms: f64,
    pub p99_last_ms: f64,
    pub p99_drift_ratio: f64,
    pub p99_steady: bool,
    pub non_reader_attacks: u64,
    pub non_reader_cuts: u64,
    pub uploads: u64,
    pub uploads_cut: u64,
    /// Every non-reader and slow uploader was cut off at least once, and none still open at the end had
    /// been open longer than the slowest cut (+ 5 s).
    pub hostile_cut_off: bool,
    /// Every message of the pairs arrived exactly once.
    pub exactly_once: bool,
    pub passed: bool,
}

pub(crate) async fn run(
    args: &SoakArgs,
    target: &Target,
    progress: &Progress,
) -> Result<Outcome<SoakReport>, BenchError> {
    let c = args.connections;
    if c < 2 || !c.is_multiple_of(2) {
        return Err(BenchError::Args("--connections must be an even number, at least 2".into()));
    }
    if args.rate == 0 || args.interval <= 0.0 || args.duration < args.interval {
        return Err(BenchError::Args("--rate must be positive and --duration at least one --interval".into()));
    }
    let n_intervals = (args.duration / args.interval).ceil() as usize;
    if n_intervals > 250 {
        return Err(BenchError::Args("at most 250 intervals".into()));
    }
    let needed = (c + args.non_readers + args.slow_uploaders + 2 * args.flooders) as u64 + FD_MARGIN;
    let limit = sys::raise_nofile();
    if needed > limit.soft {
        return Err(BenchError::Args(format!(
            "{needed} files needed, and this process may open {} (hard limit {})",
            limit.soft, limit.hard
        )));
    }
    let mut notes = Vec::new();
    let every_s = c as f64 / args.rate as f64;
    if every_s > 60.0 {
        notes.push(format!(
            "each user sends every {every_s:.0} s: beyond the server's idle limit (150 s by default) users are cut off"
        ));
    }

    let p = crate::run_prefix();
    let users: Vec<String> = (0..c).map(|i| format!("{p}s{i}")).collect();
    let non_readers: Vec<String> = (0..args.non_readers).map(|i| format!("{p}n{i}")).collect();
    let filler = format!("{p}nfill");
    let uploaders: Vec<String> = (0..args.slow_uploaders).map(|i| format!("{p}u{i}")).collect();
    let flooders = crate::flood::pair_names(args.flooders, "f");
    let mut all = users.clone();
    all.extend(non_readers.iter().cloned());
    all.push(filler.clone());
    all.extend(uploaders.iter().cloned());
    all.extend(flooders.iter().flat_map(|(f, p)| [f.clone(), p.clone()]));
    target.import_accounts(&all).await?;
    // The non-readers' backlog: a log and a conversation of ~1 MiB each, so each page asked is ~1 MiB.
    let jobs: Vec<Outgoing> = non_readers
        .iter()
        .flat_map(|nr| {
            (0..hostile::BACKLOG_MESSAGES).map(|k| Outgoing {
                from: filler.clone(),
                to: nr.clone(),
                mark: Mark { step: 0, t: 0, k: k as u64, from: 0 },
                body_bytes: hostile::BACKLOG_BYTES,
            })
        })
        .collect();
    if !jobs.is_empty() {
        let bar = progress.bar(jobs.len() as u64, "backlog");
        target.send_many(jobs, 32, &bar).await?;
        bar.finish_and_clear();
    }

    let rss_before = sys::servers_rss(&target.pids);
    let mut fleet =
        Fleet::start(target, users, args.body_bytes, args.target.login_concurrency, false, progress).await?;
    let login_s = fleet.login_s;
    progress.line(&format!("soak: {c} users logged in in {login_s:.2} s"));
    let rss_after_login = sys::servers_rss(&target.pids);
    let flood = if flooders.is_empty() {
        None
    } else {
        Some(Flood::start(target, flooders, args.flood_window, args.body_bytes, c + 1000).await?)
    };

    // The hostile clients, from source addresses after the pairs'.
    let epoch = Instant::now();
    let authority = target.base.trim_start_matches("http://").to_owned();
    let to = Endpoint { addr: target.addr, ws_url: target.ws_url.as_str().into(), authority: authority.into(), epoch };
    let counters = Arc::new(HostileCounters::default());
    let mut last = Snapshot::take(&counters, flood.as_ref());
    let stop = CancellationToken::new();
    let nr_tasks: Vec<_> = non_readers
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let who = (u.clone(), target.usersig(u), filler.clone());
            tokio::spawn(hostile::non_reader(to.clone(), who, c + 2000 + i, counters.clone(), stop.clone()))
        })
        .collect();
    let up_tasks: Vec<_> = uploaders
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let who = (u.clone(), target.usersig(u));
            let src = c + 3000 + i;
            tokio::spawn(hostile::slow_uploader(
                to.clone(),
                who,
                args.slow_upload_rate,
                src,
                counters.clone(),
                stop.clone(),
            ))
        })
        .collect();
    if let Some(f) = &flood {
        f.go();
    }

    // The load, interval by interval.
    let duration = Duration::from_secs_f64(args.duration);
    let interval = Duration::from_secs_f64(args.interval);
    let bar = progress.timed(duration, "soak");
    let mut metas: Vec<IntervalMeta> = Vec::with_capacity(n_intervals);
    let mut current = 0usize;
    fleet.set_phase(0);
    let mut window = Window::open(&fleet, target);
    let start = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        let index = ((elapsed.as_secs_f64() / interval.as_secs_f64()) as usize).min(n_intervals);
        if index > current || elapsed >= duration {
            let meta = window.close(&fleet, target);
            let now = Snapshot::take(&counters, flood.as_ref());
            let m = IntervalMeta {
                end_s: elapsed.as_secs_f64(),
                meta,
                open: fleet.open_conns(),
                fds: sys::open_files(&target.pids),
                hostile: now.minus(&last),
            };
            progress.line(&format!(
                "interval {}: delivered {:.0}/s, p99 so far {} ms, server RSS {}, {} connections open",
                current + 1,
                m.meta.delivered_per_s,
                fmt_ms(Latency::of(&fleet.shared.e2e.merged(current as u8)).p99_ms),
                m.meta.rss_end.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
                m.open
            ));
            metas.push(m);
            last = now;
            if elapsed >= duration {
                break;
            }
            current = index;
            fleet.set_phase(current as u8);
            window = Window::open(&fleet, target);
        }
        fleet.offer((args.rate as f64 * elapsed.as_secs_f64()) as u64);
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!("interval {} delivered {}", current + 1, fleet.delivered()));
    }
    bar.finish_and_clear();

    // The hostile clients stop with the load; the pairs drain, log out and are checked.
    stop.cancel();
    let flood = match flood {
        Some(f) => Some(f.finish(Duration::from_secs(5)).await),
        None => None,
    };
    let mut nr_reports = Vec::new();
    for t in nr_tasks {
        nr_reports.push(t.await.map_err(|e| BenchError::Setup(format!("a non-reader task failed: {e}")))?);
    }
    let mut up_reports = Vec::new();
    for t in up_tasks {
        up_reports.push(t.await.map_err(|e| BenchError::Setup(format!("an uploader task failed: {e}")))?);
    }
    let drained = fleet.drain(Duration::from_secs_f64(args.drain)).await;
    if !drained {
        notes.push(format!("the pairs' messages had not all arrived {} s after the load", args.drain));
    }
    let shared = fleet.shared.clone();
    let tally = fleet.finish(target, args.target.login_concurrency).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let media_tmp = target.data_dir().map(|d| std::fs::read_dir(d.join("media").join("tmp")).map_or(0, |r| r.count()));

    let intervals: Vec<IntervalReport> = metas
        .into_iter()
        .enumerate()
        .map(|(i, m)| IntervalReport {
            index: i + 1,
            end_s: round1(m.end_s),
            sent: shared.sent_in(i as u8),
            delivered_per_s: round1(m.meta.delivered_per_s),
            latency: Latency::of(&shared.e2e.merged(i as u8)),
            cpu: m.meta.cpu.rounded(),
            disk: m.meta.disk,
            server_rss_bytes: m.meta.rss_end,
            server_open_files: m.fds,
            connections_open: m.open,
            non_reader_attacks: m.hostile.non_reader_attacks,
            non_reader_cuts: m.hostile.non_reader_cuts,
            uploads: m.hostile.uploads,
            uploads_cut: m.hostile.uploads_cut,
            flood_accepted: m.hostile.flood_accepted,
            flood_refused: m.hostile.flood_refused,
        })
        .collect();
    let attacks: Vec<&Attack> = nr_reports.iter().flat_map(|r| &r.attacks).collect();
    let uploads: Vec<&Attack> = up_reports.iter().flat_map(|r| &r.uploads).collect();
    let hostile_cut_off = nr_reports.iter().all(|r| r.attacks.iter().any(|a| a.cut))
        && up_reports.iter().all(|r| r.uploads.iter().any(|a| a.cut))
        && held_no_longer_than_cuts(&attacks)
        && held_no_longer_than_cuts(&uploads);
    let verdict = verdict(args, &intervals, hostile_cut_off, tally.failures.is_empty(), (&attacks, &uploads));
    if media_tmp.is_some_and(|n| n > 0) {
        notes.push(format!("{} files left in the server's media/tmp after the run", media_tmp.unwrap_or(0)));
    }
    notes.extend(tally.notes);
    let (flood_totals, flooders) = match flood {
        Some((totals, per, _)) => (Some(totals), per),
        None => (None, Vec::new()),
    };
    let report = SoakReport {
        connections: c,
        rate_per_s: args.rate,
        duration_s: args.duration,
        interval_s: args.interval,
        body_bytes: args.body_bytes,
        login_s: round3(login_s),
        logins_per_s: round1(c as f64 / login_s.max(1e-9)),
        server_rss_bytes_before_login: rss_before,
        server_rss_bytes_after_login: rss_after_login,
        intervals,
        verdict,
        sent: tally.sent,
        delivered: tally.delivered,
        undelivered: tally.undelivered,
        duplicates: tally.duplicates,
        send_errors: tally.send_errors,
        gaps: tally.gaps,
        disconnects: tally.disconnects,
        recovered_by_resync: tally.recovered,
        non_readers: nr_reports,
        slow_uploaders: up_reports,
        flood: flood_totals,
        flooders,
        media_tmp_files_at_end: media_tmp,
    };
    Ok(Outcome { report, failures: tally.failures, notes })
}

/// No attack still open at the end had been held longer than the slowest cut (+ 5 s): the server cuts
/// every attack of the kind, not only some.
fn held_no_longer_than_cuts(attacks: &[&Attack]) -> bool {
    let slowest = attacks.iter().filter(|a| a.cut).map(|a| a.held_s).fold(0.0, f64::max);
    attacks.iter().filter(|a| !a.cut).all(|a| a.held_s <= slowest + 5.0)
}

fn verdict(
    args: &SoakArgs,
    intervals: &[IntervalReport],
    hostile_cut_off: bool,
    exactly_once: bool,
    (attacks, uploads): (&[&Attack], &[&Attack]),
) -> Verdict {
    let rss_first = intervals.first().and_then(|i| i.server_rss_bytes);
    let rss_last = intervals.last().and_then(|i| i.server_rss_bytes);
    let growth = rss_first.zip(rss_last).map(|(a, b)| b as i64 - a as i64);
    let budget = args.rss_budget_mib * 1024 * 1024;
    let rss_within_budget = growth.map(|g| g <= budget as i64);
    // The first two intervals against the last two (or the first against the last when fewer than four).
    let k = if intervals.len() >= 4 { 2 } else { 1 };
    let mean_p99 = |is: &[IntervalReport]| is.iter().map(|i| i.latency.p99_ms).sum::<f64>() / is.len().max(1) as f64;
    let first = mean_p99(&intervals[..k.min(intervals.len())]);
    let last = mean_p99(&intervals[intervals.len().saturating_sub(k)..]);
    let ratio = if first > 0.0 { last / first } else { 1.0 };
    let p99_steady = ratio <= args.max_p99_drift || last - first < DRIFT_FLOOR_MS;
    Verdict {
        rss_first_bytes: rss_first,
        rss_last_bytes: rss_last,
        rss_growth_bytes: growth,
        rss_budget_bytes: budget,
        rss_within_budget,
        p99_first_ms: round3(first),
        p99_last_ms: round3(last),
        p99_drift_ratio: round3(ratio),
        p99_steady,
        non_reader_attacks: attacks.len() as u64,
        non_reader_cuts: attacks.iter().filter(|a| a.cut).count() as u64,
        uploads: uploads.len() as u64,
        uploads_cut: uploads.iter().filter(|a| a.cut).count() as u64,
        hostile_cut_off,
        exactly_once,
        passed: rss_within_budget != Some(false) && p99_steady && hostile_cut_off && exactly_once,
    }
}

struct IntervalMeta {
    end_s: f64,
    meta: StepMeta,
    open: u64,
    fds: Option<u64>,
    hostile: Snapshot,
}

/// The hostile clients' counters at one instant.
#[derive(Default)]
struct Snapshot {
    non_reader_attacks: u64,
    non_reader_cuts: u64,
    uploads: u64,
    uploads_cut: u64,
    flood_accepted: u64,
    flood_refused: u64,
}

impl Snapshot {
    fn take(c: &HostileCounters, flood: Option<&Flood>) -> Snapshot {
        let f = flood.map(Flood::totals_now).unwrap_or_default();
        Snapshot {
            non_reader_attacks: c.non_reader_attacks.load(Relaxed),
            non_reader_cuts: c.non_reader_cuts.load(Relaxed),
            uploads: c.uploads.load(Relaxed),
            uploads_cut: c.uploads_cut.load(Relaxed),
            flood_accepted: f.accepted,
            flood_refused: f.refused,
        }
    }

    fn minus(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            non_reader_attacks: self.non_reader_attacks - earlier.non_reader_attacks,
            non_reader_cuts: self.non_reader_cuts - earlier.non_reader_cuts,
            uploads: self.uploads - earlier.uploads,
            uploads_cut: self.uploads_cut - earlier.uploads_cut,
            flood_accepted: self.flood_accepted - earlier.flood_accepted,
            flood_refused: self.flood_refused - earlier.flood_refused,
        }
    }
}

/// Attacks grouped by outcome: (outcome, count, shortest and longest time held).
pub(crate) fn by_outcome(attacks: &[Attack]) -> Vec<(String, usize, f64, f64)> {
    let mut groups: BTreeMap<&str, (usize, f64, f64)> = BTreeMap::new();
    for a in attacks {
        let g = groups.entry(&a.outcome).or_insert((0, f64::MAX, 0.0));
        g.0 += 1;
        g.1 = g.1.min(a.held_s);
        g.2 = g.2.max(a.held_s);
    }
    groups.into_iter().map(|(o, (n, lo, hi))| (o.to_owned(), n, lo, hi)).collect()
}

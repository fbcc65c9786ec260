//! `offline` (the harness's W3): K users receive M messages each while offline (stored through the
//! admin's `sendmsg`), then all K log in at once (200 logins in flight) and pull with `sync` from cursor
//! 0 until `more` is false, asking for `conversations` alongside. Reported: first connect → the last
//! message at the last user, and per user connect → all M, login → all M, and login → sync complete
//! (every entry plus the `conversations` answer).

use std::time::{Duration, Instant};

use duet_proto::client::{ClientFrame, Entry, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::args::OfflineArgs;
use crate::stats::{self, Latency, Progress, round1, round3};
use crate::sys::{CpuUsage, CpuWindow};
use crate::target::{Outgoing, Target};
use crate::ws::{self, Buffers, Inbox, Ledger, Mark, Scanned};
use crate::{BenchError, Outcome};

#[derive(Debug, Clone, serde::Serialize)]
pub struct OfflineReport {
    pub cases: Vec<OfflineCase>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OfflineCase {
    pub users: usize,
    pub msgs_per_user: usize,
    pub store_s: f64,
    pub stored_per_s: f64,
    /// First connect → the last message at the last user.
    pub all_delivered_ms: Option<f64>,
    pub users_complete: usize,
    pub per_user_connect_to_all: Latency,
    pub per_user_login_to_all: Latency,
    /// `logged_in` → every entry pulled and `conversations` answered.
    pub per_user_login_to_sync_complete: Latency,
    /// The same for the case's single user (K = 1).
    pub login_to_sync_complete_ms: Option<f64>,
    pub delivered: u64,
    pub undelivered: u64,
    pub duplicates: u64,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    pub server_cpu_us_per_msg: Option<f64>,
}

/// One user's login and catch-up.
struct Caught {
    connect_to_all: Duration,
    login_to_all: Duration,
    login_to_complete: Duration,
    last_arrival: Instant,
    unique: u64,
    duplicates: u64,
}

pub(crate) async fn run(
    args: &OfflineArgs,
    target: &Target,
    progress: &Progress,
) -> Result<Outcome<OfflineReport>, BenchError> {
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    for (n, &(k, m)) in args.cases.iter().enumerate() {
        let (case, mut f) = one_case(n, k, m, args, target, progress).await?;
        progress.line(&format!(
            "offline {k}x{m}: all delivered {} ms after the first connect",
            case.all_delivered_ms.map_or("-".into(), |v| format!("{v:.1}"))
        ));
        cases.push(case);
        failures.append(&mut f);
    }
    Ok(Outcome { report: OfflineReport { cases }, failures, notes: Vec::new() })
}

async fn one_case(
    n: usize,
    k: usize,
    m: usize,
    args: &OfflineArgs,
    target: &Target,
    progress: &Progress,
) -> Result<(OfflineCase, Vec<String>), BenchError> {
    let prefix = crate::run_prefix();
    let sender = format!("{prefix}o{n}s");
    let users: Vec<String> = (0..k).map(|i| format!("{prefix}o{n}r{i}")).collect();
    let mut all = users.clone();
    all.push(sender.clone());
    target.import_accounts(&all).await?;

    // Store M messages for each user while nobody is online.
    let epoch = Instant::now();
    let jobs: Vec<Outgoing> = (0..m)
        .flat_map(|j| users.iter().map(move |u| (j, u)))
        .map(|(j, u)| Outgoing {
            from: sender.clone(),
            to: u.clone(),
            mark: Mark { step: (n % 250) as u8, t: epoch.elapsed().as_nanos() as u64, k: j as u64, from: 0 },
            body_bytes: 100,
        })
        .collect();
    let bar = progress.bar(jobs.len() as u64, "store");
    let t0 = Instant::now();
    target.send_many(jobs, args.store_concurrency, &bar).await?;
    let store_s = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;

    // Everyone logs in at once.
    let sigs = target.usersigs(&users);
    let bar = progress.bar(k as u64, "catch up");
    let cpu = CpuWindow::start(&target.pids);
    let t0 = Instant::now();
    let logins = users.iter().zip(&sigs).enumerate().map(|(i, (u, sig))| {
        let bar = bar.clone();
        async move {
            let r = catch_up(target, u, sig, i, m).await;
            bar.inc(1);
            r
        }
    });
    let results: Vec<Result<Caught, BenchError>> = match tokio::time::timeout(
        Duration::from_secs_f64(args.timeout),
        futures_util::stream::iter(logins).buffer_unordered(args.target.login_concurrency.max(1)).collect::<Vec<_>>(),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            vec![Err(BenchError::Protocol(format!("the logins did not receive everything within {} s", args.timeout)))]
        }
    };
    let cpu = cpu.finish();
    bar.finish_and_clear();

    let mut failures = Vec::new();
    let (mut c2a, mut l2a, mut l2c) = (stats::histogram(), stats::histogram(), stats::histogram());
    let mut last = None::<Instant>;
    let (mut delivered, mut duplicates, mut complete) = (0u64, 0u64, 0usize);
    let mut single = None;
    for r in results {
        match r {
            Ok(c) => {
                stats::record(&mut c2a, c.connect_to_all.as_nanos() as u64);
                stats::record(&mut l2a, c.login_to_all.as_nanos() as u64);
                stats::record(&mut l2c, c.login_to_complete.as_nanos() as u64);
                last = Some(last.map_or(c.last_arrival, |l| l.max(c.last_arrival)));
                delivered += c.unique;
                duplicates += c.duplicates;
                complete += usize::from(c.unique == m as u64);
                single = Some(round3(c.login_to_complete.as_secs_f64() * 1e3));
            }
            Err(e) => {
                if failures.len() < 5 {
                    failures.push(format!("offline {k}x{m}: {e}"));
                }
            }
        }
    }
    let expected = (k * m) as u64;
    let undelivered = expected.saturating_sub(delivered);
    if undelivered > 0 {
        failures.push(format!("offline {k}x{m}: {undelivered} of {expected} messages never arrived"));
    }
    if duplicates > 0 {
        failures.push(format!("offline {k}x{m}: {duplicates} messages arrived twice"));
    }
    let all_delivered_ms =
        (complete == k).then(|| last.map(|l| round3(l.duration_since(t0).as_secs_f64() * 1e3))).flatten();
    let cpu_out = cpu.rounded();
    let case = OfflineCase {
        users: k,
        msgs_per_user: m,
        store_s: round3(store_s),
        stored_per_s: round1(expected as f64 / store_s.max(1e-9)),
        all_delivered_ms,
        users_complete: complete,
        per_user_connect_to_all: Latency::of(&c2a),
        per_user_login_to_all: Latency::of(&l2a),
        per_user_login_to_sync_complete: Latency::of(&l2c),
        login_to_sync_complete_ms: if k == 1 { single } else { None },
        delivered,
        undelivered,
        duplicates,
        server_cpu_us_per_msg: cpu.server_cpu_us.filter(|_| delivered > 0).map(|us| round1(us / delivered as f64)),
        cpu: cpu_out,
    };
    Ok((case, failures))
}

/// Connects, logs in, pulls everything from cursor 0 and asks for `conversations`.
async fn catch_up(target: &Target, user: &str, sig: &str, src: usize, m: usize) -> Result<Caught, BenchError> {
    let t_connect = Instant::now();
    let (mut conn, _) = ws::open_signed(target, user, sig, src, Buffers::Large).await?;
    let t_login = Instant::now();
    let io = |e| BenchError::Connect(format!("{user}: {e}"));
    conn.feed(ws::sync_frame(2, 0)).await.map_err(io)?;
    conn.feed(WsMessage::Text(ws::encode(&ClientFrame::Conversations { id: 3 }).into())).await.map_err(io)?;
    conn.flush().await.map_err(io)?;
    let mut inbox = Inbox::<Option<Mark>>::new(0);
    inbox.start_pull();
    let mut ledger = Ledger::default();
    let (mut synced, mut conversations) = (false, false);
    let mut all_at = None;
    let mut next_id = 3;
    loop {
        let msg = conn
            .next()
            .await
            .ok_or_else(|| BenchError::Connect(format!("{user}: closed while catching up")))?
            .map_err(io)?;
        let WsMessage::Text(text) = msg else { continue };
        let now = Instant::now();
        let apply = |mark: Option<Mark>, ledger: &mut Ledger| {
            if let Some(mark) = mark.filter(|mk| mk.from == 0) {
                ledger.record(mark.k);
            }
        };
        match ws::scan(&text) {
            Scanned::Entry { seq, mark } => match inbox.live(seq, mark) {
                ws::Live::Apply(marks) => marks.into_iter().for_each(|m| apply(m, &mut ledger)),
                ws::Live::Buffered(Some(after)) => {
                    next_id += 1;
                    conn.send(ws::sync_frame(next_id, after)).await.map_err(io)?;
                }
                ws::Live::Buffered(None) | ws::Live::Skip => {}
            },
            Scanned::Other(ServerFrame::Synced { entries, latest, more, .. }) => {
                for e in &entries {
                    if inbox.pulled(e.seq())
                        && let Entry::Msg { msg, .. } = e
                    {
                        apply(Mark::find(msg.body.get()), &mut ledger);
                    }
                }
                let (ready, again) = inbox.synced(latest, more);
                ready.into_iter().for_each(|m| apply(m, &mut ledger));
                match again {
                    Some(after) => {
                        next_id += 1;
                        conn.send(ws::sync_frame(next_id, after)).await.map_err(io)?;
                    }
                    None => synced = true,
                }
            }
            Scanned::Other(ServerFrame::Conversations { .. }) => conversations = true,
            Scanned::Other(ServerFrame::Error { code, info, .. }) => {
                return Err(BenchError::Refused { what: format!("{user}: a request"), code, info });
            }
            _ => {}
        }
        if all_at.is_none() && ledger.unique >= m as u64 {
            all_at = Some(now);
        }
        if synced && conversations {
            let done = Instant::now();
            let _ = conn.close(None).await;
            let all_at = all_at.unwrap_or(done);
            return Ok(Caught {
                connect_to_all: all_at - t_connect,
                login_to_all: all_at - t_login,
                login_to_complete: done - t_login,
                last_arrival: all_at,
                unique: ledger.unique,
                duplicates: ledger.duplicates,
            });
        }
    }
}

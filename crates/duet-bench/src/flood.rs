//! `flood`: F users, each over one WebSocket, send texts to a peer of their own as fast as the server lets
//! them, keeping W sends in flight (a new one as each is answered, with `sent` or an `error`), for a
//! while. Each peer is online and reads, so every accepted message is also pushed.
//!
//! A server that limits each user's send rate refuses the excess with an `error` and stops reading the
//! connection for a while: the flooder's frames then wait in the socket, and its in-flight window stays
//! full. So the report counts what was attempted (frames written), accepted (`sent`), refused (by error
//! code) and left unanswered at the end, and the accepted rate. Against `--server`, run `duet bench pairs
//! --server` beside it in another process to see whether the flood moves other users' latency.
//!
//! [`Flood`] is the machinery, which `soak` mixes in as a hostile client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duet_proto::client::{ClientFrame, ServerFrame};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::args::FloodArgs;
use crate::stats::{Latency, Progress, round1};
use crate::sys::{self, CpuUsage, CpuWindow};
use crate::target::Target;
use crate::ws::{self, Buffers, Ledger, Mark, Scanned, Ws};
use crate::{BenchError, Outcome};

/// Frames a flooder feeds before it flushes.
const BATCH: usize = 64;

#[derive(Debug, Clone, serde::Serialize)]
pub struct FloodReport {
    pub flooders: usize,
    /// Sends each flooder kept in flight.
    pub window: u32,
    pub body_bytes: usize,
    /// Seconds of flooding (from the first send to the stop).
    pub duration_s: f64,
    #[serde(flatten)]
    pub totals: FloodTotals,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    pub server_rss_bytes_start: Option<u64>,
    pub server_rss_bytes_end: Option<u64>,
    pub per_flooder: Vec<FlooderReport>,
}

/// All flooders together.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FloodTotals {
    /// `send` frames written.
    pub attempted: u64,
    /// Answered `sent`.
    pub accepted: u64,
    /// Answered with an `error`.
    pub refused: u64,
    /// The refusals by error code.
    pub refused_by_code: BTreeMap<u32, u64>,
    /// Not answered when the run ended (waiting in the socket or the server).
    pub unanswered: u64,
    pub attempted_per_s: f64,
    pub accepted_per_s: f64,
    /// Accepted messages that reached the peers live (first arrivals).
    pub delivered: u64,
    /// Send → `sent`, over all flooders.
    pub ack_latency: Latency,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FlooderReport {
    pub user: String,
    pub peer: String,
    pub attempted: u64,
    pub accepted: u64,
    pub refused: u64,
    pub refused_by_code: BTreeMap<u32, u64>,
    pub unanswered: u64,
    pub delivered: u64,
    /// How the server ended the flooder's connection during the run, if it did.
    pub closed_by_server: Option<String>,
    /// How the server ended the peer's connection during the run, if it did.
    pub peer_closed_by_server: Option<String>,
    pub ack_latency: Latency,
}

pub(crate) async fn run(
    args: &FloodArgs,
    target: &Target,
    progress: &Progress,
) -> Result<Outcome<FloodReport>, BenchError> {
    if args.flooders == 0 || args.window == 0 {
        return Err(BenchError::Args("--flooders and --window must be at least 1".into()));
    }
    let users = pair_names(args.flooders, "f");
    let all: Vec<String> = users.iter().flat_map(|(f, p)| [f.clone(), p.clone()]).collect();
    target.import_accounts(&all).await?;
    let flood = Flood::start(target, users, args.window, args.body_bytes, 0).await?;
    progress.line(&format!("flood: {} flooders logged in", args.flooders));
    let duration = Duration::from_secs_f64(args.duration);
    let bar = progress.timed(duration, "flood");
    let rss_start = sys::servers_rss(&target.pids);
    let cpu = CpuWindow::start(&target.pids);
    let t0 = Instant::now();
    flood.go();
    while t0.elapsed() < duration {
        tokio::time::sleep(Duration::from_millis(200).min(duration.saturating_sub(t0.elapsed()))).await;
        bar.set_position(t0.elapsed().as_millis() as u64);
        let t = flood.totals_now();
        bar.set_message(format!("accepted {} refused {}", t.accepted, t.refused));
    }
    let cpu = cpu.finish().rounded();
    let rss_end = sys::servers_rss(&target.pids);
    bar.finish_and_clear();
    let (totals, per_flooder, flood_s) = flood.finish(Duration::from_secs_f64(args.drain)).await;
    let mut notes = Vec::new();
    for f in &per_flooder {
        if let Some(how) = &f.closed_by_server {
            notes.push(format!("the server closed flooder {}: {how}", f.user));
        }
        if let Some(how) = &f.peer_closed_by_server {
            notes.push(format!("the server closed the peer {}: {how}", f.peer));
        }
    }
    // A peer the server kept receives every accepted message live (the hub drops a session rather than
    // skip an entry); a dropped peer would resync from its cursor, which this scenario does not do.
    let mut failures = Vec::new();
    for f in per_flooder.iter().filter(|f| f.delivered < f.accepted) {
        let missing = f.accepted - f.delivered;
        match &f.peer_closed_by_server {
            None => {
                failures.push(format!("{missing} messages {} sent were accepted but never reached {}", f.user, f.peer))
            }
            Some(_) => notes.push(format!("{missing} messages to {} did not arrive live before it was closed", f.peer)),
        }
    }
    let report = FloodReport {
        flooders: args.flooders,
        window: args.window,
        body_bytes: args.body_bytes,
        duration_s: round1(flood_s),
        totals,
        cpu,
        server_rss_bytes_start: rss_start,
        server_rss_bytes_end: rss_end,
        per_flooder,
    };
    Ok(Outcome { report, failures, notes })
}

/// `n` (flooder, peer) user names with `tag` in them, unique to this run.
pub(crate) fn pair_names(n: usize, tag: &str) -> Vec<(String, String)> {
    let p = crate::run_prefix();
    (0..n).map(|i| (format!("{p}{tag}{i}"), format!("{p}{tag}{i}peer"))).collect()
}

/// What one flooder's tasks share.
struct Counters {
    attempted: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    delivered: AtomicU64,
    refused_by_code: Mutex<BTreeMap<u32, u64>>,
    /// Free places in the in-flight window.
    window: Semaphore,
}

struct Flooder {
    user: String,
    peer: String,
    counters: Arc<Counters>,
    writer: JoinHandle<()>,
    reader: JoinHandle<(Histogram<u64>, Option<String>)>,
    peer_reader: JoinHandle<Option<String>>,
}

/// Flooders logged in with their peers; they send once [`Flood::go`] is called, until [`Flood::finish`].
pub(crate) struct Flood {
    flooders: Vec<Flooder>,
    /// Starts the writers.
    go: CancellationToken,
    /// Stops the writers.
    stop: CancellationToken,
    /// Stops the readers.
    end: CancellationToken,
    started: Mutex<Option<Instant>>,
}

impl Flood {
    /// Logs in each (flooder, peer) pair, the peer first, from loopback source addresses `src_base` on,
    /// and starts their tasks. The users must exist.
    pub async fn start(
        target: &Target,
        users: Vec<(String, String)>,
        window: u32,
        body_bytes: usize,
        src_base: usize,
    ) -> Result<Flood, BenchError> {
        let go = CancellationToken::new();
        let stop = CancellationToken::new();
        let end = CancellationToken::new();
        let epoch = Instant::now();
        let mut flooders = Vec::with_capacity(users.len());
        for (i, (user, peer)) in users.into_iter().enumerate() {
            let (peer_conn, _) = ws::open(target, &peer, src_base + 2 * i, Buffers::Large).await?;
            let (conn, _) = ws::open(target, &user, src_base + 2 * i + 1, Buffers::Large).await?;
            let counters = Arc::new(Counters {
                attempted: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                refused_by_code: Mutex::new(BTreeMap::new()),
                window: Semaphore::new(window as usize),
            });
            let (sink, stream) = conn.split();
            let me = i as u32;
            let writer = tokio::spawn(writer(
                sink,
                peer.clone(),
                me,
                body_bytes,
                counters.clone(),
                (go.clone(), stop.clone()),
                epoch,
            ));
            let reader = tokio::spawn(reader(stream, counters.clone(), end.clone(), epoch));
            let peer_reader = tokio::spawn(peer_reader(peer_conn, me, counters.clone(), end.clone(), epoch));
            flooders.push(Flooder { user, peer, counters, writer, reader, peer_reader });
        }
        Ok(Flood { flooders, go, stop, end, started: Mutex::new(None) })
    }

    /// Starts flooding.
    pub fn go(&self) {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.go.cancel();
    }

    /// The counts so far (no latency).
    pub fn totals_now(&self) -> FloodTotals {
        let mut t = FloodTotals::default();
        for f in &self.flooders {
            let c = &f.counters;
            t.attempted += c.attempted.load(Relaxed);
            t.accepted += c.accepted.load(Relaxed);
            t.refused += c.refused.load(Relaxed);
            t.delivered += c.delivered.load(Relaxed);
            for (code, n) in c.refused_by_code.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                *t.refused_by_code.entry(*code).or_default() += n;
            }
        }
        t.unanswered = t.attempted.saturating_sub(t.accepted + t.refused);
        t
    }

    /// Stops sending, waits up to `drain` for the answers to what is in flight and for the accepted
    /// messages to reach the peers, then closes everything. Rates are per second of flooding, whose
    /// length (from [`Flood::go`] to the stop) comes third.
    pub async fn finish(self, drain: Duration) -> (FloodTotals, Vec<FlooderReport>, f64) {
        self.stop.cancel();
        let flood_s =
            self.started.lock().unwrap_or_else(|e| e.into_inner()).map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-9);
        let deadline = Instant::now() + drain;
        loop {
            let t = self.totals_now();
            if (t.unanswered == 0 && t.delivered >= t.accepted) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.end.cancel();
        let mut totals = self.totals_now();
        let mut all_acks = crate::stats::histogram();
        let mut reports = Vec::with_capacity(self.flooders.len());
        for f in self.flooders {
            f.writer.abort();
            let (acks, closed) = f.reader.await.unwrap_or_else(|_| (crate::stats::histogram(), None));
            let peer_closed = f.peer_reader.await.unwrap_or_default();
            let _ = all_acks.add(&acks);
            let c = &f.counters;
            let (attempted, accepted, refused) =
                (c.attempted.load(Relaxed), c.accepted.load(Relaxed), c.refused.load(Relaxed));
            reports.push(FlooderReport {
                user: f.user,
                peer: f.peer,
                attempted,
                accepted,
                refused,
                refused_by_code: c.refused_by_code.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                unanswered: attempted.saturating_sub(accepted + refused),
                delivered: c.delivered.load(Relaxed),
                closed_by_server: closed,
                peer_closed_by_server: peer_closed,
                ack_latency: Latency::of(&acks),
            });
        }
        totals.attempted_per_s = round1(totals.attempted as f64 / flood_s);
        totals.accepted_per_s = round1(totals.accepted as f64 / flood_s);
        totals.ack_latency = Latency::of(&all_acks);
        (totals, reports, flood_s)
    }
}

/// Sends as fast as the window allows, from `go` until `stop`.
async fn writer(
    mut sink: SplitSink<Ws, WsMessage>,
    to: String,
    me: u32,
    body_bytes: usize,
    c: Arc<Counters>,
    (go, stop): (CancellationToken, CancellationToken),
    epoch: Instant,
) {
    tokio::select! {
        () = go.cancelled() => {}
        () = stop.cancelled() => return,
    }
    let (mut k, mut last_t) = (0u64, 0u64);
    loop {
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            p = c.window.acquire() => p,
        };
        let Ok(permit) = permit else { break };
        permit.forget();
        let mut fed = 0;
        loop {
            let t = (epoch.elapsed().as_nanos() as u64).max(last_t + 1);
            last_t = t;
            let mark = Mark { step: 0, t, k, from: me };
            let frame = ClientFrame::Send {
                id: ws::send_id(0, t),
                to: to.clone(),
                seq: None,
                random: k as u32,
                body: mark.body(body_bytes),
                cloud_custom_data: String::new(),
                online_only: false,
                push: None,
                need_read_receipt: false,
            };
            k += 1;
            let fed_one = tokio::select! {
                r = sink.feed(WsMessage::Text(ws::encode(&frame).into())) => r.is_ok(),
                () = stop.cancelled() => false,
            };
            if !fed_one {
                return;
            }
            c.attempted.fetch_add(1, Relaxed);
            fed += 1;
            if fed >= BATCH {
                break;
            }
            match c.window.try_acquire() {
                Ok(p) => p.forget(),
                Err(_) => break,
            }
        }
        // A server that stops reading this connection holds the flush here.
        let flushed = tokio::select! {
            r = sink.flush() => r.is_ok(),
            () = stop.cancelled() => break,
        };
        if !flushed {
            return;
        }
    }
    // What was fed before the stop goes out, if the server takes it soon.
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.flush()).await;
    // Keep the connection open (the sink half) until the run ends: the answers still count.
    std::future::pending::<()>().await;
}

/// Counts the answers, until `end`; returns the ack latencies and how the server closed the connection.
async fn reader(
    mut stream: SplitStream<Ws>,
    c: Arc<Counters>,
    end: CancellationToken,
    epoch: Instant,
) -> (Histogram<u64>, Option<String>) {
    let mut acks = crate::stats::histogram();
    let closed = loop {
        let msg = tokio::select! {
            biased;
            () = end.cancelled() => break None,
            msg = stream.next() => msg,
        };
        match msg {
            Some(Ok(WsMessage::Text(text))) => match ws::scan(&text) {
                Scanned::Sent { id } if id >= ws::SMALL_IDS => {
                    c.accepted.fetch_add(1, Relaxed);
                    c.window.add_permits(1);
                    let (_, t) = ws::split_send_id(id);
                    crate::stats::record(&mut acks, (epoch.elapsed().as_nanos() as u64).saturating_sub(t));
                }
                Scanned::Other(ServerFrame::Error { id, code, .. }) if id >= ws::SMALL_IDS => {
                    c.refused.fetch_add(1, Relaxed);
                    *c.refused_by_code.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
                    c.window.add_permits(1);
                }
                _ => {}
            },
            Some(Ok(WsMessage::Close(frame))) => break Some(ws::describe_close(frame.as_ref(), epoch)),
            Some(Ok(_)) => {}
            Some(Err(e)) => break Some(format!("connection failed ({e})")),
            None => break Some("connection dropped without a close frame".into()),
        }
    };
    (acks, closed)
}

/// The peer: counts first arrivals from its flooder, until `end`; returns how the server closed it.
async fn peer_reader(
    mut conn: Ws,
    from: u32,
    c: Arc<Counters>,
    end: CancellationToken,
    epoch: Instant,
) -> Option<String> {
    let mut ledger = Ledger::default();
    loop {
        let msg = tokio::select! {
            biased;
            () = end.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.close(None)).await;
                return None;
            }
            msg = conn.next() => msg,
        };
        match msg {
            Some(Ok(WsMessage::Text(text))) => {
                if let Scanned::Entry { mark: Some(m), .. } = ws::scan(&text)
                    && m.from == from
                    && ledger.record(m.k)
                {
                    c.delivered.fetch_add(1, Relaxed);
                }
            }
            Some(Ok(WsMessage::Close(frame))) => return Some(ws::describe_close(frame.as_ref(), epoch)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Some(format!("connection failed ({e})")),
            None => return Some("connection dropped without a close frame".into()),
        }
    }
}

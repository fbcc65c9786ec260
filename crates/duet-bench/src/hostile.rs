//! The hostile clients `soak` mixes into its load, each a task that attacks again as soon as the server
//! has cut it off, and records what the server did each time.
//!
//! * A **non-reader** logs in on a 4 KiB kernel receive buffer ([`Buffers::Starved`]), asks for
//!   [`PAGES`] big `sync` pages and as many `history` pages (its log and its conversation hold ~1 MiB of
//!   10 KB messages, so each page is ~1 MiB: ~16 MiB asked in all), and never reads again. It sends a
//!   `ping` every [`PING_EVERY`], which the server does not read while its writes wait: when the server
//!   drops the connection with those unread, the kernel resets it, and the next ping fails. So the time
//!   to the cut is measured within a ping's interval; what reached the socket before (a close frame, or
//!   nothing: a reset discards what was unread) is read afterwards.
//! * A **slow uploader** announces a 1 MiB `POST /v1/media` and trickles its body at a fixed rate below
//!   the server's minimum, one write a second, while it waits for the answer (HTTP 408, error 6008
//!   expected after the server's first window).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use duet_proto::client::{ClientFrame, MAX_HISTORY_PAGE, MAX_SYNC_BATCH};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::ws::{self, Buffers};

/// `sync` pages a non-reader asks for, and as many `history` pages.
pub const PAGES: usize = 8;
/// Messages in a non-reader's log and conversation, and their size: one full page each.
pub const BACKLOG_MESSAGES: usize = 100;
pub const BACKLOG_BYTES: usize = 10_000;
/// How often a non-reader writes a `ping` to find out whether it was cut off.
pub const PING_EVERY: Duration = Duration::from_millis(250);
/// The length a slow uploader announces.
pub const UPLOAD_BYTES: u64 = 1 << 20;
/// Pause between a cut and the next attack.
const AGAIN_AFTER: Duration = Duration::from_secs(1);
/// How long to wait for what follows a cut (an answer, a close frame).
const AFTERMATH: Duration = Duration::from_secs(5);

/// Counts that the driver reads per interval.
#[derive(Default)]
pub(crate) struct HostileCounters {
    pub non_reader_attacks: AtomicU64,
    pub non_reader_cuts: AtomicU64,
    pub uploads: AtomicU64,
    pub uploads_cut: AtomicU64,
}

/// Where the hostile clients connect.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub addr: SocketAddr,
    pub ws_url: Arc<str>,
    /// `host:port`, for the `Host` header.
    pub authority: Arc<str>,
    /// When the soak's load started: attack times are seconds since.
    pub epoch: Instant,
}

/// One non-reader's attacks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NonReaderReport {
    pub user: String,
    pub attacks: Vec<Attack>,
}

/// One slow uploader's uploads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlowUploaderReport {
    pub user: String,
    pub uploads: Vec<Attack>,
}

/// One attack and what the server did about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attack {
    /// When it started, seconds since the load started.
    pub at_s: f64,
    /// The server cut it off.
    pub cut: bool,
    /// Seconds from the last request (a non-reader) or the first body byte (an upload) to the cut, or to
    /// the end of the run.
    pub held_s: f64,
    /// What the client saw: `reset (…)`, `close 4003 (…)`, `HTTP 408, error 6008`, `still open at the
    /// end`, ….
    pub outcome: String,
    /// Body bytes sent (uploads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_bytes: Option<u64>,
}

impl Attack {
    fn at(epoch: Instant) -> Attack {
        let at_s = crate::stats::round1(epoch.elapsed().as_secs_f64());
        Attack { at_s, cut: false, held_s: 0.0, outcome: String::new(), sent_bytes: None }
    }

    fn held(&mut self, since: Instant, cut: bool, outcome: impl Into<String>) {
        self.held_s = crate::stats::round1(since.elapsed().as_secs_f64());
        self.cut = cut;
        self.outcome = outcome.into();
    }
}

/// Attacks as a non-reader until `stop`.
pub(crate) async fn non_reader(
    to: Endpoint,
    (user, sig, peer): (String, String, String),
    src: usize,
    counters: Arc<HostileCounters>,
    stop: CancellationToken,
) -> NonReaderReport {
    let mut attacks = Vec::new();
    while !stop.is_cancelled() {
        counters.non_reader_attacks.fetch_add(1, Relaxed);
        let attack = non_reader_once(&to, (&user, &sig, &peer), src, &stop).await;
        if attack.cut {
            counters.non_reader_cuts.fetch_add(1, Relaxed);
        }
        attacks.push(attack);
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(AGAIN_AFTER) => {}
        }
    }
    NonReaderReport { user, attacks }
}

async fn non_reader_once(
    to: &Endpoint,
    (user, sig, peer): (&str, &str, &str),
    src: usize,
    stop: &CancellationToken,
) -> Attack {
    let mut attack = Attack::at(to.epoch);
    let mut conn = match ws::open_signed_to(to.addr, &to.ws_url, user, sig, src, Buffers::Starved).await {
        Ok((conn, _)) => conn,
        Err(e) => {
            attack.outcome = format!("login failed: {e}");
            return attack;
        }
    };
    let mut id = 10;
    for _ in 0..PAGES {
        for frame in [
            ClientFrame::Sync { id: id + 1, after: 0, limit: Some(MAX_SYNC_BATCH) },
            ClientFrame::History { id: id + 2, peer: peer.to_owned(), count: MAX_HISTORY_PAGE, before: None },
        ] {
            if conn.feed(WsMessage::Text(ws::encode(&frame).into())).await.is_err() {
                attack.outcome = "closed before its requests were written".into();
                return attack;
            }
        }
        id += 2;
    }
    if tokio::time::timeout(AFTERMATH, conn.flush()).await.map_or(true, |r| r.is_err()) {
        attack.outcome = "could not write its requests".into();
        return attack;
    }
    let asked = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                attack.held(asked, false, "still open at the end");
                return attack;
            }
            () = tokio::time::sleep(PING_EVERY) => {}
        }
        id += 1;
        let ping = WsMessage::Text(ws::encode(&ClientFrame::Ping { id }).into());
        // A write that waits (the server's receive buffer full) is not a cut: try again later.
        if let Ok(Err(_)) = tokio::time::timeout(PING_EVERY, conn.send(ping)).await {
            break;
        }
    }
    attack.held(asked, true, "");
    // What the server managed to write before it let go: read it now, up to a close frame.
    attack.outcome = tokio::time::timeout(AFTERMATH, async {
        loop {
            match conn.next().await {
                Some(Ok(WsMessage::Close(frame))) => {
                    return match frame {
                        Some(f) => format!("close {} ({})", u16::from(f.code), f.reason),
                        None => "close without a code".into(),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) if is_reset(&e) => return "reset (no close frame reached it)".into(),
                Some(Err(e)) => return format!("failed ({e})"),
                None => return "dropped without a close frame".into(),
            }
        }
    })
    .await
    .unwrap_or_else(|_| "cut; nothing more to read".into());
    attack
}

fn is_reset(e: &tokio_tungstenite::tungstenite::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match e {
        Error::Io(io) => matches!(io.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe),
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        Error::AlreadyClosed | Error::ConnectionClosed => true,
        _ => false,
    }
}

/// Uploads at `rate` bytes per second until `stop`, again after each cut.
pub(crate) async fn slow_uploader(
    to: Endpoint,
    (user, sig): (String, String),
    rate: u64,
    src: usize,
    counters: Arc<HostileCounters>,
    stop: CancellationToken,
) -> SlowUploaderReport {
    let mut uploads = Vec::new();
    while !stop.is_cancelled() {
        counters.uploads.fetch_add(1, Relaxed);
        let attack = upload_once(&to, (&user, &sig), rate.max(1), src, &stop).await;
        if attack.cut {
            counters.uploads_cut.fetch_add(1, Relaxed);
        }
        uploads.push(attack);
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(AGAIN_AFTER) => {}
        }
    }
    SlowUploaderReport { user, uploads }
}

async fn upload_once(
    to: &Endpoint,
    (user, sig): (&str, &str),
    rate: u64,
    src: usize,
    stop: &CancellationToken,
) -> Attack {
    let mut attack = Attack::at(to.epoch);
    let stream = match ws::tcp(to.addr, src, None).await {
        Ok(s) => s,
        Err(e) => {
            attack.outcome = format!("could not connect: {e}");
            return attack;
        }
    };
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {}?type=file&filename=slow.bin&identifier={user}&usersig={sig} HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {UPLOAD_BYTES}\r\n\r\n",
        duet_proto::media::MEDIA_PATH,
        to.authority
    );
    if wr.write_all(head.as_bytes()).await.is_err() {
        attack.outcome = "closed before its headers were written".into();
        return attack;
    }
    let first = Instant::now();
    let sent = AtomicU64::new(0);
    let trickle = async {
        let chunk = vec![b'x'; rate as usize];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let left = UPLOAD_BYTES - sent.load(Relaxed);
            if left == 0 {
                return;
            }
            let n = (left as usize).min(chunk.len());
            if wr.write_all(&chunk[..n]).await.is_err() {
                return;
            }
            sent.fetch_add(n as u64, Relaxed);
        }
    };
    let answer = read_answer(&mut rd);
    tokio::pin!(answer);
    let answered = tokio::select! {
        a = &mut answer => Some(a),
        () = trickle => tokio::time::timeout(AFTERMATH, &mut answer).await.ok(),
        () = stop.cancelled() => {
            attack.held(first, false, "still uploading at the end");
            attack.sent_bytes = Some(sent.load(Relaxed));
            return attack;
        }
    };
    attack.sent_bytes = Some(sent.load(Relaxed));
    match answered {
        Some(Some((200, _))) => attack.held(first, false, "completed: HTTP 200"),
        Some(Some((status, Some(code)))) => attack.held(first, true, format!("HTTP {status}, error {code}")),
        Some(Some((status, None))) => attack.held(first, true, format!("HTTP {status}")),
        Some(None) | None => attack.held(first, true, "closed without an answer"),
    }
    attack
}

/// Reads an HTTP answer until its body is whole or the connection closes: its status and `ErrorCode`.
async fn read_answer(rd: &mut tokio::net::tcp::OwnedReadHalf) -> Option<(u16, Option<u64>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = rd.read(&mut chunk).await.unwrap_or(0);
        if n > 0 {
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let head = &text[..head_end];
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
            });
            let body = &text[head_end + 4..];
            if n == 0 || length.is_none_or(|len| body.len() >= len) {
                let status = head.split_whitespace().nth(1)?.parse().ok()?;
                let code = body.split("\"ErrorCode\":").nth(1).and_then(|rest| {
                    let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                });
                return Some((status, code));
            }
        }
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
    }
}

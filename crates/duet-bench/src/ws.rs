//! The generator's side of the client protocol, kept light: raw WebSocket connections speaking the JSON
//! frames of `duet-proto`, frames encoded with serde_json, and arrivals recognized without parsing.
//!
//! Every message the bench sends carries a *mark* at the start of its text, `#<step>;<t>;<k>;<from>;`
//! (step of the run, send time in ns since the run's epoch, the message's number for its sender→recipient
//! pair, the sender's index), padded to the body size. [`scan`] classifies a server frame by its prefix and
//! digs the log `seq` and the mark out of an `entry` without building a JSON tree; only rare frames
//! (`logged_in`, `synced`, errors) are parsed in full.
//!
//! [`Inbox`] applies the protocol's cursor rule (`seq == cursor + 1` applies, `<=` is a redelivery, `>`
//! a gap to pull with `sync`); [`Ledger`] tells each message's first arrival from a duplicate.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use duet_proto::client::{ClientFrame, PROTOCOL_VERSION, Platform, ServerFrame};
use duet_proto::elem::{MsgElem, TextElem};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

use crate::BenchError;
use crate::target::Target;

pub type Ws = WebSocketStream<TcpStream>;

/// How long a connect plus login may take.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The step of messages sent outside a measured window.
pub const WARMUP: u8 = 255;
/// Request ids below this are the bench's own requests (sync, history, ...); `send` ids are
/// `step << 56 | t_ns`, with `t_ns` ≥ 1 ms after the epoch.
pub const SMALL_IDS: u64 = 1 << 20;
const T_MASK: u64 = (1 << 56) - 1;

/// Buffer sizes: small for the idle scenario's many connections, larger where messages flow.
#[derive(Debug, Clone, Copy)]
pub enum Buffers {
    Small,
    Large,
    /// Small, and a kernel receive buffer of [`STARVED_RCVBUF`] too: a client that means not to read
    /// (`soak`'s non-readers) makes the server's writes wait after a few KiB rather than after the
    /// megabytes loopback's autotuned buffers would take.
    Starved,
}

/// The kernel receive buffer of a [`Buffers::Starved`] connection (the kernel doubles it, and has a floor).
pub const STARVED_RCVBUF: u32 = 4096;

/// Opens a WebSocket to a server (`addr`, `ws_url`). `src` spreads loopback connections over source addresses
/// 127.0.x.y, so tens of thousands of connections don't run out of ephemeral ports.
async fn connect(addr: SocketAddr, ws_url: &str, src: usize, buffers: Buffers) -> Result<Ws, BenchError> {
    let stream = tcp(addr, src, matches!(buffers, Buffers::Starved).then_some(STARVED_RCVBUF)).await?;
    let _ = stream.set_nodelay(true);
    // tungstenite zero-fills the free part of its read buffer before every read, so a big one costs a
    // memset per frame received; frames here are a few hundred bytes (a `synced` page reads in pieces).
    let config = match buffers {
        Buffers::Small | Buffers::Starved => WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0),
        Buffers::Large => WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(16 * 1024),
    };
    let (ws, _) = tokio_tungstenite::client_async_with_config(ws_url, stream, Some(config))
        .await
        .map_err(|e| BenchError::Connect(format!("{ws_url}: {e}")))?;
    Ok(ws)
}

/// A TCP connection to `addr`, from loopback source address `src` when `addr` is on loopback, with a
/// kernel receive buffer of `rcvbuf` bytes when given.
pub async fn tcp(addr: SocketAddr, src: usize, rcvbuf: Option<u32>) -> Result<TcpStream, BenchError> {
    let connect_err = |e: std::io::Error| BenchError::Connect(format!("{addr}: {e}"));
    let socket = || {
        let s = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(connect_err)?;
        if let Some(size) = rcvbuf {
            s.set_recv_buffer_size(size).map_err(connect_err)?;
        }
        Ok::<_, BenchError>(s)
    };
    if let IpAddr::V4(ip) = addr.ip()
        && ip.is_loopback()
    {
        let local = Ipv4Addr::new(127, 0, 1 + ((src / 250) % 250) as u8, 1 + (src % 250) as u8);
        let s = socket()?;
        if s.bind(SocketAddr::new(IpAddr::V4(local), 0)).is_ok() {
            return s.connect(addr).await.map_err(connect_err);
        }
    }
    socket()?.connect(addr).await.map_err(connect_err)
}

/// Sends `login` and waits for `logged_in`; returns the user's latest log seq.
pub async fn login(ws: &mut Ws, user: &str, usersig: &str, device: &str) -> Result<u64, BenchError> {
    let frame = ClientFrame::Login {
        id: 1,
        protocol: PROTOCOL_VERSION,
        user: user.to_owned(),
        usersig: usersig.into(),
        platform: Platform::Linux,
        device: device.to_owned(),
        transient: false,
        live: false,
    };
    ws.send(WsMessage::Text(encode(&frame).into())).await.map_err(|e| BenchError::Connect(format!("{user}: {e}")))?;
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(text))) => {
                return match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(ServerFrame::LoggedIn { latest, .. }) => Ok(latest),
                    Ok(ServerFrame::Error { code, info, .. }) => {
                        Err(BenchError::Refused { what: format!("login of {user}"), code, info })
                    }
                    _ => Err(BenchError::Protocol(format!("{user}: unexpected answer to login: {text}"))),
                };
            }
            Some(Ok(WsMessage::Close(_))) | None => {
                return Err(BenchError::Connect(format!("{user}: closed during login")));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(BenchError::Connect(format!("{user}: {e}"))),
        }
    }
}

/// Connects and logs in, within [`LOGIN_TIMEOUT`].
pub async fn open(target: &Target, user: &str, src: usize, buffers: Buffers) -> Result<(Ws, u64), BenchError> {
    open_signed(target, user, &target.usersig(user), src, buffers).await
}

/// [`open`] with a UserSig made beforehand (making one costs the generator a deflate).
pub async fn open_signed(
    target: &Target,
    user: &str,
    usersig: &str,
    src: usize,
    buffers: Buffers,
) -> Result<(Ws, u64), BenchError> {
    let (addr, ws_url) = target.node(src);
    open_signed_to(addr, ws_url, user, usersig, src, buffers).await
}

/// [`open_signed`] to a server's address and WebSocket URL (for tasks that do not borrow the [`Target`]).
pub async fn open_signed_to(
    addr: SocketAddr,
    ws_url: &str,
    user: &str,
    usersig: &str,
    src: usize,
    buffers: Buffers,
) -> Result<(Ws, u64), BenchError> {
    tokio::time::timeout(LOGIN_TIMEOUT, async {
        let mut ws = connect(addr, ws_url, src, buffers).await?;
        let latest = login(&mut ws, user, usersig, &format!("bench-{user}")).await?;
        Ok((ws, latest))
    })
    .await
    .map_err(|_| BenchError::Connect(format!("{user}: login took more than {LOGIN_TIMEOUT:?}")))?
}

/// Logs `users` in with their `sigs`, `concurrency` at a time; returns the connections (in `users` order)
/// with their latest seq, and the connect→`logged_in` latency of each.
///
/// The logins run in one task per core (each with its share of `concurrency`), so that the generator's
/// side of a login storm is not held to the one thread that would poll them all.
pub async fn login_all(
    target: &Target,
    users: &[String],
    sigs: &[String],
    concurrency: usize,
    buffers: Buffers,
    bar: &indicatif::ProgressBar,
) -> Result<(Vec<(Ws, u64)>, hdrhistogram::Histogram<u64>), BenchError> {
    let shards = crate::sys::cores().clamp(1, concurrency.max(1));
    let per_shard = users.len().div_ceil(shards).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for (shard, first) in (0..users.len()).step_by(per_shard).enumerate() {
        let last = (first + per_shard).min(users.len());
        let jobs: Vec<(usize, String, String)> =
            (first..last).map(|i| (i, users[i].clone(), sigs[i].clone())).collect();
        let nodes: Vec<(SocketAddr, std::sync::Arc<str>)> =
            target.nodes.iter().map(|(a, u)| (*a, std::sync::Arc::<str>::from(u.as_str()))).collect();
        let bar = bar.clone();
        // The shards' shares add up to `concurrency`.
        let share = (concurrency / shards + usize::from(shard < concurrency % shards)).max(1);
        tasks.spawn(async move {
            let logins = jobs.into_iter().map(|(i, user, sig)| {
                let ((addr, ws_url), bar) = (nodes[i % nodes.len()].clone(), bar.clone());
                async move {
                    let t0 = std::time::Instant::now();
                    let r = open_signed_to(addr, &ws_url, &user, &sig, i, buffers).await;
                    bar.inc(1);
                    (i, r.map(|c| (c, t0.elapsed())))
                }
            });
            // Unordered: a slow login (a SYN retransmitted after 1 s) must not hold back the next ones.
            futures_util::stream::iter(logins).buffer_unordered(share).collect::<Vec<_>>().await
        });
    }
    let mut done = Vec::with_capacity(users.len());
    while let Some(shard) = tasks.join_next().await {
        done.extend(shard.map_err(|e| BenchError::Setup(format!("a login task failed: {e}")))?);
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut latency = crate::stats::histogram();
    let mut conns = Vec::with_capacity(done.len());
    for (_, r) in done {
        let (conn, took) = r?;
        crate::stats::record(&mut latency, took.as_nanos() as u64);
        conns.push(conn);
    }
    Ok((conns, latency))
}

/// Logs `user` in and pulls its whole sync log from cursor 0; returns the marks of its messages.
pub async fn pull_all(target: &Target, user: &str, src: usize) -> Result<Vec<Mark>, BenchError> {
    let (mut conn, _) = open(target, user, src, Buffers::Large).await?;
    let io = |e| BenchError::Connect(format!("{user}: {e}"));
    let mut marks = Vec::new();
    let mut inbox = Inbox::<Option<Mark>>::new(0);
    let mut after = Some(inbox.start_pull());
    let mut id = 1;
    while let Some(a) = after {
        id += 1;
        conn.send(sync_frame(id, a)).await.map_err(io)?;
        after = loop {
            let msg = tokio::time::timeout(LOGIN_TIMEOUT, conn.next())
                .await
                .map_err(|_| BenchError::Protocol(format!("{user}: no answer to sync")))?
                .ok_or_else(|| BenchError::Connect(format!("{user}: closed during sync")))?
                .map_err(io)?;
            let WsMessage::Text(text) = msg else { continue };
            match scan(&text) {
                Scanned::Other(ServerFrame::Synced { id: got, entries, latest, more }) if got == id => {
                    for e in &entries {
                        if inbox.pulled(e.seq())
                            && let duet_proto::client::Entry::Msg { msg, .. } = e
                        {
                            marks.extend(Mark::find(msg.body.get()));
                        }
                    }
                    let (ready, again) = inbox.synced(latest, more);
                    marks.extend(ready.into_iter().flatten());
                    break again;
                }
                Scanned::Other(ServerFrame::Error { code, info, .. }) => {
                    return Err(BenchError::Refused { what: format!("sync of {user}"), code, info });
                }
                _ => {}
            }
        };
    }
    let _ = conn.close(None).await;
    Ok(marks)
}

/// How a connection was closed, for a report: `close 4003 (too slow: …) at 61.2 s` (seconds since `epoch`).
pub fn describe_close(frame: Option<&CloseFrame>, epoch: std::time::Instant) -> String {
    let at = epoch.elapsed().as_secs_f64();
    match frame {
        Some(f) => format!("close {} ({}) at {at:.1} s", u16::from(f.code), f.reason),
        None => format!("close without a code at {at:.1} s"),
    }
}

pub fn encode(frame: &ClientFrame) -> String {
    // Our own frames hold no maps with non-string keys: encoding cannot fail.
    serde_json::to_string(frame).unwrap_or_default()
}

/// What a message's text starts with: who sent it when, as which number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub step: u8,
    /// Send time, ns since the run's epoch.
    pub t: u64,
    /// The message's number within its sender→recipient pair, from 0.
    pub k: u64,
    /// The sender's index in the scenario.
    pub from: u32,
}

impl Mark {
    /// The message text: the mark, padded with `x` to `len` bytes.
    pub fn text(&self, len: usize) -> String {
        let mut s = format!("#{};{};{};{};", self.step, self.t, self.k, self.from);
        while s.len() < len {
            s.push('x');
        }
        s
    }

    /// A text body holding this mark.
    pub fn body(&self, len: usize) -> Vec<MsgElem> {
        vec![MsgElem::Text(TextElem { text: self.text(len) })]
    }

    /// Finds the mark in a frame or a message body: the first `"Text":"#`.
    pub fn find(s: &str) -> Option<Mark> {
        const KEY: &str = "\"Text\":\"#";
        let at = s.find(KEY)? + KEY.len();
        let mut fields = s[at..].splitn(5, ';');
        let step = fields.next()?.parse().ok()?;
        let t = fields.next()?.parse().ok()?;
        let k = fields.next()?.parse().ok()?;
        let from = fields.next()?.parse().ok()?;
        Some(Mark { step, t, k, from })
    }
}

/// The request id of a `send`: its step and send time, so the `sent` answer alone gives the ack latency.
pub fn send_id(step: u8, t: u64) -> u64 {
    (u64::from(step) << 56) | (t & T_MASK)
}

/// The step and send time of a `send` id.
pub fn split_send_id(id: u64) -> (u8, u64) {
    ((id >> 56) as u8, id & T_MASK)
}

/// A server frame as the generator sees it.
#[derive(Debug)]
pub enum Scanned {
    /// A live `entry`: its log seq, and the mark if it is one of our messages.
    Entry { seq: u64, mark: Option<Mark> },
    /// `sent`: the request id.
    Sent { id: u64 },
    /// Anything else, parsed.
    Other(ServerFrame),
    /// Not a frame of the protocol.
    Garbage(String),
}

/// Classifies a text frame, parsing only what is rare.
pub fn scan(text: &str) -> Scanned {
    if let Some(rest) = text.strip_prefix(r#"{"op":"entry","entry":{"kind":"#) {
        if let Some(seq) = number_after(rest, "\"seq\":") {
            return Scanned::Entry { seq, mark: Mark::find(rest) };
        }
    } else if let Some(rest) = text.strip_prefix(r#"{"op":"sent","id":"#)
        && let Some(id) = leading_number(rest)
    {
        return Scanned::Sent { id };
    }
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(f) => Scanned::Other(f),
        Err(_) => Scanned::Garbage(text.chars().take(200).collect()),
    }
}

fn number_after(s: &str, key: &str) -> Option<u64> {
    leading_number(&s[s.find(key)? + key.len()..])
}

fn leading_number(s: &str) -> Option<u64> {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

/// The protocol's cursor rule for one device, as the SDK's sequencer applies it: an entry at `cursor + 1`
/// is applied, one at or below the cursor is a redelivery, one beyond waits in a buffer while the device
/// pulls `sync` from the cursor, and is applied as soon as the entries before it are (live or pulled).
/// `T` is what the caller keeps of an entry until it is applied.
#[derive(Debug, Clone)]
pub struct Inbox<T> {
    /// The highest seq applied.
    pub cursor: u64,
    /// A `sync` is outstanding.
    pub syncing: bool,
    /// Times a live entry arrived ahead of the cursor with no pull outstanding (each starts a `sync`).
    pub gaps: u64,
    /// Entries received again at or below the cursor (allowed: delivery is at least once).
    pub redelivered: u64,
    /// The cursor when the outstanding pull was asked for.
    page_start: u64,
    /// Live entries waiting behind a gap.
    buffer: BTreeMap<u64, T>,
}

/// What to do after a live entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Live<T> {
    /// Apply these, in order: the entry and the buffered ones that now follow it.
    Apply(Vec<T>),
    /// At or below the cursor: already applied.
    Skip,
    /// Buffered behind a gap; `Some(after)`: pull with `sync` after the cursor.
    Buffered(Option<u64>),
}

impl<T> Inbox<T> {
    pub fn new(cursor: u64) -> Inbox<T> {
        Inbox { cursor, syncing: false, gaps: 0, redelivered: 0, page_start: cursor, buffer: BTreeMap::new() }
    }

    pub fn live(&mut self, seq: u64, item: T) -> Live<T> {
        if seq <= self.cursor {
            self.redelivered += 1;
            return Live::Skip;
        }
        if seq > self.cursor + 1 {
            self.buffer.insert(seq, item);
            if self.syncing {
                return Live::Buffered(None);
            }
            self.gaps += 1;
            return Live::Buffered(Some(self.start_pull()));
        }
        self.cursor = seq;
        let mut out = vec![item];
        self.drain_into(&mut out);
        Live::Apply(out)
    }

    /// Forgets buffered entries and any outstanding pull (a new connection pulls from the cursor).
    pub fn reset(&mut self) {
        self.buffer.clear();
        self.syncing = false;
    }

    /// Starts a pull (a `sync` after the cursor, which it returns).
    pub fn start_pull(&mut self) -> u64 {
        self.syncing = true;
        self.page_start = self.cursor;
        self.cursor
    }

    /// One entry of a `synced` answer (they come in log order): `true` if it is to be applied. From cursor
    /// 0 the log may start above 1 (older entries expired).
    pub fn pulled(&mut self, seq: u64) -> bool {
        if seq <= self.cursor {
            self.redelivered += 1;
            return false;
        }
        self.cursor = seq;
        true
    }

    /// A `synced` page was applied: the buffered entries that now follow the cursor, and `Some(after)` if
    /// another pull is needed. At the end of a round, buffered entries the answer covered (`<= latest`)
    /// are released past seqs the log no longer holds; a page that brought nothing new ends the round
    /// whatever it says, so a confused server cannot make it loop.
    pub fn synced(&mut self, latest: u64, more: bool) -> (Vec<T>, Option<u64>) {
        let mut ready = Vec::new();
        self.drain_into(&mut ready);
        let progressed = self.cursor != self.page_start;
        if (more || latest > self.cursor) && progressed {
            return (ready, Some(self.start_pull()));
        }
        while let Some(entry) = self.buffer.first_entry() {
            if *entry.key() > latest {
                break;
            }
            self.cursor = *entry.key();
            ready.push(entry.remove());
            self.drain_into(&mut ready);
        }
        if self.buffer.is_empty() || !progressed {
            self.syncing = false;
            (ready, None)
        } else {
            (ready, Some(self.start_pull()))
        }
    }

    fn drain_into(&mut self, out: &mut Vec<T>) {
        while let Some(entry) = self.buffer.first_entry() {
            let seq = *entry.key();
            if seq <= self.cursor {
                entry.remove();
            } else if seq == self.cursor + 1 {
                out.push(entry.remove());
                self.cursor = seq;
            } else {
                break;
            }
        }
    }
}

/// Which messages of one sender→recipient pair arrived: a bit per message number.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    bits: Vec<u64>,
    pub unique: u64,
    pub duplicates: u64,
}

impl Ledger {
    /// Records an arrival; `true` the first time.
    pub fn record(&mut self, k: u64) -> bool {
        let (word, bit) = ((k / 64) as usize, k % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            false
        } else {
            self.bits[word] |= 1 << bit;
            self.unique += 1;
            true
        }
    }

    pub fn has(&self, k: u64) -> bool {
        self.bits.get((k / 64) as usize).is_some_and(|w| w & (1 << (k % 64)) != 0)
    }
}

/// A `sync` request frame.
pub fn sync_frame(id: u64, after: u64) -> WsMessage {
    WsMessage::Text(encode(&ClientFrame::Sync { id, after, limit: Some(duet_proto::client::MAX_SYNC_BATCH) }).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_the_server_encoding() {
        let m = Mark { step: 3, t: 123_456_789, k: 42, from: 7 };
        let text = m.text(100);
        assert_eq!(text.len(), 100);
        let frame = format!(
            r#"{{"op":"entry","entry":{{"kind":"msg","seq":17,"msg":{{"from":"a","to":"b","msg_key":"1_2_3","seq":99,"random":2,"time":3,"conv_seq":5,"body":[{{"MsgType":"TIMTextElem","MsgContent":{{"Text":"{text}"}}}}],"cloud_custom_data":"","recalled":false}}}}}}"#
        );
        match scan(&frame) {
            Scanned::Entry { seq, mark } => {
                assert_eq!(seq, 17);
                assert_eq!(mark, Some(m));
            }
            other => panic!("{other:?}"),
        }
        let id = send_id(3, 123_456_789);
        match scan(&format!(r#"{{"op":"sent","id":{id},"msg_key":"1_2_3"}}"#)) {
            Scanned::Sent { id: got } => assert_eq!(split_send_id(got), (3, 123_456_789)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            scan(r#"{"op":"pong","id":2,"server_time":5}"#),
            Scanned::Other(ServerFrame::Pong { id: 2, .. })
        ));
    }

    #[test]
    fn the_cursor_rule() {
        let mut inbox = Inbox::new(4);
        assert_eq!(inbox.live(5, 'a'), Live::Apply(vec!['a']));
        assert_eq!(inbox.live(5, 'a'), Live::Skip);
        // 7 and 8 come before 6: buffered, one pull; 6 arrives live and releases them.
        assert_eq!(inbox.live(7, 'c'), Live::Buffered(Some(5)));
        assert_eq!(inbox.live(8, 'd'), Live::Buffered(None));
        assert_eq!(inbox.live(6, 'b'), Live::Apply(vec!['b', 'c', 'd']));
        // The pull's answer brings nothing new.
        assert!(!inbox.pulled(6) && !inbox.pulled(7) && !inbox.pulled(8));
        assert_eq!(inbox.synced(8, false), (vec![], None));
        assert_eq!(inbox.live(9, 'e'), Live::Apply(vec!['e']));
        assert_eq!((inbox.gaps, inbox.redelivered), (1, 4));
        // A gap the log no longer covers: the pull jumps the cursor, the buffered entry follows.
        assert_eq!(inbox.live(12, 'h'), Live::Buffered(Some(9)));
        assert!(inbox.pulled(11));
        assert_eq!(inbox.synced(12, false), (vec!['h'], None));
        assert_eq!(inbox.cursor, 12);
        assert!(!inbox.syncing);

        let mut l = Ledger::default();
        assert!(l.record(3) && l.record(200) && !l.record(3));
        assert!(l.has(200) && !l.has(4));
        assert_eq!((l.unique, l.duplicates), (2, 1));
    }
}

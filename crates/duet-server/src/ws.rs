//! The client protocol (`docs/protocol.md`): one WebSocket connection per device at `/v1/connect`.
//!
//! Each connection is one task, tracked by the server's `TaskTracker`, selecting over inbound frames,
//! the session's bounded outbound queue (sync-log entries and kicks from the hub), a heartbeat timer and
//! shutdown. Requests start in frame order and are answered as they complete (up to 64 in flight). A
//! push is encoded once per entry however many devices get it. Each turn of the task queues its frames
//! and whatever else is ready (answers, entries) and writes them with one flush: a send's answer and the
//! sender's own sync entry usually leave in one syscall. Every way a connection ends is an [`End`], and
//! the close frame says which (a code and a reason). `relations` serves the friend and blacklist
//! requests and encodes the `relation` events.

mod relations;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use duet_core::callbacks::Source;
use duet_core::hub::{KickReason, Outbound, Session, SessionKind};
use duet_core::messages::{CallbackSource, Draft, Origin, Prepared, SendError};
use duet_core::model::{
    self, HistoryQuery, LogEntry, LogEvent, MsgKey, ReceiveOpt, SearchCursor, SearchQuery, SenderCopy, SettingsChange,
    StoredMessage,
};
use duet_core::push::{RegisterError, Registration};
use duet_core::sessions::Gone;
use duet_core::usersig::Claims;
use duet_core::{Core, LoginError};
use duet_proto::client::{
    self, ClientFrame, Conversation, Entry, MAX_HISTORY_PAGE, MAX_SYNC_BATCH, Message, PROTOCOL_VERSION, Platform,
    ServerFrame,
};
use duet_proto::elem::MsgElem;
use duet_proto::{ApiError, code};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::content::WireContent;
use crate::throttle::Throttle;

/// The largest frame a client may send.
const MAX_FRAME: usize = 64 * 1024;
/// The WebSocket read buffer per connection.
const READ_BUFFER: usize = 1024;
/// Requests of one connection being answered at once; beyond, the connection is not read.
const MAX_IN_FLIGHT: usize = 64;
/// Queued frames are written once they reach this many bytes, or at the end of the connection task's turn.
const WRITE_BUFFER: usize = 8 * 1024;

/// A request being answered: its reply, and whether the connection ends after it.
type Work = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send>>;
/// Page requests (`sync`, `history`, `conversations`, lists) answered at once at most: each answer may hold
/// up to a page ([`client::MAX_PAGE_BYTES`]) until it is written, so this bounds what a connection that
/// asks and never reads can make the server hold.
const MAX_PAGES_IN_FLIGHT: usize = 4;

/// A request's answer, whether the connection ends after it, and whether it was a page request.
struct Answer {
    frame: ServerFrame,
    end: Option<End>,
    page: bool,
}
/// The longest a connection is not read after a send over its user's rate.
const MAX_SEND_PAUSE: Duration = Duration::from_secs(1);
/// How often a connection checks its idle time and its UserSig's expiry, at most.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// At shutdown, how long a connection may take to answer the requests it has read (the server waits 10 s
/// for its tasks in all).
const DRAIN: Duration = Duration::from_secs(5);

/// What the WebSocket endpoint needs: the domain, and the owners of connection tasks.
#[derive(Clone)]
pub(crate) struct WsState {
    pub core: Arc<Core>,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
    /// Where the download URLs put in this connection's messages point.
    pub urls: crate::media::Urls,
    pub timeouts: crate::config::WsTimeouts,
    /// Sends per user and failed logins.
    pub throttle: Arc<Throttle>,
    /// Logged-in connections by platform (`duet_connections`, `duet/status`).
    pub census: Arc<crate::ops::census::Census>,
}

pub(crate) async fn connect(
    State(state): State<WsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let media_base = state.urls.base(&headers, &uri);
    // A small read buffer: tungstenite's default (128 KiB, allocated up front) would cost that much memory
    // per idle connection. Frames are at most 64 KiB; the buffer grows for the rare large one.
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| {
            let tracker = state.tracker.clone();
            let span = crate::logs::connection_span(peer.ip());
            tracker.track_future(run(state, socket, peer.ip(), media_base).instrument(span))
        })
}

async fn run(state: WsState, mut socket: WebSocket, ip: IpAddr, media_base: String) {
    // The login's and each frame's handling are boxed: a future holds room for its largest state, and
    // these, inline, made every idle connection's task larger (docs/benchmarks.md, "A connection's login
    // and frame handling are boxed").
    let (logged_in, claims) = match Box::pin(login(&state, &mut socket, ip)).await {
        Ok(logged_in) => logged_in,
        Err(end) => {
            close(&mut socket, end, state.timeouts.write).await;
            return;
        }
    };
    let deadline = state.timeouts.write;
    // Counted as connected until this task ends, however it ends.
    let _counted = state.census.enter(logged_in.platform);
    let mut conn = Connection {
        core: state.core.clone(),
        throttle: state.throttle.clone(),
        socket,
        deadline,
        session: logged_in,
        claims,
        ip,
        media_base,
        resume_at: None,
        typing_sent: std::collections::HashMap::new(),
    };
    let since = tokio::time::Instant::now();
    let end = conn.serve(&state.shutdown, state.timeouts.idle).await;
    match end {
        End::Logout => conn.core.sessions().logout(&conn.session).await,
        End::Idle => conn.core.sessions().disconnect(&conn.session, Gone::TimedOut).await,
        End::Replaced => conn.core.sessions().disconnect(&conn.session, Gone::Replaced).await,
        _ => conn.core.sessions().disconnect(&conn.session, Gone::Closed).await,
    }
    close(&mut conn.socket, end, deadline).await;
    let close_code = end.close().map(|(code, _)| code);
    let session_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(?end, close_code, session_ms, "session ended");
    let reason = match end {
        End::TooSlow | End::Stuck => {
            metrics::counter!("duet_connections_dropped_total", "reason" => "slow").increment(1);
            "slow".to_owned()
        }
        other => format!("{other:?}").to_lowercase(),
    };
    metrics::counter!("duet_logouts_total", "reason" => reason).increment(1);
}

/// Closes the connection with `end`'s close code and reason (`docs/protocol.md`, *Closing*).
/// After [`End::Stuck`] the close frame goes only if the socket takes it at once: the client is not
/// reading, and waiting would hold the connection another deadline.
async fn close(socket: &mut WebSocket, end: End, deadline: Duration) {
    let Some((code, reason)) = end.close() else { return };
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    let deadline = if end == End::Stuck { Duration::ZERO } else { deadline };
    let _ = bounded(deadline, async { socket.send(WsMessage::Close(Some(frame))).await.is_ok() }).await;
}

/// What a read from the client that is not a text frame means for the connection: `None` for a control
/// frame, which changes nothing.
async fn unreadable(
    socket: &mut WebSocket,
    inbound: Option<Result<WsMessage, axum::Error>>,
    deadline: Duration,
) -> Option<End> {
    match inbound {
        Some(Ok(WsMessage::Text(_) | WsMessage::Ping(_) | WsMessage::Pong(_))) => None,
        Some(Ok(WsMessage::Binary(_))) => {
            let e = error(0, client::code::INVALID_PARAMS, "binary frames are not part of the protocol");
            let _ = bounded(deadline, feed(socket, &e)).await;
            Some(End::Binary)
        }
        Some(Err(e)) => {
            use tokio_tungstenite::tungstenite::Error;
            match std::error::Error::source(&e).and_then(|e| e.downcast_ref::<Error>()) {
                Some(Error::Capacity(_)) => {
                    let info = format!("a frame is at most {MAX_FRAME} bytes");
                    let _ = bounded(deadline, feed(socket, &error(0, client::code::INVALID_PARAMS, info))).await;
                    Some(End::TooBig)
                }
                Some(Error::Utf8(_)) => Some(End::NotUtf8),
                Some(Error::Protocol(_)) => Some(End::ProtocolError),
                _ => Some(End::Gone),
            }
        }
        Some(Ok(WsMessage::Close(_))) | None => Some(End::Gone),
    }
}

/// Waits for the `login` frame and answers it; says how the connection ends when the login fails. A
/// UserSig that does not verify counts as a failed login of `ip` and the account ([`Throttle`]).
async fn login(state: &WsState, socket: &mut WebSocket, ip: IpAddr) -> Result<(Session, Claims), End> {
    let inbound = tokio::select! {
        () = state.shutdown.cancelled() => return Err(End::Shutdown),
        r = tokio::time::timeout(state.timeouts.login, socket.recv()) => r.map_err(|_| End::NoLogin)?,
    };
    let text = match inbound {
        Some(Ok(WsMessage::Text(t))) => t,
        other => {
            let end = unreadable(socket, other, state.timeouts.write).await.unwrap_or(End::Refused);
            return Err(end);
        }
    };
    let (id, user, usersig, platform, device, kind) = match ClientFrame::parse(&text) {
        Ok(ClientFrame::Login { id, protocol, user, usersig, platform, device, transient, live }) => {
            if protocol != PROTOCOL_VERSION {
                let info = format!("protocol {protocol} is not supported; this server speaks {PROTOCOL_VERSION}");
                return Err(refuse(socket, id, client::code::UNSUPPORTED_PROTOCOL, info, state.timeouts.write).await);
            }
            let kind = if transient { SessionKind::Transient { live } } else { SessionKind::Device };
            (id, user, usersig, platform, device, kind)
        }
        Ok(other) => {
            let id = request_id(&other);
            return Err(refuse(socket, id, client::code::NOT_LOGGED_IN, "log in first", state.timeouts.write).await);
        }
        Err((id, why)) => {
            // Under the frame's id when it has one: a login refused for a field (a device id over its
            // limit) is answered like any other refused login.
            return Err(refuse(socket, id, client::code::INVALID_PARAMS, why, state.timeouts.write).await);
        }
    };
    if let Err(why) = duet_proto::rest::validate_user_id(&user) {
        return Err(refuse(socket, id, client::code::INVALID_USER_ID, why, state.timeouts.write).await);
    }
    // Who tried, from here on: a valid UserID.
    tracing::Span::current().record("user", user.as_str());
    if let Err(t) = state.throttle.login_allowed(ip, &user) {
        return Err(refuse(socket, id, code::TOO_MANY_FAILED_LOGINS, t.info(), state.timeouts.write).await);
    }
    let client_ip = Some(ip.to_string());
    match state
        .core
        .sessions()
        .login(&user, usersig.expose(), platform_to_model(platform), &device, kind, client_ip)
        .await
    {
        Ok(ok) => {
            let reply = ServerFrame::LoggedIn { id, user, server_time: state.core.clock().now_ms(), latest: ok.latest };
            if send(socket, &reply, state.timeouts.write).await {
                logged_in(&ok.session);
                Ok((ok.session, ok.claims))
            } else {
                state.core.sessions().disconnect(&ok.session, Gone::Closed).await;
                Err(End::Gone)
            }
        }
        Err(LoginError::Auth(e)) => {
            if crate::rest::error::is_failed_login(&e) {
                state.throttle.failed_login(ip, &user);
            }
            let e = crate::rest::error::auth(e, &user, state.core.config().sdkappid);
            Err(refuse(socket, id, e.code, e.info, state.timeouts.write).await)
        }
        Err(LoginError::Core(e)) => {
            tracing::error!(error = %e, "login failed");
            let info = "internal server error, please retry";
            Err(refuse(socket, id, code::MSG_SERVER_INTERNAL, info, state.timeouts.write).await)
        }
    }
}

/// Refuses a login: logs it (the one line of a refused login) and tells the client why.
async fn refuse(socket: &mut WebSocket, id: u64, code: u32, reason: impl Into<String>, deadline: Duration) -> End {
    let reason = reason.into();
    tracing::info!(code, %reason, "login refused");
    metrics::counter!("duet_logins_total", "outcome" => "refused", "code" => code.to_string()).increment(1);
    send(socket, &error(id, code, reason), deadline).await;
    End::Refused
}

/// Records the session in the connection's span and logs the login (its one line).
fn logged_in(session: &Session) {
    let kind = match session.kind {
        SessionKind::Device => "device",
        SessionKind::Transient { live: false } => "transient",
        SessionKind::Transient { live: true } => "transient_live",
    };
    let (user, platform, device) = (session.user.as_str(), session.platform.name(), session.device.as_str());
    let span = tracing::Span::current();
    span.record("user", user).record("platform", platform).record("device", device);
    tracing::info!(user, platform, device, kind, "login");
    metrics::counter!("duet_logins_total", "outcome" => "ok", "code" => "0").increment(1);
}

/// How a connection ends, and what its close frame says (`docs/protocol.md`, *Closing*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// `logout`.
    Logout,
    /// The client closed the connection, or it failed: nothing left to tell.
    Gone,
    /// No `login` frame within the login timeout.
    NoLogin,
    /// The login was refused (an `error` frame said why).
    Refused,
    /// Nothing heard for the idle timeout.
    Idle,
    /// Logged out by another device or the admin (a `kicked` frame said which).
    Kicked,
    /// The same device connected again: this connection is stale.
    Replaced,
    /// The UserSig expired (a `sig_expired` frame said so).
    Expired,
    /// The session's queue overflowed: the client read too slowly. It resyncs when it comes back.
    TooSlow,
    /// A write to the client waited the write deadline ([`bounded`]): the client is not reading. Closed as
    /// [`End::TooSlow`] is, without waiting again for the close frame, which would queue behind what the
    /// client did not read.
    Stuck,
    /// A binary frame (an `error` frame said so).
    Binary,
    /// A frame over [`MAX_FRAME`] (an `error` frame said so).
    TooBig,
    /// A WebSocket protocol violation (an unmasked frame, a bad opcode, …).
    ProtocolError,
    /// A text frame that is not UTF-8.
    NotUtf8,
    /// The server is shutting down.
    Shutdown,
}

impl End {
    /// The close frame's code and reason; `None` when the connection is gone already.
    fn close(self) -> Option<(u16, &'static str)> {
        Some(match self {
            End::Gone => return None,
            End::Logout => (1000, "logged out"),
            End::Shutdown => (1001, "the server is shutting down"),
            End::Binary => (1003, "binary frames are not part of the protocol"),
            End::ProtocolError => (1002, "websocket protocol error"),
            End::NotUtf8 => (1007, "a text frame that is not UTF-8"),
            End::Refused => (1008, "login refused"),
            End::TooBig => (1009, "frame too large"),
            End::Idle => (4000, "idle: no frame within the idle timeout"),
            End::NoLogin => (4000, "idle: no login frame within the login timeout"),
            End::Kicked => (4001, "kicked"),
            End::Replaced => (4001, "replaced by a newer connection"),
            End::Expired => (4002, "usersig expired"),
            End::TooSlow | End::Stuck => (4003, "too slow: the connection could not keep up; resync from the cursor"),
        })
    }
}

struct Connection {
    core: Arc<Core>,
    throttle: Arc<Throttle>,
    socket: WebSocket,
    /// How long a write to the client may wait ([`bounded`]).
    deadline: Duration,
    session: Session,
    claims: Claims,
    /// The client's address (`ClientIP` of the app's callbacks).
    ip: IpAddr,
    /// `scheme://authority` of the download URLs this connection's sends carry (`media::Urls`).
    media_base: String,
    /// After a send over the user's rate: the connection is not read until then (at most
    /// [`MAX_SEND_PAUSE`] away), so a flooding client is held back by its own socket.
    resume_at: Option<tokio::time::Instant>,
    /// When this connection last passed on "typing" to each peer (at most [`TYPING_PEERS`] kept).
    typing_sent: std::collections::HashMap<String, tokio::time::Instant>,
}

/// At most one "typing" per peer per this long is passed on; more are answered and dropped.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);
/// Peers whose last "typing" a connection remembers; past it, it forgets them all (and lets one more through).
const TYPING_PEERS: usize = 64;

impl Connection {
    /// Whether a "typing" to `peer` may be passed on now (see [`TYPING_INTERVAL`]); records it when so.
    fn typing_allowed(&mut self, peer: &str) -> bool {
        let now = tokio::time::Instant::now();
        if self.typing_sent.get(peer).is_some_and(|&at| now.duration_since(at) < TYPING_INTERVAL) {
            return false;
        }
        if self.typing_sent.len() >= TYPING_PEERS {
            self.typing_sent.clear();
        }
        self.typing_sent.insert(peer.to_owned(), now);
        true
    }

    /// The session's device, as the app's callbacks name it.
    fn source(&self) -> Source {
        Source::device(self.session.platform, self.ip)
    }

    /// Queues a frame for the next flush; `Some` when the connection ends instead (see [`bounded`]).
    async fn put(&mut self, frame: &ServerFrame) -> Option<End> {
        bounded(self.deadline, feed(&mut self.socket, frame)).await.err()
    }

    /// Writes what is queued; `Some` when the connection ends instead (see [`bounded`]).
    async fn flush(&mut self) -> Option<End> {
        let flushed = futures_util::SinkExt::flush(&mut self.socket);
        bounded(self.deadline, async { flushed.await.is_ok() }).await.err()
    }

    async fn serve(&mut self, shutdown: &CancellationToken, idle: Duration) -> End {
        let mut heartbeat = tokio::time::interval(HEARTBEAT.min(idle / 10));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = tokio::time::Instant::now();
        // Requests being answered. A request's work starts (and a send enters the writer's queue) in the order
        // the frames arrived; answers go out as they complete, so one slow commit does not hold up the
        // connection, and messages of one device keep their order.
        let mut pending = FuturesUnordered::new();
        let mut pages = 0;
        loop {
            // Frames are queued (`feed`) and written together at the end of the turn: an answer and the
            // entries committed with it usually leave in one write.
            let step = tokio::select! {
                () = shutdown.cancelled() => Some(self.drain(&mut pending).await),
                Some(Answer { frame: reply, end, page }) = pending.next(), if !pending.is_empty() => {
                    pages -= usize::from(page);
                    self.put(&reply).await.or(end)
                }
                () = tokio::time::sleep_until(self.resume_at.unwrap_or_else(tokio::time::Instant::now)),
                    if self.resume_at.is_some() => {
                    self.resume_at = None;
                    None
                }
                inbound = self.socket.recv(),
                    if pending.len() < MAX_IN_FLIGHT && pages < MAX_PAGES_IN_FLIGHT && self.resume_at.is_none() => {
                    last_heard = tokio::time::Instant::now();
                    // Boxed, see `run`.
                    Box::pin(self.inbound(inbound, &mut pending, &mut pages)).await
                }
                out = self.session.events.recv() => self.outbound(out).await,
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle {
                        Some(End::Idle)
                    } else if self.sig_expired() {
                        Some(self.expire().await)
                    } else {
                        None
                    }
                }
            };
            let step = match step {
                Some(end) => Some(end),
                None => self.drain_ready(&mut pending, &mut pages).await,
            };
            // The socket takes nothing: a flush would wait the deadline again.
            if step == Some(End::Stuck) {
                return End::Stuck;
            }
            let flushed = self.flush().await;
            match (step, flushed) {
                (Some(end), _) | (None, Some(end)) => return end,
                (None, None) => {}
            }
        }
    }

    /// Handles a frame from the client: starts the request's work, or queues its answer when it is done at
    /// once.
    async fn inbound(
        &mut self,
        inbound: Option<Result<WsMessage, axum::Error>>,
        pending: &mut FuturesUnordered<Work>,
        pages: &mut usize,
    ) -> Option<End> {
        match inbound {
            Some(Ok(WsMessage::Text(text))) => {
                if self.sig_expired() {
                    return Some(self.expire().await);
                }
                match ClientFrame::parse(&text) {
                    Ok(frame) => {
                        if let ClientFrame::Send { id, .. } = &frame
                            && let Err(t) = self.throttle.send(&self.session.user)
                        {
                            let pause = t.retry_after().min(MAX_SEND_PAUSE);
                            self.resume_at = Some(tokio::time::Instant::now() + pause);
                            return self.put(&error(*id, client::code::TOO_FREQUENT, t.info())).await;
                        }
                        // A send is prepared (validated, permitted, its uploads granted: stages that may read the
                        // store) before the next frame is read, and its commit then enters the store's queue
                        // when first polled below. So a connection's sends are stored in frame order.
                        if let ClientFrame::Send { .. } = frame {
                            let user = self.session.user.clone();
                            let source = CallbackSource::both(self.source());
                            let prepared = prepare(&self.core, &self.media_base, user, source, frame).await;
                            let mut work: Work = match prepared {
                                Ok((id, prepared)) => Box::pin(commit(self.core.clone(), id, prepared)),
                                Err((id, e)) => return self.put(&error(id, e.code, e.info)).await,
                            };
                            return match futures_util::poll!(work.as_mut()) {
                                std::task::Poll::Ready(Answer { frame, end, .. }) => self.put(&frame).await.or(end),
                                std::task::Poll::Pending => {
                                    pending.push(work);
                                    None
                                }
                            };
                        }
                        if let ClientFrame::Typing { id, peer, typing: true } = &frame
                            && !self.typing_allowed(peer)
                        {
                            return self.put(&ServerFrame::Ok { id: *id }).await;
                        }
                        if let Some(answer) = device_frame(&self.core, &self.session, &frame).await {
                            return self.put(&answer).await;
                        }
                        let is_page = is_page(&frame);
                        let mut work: Work =
                            Box::pin(answer(self.core.clone(), self.session.user.clone(), self.source(), frame));
                        // Start it now, so that it queues its writes before the next frame's.
                        match futures_util::poll!(work.as_mut()) {
                            std::task::Poll::Ready(Answer { frame, end, .. }) => self.put(&frame).await.or(end),
                            std::task::Poll::Pending => {
                                *pages += usize::from(is_page);
                                pending.push(work);
                                None
                            }
                        }
                    }
                    Err((id, why)) => self.put(&error(id, client::code::INVALID_PARAMS, why)).await,
                }
            }
            other => unreadable(&mut self.socket, other, self.deadline).await,
        }
    }

    /// Handles what the hub sent this session.
    async fn outbound(&mut self, out: Option<Outbound>) -> Option<End> {
        match out {
            Some(Outbound::Entry(push)) => {
                let text = push.encoded.get_or_init(|| encode_entry(&self.core, &push.entry).into());
                let msg = WsMessage::Text(Utf8Bytes::from(text.to_string()));
                let sent = futures_util::SinkExt::feed(&mut self.socket, msg);
                let end = bounded(self.deadline, async { sent.await.is_ok() }).await.err();
                metrics::histogram!("duet_delivery_seconds").record(push.since.elapsed());
                end
            }
            Some(Outbound::Relation(event)) => self.put(&relations::event(&event)).await,
            Some(Outbound::Typing { from, typing }) => {
                self.put(&ServerFrame::Typing { from: from.to_string(), typing }).await
            }
            Some(Outbound::Kicked(reason)) => {
                if reason != KickReason::Replaced {
                    let info = match reason {
                        KickReason::Admin => "kicked offline by the app admin",
                        _ => "kicked offline: the account logged in on another device",
                    };
                    let frame = ServerFrame::Kicked { code: client::code::KICKED_BY_OTHER, info: info.into() };
                    self.put(&frame).await;
                    Some(End::Kicked)
                } else {
                    Some(End::Replaced)
                }
            }
            // The hub dropped this session: it could not keep up. The client resyncs on reconnect.
            None => Some(End::TooSlow),
        }
    }

    /// Queues what is ready now without waiting (answers done, entries pushed), so that it goes out in the
    /// same write as the frame that woke the task.
    async fn drain_ready(&mut self, pending: &mut FuturesUnordered<Work>, pages: &mut usize) -> Option<End> {
        for _ in 0..MAX_IN_FLIGHT {
            let mut progressed = false;
            if !pending.is_empty()
                && let Some(Some(Answer { frame: reply, end, page })) = pending.next().now_or_never()
            {
                *pages -= usize::from(page);
                progressed = true;
                if let Some(end) = self.put(&reply).await {
                    return Some(end);
                }
                if end.is_some() {
                    return end;
                }
            }
            match self.session.events.try_recv() {
                Ok(out) => {
                    progressed = true;
                    if let Some(end) = self.outbound(Some(out)).await {
                        return Some(end);
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {}
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return Some(End::TooSlow),
            }
            if !progressed {
                break;
            }
        }
        None
    }

    /// The server is shutting down: answers the requests already read (within [`DRAIN`]), then ends.
    async fn drain(&mut self, pending: &mut FuturesUnordered<Work>) -> End {
        let give_up = tokio::time::sleep(DRAIN);
        tokio::pin!(give_up);
        while !pending.is_empty() {
            tokio::select! {
                Some(Answer { frame: reply, .. }) = pending.next() => {
                    if let Some(end) = self.put(&reply).await {
                        return end;
                    }
                }
                () = &mut give_up => break,
            }
        }
        End::Shutdown
    }

    /// Tells the client its UserSig expired; the connection ends.
    async fn expire(&mut self) -> End {
        let info = "the UserSig expired; log in again with a new one".into();
        self.put(&ServerFrame::SigExpired { code: client::code::SIG_EXPIRED, info }).await;
        End::Expired
    }

    fn sig_expired(&self) -> bool {
        let now = self.core.clock().now_secs();
        i128::from(now) > i128::from(self.claims.time) + i128::from(self.claims.expire)
    }
}

/// Answers a frame about this device itself (its push registration, its app's state), which needs the
/// session; `None` for any other frame.
async fn device_frame(core: &Core, session: &Session, frame: &ClientFrame) -> Option<ServerFrame> {
    let push = core.push();
    Some(match frame {
        ClientFrame::PushRegister { id, provider, token, app_id, lang } => {
            let id = *id;
            if let Err(why) = duet_proto::limits::check_push_registration(token, app_id.as_deref(), lang.as_deref()) {
                return Some(error(id, client::code::INVALID_PARAMS, why));
            }
            let provider = match provider.parse() {
                Ok(p) => p,
                Err(e) => return Some(error(id, client::code::INVALID_PARAMS, format!("{e}"))),
            };
            let reg = Registration { provider, token: token.clone(), app_id: app_id.clone(), lang: lang.clone() };
            match push.register(session, reg).await {
                Ok(()) => ServerFrame::Ok { id },
                Err(RegisterError::Domain(e)) => domain_error(id, e),
                Err(e) => error(id, client::code::INVALID_PARAMS, e.to_string()),
            }
        }
        ClientFrame::PushUnregister { id } => match push.unregister(&session.user, Some(&session.device)).await {
            Ok(()) => ServerFrame::Ok { id: *id },
            Err(e) => domain_error(*id, e),
        },
        ClientFrame::Background { id, .. } => {
            core.hub().set_background(session, true);
            ServerFrame::Ok { id: *id }
        }
        ClientFrame::Foreground { id } => {
            core.hub().set_background(session, false);
            ServerFrame::Ok { id: *id }
        }
        _ => return None,
    })
}

/// Answers one request of `user`'s session (a send is [`prepare`]d and [`commit`]ted instead); `Some(End)`
/// ends the connection after the answer.
async fn answer(core: Arc<Core>, user: String, source: Source, frame: ClientFrame) -> Answer {
    let (id, page) = (request_id(&frame), is_page(&frame));
    let (frame, end) = match work(&core, user, &source, frame).await {
        Ok(answer) => answer,
        Err(e) => (error(id, e.code, e.info), None),
    };
    Answer { frame, end, page }
}

/// Whether the request's answer is a page of data (see [`MAX_PAGES_IN_FLIGHT`]).
fn is_page(frame: &ClientFrame) -> bool {
    matches!(
        frame,
        ClientFrame::Sync { .. }
            | ClientFrame::History { .. }
            | ClientFrame::Search { .. }
            | ClientFrame::Conversations { .. }
            | ClientFrame::FriendList { .. }
            | ClientFrame::FriendRequests { .. }
            | ClientFrame::BlackList { .. }
    )
}

/// Stages 1–3 of a client `send` (`duet_core::messages::send`): the frame's id and the prepared send, or the
/// frame's id and why it was refused.
async fn prepare(
    core: &Core,
    media_base: &str,
    user: String,
    source: CallbackSource,
    frame: ClientFrame,
) -> Result<(u64, Prepared), (u64, ApiError)> {
    let ClientFrame::Send { id, to, seq, random, body, cloud_custom_data, online_only, push, need_read_receipt } =
        frame
    else {
        unreachable!("only sends are prepared")
    };
    if let Err(why) = duet_proto::rest::validate_user_id(&to) {
        return Err((id, ApiError::new(client::code::INVALID_USER_ID, why)));
    }
    let draft = Draft {
        from: user,
        to: vec![to],
        seq,
        random,
        content: WireContent::new(media_base, body, cloud_custom_data, push),
        lifetime_secs: if online_only { 0 } else { duet_proto::rest::request::MAX_MSG_LIFETIME },
        sender_copy: SenderCopy::Sync,
        no_unread: false,
        no_last_msg: false,
        need_read_receipt,
        callback: Some(source),
    };
    match core.messages().prepare_send(Origin::Client, draft).await {
        Ok(prepared) => Ok((id, prepared)),
        Err(SendError::Content(e)) => Err((id, e)),
        Err(SendError::Domain(e)) => Err((id, crate::rest::error::client(e))),
    }
}

/// Stages 4 and 5 of a client `send`: commits it and answers `sent`.
async fn commit(core: Arc<Core>, id: u64, prepared: Prepared) -> Answer {
    let to = prepared.message().to.first().cloned().unwrap_or_default();
    let frame = match prepared.commit(core.messages()).await {
        Ok(sent) if sent.failed.is_empty() => ServerFrame::Sent {
            id,
            msg_key: sent.key.to_string(),
            seq: sent.key.seq,
            random: sent.key.random,
            time: sent.key.time,
            conv_seq: sent.conv_seq,
            log_seq: sent.sender_log_seq,
        },
        Ok(_) => domain_error(id, duet_core::Error::NoSuchAccount(to)),
        Err(e) => domain_error(id, e),
    };
    Answer { frame, end: None, page: false }
}

fn domain_error(id: u64, e: duet_core::Error) -> ServerFrame {
    let e = crate::rest::error::client(e);
    error(id, e.code, e.info)
}

async fn work(
    core: &Core,
    user: String,
    source: &Source,
    frame: ClientFrame,
) -> Result<(ServerFrame, Option<End>), ApiError> {
    let fail = crate::rest::error::client;
    Ok(match frame {
        ClientFrame::Login { id, .. } => (error(id, client::code::INVALID_PARAMS, "already logged in"), None),
        ClientFrame::Sync { id, after, limit } => {
            let limit = limit.unwrap_or(MAX_SYNC_BATCH).clamp(1, MAX_SYNC_BATCH) as usize;
            let page = core.messages().sync(&user, after, limit, client::MAX_PAGE_BYTES).await.map_err(fail)?;
            metrics::counter!("duet_sync_pulls_total").increment(1);
            let mut entries: Vec<Entry> = page.entries.iter().map(|e| entry_to_wire(core, e)).collect();
            let cut = fit_page(&mut entries);
            (ServerFrame::Synced { id, entries, latest: page.latest, more: page.more || cut }, None)
        }
        ClientFrame::Send { id, .. } => {
            (error(id, client::code::INVALID_PARAMS, "a send is answered by `commit`"), None)
        }
        ClientFrame::PushRegister { id, .. }
        | ClientFrame::PushUnregister { id }
        | ClientFrame::Background { id, .. }
        | ClientFrame::Foreground { id } => {
            (error(id, client::code::INVALID_PARAMS, "a device frame is answered by the connection"), None)
        }
        ClientFrame::History { id, peer, count, before } => {
            let before = match before.as_deref() {
                None | Some("") => None,
                Some(k) => Some(msg_key(k)?),
            };
            let q = HistoryQuery {
                operator: user,
                peer,
                min_time: 0,
                max_time: i64::MAX,
                before,
                limit: count.clamp(1, MAX_HISTORY_PAGE) as usize,
            };
            let page = core.messages().history(q).await.map_err(fail)?;
            let mut messages: Vec<Message> = page.messages.iter().map(|m| message_to_wire(core, m)).collect();
            let cut = fit_page(&mut messages);
            (ServerFrame::History { id, messages, complete: !page.more && !cut, conv_seq: page.conv_seq }, None)
        }
        ClientFrame::Search { id, keywords, peer, from, types, since, until, limit, cursor } => {
            let filters = client::SearchFilters {
                keywords: &keywords,
                peer: peer.as_deref(),
                from: from.as_deref(),
                types: &types,
                since,
                until,
                limit,
            };
            let limit = filters.check().map_err(|why| ApiError::new(client::code::INVALID_PARAMS, why))?;
            let after = match cursor.as_deref() {
                None | Some("") => None,
                Some(c) => Some(c.parse::<SearchCursor>().map_err(|()| {
                    ApiError::new(client::code::INVALID_PARAMS, format!("{c:?} is not a search cursor"))
                })?),
            };
            let q = SearchQuery {
                owner: user,
                keywords,
                peer,
                sender: from,
                types,
                min_time: since.unwrap_or(0),
                max_time: until.unwrap_or(i64::MAX),
                after,
                limit: limit as usize,
            };
            let page = core.messages().search(q).await.map_err(fail)?;
            let mut messages: Vec<Message> = page.hits.iter().map(|h| message_to_wire(core, &h.message)).collect();
            let cut = fit_page(&mut messages);
            // A page cut short for its size goes on after its last message, as one that ended at the limit.
            let cursor = if cut { Some(page.hits[messages.len() - 1].at) } else { page.next() };
            (ServerFrame::SearchResult { id, messages, cursor: cursor.map(|c| c.to_string()) }, None)
        }
        ClientFrame::Conversations { id } => {
            let items = core
                .messages()
                .conversations(&user)
                .await
                .map_err(fail)?
                .into_iter()
                .map(|c| Conversation {
                    peer: c.peer,
                    last: c.last.as_ref().map(|m| message_to_wire(core, m)),
                    unread: c.unread,
                    time: c.time,
                    conv_seq: c.conv_seq,
                    peer_read_time: c.peer_read_time,
                    settings: settings_to_wire(&c.settings),
                })
                .collect();
            (ServerFrame::Conversations { id, items }, None)
        }
        ClientFrame::MarkRead { id, peer, time } => {
            core.messages().set_read(&user, &peer, time, source).await.map_err(fail)?;
            (ServerFrame::Ok { id }, None)
        }
        ClientFrame::Recall { id, peer, msg_key: key } => {
            core.messages().recall(&user, &peer, msg_key(&key)?, source).await.map_err(fail)?;
            (ServerFrame::Ok { id }, None)
        }
        ClientFrame::Modify { id, peer, msg_key: key, body, cloud_custom_data, version } => {
            let key = msg_key(&key)?;
            let body = match body {
                None => None,
                Some(elems) => Some(editable_body(&elems, cloud_custom_data.as_deref().unwrap_or_default())?),
            };
            if let (None, Some(data)) = (&body, &cloud_custom_data) {
                duet_proto::limits::check_message_without_body(data)?;
            }
            if body.is_none() && cloud_custom_data.is_none() {
                return Err(ApiError::new(client::code::INVALID_PARAMS, "give body or cloud_custom_data to change"));
            }
            let m = core.messages().edit(&user, &peer, key, body, cloud_custom_data, version).await.map_err(fail)?;
            (ServerFrame::Modified { id, msg: message_to_wire(core, &m) }, None)
        }
        ClientFrame::Delete { id, peer, msg_keys } => {
            if msg_keys.is_empty() || msg_keys.len() > client::MAX_DELETE_PER_REQUEST {
                let why = format!("msg_keys must name 1 to {} messages", client::MAX_DELETE_PER_REQUEST);
                return Err(ApiError::new(client::code::INVALID_PARAMS, why));
            }
            let keys = msg_keys.iter().map(|k| msg_key(k)).collect::<Result<Vec<_>, _>>()?;
            let done = core.messages().delete(&user, &peer, keys).await.map_err(fail)?;
            let deleted = msg_keys.into_iter().zip(done).filter(|(_, d)| *d).map(|(k, _)| k).collect();
            (ServerFrame::Deleted { id, deleted }, None)
        }
        ClientFrame::SetConversation { id, peer, pinned, set_marks, clear_marks, custom_data, draft, receive_opt } => {
            let invalid = client::code::INVALID_PARAMS;
            duet_proto::limits::check_conversation_settings(custom_data.as_deref(), draft.as_deref(), invalid)?;
            let receive = match receive_opt {
                None => None,
                Some(n) => Some(
                    ReceiveOpt::from_number(u64::from(n))
                        .ok_or_else(|| ApiError::new(invalid, format!("receive_opt must be 0, 1 or 2, not {n}")))?,
                ),
            };
            let change = SettingsChange { pinned, set_marks, clear_marks, custom_data, draft, receive };
            core.messages().update_conversation(&user, &peer, change).await.map_err(fail)?;
            (ServerFrame::Ok { id }, None)
        }
        ClientFrame::SetDnd { id, receive_opt, start_of_day, start_time, duration } => {
            let invalid = |why: &str| ApiError::new(client::code::INVALID_PARAMS, why);
            let receive = ReceiveOpt::from_number(u64::from(receive_opt))
                .ok_or_else(|| invalid("receive_opt must be 0, 1 or 2"))?;
            let window = match (start_of_day, start_time) {
                (Some(start_secs), None) if start_secs < 86_400 => model::DndWindow::Daily { start_secs },
                (Some(_), None) => return Err(invalid("start_of_day must be below 86400 (seconds after midnight)")),
                (None, Some(start)) => {
                    model::DndWindow::From { start: duet_proto::limits::check_time(start).map_err(|e| invalid(&e))? }
                }
                (None, None) => model::DndWindow::Daily { start_secs: 0 },
                (Some(_), Some(_)) => return Err(invalid("give start_of_day or start_time, not both")),
            };
            let dnd = model::Dnd { receive, window, duration_secs: duration };
            core.push().set_dnd(&user, Some(dnd)).await.map_err(fail)?;
            (ServerFrame::Ok { id }, None)
        }
        ClientFrame::GetDnd { id } => {
            let frame = match core.push().dnd(&user) {
                None => ServerFrame::Dnd { id, receive_opt: 0, start_of_day: None, start_time: None, duration: 0 },
                Some(d) => {
                    let (start_of_day, start_time) = match d.window {
                        model::DndWindow::Daily { start_secs } => (Some(start_secs), None),
                        model::DndWindow::From { start } => (None, Some(start)),
                    };
                    let receive_opt = d.receive.number();
                    ServerFrame::Dnd { id, receive_opt, start_of_day, start_time, duration: d.duration_secs }
                }
            };
            (frame, None)
        }
        ClientFrame::Typing { id, peer, typing } => {
            core.typing(&user, &peer, typing).await.map_err(fail)?;
            (ServerFrame::Ok { id }, None)
        }
        ClientFrame::ClearHistory { id, peer } => {
            core.messages().clear_history(&user, &peer).await.map_err(fail)?;
            (ServerFrame::Ok { id }, None)
        }
        ClientFrame::DeleteConversation { id, peer, clear_history } => {
            core.messages().delete_conversation(&user, &peer, clear_history).await.map_err(fail)?;
            (ServerFrame::Ok { id }, None)
        }
        ClientFrame::ReadReceipt { id, peer, msg_keys } => {
            let keys = msg_keys_of(&msg_keys)?;
            let times = core.messages().send_receipts(&user, &peer, keys).await.map_err(fail)?;
            let acknowledged = msg_keys.into_iter().zip(times).filter(|(_, t)| t.is_some()).map(|(k, _)| k).collect();
            (ServerFrame::Receipts { id, acknowledged }, None)
        }
        ClientFrame::Find { id, peer, msg_keys } => {
            let found = core.messages().find(&user, &peer, msg_keys_of(&msg_keys)?).await.map_err(fail)?;
            let messages = found.iter().map(|m| m.as_ref().map(|m| message_to_wire(core, m))).collect();
            (ServerFrame::Found { id, messages }, None)
        }
        ClientFrame::Ping { id } => {
            let latest = core.messages().latest_seq(&user).await.map_err(fail)?;
            (ServerFrame::Pong { id, server_time: core.clock().now_ms(), latest }, None)
        }
        ClientFrame::Logout { id } => (ServerFrame::Ok { id }, Some(End::Logout)),
        frame @ (ClientFrame::FriendAdd { .. }
        | ClientFrame::FriendDelete { .. }
        | ClientFrame::FriendAccept { .. }
        | ClientFrame::FriendDecline { .. }
        | ClientFrame::FriendList { .. }
        | ClientFrame::FriendRequests { .. }
        | ClientFrame::BlackAdd { .. }
        | ClientFrame::BlackDelete { .. }
        | ClientFrame::BlackList { .. }) => (relations::answer(core, &user, source, frame).await?, None),
    })
}

/// A `MsgKey` a client names (Tencent's `<MsgSeq>_<MsgRandom>_<MsgTime>`).
fn msg_key(k: &str) -> Result<MsgKey, ApiError> {
    let (seq, random, time) = duet_proto::rest::parse_msg_key(k)
        .ok_or_else(|| ApiError::new(code::MSG_KEY_INVALID, format!("{k:?} is not a MsgKey")))?;
    Ok(MsgKey { seq, random, time })
}

/// The body of a client's edit, as compact JSON: text and custom elements only (Tencent's modifiable
/// content), within the message's limits.
fn editable_body(elems: &[MsgElem], cloud_custom_data: &str) -> Result<String, ApiError> {
    if let Some(other) = elems.iter().find(|e| !matches!(e, MsgElem::Text(_) | MsgElem::Custom(_))) {
        let why = format!("only text and custom elements can be edited, not {}", other.msg_type());
        return Err(ApiError::new(client::code::INVALID_PARAMS, why));
    }
    duet_proto::limits::check_message(elems, cloud_custom_data, None)
}

/// The keys of a `read_receipt` or `find`: 1 to [`client::MAX_KEYS_PER_REQUEST`].
fn msg_keys_of(keys: &[String]) -> Result<Vec<MsgKey>, ApiError> {
    if keys.is_empty() || keys.len() > client::MAX_KEYS_PER_REQUEST {
        let why = format!("msg_keys must name 1 to {} messages", client::MAX_KEYS_PER_REQUEST);
        return Err(ApiError::new(client::code::INVALID_PARAMS, why));
    }
    keys.iter().map(|k| msg_key(k)).collect()
}

fn request_id(frame: &ClientFrame) -> u64 {
    match frame {
        ClientFrame::Login { id, .. }
        | ClientFrame::Sync { id, .. }
        | ClientFrame::Send { id, .. }
        | ClientFrame::History { id, .. }
        | ClientFrame::Search { id, .. }
        | ClientFrame::Conversations { id }
        | ClientFrame::MarkRead { id, .. }
        | ClientFrame::Recall { id, .. }
        | ClientFrame::Modify { id, .. }
        | ClientFrame::Delete { id, .. }
        | ClientFrame::ClearHistory { id, .. }
        | ClientFrame::SetConversation { id, .. }
        | ClientFrame::Typing { id, .. }
        | ClientFrame::SetDnd { id, .. }
        | ClientFrame::GetDnd { id }
        | ClientFrame::DeleteConversation { id, .. }
        | ClientFrame::ReadReceipt { id, .. }
        | ClientFrame::Find { id, .. }
        | ClientFrame::Ping { id }
        | ClientFrame::Logout { id }
        | ClientFrame::FriendAdd { id, .. }
        | ClientFrame::FriendDelete { id, .. }
        | ClientFrame::FriendAccept { id, .. }
        | ClientFrame::FriendDecline { id, .. }
        | ClientFrame::FriendList { id }
        | ClientFrame::FriendRequests { id }
        | ClientFrame::BlackAdd { id, .. }
        | ClientFrame::BlackDelete { id, .. }
        | ClientFrame::BlackList { id }
        | ClientFrame::PushRegister { id, .. }
        | ClientFrame::PushUnregister { id }
        | ClientFrame::Background { id, .. }
        | ClientFrame::Foreground { id } => *id,
    }
}

fn error(id: u64, code: u32, info: impl Into<String>) -> ServerFrame {
    ServerFrame::Error { id, code, info: info.into() }
}

/// Sends a frame; `false` if the connection is gone.
/// Sends a frame now, within `deadline`; `false` if the connection is gone or the client did not take it.
async fn send(socket: &mut WebSocket, frame: &ServerFrame, deadline: Duration) -> bool {
    bounded(deadline, async { feed(socket, frame).await && futures_util::SinkExt::flush(socket).await.is_ok() })
        .await
        .is_ok()
}

/// Runs a write to the client (`true`: done) within `deadline`: a client that stops reading blocks its
/// writes, and would hold its connection and everything queued for it. It is cut off instead
/// ([`End::Stuck`]) and resyncs from its cursor when it comes back. The timer starts only when the
/// write has to wait.
async fn bounded(deadline: Duration, write: impl std::future::Future<Output = bool>) -> Result<(), End> {
    let mut write = std::pin::pin!(write);
    let done = match futures_util::FutureExt::now_or_never(write.as_mut()) {
        Some(done) => done,
        None => tokio::time::timeout(deadline, write).await.map_err(|_| End::Stuck)?,
    };
    if done { Ok(()) } else { Err(End::Gone) }
}

/// Queues a frame to go out at the next flush; `false` if the connection is gone.
async fn feed(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    match serde_json::to_string(frame) {
        Ok(text) => futures_util::SinkExt::feed(socket, WsMessage::Text(text.into())).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "encoding a frame");
            false
        }
    }
}

/// A page item's encoded size: bounded cheaply first, encoded only when the bound is not small enough.
trait PageItem: serde::Serialize {
    fn size_bound(&self) -> usize;
}

impl PageItem for Entry {
    fn size_bound(&self) -> usize {
        Entry::size_bound(self)
    }
}

impl PageItem for Message {
    fn size_bound(&self) -> usize {
        Message::size_bound(self)
    }
}

/// Keeps the leading items that fit [`client::MAX_PAGE_BYTES`] encoded (the first always does); `true`
/// when some were cut, so that the page says there is more.
fn fit_page<T: PageItem>(items: &mut Vec<T>) -> bool {
    if items.iter().map(|i| i.size_bound() + 1).sum::<usize>() <= client::MAX_PAGE_BYTES {
        return false;
    }
    let mut bytes = 0;
    let fitting = items
        .iter()
        .take_while(|item| {
            bytes += serde_json::to_vec(item).map_or(usize::MAX / 2, |v| v.len() + 1);
            bytes <= client::MAX_PAGE_BYTES
        })
        .count()
        .max(1);
    let cut = fitting < items.len();
    items.truncate(fitting);
    cut
}

fn encode_entry(core: &Core, entry: &LogEntry) -> String {
    if let LogEvent::Message(m) = &entry.event {
        // The message is encoded once for both of its entries (its recipient's and its sender's).
        let msg = m
            .encoded
            .get_or_init(|| serde_json::to_string(&message_to_wire(core, m)).unwrap_or_else(|_| "null".into()).into());
        return message_entry_frame(entry.seq, msg);
    }
    serde_json::to_string(&ServerFrame::Entry { entry: entry_to_wire(core, entry) }).unwrap_or_default()
}

/// `ServerFrame::Entry { entry: Entry::Msg { seq, msg } }` as serde writes it, around an encoded `Message`.
fn message_entry_frame(seq: u64, msg: &str) -> String {
    format!(r#"{{"op":"entry","entry":{{"kind":"msg","seq":{seq},"msg":{msg}}}}}"#)
}

fn entry_to_wire(core: &Core, e: &LogEntry) -> Entry {
    match &e.event {
        LogEvent::Message(m) => Entry::Msg { seq: e.seq, msg: message_to_wire(core, m) },
        LogEvent::Read { peer, time } => Entry::Read { seq: e.seq, peer: peer.clone(), time: *time },
        LogEvent::Recall { peer, key, by } => {
            Entry::Recall { seq: e.seq, peer: peer.clone(), msg_key: key.to_string(), by: by.clone() }
        }
        LogEvent::PeerRead { peer, time } => Entry::PeerRead { seq: e.seq, peer: peer.clone(), time: *time },
        LogEvent::Receipt { peer, key, time } => {
            Entry::Receipt { seq: e.seq, peer: peer.clone(), msg_key: key.to_string(), time: *time }
        }
        LogEvent::Modified(m) => Entry::Modified { seq: e.seq, msg: message_to_wire(core, m) },
        LogEvent::Deleted { peer, key } => Entry::Deleted { seq: e.seq, peer: peer.clone(), msg_key: key.to_string() },
        LogEvent::Settings { peer, settings } => {
            Entry::Settings { seq: e.seq, peer: peer.clone(), settings: settings_to_wire(settings) }
        }
        LogEvent::Cleared { peer, upto, conversation } => {
            Entry::Cleared { seq: e.seq, peer: peer.clone(), upto: *upto, conversation: *conversation }
        }
    }
}

/// A stored message as clients see it; one from an app admin is marked as a system notification, and a
/// recalled one has no content.
fn message_to_wire(core: &Core, m: &StoredMessage) -> Message {
    let (body, cloud_custom_data) = if m.recalled {
        (empty_body(), String::new())
    } else {
        (RawValue::from_string(m.body.clone()).unwrap_or_else(|_| empty_body()), m.cloud_custom_data.clone())
    };
    Message {
        from: m.from.clone(),
        to: m.to.clone(),
        msg_key: m.key.to_string(),
        seq: m.key.seq,
        random: m.key.random,
        time: m.key.time,
        conv_seq: m.conv_seq,
        body,
        cloud_custom_data,
        recalled: m.recalled,
        revoker: m.revoker.clone().unwrap_or_default(),
        peer_read: m.peer_read,
        need_read_receipt: m.need_receipt,
        receipt_time: m.receipt_time.unwrap_or_default(),
        version: m.version,
        nick: m.sender.nick.clone().unwrap_or_default(),
        face_url: m.sender.face_url.clone().unwrap_or_default(),
        system: core.accounts().is_admin(&m.from),
    }
}

fn settings_to_wire(s: &model::ConversationSettings) -> client::ConversationSettings {
    client::ConversationSettings {
        pinned: s.pinned_at > 0,
        marks: s.marks,
        custom_data: s.custom_data.clone(),
        draft: s.draft.clone(),
        draft_time: s.draft_time,
        receive_opt: s.receive.number(),
    }
}

fn empty_body() -> Box<RawValue> {
    RawValue::from_string("[]".into()).unwrap_or_else(|_| unreachable!("[] is JSON"))
}

pub(crate) fn platform_to_model(p: Platform) -> model::Platform {
    match p {
        Platform::IPhone => model::Platform::IPhone,
        Platform::Android => model::Platform::Android,
        Platform::IPad => model::Platform::IPad,
        Platform::Pc => model::Platform::Pc,
        Platform::Mac => model::Platform::Mac,
        Platform::Linux => model::Platform::Linux,
        Platform::Web => model::Platform::Web,
    }
}

#[cfg(test)]
mod tests {
    use duet_proto::client::{Entry, Message, ServerFrame};
    use serde_json::value::RawValue;

    /// The entry frame built around an encoded message is the frame serde writes, field for field.
    #[test]
    fn a_message_entry_frame_is_what_serde_writes() {
        let msg = Message {
            from: "alice".into(),
            to: "bob \"the\" builder".into(),
            msg_key: "1_2_3".into(),
            seq: 1,
            random: 2,
            time: 3,
            conv_seq: 4,
            body: RawValue::from_string(r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi\n"}}]"#.into()).unwrap(),
            cloud_custom_data: "c".into(),
            recalled: false,
            revoker: String::new(),
            peer_read: false,
            need_read_receipt: false,
            receipt_time: 0,
            version: 0,
            nick: "Al".into(),
            face_url: String::new(),
            system: true,
        };
        let spliced = super::message_entry_frame(42, &serde_json::to_string(&msg).unwrap());
        let serde = serde_json::to_string(&ServerFrame::Entry { entry: Entry::Msg { seq: 42, msg } }).unwrap();
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(parse(&spliced), parse(&serde));
        let ServerFrame::Entry { entry: Entry::Msg { seq, msg } } = serde_json::from_str(&spliced).unwrap() else {
            panic!("not a message entry: {spliced}");
        };
        assert_eq!((seq, msg.to.as_str(), msg.system), (42, "bob \"the\" builder", true));
    }
}

//! One connection's deadlines. [`Activity`] says what the connection is doing, kept up to date by three
//! wrappers: the socket's ([`Watched`]: the first byte read while no request is in progress), the
//! service's ([`Tracked`]: requests in progress, from their complete headers to the end of their
//! response) and each response body's ([`Counted`]: hyper pulling it, which it does only as fast as the
//! client reads). [`serve`] drives the connection and, when a deadline of [`HttpLimits`] passes:
//!
//! * headers not complete in time (the first request's from the start, a later one's from its first
//!   byte), or no request for the idle timeout: a graceful close (HTTP/1: at once, as nothing is in
//!   progress; HTTP/2: `GOAWAY`), dropped if not done within [`CLOSE_GRACE`];
//! * a response not pulled for the send timeout (the client stopped reading): dropped at once.
//!
//! A WebSocket over HTTP/1.1 leaves this connection when upgraded (hyper hands the socket over and the
//! connection future ends), so none of this applies to it: `ws` has its own deadlines. One over
//! HTTP/2 (an extended `CONNECT`) is a stream of the connection: a connection that carried one is only
//! ever closed gracefully, which lets open streams finish, and HTTP/2 keep-alive pings drop it if the
//! peer is gone.

use std::convert::Infallible;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Method, Request, Response, Version};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::caps::Slot;
use crate::config::HttpLimits;

/// How long a connection closed for a deadline gets to finish closing (flushing its last bytes,
/// `GOAWAY`, TLS `close_notify`) before it is dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// HTTP/2 keep-alive: a ping after this long without a frame from the client, which must answer within
/// 20 s (hyper's default) or the connection is dropped. Finds peers that went away under a long-lived
/// stream (a WebSocket over HTTP/2).
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Requests one HTTP/2 connection may have in progress at once (hyper's default is 200). Each may hold an
/// upload's temporary file: the connection caps count connections, this bounds what one of them holds.
const MAX_H2_STREAMS: u32 = 100;

/// "Never" in the millisecond fields of [`Activity`].
const NONE: u64 = u64::MAX;

/// What a connection is doing; times are milliseconds since `start`.
struct Activity {
    /// When the connection started (after the TLS handshake).
    start: Instant,
    /// Requests whose headers arrived and whose response has not ended.
    in_flight: AtomicUsize,
    /// Those whose response body is being sent.
    responding: AtomicUsize,
    /// When `in_flight` last fell to 0.
    idle_since: AtomicU64,
    /// The first byte read since then (HTTP/1 only: HTTP/2 sends pings and window updates while idle).
    head_since: AtomicU64,
    /// When hyper last pulled a response body.
    last_pull: AtomicU64,
    /// A request has been seen.
    served: AtomicBool,
    /// The connection is HTTP/2.
    h2: AtomicBool,
    /// The connection carries, or carried, a tunnel (an HTTP/2 extended `CONNECT`: a WebSocket).
    tunnel: AtomicBool,
    /// Told when a deadline may have come nearer.
    changed: Notify,
}

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Headers not complete in time.
    Header,
    /// No request for the idle timeout.
    Idle,
    /// A response not pulled for the send timeout.
    Send,
    /// A graceful close not done within [`CLOSE_GRACE`].
    Close,
}

impl Expiry {
    fn reason(self) -> &'static str {
        match self {
            Expiry::Header => "request headers not received in time",
            Expiry::Idle => "idle",
            Expiry::Send => "the client stopped reading its response",
            Expiry::Close => "did not close in time",
        }
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            responding: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            last_pull: AtomicU64::new(0),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            tunnel: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// Bytes arrived from the client.
    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
            && !self.h2.load(Ordering::Relaxed)
        {
            self.head_since.store(self.now_ms(), Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// A request's headers arrived.
    fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NONE, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        if version == Version::HTTP_2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        InFlight { activity: self.clone(), responding: false }
    }

    /// The next deadline and what passing it means, if any; `closing`: a graceful close was asked for,
    /// so headers and idleness no longer matter.
    fn next(&self, limits: &HttpLimits, closing: bool) -> Option<(Instant, Expiry)> {
        let mut next: Option<(Instant, Expiry)> = None;
        let mut consider = |at: Instant, why| {
            if next.is_none_or(|(t, _)| at < t) {
                next = Some((at, why));
            }
        };
        if self.responding.load(Ordering::Acquire) > 0 {
            consider(self.at(self.last_pull.load(Ordering::Relaxed)) + limits.send_timeout, Expiry::Send);
        }
        if !closing && self.in_flight.load(Ordering::Acquire) == 0 {
            let head = self.head_since.load(Ordering::Relaxed);
            if !self.served.load(Ordering::Relaxed) {
                consider(self.start + limits.header_timeout, Expiry::Header);
            } else if head != NONE && !self.h2.load(Ordering::Relaxed) {
                consider(self.at(head) + limits.header_timeout, Expiry::Header);
            } else {
                consider(self.at(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout, Expiry::Idle);
            }
        }
        next
    }
}

/// A request in progress, until its response ends or is dropped.
struct InFlight {
    activity: Arc<Activity>,
    responding: bool,
}

impl InFlight {
    /// Its response body starts.
    fn respond(&mut self) {
        self.responding = true;
        let activity = &self.activity;
        activity.last_pull.store(activity.now_ms(), Ordering::Relaxed);
        if activity.responding.fetch_add(1, Ordering::AcqRel) == 0 {
            activity.changed.notify_one();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.activity;
        if self.responding {
            activity.responding.fetch_sub(1, Ordering::AcqRel);
        }
        activity.idle_since.store(activity.now_ms(), Ordering::Relaxed);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.changed.notify_one();
        }
    }
}

/// The socket, noting reads in the connection's [`Activity`]. Holds the connection's [`Slot`], so that
/// the slot is given back when the socket closes, whoever holds it then (an upgraded WebSocket).
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The app, noting each request in the connection's [`Activity`], and telling each its client's address
/// (`ConnectInfo<SocketAddr>`).
struct Tracked {
    app: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    peer: SocketAddr,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Counted>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Counted>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, mut request: Request<Incoming>) -> ResponseFuture {
        request.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        let mut in_flight = self.activity.begin(request.version());
        let connect = request.method() == Method::CONNECT;
        let response = self.app.call(request);
        Box::pin(async move {
            let response = response.await?;
            if connect && response.status().is_success() {
                in_flight.activity.tunnel.store(true, Ordering::Relaxed);
            }
            in_flight.respond();
            Ok(response.map(|inner| Counted { inner, in_flight: Some(in_flight) }))
        })
    }
}

/// A response body, noting each pull; its request is in flight until it ends or is dropped.
struct Counted {
    inner: Body,
    in_flight: Option<InFlight>,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some(in_flight) = &self.in_flight {
            let activity = &in_flight.activity;
            activity.last_pull.store(activity.now_ms(), Ordering::Relaxed);
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            self.in_flight = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on one accepted connection (after its TLS handshake, if any) until it ends, a deadline
/// of `limits` passes, or `shutdown` (then gracefully). `slot` is the connection's place under the caps.
pub(crate) async fn serve<S>(
    io: S,
    slot: Slot,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { inner: io, activity: activity.clone(), _slot: slot });
    let service = Tracked { app: TowerToHyperService::new(app), activity: activity.clone(), peer };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // WebSockets over HTTP/2 (RFC 8441), as `axum::serve` allows.
    builder
        .http2()
        .enable_connect_protocol()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .max_concurrent_streams(MAX_H2_STREAMS);
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    let mut close_by: Option<Instant> = None;
    let result = loop {
        let mut next = activity.next(&limits, closing);
        if let Some(at) = close_by
            && next.is_none_or(|(t, _)| at < t)
        {
            next = Some((at, Expiry::Close));
        }
        // Far enough to never fire: a deadline that appears later wakes `changed`.
        let (at, why) = next.unwrap_or((Instant::now() + Duration::from_secs(86_400), Expiry::Idle));
        tokio::select! {
            result = conn.as_mut() => break result,
            () = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = activity.changed.notified() => {}
            () = tokio::time::sleep_until(at), if next.is_some() => {
                // The state may have moved since `at` was computed: only a deadline still passed counts.
                let still = activity.next(&limits, closing).is_some_and(|(t, w)| t <= Instant::now() && w == why);
                match why {
                    Expiry::Header | Expiry::Idle if still => {
                        tracing::debug!(%peer, reason = why.reason(), "closing the connection");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        if !activity.tunnel.load(Ordering::Relaxed) {
                            close_by = Some(Instant::now() + CLOSE_GRACE);
                        }
                    }
                    Expiry::Send if still => {
                        tracing::debug!(%peer, reason = why.reason(), "dropping the connection");
                        return;
                    }
                    Expiry::Close => {
                        tracing::debug!(%peer, reason = why.reason(), "dropping the connection");
                        return;
                    }
                    _ => {}
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

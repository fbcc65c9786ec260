//! Serving HTTP, plain or TLS, with deadlines and connection caps, so that connections that are held
//! without being used cannot exhaust the server (`docs/security.md`, "HTTP and connections").
//!
//! [`serve`] is the one accept loop: a connection over a cap ([`caps`]) is closed as soon as it is
//! accepted; the others get a tracked task that completes the TLS handshake, if any, within the header
//! timeout, then serves the app with hyper's `auto` connection (HTTP/1.1 with upgrades, so WebSockets
//! work, or HTTP/2) under the deadlines of [`conn`]. An accept error (out of descriptors) never ends the
//! loop: it waits [`ACCEPT_BACKOFF`] and tries again. Request bodies have deadlines of their own
//! ([`body`]), added to the routers that read them. [`open_files`] raises the process's own limit.

pub(crate) mod body;
mod caps;
mod conn;
pub mod open_files;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use self::caps::address_of;
use self::caps::{Caps, Refused, Slot};
use crate::config::{self, HttpLimits, TlsConfig};

/// How long the loop waits after an accept error before trying again. Descriptors come back as
/// connections close; meanwhile new ones wait in the listen queue.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Refusals are logged at most this often (a flood would otherwise fill the log).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The connection caps in force: `limits`' own, or the defaults derived from the open-file limit.
pub(crate) fn caps(limits: &HttpLimits) -> (usize, usize) {
    let total = limits.max_connections.unwrap_or_else(|| config::default_max_connections(open_files::limit()));
    let per_address = limits.max_connections_per_ip.unwrap_or_else(|| config::default_max_connections_per_ip(total));
    (total, per_address)
}

/// Accepts connections on `listener` and serves `app` on them (over TLS with `tls`) until `shutdown`
/// is cancelled, at most `total` at once and `per_address` from one address ([`caps`]); every
/// connection is a task of `tracker`, which outlives this loop until each has shut down.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    app: Router,
    limits: HttpLimits,
    (total, per_address): (usize, usize),
    tracker: TaskTracker,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let caps = Caps::new(total, per_address);
    let acceptor = tls.map(|tls| tls.acceptor());
    let mut failures: u64 = 0;
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we took its connection: nothing to wait for.
            Err(e) if is_connection_error(&e) => continue,
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(%error, backoff = ?ACCEPT_BACKOFF, "accepting connections failed; retrying");
                }
                failures += 1;
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        if failures > 0 {
            tracing::info!(failures, "accepting connections again");
            failures = 0;
        }
        let slot = match caps.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                refusals.note(refused, peer);
                // Dropped: closed before a byte is read.
                continue;
            }
        };
        // Small frames both ways: no Nagle delay on answers and pushes.
        let _ = tcp.set_nodelay(true);
        tracker.spawn(connection(tcp, peer, slot, acceptor.clone(), app.clone(), limits, shutdown.clone()));
    }
}

/// Errors of one connection, not of the listener: the next accept may succeed at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted)
}

/// Counts refused connections and logs them now and then.
#[derive(Default)]
struct Refusals {
    since_logged: u64,
    logged: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, why: Refused, peer: SocketAddr) {
        self.since_logged += 1;
        if self.logged.is_some_and(|at| at.elapsed() < REFUSAL_LOG_INTERVAL) {
            tracing::debug!(%peer, ?why, "connection refused");
            return;
        }
        let cap = match why {
            Refused::Total => "max_connections",
            Refused::PerAddress => "max_connections_per_ip",
        };
        tracing::warn!(%peer, cap, refused = self.since_logged, "refusing connections over a cap");
        self.since_logged = 0;
        self.logged = Some(Instant::now());
    }
}

/// One connection: the TLS handshake, if any, within the header timeout; then HTTP.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let Some(acceptor) = tls else {
        return conn::serve(tcp, slot, peer, app, limits, shutdown).await;
    };
    let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp));
    let stream = tokio::select! {
        () = shutdown.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "tls handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, timeout = ?limits.header_timeout, "tls handshake not completed in time");
                return;
            }
        },
    };
    conn::serve(stream, slot, peer, app, limits, shutdown).await;
}

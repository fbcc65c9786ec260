//! What the operator's tools ask of a running server: liveness (`/healthz`), readiness (`/readyz`) and,
//! on the metrics listener only, Prometheus metrics (`/metrics`, [`metrics`]).
//!
//! Liveness says the process serves HTTP. Readiness says a send would be committed now: the server is not
//! draining (shutdown began), the store takes a write within [`READY_TIMEOUT`] (an empty transaction
//! through the writer: it fails once a failed fsync stopped the embedded store, and while PostgreSQL is
//! unreachable), and the bus, when there is one, is connected. Checks are shared: a probe within
//! [`READY_CACHE`] of the last check gets its answer, and concurrent probes wait for one check, so
//! probes (from anyone who reaches the port) never add more than one write a second. A failed check is
//! named in the answer (`not ready: store`) and its error is logged, never sent.

pub(crate) mod census;
pub(crate) mod metrics;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use duet_core::Core;
use duet_core::store::Store;
use duet_proto::rest::response::{OutboxStatus, StatusReply};

use self::census::Census;

/// How long the store's write round trip may take before the server counts as not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a readiness answer is reused.
const READY_CACHE: Duration = Duration::from_secs(1);

/// Whether this node should be sent traffic; see the module's documentation.
pub(crate) struct Health {
    store: Arc<dyn Store>,
    bus: Option<Arc<duet_bus_nats::NatsBus>>,
    draining: AtomicBool,
    /// The last check's time and answer; held across a check so concurrent probes share it.
    last: tokio::sync::Mutex<Option<(Instant, Result<(), &'static str>)>>,
}

impl Health {
    pub(crate) fn new(store: Arc<dyn Store>, bus: Option<Arc<duet_bus_nats::NatsBus>>) -> Health {
        Health { store, bus, draining: AtomicBool::new(false), last: tokio::sync::Mutex::new(None) }
    }

    /// Turns readiness off for good: shutdown began.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        ::metrics::gauge!("duet_ready").set(0.0);
    }

    /// `Ok` when ready, else the name of the check that failed.
    pub(crate) async fn readiness(&self) -> Result<(), &'static str> {
        if self.draining.load(Ordering::SeqCst) {
            return Err("draining");
        }
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last
            && at.elapsed() < READY_CACHE
        {
            return answer;
        }
        let answer = self.check().await;
        ::metrics::gauge!("duet_ready").set(if answer.is_ok() { 1.0 } else { 0.0 });
        *last = Some((Instant::now(), answer));
        answer
    }

    async fn check(&self) -> Result<(), &'static str> {
        match tokio::time::timeout(READY_TIMEOUT, self.store.check_writable()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "not ready: the store takes no write");
                return Err("store");
            }
            Err(_) => {
                tracing::warn!(timeout = ?READY_TIMEOUT, "not ready: the store did not commit a write in time");
                return Err("store");
            }
        }
        if self.bus.as_ref().is_some_and(|bus| !bus.connected()) {
            tracing::warn!("not ready: the bus (NATS) is not connected");
            return Err("bus");
        }
        Ok(())
    }
}

/// `/healthz` and `/readyz`, on the API's listener and the metrics listener alike.
pub(crate) fn health_router(health: Arc<Health>) -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" })).route(
        "/readyz",
        get(move || {
            let health = health.clone();
            async move {
                match health.readiness().await {
                    Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
                    Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
                }
            }
        }),
    )
}

/// What `duet/status` reports, and what it reads it from.
pub(crate) struct Ops {
    pub core: Arc<Core>,
    pub store: Arc<dyn Store>,
    /// `embedded` or `postgres`.
    pub store_kind: &'static str,
    pub clustered: bool,
    pub health: Arc<Health>,
    pub census: Arc<Census>,
    /// Unix seconds.
    pub started_at: i64,
}

impl Ops {
    pub(crate) async fn status(&self) -> Result<StatusReply, duet_core::store::StoreError> {
        let now = self.core.clock().now_secs();
        let stats = self.store.stats().await?;
        let outbox = |(depth, oldest): (u64, Option<i64>)| OutboxStatus {
            depth,
            oldest_age_secs: oldest.map_or(0, |t| (now - t).max(0)),
        };
        let push_outbox = match self.core.push().enabled() {
            true => Some(outbox(self.store.push_backlog().await?)),
            false => None,
        };
        let callback_outbox = match self.core.notifier().stats() {
            Some(_) => Some(outbox(self.store.event_backlog().await?)),
            None => None,
        };
        let by_platform = self.census.snapshot();
        let config = self.core.config();
        Ok(StatusReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.started_at,
            uptime_secs: (now - self.started_at).max(0),
            ready: self.health.readiness().await.is_ok(),
            store: self.store_kind.to_owned(),
            clustered: self.clustered,
            connections: by_platform.iter().map(|(_, n)| n).sum(),
            connections_by_platform: by_platform
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(p, n)| (p.name().to_owned(), n))
                .collect(),
            accounts: stats.accounts,
            messages: stats.messages,
            store_bytes: stats.bytes,
            roaming_retention_secs: config.roaming_retention_secs,
            offline_retention_secs: config.offline_retention_secs,
            push_outbox,
            callback_outbox,
        })
    }
}

/// The admin page at `/admin` (`Config::admin_page`): one page that asks `duet/status` as the admin and
/// shows it; off, every path under `/admin` is 404.
pub(crate) fn admin_page(on: bool) -> Router {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    let file = |content_type: &'static str, body: &'static str| {
        get(move || async move {
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ];
            (headers, body).into_response()
        })
    };
    let gone = || axum::routing::any(|| async { StatusCode::NOT_FOUND });
    if !on {
        return Router::new().route("/admin", gone()).route("/admin/", gone()).route("/admin/{*path}", gone());
    }
    let page = include_str!("admin/index.html");
    Router::new()
        .route("/admin", file("text/html; charset=utf-8", page))
        .route("/admin/", file("text/html; charset=utf-8", page))
        .route("/admin/admin.js", file("text/javascript; charset=utf-8", include_str!("admin/admin.js")))
        .route("/admin/{*path}", gone())
}

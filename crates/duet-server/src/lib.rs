//! Duet's server as a library: [`run`] takes a validated [`Config`], a bound listener, a store, a clock
//! and a shutdown future, and serves until the future completes. `main` only parses flags, sets up
//! logging and waits for signals.
//!
//! * [`config`]: the raw TOML file shape and the validated [`Config`].
//! * [`rest`]: the Tencent-compatible `/v4/...` REST API.
//! * `ws`: the client protocol at `/v1/connect` (`docs/protocol.md`).
//! * [`media`]: uploads and downloads at `/v1/media`, the blob stores (local or S3), image renditions.
//! * [`msglog`]: the hourly message-log files (`open_msg_svc/get_history`), their signed download URLs
//!   at `/v1/msglog`, and the records `duet export` writes.
//! * [`tls`]: the server's own TLS (`https://`, `wss://`), when configured; plain HTTP otherwise.
//! * `demo`: demo mode's chat page at `/demo` and its UserSigs for anyone (`Config::demo`).
//! * `throttle`: rate limits on sends per user and failed logins per address and per account.
//! * `http`: the accept loop for both, with deadlines and connection caps; [`open_files`], the
//!   process's open-file limit.
//! * `ops`: `/healthz` and `/readyz` (on both listeners), and Prometheus metrics at `/metrics` on the
//!   metrics listener ([`Listeners::metrics`]).
//! * `logs`: the correlation ids and spans that tie log lines to a REST call or a connection.

pub mod config;
mod content;
mod demo;
mod http;
mod logs;
pub mod media;
pub mod msglog;
mod ops;
pub mod rest;
mod throttle;
pub mod tls;
mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use duet_core::clock::Clock;
use duet_core::media::{Media, MediaIndex};
use duet_core::store::Store;
use duet_core::{Core, retention};
use duet_store_sqlite::{SqliteMediaIndex, SqliteStore};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::{Config, StoreLocation};
pub use crate::http::open_files;

/// How long in-flight requests get to finish after shutdown is asked for.
const GRACE: Duration = Duration::from_secs(10);
/// Connections the metrics listener takes at once (scrapers and probes, not users).
const METRICS_CONNECTIONS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the store: {0}")]
    Store(#[from] duet_core::store::StoreError),
    #[error("starting the domain: {0}")]
    Core(#[from] duet_core::Error),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    #[error("push: {0}")]
    Push(#[from] duet_push::ConfigError),
    #[error("callbacks: {0}")]
    Callbacks(#[from] duet_callback::ConfigError),
    #[error("bus: {0}")]
    Bus(#[from] duet_bus_nats::BusError),
    #[error(transparent)]
    MediaStore(#[from] duet_blob_s3::S3Error),
}

/// What [`run`] serves on: the API (REST, WebSocket, media, demo, health) and, optionally, the operator's
/// metrics listener (`/metrics` and health; off by default).
pub struct Listeners {
    pub api: TcpListener,
    pub metrics: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(api: TcpListener) -> Listeners {
        Listeners { api, metrics: None }
    }
}

/// Binds a listener for [`run`] with a deep accept queue (4096), so login bursts are not dropped.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Opens the configured store: the embedded one under the data directory, or PostgreSQL (bringing its
/// schema up to date).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServerError> {
    match &config.store {
        StoreLocation::Embedded => {
            std::fs::create_dir_all(&config.data_dir)?;
            Ok(Arc::new(SqliteStore::open(&config.data_dir.join("duet.db"), config.durability)?))
        }
        StoreLocation::Postgres(url) => Ok(Arc::new(duet_store_postgres::PgStore::open(url).await?)),
    }
}

/// Opens the store under `data_dir` read-only, for `duet export` beside a running server: no migration,
/// no writer. Fails if the database does not exist.
pub fn open_reader(data_dir: &std::path::Path) -> Result<duet_store_sqlite::SqliteReader, ServerError> {
    Ok(duet_store_sqlite::SqliteReader::open(&data_dir.join("duet.db"))?)
}

/// Opens the media service over `config.media.dir`: blobs as files (or in S3, `config.media.store`),
/// metadata in `media.db` beside them (or in PostgreSQL, with that store). Blocking (SQLite, clearing the temporary directory): run on a
/// blocking thread.
fn open_media(
    config: &Config,
    clock: Arc<dyn Clock>,
    index: Option<Arc<dyn MediaIndex>>,
) -> Result<Arc<Media>, ServerError> {
    let dir = &config.media.dir;
    std::fs::create_dir_all(dir)?;
    let index = match index {
        Some(index) => index,
        None => Arc::new(SqliteMediaIndex::open(&dir.join("media.db"))?),
    };
    let blobs = media::open_blobs(&config.media.store, dir)?;
    let retention = config.core.roaming_retention_secs;
    Ok(Arc::new(Media::new(index, blobs, clock, config.media.limits, retention)))
}

/// Serves the REST API on `listeners` until `shutdown` completes, then stops every task it started: first
/// readiness turns off, and after `config.drain_delay` the listeners close and connections are told to go.
pub async fn run(
    config: Config,
    listeners: impl Into<Listeners>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let Listeners { api: listener, metrics: metrics_listener } = listeners.into();
    let index: Option<Arc<dyn MediaIndex>> = match &config.store {
        StoreLocation::Embedded => None,
        StoreLocation::Postgres(url) => Some(Arc::new(duet_store_postgres::PgMediaIndex::open(url).await?)),
    };
    let media = {
        let (config, clock) = (config.clone(), clock.clone());
        tokio::task::spawn_blocking(move || open_media(&config, clock, index))
            .await
            .map_err(|e| ServerError::Io(std::io::Error::other(e)))??
    };
    let providers = config.push_providers.providers()?;
    let mut core_config = config.core.clone();
    let (before_send, after_events) = match &config.callbacks {
        Some(c) => {
            let callbacks = Arc::new(duet_callback::Callbacks::new(c.clone(), config.core.sdkappid)?);
            core_config.notify = c.notify_config(&core_config.push.node);
            let before_send = callbacks
                .before_send_enabled()
                .then(|| callbacks.clone() as Arc<dyn duet_core::callbacks::BeforeSendHook>);
            (before_send, Some(callbacks as Arc<dyn duet_core::callbacks::EventSink>))
        }
        None => (None, None),
    };
    let adapters = duet_core::Adapters { media: Some(media.clone()), push: providers, before_send, after_events };
    // The message log reads the store apart from the domain: every message of an hour, for its file.
    let export_store = store.clone();
    let ops_store = store.clone();
    let core = Arc::new(Core::open(core_config, store, clock.clone(), adapters).await?);
    let token = CancellationToken::new();
    let bus = match &config.bus {
        Some(url) => Some(Arc::new(duet_bus_nats::NatsBus::start(url, core.clone(), token.clone()).await?)),
        None => None,
    };
    let tracker = TaskTracker::new();
    let clustered = bus.is_some();
    let health = Arc::new(ops::Health::new(ops_store.clone(), bus));
    let census = Arc::new(ops::census::Census::default());
    let store_kind = match &config.store {
        StoreLocation::Embedded => "embedded",
        StoreLocation::Postgres(_) => "postgres",
    };
    let ops = Arc::new(ops::Ops {
        core: core.clone(),
        store: ops_store.clone(),
        store_kind,
        clustered,
        health: health.clone(),
        census: census.clone(),
        started_at: clock.now_secs(),
    });
    // The metrics listener has a token and tracker of its own: it answers (readiness off) while the rest
    // drains, and stops last.
    let (ops_token, ops_tracker) = (CancellationToken::new(), TaskTracker::new());
    if let Some(listener) = metrics_listener {
        let exporter = ops::metrics::Exporter {
            handle: ops::metrics::install(),
            core: core.clone(),
            store: ops_store,
            census: census.clone(),
        };
        ops_tracker.spawn(exporter.clone().upkeep(ops_token.clone()));
        let router = ops::health_router(health.clone()).route(
            "/metrics",
            axum::routing::get(move || {
                let exporter = exporter.clone();
                async move {
                    let body = exporter.render().await;
                    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
                }
            }),
        );
        let metrics_listen = listener.local_addr()?;
        tracing::info!(%metrics_listen, "metrics are served at /metrics");
        let caps = (METRICS_CONNECTIONS, METRICS_CONNECTIONS);
        ops_tracker.spawn(http::serve(
            listener,
            None,
            router,
            config.http,
            caps,
            ops_tracker.clone(),
            ops_token.clone(),
        ));
    }
    ops_tracker.close();

    let (push, stop) = (core.push().clone(), token.clone());
    tracker.spawn(async move {
        // Stopped mid-send, a push stays in the outbox, released at the next start.
        tokio::select! {
            () = push.run() => {}
            () = stop.cancelled() => {}
        }
    });

    let (notifier, stop) = (core.notifier().clone(), token.clone());
    tracker.spawn(async move {
        // Stopped mid-call, an event stays in the outbox, released at the next start and sent again.
        tokio::select! {
            () = notifier.run() => {}
            () = stop.cancelled() => {}
        }
    });

    tracker.spawn(retention::run(core.clone(), config.purge_interval, token.clone().cancelled_owned()));

    let msglog = Arc::new(msglog::MsgLog::new(
        &config.data_dir,
        config.message_log,
        config.core.secret_key.expose(),
        clock.clone(),
    ));
    tracker.spawn(msglog.clone().run(export_store, token.clone().cancelled_owned()));

    let public_url = config.media.public_url.as_deref();
    let tls = config.tls.is_some();
    let throttle = Arc::new(throttle::Throttle::new(config.rate_limits));
    let ws_state = ws::WsState {
        core: core.clone(),
        throttle: throttle.clone(),
        tracker: tracker.clone(),
        shutdown: token.clone(),
        urls: media::Urls::new(public_url, tls),
        timeouts: config.ws,
        census,
    };
    let limits = config.http;
    let demo = if config.demo {
        let router =
            demo::router(core.clone(), throttle.clone(), config.core.sdkappid, config.core.secret_key.expose());
        http::body::deadline(router, limits.body_timeout)
    } else {
        demo::closed()
    };
    let uploads = media::router(core.clone(), throttle.clone(), media, &config.media, tls, tracker.clone());
    let app = axum::Router::new()
        .route(duet_proto::client::CONNECT_PATH, axum::routing::get(ws::connect))
        .with_state(ws_state)
        .merge(http::body::min_rate(uploads, limits.upload_min_bytes, limits.upload_window))
        .merge(msglog::router(msglog.clone()))
        .merge(demo)
        .merge(ops::health_router(health.clone()))
        .merge(ops::admin_page(config.admin_page))
        .merge(http::body::deadline(
            rest::router(core.clone(), ops, throttle, msglog, public_url, tls),
            limits.body_timeout,
        ));
    let addr = listener.local_addr()?;
    let (max_connections, max_connections_per_ip) = http::caps(&limits);
    tracing::info!(%addr, sdkappid = config.core.sdkappid, tls, demo = config.demo, max_connections, max_connections_per_ip, "duet is serving");
    let caps = (max_connections, max_connections_per_ip);
    let server = tracker.spawn(http::serve(listener, config.tls, app, limits, caps, tracker.clone(), token.clone()));
    tracker.close();

    shutdown.await;
    health.drain();
    if !config.drain_delay.is_zero() {
        tracing::info!(delay = ?config.drain_delay, "draining: not ready, still serving");
        tokio::time::sleep(config.drain_delay).await;
    }
    tracing::info!("shutting down");
    token.cancel();
    if tokio::time::timeout(GRACE, tracker.wait()).await.is_err() {
        tracing::warn!(grace = ?GRACE, "tasks still running after the grace period");
    }
    ops_token.cancel();
    let _ = tokio::time::timeout(GRACE, ops_tracker.wait()).await;
    match server.await {
        Ok(result) => result.map_err(ServerError::Io),
        Err(_) => Ok(()),
    }
}

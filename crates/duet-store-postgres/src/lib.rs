//! Duet's store on PostgreSQL, for running several nodes on one database (`duet serve --store
//! postgres://…`). It implements every store trait with the meaning the embedded SQLite store has (the
//! conformance suite, `duet_core::store::conformance`, runs unchanged against both).
//!
//! - Writes go through one group-commit task per node ([`writer`]): a batch of jobs, one transaction, one
//!   commit; the account rows of the users a batch touches are locked first, in uid order, which keeps the
//!   per-user sequence numbers gapless across nodes and rules out deadlocks among writers (ADR 0005).
//! - Reads take a connection from a pool and see every commit made before they began.
//! - The schema is versioned ([`MIGRATIONS`]) and brought up to date at open, under an advisory lock so
//!   that nodes starting together migrate once.
//!
//! `tokio-postgres` (with `deadpool-postgres` for the pool) rather than `sqlx`: the store writes its SQL by
//! hand anyway (the SQLite store's, ported), and tokio-postgres gives pipelining, prepared statements and
//! the binary protocol with a fraction of sqlx's dependencies and build time.

mod accounts;
mod callbacks;
mod media;
mod messages;
mod push;
mod relations;
mod search;
#[cfg(feature = "testing")]
pub mod testing;
mod writer;

pub use crate::media::PgMediaIndex;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use duet_core::store::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::writer::Writer;

/// The schema's versions, in order: version N is `MIGRATIONS[N - 1]`. Only ever appended to.
const MIGRATIONS: &[&str] = &[concat!(
    include_str!("sql/accounts.sql"),
    include_str!("sql/messages.sql"),
    include_str!("sql/search.sql"),
    include_str!("sql/relations.sql"),
    include_str!("sql/push.sql"),
    include_str!("sql/callbacks.sql"),
    include_str!("sql/media.sql"),
)];

/// The advisory lock held while migrating (any 64-bit number of our own: "duet" in ASCII).
const MIGRATION_LOCK: i64 = 0x6475_6574;

/// Connections in the pool (reads, the writer's, the media index's).
const POOL_SIZE: usize = 16;

/// Connections of a media index opened on its own ([`PgMediaIndex::open`]).
const MEDIA_POOL_SIZE: usize = 4;

/// How long a caller waits for a connection (or for one to be made) before its call fails: while
/// PostgreSQL is down, calls fail with an error after this instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The store's own failures (PostgreSQL's are `tokio_postgres::Error`s), as the source of a
/// [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("the database has schema version {found}, newer than this build knows ({known})")]
    NewerSchema { found: usize, known: usize },
    #[error("no connection to PostgreSQL")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("the store's URL: {0}")]
    Url(String),
    #[error("the group commit failed: {0}")]
    Batch(String),
    #[error("a stored value is invalid: {0}")]
    Invalid(String),
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> StoreError {
        StoreError::Backend(Box::new(f))
    }
}

pub(crate) fn backend(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// A stored value this version cannot read.
pub(crate) fn invalid(what: impl Into<String>) -> StoreError {
    Failure::Invalid(what.into()).into()
}

pub struct PgStore {
    pool: Pool,
    writer: Writer,
}

impl PgMediaIndex {
    /// The media index in the database at `url`, whose schema [`PgStore::open`] brought up to date, with a
    /// pool of its own (the media routes' reads do not wait behind the store's).
    pub async fn open(url: &str) -> Result<PgMediaIndex, StoreError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| Failure::Url(e.to_string()))?;
        Ok(PgMediaIndex::new(pool(config, MEDIA_POOL_SIZE)?))
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, with libpq's parameters, e.g.
    /// `?options=-csearch_path%3Dduet` for a schema of its own) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| Failure::Url(e.to_string()))?;
        PgStore::open_config(config).await
    }

    pub async fn open_config(config: tokio_postgres::Config) -> Result<PgStore, StoreError> {
        let pool = pool(config, POOL_SIZE)?;
        migrate(&mut get(&pool).await?).await?;
        let writer = Writer::start(pool.clone());
        Ok(PgStore { pool, writer })
    }

    /// The media index on the same database (and pool).
    pub fn media_index(&self) -> PgMediaIndex {
        PgMediaIndex::new(self.pool.clone())
    }

    /// A connection for reads.
    pub(crate) async fn reader(&self) -> Result<Object, StoreError> {
        get(&self.pool).await
    }
}

#[async_trait::async_trait]
impl duet_core::store::OpsStore for PgStore {
    async fn check_writable(&self) -> Result<(), StoreError> {
        // An empty job of the writer: it waits behind the sends queued before it, takes the writer's
        // connection, begins and commits, so it fails while the database is unreachable.
        self.writer.write(Vec::new(), |_, _| Box::pin(async { Ok(((), Vec::new())) })).await
    }

    async fn stats(&self) -> Result<duet_core::store::StoreStats, StoreError> {
        let c = self.reader().await?;
        let row = query_opt(
            &c,
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM messages), \
             pg_database_size(current_database())",
            &[],
        )
        .await?
        .ok_or_else(|| invalid("an aggregate returned no row"))?;
        let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
        Ok(duet_core::store::StoreStats { accounts: count(0), messages: count(1), bytes: Some(count(2)) })
    }
}

/// A pool of up to `size` connections to the database `config` names.
pub(crate) fn pool(mut config: tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    config.connect_timeout(CONNECT_TIMEOUT);
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| Failure::Url(e.to_string()))?)
}

pub(crate) async fn get(pool: &Pool) -> Result<Object, StoreError> {
    pool.get().await.map_err(|e| Failure::Pool(e).into())
}

/// Brings the schema up to date, in one transaction under [`MIGRATION_LOCK`].
async fn migrate(c: &mut Object) -> Result<(), StoreError> {
    let tx = c.transaction().await.map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(backend)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS duet_schema (version INTEGER NOT NULL)").await.map_err(backend)?;
    let found = match tx.query_opt("SELECT version FROM duet_schema", &[]).await.map_err(backend)? {
        Some(row) => usize::try_from(row.get::<_, i32>(0)).map_err(|_| invalid("a negative schema version"))?,
        None => {
            tx.execute("INSERT INTO duet_schema (version) VALUES (0)", &[]).await.map_err(backend)?;
            0
        }
    };
    if found > MIGRATIONS.len() {
        return Err(Failure::NewerSchema { found, known: MIGRATIONS.len() }.into());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        tx.batch_execute(sql).await.map_err(backend)?;
        let version = i32::try_from(i + 1).expect("few migrations");
        tx.execute("UPDATE duet_schema SET version = $1", &[&version]).await.map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

/// Runs a prepared (and cached, per connection) statement: its rows.
pub(crate) async fn query(
    c: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let st = c.prepare_cached(sql).await.map_err(backend)?;
    c.query(&st, params).await.map_err(backend)
}

/// [`query`] for at most one row.
pub(crate) async fn query_opt(
    c: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let st = c.prepare_cached(sql).await.map_err(backend)?;
    c.query_opt(&st, params).await.map_err(backend)
}

/// [`query`] for a statement without rows: how many rows it changed.
pub(crate) async fn execute(
    c: &deadpool_postgres::ClientWrapper,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let st = c.prepare_cached(sql).await.map_err(backend)?;
    c.execute(&st, params).await.map_err(backend)
}

/// Reads run in a transaction of their own when they take more than one statement and must see one
/// snapshot: `REPEATABLE READ, READ ONLY`.
pub(crate) async fn snapshot(c: &mut Object) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    c.build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)
}

/// [`query`] on a transaction (or any client): its rows.
pub(crate) async fn tx_query(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let st = c.prepare_cached(sql).await.map_err(backend)?;
    c.query(&st, params).await.map_err(backend)
}

/// [`execute`] on a transaction (or any client): how many rows it changed.
pub(crate) async fn tx_execute(
    c: &impl deadpool_postgres::GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let st = c.prepare_cached(sql).await.map_err(backend)?;
    c.execute(&st, params).await.map_err(backend)
}

impl PgStore {
    /// The writer, for the store's modules.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }
}

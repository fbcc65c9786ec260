//! Group commit on PostgreSQL: one task per node owns a write connection. Writes queue up as jobs; the
//! task takes every job waiting (up to a cap), runs them in one transaction, commits once, and only then
//! hands each job's sync-log entries to the delivery hook and answers its caller, in commit order. So
//! concurrent sends share one commit (one WAL flush, one round trip for it) instead of paying one each,
//! and nobody hears "ok" before the commit.
//!
//! **Lock order.** Each job names the users whose rows it changes. A batch's transaction first locks the
//! account rows of all of them, in uid order (`SELECT … FOR UPDATE`), before anything else: the per-user
//! counters (the sync log's sequence number, the conversation's) live in rows only written under those
//! locks, so two nodes writing for the same user at once take turns and number without gaps or collisions,
//! and since every writer takes the locks in one order they cannot deadlock on them (ADR 0005). A deadlock
//! or serialization failure PostgreSQL reports anyway (a row outside that rule) retries the batch.
//!
//! **Failures.** A job that fails aborts the transaction (PostgreSQL takes no more statements in it): the
//! batch is rolled back, and each of its jobs runs again alone, so only the failing one fails. A lost
//! connection fails the whole batch (a commit whose answer was lost may or may not have happened: the
//! caller's retry is deduplicated) and the next batch takes a new connection from the pool.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use deadpool_postgres::{Object, Pool};
use duet_core::model::Delivery;
use duet_core::store::{DeliveryHook, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use crate::{Failure, backend};

/// Most jobs one transaction takes, so one commit's latency stays bounded under load.
const MAX_BATCH: usize = 256;
/// Jobs waiting beyond this make writers wait (backpressure) instead of growing memory.
const QUEUE: usize = 4096;
/// Tries of a batch that PostgreSQL aborted for a deadlock or a serialization failure.
const RETRIES: usize = 5;

/// A connection of the pool, shared with the jobs of the batch running on it.
pub(crate) type Conn = Arc<Object>;

/// A boxed future, as jobs return.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The account rows a batch locked: UserID to uid, for the users that exist. A job looks up the uids of the
/// users it named here (a user missing here has no account).
#[derive(Debug, Default)]
pub(crate) struct Locks {
    uids: HashMap<String, i64>,
}

impl Locks {
    /// `user`'s uid, if it has an account (and the job named it).
    pub(crate) fn uid(&self, user: &str) -> Option<i64> {
        self.uids.get(user).copied()
    }
}

/// What a job's run gave: its answer (kept until the commit) and the sync-log entries it appended.
struct Ran {
    value: Box<dyn Any + Send>,
    deliveries: Vec<Delivery>,
}

type Run = Box<dyn Fn(Conn, Arc<Locks>) -> BoxFuture<Result<Ran, StoreError>> + Send + Sync>;

struct Job {
    work: Work,
    reply: Box<dyn FnOnce(Result<Ran, StoreError>) + Send>,
}

/// A job's part that runs in the transaction.
struct Work {
    /// The users whose account rows are locked before the job runs.
    users: Vec<String>,
    /// Runs inside the batch's transaction; may run more than once (a batch retried, or run again job by
    /// job after a failure), each time in a transaction that is then rolled back or committed.
    run: Run,
}

pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    hook: Arc<OnceLock<DeliveryHook>>,
}

impl Writer {
    pub(crate) fn start(pool: Pool) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let hook = Arc::new(OnceLock::new());
        tokio::spawn(run(pool, rx, hook.clone()));
        Writer { jobs: tx, hook }
    }

    /// Sets the delivery hook (once; later calls are ignored).
    pub(crate) fn set_hook(&self, hook: DeliveryHook) {
        let _ = self.hook.set(hook);
    }

    /// Runs `f` in the next group commit, after the account rows of `users` are locked, and returns its
    /// result once that commit is done; the entries it returns go to the delivery hook first. `f` may run
    /// more than once (see [`Job::run`]): it must clone what it takes from its captures.
    pub(crate) async fn write<R, F>(&self, users: Vec<String>, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Fn(Conn, Arc<Locks>) -> BoxFuture<Result<(R, Vec<Delivery>), StoreError>> + Send + Sync + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: Run = Box::new(move |c, locks| {
            let fut = f(c, locks);
            Box::pin(async move {
                let (value, deliveries) = fut.await?;
                Ok(Ran { value: Box::new(value), deliveries })
            })
        });
        let reply = Box::new(move |ran: Result<Ran, StoreError>| {
            let _ = tx.send(ran.map(|r| r.value));
        });
        self.jobs.send(Job { work: Work { users, run }, reply }).await.map_err(|_| StoreError::Closed)?;
        let value = rx.await.map_err(|_| StoreError::Closed)??;
        Ok(*value.downcast::<R>().expect("a job's answer has the job's type"))
    }
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Job>, hook: Arc<OnceLock<DeliveryHook>>) {
    let mut conn: Option<Conn> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("duet_store_commit_batch_size").record(batch.len() as f64);
        metrics::gauge!("duet_store_writer_queue_depth").set(rx.len() as f64);
        let (work, replies): (Vec<Work>, Vec<_>) = batch.into_iter().map(|j| (j.work, j.reply)).unzip();
        let began = std::time::Instant::now();
        let results = commit(&pool, &mut conn, &work).await;
        metrics::histogram!("duet_store_commit_seconds").record(began.elapsed());
        for (reply, result) in replies.into_iter().zip(results) {
            if let Ok(ran) = &result
                && !ran.deliveries.is_empty()
                && let Some(hook) = hook.get()
            {
                hook(ran.deliveries.clone());
            }
            reply(result);
        }
    }
}

/// How a try of a batch ended, when not committed.
enum Abort {
    /// PostgreSQL broke a deadlock or a serialization conflict: the same batch may simply run again.
    Retry(StoreError),
    /// A job failed (the transaction is rolled back).
    Job(StoreError),
    /// The connection failed or the commit's outcome is unknown: every job fails.
    Batch(StoreError),
}

/// Commits the batch, or as much of it as can be: one result per job, in order.
async fn commit(pool: &Pool, conn: &mut Option<Conn>, batch: &[Work]) -> Vec<Result<Ran, StoreError>> {
    let mut last = None;
    for _ in 0..RETRIES {
        let c = match connection(pool, conn).await {
            Ok(c) => c,
            Err(e) => return fail_all(batch.len(), &e),
        };
        match attempt(&c, batch).await {
            Ok(ran) => return ran.into_iter().map(Ok).collect(),
            Err(Abort::Retry(e)) => last = Some(e),
            Err(Abort::Batch(e)) => {
                *conn = None;
                return fail_all(batch.len(), &e);
            }
            Err(Abort::Job(e)) if batch.len() == 1 => return vec![Err(e)],
            Err(Abort::Job(..)) => return alone(pool, conn, batch).await,
        }
    }
    let e = last.unwrap_or(StoreError::Closed);
    fail_all(batch.len(), &e)
}

/// Runs each job of a batch in a transaction of its own (after one of them failed).
async fn alone(pool: &Pool, conn: &mut Option<Conn>, batch: &[Work]) -> Vec<Result<Ran, StoreError>> {
    let mut out = Vec::with_capacity(batch.len());
    for job in batch {
        let mut result = Err(StoreError::Closed);
        for _ in 0..RETRIES {
            let c = match connection(pool, conn).await {
                Ok(c) => c,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match attempt(&c, std::slice::from_ref(job)).await {
                Ok(mut ran) => {
                    result = Ok(ran.pop().expect("one job, one result"));
                    break;
                }
                Err(Abort::Retry(e)) => result = Err(e),
                Err(Abort::Job(e)) => {
                    result = Err(e);
                    break;
                }
                Err(Abort::Batch(e)) => {
                    *conn = None;
                    result = Err(e);
                    break;
                }
            }
        }
        out.push(result);
    }
    out
}

fn fail_all(n: usize, e: &StoreError) -> Vec<Result<Ran, StoreError>> {
    (0..n).map(|_| Err(again(e))).collect()
}

/// A copy of a batch's error for each of its callers.
fn again(e: &StoreError) -> StoreError {
    match e {
        StoreError::Closed => StoreError::Closed,
        StoreError::Backend(b) => StoreError::Backend(Box::new(Failure::Batch(b.to_string()))),
    }
}

/// The writer's connection, taking a new one from the pool when it has none or it closed.
async fn connection(pool: &Pool, conn: &mut Option<Conn>) -> Result<Conn, StoreError> {
    if let Some(c) = conn
        && !c.is_closed()
    {
        return Ok(c.clone());
    }
    let c = Arc::new(pool.get().await.map_err(|e| StoreError::Backend(Box::new(Failure::Pool(e))))?);
    *conn = Some(c.clone());
    Ok(c)
}

/// One try: begin, lock the batch's users in uid order, run every job, commit.
async fn attempt(c: &Conn, batch: &[Work]) -> Result<Vec<Ran>, Abort> {
    c.batch_execute("BEGIN").await.map_err(|e| Abort::Batch(backend(e)))?;
    let mut users: Vec<&str> = batch.iter().flat_map(|j| j.users.iter().map(String::as_str)).collect();
    users.sort_unstable();
    users.dedup();
    let locks = if users.is_empty() {
        Locks::default()
    } else {
        let rows = match lock(c, &users).await {
            Ok(rows) => rows,
            Err(e) => return Err(rollback(c, classify(e, false)).await),
        };
        Locks { uids: rows.iter().map(|r| (r.get::<_, String>(1), r.get::<_, i64>(0))).collect() }
    };
    let locks = Arc::new(locks);
    let mut ran = Vec::with_capacity(batch.len());
    for job in batch {
        match (job.run)(c.clone(), locks.clone()).await {
            Ok(r) => ran.push(r),
            Err(e) => return Err(rollback(c, classify(e, true)).await),
        }
    }
    match c.batch_execute("COMMIT").await {
        Ok(()) => Ok(ran),
        Err(e) if retryable(&e) => Err(Abort::Retry(backend(e))),
        Err(e) => Err(Abort::Batch(backend(e))),
    }
}

async fn lock(c: &Conn, users: &[&str]) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let st = c
        .prepare_cached("SELECT uid, user_id FROM accounts WHERE user_id = ANY($1) ORDER BY uid FOR UPDATE")
        .await
        .map_err(backend)?;
    c.query(&st, &[&users]).await.map_err(backend)
}

/// Ends a failed try's transaction; a rollback that fails means the connection is gone.
async fn rollback(c: &Conn, abort: Abort) -> Abort {
    match c.batch_execute("ROLLBACK").await {
        Ok(()) => abort,
        Err(e) => match abort {
            Abort::Batch(_) => abort,
            _ => Abort::Batch(backend(e)),
        },
    }
}

/// Whether a job's error is PostgreSQL's deadlock or serialization failure (retry), the connection's
/// (the batch fails; a connection that fails otherwise is caught by the rollback), or the job's own.
fn classify(e: StoreError, in_job: bool) -> Abort {
    if let StoreError::Backend(b) = &e
        && let Some(pg) = b.downcast_ref::<tokio_postgres::Error>()
    {
        if retryable(pg) {
            return Abort::Retry(e);
        }
        if pg.is_closed() {
            return Abort::Batch(e);
        }
    }
    if in_job { Abort::Job(e) } else { Abort::Batch(e) }
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

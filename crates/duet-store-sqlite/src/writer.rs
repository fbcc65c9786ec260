//! Group commit: one thread owns the write connection. Writes queue up as jobs; the thread takes every
//! job waiting (up to a cap), runs them in one transaction, commits once, and only then answers each
//! caller. Concurrent sends thus share one fsync instead of paying one each, and no caller hears "ok"
//! before its write is durable. Answering (waking each caller, and handing each batch's sync-log entries
//! to the delivery hook) happens on a second thread that takes the committed batches in commit order, so
//! the writer starts the next batch meanwhile.
//!
//! The writer thread owns the writer's memory ([`WriterState`]: caches, counters, the dedup index, the
//! search queue) and lends it to each job; after each batch it commits or rolls that memory back with the
//! transaction. After a batch is handed to the answering thread, the writer may index the messages queued
//! for search in a transaction of its own ([`crate::search::Queue`]): no caller waits for that commit, and
//! it is synced with the next batch's (a crash that loses it is made good at the next start).
//!
//! With fsync durability the commit itself does not sync (`synchronous = NORMAL`): the answering thread
//! syncs the WAL file ([`WalSync`]) before it answers, once for every batch committed since its last
//! sync. So the writer runs batch N+1 while batch N's sync is in the disk, instead of waiting for it, and
//! a slow sync makes the next one cover more batches. Nobody hears of a batch (answer or push) before that
//! sync, and reads wait for it too ([`Durable::settled`]): SQLite shows a commit to other connections
//! before it is synced, and a device that read a log entry lost in a power cut would skip the entry that
//! later takes its number. The first failed sync stops the store for good: the kernel reports a failed
//! writeback once, so later syncs could succeed over lost frames (PostgreSQL panics there for that reason).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use duet_core::model::Delivery;
use duet_core::store::{DeliveryHook, StoreError};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use crate::Failure;
use crate::state::WriterState;

/// Most jobs one transaction takes, so one commit's latency stays bounded under load.
const MAX_BATCH: usize = 512;
/// Jobs waiting beyond this make writers wait (backpressure) instead of growing memory.
const QUEUE: usize = 4096;

/// Runs after the batch's commit with its outcome, to answer the caller.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write: runs on the writer thread inside the batch's transaction, with the writer's memory; returns
/// how to answer.
type Job = Box<dyn FnOnce(&Connection, &mut WriterState) -> Reply + Send>;
/// How a batch ended (or why the store stopped), shared by every caller who hears of it.
type Outcome = Result<(), Arc<Failure>>;

pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    /// Gives the connection back when it ends, to be closed after the last sync.
    thread: Option<JoinHandle<Connection>>,
    /// Answers each batch's callers (and hands its entries to the hook) while the writer runs the next one.
    dispatcher: Option<JoinHandle<()>>,
    /// Where committed sync-log entries go, called on this thread in commit order.
    hook: Arc<OnceLock<DeliveryHook>>,
    durable: Arc<Durable>,
    /// How many messages of committed transactions wait for the search index, set by the writer after
    /// each commit and before it answers anyone.
    unindexed: Arc<AtomicUsize>,
}

/// How far commits are synced, for reads to wait on (fsync durability).
pub(crate) struct Durable {
    /// Whether commits are synced at all (fsync durability); without, nothing waits.
    syncing: bool,
    /// Batches numbered so far: the writer numbers a batch before its commit can show it to anyone.
    numbered: AtomicU64,
    /// The last batch number synced.
    synced: watch::Sender<u64>,
    /// Set at the first failed sync or checkpoint; the store takes no more writes and answers no more reads.
    failed: OnceLock<Arc<Failure>>,
}

impl Durable {
    /// `syncing`: whether commits are synced by the answering thread (fsync durability).
    pub(crate) fn new(syncing: bool) -> Durable {
        Durable { syncing, numbered: AtomicU64::new(0), synced: watch::Sender::new(0), failed: OnceLock::new() }
    }

    /// Waits until every batch committed so far is synced. A read calls it after reading, so that what it
    /// returns is durable.
    pub async fn settled(&self) -> Result<(), StoreError> {
        if !self.syncing {
            return Ok(());
        }
        let upto = self.numbered.load(Ordering::SeqCst);
        // Most reads find their commits synced already: no receiver to register then.
        if *self.synced.borrow() >= upto && !self.stopped() {
            return Ok(());
        }
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|&s| s >= upto || self.failed.get().is_some()).await;
        match self.failed.get() {
            Some(e) => Err(StoreError::Backend(Box::new(e.clone()))),
            None => Ok(()),
        }
    }

    /// Whether the store stopped (see [`Durable::fail`]).
    pub(crate) fn stopped(&self) -> bool {
        self.failed.get().is_some()
    }

    /// Stops the store: no more writes, and reads fail (fsync durability). The first reason stays.
    pub(crate) fn fail(&self, why: Arc<Failure>) {
        let _ = self.failed.set(why);
        // Wakes the reads waiting in `settled`.
        self.synced.send_modify(|_| {});
    }
}

impl Writer {
    /// `conn` must not checkpoint itself (`wal_autocheckpoint = 0`: the store's checkpoint thread does).
    /// `sync`: the WAL to sync before answering, when commits do not sync themselves (fsync durability).
    pub fn start(conn: Connection, sync: Option<WalSync>) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Answers>();
        let durable = Arc::new(Durable::new(sync.is_some()));
        let answering = durable.clone();
        let dispatcher = std::thread::Builder::new()
            .name("duet-sqlite-answers".into())
            .spawn(move || answer(&done_rx, sync, &answering))
            .map_err(|e| Failure::Io("spawning the dispatcher thread", e))?;
        let writing = durable.clone();
        let unindexed = Arc::new(AtomicUsize::new(0));
        let queued = unindexed.clone();
        let thread = std::thread::Builder::new()
            .name("duet-sqlite-writer".into())
            .spawn(move || run(conn, rx, done_tx, &writing, &queued))
            .map_err(|e| Failure::Io("spawning the writer thread", e))?;
        Ok(Writer {
            jobs: Some(tx),
            thread: Some(thread),
            dispatcher: Some(dispatcher),
            hook: Arc::new(OnceLock::new()),
            durable,
            unindexed,
        })
    }

    /// Makes the search index hold every message whose write was answered before this call: when messages
    /// wait in the search queue, a job of the next batch indexes them.
    pub async fn index_caught_up(&self) -> Result<(), StoreError> {
        if self.unindexed.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        self.write(|c, w| w.search.flush(c).map_err(crate::backend)).await
    }

    /// See [`Durable::settled`].
    pub async fn settled(&self) -> Result<(), StoreError> {
        self.durable.settled().await
    }

    /// The commits' durability state, for the checkpoint thread to stop the store on an I/O error.
    pub(crate) fn durable(&self) -> Arc<Durable> {
        self.durable.clone()
    }

    /// Sets the delivery hook (once; later calls are ignored).
    pub fn set_hook(&self, hook: DeliveryHook) {
        let _ = self.hook.set(hook);
    }

    /// Like [`Writer::write`] for operations that append sync-log entries: after the commit, and before
    /// any later job of the same batch is answered, the entries go to the delivery hook. So entries reach
    /// the hook in commit order, and a caller hears "done" only after its entries were handed over.
    pub async fn write_delivering<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &mut WriterState) -> Result<(R, Vec<Delivery>), StoreError> + Send + 'static,
    {
        let hook = self.hook.clone();
        self.submit(move |conn, state| {
            let result = run_job(conn, state, f);
            Box::new(move |committed: Result<(), StoreError>| match (committed, result) {
                (Ok(()), Ok((r, deliveries))) => {
                    if let Some(hook) = hook.get()
                        && !deliveries.is_empty()
                    {
                        hook(deliveries);
                    }
                    Ok(r)
                }
                (Ok(()), Err(e)) | (Err(e), _) => Err(e),
            })
        })
        .await
    }

    /// Runs `f` in the next group commit and returns its result once that commit is durable.
    /// If `f` fails without having written, the rest of the batch is unaffected; if it fails after writing,
    /// the whole batch is rolled back and every caller in it gets an error.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &mut WriterState) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(move |conn, state| {
            let result = run_job(conn, state, f);
            Box::new(move |committed: Result<(), StoreError>| committed.and(result))
        })
        .await
    }

    /// Queues a job that runs on the writer thread and returns the function that, given the commit's
    /// outcome, makes the caller's answer (run on the answering thread, in commit order).
    async fn submit<R>(
        &self,
        job: impl FnOnce(
            &Connection,
            &mut WriterState,
        ) -> Box<dyn FnOnce(Result<(), StoreError>) -> Result<R, StoreError> + Send>
        + Send
        + 'static,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let job: Job = Box::new(move |conn, state| {
            let answer = job(conn, state);
            Box::new(move |committed| {
                let _ = tx.send(answer(committed));
            })
        });
        let jobs = self.jobs.as_ref().ok_or(StoreError::Closed)?;
        jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued and exit.
        self.jobs.take();
        let conn = self.thread.take().and_then(|t| t.join().ok());
        // The writer's exit closed the dispatcher's channel: it syncs and answers what is left and exits.
        if let Some(t) = self.dispatcher.take() {
            let _ = t.join();
        }
        // Closed after the last sync. (The checkpoint thread's connection closes after this one: being the
        // last, it checkpoints the WAL and deletes it.)
        drop(conn);
    }
}

/// Runs one job inside the batch's transaction. Jobs check before they write (a refused send writes
/// nothing), so a failed job normally leaves the batch untouched; one that fails after writing (a storage
/// error) poisons the batch, which is then rolled back whole and every job in it answered with an error.
/// No per-job savepoint is needed, which keeps statement journals out of the common path.
fn run_job<R>(
    conn: &Connection,
    state: &mut WriterState,
    f: impl FnOnce(&Connection, &mut WriterState) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let before = conn.total_changes();
    let result = f(conn, state);
    if result.is_err() && conn.total_changes() != before {
        state.poison();
    }
    result
}

/// A committed (or rolled back) batch's answers, with the outcome and the batch's number.
type Answers = (Vec<Reply>, Outcome, u64);

/// The answering thread: batches arrive in commit order and are answered in that order. With `sync`, every
/// batch committed so far is made durable by one sync of the WAL before any of them is answered.
fn answer(done: &std::sync::mpsc::Receiver<Answers>, mut sync: Option<WalSync>, durable: &Durable) {
    let mut ready = Vec::new();
    while let Ok(first) = done.recv() {
        ready.push(first);
        ready.extend(done.try_iter());
        let upto = ready.iter().map(|(_, _, n)| *n).max().unwrap_or(0);
        let synced: Outcome = match (&mut sync, durable.failed.get()) {
            (_, Some(failed)) => Err(failed.clone()),
            (Some(wal), None) => wal.timed_sync().map_err(|e| {
                tracing::error!(
                    error = %e,
                    path = %wal.path.display(),
                    "sqlite: syncing the write-ahead log failed; the store takes no more writes"
                );
                let why = Arc::new(Failure::Sync(e));
                durable.fail(why.clone());
                why
            }),
            (None, None) => Ok(()),
        };
        if synced.is_ok() {
            durable.synced.send_replace(upto);
        }
        for (replies, committed, _) in ready.drain(..) {
            let outcome = committed.and(synced.clone());
            for reply in replies {
                reply(outcome.clone().map_err(|why| StoreError::Backend(Box::new(why))));
            }
        }
    }
}

/// The WAL file of the writer's database, synced from the answering thread (`fdatasync` through a
/// descriptor of its own: a sync covers every write to the file before it, whoever made them).
pub(crate) struct WalSync {
    path: PathBuf,
    file: File,
}

impl WalSync {
    /// The WAL of the database at `db` (the path SQLite resolved, symbolic links followed), opened now:
    /// the database must be in WAL mode, which creates the file.
    pub fn open(db: &std::path::Path) -> std::io::Result<WalSync> {
        let mut path = db.as_os_str().to_owned();
        path.push("-wal");
        let path = PathBuf::from(path);
        let file = File::open(&path)?;
        Ok(WalSync { path, file })
    }

    /// [`WalSync::sync`], its duration recorded (`duet_store_fsync_seconds`).
    fn timed_sync(&mut self) -> std::io::Result<()> {
        let began = std::time::Instant::now();
        let synced = self.sync();
        metrics::histogram!("duet_store_fsync_seconds").record(began.elapsed());
        synced
    }

    fn sync(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        // SQLite deletes the WAL only when the last connection closes, which the store's own connections
        // prevent; still, a descriptor of a replaced file would sync the wrong one, so check it is current.
        if std::fs::metadata(&self.path)?.ino() != self.file.metadata()?.ino() {
            self.file = File::open(&self.path)?;
        }
        self.file.sync_data()
    }
}

/// Indexes the search queue in a transaction of its own; a failure leaves the queue as it was, to be
/// indexed after a later batch (or by a job that needs it).
fn index_queue(conn: &Connection, state: &mut WriterState, unindexed: &AtomicUsize) {
    let indexed = conn
        .execute_batch("BEGIN IMMEDIATE")
        .and_then(|()| state.search.flush(conn))
        .and_then(|()| conn.execute_batch("COMMIT"));
    match indexed {
        Ok(()) => state.search.commit(),
        Err(e) => {
            tracing::error!(error = %e, queued = state.search.len(), "sqlite: indexing messages for search failed");
            let _ = conn.execute_batch("ROLLBACK");
            state.search.rollback();
        }
    }
    unindexed.store(state.search.len(), Ordering::SeqCst);
}

fn run(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    done: std::sync::mpsc::Sender<Answers>,
    durable: &Durable,
    unindexed: &AtomicUsize,
) -> Connection {
    let mut state = match WriterState::load(&conn) {
        Ok(state) => state,
        Err(e) => {
            // Without its index, dedup cannot be trusted: refuse every write rather than store duplicates.
            tracing::error!(error = %e, "sqlite: loading the dedup index; the store takes no writes");
            return conn;
        }
    };
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if durable.stopped() {
            // A sync or a checkpoint failed: nothing more is written (dropped jobs answer their callers `Closed`).
            batch.clear();
            continue;
        }
        metrics::histogram!("duet_store_commit_batch_size").record(batch.len() as f64);
        metrics::gauge!("duet_store_writer_queue_depth").set(rx.len() as f64);
        let batch_began = std::time::Instant::now();
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = began {
            tracing::error!(error = %e, "sqlite: cannot begin a transaction");
            for job in batch.drain(..) {
                // The job never ran; answer its caller with the failure.
                drop(job);
            }
            continue;
        }
        for job in batch.drain(..) {
            replies.push(job(&conn, &mut state));
        }
        // Numbered before the commit shows the batch to readers, so a read that sees it waits for its sync.
        let number = durable.numbered.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = if state.poisoned() {
            tracing::error!(jobs = replies.len(), "sqlite: a job failed after writing; rolling the batch back");
            let _ = conn.execute_batch("ROLLBACK");
            state.rollback();
            Err(Arc::new(Failure::RolledBack))
        } else {
            match conn.execute_batch("COMMIT") {
                Ok(()) => {
                    state.commit();
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(error = %e, jobs = replies.len(), "sqlite: group commit failed");
                    let _ = conn.execute_batch("ROLLBACK");
                    state.rollback();
                    Err(Arc::new(Failure::Commit(e)))
                }
            }
        };
        metrics::histogram!("duet_store_commit_seconds").record(batch_began.elapsed());
        // Before anyone hears of the batch: a search that follows an answer sees its messages as queued.
        unindexed.store(state.search.len(), Ordering::SeqCst);
        let answers = std::mem::replace(&mut replies, Vec::with_capacity(MAX_BATCH));
        if let Err(std::sync::mpsc::SendError((answers, _, _))) = done.send((answers, outcome, number)) {
            // The answering thread is gone (it never exits first unless it panicked): nothing syncs these
            // commits, so no caller may hear "ok".
            let why = Arc::new(Failure::AnswersStopped);
            durable.fail(why.clone());
            for reply in answers {
                reply(Err(StoreError::Backend(Box::new(why.clone()))));
            }
        }
        if state.search.due(!rx.is_empty()) && !durable.stopped() {
            index_queue(&conn, &mut state, unindexed);
        }
    }
    // Closing: what waits for the index is indexed now rather than at the next start.
    if state.search.len() > 0 && !durable.stopped() {
        index_queue(&conn, &mut state, unindexed);
    }
    conn
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use duet_core::store::StoreError;
    use rusqlite::Connection;

    use super::{WalSync, Writer};

    /// A write is answered with the outcome of the WAL sync that covers it, and the first failed sync
    /// stops the store: later writes and reads fail rather than trust later syncs.
    #[tokio::test]
    async fn writes_are_answered_after_their_wal_sync_and_a_failed_sync_stops_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let start = |name: &str| {
            let db = dir.path().join(name);
            let conn = Connection::open(&db).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
            )
            .unwrap();
            crate::migrate(&conn).unwrap();
            Writer::start(conn, Some(WalSync::open(&db).unwrap())).unwrap()
        };
        let insert = |c: &Connection, _: &mut _| {
            c.execute("INSERT INTO accounts (user_id, created_at) VALUES ('u', 0)", []).map_err(crate::backend)
        };

        let healthy = start("a.db");
        assert_eq!(healthy.write(insert).await.unwrap(), 1);
        healthy.settled().await.unwrap();

        // The WAL goes away under the store: its next sync fails.
        let broken = start("b.db");
        std::fs::remove_file(dir.path().join("b.db-wal")).unwrap();
        match broken.write(insert).await {
            Err(StoreError::Backend(e)) => assert!(e.to_string().contains("syncing the write-ahead log"), "{e}"),
            other => panic!("answered {other:?} without a sync"),
        }
        assert!(broken.write(insert).await.is_err(), "a write after a failed sync was taken");
        assert!(broken.settled().await.is_err(), "a read after a failed sync was answered");
    }

    #[test]
    fn wal_sync_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("duet.db");
        // No WAL: it cannot be opened.
        assert_eq!(WalSync::open(&db).err().map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
        std::fs::write(dir.path().join("duet.db-wal"), b"first").unwrap();
        let mut wal = WalSync::open(&db).unwrap();
        wal.sync().unwrap();
        let first = wal.file.metadata().unwrap().ino();
        // A replaced file is reopened rather than syncing the old one.
        std::fs::write(dir.path().join("other"), b"second").unwrap();
        std::fs::rename(dir.path().join("other"), dir.path().join("duet.db-wal")).unwrap();
        wal.sync().unwrap();
        let second = wal.file.metadata().unwrap().ino();
        assert_ne!(first, second);
        assert_eq!(second, std::fs::metadata(dir.path().join("duet.db-wal")).unwrap().ino());
    }
}

//! Checkpoints off the writer.
//!
//! Commits never sync the database file, so they are quick and the WAL fills fast; SQLite's automatic
//! checkpoint (copying ~1 000 pages into the database file and syncing it, inline on the writer, under the
//! write lock) would stall a commit every few dozen milliseconds. Here a thread with its own connection
//! copies the WAL back with `PASSIVE` checkpoints, which never block the writer; when the WAL has grown past
//! a bound anyway (a checkpoint can only restart the WAL when it found nothing newer to copy), a second
//! `PASSIVE` pass and then a `RESTART` checkpoint wait for the writer between two transactions and start
//! the WAL over, keeping it bounded. A `RESTART` holds the write lock while it waits for readers, so it
//! waits only as long as short reads take ([`wait_for_restart`]): a reader that holds an older snapshot for
//! long (a backup's copy, `backup::copy`) would hold the writer back as long. Such a `RESTART` gives up,
//! and the next is tried a second later ([`Restarts`]), or not at all while the WAL shows a snapshot pinned
//! far behind its end: the WAL grows until the reader is done.
//!
//! Both durabilities checkpoint here. With fsync durability a checkpoint syncs the WAL before it copies
//! (`synchronous = NORMAL`), so it never copies a commit the answering thread has not synced yet into the
//! database file without making it durable first.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use duet_core::store::StoreError;
use rusqlite::Connection;

use crate::writer::Durable;
use crate::{Failure, backend};

/// How often the WAL is copied back.
const EVERY: Duration = Duration::from_millis(20);
/// WAL frames (pages) beyond which the next checkpoint restarts the WAL (~256 MiB of 4 KiB pages). Under
/// light load the WAL restarts by itself (a `PASSIVE` pass catches up between writes); under sustained
/// load it grows to this, and each restart stalls the writer (it syncs the database file under the write
/// lock), so the bound is large enough to make restarts rare (64 against 256 MiB: docs/benchmarks.md,
/// "The WAL restarts past 256 MiB").
const RESTART_AT: i64 = 65_536;

/// After a `RESTART` that a reader held up, none is tried for this long (see [`Restarts`]).
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// When a pass restarts the WAL.
struct Restarts {
    /// WAL frames past which a pass restarts the WAL ([`RESTART_AT`]).
    at: i64,
    /// No `RESTART` before this ([`RESTART_PAUSE`] after the last): the last one was held up by a reader (or
    /// by the writer) past [`wait_for_restart`]'s bound.
    not_before: Option<Instant>,
}

impl Restarts {
    fn new(at: i64) -> Restarts {
        Restarts { at, not_before: None }
    }
}

/// The busy handler of the checkpoint thread's connection, which only `RESTART` checkpoints invoke (a
/// `PASSIVE` one never waits). A `RESTART` first waits for the write lock (the writer's transaction, a few
/// milliseconds), then, holding it, for the readers on the WAL: short reads finish within milliseconds. So
/// it retries every 100 µs for at most ~50 ms in all, not the seconds of [`crate::wait_briefly`]: past that
/// a reader holds an old snapshot for long (a backup), and waiting for it would hold the writer as long.
fn wait_for_restart(retries: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    retries < 500
}

pub(crate) struct Checkpointer {
    /// Dropped to stop the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`; the writer's connection must have
    /// `wal_autocheckpoint = 0`. An I/O error of a checkpoint stops the store (`durable`).
    pub fn start(path: &Path, durable: Arc<Durable>) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL;").map_err(backend)?;
        conn.busy_handler(Some(wait_for_restart)).map_err(backend)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("duet-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &stopped, &durable))
            .map_err(|e| Failure::Io("spawning the checkpoint thread", e))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>, durable: &Durable) {
    // Runs until the store is dropped (the sender goes, `Disconnected`), then once more.
    let mut restarts = Restarts::new(RESTART_AT);
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        if !pass(conn, durable, &mut restarts) {
            return;
        }
    }
    if !durable.stopped() {
        let _ = checkpoint(conn, "passive");
    }
}

/// One round of checkpoints, restarting the WAL past `restarts.at` frames; `false` once the store has
/// stopped (nothing more is copied then).
fn pass(conn: &Connection, durable: &Durable, restarts: &mut Restarts) -> bool {
    if durable.stopped() {
        // A sync or a checkpoint failed: copy nothing more into the database file.
        return false;
    }
    // Straight after PASSIVE checkpoints, a RESTART has only the frames committed meanwhile to copy (and
    // sync) while it holds the writer back, rather than 20 ms of commits; it also waits there for readers
    // still on the old WAL (reads are short) and syncs the database file.
    let result = checkpoint(conn, "passive").and_then(|(log, _)| {
        if log <= restarts.at || restarts.not_before.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        // A second PASSIVE pass first copies what was committed during the first (without holding the
        // writer), so the RESTART has only the commits of that pass's few milliseconds left to copy under the
        // lock (the writer's waits: docs/benchmarks.md, "A second PASSIVE pass comes before each RESTART").
        let (log, copied) = checkpoint(conn, "passive")?;
        // What that pass left uncopied is the commits it overlapped, unless a reader holds an older snapshot
        // (a backup's copy): then the RESTART could only wait for that reader while holding the writer.
        if log - copied > restarts.at / 16 {
            return Ok(());
        }
        let (busy, _, _) = checkpoint_busy(conn, "restart")?;
        restarts.not_before = busy.then(|| Instant::now() + RESTART_PAUSE);
        Ok(())
    });
    match result {
        Ok(()) => true,
        Err(e) if stops_the_store(&e) => {
            // A checkpoint that overlaps commits copies part of the WAL and marks it copied without syncing
            // the database file; a later one syncs it. When that sync fails, Linux reports the lost
            // writeback once: the next checkpoint would sync without error, mark everything copied and let
            // the WAL restart over the only durable copy of those pages. So the first I/O error stops the
            // store, as a failed sync of the WAL does.
            tracing::error!(error = %e, "sqlite: a checkpoint of the database failed; the store takes no more writes");
            durable.fail(Arc::new(Failure::Checkpoint(e)));
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "sqlite: checkpoint failed");
            true
        }
    }
}

/// Whether a checkpoint's error means the database file may not hold what the WAL says was copied: an
/// I/O error (a failed read, write or sync). Busy and locked (another connection) and a full disk (a write
/// refused before anything was written) are retried at the next checkpoint.
fn stops_the_store(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::SystemIoFailure))
}

/// Runs one checkpoint; returns the WAL's frames and how many of them are in the database file. Records
/// its duration (`duet_store_checkpoint_seconds`, by mode) and the WAL's size before it
/// (`duet_store_wal_bytes`).
fn checkpoint(conn: &Connection, mode: &'static str) -> rusqlite::Result<(i64, i64)> {
    checkpoint_busy(conn, mode).map(|(_, log, copied)| (log, copied))
}

/// [`checkpoint`], and whether it could not finish (a `RESTART` that gave up waiting).
fn checkpoint_busy(conn: &Connection, mode: &'static str) -> rusqlite::Result<(bool, i64, i64)> {
    let began = std::time::Instant::now();
    let frames: rusqlite::Result<(bool, i64, i64)> =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
        });
    metrics::histogram!("duet_store_checkpoint_seconds", "mode" => mode).record(began.elapsed());
    if let Ok((_, log, _)) = frames {
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap_or(4096);
        metrics::gauge!("duet_store_wal_bytes").set((log.max(0) * page) as f64);
    }
    frames
}

#[cfg(test)]
mod tests {
    use duet_core::model::NewAccount;
    use duet_core::store::AccountStore;

    use rusqlite::Connection;

    use crate::writer::Durable;
    use crate::{Durability, SqliteStore};

    /// An I/O error of a checkpoint (here a WAL cut short under it) stops the store; busy and a full disk
    /// do not.
    #[test]
    fn an_io_error_of_a_checkpoint_stops_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let writer = Connection::open(&db).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;").unwrap();
        writer.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(100000));").unwrap();
        let checkpointer = Connection::open(&db).unwrap();
        checkpointer.execute_batch("PRAGMA synchronous = NORMAL;").unwrap();

        let healthy = Durable::new(false);
        let mut restarts = super::Restarts::new(super::RESTART_AT);
        assert!(super::pass(&checkpointer, &healthy, &mut restarts), "a checkpoint of an intact WAL");
        assert!(!healthy.stopped());

        writer.execute_batch("INSERT INTO t VALUES (randomblob(100000));").unwrap();
        let wal = dir.path().join("a.db-wal");
        std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(4096).unwrap();
        let durable = Durable::new(false);
        assert!(
            !super::pass(&checkpointer, &durable, &mut restarts),
            "the checkpoint thread goes on after an I/O error"
        );
        assert!(durable.stopped());
        assert!(!super::pass(&checkpointer, &durable, &mut restarts), "a stopped store is checkpointed again");

        let code = |c| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(c), None);
        assert!(super::stops_the_store(&code(rusqlite::ffi::SQLITE_IOERR_FSYNC)));
        assert!(!super::stops_the_store(&code(rusqlite::ffi::SQLITE_BUSY)));
        assert!(!super::stops_the_store(&code(rusqlite::ffi::SQLITE_FULL)));
    }

    /// A database in WAL mode, with a writer's connection that never checkpoints and the checkpoint thread's
    /// connection, as `Checkpointer::start` makes it.
    fn wal_pair(db: &std::path::Path) -> (Connection, Connection) {
        let writer = Connection::open(db).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;").unwrap();
        writer.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        let checkpointer = Connection::open(db).unwrap();
        checkpointer.execute_batch("PRAGMA synchronous = NORMAL;").unwrap();
        checkpointer.busy_handler(Some(super::wait_for_restart)).unwrap();
        (writer, checkpointer)
    }

    /// ~2 000 frames of 4 KiB, past the tests' bound of 100.
    fn fill(writer: &Connection) {
        for _ in 0..20 {
            writer.execute_batch("INSERT INTO t VALUES (randomblob(400000));").unwrap();
        }
    }

    /// The WAL's frames, and how many are copied into the database file.
    fn frames(c: &Connection) -> (i64, i64) {
        super::checkpoint(c, "passive").unwrap()
    }

    /// A reader that holds an old snapshot for long (`backup::copy` of a large database) keeps checkpoints
    /// from copying the WAL past it. A pass that finds the WAL far ahead of what it could copy does not try
    /// to restart it: a `RESTART` could only wait for that reader while holding the write lock, and the
    /// writer's commits with it. Once the reader is done, the WAL restarts.
    #[test]
    fn a_restart_is_not_tried_while_a_snapshot_far_behind_the_wal_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, checkpointer) = wal_pair(&dir.path().join("a.db"));
        let durable = Durable::new(false);
        let mut restarts = super::Restarts::new(100);
        assert!(super::pass(&checkpointer, &durable, &mut restarts));

        let reader = Connection::open(dir.path().join("a.db")).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
        fill(&writer);
        assert!(super::pass(&checkpointer, &durable, &mut restarts));
        assert_eq!(restarts.not_before, None, "no RESTART was tried");
        let (log, copied) = frames(&checkpointer);
        assert!(
            log > 1_000 && copied < 10,
            "nothing past the reader's snapshot was copied: {log} frames, {copied} copied"
        );

        reader.execute_batch("COMMIT;").unwrap();
        assert!(super::pass(&checkpointer, &durable, &mut restarts));
        writer.execute_batch("INSERT INTO t VALUES (2);").unwrap();
        let (log, _) = frames(&checkpointer);
        assert!(log < 10, "the WAL restarted once the reader was done: the next commit starts it over ({log} frames)");
        assert!(!durable.stopped());
    }

    /// A reader whose snapshot is the WAL's end lets a checkpoint copy everything, but holds up the
    /// `RESTART`, which waits for it holding the write lock: it waits ~50 ms, not until the reader is done
    /// (with SQLite's usual busy handler, 5 to 10 s: the writer's commits with it), and the next passes leave
    /// the WAL alone for a while.
    #[test]
    fn a_restart_held_up_by_a_reader_gives_up_soon_and_pauses() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, checkpointer) = wal_pair(&dir.path().join("a.db"));
        let durable = Durable::new(false);
        let mut restarts = super::Restarts::new(100);
        fill(&writer);
        let reader = Connection::open(dir.path().join("a.db")).unwrap();
        reader.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();

        let started = std::time::Instant::now();
        assert!(super::pass(&checkpointer, &durable, &mut restarts));
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(1), "the RESTART waited {took:?} for the reader");
        let paused = restarts.not_before.expect("the RESTART gave up and pauses the next");
        writer.execute_batch("INSERT INTO t VALUES (2);").unwrap();
        let (log, copied) = frames(&checkpointer);
        assert!(log > 1_000, "the WAL was not restarted: the commit went on after it ({log} frames, {copied} copied)");
        assert!(super::pass(&checkpointer, &durable, &mut restarts));
        assert_eq!(restarts.not_before, Some(paused), "no RESTART tried again yet");

        reader.execute_batch("COMMIT;").unwrap();
        restarts.not_before = None; // as when the pause is over
        assert!(super::pass(&checkpointer, &durable, &mut restarts));
        assert_eq!(restarts.not_before, None, "restarted");
        writer.execute_batch("INSERT INTO t VALUES (3);").unwrap();
        assert!(frames(&checkpointer).0 < 10, "the next commit starts the WAL over");
        assert!(!durable.stopped());
    }

    /// The writer never checkpoints, so pages reach the database file only through the checkpoint thread.
    #[tokio::test]
    async fn stores_are_checkpointed_by_their_own_thread() {
        for durability in [Durability::Fsync, Durability::Relaxed] {
            checkpointed_by_their_own_thread(durability).await;
        }
    }

    async fn checkpointed_by_their_own_thread(durability: Durability) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let store = SqliteStore::open(&path, durability).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let accounts = (0..5_000).map(|i| NewAccount { id: format!("user{i}"), nick: None, face_url: None }).collect();
        store.import_accounts(accounts, 1_700_000_000).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(std::time::Instant::now() < deadline, "nothing was checkpointed into the database file");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        drop(store);
        let store = SqliteStore::open(&path, durability).unwrap();
        let exist = store.accounts_exist(vec!["user0".into(), "user4999".into()]).await.unwrap();
        assert_eq!(exist, [true, true]);
    }
}

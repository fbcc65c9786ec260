//! Duet's embedded store: SQLite in WAL mode, one writer thread doing group commit ([`writer`]), and a
//! small pool of read connections. See `docs/adr/0001-embedded-store-sqlite.md` for why.
//!
//! Durability: [`Durability::Fsync`] (the default) syncs the WAL before answering any group commit (one
//! sync for every batch committed meanwhile) and before a read returns what it read, so an acknowledged
//! or seen message survives power loss; [`Durability::Relaxed`] leaves syncing to checkpoints and
//! survives a process crash but not an OS crash.

pub mod backup;
mod callbacks;
mod checkpoint;
mod media;
mod ops;
mod push;
mod relations;
mod search;
mod state;
mod writer;

pub use crate::media::SqliteMediaIndex;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use duet_core::model::event::AfterEvent;
use duet_core::model::{
    ConversationSettings, ConversationView, ExportCursor, ExportPage, HistoryPage, HistoryQuery, Import, LogPage,
    MsgKey, Mute, NewAccount, ProfileValue, Purged, SearchPage, SearchQuery, SettingsChange, StoredMessage,
};
use duet_core::store::{
    AccountStore, Cutoffs, DeliveryHook, Edit, Imported, MessageExport, MessageStore, Modified, SendOutcome, SendPlan,
    StoreError, Withdrawn,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::writer::Writer;

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The WAL synced before a commit is acknowledged or read: survives power loss.
    #[default]
    Fsync,
    /// No fsync at commit: survives a process crash, not an OS crash.
    Relaxed,
}

const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
    include_str!("schema_7.sql"),
    include_str!("schema_8.sql"),
    include_str!("schema_9.sql"),
    include_str!("schema_10.sql"),
    include_str!("schema_11.sql"),
    include_str!("schema_12.sql"),
];
/// The schema version this build writes (`PRAGMA user_version` of `duet.db`); [`SqliteStore::open`]
/// migrates an older database forward to it and refuses a newer one.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();
/// The version whose migration creates the search index, which then indexes the messages stored before.
const SEARCH_INDEX_VERSION: usize = 11;
/// Read connections, and so reads running at once (see [`SqliteStore::read`]). Reads beyond wait in the
/// queue rather than open new connections (that costs far more than a read) or pile up blocking threads.
const READERS: usize = 8;

pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    /// Copies the WAL back into the database file on a thread of its own (see [`checkpoint`]).
    _checkpointer: checkpoint::Checkpointer,
}

struct Readers {
    path: PathBuf,
    state: Mutex<ReadState>,
    /// A connection for point lookups run in place on the calling task's thread (see
    /// [`SqliteStore::lookup`]); opened on first use.
    quick: Mutex<Option<Connection>>,
}

/// A read, boxed with the channel that carries its answer.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

#[derive(Default)]
struct ReadState {
    queue: std::collections::VecDeque<ReadJob>,
    idle: Vec<Connection>,
    /// Blocking tasks taking reads from `queue`.
    drainers: usize,
}

/// The busy handler of the connections that take the write lock (the writer, the checkpointer): retry
/// every 100 µs (in practice ~150 µs with the sleep's overshoot), 50 000 times: 5 to 10 s in all. SQLite's
/// own (`busy_timeout`) sleeps 1, 2, 5, 10 ms... between tries, so the writer waited well past the end of a
/// checkpoint's hold on the lock (docs/benchmarks.md, "Lock waits are retried every 100 µs").
pub(crate) fn wait_briefly(retries: i32) -> bool {
    std::thread::sleep(std::time::Duration::from_micros(100));
    retries < 50_000
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The store's own failures (SQLite's are `rusqlite::Error`s), as the source of a [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A step of the store's own that needs the operating system.
    #[error("{0}")]
    Io(&'static str, #[source] std::io::Error),
    #[error("the database has schema version {found}, newer than this build knows ({known})")]
    NewerSchema { found: usize, known: usize },
    #[error("syncing the write-ahead log failed; the store takes no more writes")]
    Sync(#[source] std::io::Error),
    #[error("a checkpoint of the database failed; the store takes no more writes")]
    Checkpoint(#[source] rusqlite::Error),
    #[error("the group commit was rolled back after a storage error")]
    RolledBack,
    #[error("the group commit failed")]
    Commit(#[source] rusqlite::Error),
    #[error("the store's answering thread stopped; the store takes no more writes")]
    AnswersStopped,
    #[error("the media index task failed")]
    MediaTask(#[source] tokio::task::JoinError),
}

impl From<Failure> for StoreError {
    fn from(f: Failure) -> StoreError {
        StoreError::Backend(Box::new(f))
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        // Commits do not sync here: with fsync durability the writer's answering thread syncs the WAL
        // before answering (see `writer`), with relaxed durability nothing does. (SQLite itself syncs the
        // new WAL header at the first commit after the WAL restarts, and the checkpoint thread syncs the WAL
        // before it copies frames, and the database file once it has copied the whole WAL.)
        // The writer's page cache is 4 MiB, not more: SQLite (3.50) moves B-tree pages it rebalances through
        // the page number of its lock page (at 1 GiB), and at the end of such a commit it then drops the
        // cache's pages past the database's end by walking the whole cache (`pcache1TruncateUnsafe`), which
        // costs in proportion to the cache. Pages past the cache are read again from the operating system's
        // page cache. (Measurements: docs/benchmarks.md, "The writer's page cache is 4 MiB".)
        // temp_store = MEMORY keeps statement journals off the disk. The writer never checkpoints: a thread of
        // its own does ([`checkpoint`]), in both durabilities, since SQLite's automatic checkpoints run inline
        // on the writer and sync the database file under the write lock, stalling commits (docs/benchmarks.md,
        // "Checkpoints run on their own thread, in both durabilities").
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096; PRAGMA wal_autocheckpoint = 0;",
        )
        .map_err(backend)?;
        conn.busy_handler(Some(wait_briefly)).map_err(backend)?;
        migrate(&conn)?;
        conn.execute_batch(relations::SCHEMA).map_err(backend)?;
        let indexed = search::catch_up(&conn).map_err(backend)?;
        if indexed > 0 {
            tracing::info!(messages = indexed, "sqlite: messages stored before a crash indexed for search");
        }
        conn.set_prepared_statement_cache_capacity(64);
        let readers = Arc::new(Readers {
            path: path.to_owned(),
            state: Mutex::new(ReadState::default()),
            quick: Mutex::new(None),
        });
        let sync = match durability {
            // The path SQLite resolved (symbolic links followed), where it keeps the WAL.
            Durability::Fsync => Some(
                writer::WalSync::open(conn.path().filter(|p| !p.is_empty()).map_or(path, Path::new))
                    .map_err(|e| Failure::Io("opening the write-ahead log to sync it", e))?,
            ),
            Durability::Relaxed => None,
        };
        let writer = Writer::start(conn, sync)?;
        let checkpointer = checkpoint::Checkpointer::start(path, writer.durable())?;
        Ok(SqliteStore { writer, readers, _checkpointer: checkpointer })
    }

    /// Runs a read on a pooled connection, off the async workers.
    ///
    /// Reads queue up and are taken by blocking tasks ("drainers"), each holding a connection and running
    /// reads back to back until the queue is empty: a burst of reads (a login storm) costs a few thread
    /// wake-ups, not one per read. A drainer is added when none runs or when the queue outgrows the ones
    /// running, up to [`READERS`].
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn).map_err(backend));
        });
        let start_drainer = {
            let mut state = self.readers.state.lock().unwrap_or_else(|e| e.into_inner());
            state.queue.push_back(job);
            let start = (state.drainers == 0 || state.queue.len() > 4 * state.drainers) && state.drainers < READERS;
            if start {
                state.drainers += 1;
            }
            start
        };
        if start_drainer {
            let readers = self.readers.clone();
            tokio::task::spawn_blocking(move || readers.drain());
        }
        let read = rx.await.map_err(|_| StoreError::Closed)??;
        // What was read may include commits whose sync is still running: answer once they are durable.
        self.writer.settled().await?;
        Ok(read)
    }
}

impl SqliteStore {
    /// A point lookup (one row by key: a few B-tree pages, read from the OS page cache in practice, since
    /// SQLite drops a reader's own cache whenever the WAL changed): run in place when the quick connection
    /// is free, else queued like any read. Handing a read to a blocking thread and its answer back costs two
    /// thread wake-ups, several times the lookup itself; a login storm does one of these per login. Only
    /// for lookups that cost microseconds: anything that scans stays in [`SqliteStore::read`].
    async fn lookup<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        match self.quick(f) {
            Ok(read) => {
                let read = read?;
                self.writer.settled().await?;
                Ok(read)
            }
            Err(f) => self.read(f).await,
        }
    }

    /// Runs `f` on the quick connection if it is free; gives `f` back if not.
    fn quick<R, F: FnOnce(&Connection) -> rusqlite::Result<R>>(&self, f: F) -> Result<Result<R, StoreError>, F> {
        let Ok(mut quick) = self.readers.quick.try_lock() else {
            return Err(f);
        };
        if quick.is_none() {
            match self.readers.open() {
                Ok(conn) => *quick = Some(conn),
                // Out of files, say: the queue's connections may still serve.
                Err(e) => tracing::warn!(error = %e, "sqlite: opening the quick read connection"),
            }
        }
        match quick.as_ref() {
            Some(conn) => Ok(f(conn).map_err(backend)),
            None => Err(f),
        }
    }
}

impl Readers {
    /// Runs queued reads until the queue is empty. Counted in `drainers` from before it was spawned.
    fn drain(&self) {
        /// The drainer's slot in `drainers`: given back with the connection when the queue is found empty
        /// (under the same lock, so a read queued after that starts a new drainer), or on unwinding.
        struct Slot<'a> {
            readers: &'a Readers,
            conn: Option<Connection>,
            held: bool,
        }
        impl Slot<'_> {
            fn release(&mut self, state: &mut ReadState) {
                if std::mem::take(&mut self.held) {
                    state.drainers -= 1;
                    if let Some(conn) = self.conn.take()
                        && state.idle.len() < READERS
                    {
                        state.idle.push(conn);
                    }
                }
            }
        }
        impl Drop for Slot<'_> {
            fn drop(&mut self) {
                if self.held {
                    let mut state = self.readers.state.lock().unwrap_or_else(|e| e.into_inner());
                    self.release(&mut state);
                }
            }
        }
        let mut slot = Slot { readers: self, conn: None, held: true };
        let idle = self.state.lock().unwrap_or_else(|e| e.into_inner()).idle.pop();
        match idle.map_or_else(|| self.open(), Ok) {
            Ok(conn) => slot.conn = Some(conn),
            Err(e) => {
                // Without a connection the queued reads cannot run: their callers get an error.
                tracing::error!(error = %e, "sqlite: opening a read connection");
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.queue.clear();
                slot.release(&mut state);
                return;
            }
        }
        loop {
            let job = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                match state.queue.pop_front() {
                    Some(job) => job,
                    None => return slot.release(&mut state),
                }
            };
            if let Some(conn) = slot.conn.as_ref() {
                job(conn);
            }
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(backend)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;").map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
    if version > MIGRATIONS.len() {
        return Err(Failure::NewerSchema { found: version, known: MIGRATIONS.len() }.into());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(&format!("BEGIN; {sql};")).map_err(backend)?;
        if i + 1 == SEARCH_INDEX_VERSION && version > 0 {
            let indexed = search::backfill(conn).map_err(backend)?;
            tracing::info!(messages = indexed, "sqlite: stored messages indexed for search");
        }
        conn.execute_batch(&format!("PRAGMA user_version = {}; COMMIT;", i + 1)).map_err(backend)?;
        tracing::info!(version = i + 1, "sqlite: schema migrated");
    }
    Ok(())
}

#[async_trait]
impl duet_core::store::OpsStore for SqliteStore {
    async fn check_writable(&self) -> Result<(), StoreError> {
        // An empty transaction through the writer: it waits behind the sends queued before it, and its
        // answer waits for the WAL sync that covers it, so it fails when the store stopped or the disk hangs
        // (the caller bounds the wait).
        self.writer.write(|_, _| Ok(())).await
    }

    async fn stats(&self) -> Result<duet_core::store::StoreStats, StoreError> {
        let path = self.readers.path.clone();
        let (accounts, messages) = self
            .read(|c| {
                let count = |table: &str| -> rusqlite::Result<u64> {
                    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0))
                        .map(|n| n.max(0) as u64)
                };
                Ok((count("accounts")?, count("messages")?))
            })
            .await?;
        let size = |suffix: &str| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).map(|m| m.len()).unwrap_or(0)
        };
        Ok(duet_core::store::StoreStats { accounts, messages, bytes: Some(size("") + size("-wal")) })
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn import_accounts(&self, accounts: Vec<NewAccount>, now: i64) -> Result<(), StoreError> {
        self.writer.write(move |c, w| ops::import_accounts(c, w, &accounts, now).map_err(backend)).await
    }

    async fn delete_accounts(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        self.writer.write(move |c, w| ops::delete_accounts(c, w, &ids).map_err(backend)).await
    }

    async fn accounts_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        self.read(move |c| ids.iter().map(|id| Ok(ops::uid(c, id)?.is_some())).collect()).await
    }

    async fn revoke_sigs(&self, id: String, before: i64) -> Result<bool, StoreError> {
        self.writer
            .write(move |c, _| {
                c.prepare_cached("UPDATE accounts SET revoked_before = ?2 WHERE user_id = ?1")
                    .and_then(|mut s| s.execute((&id, before)))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn revocations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare("SELECT user_id, revoked_before FROM accounts WHERE revoked_before > 0")?;
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await
    }

    async fn set_mute(&self, id: String, mute: Mute) -> Result<bool, StoreError> {
        self.writer
            .write(move |c, _| {
                c.prepare_cached("UPDATE accounts SET c2c_mute_until = ?2, group_mute_until = ?3 WHERE user_id = ?1")
                    .and_then(|mut s| s.execute((&id, mute.c2c_until, mute.group_until)))
                    .map(|n| n > 0)
                    .map_err(backend)
            })
            .await
    }

    async fn mutes(&self) -> Result<Vec<(String, Mute)>, StoreError> {
        self.read(|c| {
            let mut s = c.prepare(
                "SELECT user_id, c2c_mute_until, group_mute_until FROM accounts \
                 WHERE c2c_mute_until != 0 OR group_mute_until != 0",
            )?;
            s.query_map([], |r| Ok((r.get(0)?, Mute { c2c_until: r.get(1)?, group_until: r.get(2)? })))?.collect()
        })
        .await
    }

    async fn set_profile(
        &self,
        id: String,
        items: Vec<(String, ProfileValue)>,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError> {
        self.writer.write(move |c, w| ops::set_profile(c, w, &id, &items, event).map_err(backend)).await
    }

    async fn profiles(
        &self,
        ids: Vec<String>,
        tags: Vec<String>,
    ) -> Result<Vec<Option<Vec<(String, ProfileValue)>>>, StoreError> {
        self.read(move |c| ids.iter().map(|id| ops::profile(c, id, &tags)).collect()).await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    fn set_delivery_hook(&self, hook: DeliveryHook) {
        self.writer.set_hook(hook);
    }

    async fn send(&self, plan: SendPlan) -> Result<SendOutcome, StoreError> {
        // The body's search terms are read here, on the caller's thread, not in the writer's commit.
        let terms = Arc::new(search::Terms::of(&plan.msg.body));
        self.writer.write_delivering(move |c, w| ops::send_indexed(c, w, &plan, &terms).map_err(backend)).await
    }

    async fn import(&self, msg: Import, offline_until: i64, max_conversations: usize) -> Result<Imported, StoreError> {
        self.writer
            .write_delivering(move |c, w| ops::import(c, w, &msg, offline_until, max_conversations).map_err(backend))
            .await
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryPage, StoreError> {
        self.read(move |c| ops::history(c, &q)).await
    }

    async fn withdraw(
        &self,
        from: String,
        to: String,
        key: MsgKey,
        by: String,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<Withdrawn, StoreError> {
        self.writer
            .write_delivering(move |c, w| {
                ops::withdraw(c, w, &from, &to, key, &by, log_expire_at, event).map_err(backend)
            })
            .await
    }

    async fn set_read(
        &self,
        owner: String,
        peer: String,
        time: i64,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError> {
        self.writer
            .write_delivering(move |c, w| {
                ops::set_read(c, w, &owner, &peer, time, log_expire_at, event).map_err(backend)
            })
            .await
    }

    async fn ack_receipts(
        &self,
        reader: String,
        sender: String,
        keys: Vec<MsgKey>,
        time: i64,
        log_expire_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        self.writer
            .write_delivering(move |c, w| {
                ops::ack_receipts(c, w, &reader, &sender, &keys, time, log_expire_at).map_err(backend)
            })
            .await
    }

    async fn find_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        self.read(move |c| ops::find_messages(c, &owner, &peer, &keys)).await
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchPage, StoreError> {
        // The index follows the writes (`search::Queue`): first every message already acknowledged goes in.
        self.writer.index_caught_up().await?;
        self.read(move |c| search::search(c, &q)).await
    }

    async fn unread(&self, owner: String, peers: Vec<String>) -> Result<Vec<u64>, StoreError> {
        self.read(move |c| ops::unread(c, &owner, &peers)).await
    }

    async fn unread_total(&self, owner: String) -> Result<u64, StoreError> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT coalesce(sum(c.unread), 0) FROM conversations c JOIN accounts a ON a.uid = c.owner \
                 LEFT JOIN conversation_settings s ON s.owner = c.owner AND s.peer = c.peer \
                 WHERE a.user_id = ?1 AND coalesce(s.receive_opt, 0) = 0",
            )?
            .query_row([&owner], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
        })
        .await
    }

    async fn latest_seq(&self, user: String) -> Result<Option<u64>, StoreError> {
        self.lookup(move |c| {
            c.prepare_cached(&format!("SELECT {} FROM accounts a WHERE a.user_id = ?1", ops::LATEST_SEQ))?
                .query_row([&user], |r| r.get::<_, i64>(0))
                .optional()
                .map(|n| n.map(|n| n as u64))
        })
        .await
    }

    async fn log_after(&self, user: String, after: u64, limit: usize, max_bytes: usize) -> Result<LogPage, StoreError> {
        self.read(move |c| ops::log_after(c, &user, after, limit, max_bytes)).await
    }

    async fn conversations(&self, user: String, limit: usize) -> Result<Vec<ConversationView>, StoreError> {
        self.read(move |c| ops::conversations(c, &user, limit)).await
    }

    async fn update_conversation(
        &self,
        owner: String,
        peer: String,
        change: SettingsChange,
        now: i64,
        log_expire_at: i64,
    ) -> Result<Option<ConversationSettings>, StoreError> {
        self.writer
            .write_delivering(move |c, w| {
                ops::update_conversation(c, w, &owner, &peer, &change, now, log_expire_at).map_err(backend)
            })
            .await
    }

    async fn modify(&self, edit: Edit, log_expire_at: i64) -> Result<Modified, StoreError> {
        self.writer.write_delivering(move |c, w| ops::modify(c, w, &edit, log_expire_at).map_err(backend)).await
    }

    async fn delete_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
        log_expire_at: i64,
    ) -> Result<Vec<bool>, StoreError> {
        self.writer
            .write_delivering(move |c, w| {
                ops::delete_messages(c, w, &owner, &peer, &keys, log_expire_at).map_err(backend)
            })
            .await
    }

    async fn clear_conversation(
        &self,
        owner: String,
        peer: String,
        clear_history: bool,
        delete_conversation: bool,
        log_expire_at: i64,
    ) -> Result<bool, StoreError> {
        self.writer
            .write_delivering(move |c, w| {
                ops::clear_conversation(c, w, &owner, &peer, clear_history, delete_conversation, log_expire_at)
                    .map_err(backend)
            })
            .await
    }

    async fn purge(&self, cutoffs: Cutoffs) -> Result<Purged, StoreError> {
        self.writer.write(move |c, w| ops::purge(c, w, cutoffs).map_err(backend)).await
    }
}

#[async_trait]
impl MessageExport for SqliteStore {
    async fn export_messages(
        &self,
        start: i64,
        end: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        self.read(move |c| ops::export_messages(c, start, end, after, limit)).await
    }
}

/// A read-only opening of a database that a running server (another process) may be writing: for
/// `duet export`. It never migrates, never writes and starts no writer; SQLite's WAL mode lets it read
/// beside the server's writer. Reads run on blocking threads.
pub struct SqliteReader {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteReader {
    /// Opens the database at `path` read-only. Fails if it does not exist, or if its schema is newer
    /// than this build knows.
    pub fn open(path: &Path) -> Result<SqliteReader, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(backend)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000;").map_err(backend)?;
        let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
        if version > MIGRATIONS.len() {
            return Err(Failure::NewerSchema { found: version, known: MIGRATIONS.len() }.into());
        }
        Ok(SqliteReader { conn: Arc::new(Mutex::new(conn)) })
    }
}

#[async_trait]
impl MessageExport for SqliteReader {
    async fn export_messages(
        &self,
        start: i64,
        end: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            ops::export_messages(&conn, start, end, after, limit).map_err(backend)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duet_core::model::{LogEvent, NewAccount, ProfileValue, TAG_NICK};
    use duet_core::store::{AccountStore, MessageStore, SendOutcome};

    use super::{Durability, SqliteStore};

    /// Reads from many tasks at once, in waves that let the drainers run dry in between: every read is
    /// answered (none is left in the queue with no drainer to take it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_queued_read_is_answered_whatever_the_burst() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("duet.db"), Durability::Relaxed).unwrap());
        let accounts = (0..100).map(|i| NewAccount { id: format!("u{i}"), nick: None, face_url: None }).collect();
        store.import_accounts(accounts, 1).await.unwrap();
        for wave in [1, 3, 50, 2_000, 7, 500] {
            let reads = (0..wave).map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.accounts_exist(vec![format!("u{}", i % 100), "nobody".into()]).await })
            });
            let all = tokio::time::timeout(std::time::Duration::from_secs(20), join_all(reads)).await;
            let answers = all.expect("every read is answered");
            assert_eq!(answers.len(), wave);
            assert!(answers.iter().all(|a| matches!(a.as_deref(), Ok([true, false]))), "wave {wave}: {answers:?}");
        }
    }

    /// A batch whose job fails after writing is rolled back whole, and the writer's memory follows: the
    /// sync-log and conversation counters start again from what was committed, and the dedup index is put
    /// back, including the entry of an earlier send that the rolled-back one had taken over (same first 8
    /// bytes of key), so a retry of that earlier send is still recognised. Neither the uid of an account
    /// the batch created (its uid goes to the next account created) nor a profile it wrote is remembered.
    #[tokio::test]
    async fn a_rolled_back_send_leaves_no_trace_in_the_writers_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("duet.db"), Durability::Fsync).unwrap();
        let accounts = ["a", "b"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None }).to_vec();
        store.import_accounts(accounts, 1).await.unwrap();
        let t0 = 1_700_000_000_000;
        let first = sent(store.send(plan(1, t0)).await);
        assert_eq!((first.conv_seq, first.sender_log_seq), (1, 1));

        let mut colliding = plan(2, t0 + 500);
        colliding.dedup_key = plan(1, t0).dedup_key;
        colliding.dedup_key[15] = 9; // another key, same first 8 bytes: it takes the index entry over
        colliding.msg.to.push("c".into());
        let failed = store
            .writer
            .write(move |c, w| -> Result<(), super::StoreError> {
                let c_account = NewAccount { id: "c".into(), nick: None, face_url: None };
                super::ops::import_accounts(c, w, &[c_account], 1).map_err(super::backend)?;
                let nick = vec![(TAG_NICK.to_owned(), ProfileValue::Text("Ann".into()))];
                super::ops::set_profile(c, w, "a", &nick, None).map_err(super::backend)?;
                super::ops::send(c, w, &colliding).map_err(super::backend)?;
                Err(super::backend(rusqlite::Error::InvalidQuery))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(store.latest_seq("b".into()).await.unwrap(), Some(1), "nothing of the failed send was committed");

        let retry = sent(store.send(plan(1, t0 + 1_000)).await);
        assert!(retry.duplicate, "the earlier send's index entry is back");
        assert_eq!(retry.key, first.key);

        store.import_accounts(vec![NewAccount { id: "d".into(), nick: None, face_url: None }], 2).await.unwrap();
        let mut next = plan(3, t0 + 2_000);
        next.msg.to.extend(["c".into(), "d".into()]);
        let next = sent(store.send(next).await);
        assert!(!next.duplicate);
        assert_eq!((next.conv_seq, next.sender_log_seq), (2, 2), "counters go on from what was committed");
        assert_eq!(next.failed, ["c"], "the rolled-back account is unknown");
        let log = store.log_after("b".into(), 0, 10, usize::MAX).await.unwrap();
        assert_eq!((log.entries.len(), log.latest), (2, 2));
        let log = store.log_after("d".into(), 0, 10, usize::MAX).await.unwrap();
        assert_eq!((log.entries.len(), log.latest), (1, 1), "d has its own uid, not c's");
        let LogEvent::Message(m) = &log.entries[0].event else { panic!("{log:?}") };
        assert_eq!((m.to.as_str(), m.sender.nick.as_deref()), ("d", None), "a's nickname was rolled back");
    }

    /// The result of a send that was stored or was a retry.
    fn sent(outcome: Result<SendOutcome, super::StoreError>) -> duet_core::model::Sent {
        match outcome.unwrap() {
            SendOutcome::Sent(sent) | SendOutcome::Duplicate(sent) => sent,
            other => panic!("not sent: {other:?}"),
        }
    }

    /// A write waits for a write lock another connection holds (as a checkpoint does) instead of failing
    /// with `SQLITE_BUSY`.
    #[tokio::test]
    async fn writes_wait_for_a_lock_held_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            locked_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            other.execute_batch("COMMIT").unwrap();
        });
        locked_rx.recv().unwrap();
        let accounts = vec![NewAccount { id: "late".into(), nick: None, face_url: None }];
        store.import_accounts(accounts, 1).await.expect("the write waited for the lock");
        holder.join().unwrap();
        assert_eq!(store.accounts_exist(vec!["late".into()]).await.unwrap(), [true]);
    }

    /// Point lookups run in place on the quick connection, see every committed write, and still answer
    /// (through the read queue) while that connection is taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[expect(clippy::await_holding_lock, reason = "the test holds the quick connection on purpose")]
    async fn lookups_see_commits_and_queue_when_the_quick_connection_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("duet.db"), Durability::Fsync).unwrap();
        let accounts = ["a", "b"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None }).to_vec();
        store.import_accounts(accounts, 1).await.unwrap();
        assert_eq!(store.latest_seq("b".into()).await.unwrap(), Some(0));
        assert_eq!(store.latest_seq("nobody".into()).await.unwrap(), None);
        assert!(store.readers.quick.lock().unwrap().is_some(), "the lookups ran in place");

        let t0 = 1_700_000_000_000;
        for seq in 1..=3 {
            sent(store.send(plan(seq, t0 + i64::from(seq))).await);
            assert_eq!(store.latest_seq("b".into()).await.unwrap(), Some(u64::from(seq)), "after send {seq}");
        }

        let taken = store.readers.quick.lock().unwrap();
        let queued = tokio::time::timeout(std::time::Duration::from_secs(10), store.latest_seq("a".into())).await;
        assert_eq!(queued.expect("answered through the queue").unwrap(), Some(3));
        drop(taken);
    }

    /// Two sends racing across a second boundary can reach the writer in the other order: the one stored
    /// second is dated no earlier than the first, so history's order (time, MsgSeq) is the storing order,
    /// and the conversation's MsgSeqs the store picks keep growing.
    #[tokio::test]
    async fn a_send_stored_after_a_later_dated_one_takes_its_second() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("duet.db"), Durability::Fsync).unwrap();
        let accounts = ["a", "b"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None }).to_vec();
        store.import_accounts(accounts, 1).await.unwrap();
        let t = 1_700_000_001;
        let mut later = plan(1, t * 1000);
        later.msg.seq = None;
        let mut earlier = plan(2, t * 1000 - 1);
        earlier.msg.seq = None;
        let first = sent(store.send(later).await);
        let second = sent(store.send(earlier).await);
        assert_eq!((first.key.time, second.key.time), (t, t));
        assert_eq!((first.key.seq, second.key.seq), (1, 2));
        assert_eq!((first.conv_seq, second.conv_seq), (1, 2));
    }

    fn plan(seq: u32, now_ms: i64) -> duet_core::store::SendPlan {
        use duet_core::model::{Outgoing, SenderCopy};
        let mut dedup_key = [0u8; 16];
        dedup_key[..4].copy_from_slice(&seq.to_le_bytes());
        duet_core::store::SendPlan {
            msg: Outgoing {
                from: "a".into(),
                to: vec!["b".into()],
                seq: Some(seq),
                random: seq,
                body: r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"x"}}]"#.into(),
                cloud_custom_data: String::new(),
                push_info: None,
                lifetime_secs: 604_800,
                sender_copy: SenderCopy::Sync,
                no_unread: false,
                no_last_msg: false,
                need_read_receipt: false,
            },
            time: now_ms / 1000,
            dedup_key,
            dedup_since_ms: now_ms - 600_000,
            now_ms,
            offline_until: now_ms / 1000 + 604_800,
            max_conversations: 100,
            push: false,
            after_send: None,
        }
    }

    /// The dedup index (in memory on the writer) follows the table: the purge cuts rows and their entries,
    /// a reopened store reloads what is left, and a retry within the window is still recognised.
    #[tokio::test]
    async fn the_dedup_index_follows_purges_and_reopens() {
        use duet_core::store::Cutoffs;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        let accounts = ["a", "b"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None }).to_vec();
        store.import_accounts(accounts, 1).await.unwrap();
        let t0 = 1_700_000_000_000;
        assert!(!sent(store.send(plan(1, t0)).await).duplicate);
        assert!(!sent(store.send(plan(2, t0 + 700_000)).await).duplicate);
        assert!(sent(store.send(plan(2, t0 + 701_000)).await).duplicate, "a retry within the window");

        // The first send's row is past the window and goes; the second's stays.
        let cut = Cutoffs { roaming_before: 0, offline_before: 0, dedup_before_ms: t0 + 100_000 };
        assert_eq!(store.purge(cut).await.unwrap().dedup, 1);
        assert!(sent(store.send(plan(2, t0 + 701_500)).await).duplicate, "the purge kept what is in the window");
        let mut old = plan(1, t0 + 702_000);
        old.dedup_since_ms = 0; // even a window reaching back that far finds nothing: the row is gone
        assert!(!sent(store.send(old).await).duplicate);

        drop(store);
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        let retry = sent(store.send(plan(2, t0 + 703_000)).await);
        assert!(retry.duplicate, "recognised after reopening");
        assert_eq!(retry.key.time, (t0 + 700_000) / 1000, "with the first send's key");
    }

    /// A database of version 2 in which a deleted account's uid (the largest) is still named by messages:
    /// migrated, it gives that uid to no new account, which would inherit those messages.
    #[tokio::test]
    async fn migrating_counts_the_uids_of_deleted_accounts_as_given() {
        use duet_core::model::HistoryQuery;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (i, sql) in super::MIGRATIONS[..2].iter().enumerate() {
            conn.execute_batch(&format!("BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;", i + 1)).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO accounts (uid, user_id, created_at) VALUES (1, 'a', 0); \
             INSERT INTO messages (sender, receiver, lo, hi, time, seq, random, conv_seq, body, cloud_custom_data, flags) \
               VALUES (2, 1, 1, 2, 1000, 1, 1, 1, 'from the deleted account', '', 0); \
             INSERT INTO threads (lo, hi, seq, key_seq, last_time) VALUES (1, 2, 1, 1, 1000);",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        store.import_accounts(vec![NewAccount { id: "m".into(), nick: None, face_url: None }], 1).await.unwrap();
        let q = HistoryQuery {
            operator: "m".into(),
            peer: "a".into(),
            min_time: 0,
            max_time: i64::MAX,
            before: None,
            limit: 10,
        };
        let page = store.history(q).await.unwrap();
        assert_eq!((page.messages.len(), page.conv_seq), (0, 0), "m inherited uid 2: {page:?}");
    }

    /// The search index follows the messages: a row per message stored (behind its send), replaced by an
    /// edit, removed by a recall, a purge and the deletion of an account; a database from before the index
    /// gets its stored messages indexed when it migrates.
    #[tokio::test]
    async fn the_search_index_holds_a_row_per_message_that_can_be_found() {
        use duet_core::model::{MsgKey, SearchQuery};
        use duet_core::store::{Cutoffs, Edit};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        let accounts = ["a", "b", "c"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None }).to_vec();
        store.import_accounts(accounts, 1).await.unwrap();
        let t0 = 1_700_000_000_000;
        let keys: Vec<MsgKey> = futures_keys(&store, t0).await;
        let rows = |path: &std::path::Path| {
            let c = rusqlite::Connection::open(path).unwrap();
            c.query_row("SELECT count(*) FROM message_search", [], |r| r.get::<_, i64>(0)).unwrap()
        };
        // The sends' messages may still wait in the writer's queue; an edit of one indexes the queue first.
        let edit = Edit {
            from: "a".into(),
            to: "b".into(),
            key: keys[0],
            body: Some(r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"y"}}]"#.into()),
            cloud_custom_data: None,
            base_version: None,
        };
        store.modify(edit, i64::MAX).await.unwrap();
        assert_eq!(rows(&path), 4, "the queue is indexed, and an edit replaces its row");
        let found = |keyword: &str| {
            let q = SearchQuery {
                owner: "a".into(),
                keywords: vec![keyword.into()],
                peer: None,
                sender: None,
                types: Vec::new(),
                min_time: 0,
                max_time: i64::MAX,
                after: None,
                limit: 10,
            };
            let store = &store;
            async move {
                let page = store.search(q).await.unwrap();
                let mut keys: Vec<MsgKey> = page.hits.into_iter().map(|h| h.message.key).collect();
                keys.sort_by_key(|k| (k.time, k.seq));
                keys
            }
        };
        assert_eq!(found("y").await, [keys[0]], "the edited text is found");
        assert_eq!(found("x").await, keys[1..], "the text it replaced is not");
        store.withdraw("a".into(), "b".into(), keys[1], "a".into(), i64::MAX, None).await.unwrap();
        assert_eq!(rows(&path), 3, "a recall removes it");
        assert_eq!(store.delete_accounts(vec!["c".into()]).await.unwrap(), [true]);
        assert_eq!(rows(&path), 2, "so does the deletion of its sender's account");
        let cut = Cutoffs { roaming_before: t0 / 1000 + 1, offline_before: 0, dedup_before_ms: 0 };
        assert_eq!(store.purge(cut).await.unwrap().messages, 3, "the recalled and c's messages too");
        assert_eq!(rows(&path), 1, "and the purge its rows");
        let q = SearchQuery {
            owner: "a".into(),
            keywords: vec!["x".into()],
            peer: None,
            sender: None,
            types: Vec::new(),
            min_time: 0,
            max_time: i64::MAX,
            after: None,
            limit: 10,
        };
        assert_eq!(store.search(q.clone()).await.unwrap().hits.len(), 1);
        drop(store);

        // A database of version 10: migrating indexes what it holds (but recalled messages).
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER messages_search_delete; DROP TABLE message_search; DROP TABLE search_mark; \
             PRAGMA user_version = 10; UPDATE messages SET flags = 0;",
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        assert_eq!(rows(&path), 1);
        assert_eq!(store.search(q).await.unwrap().hits.len(), 1);
    }

    /// A crash loses the writer's search queue (messages stored and answered, not yet indexed): opening the
    /// store again indexes the messages stored after the last one indexed, and a search finds them. A store
    /// that closes indexes its queue first.
    #[tokio::test]
    async fn messages_a_crash_left_out_of_the_index_are_indexed_at_the_next_start() {
        use duet_core::model::SearchQuery;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("duet.db");
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        let accounts = ["a", "b"].map(|id| NewAccount { id: id.into(), nick: None, face_url: None }).to_vec();
        store.import_accounts(accounts, 1).await.unwrap();
        let t0 = 1_700_000_000_000;
        let q = SearchQuery {
            owner: "b".into(),
            keywords: vec!["x".into()],
            peer: None,
            sender: None,
            types: Vec::new(),
            min_time: 0,
            max_time: i64::MAX,
            after: None,
            limit: 10,
        };
        for n in 1..=3 {
            sent(store.send(plan(n, t0 + i64::from(n))).await);
            assert_eq!(store.search(q.clone()).await.unwrap().hits.len(), n as usize, "a search sees every send");
        }
        sent(store.send(plan(4, t0 + 4)).await);
        drop(store);
        let db = |sql: &str| {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap()
        };
        assert_eq!(db("SELECT count(*) FROM message_search"), 4, "closing indexed the queue");
        assert_eq!(db("SELECT upto FROM search_mark"), db("SELECT max(id) FROM messages"));

        // What a crash leaves: the last two messages stored, the transaction that indexed them lost.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DELETE FROM message_search WHERE rowid IN (SELECT id FROM messages ORDER BY id DESC LIMIT 2); \
                 UPDATE search_mark SET upto = (SELECT max(id) - 2 FROM messages);",
            )
            .unwrap();
        assert_eq!(db("SELECT count(*) FROM message_search"), 2);
        let store = SqliteStore::open(&path, Durability::Fsync).unwrap();
        assert_eq!(db("SELECT count(*) FROM message_search"), 4, "indexed at start");
        assert_eq!(db("SELECT upto FROM search_mark"), db("SELECT max(id) FROM messages"));
        assert_eq!(store.search(q).await.unwrap().hits.len(), 4);
    }

    /// Four messages: a to b at `t0` (two), c to a at `t0` and a to b a second later, all with the text "x".
    async fn futures_keys(store: &SqliteStore, t0: i64) -> Vec<duet_core::model::MsgKey> {
        let mut keys = Vec::new();
        for (n, from, to, at) in [(1, "a", "b", t0), (2, "a", "b", t0), (3, "c", "a", t0), (4, "a", "b", t0 + 1_000)] {
            let mut p = plan(n, at);
            p.msg.from = from.into();
            p.msg.to = vec![to.into()];
            keys.push(sent(store.send(p).await).key);
        }
        keys
    }

    async fn join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for h in handles.collect::<Vec<_>>() {
            out.push(h.await.unwrap());
        }
        out
    }
}

//! Copies of the embedded databases for `duet backup` and `duet restore`: [`copy`] takes one consistent
//! snapshot of a SQLite database file (the store's `duet.db`, the media index's `media.db`) while another
//! process, a running server, keeps writing it; [`check`] verifies a copy before it is put in place;
//! [`store_summary`] and [`media_summary`] say what a copy holds.
//!
//! A copy is SQLite's online backup API run in a single step from a read-only connection: the step is one
//! read transaction, so the copy is the database as of one commit, and in WAL mode that reader never
//! blocks the server's writer. (Copying a few pages per step, as `rusqlite::Connection::backup` does,
//! starts over whenever another connection commits between two steps: under a steady stream of sends it
//! would never finish.) While the copy runs, checkpoints cannot copy the WAL past the copy's snapshot, so
//! the WAL grows by what is committed meanwhile, and a `RESTART` checkpoint cannot start it over:
//! `checkpoint` gives such a `RESTART` up within ~50 ms rather than hold the server's writer until the copy
//! ends.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::{MIGRATIONS, SCHEMA_VERSION};

/// How long a copy waits for a source that is busy (recovering its WAL, say) before it gives up.
const BUSY_FOR: Duration = Duration::from_secs(30);

/// Why a copy or a check failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{} exists already", .0.display())]
    Exists(PathBuf),
    #[error("opening {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("copying {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("copying {}: the database stayed busy for {} s", .0.display(), BUSY_FOR.as_secs())]
    Busy(PathBuf),
    #[error("{} is not a SQLite database", path.display())]
    NotADatabase {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{} is damaged (integrity check: {problem})", path.display())]
    Damaged { path: PathBuf, problem: String },
    #[error("{} has schema version {found}, newer than this build knows ({known}): restore it with a newer duet", path.display())]
    NewerSchema { path: PathBuf, found: usize, known: usize },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// What [`copy`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// The copy's size in bytes.
    pub bytes: u64,
}

/// Copies the SQLite database at `src` to a new file `dest` (which must not exist), consistently while
/// other connections (other processes) write `src`: the copy holds exactly the transactions committed
/// before it began. Blocking: it reads the whole database. The copy is not synced to disk (see inside).
pub fn copy(src: &Path, dest: &Path) -> Result<Copied, BackupError> {
    if !src.exists() {
        return Err(BackupError::Missing(src.to_owned()));
    }
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    let source = read_only(src)?;
    let copy_err = |source| BackupError::Copy { from: src.to_owned(), to: dest.to_owned(), source };
    let mut target = Connection::open(dest).map_err(|source| BackupError::Open { path: dest.to_owned(), source })?;
    // No journal and no sync for the new file: its last step would otherwise sync the whole copy while the
    // source's snapshot is still held. A copy is a temporary file that the caller syncs, or syncs what it
    // copies it into.
    target
        .execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(|source| BackupError::Open { path: dest.to_owned(), source })?;
    {
        let backup = Backup::new(&source, &mut target).map_err(copy_err)?;
        let deadline = Instant::now() + BUSY_FOR;
        // -1: every page in one step, that is one read transaction on the source.
        loop {
            match backup.step(-1).map_err(copy_err)? {
                StepResult::Done => break,
                StepResult::More => {}
                // Only for a moment in WAL mode (a WAL being recovered or restarted): try again.
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => return Err(BackupError::Busy(src.to_owned())),
            }
        }
    }
    target.close().map_err(|(_, source)| copy_err(source))?;
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(Copied { bytes })
}

/// Runs SQLite's `PRAGMA integrity_check` on the database at `path` (read-only): `Ok` when it finds
/// nothing wrong. Reads the whole database.
pub fn check(path: &Path) -> Result<(), BackupError> {
    let conn = read_only(path)?;
    let problems = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|source| classify(path, source))?;
    if problems == ["ok"] {
        return Ok(());
    }
    let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    Err(BackupError::Damaged { path: path.to_owned(), problem: shown.join("; ") })
}

/// What a copy of the store (`duet.db`) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSummary {
    /// Its schema version (`PRAGMA user_version`; [`SCHEMA_VERSION`] for one this build wrote).
    pub schema_version: usize,
    pub accounts: u64,
    pub messages: u64,
}

/// Reads the schema version and counts of a store's database (read-only). Fails if it is not a store's
/// database, or if its schema is newer than this build knows (this build could not open it).
pub fn store_summary(path: &Path) -> Result<StoreSummary, BackupError> {
    let conn = read_only(path)?;
    let read_err = |source| classify(path, source);
    let schema_version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(read_err)?;
    if schema_version > MIGRATIONS.len() {
        return Err(BackupError::NewerSchema { path: path.to_owned(), found: schema_version, known: SCHEMA_VERSION });
    }
    let count = |table: &str| -> Result<u64, BackupError> {
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).map_err(read_err)?;
        Ok(n.max(0) as u64)
    };
    Ok(StoreSummary { schema_version, accounts: count("accounts")?, messages: count("messages")? })
}

/// What a copy of the media index (`media.db`) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSummary {
    /// Uploads recorded.
    pub uploads: u64,
    /// The blob keys of those uploads (each upload's own, and its renditions'), sorted: the files of a
    /// local blob store hold them, as `<key's first two characters>/<key>`.
    pub blobs: Vec<String>,
}

/// Reads what the media index at `path` holds (read-only). Fails if it is not a media index.
pub fn media_summary(path: &Path) -> Result<MediaSummary, BackupError> {
    let conn = read_only(path)?;
    let read_err = |source| classify(path, source);
    let uploads: i64 = conn.query_row("SELECT count(*) FROM media", [], |r| r.get(0)).map_err(read_err)?;
    let blobs = conn
        .prepare("SELECT uuid FROM media UNION SELECT blob FROM media_renditions ORDER BY 1")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(read_err)?;
    Ok(MediaSummary { uploads: uploads.max(0) as u64, blobs })
}

/// A read-only connection to an existing database, waiting a while for locks (a WAL being recovered).
fn read_only(path: &Path) -> Result<Connection, BackupError> {
    if !path.exists() {
        return Err(BackupError::Missing(path.to_owned()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|source| BackupError::Open { path: path.to_owned(), source })?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(|source| BackupError::Open { path: path.to_owned(), source })?;
    Ok(conn)
}

/// A failed read: "not a database" (SQLite finds out at the first read, not at open) or another failure.
fn classify(path: &Path, source: rusqlite::Error) -> BackupError {
    match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => BackupError::NotADatabase { path: path.to_owned(), source },
        _ => BackupError::Read { path: path.to_owned(), source },
    }
}

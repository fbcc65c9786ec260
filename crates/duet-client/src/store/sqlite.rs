//! [`SqliteStore`]: the durable local store, one SQLite file per user and installation.
//!
//! Every call is a short statement or one transaction on a single connection behind a mutex; the
//! client runs them on tokio's blocking pool ([`LocalStore::is_blocking`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use duet_proto::elem::MsgElem;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Batch, Coverage, Held, LocalStore, MessageRecord, Position, Snapshot, StoreError};
use crate::model::{Conversation, Message, parse_elems};

/// Version 2 orders history by position and keeps each conversation's coverage; a version 1 file is
/// upgraded in place (it gains the index and the table; its coverage starts empty, so its conversations'
/// history is asked of the server once). Version 3 adds recalls' revokers, read receipts and the peer's
/// read time ([`UPGRADE_3`]).
/// Version 4 adds each message's edit version and each conversation's settings, as JSON ([`UPGRADE_4`]).
const SCHEMA_VERSION: i64 = 4;

/// From version 3 to 4.
const UPGRADE_4: &str = "
ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
";

/// From version 2 (or a file [`SCHEMA`] just created) to 3.
const UPGRADE_3: &str = "
ALTER TABLE messages ADD COLUMN revoker TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN need_receipt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN receipt_time INTEGER;
ALTER TABLE conversations ADD COLUMN peer_read_time INTEGER NOT NULL DEFAULT 0;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    peer              TEXT NOT NULL,
    msg_key           TEXT NOT NULL,
    from_user         TEXT NOT NULL,
    to_user           TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    random            INTEGER NOT NULL,
    time              INTEGER NOT NULL,
    conv_seq          INTEGER NOT NULL,
    body              TEXT NOT NULL,
    cloud_custom_data TEXT NOT NULL,
    recalled          INTEGER NOT NULL,
    log_seq           INTEGER,
    sent_here         INTEGER NOT NULL,
    nick              TEXT NOT NULL DEFAULT '',
    face_url          TEXT NOT NULL DEFAULT '',
    system            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (peer, msg_key)
);
CREATE INDEX IF NOT EXISTS messages_by_conv_seq ON messages (peer, conv_seq);
CREATE INDEX IF NOT EXISTS messages_by_position ON messages (peer, time, seq, random);
-- What is known to be held of each conversation (history::Coverage). held: 0 nothing, 1 from the
-- position (from_time, from_seq, from_random), 2 all.
CREATE TABLE IF NOT EXISTS coverage (
    peer        TEXT PRIMARY KEY,
    held        INTEGER NOT NULL,
    from_time   INTEGER NOT NULL,
    from_seq    INTEGER NOT NULL,
    from_random INTEGER NOT NULL,
    through     INTEGER NOT NULL,
    known       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    peer     TEXT PRIMARY KEY,
    unread   INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    last_key TEXT
);
";

const MESSAGE_COLUMNS: &str = "from_user, to_user, msg_key, seq, random, time, conv_seq, body, \
                               cloud_custom_data, recalled, log_seq, nick, face_url, system, revoker, \
                               need_receipt, receipt_time, version";

/// A [`LocalStore`] in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

impl SqliteStore {
    /// The file of `user`'s store in `dir`. UserIDs are printable ASCII; anything but letters, digits,
    /// `_` and `-` is escaped so that every UserID maps to its own file name.
    pub fn file_in(dir: &Path, user: &str) -> PathBuf {
        let mut name = String::from("duet-");
        for b in user.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                name.push(b as char);
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        name.push_str(".sqlite3");
        dir.join(name)
    }

    /// Opens (or creates) the store at `path` for `user`; refuses a file that belongs to another user.
    pub fn open(path: &Path, user: &str) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0)).optional()?;
        match version {
            None => {
                conn.execute_batch(&format!("BEGIN; {UPGRADE_3} {UPGRADE_4} COMMIT;"))?;
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1), ('user', ?2)",
                    params![SCHEMA_VERSION.to_string(), user],
                )?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            // Version 1 lacked what SCHEMA just created; 1 and 2 lack version 3's columns; 3 lacks 4's.
            Some(v) if v == "1" || v == "2" || v == "3" => {
                let upgrades = if v == "3" { UPGRADE_4.to_owned() } else { format!("{UPGRADE_3} {UPGRADE_4}") };
                conn.execute_batch(&format!(
                    "BEGIN; {upgrades} UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema'; COMMIT;"
                ))?;
            }
            Some(v) => {
                return Err(StoreError::Invalid(format!(
                    "{} has schema version {v}; this SDK reads version {SCHEMA_VERSION}",
                    path.display()
                )));
            }
        }
        let owner: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'user'", [], |r| r.get(0)).optional()?;
        if owner.as_deref() != Some(user) {
            return Err(StoreError::Invalid(format!(
                "{} belongs to user {:?}, not {user:?}",
                path.display(),
                owner.unwrap_or_default()
            )));
        }
        Ok(SqliteStore { conn: Mutex::new(conn), path: path.to_owned() })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{v} does not fit SQLite's integers")))
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn body_of(elems: &[MsgElem]) -> Result<String, StoreError> {
    serde_json::to_string(elems).map_err(|e| StoreError::Invalid(format!("encoding a body: {e}")))
}

fn message_of(r: &Row<'_>, offset: usize) -> rusqlite::Result<Message> {
    let msg_key: String = r.get(offset + 2)?;
    let body: String = r.get(offset + 7)?;
    let elems = parse_elems(&body, &msg_key);
    Ok(Message {
        from: r.get(offset)?,
        to: r.get(offset + 1)?,
        seq: u32::try_from(r.get::<_, i64>(offset + 3)?).unwrap_or(0),
        random: u32::try_from(r.get::<_, i64>(offset + 4)?).unwrap_or(0),
        msg_key,
        time: r.get(offset + 5)?,
        conv_seq: u64_of(r.get(offset + 6)?),
        elems,
        cloud_custom_data: r.get(offset + 8)?,
        recalled: r.get(offset + 9)?,
        revoker: r.get(offset + 14)?,
        peer_read: false,
        need_read_receipt: r.get(offset + 15)?,
        receipt_time: r.get(offset + 16)?,
        version: u32::try_from(r.get::<_, i64>(offset + 17)?).unwrap_or(0),
        log_seq: r.get::<_, Option<i64>>(offset + 10)?.map(u64_of),
        sender: crate::model::Sender {
            nick: r.get(offset + 11)?,
            face_url: r.get(offset + 12)?,
            system: r.get(offset + 13)?,
        },
    })
}

fn upsert(tx: &rusqlite::Transaction<'_>, rec: &MessageRecord) -> Result<(), StoreError> {
    let m = &rec.message;
    let log_seq = m.log_seq.map(i64_of).transpose()?;
    tx.execute(
        "INSERT INTO messages (peer, msg_key, from_user, to_user, seq, random, time, conv_seq, body,
                               cloud_custom_data, recalled, log_seq, sent_here, nick, face_url, system,
                               revoker, need_receipt, receipt_time, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
         ON CONFLICT (peer, msg_key) DO UPDATE SET
             from_user = excluded.from_user, to_user = excluded.to_user, seq = excluded.seq,
             random = excluded.random, time = excluded.time, conv_seq = excluded.conv_seq,
             body = CASE WHEN recalled OR version > excluded.version THEN body ELSE excluded.body END,
             cloud_custom_data = CASE WHEN recalled OR version > excluded.version THEN cloud_custom_data
                                      ELSE excluded.cloud_custom_data END,
             version = max(version, excluded.version),
             revoker = CASE WHEN recalled THEN revoker ELSE excluded.revoker END,
             recalled = recalled OR excluded.recalled,
             need_receipt = need_receipt OR excluded.need_receipt,
             receipt_time = COALESCE(receipt_time, excluded.receipt_time),
             log_seq = COALESCE(excluded.log_seq, log_seq),
             sent_here = sent_here OR excluded.sent_here,
             nick = CASE WHEN excluded.nick = '' THEN nick ELSE excluded.nick END,
             face_url = CASE WHEN excluded.face_url = '' THEN face_url ELSE excluded.face_url END,
             system = system OR excluded.system",
        params![
            rec.peer,
            m.msg_key,
            m.from,
            m.to,
            i64::from(m.seq),
            i64::from(m.random),
            m.time,
            i64_of(m.conv_seq)?,
            body_of(&m.elems)?,
            m.cloud_custom_data,
            m.recalled,
            log_seq,
            rec.sent_here,
            m.sender.nick,
            m.sender.face_url,
            m.sender.system,
            m.revoker,
            m.need_read_receipt,
            m.receipt_time,
            i64::from(m.version),
        ],
    )?;
    Ok(())
}

impl LocalStore for SqliteStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        let conn = self.conn();
        let cursor: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'cursor'", [], |r| r.get(0)).optional()?;
        let cursor = match cursor {
            None => 0,
            Some(c) => {
                c.parse().map_err(|_| StoreError::Invalid(format!("the stored cursor {c:?} is not a number")))?
            }
        };
        let device: Option<String> =
            conn.query_row("SELECT value FROM meta WHERE key = 'device'", [], |r| r.get(0)).optional()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT c.peer, c.unread, c.time, m.msg_key IS NOT NULL, c.peer_read_time, c.settings, {}
             FROM conversations c LEFT JOIN messages m ON m.peer = c.peer AND m.msg_key = c.last_key",
            MESSAGE_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ")
        ))?;
        let conversations = stmt
            .query_map([], |r| {
                let has_last: bool = r.get(3)?;
                Ok(Conversation {
                    peer: r.get(0)?,
                    unread: u64_of(r.get(1)?),
                    time: r.get(2)?,
                    peer_read_time: r.get(4)?,
                    settings: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                    last: if has_last { Some(message_of(r, 6)?) } else { None },
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt =
            conn.prepare("SELECT peer, held, from_time, from_seq, from_random, through, known FROM coverage")?;
        let coverage = stmt
            .query_map([], |r| {
                let held = match r.get::<_, i64>(1)? {
                    1 => Held::From((r.get(2)?, r.get(3)?, r.get(4)?)),
                    2 => Held::All,
                    _ => Held::Nothing,
                };
                let (through, known) = (u64_of(r.get(5)?), u64_of(r.get(6)?));
                Ok((r.get(0)?, Coverage { held, through, known }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot { cursor, device, conversations, coverage })
    }

    fn set_device(&self, device: &str) -> Result<(), StoreError> {
        self.conn().execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('device', ?1)", params![device])?;
        Ok(())
    }

    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (peer, key) in &batch.deletions {
            tx.execute("DELETE FROM messages WHERE peer = ?1 AND msg_key = ?2", params![peer, key])?;
        }
        for (peer, upto) in &batch.clears {
            tx.execute("DELETE FROM messages WHERE peer = ?1 AND conv_seq <= ?2", params![peer, i64_of(*upto)?])?;
        }
        for peer in &batch.removed_conversations {
            tx.execute("DELETE FROM conversations WHERE peer = ?1", params![peer])?;
        }
        for rec in &batch.messages {
            upsert(&tx, rec)?;
        }
        for (peer, key, by) in &batch.recalls {
            tx.execute(
                "UPDATE messages SET recalled = 1, revoker = ?3, body = '[]', cloud_custom_data = ''
                 WHERE peer = ?1 AND msg_key = ?2",
                params![peer, key, by],
            )?;
        }
        for (peer, key, time) in &batch.receipts {
            tx.execute(
                "UPDATE messages SET receipt_time = COALESCE(receipt_time, ?3) WHERE peer = ?1 AND msg_key = ?2",
                params![peer, key, time],
            )?;
        }
        if batch.replace_conversations {
            tx.execute("DELETE FROM conversations", [])?;
        }
        for c in &batch.conversations {
            if let Some(last) = &c.last {
                upsert(&tx, &MessageRecord { peer: c.peer.clone(), message: last.clone(), sent_here: false })?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO conversations (peer, unread, time, last_key, peer_read_time, settings)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    c.peer,
                    i64_of(c.unread)?,
                    c.time,
                    c.last.as_ref().map(|m| &m.msg_key),
                    c.peer_read_time,
                    serde_json::to_string(&c.settings).unwrap_or_else(|_| "{}".into())
                ],
            )?;
        }
        if let Some(cursor) = batch.cursor {
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?1)", params![cursor.to_string()])?;
        }
        for (peer, c) in &batch.coverage {
            let (held, (time, seq, random)) = match c.held {
                Held::Nothing => (0, (0, 0, 0)),
                Held::From(at) => (1, at),
                Held::All => (2, (0, 0, 0)),
            };
            tx.execute(
                "INSERT OR REPLACE INTO coverage (peer, held, from_time, from_seq, from_random, through, known)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![peer, held, time, seq, random, i64_of(c.through)?, i64_of(c.known)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn message(&self, peer: &str, msg_key: &str) -> Result<Option<MessageRecord>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!("SELECT sent_here, {MESSAGE_COLUMNS} FROM messages WHERE peer = ?1 AND msg_key = ?2"),
                params![peer, msg_key],
                |r| Ok(MessageRecord { peer: peer.to_owned(), sent_here: r.get(0)?, message: message_of(r, 1)? }),
            )
            .optional()?)
    }

    fn messages_before(&self, peer: &str, before: Option<Position>, limit: usize) -> Result<Vec<Message>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE peer = ?1 AND conv_seq > 0 AND (time, seq, random) < (?2, ?3, ?4)
             ORDER BY time DESC, seq DESC, random DESC LIMIT ?5"
        ))?;
        let (time, seq, random) = before.map_or((i64::MAX, i64::MAX, i64::MAX), |(t, s, r)| (t, s.into(), r.into()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![peer, time, seq, random, limit], |r| message_of(r, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn conv_seqs_above(&self, peer: &str, after: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT conv_seq FROM messages WHERE peer = ?1 AND conv_seq > ?2 ORDER BY conv_seq LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![peer, i64_of(after)?, limit], |r| r.get::<_, i64>(0).map(u64_of))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn count_from_after(&self, peer: &str, time: i64) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM messages WHERE peer = ?1 AND from_user = ?1 AND time > ?2 AND conv_seq > 0",
            params![peer, time],
            |r| r.get(0),
        )?;
        Ok(u64_of(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&SqliteStore::file_in(dir.path(), "bob"), "bob").unwrap();
        super::super::conformance::run(&store);
    }

    #[test]
    fn survives_reopening_and_belongs_to_one_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = SqliteStore::file_in(dir.path(), "bob");
        {
            let store = SqliteStore::open(&path, "bob").unwrap();
            store.commit(&Batch { cursor: Some(42), ..Batch::default() }).unwrap();
            store.set_device("d").unwrap();
        }
        let store = SqliteStore::open(&path, "bob").unwrap();
        let snap = store.load().unwrap();
        assert_eq!(snap.cursor, 42);
        assert_eq!(snap.device.as_deref(), Some("d"));
        assert!(matches!(SqliteStore::open(&path, "alice"), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn file_names_escape_unusual_user_ids() {
        let dir = Path::new("/data");
        assert_eq!(SqliteStore::file_in(dir, "bob_1-x"), Path::new("/data/duet-bob_1-x.sqlite3"));
        assert_eq!(SqliteStore::file_in(dir, "a/b.c"), Path::new("/data/duet-a%2Fb%2Ec.sqlite3"));
    }
}

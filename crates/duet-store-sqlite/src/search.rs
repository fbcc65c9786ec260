//! The search index (schema_11.sql, ADR 0004): a contentless FTS5 table, `message_search`, one row per
//! message that a search can find, by the message's rowid. A stored message is indexed behind its send:
//! the writer queues it ([`Queue`]) and indexes the queue later, many messages in one transaction (see
//! [`Queue`] for when, and for what a crash loses); an edit, a recall, a purge or an account's deletion
//! changes the index in its own commit, after indexing what is queued. A search first has the queue
//! indexed if it holds a message, so it sees every message stored before it began.
//!
//! Rows hold the message's parties (`p<uid>`, so a search reads one owner's rows), its elements' types and
//! its text ([`Searchable`]). The `unicode61` tokenizer splits text into words but takes a run of Han
//! characters (or kana) as one word; so before it sees the text, every CJK character is made a word of
//! its own ([`split_cjk`]), and a keyword is matched as a phrase of its words: `你好` finds `…说你好吗…`,
//! as a one-character keyword finds every message with that character. Latin keywords match words from
//! their start (the keyword's last word is a prefix). Visibility (recalled, hidden from one side, a
//! deleted account) is checked on the message row, so a one-sided delete leaves the index alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use duet_core::model::search::MAX_SEARCH_PAGE;
use duet_core::model::{SearchCursor, SearchHit, SearchPage, SearchQuery, Searchable};
use rusqlite::{Connection, OptionalExtension, Result, params};

use crate::ops::{MESSAGE_COLUMN_COUNT, MESSAGE_COLUMNS, read_message, uid};

/// Whether `c` is written without spaces between words: Han (CJK ideographs, radicals, compatibility),
/// kana, bopomofo and Hangul. Each is a word of its own in the index.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x2E80..=0x2FDF | 0x3040..=0x31FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xA960..=0xA97F
        | 0xAC00..=0xD7FF | 0xF900..=0xFAFF | 0xFF66..=0xFF9F | 0x20000..=0x3134F)
}

/// The text with a space around every CJK character, for the tokenizer.
pub(crate) fn split_cjk(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for c in text.chars() {
        if is_cjk(c) {
            out.push(' ');
            out.push(c);
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The columns of a message's index row, made once per send (a batch send indexes one row per recipient).
pub(crate) struct Terms {
    types: String,
    text: String,
}

impl Terms {
    pub(crate) fn of(body: &str) -> Terms {
        let s = Searchable::of(body);
        Terms { types: s.types.join(" "), text: split_cjk(&s.text) }
    }
}

/// Messages queued this many or more are indexed after a batch when no job waits for the writer; this
/// many times [`BUSY_FACTOR`] whatever waits. A send's commit then writes no index, and the index's writes
/// come hundreds of messages at a time: FTS5 writes a segment at every commit that changed the index and
/// merges segments as they pile up, so a few messages per commit cost several times what they cost in bulk.
/// Not more: the writer takes no job while it indexes, so the queue's length is a stall of the sends that
/// arrive meanwhile. (docs/benchmarks.md, "The search index is written behind the sends".)
const FLUSH_AT: usize = 256;
/// See [`FLUSH_AT`]: a busy writer (jobs waiting after its batch) lets the queue grow this many times
/// longer, which costs less per message, and a stall matters less behind a queue of jobs.
const BUSY_FACTOR: usize = 8;
/// A queue that waited this long is indexed after the next batch, whatever its length (under light load).
const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// The messages stored but not yet indexed, in the order of their ids (which is the order the writer stores
/// them), with their terms. A send or an import queues its message ([`Queue::push`]); the writer indexes
/// the queue ([`Queue::flush`]) in a transaction of its own after a batch once the queue is long or old
/// enough ([`Queue::due`]), when the store closes, and inside a batch when a job needs the index exact: a
/// search's, and an edit's, a recall's, a purge's or an account deletion's that would touch a queued
/// message. Each flush records the last id it indexed (`search_mark`); a crash loses the queue, and opening
/// the store indexes the messages past the mark ([`catch_up`]). The writer follows its transactions:
/// [`Queue::commit`] after a commit, [`Queue::rollback`] after a rollback.
#[derive(Default)]
pub(crate) struct Queue {
    pending: Vec<Pending>,
    /// `pending[..committed]` were stored by committed transactions (a rollback drops the others).
    committed: usize,
    /// `pending[..flushed]` were indexed in the current transaction (its commit drops them from the queue).
    flushed: usize,
    /// When the oldest committed message of the queue was committed.
    since: Option<Instant>,
}

struct Pending {
    id: i64,
    sender: i64,
    receiver: i64,
    terms: Arc<Terms>,
}

impl Queue {
    /// Queues message `id`, just stored, to be indexed.
    pub(crate) fn push(&mut self, id: i64, sender: i64, receiver: i64, terms: Arc<Terms>) {
        self.pending.push(Pending { id, sender, receiver, terms });
    }

    /// How many messages wait to be indexed.
    pub(crate) fn len(&self) -> usize {
        self.pending.len() - self.flushed
    }

    /// Whether message `id` waits to be indexed.
    pub(crate) fn holds(&self, id: i64) -> bool {
        self.pending[self.flushed..].binary_search_by_key(&id, |p| p.id).is_ok()
    }

    /// Whether the writer should index the queue now, after a batch; `busy`: jobs wait for the writer (see
    /// [`FLUSH_AT`], [`FLUSH_AFTER`]).
    pub(crate) fn due(&self, busy: bool) -> bool {
        let n = self.len();
        n >= if busy { FLUSH_AT * BUSY_FACTOR } else { FLUSH_AT }
            || (n > 0 && self.since.is_some_and(|t| t.elapsed() >= FLUSH_AFTER))
    }

    /// Indexes every queued message in the current transaction, and records the last one as indexed.
    pub(crate) fn flush(&mut self, c: &Connection) -> Result<()> {
        let Some(last) = self.pending[self.flushed..].last() else { return Ok(()) };
        for p in &self.pending[self.flushed..] {
            index(c, p.id, p.sender, p.receiver, &p.terms)?;
        }
        c.prepare_cached("UPDATE search_mark SET upto = ?1")?.execute([last.id])?;
        self.flushed = self.pending.len();
        Ok(())
    }

    /// The transaction committed: what it indexed leaves the queue, what it queued stays.
    pub(crate) fn commit(&mut self) {
        if self.flushed > 0 {
            self.pending.drain(..self.flushed);
            self.flushed = 0;
            self.since = None;
        }
        self.committed = self.pending.len();
        if self.committed > 0 && self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }

    /// The transaction was rolled back: what it queued goes (it was never stored), what it indexed waits
    /// again.
    pub(crate) fn rollback(&mut self) {
        self.pending.truncate(self.committed);
        self.flushed = 0;
    }
}

/// Indexes the messages stored after the last one indexed (`search_mark`), which a crash left out of the
/// index with the writer's queue, in a transaction of its own; how many. Run at start, before the writer.
pub(crate) fn catch_up(c: &Connection) -> Result<u64> {
    c.execute_batch("BEGIN IMMEDIATE")?;
    let indexed = (|| {
        let upto: i64 = c.query_row("SELECT upto FROM search_mark", [], |r| r.get(0))?;
        let mut stmt =
            c.prepare("SELECT id, sender, receiver, body FROM messages WHERE id > ?1 AND flags & 1 = 0 ORDER BY id")?;
        let mut rows = stmt.query([upto])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            index(c, r.get(0)?, r.get(1)?, r.get(2)?, &Terms::of(&r.get::<_, String>(3)?))?;
            n += 1;
        }
        let last: Option<i64> = c.query_row("SELECT max(id) FROM messages", [], |r| r.get(0)).optional()?.flatten();
        if let Some(last) = last.filter(|&l| l > upto) {
            c.execute("UPDATE search_mark SET upto = ?1", [last])?;
        }
        Ok(n)
    })();
    match indexed {
        Ok(n) => c.execute_batch("COMMIT").map(|()| n),
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// After a purge deleted messages (the queue indexed first, so every message left is indexed): the mark
/// comes down to the last message left, since SQLite gives the next message the id after the largest
/// one left, which may be below the mark.
pub(crate) fn purged(c: &Connection) -> Result<()> {
    c.prepare_cached("UPDATE search_mark SET upto = min(upto, coalesce((SELECT max(id) FROM messages), 0))")?
        .execute([])?;
    Ok(())
}

/// Indexes message `id` between `sender` and `receiver`.
pub(crate) fn index(c: &Connection, id: i64, sender: i64, receiver: i64, terms: &Terms) -> Result<()> {
    c.prepare_cached("INSERT INTO message_search (rowid, parties, types, text) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![id, format!("p{sender} p{receiver}"), terms.types, terms.text])?;
    Ok(())
}

/// Removes message `id` from the index (nothing when it is not there).
pub(crate) fn unindex(c: &Connection, id: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM message_search WHERE rowid = ?1")?.execute([id])?;
    Ok(())
}

/// Removes every message `uid` sent or received from the index (its account is deleted).
pub(crate) fn drop_user(c: &Connection, uid: i64) -> Result<()> {
    let ids: Vec<i64> = c
        .prepare_cached("SELECT rowid FROM message_search WHERE message_search MATCH ?1")?
        .query_map([format!("parties : p{uid}")], |r| r.get(0))?
        .collect::<Result<_>>()?;
    for id in ids {
        unindex(c, id)?;
    }
    Ok(())
}

/// Indexes every message not recalled, when the index is created over an existing database; how many.
pub(crate) fn backfill(c: &Connection) -> Result<u64> {
    let mut stmt = c.prepare("SELECT id, sender, receiver, body FROM messages WHERE flags & 1 = 0")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        index(c, r.get(0)?, r.get(1)?, r.get(2)?, &Terms::of(&r.get::<_, String>(3)?))?;
        n += 1;
    }
    Ok(n)
}

/// A keyword as an FTS5 phrase: its words in order, the last one a prefix. `None` for a keyword without
/// a letter or digit, which no text matches.
fn phrase(keyword: &str) -> Option<String> {
    keyword.chars().any(char::is_alphanumeric).then(|| format!("\"{}\" *", split_cjk(keyword).replace('"', "\"\"")))
}

/// The FTS5 query of a search: the owner's rows (and the peer's), of the types asked for, with every
/// keyword. `None` when a keyword can match nothing.
fn fts_query(q: &SearchQuery, owner: i64, peer: Option<i64>) -> Option<String> {
    let mut parts = vec![format!("parties : p{owner}")];
    if let Some(peer) = peer {
        parts.push(format!("parties : p{peer}"));
    }
    if !q.types.is_empty() {
        let types: Vec<String> = q.types.iter().map(|t| format!("types : \"{}\"", t.replace('"', "\"\""))).collect();
        parts.push(format!("({})", types.join(" OR ")));
    }
    for k in &q.keywords {
        parts.push(format!("text : {}", phrase(k)?));
    }
    Some(parts.join(" AND "))
}

pub(crate) fn search(c: &Connection, q: &SearchQuery) -> Result<SearchPage> {
    let empty = SearchPage { hits: Vec::new(), more: false };
    let Some(owner) = uid(c, &q.owner)? else { return Ok(empty) };
    let named = |name: &Option<String>| -> Result<Option<Option<i64>>> {
        Ok(match name {
            None => Some(None),
            Some(n) => uid(c, n)?.map(Some),
        })
    };
    let (Some(peer), Some(sender)) = (named(&q.peer)?, named(&q.sender)?) else { return Ok(empty) };
    let Some(matching) = fts_query(q, owner, peer) else { return Ok(empty) };
    let limit = q.limit.min(MAX_SEARCH_PAGE);
    let (after_time, after_id) = match q.after {
        Some(a) => (a.time, a.id.min(i64::MAX as u64) as i64),
        None => (i64::MAX, i64::MAX),
    };
    // The index drives (CROSS JOIN keeps it first): the owner's matching rows, then each message by rowid,
    // checked for the owner's view and sorted. The receiver's read time says whether it was read.
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS}, m.id, su.user_id, ru.user_id, coalesce(rc.read_time, 0) \
         FROM message_search s CROSS JOIN messages m ON m.id = s.rowid \
         JOIN accounts su ON su.uid = m.sender JOIN accounts ru ON ru.uid = m.receiver \
         LEFT JOIN conversations rc ON rc.owner = m.receiver AND rc.peer = m.sender \
         WHERE message_search MATCH ?1 AND m.flags & 1 = 0 \
           AND (m.sender = ?2 OR m.receiver = ?2) \
           AND NOT (m.sender = ?2 AND m.flags & 2) AND NOT (m.receiver = ?2 AND m.flags & 4) \
           AND (?3 IS NULL OR m.sender = ?3) \
           AND m.time >= ?4 AND m.time <= ?5 AND (m.time, m.id) < (?6, ?7) \
         ORDER BY m.time DESC, m.id DESC LIMIT ?8"
    ))?;
    let at = MESSAGE_COLUMN_COUNT;
    let mut rows =
        stmt.query(params![matching, owner, sender, q.min_time, q.max_time, after_time, after_id, limit as i64 + 1])?;
    let (mut hits, mut more) = (Vec::new(), false);
    while let Some(r) = rows.next()? {
        if hits.len() == limit {
            more = true;
            break;
        }
        let (sender_uid, id): (i64, i64) = (r.get(0)?, r.get(at)?);
        let (s, rc): (String, String) = (r.get(at + 1)?, r.get(at + 2)?);
        let mut m = read_message(r, 0, |uid| if uid == sender_uid { s.clone() } else { rc.clone() })?;
        m.peer_read = m.key.time <= r.get::<_, i64>(at + 3)?;
        hits.push(SearchHit { at: SearchCursor { time: m.key.time, id: id as u64 }, message: m });
    }
    Ok(SearchPage { hits, more })
}

#[cfg(test)]
mod tests {
    use super::split_cjk;

    #[test]
    fn cjk_characters_become_words() {
        assert_eq!(split_cjk("hi 你好!"), "hi  你  好 !");
        assert_eq!(split_cjk("こんにちは"), " こ  ん  に  ち  は ");
        assert_eq!(split_cjk("plain"), "plain");
    }
}

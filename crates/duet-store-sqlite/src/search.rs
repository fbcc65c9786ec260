//! The search index (schema_11.sql, ADR 0004): a contentless FTS5 table, `message_search`, one row per
//! message that a search can find, by the message's rowid, written in the commit that stores, edits,
//! recalls or purges the message, or deletes an account.
//!
//! Rows hold the message's parties (`p<uid>`, so a search reads one owner's rows), its elements' types and
//! its text ([`Searchable`]). The `unicode61` tokenizer splits text into words but takes a run of Han
//! characters (or kana) as one word; so before it sees the text, every CJK character is made a word of
//! its own ([`split_cjk`]), and a keyword is matched as a phrase of its words: `你好` finds `…说你好吗…`,
//! as a one-character keyword finds every message with that character. Latin keywords match words from
//! their start (the keyword's last word is a prefix). Visibility (recalled, hidden from one side, a
//! deleted account) is checked on the message row, so a one-sided delete leaves the index alone.

use duet_core::model::search::MAX_SEARCH_PAGE;
use duet_core::model::{SearchCursor, SearchHit, SearchPage, SearchQuery, Searchable};
use rusqlite::{Connection, Result, params};

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

//! The search of a user's own history (`MessageStore::search`, `sql/search.sql`): a `tsvector` per message
//! that can be found, written in the commit that stores or edits the message.
//!
//! The store makes the terms itself rather than through a text search configuration, so that they do not
//! depend on the database's locale and match the embedded store's index (ADR 0004): words are runs of
//! letters and digits, lowercased and without diacritics; every Han, kana and Hangul character is a word
//! of its own, so a keyword of one or two characters is found as a phrase (`你好` finds `…说你好吗…`);
//! a keyword is matched as a phrase of its words, the last one as a prefix. The parties (`@p<uid>`) and
//! the element types (`@t<MsgType>`) are lexemes of the same vector, which text never makes (`@` is no
//! letter), so the GIN index narrows a search to its owner's messages.

use duet_core::model::search::MAX_SEARCH_PAGE;
use duet_core::model::{SearchCursor, SearchHit, SearchPage, SearchQuery, Searchable};
use duet_core::store::StoreError;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::messages::{MESSAGE_COLUMN_COUNT, MESSAGE_COLUMNS, read_message};
use crate::writer::Conn;
use crate::{PgStore, execute, query};

/// A tsvector's last position: later words share it.
const MAX_POSITION: usize = 16_383;
/// A lexeme's most bytes in a tsvector; a longer word is left out.
const MAX_LEXEME: usize = 2_046;

/// Whether `c` is written without spaces between words: Han (CJK ideographs, radicals, compatibility),
/// kana, bopomofo and Hangul. Each is a word of its own.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x2E80..=0x2FDF | 0x3040..=0x31FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xA960..=0xA97F
        | 0xAC00..=0xD7FF | 0xF900..=0xFAFF | 0xFF66..=0xFF9F | 0x20000..=0x3134F)
}

/// The words of `text`, in order: lowercased, without diacritics, each CJK character a word.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    // Composed again, so that a character without a decomposed form of its own compares as typed.
    out.into_iter().map(|w| w.nfc().collect()).collect()
}

/// `s` quoted as a lexeme of tsvector and tsquery input.
fn lexeme(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The tsvector input of a message between `sender` and `receiver` with this body.
fn terms(sender: i64, receiver: i64, body: &str) -> String {
    let s = Searchable::of(body);
    let mut out = format!("{} {}", lexeme(&format!("@p{sender}")), lexeme(&format!("@p{receiver}")));
    for t in &s.types {
        out.push(' ');
        out.push_str(&lexeme(&format!("@t{t}")));
    }
    for (i, w) in words(&s.text).iter().enumerate().filter(|(_, w)| w.len() <= MAX_LEXEME) {
        out.push(' ');
        out.push_str(&lexeme(w));
        out.push_str(&format!(":{}", (i + 1).min(MAX_POSITION)));
    }
    out
}

/// Indexes message `id` between `sender` and `receiver`, whose body (`MsgBody` as JSON) is `body`.
pub(crate) async fn index(c: &Conn, id: i64, sender: i64, receiver: i64, body: &str) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO message_search (id, terms) VALUES ($1, $2::text::tsvector) \
         ON CONFLICT (id) DO UPDATE SET terms = excluded.terms",
        &[&id, &terms(sender, receiver, body)],
    )
    .await?;
    Ok(())
}

/// Takes message `id` out of the index (recalled, or edited before its new text is indexed).
pub(crate) async fn unindex(c: &Conn, id: i64) -> Result<(), StoreError> {
    execute(c, "DELETE FROM message_search WHERE id = $1", &[&id]).await?;
    Ok(())
}

/// Takes every message account `uid` sent or received out of the index, with the account.
pub(crate) async fn drop_user(c: &Conn, uid: i64) -> Result<(), StoreError> {
    execute(c, "DELETE FROM message_search WHERE terms @@ $1::text::tsquery", &[&lexeme(&format!("@p{uid}"))]).await?;
    Ok(())
}

/// A keyword as a tsquery phrase: its words in order, the last one a prefix. `None` for a keyword without
/// a letter or digit, which no text matches.
fn phrase(keyword: &str) -> Option<String> {
    let words = words(keyword);
    let (last, rest) = words.split_last()?;
    let mut parts: Vec<String> = rest.iter().map(|w| lexeme(w)).collect();
    parts.push(format!("{}:*", lexeme(last)));
    Some(format!("({})", parts.join(" <-> ")))
}

/// The tsquery of a search: the owner's messages (with the peer), of the types asked for, with every
/// keyword. `None` when a keyword can match nothing.
fn tsquery(q: &SearchQuery, owner: i64, peer: Option<i64>) -> Option<String> {
    let mut parts = vec![lexeme(&format!("@p{owner}"))];
    if let Some(peer) = peer {
        parts.push(lexeme(&format!("@p{peer}")));
    }
    if !q.types.is_empty() {
        let types: Vec<String> = q.types.iter().map(|t| lexeme(&format!("@t{t}"))).collect();
        parts.push(format!("({})", types.join(" | ")));
    }
    for k in &q.keywords {
        parts.push(phrase(k)?);
    }
    Some(parts.join(" & "))
}

/// [`duet_core::store::MessageStore::search`].
pub(crate) async fn search(store: &PgStore, q: SearchQuery) -> Result<SearchPage, StoreError> {
    let empty = SearchPage { hits: Vec::new(), more: false };
    let c = store.reader().await?;
    let Some(owner) = crate::accounts::uid(&c, &q.owner).await? else { return Ok(empty) };
    let named = async |name: &Option<String>| -> Result<Option<Option<i64>>, StoreError> {
        Ok(match name {
            None => Some(None),
            Some(n) => crate::accounts::uid(&c, n).await?.map(Some),
        })
    };
    let (Some(peer), Some(sender)) = (named(&q.peer).await?, named(&q.sender).await?) else { return Ok(empty) };
    let Some(matching) = tsquery(&q, owner, peer) else { return Ok(empty) };
    let limit = q.limit.min(MAX_SEARCH_PAGE);
    let (after_time, after_id) = match q.after {
        Some(a) => (a.time, a.id.min(i64::MAX as u64) as i64),
        None => (i64::MAX, i64::MAX),
    };
    // The receiver's read time says whether the message was read.
    let rows = query(
        &c,
        &format!(
            "SELECT {MESSAGE_COLUMNS}, m.id, su.user_id, ru.user_id, coalesce(rc.read_time, 0) \
             FROM message_search s JOIN messages m ON m.id = s.id \
             JOIN accounts su ON su.uid = m.sender JOIN accounts ru ON ru.uid = m.receiver \
             LEFT JOIN conversations rc ON rc.owner = m.receiver AND rc.peer = m.sender \
             WHERE s.terms @@ $8::text::tsquery AND m.flags & 1 = 0 \
               AND (m.sender = $1 OR m.receiver = $1) \
               AND NOT (m.sender = $1 AND m.flags & 2 <> 0) AND NOT (m.receiver = $1 AND m.flags & 4 <> 0) \
               AND ($2::BIGINT IS NULL OR m.sender = $2) \
               AND m.time >= $3 AND m.time <= $4 AND (m.time, m.id) < ($5, $6) \
             ORDER BY m.time DESC, m.id DESC LIMIT $7"
        ),
        &[&owner, &sender, &q.min_time, &q.max_time, &after_time, &after_id, &(limit as i64 + 1), &matching],
    )
    .await?;
    let at = MESSAGE_COLUMN_COUNT;
    let more = rows.len() > limit;
    let hits = rows
        .iter()
        .take(limit)
        .map(|r| {
            let (sender_uid, id): (i64, i64) = (r.get(0), r.get(at));
            let (s, rc): (String, String) = (r.get(at + 1), r.get(at + 2));
            let mut m = read_message(r, 0, |uid| if uid == sender_uid { s.clone() } else { rc.clone() });
            m.peer_read = m.key.time <= r.get::<_, i64>(at + 3);
            SearchHit { at: SearchCursor { time: m.key.time, id: id as u64 }, message: m }
        })
        .collect();
    Ok(SearchPage { hits, more })
}

#[cfg(test)]
mod tests {
    use super::{phrase, terms, words};

    #[test]
    fn words_are_lowercased_without_diacritics_and_cjk_characters_are_words() {
        assert_eq!(words("Hello, Wörld! café"), ["hello", "world", "cafe"]);
        assert_eq!(words("hi 你好!"), ["hi", "你", "好"]);
        assert_eq!(words("こんにちは"), ["こ", "ん", "に", "ち", "は"]);
        assert_eq!(words("a1b2 -- x"), ["a1b2", "x"]);
        assert!(words("?! ...").is_empty());
    }

    #[test]
    fn a_keyword_is_a_phrase_with_a_prefix_last() {
        assert_eq!(phrase("hello wor").as_deref(), Some("('hello' <-> 'wor':*)"));
        assert_eq!(phrase("你好").as_deref(), Some("('你' <-> '好':*)"));
        assert_eq!(phrase("it's").as_deref(), Some("('it' <-> 's':*)"));
        assert_eq!(phrase("!!"), None);
    }

    #[test]
    fn terms_name_the_parties_types_and_positioned_words() {
        let body = r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"Hi there"}}]"#;
        assert_eq!(terms(3, 7, body), "'@p3' '@p7' '@tTIMTextElem' 'hi':1 'there':2");
    }
}

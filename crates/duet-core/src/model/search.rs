//! The search of a user's own history: the query ([`SearchQuery`]), its pages ([`SearchPage`], continued
//! from a [`SearchCursor`]) and what of a message a search sees ([`Searchable`]).
//!
//! What a search matches of a message is the text the message shows, read from its `MsgBody`: a
//! `TIMTextElem`'s `Text`, a `TIMFileElem`'s `FileName`, a `TIMLocationElem`'s `Desc` and a
//! `TIMCustomElem`'s `Desc` (the text Tencent's clients show and push for it). Not its `Data` or `Ext`
//! (the app's machine-readable payload), nor `CloudCustomData`, nor the URLs and ids of media: a keyword
//! finds what the user read, not what the app carried. Every element's `MsgType` is there for the type
//! filter.

use super::StoredMessage;

/// The most messages a page of a search holds.
pub const MAX_SEARCH_PAGE: usize = 100;

/// A search of `owner`'s own view of its history, newest first: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Whose history: messages hidden from `owner` (deleted, cleared, not kept on the sender's side) and
    /// recalled messages never match.
    pub owner: String,
    /// Each keyword appears in the message's text (see the module's doc); none: any text.
    pub keywords: Vec<String>,
    /// Only the conversation with this user; `None`: all of `owner`'s conversations.
    pub peer: Option<String>,
    /// Only messages this user sent.
    pub sender: Option<String>,
    /// Only messages with an element of one of these types (Tencent's `MsgType` names); empty: any.
    pub types: Vec<String>,
    /// Unix seconds, inclusive.
    pub min_time: i64,
    /// Unix seconds, inclusive.
    pub max_time: i64,
    /// Continue after (older than) this position: the previous page's [`SearchPage::next`].
    pub after: Option<SearchCursor>,
    /// At most this many messages (the store reads at most [`MAX_SEARCH_PAGE`]).
    pub limit: usize,
}

/// Where a search goes on. Results are ordered by time, newest first, then by the store's own number of
/// the message (larger first), which is unique, so a page continues exactly where the last one ended
/// whatever is stored meanwhile in other seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SearchCursor {
    /// The last message's time, unix seconds.
    pub time: i64,
    /// The store's number of the last message.
    pub id: u64,
}

impl std::fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.time, self.id)
    }
}

impl std::str::FromStr for SearchCursor {
    type Err = ();

    /// Reads what [`SearchCursor`]'s `Display` wrote: `<time>.<id>`.
    fn from_str(s: &str) -> Result<SearchCursor, ()> {
        let (time, id) = s.split_once('.').ok_or(())?;
        Ok(SearchCursor { time: time.parse().map_err(|_| ())?, id: id.parse().map_err(|_| ())? })
    }
}

/// A page of a search: messages newest first, each with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// More messages match after the last of `hits`.
    pub more: bool,
}

impl SearchPage {
    /// Where the next page starts; `None` when nothing more matches.
    pub fn next(&self) -> Option<SearchCursor> {
        if self.more { self.hits.last().map(|h| h.at) } else { None }
    }
}

/// A message a search found, naming its sender and recipient (the peer is the one that is not the
/// owner), and its position: a page that ends after it continues from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub at: SearchCursor,
    pub message: StoredMessage,
}

/// What a search sees of a message: its elements' types and its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Searchable {
    /// Each element's `MsgType`, in order, once each.
    pub types: Vec<String>,
    /// The text of its elements (see the module's doc), one element's per line.
    pub text: String,
}

impl Searchable {
    /// Reads a stored `MsgBody` (compact JSON); a body that is not an array of elements has neither types
    /// nor text.
    pub fn of(body: &str) -> Searchable {
        let mut out = Searchable::default();
        let Ok(serde_json::Value::Array(elems)) = serde_json::from_str::<serde_json::Value>(body) else {
            return out;
        };
        for elem in &elems {
            let Some(kind) = elem.get("MsgType").and_then(|t| t.as_str()) else { continue };
            if !out.types.iter().any(|t| t == kind) {
                out.types.push(kind.to_owned());
            }
            let field = match kind {
                "TIMTextElem" => "Text",
                "TIMFileElem" => "FileName",
                "TIMLocationElem" | "TIMCustomElem" => "Desc",
                _ => continue,
            };
            if let Some(text) = elem.get("MsgContent").and_then(|c| c.get(field)).and_then(|t| t.as_str())
                && !text.is_empty()
            {
                if !out.text.is_empty() {
                    out.text.push('\n');
                }
                out.text.push_str(text);
            }
        }
        out
    }

    /// Whether a message with this content passes the query's type filter and keywords, matched as the
    /// in-memory store does: each keyword a case-insensitive substring of the text.
    pub fn matches(&self, types: &[String], keywords: &[String]) -> bool {
        if !types.is_empty() && !self.types.iter().any(|t| types.contains(t)) {
            return false;
        }
        let text = self.text.to_lowercase();
        keywords.iter().all(|k| text.contains(&k.to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::{SearchCursor, Searchable};

    #[test]
    fn the_text_a_message_shows_is_searchable() {
        let body = r#"[{"MsgType":"TIMTextElem","MsgContent":{"Text":"你好 World"}},
            {"MsgType":"TIMFileElem","MsgContent":{"FileName":"report.pdf","UUID":"u1"}},
            {"MsgType":"TIMCustomElem","MsgContent":{"Data":"{\"k\":1}","Desc":"[Red packet]","Ext":"x"}},
            {"MsgType":"TIMImageElem","MsgContent":{"UUID":"img"}},
            {"MsgType":"TIMTextElem","MsgContent":{"Text":""}}]"#;
        let s = Searchable::of(body);
        assert_eq!(s.types, ["TIMTextElem", "TIMFileElem", "TIMCustomElem", "TIMImageElem"]);
        assert_eq!(s.text, "你好 World\nreport.pdf\n[Red packet]");
        assert!(s.matches(&[], &["world".into(), "好".into()]));
        assert!(!s.matches(&[], &["img".into()]), "ids are not text");
        assert!(s.matches(&["TIMImageElem".into()], &[]));
        assert!(!s.matches(&["TIMSoundElem".into()], &[]));
        assert_eq!(Searchable::of("not json"), Searchable::default());
    }

    #[test]
    fn a_cursor_reads_back_what_it_wrote() {
        let c = SearchCursor { time: 1_700_000_000, id: 42 };
        assert_eq!(c.to_string().parse(), Ok(c));
        assert!("1700000000".parse::<SearchCursor>().is_err());
        assert!("x.1".parse::<SearchCursor>().is_err());
    }
}

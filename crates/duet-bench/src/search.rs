//! `search`: N messages (1,000,000 by default) among U users, each between two of them picked at random,
//! imported through the admin's `openim/importmsg` as history (`SyncFromOldSystem` 2: no sync-log entry,
//! nothing unread), C calls in flight, dated over the last six days; then Q keyword searches, each across
//! all of one user's conversations, one after another, over S users' connections. Each message's text is
//! five Latin words of a 2,000-word vocabulary and a run of two Chinese words of a 1,000-word one, so a
//! keyword is in about 1 message in 400 (Latin) or 500 (Chinese). Searches alternate a Latin word and a
//! two-character Chinese word.
//!
//! Reported: the import's rate and server CPU per message, search latency (all, Latin, Chinese), hits per
//! search, and the search index's size per message (SQLite's `dbstat`, when the bench started the
//! server). Checked: every hit is a message of the user that holds the keyword, newest first.

use std::time::Instant;

use duet_proto::client::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::args::SearchArgs;
use crate::stats::{self, Latency, Progress, round1, round3};
use crate::sys::{CpuUsage, CpuWindow};
use crate::target::{Target, rest_call, unix_now};
use crate::ws::{self, Buffers};
use crate::{BenchError, Outcome};

const LATIN_WORDS: u64 = 2_000;
const CHINESE_WORDS: u64 = 1_000;
/// The first characters of the Chinese words (each word is two of them).
const HAN: &str = "今天明年我你他她们的是在有不了人这中大为上个国到说时要就出会可也地后以自对生能而子那得于着下过";
const CONSONANTS: &[u8] = b"bdfghjklmnprstvwz";
const VOWELS: &[u8] = b"aeiou";

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchReport {
    pub messages: usize,
    pub users: usize,
    pub store_s: f64,
    pub stored_per_s: f64,
    /// Server CPU per imported message (the import as a whole: HTTP, parsing, the store, the index).
    pub server_cpu_us_per_import: Option<f64>,
    pub queries: usize,
    pub limit: u32,
    /// `search` request → its answer, every search.
    pub latency: Latency,
    pub latin_latency: Latency,
    pub chinese_latency: Latency,
    /// Messages found per search (at most `limit`), on average.
    pub hits_per_search: f64,
    /// Searches that found nothing.
    pub empty_searches: u64,
    /// Searches with more than a page of hits (a cursor in the answer).
    pub searches_with_more: u64,
    /// Hits that are not the user's, do not hold the keyword, or come after a newer one.
    pub wrong_hits: u64,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    pub server_cpu_us_per_search: Option<f64>,
    /// The search index (`message_search` and its shadow tables), in bytes, and per message.
    pub index_bytes: Option<u64>,
    pub index_bytes_per_message: Option<f64>,
    /// The `messages` table and its indexes, per message, for comparison.
    pub message_bytes_per_message: Option<f64>,
    /// The whole database file, per message.
    pub database_bytes_per_message: Option<f64>,
}

/// A well-mixed 64-bit number from `k` (SplitMix64), so the corpus is the same on every run.
fn mix(k: u64) -> u64 {
    let mut z = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Latin word `i`: two syllables, four letters (so none is the start of another).
fn latin(i: u64) -> String {
    let syllable = |n: u64| {
        let c = CONSONANTS[(n % CONSONANTS.len() as u64) as usize] as char;
        let v = VOWELS[(n / CONSONANTS.len() as u64 % VOWELS.len() as u64) as usize] as char;
        format!("{c}{v}")
    };
    let per = (CONSONANTS.len() * VOWELS.len()) as u64;
    format!("{}{}", syllable(i % per), syllable(i / per))
}

/// Chinese word `i`: two characters.
fn chinese(i: u64) -> String {
    let han: Vec<char> = HAN.chars().collect();
    let n = han.len() as u64;
    format!("{}{}", han[(i % n) as usize], han[(i / n % n) as usize])
}

/// Message `k`'s text.
fn text(k: u64) -> String {
    let mut words: Vec<String> = (0..5).map(|j| latin(mix(k * 8 + j) % LATIN_WORDS)).collect();
    words.push(format!("{}{}", chinese(mix(k * 8 + 5) % CHINESE_WORDS), chinese(mix(k * 8 + 6) % CHINESE_WORDS)));
    words.join(" ")
}

/// Message `k`'s sender and recipient, two different users of `users`.
fn parties(k: u64, users: u64) -> (usize, usize) {
    let a = mix(k ^ 0x5eed) % users;
    let b = (a + 1 + mix(k ^ 0xbeef) % (users - 1)) % users;
    (a as usize, b as usize)
}

pub(crate) async fn run(
    args: &SearchArgs,
    target: &Target,
    progress: &Progress,
) -> Result<Outcome<SearchReport>, BenchError> {
    if args.users < 2 || args.searchers == 0 || args.searchers > args.users || args.messages == 0 {
        return Err(BenchError::Args("give at least 2 users, 1 to --users searchers and 1 message".into()));
    }
    if !(1..=duet_proto::client::MAX_SEARCH_PAGE).contains(&args.limit) {
        return Err(BenchError::Args("--limit must be 1 to 100".into()));
    }
    let prefix = crate::run_prefix();
    let users: Vec<String> = (0..args.users).map(|i| format!("{prefix}s{i}")).collect();
    target.import_accounts(&users).await?;

    // The import, dated over the last six days (within the default roaming retention of seven).
    let n = args.messages as u64;
    let start = unix_now() - 6 * 86_400;
    let url = target.admin_url("openim/importmsg");
    let bar = progress.bar(n, "import");
    let cpu = CpuWindow::start(&target.pids);
    let t0 = Instant::now();
    let calls = (0..n).map(|k| {
        let (from, to) = parties(k, args.users as u64);
        let body = json!({
            "SyncFromOldSystem": 2,
            "From_Account": users[from],
            "To_Account": users[to],
            "MsgRandom": k as u32,
            "MsgTimeStamp": start + (k * 6 * 86_400 / n) as i64,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text(k)}}],
        })
        .to_string();
        let (url, bar) = (&url, &bar);
        async move {
            let r = rest_call(&target.http, url, body).await;
            bar.inc(1);
            r
        }
    });
    let mut results = futures_util::stream::iter(calls).buffer_unordered(args.store_concurrency.max(1));
    while let Some(r) = results.next().await {
        r?;
    }
    drop(results);
    let store_s = t0.elapsed().as_secs_f64();
    let import_cpu = cpu.finish();
    bar.finish_and_clear();

    let (index_bytes, message_bytes, database_bytes) = match target.data_dir() {
        Some(dir) => sizes(&dir.join("duet.db"))?,
        None => (None, None, None),
    };

    // The searches, one at a time, round the searchers.
    let mut conns = Vec::with_capacity(args.searchers);
    for user in &users[..args.searchers] {
        conns.push(ws::open(target, user, 0, Buffers::Large).await?.0);
    }
    let (mut all, mut latin_h, mut chinese_h) = (stats::histogram(), stats::histogram(), stats::histogram());
    let (mut hits, mut empty, mut with_more, mut wrong) = (0u64, 0u64, 0u64, 0u64);
    let bar = progress.bar(args.queries as u64, "search");
    let cpu = CpuWindow::start(&target.pids);
    for q in 0..args.queries {
        let (i, is_latin) = (q % args.searchers, q % 2 == 0);
        let (user, conn) = (&users[i], &mut conns[i]);
        let keyword = if is_latin {
            latin(mix(q as u64 ^ 0x4b1d) % LATIN_WORDS)
        } else {
            chinese(mix(q as u64 ^ 0x4b1d) % CHINESE_WORDS)
        };
        let id = q as u64 + 1;
        let frame = ClientFrame::Search {
            id,
            keywords: vec![keyword.clone()],
            peer: None,
            from: None,
            types: Vec::new(),
            since: None,
            until: None,
            limit: Some(args.limit),
            cursor: None,
        };
        let io = |e| BenchError::Connect(format!("{user}: {e}"));
        let t = Instant::now();
        conn.send(WsMessage::Text(ws::encode(&frame).into())).await.map_err(io)?;
        let (messages, cursor) = loop {
            let msg = conn.next().await.ok_or_else(|| BenchError::Connect(format!("{user}: closed")))?.map_err(io)?;
            let WsMessage::Text(text) = msg else { continue };
            match ws::scan(&text) {
                ws::Scanned::Other(ServerFrame::SearchResult { id: got, messages, cursor }) if got == id => {
                    break (messages, cursor);
                }
                ws::Scanned::Other(ServerFrame::Error { code, info, .. }) => {
                    return Err(BenchError::Refused { what: "search".into(), code, info });
                }
                _ => {}
            }
        };
        let ns = t.elapsed().as_nanos() as u64;
        stats::record(&mut all, ns);
        stats::record(if is_latin { &mut latin_h } else { &mut chinese_h }, ns);
        bar.inc(1);
        hits += messages.len() as u64;
        empty += u64::from(messages.is_empty());
        with_more += u64::from(cursor.is_some());
        let mut last_time = i64::MAX;
        for m in &messages {
            let mine = m.from == *user || m.to == *user;
            wrong += u64::from(!mine || !m.body.get().contains(&keyword) || m.time > last_time);
            last_time = m.time;
        }
    }
    let search_cpu = cpu.finish();
    bar.finish_and_clear();
    for mut conn in conns {
        let _ = conn.close(None).await;
    }

    let mut failures = Vec::new();
    if wrong > 0 {
        failures.push(format!("search: {wrong} hits were another user's, lacked the keyword or were out of order"));
    }
    let mut notes = Vec::new();
    if hits == 0 && args.queries > 0 {
        failures.push("search: no search found anything".into());
    }
    if index_bytes.is_none() {
        notes.push("the index's size is measured only on a server the bench starts".into());
    }
    let per_message = |b: Option<u64>| b.map(|b| round1(b as f64 / n as f64));
    let report = SearchReport {
        messages: args.messages,
        users: args.users,
        store_s: round3(store_s),
        stored_per_s: round1(n as f64 / store_s.max(1e-9)),
        server_cpu_us_per_import: import_cpu.server_cpu_us.map(|us| round1(us / n as f64)),
        queries: args.queries,
        limit: args.limit,
        latency: Latency::of(&all),
        latin_latency: Latency::of(&latin_h),
        chinese_latency: Latency::of(&chinese_h),
        hits_per_search: round1(hits as f64 / args.queries.max(1) as f64),
        empty_searches: empty,
        searches_with_more: with_more,
        wrong_hits: wrong,
        server_cpu_us_per_search: search_cpu.server_cpu_us.map(|us| round1(us / args.queries.max(1) as f64)),
        cpu: search_cpu.rounded(),
        index_bytes,
        index_bytes_per_message: per_message(index_bytes),
        message_bytes_per_message: per_message(message_bytes),
        database_bytes_per_message: per_message(database_bytes),
    };
    Ok(Outcome { report, failures, notes })
}

/// The bytes of the search index, of the `messages` table with its indexes, and of the whole database,
/// read with SQLite's `dbstat` beside the running server (a WAL reader sees its last commit).
type Sizes = (Option<u64>, Option<u64>, Option<u64>);

fn sizes(db: &std::path::Path) -> Result<Sizes, BenchError> {
    let fail = |e: rusqlite::Error| BenchError::Setup(format!("measuring {}: {e}", db.display()));
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(fail)?;
    let sum = |filter: &str| -> Result<u64, BenchError> {
        c.query_row(&format!("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE {filter}"), [], |r| r.get::<_, i64>(0))
            .map(|b| b as u64)
            .map_err(fail)
    };
    let index = sum("name LIKE 'message_search%'")?;
    let messages = sum("name IN ('messages', 'messages_conversation', 'messages_time')")?;
    let total = sum("1")?;
    Ok((Some(index), Some(messages), Some(total)))
}

#[cfg(test)]
mod tests {
    use super::{LATIN_WORDS, chinese, latin, parties, text};

    #[test]
    fn the_corpus_has_distinct_words_and_two_parties() {
        let words: std::collections::HashSet<String> = (0..LATIN_WORDS).map(latin).collect();
        assert_eq!(words.len(), LATIN_WORDS as usize);
        assert!(words.iter().all(|w| w.len() == 4));
        assert_eq!(chinese(0).chars().count(), 2);
        assert_eq!(text(7).split(' ').count(), 6);
        for k in 0..1000 {
            let (a, b) = parties(k, 3);
            assert!(a != b && a < 3 && b < 3);
        }
    }
}

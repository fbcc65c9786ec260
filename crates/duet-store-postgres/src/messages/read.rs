//! The reads: history, looked-up messages, the sync log, the recent contacts, unread counts, the export.
//! A read of one statement sees one snapshot by itself; one of several statements that must agree runs in
//! a read-only snapshot ([`crate::snapshot`]).

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::Transaction;
use duet_core::model::{
    ConversationView, ExportCursor, ExportPage, HistoryPage, HistoryQuery, LogEntry, LogEvent, LogPage, MsgKey,
    StoredMessage,
};
use duet_core::store::StoreError;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::write::{RECENT_FIRST, pair};
use super::{
    KIND_CLEAR, KIND_CLEAR_CONVERSATION, KIND_DELETE, KIND_MODIFY, KIND_MSG, KIND_PEER_READ, KIND_READ, KIND_RECALL,
    KIND_RECEIPT, KIND_SETTINGS, MESSAGE_COLUMN_COUNT, MESSAGE_COLUMNS, SETTINGS_COLUMNS, SHOWN_TO_OWNER, key_params,
    read_message, read_settings,
};
use crate::{PgStore, backend, query, query_opt};

/// A count or a limit as a bound parameter.
fn bound(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// [`crate::query`] in a snapshot.
async fn rows(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
    let st = tx.prepare_cached(sql).await.map_err(backend)?;
    tx.query(&st, params).await.map_err(backend)
}

/// [`crate::query_opt`] in a snapshot.
async fn row(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, StoreError> {
    let st = tx.prepare_cached(sql).await.map_err(backend)?;
    tx.query_opt(&st, params).await.map_err(backend)
}

/// The uids of two users (`None` for one without an account).
async fn two_uids(tx: &Transaction<'_>, a: &str, b: &str) -> Result<(Option<i64>, Option<i64>), StoreError> {
    let r = row(
        tx,
        "SELECT (SELECT uid FROM accounts WHERE user_id = $1), (SELECT uid FROM accounts WHERE user_id = $2)",
        &[&a, &b],
    )
    .await?
    .ok_or_else(|| crate::invalid("a select without FROM gave no row"))?;
    Ok((r.get(0), r.get(1)))
}

/// How far each side of the conversation between `a` and `b` has read: `(a's, b's)`.
async fn read_times(tx: &Transaction<'_>, a: i64, b: i64) -> Result<(i64, i64), StoreError> {
    let r = row(
        tx,
        "SELECT coalesce((SELECT read_time FROM conversations WHERE owner = $1 AND peer = $2), 0), \
                coalesce((SELECT read_time FROM conversations WHERE owner = $2 AND peer = $1), 0)",
        &[&a, &b],
    )
    .await?
    .ok_or_else(|| crate::invalid("a select without FROM gave no row"))?;
    Ok((r.get(0), r.get(1)))
}

/// Runs `read` in a snapshot, which it ends on every path (a transaction merely dropped would leave its
/// connection idle in a transaction, back in the pool).
macro_rules! in_snapshot {
    ($store:expr, |$tx:ident| $read:expr) => {{
        let mut c = $store.reader().await?;
        let $tx = crate::snapshot(&mut c).await?;
        let out = $read;
        let ended = $tx.commit().await;
        let out = out?;
        ended.map_err(backend)?;
        Ok(out)
    }};
}

pub(super) async fn history(store: &PgStore, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
    in_snapshot!(store, |tx| history_in(&tx, q).await)
}

async fn history_in(tx: &Transaction<'_>, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
    let (Some(op), Some(peer)) = two_uids(tx, &q.operator, &q.peer).await? else {
        return Ok(HistoryPage { messages: Vec::new(), more: false, conv_seq: 0 });
    };
    let (lo, hi) = pair(op, peer);
    let conv_seq = row(tx, "SELECT seq FROM threads WHERE lo = $1 AND hi = $2", &[&lo, &hi])
        .await?
        .map_or(0, |r| r.get::<_, i64>(0).max(0) as u64);
    let (op_read, peer_read) = read_times(tx, op, peer).await?;
    // The cursor: strictly older than the message `before` names, in (time, seq, random) order, which is
    // the conversation index's (a MsgKey is unique in its conversation), so a page is one index range.
    let cursor = match &q.before {
        None => (i64::MAX, i64::MAX, i64::MAX),
        Some(k) => key_params(k),
    };
    let limit = bound(q.limit.min(usize::MAX - 1) + 1);
    let found = rows(
        tx,
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.lo = $2 AND m.hi = $3 AND m.time >= $4 AND m.time <= $5 \
               AND (m.time, m.seq, m.random) < ($6, $7, $8) AND {SHOWN_TO_OWNER} \
             ORDER BY m.time DESC, m.seq DESC, m.random DESC LIMIT $9"
        ),
        &[&op, &lo, &hi, &q.min_time, &q.max_time, &cursor.0, &cursor.1, &cursor.2, &limit],
    )
    .await?;
    let names = |uid: i64| if uid == op { q.operator.clone() } else { q.peer.clone() };
    let mut messages: Vec<StoredMessage> = found
        .iter()
        .map(|r| {
            let mut m = read_message(r, 0, names);
            m.peer_read = m.key.time <= if m.from == q.operator { peer_read } else { op_read };
            m
        })
        .collect();
    let more = messages.len() > q.limit;
    messages.truncate(q.limit);
    Ok(HistoryPage { messages, more, conv_seq })
}

pub(super) async fn find_messages(
    store: &PgStore,
    owner: &str,
    peer: &str,
    keys: &[MsgKey],
) -> Result<Vec<Option<StoredMessage>>, StoreError> {
    in_snapshot!(store, |tx| find_in(&tx, owner, peer, keys).await)
}

async fn find_in(
    tx: &Transaction<'_>,
    owner: &str,
    peer: &str,
    keys: &[MsgKey],
) -> Result<Vec<Option<StoredMessage>>, StoreError> {
    let (Some(op), Some(p)) = two_uids(tx, owner, peer).await? else {
        return Ok(vec![None; keys.len()]);
    };
    let (lo, hi) = pair(op, p);
    let (op_read, peer_read) = read_times(tx, op, p).await?;
    let names = |uid: i64| if uid == op { owner.to_owned() } else { peer.to_owned() };
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let (time, seq, random) = key_params(k);
        let found = row(
            tx,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m \
                 WHERE m.lo = $2 AND m.hi = $3 AND m.time = $4 AND m.seq = $5 AND m.random = $6 AND {SHOWN_TO_OWNER}"
            ),
            &[&op, &lo, &hi, &time, &seq, &random],
        )
        .await?;
        out.push(found.map(|r| {
            let mut m = read_message(&r, 0, names);
            m.peer_read = m.key.time <= if m.from == owner { peer_read } else { op_read };
            m
        }));
    }
    Ok(out)
}

pub(super) async fn latest_seq(store: &PgStore, user: &str) -> Result<Option<u64>, StoreError> {
    let c = store.reader().await?;
    let found = query_opt(&c, "SELECT log_seq FROM accounts WHERE user_id = $1", &[&user]).await?;
    Ok(found.map(|r| r.get::<_, i64>(0).max(0) as u64))
}

/// Where [`SETTINGS_COLUMNS`] start in `log_after`'s rows.
const SETTINGS_AT: usize = 6 + MESSAGE_COLUMN_COUNT;

pub(super) async fn log_after(
    store: &PgStore,
    user: &str,
    after: u64,
    limit: usize,
    max_bytes: usize,
) -> Result<LogPage, StoreError> {
    in_snapshot!(store, |tx| log_in(&tx, user, after, limit, max_bytes).await)
}

async fn log_in(
    tx: &Transaction<'_>,
    user: &str,
    after: u64,
    limit: usize,
    max_bytes: usize,
) -> Result<LogPage, StoreError> {
    let Some(account) = row(tx, "SELECT uid, log_seq FROM accounts WHERE user_id = $1", &[&user]).await? else {
        return Ok(LogPage { entries: Vec::new(), latest: 0, more: false });
    };
    let (owner, latest): (i64, i64) = (account.get(0), account.get(1));
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let found = rows(
        tx,
        &format!(
            "SELECT i.seq, i.kind, i.time, p.user_id, su.user_id, ru.user_id, {MESSAGE_COLUMNS}, {SETTINGS_COLUMNS} \
             FROM inbox i \
             LEFT JOIN conversation_settings cs ON i.kind = 9 AND cs.owner = i.uid AND cs.peer = i.peer \
             LEFT JOIN messages m ON m.id = i.msg_id AND m.time = i.time \
             LEFT JOIN accounts p ON p.uid = i.peer \
             LEFT JOIN accounts su ON su.uid = m.sender \
             LEFT JOIN accounts ru ON ru.uid = m.receiver \
             WHERE i.uid = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3"
        ),
        &[&owner, &after, &bound(limit.min(usize::MAX - 1) + 1)],
    )
    .await?;
    let mut entries = Vec::new();
    let (mut count, mut bytes, mut full, mut more) = (0, 0, false, false);
    for r in &found {
        count += 1;
        if count > limit || full {
            more = true;
            break;
        }
        let seq = r.get::<_, i64>(0).max(0) as u64;
        let kind: i16 = r.get(1);
        let (sender_name, receiver_name): (Option<String>, Option<String>) = (r.get(4), r.get(5));
        let event = match (kind, sender_name, receiver_name) {
            (KIND_SETTINGS, _, _) => match r.get::<_, Option<String>>(3) {
                Some(peer) => LogEvent::Settings { peer, settings: read_settings(r, SETTINGS_AT) },
                None => continue,
            },
            (KIND_READ | KIND_PEER_READ | KIND_CLEAR | KIND_CLEAR_CONVERSATION, _, _) => {
                let Some(peer) = r.get::<_, Option<String>>(3) else {
                    continue;
                };
                let time = r.get::<_, Option<i64>>(2).unwrap_or(0);
                match kind {
                    KIND_READ => LogEvent::Read { peer, time },
                    KIND_PEER_READ => LogEvent::PeerRead { peer, time },
                    _ => LogEvent::Cleared {
                        peer,
                        upto: time.max(0) as u64,
                        conversation: kind == KIND_CLEAR_CONVERSATION,
                    },
                }
            }
            (KIND_MSG | KIND_RECALL | KIND_RECEIPT | KIND_MODIFY | KIND_DELETE, Some(s), Some(rc)) => {
                let sender_uid: i64 = r.get(6);
                let m = read_message(r, 6, |uid| if uid == sender_uid { s.clone() } else { rc.clone() });
                bytes += m.body.len() + m.cloud_custom_data.len();
                bytes +=
                    m.sender.nick.as_ref().map_or(0, String::len) + m.sender.face_url.as_ref().map_or(0, String::len);
                full = bytes >= max_bytes;
                let peer = if s == user { rc } else { s };
                match kind {
                    KIND_MSG => LogEvent::Message(Arc::new(m)),
                    KIND_MODIFY => LogEvent::Modified(Arc::new(m)),
                    KIND_DELETE => LogEvent::Deleted { peer, key: m.key },
                    KIND_RECEIPT => LogEvent::Receipt { peer, key: m.key, time: m.receipt_time.unwrap_or_default() },
                    _ => LogEvent::Recall { by: m.revoker.unwrap_or_else(|| m.from.clone()), peer, key: m.key },
                }
            }
            // The message or an account expired or was deleted: nothing left to deliver.
            _ => continue,
        };
        entries.push(LogEntry { seq, event });
    }
    Ok(LogPage { entries, latest: latest.max(0) as u64, more })
}

pub(super) async fn conversations(
    store: &PgStore,
    user: &str,
    limit: usize,
) -> Result<Vec<ConversationView>, StoreError> {
    let c = store.reader().await?;
    let found = query(
        &c,
        &format!(
            "SELECT p.user_id, c.unread, c.last_time, c.peer, coalesce(t.seq, 0), coalesce(o.read_time, 0), \
             {MESSAGE_COLUMNS}, {SETTINGS_COLUMNS} \
             FROM conversations c JOIN accounts p ON p.uid = c.peer LEFT JOIN messages m ON m.id = c.last_msg_id \
             LEFT JOIN conversation_settings cs ON cs.owner = c.owner AND cs.peer = c.peer \
             LEFT JOIN threads t ON t.lo = LEAST(c.owner, c.peer) AND t.hi = GREATEST(c.owner, c.peer) \
             LEFT JOIN conversations o ON o.owner = c.peer AND o.peer = c.owner \
             WHERE c.owner = (SELECT uid FROM accounts WHERE user_id = $1) AND c.last_time > 0 \
             ORDER BY coalesce(cs.pinned_at, 0) DESC, {RECENT_FIRST} LIMIT $2"
        ),
        &[&user, &bound(limit)],
    )
    .await?;
    Ok(found
        .iter()
        .map(|r| {
            let peer: String = r.get(0);
            let peer_uid: i64 = r.get(3);
            let last = r
                .get::<_, Option<i64>>(6)
                .map(|_| read_message(r, 6, |uid| if uid == peer_uid { peer.clone() } else { user.to_owned() }));
            let settings = read_settings(r, 6 + MESSAGE_COLUMN_COUNT);
            ConversationView {
                unread: r.get::<_, i64>(1).max(0) as u64,
                time: r.get(2),
                conv_seq: r.get::<_, i64>(4).max(0) as u64,
                peer_read_time: r.get(5),
                last,
                settings,
                peer,
            }
        })
        .collect())
}

pub(super) async fn unread(store: &PgStore, owner: &str, peers: &[String]) -> Result<Vec<u64>, StoreError> {
    let c = store.reader().await?;
    let counts: HashMap<String, i64> = query(
        &c,
        "SELECT a.user_id, c.unread FROM conversations c JOIN accounts a ON a.uid = c.peer \
         WHERE c.owner = (SELECT uid FROM accounts WHERE user_id = $1) AND a.user_id = ANY($2)",
        &[&owner, &peers],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    Ok(peers.iter().map(|p| counts.get(p).copied().unwrap_or(0).max(0) as u64).collect())
}

pub(super) async fn unread_total(store: &PgStore, owner: &str) -> Result<u64, StoreError> {
    let c = store.reader().await?;
    let found = query_opt(
        &c,
        "SELECT coalesce(sum(c.unread), 0)::BIGINT FROM conversations c JOIN accounts a ON a.uid = c.owner \
         LEFT JOIN conversation_settings s ON s.owner = c.owner AND s.peer = c.peer \
         WHERE a.user_id = $1 AND coalesce(s.receive_opt, 0) = 0",
        &[&owner],
    )
    .await?;
    Ok(found.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}

/// Every message with its time in [`start`, `end`) after `after`, in (time, id) order: one range of the
/// `messages_time` index. Rows naming a deleted account are skipped, though they count toward the page
/// and move the cursor.
pub(super) async fn export_messages(
    store: &PgStore,
    start: i64,
    end: i64,
    after: Option<ExportCursor>,
    limit: usize,
) -> Result<ExportPage, StoreError> {
    let limit = limit.clamp(1, usize::MAX - 1);
    let (after_time, after_id) = match after {
        Some(a) => (a.time, i64::try_from(a.id).unwrap_or(i64::MAX)),
        None => (i64::MIN, i64::MIN),
    };
    let c = store.reader().await?;
    let found = query(
        &c,
        &format!(
            "SELECT m.id, su.user_id, ru.user_id, {MESSAGE_COLUMNS} FROM messages m \
             LEFT JOIN accounts su ON su.uid = m.sender \
             LEFT JOIN accounts ru ON ru.uid = m.receiver \
             WHERE m.time >= $1 AND m.time < $2 AND (m.time, m.id) > ($3, $4) \
             ORDER BY m.time, m.id LIMIT $5"
        ),
        &[&start, &end, &after_time, &after_id, &bound(limit + 1)],
    )
    .await?;
    let (mut messages, mut last) = (Vec::new(), None);
    let more = found.len() > limit;
    for r in found.iter().take(limit) {
        let id: i64 = r.get(0);
        let time: i64 = r.get(5);
        last = Some(ExportCursor { time, id: id.max(0) as u64 });
        let (Some(s), Some(rc)): (Option<String>, Option<String>) = (r.get(1), r.get(2)) else {
            continue;
        };
        let sender_uid: i64 = r.get(3);
        messages.push(read_message(r, 3, |uid| if uid == sender_uid { s.clone() } else { rc.clone() }));
    }
    Ok(ExportPage { messages, next: if more { last } else { None } })
}

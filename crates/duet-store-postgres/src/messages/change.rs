//! What changes stored messages and conversations after the send: recalls, reads, read receipts, edits,
//! deletes from one side, clearing, conversation settings; and the purge of what expired. Each runs inside
//! the writer's transaction, after the account rows of both users it names are locked.

use std::sync::Arc;

use duet_core::model::event::AfterEvent;
use duet_core::model::{
    ConversationSettings, Delivery, LogEntry, LogEvent, MsgKey, Purged, SettingsChange, StoredMessage,
};
use duet_core::store::{Cutoffs, Edit, Modified, StoreError, Withdrawn};

use super::write::{append_log, pair, thread};
use super::{
    HIDDEN_FROM_RECEIVER, HIDDEN_FROM_SENDER, KIND_CLEAR, KIND_CLEAR_CONVERSATION, KIND_DELETE, KIND_MODIFY,
    KIND_PEER_READ, KIND_READ, KIND_RECALL, KIND_RECEIPT, KIND_SETTINGS, MESSAGE_COLUMNS, NEED_RECEIPT, NO_UNREAD,
    RECALLED, SETTINGS_COLUMNS, SHOWN_TO_OWNER, key_params, read_message, read_settings,
};
use crate::writer::{Conn, Locks};
use crate::{execute, query_opt};

/// Rows deleted per statement by a purge, so that one statement never runs for long.
const PURGE_CHUNK: i64 = 10_000;

type Changed<R> = Result<(R, Vec<Delivery>), StoreError>;

/// The flag that hides a message from `owner`'s side: the sender's or the receiver's (both for a message to
/// oneself).
const fn hidden_from(owner: i64, sender: i64, receiver: i64) -> i32 {
    (if sender == owner { HIDDEN_FROM_SENDER } else { 0 }) | (if receiver == owner { HIDDEN_FROM_RECEIVER } else { 0 })
}

/// Both users' uids, when both accounts exist.
fn both(locks: &Locks, a: &str, b: &str) -> Option<(i64, i64)> {
    Some((locks.uid(a)?, locks.uid(b)?))
}

fn entry(user: &str, seq: u64, event: LogEvent) -> Delivery {
    Delivery { user: user.to_owned(), entry: LogEntry { seq, event } }
}

#[expect(clippy::too_many_arguments, reason = "the store method's arguments")]
pub(super) async fn withdraw(
    c: &Conn,
    locks: &Locks,
    from: &str,
    to: &str,
    key: MsgKey,
    by: &str,
    expire_at: i64,
    event: Option<AfterEvent>,
) -> Changed<Withdrawn> {
    let Some((sender, receiver)) = both(locks, from, to) else {
        return Ok((Withdrawn::NotFound, Vec::new()));
    };
    let (lo, hi) = pair(sender, receiver);
    let (time, seq, random) = key_params(&key);
    let found = query_opt(
        c,
        "SELECT id, flags FROM messages WHERE lo = $1 AND hi = $2 AND time = $3 AND seq = $4 AND random = $5 \
         AND sender = $6 ORDER BY id LIMIT 1",
        &[&lo, &hi, &time, &seq, &random, &sender],
    )
    .await?;
    let Some((id, flags)) = found.map(|r| (r.get::<_, i64>(0), r.get::<_, i32>(1))) else {
        return Ok((Withdrawn::NotFound, Vec::new()));
    };
    if flags & RECALLED != 0 {
        return Ok((Withdrawn::AlreadyRecalled, Vec::new()));
    }
    execute(c, "UPDATE messages SET flags = flags | 1, revoker = $2 WHERE id = $1", &[&id, &by]).await?;
    crate::search::unindex(c, id).await?;
    // Counted as unread only while neither exempt nor deleted by its recipient (which already uncounted it).
    if flags & (NO_UNREAD | HIDDEN_FROM_RECEIVER) == 0 {
        execute(
            c,
            "UPDATE conversations SET unread = GREATEST(unread - 1, 0) \
             WHERE owner = $1 AND peer = $2 AND read_time < $3",
            &[&receiver, &sender, &key.time],
        )
        .await?;
    }
    let mut deliveries = Vec::with_capacity(2);
    let mut sides = vec![(receiver, to, from)];
    if sender != receiver && flags & HIDDEN_FROM_SENDER == 0 {
        sides.push((sender, from, to));
    }
    for (owner, name, peer) in sides {
        let seq = append_log(c, owner, KIND_RECALL, Some(id), None, Some(key.time), expire_at).await?;
        deliveries.push(entry(name, seq, LogEvent::Recall { peer: peer.to_owned(), key, by: by.to_owned() }));
    }
    if let Some(event) = event {
        crate::callbacks::queue_event(c, event, None).await?;
    }
    Ok((Withdrawn::Done, deliveries))
}

pub(super) async fn set_read(
    c: &Conn,
    locks: &Locks,
    owner: &str,
    peer: &str,
    time: i64,
    expire_at: i64,
    event: Option<AfterEvent>,
) -> Changed<bool> {
    let Some((o, p)) = both(locks, owner, peer) else {
        return Ok((false, Vec::new()));
    };
    let before: i64 = query_opt(c, "SELECT read_time FROM conversations WHERE owner = $1 AND peer = $2", &[&o, &p])
        .await?
        .map_or(0, |r| r.get(0));
    execute(
        c,
        "INSERT INTO conversations (owner, peer, read_time) VALUES ($1, $2, $3) \
         ON CONFLICT (owner, peer) DO UPDATE SET read_time = GREATEST(conversations.read_time, excluded.read_time)",
        &[&o, &p, &time],
    )
    .await?;
    let (lo, hi) = pair(o, p);
    execute(
        c,
        "UPDATE conversations SET unread = ( \
           SELECT count(*) FROM messages m WHERE m.lo = $3 AND m.hi = $4 \
             AND m.sender = $2 AND m.receiver = $1 AND m.time > conversations.read_time AND m.flags & 13 = 0) \
         WHERE owner = $1 AND peer = $2",
        &[&o, &p, &lo, &hi],
    )
    .await?;
    let seq = append_log(c, o, KIND_READ, None, Some(p), Some(time), expire_at).await?;
    let mut deliveries = vec![entry(owner, seq, LogEvent::Read { peer: peer.to_owned(), time })];
    // The read receipt, when the read time moved.
    if time > before && o != p {
        let seq = append_log(c, p, KIND_PEER_READ, None, Some(o), Some(time), expire_at).await?;
        deliveries.push(entry(peer, seq, LogEvent::PeerRead { peer: owner.to_owned(), time }));
    }
    if let Some(event) = event {
        crate::callbacks::queue_event(c, event, None).await?;
    }
    Ok((true, deliveries))
}

pub(super) async fn ack_receipts(
    c: &Conn,
    locks: &Locks,
    reader: &str,
    sender: &str,
    keys: &[MsgKey],
    time: i64,
    expire_at: i64,
) -> Changed<Vec<Option<i64>>> {
    let Some((r, s)) = both(locks, reader, sender) else {
        return Ok((vec![None; keys.len()], Vec::new()));
    };
    let (lo, hi) = pair(r, s);
    let mut deliveries = Vec::new();
    let mut times = Vec::with_capacity(keys.len());
    for key in keys {
        let (t, seq, random) = key_params(key);
        let found = query_opt(
            c,
            "SELECT id, flags, receipt_time FROM messages WHERE lo = $1 AND hi = $2 \
             AND time = $3 AND seq = $4 AND random = $5 AND sender = $6 AND receiver = $7",
            &[&lo, &hi, &t, &seq, &random, &s, &r],
        )
        .await?
        .map(|row| (row.get::<_, i64>(0), row.get::<_, i32>(1), row.get::<_, Option<i64>>(2)));
        // Asked for, neither recalled nor hidden from the reader.
        let wanted = |(_, flags, _): &(i64, i32, Option<i64>)| {
            flags & (NEED_RECEIPT | RECALLED | HIDDEN_FROM_RECEIVER) == NEED_RECEIPT
        };
        let Some((id, _, receipt)) = found.filter(wanted) else {
            times.push(None);
            continue;
        };
        if receipt.is_some() {
            times.push(receipt);
            continue;
        }
        execute(c, "UPDATE messages SET receipt_time = $2 WHERE id = $1", &[&id, &time]).await?;
        times.push(Some(time));
        let seq = append_log(c, s, KIND_RECEIPT, Some(id), None, Some(key.time), expire_at).await?;
        deliveries.push(entry(sender, seq, LogEvent::Receipt { peer: reader.to_owned(), key: *key, time }));
    }
    Ok((times, deliveries))
}

pub(super) async fn update_conversation(
    c: &Conn,
    locks: &Locks,
    owner: &str,
    peer: &str,
    change: &SettingsChange,
    now: i64,
    expire_at: i64,
) -> Changed<Option<ConversationSettings>> {
    let Some((o, p)) = both(locks, owner, peer) else {
        return Ok((None, Vec::new()));
    };
    execute(c, "INSERT INTO conversation_settings (owner, peer) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&o, &p])
        .await?;
    let row = query_opt(
        c,
        &format!(
            "UPDATE conversation_settings AS cs SET \
               pinned_at = CASE $3::INTEGER WHEN 1 THEN CASE WHEN cs.pinned_at > 0 THEN cs.pinned_at ELSE $9::BIGINT END \
                 WHEN 0 THEN 0 ELSE cs.pinned_at END, \
               marks = (cs.marks | $4::BIGINT) & ~$5::BIGINT, \
               custom_data = coalesce($6::TEXT, cs.custom_data), \
               draft = coalesce($7::TEXT, cs.draft), \
               draft_time = CASE WHEN $7::TEXT IS NULL THEN cs.draft_time WHEN $7::TEXT = '' THEN 0 ELSE $9::BIGINT END, \
               receive_opt = coalesce($8::SMALLINT, cs.receive_opt) \
             WHERE cs.owner = $1 AND cs.peer = $2 RETURNING {SETTINGS_COLUMNS}"
        ),
        &[
            &o,
            &p,
            &change.pinned.map(i32::from),
            &(change.set_marks as i64),
            &(change.clear_marks as i64),
            &change.custom_data,
            &change.draft,
            &change.receive.map(|r| i16::from(r.number())),
            &now,
        ],
    )
    .await?
    .ok_or_else(|| crate::invalid("conversation settings vanished under their owner's lock"))?;
    let settings = read_settings(&row, 0);
    let seq = append_log(c, o, KIND_SETTINGS, None, Some(p), None, expire_at).await?;
    let event = LogEvent::Settings { peer: peer.to_owned(), settings: settings.clone() };
    Ok((Some(settings), vec![entry(owner, seq, event)]))
}

pub(super) async fn clear_conversation(
    c: &Conn,
    locks: &Locks,
    owner: &str,
    peer: &str,
    clear_history: bool,
    delete_conversation: bool,
    expire_at: i64,
) -> Changed<bool> {
    let Some((o, p)) = both(locks, owner, peer) else {
        return Ok((false, Vec::new()));
    };
    let upto = if clear_history { thread(c, o, p).await?.conv_seq } else { 0 };
    if clear_history {
        let (lo, hi) = pair(o, p);
        execute(
            c,
            "UPDATE messages SET flags = flags | CASE WHEN sender = $1 THEN 2 ELSE 0 END \
               | CASE WHEN receiver = $1 THEN 4 ELSE 0 END \
             WHERE lo = $2 AND hi = $3 AND (sender = $1 OR receiver = $1)",
            &[&o, &lo, &hi],
        )
        .await?;
        execute(c, "UPDATE conversations SET unread = 0, last_msg_id = NULL WHERE owner = $1 AND peer = $2", &[&o, &p])
            .await?;
    }
    if delete_conversation {
        execute(c, "DELETE FROM conversations WHERE owner = $1 AND peer = $2", &[&o, &p]).await?;
        execute(
            c,
            "UPDATE conversation_settings SET pinned_at = 0, marks = 0, custom_data = '', draft = '', draft_time = 0 \
             WHERE owner = $1 AND peer = $2",
            &[&o, &p],
        )
        .await?;
    }
    let kind = if delete_conversation { KIND_CLEAR_CONVERSATION } else { KIND_CLEAR };
    let seq = append_log(c, o, kind, None, Some(p), Some(upto as i64), expire_at).await?;
    let event = LogEvent::Cleared { peer: peer.to_owned(), upto, conversation: delete_conversation };
    Ok((true, vec![entry(owner, seq, event)]))
}

pub(super) async fn delete_messages(
    c: &Conn,
    locks: &Locks,
    owner: &str,
    peer: &str,
    keys: &[MsgKey],
    expire_at: i64,
) -> Changed<Vec<bool>> {
    let Some((o, p)) = both(locks, owner, peer) else {
        return Ok((vec![false; keys.len()], Vec::new()));
    };
    let (lo, hi) = pair(o, p);
    let mut deleted = Vec::with_capacity(keys.len());
    let mut deliveries = Vec::new();
    for key in keys {
        let (time, seq, random) = key_params(key);
        let found = query_opt(
            c,
            "SELECT id, sender, receiver, flags FROM messages WHERE lo = $1 AND hi = $2 \
             AND time = $3 AND seq = $4 AND random = $5",
            &[&lo, &hi, &time, &seq, &random],
        )
        .await?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2), r.get::<_, i32>(3)));
        let Some((id, sender, receiver, flags)) = found else {
            deleted.push(false);
            continue;
        };
        let hide = hidden_from(o, sender, receiver);
        if flags & hide == hide {
            deleted.push(false);
            continue;
        }
        execute(c, "UPDATE messages SET flags = flags | $2 WHERE id = $1", &[&id, &hide]).await?;
        if receiver == o && sender != o && flags & (RECALLED | NO_UNREAD | HIDDEN_FROM_RECEIVER) == 0 {
            execute(
                c,
                "UPDATE conversations SET unread = GREATEST(unread - 1, 0) \
                 WHERE owner = $1 AND peer = $2 AND read_time < $3",
                &[&o, &p, &key.time],
            )
            .await?;
        }
        // The latest message left becomes the conversation's last when this one was.
        execute(
            c,
            &format!(
                "UPDATE conversations SET last_msg_id = (SELECT m.id FROM messages m \
                   WHERE m.lo = $4 AND m.hi = $5 AND {SHOWN_TO_OWNER} \
                   ORDER BY m.time DESC, m.seq DESC, m.random DESC LIMIT 1) \
                 WHERE owner = $1 AND peer = $2 AND last_msg_id = $3"
            ),
            &[&o, &p, &id, &lo, &hi],
        )
        .await?;
        let seq = append_log(c, o, KIND_DELETE, Some(id), None, Some(key.time), expire_at).await?;
        deliveries.push(entry(owner, seq, LogEvent::Deleted { peer: peer.to_owned(), key: *key }));
        deleted.push(true);
    }
    Ok((deleted, deliveries))
}

pub(super) async fn modify(c: &Conn, locks: &Locks, e: &Edit, expire_at: i64) -> Changed<Modified> {
    let Some((sender, receiver)) = both(locks, &e.from, &e.to) else {
        return Ok((Modified::NotFound, Vec::new()));
    };
    let (lo, hi) = pair(sender, receiver);
    let (time, seq, random) = key_params(&e.key);
    let found = query_opt(
        c,
        "SELECT id, flags, version FROM messages WHERE lo = $1 AND hi = $2 AND time = $3 \
         AND seq = $4 AND random = $5 AND sender = $6 AND receiver = $7",
        &[&lo, &hi, &time, &seq, &random, &sender, &receiver],
    )
    .await?
    .map(|r| (r.get::<_, i64>(0), r.get::<_, i32>(1), r.get::<_, i32>(2)));
    let Some((id, flags, version)) = found else {
        return Ok((Modified::NotFound, Vec::new()));
    };
    let read = async || -> Result<StoredMessage, StoreError> {
        let r = query_opt(c, &format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1"), &[&id])
            .await?
            .ok_or_else(|| crate::invalid("an edited message vanished under its users' locks"))?;
        Ok(read_message(&r, 0, |uid| if uid == sender { e.from.clone() } else { e.to.clone() }))
    };
    if flags & RECALLED != 0 {
        return Ok((Modified::Recalled, Vec::new()));
    }
    if e.base_version.is_some_and(|v| i64::from(v) != i64::from(version)) {
        return Ok((Modified::Conflict(read().await?), Vec::new()));
    }
    execute(
        c,
        "UPDATE messages SET body = coalesce($2, body), cloud_custom_data = coalesce($3, cloud_custom_data), \
         version = version + 1 WHERE id = $1",
        &[&id, &e.body, &e.cloud_custom_data],
    )
    .await?;
    if let Some(body) = &e.body {
        crate::search::unindex(c, id).await?;
        crate::search::index(c, id, sender, receiver, body).await?;
    }
    let msg = Arc::new(read().await?);
    let mut sides = Vec::with_capacity(2);
    if flags & HIDDEN_FROM_RECEIVER == 0 {
        sides.push((receiver, &e.to));
    }
    if sender != receiver && flags & HIDDEN_FROM_SENDER == 0 {
        sides.push((sender, &e.from));
    }
    let mut deliveries = Vec::with_capacity(sides.len());
    for (owner, name) in sides {
        let seq = append_log(c, owner, KIND_MODIFY, Some(id), None, Some(e.key.time), expire_at).await?;
        deliveries.push(entry(name, seq, LogEvent::Modified(msg.clone())));
    }
    Ok((Modified::Done((*msg).clone()), deliveries))
}

/// Deletes, `PURGE_CHUNK` rows a statement, what `sql` (with `$1` the cutoff and `$2` the chunk) deletes:
/// how many rows went.
async fn chunked(c: &Conn, sql: &str, cutoff: i64) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let n = execute(c, sql, &[&cutoff, &PURGE_CHUNK]).await?;
        total += n;
        if n < PURGE_CHUNK as u64 {
            return Ok(total);
        }
    }
}

pub(super) async fn purge(c: &Conn, cut: Cutoffs) -> Result<Purged, StoreError> {
    // A conversation expires with its last message: look at the pairs whose messages expire now.
    let conversations = execute(
        c,
        "DELETE FROM conversations WHERE last_msg_id IS NOT NULL AND last_time < $1 AND (owner, peer) IN \
         (SELECT receiver, sender FROM messages WHERE time < $1 UNION SELECT sender, receiver FROM messages WHERE time < $1)",
        &[&cut.roaming_before],
    )
    .await?;
    // The messages leave the search index with their rows.
    let mut messages = 0;
    loop {
        let ids: Vec<i64> = crate::query(
            c,
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE time < $1 LIMIT $2) RETURNING id",
            &[&cut.roaming_before, &PURGE_CHUNK],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        // Their search rows go with them (`message_search` references `messages` ON DELETE CASCADE).
        messages += ids.len() as u64;
        if (ids.len() as i64) < PURGE_CHUNK {
            break;
        }
    }
    // Offline copies go when they expire (at most the offline retention after their message was sent). One
    // whose message expired first stays until then, skipped by the sync. A user's log position is kept on
    // its account (`log_seq`), so emptying its log loses no number.
    let offline = chunked(
        c,
        "DELETE FROM inbox WHERE (uid, seq) IN (SELECT uid, seq FROM inbox WHERE expire_at < $1 LIMIT $2)",
        cut.offline_before,
    )
    .await?;
    let dedup = execute(c, "DELETE FROM dedup WHERE created_ms < $1", &[&cut.dedup_before_ms]).await?;
    Ok(Purged { messages, offline, conversations, dedup })
}

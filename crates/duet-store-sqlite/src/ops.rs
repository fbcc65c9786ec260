//! The SQL of each store operation. Write operations run on the writer thread inside the transaction of
//! the current group commit, with the writer's memory ([`WriterState`]); read operations run on a pooled
//! read connection, without it.

use std::sync::Arc;

use duet_core::model::event::AfterEvent;
use duet_core::model::{
    ConversationSettings, ConversationView, Delivery, ExportCursor, ExportPage, HistoryPage, HistoryQuery, Import,
    LogEntry, LogEvent, LogPage, MsgKey, NewAccount, ProfileValue, Purged, ReceiveOpt, SenderCopy, SenderInfo, Sent,
    SettingsChange, StoredMessage, TAG_IMAGE, TAG_NICK,
};
use duet_core::store::{Cutoffs, Edit, Imported, Modified, SendOutcome, SendPlan, Withdrawn};
use rusqlite::{Connection, OptionalExtension, Result, params};

use crate::state::{Thread, WriterState, dedup_short, remember};

const RECALLED: i64 = 1;
const HIDDEN_FROM_SENDER: i64 = 2;
const HIDDEN_FROM_RECEIVER: i64 = 4;
const NO_UNREAD: i64 = 8;
const NEED_RECEIPT: i64 = 16;

/// Rows deleted per statement by a purge, so one purge never holds the writer for long.
const PURGE_CHUNK: i64 = 10_000;

/// A user's uid, read from the table (on a read connection: see [`cached_uid`] for the writer).
pub(crate) fn uid(c: &Connection, user_id: &str) -> Result<Option<i64>> {
    c.prepare_cached("SELECT uid FROM accounts WHERE user_id = ?1")?.query_row([user_id], |r| r.get(0)).optional()
}

/// A user's uid, on the writer: from its memory, else from the table.
pub(crate) fn cached_uid(c: &Connection, w: &mut WriterState, user_id: &str) -> Result<Option<i64>> {
    if let Some(&uid) = w.uids.get(user_id) {
        return Ok(Some(uid));
    }
    let found = uid(c, user_id)?;
    if let Some(uid) = found {
        remember(&mut w.uids, user_id.to_owned(), uid);
    }
    Ok(found)
}

pub(crate) fn import_accounts(c: &Connection, w: &mut WriterState, accounts: &[NewAccount], now: i64) -> Result<()> {
    for a in accounts {
        // The next uid of `uid_seq`, never one a deleted account had (schema_3.sql).
        let created = c
            .prepare_cached(
                "INSERT INTO accounts (uid, user_id, created_at) VALUES ((SELECT last + 1 FROM uid_seq), ?1, ?2) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute((&a.id, now))?;
        if created > 0 {
            c.prepare_cached("UPDATE uid_seq SET last = last + 1")?.execute([])?;
        }
        let uid = cached_uid(c, w, &a.id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        for (tag, value) in [(TAG_NICK, &a.nick), (TAG_IMAGE, &a.face_url)] {
            if let Some(v) = value {
                put_profile(c, w, uid, tag, &ProfileValue::Text(v.clone()))?;
            }
        }
    }
    Ok(())
}

pub(crate) fn delete_accounts(c: &Connection, w: &mut WriterState, ids: &[String]) -> Result<Vec<bool>> {
    ids.iter()
        .map(|id| {
            crate::relations::drop_user(c, id)?;
            let Some(uid) = cached_uid(c, w, id)? else {
                return Ok(false);
            };
            c.prepare_cached("DELETE FROM profiles WHERE uid = ?1")?.execute([uid])?;
            // Its queued messages are indexed first, to be removed with the others.
            w.search.flush(c)?;
            crate::search::drop_user(c, uid)?;
            c.prepare_cached("DELETE FROM inbox WHERE uid = ?1")?.execute([uid])?;
            c.prepare_cached("DELETE FROM conversations WHERE owner = ?1")?.execute([uid])?;
            c.prepare_cached("DELETE FROM conversation_settings WHERE owner = ?1")?.execute([uid])?;
            crate::push::drop_user(c, uid)?;
            c.prepare_cached("DELETE FROM accounts WHERE uid = ?1")?.execute([uid])?;
            w.uids.remove(id.as_str());
            w.log_seqs.remove(&uid);
            w.senders.remove(&uid);
            Ok(true)
        })
        .collect()
}

fn put_profile(c: &Connection, w: &mut WriterState, uid: i64, tag: &str, value: &ProfileValue) -> Result<()> {
    // The sender's profile kept with new messages is read again.
    w.senders.remove(&uid);
    let (text, num) = match value {
        ProfileValue::Text(s) => (Some(s.as_str()), None),
        ProfileValue::Number(n) => (None, Some(*n as i64)),
    };
    c.prepare_cached(
        "INSERT INTO profiles (uid, tag, text, num) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (uid, tag) DO UPDATE SET text = excluded.text, num = excluded.num",
    )?
    .execute(params![uid, tag, text, num])?;
    Ok(())
}

pub(crate) fn set_profile(
    c: &Connection,
    w: &mut WriterState,
    id: &str,
    items: &[(String, ProfileValue)],
    event: Option<AfterEvent>,
) -> Result<bool> {
    let Some(uid) = cached_uid(c, w, id)? else {
        return Ok(false);
    };
    for (tag, value) in items {
        put_profile(c, w, uid, tag, value)?;
    }
    if let Some(event) = event {
        crate::callbacks::queue_event(c, event, None)?;
    }
    Ok(true)
}

pub(crate) fn profile(c: &Connection, id: &str, tags: &[String]) -> Result<Option<Vec<(String, ProfileValue)>>> {
    let Some(uid) = uid(c, id)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(tags.len());
    let mut stmt = c.prepare_cached("SELECT text, num FROM profiles WHERE uid = ?1 AND tag = ?2")?;
    for tag in tags {
        let value = stmt
            .query_row(params![uid, tag], |r| {
                Ok(match r.get::<_, Option<String>>(0)? {
                    Some(text) => ProfileValue::Text(text),
                    None => ProfileValue::Number(r.get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as u64),
                })
            })
            .optional()?;
        if let Some(v) = value {
            out.push((tag.clone(), v));
        }
    }
    Ok(Some(out))
}

const KIND_MSG: i64 = 0;
const KIND_READ: i64 = 1;
const KIND_RECALL: i64 = 2;
/// The peer read what the user sent up to `time` (`peer` the reader).
const KIND_PEER_READ: i64 = 3;
/// The peer acknowledged message `msg_id` (whose time is `time`) with a read receipt.
const KIND_RECEIPT: i64 = 4;
/// Message `msg_id` (whose time is `time`) was edited.
const KIND_MODIFY: i64 = 5;
/// The user deleted message `msg_id` (whose time is `time`) from its side.
const KIND_DELETE: i64 = 6;
/// The user cleared its history with `peer` up to position `time` (a `conv_seq`; 0: nothing cleared).
const KIND_CLEAR: i64 = 7;
/// As [`KIND_CLEAR`], and the user deleted the conversation.
const KIND_CLEAR_CONVERSATION: i64 = 8;
/// The user changed its settings of the conversation with `peer` (read from `conversation_settings`).
const KIND_SETTINGS: i64 = 9;

/// The last sequence number of a user's sync log, as readers see it: the larger of the one recorded on the
/// account (kept before a purge removes entries, see [`purge`]) and the log's last entry.
pub(crate) const LATEST_SEQ: &str = "max(a.log_seq, coalesce((SELECT max(i.seq) FROM inbox i WHERE i.uid = a.uid), 0))";

/// Appends an entry to a user's sync log; returns its sequence number.
#[expect(clippy::too_many_arguments, reason = "the columns of an entry")]
fn append_log(
    c: &Connection,
    w: &mut WriterState,
    uid: i64,
    kind: i64,
    msg_id: Option<i64>,
    peer: Option<i64>,
    time: Option<i64>,
    expire_at: i64,
) -> Result<u64> {
    let last = match w.log_seqs.get(&uid) {
        Some(&last) => last,
        None => c
            .prepare_cached(&format!("SELECT {LATEST_SEQ} FROM accounts a WHERE a.uid = ?1"))?
            .query_row([uid], |r| r.get(0))?,
    };
    let seq = last + 1;
    c.prepare_cached(
        "INSERT INTO inbox (uid, seq, kind, msg_id, peer, time, expire_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![uid, seq, kind, msg_id, peer, time, expire_at])?;
    remember(&mut w.log_seqs, uid, seq);
    Ok(seq as u64)
}

/// The counters of the conversation between `a` and `b`.
fn thread(c: &Connection, w: &mut WriterState, a: i64, b: i64) -> Result<Thread> {
    let pair = (a.min(b), a.max(b));
    if let Some(&t) = w.threads.get(&pair) {
        return Ok(t);
    }
    let t = c
        .prepare_cached("SELECT seq, key_seq, last_time FROM threads WHERE lo = ?1 AND hi = ?2")?
        .query_row(pair_params(pair), |r| {
            let (conv_seq, key_seq) = (r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u32);
            Ok(Thread { conv_seq, key_seq, last_time: r.get(2)?, stored: true })
        })
        .optional()?
        .unwrap_or_default();
    remember(&mut w.threads, pair, t);
    Ok(t)
}

/// Records that the conversation between `a` and `b` took its next position for a message of `time`
/// stored under `picked` (a `MsgSeq` the store picked, or `None` when the sender gave one).
fn advance_thread(
    c: &Connection,
    w: &mut WriterState,
    a: i64,
    b: i64,
    before: Thread,
    picked: Option<u32>,
    time: i64,
) -> Result<()> {
    let pair = (a.min(b), a.max(b));
    let after = Thread {
        conv_seq: before.conv_seq + 1,
        key_seq: picked.unwrap_or(before.key_seq),
        last_time: before.last_time.max(time),
        stored: true,
    };
    let values = params![pair.0, pair.1, after.conv_seq as i64, i64::from(after.key_seq), after.last_time];
    if before.stored {
        c.prepare_cached("UPDATE threads SET seq = ?3, key_seq = ?4, last_time = ?5 WHERE lo = ?1 AND hi = ?2")?
            .execute(values)?;
    } else {
        c.prepare_cached("INSERT INTO threads (lo, hi, seq, key_seq, last_time) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(values)?;
    }
    remember(&mut w.threads, pair, after);
    Ok(())
}

/// The conversation's highest `conv_seq`, read outside the writer.
fn last_conv_seq(c: &Connection, a: i64, b: i64) -> Result<u64> {
    let pair = (a.min(b), a.max(b));
    Ok(c.prepare_cached("SELECT seq FROM threads WHERE lo = ?1 AND hi = ?2")?
        .query_row(pair_params(pair), |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0) as u64)
}

fn pair_params(pair: (i64, i64)) -> [i64; 2] {
    [pair.0, pair.1]
}

/// The order of recent contacts, most recent first: by the last message's time, then by the order in which
/// the last messages were stored (row ids grow), so that of several conversations touched in one second the
/// latest comes first (and the cap evicts the earliest).
const RECENT_FIRST: &str = "ORDER BY c.last_time DESC, c.last_msg_id DESC, c.peer";

/// Updates `owner`'s side of the conversation with `peer` for a new message, keeping at most
/// `max_conversations` conversations per owner (the least recent go).
fn touch_conversation(
    c: &Connection,
    owner: i64,
    peer: i64,
    msg_time: i64,
    last: Option<i64>,
    unread: bool,
    max_conversations: usize,
) -> Result<()> {
    // An update of the existing row, else an insert, not an upsert: an upsert's conflict handling needs a
    // statement journal (docs/benchmarks.md, "Conversation rows are updated, then inserted, not upserted").
    // `last`: the message becomes the conversation's last one (unless it is an older import).
    let updated = c
        .prepare_cached(
            "UPDATE conversations SET \
               last_msg_id = CASE WHEN ?3 IS NOT NULL AND ?4 >= last_time THEN ?3 ELSE last_msg_id END, \
               last_time = CASE WHEN ?3 IS NOT NULL AND ?4 >= last_time THEN ?4 ELSE last_time END, \
               unread = unread + CASE WHEN ?5 = 1 AND ?4 > read_time THEN 1 ELSE 0 END \
             WHERE owner = ?1 AND peer = ?2",
        )?
        .execute(params![owner, peer, last, msg_time, unread as i64])?;
    if updated == 0 {
        c.prepare_cached(
            "INSERT INTO conversations (owner, peer, last_msg_id, last_time, unread) \
             VALUES (?1, ?2, ?3, CASE WHEN ?3 IS NOT NULL THEN ?4 ELSE 0 END, CASE WHEN ?5 = 1 AND ?4 > 0 THEN 1 ELSE 0 END)",
        )?
        .execute(params![owner, peer, last, msg_time, unread as i64])?;
        c.prepare_cached(&format!(
            "DELETE FROM conversations WHERE owner = ?1 AND peer IN \
             (SELECT peer FROM conversations c WHERE owner = ?1 {RECENT_FIRST} LIMIT -1 OFFSET ?2)"
        ))?
        .execute(params![owner, max_conversations as i64])?;
    }
    Ok(())
}

struct NewRow<'a> {
    sender_info: &'a SenderInfo,
    sender: i64,
    receiver: i64,
    key: MsgKey,
    conv_seq: u64,
    body: &'a str,
    cloud_custom_data: &'a str,
    push_info: Option<&'a str>,
    flags: i64,
}

/// Inserts a message; `None` if the conversation has one with the same key already (either direction).
fn insert_message(c: &Connection, m: &NewRow<'_>) -> Result<Option<i64>> {
    c.prepare_cached(
        "INSERT INTO messages (sender, receiver, lo, hi, time, seq, random, conv_seq, body, cloud_custom_data, push_info, \
         flags, sender_nick, sender_face) VALUES (?1, ?2, min(?1, ?2), max(?1, ?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
         ON CONFLICT (lo, hi, time, seq, random) DO NOTHING",
    )?
    .execute(params![
        m.sender,
        m.receiver,
        m.key.time,
        m.key.seq,
        m.key.random,
        m.conv_seq as i64,
        m.body,
        m.cloud_custom_data,
        m.push_info,
        m.flags,
        m.sender_info.nick,
        m.sender_info.face_url
    ])?;
    Ok((c.changes() > 0).then(|| c.last_insert_rowid()))
}

/// The sender's current nickname and avatar, to keep with a message.
fn sender_info(c: &Connection, w: &mut WriterState, uid: i64) -> Result<SenderInfo> {
    if let Some(info) = w.senders.get(&uid) {
        return Ok(info.clone());
    }
    let mut info = SenderInfo::default();
    let mut stmt = c.prepare_cached("SELECT tag, text FROM profiles WHERE uid = ?1 AND tag IN (?2, ?3)")?;
    let mut rows = stmt.query(params![uid, TAG_NICK, TAG_IMAGE])?;
    while let Some(r) = rows.next()? {
        let (tag, text): (String, Option<String>) = (r.get(0)?, r.get(1)?);
        let text = text.filter(|t| !t.is_empty());
        if tag == TAG_NICK {
            info.nick = text;
        } else {
            info.face_url = text;
        }
    }
    remember(&mut w.senders, uid, info.clone());
    Ok(info)
}

fn msg_entry(seq: u64, msg: &Arc<StoredMessage>, user: &str) -> Delivery {
    Delivery { user: user.to_owned(), entry: LogEntry { seq, event: LogEvent::Message(msg.clone()) } }
}

/// A send whose search terms are read here (the store reads them before the writer: [`send_indexed`]).
#[cfg(test)]
pub(crate) fn send(c: &Connection, w: &mut WriterState, plan: &SendPlan) -> Result<(SendOutcome, Vec<Delivery>)> {
    send_indexed(c, w, plan, &Arc::new(crate::search::Terms::of(&plan.msg.body)))
}

/// [`send`] with the message's search terms made before, outside the writer (which then only queues them
/// for the index: [`crate::search::Queue`]).
pub(crate) fn send_indexed(
    c: &Connection,
    w: &mut WriterState,
    plan: &SendPlan,
    terms: &Arc<crate::search::Terms>,
) -> Result<(SendOutcome, Vec<Delivery>)> {
    let short = dedup_short(&plan.dedup_key);
    if let Some(id) = w.dedup.get(short) {
        let first = c
            .prepare_cached(
                "SELECT seq, random, time, failed, conv_seq, log_seq, key, created_ms FROM dedup WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    let sent = Sent {
                        key: MsgKey { seq: r.get(0)?, random: r.get(1)?, time: r.get(2)? },
                        failed: r.get::<_, String>(3)?.lines().map(str::to_owned).collect(),
                        duplicate: true,
                        conv_seq: r.get::<_, i64>(4)? as u64,
                        sender_log_seq: r.get::<_, i64>(5)? as u64,
                    };
                    Ok((sent, r.get::<_, Vec<u8>>(6)?, r.get::<_, i64>(7)?))
                })
                .optional()
            })?;
        // The same full key, within the window: a retry. (A different key sharing the first 8 bytes, or
        // an expired entry, is a new send, and takes the index entry over.)
        if let Some((sent, key, created_ms)) = first
            && key == plan.dedup_key
            && created_ms >= plan.dedup_since_ms
        {
            return Ok((SendOutcome::Duplicate(sent), Vec::new()));
        }
    }
    let msg = &plan.msg;
    let Some(sender) = cached_uid(c, w, &msg.from)? else {
        return Ok((SendOutcome::NoSuchSender(msg.from.clone()), Vec::new()));
    };
    let mut receivers = Vec::with_capacity(msg.to.len());
    for to in &msg.to {
        receivers.push((to, cached_uid(c, w, to)?));
    }
    // One key for every recipient. Its MsgSeq: the sender's, or else one above what the store picked
    // before in each of the conversations. Its time: the send's, unless a conversation already holds a
    // later message (a send that raced this one across a second boundary and was stored first).
    let (mut next, mut time) = (None, plan.time);
    for &(_, receiver) in &receivers {
        if let Some(receiver) = receiver {
            let t = thread(c, w, sender, receiver)?;
            time = time.max(t.last_time);
            let seq = t.next_key_seq();
            next = Some(next.map_or(seq, |n: u32| n.max(seq)));
        }
    }
    let picked = msg.seq.is_none().then(|| next.unwrap_or(1));
    let key = MsgKey { seq: msg.seq.or(picked).unwrap_or(1), random: msg.random, time };
    let mut sent = Sent { key, failed: Vec::new(), duplicate: false, conv_seq: 0, sender_log_seq: 0 };
    let mut deliveries = Vec::with_capacity(2 * msg.to.len());
    let info = sender_info(c, w, sender)?;
    for (to, receiver) in receivers {
        let Some(receiver) = receiver else {
            sent.failed.push(to.clone());
            continue;
        };
        let mut flags = 0;
        if msg.sender_copy == SenderCopy::Nothing {
            flags |= HIDDEN_FROM_SENDER;
        }
        if msg.no_unread {
            flags |= NO_UNREAD;
        }
        if msg.need_read_receipt {
            flags |= NEED_RECEIPT;
        }
        let before = thread(c, w, sender, receiver)?;
        let conv_seq = before.conv_seq + 1;
        let Some(id) = insert_message(
            c,
            &NewRow {
                sender_info: &info,
                sender,
                receiver,
                key,
                conv_seq,
                body: &msg.body,
                cloud_custom_data: &msg.cloud_custom_data,
                push_info: msg.push_info.as_deref(),
                flags,
            },
        )?
        else {
            // Another message already has this MsgKey in this conversation (same MsgSeq and MsgRandom in the
            // same second): Tencent's MsgRandom dedup. Keys stay unique per conversation.
            continue;
        };
        advance_thread(c, w, sender, receiver, before, picked, key.time)?;
        w.search.push(id, sender, receiver, terms.clone());
        let mut stored = StoredMessage::fresh(&msg.from, to, key, conv_seq, &msg.body, &msg.cloud_custom_data, &info);
        stored.need_receipt = msg.need_read_receipt;
        let stored = Arc::new(stored);
        let seq = append_log(c, w, receiver, KIND_MSG, Some(id), None, Some(key.time), plan.offline_until)?;
        deliveries.push(msg_entry(seq, &stored, to));
        if plan.push && sender != receiver {
            crate::push::queue_pushes(c, receiver, sender, id, key.time, plan.now_ms.div_euclid(1000))?;
        }
        if sent.conv_seq == 0 {
            sent.conv_seq = conv_seq;
        }
        let last = (!msg.no_last_msg).then_some(id);
        let time = key.time;
        touch_conversation(c, receiver, sender, time, last, !msg.no_unread, plan.max_conversations)?;
        if sender == receiver {
            continue;
        }
        if msg.sender_copy == SenderCopy::Sync {
            let seq = append_log(c, w, sender, KIND_MSG, Some(id), None, Some(time), plan.offline_until)?;
            deliveries.push(msg_entry(seq, &stored, &msg.from));
            if sent.sender_log_seq == 0 {
                sent.sender_log_seq = seq;
            }
        }
        if msg.sender_copy != SenderCopy::Nothing {
            touch_conversation(c, sender, receiver, time, last, false, plan.max_conversations)?;
        }
    }
    if let Some(event) = &plan.after_send
        && sent.conv_seq > 0
    {
        crate::callbacks::queue_event(c, event.clone(), Some(key))?;
    }
    if sent.failed.len() < msg.to.len() {
        c.prepare_cached(
            "INSERT INTO dedup (key, created_ms, seq, random, time, failed, conv_seq, log_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            &plan.dedup_key[..],
            plan.now_ms,
            key.seq,
            key.random,
            key.time,
            sent.failed.join("\n"),
            sent.conv_seq as i64,
            sent.sender_log_seq as i64
        ])?;
        let id = c.last_insert_rowid();
        w.dedup.insert(short, id);
    }
    Ok((SendOutcome::Sent(sent), deliveries))
}

pub(crate) fn import(
    c: &Connection,
    w: &mut WriterState,
    msg: &Import,
    offline_until: i64,
    max_conversations: usize,
) -> Result<(Imported, Vec<Delivery>)> {
    let Some(sender) = cached_uid(c, w, &msg.from)? else {
        return Ok((Imported::NoSuchSender(msg.from.clone()), Vec::new()));
    };
    let Some(receiver) = cached_uid(c, w, &msg.to)? else {
        return Ok((Imported::NoSuchRecipient(msg.to.clone()), Vec::new()));
    };
    let flags = if msg.counts_unread { 0 } else { NO_UNREAD };
    let info = sender_info(c, w, sender)?;
    let before = thread(c, w, sender, receiver)?;
    let picked = msg.seq.is_none().then(|| before.next_key_seq());
    let key = MsgKey { seq: msg.seq.or(picked).unwrap_or(1), random: msg.random, time: msg.time };
    let conv_seq = before.conv_seq + 1;
    let Some(id) = insert_message(
        c,
        &NewRow {
            sender_info: &info,
            sender,
            receiver,
            key,
            conv_seq,
            body: &msg.body,
            cloud_custom_data: &msg.cloud_custom_data,
            push_info: None,
            flags,
        },
    )?
    else {
        return Ok((Imported::Duplicate, Vec::new()));
    };
    advance_thread(c, w, sender, receiver, before, picked, key.time)?;
    w.search.push(id, sender, receiver, Arc::new(crate::search::Terms::of(&msg.body)));
    let mut deliveries = Vec::new();
    if msg.counts_unread {
        let seq = append_log(c, w, receiver, KIND_MSG, Some(id), None, Some(key.time), offline_until)?;
        let stored =
            Arc::new(StoredMessage::fresh(&msg.from, &msg.to, key, conv_seq, &msg.body, &msg.cloud_custom_data, &info));
        deliveries.push(msg_entry(seq, &stored, &msg.to));
    }
    touch_conversation(c, receiver, sender, key.time, Some(id), msg.counts_unread, max_conversations)?;
    if sender != receiver {
        touch_conversation(c, sender, receiver, key.time, Some(id), false, max_conversations)?;
    }
    Ok((Imported::Stored, deliveries))
}

/// Reads a message row selected as [`MESSAGE_COLUMNS`] starting at column `at`, naming the two parties.
pub(crate) fn read_message(r: &rusqlite::Row<'_>, at: usize, names: impl Fn(i64) -> String) -> Result<StoredMessage> {
    let flags: i64 = r.get(at + 8)?;
    let from = names(r.get(at)?);
    Ok(StoredMessage {
        from: from.clone(),
        to: names(r.get(at + 1)?),
        key: MsgKey { time: r.get(at + 2)?, seq: r.get(at + 3)?, random: r.get(at + 4)? },
        conv_seq: r.get::<_, i64>(at + 5)? as u64,
        body: r.get(at + 6)?,
        cloud_custom_data: r.get(at + 7)?,
        recalled: flags & RECALLED != 0,
        // Recalled before the revoker was kept (schema 6): by its sender then.
        revoker: if flags & RECALLED != 0 {
            Some(r.get::<_, Option<String>>(at + 11)?.unwrap_or_else(|| from.clone()))
        } else {
            None
        },
        peer_read: false,
        need_receipt: flags & NEED_RECEIPT != 0,
        receipt_time: r.get(at + 12)?,
        sender: SenderInfo { nick: r.get(at + 9)?, face_url: r.get(at + 10)? },
        version: r.get::<_, i64>(at + 13)? as u32,
        encoded: Default::default(),
    })
}

/// A conversation's settings, selected from `conversation_settings cs` (all NULL when it has none).
const SETTINGS_COLUMNS: &str = "cs.pinned_at, cs.marks, cs.custom_data, cs.draft, cs.draft_time, cs.receive_opt";
/// How many columns [`MESSAGE_COLUMNS`] selects.
pub(crate) const MESSAGE_COLUMN_COUNT: usize = 14;
/// Where [`SETTINGS_COLUMNS`] start in `log_after`'s rows.
const SETTINGS_AT: usize = 6 + MESSAGE_COLUMN_COUNT;

/// Reads [`SETTINGS_COLUMNS`] starting at column `at`; the defaults where there is no row.
fn read_settings(r: &rusqlite::Row<'_>, at: usize) -> Result<ConversationSettings> {
    Ok(ConversationSettings {
        pinned_at: r.get::<_, Option<i64>>(at)?.unwrap_or(0),
        marks: r.get::<_, Option<i64>>(at + 1)?.unwrap_or(0) as u64,
        custom_data: r.get::<_, Option<String>>(at + 2)?.unwrap_or_default(),
        draft: r.get::<_, Option<String>>(at + 3)?.unwrap_or_default(),
        draft_time: r.get::<_, Option<i64>>(at + 4)?.unwrap_or(0),
        receive: ReceiveOpt::from_number(r.get::<_, Option<i64>>(at + 5)?.unwrap_or(0).max(0) as u64)
            .unwrap_or_default(),
    })
}

pub(crate) const MESSAGE_COLUMNS: &str = "m.sender, m.receiver, m.time, m.seq, m.random, m.conv_seq, m.body, m.cloud_custom_data, \
                               m.flags, m.sender_nick, m.sender_face, m.revoker, m.receipt_time, m.version";

pub(crate) fn history(c: &Connection, q: &HistoryQuery) -> Result<HistoryPage> {
    let (Some(op), Some(peer)) = (uid(c, &q.operator)?, uid(c, &q.peer)?) else {
        return Ok(HistoryPage { messages: Vec::new(), more: false, conv_seq: 0 });
    };
    // Before the messages: the page then holds every message up to this position that belongs in it.
    let conv_seq = last_conv_seq(c, op, peer)?;
    let read_time = |owner: i64, other: i64| -> Result<i64> {
        c.prepare_cached("SELECT read_time FROM conversations WHERE owner = ?1 AND peer = ?2")?
            .query_row([owner, other], |r| r.get(0))
            .optional()
            .map(Option::unwrap_or_default)
    };
    let (op_read, peer_read) = (read_time(op, peer)?, read_time(peer, op)?);
    // The cursor: strictly older than the message `before` names, in (time, seq, random) order, which is
    // the conversation index's (a MsgKey is unique in its conversation), so a page is one index range.
    let cursor = match q.before {
        None => (i64::MAX, i64::MAX, i64::MAX),
        Some(k) => (k.time, i64::from(k.seq), i64::from(k.random)),
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m \
         WHERE m.lo = min(?1, ?2) AND m.hi = max(?1, ?2) AND m.time >= ?3 AND m.time <= ?4 \
           AND (m.time, m.seq, m.random) < (?5, ?6, ?7) \
           AND NOT (m.sender = ?1 AND m.flags & 2) AND NOT (m.receiver = ?1 AND m.flags & 4) \
         ORDER BY m.time DESC, m.seq DESC, m.random DESC LIMIT ?8"
    ))?;
    let limit = q.limit.min(i64::MAX as usize - 1) as i64 + 1;
    let names = |uid: i64| if uid == op { q.operator.clone() } else { q.peer.clone() };
    let rows = stmt.query_map(params![op, peer, q.min_time, q.max_time, cursor.0, cursor.1, cursor.2, limit], |r| {
        let mut m = read_message(r, 0, names)?;
        m.peer_read = m.key.time <= if m.from == q.operator { peer_read } else { op_read };
        Ok(m)
    })?;
    let mut messages = rows.collect::<Result<Vec<_>>>()?;
    let more = messages.len() > q.limit;
    messages.truncate(q.limit);
    Ok(HistoryPage { messages, more, conv_seq })
}

/// Every message with its time in [`start`, `end`) after `after`, in (time, id) order: one range of the
/// `messages_time` index (whose entries end with the rowid). Rows naming a deleted account are skipped,
/// though they count toward the page and move the cursor.
pub(crate) fn export_messages(
    c: &Connection,
    start: i64,
    end: i64,
    after: Option<ExportCursor>,
    limit: usize,
) -> Result<ExportPage> {
    let limit = limit.clamp(1, i64::MAX as usize - 1);
    let (after_time, after_id) = match after {
        Some(a) => (a.time, a.id.min(i64::MAX as u64) as i64),
        None => (i64::MIN, i64::MIN),
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT m.id, su.user_id, ru.user_id, {MESSAGE_COLUMNS} FROM messages m \
         LEFT JOIN accounts su ON su.uid = m.sender \
         LEFT JOIN accounts ru ON ru.uid = m.receiver \
         WHERE m.time >= ?1 AND m.time < ?2 AND (m.time, m.id) > (?3, ?4) \
         ORDER BY m.time, m.id LIMIT ?5"
    ))?;
    let mut rows = stmt.query(params![start, end, after_time, after_id, limit as i64 + 1])?;
    let (mut messages, mut last, mut count, mut more) = (Vec::new(), None, 0, false);
    while let Some(r) = rows.next()? {
        count += 1;
        if count > limit {
            more = true;
            break;
        }
        let id: i64 = r.get(0)?;
        let time: i64 = r.get(5)?;
        last = Some(ExportCursor { time, id: id as u64 });
        let (Some(s), Some(rc)): (Option<String>, Option<String>) = (r.get(1)?, r.get(2)?) else {
            continue;
        };
        let sender_uid: i64 = r.get(3)?;
        messages.push(read_message(r, 3, |uid| if uid == sender_uid { s.clone() } else { rc.clone() })?);
    }
    Ok(ExportPage { messages, next: if more { last } else { None } })
}

pub(crate) fn log_after(c: &Connection, user: &str, after: u64, limit: usize, max_bytes: usize) -> Result<LogPage> {
    let Some(owner) = uid(c, user)? else {
        return Ok(LogPage { entries: Vec::new(), latest: 0, more: false });
    };
    let latest: i64 = c
        .prepare_cached(&format!("SELECT {LATEST_SEQ} FROM accounts a WHERE a.uid = ?1"))?
        .query_row([owner], |r| r.get(0))?;
    let mut stmt = c.prepare_cached(&format!(
        "SELECT i.seq, i.kind, i.time, p.user_id, su.user_id, ru.user_id, {MESSAGE_COLUMNS}, {SETTINGS_COLUMNS} \
         FROM inbox i \
         LEFT JOIN conversation_settings cs ON i.kind = 9 AND cs.owner = i.uid AND cs.peer = i.peer \
         LEFT JOIN messages m ON m.id = i.msg_id AND m.time = i.time \
         LEFT JOIN accounts p ON p.uid = i.peer \
         LEFT JOIN accounts su ON su.uid = m.sender \
         LEFT JOIN accounts ru ON ru.uid = m.receiver \
         WHERE i.uid = ?1 AND i.seq > ?2 ORDER BY i.seq LIMIT ?3"
    ))?;
    let mut entries = Vec::new();
    let mut rows =
        stmt.query(params![owner, after.min(i64::MAX as u64) as i64, limit.min(i64::MAX as usize - 1) as i64 + 1])?;
    let (mut count, mut bytes, mut full, mut more) = (0, 0, false, false);
    while let Some(r) = rows.next()? {
        count += 1;
        if count > limit || full {
            more = true;
            break;
        }
        let seq = r.get::<_, i64>(0)? as u64;
        let kind: i64 = r.get(1)?;
        let (sender_name, receiver_name): (Option<String>, Option<String>) = (r.get(4)?, r.get(5)?);
        let event = match (kind, sender_name, receiver_name) {
            (KIND_SETTINGS, _, _) => match r.get::<_, Option<String>>(3)? {
                Some(peer) => LogEvent::Settings { peer, settings: read_settings(r, SETTINGS_AT)? },
                None => continue,
            },
            (KIND_READ | KIND_PEER_READ | KIND_CLEAR | KIND_CLEAR_CONVERSATION, _, _) => {
                match r.get::<_, Option<String>>(3)? {
                    Some(peer) => {
                        let time = r.get::<_, Option<i64>>(2)?.unwrap_or(0);
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
                    None => continue,
                }
            }
            (KIND_MSG | KIND_RECALL | KIND_RECEIPT | KIND_MODIFY | KIND_DELETE, Some(s), Some(rc)) => {
                let sender_uid: i64 = r.get(6)?;
                let m = read_message(r, 6, |uid| if uid == sender_uid { s.clone() } else { rc.clone() })?;
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
    Ok(LogPage { entries, latest: latest as u64, more })
}

pub(crate) fn conversations(c: &Connection, user: &str, limit: usize) -> Result<Vec<ConversationView>> {
    let Some(owner) = uid(c, user)? else {
        return Ok(Vec::new());
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT p.user_id, c.unread, c.last_time, c.peer, coalesce(t.seq, 0), coalesce(o.read_time, 0), \
         {MESSAGE_COLUMNS}, {SETTINGS_COLUMNS} \
         FROM conversations c JOIN accounts p ON p.uid = c.peer LEFT JOIN messages m ON m.id = c.last_msg_id \
         LEFT JOIN conversation_settings cs ON cs.owner = c.owner AND cs.peer = c.peer \
         LEFT JOIN threads t ON t.lo = min(c.owner, c.peer) AND t.hi = max(c.owner, c.peer) \
         LEFT JOIN conversations o ON o.owner = c.peer AND o.peer = c.owner \
         WHERE c.owner = ?1 AND c.last_time > 0 \
         ORDER BY coalesce(cs.pinned_at, 0) DESC, c.last_time DESC, c.last_msg_id DESC, c.peer LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![owner, limit as i64], |r| {
        let peer: String = r.get(0)?;
        let peer_uid: i64 = r.get(3)?;
        let last = match r.get::<_, Option<i64>>(6)? {
            Some(_) => Some(read_message(r, 6, |uid| if uid == peer_uid { peer.clone() } else { user.to_owned() })?),
            None => None,
        };
        let (unread, time, conv_seq) = (r.get::<_, i64>(1)?.max(0) as u64, r.get(2)?, r.get::<_, i64>(4)? as u64);
        let settings = read_settings(r, 6 + MESSAGE_COLUMN_COUNT)?;
        Ok(ConversationView { peer, last, unread, time, conv_seq, peer_read_time: r.get(5)?, settings })
    })?;
    rows.collect()
}

/// The flag that hides a message from `owner`'s side: the sender's or the receiver's (both for a message to
/// oneself).
const fn hidden_from(owner: i64, sender: i64, receiver: i64) -> i64 {
    (if sender == owner { HIDDEN_FROM_SENDER } else { 0 }) | (if receiver == owner { HIDDEN_FROM_RECEIVER } else { 0 })
}

/// SQL that is true of a message `m` shown on the side of the user `?1`.
const SHOWN_TO_OWNER: &str = "NOT (m.sender = ?1 AND m.flags & 2) AND NOT (m.receiver = ?1 AND m.flags & 4)";

pub(crate) fn update_conversation(
    c: &Connection,
    w: &mut WriterState,
    owner: &str,
    peer: &str,
    change: &SettingsChange,
    now: i64,
    expire_at: i64,
) -> Result<(Option<ConversationSettings>, Vec<Delivery>)> {
    let (Some(o), Some(p)) = (cached_uid(c, w, owner)?, cached_uid(c, w, peer)?) else {
        return Ok((None, Vec::new()));
    };
    c.prepare_cached("INSERT INTO conversation_settings (owner, peer) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute([o, p])?;
    c.prepare_cached(
        "UPDATE conversation_settings SET \
           pinned_at = CASE ?3 WHEN 1 THEN CASE WHEN pinned_at > 0 THEN pinned_at ELSE ?9 END WHEN 0 THEN 0 ELSE pinned_at END, \
           marks = (marks | ?4) & ~?5, \
           custom_data = coalesce(?6, custom_data), \
           draft = coalesce(?7, draft), \
           draft_time = CASE WHEN ?7 IS NULL THEN draft_time WHEN ?7 = '' THEN 0 ELSE ?9 END, \
           receive_opt = coalesce(?8, receive_opt) \
         WHERE owner = ?1 AND peer = ?2",
    )?
    .execute(params![
        o,
        p,
        change.pinned.map(i64::from),
        change.set_marks as i64,
        change.clear_marks as i64,
        change.custom_data,
        change.draft,
        change.receive.map(|r| i64::from(r.number())),
        now
    ])?;
    let settings = c
        .prepare_cached(&format!(
            "SELECT {SETTINGS_COLUMNS} FROM conversation_settings cs WHERE cs.owner = ?1 AND cs.peer = ?2"
        ))?
        .query_row([o, p], |r| read_settings(r, 0))?;
    let seq = append_log(c, w, o, KIND_SETTINGS, None, Some(p), None, expire_at)?;
    let event = LogEvent::Settings { peer: peer.to_owned(), settings: settings.clone() };
    Ok((Some(settings), vec![Delivery { user: owner.to_owned(), entry: LogEntry { seq, event } }]))
}

pub(crate) fn clear_conversation(
    c: &Connection,
    w: &mut WriterState,
    owner: &str,
    peer: &str,
    clear_history: bool,
    delete_conversation: bool,
    expire_at: i64,
) -> Result<(bool, Vec<Delivery>)> {
    let (Some(o), Some(p)) = (cached_uid(c, w, owner)?, cached_uid(c, w, peer)?) else {
        return Ok((false, Vec::new()));
    };
    let upto = if clear_history { thread(c, w, o, p)?.conv_seq } else { 0 };
    if clear_history {
        c.prepare_cached(
            "UPDATE messages SET flags = flags | CASE WHEN sender = ?1 THEN 2 ELSE 0 END | CASE WHEN receiver = ?1 THEN 4 ELSE 0 END \
             WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) AND (sender = ?1 OR receiver = ?1)",
        )?
        .execute([o, p])?;
        c.prepare_cached("UPDATE conversations SET unread = 0, last_msg_id = NULL WHERE owner = ?1 AND peer = ?2")?
            .execute([o, p])?;
    }
    if delete_conversation {
        c.prepare_cached("DELETE FROM conversations WHERE owner = ?1 AND peer = ?2")?.execute([o, p])?;
        c.prepare_cached(
            "UPDATE conversation_settings SET pinned_at = 0, marks = 0, custom_data = '', draft = '', draft_time = 0 \
             WHERE owner = ?1 AND peer = ?2",
        )?
        .execute([o, p])?;
    }
    let kind = if delete_conversation { KIND_CLEAR_CONVERSATION } else { KIND_CLEAR };
    let seq = append_log(c, w, o, kind, None, Some(p), Some(upto as i64), expire_at)?;
    let event = LogEvent::Cleared { peer: peer.to_owned(), upto, conversation: delete_conversation };
    Ok((true, vec![Delivery { user: owner.to_owned(), entry: LogEntry { seq, event } }]))
}

pub(crate) fn delete_messages(
    c: &Connection,
    w: &mut WriterState,
    owner: &str,
    peer: &str,
    keys: &[MsgKey],
    expire_at: i64,
) -> Result<(Vec<bool>, Vec<Delivery>)> {
    let (Some(o), Some(p)) = (cached_uid(c, w, owner)?, cached_uid(c, w, peer)?) else {
        return Ok((vec![false; keys.len()], Vec::new()));
    };
    let mut deleted = Vec::with_capacity(keys.len());
    let mut deliveries = Vec::new();
    for key in keys {
        let found: Option<(i64, i64, i64, i64)> = c
            .prepare_cached(
                "SELECT id, sender, receiver, flags FROM messages WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) \
                 AND time = ?3 AND seq = ?4 AND random = ?5",
            )?
            .query_row(params![o, p, key.time, key.seq, key.random], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some((id, sender, receiver, flags)) = found else {
            deleted.push(false);
            continue;
        };
        let hide = hidden_from(o, sender, receiver);
        if flags & hide == hide {
            deleted.push(false);
            continue;
        }
        c.prepare_cached("UPDATE messages SET flags = flags | ?2 WHERE id = ?1")?.execute([id, hide])?;
        if receiver == o && sender != o && flags & (RECALLED | NO_UNREAD | HIDDEN_FROM_RECEIVER) == 0 {
            c.prepare_cached(
                "UPDATE conversations SET unread = max(unread - 1, 0) WHERE owner = ?1 AND peer = ?2 AND read_time < ?3",
            )?
            .execute(params![o, p, key.time])?;
        }
        // The latest message left becomes the conversation's last when this one was.
        c.prepare_cached(&format!(
            "UPDATE conversations SET last_msg_id = (SELECT m.id FROM messages m \
               WHERE m.lo = min(?1, ?2) AND m.hi = max(?1, ?2) AND {SHOWN_TO_OWNER} \
               ORDER BY m.time DESC, m.seq DESC, m.random DESC LIMIT 1) \
             WHERE owner = ?1 AND peer = ?2 AND last_msg_id = ?3"
        ))?
        .execute([o, p, id])?;
        let seq = append_log(c, w, o, KIND_DELETE, Some(id), None, Some(key.time), expire_at)?;
        let event = LogEvent::Deleted { peer: peer.to_owned(), key: *key };
        deliveries.push(Delivery { user: owner.to_owned(), entry: LogEntry { seq, event } });
        deleted.push(true);
    }
    Ok((deleted, deliveries))
}

pub(crate) fn modify(
    c: &Connection,
    w: &mut WriterState,
    e: &Edit,
    expire_at: i64,
) -> Result<(Modified, Vec<Delivery>)> {
    let (Some(sender), Some(receiver)) = (cached_uid(c, w, &e.from)?, cached_uid(c, w, &e.to)?) else {
        return Ok((Modified::NotFound, Vec::new()));
    };
    let found: Option<(i64, i64, i64)> = c
        .prepare_cached(
            "SELECT id, flags, version FROM messages WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) AND time = ?3 \
             AND seq = ?4 AND random = ?5 AND sender = ?1 AND receiver = ?2",
        )?
        .query_row(params![sender, receiver, e.key.time, e.key.seq, e.key.random], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((id, flags, version)) = found else {
        return Ok((Modified::NotFound, Vec::new()));
    };
    let read = |c: &Connection| -> Result<StoredMessage> {
        c.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1"))?
            .query_row([id], |r| read_message(r, 0, |uid| if uid == sender { e.from.clone() } else { e.to.clone() }))
    };
    if flags & RECALLED != 0 {
        return Ok((Modified::Recalled, Vec::new()));
    }
    if e.base_version.is_some_and(|v| i64::from(v) != version) {
        return Ok((Modified::Conflict(read(c)?), Vec::new()));
    }
    c.prepare_cached(
        "UPDATE messages SET body = coalesce(?2, body), cloud_custom_data = coalesce(?3, cloud_custom_data), \
         version = version + 1 WHERE id = ?1",
    )?
    .execute(params![id, e.body, e.cloud_custom_data])?;
    if let Some(body) = &e.body {
        if w.search.holds(id) {
            w.search.flush(c)?;
        }
        crate::search::unindex(c, id)?;
        crate::search::index(c, id, sender, receiver, &crate::search::Terms::of(body))?;
    }
    let msg = Arc::new(read(c)?);
    let mut sides = Vec::with_capacity(2);
    if flags & HIDDEN_FROM_RECEIVER == 0 {
        sides.push((receiver, &e.to));
    }
    if sender != receiver && flags & HIDDEN_FROM_SENDER == 0 {
        sides.push((sender, &e.from));
    }
    let mut deliveries = Vec::with_capacity(sides.len());
    for (owner, name) in sides {
        let seq = append_log(c, w, owner, KIND_MODIFY, Some(id), None, Some(e.key.time), expire_at)?;
        deliveries
            .push(Delivery { user: name.clone(), entry: LogEntry { seq, event: LogEvent::Modified(msg.clone()) } });
    }
    Ok((Modified::Done((*msg).clone()), deliveries))
}

#[expect(clippy::too_many_arguments, reason = "the store method's arguments")]
pub(crate) fn withdraw(
    c: &Connection,
    w: &mut WriterState,
    from: &str,
    to: &str,
    key: MsgKey,
    by: &str,
    expire_at: i64,
    event: Option<AfterEvent>,
) -> Result<(Withdrawn, Vec<Delivery>)> {
    let (Some(sender), Some(receiver)) = (cached_uid(c, w, from)?, cached_uid(c, w, to)?) else {
        return Ok((Withdrawn::NotFound, Vec::new()));
    };
    let found: Option<(i64, i64)> = c
        .prepare_cached(
            "SELECT id, flags FROM messages WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) AND time = ?3 AND seq = ?4 \
             AND random = ?5 AND sender = ?1 ORDER BY id LIMIT 1",
        )?
        .query_row(params![sender, receiver, key.time, key.seq, key.random], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, flags)) = found else {
        return Ok((Withdrawn::NotFound, Vec::new()));
    };
    if flags & RECALLED != 0 {
        return Ok((Withdrawn::AlreadyRecalled, Vec::new()));
    }
    c.prepare_cached("UPDATE messages SET flags = flags | 1, revoker = ?2 WHERE id = ?1")?.execute(params![id, by])?;
    if w.search.holds(id) {
        w.search.flush(c)?;
    }
    crate::search::unindex(c, id)?;
    // Counted as unread only while neither exempt nor deleted by its recipient (which already uncounted it).
    if flags & (NO_UNREAD | HIDDEN_FROM_RECEIVER) == 0 {
        c.prepare_cached(
            "UPDATE conversations SET unread = max(unread - 1, 0) WHERE owner = ?1 AND peer = ?2 AND read_time < ?3",
        )?
        .execute(params![receiver, sender, key.time])?;
    }
    let mut deliveries = Vec::with_capacity(2);
    let mut sides = vec![(receiver, to, from)];
    if sender != receiver && flags & HIDDEN_FROM_SENDER == 0 {
        sides.push((sender, from, to));
    }
    for (owner, name, peer) in sides {
        let seq = append_log(c, w, owner, KIND_RECALL, Some(id), None, Some(key.time), expire_at)?;
        deliveries.push(Delivery {
            user: name.to_owned(),
            entry: LogEntry { seq, event: LogEvent::Recall { peer: peer.to_owned(), key, by: by.to_owned() } },
        });
    }
    if let Some(event) = event {
        crate::callbacks::queue_event(c, event, None)?;
    }
    Ok((Withdrawn::Done, deliveries))
}

pub(crate) fn set_read(
    c: &Connection,
    w: &mut WriterState,
    owner: &str,
    peer: &str,
    time: i64,
    expire_at: i64,
    event: Option<AfterEvent>,
) -> Result<(bool, Vec<Delivery>)> {
    let (Some(owner_uid), Some(peer_uid)) = (cached_uid(c, w, owner)?, cached_uid(c, w, peer)?) else {
        return Ok((false, Vec::new()));
    };
    let before: i64 = c
        .prepare_cached("SELECT read_time FROM conversations WHERE owner = ?1 AND peer = ?2")?
        .query_row([owner_uid, peer_uid], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    c.prepare_cached(
        "INSERT INTO conversations (owner, peer, read_time) VALUES (?1, ?2, ?3) \
         ON CONFLICT (owner, peer) DO UPDATE SET read_time = max(read_time, ?3)",
    )?
    .execute(params![owner_uid, peer_uid, time])?;
    c.prepare_cached(
        "UPDATE conversations SET unread = ( \
           SELECT count(*) FROM messages m WHERE m.lo = min(?1, ?2) AND m.hi = max(?1, ?2) \
             AND m.sender = ?2 AND m.receiver = ?1 AND m.time > conversations.read_time AND m.flags & 13 = 0) \
         WHERE owner = ?1 AND peer = ?2",
    )?
    .execute(params![owner_uid, peer_uid])?;
    let seq = append_log(c, w, owner_uid, KIND_READ, None, Some(peer_uid), Some(time), expire_at)?;
    let mut deliveries = vec![Delivery {
        user: owner.to_owned(),
        entry: LogEntry { seq, event: LogEvent::Read { peer: peer.to_owned(), time } },
    }];
    // The read receipt, when the read time moved.
    if time > before && owner_uid != peer_uid {
        let seq = append_log(c, w, peer_uid, KIND_PEER_READ, None, Some(owner_uid), Some(time), expire_at)?;
        deliveries.push(Delivery {
            user: peer.to_owned(),
            entry: LogEntry { seq, event: LogEvent::PeerRead { peer: owner.to_owned(), time } },
        });
    }
    if let Some(event) = event {
        crate::callbacks::queue_event(c, event, None)?;
    }
    Ok((true, deliveries))
}

pub(crate) fn ack_receipts(
    c: &Connection,
    w: &mut WriterState,
    reader: &str,
    sender: &str,
    keys: &[MsgKey],
    time: i64,
    expire_at: i64,
) -> Result<(Vec<Option<i64>>, Vec<Delivery>)> {
    let (Some(r), Some(s)) = (cached_uid(c, w, reader)?, cached_uid(c, w, sender)?) else {
        return Ok((vec![None; keys.len()], Vec::new()));
    };
    let mut deliveries = Vec::new();
    let mut times = Vec::with_capacity(keys.len());
    for key in keys {
        let found: Option<(i64, i64, Option<i64>)> = c
            .prepare_cached(
                "SELECT id, flags, receipt_time FROM messages WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) \
                 AND time = ?3 AND seq = ?4 AND random = ?5 AND sender = ?2 AND receiver = ?1",
            )?
            .query_row(params![r, s, key.time, key.seq, key.random], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        // Asked for, neither recalled nor hidden from the reader.
        let wanted = |(_, flags, _): &(i64, i64, Option<i64>)| flags & (NEED_RECEIPT | RECALLED | 4) == NEED_RECEIPT;
        let Some((id, _, receipt)) = found.filter(wanted) else {
            times.push(None);
            continue;
        };
        if receipt.is_some() {
            times.push(receipt);
            continue;
        }
        c.prepare_cached("UPDATE messages SET receipt_time = ?2 WHERE id = ?1")?.execute(params![id, time])?;
        times.push(Some(time));
        let seq = append_log(c, w, s, KIND_RECEIPT, Some(id), None, Some(key.time), expire_at)?;
        deliveries.push(Delivery {
            user: sender.to_owned(),
            entry: LogEntry { seq, event: LogEvent::Receipt { peer: reader.to_owned(), key: *key, time } },
        });
    }
    Ok((times, deliveries))
}

pub(crate) fn find_messages(
    c: &Connection,
    owner: &str,
    peer: &str,
    keys: &[MsgKey],
) -> Result<Vec<Option<StoredMessage>>> {
    let (Some(op), Some(p)) = (uid(c, owner)?, uid(c, peer)?) else {
        return Ok(vec![None; keys.len()]);
    };
    let read_time = |o: i64, other: i64| -> Result<i64> {
        c.prepare_cached("SELECT read_time FROM conversations WHERE owner = ?1 AND peer = ?2")?
            .query_row([o, other], |r| r.get(0))
            .optional()
            .map(Option::unwrap_or_default)
    };
    let (op_read, peer_read) = (read_time(op, p)?, read_time(p, op)?);
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m \
         WHERE m.lo = min(?1, ?2) AND m.hi = max(?1, ?2) AND m.time = ?3 AND m.seq = ?4 AND m.random = ?5 \
           AND NOT (m.sender = ?1 AND m.flags & 2) AND NOT (m.receiver = ?1 AND m.flags & 4)"
    ))?;
    let names = |uid: i64| if uid == op { owner.to_owned() } else { peer.to_owned() };
    keys.iter()
        .map(|k| {
            stmt.query_row(params![op, p, k.time, k.seq, k.random], |r| {
                let mut m = read_message(r, 0, names)?;
                m.peer_read = m.key.time <= if m.from == owner { peer_read } else { op_read };
                Ok(m)
            })
            .optional()
        })
        .collect()
}

pub(crate) fn unread(c: &Connection, owner: &str, peers: &[String]) -> Result<Vec<u64>> {
    let Some(owner) = uid(c, owner)? else {
        return Ok(vec![0; peers.len()]);
    };
    let mut stmt = c.prepare_cached(
        "SELECT c.unread FROM conversations c JOIN accounts a ON a.uid = c.peer WHERE c.owner = ?1 AND a.user_id = ?2",
    )?;
    peers
        .iter()
        .map(|p| Ok(stmt.query_row(params![owner, p], |r| r.get::<_, i64>(0)).optional()?.unwrap_or(0).max(0) as u64))
        .collect()
}

pub(crate) fn purge(c: &Connection, w: &mut WriterState, cut: Cutoffs) -> Result<Purged> {
    let chunked = |sql: &str, arg: i64| -> Result<u64> {
        let mut total = 0;
        loop {
            let n = c.prepare_cached(sql)?.execute(params![arg, PURGE_CHUNK])?;
            total += n as u64;
            if (n as i64) < PURGE_CHUNK {
                return Ok(total);
            }
        }
    };
    // Sync-log positions live in the log's last entry (see `LATEST_SEQ`): keep them on the account before
    // the entries that expire go.
    c.prepare_cached(&format!(
        "UPDATE accounts AS a SET log_seq = {LATEST_SEQ} WHERE a.uid IN (SELECT uid FROM inbox WHERE expire_at < ?1)"
    ))?
    .execute([cut.offline_before])?;
    // A conversation expires with its last message: look at the pairs whose messages expire now (by the
    // primary key; an index on `last_time` would cost every send two index updates).
    let conversations = c.prepare_cached(
        "DELETE FROM conversations WHERE last_msg_id IS NOT NULL AND last_time < ?1 AND (owner, peer) IN \
         (SELECT receiver, sender FROM messages WHERE time < ?1 UNION SELECT sender, receiver FROM messages WHERE time < ?1)",
    )?
    .execute([cut.roaming_before])? as u64;
    // Queued messages are indexed first, so that a purged one leaves no row behind (the delete trigger
    // takes its row along), and every message left is indexed.
    w.search.flush(c)?;
    let messages = chunked(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE time < ?1 LIMIT ?2)",
        cut.roaming_before,
    )?;
    if messages > 0 {
        crate::search::purged(c)?;
    }
    // Offline copies go when they expire (at most the offline retention after their message was sent). One
    // whose message expired first stays until then, skipped by the sync (no index on `msg_id` to find it:
    // that would cost every append).
    let offline = chunked(
        "DELETE FROM inbox WHERE (uid, seq) IN (SELECT uid, seq FROM inbox WHERE expire_at < ?1 LIMIT ?2)",
        cut.offline_before,
    )?;
    // Dedup rows are in send order: everything before the first row still in the window goes (a row that
    // is older but written later, after a clock step back, waits for a later purge).
    let boundary: Option<i64> = c
        .prepare_cached("SELECT id FROM dedup WHERE created_ms >= ?1 ORDER BY id LIMIT 1")?
        .query_row([cut.dedup_before_ms], |r| r.get(0))
        .optional()?;
    let boundary = boundary.unwrap_or(i64::MAX);
    let dedup = c.prepare_cached("DELETE FROM dedup WHERE id < ?1")?.execute([boundary])? as u64;
    if dedup > 0 {
        w.dedup.forget_before(boundary);
    }
    Ok(Purged { messages, offline, conversations, dedup })
}

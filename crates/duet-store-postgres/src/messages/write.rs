//! Sends and imports, and what every write shares: appending to a sync log, a conversation's counters,
//! the owner's side of a conversation. Each runs inside the writer's transaction, after the account rows of
//! every user it names are locked.

use std::collections::HashMap;
use std::sync::Arc;

use duet_core::model::{
    Delivery, Import, LogEntry, LogEvent, MsgKey, SenderCopy, SenderInfo, Sent, StoredMessage, TAG_IMAGE, TAG_NICK,
};
use duet_core::store::{Imported, SendOutcome, SendPlan, StoreError};

use super::{HIDDEN_FROM_SENDER, KIND_MSG, NEED_RECEIPT, NO_UNREAD};
use crate::writer::{Conn, Locks};
use crate::{execute, query, query_opt};

/// Appends an entry to a user's sync log: its sequence number, the account's `log_seq` plus one (the
/// account row is locked by the writer, so nobody else numbers this user's entries meanwhile).
pub(super) async fn append_log(
    c: &Conn,
    uid: i64,
    kind: i16,
    msg_id: Option<i64>,
    peer: Option<i64>,
    time: Option<i64>,
    expire_at: i64,
) -> Result<u64, StoreError> {
    let row = query_opt(
        c,
        "WITH a AS (UPDATE accounts SET log_seq = log_seq + 1 WHERE uid = $1 RETURNING log_seq) \
         INSERT INTO inbox (uid, seq, kind, msg_id, peer, time, expire_at) \
         SELECT $1::BIGINT, a.log_seq, $2::SMALLINT, $3::BIGINT, $4::BIGINT, $5::BIGINT, $6::BIGINT FROM a RETURNING seq",
        &[&uid, &kind, &msg_id, &peer, &time, &expire_at],
    )
    .await?
    .ok_or_else(|| crate::invalid("a sync log's account is gone"))?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// A conversation's counters (a row of `threads`; zeros while it has none).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Thread {
    /// The last position taken (`conv_seq`).
    pub(super) conv_seq: u64,
    /// The last `MsgSeq` the store picked for a message that had none.
    key_seq: u32,
    /// The latest time of a message in the conversation (a send is never dated before it).
    last_time: i64,
}

impl Thread {
    /// The `MsgSeq` the next message without one gets. (Wrapping: only same-second order at the wrap,
    /// four billion messages into a conversation, would suffer.)
    fn next_key_seq(&self) -> u32 {
        self.key_seq.wrapping_add(1)
    }
}

/// The conversation `(lo, hi)` of users `a` and `b`.
pub(super) fn pair(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

/// The counters of the conversation between `a` and `b` (both locked by the caller's job).
pub(super) async fn thread(c: &Conn, a: i64, b: i64) -> Result<Thread, StoreError> {
    let (lo, hi) = pair(a, b);
    let row =
        query_opt(c, "SELECT seq, key_seq, last_time FROM threads WHERE lo = $1 AND hi = $2", &[&lo, &hi]).await?;
    Ok(row.map_or_else(Thread::default, |r| Thread {
        conv_seq: r.get::<_, i64>(0).max(0) as u64,
        key_seq: r.get::<_, i64>(1) as u32,
        last_time: r.get(2),
    }))
}

/// Records that the conversation between `a` and `b` took its next position for a message of `time`
/// stored under `picked` (a `MsgSeq` the store picked, or `None` when the sender gave one): the counters now.
async fn advance_thread(
    c: &Conn,
    a: i64,
    b: i64,
    before: Thread,
    picked: Option<u32>,
    time: i64,
) -> Result<Thread, StoreError> {
    let (lo, hi) = pair(a, b);
    let after = Thread {
        conv_seq: before.conv_seq + 1,
        key_seq: picked.unwrap_or(before.key_seq),
        last_time: before.last_time.max(time),
    };
    let (conv_seq, key_seq, last_time) = (after.conv_seq as i64, i64::from(after.key_seq), after.last_time);
    execute(
        c,
        "INSERT INTO threads (lo, hi, seq, key_seq, last_time) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (lo, hi) DO UPDATE SET seq = excluded.seq, key_seq = excluded.key_seq, \
         last_time = excluded.last_time",
        &[&lo, &hi, &conv_seq, &key_seq, &last_time],
    )
    .await?;
    Ok(after)
}

/// The order of recent contacts, most recent first: by the last message's time, then by the order in which
/// the last messages were stored (ids grow), so that of several conversations touched in one second the
/// latest comes first (and the cap evicts the earliest). Without a last message, last (as SQLite orders
/// NULL).
pub(super) const RECENT_FIRST: &str = "c.last_time DESC, c.last_msg_id DESC NULLS LAST, c.peer";

/// Updates `owner`'s side of the conversation with `peer` for a new message, keeping at most
/// `max_conversations` conversations per owner (the least recent go). `last`: the message becomes the
/// conversation's last one (unless it is an older import).
async fn touch_conversation(
    c: &Conn,
    owner: i64,
    peer: i64,
    msg_time: i64,
    last: Option<i64>,
    unread: bool,
    max_conversations: usize,
) -> Result<(), StoreError> {
    let updated = execute(
        c,
        "UPDATE conversations SET \
           last_msg_id = CASE WHEN $3::BIGINT IS NOT NULL AND $4::BIGINT >= last_time THEN $3 ELSE last_msg_id END, \
           last_time = CASE WHEN $3::BIGINT IS NOT NULL AND $4::BIGINT >= last_time THEN $4 ELSE last_time END, \
           unread = unread + CASE WHEN $5::BOOLEAN AND $4::BIGINT > read_time THEN 1 ELSE 0 END \
         WHERE owner = $1 AND peer = $2",
        &[&owner, &peer, &last, &msg_time, &unread],
    )
    .await?;
    if updated == 0 {
        execute(
            c,
            "INSERT INTO conversations (owner, peer, last_msg_id, last_time, unread) \
             VALUES ($1, $2, $3, CASE WHEN $3::BIGINT IS NOT NULL THEN $4::BIGINT ELSE 0 END, \
                     CASE WHEN $5::BOOLEAN AND $4::BIGINT > 0 THEN 1 ELSE 0 END)",
            &[&owner, &peer, &last, &msg_time, &unread],
        )
        .await?;
        let keep = i64::try_from(max_conversations).unwrap_or(i64::MAX);
        execute(
            c,
            &format!(
                "DELETE FROM conversations WHERE owner = $1 AND peer IN \
                 (SELECT c.peer FROM conversations c WHERE c.owner = $1 ORDER BY {RECENT_FIRST} OFFSET $2)"
            ),
            &[&owner, &keep],
        )
        .await?;
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
    flags: i32,
}

/// Inserts a message; `None` if the conversation has one with the same key already (either direction).
async fn insert_message(c: &Conn, m: &NewRow<'_>) -> Result<Option<i64>, StoreError> {
    let (time, seq, random) = super::key_params(&m.key);
    let conv_seq = m.conv_seq as i64;
    let row = query_opt(
        c,
        "INSERT INTO messages (sender, receiver, lo, hi, time, seq, random, conv_seq, body, cloud_custom_data, \
         push_info, flags, sender_nick, sender_face) \
         VALUES ($1, $2, LEAST($1::BIGINT, $2::BIGINT), GREATEST($1::BIGINT, $2::BIGINT), $3, $4, $5, $6, $7, $8, \
                 $9, $10, $11, $12) \
         ON CONFLICT (lo, hi, time, seq, random) DO NOTHING RETURNING id",
        &[
            &m.sender,
            &m.receiver,
            &time,
            &seq,
            &random,
            &conv_seq,
            &m.body,
            &m.cloud_custom_data,
            &m.push_info,
            &m.flags,
            &m.sender_info.nick,
            &m.sender_info.face_url,
        ],
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The sender's current nickname and avatar, to keep with a message.
async fn sender_info(c: &Conn, uid: i64) -> Result<SenderInfo, StoreError> {
    let mut info = SenderInfo::default();
    let rows =
        query(c, "SELECT tag, text FROM profiles WHERE uid = $1 AND tag IN ($2, $3)", &[&uid, &TAG_NICK, &TAG_IMAGE])
            .await?;
    for r in rows {
        let (tag, text): (String, Option<String>) = (r.get(0), r.get(1));
        let text = text.filter(|t| !t.is_empty());
        if tag == TAG_NICK {
            info.nick = text;
        } else {
            info.face_url = text;
        }
    }
    Ok(info)
}

fn msg_entry(seq: u64, msg: &Arc<StoredMessage>, user: &str) -> Delivery {
    Delivery { user: user.to_owned(), entry: LogEntry { seq, event: LogEvent::Message(msg.clone()) } }
}

/// How a send's dedup key stands.
enum Claim {
    /// Ours: no send within the window has it (an expired entry was taken over).
    New,
    /// A retry: the first send's result.
    Duplicate(Sent),
}

/// Takes `plan`'s dedup key for this send, unless a send within the window holds it. The key's row is
/// written first (and filled in by [`settle_dedup`]): a second node taking the same retry at once waits on
/// the unique key for the first's commit, then finds its row (the sender's account lock already makes
/// them take turns).
async fn claim_dedup(c: &Conn, sender: i64, plan: &SendPlan) -> Result<Claim, StoreError> {
    let key = &plan.dedup_key[..];
    let taken = query_opt(
        c,
        "INSERT INTO dedup (sender, key, created_ms, seq, random, time, failed, conv_seq, log_seq) \
         VALUES ($1, $2, $3, 0, 0, 0, '', 0, 0) \
         ON CONFLICT (sender, key) DO UPDATE SET created_ms = excluded.created_ms, seq = 0, random = 0, time = 0, \
           failed = '', conv_seq = 0, log_seq = 0 \
         WHERE dedup.created_ms < $4 RETURNING 1",
        &[&sender, &key, &plan.now_ms, &plan.dedup_since_ms],
    )
    .await?;
    if taken.is_some() {
        return Ok(Claim::New);
    }
    let r = query_opt(
        c,
        "SELECT seq, random, time, failed, conv_seq, log_seq FROM dedup WHERE sender = $1 AND key = $2",
        &[&sender, &key],
    )
    .await?
    .ok_or_else(|| crate::invalid("a dedup entry vanished under its sender's lock"))?;
    Ok(Claim::Duplicate(Sent {
        key: MsgKey { seq: r.get::<_, i64>(0) as u32, random: r.get::<_, i64>(1) as u32, time: r.get(2) },
        failed: r.get::<_, String>(3).lines().map(str::to_owned).collect(),
        duplicate: true,
        conv_seq: r.get::<_, i64>(4).max(0) as u64,
        sender_log_seq: r.get::<_, i64>(5).max(0) as u64,
    }))
}

/// Fills in the dedup entry [`claim_dedup`] took with the send's result, or drops it when the send stored
/// nothing because no recipient exists (such a send is not remembered).
async fn settle_dedup(c: &Conn, sender: i64, plan: &SendPlan, sent: &Sent) -> Result<(), StoreError> {
    let key = &plan.dedup_key[..];
    if sent.failed.len() < plan.msg.to.len() {
        let (time, seq, random) = super::key_params(&sent.key);
        execute(
            c,
            "UPDATE dedup SET seq = $3, random = $4, time = $5, failed = $6, conv_seq = $7, log_seq = $8 \
             WHERE sender = $1 AND key = $2",
            &[
                &sender,
                &key,
                &seq,
                &random,
                &time,
                &sent.failed.join("\n"),
                &(sent.conv_seq as i64),
                &(sent.sender_log_seq as i64),
            ],
        )
        .await?;
    } else {
        execute(c, "DELETE FROM dedup WHERE sender = $1 AND key = $2", &[&sender, &key]).await?;
    }
    Ok(())
}

pub(super) async fn send(c: &Conn, locks: &Locks, plan: &SendPlan) -> Result<(SendOutcome, Vec<Delivery>), StoreError> {
    let msg = &plan.msg;
    let Some(sender) = locks.uid(&msg.from) else {
        return Ok((SendOutcome::NoSuchSender(msg.from.clone()), Vec::new()));
    };
    if let Claim::Duplicate(sent) = claim_dedup(c, sender, plan).await? {
        return Ok((SendOutcome::Duplicate(sent), Vec::new()));
    }
    let receivers: Vec<(&String, Option<i64>)> = msg.to.iter().map(|to| (to, locks.uid(to))).collect();
    // One key for every recipient. Its MsgSeq: the sender's, or else one above what the store picked
    // before in each of the conversations. Its time: the send's, unless a conversation already holds a
    // later message (a send that raced this one across a second boundary and was stored first).
    // The conversations' counters, read once here (the account locks keep them as read) and kept up to
    // date below (a recipient named twice takes two positions).
    let mut threads: HashMap<i64, Thread> = HashMap::with_capacity(receivers.len());
    let (mut next, mut time) = (None, plan.time);
    for &(_, receiver) in &receivers {
        if let Some(receiver) = receiver {
            let t = match threads.get(&receiver) {
                Some(t) => *t,
                None => thread(c, sender, receiver).await?,
            };
            threads.insert(receiver, t);
            time = time.max(t.last_time);
            let seq = t.next_key_seq();
            next = Some(next.map_or(seq, |n: u32| n.max(seq)));
        }
    }
    let picked = msg.seq.is_none().then(|| next.unwrap_or(1));
    let key = MsgKey { seq: msg.seq.or(picked).unwrap_or(1), random: msg.random, time };
    let mut sent = Sent { key, failed: Vec::new(), duplicate: false, conv_seq: 0, sender_log_seq: 0 };
    let mut deliveries = Vec::with_capacity(2 * msg.to.len());
    let info = sender_info(c, sender).await?;
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
    for (to, receiver) in receivers {
        let Some(receiver) = receiver else {
            sent.failed.push(to.clone());
            continue;
        };
        let before = threads.get(&receiver).copied().unwrap_or_default();
        let conv_seq = before.conv_seq + 1;
        let row = NewRow {
            sender_info: &info,
            sender,
            receiver,
            key,
            conv_seq,
            body: &msg.body,
            cloud_custom_data: &msg.cloud_custom_data,
            push_info: msg.push_info.as_deref(),
            flags,
        };
        let Some(id) = insert_message(c, &row).await? else {
            // Another message already has this MsgKey in this conversation (same MsgSeq and MsgRandom in the
            // same second): Tencent's MsgRandom dedup. Keys stay unique per conversation.
            continue;
        };
        let after = advance_thread(c, sender, receiver, before, picked, key.time).await?;
        threads.insert(receiver, after);
        crate::search::index(c, id, sender, receiver, &msg.body).await?;
        let mut stored = StoredMessage::fresh(&msg.from, to, key, conv_seq, &msg.body, &msg.cloud_custom_data, &info);
        stored.need_receipt = msg.need_read_receipt;
        let stored = Arc::new(stored);
        let seq = append_log(c, receiver, KIND_MSG, Some(id), None, Some(key.time), plan.offline_until).await?;
        deliveries.push(msg_entry(seq, &stored, to));
        if plan.push && sender != receiver {
            crate::push::queue_pushes(c, receiver, sender, id, key.time, plan.now_ms.div_euclid(1000)).await?;
        }
        if sent.conv_seq == 0 {
            sent.conv_seq = conv_seq;
        }
        let last = (!msg.no_last_msg).then_some(id);
        touch_conversation(c, receiver, sender, key.time, last, !msg.no_unread, plan.max_conversations).await?;
        if sender == receiver {
            continue;
        }
        if msg.sender_copy == SenderCopy::Sync {
            let seq = append_log(c, sender, KIND_MSG, Some(id), None, Some(key.time), plan.offline_until).await?;
            deliveries.push(msg_entry(seq, &stored, &msg.from));
            if sent.sender_log_seq == 0 {
                sent.sender_log_seq = seq;
            }
        }
        if msg.sender_copy != SenderCopy::Nothing {
            touch_conversation(c, sender, receiver, key.time, last, false, plan.max_conversations).await?;
        }
    }
    if let Some(event) = &plan.after_send
        && sent.conv_seq > 0
    {
        crate::callbacks::queue_event(c, event.clone(), Some(key)).await?;
    }
    settle_dedup(c, sender, plan, &sent).await?;
    Ok((SendOutcome::Sent(sent), deliveries))
}

pub(super) async fn import(
    c: &Conn,
    locks: &Locks,
    msg: &Import,
    offline_until: i64,
    max_conversations: usize,
) -> Result<(Imported, Vec<Delivery>), StoreError> {
    let Some(sender) = locks.uid(&msg.from) else {
        return Ok((Imported::NoSuchSender(msg.from.clone()), Vec::new()));
    };
    let Some(receiver) = locks.uid(&msg.to) else {
        return Ok((Imported::NoSuchRecipient(msg.to.clone()), Vec::new()));
    };
    let flags = if msg.counts_unread { 0 } else { NO_UNREAD };
    let info = sender_info(c, sender).await?;
    let before = thread(c, sender, receiver).await?;
    let picked = msg.seq.is_none().then(|| before.next_key_seq());
    let key = MsgKey { seq: msg.seq.or(picked).unwrap_or(1), random: msg.random, time: msg.time };
    let conv_seq = before.conv_seq + 1;
    let row = NewRow {
        sender_info: &info,
        sender,
        receiver,
        key,
        conv_seq,
        body: &msg.body,
        cloud_custom_data: &msg.cloud_custom_data,
        push_info: None,
        flags,
    };
    let Some(id) = insert_message(c, &row).await? else {
        return Ok((Imported::Duplicate, Vec::new()));
    };
    advance_thread(c, sender, receiver, before, picked, key.time).await?;
    crate::search::index(c, id, sender, receiver, &msg.body).await?;
    let mut deliveries = Vec::new();
    if msg.counts_unread {
        let seq = append_log(c, receiver, KIND_MSG, Some(id), None, Some(key.time), offline_until).await?;
        let stored =
            Arc::new(StoredMessage::fresh(&msg.from, &msg.to, key, conv_seq, &msg.body, &msg.cloud_custom_data, &info));
        deliveries.push(msg_entry(seq, &stored, &msg.to));
    }
    touch_conversation(c, receiver, sender, key.time, Some(id), msg.counts_unread, max_conversations).await?;
    if sender != receiver {
        touch_conversation(c, sender, receiver, key.time, Some(id), false, max_conversations).await?;
    }
    Ok((Imported::Stored, deliveries))
}

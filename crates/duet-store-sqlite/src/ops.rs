//! The SQL of each store operation. Write operations run on the writer thread inside a savepoint of the
//! current group commit; read operations run on a pooled read connection.

use duet_core::Error;
use duet_core::model::{
    HistoryPage, HistoryQuery, Import, MsgKey, NewAccount, ProfileValue, Purged, SenderCopy, Sent,
    StoredMessage, TAG_IMAGE, TAG_NICK,
};
use duet_core::store::{Cutoffs, Imported, SendPlan, Withdrawn};
use rusqlite::{Connection, OptionalExtension, Result, params};

use crate::backend;

const RECALLED: i64 = 1;
const HIDDEN_FROM_SENDER: i64 = 2;
const NO_UNREAD: i64 = 8;

/// Rows deleted per statement by a purge, so one purge never holds the writer for long.
const PURGE_CHUNK: i64 = 10_000;

pub(crate) fn uid(c: &Connection, user_id: &str) -> Result<Option<i64>> {
    c.prepare_cached("SELECT uid FROM accounts WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()
}

pub(crate) fn import_accounts(c: &Connection, accounts: &[NewAccount], now: i64) -> Result<()> {
    for a in accounts {
        c.prepare_cached(
            "INSERT INTO accounts (user_id, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute((&a.id, now))?;
        let uid = uid(c, &a.id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        for (tag, value) in [(TAG_NICK, &a.nick), (TAG_IMAGE, &a.face_url)] {
            if let Some(v) = value {
                put_profile(c, uid, tag, &ProfileValue::Text(v.clone()))?;
            }
        }
    }
    Ok(())
}

pub(crate) fn delete_accounts(c: &Connection, ids: &[String]) -> Result<Vec<bool>> {
    ids.iter()
        .map(|id| {
            let Some(uid) = uid(c, id)? else {
                return Ok(false);
            };
            c.prepare_cached("DELETE FROM profiles WHERE uid = ?1")?
                .execute([uid])?;
            c.prepare_cached("DELETE FROM inbox WHERE uid = ?1")?
                .execute([uid])?;
            c.prepare_cached("DELETE FROM conversations WHERE owner = ?1")?
                .execute([uid])?;
            c.prepare_cached("DELETE FROM accounts WHERE uid = ?1")?
                .execute([uid])?;
            Ok(true)
        })
        .collect()
}

fn put_profile(c: &Connection, uid: i64, tag: &str, value: &ProfileValue) -> Result<()> {
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
    id: &str,
    items: &[(String, ProfileValue)],
) -> Result<bool> {
    let Some(uid) = uid(c, id)? else {
        return Ok(false);
    };
    for (tag, value) in items {
        put_profile(c, uid, tag, value)?;
    }
    Ok(true)
}

pub(crate) fn profile(
    c: &Connection,
    id: &str,
    tags: &[String],
) -> Result<Option<Vec<(String, ProfileValue)>>> {
    let Some(uid) = uid(c, id)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(tags.len());
    let mut stmt =
        c.prepare_cached("SELECT text, num FROM profiles WHERE uid = ?1 AND tag = ?2")?;
    for tag in tags {
        let value = stmt
            .query_row(params![uid, tag], |r| {
                Ok(match r.get::<_, Option<String>>(0)? {
                    Some(text) => ProfileValue::Text(text),
                    None => {
                        ProfileValue::Number(r.get::<_, Option<i64>>(1)?.unwrap_or(0).max(0) as u64)
                    }
                })
            })
            .optional()?;
        if let Some(v) = value {
            out.push((tag.clone(), v));
        }
    }
    Ok(Some(out))
}

/// Appends a message to a user's sync log.
fn append_inbox(c: &Connection, uid: i64, msg_id: i64, expire_at: i64) -> Result<()> {
    let seq: i64 = c
        .prepare_cached(
            "UPDATE accounts SET log_seq = log_seq + 1 WHERE uid = ?1 RETURNING log_seq",
        )?
        .query_row([uid], |r| r.get(0))?;
    c.prepare_cached("INSERT INTO inbox (uid, seq, msg_id, expire_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![uid, seq, msg_id, expire_at])?;
    Ok(())
}

/// Updates `owner`'s side of the conversation with `peer` for a new message.
fn touch_conversation(
    c: &Connection,
    owner: i64,
    peer: i64,
    msg: Option<(i64, i64)>,
    unread: bool,
) -> Result<()> {
    let (msg_id, time) = msg.unzip();
    c.prepare_cached(
        "INSERT INTO conversations (owner, peer, last_msg_id, last_time, unread) VALUES (?1, ?2, ?3, coalesce(?4, 0), ?5) \
         ON CONFLICT (owner, peer) DO UPDATE SET \
           last_msg_id = CASE WHEN ?3 IS NOT NULL AND ?4 >= last_time THEN ?3 ELSE last_msg_id END, \
           last_time = CASE WHEN ?4 IS NOT NULL AND ?4 >= last_time THEN ?4 ELSE last_time END, \
           unread = unread + CASE WHEN ?5 = 1 AND coalesce(?4, 0) > read_time THEN 1 ELSE 0 END",
    )?
    .execute(params![owner, peer, msg_id, time, unread as i64])?;
    Ok(())
}

struct NewRow<'a> {
    sender: i64,
    receiver: i64,
    key: MsgKey,
    body: &'a str,
    cloud_custom_data: &'a str,
    push_info: Option<&'a str>,
    flags: i64,
}

fn insert_message(c: &Connection, m: &NewRow<'_>) -> Result<i64> {
    c.prepare_cached(
        "INSERT INTO messages (sender, receiver, lo, hi, time, seq, random, body, cloud_custom_data, push_info, flags) \
         VALUES (?1, ?2, min(?1, ?2), max(?1, ?2), ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        m.sender,
        m.receiver,
        m.key.time,
        m.key.seq,
        m.key.random,
        m.body,
        m.cloud_custom_data,
        m.push_info,
        m.flags
    ])?;
    Ok(c.last_insert_rowid())
}

pub(crate) fn send(c: &Connection, plan: &SendPlan) -> std::result::Result<Sent, Error> {
    let first = c
        .prepare_cached(
            "SELECT seq, random, time, failed FROM dedup WHERE key = ?1 AND created_ms >= ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![&plan.dedup_key[..], plan.dedup_since_ms], |r| {
                Ok(Sent {
                    key: MsgKey {
                        seq: r.get(0)?,
                        random: r.get(1)?,
                        time: r.get(2)?,
                    },
                    failed: r.get::<_, String>(3)?.lines().map(str::to_owned).collect(),
                    duplicate: true,
                })
            })
            .optional()
        })
        .map_err(backend)?;
    if let Some(sent) = first {
        return Ok(sent);
    }
    let run = || -> Result<std::result::Result<Sent, Error>> {
        let msg = &plan.msg;
        let Some(sender) = uid(c, &msg.from)? else {
            return Ok(Err(Error::NoSuchSender(msg.from.clone())));
        };
        let mut failed = Vec::new();
        for to in &msg.to {
            let Some(receiver) = uid(c, to)? else {
                failed.push(to.clone());
                continue;
            };
            if msg.lifetime_secs == 0 {
                // Online only: nothing is stored; live delivery is the transport's business.
                continue;
            }
            let mut flags = 0;
            if msg.sender_copy == SenderCopy::Nothing {
                flags |= HIDDEN_FROM_SENDER;
            }
            if msg.no_unread {
                flags |= NO_UNREAD;
            }
            let id = insert_message(
                c,
                &NewRow {
                    sender,
                    receiver,
                    key: plan.key,
                    body: &msg.body,
                    cloud_custom_data: &msg.cloud_custom_data,
                    push_info: msg.push_info.as_deref(),
                    flags,
                },
            )?;
            append_inbox(c, receiver, id, plan.offline_until)?;
            let last = (!msg.no_last_msg).then_some((id, plan.key.time));
            touch_conversation(c, receiver, sender, last, !msg.no_unread)?;
            if msg.sender_copy == SenderCopy::Sync && sender != receiver {
                append_inbox(c, sender, id, plan.offline_until)?;
            }
            if msg.sender_copy != SenderCopy::Nothing && sender != receiver {
                touch_conversation(c, sender, receiver, last, false)?;
            }
        }
        if failed.len() < msg.to.len() {
            c.prepare_cached(
                "INSERT OR REPLACE INTO dedup (key, created_ms, seq, random, time, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                &plan.dedup_key[..],
                plan.now_ms,
                plan.key.seq,
                plan.key.random,
                plan.key.time,
                failed.join("\n")
            ])?;
        }
        Ok(Ok(Sent {
            key: plan.key,
            failed,
            duplicate: false,
        }))
    };
    run().map_err(|e| Error::Store(backend(e)))?
}

pub(crate) fn import(
    c: &Connection,
    msg: &Import,
    key: MsgKey,
    offline_until: i64,
) -> std::result::Result<Imported, Error> {
    let run = || -> Result<std::result::Result<Imported, Error>> {
        let Some(sender) = uid(c, &msg.from)? else {
            return Ok(Err(Error::NoSuchSender(msg.from.clone())));
        };
        let Some(receiver) = uid(c, &msg.to)? else {
            return Ok(Err(Error::NoSuchAccount(msg.to.clone())));
        };
        let dup: Option<i64> = c
                .prepare_cached(
                    "SELECT id FROM messages WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) AND time = ?3 AND seq = ?4 \
                     AND random = ?5",
                )?
                .query_row(params![sender, receiver, key.time, key.seq, key.random], |r| r.get(0))
                .optional()?;
        if dup.is_some() {
            return Ok(Ok(Imported::Duplicate));
        }
        let flags = if msg.counts_unread { 0 } else { NO_UNREAD };
        let id = insert_message(
            c,
            &NewRow {
                sender,
                receiver,
                key,
                body: &msg.body,
                cloud_custom_data: &msg.cloud_custom_data,
                push_info: None,
                flags,
            },
        )?;
        if msg.counts_unread {
            append_inbox(c, receiver, id, offline_until)?;
        }
        touch_conversation(c, receiver, sender, Some((id, key.time)), msg.counts_unread)?;
        if sender != receiver {
            touch_conversation(c, sender, receiver, Some((id, key.time)), false)?;
        }
        Ok(Ok(Imported::Stored))
    };
    run().map_err(|e| Error::Store(backend(e)))?
}

pub(crate) fn history(c: &Connection, q: &HistoryQuery) -> Result<HistoryPage> {
    let (Some(op), Some(peer)) = (uid(c, &q.operator)?, uid(c, &q.peer)?) else {
        return Ok(HistoryPage {
            messages: Vec::new(),
            more: false,
        });
    };
    let read_time = |owner: i64, other: i64| -> Result<i64> {
        c.prepare_cached("SELECT read_time FROM conversations WHERE owner = ?1 AND peer = ?2")?
            .query_row([owner, other], |r| r.get(0))
            .optional()
            .map(Option::unwrap_or_default)
    };
    let (op_read, peer_read) = (read_time(op, peer)?, read_time(peer, op)?);
    // The cursor: strictly older than the message `before` names, in (time, seq, id) order.
    let cursor = match q.before {
        None => (i64::MAX, i64::MAX, i64::MAX),
        Some(k) => {
            let id: Option<i64> = c
                .prepare_cached(
                    "SELECT id FROM messages WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) AND time = ?3 AND seq = ?4 \
                     AND random = ?5 ORDER BY id DESC LIMIT 1",
                )?
                .query_row(params![op, peer, k.time, k.seq, k.random], |r| r.get(0))
                .optional()?;
            (k.time, i64::from(k.seq), id.unwrap_or(0))
        }
    };
    let mut stmt = c.prepare_cached(
        "SELECT sender, time, seq, random, body, cloud_custom_data, flags FROM messages \
         WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) AND time >= ?3 AND time <= ?4 \
           AND (time, seq, id) < (?5, ?6, ?7) \
           AND NOT (sender = ?1 AND flags & 2) AND NOT (receiver = ?1 AND flags & 4) \
         ORDER BY time DESC, seq DESC, id DESC LIMIT ?8",
    )?;
    let limit = q.limit.min(i64::MAX as usize - 1) as i64 + 1;
    let rows = stmt.query_map(
        params![
            op, peer, q.min_time, q.max_time, cursor.0, cursor.1, cursor.2, limit
        ],
        |r| {
            let sender: i64 = r.get(0)?;
            let key = MsgKey {
                time: r.get(1)?,
                seq: r.get(2)?,
                random: r.get(3)?,
            };
            let from_op = sender == op;
            let flags: i64 = r.get(6)?;
            Ok(StoredMessage {
                from: if from_op {
                    q.operator.clone()
                } else {
                    q.peer.clone()
                },
                to: if from_op {
                    q.peer.clone()
                } else {
                    q.operator.clone()
                },
                key,
                body: r.get(4)?,
                cloud_custom_data: r.get(5)?,
                recalled: flags & RECALLED != 0,
                peer_read: key.time <= if from_op { peer_read } else { op_read },
            })
        },
    )?;
    let mut messages = rows.collect::<Result<Vec<_>>>()?;
    let more = messages.len() > q.limit;
    messages.truncate(q.limit);
    Ok(HistoryPage { messages, more })
}

pub(crate) fn withdraw(c: &Connection, from: &str, to: &str, key: MsgKey) -> Result<Withdrawn> {
    let (Some(sender), Some(receiver)) = (uid(c, from)?, uid(c, to)?) else {
        return Ok(Withdrawn::NotFound);
    };
    let found: Option<(i64, i64)> = c
        .prepare_cached(
            "SELECT id, flags FROM messages WHERE lo = min(?1, ?2) AND hi = max(?1, ?2) AND time = ?3 AND seq = ?4 \
             AND random = ?5 AND sender = ?1 ORDER BY id LIMIT 1",
        )?
        .query_row(params![sender, receiver, key.time, key.seq, key.random], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, flags)) = found else {
        return Ok(Withdrawn::NotFound);
    };
    if flags & RECALLED != 0 {
        return Ok(Withdrawn::AlreadyRecalled);
    }
    c.prepare_cached("UPDATE messages SET flags = flags | 1 WHERE id = ?1")?
        .execute([id])?;
    c.prepare_cached("DELETE FROM inbox WHERE msg_id = ?1")?
        .execute([id])?;
    if flags & NO_UNREAD == 0 {
        c.prepare_cached(
            "UPDATE conversations SET unread = max(unread - 1, 0) WHERE owner = ?1 AND peer = ?2 AND read_time < ?3",
        )?
        .execute(params![receiver, sender, key.time])?;
    }
    Ok(Withdrawn::Done)
}

pub(crate) fn set_read(c: &Connection, owner: &str, peer: &str, time: i64) -> Result<()> {
    let (Some(owner), Some(peer)) = (uid(c, owner)?, uid(c, peer)?) else {
        return Ok(());
    };
    c.prepare_cached(
        "INSERT INTO conversations (owner, peer, read_time) VALUES (?1, ?2, ?3) \
         ON CONFLICT (owner, peer) DO UPDATE SET read_time = max(read_time, ?3)",
    )?
    .execute(params![owner, peer, time])?;
    c.prepare_cached(
        "UPDATE conversations SET unread = ( \
           SELECT count(*) FROM messages m WHERE m.lo = min(?1, ?2) AND m.hi = max(?1, ?2) \
             AND m.sender = ?2 AND m.receiver = ?1 AND m.time > conversations.read_time AND m.flags & 13 = 0) \
         WHERE owner = ?1 AND peer = ?2",
    )?
    .execute(params![owner, peer])?;
    Ok(())
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
        .map(|p| {
            Ok(stmt
                .query_row(params![owner, p], |r| r.get::<_, i64>(0))
                .optional()?
                .unwrap_or(0)
                .max(0) as u64)
        })
        .collect()
}

pub(crate) fn purge(c: &Connection, cut: Cutoffs) -> Result<Purged> {
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
    let messages = chunked(
        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE time < ?1 LIMIT ?2)",
        cut.roaming_before,
    )?;
    // Offline copies go when they expire, or with their message.
    let mut offline = chunked(
        "DELETE FROM inbox WHERE (uid, seq) IN (SELECT uid, seq FROM inbox WHERE expire_at < ?1 LIMIT ?2)",
        cut.offline_before,
    )?;
    if messages > 0 {
        offline += c.execute(
            "DELETE FROM inbox WHERE msg_id NOT IN (SELECT id FROM messages)",
            [],
        )? as u64;
    }
    // A conversation expires with its last message.
    let conversations = chunked(
        "DELETE FROM conversations WHERE (owner, peer) IN \
         (SELECT owner, peer FROM conversations WHERE last_msg_id IS NOT NULL AND last_time < ?1 LIMIT ?2)",
        cut.roaming_before,
    )?;
    let dedup = chunked(
        "DELETE FROM dedup WHERE key IN (SELECT key FROM dedup WHERE created_ms < ?1 LIMIT ?2)",
        cut.dedup_before_ms,
    )?;
    Ok(Purged {
        messages,
        offline,
        conversations,
        dedup,
    })
}

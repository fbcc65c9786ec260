//! Push registrations and the push outbox (`schema_4.sql`). A send queues its pushes in its own commit
//! ([`queue_pushes`], called by `ops::send`); workers claim them with a lease and settle them.

use async_trait::async_trait;
use duet_core::model::{
    Dnd, DndWindow, MsgKey, Platform, ProviderKind, PushDevice, PushMessage, QueuedPush, ReceiveOpt, Settle,
};
use duet_core::store::{PushStore, StoreError};
use rusqlite::{Connection, Result, Row, params};

use crate::ops::cached_uid;
use crate::state::WriterState;
use crate::{SqliteStore, backend};

/// Queues a push of message `msg_id` (of `msg_time`) to every registered device of `uid`.
/// Nothing is queued when `uid` set a receive option other than "receive" for `sender`.
pub(crate) fn queue_pushes(c: &Connection, uid: i64, sender: i64, msg_id: i64, msg_time: i64, now: i64) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO push_outbox (uid, device, msg_id, msg_time, queued_at, next_at) \
         SELECT uid, device, ?2, ?3, ?4, ?4 FROM push_devices WHERE uid = ?1 AND NOT EXISTS \
           (SELECT 1 FROM conversation_settings s WHERE s.owner = ?1 AND s.peer = ?5 AND s.receive_opt != 0)",
    )?
    .execute(params![uid, msg_id, msg_time, now, sender])?;
    Ok(())
}

/// Removes every registration of `uid` (an account's deletion) and the pushes queued for them.
pub(crate) fn drop_user(c: &Connection, uid: i64) -> Result<()> {
    c.prepare_cached("DELETE FROM push_dnd WHERE uid = ?1")?.execute([uid])?;
    c.prepare_cached("DELETE FROM push_outbox WHERE uid = ?1")?.execute([uid])?;
    c.prepare_cached("DELETE FROM push_devices WHERE uid = ?1")?.execute([uid])?;
    Ok(())
}

fn remove_device(c: &Connection, uid: i64, device: &str) -> Result<()> {
    c.prepare_cached("DELETE FROM push_outbox WHERE uid = ?1 AND device = ?2")?.execute(params![uid, device])?;
    c.prepare_cached("DELETE FROM push_devices WHERE uid = ?1 AND device = ?2")?.execute(params![uid, device])?;
    Ok(())
}

/// Removes the registrations of `token` with `provider` (but the one of `keep`) and their pushes.
fn remove_token(c: &Connection, provider: ProviderKind, token: &str, keep: Option<(i64, &str)>) -> Result<u64> {
    let holders: Vec<(i64, String)> = c
        .prepare_cached("SELECT uid, device FROM push_devices WHERE provider = ?1 AND token = ?2")?
        .query_map(params![provider.as_str(), token], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_>>()?;
    let mut removed = 0;
    for (uid, device) in holders {
        if keep.is_some_and(|(u, d)| u == uid && d == device) {
            continue;
        }
        remove_device(c, uid, &device)?;
        removed += 1;
    }
    Ok(removed)
}

fn platform_from(name: &str) -> Platform {
    [Platform::IPhone, Platform::Android, Platform::IPad, Platform::Pc, Platform::Mac, Platform::Linux, Platform::Web]
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or(Platform::Android)
}

/// A `push_devices` row read from columns `uid`'s user id, device, platform, provider, token, app_id,
/// lang, seen_at starting at `at`. A provider this build does not know (a newer version's) reads as `None`.
fn device_at(r: &Row<'_>, at: usize) -> Result<Option<PushDevice>> {
    let provider: String = r.get(at + 3)?;
    let Ok(provider) = provider.parse() else {
        return Ok(None);
    };
    Ok(Some(PushDevice {
        user: r.get(at)?,
        device: r.get(at + 1)?,
        platform: platform_from(&r.get::<_, String>(at + 2)?),
        provider,
        token: r.get(at + 4)?,
        app_id: r.get(at + 5)?,
        lang: r.get(at + 6)?,
        seen_at: r.get(at + 7)?,
    }))
}

const DEVICE_COLUMNS: &str = "a.user_id, d.device, d.platform, d.provider, d.token, d.app_id, d.lang, d.seen_at";

fn register(c: &Connection, w: &mut WriterState, d: &PushDevice) -> Result<bool> {
    let Some(uid) = cached_uid(c, w, &d.user)? else {
        return Ok(false);
    };
    remove_token(c, d.provider, &d.token, Some((uid, &d.device)))?;
    // Pushes queued for the device stay: they go to its new token.
    c.prepare_cached(
        "INSERT INTO push_devices (uid, device, platform, provider, token, app_id, lang, seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (uid, device) DO UPDATE SET platform = excluded.platform, provider = excluded.provider, \
         token = excluded.token, app_id = excluded.app_id, lang = excluded.lang, seen_at = excluded.seen_at",
    )?
    .execute(params![
        uid,
        d.device,
        d.platform.name(),
        d.provider.as_str(),
        d.token,
        d.app_id,
        d.lang,
        d.seen_at
    ])?;
    Ok(true)
}

fn claim(c: &Connection, owner: &str, now: i64, lease_until: i64, limit: usize) -> Result<Vec<QueuedPush>> {
    let sql = format!(
        "SELECT o.id, o.attempts, o.queued_at, o.msg_time, m.id, m.time, \
         (SELECT user_id FROM accounts WHERE uid = m.sender), m.seq, m.random, m.body, m.push_info, m.sender_nick, \
         {DEVICE_COLUMNS}, (SELECT coalesce(sum(unread), 0) FROM conversations WHERE owner = o.uid) \
         FROM push_outbox o \
         JOIN accounts a ON a.uid = o.uid \
         LEFT JOIN push_devices d ON d.uid = o.uid AND d.device = o.device \
         LEFT JOIN messages m ON m.id = o.msg_id AND m.receiver = o.uid \
         WHERE o.next_at <= ?1 AND o.lease_until <= ?1 ORDER BY o.next_at, o.id LIMIT ?2"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![now, limit as i64])?;
    let (mut claimed, mut gone) = (Vec::new(), Vec::new());
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let msg_time: i64 = r.get(3)?;
        let message_there = r.get::<_, Option<i64>>(4)?.is_some() && r.get::<_, Option<i64>>(5)? == Some(msg_time);
        let device = if r.get::<_, Option<String>>(13)?.is_some() { device_at(r, 12)? } else { None };
        let (Some(device), Some(from), true) = (device, r.get::<_, Option<String>>(6)?, message_there) else {
            gone.push(id);
            continue;
        };
        let message = PushMessage {
            from,
            to: device.user.clone(),
            key: MsgKey { seq: r.get(7)?, random: r.get(8)?, time: msg_time },
            body: r.get(9)?,
            push_info: r.get(10)?,
            sender_nick: r.get(11)?,
        };
        let unread = r.get::<_, i64>(20)?.max(0) as u64;
        claimed.push(QueuedPush { id: id as u64, device, message, attempts: r.get(1)?, queued_at: r.get(2)?, unread });
    }
    drop(rows);
    for id in gone {
        c.prepare_cached("DELETE FROM push_outbox WHERE id = ?1")?.execute([id])?;
    }
    let mut lease = c.prepare_cached("UPDATE push_outbox SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1")?;
    for p in &claimed {
        lease.execute(params![p.id as i64, owner, lease_until])?;
    }
    Ok(claimed)
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn register_device(&self, device: PushDevice) -> Result<bool, StoreError> {
        self.writer.write(move |c, w| register(c, w, &device).map_err(backend)).await
    }

    async fn unregister_devices(&self, user: String, device: Option<String>) -> Result<(), StoreError> {
        self.writer.write(move |c, w| unregister(c, w, &user, device.as_deref()).map_err(backend)).await
    }

    async fn remove_push_token(&self, provider: ProviderKind, token: String) -> Result<u64, StoreError> {
        self.writer.write(move |c, _| remove_token(c, provider, &token, None).map_err(backend)).await
    }

    async fn device_seen(&self, user: String, device: String, at: i64) -> Result<(), StoreError> {
        self.writer.write(move |c, w| seen(c, w, &user, &device, at).map_err(backend)).await
    }

    async fn push_devices(&self) -> Result<Vec<PushDevice>, StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {DEVICE_COLUMNS} FROM push_devices d JOIN accounts a ON a.uid = d.uid");
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map([], |r| device_at(r, 0))?;
            rows.filter_map(|r| r.transpose()).collect::<Result<_>>()
        })
        .await
    }

    async fn claim_pushes(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedPush>, StoreError> {
        self.writer.write(move |c, _| claim(c, &owner, now, lease_until, limit).map_err(backend)).await
    }

    async fn settle_pushes(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        self.writer.write(move |c, _| settle(c, &settled).map_err(backend)).await
    }

    async fn release_pushes(&self, owner: String) -> Result<(), StoreError> {
        self.writer
            .write(move |c, _| {
                c.prepare_cached("UPDATE push_outbox SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?1")
                    .and_then(|mut s| s.execute([&owner]))
                    .map(drop)
                    .map_err(backend)
            })
            .await
    }

    async fn push_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.read(|c| {
            c.query_row("SELECT count(*), min(queued_at) FROM push_outbox", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
        })
        .await
    }

    async fn set_dnd(&self, user: String, dnd: Option<Dnd>) -> Result<bool, StoreError> {
        self.writer.write(move |c, w| set_dnd(c, w, &user, dnd).map_err(backend)).await
    }

    async fn dnds(&self) -> Result<Vec<(String, Dnd)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT a.user_id, d.receive_opt, d.daily_start, d.start_time, d.duration \
                 FROM push_dnd d JOIN accounts a ON a.uid = d.uid",
            )?;
            let rows = stmt.query_map([], |r| {
                let window = match r.get::<_, Option<i64>>(2)? {
                    Some(secs) => DndWindow::Daily { start_secs: secs.clamp(0, 86_399) as u32 },
                    None => DndWindow::From { start: r.get(3)? },
                };
                let receive = ReceiveOpt::from_number(r.get::<_, i64>(1)?.max(0) as u64).unwrap_or_default();
                let duration_secs = r.get::<_, i64>(4)?.clamp(0, i64::from(u32::MAX)) as u32;
                Ok((r.get(0)?, Dnd { receive, window, duration_secs }))
            })?;
            rows.collect()
        })
        .await
    }
}

fn set_dnd(c: &Connection, w: &mut WriterState, user: &str, dnd: Option<Dnd>) -> Result<bool> {
    let Some(uid) = cached_uid(c, w, user)? else { return Ok(false) };
    match dnd {
        None => c.prepare_cached("DELETE FROM push_dnd WHERE uid = ?1")?.execute([uid])?,
        Some(d) => {
            let (daily, start) = match d.window {
                DndWindow::Daily { start_secs } => (Some(i64::from(start_secs)), 0),
                DndWindow::From { start } => (None, start),
            };
            c.prepare_cached(
                "INSERT OR REPLACE INTO push_dnd (uid, receive_opt, daily_start, start_time, duration) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![uid, d.receive.number(), daily, start, d.duration_secs])?
        }
    };
    Ok(true)
}

fn settle(c: &Connection, settled: &[(u64, Settle)]) -> Result<()> {
    for (id, settle) in settled {
        match settle {
            Settle::Done => {
                c.prepare_cached("DELETE FROM push_outbox WHERE id = ?1")?.execute([*id as i64])?;
            }
            Settle::Retry { at } => {
                c.prepare_cached(
                    "UPDATE push_outbox SET attempts = attempts + 1, next_at = ?2, lease_owner = NULL, \
                                 lease_until = 0 WHERE id = ?1",
                )?
                .execute(params![*id as i64, at])?;
            }
            Settle::Release => {
                c.prepare_cached("UPDATE push_outbox SET lease_owner = NULL, lease_until = 0 WHERE id = ?1")?
                    .execute([*id as i64])?;
            }
        }
    }
    Ok(())
}

fn unregister(c: &Connection, w: &mut WriterState, user: &str, device: Option<&str>) -> Result<()> {
    let Some(uid) = cached_uid(c, w, user)? else { return Ok(()) };
    match device {
        Some(device) => remove_device(c, uid, device),
        None => drop_user(c, uid),
    }
}

fn seen(c: &Connection, w: &mut WriterState, user: &str, device: &str, at: i64) -> Result<()> {
    let Some(uid) = cached_uid(c, w, user)? else { return Ok(()) };
    c.prepare_cached("UPDATE push_devices SET seen_at = max(seen_at, ?3) WHERE uid = ?1 AND device = ?2")?
        .execute(params![uid, device, at])?;
    Ok(())
}

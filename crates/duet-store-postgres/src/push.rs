//! Devices' push registrations, the push outbox and do-not-disturb (`sql/push.sql`). A send queues its
//! pushes in its own commit ([`queue_pushes`]); workers on any node claim them with a lease
//! ([`PushStore::claim_pushes`]) and settle them.

use async_trait::async_trait;
use duet_core::model::{
    Dnd, DndWindow, MsgKey, Platform, ProviderKind, PushDevice, PushMessage, QueuedPush, ReceiveOpt, Settle,
};
use duet_core::store::{PushStore, StoreError};
use tokio_postgres::Row;

use crate::writer::Conn;
use crate::{PgStore, backend, execute, query, query_opt, tx_execute, tx_query};

/// Queues a push of message `msg_id` (of `msg_time`) to every registered device of `uid`, in the send's
/// commit. Nothing is queued when `uid` set a receive option other than "receive" for `sender`.
pub(crate) async fn queue_pushes(
    c: &Conn,
    uid: i64,
    sender: i64,
    msg_id: i64,
    msg_time: i64,
    now: i64,
) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO push_outbox (uid, device, msg_id, msg_time, queued_at, next_at) \
         SELECT uid, device, $2::BIGINT, $3::BIGINT, $4::BIGINT, $4::BIGINT FROM push_devices WHERE uid = $1 AND NOT EXISTS \
           (SELECT 1 FROM conversation_settings s WHERE s.owner = $1 AND s.peer = $5 AND s.receive_opt <> 0)",
        &[&uid, &msg_id, &msg_time, &now, &sender],
    )
    .await?;
    Ok(())
}

/// Deletes the user's registrations, queued pushes and do-not-disturb window (with its account).
pub(crate) async fn drop_user(c: &Conn, uid: i64) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM push_dnd WHERE uid = $1",
        "DELETE FROM push_outbox WHERE uid = $1",
        "DELETE FROM push_devices WHERE uid = $1",
    ] {
        execute(c, sql, &[&uid]).await?;
    }
    Ok(())
}

async fn remove_device(c: &Conn, uid: i64, device: &str) -> Result<(), StoreError> {
    execute(c, "DELETE FROM push_outbox WHERE uid = $1 AND device = $2", &[&uid, &device]).await?;
    execute(c, "DELETE FROM push_devices WHERE uid = $1 AND device = $2", &[&uid, &device]).await?;
    Ok(())
}

/// Removes the registrations of `token` with `provider` (but the one of `keep`) and their pushes.
async fn remove_token(
    c: &Conn,
    provider: ProviderKind,
    token: &str,
    keep: Option<(i64, &str)>,
) -> Result<u64, StoreError> {
    let holders = query(
        c,
        "SELECT uid, device FROM push_devices WHERE provider = $1 AND token = $2",
        &[&provider.as_str(), &token],
    )
    .await?;
    let mut removed = 0;
    for r in holders {
        let (uid, device): (i64, String) = (r.get(0), r.get(1));
        if keep.is_some_and(|(u, d)| u == uid && d == device) {
            continue;
        }
        remove_device(c, uid, &device).await?;
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

const DEVICE_COLUMNS: &str = "a.user_id, d.device, d.platform, d.provider, d.token, d.app_id, d.lang, d.seen_at";

/// A registration read from [`DEVICE_COLUMNS`] starting at column `at`. A provider this build does not
/// know (a newer version's) reads as `None`.
fn device_at(r: &Row, at: usize) -> Option<PushDevice> {
    let provider = r.get::<_, String>(at + 3).parse().ok()?;
    Some(PushDevice {
        user: r.get(at),
        device: r.get(at + 1),
        platform: platform_from(r.get(at + 2)),
        provider,
        token: r.get(at + 4),
        app_id: r.get(at + 5),
        lang: r.get(at + 6),
        seen_at: r.get(at + 7),
    })
}

/// The users holding a registration of `token` with `provider`, read before a write that removes them, so
/// that the write locks their accounts too (the lock-order rule: see `writer`). A holder that registers
/// meanwhile is removed all the same; its lock is then simply not taken.
async fn token_holders(store: &PgStore, provider: ProviderKind, token: &str) -> Result<Vec<String>, StoreError> {
    let c = store.reader().await?;
    let rows = query(
        &c,
        "SELECT a.user_id FROM push_devices d JOIN accounts a ON a.uid = d.uid WHERE d.provider = $1 AND d.token = $2",
        &[&provider.as_str(), &token],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Sets the lease or settles outbox rows of `table` (`push_outbox` or `callback_outbox`), a few
/// statements for the whole list. Rows no longer there are skipped.
pub(crate) async fn settle(c: &Conn, table: &str, settled: &[(u64, Settle)]) -> Result<(), StoreError> {
    let (mut done, mut release, mut retry, mut retry_at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, s) in settled {
        let id = i64::try_from(*id).unwrap_or(i64::MAX);
        match s {
            Settle::Done => done.push(id),
            Settle::Release => release.push(id),
            Settle::Retry { at } => {
                retry.push(id);
                retry_at.push(*at);
            }
        }
    }
    if !done.is_empty() {
        execute(c, &format!("DELETE FROM {table} WHERE id = ANY($1)"), &[&done]).await?;
    }
    if !retry.is_empty() {
        execute(
            c,
            &format!(
                "UPDATE {table} o SET attempts = o.attempts + 1, next_at = r.at, lease_owner = NULL, lease_until = 0 \
                 FROM unnest($1::BIGINT[], $2::BIGINT[]) AS r (id, at) WHERE o.id = r.id"
            ),
            &[&retry, &retry_at],
        )
        .await?;
    }
    if !release.is_empty() {
        execute(c, &format!("UPDATE {table} SET lease_owner = NULL, lease_until = 0 WHERE id = ANY($1)"), &[&release])
            .await?;
    }
    Ok(())
}

#[async_trait]
impl PushStore for PgStore {
    async fn register_device(&self, device: PushDevice) -> Result<bool, StoreError> {
        let mut users = token_holders(self, device.provider, &device.token).await?;
        users.push(device.user.clone());
        self.writer()
            .write(users, move |c, locks| {
                let d = device.clone();
                Box::pin(async move {
                    let Some(uid) = locks.uid(&d.user) else {
                        return Ok((false, Vec::new()));
                    };
                    remove_token(&c, d.provider, &d.token, Some((uid, &d.device))).await?;
                    // Pushes queued for the device stay: they go to its new token.
                    execute(
                        &c,
                        "INSERT INTO push_devices (uid, device, platform, provider, token, app_id, lang, seen_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (uid, device) DO UPDATE SET platform = excluded.platform, \
                         provider = excluded.provider, token = excluded.token, app_id = excluded.app_id, \
                         lang = excluded.lang, seen_at = excluded.seen_at",
                        &[
                            &uid,
                            &d.device,
                            &d.platform.name(),
                            &d.provider.as_str(),
                            &d.token,
                            &d.app_id,
                            &d.lang,
                            &d.seen_at,
                        ],
                    )
                    .await?;
                    Ok((true, Vec::new()))
                })
            })
            .await
    }

    async fn unregister_devices(&self, user: String, device: Option<String>) -> Result<(), StoreError> {
        self.writer()
            .write(vec![user.clone()], move |c, locks| {
                let (uid, device) = (locks.uid(&user), device.clone());
                Box::pin(async move {
                    match (uid, device) {
                        (None, _) => {}
                        (Some(uid), Some(device)) => remove_device(&c, uid, &device).await?,
                        // As the embedded store: every registration, the queue and the window go.
                        (Some(uid), None) => drop_user(&c, uid).await?,
                    }
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn remove_push_token(&self, provider: ProviderKind, token: String) -> Result<u64, StoreError> {
        let users = token_holders(self, provider, &token).await?;
        self.writer()
            .write(users, move |c, _| {
                let token = token.clone();
                Box::pin(async move { Ok((remove_token(&c, provider, &token, None).await?, Vec::new())) })
            })
            .await
    }

    async fn device_seen(&self, user: String, device: String, at: i64) -> Result<(), StoreError> {
        self.writer()
            .write(vec![user.clone()], move |c, locks| {
                let (uid, device) = (locks.uid(&user), device.clone());
                Box::pin(async move {
                    if let Some(uid) = uid {
                        execute(
                            &c,
                            "UPDATE push_devices SET seen_at = GREATEST(seen_at, $3) WHERE uid = $1 AND device = $2",
                            &[&uid, &device, &at],
                        )
                        .await?;
                    }
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn push_devices(&self) -> Result<Vec<PushDevice>, StoreError> {
        let c = self.reader().await?;
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM push_devices d JOIN accounts a ON a.uid = d.uid");
        Ok(query(&c, &sql, &[]).await?.iter().filter_map(|r| device_at(r, 0)).collect())
    }

    /// On a pool connection, not through the writer (a claim never waits for sends): the due rows are
    /// locked with `FOR UPDATE SKIP LOCKED`, so a claim on another node at the same time passes over them
    /// instead of taking them or waiting, and their lease is set in the same transaction; once it commits
    /// the lease keeps them from every other claim.
    async fn claim_pushes(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedPush>, StoreError> {
        let mut c = self.reader().await?;
        let tx = c.transaction().await.map_err(backend)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT o.id, o.attempts, o.queued_at, o.msg_time, m.id, m.time, \
             (SELECT user_id FROM accounts WHERE uid = m.sender), m.seq, m.random, m.body, m.push_info, \
             m.sender_nick, {DEVICE_COLUMNS}, \
             (SELECT coalesce(sum(unread), 0)::BIGINT FROM conversations WHERE owner = o.uid) \
             FROM push_outbox o \
             JOIN accounts a ON a.uid = o.uid \
             LEFT JOIN push_devices d ON d.uid = o.uid AND d.device = o.device \
             LEFT JOIN messages m ON m.id = o.msg_id AND m.receiver = o.uid \
             WHERE o.next_at <= $1 AND o.lease_until <= $1 ORDER BY o.next_at, o.id LIMIT $2 \
             FOR UPDATE OF o SKIP LOCKED"
        );
        let rows = tx_query(&tx, &sql, &[&now, &limit]).await?;
        let (mut claimed, mut gone) = (Vec::new(), Vec::new());
        for r in &rows {
            let id: i64 = r.get(0);
            let msg_time: i64 = r.get(3);
            let message_there = r.get::<_, Option<i64>>(4).is_some() && r.get::<_, Option<i64>>(5) == Some(msg_time);
            let device = if r.get::<_, Option<String>>(13).is_some() { device_at(r, 12) } else { None };
            let (Some(device), Some(from), true) = (device, r.get::<_, Option<String>>(6), message_there) else {
                gone.push(id);
                continue;
            };
            let number = |i: usize| u32::try_from(r.get::<_, i64>(i)).map_err(|_| crate::invalid("a message key"));
            let message = PushMessage {
                from,
                to: device.user.clone(),
                key: MsgKey { seq: number(7)?, random: number(8)?, time: msg_time },
                body: r.get(9),
                push_info: r.get(10),
                sender_nick: r.get(11),
            };
            claimed.push(QueuedPush {
                id: id as u64,
                device,
                message,
                attempts: r.get::<_, i32>(1).max(0) as u32,
                queued_at: r.get(2),
                unread: r.get::<_, i64>(20).max(0) as u64,
            });
        }
        if !gone.is_empty() {
            tx_execute(&tx, "DELETE FROM push_outbox WHERE id = ANY($1)", &[&gone]).await?;
        }
        if !claimed.is_empty() {
            let ids: Vec<i64> = claimed.iter().map(|p| p.id as i64).collect();
            tx_execute(
                &tx,
                "UPDATE push_outbox SET lease_owner = $2, lease_until = $3 WHERE id = ANY($1)",
                &[&ids, &owner, &lease_until],
            )
            .await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn settle_pushes(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        self.writer()
            .write(Vec::new(), move |c, _| {
                let settled = settled.clone();
                Box::pin(async move {
                    settle(&c, "push_outbox", &settled).await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn release_pushes(&self, owner: String) -> Result<(), StoreError> {
        self.writer()
            .write(Vec::new(), move |c, _| {
                let owner = owner.clone();
                Box::pin(async move {
                    execute(
                        &c,
                        "UPDATE push_outbox SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = $1",
                        &[&owner],
                    )
                    .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn push_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let c = self.reader().await?;
        let row = query_opt(&c, "SELECT count(*), min(queued_at) FROM push_outbox", &[])
            .await?
            .ok_or_else(|| crate::invalid("an aggregate returned no row"))?;
        Ok((row.get::<_, i64>(0).max(0) as u64, row.get(1)))
    }

    async fn set_dnd(&self, user: String, dnd: Option<Dnd>) -> Result<bool, StoreError> {
        self.writer()
            .write(vec![user.clone()], move |c, locks| {
                let uid = locks.uid(&user);
                Box::pin(async move {
                    let Some(uid) = uid else {
                        return Ok((false, Vec::new()));
                    };
                    match dnd {
                        None => {
                            execute(&c, "DELETE FROM push_dnd WHERE uid = $1", &[&uid]).await?;
                        }
                        Some(d) => {
                            let (daily, start) = match d.window {
                                DndWindow::Daily { start_secs } => (Some(i64::from(start_secs)), 0),
                                DndWindow::From { start } => (None, start),
                            };
                            execute(
                                &c,
                                "INSERT INTO push_dnd (uid, receive_opt, daily_start, start_time, duration) \
                                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (uid) DO UPDATE SET \
                                 receive_opt = excluded.receive_opt, daily_start = excluded.daily_start, \
                                 start_time = excluded.start_time, duration = excluded.duration",
                                &[&uid, &i16::from(d.receive.number()), &daily, &start, &i64::from(d.duration_secs)],
                            )
                            .await?;
                        }
                    }
                    Ok((true, Vec::new()))
                })
            })
            .await
    }

    async fn dnds(&self) -> Result<Vec<(String, Dnd)>, StoreError> {
        let c = self.reader().await?;
        let rows = query(
            &c,
            "SELECT a.user_id, d.receive_opt, d.daily_start, d.start_time, d.duration \
             FROM push_dnd d JOIN accounts a ON a.uid = d.uid",
            &[],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let window = match r.get::<_, Option<i64>>(2) {
                    Some(secs) => DndWindow::Daily { start_secs: secs.clamp(0, 86_399) as u32 },
                    None => DndWindow::From { start: r.get(3) },
                };
                let receive = ReceiveOpt::from_number(r.get::<_, i16>(1).max(0) as u64).unwrap_or_default();
                let duration_secs = r.get::<_, i64>(4).clamp(0, i64::from(u32::MAX)) as u32;
                (r.get(0), Dnd { receive, window, duration_secs })
            })
            .collect())
    }
}

//! The after-event callbacks' outbox (`schema_5.sql`). The operations that announce an event queue it in
//! their own commit ([`queue_event`]); workers claim events with a lease, in order per user, and settle
//! them.

use async_trait::async_trait;
use duet_core::model::MsgKey;
use duet_core::model::Settle;
use duet_core::model::event::{AfterEvent, QueuedEvent};
use duet_core::store::{CallbackStore, StoreError};
use rusqlite::{Connection, Result, params};

use crate::{SqliteStore, backend};

/// Queues `event`, with the facts of this commit filled in: `key`, and the total unread count of the user
/// the event names ([`AfterEvent::unread_of`]), read inside the commit.
pub(crate) fn queue_event(c: &Connection, mut event: AfterEvent, key: Option<MsgKey>) -> Result<()> {
    let unread = match event.unread_of() {
        Some(user) => Some(
            c.prepare_cached(
                "SELECT coalesce(sum(c.unread), 0) FROM conversations c JOIN accounts a ON a.uid = c.owner \
                 WHERE a.user_id = ?1",
            )?
            .query_row([user], |r| r.get::<_, i64>(0))?
            .max(0) as u64,
        ),
        None => None,
    };
    event.fill(key, unread);
    let queued_at = event.time_ms.div_euclid(1000);
    c.prepare_cached("INSERT INTO callback_outbox (user_id, event, queued_at, next_at) VALUES (?1, ?2, ?3, ?3)")?
        .execute(params![event.user, event.encode(), queued_at])?;
    Ok(())
}

fn claim(c: &Connection, owner: &str, now: i64, lease_until: i64, limit: usize) -> Result<Vec<QueuedEvent>> {
    // Not an event with an earlier one of its user held or waiting for a retry: order per user.
    let mut stmt = c.prepare_cached(
        "SELECT o.id, o.event, o.attempts, o.queued_at FROM callback_outbox o \
         WHERE o.next_at <= ?1 AND o.lease_until <= ?1 AND NOT EXISTS ( \
           SELECT 1 FROM callback_outbox p WHERE p.user_id = o.user_id AND p.id < o.id \
             AND (p.next_at > ?1 OR p.lease_until > ?1)) \
         ORDER BY o.id LIMIT ?2",
    )?;
    let rows: Vec<(i64, String, u32, i64)> = stmt
        .query_map(params![now, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_>>()?;
    let mut lease = c.prepare_cached("UPDATE callback_outbox SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1")?;
    let mut forget = c.prepare_cached("DELETE FROM callback_outbox WHERE id = ?1")?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (id, text, attempts, queued_at) in rows {
        let Some(event) = AfterEvent::decode(&text) else {
            tracing::warn!(id, "callbacks: dropping an event this version cannot read (written by a newer one)");
            forget.execute([id])?;
            continue;
        };
        lease.execute(params![id, owner, lease_until])?;
        claimed.push(QueuedEvent { id: id as u64, event, attempts, queued_at });
    }
    Ok(claimed)
}

fn settle(c: &Connection, settled: &[(u64, Settle)]) -> Result<()> {
    for (id, settle) in settled {
        let id = *id as i64;
        match settle {
            Settle::Done => c.prepare_cached("DELETE FROM callback_outbox WHERE id = ?1")?.execute([id])?,
            Settle::Retry { at } => c
                .prepare_cached(
                    "UPDATE callback_outbox SET attempts = attempts + 1, next_at = ?2, lease_owner = NULL, \
                     lease_until = 0 WHERE id = ?1",
                )?
                .execute(params![id, at])?,
            Settle::Release => c
                .prepare_cached("UPDATE callback_outbox SET lease_owner = NULL, lease_until = 0 WHERE id = ?1")?
                .execute([id])?,
        };
    }
    Ok(())
}

#[async_trait]
impl CallbackStore for SqliteStore {
    async fn queue_events(&self, events: Vec<AfterEvent>, _now: i64) -> Result<(), StoreError> {
        self.writer
            .write(move |c, _| events.into_iter().try_for_each(|e| queue_event(c, e, None)).map_err(backend))
            .await
    }

    async fn claim_events(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        self.writer.write(move |c, _| claim(c, &owner, now, lease_until, limit).map_err(backend)).await
    }

    async fn settle_events(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        self.writer.write(move |c, _| settle(c, &settled).map_err(backend)).await
    }

    async fn release_events(&self, owner: String) -> Result<(), StoreError> {
        self.writer
            .write(move |c, _| {
                c.prepare_cached(
                    "UPDATE callback_outbox SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?1",
                )
                .and_then(|mut s| s.execute([&owner]))
                .map(drop)
                .map_err(backend)
            })
            .await
    }

    async fn event_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.read(|c| {
            c.query_row("SELECT count(*), min(queued_at) FROM callback_outbox", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
        })
        .await
    }
}

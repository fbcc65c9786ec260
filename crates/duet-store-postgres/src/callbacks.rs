//! The after-event callbacks' outbox (`sql/callbacks.sql`). The operations that announce an event queue it
//! in their own commit ([`queue_event`]); workers on any node claim events with a lease, in order per user.
//!
//! **Order per user across nodes.** Two things keep one user's events in order:
//! - Ids follow commit order per user: every write that queues an event names the event's user to the
//!   writer, which locks that account row before the job runs, so a second write for the user takes its
//!   ids after the first committed. (A user without an account has no row to lock: its events, rare,
//!   are ordered only as far as their commits are.)
//! - Claims take turns: the rule "not while an earlier event of the same user is held or waits for a retry"
//!   reads other rows than the ones it locks, which `FOR UPDATE SKIP LOCKED` alone does not protect (two
//!   nodes claiming at once would each see the other's events as free, and one could take a user's second
//!   event while the other takes its first). So a claim first takes a transaction-level advisory lock on
//!   the outbox ([`CLAIM_LOCK`]): the next claim waits for this one's commit and its query's snapshot,
//!   taken after, sees the leases just set. Claims are one query and one update, so waiting for them is
//!   short, and they never wait for the writer (rows it has locked are skipped). A lock per user
//!   (`hashtext(user_id)`) would let claims of different users overlap, but which users a claim takes is
//!   only known from the query whose snapshot the lock must precede: it would take a query, the locks, and
//!   the query again.

use async_trait::async_trait;
use duet_core::model::event::{AfterEvent, QueuedEvent};
use duet_core::model::{MsgKey, Settle};
use duet_core::store::{CallbackStore, StoreError};

use crate::writer::Conn;
use crate::{PgStore, backend, execute, query_opt, tx_execute, tx_query};

/// Queues `event`, with the facts of this commit filled in: `key`, and the total unread count of the user
/// the event names ([`AfterEvent::unread_of`]), read inside the commit.
pub(crate) async fn queue_event(c: &Conn, mut event: AfterEvent, key: Option<MsgKey>) -> Result<(), StoreError> {
    let unread = match event.unread_of() {
        Some(user) => {
            let row = query_opt(
                c,
                "SELECT coalesce(sum(c.unread), 0)::BIGINT FROM conversations c JOIN accounts a ON a.uid = c.owner \
                 WHERE a.user_id = $1",
                &[&user],
            )
            .await?;
            Some(row.map_or(0, |r| r.get::<_, i64>(0)).max(0) as u64)
        }
        None => None,
    };
    event.fill(key, unread);
    let queued_at = event.time_ms.div_euclid(1000);
    execute(
        c,
        "INSERT INTO callback_outbox (user_id, event, queued_at, next_at) VALUES ($1, $2, $3, $3)",
        &[&event.user, &event.encode(), &queued_at],
    )
    .await?;
    Ok(())
}

/// The advisory lock claims take turns under: a pair of keys (the pair space is separate from the single
/// key one the migration lock uses), the second one the schema's, so that stores of separate schemas in one
/// database (tests, or several deployments) do not wait for each other.
/// ("duet" in ASCII, as the migration lock).
const CLAIM_LOCK: &str = "SELECT pg_advisory_xact_lock(1685415284, hashtext(current_schema()))";

#[async_trait]
impl CallbackStore for PgStore {
    async fn queue_events(&self, events: Vec<AfterEvent>, _now: i64) -> Result<(), StoreError> {
        let mut users: Vec<String> = events.iter().map(|e| e.user.clone()).collect();
        users.sort_unstable();
        users.dedup();
        self.writer()
            .write(users, move |c, _| {
                let events = events.clone();
                Box::pin(async move {
                    for event in events {
                        queue_event(&c, event, None).await?;
                    }
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn claim_events(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let mut c = self.reader().await?;
        let tx = c.transaction().await.map_err(backend)?;
        tx_query(&tx, CLAIM_LOCK, &[]).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Not an event with an earlier one of its user held or waiting for a retry: order per user.
        let rows = tx_query(
            &tx,
            "SELECT o.id, o.event, o.attempts, o.queued_at FROM callback_outbox o \
             WHERE o.next_at <= $1 AND o.lease_until <= $1 AND NOT EXISTS ( \
               SELECT 1 FROM callback_outbox p WHERE p.user_id = o.user_id AND p.id < o.id \
                 AND (p.next_at > $1 OR p.lease_until > $1)) \
             ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED",
            &[&now, &limit],
        )
        .await?;
        let (mut claimed, mut unreadable) = (Vec::with_capacity(rows.len()), Vec::new());
        for r in &rows {
            let id: i64 = r.get(0);
            let Some(event) = AfterEvent::decode(r.get(1)) else {
                tracing::warn!(id, "callbacks: dropping an event this version cannot read (written by a newer one)");
                unreadable.push(id);
                continue;
            };
            let attempts = r.get::<_, i32>(2).max(0) as u32;
            claimed.push(QueuedEvent { id: id as u64, event, attempts, queued_at: r.get(3) });
        }
        if !unreadable.is_empty() {
            tx_execute(&tx, "DELETE FROM callback_outbox WHERE id = ANY($1)", &[&unreadable]).await?;
        }
        if !claimed.is_empty() {
            let ids: Vec<i64> = claimed.iter().map(|e| e.id as i64).collect();
            tx_execute(
                &tx,
                "UPDATE callback_outbox SET lease_owner = $2, lease_until = $3 WHERE id = ANY($1)",
                &[&ids, &owner, &lease_until],
            )
            .await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn settle_events(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        self.writer()
            .write(Vec::new(), move |c, _| {
                let settled = settled.clone();
                Box::pin(async move {
                    crate::push::settle(&c, "callback_outbox", &settled).await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn release_events(&self, owner: String) -> Result<(), StoreError> {
        self.writer()
            .write(Vec::new(), move |c, _| {
                let owner = owner.clone();
                Box::pin(async move {
                    execute(
                        &c,
                        "UPDATE callback_outbox SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = $1",
                        &[&owner],
                    )
                    .await?;
                    Ok(((), Vec::new()))
                })
            })
            .await
    }

    async fn event_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let c = self.reader().await?;
        let row = query_opt(&c, "SELECT count(*), min(queued_at) FROM callback_outbox", &[])
            .await?
            .ok_or_else(|| crate::invalid("an aggregate returned no row"))?;
        Ok((row.get::<_, i64>(0).max(0) as u64, row.get(1)))
    }
}

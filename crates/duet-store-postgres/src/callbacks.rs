//! The after-event callbacks' outbox (`sql/callbacks.sql`). The operations that announce an event queue it
//! in their own commit ([`queue_event`]); workers claim events with a lease, in order per user.
#![allow(unused_variables)] // SCAFFOLD: the stubs below are being replaced.

use async_trait::async_trait;
use duet_core::model::event::{AfterEvent, QueuedEvent};
use duet_core::model::{MsgKey, Settle};
use duet_core::store::{CallbackStore, StoreError};

use crate::writer::Conn;
use crate::{PgStore, execute, query_opt};

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

#[async_trait]
impl CallbackStore for PgStore {
    async fn queue_events(&self, events: Vec<AfterEvent>, now: i64) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn claim_events(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn settle_events(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn release_events(&self, owner: String) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn event_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        Err(crate::unbuilt())
    }
}

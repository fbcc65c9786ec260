//! The relationship chain (`sql/relations.sql`).
#![allow(unused_variables)] // SCAFFOLD: the stubs below are being replaced.

use async_trait::async_trait;
use duet_core::model::event::AfterEvent;
use duet_core::store::{RelationChange, RelationData, RelationStore, StoreError};

use crate::writer::Conn;
use crate::{PgStore, execute};

/// Deletes every relation row that names `user` on either side (with its account).
pub(crate) async fn drop_user(c: &Conn, user: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM friends WHERE owner = $1 OR peer = $1",
        "DELETE FROM friend_tags WHERE owner = $1 OR peer = $1",
        "DELETE FROM blacklist WHERE owner = $1 OR peer = $1",
        "DELETE FROM friend_requests WHERE requester = $1 OR target = $1",
    ] {
        execute(c, sql, &[&user]).await?;
    }
    Ok(())
}

#[async_trait]
impl RelationStore for PgStore {
    async fn load_relations(&self, user: String) -> Result<RelationData, StoreError> {
        Err(crate::unbuilt())
    }

    async fn apply_relations(&self, changes: Vec<RelationChange>, events: Vec<AfterEvent>) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }
}

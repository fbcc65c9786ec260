//! Devices' push registrations, the push outbox and do-not-disturb (`sql/push.sql`).
#![allow(unused_variables)] // SCAFFOLD: the stubs below are being replaced.

use async_trait::async_trait;
use duet_core::model::{Dnd, ProviderKind, PushDevice, QueuedPush, Settle};
use duet_core::store::{PushStore, StoreError};

use crate::writer::Conn;
use crate::{PgStore, execute};

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

#[async_trait]
impl PushStore for PgStore {
    async fn register_device(&self, device: PushDevice) -> Result<bool, StoreError> {
        Err(crate::unbuilt())
    }

    async fn unregister_devices(&self, user: String, device: Option<String>) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn remove_push_token(&self, provider: ProviderKind, token: String) -> Result<u64, StoreError> {
        Err(crate::unbuilt())
    }

    async fn device_seen(&self, user: String, device: String, at: i64) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn push_devices(&self) -> Result<Vec<PushDevice>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn claim_pushes(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedPush>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn settle_pushes(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn release_pushes(&self, owner: String) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn push_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        Err(crate::unbuilt())
    }

    async fn set_dnd(&self, user: String, dnd: Option<Dnd>) -> Result<bool, StoreError> {
        Err(crate::unbuilt())
    }

    async fn dnds(&self) -> Result<Vec<(String, Dnd)>, StoreError> {
        Err(crate::unbuilt())
    }
}

//! The media index on PostgreSQL (`sql/media.sql`): uploads' metadata and grants, shared by every node.
#![allow(unused_variables)] // SCAFFOLD: the stubs below are being replaced.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use duet_core::media::{MediaIndex, MediaItem};
use duet_core::store::StoreError;

pub struct PgMediaIndex {
    pool: Pool,
}

impl PgMediaIndex {
    pub(crate) fn new(pool: Pool) -> PgMediaIndex {
        PgMediaIndex { pool }
    }
}

#[async_trait]
impl MediaIndex for PgMediaIndex {
    async fn begin(&self, uuid: String, now: i64) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn insert(&self, item: MediaItem) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn abandon(&self, uuid: String) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn get(&self, uuids: Vec<String>) -> Result<Vec<Option<MediaItem>>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn granted(&self, uuid: String, user: String) -> Result<bool, StoreError> {
        Err(crate::unbuilt())
    }

    async fn grant(&self, uuids: Vec<String>, users: Vec<String>, now: i64) -> Result<Vec<String>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn expire(&self, before: i64, limit: usize) -> Result<usize, StoreError> {
        Err(crate::unbuilt())
    }

    async fn doomed(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        Err(crate::unbuilt())
    }

    async fn forget_doomed(&self, keys: Vec<String>) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }

    async fn forget_users(&self, users: Vec<String>) -> Result<(), StoreError> {
        Err(crate::unbuilt())
    }
}

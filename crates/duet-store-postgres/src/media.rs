//! The media index on PostgreSQL (`sql/media.sql`): uploads' metadata and grants, shared by every node.
//! Calls use the pool directly (not the writer: media rows belong to no account's lock order), each in
//! one statement or one transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Pool};
use duet_core::media::{ImageMeta, MediaIndex, MediaItem, MediaKind, Rendition, RenditionKind, possible_blobs};
use duet_core::store::StoreError;

use crate::{backend, query, tx_execute, tx_query};

pub struct PgMediaIndex {
    pool: Pool,
}

impl PgMediaIndex {
    pub(crate) fn new(pool: Pool) -> PgMediaIndex {
        PgMediaIndex { pool }
    }
}

fn rendition_type(kind: RenditionKind) -> i32 {
    match kind {
        RenditionKind::Original => 1,
        RenditionKind::Large => 2,
        RenditionKind::Thumb => 3,
    }
}

fn rendition_kind(t: i32) -> RenditionKind {
    match t {
        2 => RenditionKind::Large,
        3 => RenditionKind::Thumb,
        _ => RenditionKind::Original,
    }
}

/// The items with these ids, in order (`None` for an unknown one); two queries, which the caller runs in
/// one snapshot or transaction.
async fn load(c: &impl GenericClient, uuids: &[String]) -> Result<Vec<Option<MediaItem>>, StoreError> {
    let rows = tx_query(
        c,
        "SELECT uuid, kind, owner, size, file_name, image_format, created, last_used FROM media WHERE uuid = ANY($1)",
        &[&uuids],
    )
    .await?;
    let mut items: HashMap<String, MediaItem> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let uuid: String = r.get(0);
        let image = r.get::<_, Option<i32>>(5).map(|format| ImageMeta { format: format as u8, renditions: Vec::new() });
        let item = MediaItem {
            uuid: uuid.clone(),
            kind: MediaKind::parse(r.get(1)).unwrap_or(MediaKind::File),
            owner: r.get(2),
            size: r.get::<_, i64>(3).max(0) as u64,
            file_name: r.get(4),
            image,
            created: r.get(6),
            last_used: r.get(7),
        };
        items.insert(uuid, item);
    }
    let images: Vec<&String> = items.values().filter(|i| i.image.is_some()).map(|i| &i.uuid).collect();
    if !images.is_empty() {
        let renditions = tx_query(
            c,
            "SELECT uuid, type, width, height, size, blob FROM media_renditions WHERE uuid = ANY($1) \
             ORDER BY uuid, type",
            &[&images],
        )
        .await?;
        for r in &renditions {
            let uuid: String = r.get(0);
            if let Some(image) = items.get_mut(&uuid).and_then(|i| i.image.as_mut()) {
                image.renditions.push(Rendition {
                    kind: rendition_kind(r.get(1)),
                    width: side(r.get(2)),
                    height: side(r.get(3)),
                    size: r.get::<_, i64>(4).max(0) as u64,
                    blob: r.get(5),
                });
            }
        }
    }
    Ok(uuids.iter().map(|u| items.get(u).cloned()).collect())
}

/// A stored width or height (BIGINT, as the embedded store's INTEGER).
fn side(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

/// Adds `keys` to the blobs to delete.
async fn doom(c: &impl GenericClient, keys: &[String]) -> Result<(), StoreError> {
    if !keys.is_empty() {
        tx_execute(c, "INSERT INTO media_doomed (blob) SELECT unnest($1::TEXT[]) ON CONFLICT DO NOTHING", &[&keys])
            .await?;
    }
    Ok(())
}

#[async_trait]
impl MediaIndex for PgMediaIndex {
    async fn begin(&self, uuid: String, now: i64) -> Result<(), StoreError> {
        let c = crate::get(&self.pool).await?;
        crate::execute(
            &c,
            "INSERT INTO media_uploads (uuid, started) VALUES ($1, $2) \
             ON CONFLICT (uuid) DO UPDATE SET started = excluded.started",
            &[&uuid, &now],
        )
        .await?;
        Ok(())
    }

    async fn insert(&self, item: MediaItem) -> Result<(), StoreError> {
        let mut c = crate::get(&self.pool).await?;
        let tx = c.transaction().await.map_err(backend)?;
        tx_execute(&tx, "DELETE FROM media_uploads WHERE uuid = $1", &[&item.uuid]).await?;
        tx_execute(
            &tx,
            "INSERT INTO media (uuid, kind, owner, size, file_name, url, image_format, created, last_used) \
             VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8)",
            &[
                &item.uuid,
                &item.kind.as_str(),
                &item.owner,
                &i64::try_from(item.size).unwrap_or(i64::MAX),
                &item.file_name,
                &item.image.as_ref().map(|i| i32::from(i.format)),
                &item.created,
                &item.last_used,
            ],
        )
        .await?;
        for r in item.image.iter().flat_map(|i| &i.renditions) {
            tx_execute(
                &tx,
                "INSERT INTO media_renditions (uuid, type, width, height, size, blob) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &item.uuid,
                    &rendition_type(r.kind),
                    &i64::from(r.width),
                    &i64::from(r.height),
                    &i64::try_from(r.size).unwrap_or(i64::MAX),
                    &r.blob,
                ],
            )
            .await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn abandon(&self, uuid: String) -> Result<(), StoreError> {
        let mut c = crate::get(&self.pool).await?;
        let tx = c.transaction().await.map_err(backend)?;
        if tx_execute(&tx, "DELETE FROM media_uploads WHERE uuid = $1", &[&uuid]).await? > 0 {
            doom(&tx, &possible_blobs(&uuid)).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn get(&self, uuids: Vec<String>) -> Result<Vec<Option<MediaItem>>, StoreError> {
        let mut c = crate::get(&self.pool).await?;
        let tx = crate::snapshot(&mut c).await?;
        let items = load(&tx, &uuids).await?;
        // Ended here, not left to the drop (whose ROLLBACK is sent whenever the connection's task runs next).
        tx.commit().await.map_err(backend)?;
        Ok(items)
    }

    async fn granted(&self, uuid: String, user: String) -> Result<bool, StoreError> {
        let c = crate::get(&self.pool).await?;
        let rows = query(&c, "SELECT 1 FROM media_grants WHERE uuid = $1 AND user_id = $2", &[&uuid, &user]).await?;
        Ok(!rows.is_empty())
    }

    async fn grant(&self, uuids: Vec<String>, users: Vec<String>, now: i64) -> Result<Vec<String>, StoreError> {
        let mut c = crate::get(&self.pool).await?;
        let tx = c.transaction().await.map_err(backend)?;
        let mut granted = Vec::with_capacity(uuids.len());
        for uuid in uuids {
            // In the transaction that writes the grants, and holding the item's row until its commit: an
            // item the purge has just removed is not granted but reported missing, and the purge, which
            // checks `last_used` on the row it deletes, keeps an item used here.
            let n =
                tx_execute(&tx, "UPDATE media SET last_used = GREATEST(last_used, $2) WHERE uuid = $1", &[&uuid, &now])
                    .await?;
            if n == 0 {
                continue;
            }
            tx_execute(
                &tx,
                "INSERT INTO media_grants (uuid, user_id) SELECT $1, unnest($2::TEXT[]) ON CONFLICT DO NOTHING",
                &[&uuid, &users],
            )
            .await?;
            granted.push(uuid);
        }
        tx.commit().await.map_err(backend)?;
        Ok(granted)
    }

    async fn expire(&self, before: i64, limit: usize) -> Result<usize, StoreError> {
        let mut c = crate::get(&self.pool).await?;
        let tx = c.transaction().await.map_err(backend)?;
        let max = i64::try_from(limit).unwrap_or(i64::MAX);
        // Locked, and `last_used < before` checked again on the row as locked: an item a grant is using is
        // skipped, one a grant used and committed meanwhile no longer qualifies.
        let uuids: Vec<String> = tx_query(
            &tx,
            "SELECT uuid FROM media WHERE last_used < $1 ORDER BY last_used LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&before, &max],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let items: Vec<MediaItem> = load(&tx, &uuids).await?.into_iter().flatten().collect();
        // The grants and renditions go with the item (ON DELETE CASCADE).
        tx_execute(&tx, "DELETE FROM media WHERE uuid = ANY($1)", &[&uuids]).await?;
        let blobs: Vec<String> = items.iter().flat_map(MediaItem::blobs).collect();
        doom(&tx, &blobs).await?;
        let mut gone = items.len();
        let left = i64::try_from(limit.saturating_sub(gone)).unwrap_or(i64::MAX);
        let abandoned: Vec<String> = tx_query(
            &tx,
            "DELETE FROM media_uploads WHERE uuid IN \
             (SELECT uuid FROM media_uploads WHERE started < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING uuid",
            &[&before, &left],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        gone += abandoned.len();
        let blobs: Vec<String> = abandoned.iter().flat_map(|u| possible_blobs(u)).collect();
        doom(&tx, &blobs).await?;
        tx.commit().await.map_err(backend)?;
        Ok(gone)
    }

    async fn doomed(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let c = crate::get(&self.pool).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(query(&c, "SELECT blob FROM media_doomed LIMIT $1", &[&limit]).await?.iter().map(|r| r.get(0)).collect())
    }

    async fn forget_doomed(&self, keys: Vec<String>) -> Result<(), StoreError> {
        let c = crate::get(&self.pool).await?;
        crate::execute(&c, "DELETE FROM media_doomed WHERE blob = ANY($1)", &[&keys]).await?;
        Ok(())
    }

    async fn forget_users(&self, users: Vec<String>) -> Result<(), StoreError> {
        let mut c = crate::get(&self.pool).await?;
        let tx = c.transaction().await.map_err(backend)?;
        tx_execute(&tx, "DELETE FROM media_grants WHERE user_id = ANY($1)", &[&users]).await?;
        tx_execute(&tx, "UPDATE media SET owner = '' WHERE owner = ANY($1)", &[&users]).await?;
        tx.commit().await.map_err(backend)
    }
}

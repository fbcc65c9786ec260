//! [`SqliteMediaIndex`]: the metadata of uploaded files and their read grants
//! ([`duet_core::media::MediaIndex`]), in its own SQLite file beside the blobs (`<media dir>/media.db`),
//! so that uploads never contend with the message store's group-commit writer.
//!
//! One connection behind a mutex, used from blocking threads: media operations are few (one per upload,
//! download and send with media) and short.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use duet_core::media::{ImageMeta, MediaIndex, MediaItem, MediaKind, Rendition, RenditionKind, possible_blobs};
use duet_core::store::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

use crate::backend;

const SCHEMA: &str = include_str!("media_schema.sql");

pub struct SqliteMediaIndex {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteMediaIndex {
    /// Opens (creating if needed) the index at `path`.
    pub fn open(path: &Path) -> Result<SqliteMediaIndex, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; \
             PRAGMA foreign_keys = ON;",
        )
        .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(SqliteMediaIndex { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn).map_err(backend)
        })
        .await
        .map_err(|e| StoreError::from(crate::Failure::MediaTask(e)))?
    }
}

fn rendition_type(kind: RenditionKind) -> i64 {
    match kind {
        RenditionKind::Original => 1,
        RenditionKind::Large => 2,
        RenditionKind::Thumb => 3,
    }
}

fn rendition_kind(t: i64) -> RenditionKind {
    match t {
        2 => RenditionKind::Large,
        3 => RenditionKind::Thumb,
        _ => RenditionKind::Original,
    }
}

fn load(conn: &Connection, uuid: &str) -> rusqlite::Result<Option<MediaItem>> {
    let row = conn
        .prepare_cached(
            "SELECT kind, owner, size, file_name, image_format, created, last_used FROM media WHERE uuid = ?1",
        )?
        .query_row([uuid], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .optional()?;
    let Some((kind, owner, size, file_name, image_format, created, last_used)) = row else {
        return Ok(None);
    };
    let image = match image_format {
        None => None,
        Some(format) => {
            let mut stmt = conn.prepare_cached(
                "SELECT type, width, height, size, blob FROM media_renditions WHERE uuid = ?1 ORDER BY type",
            )?;
            let renditions = stmt
                .query_map([uuid], |r| {
                    Ok(Rendition {
                        kind: rendition_kind(r.get(0)?),
                        width: r.get(1)?,
                        height: r.get(2)?,
                        size: r.get::<_, i64>(3)? as u64,
                        blob: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Some(ImageMeta { format: format as u8, renditions })
        }
    };
    Ok(Some(MediaItem {
        uuid: uuid.to_owned(),
        kind: MediaKind::parse(&kind).unwrap_or(MediaKind::File),
        owner,
        size: size as u64,
        file_name,
        image,
        created,
        last_used,
    }))
}

/// Adds `keys` to the blobs to delete.
fn doom(tx: &rusqlite::Transaction<'_>, keys: impl IntoIterator<Item = String>) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO media_doomed (blob) VALUES (?1)")?;
    for key in keys {
        stmt.execute([key])?;
    }
    Ok(())
}

#[async_trait]
impl MediaIndex for SqliteMediaIndex {
    async fn begin(&self, uuid: String, now: i64) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.prepare_cached("INSERT OR REPLACE INTO media_uploads (uuid, started) VALUES (?1, ?2)")?
                .execute(params![uuid, now])?;
            Ok(())
        })
        .await
    }

    async fn abandon(&self, uuid: String) -> Result<(), StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            if tx.execute("DELETE FROM media_uploads WHERE uuid = ?1", [&uuid])? > 0 {
                doom(&tx, possible_blobs(&uuid))?;
            }
            tx.commit()
        })
        .await
    }

    async fn insert(&self, item: MediaItem) -> Result<(), StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM media_uploads WHERE uuid = ?1", [&item.uuid])?;
            tx.execute(
                "INSERT INTO media (uuid, kind, owner, size, file_name, url, image_format, created, last_used) \
                 VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, ?8)",
                params![
                    item.uuid,
                    item.kind.as_str(),
                    item.owner,
                    item.size as i64,
                    item.file_name,
                    item.image.as_ref().map(|i| i64::from(i.format)),
                    item.created,
                    item.last_used,
                ],
            )?;
            for r in item.image.iter().flat_map(|i| &i.renditions) {
                tx.execute(
                    "INSERT INTO media_renditions (uuid, type, width, height, size, blob) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![item.uuid, rendition_type(r.kind), r.width, r.height, r.size as i64, r.blob],
                )?;
            }
            tx.commit()
        })
        .await
    }

    async fn get(&self, uuids: Vec<String>) -> Result<Vec<Option<MediaItem>>, StoreError> {
        self.call(move |conn| uuids.iter().map(|u| load(conn, u)).collect()).await
    }

    async fn forget_users(&self, users: Vec<String>) -> Result<(), StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            for user in &users {
                tx.execute("DELETE FROM media_grants WHERE user = ?1", [user])?;
                tx.execute("UPDATE media SET owner = '' WHERE owner = ?1", [user])?;
            }
            tx.commit()
        })
        .await
    }

    async fn granted(&self, uuid: String, user: String) -> Result<bool, StoreError> {
        self.call(move |conn| {
            conn.prepare_cached("SELECT 1 FROM media_grants WHERE uuid = ?1 AND user = ?2")?.exists(params![uuid, user])
        })
        .await
    }

    async fn grant(&self, uuids: Vec<String>, users: Vec<String>, now: i64) -> Result<Vec<String>, StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let mut granted = Vec::with_capacity(uuids.len());
            for uuid in uuids {
                // In the transaction that writes the grants: an item the purge has just removed is not
                // granted (the foreign key would refuse it) but reported missing.
                let n =
                    tx.execute("UPDATE media SET last_used = max(last_used, ?2) WHERE uuid = ?1", params![uuid, now])?;
                if n == 0 {
                    continue;
                }
                for user in &users {
                    tx.execute("INSERT OR IGNORE INTO media_grants (uuid, user) VALUES (?1, ?2)", params![uuid, user])?;
                }
                granted.push(uuid);
            }
            tx.commit()?;
            Ok(granted)
        })
        .await
    }

    async fn expire(&self, before: i64, limit: usize) -> Result<usize, StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let uuids = tx
                .prepare_cached("SELECT uuid FROM media WHERE last_used < ?1 ORDER BY last_used LIMIT ?2")?
                .query_map(params![before, limit as i64], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut gone = 0;
            for uuid in uuids {
                let Some(item) = load(&tx, &uuid)? else { continue };
                // `last_used < before` again, in the deleting statement itself.
                let n = tx.execute("DELETE FROM media WHERE uuid = ?1 AND last_used < ?2", params![uuid, before])?;
                if n > 0 {
                    doom(&tx, item.blobs())?;
                    gone += 1;
                }
            }
            let abandoned = tx
                .prepare_cached(
                    "DELETE FROM media_uploads WHERE uuid IN \
                     (SELECT uuid FROM media_uploads WHERE started < ?1 LIMIT ?2) RETURNING uuid",
                )?
                .query_map(params![before, limit.saturating_sub(gone) as i64], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            gone += abandoned.len();
            for uuid in abandoned {
                doom(&tx, possible_blobs(&uuid))?;
            }
            tx.commit()?;
            Ok(gone)
        })
        .await
    }

    async fn doomed(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.call(move |conn| {
            conn.prepare_cached("SELECT blob FROM media_doomed LIMIT ?1")?
                .query_map([limit as i64], |r| r.get::<_, String>(0))?
                .collect()
        })
        .await
    }

    async fn forget_doomed(&self, keys: Vec<String>) -> Result<(), StoreError> {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            for key in &keys {
                tx.execute("DELETE FROM media_doomed WHERE blob = ?1", [key])?;
            }
            tx.commit()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(uuid: &str, last_used: i64) -> MediaItem {
        MediaItem {
            uuid: uuid.into(),
            kind: MediaKind::Image,
            owner: "alice".into(),
            size: 10,
            file_name: "a.png".into(),
            image: Some(ImageMeta {
                format: 3,
                renditions: vec![
                    Rendition { kind: RenditionKind::Original, width: 4, height: 2, size: 10, blob: uuid.into() },
                    Rendition { kind: RenditionKind::Large, width: 4, height: 2, size: 10, blob: uuid.into() },
                    Rendition {
                        kind: RenditionKind::Thumb,
                        width: 2,
                        height: 1,
                        size: 5,
                        blob: format!("{uuid}.thumb"),
                    },
                ],
            }),
            created: last_used,
            last_used,
        }
    }

    #[tokio::test]
    async fn items_grants_and_expiry_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteMediaIndex::open(&dir.path().join("media.db")).unwrap();
        index.insert(item("a", 100)).await.unwrap();
        index.insert(item("b", 200)).await.unwrap();
        let got = index.get(vec!["a".into(), "zz".into()]).await.unwrap();
        assert_eq!(got, vec![Some(item("a", 100)), None]);

        assert!(!index.granted("a".into(), "bob".into()).await.unwrap());
        index.grant(vec!["a".into()], vec!["alice".into(), "bob".into()], 300).await.unwrap();
        assert!(index.granted("a".into(), "bob".into()).await.unwrap());
        assert_eq!(index.get(vec!["a".into()]).await.unwrap()[0].as_ref().unwrap().last_used, 300);

        // Expiry forgets the item and its grants and dooms its blobs, in one transaction.
        assert_eq!(index.expire(250, 10).await.unwrap(), 1);
        assert_eq!(index.get(vec!["b".into()]).await.unwrap(), vec![None]);
        let mut doomed = index.doomed(10).await.unwrap();
        doomed.sort();
        assert_eq!(doomed, vec!["b".to_owned(), "b.thumb".to_owned()]);
        index.forget_doomed(vec!["b".into()]).await.unwrap();
        assert_eq!(index.doomed(10).await.unwrap(), vec!["b.thumb".to_owned()], "kept until deleted");
        index.forget_doomed(vec!["b.thumb".into()]).await.unwrap();

        // Granting an item that expired meanwhile writes nothing and says so (no foreign-key failure).
        assert_eq!(index.grant(vec!["a".into(), "b".into()], vec!["carol".into()], 400).await.unwrap(), vec!["a"]);
        assert!(!index.granted("b".into(), "carol".into()).await.unwrap());
        // A use after the cutoff was computed keeps the item.
        assert_eq!(index.expire(350, 10).await.unwrap(), 0, "a was used at 400");
        assert!(index.get(vec!["a".into()]).await.unwrap()[0].is_some());
    }

    #[tokio::test]
    async fn uploads_begun_and_never_recorded_are_doomed_once_old() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteMediaIndex::open(&dir.path().join("media.db")).unwrap();
        index.begin("c".into(), 100).await.unwrap();
        index.begin("d".into(), 100).await.unwrap();
        index.insert(item("d", 100)).await.unwrap();
        index.begin("e".into(), 300).await.unwrap();
        assert_eq!(index.expire(200, 10).await.unwrap(), 2, "c abandoned, d unused");
        let mut doomed = index.doomed(10).await.unwrap();
        doomed.sort();
        assert_eq!(doomed, ["c", "c.large", "c.thumb", "d", "d.thumb"]);
        index.abandon("e".into()).await.unwrap();
        assert_eq!(index.doomed(10).await.unwrap().len(), 8);
        index.abandon("e".into()).await.unwrap();
        assert_eq!(index.expire(1000, 10).await.unwrap(), 0, "nothing left begun");
    }
}

//! [`LocalBlobStore`]: blobs as files under one directory, `<dir>/<first two hex digits>/<key>`.
//!
//! An upload is written to `<dir>/tmp/<random>` and renamed into place only once complete and synced,
//! so a reader never sees part of a file. A temporary file is removed when its upload fails, or, if the
//! upload's future is dropped midway (the client went away), by a guard; those a crash leaves are
//! removed at open.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use duet_core::media::{Blob, BlobError, BlobStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Bytes read from the upload per write to the file.
const CHUNK: usize = 64 * 1024;

pub struct LocalBlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating) the store under `root`, clearing temporary files a crash may have left.
    pub fn open(root: &Path) -> std::io::Result<LocalBlobStore> {
        let tmp = root.join("tmp");
        match std::fs::remove_dir_all(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(LocalBlobStore { root: root.to_owned(), tmp })
    }

    /// The file of `key`; keys are upload ids (hex) with an optional `.large`/`.thumb`.
    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let safe =
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') && !key.starts_with('.');
        if !safe || key.len() < 2 {
            return Err(BlobError::Storage(std::io::Error::new(ErrorKind::InvalidInput, format!("bad key {key:?}"))));
        }
        Ok(self.root.join(&key[..2]).join(key))
    }

    async fn write(
        &self,
        file: &mut tokio::fs::File,
        data: &mut (dyn AsyncRead + Send + Unpin),
        limit: u64,
    ) -> Result<u64, BlobError> {
        let mut buf = vec![0u8; CHUNK];
        let mut total: u64 = 0;
        loop {
            let n = data.read(&mut buf).await.map_err(BlobError::Source)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limit {
                return Err(BlobError::TooLarge(limit));
            }
            file.write_all(&buf[..n]).await.map_err(BlobError::Storage)?;
        }
        if total == 0 {
            return Err(BlobError::Empty);
        }
        file.flush().await.map_err(BlobError::Storage)?;
        file.sync_all().await.map_err(BlobError::Storage)?;
        Ok(total)
    }
}

/// Removes a temporary file whose `put` was dropped before finishing (a destructor cannot await: the
/// removal goes to a blocking thread, or happens in place outside a runtime).
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        let Some(path) = self.0.take() else { return };
        let remove = move || match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, path = %path.display(), "removing an abandoned temporary file"),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &str, data: &mut (dyn AsyncRead + Send + Unpin), limit: u64) -> Result<u64, BlobError> {
        let dest = self.path(key)?;
        let tmp = self.tmp.join(format!("{:032x}", rand::random::<u128>()));
        let mut guard = TempFile(Some(tmp.clone()));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(BlobError::Storage)?;
        let written = self.write(&mut file, data, limit).await;
        drop(file);
        let result = match written {
            Ok(size) => async {
                if let Some(dir) = dest.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                tokio::fs::rename(&tmp, &dest).await?;
                Ok(size)
            }
            .await
            .map_err(BlobError::Storage),
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        guard.0 = None;
        result
    }

    async fn open(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        let path = self.path(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobError::Storage(e)),
        };
        let size = file.metadata().await.map_err(BlobError::Storage)?.len();
        Ok(Some(Blob { size, reader: Box::new(file) }))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BlobError::Storage(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_open_delete_and_limits_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::open(dir.path()).unwrap();
        let key = "ab12";
        assert_eq!(store.put(key, &mut &b"hello"[..], 5).await.unwrap(), 5);
        let mut blob = store.open(key).await.unwrap().unwrap();
        assert_eq!(blob.size, 5);
        let mut got = Vec::new();
        blob.reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");

        assert!(matches!(store.put("cd34", &mut &b"hello!"[..], 5).await, Err(BlobError::TooLarge(5))));
        assert!(matches!(store.put("cd34", &mut &b""[..], 5).await, Err(BlobError::Empty)));
        assert!(store.open("cd34").await.unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0, "no temporary file is left");

        // A put whose future is dropped midway (its source never ends) leaves no temporary file.
        let (mut tx, mut rx) = tokio::io::duplex(64);
        tx.write_all(b"part of it").await.unwrap();
        let put = store.put("ef56", &mut rx, 100);
        tokio::select! {
            _ = put => panic!("the source never ends"),
            () = async { while std::fs::read_dir(dir.path().join("tmp")).unwrap().count() == 0 { tokio::task::yield_now().await } } => {}
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_dir(dir.path().join("tmp")).unwrap().count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the temporary file of a dropped put is removed");
            tokio::task::yield_now().await;
        }
        drop(tx);

        store.delete(key).await.unwrap();
        store.delete(key).await.unwrap();
        assert!(store.open(key).await.unwrap().is_none());
        assert!(store.open("../x").await.is_err());
    }
}

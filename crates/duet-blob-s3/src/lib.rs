//! [`S3BlobStore`]: the bytes of uploads in an S3-compatible object store (AWS S3, MinIO, Ceph, R2, ...),
//! so that every node of a cluster can serve what any of them received.
//!
//! A blob is the object `<prefix>/<key>` of one bucket, named by an `s3://bucket/optional/prefix` URL; the
//! endpoint, region and credentials are the standard AWS variables ([`S3Location::with_vars`]).
//!
//! An upload is streamed: its first [`PART`] bytes are read, and if it ends within them it is stored with
//! one PUT; otherwise it becomes a multipart upload of [`PART`]-sized parts, at most [`PARTS_IN_FLIGHT`]
//! of them uploading while the next is read, so a 100 MB video never sits in memory whole. S3 makes an
//! object visible only when its PUT or its multipart upload completes, so nothing is visible under a key
//! before the upload is whole; an upload over its limit, or whose source fails, is aborted (its parts are
//! deleted). A multipart upload whose future is dropped midway (the client went away) is aborted by a
//! guard; one that a crash leaves behind holds parts but never an object: a bucket lifecycle rule
//! (`AbortIncompleteMultipartUpload`) removes those.

use std::io::ErrorKind;
use std::sync::Arc;

use async_trait::async_trait;
use duet_core::media::{Blob, BlobError, BlobStore};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

#[cfg(feature = "testing")]
pub mod testing;

/// The size of each part of a multipart upload, and the most an upload stored with a single PUT holds
/// (S3's smallest part is 5 MiB, except the last).
pub const PART: usize = 5 * 1024 * 1024;

/// Parts of one upload sent at once; the memory an upload holds is at most this plus one, times [`PART`].
pub const PARTS_IN_FLIGHT: usize = 2;

/// How long one request to the store may take, a download's body included.
const REQUEST_TIMEOUT: &str = "10m";

/// Bytes read from the upload at a time once it is multipart.
const CHUNK: usize = 64 * 1024;

/// Why an S3 store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("the media store must be an s3:// URL (s3://bucket/optional/prefix), not {0:?}")]
    BadUrl(String),
    #[error("configuring the S3 media store")]
    Config(#[source] object_store::Error),
    #[error("the S3 media store cannot reach bucket {bucket:?}")]
    Unreachable {
        bucket: String,
        #[source]
        source: object_store::Error,
    },
}

/// Where the blobs go: a bucket, a prefix in it, and the client's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Location {
    bucket: String,
    /// Without leading or trailing `/`; empty: the bucket's root.
    prefix: String,
    /// AWS variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...) by their upper-case names.
    vars: Vec<(String, String)>,
}

impl S3Location {
    /// Reads `s3://bucket/optional/prefix`.
    pub fn parse(url: &str) -> Result<S3Location, S3Error> {
        let bad = || S3Error::BadUrl(url.to_owned());
        let rest = url.trim().strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = !bucket.is_empty()
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let prefix = prefix.trim_matches('/');
        let prefix_ok = prefix.split('/').all(|p| !p.is_empty() && p != "." && p != "..") || prefix.is_empty();
        if !bucket_ok || !prefix_ok || prefix.contains(['?', '#']) {
            return Err(bad());
        }
        Ok(S3Location { bucket: bucket.to_owned(), prefix: prefix.to_owned(), vars: Vec::new() })
    }

    /// Takes the client's settings from these variables, the standard AWS ones: `AWS_ENDPOINT_URL` (an
    /// S3-compatible service other than AWS), `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP=true` for a plain-http endpoint, and
    /// the others `object_store` knows. Variables not named `AWS_*` are ignored; a later one wins.
    pub fn with_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> S3Location {
        self.vars.extend(vars.into_iter().filter(|(k, _)| k.starts_with("AWS_")));
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// The URL and the variables' names; the values of secrets are not printed (they land in logs with the
/// configuration).
impl std::fmt::Debug for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let vars: Vec<String> = self
            .vars
            .iter()
            .map(|(k, v)| match k.as_str() {
                "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN" => format!("{k}=***"),
                _ => format!("{k}={v}"),
            })
            .collect();
        write!(f, "s3://{}/{} {vars:?}", self.bucket, self.prefix)
    }
}

/// Blobs as objects of one bucket under a prefix.
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: Path,
}

impl S3BlobStore {
    /// The store at `url` (`s3://bucket/optional/prefix`), configured by the process's `AWS_*`
    /// environment variables (see [`S3Location::with_vars`]). Does not reach the service: see
    /// [`S3BlobStore::check`].
    pub fn from_url(url: &str) -> Result<S3BlobStore, S3Error> {
        S3BlobStore::open(&S3Location::parse(url)?.with_vars(std::env::vars()))
    }

    /// The store at `location`. Does not reach the service: see [`S3BlobStore::check`].
    pub fn open(location: &S3Location) -> Result<S3BlobStore, S3Error> {
        // A download is as slow as its client: object_store's default of 30 s a request would cut it
        // (it resumes with a range request, but at most 10 times).
        let mut builder =
            AmazonS3Builder::new().with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), REQUEST_TIMEOUT);
        for (name, value) in &location.vars {
            if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder.with_bucket_name(&location.bucket).build().map_err(S3Error::Config)?;
        let prefix = Path::parse(&location.prefix).map_err(|_| S3Error::BadUrl(location.prefix.clone()))?;
        Ok(S3BlobStore { store: Arc::new(store), bucket: location.bucket.clone(), prefix })
    }

    /// Lists one page under the prefix: fails if the service cannot be reached, the bucket does not exist
    /// or the credentials are refused. For a server to fail at start rather than at the first upload.
    pub async fn check(&self) -> Result<(), S3Error> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        match self.store.list(prefix).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(source)) => Err(S3Error::Unreachable { bucket: self.bucket.clone(), source }),
        }
    }

    /// The object of `key`; keys are upload ids (hex) with an optional `.large`/`.thumb`.
    fn path(&self, key: &str) -> Result<Path, BlobError> {
        let safe =
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.') && !key.starts_with('.');
        if !safe {
            return Err(BlobError::Storage(std::io::Error::new(ErrorKind::InvalidInput, format!("bad key {key:?}"))));
        }
        Ok(self.prefix.clone().join(key))
    }

    /// Stores an upload whose first part `first` (exactly [`PART`] bytes) is read, as a multipart upload.
    async fn put_multipart(
        &self,
        path: &Path,
        first: Vec<u8>,
        data: &mut (dyn AsyncRead + Send + Unpin),
        limit: u64,
    ) -> Result<u64, BlobError> {
        let upload = self.store.put_multipart(path).await.map_err(storage)?;
        let mut pending = Pending(Some(WriteMultipart::new_with_chunk_size(upload, PART)));
        let writer = pending.0.as_mut().expect("set above");
        let mut total = first.len() as u64;
        writer.write(&first);
        drop(first);
        let mut buf = vec![0u8; CHUNK];
        let failure = loop {
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                break storage(e);
            }
            let n = match data.read(&mut buf).await {
                Ok(0) => {
                    let writer = pending.0.take().expect("set above");
                    // `finish` aborts the upload itself when it fails.
                    return writer.finish().await.map(|_| total).map_err(storage);
                }
                Ok(n) => n,
                Err(e) => break BlobError::Source(e),
            };
            total += n as u64;
            if total > limit {
                break BlobError::TooLarge(limit);
            }
            writer.write(&buf[..n]);
        };
        if let Some(writer) = pending.0.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, path = %path, "aborting a failed multipart upload");
        }
        Err(failure)
    }
}

/// A multipart upload not finished: aborted if the `put` holding it is dropped (a destructor cannot
/// await: the abort is spawned on the runtime).
struct Pending(Option<WriteMultipart>);

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(writer) = self.0.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "aborting an abandoned multipart upload");
                }
            }));
        }
    }
}

fn storage(e: object_store::Error) -> BlobError {
    BlobError::Storage(std::io::Error::from(e))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, data: &mut (dyn AsyncRead + Send + Unpin), limit: u64) -> Result<u64, BlobError> {
        let path = self.path(key)?;
        // One byte past the limit tells an upload over it.
        let want = (PART as u64).min(limit.saturating_add(1));
        let mut first = Vec::new();
        let got = (&mut *data).take(want).read_to_end(&mut first).await.map_err(BlobError::Source)? as u64;
        if got == 0 {
            return Err(BlobError::Empty);
        }
        if got > limit {
            return Err(BlobError::TooLarge(limit));
        }
        if got < want {
            // The upload ended within its first part.
            self.store.put(&path, PutPayload::from(first)).await.map_err(storage)?;
            return Ok(got);
        }
        self.put_multipart(&path, first, data, limit).await
    }

    async fn open(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(got) => {
                let size = got.meta.size;
                let stream = got.into_stream().map_err(std::io::Error::from);
                Ok(Some(Blob { size, reader: Box::new(StreamReader::new(stream)) }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        let l = S3Location::parse("s3://media/duet/prod/").unwrap();
        assert_eq!((l.bucket(), l.prefix()), ("media", "duet/prod"));
        let l = S3Location::parse("s3://media").unwrap();
        assert_eq!((l.bucket(), l.prefix()), ("media", ""));
        for bad in ["", "s3://", "s3:///x", "http://media", "/srv/media", "s3://Media", "s3://m/a//b", "s3://m/../x"] {
            assert!(S3Location::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let l = S3Location::parse("s3://media").unwrap().with_vars([
            ("AWS_ACCESS_KEY_ID".to_owned(), "AKIA".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "hunter2".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ]);
        let printed = format!("{l:?}");
        assert!(printed.contains("AWS_ACCESS_KEY_ID=AKIA") && printed.contains("AWS_SECRET_ACCESS_KEY=***"));
        assert!(!printed.contains("hunter2") && !printed.contains("HOME"), "{printed}");
    }

    #[test]
    fn keys_go_under_the_prefix() {
        let store = S3BlobStore::open(&S3Location::parse("s3://media/a/b").unwrap()).unwrap();
        assert_eq!(store.path("ab12.thumb").unwrap().as_ref(), "a/b/ab12.thumb");
        assert!(store.path("../x").is_err() && store.path("").is_err() && store.path(".x").is_err());
        let store = S3BlobStore::open(&S3Location::parse("s3://media").unwrap()).unwrap();
        assert_eq!(store.path("ab12").unwrap().as_ref(), "ab12");
    }
}

//! [`S3BlobStore`] against a real S3-compatible server: moto, started by each test on a free port. Runs
//! with `DUET_TEST_S3=1` (and `pip install 'moto[server]'`); without it each test says it is skipped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use duet_blob_s3::testing::{Moto, enabled};
use duet_blob_s3::{PART, S3BlobStore};
use duet_core::media::{BlobError, BlobStore};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

const MB: u64 = 1024 * 1024;

/// `len` bytes of a repeating pattern, made as they are read (never held whole).
struct Pattern {
    len: u64,
    at: u64,
}

fn byte(i: u64) -> u8 {
    (i % 251) as u8
}

impl AsyncRead for Pattern {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.len - self.at).min(64 * 1024) as usize;
        let start = self.at;
        let chunk: Vec<u8> = (start..start + n as u64).map(byte).collect();
        buf.put_slice(&chunk);
        self.at += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// A source that yields `good` bytes and then fails, as a client that goes away.
struct Broken {
    good: Pattern,
}

impl AsyncRead for Broken {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.good.at == self.good.len {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "client gone")));
        }
        Pin::new(&mut self.good).poll_read(cx, buf)
    }
}

async fn read_all(store: &S3BlobStore, key: &str) -> Vec<u8> {
    let mut blob = store.open(key).await.unwrap().expect("the blob exists");
    let mut got = Vec::new();
    blob.reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(blob.size, got.len() as u64);
    got
}

#[tokio::test]
async fn put_open_delete_round_trip() {
    if !enabled("put_open_delete_round_trip") {
        return;
    }
    let moto = Moto::start().await;
    let store = S3BlobStore::open(&moto.bucket("media", "duet/node").await).unwrap();
    store.check().await.unwrap();

    assert_eq!(store.put("ab12", &mut &b"hello"[..], 5).await.unwrap(), 5);
    assert_eq!(store.put("ab12.thumb", &mut &b"small"[..], 100).await.unwrap(), 5);
    assert_eq!(read_all(&store, "ab12").await, b"hello");
    let mut objects = moto.objects("media").await;
    objects.sort();
    assert_eq!(objects, ["duet/node/ab12", "duet/node/ab12.thumb"]);

    store.delete("ab12").await.unwrap();
    store.delete("ab12").await.unwrap();
    assert!(store.open("ab12").await.unwrap().is_none());
    assert_eq!(moto.objects("media").await, ["duet/node/ab12.thumb"]);
    assert!(store.open("../x").await.is_err());
}

#[tokio::test]
async fn a_missing_key_is_none_and_a_missing_bucket_fails_the_check() {
    if !enabled("a_missing_key_is_none_and_a_missing_bucket_fails_the_check") {
        return;
    }
    let moto = Moto::start().await;
    let store = S3BlobStore::open(&moto.bucket("media", "").await).unwrap();
    assert!(store.open("cd34").await.unwrap().is_none());
    store.delete("cd34").await.unwrap();

    let location = duet_blob_s3::S3Location::parse("s3://nobucket").unwrap().with_vars(moto.vars());
    let err = S3BlobStore::open(&location).unwrap().check().await.unwrap_err();
    assert!(err.to_string().contains("nobucket"), "{err}");
    assert!(std::error::Error::source(&err).is_some(), "the cause is kept");
}

#[tokio::test]
async fn over_the_limit_empty_or_broken_uploads_leave_nothing() {
    if !enabled("over_the_limit_empty_or_broken_uploads_leave_nothing") {
        return;
    }
    let moto = Moto::start().await;
    let store = S3BlobStore::open(&moto.bucket("media", "").await).unwrap();

    // Within the first part (one PUT), and past it (multipart, aborted).
    assert!(matches!(store.put("cd34", &mut &b"hello!"[..], 5).await, Err(BlobError::TooLarge(5))));
    let big = 12 * MB;
    let err = store.put("cd34", &mut Pattern { len: big + 1, at: 0 }, big).await.unwrap_err();
    assert!(matches!(err, BlobError::TooLarge(limit) if limit == big), "{err:?}");
    // Exactly one part over the limit of one part.
    let err = store.put("cd34", &mut Pattern { len: PART as u64 + 1, at: 0 }, PART as u64).await.unwrap_err();
    assert!(matches!(err, BlobError::TooLarge(_)), "{err:?}");
    assert!(matches!(store.put("cd34", &mut &b""[..], 5).await, Err(BlobError::Empty)));
    let err = store.put("cd34", &mut Broken { good: Pattern { len: 7 * MB, at: 0 } }, big).await.unwrap_err();
    assert!(matches!(err, BlobError::Source(_)), "{err:?}");

    assert!(store.open("cd34").await.unwrap().is_none());
    assert!(moto.objects("media").await.is_empty());
    assert!(moto.multipart_uploads("media").await.is_empty(), "the multipart uploads were aborted");

    // A put dropped midway is aborted too: once the source has given it more than a part (the pipe holds
    // 64 KiB), it is past the start of its multipart upload.
    let (mut tx, mut rx) = tokio::io::duplex(64 * 1024);
    let feed = async {
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..(PART / chunk.len() + 3) {
            tokio::io::AsyncWriteExt::write_all(&mut tx, &chunk).await.unwrap();
        }
    };
    let mut put = Box::pin(store.put("ef56", &mut rx, 100 * MB));
    tokio::select! {
        _ = &mut put => panic!("the source never ends"),
        () = feed => {}
    }
    assert_eq!(moto.multipart_uploads("media").await.len(), 1, "the put is multipart");
    drop(put);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !moto.multipart_uploads("media").await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the multipart upload of a dropped put is aborted");
        tokio::task::yield_now().await;
    }
    assert!(moto.objects("media").await.is_empty());
}

#[tokio::test]
async fn a_30_mb_upload_is_streamed_in_parts() {
    if !enabled("a_30_mb_upload_is_streamed_in_parts") {
        return;
    }
    let moto = Moto::start().await;
    let store = S3BlobStore::open(&moto.bucket("media", "big").await).unwrap();
    let len = 30 * MB + 123;
    assert_eq!(store.put("ab12", &mut Pattern { len, at: 0 }, 100 * MB).await.unwrap(), len);
    // Exactly one part, and the limit exactly.
    assert_eq!(store.put("cd34", &mut Pattern { len: PART as u64, at: 0 }, PART as u64).await.unwrap(), PART as u64);
    assert!(moto.multipart_uploads("media").await.is_empty());

    let mut blob = store.open("ab12").await.unwrap().unwrap();
    assert_eq!(blob.size, len);
    let (mut at, mut buf) = (0u64, vec![0u8; 256 * 1024]);
    loop {
        let n = blob.reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().enumerate().all(|(i, b)| *b == byte(at + i as u64)), "bytes at {at} differ");
        at += n as u64;
    }
    assert_eq!(at, len);
    assert_eq!(read_all(&store, "cd34").await.len(), PART);
}

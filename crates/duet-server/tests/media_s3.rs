//! The media endpoints with the blobs in S3 (`--media-store s3://…`), through the front door: uploads
//! over HTTP to the real server on `127.0.0.1:0`, whose blob store is a moto server the test starts.
//! Runs with `DUET_TEST_S3=1` (and `pip install 'moto[server]'`); without it each test says it is skipped.

use std::io::Cursor;
use std::path::Path;

use duet_blob_s3::testing::{Moto, enabled};
use duet_server::config::MediaStore;
use duet_test_support::TestServer;
use futures_util::stream;
use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::Value;

const MB: u64 = 1024 * 1024;

fn picture() -> Vec<u8> {
    let img =
        RgbImage::from_fn(1500, 1000, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

fn byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// A body of `len` bytes of a pattern, produced chunk by chunk (never allocated whole), without
/// Content-Length.
fn pattern(len: u64) -> reqwest::Body {
    let chunk = 64 * 1024;
    let chunks = (0..len.div_ceil(chunk)).map(move |i| {
        let (start, end) = (i * chunk, len.min((i + 1) * chunk));
        Ok::<_, std::io::Error>((start..end).map(byte).collect::<Vec<u8>>())
    });
    reqwest::Body::wrap_stream(stream::iter(chunks))
}

fn auth(s: &TestServer, user: &str) -> String {
    format!("identifier={user}&usersig={}", s.usersig(user))
}

async fn upload(s: &TestServer, user: &str, kind: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let url = format!("{}/v1/media?type={kind}&filename=f.bin&{}", s.base_url(), auth(s, user));
    let resp = reqwest::Client::new().post(url).body(body).send().await.expect("uploading");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON answer"))
}

async fn download(s: &TestServer, user: &str, url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(format!("{url}?{}", auth(s, user))).await.expect("downloading");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

/// Every file under the media directory except the index.
fn local_blobs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if !p.file_name().unwrap().to_string_lossy().starts_with("media.db") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn uploads_go_to_the_bucket_and_come_back() {
    if !enabled("uploads_go_to_the_bucket_and_come_back") {
        return;
    }
    let moto = Moto::start().await;
    let location = moto.bucket("duet-media", "node").await;
    let s = TestServer::spawn_with(|c| c.media.store = MediaStore::S3(location)).await;
    s.import(&["alice"]).await;

    // An image: the original and its two renditions are objects.
    let png = picture();
    let (status, r) = upload(&s, "alice", "image", png.clone()).await;
    assert_eq!((status, r["ErrorCode"].as_u64()), (200, Some(0)), "{r}");
    let image = r["UUID"].as_str().unwrap().to_owned();
    let infos = r["ImageInfoArray"].as_array().unwrap().clone();
    assert_eq!(infos.len(), 3);
    let (status, body) = download(&s, "alice", infos[0]["URL"].as_str().unwrap()).await;
    assert_eq!((status, body == png), (200, true));
    let (status, body) = download(&s, "alice", infos[2]["URL"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 198, "the thumbnail is in the bucket");

    // A file of several parts, streamed both ways.
    let len = 12 * MB + 7;
    let (status, r) = upload(&s, "alice", "file", pattern(len)).await;
    assert_eq!((status, r["ErrorCode"].as_u64()), (200, Some(0)), "{r}");
    assert_eq!(r["Size"], len);
    let file = r["UUID"].as_str().unwrap().to_owned();
    let (status, body) = download(&s, "alice", r["URL"].as_str().unwrap()).await;
    assert_eq!((status, body.len() as u64), (200, len));
    assert!(body.iter().enumerate().all(|(i, b)| *b == byte(i as u64)), "the file comes back as sent");

    let mut objects = moto.objects("duet-media").await;
    objects.sort();
    let mut expected = vec![
        format!("node/{image}"),
        format!("node/{image}.large"),
        format!("node/{image}.thumb"),
        format!("node/{file}"),
    ];
    expected.sort();
    assert_eq!(objects, expected);
    assert!(local_blobs(&s.config.media.dir).is_empty(), "no blob is kept locally");
    s.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_leave_nothing_in_the_bucket() {
    if !enabled("uploads_over_the_limit_leave_nothing_in_the_bucket") {
        return;
    }
    let moto = Moto::start().await;
    let location = moto.bucket("duet-media", "").await;
    let s = TestServer::spawn_with(|c| {
        c.media.store = MediaStore::S3(location);
        c.media.limits.file = 7 * MB;
    })
    .await;
    s.import(&["alice"]).await;
    let (status, r) = upload(&s, "alice", "file", pattern(7 * MB + 1)).await;
    assert_eq!((status, r["ErrorCode"].as_u64()), (413, Some(7005)), "{r}");
    let (status, r) = upload(&s, "alice", "file", Vec::new()).await;
    assert_eq!((status, r["ErrorCode"].as_u64()), (400, Some(7006)), "{r}");
    assert!(moto.objects("duet-media").await.is_empty());
    assert!(moto.multipart_uploads("duet-media").await.is_empty(), "the multipart upload was aborted");
    s.stop().await;
}

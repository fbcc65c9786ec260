//! A 100 MB upload to the real `duet serve` process streams to disk: the server's resident memory stays
//! flat while the body flows. The RSS is read from `/proc/<pid>/status` between chunks of the upload
//! (no timers involved), and the figures are printed (`--nocapture`) for the record.

#![cfg(target_os = "linux")]

mod common;

use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

const KEY: &str = "media-memory-secret-key";
const SDKAPPID: u64 = 1_400_000_124;
const MB: u64 = 1024 * 1024;
static CHUNK: [u8; 64 * 1024] = [7; 64 * 1024];

fn start(data: &std::path::Path) -> (Child, String) {
    common::start(data, SDKAPPID, KEY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_upload_keeps_the_server_memory_flat() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(data.path());
    let pid = child.id();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let sig = duet_core::usersig::generate(KEY, SDKAPPID, "alice", now, 3600, None);
    let url = format!("http://{addr}/v1/media?type=file&filename=big.bin&identifier=alice&usersig={sig}");
    let http = reqwest::Client::new();

    // Warm up the paths an upload takes (connection, blocking threads, the index), then measure.
    let r: Value = http.post(&url).body(vec![1u8; 1024 * 1024]).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let before = common::rss(pid);
    let peak = Arc::new(Mutex::new(before));
    let total = 100 * MB;
    let chunks = total / CHUNK.len() as u64;
    let seen = peak.clone();
    let body = futures_util::stream::iter((0..chunks).map(move |i| {
        if i % 32 == 0 {
            let now = common::rss(pid);
            let mut p = seen.lock().unwrap();
            *p = (*p).max(now);
        }
        Ok::<_, std::io::Error>(&CHUNK[..])
    }));
    let resp = http.post(&url).body(reqwest::Body::wrap_stream(body)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["Size"], total, "{r}");
    let after = common::rss(pid);
    let peak = (*peak.lock().unwrap()).max(after);
    eprintln!(
        "duet serve RSS: before {:.1} MiB, peak during a 100 MiB upload {:.1} MiB, after {:.1} MiB (growth {:.1} MiB)",
        before as f64 / MB as f64,
        peak as f64 / MB as f64,
        after as f64 / MB as f64,
        (peak - before) as f64 / MB as f64
    );
    assert!(peak - before < 30 * MB, "the server's memory grew by {} MiB during the upload", (peak - before) / MB);

    let _ = child.kill();
    let _ = child.wait();
}

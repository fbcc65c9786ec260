//! Image rendering keeps to its memory budget (`docs/security.md`, "Media: image rendering") in the
//! real `duet serve` process, under crafted images: a 25 000 000 x 1 16-bit PNG, four 25-megapixel
//! 16-bit PNGs at once beside an ordinary photo, ICC-profile and text decompression bombs, GIFs and
//! JPEGs declaring huge dimensions, a GIF of thousands of frames. Each attack's peak resident memory
//! is read from `/proc/<pid>/status` (`VmHWM`, reset through `/proc/<pid>/clear_refs` before each), and
//! the figures are printed (`--nocapture`) for the record.

#![cfg(target_os = "linux")]

mod common;

use std::io::Cursor;
use std::time::{SystemTime, UNIX_EPOCH};

use duet_test_support::crafted;
use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::Value;

const KEY: &str = "image-memory-secret-key";
const SDKAPPID: u64 = 1_400_000_125;
const MIB: u64 = 1024 * 1024;

/// The rendering budget with the default limits (`docs/security.md`): 25 million pixels at 8 bytes,
/// the 28 MiB image limit, 16 MiB, and 256 bytes per column of the widest image allowed (50 000).
const BUDGET: u64 = 25_000_000 * 8 + 28 * MIB + 16 * MIB + 50_000 * 256;

/// A field of `/proc/<pid>/status`, in bytes.
fn status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/<pid>/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/<pid>/status"));
    kb * 1024
}

/// Resets the peak resident set size of `pid` to its current one, and returns that.
fn reset_peak(pid: u32) -> u64 {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("resetting VmHWM");
    status(pid, "VmRSS")
}

struct Server {
    child: std::process::Child,
    pid: u32,
    url: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let data = tempfile::tempdir().unwrap();
        let (child, addr) = common::start(data.path(), SDKAPPID, KEY);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let sig = duet_core::usersig::generate(KEY, SDKAPPID, "alice", now, 3600, None);
        let url = format!("http://{addr}/v1/media?type=image&identifier=alice&usersig={sig}");
        Server { pid: child.id(), child, url, http: reqwest::Client::new(), _data: data }
    }

    async fn upload(&self, body: Vec<u8>) -> (u16, Value) {
        let resp = self.http.post(&self.url).body(body).send().await.expect("uploading");
        (resp.status().as_u16(), resp.json().await.expect("a JSON answer"))
    }

    /// Uploads `bodies` at once; returns their answers and the growth of the server's peak resident
    /// memory over its resident memory before.
    async fn attack(&self, name: &str, bodies: Vec<Vec<u8>>) -> (Vec<(u16, Value)>, u64) {
        let size: usize = bodies.iter().map(Vec::len).sum();
        let before = reset_peak(self.pid);
        let answers = futures_util::future::join_all(bodies.into_iter().map(|b| self.upload(b))).await;
        let peak = status(self.pid, "VmHWM");
        let growth = peak.saturating_sub(before);
        eprintln!(
            "{name}: {:.2} MiB uploaded, duet serve RSS {:.1} MiB before, peak {:.1} MiB (growth {:.1} MiB); answers {:?}",
            size as f64 / MIB as f64,
            before as f64 / MIB as f64,
            peak as f64 / MIB as f64,
            growth as f64 / MIB as f64,
            answers.iter().map(|(s, r)| (s, r["ErrorCode"].as_u64().unwrap_or_default())).collect::<Vec<_>>()
        );
        (answers, growth)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 1500x1000 photo-like PNG.
fn picture() -> Vec<u8> {
    let img =
        RgbImage::from_fn(1500, 1000, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

fn dims(answer: &Value) -> Vec<(u64, u64)> {
    answer["ImageInfoArray"]
        .as_array()
        .map(|a| a.iter().map(|i| (i["Width"].as_u64().unwrap(), i["Height"].as_u64().unwrap())).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_images_are_rendered_within_the_memory_budget_or_refused() {
    let server = Server::start();
    // Warm up the paths an upload takes (connection, blocking threads, the index, the encoders).
    let (status, r) = server.upload(picture()).await;
    assert_eq!(status, 200, "{r}");

    // 25 000 000 x 1 pixels of 16-bit RGBA: 200 MB in one row, from a 1.2 MB file.
    let (answers, wide) =
        server.attack("25000000x1 RGBA16 PNG", vec![crafted::png(25_000_000, 1, 16, crafted::RGBA, &[])]).await;
    let (status, r) = &answers[0];
    assert_eq!((*status, r["ErrorCode"].as_u64()), (413, Some(7005)), "more extreme than 1:100: {r}");
    let wide4 = vec![crafted::png(25_000_000, 1, 16, crafted::RGBA, &[]); 4];
    let (answers, wide4) = server.attack("four 25000000x1 RGBA16 PNGs at once", wide4).await;
    for (status, r) in &answers {
        assert_eq!(*status, 413, "{r}");
    }

    // Four 5000 x 5000 16-bit RGBA PNGs at once (each 200 MB as decoded before, 100 MB at 8 bits), and
    // an ordinary photo beside them.
    let big = crafted::png(5000, 5000, 16, crafted::RGBA, &[]);
    let mut bodies = vec![big.clone(), big.clone(), big.clone(), big];
    bodies.push(picture());
    let (answers, four) = server.attack("four 5000x5000 RGBA16 PNGs and a photo", bodies).await;
    for (status, r) in &answers[..4] {
        assert_eq!(*status, 200, "{r}");
        assert_eq!(dims(r), vec![(5000, 5000), (720, 720), (198, 198)], "{r}");
    }
    let (status, r) = &answers[4];
    assert_eq!(*status, 200, "{r}");
    assert_eq!(dims(r), vec![(1500, 1000), (720, 480), (198, 132)], "{r}");

    // A 1x1 PNG whose ICC profile inflates to 1 GiB (a 6.7 MB file): the profile is never inflated.
    let (answers, iccp) =
        server.attack("1x1 PNG, iCCP inflating to 1 GiB", vec![crafted::png_iccp_bomb(1 << 30)]).await;
    let (status, r) = &answers[0];
    assert_eq!(*status, 200, "{r}");
    assert_eq!(dims(r), vec![(1, 1), (1, 1), (1, 1)], "{r}");

    // Compressed text, 256 MiB twice: never inflated either.
    let (answers, text) = server
        .attack("1x1 PNG, zTXt and iTXt inflating to 256 MiB each", vec![crafted::png_text_bomb(256 << 20)])
        .await;
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);

    // Huge declared dimensions: refused from the header.
    let (answers, declared) = server
        .attack(
            "GIF screen and JPEG of 65535x65535",
            vec![crafted::gif(65535, 65535, 1, 1, 1), crafted::jpeg_header(65535, 65535)],
        )
        .await;
    for (status, r) in &answers {
        assert_eq!((*status, r["ErrorCode"].as_u64()), (413, Some(7005)), "{r}");
    }

    // A 65535x65535 frame on a 16x16 screen, and a 5000x5000 JPEG without image data: within the
    // charge of their header, then refused as broken.
    let (answers, frame) = server
        .attack(
            "GIF frame of 65535x65535 on a 16x16 screen, JPEG of 5000x5000 without data",
            vec![crafted::gif(16, 16, 65535, 65535, 1), crafted::jpeg_header(5000, 5000)],
        )
        .await;
    for (status, r) in &answers {
        assert!(matches!(*status, 413 | 415), "refused cleanly: {status} {r}");
    }

    // 5000 frames: only the first is decoded.
    let (answers, frames) = server.attack("GIF of 5000 16x16 frames", vec![crafted::gif(16, 16, 16, 16, 5000)]).await;
    let (status, r) = &answers[0];
    assert_eq!(*status, 200, "{r}");
    assert_eq!(dims(r), vec![(16, 16), (16, 16), (16, 16)], "{r}");

    // What an upload costs besides rendering (its body, the index, buffers) is a few MiB.
    let small = 48 * MIB;
    assert!(wide < small, "25000000x1: {} MiB", wide / MIB);
    assert!(wide4 < small, "four 25000000x1: {} MiB", wide4 / MIB);
    assert!(four < BUDGET, "four at once: {} MiB, over the budget of {} MiB", four / MIB, BUDGET / MIB);
    assert!(iccp < small, "iCCP bomb: {} MiB", iccp / MIB);
    assert!(text < small, "text bomb: {} MiB", text / MIB);
    assert!(declared < small, "declared dimensions: {} MiB", declared / MIB);
    assert!(frame < BUDGET, "huge frame: {} MiB", frame / MIB);
    assert!(frames < small, "many frames: {} MiB", frames / MIB);

    // Still serving.
    let (status, r) = server.upload(picture()).await;
    assert_eq!(status, 200, "{r}");
}

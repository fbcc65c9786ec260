//! `duet backup` beside a running `duet serve` that keeps taking sends, and `duet restore` into a fresh
//! data directory: a server started there has every message acknowledged before the backup began, and
//! with `--with-media` the uploads too. A restore never writes over a store and refuses what is not a
//! backup; a backup refuses a PostgreSQL store.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const KEY: &str = "backup-test-secret-key";
const SDKAPPID: u64 = 1_400_000_321;

/// A `duet serve` process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let (child, addr) = common::start(data, SDKAPPID, KEY);
        Server { child, addr }
    }

    fn rest_url(&self, path: &str) -> String {
        format!(
            "http://{}/v4/{path}?sdkappid={SDKAPPID}&identifier=administrator&usersig={}&random=1&contenttype=json",
            self.addr,
            sig("administrator")
        )
    }

    async fn rest(&self, http: &reqwest::Client, path: &str, body: Value) -> Value {
        let r = post(http, &self.rest_url(path), &body).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r["ErrorCode"], 0, "{path} {body}: {r}");
        r
    }

    /// Every MsgKey of bob's history with alice, paged through.
    async fn history(&self, http: &reqwest::Client) -> HashSet<String> {
        let (mut keys, mut last) = (HashSet::new(), String::new());
        loop {
            let body = json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 100, "MinTime": 0,
                "MaxTime": 4_000_000_000u64, "LastMsgKey": last});
            let r = self.rest(http, "openim/admin_getroammsg", body).await;
            for m in r["MsgList"].as_array().unwrap() {
                assert!(keys.insert(m["MsgKey"].as_str().unwrap().to_owned()), "listed twice: {m}");
            }
            if r["Complete"] == 1 {
                return keys;
            }
            last = r["LastMsgKey"].as_str().unwrap().to_owned();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sig(user: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    duet_core::usersig::generate(KEY, SDKAPPID, user, now, 3600, None)
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::Result<Value> {
    http.post(url).body(body.to_string()).send().await?.json().await
}

/// Runs `duet <args>` to completion (without the environment's `DUET_*` settings).
async fn duet(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_duet"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("DUET_") {
            cmd.env_remove(var);
        }
    }
    cmd.args(args.iter().map(|a| a.as_ref())).output().await.expect("running duet")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A refusal: the exit status, and one line on stderr, `error: ...`, returned.
fn refused(out: &Output, status: i32) -> String {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(status), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    let line = text.trim_end().to_owned();
    assert!(line.starts_with("error: "), "{line}");
    line
}

async fn import(server: &Server, http: &reqwest::Client) {
    server.rest(http, "im_open_login_svc/multiaccount_import", json!({"Accounts": ["alice", "bob"]})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_sends_flow_restores_every_message_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, restored, file) = (dir.path().join("data"), dir.path().join("restored"), dir.path().join("b.tar"));
    let server = Server::start(&data);
    let http = reqwest::Client::new();
    import(&server, &http).await;

    // Two senders stream messages; `acked` holds the keys of every send acknowledged so far.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (count_tx, mut count) = tokio::sync::watch::channel(0usize);
    let stop = tokio_util::sync::CancellationToken::new();
    let url = Arc::new(server.rest_url("openim/sendmsg"));
    let mut senders = Vec::new();
    for task in 0..2u32 {
        let (http, url, acked, count_tx, stop) =
            (http.clone(), url.clone(), acked.clone(), count_tx.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            for i in 0u32.. {
                if stop.is_cancelled() {
                    return;
                }
                let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": task * 1_000_000 + i,
                    "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": format!("{task}-{i}")}}]});
                let r = post(&http, &url, &body).await.unwrap();
                assert_eq!(r["ErrorCode"], 0, "{r}");
                let mut acked = acked.lock().unwrap();
                acked.push(r["MsgKey"].as_str().unwrap().to_owned());
                count_tx.send_replace(acked.len());
            }
        }));
    }
    tokio::time::timeout(Duration::from_secs(30), count.wait_for(|n| *n >= 200)).await.unwrap().unwrap();

    // The backup runs while the senders go on.
    let before: Vec<String> = acked.lock().unwrap().clone();
    let started = Instant::now();
    let out = duet(&[&"backup", &"--data", &data, &"--to", &file]).await;
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    let during = acked.lock().unwrap().len() - before.len();
    // Sends still go through once it is done.
    let target = before.len() + during + 20;
    tokio::time::timeout(Duration::from_secs(30), count.wait_for(|n| *n >= target)).await.unwrap().unwrap();
    stop.cancel();
    for s in senders {
        s.await.unwrap();
    }
    let all: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let report = stderr(&out);
    eprintln!("{report}backup took {took:?}; {} sends acknowledged before it, {during} while it ran", before.len());
    assert!(report.contains(&format!("wrote {}", file.display())), "{report}");
    assert!(!dir.path().join("b.tar.tmp").exists(), "no temporary file is left");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "data, b.tar and nothing else (no staging left)");
    drop(server);

    let out = duet(&[&"restore", &"--from", &file, &"--data", &restored]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no secret key"), "the restore says the key is not in the backup: {}", stderr(&out));
    let server = Server::start(&restored);
    let stored = server.history(&http).await;
    let lost: Vec<&String> = before.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} messages acknowledged before the backup are missing: {:?}",
        lost.len(),
        before.len(),
        &lost[..lost.len().min(5)]
    );
    let unknown: Vec<&String> = stored.iter().filter(|k| !all.contains(*k)).collect();
    assert!(unknown.is_empty(), "the restored store holds messages nobody sent: {unknown:?}");
    // The restored server takes sends and numbers them after the restored ones.
    let body = json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 7,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "after the restore"}}]});
    let r = server.rest(&http, "openim/sendmsg", body).await;
    assert!(!stored.contains(r["MsgKey"].as_str().unwrap()), "{r}");
    assert_eq!(server.history(&http).await.len(), stored.len() + 1);
}

/// A PNG of `w` x `h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// The names in a tar file.
fn entries(file: &Path) -> Vec<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(file).unwrap());
    archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_media_an_uploaded_image_downloads_after_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let http = reqwest::Client::new();
    import(&server, &http).await;
    let image = png(900, 600);
    let upload = format!(
        "http://{}/v1/media?type=image&filename=cat.png&identifier=alice&usersig={}",
        server.addr,
        sig("alice")
    );
    let r: Value = http.post(upload).body(image.clone()).send().await.unwrap().json().await.unwrap();
    let uuid = r["UUID"].as_str().unwrap_or_else(|| panic!("an upload answer: {r}")).to_owned();
    let elem = json!({"MsgType": "TIMImageElem", "MsgContent": {"UUID": uuid, "ImageFormat": 3, "ImageInfoArray": r["ImageInfoArray"]}});
    server
        .rest(
            &http,
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": [elem]}),
        )
        .await;
    let download = |server: &Server, path: &str, user: &str| {
        format!("http://{}/v1/media/{uuid}{path}?identifier={user}&usersig={}", server.addr, sig(user))
    };
    let thumb = http.get(download(&server, "/thumb", "bob")).send().await.unwrap().bytes().await.unwrap();

    let (with, without) = (dir.path().join("with.tar"), dir.path().join("without.tar"));
    let out = duet(&[&"backup", &"--data", &data, &"--to", &with, &"--with-media"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("3 media blobs"), "the original, large and thumbnail: {}", stderr(&out));
    let out = duet(&[&"backup", &"--data", &data, &"--to", &without]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let blobs = |file: &Path| entries(file).into_iter().filter(|e| e.starts_with("media/")).count();
    assert_eq!(entries(&without), ["manifest.json", "duet.db", "media.db"]);
    assert_eq!(blobs(&with), 3);
    let mut archive = tar::Archive::new(std::fs::File::open(&with).unwrap());
    let manifest: Value = serde_json::from_reader(archive.entries().unwrap().next().unwrap().unwrap()).unwrap();
    assert_eq!(
        (
            &manifest["format"],
            &manifest["media_included"],
            &manifest["messages"],
            &manifest["uploads"],
            &manifest["blobs"]
        ),
        (&json!("duet-backup"), &json!(true), &json!(1), &json!(1), &json!(3)),
        "{manifest}"
    );
    assert_eq!(manifest["schema_version"], duet_store_sqlite::SCHEMA_VERSION);
    drop(server);

    let restored = dir.path().join("restored");
    let out = duet(&[&"restore", &"--from", &with, &"--data", &restored]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let server = Server::start(&restored);
    let got = http.get(download(&server, "", "bob")).send().await.unwrap();
    assert_eq!(got.status(), 200, "bob, granted by the message, downloads the original");
    assert_eq!(got.bytes().await.unwrap().to_vec(), image);
    let got = http.get(download(&server, "/thumb", "alice")).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap(), thumb);
    // The restore placed its files and left nothing of its own.
    let leftovers: Vec<_> =
        walk(&restored).into_iter().filter(|p| p.to_string_lossy().contains(".duet-restore-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_never_writes_over_a_store_nor_reads_what_is_not_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = (dir.path().join("data"), dir.path().join("b.tar"));
    let server = Server::start(&data);
    import(&server, &reqwest::Client::new()).await;
    let out = duet(&[&"backup", &"--data", &data, &"--to", &file]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    drop(server);

    // Into a directory that holds a store: refused, the store untouched.
    let store = std::fs::read(data.join("duet.db")).unwrap();
    let line = refused(&duet(&[&"restore", &"--from", &file, &"--data", &data]).await, 2);
    assert_eq!(
        line,
        format!(
            "error: {} exists: restore into a fresh data directory (this one holds a store, which a restore never overwrites)",
            data.join("duet.db").display()
        )
    );
    assert_eq!(std::fs::read(data.join("duet.db")).unwrap(), store);

    // Files that are not backups: nothing is created.
    let whole = std::fs::read(&file).unwrap();
    let not_tar: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let other_tar = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "notes.txt", &b"hello"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("garbage", not_tar, "it is not a tar file"),
        ("empty", Vec::new(), "it is empty"),
        ("another tar", other_tar, "it does not start with manifest.json"),
        ("half a backup", whole[..whole.len() / 2].to_vec(), "it is cut short or damaged (in duet.db)"),
    ];
    for (what, bytes, why) in cases {
        let bad = dir.path().join("bad.tar");
        std::fs::write(&bad, bytes).unwrap();
        let target = dir.path().join(what.replace(' ', "-"));
        let line = refused(&duet(&[&"restore", &"--from", &bad, &"--data", &target]).await, 1);
        assert_eq!(line, format!("error: {} is not a Duet backup: {why}", bad.display()), "{what}");
        // Refused from the manifest, nothing is created; past it, the temporary files are gone.
        if target.exists() {
            assert_eq!(what, "half a backup");
            assert!(walk(&target).iter().all(|p| p.is_dir()), "{what}: {:?}", walk(&target));
        }
    }
}

#[tokio::test]
async fn a_backup_of_a_postgresql_store_is_refused_with_what_to_use_instead() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("duet.toml");
    std::fs::write(&config, "store = \"postgres://duet:secret@db.example:5432/duet\"\n").unwrap();
    let file = dir.path().join("b.tar");
    let line = refused(&duet(&[&"backup", &"--config", &config, &"--to", &file]).await, 2);
    assert!(line.contains("pg_dump") && line.contains("media"), "{line}");
    assert!(!line.contains("secret"), "the password is not printed: {line}");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_duet"));
    let out = cmd
        .args(["backup", "--data"])
        .arg(dir.path())
        .arg("--to")
        .arg(&file)
        .env("DUET_STORE", "postgresql://localhost/duet")
        .output()
        .await
        .unwrap();
    assert!(refused(&out, 2).contains("pg_dump"));
    assert!(!file.exists() && !dir.path().join("b.tar.tmp").exists());
}

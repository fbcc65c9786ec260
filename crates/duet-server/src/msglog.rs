//! The hourly message log, Tencent's `open_msg_svc/get_history` (`docs/callbacks.md`, "Message-log
//! download"): after each hour of the configured clock ends, [`MsgLog::run`] writes that hour's C2C
//! messages as `<data>/msglog/C2C-YYYYMMDDHH.gz` (to a temporary name, renamed when whole, with a JSON
//! sidecar holding the sizes and MD5s), catches up the hours it missed while the server was down, and
//! deletes files past the retention. [`MsgLog::lookup`] answers `get_history`, and [`router`] serves the
//! files at signed, expiring URLs (`GET /v1/msglog/<name>?expires=<unix>&sig=<hex>`).
//!
//! [`write_records`] writes the records of any time range (the one serialization of a record, shared by
//! the hourly files and `duet export`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duet_core::clock::Clock;
use duet_core::model::StoredMessage;
use duet_core::msglog::{Hour, UtcOffset, format_local};
use duet_core::store::{MessageExport, Store, StoreError};
use duet_proto::rest::msglog::{FILE_HEAD, FILE_TAIL, HistoryFile, RECORD_SEPARATOR, Record};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::value::RawValue;
use sha2::Sha256;

/// Where the files are served.
pub const URL_PATH: &str = "/v1/msglog";
/// The directory under the data directory that holds the files.
pub const DIR_NAME: &str = "msglog";
/// Messages read from the store at a time (at most 12 KB each: a few MB held per page).
const PAGE: usize = 500;
/// How long after an hour ends its file is written: a send dated in the hour's last second may still be
/// committing when the hour ends.
pub const WRITE_DELAY_SECS: i64 = 60;
/// The file that says up to when hours were written (unix seconds, the end of the last written hour).
const STATE_FILE: &str = "written_until";

/// `[message_log]`: the hourly files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLogConfig {
    /// The clock an hour is read in (default Beijing time, `+08:00`, as Tencent).
    pub utc_offset: UtcOffset,
    /// How long a file is kept after its hour ends (default 7 days, as Tencent).
    pub retention: Duration,
    /// How long a download URL given by `get_history` stays valid (default 1 hour).
    pub url_ttl: Duration,
    /// How often the job looks for hours to write and files to delete (default 30 s).
    pub check_interval: Duration,
}

impl Default for MessageLogConfig {
    fn default() -> MessageLogConfig {
        MessageLogConfig {
            utc_offset: UtcOffset::BEIJING,
            retention: Duration::from_secs(7 * 86_400),
            url_ttl: Duration::from_secs(3600),
            check_interval: Duration::from_secs(30),
        }
    }
}

/// A failure writing records.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the messages: {0}")]
    Store(#[from] StoreError),
    #[error("writing the records: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes every stored message with its time in [`start`, `end`) to `out` as a file's records (head,
/// records, tail), page by page; the encoding and the writes run on blocking threads. Returns `out`
/// and how many records it got.
pub async fn write_records<S, W>(store: &S, start: i64, end: i64, mut out: W) -> Result<(W, u64), ExportError>
where
    S: MessageExport + ?Sized,
    W: Write + Send + 'static,
{
    let (mut after, mut count) = (None, 0u64);
    loop {
        let page = store.export_messages(start, end, after, PAGE).await?;
        let (first, last) = (after.is_none(), page.next.is_none());
        let written = count;
        let (back, n) = blocking(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            if first {
                buf.extend_from_slice(FILE_HEAD);
            }
            let mut n = 0u64;
            for m in &page.messages {
                if written + n > 0 {
                    buf.extend_from_slice(RECORD_SEPARATOR);
                }
                encode(m, &mut buf)?;
                n += 1;
            }
            if last {
                if written + n > 0 {
                    buf.push(b'\n');
                }
                buf.extend_from_slice(FILE_TAIL);
            }
            out.write_all(&buf)?;
            Ok((out, n))
        })
        .await?;
        out = back;
        count += n;
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok((out, count)),
        }
    }
}

/// One message's record, on one line.
fn encode(m: &StoredMessage, buf: &mut Vec<u8>) -> std::io::Result<()> {
    // A stored body is the compact JSON the wire layer validated; were one not JSON, its record says `[]`.
    let body: &RawValue = match serde_json::from_str(&m.body) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, key = %m.key, "message log: a stored MsgBody is not JSON");
            serde_json::from_str("[]").map_err(std::io::Error::other)?
        }
    };
    let record = Record {
        from: &m.from,
        to: &m.to,
        time: m.key.time,
        seq: m.key.seq,
        random: m.key.random,
        key: m.key.to_string(),
        body,
        cloud_custom_data: &m.cloud_custom_data,
    };
    record.write(buf).map_err(std::io::Error::other)
}

/// Runs `f` on a blocking thread.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<R> + Send + 'static,
) -> Result<R, ExportError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ExportError::Io(std::io::Error::other(e)))?.map_err(Into::into)
}

/// A writer that counts and hashes (MD5) what passes through it.
struct Hashing<W> {
    inner: W,
    md5: Md5,
    len: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing { inner, md5: Md5::new(), len: 0 }
    }

    /// The writer, the byte count and the MD5 in lowercase hex.
    fn finish(self) -> (W, u64, String) {
        (self.inner, self.len, hex(&self.md5.finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an hour's file holds: Tencent's `File` fields but the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub file_size: u64,
    pub file_md5: String,
    pub gzip_size: u64,
    pub gzip_md5: String,
}

/// What `get_history` finds for an hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The hour's file, by its name.
    File(String, FileInfo),
    /// Not written yet, or the hour had no messages: Tencent's `Err_File_Not_Ready`.
    NotReady,
    /// Past the retention: `Err_File_Expired`.
    Expired,
}

/// The message log of one server: its directory, its clock and the key of its URLs.
pub struct MsgLog {
    dir: PathBuf,
    config: MessageLogConfig,
    /// HMAC-SHA256 key of the download URLs, derived from the app's secret key.
    url_key: [u8; 32],
    clock: Arc<dyn Clock>,
}

type HmacSha256 = Hmac<Sha256>;

impl MsgLog {
    /// The log under `<data_dir>/msglog`, its URLs signed with a key derived from `secret_key`.
    pub fn new(data_dir: &Path, config: MessageLogConfig, secret_key: &str, clock: Arc<dyn Clock>) -> MsgLog {
        let mut mac = HmacSha256::new_from_slice(secret_key.as_bytes()).expect("HMAC takes a key of any length");
        mac.update(b"duet message-log download URLs v1");
        let url_key = mac.finalize().into_bytes().into();
        MsgLog { dir: data_dir.join(DIR_NAME), config, url_key, clock }
    }

    /// The clock hours are read in.
    pub fn utc_offset(&self) -> UtcOffset {
        self.config.utc_offset
    }

    fn retention_secs(&self) -> i64 {
        i64::try_from(self.config.retention.as_secs()).unwrap_or(i64::MAX)
    }

    /// Whether the hour's file is (or would be) deleted at `now`.
    fn expired(&self, hour: Hour, now: i64) -> bool {
        hour.end().saturating_add(self.retention_secs()) <= now
    }

    /// `C2C-YYYYMMDDHH.gz`.
    fn file_name(&self, hour: Hour) -> String {
        format!("C2C-{}.gz", hour.name(self.config.utc_offset))
    }

    /// Writes every finished hour not written yet (within the retention), then deletes expired files,
    /// every `check_interval` until `shutdown` completes.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            let work = async {
                self.catch_up(&*store).await?;
                self.prune().await
            };
            // Stopped mid-hour, the hour's temporary file is left behind and the hour written again.
            tokio::select! {
                () = &mut shutdown => return,
                result = work => if let Err(e) = result {
                    tracing::warn!(error = %e, "message log: writing the hourly files failed; retrying");
                },
            }
        }
    }

    /// Writes the hours that ended (at least [`WRITE_DELAY_SECS`] ago) and were not written yet.
    async fn catch_up(&self, store: &dyn Store) -> Result<(), ExportError> {
        let now = self.clock.now_secs();
        let offset = self.config.utc_offset;
        let oldest = Hour::containing(now.saturating_sub(self.retention_secs()), offset);
        let due = Hour::containing(now - WRITE_DELAY_SECS, offset).prev();
        let written_until = self.written_until().await?;
        let mut hour = match written_until {
            Some(until) => Hour::containing(until, offset).max(oldest),
            None => oldest,
        };
        while hour <= due {
            let info = self.write_hour(store, hour).await?;
            if let Some(info) = &info {
                tracing::info!(hour = %hour.name(offset), bytes = info.file_size, "message log: hour written");
            }
            self.set_written_until(hour.end()).await?;
            hour = hour.next();
        }
        Ok(())
    }

    async fn written_until(&self) -> Result<Option<i64>, ExportError> {
        match tokio::fs::read_to_string(self.dir.join(STATE_FILE)).await {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_written_until(&self, until: i64) -> Result<(), ExportError> {
        let dir = self.dir.clone();
        blocking(move || write_whole(&dir, STATE_FILE, until.to_string().as_bytes())).await
    }

    /// Writes the hour's file and its sidecar; `None` (and no file) when the hour has no messages.
    async fn write_hour(&self, store: &dyn Store, hour: Hour) -> Result<Option<FileInfo>, ExportError> {
        let name = self.file_name(hour);
        let (dir, tmp) = (self.dir.clone(), self.dir.join(format!("{name}.tmp")));
        let file = {
            let (dir, tmp) = (dir.clone(), tmp.clone());
            blocking(move || {
                std::fs::create_dir_all(&dir)?;
                std::fs::File::create(&tmp)
            })
            .await?
        };
        let gz =
            flate2::write::GzEncoder::new(Hashing::new(std::io::BufWriter::new(file)), flate2::Compression::default());
        let (out, count) = write_records(store, hour.start(), hour.end(), Hashing::new(gz)).await?;
        blocking(move || {
            let (gz, file_size, file_md5) = out.finish();
            let (file, gzip_size, gzip_md5) = gz.finish()?.finish();
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            if count == 0 {
                std::fs::remove_file(&tmp)?;
                return Ok(None);
            }
            let info = FileInfo { file_size, file_md5, gzip_size, gzip_md5 };
            let sidecar = serde_json::json!({
                "FileSize": info.file_size,
                "FileMD5": info.file_md5,
                "GzipSize": info.gzip_size,
                "GzipMD5": info.gzip_md5,
                "Records": count,
            });
            write_whole(&dir, &sidecar_name(&name), sidecar.to_string().as_bytes())?;
            std::fs::rename(&tmp, dir.join(&name))?;
            sync_dir(&dir);
            Ok(Some(info))
        })
        .await
    }

    /// Deletes the files past the retention, and temporary files left by a stopped write.
    async fn prune(&self) -> Result<(), ExportError> {
        let now = self.clock.now_secs();
        let dir = self.dir.clone();
        let (offset, retention) = (self.config.utc_offset, self.retention_secs());
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let doomed = name.ends_with(".tmp")
                    || hour_of(name, offset).is_some_and(|h| h.end().saturating_add(retention) <= now);
                if doomed {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => tracing::debug!(file = name, "message log: file deleted"),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// What there is for `hour`.
    pub async fn lookup(&self, hour: Hour) -> Result<Lookup, ExportError> {
        if self.expired(hour, self.clock.now_secs()) {
            return Ok(Lookup::Expired);
        }
        let name = self.file_name(hour);
        let text = match tokio::fs::read_to_string(self.dir.join(sidecar_name(&name))).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::NotReady),
            Err(e) => return Err(e.into()),
        };
        if !tokio::fs::try_exists(self.dir.join(&name)).await? {
            return Ok(Lookup::NotReady);
        }
        let v: serde_json::Value = serde_json::from_str(&text).map_err(std::io::Error::other)?;
        let (num, text) = (|k: &str| v[k].as_u64(), |k: &str| v[k].as_str().map(str::to_owned));
        match (num("FileSize"), text("FileMD5"), num("GzipSize"), text("GzipMD5")) {
            (Some(file_size), Some(file_md5), Some(gzip_size), Some(gzip_md5)) => {
                Ok(Lookup::File(name, FileInfo { file_size, file_md5, gzip_size, gzip_md5 }))
            }
            _ => Err(std::io::Error::other(format!("the sidecar of {name} is malformed")).into()),
        }
    }

    /// The `File` entry of `name` at `base` (`scheme://authority`), its URL valid for `url_ttl`.
    pub fn file_entry(&self, base: &str, name: &str, info: FileInfo) -> HistoryFile {
        let ttl = i64::try_from(self.config.url_ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = self.clock.now_secs().saturating_add(ttl);
        HistoryFile {
            url: format!("{base}{URL_PATH}/{name}?expires={expires}&sig={}", self.sign(name, expires)),
            expire_time: format_local(expires, self.config.utc_offset),
            file_size: info.file_size,
            file_md5: info.file_md5,
            gzip_size: info.gzip_size,
            gzip_md5: info.gzip_md5,
        }
    }

    fn mac(&self, name: &str, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.url_key).expect("HMAC takes a key of any length");
        mac.update(name.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    fn sign(&self, name: &str, expires: i64) -> String {
        hex(&self.mac(name, expires).finalize().into_bytes())
    }

    /// Whether `sig` (hex) signs `name` until `expires`, compared in constant time.
    fn verify(&self, name: &str, expires: i64, sig: &str) -> bool {
        let Some(sig) = unhex(sig) else { return false };
        self.mac(name, expires).verify_slice(&sig).is_ok()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() & 1 == 1 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// `C2C-YYYYMMDDHH.json`, beside `C2C-YYYYMMDDHH.gz`.
fn sidecar_name(name: &str) -> String {
    format!("{}.json", name.trim_end_matches(".gz"))
}

/// The hour a file of the log (`.gz` or its sidecar) is for.
fn hour_of(name: &str, offset: UtcOffset) -> Option<Hour> {
    let stem = name.strip_prefix("C2C-")?;
    let stem = stem.strip_suffix(".gz").or_else(|| stem.strip_suffix(".json"))?;
    Hour::parse(stem, offset)
}

/// Writes `bytes` as `dir/name`, whole or not at all: to a temporary file, synced, then renamed.
fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir);
    Ok(())
}

/// Syncs a directory so a rename in it survives power loss (best effort: not every platform can).
fn sync_dir(dir: &Path) {
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(error = %e, "message log: syncing the directory");
    }
}

/// `GET /v1/msglog/<name>?expires=&sig=`: the file, if the signature holds and has not expired (403
/// otherwise), and the file is still there (404 otherwise).
pub(crate) fn router(log: Arc<MsgLog>) -> Router {
    Router::new().route(&format!("{URL_PATH}/{{name}}"), axum::routing::get(download)).with_state(log)
}

#[derive(serde::Deserialize)]
struct Signed {
    expires: Option<String>,
    sig: Option<String>,
}

async fn download(State(log): State<Arc<MsgLog>>, UrlPath(name): UrlPath<String>, query: Query<Signed>) -> Response {
    let expires = query.expires.as_deref().and_then(|e| e.parse::<i64>().ok());
    let (Some(expires), Some(sig)) = (expires, query.sig.as_deref()) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    if !log.verify(&name, expires, sig) || expires < log.clock.now_secs() {
        return StatusCode::FORBIDDEN.into_response();
    }
    // Signed names are the log's own, but check anyway that this one names a file of the log.
    if hour_of(&name, log.config.utc_offset).is_none() || !name.ends_with(".gz") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let file = match tokio::fs::File::open(log.dir.join(&name)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, file = %name, "message log: opening a file to serve");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    if let Some(len) = len {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    response
}

#[cfg(test)]
mod tests {
    use duet_core::clock::ManualClock;

    use super::*;

    #[test]
    fn urls_verify_only_their_own_name_and_expiry() {
        let clock = Arc::new(ManualClock::new(0));
        let log = MsgLog::new(Path::new("/nowhere"), MessageLogConfig::default(), "key", clock);
        let sig = log.sign("C2C-2026120400.gz", 100);
        assert!(log.verify("C2C-2026120400.gz", 100, &sig));
        assert!(log.verify("C2C-2026120400.gz", 100, &sig.to_uppercase()), "hex in either case");
        assert!(!log.verify("C2C-2026120401.gz", 100, &sig));
        assert!(!log.verify("C2C-2026120400.gz", 101, &sig));
        assert!(!log.verify("C2C-2026120400.gz", 100, &sig[..62]));
        assert!(!log.verify("C2C-2026120400.gz", 100, "zz"));
        let other =
            MsgLog::new(Path::new("/nowhere"), MessageLogConfig::default(), "other", Arc::new(ManualClock::new(0)));
        assert!(!other.verify("C2C-2026120400.gz", 100, &sig), "another app's key");
    }

    #[test]
    fn file_names_map_to_their_hours() {
        let bj = UtcOffset::BEIJING;
        let h = Hour::parse("2026120400", bj).unwrap();
        assert_eq!(hour_of("C2C-2026120400.gz", bj), Some(h));
        assert_eq!(hour_of("C2C-2026120400.json", bj), Some(h));
        assert_eq!(sidecar_name("C2C-2026120400.gz"), "C2C-2026120400.json");
        for bad in ["C2C-2026120400.gz.tmp", "C2C-2026123400.gz", "Group-2026120400.gz", "written_until", "../x"] {
            assert_eq!(hour_of(bad, bj), None, "{bad}");
        }
    }
}

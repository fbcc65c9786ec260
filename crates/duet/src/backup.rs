//! `duet backup` and `duet restore`: the embedded store (`duet.db`), the media index (`media.db`) and,
//! with `--with-media`, the uploads' blobs, in one uncompressed tar beside a running server, and back into
//! a fresh data directory.
//!
//! The backup file is a tar of `manifest.json` (what [`Manifest`] holds), `duet.db`, `media.db` and, with
//! `--with-media`, `media/<xx>/<blob key>` for each blob the media index names. Each database is one
//! snapshot (`duet_store_sqlite::backup::copy`), `duet.db` first: every upload a message of the copy
//! names was recorded before that message was sent, so the later copy of the media index holds it. The
//! file is written as `FILE.tmp` and renamed when whole. A restore writes every file under temporary names
//! in the target directories, checks both databases (`PRAGMA integrity_check`), then renames them into
//! place, `duet.db` last; it never writes over a store.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::Args;
use duet_core::clock::{Clock, SystemClock};
use duet_server::config::StoreLocation;
use duet_store_sqlite::backup::{self, MediaSummary, StoreSummary};
use serde_json::{Value, json};

use crate::settings::{KeyArgs, store_files};
use crate::{Failure, usage};

/// What `manifest.json` says the file is.
const FORMAT: &str = "duet-backup";
/// The version of the backup file's layout this build writes and reads.
const FORMAT_VERSION: u64 = 1;
/// A manifest is a few hundred bytes; anything much larger is not one.
const MAX_MANIFEST: u64 = 64 * 1024;

/// The flags of `duet backup`.
#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// The server's configuration and data directory, as `serve` is given them (only --config and --data
    /// are read)
    #[command(flatten)]
    key: KeyArgs,
    /// The backup file to write (an uncompressed tar; written as FILE.tmp, then renamed)
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// Include the uploads' blobs [default: the media index only: copy the media directory with rsync or cp]
    #[arg(long)]
    with_media: bool,
    /// The server's store, as `serve` is given it; a PostgreSQL store is backed up with pg_dump
    /// [default: the config file's `store`, else embedded]
    #[arg(long, env = "DUET_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    /// The server's media store, as `serve` is given it; blobs in S3 are not in the backup [default: the
    /// config file's `media_store`, else local]
    #[arg(long, env = "DUET_MEDIA_STORE", value_name = "URL")]
    media_store: Option<String>,
}

/// The flags of `duet restore`.
#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    /// Where to restore: the data directory (and the config's `[media] dir`) of the server to start on it,
    /// which must hold no store yet (only --config and --data are read)
    #[command(flatten)]
    key: KeyArgs,
    /// The backup file, as `duet backup --to FILE` wrote it
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// The store of the server to restore for, as `serve` is given it; a PostgreSQL store is restored with
    /// pg_restore [default: the config file's `store`, else embedded]
    #[arg(long, env = "DUET_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
}

/// `manifest.json`: what the backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Manifest {
    format_version: u64,
    duet_version: String,
    /// `duet.db`'s schema version.
    schema_version: usize,
    /// RFC 3339, UTC.
    created_at: String,
    media_included: bool,
    accounts: u64,
    messages: u64,
    uploads: u64,
    /// Blobs the media index named when it was copied (0 without media); one deleted (expired) before it
    /// was read is not in the file.
    blobs: u64,
}

impl Manifest {
    fn to_json(&self) -> Value {
        json!({
            "format": FORMAT,
            "format_version": self.format_version,
            "duet_version": self.duet_version,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "media_included": self.media_included,
            "accounts": self.accounts,
            "messages": self.messages,
            "uploads": self.uploads,
            "blobs": self.blobs,
        })
    }

    /// Reads a manifest; `Err` says what is wrong with it.
    fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|_| "its manifest.json is not JSON".to_owned())?;
        if v["format"] != FORMAT {
            return Err("its manifest.json is not a Duet backup's".into());
        }
        let number = |key: &str| v[key].as_u64().ok_or_else(|| format!("its manifest.json has no {key}"));
        let format_version = number("format_version")?;
        if format_version > FORMAT_VERSION {
            let by = v["duet_version"].as_str().unwrap_or("a newer version");
            return Err(format!(
                "it was written by duet {by} in backup format {format_version}; this duet reads format {FORMAT_VERSION}: \
                 restore it with a newer duet"
            ));
        }
        Ok(Manifest {
            format_version,
            duet_version: v["duet_version"].as_str().unwrap_or_default().to_owned(),
            schema_version: usize::try_from(number("schema_version")?).map_err(|e| e.to_string())?,
            created_at: v["created_at"].as_str().unwrap_or_default().to_owned(),
            media_included: v["media_included"].as_bool().ok_or("its manifest.json has no media_included")?,
            accounts: number("accounts")?,
            messages: number("messages")?,
            uploads: number("uploads")?,
            blobs: number("blobs")?,
        })
    }
}

/// Refuses a PostgreSQL store (`store`, as configured): `doing` is what the command would do with an
/// embedded one.
fn embedded_only(store: Option<&str>, doing: &str) -> Result<(), Failure> {
    let Some(url) = store.filter(|s| !s.trim().is_empty()) else { return Ok(()) };
    match StoreLocation::parse(url).map_err(|e| usage(anyhow!(e)))? {
        StoreLocation::Embedded => Ok(()),
        StoreLocation::Postgres(_) => Err(usage(anyhow!(
            "{doing} the embedded store, and this server's store is PostgreSQL: back it up with pg_dump (or \
             pg_basebackup) and restore it with pg_restore, and its media with the S3 bucket's own tools or a copy \
             of the media directory (docs/operations.md, \"Backups and restore\")"
        ))),
    }
}

pub fn run_backup(args: BackupArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let files = store_files(&args.key).map_err(usage)?;
    embedded_only(args.store.as_deref().or(files.store.as_deref()), "duet backup copies")?;
    let media_store = args.media_store.clone().or(files.media_store).filter(|s| s.trim() != "local");
    if args.with_media && media_store.as_deref().is_some_and(|s| !s.trim().is_empty()) {
        return Err(usage(anyhow!(
            "--with-media: the blobs are in an S3 bucket (media_store), not in the media directory; copy the bucket \
             with its own tools (aws s3 sync, rclone) and run duet backup without --with-media for the index"
        )));
    }
    let db = files.data.join("duet.db");
    let media_db = files.media_dir.join("media.db");
    for (path, what) in [(&db, "store"), (&media_db, "media index")] {
        if !path.exists() {
            return Err(usage(anyhow!(
                "no {what} at {}: name the server's data directory with --data DIR (DUET_DATA), or its config with \
                 --config FILE",
                path.display()
            )));
        }
    }

    let out = args.to;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // The copies are taken beside the output, on the filesystem it is written to.
    let staging = tempfile::Builder::new()
        .prefix(".duet-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let (db_copy, media_copy) = (staging.path().join("duet.db"), staging.path().join("media.db"));
    let copy_started = Instant::now();
    backup::copy(&db, &db_copy).context("copying the store")?;
    let db_secs = copy_started.elapsed().as_secs_f64();
    backup::copy(&media_db, &media_copy).context("copying the media index")?;
    let store = backup::store_summary(&db_copy).context("reading the store's copy")?;
    let media = backup::media_summary(&media_copy).context("reading the media index's copy")?;

    let blobs = if args.with_media { blob_paths(&files.media_dir, &media)? } else { Vec::new() };
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        duet_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: store.schema_version,
        created_at: now_rfc3339(),
        media_included: args.with_media,
        accounts: store.accounts,
        messages: store.messages,
        uploads: media.uploads,
        blobs: blobs.len() as u64,
    };
    let tmp = with_suffix(&out, ".tmp");
    let written = write_tar(&tmp, &manifest, &db_copy, &media_copy, &blobs)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|w| {
            std::fs::rename(&tmp, &out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
            Ok(w)
        });
    let written = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    };
    sync_dir(&parent);

    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "backup: duet.db {} (schema {}, {} accounts, {} messages), copied in {db_secs:.2} s",
        human(size(&db_copy)),
        store.schema_version,
        store.accounts,
        store.messages
    );
    eprintln!("backup: media.db {} ({} uploads)", human(size(&media_copy)), media.uploads);
    if args.with_media {
        let gone = media.blobs.len() - written.blobs;
        let gone =
            if gone > 0 { format!("; {gone} named by the index were gone (expired meanwhile)") } else { String::new() };
        eprintln!("backup: {} media blobs, {}{gone}", written.blobs, human(written.blob_bytes));
    } else {
        eprintln!(
            "backup: no media blobs (without --with-media): copy {} with rsync or cp beside this file",
            files.media_dir.display()
        );
    }
    eprintln!("backup: wrote {} ({}) in {:.2} s", out.display(), human(written.bytes), started.elapsed().as_secs_f64());
    Ok(())
}

/// The blobs of `media` in the media directory: (key, path).
fn blob_paths(media_dir: &Path, media: &MediaSummary) -> anyhow::Result<Vec<(String, PathBuf)>> {
    media
        .blobs
        .iter()
        .map(|key| match blob_path(media_dir, key) {
            Some(path) => Ok((key.clone(), path)),
            None => Err(anyhow!("the media index names a blob {key:?} that is not a blob key")),
        })
        .collect()
}

/// Where the local blob store keeps `key` under `root` (`<root>/<first two characters>/<key>`), if `key` is
/// a blob key: an upload id, alone or with `.large` or `.thumb`.
fn blob_path(root: &Path, key: &str) -> Option<PathBuf> {
    let (uuid, rendition) = key.split_once('.').unwrap_or((key, ""));
    if !duet_core::media::is_uuid(uuid) || !matches!(rendition, "" | "large" | "thumb") {
        return None;
    }
    Some(root.join(&key[..2]).join(key))
}

/// What [`write_tar`] wrote.
struct Written {
    /// The file's size.
    bytes: u64,
    blobs: usize,
    blob_bytes: u64,
}

/// Writes the tar at `path` and syncs it. A blob deleted since the index was copied (expired) is left out.
fn write_tar(
    path: &Path,
    manifest: &Manifest,
    db: &Path,
    media_db: &Path,
    blobs: &[(String, PathBuf)],
) -> anyhow::Result<Written> {
    let file = std::fs::File::create(path)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let text = serde_json::to_vec_pretty(&manifest.to_json())?;
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(SystemClock.now_secs().max(0) as u64);
    tar.append_data(&mut header, "manifest.json", text.as_slice())?;
    tar.append_path_with_name(db, "duet.db")?;
    tar.append_path_with_name(media_db, "media.db")?;
    let (mut count, mut blob_bytes) = (0, 0);
    for (key, blob) in blobs {
        let mut file = match std::fs::File::open(blob) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", blob.display())),
        };
        tar.append_file(format!("media/{}/{key}", &key[..2]), &mut file)
            .with_context(|| format!("adding {}", blob.display()))?;
        count += 1;
        blob_bytes += file.metadata().map(|m| m.len()).unwrap_or(0);
    }
    let file = tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(Written { bytes: file.metadata()?.len(), blobs: count, blob_bytes })
}

pub fn run_restore(args: RestoreArgs) -> Result<(), Failure> {
    let files = store_files(&args.key).map_err(usage)?;
    embedded_only(args.store.as_deref().or(files.store.as_deref()), "duet restore writes")?;
    let db = files.data.join("duet.db");
    let media_db = files.media_dir.join("media.db");
    for path in [&db, &media_db] {
        if path.exists() {
            return Err(usage(anyhow!(
                "{} exists: restore into a fresh data directory (this one holds a store, which a restore never \
                 overwrites)",
                path.display()
            )));
        }
    }
    let from = &args.from;
    let not_backup = |why: String| anyhow!("{} is not a Duet backup: {why}", from.display());
    let open = || -> anyhow::Result<tar::Archive<std::io::BufReader<std::fs::File>>> {
        let file = std::fs::File::open(from).with_context(|| format!("opening {}", from.display()))?;
        Ok(tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file)))
    };
    // The manifest first, before anything is created.
    manifest(&mut open()?).map_err(not_backup)?;
    for dir in [&files.data, &files.media_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Temporary names in the directories the files go to, so that placing them is a rename.
    let temp = |dir: &Path| {
        tempfile::Builder::new()
            .prefix(".duet-restore-")
            .tempdir_in(dir)
            .with_context(|| format!("creating a temporary directory in {}", dir.display()))
    };
    let (db_stage, media_stage) = (temp(&files.data)?, temp(&files.media_dir)?);
    let staged_db = db_stage.path().join("duet.db");
    let staged_media = media_stage.path().join("media.db");
    let (manifest, blobs) = unpack(&mut open()?, &staged_db, &staged_media, media_stage.path(), not_backup)?;
    backup::check(&staged_db).context("the backup's duet.db")?;
    backup::check(&staged_media).context("the backup's media.db")?;
    let store: StoreSummary = backup::store_summary(&staged_db).context("the backup's duet.db")?;
    let media = backup::media_summary(&staged_media).context("the backup's media.db")?;
    if (store.schema_version, store.messages) != (manifest.schema_version, manifest.messages) {
        return Err(anyhow!(
            "{}: its duet.db (schema {}, {} messages) is not the one its manifest describes (schema {}, {} messages)",
            from.display(),
            store.schema_version,
            store.messages,
            manifest.schema_version,
            manifest.messages
        )
        .into());
    }

    // Everything is checked: into place, blobs first and the store last, so that a store in the directory
    // means a whole restore.
    for key in &blobs {
        let dest = blob_path(&files.media_dir, key).expect("checked when unpacked");
        let dir = dest.parent().expect("a blob's directory");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let staged = blob_path(media_stage.path(), key).expect("checked when unpacked");
        std::fs::rename(&staged, &dest).with_context(|| format!("moving a blob to {}", dest.display()))?;
    }
    std::fs::rename(&staged_media, &media_db)
        .with_context(|| format!("moving the media index to {}", media_db.display()))?;
    sync_dir(&files.media_dir);
    std::fs::rename(&staged_db, &db).with_context(|| format!("moving the store to {}", db.display()))?;
    sync_dir(&files.data);
    drop((db_stage, media_stage));

    eprintln!(
        "restore: {} (written by duet {} at {}) into {}: duet.db (schema {}, {} accounts, {} messages), media.db \
         ({} uploads), {} media blobs",
        from.display(),
        manifest.duet_version,
        manifest.created_at,
        files.data.display(),
        store.schema_version,
        store.accounts,
        store.messages,
        media.uploads,
        blobs.len()
    );
    if !manifest.media_included {
        eprintln!(
            "restore: the backup holds no media blobs: copy the old media directory's files into {}",
            files.media_dir.display()
        );
    }
    eprintln!(
        "restore: a backup holds no secret key: start the server with the key it had (--secret-key, or the \
         secret_key file of its old data directory copied into {})",
        files.data.display()
    );
    Ok(())
}

/// Reads and checks the backup's first entry, its manifest; the entries after it. `Err` says why the file is
/// not a backup (never with the bytes it holds: they may be anything).
fn manifest<R: Read>(archive: &mut tar::Archive<R>) -> Result<(Manifest, tar::Entries<'_, R>), String> {
    let mut entries = archive.entries().map_err(|_| "it is not a tar file")?;
    let first = entries.next().ok_or("it is empty")?.map_err(|_| "it is not a tar file")?;
    if first.path_bytes().as_ref() != b"manifest.json" || first.size() > MAX_MANIFEST {
        return Err("it does not start with manifest.json".into());
    }
    let mut text = Vec::new();
    first.take(MAX_MANIFEST).read_to_end(&mut text).map_err(|_| "its manifest.json is cut short")?;
    Ok((Manifest::parse(&text)?, entries))
}

/// Reads the backup: its manifest, `duet.db` and `media.db` written to their staged paths and each blob
/// under `media_stage`; the blob keys. What makes the file no backup is told by `not_backup`.
fn unpack<R: Read>(
    archive: &mut tar::Archive<R>,
    staged_db: &Path,
    staged_media: &Path,
    media_stage: &Path,
    not_backup: impl Fn(String) -> anyhow::Error,
) -> anyhow::Result<(Manifest, Vec<String>)> {
    let (manifest, entries) = manifest(archive).map_err(&not_backup)?;
    let (mut db, mut media, mut blobs) = (false, false, Vec::new());
    for entry in entries {
        let mut entry = entry.map_err(|_| not_backup("it is damaged (a tar entry cannot be read)".into()))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !entry.header().entry_type().is_file() {
            return Err(not_backup(format!("its entry {name:?} is not a file")));
        }
        let dest = match name.as_str() {
            "duet.db" if !db => {
                db = true;
                staged_db.to_owned()
            }
            "media.db" if !media => {
                media = true;
                staged_media.to_owned()
            }
            _ => {
                let key = name.strip_prefix("media/").and_then(|rest| rest.split_once('/'));
                let path = key.and_then(|(dir, key)| blob_path(media_stage, key).filter(|_| key.get(..2) == Some(dir)));
                match (path, key) {
                    (Some(path), Some((_, key))) => {
                        blobs.push(key.to_owned());
                        path
                    }
                    _ => return Err(not_backup(format!("it holds an unexpected entry {name:?}"))),
                }
            }
        };
        let size = entry.size();
        match write_entry(&mut entry, size, &dest) {
            Ok(()) => {}
            Err(Entry::Read) => return Err(not_backup(format!("it is cut short or damaged (in {name})"))),
            Err(Entry::Write(e)) => return Err(anyhow::Error::from(e).context(format!("writing {}", dest.display()))),
        }
    }
    match (db, media) {
        (true, true) => Ok((manifest, blobs)),
        _ => Err(not_backup(format!("it lacks {}", if db { "media.db" } else { "duet.db" }))),
    }
}

/// Why an entry could not be restored.
enum Entry {
    /// The backup file ended before the entry did, or could not be read.
    Read,
    Write(std::io::Error),
}

/// Writes the `size` bytes of `entry` to a new file at `dest` and syncs it.
fn write_entry(entry: &mut impl Read, size: u64, dest: &Path) -> Result<(), Entry> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(Entry::Write)?;
    }
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(dest).map_err(Entry::Write)?;
    let mut buf = vec![0; 1 << 16];
    let mut left = size;
    while left > 0 {
        // A tar entry cut short reads as an early end, not as an error.
        let n = match entry.read(&mut buf) {
            Ok(0) | Err(_) => return Err(Entry::Read),
            Ok(n) => n,
        };
        out.write_all(&buf[..n]).map_err(Entry::Write)?;
        left = left.saturating_sub(n as u64);
    }
    out.sync_all().map_err(Entry::Write)
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Syncs a directory, so that the renames in it survive a crash (best effort: not every platform can).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn now_rfc3339() -> String {
    let now = SystemClock.now_secs();
    format!("{}Z", duet_core::msglog::format_local(now, duet_core::msglog::UtcOffset::UTC).replacen(' ', "T", 1))
}

/// A size in bytes as people read it: 512 B, 12.3 KiB, 4.5 MiB, 1.2 GiB.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::{Manifest, blob_path, human};

    #[test]
    fn a_manifest_reads_back_and_a_newer_format_is_refused() {
        let m = Manifest {
            format_version: 1,
            duet_version: "0.1.0".into(),
            schema_version: 12,
            created_at: "2026-12-07T10:00:00Z".into(),
            media_included: true,
            accounts: 2,
            messages: 10,
            uploads: 1,
            blobs: 3,
        };
        let text = serde_json::to_vec(&m.to_json()).unwrap();
        assert_eq!(Manifest::parse(&text), Ok(m.clone()));
        let mut newer = m.to_json();
        newer["format_version"] = 2.into();
        let err = Manifest::parse(&serde_json::to_vec(&newer).unwrap()).unwrap_err();
        assert!(err.contains("format 2") && err.contains("newer duet"), "{err}");
        assert!(Manifest::parse(br#"{"format": "other"}"#).is_err());
        assert!(Manifest::parse(b"\x00\x01").is_err());
    }

    #[test]
    fn only_blob_keys_become_paths() {
        let root = std::path::Path::new("/m");
        let uuid = "0123456789abcdef0123456789abcdef";
        assert_eq!(blob_path(root, uuid), Some(root.join("01").join(uuid)));
        assert_eq!(blob_path(root, &format!("{uuid}.thumb")), Some(root.join("01").join(format!("{uuid}.thumb"))));
        for bad in ["../../etc/passwd", "", &format!("{uuid}.png"), &format!("{uuid}/x"), &uuid.to_uppercase()] {
            assert_eq!(blob_path(root, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sizes_are_read_in_binary_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(12 * 1024 + 300), "12.3 KiB");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}

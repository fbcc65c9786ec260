//! What the upgrade tests (`upgrade.rs` for `duet.db`, `media_upgrade.rs` for `media.db`) share: finding
//! their numbered fixtures and writing a new one.

use std::path::{Path, PathBuf};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixtures named `<prefix><N>.db`, by `N`.
pub fn numbered(prefix: &str) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?.strip_prefix(prefix)?.strip_suffix(".db")?.parse().ok()?;
            Some((n, p))
        })
        .collect();
    found.sort();
    found
}

/// `VACUUM`s the database at `written` (closed) and copies it to `dest`, the new fixture.
pub fn save(written: &Path, dest: &Path) {
    rusqlite::Connection::open(written).unwrap().execute_batch("VACUUM;").unwrap();
    std::fs::create_dir_all(fixtures()).unwrap();
    std::fs::copy(written, dest).unwrap();
    eprintln!("wrote {} ({} bytes)", dest.display(), std::fs::metadata(dest).unwrap().len());
}

//! Media indexes (`media.db`) written by earlier builds open with today's `SqliteMediaIndex::open` and read
//! back, through [`MediaIndex`], exactly what was stored in them.
//!
//! The index has no schema version: `media_schema.sql` is executed at every open and only ever extended
//! additively. So the fixtures are numbered by generation, not by schema: `tests/fixtures/media-v<N>.db` is
//! a small index holding what [`write`] stores: an image with its own large rendition and thumbnail,
//! an image whose large rendition is the original's blob, a file, a sound and a video, grants of the first
//! image to its uploader and a peer, a file whose uploader was forgotten (owner empty, the peer's grant
//! kept), an upload begun and never recorded, and one abandoned (its blobs doomed). [`expect`] reads it all
//! back, checks who was granted what, and which items and blobs a purge at a given time removes.
//!
//! - `media-v1.db` was written by the index of the first `media_schema.sql` to have a fixture, then
//!   `VACUUM`ed. The fixture of generation [`CURRENT`] is written (or rewritten) by running this test with
//!   `DUET_WRITE_FIXTURE=1`:
//!
//!   ```text
//!   DUET_WRITE_FIXTURE=1 cargo test -p duet-store-sqlite --test media_upgrade
//!   ```
//!
//!   The test fails while `media-v<CURRENT>.db` is missing, and while its tables and indexes differ from
//!   those today's open creates in a fresh index: the change that extends `media_schema.sql` bumps
//!   [`CURRENT`] and adds `media-v<CURRENT>.db` beside the others (writing refuses to overwrite a fixture
//!   of another schema). What [`write`] then adds is checked only in the fixtures that hold it.
//!
//! Older fixtures are never rewritten: they stand for what older builds left on disk, which every later
//! build must open. When a change alters how the data reads back, [`expect`] changes, not a fixture.

mod common;

use common::fixtures;

use std::path::Path;

use duet_core::media::{ImageMeta, MediaIndex, MediaItem, MediaKind, Rendition, RenditionKind, is_uuid};
use duet_store_sqlite::SqliteMediaIndex;

/// The generation of the newest fixture: the one `DUET_WRITE_FIXTURE=1` writes.
const CURRENT: usize = 1;
/// Every time in the fixture is this second or shortly after.
const T: i64 = 1_700_000_000;

/// A JPEG with a large rendition and a thumbnail of its own; granted to alice and bob at T+100.
const PHOTO: &str = "3f9a0c7e5b1d4a2f8e6c0b9d7a5f3e1c";
/// A PNG small enough that its large rendition is the original's blob.
const STICKER: &str = "7c2e9b4a1f6d3c8e0a5b7d9f2e4c6a8b";
const REPORT: &str = "a04b8d2f6e1c9a7b3d5f0e8c2a6b4d9f";
const VOICE: &str = "c5e1a9f3b7d2c6e0a4f8b1d5c9e3a7f2";
const CLIP: &str = "e8d6c4b2a0f9e7d5c3b1a9f8e6d4c2b0";
/// Uploaded by dave, granted to dave and carol, then dave was forgotten.
const NOTES: &str = "1b3d5f7a9c2e4a6c8e0b2d4f6a8c0e2d";
/// Begun at T+40 and never recorded.
const PENDING: &str = "5a7c9e1b3d5f7a9c2e4a6c8e0b2d4f61";
/// Begun at T+45, then abandoned.
const DROPPED: &str = "9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b";
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const NONE: [&str; 0] = [];

fn rendition(kind: RenditionKind, width: u32, height: u32, size: u64, blob: String) -> Rendition {
    Rendition { kind, width, height, size, blob }
}

fn item(uuid: &str, kind: MediaKind, owner: &str, size: u64, file_name: &str, created: i64) -> MediaItem {
    MediaItem {
        uuid: uuid.to_owned(),
        kind,
        owner: owner.to_owned(),
        size,
        file_name: file_name.to_owned(),
        image: None,
        created,
        last_used: created,
    }
}

/// What every fixture holds, stored through [`MediaIndex`].
async fn write(index: &SqliteMediaIndex) {
    for uuid in [PHOTO, STICKER, REPORT, VOICE, CLIP, NOTES, PENDING, DROPPED] {
        assert!(is_uuid(uuid), "{uuid}");
    }
    let mut photo = item(PHOTO, MediaKind::Image, "alice", 245_760, "beach.jpg", T + 10);
    photo.image = Some(ImageMeta {
        format: 1,
        renditions: vec![
            rendition(RenditionKind::Original, 1500, 1000, 245_760, PHOTO.to_owned()),
            rendition(RenditionKind::Large, 720, 480, 61_440, format!("{PHOTO}.large")),
            rendition(RenditionKind::Thumb, 198, 132, 9_216, format!("{PHOTO}.thumb")),
        ],
    });
    let mut sticker = item(STICKER, MediaKind::Image, "bob", 52_113, "", T + 15);
    sticker.image = Some(ImageMeta {
        format: 3,
        renditions: vec![
            rendition(RenditionKind::Original, 400, 300, 52_113, STICKER.to_owned()),
            rendition(RenditionKind::Large, 400, 300, 52_113, STICKER.to_owned()),
            rendition(RenditionKind::Thumb, 198, 149, 8_004, format!("{STICKER}.thumb")),
        ],
    });
    let uploads = [
        (T + 10, photo),
        (T + 15, sticker),
        (T + 20, item(REPORT, MediaKind::File, "bob", 1_048_576, "Q3 report (final).pdf", T + 20)),
        (T + 30, item(VOICE, MediaKind::Sound, "carol", 5_120, "", T + 30)),
        (T + 35, item(CLIP, MediaKind::Video, "alice", 3_145_728, "clip.mp4", T + 35)),
        (T + 50, item(NOTES, MediaKind::File, "dave", 77, "笔记.txt", T + 50)),
    ];
    for (started, upload) in uploads {
        index.begin(upload.uuid.clone(), started).await.unwrap();
        index.insert(upload).await.unwrap();
    }
    index.begin(PENDING.into(), T + 40).await.unwrap();
    index.begin(DROPPED.into(), T + 45).await.unwrap();
    index.abandon(DROPPED.into()).await.unwrap();

    let granted = index.grant(vec![PHOTO.into()], vec!["alice".into(), "bob".into()], T + 100).await.unwrap();
    assert_eq!(granted, [PHOTO]);
    let granted = index.grant(vec![NOTES.into()], vec!["dave".into(), "carol".into()], T + 120).await.unwrap();
    assert_eq!(granted, [NOTES]);
    index.forget_users(vec!["dave".into()]).await.unwrap();
}

/// An item as `kind by owner size "name" @T+created used T+last_used`, then each rendition as
/// `kind WxH size blob`; `-` for none.
fn describe(item: &Option<MediaItem>) -> String {
    let Some(i) = item else { return "-".into() };
    let mut s = format!(
        "{} by {:?} {} B {:?} @T+{} used T+{}",
        i.kind.as_str(),
        i.owner,
        i.size,
        i.file_name,
        i.created - T,
        i.last_used - T
    );
    if let Some(image) = &i.image {
        s += &format!(" format {}:", image.format);
        for r in &image.renditions {
            s += &format!(" {:?} {}x{} {} B {};", r.kind, r.width, r.height, r.size, r.blob);
        }
    }
    s
}

async fn items(index: &SqliteMediaIndex, uuids: &[&str]) -> Vec<String> {
    let got = index.get(uuids.iter().map(|&u| u.to_owned()).collect()).await.unwrap();
    assert_eq!(got.len(), uuids.len());
    for (uuid, item) in uuids.iter().zip(&got) {
        assert!(item.as_ref().is_none_or(|i| i.uuid == *uuid), "{uuid}");
    }
    got.iter().map(describe).collect()
}

/// Which of [`USERS`] were granted `uuid`.
async fn granted(index: &SqliteMediaIndex, uuid: &str) -> Vec<&'static str> {
    let mut users = Vec::new();
    for user in USERS {
        if index.granted(uuid.into(), user.into()).await.unwrap() {
            users.push(user);
        }
    }
    users
}

async fn doomed(index: &SqliteMediaIndex) -> Vec<String> {
    let mut keys = index.doomed(1000).await.unwrap();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|&k| k.to_owned()).collect();
    keys.sort();
    keys
}

/// Reads back everything [`write`] stored, then purges and records more: the index goes on.
async fn expect(index: &SqliteMediaIndex, fixture: &str) {
    let all = [PHOTO, STICKER, REPORT, VOICE, CLIP, NOTES, PENDING, DROPPED, "0123456789abcdef0123456789abcdef"];
    assert_eq!(
        items(index, &all).await,
        [
            format!(
                "image by \"alice\" 245760 B \"beach.jpg\" @T+10 used T+100 format 1: Original 1500x1000 245760 B \
                 {PHOTO}; Large 720x480 61440 B {PHOTO}.large; Thumb 198x132 9216 B {PHOTO}.thumb;"
            ),
            format!(
                "image by \"bob\" 52113 B \"\" @T+15 used T+15 format 3: Original 400x300 52113 B {STICKER}; \
                 Large 400x300 52113 B {STICKER}; Thumb 198x149 8004 B {STICKER}.thumb;"
            ),
            "file by \"bob\" 1048576 B \"Q3 report (final).pdf\" @T+20 used T+20".to_owned(),
            "sound by \"carol\" 5120 B \"\" @T+30 used T+30".to_owned(),
            "video by \"alice\" 3145728 B \"clip.mp4\" @T+35 used T+35".to_owned(),
            "file by \"\" 77 B \"笔记.txt\" @T+50 used T+120".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
        ],
        "{fixture}: begun, abandoned and unknown uploads are no items"
    );

    assert_eq!(granted(index, PHOTO).await, ["alice", "bob"], "{fixture}");
    assert_eq!(granted(index, NOTES).await, ["carol"], "{fixture}: dave's grant went with him");
    for uuid in [STICKER, REPORT, VOICE, CLIP, PENDING] {
        assert_eq!(granted(index, uuid).await, NONE, "{fixture}: {uuid} was granted to nobody");
    }

    assert_eq!(
        doomed(index).await,
        sorted(&[DROPPED, &format!("{DROPPED}.large"), &format!("{DROPPED}.thumb")]),
        "{fixture}: the abandoned upload's possible blobs"
    );

    // A purge of what was last used before T+41 takes the items not granted since, and the upload begun at
    // T+40; the grants moved PHOTO and NOTES past it.
    assert_eq!(index.expire(T + 41, 100).await.unwrap(), 5, "{fixture}: 4 items and 1 begun upload");
    assert_eq!(
        doomed(index).await,
        sorted(&[
            DROPPED,
            &format!("{DROPPED}.large"),
            &format!("{DROPPED}.thumb"),
            STICKER,
            &format!("{STICKER}.thumb"),
            REPORT,
            VOICE,
            CLIP,
            PENDING,
            &format!("{PENDING}.large"),
            &format!("{PENDING}.thumb"),
        ]),
        "{fixture}: each blob once"
    );
    let left = items(index, &[PHOTO, STICKER, REPORT, VOICE, CLIP, NOTES]).await;
    let left: Vec<bool> = left.iter().map(|d| d != "-").collect();
    assert_eq!(left, [true, false, false, false, false, true], "{fixture}");
    assert_eq!(index.expire(T + 41, 100).await.unwrap(), 0, "{fixture}: nothing more before T+41");
    index.forget_doomed(doomed(index).await).await.unwrap();
    assert_eq!(doomed(index).await, NONE, "{fixture}");

    // The index goes on: a new upload, a grant (an expired item left out), a purge between them.
    let new = "4c6e8a0b2d4f6a8c0e2b4d6f8a0c2e4b";
    index.begin(new.into(), T + 200).await.unwrap();
    index.insert(item(new, MediaKind::File, "carol", 10, "new.txt", T + 200)).await.unwrap();
    let granted_now = index.grant(vec![PHOTO.into(), REPORT.into()], vec!["carol".into()], T + 200).await.unwrap();
    assert_eq!(granted_now, [PHOTO], "{fixture}");
    assert_eq!(granted(index, PHOTO).await, ["alice", "bob", "carol"], "{fixture}");
    assert_eq!(index.expire(T + 150, 100).await.unwrap(), 1, "{fixture}: NOTES, last used at T+120");
    assert_eq!(doomed(index).await, [NOTES], "{fixture}");
    assert_eq!(granted(index, NOTES).await, NONE, "{fixture}: its grants went with it");
    assert_eq!(
        items(index, &[PHOTO, NOTES, new]).await[1..],
        ["-".to_owned(), "file by \"carol\" 10 B \"new.txt\" @T+200 used T+200".to_owned()],
        "{fixture}"
    );
}

/// The tables and indexes of the index at `path`, as SQLite keeps them.
fn schema(path: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt =
        conn.prepare("SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY type, name").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// The schema today's open creates.
fn todays_schema() -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("media.db");
    drop(SqliteMediaIndex::open(&path).unwrap());
    schema(&path)
}

/// Writes `media-v<CURRENT>.db` (see the module's doc).
async fn write_fixture() {
    let dest = fixtures().join(format!("media-v{CURRENT}.db"));
    assert!(
        !dest.exists() || schema(&dest) == todays_schema(),
        "{} holds another schema than today's: it is never rewritten; bump CURRENT",
        dest.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("media.db");
    let index = SqliteMediaIndex::open(&path).unwrap();
    write(&index).await;
    drop(index);
    common::save(&path, &dest);
}

#[tokio::test]
async fn every_fixture_opens_and_reads_back_whole() {
    if std::env::var_os("DUET_WRITE_FIXTURE").is_some_and(|v| v == "1") {
        write_fixture().await;
    }
    let found = common::numbered("media-v");
    let generations: Vec<usize> = found.iter().map(|(g, _)| *g).collect();
    assert!(
        generations.contains(&CURRENT),
        "no media fixture of the current generation {CURRENT} (found {generations:?}): write one with \
         DUET_WRITE_FIXTURE=1 cargo test -p duet-store-sqlite --test media_upgrade, and commit it"
    );
    assert_eq!(
        schema(&fixtures().join(format!("media-v{CURRENT}.db"))),
        todays_schema(),
        "media_schema.sql was extended since media-v{CURRENT}.db: bump CURRENT and write media-v{}.db with \
         DUET_WRITE_FIXTURE=1 (the older fixture stays as it is)",
        CURRENT + 1
    );

    for (_, fixture) in found {
        let name = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let size = std::fs::metadata(&fixture).unwrap().len();
        assert!(size < 64 * 1024, "{name} is {size} bytes: keep fixtures small (VACUUM)");
        // Opened in place it would be changed: a copy is.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("media.db");
        std::fs::copy(&fixture, &path).unwrap();
        let index = SqliteMediaIndex::open(&path).unwrap();
        expect(&index, &name).await;
    }
}

/// The expectations hold for an index written and reopened by today's code, so they are proven against
/// live code and not only against the files.
#[tokio::test]
async fn an_index_written_today_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("media.db");
    write(&SqliteMediaIndex::open(&path).unwrap()).await;
    expect(&SqliteMediaIndex::open(&path).unwrap(), "written today").await;
}

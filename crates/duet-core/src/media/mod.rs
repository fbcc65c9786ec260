//! Rich media: the files behind image, sound, file and video elements.
//!
//! The domain owns the rules and nothing of HTTP or image decoding:
//! * which sizes are allowed ([`MediaLimits`], Tencent's 28 MB for images and sound, 100 MB for files
//!   and video);
//! * who may read a file: its uploader, the app admins, and everyone a message referring to it was
//!   exchanged between ([`Media::may_read`], [`Media::attach`]);
//! * when a file goes: once its last use (upload, or the last message sent referring to it) is older than
//!   the roaming retention, which is when the last message referring to it has expired ([`Media::purge`]).
//!
//! Two storage traits hold the state: [`MediaIndex`] the metadata and grants (SQLite by default),
//! [`BlobStore`] the bytes (a local directory by default; object storage can implement it).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::clock::Clock;
use crate::error::StoreError;

/// What an upload is; it decides the size limit and whether the server reads it as an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Sound,
    File,
    Video,
}

impl MediaKind {
    /// A stable name for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Sound => "sound",
            MediaKind::File => "file",
            MediaKind::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<MediaKind> {
        Some(match s {
            "image" => MediaKind::Image,
            "sound" => MediaKind::Sound,
            "file" => MediaKind::File,
            "video" => MediaKind::Video,
            _ => return None,
        })
    }
}

/// The largest upload of each kind, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimits {
    pub image: u64,
    pub sound: u64,
    pub file: u64,
    pub video: u64,
}

impl MediaLimits {
    pub const MB: u64 = 1024 * 1024;

    pub fn of(&self, kind: MediaKind) -> u64 {
        match kind {
            MediaKind::Image => self.image,
            MediaKind::Sound => self.sound,
            MediaKind::File => self.file,
            MediaKind::Video => self.video,
        }
    }
}

impl Default for MediaLimits {
    /// Tencent's limits: images and sound 28 MB, files and video 100 MB.
    fn default() -> MediaLimits {
        MediaLimits { image: 28 * Self::MB, sound: 28 * Self::MB, file: 100 * Self::MB, video: 100 * Self::MB }
    }
}

/// Which rendition of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenditionKind {
    Original,
    /// Longest side at most [`LARGE_SIDE`].
    Large,
    /// Longest side at most [`THUMB_SIDE`].
    Thumb,
}

/// The longest side of the large rendition, in pixels.
pub const LARGE_SIDE: u32 = 720;
/// The longest side of the thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 198;

impl RenditionKind {
    /// The blob key of this rendition of the upload `uuid`.
    pub fn key(self, uuid: &str) -> String {
        match self {
            RenditionKind::Original => uuid.to_owned(),
            RenditionKind::Large => format!("{uuid}.large"),
            RenditionKind::Thumb => format!("{uuid}.thumb"),
        }
    }

    /// The size of this rendition of a `width` x `height` image: the longest side brought down to the
    /// rendition's limit, keeping the aspect ratio (at least 1 px); never enlarged.
    pub fn fit(self, width: u32, height: u32) -> (u32, u32) {
        let side = match self {
            RenditionKind::Original => return (width, height),
            RenditionKind::Large => LARGE_SIDE,
            RenditionKind::Thumb => THUMB_SIDE,
        };
        let longest = width.max(height);
        if longest <= side {
            return (width, height);
        }
        let scale = |d: u32| ((u64::from(d) * u64::from(side) + u64::from(longest) / 2) / u64::from(longest)).max(1);
        (scale(width) as u32, scale(height) as u32)
    }
}

/// One rendition of a stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub kind: RenditionKind,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// The blob holding it: its own, or the original's when the image is already small enough.
    pub blob: String,
}

/// What the server read from an uploaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeta {
    /// Tencent's `ImageFormat`: JPG=1, GIF=2, PNG=3, BMP=4, other=255.
    pub format: u8,
    /// Original, large and thumbnail, in that order.
    pub renditions: Vec<Rendition>,
}

/// A stored upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaItem {
    /// Unguessable: 128 random bits, hex.
    pub uuid: String,
    pub kind: MediaKind,
    /// The uploader.
    pub owner: String,
    /// Bytes as uploaded.
    pub size: u64,
    /// The name given at upload, or empty.
    pub file_name: String,
    /// Images only.
    pub image: Option<ImageMeta>,
    /// Unix seconds of the upload.
    pub created: i64,
    /// Unix seconds of the upload or of the last message sent referring to it, whichever is later.
    pub last_used: i64,
}

impl MediaItem {
    /// Every blob this item stores (renditions sharing the original's are listed once).
    pub fn blobs(&self) -> Vec<String> {
        let mut keys = vec![self.uuid.clone()];
        for r in self.image.iter().flat_map(|i| &i.renditions) {
            if !keys.contains(&r.blob) {
                keys.push(r.blob.clone());
            }
        }
        keys
    }
}

/// Every blob key an upload `uuid` may have written, whether or not it got that far.
pub fn possible_blobs(uuid: &str) -> Vec<String> {
    [RenditionKind::Original, RenditionKind::Large, RenditionKind::Thumb].map(|k| k.key(uuid)).to_vec()
}

/// A fresh upload id: 128 random bits as 32 hex digits.
pub fn new_uuid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Whether `s` could be an upload id (so that it is safe as a file name).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Metadata of uploads and who may read them. Each call is atomic.
///
/// Besides the items, the index keeps two lists that make blob deletion crash-safe: uploads *begun* but
/// not yet recorded (their blobs may exist with no item), and *doomed* blob keys (their item is gone; the
/// blobs are to be deleted, and stay listed until they are).
#[async_trait]
pub trait MediaIndex: Send + Sync + 'static {
    /// Notes that an upload under `uuid` began at `now`. Until [`MediaIndex::insert`] records it, whatever
    /// blobs it wrote belong to no item; [`MediaIndex::expire`] dooms them once `now` is old enough.
    async fn begin(&self, uuid: String, now: i64) -> Result<(), StoreError>;
    /// Records a complete upload (and ends its begun entry).
    async fn insert(&self, item: MediaItem) -> Result<(), StoreError>;
    /// Gives up an upload begun and not recorded: its possible blobs become doomed.
    async fn abandon(&self, uuid: String) -> Result<(), StoreError>;
    /// The items with these ids, in order; `None` for an unknown id.
    async fn get(&self, uuids: Vec<String>) -> Result<Vec<Option<MediaItem>>, StoreError>;
    /// Whether `user` was granted `uuid`.
    async fn granted(&self, uuid: String, user: String) -> Result<bool, StoreError>;
    /// Grants every user every item that still exists, and moves its `last_used` up to `now`; returns
    /// those items' ids (an item expired meanwhile is left out, and nothing is written for it).
    async fn grant(&self, uuids: Vec<String>, users: Vec<String>, now: i64) -> Result<Vec<String>, StoreError>;
    /// In one transaction: forgets up to `limit` items whose `last_used` is before `before` (checked in the
    /// same transaction, so an item a send has just used is kept) and the uploads begun before `before`
    /// and never recorded, and dooms their blobs. Returns how many items and abandoned uploads went.
    async fn expire(&self, before: i64, limit: usize) -> Result<usize, StoreError>;
    /// Up to `limit` doomed blob keys.
    async fn doomed(&self, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Forgets doomed keys whose blobs are deleted.
    async fn forget_doomed(&self, keys: Vec<String>) -> Result<(), StoreError>;
    /// Drops every grant to these users and makes their uploads nobody's (the grants of the people they
    /// exchanged them with stay): a UserID deleted and registered again inherits no access.
    async fn forget_users(&self, users: Vec<String>) -> Result<(), StoreError>;
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// More bytes arrived than the limit allows; nothing was kept.
    #[error("more than {0} bytes")]
    TooLarge(u64),
    /// No bytes arrived; nothing was kept.
    #[error("empty")]
    Empty,
    /// Reading the upload failed (the client went away); nothing was kept.
    #[error("reading the upload: {0}")]
    Source(std::io::Error),
    /// The storage failed; the text is for logs.
    #[error("blob storage: {0}")]
    Storage(std::io::Error),
}

/// A blob opened for reading.
pub struct Blob {
    pub size: u64,
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

/// Where the bytes of uploads live. Keys are upload ids, optionally with a `.large`/`.thumb` suffix.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores what `data` yields under `key`, reading at most `limit + 1` bytes: an upload larger than
    /// `limit`, an empty one, or one that fails midway leaves nothing behind. Nothing is visible under
    /// `key` before it is complete. Returns the size.
    async fn put(&self, key: &str, data: &mut (dyn AsyncRead + Send + Unpin), limit: u64) -> Result<u64, BlobError>;
    /// The blob under `key`, or `None`.
    async fn open(&self, key: &str) -> Result<Option<Blob>, BlobError>;
    /// Deletes the blob under `key`; a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// Why a message may not refer to an upload.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The sender may not read the upload it refers to.
    #[error("media {0} is not readable by the sender")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaPurged {
    pub items: usize,
    pub blobs: usize,
}

/// The media service: limits, access rules and expiry over an index and a blob store.
pub struct Media {
    index: Arc<dyn MediaIndex>,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    limits: MediaLimits,
    retention_secs: i64,
}

/// Items deleted per purge round (a purge runs rounds until nothing is left).
const PURGE_BATCH: usize = 256;

impl Media {
    /// `retention_secs` is the roaming retention: a file unused for that long has no message left.
    pub fn new(
        index: Arc<dyn MediaIndex>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        limits: MediaLimits,
        retention_secs: i64,
    ) -> Media {
        Media { index, blobs, clock, limits, retention_secs }
    }

    pub fn limits(&self) -> MediaLimits {
        self.limits
    }

    pub fn blobs(&self) -> &dyn BlobStore {
        &*self.blobs
    }

    pub fn now_secs(&self) -> i64 {
        self.clock.now_secs()
    }

    /// Notes that an upload under `uuid` begins, before any of its blobs is written: if it is never
    /// recorded (the server stops, the request is dropped), the purge finds and deletes its blobs.
    pub async fn begin(&self, uuid: &str) -> Result<(), StoreError> {
        self.index.begin(uuid.to_owned(), self.clock.now_secs()).await
    }

    /// Records a complete upload (its blobs are stored already).
    pub async fn record(&self, item: MediaItem) -> Result<(), StoreError> {
        self.index.insert(item).await
    }

    /// Deletes whatever an upload begun and not recorded wrote. What cannot be deleted now stays doomed
    /// in the index, and later purges retry.
    pub async fn discard(&self, uuid: &str) -> Result<(), StoreError> {
        self.index.abandon(uuid.to_owned()).await?;
        let mut gone = Vec::new();
        for key in possible_blobs(uuid) {
            match self.blobs.delete(&key).await {
                Ok(()) => gone.push(key),
                Err(e) => tracing::warn!(error = %e, key, "deleting a dropped upload's blob failed; the purge retries"),
            }
        }
        self.index.forget_doomed(gone).await
    }

    pub async fn get(&self, uuid: &str) -> Result<Option<MediaItem>, StoreError> {
        Ok(self.index.get(vec![uuid.to_owned()]).await?.pop().flatten())
    }

    /// Forgets what these users could read (see [`MediaIndex::forget_users`]); called before their
    /// accounts are deleted.
    pub async fn forget_users(&self, users: Vec<String>) -> Result<(), StoreError> {
        self.index.forget_users(users).await
    }

    /// Whether `user` may download `item`: its uploader, an app admin (`admin`), or someone a message
    /// referring to it was exchanged with. The upload of a deleted account has no owner (`""`), which no
    /// caller matches, even one whose UserID slipped through empty.
    pub async fn may_read(&self, item: &MediaItem, user: &str, admin: bool) -> Result<bool, StoreError> {
        if admin || (!item.owner.is_empty() && item.owner == user) {
            return Ok(true);
        }
        self.index.granted(item.uuid.clone(), user.to_owned()).await
    }

    /// A message from `caller` (sending as itself, or an admin sending for someone) to `participants`
    /// refers to `uuids`: the uploads Duet holds are returned (in order, `None` for ids it does not
    /// know, which are left as the client gave them), every participant may read them from now on,
    /// and their last use moves to now. Fails if the caller may not read one of them.
    ///
    /// Grants are written before the message is committed, so a recipient that sees the message can
    /// download at once; callers check first that the send will be accepted (permission, accounts), so
    /// that a refused send grants nothing. An upload that expires between the lookup and the grant is
    /// returned as unknown (`None`): the message keeps what the client said, never a dangling reference.
    pub async fn attach(
        &self,
        caller: &str,
        admin: bool,
        participants: &[String],
        uuids: Vec<String>,
    ) -> Result<Vec<Option<MediaItem>>, AttachError> {
        let wanted: Vec<String> = uuids.iter().filter(|u| is_uuid(u)).cloned().collect();
        if wanted.is_empty() {
            return Ok(uuids.iter().map(|_| None).collect());
        }
        let found = self.index.get(wanted.clone()).await?;
        let mut known = Vec::new();
        for item in found.iter().flatten() {
            if !self.may_read(item, caller, admin).await? {
                return Err(AttachError::Forbidden(item.uuid.clone()));
            }
            known.push(item.uuid.clone());
        }
        let granted = if known.is_empty() {
            Vec::new()
        } else {
            self.index.grant(known, participants.to_vec(), self.clock.now_secs()).await?
        };
        let lookup = |u: &String| found.iter().flatten().find(|i| &i.uuid == u && granted.contains(u)).cloned();
        Ok(uuids.iter().map(lookup).collect())
    }

    /// Deletes uploads whose last use is older than the roaming retention: the last message referring to
    /// each has expired (or none ever did); and the blobs of uploads that were begun as long ago and never
    /// recorded. The index forgets the items and dooms their blobs in one transaction that re-checks the
    /// last use, so a send attaching an upload at that moment either keeps it or finds it gone, never a
    /// dangling one; then the doomed blobs are deleted. A blob that cannot be deleted (or a crash in
    /// between) stays doomed, and the next purge retries.
    pub async fn purge(&self) -> Result<MediaPurged, StoreError> {
        let before = self.clock.now_secs() - self.retention_secs;
        let mut purged = MediaPurged::default();
        loop {
            let n = self.index.expire(before, PURGE_BATCH).await?;
            purged.items += n;
            if n < PURGE_BATCH {
                break;
            }
        }
        purged.blobs = self.delete_doomed().await?;
        Ok(purged)
    }

    /// Deletes the doomed blobs; returns how many went. Stops at the first batch with a failure (logged).
    async fn delete_doomed(&self) -> Result<usize, StoreError> {
        let mut deleted = 0;
        loop {
            let keys = self.index.doomed(PURGE_BATCH).await?;
            if keys.is_empty() {
                return Ok(deleted);
            }
            let mut gone = Vec::with_capacity(keys.len());
            for key in keys.iter() {
                match self.blobs.delete(key).await {
                    Ok(()) => gone.push(key.clone()),
                    Err(e) => {
                        tracing::warn!(error = %e, key, "deleting an expired blob failed; the next purge retries")
                    }
                }
            }
            deleted += gone.len();
            let stuck = gone.len() < keys.len();
            self.index.forget_doomed(gone).await?;
            if stuck {
                return Ok(deleted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renditions_fit_the_longest_side_and_never_enlarge() {
        assert_eq!(RenditionKind::Large.fit(1500, 1000), (720, 480));
        assert_eq!(RenditionKind::Thumb.fit(1500, 1000), (198, 132));
        assert_eq!(RenditionKind::Large.fit(1000, 1500), (480, 720));
        assert_eq!(RenditionKind::Large.fit(640, 480), (640, 480));
        assert_eq!(RenditionKind::Thumb.fit(10_000, 1), (198, 1));
        assert_eq!(RenditionKind::Original.fit(3, 4), (3, 4));
    }

    #[test]
    fn uuids_are_hex_and_distinct() {
        let (a, b) = (new_uuid(), new_uuid());
        assert!(is_uuid(&a) && is_uuid(&b));
        assert_ne!(a, b);
        assert!(!is_uuid("../etc/passwd"));
        assert!(!is_uuid(&a.to_uppercase()));
    }
}

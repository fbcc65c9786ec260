//! The media endpoints (`docs/protocol.md`, "Media"):
//!
//! * `POST /v1/media?type=image|sound|file|video[&filename=…]` with the file as the raw body, streamed
//!   to the [`BlobStore`] (never held in memory) and cut off at the type's limit + 1 byte; images are
//!   read and rendered (the `duet-image` crate) on a blocking thread, within a memory budget.
//! * `GET /v1/media/<UUID>[/large|/thumb]`, streamed from the store to whoever may read it.
//!
//! An upload is noted in the index as begun before its first byte is stored; if it never completes (the
//! request is dropped midway: client gone, stream reset, shutdown), a guard deletes what it wrote, and
//! failing that the purge does. Image rendering is bounded: each rendering reserves what it will hold
//! (from the image's header, before the file is read) from one budget for all ([`image::Budget`]), and
//! takes at least a [`render_permits`]th of it, so at most one per core runs. Download URLs are never
//! stored: [`Urls`] builds them when answering.
//!
//! Both authenticate with a UserSig: `identifier` and `usersig` in the query, as the REST API does, or
//! `Authorization: Basic base64(identifier:usersig)`. [`describe`] is the send-time half (the send pipeline's media grants): it replaces
//! what a message says about a Duet-held upload with what the server measured, and grants the message's
//! two sides access. Failures become HTTP statuses and Tencent codes in one place, [`Failure`].

mod fs;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use duet_core::media::{BlobError, ImageMeta, Media, MediaItem, MediaKind, Rendition, RenditionKind, new_uuid};
use duet_core::{AuthError, Core};
use duet_image as image;
use duet_proto::elem::{ImageInfo, MsgElem};
use duet_proto::media::{MEDIA_PATH, MediaQuery, MediaType, RenditionName, Uploaded};
use duet_proto::rest::response::Reply;
use duet_proto::{ApiError, code};
use futures_util::TryStreamExt;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};
use tokio_util::task::TaskTracker;

pub use self::fs::LocalBlobStore;
use crate::config::{MediaConfig, MediaStore};
use crate::throttle::{Throttle, Throttled};

#[derive(Clone)]
pub(crate) struct MediaState {
    core: Arc<Core>,
    /// Failed logins per address and per account.
    throttle: Arc<Throttle>,
    media: Arc<Media>,
    urls: Urls,
    /// What all renderings together may hold in memory.
    budget: image::Budget,
    /// The budget, in KiB: each rendering holds its charge while its file and pixels are in memory.
    renders: Arc<Semaphore>,
    /// Owns the clean-up of uploads dropped midway.
    tracker: TaskTracker,
}

/// How many images may be rendered at once: the available parallelism (at least 1). Rendering is
/// CPU-bound, so more at once would not finish sooner, only hold more memory. Each rendering takes at
/// least this fraction of the budget.
pub(crate) fn render_permits() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).max(1)
}

/// Opens the blob store: files under `dir`, or the S3 bucket, checked to be reachable (so that a wrong
/// endpoint, bucket or key fails the start, not the first upload). Blocking: run on a blocking thread.
pub(crate) fn open_blobs(
    store: &MediaStore,
    dir: &std::path::Path,
) -> Result<Arc<dyn duet_core::media::BlobStore>, crate::ServerError> {
    match store {
        MediaStore::Local => Ok(Arc::new(LocalBlobStore::open(dir)?)),
        MediaStore::S3(location) => {
            let blobs = duet_blob_s3::S3BlobStore::open(location)?;
            tokio::runtime::Handle::current().block_on(blobs.check())?;
            Ok(Arc::new(blobs))
        }
    }
}

/// The media routes. `tls`: the server serves TLS (download URLs say `https://`). `tracker` owns the
/// clean-up tasks of uploads dropped midway.
pub(crate) fn router(
    core: Arc<Core>,
    throttle: Arc<Throttle>,
    media: Arc<Media>,
    config: &MediaConfig,
    tls: bool,
    tracker: TaskTracker,
) -> Router {
    let budget = image::Budget::new(config.max_image_pixels, config.limits.image);
    let state = MediaState {
        core,
        throttle,
        media,
        urls: Urls::new(config.public_url.as_deref(), tls),
        budget,
        renders: Arc::new(Semaphore::new(kib(budget.total) as usize)),
        tracker,
    };
    Router::new()
        .route(MEDIA_PATH, axum::routing::post(upload).options(preflight))
        .route(&format!("{MEDIA_PATH}/{{uuid}}"), axum::routing::get(download_original).options(preflight))
        .route(
            &format!("{MEDIA_PATH}/{{uuid}}/{{rendition}}"),
            axum::routing::get(download_rendition).options(preflight),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(allow_any_origin))
        .layer(axum::middleware::from_fn(crate::logs::media_span))
        .with_state(state)
}

/// Uploads and downloads are authenticated by the credentials in their query, never by cookies, so a web
/// app served from another origin may call them: every answer allows any origin (CORS).
async fn allow_any_origin(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .insert(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, axum::http::HeaderValue::from_static("*"));
    response
}

/// A browser's CORS preflight: the methods and the headers (`Authorization`, `Content-Type`) an upload
/// or a download sends; cached for a day.
async fn preflight() -> impl axum::response::IntoResponse {
    use axum::http::{HeaderValue, StatusCode, header};
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS")),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type")),
            (header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400")),
        ],
    )
}

/// Why a media request failed; the one place these become an HTTP status and a Tencent code.
#[derive(Debug)]
enum Failure {
    NoCredentials,
    /// The identifier is not a valid UserID (`rest::validate_user_id`), whatever the sig says.
    BadIdentifier(String),
    Auth(AuthError, String, u64),
    /// Too many failed logins from the caller's address or for its account.
    Throttled(Throttled),
    BadRequest(String),
    Forbidden,
    NotFound,
    TooLarge(u64),
    Empty,
    NotAnImage,
    /// Over the pixel cap, the aspect ratio or the rendering budget.
    ImageTooLarge(String),
    /// The client went away or its body broke off.
    Aborted,
    /// The body arrived slower than the minimum rate (`HttpLimits::upload_min_bytes`).
    TooSlow,
    Internal(String),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, err) = match self {
            Failure::NoCredentials => (
                StatusCode::UNAUTHORIZED,
                ApiError::new(code::USERSIG_EMPTY, "identifier and usersig are required (query or Basic auth)"),
            ),
            Failure::BadIdentifier(why) => (
                StatusCode::UNAUTHORIZED,
                ApiError::new(code::USERSIG_IDENTIFIER_MISMATCH, format!("identifier: {why}")),
            ),
            Failure::Auth(e, id, sdkappid) => (StatusCode::UNAUTHORIZED, crate::rest::error::auth(e, &id, sdkappid)),
            Failure::Throttled(t) => (StatusCode::TOO_MANY_REQUESTS, crate::rest::error::throttled(t)),
            Failure::BadRequest(why) => (StatusCode::BAD_REQUEST, ApiError::new(code::BAD_REQUEST, why)),
            Failure::Forbidden => (
                StatusCode::FORBIDDEN,
                ApiError::new(
                    code::MEDIA_AUTH_FAILED,
                    "only the two sides of a conversation and the admins may read this file",
                ),
            ),
            Failure::NotFound => (StatusCode::NOT_FOUND, ApiError::new(code::MEDIA_NOT_FOUND, "no such file")),
            Failure::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::new(code::MEDIA_TOO_LARGE, format!("the file is larger than the limit of {limit} bytes")),
            ),
            Failure::Empty => (StatusCode::BAD_REQUEST, ApiError::new(code::MEDIA_EMPTY, "the file is empty")),
            Failure::NotAnImage => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ApiError::new(code::MEDIA_NOT_AN_IMAGE, "not an image in a supported format (JPEG, PNG, GIF)"),
            ),
            Failure::ImageTooLarge(why) => (StatusCode::PAYLOAD_TOO_LARGE, ApiError::new(code::MEDIA_TOO_LARGE, why)),
            Failure::Aborted => {
                (StatusCode::BAD_REQUEST, ApiError::new(code::MEDIA_UPLOAD_FAILED, "the upload broke off; retry"))
            }
            Failure::TooSlow => (
                StatusCode::REQUEST_TIMEOUT,
                ApiError::new(code::MEDIA_UPLOAD_FAILED, "the upload arrived too slowly and was cut off; retry"),
            ),
            Failure::Internal(detail) => {
                tracing::error!(error = %detail, "media request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ApiError::new(code::MEDIA_UPLOAD_FAILED, "internal server error, please retry"),
                )
            }
        };
        let body = serde_json::to_vec(&Reply::fail(&err, false)).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body)
            .into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Internal(e.to_string())
}

/// Where download URLs point. URLs are never stored: they are built whenever an answer or a message
/// carries them, from `[media] public_url`, or without it from the `Host` of the request being answered
/// (the uploader's own upload, the sender's own send), so a forged `Host` only ever reaches the messages
/// of the client that forged it, over `https://` when the server serves TLS itself.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    public_url: Option<Arc<str>>,
    /// The scheme of URLs built from `Host`: the server's own.
    scheme: &'static str,
}

impl Urls {
    /// `tls`: whether this server serves TLS itself.
    pub(crate) fn new(public_url: Option<&str>, tls: bool) -> Urls {
        let scheme = if tls { "https" } else { "http" };
        Urls { public_url: public_url.map(|u| u.trim_end_matches('/').into()), scheme }
    }

    /// `scheme://authority` of the URLs given in answer to a request with this `Host` (or, over
    /// HTTP/2, this URI authority).
    pub(crate) fn base(&self, headers: &HeaderMap, uri: &Uri) -> String {
        if let Some(base) = &self.public_url {
            return base.to_string();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .filter(|h| is_authority(h))
            .unwrap_or("localhost");
        format!("{}://{host}", self.scheme)
    }
}

/// Whether `h` is a plain `host[:port]` (no path, query, user info or spaces to smuggle into a URL).
fn is_authority(h: &str) -> bool {
    !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// The URL of the original of `uuid`; renditions add `/large` and `/thumb`.
fn file_url(base: &str, uuid: &str) -> String {
    format!("{base}{MEDIA_PATH}/{uuid}")
}

/// Deletes what an upload wrote if the upload's future is dropped before it is recorded or refused:
/// the clean-up runs as a task of the server's tracker (a destructor cannot wait). Disarmed once the
/// upload is recorded, or once a refused upload's clean-up has run in line.
struct Abandoned {
    media: Arc<Media>,
    tracker: TaskTracker,
    uuid: Option<String>,
}

impl Abandoned {
    fn disarm(&mut self) {
        self.uuid = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(uuid) = self.uuid.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime left: the purge deletes the blobs of the begun upload later.
            return;
        };
        let media = self.media.clone();
        tracing::debug!(uuid, "upload dropped midway; deleting what it wrote");
        self.tracker.spawn_on(
            async move {
                if let Err(e) = media.discard(&uuid).await {
                    tracing::warn!(error = %e, uuid, "deleting a dropped upload failed; the purge retries");
                }
            },
            &runtime,
        );
    }
}

/// The caller, authenticated: `(identifier, is_admin)`. A UserSig that does not verify counts as a failed
/// login of `ip` and the identifier (`throttle`).
fn authenticate(s: &MediaState, ip: IpAddr, q: &MediaQuery, headers: &HeaderMap) -> Result<(String, bool), Failure> {
    let core = &s.core;
    let (id, sig) = match (&q.identifier, &q.usersig) {
        (Some(id), Some(sig)) => (id.clone(), sig.clone()),
        _ => basic_auth(headers).ok_or(Failure::NoCredentials)?,
    };
    if id.is_empty() || sig.is_empty() {
        return Err(Failure::NoCredentials);
    }
    // The same UserID rule as the REST API's and the client protocol's, before the sig is looked at.
    duet_proto::rest::validate_user_id(&id).map_err(Failure::BadIdentifier)?;
    s.throttle.login_allowed(ip, &id).map_err(Failure::Throttled)?;
    core.accounts().authenticate(&id, &sig).map_err(|e| {
        if crate::rest::error::is_failed_login(&e) {
            s.throttle.failed_login(ip, &id);
        }
        Failure::Auth(e, id.clone(), core.config().sdkappid)
    })?;
    let admin = core.accounts().is_admin(&id);
    Ok((id, admin))
}

/// `Authorization: Basic base64(identifier:usersig)` (split at the last colon: a UserSig has none).
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, sig) = text.rsplit_once(':')?;
    Some((id.to_owned(), sig.to_owned()))
}

fn kind_of(t: MediaType) -> MediaKind {
    match t {
        MediaType::Image => MediaKind::Image,
        MediaType::Sound => MediaKind::Sound,
        MediaType::File => MediaKind::File,
        MediaType::Video => MediaKind::Video,
    }
}

fn blob_failure(e: BlobError) -> Failure {
    match e {
        BlobError::TooLarge(limit) => Failure::TooLarge(limit),
        BlobError::Empty => Failure::Empty,
        BlobError::Source(e) if crate::http::body::is_too_slow(&e) => Failure::TooSlow,
        BlobError::Source(e) => {
            tracing::debug!(error = %e, "upload body broke off");
            Failure::Aborted
        }
        BlobError::Storage(e) => internal(e),
    }
}

async fn upload(
    State(s): State<MediaState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<MediaQuery>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let (caller, _) = authenticate(&s, peer.ip(), &q, &headers)?;
    let kind = q
        .kind
        .as_deref()
        .and_then(MediaType::from_name)
        .map(kind_of)
        .ok_or_else(|| Failure::BadRequest("type must be image, sound, file or video".into()))?;
    let file_name = q.filename.clone().unwrap_or_default();
    if file_name.len() > 255
        || file_name.contains(['/', '\\'])
        || file_name.chars().any(duet_proto::limits::is_invisible)
    {
        return Err(Failure::BadRequest("filename must be a plain name of at most 255 bytes".into()));
    }
    let limit = s.media.limits().of(kind);
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Failure::TooLarge(limit));
    }
    let base = s.urls.base(&headers, &uri);

    let uuid = new_uuid();
    // Noted before any byte is stored, so that nothing this upload writes can outlive it unnoticed.
    s.media.begin(&uuid).await.map_err(internal)?;
    let mut guard = Abandoned { media: s.media.clone(), tracker: s.tracker.clone(), uuid: Some(uuid.clone()) };
    let stored = store(&s, &uuid, kind, caller.clone(), file_name, body, limit).await;
    let item = match stored {
        Ok(item) => item,
        Err(e) => {
            if let Err(e) = s.media.discard(&uuid).await {
                tracing::warn!(error = %e, uuid, "deleting a refused upload failed; the purge retries");
            }
            guard.disarm();
            return Err(e);
        }
    };
    guard.disarm();
    tracing::info!(uuid, user = caller, kind = kind.as_str(), size = item.size, "media uploaded");
    let reply = Uploaded {
        uuid: item.uuid.clone(),
        url: file_url(&base, &item.uuid),
        size: item.size,
        file_name: item.file_name.clone(),
        image_format: item.image.as_ref().map(|i| u64::from(i.format)),
        image_info_array: item.image.as_ref().map(|_| image_infos(&base, &item)),
    };
    let body = serde_json::to_vec(&Reply::ok(reply, false)).map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))], body).into_response())
}

/// Stores the body under `uuid`, renders an image, and records the upload.
async fn store(
    s: &MediaState,
    uuid: &str,
    kind: MediaKind,
    owner: String,
    file_name: String,
    body: Body,
    limit: u64,
) -> Result<MediaItem, Failure> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut reader = StreamReader::new(stream);
    let size = s.media.blobs().put(uuid, &mut reader, limit).await.map_err(blob_failure)?;
    metrics::counter!("duet_media_bytes_total", "direction" => "in").increment(size);
    let image = if kind == MediaKind::Image { Some(render(s, uuid, size).await?) } else { None };
    let now = s.media.now_secs();
    let item = MediaItem { uuid: uuid.to_owned(), kind, owner, size, file_name, image, created: now, last_used: now };
    s.media.record(item.clone()).await.map_err(internal)?;
    Ok(item)
}

/// Bytes in KiB, rounded up, at most `u32::MAX` (the semaphore's unit).
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

fn image_failure(e: image::ImageError) -> Failure {
    match e {
        image::ImageError::NotAnImage => Failure::NotAnImage,
        e @ (image::ImageError::TooManyPixels { .. }
        | image::ImageError::TooExtreme { .. }
        | image::ImageError::OverBudget { .. }
        | image::ImageError::DecoderLimit) => Failure::ImageTooLarge(e.to_string()),
    }
}

/// Reads the stored original of `uuid` as an image and stores its renditions.
async fn render(s: &MediaState, uuid: &str, size: u64) -> Result<ImageMeta, Failure> {
    let blobs = s.media.blobs();
    let open =
        || async { blobs.open(uuid).await.map_err(blob_failure)?.ok_or_else(|| internal("stored upload vanished")) };
    // The header first, streamed from the file: what rendering will hold is known before the file is read.
    let reader = SyncIoBridge::new(open().await?.reader);
    let max_pixels = s.budget.max_pixels;
    let header = tokio::task::spawn_blocking(move || image::probe(reader, max_pixels))
        .await
        .map_err(internal)?
        .map_err(image_failure)?;
    let charge = s.budget.charge(&header, size).map_err(image_failure)?;
    // The memory bound: the file is read and decoded only once its charge (at least a core's share of the
    // budget) is reserved, and the permit goes with the work to the blocking thread, so that it is held
    // until the memory is freed even if this future is dropped meanwhile.
    let share = s.budget.total / render_permits() as u64;
    let permit = s.renders.clone().acquire_many_owned(kib(charge.max(share))).await.map_err(internal)?;
    let mut blob = open().await?;
    // Decoding needs the whole file anyway.
    let mut bytes = Vec::with_capacity(blob.size as usize);
    blob.reader.read_to_end(&mut bytes).await.map_err(internal)?;
    let processed = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        image::process(&bytes, &header)
    })
    .await
    .map_err(internal)?
    .map_err(image_failure)?;
    let mut renditions = vec![Rendition {
        kind: RenditionKind::Original,
        width: processed.width,
        height: processed.height,
        size,
        blob: uuid.to_owned(),
    }];
    for r in processed.renditions {
        let (blob, rsize) = match r.bytes {
            None => (uuid.to_owned(), size),
            Some(bytes) => {
                let key = r.kind.key(uuid);
                let n = blobs.put(&key, &mut bytes.as_slice(), u64::MAX).await.map_err(blob_failure)?;
                (key, n)
            }
        };
        renditions.push(Rendition { kind: r.kind, width: r.width, height: r.height, size: rsize, blob });
    }
    Ok(ImageMeta { format: processed.format, renditions })
}

/// The `ImageInfoArray` of a stored image: Type 1 original, 2 large, 3 thumbnail.
fn image_infos(base: &str, item: &MediaItem) -> Vec<ImageInfo> {
    let url = file_url(base, &item.uuid);
    let Some(image) = &item.image else { return Vec::new() };
    image
        .renditions
        .iter()
        .map(|r| {
            let (kind, suffix) = match r.kind {
                RenditionKind::Original => (1, ""),
                RenditionKind::Large => (2, "/large"),
                RenditionKind::Thumb => (3, "/thumb"),
            };
            ImageInfo {
                kind,
                size: r.size,
                width: u64::from(r.width),
                height: u64::from(r.height),
                url: format!("{url}{suffix}"),
            }
        })
        .collect()
}

async fn download_original(
    State(s): State<MediaState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(uuid): Path<String>,
    Query(q): Query<MediaQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    download(s, peer.ip(), uuid, RenditionName::Original, q, headers).await
}

async fn download_rendition(
    State(s): State<MediaState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((uuid, rendition)): Path<(String, String)>,
    Query(q): Query<MediaQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let rendition = RenditionName::from_segment(&rendition).ok_or(Failure::NotFound)?;
    download(s, peer.ip(), uuid, rendition, q, headers).await
}

async fn download(
    s: MediaState,
    ip: IpAddr,
    uuid: String,
    rendition: RenditionName,
    q: MediaQuery,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let (caller, admin) = authenticate(&s, ip, &q, &headers)?;
    if !duet_core::media::is_uuid(&uuid) {
        return Err(Failure::NotFound);
    }
    let item = s.media.get(&uuid).await.map_err(internal)?.ok_or(Failure::NotFound)?;
    if !s.media.may_read(&item, &caller, admin).await.map_err(internal)? {
        tracing::debug!(uuid, user = caller, "media download refused");
        return Err(Failure::Forbidden);
    }
    let (key, mime, inline) = match (&item.image, rendition) {
        (Some(image), _) => {
            let kind = match rendition {
                RenditionName::Original => RenditionKind::Original,
                RenditionName::Large => RenditionKind::Large,
                RenditionName::Thumb => RenditionKind::Thumb,
            };
            let r = image.renditions.iter().find(|r| r.kind == kind).ok_or(Failure::NotFound)?;
            let mime =
                if r.blob == item.uuid { image::mime(image.format) } else { image::rendition_mime(image.format) };
            (r.blob.clone(), mime, true)
        }
        (None, RenditionName::Original) => (item.uuid.clone(), mime_of_name(&item.file_name), false),
        (None, _) => return Err(Failure::NotFound),
    };
    let blob = s.media.blobs().open(&key).await.map_err(blob_failure)?.ok_or(Failure::NotFound)?;
    // Counted as the answer starts: a client that goes away early is counted whole.
    metrics::counter!("duet_media_bytes_total", "direction" => "out").increment(blob.size);
    let mut response = Response::new(Body::from_stream(ReaderStream::with_capacity(blob.reader, 64 * 1024)));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_DISPOSITION, disposition(inline, &item.file_name));
    Ok(response)
}

/// `Content-Disposition`: `inline` for images (their type was read from their bytes), `attachment` with
/// the upload's name for everything else, so that a browser never renders an uploaded file as a page.
fn disposition(inline: bool, file_name: &str) -> HeaderValue {
    if inline {
        return HeaderValue::from_static("inline");
    }
    if file_name.is_empty() {
        return HeaderValue::from_static("attachment");
    }
    // RFC 6266: a plain-ASCII `filename` for old clients, the exact name in `filename*` (RFC 8187).
    let ascii: String = file_name
        .chars()
        .map(|c| if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A MIME type from a file name's extension, for the common media types. Never an image type: only
/// uploads read as images (their format detected from their bytes) are served as images.
fn mime_of_name(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "m4a" | "aac" => "audio/aac",
        "amr" => "audio/amr",
        "ogg" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" => "text/plain; charset=utf-8",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// The upload ids `elems` name, in order (`UUID`, or `VideoUUID` then `ThumbUUID`), for the send
/// pipeline's media grants; empty when none looks like an id Duet gives (an app migrating with external
/// URLs), so that such a send reads nothing.
pub(crate) fn uploads(elems: &[MsgElem]) -> Vec<String> {
    let mut uuids = Vec::new();
    for e in elems {
        match e {
            MsgElem::Image(i) => uuids.push(i.uuid.clone()),
            MsgElem::Sound(s) => uuids.push(s.uuid.clone()),
            MsgElem::File(f) => uuids.push(f.uuid.clone()),
            MsgElem::Video(v) => {
                uuids.push(v.video_uuid.clone());
                uuids.push(v.thumb_uuid.clone());
            }
            _ => {}
        }
    }
    if !uuids.iter().any(|u| duet_core::media::is_uuid(u)) {
        uuids.clear();
    }
    uuids
}

/// Replaces what the sender said about each upload Duet holds (URL, size, image format and renditions)
/// with what the server measured, URLs starting with `base`; `items` has one entry per id of
/// [`uploads`] (`None`: not held, kept as sent). Returns whether anything changed.
pub(crate) fn describe(base: &str, elems: &mut [MsgElem], items: Vec<Option<MediaItem>>) -> bool {
    let mut items = items.into_iter();
    let mut changed = false;
    for e in elems.iter_mut() {
        match e {
            MsgElem::Image(i) => {
                if let Some(item) = items.next().flatten().filter(|it| it.image.is_some()) {
                    i.image_format = item.image.as_ref().map_or(255, |m| u64::from(m.format));
                    i.image_info_array = image_infos(base, &item);
                    changed = true;
                }
            }
            MsgElem::Sound(s) => {
                if let Some(item) = items.next().flatten() {
                    s.url = file_url(base, &item.uuid);
                    s.size = item.size;
                    changed = true;
                }
            }
            MsgElem::File(f) => {
                if let Some(item) = items.next().flatten() {
                    f.url = file_url(base, &item.uuid);
                    f.file_size = item.size;
                    if f.file_name.is_empty() {
                        f.file_name = item.file_name;
                    }
                    changed = true;
                }
            }
            MsgElem::Video(v) => {
                if let Some(item) = items.next().flatten() {
                    v.video_url = file_url(base, &item.uuid);
                    v.video_size = item.size;
                    changed = true;
                }
                if let Some(item) = items.next().flatten() {
                    v.thumb_url = file_url(base, &item.uuid);
                    v.thumb_size = item.size;
                    if let Some(image) = &item.image {
                        if let Some(orig) = image.renditions.first() {
                            v.thumb_width = u64::from(orig.width);
                            v.thumb_height = u64::from(orig.height);
                        }
                        v.thumb_format = match image.format {
                            1 => "JPG",
                            2 => "GIF",
                            3 => "PNG",
                            4 => "BMP",
                            _ => "",
                        }
                        .to_owned();
                    }
                    changed = true;
                }
            }
            _ => {}
        }
    }
    changed
}

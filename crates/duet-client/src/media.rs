//! Rich media: [`Client::create_image_message`] and its siblings upload a file to the server's
//! `/v1/media` (streamed from disk, never read whole into memory, with a progress callback) and return
//! the element to pass to [`Client::send_message`]; [`Client::download`] fetches a file to disk, and so
//! does [`download`] without a `Client` (no WebSocket, no login).
//!
//! Uploads and downloads are plain HTTP beside the WebSocket, authenticated with the client's UserSig
//! (`Authorization: Basic`); they work whether or not the connection is up. The server measures images
//! itself (format, width, height, the 720 px and 198 px renditions), so the element returned for an
//! image carries the server's `ImageInfoArray`.

use std::path::Path;
use std::sync::Arc;

use duet_proto::elem::{FileElem, ImageElem, MsgElem, SoundElem, VideoFileElem};
use duet_proto::media::{MEDIA_PATH, MediaType, Status, Uploaded};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::{Client, ClientConfig, Error};

/// Tencent's "download from the URL" flag.
const DOWNLOAD_FROM_URL: u64 = 2;
/// Bytes read from disk per chunk of an upload.
const CHUNK: usize = 64 * 1024;

/// Called as a transfer goes: bytes done so far and the total (the file's size; for a download, the
/// server's `Content-Length`, or 0 when unknown).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// What the SDK needs for HTTP calls beside the WebSocket.
#[derive(Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    /// The server's base URL, without a trailing slash.
    pub server: String,
    pub user: String,
    pub usersig: String,
}

impl Http {
    /// `tls`: the client's TLS configuration (`tls`), the WebSocket's too.
    pub fn new(server: &str, user: &str, usersig: &str, tls: &rustls::ClientConfig) -> Result<Http, Error> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls.clone())
            .build()
            .map_err(|e| Error::Config(format!("the http client: {e}")))?;
        Ok(Http {
            client,
            server: server.trim().trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            usersig: usersig.to_owned(),
        })
    }
}

/// A failed transfer, with its causes (reqwest's own text leaves out why a connection failed, e.g. an
/// untrusted certificate).
fn http_error(e: reqwest::Error) -> Error {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    Error::Connect(text)
}

/// The server's refusal, from a media answer's body.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> Error {
    match serde_json::from_slice::<Status>(body) {
        Ok(s) if s.error_code != 0 => Error::Server { code: s.error_code, info: s.error_info },
        _ => Error::Protocol(format!("media request failed with HTTP {status}")),
    }
}

impl Client {
    fn http(&self) -> &Http {
        &self.inner.http
    }

    /// Uploads the file at `path` as `kind`, streaming it from disk; `progress` sees bytes sent and the
    /// file's size. Fails with the server's code: 7005 too large, 7006 empty, 6031 not an image.
    pub async fn upload(
        &self,
        kind: MediaType,
        path: impl AsRef<Path>,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<Uploaded, Error> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path).await?;
        let total = file.metadata().await?.len();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let http = self.http();
        let progress: Progress = Arc::new(progress);
        progress(0, total);
        let mut sent = 0u64;
        let report = progress.clone();
        let body = ReaderStream::with_capacity(file, CHUNK).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                report(sent, total);
            }
            chunk
        });
        let url = format!("{}{MEDIA_PATH}", http.server);
        let resp = http
            .client
            .post(url)
            .query(&[("type", kind.name()), ("filename", name.as_str())])
            .basic_auth(&http.user, Some(&http.usersig))
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(http_error)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(http_error)?;
        if !status.is_success() {
            return Err(refusal(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol(format!("unexpected upload answer: {e}")))
    }

    /// Uploads an image (at most 28 MB by default) and returns its `TIMImageElem`, with the format,
    /// size and renditions the server measured. Like Tencent's `createImageMessage`.
    pub async fn create_image_message(
        &self,
        path: impl AsRef<Path>,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<MsgElem, Error> {
        let up = self.upload(MediaType::Image, path, progress).await?;
        Ok(MsgElem::Image(ImageElem {
            uuid: up.uuid,
            image_format: up.image_format.unwrap_or(255),
            image_info_array: up.image_info_array.unwrap_or_default(),
        }))
    }

    /// Uploads a voice clip of `seconds` (at most 28 MB by default) and returns its `TIMSoundElem`.
    pub async fn create_sound_message(
        &self,
        path: impl AsRef<Path>,
        seconds: u64,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<MsgElem, Error> {
        let up = self.upload(MediaType::Sound, path, progress).await?;
        Ok(MsgElem::Sound(SoundElem {
            url: up.url,
            uuid: up.uuid,
            size: up.size,
            second: seconds,
            download_flag: DOWNLOAD_FROM_URL,
        }))
    }

    /// Uploads a file (at most 100 MB by default) and returns its `TIMFileElem`, named as on disk.
    pub async fn create_file_message(
        &self,
        path: impl AsRef<Path>,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<MsgElem, Error> {
        let up = self.upload(MediaType::File, path, progress).await?;
        Ok(MsgElem::File(FileElem {
            url: up.url,
            uuid: up.uuid,
            file_size: up.size,
            file_name: up.file_name,
            download_flag: DOWNLOAD_FROM_URL,
        }))
    }

    /// Uploads a video of `seconds` (at most 100 MB by default) and, when given, its snapshot image,
    /// and returns the `TIMVideoFileElem`. `progress` follows the video's upload.
    pub async fn create_video_message(
        &self,
        path: impl AsRef<Path>,
        seconds: u64,
        thumb: Option<&Path>,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<MsgElem, Error> {
        let path = path.as_ref();
        let format = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let up = self.upload(MediaType::Video, path, progress).await?;
        let mut elem = VideoFileElem {
            video_url: up.url,
            video_uuid: up.uuid,
            video_size: up.size,
            video_second: seconds,
            video_format: format,
            video_download_flag: DOWNLOAD_FROM_URL,
            thumb_url: String::new(),
            thumb_uuid: String::new(),
            thumb_size: 0,
            thumb_width: 0,
            thumb_height: 0,
            thumb_format: String::new(),
            thumb_download_flag: DOWNLOAD_FROM_URL,
        };
        if let Some(thumb) = thumb {
            let t = self.upload(MediaType::Image, thumb, |_, _| {}).await?;
            let original = t.image_info_array.as_ref().and_then(|infos| infos.iter().find(|i| i.kind == 1));
            elem.thumb_url = t.url.clone();
            elem.thumb_uuid = t.uuid.clone();
            elem.thumb_size = t.size;
            elem.thumb_width = original.map_or(0, |i| i.width);
            elem.thumb_height = original.map_or(0, |i| i.height);
            elem.thumb_format = match t.image_format {
                Some(1) => "JPG",
                Some(2) => "GIF",
                Some(3) => "PNG",
                Some(4) => "BMP",
                _ => "",
            }
            .to_owned();
        }
        Ok(MsgElem::Video(elem))
    }

    /// Downloads a file to `dest` (replacing it) and returns its size. `what` is a URL from a message
    /// element, or an upload's `UUID` (optionally with `/large` or `/thumb`) on this client's server.
    /// The file is written to `dest` with a `.part` suffix first and renamed when complete. Fails with
    /// the server's code: 6006 for a file this user may not read, 7004 for one that does not exist.
    pub async fn download(
        &self,
        what: &str,
        dest: impl AsRef<Path>,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<u64, Error> {
        self.http().download(what, dest.as_ref(), progress).await
    }
}

/// [`Client::download`] without a client: one authenticated HTTP request as `config`'s user, with no
/// WebSocket and no login (so it logs no device out, and registers no account).
pub async fn download(
    config: &ClientConfig,
    what: &str,
    dest: impl AsRef<Path>,
    progress: impl Fn(u64, u64) + Send + Sync + 'static,
) -> Result<u64, Error> {
    let tls = crate::tls::client_config(config.extra_ca_pem.as_deref()).await?;
    Http::new(&config.server, &config.user, config.usersig.expose(), &tls)?
        .download(what, dest.as_ref(), progress)
        .await
}

impl Http {
    async fn download(
        &self,
        what: &str,
        dest: &Path,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<u64, Error> {
        let http = self;
        let url = if what.contains("://") {
            what.to_owned()
        } else {
            format!("{}{MEDIA_PATH}/{}", http.server, what.trim_start_matches('/'))
        };
        let mut request = http.client.get(&url);
        // The UserSig goes only to this client's own server, never to a URL elsewhere (an app migrating
        // from Tencent may have messages with external URLs).
        if url.starts_with(&format!("{}/", http.server)) {
            request = request.basic_auth(&http.user, Some(&http.usersig));
        }
        let resp = request.send().await.map_err(http_error)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.map_err(http_error)?;
            return Err(refusal(status, &body));
        }
        let total = resp.content_length().unwrap_or(0);
        let mut part = dest.as_os_str().to_owned();
        part.push(".part");
        let part = std::path::PathBuf::from(part);
        let mut file = tokio::fs::File::create(&part).await?;
        let mut done = 0u64;
        progress(0, total);
        let mut stream = resp.bytes_stream();
        let result: Result<(), Error> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(http_error)?;
                file.write_all(&chunk).await?;
                done += chunk.len() as u64;
                progress(done, total);
            }
            file.flush().await?;
            file.sync_all().await?;
            Ok(())
        }
        .await;
        drop(file);
        match result {
            Ok(()) => {
                tokio::fs::rename(&part, dest).await?;
                Ok(done)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                Err(e)
            }
        }
    }
}

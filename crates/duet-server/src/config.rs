//! Configuration in two stages: [`FileConfig`] is what a TOML file may say (unknown keys refused);
//! the binary merges it with flags and `DUET_*` environment variables into a validated [`Config`].
//! This crate never reads the environment or files for configuration itself.

use std::path::PathBuf;
use std::time::Duration;

use duet_core::CoreConfig;
use duet_core::media::MediaLimits;
use duet_core::push::{PushConfig, Texts};
use duet_core::redact::Secret;
use duet_push::ProvidersConfig;
use duet_store_sqlite::Durability;
use serde::Deserialize;

pub use crate::msglog::MessageLogConfig;
pub use crate::tls::TlsConfig;

/// The default listen address: all interfaces, a port clear of the usual services'.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7080";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./duet-data";
/// The default SDKAppID of a fresh installation.
pub const DEFAULT_SDKAPPID: u64 = 1_400_000_000;
/// The app admin when none is configured (Tencent's console names its first one so too).
pub const DEFAULT_ADMIN: &str = "administrator";

/// What a `--config FILE` may hold. Every key is optional; flags and environment override it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub sdkappid: Option<u64>,
    /// The app's key (`Debug` shows it redacted).
    pub secret_key: Option<Secret>,
    pub admins: Option<Vec<String>>,
    /// `"fsync"` (default) or `"relaxed"`.
    pub durability: Option<DurabilityName>,
    /// Where the durable state is: a `postgres://` URL for several nodes on one PostgreSQL (default: the
    /// embedded store in the data directory).
    pub store: Option<String>,
    /// The bus to the other nodes: a `nats://` URL (default: none, one node).
    pub bus: Option<String>,
    /// Where Prometheus metrics (`/metrics`) and the health checks are served (default: no metrics).
    pub metrics_listen: Option<String>,
    /// Seconds readiness is off before connections are closed at shutdown (default 0).
    pub drain_secs: Option<u32>,
    /// The admin page at `/admin` (default false: 404).
    pub admin_page: Option<bool>,
    /// Where uploads' bytes go: an `s3://bucket/optional/prefix` URL (default: the media directory).
    pub media_store: Option<String>,
    pub offline_retention_days: Option<u32>,
    pub roaming_retention_days: Option<u32>,
    /// Recent contacts kept per user (default 100).
    pub recent_contacts_max: Option<usize>,
    /// How long after sending a sender may recall a message (default 120, Tencent's 2 minutes).
    pub recall_window_secs: Option<u32>,
    /// Which devices may be online together: `"multi"` (default), `"triple"`, `"dual"` or `"single"`.
    pub multi_login: Option<MultiLoginName>,
    /// Devices allowed per platform group (default 1).
    pub instances_per_platform: Option<usize>,
    /// Tencent's "relationship check": only two-way friends may message each other from a client
    /// (default false: anyone may message anyone). Admin sends are never checked.
    pub friends_only: Option<bool>,
    /// What a client send from a blacklisted sender gets: `"silent"` (default, Tencent's: a normal
    /// success, the message dropped) or `"report"` (error 20007).
    pub blacklist_check: Option<BlacklistCheckName>,
    /// Uploaded files (`[media]`).
    pub media: Option<MediaFileConfig>,
    /// Serve TLS with this PEM certificate chain (with `tls_key`; default: plain HTTP).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert` (PKCS#8, RSA or EC).
    pub tls_key: Option<PathBuf>,
    /// The client protocol's deadlines (`[websocket]`).
    pub websocket: Option<WebSocketFileConfig>,
    /// HTTP deadlines and connection caps (`[http]`).
    pub http: Option<HttpFileConfig>,
    /// Sends per user and failed logins (`[rate_limits]`).
    pub rate_limits: Option<RateLimitsFileConfig>,
    /// Offline push (`[push]`, and each provider's `[push.<provider>]`: `docs/push.md`).
    pub push: Option<PushFileConfig>,
    /// The app backend's callbacks (`[callbacks]`: `docs/callbacks.md`).
    pub callbacks: Option<duet_callback::CallbacksConfig>,
    /// The hourly message-log files (`[message_log]`).
    pub message_log: Option<MessageLogFileConfig>,
    /// Demo mode: the chat page at `/demo`, which hands a UserSig to anyone who asks (default: on only
    /// for a server started with no configuration at all).
    pub demo: Option<bool>,
    /// How log lines are written: `"text"` (default) or `"json"` (read by the binary, which sets up
    /// logging).
    pub log_format: Option<LogFormat>,
}

/// The `[message_log]` table: Tencent's hourly message-log download (`open_msg_svc/get_history`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageLogFileConfig {
    /// The clock the hours are read in, a fixed offset from UTC such as `"+08:00"` (default: Beijing
    /// time, `"+08:00"`, as Tencent).
    pub utc_offset: Option<String>,
    /// Days a file is kept after its hour (default 7, as Tencent).
    pub retention_days: Option<u32>,
    /// Seconds a download URL stays valid (default 3600).
    pub url_ttl_secs: Option<u64>,
}

/// The `[push]` table: how pushes are sent, and each provider's section, whose presence turns it on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushFileConfig {
    /// A device away longer than this gets no more pushes (default 7, Tencent's).
    pub stale_after_days: Option<u32>,
    /// A push not sent this long after its message is dropped (default 24).
    pub max_age_hours: Option<u32>,
    /// Pushes in flight at once per provider (default 32).
    pub concurrency: Option<usize>,
    /// Transient failures tried again at most this many times (default 10).
    pub max_attempts: Option<u32>,
    /// The language of devices that name none (default `en`).
    pub default_lang: Option<String>,
    /// Default texts per language (`[push.texts.<lang>]`), over the built-in English and Chinese.
    pub texts: Option<std::collections::HashMap<String, PushTextsFileConfig>>,
    /// Extra PEM root certificates to trust (a private gateway's CA).
    pub ca_file: Option<PathBuf>,
    pub apns: Option<duet_push::apns::ApnsConfig>,
    pub fcm: Option<duet_push::fcm::FcmConfig>,
    pub huawei: Option<duet_push::huawei::HuaweiConfig>,
    pub honor: Option<duet_push::honor::HonorConfig>,
    pub xiaomi: Option<duet_push::xiaomi::XiaomiConfig>,
    pub oppo: Option<duet_push::oppo::OppoConfig>,
    pub vivo: Option<duet_push::vivo::VivoConfig>,
    pub meizu: Option<duet_push::meizu::MeizuConfig>,
    pub webhook: Option<duet_push::webhook::WebhookConfig>,
}

/// `[push.texts.<lang>]`: what a notification says for an element without text of its own; each key
/// optional (English's text where absent).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushTextsFileConfig {
    pub image: Option<String>,
    pub sound: Option<String>,
    pub file: Option<String>,
    pub video: Option<String>,
    pub face: Option<String>,
    pub location: Option<String>,
    pub other: Option<String>,
}

impl PushFileConfig {
    /// The domain's push settings, over `defaults`.
    pub fn apply(&self, push: &mut PushConfig) -> Result<(), String> {
        if let Some(days) = self.stale_after_days {
            push.stale_after_secs = i64::from(days) * 86_400;
        }
        if let Some(hours) = self.max_age_hours {
            push.max_age_secs = i64::from(hours) * 3_600;
        }
        if let Some(n) = self.concurrency {
            if n == 0 {
                return Err("push.concurrency must be at least 1".into());
            }
            push.concurrency = n;
        }
        if let Some(n) = self.max_attempts {
            push.max_attempts = n.max(1);
        }
        if let Some(lang) = &self.default_lang {
            push.languages.default = lang.clone();
        }
        for (lang, t) in self.texts.iter().flatten() {
            let base = push.languages.texts.get(lang).cloned().unwrap_or_else(Texts::english);
            let pick = |v: &Option<String>, d: String| v.clone().unwrap_or(d);
            let texts = Texts {
                image: pick(&t.image, base.image),
                sound: pick(&t.sound, base.sound),
                file: pick(&t.file, base.file),
                video: pick(&t.video, base.video),
                face: pick(&t.face, base.face),
                location: pick(&t.location, base.location),
                other: pick(&t.other, base.other),
            };
            push.languages.texts.insert(lang.clone(), texts);
        }
        Ok(())
    }

    /// The providers' sections.
    pub fn providers(&self) -> ProvidersConfig {
        ProvidersConfig {
            apns: self.apns.clone(),
            fcm: self.fcm.clone(),
            huawei: self.huawei.clone(),
            honor: self.honor.clone(),
            xiaomi: self.xiaomi.clone(),
            oppo: self.oppo.clone(),
            vivo: self.vivo.clone(),
            meizu: self.meizu.clone(),
            webhook: self.webhook.clone(),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// The `[rate_limits]` table ([`RateLimits`] says what each means; 0 turns a limit off).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsFileConfig {
    pub sends_per_sec: Option<u32>,
    pub send_burst: Option<u32>,
    pub failed_logins_per_ip: Option<u32>,
    pub failed_logins_per_account: Option<u32>,
}

impl RateLimits {
    /// The defaults, with what `file` sets.
    pub fn from_file(file: &RateLimitsFileConfig) -> Result<RateLimits, String> {
        let mut limits = RateLimits::default();
        for (value, slot) in [
            (file.sends_per_sec, &mut limits.sends_per_sec),
            (file.send_burst, &mut limits.send_burst),
            (file.failed_logins_per_ip, &mut limits.failed_logins_per_ip),
            (file.failed_logins_per_account, &mut limits.failed_logins_per_account),
        ] {
            if let Some(n) = value {
                *slot = n;
            }
        }
        if limits.sends_per_sec > 0 && limits.send_burst == 0 {
            return Err("rate_limits.send_burst must be at least 1 (0 would refuse every send)".into());
        }
        Ok(limits)
    }
}

/// The `[http]` table: deadlines and connection caps ([`HttpLimits`] says what each means).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFileConfig {
    pub header_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub send_timeout_secs: Option<u64>,
    pub body_timeout_secs: Option<u64>,
    pub upload_min_bytes: Option<u64>,
    pub upload_window_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
}

/// `[websocket]`: the client protocol's deadlines, in seconds.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketFileConfig {
    /// From connecting to the `login` frame (default 10).
    pub login_timeout_secs: Option<u64>,
    /// Between two frames of a logged-in client (default 150).
    pub idle_timeout_secs: Option<u64>,
    /// How long a write may wait for the client to read (default 30).
    pub write_timeout_secs: Option<u64>,
}

impl WsTimeouts {
    /// The defaults, with what `file` sets; each must be at least 1 s.
    pub fn from_file(file: &WebSocketFileConfig) -> Result<WsTimeouts, String> {
        let mut t = WsTimeouts::default();
        for (value, slot, name) in [
            (file.login_timeout_secs, &mut t.login, "login_timeout_secs"),
            (file.idle_timeout_secs, &mut t.idle, "idle_timeout_secs"),
            (file.write_timeout_secs, &mut t.write, "write_timeout_secs"),
        ] {
            match value {
                Some(0) => return Err(format!("websocket.{name} must be at least 1")),
                Some(secs) => *slot = Duration::from_secs(secs.min(86_400)),
                None => {}
            }
        }
        Ok(t)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlacklistCheckName {
    Silent,
    Report,
}

impl From<BlacklistCheckName> for duet_core::relations::BlacklistCheck {
    fn from(b: BlacklistCheckName) -> duet_core::relations::BlacklistCheck {
        use duet_core::relations::BlacklistCheck;
        match b {
            BlacklistCheckName::Silent => BlacklistCheck::Silent,
            BlacklistCheckName::Report => BlacklistCheck::Report,
        }
    }
}

/// The `[media]` table: where uploads go and how large they may be.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaFileConfig {
    /// Where blobs and their index are kept (default `<data>/media`).
    pub dir: Option<PathBuf>,
    /// The base of the URLs handed out, e.g. `https://im.example.com` behind a proxy (default: from the
    /// `Host` of the request being answered, the upload or the send, over http, or https when serving TLS).
    pub public_url: Option<String>,
    /// Largest image upload in bytes (default 28 MiB).
    pub max_image_bytes: Option<u64>,
    /// Largest sound upload in bytes (default 28 MiB).
    pub max_sound_bytes: Option<u64>,
    /// Largest file upload in bytes (default 100 MiB).
    pub max_file_bytes: Option<u64>,
    /// Largest video upload in bytes (default 100 MiB).
    pub max_video_bytes: Option<u64>,
    /// Most pixels an uploaded image may decode to (default 25 million), against decompression bombs and
    /// to bound the memory of rendering (at most 8 bytes a pixel, per image rendered at once).
    pub max_image_pixels: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiLoginName {
    Single,
    Dual,
    Triple,
    Multi,
}

impl From<MultiLoginName> for duet_core::hub::MultiLogin {
    fn from(m: MultiLoginName) -> duet_core::hub::MultiLogin {
        use duet_core::hub::MultiLogin;
        match m {
            MultiLoginName::Single => MultiLogin::Single,
            MultiLoginName::Dual => MultiLogin::Dual,
            MultiLoginName::Triple => MultiLogin::Triple,
            MultiLoginName::Multi => MultiLogin::Multi,
        }
    }
}

/// How log lines are written (`docs/operations.md`, "Logs").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: one line per event, the span's fields before it.
    #[default]
    Text,
    /// For machines: one JSON object per line, with the current span's fields.
    Json,
}

impl LogFormat {
    /// The format named `name` (`text` or `json`), as the flag and the environment variable say it.
    pub fn from_name(name: &str) -> Option<LogFormat> {
        match name {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityName {
    Fsync,
    Relaxed,
}

impl From<DurabilityName> for Durability {
    fn from(d: DurabilityName) -> Durability {
        match d {
            DurabilityName::Fsync => Durability::Fsync,
            DurabilityName::Relaxed => Durability::Relaxed,
        }
    }
}

impl MessageLogFileConfig {
    /// Applies what the table says to `config`; an offset that is not `±HH:MM` is refused.
    pub fn apply(&self, config: &mut MessageLogConfig) -> Result<(), String> {
        if let Some(offset) = &self.utc_offset {
            config.utc_offset = duet_core::msglog::UtcOffset::parse(offset)
                .ok_or_else(|| format!("message_log.utc_offset {offset:?} is not an offset such as \"+08:00\""))?;
        }
        if let Some(days) = self.retention_days {
            if days == 0 {
                return Err("message_log.retention_days must be at least 1".into());
            }
            config.retention = Duration::from_secs(u64::from(days) * 86_400);
        }
        if let Some(secs) = self.url_ttl_secs {
            if secs == 0 {
                return Err("message_log.url_ttl_secs must be at least 1".into());
            }
            config.url_ttl = Duration::from_secs(secs);
        }
        Ok(())
    }
}

impl FileConfig {
    pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
        toml::from_str(text)
    }
}

/// Where the server keeps its durable state.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreLocation {
    /// SQLite files in the data directory (`duet.db`, `media/media.db`): one node.
    #[default]
    Embedded,
    /// A PostgreSQL database (a `postgres://` URL, libpq's parameters allowed), which several nodes share;
    /// the media index is there too.
    Postgres(String),
}

impl StoreLocation {
    /// Reads `--store`: a `postgres://` or `postgresql://` URL, or `embedded` (also `sqlite`).
    pub fn parse(s: &str) -> Result<StoreLocation, String> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreLocation::Postgres(s.to_owned()))
        } else if s == "embedded" || s == "sqlite" {
            Ok(StoreLocation::Embedded)
        } else {
            Err(format!(
                "the store must be a postgres:// URL (postgres://user:password@host:5432/database) or `embedded`, \
                 not {s:?}"
            ))
        }
    }
}

/// The URL's password is not printed (it lands in logs with the configuration).
impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Embedded => f.write_str("Embedded"),
            StoreLocation::Postgres(url) => write!(f, "Postgres({})", redact_password(url)),
        }
    }
}

/// `url` with the password of its user part replaced by `***`.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub core: CoreConfig,
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// Where the durable state is.
    pub store: StoreLocation,
    /// The NATS server(s) the nodes of a cluster talk through (`nats://host:4222`, comma-separated for
    /// several); `None`: this node is alone.
    pub bus: Option<String>,
    /// How often the retention task runs.
    pub purge_interval: Duration,
    pub media: MediaConfig,
    /// `Some`: serve `https://` and `wss://` only; `None` (default): plain HTTP.
    pub tls: Option<TlsConfig>,
    /// The client protocol's deadlines.
    pub ws: WsTimeouts,
    /// HTTP deadlines and connection caps.
    pub http: HttpLimits,
    /// Sends per user and failed logins.
    pub rate_limits: RateLimits,
    /// The push providers to start (none by default: nothing is pushed).
    pub push_providers: ProvidersConfig,
    /// Where the app backend's callbacks go (none by default).
    pub callbacks: Option<duet_callback::CallbacksConfig>,
    /// The hourly message-log files.
    pub message_log: MessageLogConfig,
    /// Demo mode: serve the chat page at `/demo` and a UserSig for any user but the admins at
    /// `/demo/usersig` (default false: everything under `/demo` is 404).
    pub demo: bool,
    /// After a shutdown signal, how long the server keeps serving with readiness off (`/readyz` 503), so
    /// that load balancers stop sending it traffic before its connections are told to go (default 0).
    pub drain_delay: Duration,
    /// The admin page at `/admin`, which shows `duet/status` to whoever has the admin's UserSig (default
    /// false: everything under `/admin` is 404).
    pub admin_page: bool,
}

/// What one user or one address may do in a given time, against floods and guessing
/// (`docs/security.md`, *Floods and guessing*). Each is a sustained rate with a burst above it; 0
/// turns a limit off. The defaults are far above what a person, or an honest app, does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Messages a user may send a second from clients, over all their devices (default 20). Over it a
    /// send is refused with 7008 and its connection is not read until the rate allows one again. REST
    /// sends (the app's own backend) are not limited.
    pub sends_per_sec: u32,
    /// Sends a user may make at once above the rate (default 100: forwarding a selection of messages).
    pub send_burst: u32,
    /// Failed logins (a UserSig that does not verify, on a WebSocket or the REST API) a minute from one
    /// IPv4 address or IPv6 /64, all at once at most (default 60). Over it, logins from the address are
    /// refused with 70050 without being checked, until the rate allows one again.
    pub failed_logins_per_ip: u32,
    /// Failed logins a minute for one account, all at once at most (default 20); the same.
    pub failed_logins_per_account: u32,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits { sends_per_sec: 20, send_burst: 100, failed_logins_per_ip: 60, failed_logins_per_account: 20 }
    }
}

/// HTTP deadlines and connection caps, against clients that hold connections without using them
/// (`docs/security.md`, "HTTP and connections").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's headers must arrive whole within this, counted from the connection's start (after the
    /// TLS handshake, which gets as long) for its first request, and from the first byte of each later
    /// one on HTTP/1.1 (default 10 s).
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long (default 60 s). A WebSocket
    /// is no longer an HTTP request once upgraded: its own limit is [`WsTimeouts::idle`].
    pub idle_timeout: Duration,
    /// A response the client stops reading is cut off, with its connection, after this long without
    /// progress (default 60 s).
    pub send_timeout: Duration,
    /// A REST request's body (at most 1 MiB) must arrive whole within this (default 30 s).
    pub body_timeout: Duration,
    /// An upload's body must bring at least this many bytes in every [`HttpLimits::upload_window`]
    /// (default 64 KiB), or it is cut off and answered 408.
    pub upload_min_bytes: u64,
    /// See [`HttpLimits::upload_min_bytes`] (default 30 s).
    pub upload_window: Duration,
    /// Connections open at once; more are closed as soon as accepted. `None` (default): derived from
    /// the open-file limit at start, [`default_max_connections`].
    pub max_connections: Option<usize>,
    /// Connections open at once from one IPv4 address or IPv6 /64. `None` (default): 1 000, or half of
    /// the total cap if that is less.
    pub max_connections_per_ip: Option<usize>,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            upload_min_bytes: 64 * 1024,
            upload_window: Duration::from_secs(30),
            max_connections: None,
            max_connections_per_ip: None,
        }
    }
}

/// Descriptors kept out of the connection cap for the store, the media index, logs and the runtime.
pub const FD_RESERVE: u64 = 128;

/// The default total connection cap for an open-file limit (`None`: unlimited): 90 % of what the
/// reserve leaves, so that uploads and downloads (a file each) have room too and `accept` never runs
/// out of descriptors. 1 024 gives 806.
pub fn default_max_connections(open_file_limit: Option<u64>) -> usize {
    let limit = open_file_limit.unwrap_or(1 << 20);
    let cap = limit.saturating_sub(FD_RESERVE).saturating_mul(9) / 10;
    usize::try_from(cap).unwrap_or(usize::MAX).max(1)
}

/// The default per-address cap for a total cap: 1 000, or half the total if that is less.
pub fn default_max_connections_per_ip(max_connections: usize) -> usize {
    (max_connections / 2).clamp(1, 1000)
}

/// How long a WebSocket connection may stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsTimeouts {
    /// From the upgrade to the `login` frame (default 10 s).
    pub login: Duration,
    /// Between two frames of a logged-in client (default 150 s; clients ping at least every 60 s).
    pub idle: Duration,
    /// How long a write to a client may wait for it to read (default 30 s): a client that stops reading is
    /// cut off, and resyncs when it comes back.
    pub write: Duration,
}

impl Default for WsTimeouts {
    fn default() -> WsTimeouts {
        WsTimeouts { login: Duration::from_secs(10), idle: Duration::from_secs(150), write: Duration::from_secs(30) }
    }
}

/// Where uploads are kept and what they may be.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Blobs and `media.db`.
    pub dir: PathBuf,
    /// The base of download URLs; `None`: `http://<Host>` (`https://` when serving TLS) of the request being answered (the upload, or
    /// the send putting the URL in a message). Never stored: URLs are built when answering.
    pub public_url: Option<String>,
    pub limits: MediaLimits,
    /// Most pixels an uploaded image may decode to.
    pub max_image_pixels: u64,
    /// Where the blobs are (the index stays with the store).
    pub store: MediaStore,
}

/// Where uploads' bytes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MediaStore {
    /// Files in the media directory: one node.
    #[default]
    Local,
    /// An S3-compatible object store, which several nodes share.
    S3(duet_blob_s3::S3Location),
}

impl MediaStore {
    /// Reads `--media-store`: an `s3://bucket/optional/prefix` URL, configured by the `AWS_*` variables
    /// among `vars` (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...); or `local`.
    pub fn parse(s: &str, vars: impl IntoIterator<Item = (String, String)>) -> Result<MediaStore, String> {
        let s = s.trim();
        if s == "local" {
            return Ok(MediaStore::Local);
        }
        match duet_blob_s3::S3Location::parse(s) {
            Ok(location) => Ok(MediaStore::S3(location.with_vars(vars))),
            Err(_) => {
                Err(format!("the media store must be an s3:// URL (s3://bucket/optional/prefix) or `local`, not {s:?}"))
            }
        }
    }
}

/// The default cap on an image's decoded pixels: 25 million (100 MB as 8-bit RGBA, 200 MB at 16 bits),
/// above any phone camera's photo (a 200-megapixel sensor bins to 12.5 million by default) yet a bound
/// on what one rendering holds in memory.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 25_000_000;

impl Config {
    /// A configuration with Tencent's defaults for the given app identity.
    pub fn new(sdkappid: u64, secret_key: impl Into<String>, data_dir: impl Into<PathBuf>) -> Config {
        let data_dir = data_dir.into();
        Config {
            core: CoreConfig::new(sdkappid, secret_key),
            media: MediaConfig {
                dir: data_dir.join("media"),
                public_url: None,
                limits: MediaLimits::default(),
                max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
                store: MediaStore::Local,
            },
            data_dir,
            durability: Durability::Fsync,
            store: StoreLocation::Embedded,
            bus: None,
            purge_interval: Duration::from_secs(60),
            tls: None,
            ws: WsTimeouts::default(),
            http: HttpLimits::default(),
            rate_limits: RateLimits::default(),
            push_providers: ProvidersConfig::default(),
            callbacks: None,
            message_log: MessageLogConfig::default(),
            demo: false,
            drain_delay: Duration::ZERO,
            admin_page: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_keys_parse_and_unknown_values_are_refused() {
        let c = FileConfig::parse("friends_only = true\nblacklist_check = \"report\"\n").unwrap();
        assert_eq!((c.friends_only, c.blacklist_check), (Some(true), Some(BlacklistCheckName::Report)));
        let c = FileConfig::parse("").unwrap();
        assert_eq!((c.friends_only, c.blacklist_check), (None, None));
        assert!(FileConfig::parse("blacklist_check = \"loud\"").is_err());
        assert!(FileConfig::parse("friends_only = \"yes\"").is_err());
        // Tencent's defaults.
        let core = Config::new(1, "k", "/tmp").core;
        assert!(!core.permissions.friends_only);
        assert_eq!(core.permissions.blacklist, duet_core::relations::BlacklistCheck::Silent);
    }

    #[test]
    fn the_message_log_table_parses_and_bad_values_are_refused() {
        let f = FileConfig::parse("[message_log]\nutc_offset = \"-05:30\"\nretention_days = 3\n").unwrap();
        let mut c = MessageLogConfig::default();
        assert_eq!(c.utc_offset, duet_core::msglog::UtcOffset::BEIJING);
        assert_eq!(c.retention, Duration::from_secs(7 * 86_400));
        f.message_log.unwrap().apply(&mut c).unwrap();
        assert_eq!((c.utc_offset.to_string(), c.retention), ("-05:30".into(), Duration::from_secs(3 * 86_400)));
        for bad in ["utc_offset = \"Asia/Shanghai\"", "retention_days = 0", "url_ttl_secs = 0"] {
            let f = FileConfig::parse(&format!("[message_log]\n{bad}\n")).unwrap();
            assert!(f.message_log.unwrap().apply(&mut c).is_err(), "{bad}");
        }
        assert!(FileConfig::parse("[message_log]\ntimezone = \"+08:00\"\n").is_err());
    }

    #[test]
    fn the_tls_keys_parse_and_plain_http_is_the_default() {
        let f = FileConfig::parse("tls_cert = \"/etc/duet/chain.pem\"\ntls_key = \"/etc/duet/key.pem\"\n").unwrap();
        assert_eq!(f.tls_cert.as_deref(), Some(std::path::Path::new("/etc/duet/chain.pem")));
        assert_eq!(f.tls_key.as_deref(), Some(std::path::Path::new("/etc/duet/key.pem")));
        assert!(Config::new(1, "k", "/data").tls.is_none());
    }

    #[test]
    fn the_media_table_parses_and_unknown_keys_are_refused() {
        let f = FileConfig::parse(
            "[media]\ndir = \"/srv/media\"\npublic_url = \"https://im.example.com\"\nmax_file_bytes = 1000\n",
        )
        .unwrap();
        let media = f.media.unwrap();
        assert_eq!(media.dir.as_deref(), Some(std::path::Path::new("/srv/media")));
        assert_eq!(media.max_file_bytes, Some(1000));
        assert!(FileConfig::parse("[media]\nmax_bytes = 1\n").is_err());
        let c = Config::new(1, "k", "/data");
        assert_eq!(c.media.dir, std::path::Path::new("/data/media"));
        assert_eq!(c.media.limits.image, 28 * 1024 * 1024);
        assert_eq!(c.media.limits.video, 100 * 1024 * 1024);
    }

    #[test]
    fn the_http_table_parses_and_the_caps_follow_the_open_file_limit() {
        let f = FileConfig::parse("[http]\nheader_timeout_secs = 5\nmax_connections_per_ip = 50\n").unwrap();
        let http = f.http.unwrap();
        assert_eq!((http.header_timeout_secs, http.max_connections_per_ip), (Some(5), Some(50)));
        assert!(FileConfig::parse("[http]\ntimeout = 1\n").is_err());
        assert_eq!(Config::new(1, "k", "/data").http, HttpLimits::default());
        assert_eq!(default_max_connections(Some(1024)), 806);
        assert_eq!(default_max_connections(Some(100)), 1);
        assert_eq!(default_max_connections(Some(1_048_576)), 943_603);
        assert_eq!(default_max_connections_per_ip(806), 403);
        assert_eq!(default_max_connections_per_ip(943_603), 1000);
        assert_eq!(default_max_connections_per_ip(1), 1);
    }

    #[test]
    fn rate_limits_default_and_parse_and_a_zero_burst_is_refused() {
        assert_eq!(
            RateLimits::default(),
            RateLimits { sends_per_sec: 20, send_burst: 100, failed_logins_per_ip: 60, failed_logins_per_account: 20 }
        );
        let f = FileConfig::parse("[rate_limits]\nsends_per_sec = 5\nfailed_logins_per_ip = 0\n").unwrap();
        let limits = RateLimits::from_file(&f.rate_limits.unwrap()).unwrap();
        assert_eq!((limits.sends_per_sec, limits.send_burst, limits.failed_logins_per_ip), (5, 100, 0));
        let f = FileConfig::parse("[rate_limits]\nsend_burst = 0\n").unwrap();
        assert!(RateLimits::from_file(&f.rate_limits.unwrap()).is_err());
        let f = FileConfig::parse("[rate_limits]\nsends_per_sec = 0\nsend_burst = 0\n").unwrap();
        assert_eq!(RateLimits::from_file(&f.rate_limits.unwrap()).unwrap().sends_per_sec, 0);
        assert!(FileConfig::parse("[rate_limits]\nsends_per_minute = 5\n").is_err());
    }
}

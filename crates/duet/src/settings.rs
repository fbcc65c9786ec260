//! Resolves the server's settings from flags, `DUET_*` environment variables and a TOML file, in that
//! order of precedence, and generates the app's secret key on first start when none is configured (only
//! `serve` does: `usersig` reads the key `serve` uses, and fails without one). Relative paths in the TOML
//! file are relative to the file's directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use duet_core::redact::Secret;
use duet_server::config::{self, BlacklistCheckName, Config, DurabilityName, FileConfig, LogFormat, TlsConfig};

/// What names the app and its key: what `serve` and `usersig` share.
#[derive(Args, Debug, Clone)]
pub struct KeyArgs {
    /// TOML configuration file (relative paths in it are relative to its directory)
    #[arg(long, env = "DUET_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./duet-data]
    #[arg(long, env = "DUET_DATA")]
    data: Option<PathBuf>,
    /// The app's SDKAppID [default: 1400000000]
    #[arg(long, env = "DUET_SDKAPPID")]
    sdkappid: Option<u64>,
    /// The app's secret key [default: the one `serve` generated into the data directory's secret_key file]
    #[arg(long, env = "DUET_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<Secret>,
}

/// The server's flags.
#[derive(Args, Debug, Clone)]
pub struct AppArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// App admin UserIDs, comma-separated [default: administrator]
    #[arg(long, env = "DUET_ADMINS", value_delimiter = ',')]
    admins: Option<Vec<String>>,
    /// `fsync` (ack after the commit is on disk; default) or `relaxed` (survives a process crash only)
    #[arg(long, env = "DUET_DURABILITY", value_parser = ["fsync", "relaxed"])]
    durability: Option<String>,
    /// Where the durable state is: `postgres://user:password@host:5432/database` for several nodes sharing
    /// one PostgreSQL, or `embedded` (SQLite in the data directory) [default: embedded]
    #[arg(long, env = "DUET_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    /// The NATS server the nodes of a cluster talk through (`nats://host:4222`), with --store postgres://…
    /// [default: none, this node is alone]
    #[arg(long, env = "DUET_BUS", value_name = "URL")]
    bus: Option<String>,
    /// Where uploads' bytes go: `s3://bucket/optional/prefix` for an S3-compatible object store that
    /// several nodes share, reached with the AWS variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`), or `local` [default: local, the
    /// media directory]
    #[arg(long, env = "DUET_MEDIA_STORE", value_name = "URL")]
    media_store: Option<String>,
    /// Only two-way friends may message each other from a client (Tencent's relationship check): 1, 0,
    /// true or false; the flag alone means true [default: false]
    #[arg(long, env = "DUET_FRIENDS_ONLY", value_name = "BOOL", value_parser = parse_bool, num_args = 0..=1,
          default_missing_value = "true")]
    friends_only: Option<bool>,
    /// A blacklisted sender's client send: `silent` (looks sent, dropped; default) or `report` (error 20007)
    #[arg(long, env = "DUET_BLACKLIST_CHECK", value_parser = ["silent", "report"])]
    blacklist_check: Option<String>,
    /// Serve https:// and wss:// with this PEM certificate chain (with --tls-key) [default: plain HTTP]
    #[arg(long, env = "DUET_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, RSA or EC)
    #[arg(long, env = "DUET_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Connections open at once; more are closed when accepted [default: 90% of (the open-file limit -
    /// 128)]
    #[arg(long, env = "DUET_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Connections open at once from one IPv4 address or IPv6 /64 (behind a proxy on the same host, raise
    /// it to --max-connections) [default: 1000, or half of --max-connections if less]
    #[arg(long, env = "DUET_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    max_connections_per_ip: Option<usize>,
    /// Messages a user may send a second from clients, over all their devices; 0 for no limit (REST sends
    /// are not limited) [default: 20, bursts of 100]
    #[arg(long, env = "DUET_SENDS_PER_SEC", value_name = "N")]
    sends_per_sec: Option<u32>,
    /// Where the app backend's callbacks go (`[callbacks] url`; with only this, every callback is on)
    #[arg(long, env = "DUET_CALLBACK_URL", value_name = "URL")]
    callback_url: Option<String>,
    /// Demo mode: serve a chat page at /demo that hands a UserSig for any user but the admins to anyone
    /// who can reach the server: 1, 0, true or false; the flag alone means true [default: on only when
    /// started with no config file and no configured secret key]
    #[arg(long, env = "DUET_DEMO", value_name = "BOOL", value_parser = parse_bool, num_args = 0..=1,
          default_missing_value = "true")]
    demo: Option<bool>,
    /// Demo mode off (the same as --demo=false; wins over --demo and DUET_DEMO)
    #[arg(long)]
    no_demo: bool,
    /// Serve Prometheus metrics at /metrics (and /healthz, /readyz) on this address, e.g. 127.0.0.1:9464
    /// [default: no metrics]
    #[arg(long, env = "DUET_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// At SIGTERM, seconds to keep serving with /readyz answering 503 before closing connections, so that
    /// load balancers stop sending traffic first [default: 0]
    #[arg(long, env = "DUET_DRAIN_SECS", value_name = "SECS")]
    drain_secs: Option<u32>,
    /// The admin page at /admin (the server at a glance, for whoever has the admin's UserSig): 1, 0, true
    /// or false; the flag alone means true [default: false]
    #[arg(long, env = "DUET_ADMIN_PAGE", value_name = "BOOL", value_parser = parse_bool, num_args = 0..=1,
          default_missing_value = "true")]
    admin_page: Option<bool>,
    /// Log lines as `text` or as `json` (an object a line, with the fields of the request or connection
    /// it belongs to); RUST_LOG filters them [default: text]
    #[arg(long, env = "DUET_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

pub struct Settings {
    pub listen: String,
    /// The metrics listener's address (`--metrics-listen`), if any.
    pub metrics_listen: Option<String>,
    /// How `serve` writes its log lines.
    pub log_format: LogFormat,
    /// Demo mode (`config.demo`) was asked for rather than on by default.
    pub demo_asked: bool,

    pub config: Config,
    /// The certificate and key to serve TLS with, read by `serve` only.
    pub tls: Option<TlsFiles>,
}

/// `--tls-cert` and `--tls-key` (or `tls_cert` and `tls_key`): both or neither.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads the certificate chain and key and checks that they make a server identity.
    pub fn load(&self) -> anyhow::Result<TlsConfig> {
        let (cert, key) = (self.cert.display(), self.key.display());
        let chain = std::fs::read(&self.cert).with_context(|| format!("reading the TLS certificate {cert}"))?;
        let private = std::fs::read(&self.key).with_context(|| format!("reading the TLS key {key}"))?;
        TlsConfig::from_pem(&chain, &private).with_context(|| format!("the TLS certificate {cert} and key {key}"))
    }
}

/// The file holding a generated secret key, inside the data directory.
const KEY_FILE: &str = "secret_key";

/// A boolean as flags and environment variables take it: `1`, `0`, `true` or `false`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err("expected 1, 0, true or false".into()),
    }
}

/// The TOML file (its relative paths made relative to its directory), or the empty one.
fn read_file(args: &KeyArgs) -> anyhow::Result<FileConfig> {
    let Some(path) = &args.config else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut file = FileConfig::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let beside = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    };
    if let Some(data) = &mut file.data {
        beside(data);
    }
    if let Some(media_dir) = file.media.as_mut().and_then(|m| m.dir.as_mut()) {
        beside(media_dir);
    }
    for tls_file in [&mut file.tls_cert, &mut file.tls_key].into_iter().flatten() {
        beside(tls_file);
    }
    Ok(file)
}

fn data_dir(args: &KeyArgs, file: &FileConfig) -> PathBuf {
    args.data.clone().or(file.data.clone()).unwrap_or_else(|| config::DEFAULT_DATA_DIR.into())
}

fn sdkappid(args: &KeyArgs, file: &FileConfig) -> u64 {
    args.sdkappid.or(file.sdkappid).unwrap_or(config::DEFAULT_SDKAPPID)
}

/// The configured key: the flag's, the environment's or the file's.
fn configured_key(args: &KeyArgs, file: &FileConfig) -> anyhow::Result<Option<String>> {
    match args.secret_key.as_ref().or(file.secret_key.as_ref()).map(Secret::expose) {
        Some(key) if key.trim().is_empty() => bail!("the secret key must not be empty"),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Where `duet status` finds the server and its admin: the file's `listen` (a wildcard address read as
/// localhost) and first admin, else the defaults.
pub fn status_target(args: &KeyArgs) -> anyhow::Result<(String, String)> {
    let file = read_file(args)?;
    let listen = file.listen.unwrap_or_else(|| config::DEFAULT_LISTEN.into());
    let local = match listen.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]" | "", port)) => format!("127.0.0.1:{port}"),
        _ => listen,
    };
    let admin = file.admins.and_then(|a| a.into_iter().next()).unwrap_or_else(|| config::DEFAULT_ADMIN.into());
    Ok((format!("http://{local}"), admin))
}

/// The SDKAppID and secret key `usersig` signs with: those of the server. Never generates a key: a key
/// made up here would sign UserSigs the server refuses (70009).
pub fn app_key(args: &KeyArgs) -> anyhow::Result<(u64, String)> {
    let file = read_file(args)?;
    let key = match configured_key(args, &file)? {
        Some(key) => key,
        None => {
            let data = data_dir(args, &file);
            match stored_key(&data)? {
                Some(key) => key,
                None => {
                    let path = data.join(KEY_FILE);
                    let shown = std::path::absolute(&path).unwrap_or(path);
                    bail!(
                        "no secret key: {} does not exist; run this where `duet serve` runs, or name the \
                         server's data directory with --data DIR (DUET_DATA) or its key with --secret-key KEY \
                         (DUET_SECRET_KEY)",
                        shown.display()
                    )
                }
            }
        }
    };
    Ok((sdkappid(args, &file), key))
}

/// What `export` reads: the server's data directory and the clock of its message log (`[message_log]`
/// of the TOML file, else Beijing time), as `serve` would resolve them.
pub fn export_source(args: &KeyArgs) -> anyhow::Result<(PathBuf, config::MessageLogConfig)> {
    let file = read_file(args)?;
    let mut message_log = config::MessageLogConfig::default();
    if let Some(m) = &file.message_log {
        m.apply(&mut message_log).map_err(anyhow::Error::msg)?;
    }
    Ok((data_dir(args, &file), message_log))
}

/// Where `serve` keeps its embedded databases, for `backup` and `restore`: the data directory and the
/// media directory (`[media] dir`, else `<data>/media`), and the TOML file's `store` and `media_store`
/// (which flags and environment variables override, as for `serve`).
pub struct StoreFiles {
    pub data: PathBuf,
    pub media_dir: PathBuf,
    pub store: Option<String>,
    pub media_store: Option<String>,
}

pub fn store_files(args: &KeyArgs) -> anyhow::Result<StoreFiles> {
    let file = read_file(args)?;
    let data = data_dir(args, &file);
    // As `Config::new` puts it unless `[media] dir` says otherwise.
    let media_dir = file.media.as_ref().and_then(|m| m.dir.clone()).unwrap_or_else(|| data.join("media"));
    Ok(StoreFiles { data, media_dir, store: file.store, media_store: file.media_store })
}

pub fn resolve(args: &AppArgs, listen: Option<String>) -> anyhow::Result<Settings> {
    let file = read_file(&args.key)?;
    let data = data_dir(&args.key, &file);
    let sdkappid = sdkappid(&args.key, &file);
    let configured = configured_key(&args.key, &file)?;
    let demo_choice = if args.no_demo { Some(false) } else { args.demo.or(file.demo) };
    let demo = demo_on(demo_choice, args.key.config.is_some(), configured.is_some());
    let secret_key = match configured {
        Some(key) => key,
        None => stored_or_new_key(&data)?,
    };
    let mut config = Config::new(sdkappid, secret_key, data);
    config.demo = demo;
    if let Some(admins) = args.admins.clone().or(file.admins.clone()) {
        let admins: Vec<String> = admins.into_iter().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
        if admins.is_empty() {
            bail!("at least one admin is needed");
        }
        if admins.len() > 10 {
            bail!("at most 10 admins are allowed, as in Tencent IM");
        }
        config.core.admins = admins;
    }
    let durability = match args.durability.as_deref() {
        Some("relaxed") => Some(DurabilityName::Relaxed),
        Some(_) => Some(DurabilityName::Fsync),
        None => file.durability,
    };
    if let Some(d) = durability {
        config.durability = d.into();
    }
    if let Some(store) = args.store.as_deref().or(file.store.as_deref()) {
        config.store = config::StoreLocation::parse(store).map_err(anyhow::Error::msg)?;
    }
    if let Some(bus) = args.bus.clone().or(file.bus.clone()).filter(|b| !b.trim().is_empty()) {
        if config.store == config::StoreLocation::Embedded {
            bail!(
                "--bus joins nodes that share one database: it needs --store postgres://… (each node's embedded \
                 store would be its own)"
            );
        }
        config.bus = Some(bus);
    }
    if let Some(days) = file.offline_retention_days {
        config.core.offline_retention_secs = i64::from(days) * 86_400;
    }
    if let Some(n) = file.recent_contacts_max {
        if n == 0 {
            bail!("recent_contacts_max must be at least 1");
        }
        config.core.recent_contacts_max = n;
    }
    if let Some(secs) = file.recall_window_secs {
        config.core.recall_window_secs = i64::from(secs);
    }
    if let Some(mode) = file.multi_login {
        config.core.login_policy.mode = mode.into();
    }
    if let Some(n) = file.instances_per_platform {
        if n == 0 {
            bail!("instances_per_platform must be at least 1");
        }
        config.core.login_policy.instances = n;
    }
    if let Some(on) = args.friends_only.or(file.friends_only) {
        config.core.permissions.friends_only = on;
    }
    let blacklist = match args.blacklist_check.as_deref() {
        Some("report") => Some(BlacklistCheckName::Report),
        Some(_) => Some(BlacklistCheckName::Silent),
        None => file.blacklist_check,
    };
    if let Some(b) = blacklist {
        config.core.permissions.blacklist = b.into();
    }
    if let Some(days) = file.roaming_retention_days {
        config.core.roaming_retention_secs = i64::from(days) * 86_400;
    }
    if let Some(media) = &file.media {
        apply_media(&mut config.media, media)?;
    }
    if let Some(url) = args.media_store.as_deref().or(file.media_store.as_deref()) {
        config.media.store = config::MediaStore::parse(url, std::env::vars()).map_err(anyhow::Error::msg)?;
    }
    if let Some(ws) = &file.websocket {
        config.ws = config::WsTimeouts::from_file(ws).map_err(anyhow::Error::msg)?;
    }
    apply_http(&mut config.http, args, &file.http.clone().unwrap_or_default())?;
    let mut rate_limits = file.rate_limits.clone().unwrap_or_default();
    rate_limits.sends_per_sec = args.sends_per_sec.or(rate_limits.sends_per_sec);
    config.rate_limits = config::RateLimits::from_file(&rate_limits).map_err(anyhow::Error::msg)?;
    let callback_url = args.callback_url.clone().filter(|u| !u.is_empty());
    config.callbacks = match (file.callbacks.clone(), callback_url) {
        (Some(mut c), Some(url)) => {
            c.url = url;
            Some(c)
        }
        (Some(c), None) => Some(c),
        (None, Some(url)) => Some(duet_callback::CallbacksConfig::new(url)),
        (None, None) => None,
    };
    if let Some(message_log) = &file.message_log {
        message_log.apply(&mut config.message_log).map_err(anyhow::Error::msg)?;
    }
    if let Some(push) = &file.push {
        push.apply(&mut config.core.push).map_err(anyhow::Error::msg)?;
        config.push_providers = push.providers();
    }
    let tls = match (args.tls_cert.clone().or(file.tls_cert), args.tls_key.clone().or(file.tls_key)) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => bail!("--tls-cert needs --tls-key (tls_key in the config file): the certificate's key"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert (tls_cert in the config file): the certificate chain"),
    };
    config.admin_page = args.admin_page.or(file.admin_page).unwrap_or(false);
    if let Some(secs) = args.drain_secs.or(file.drain_secs) {
        config.drain_delay = std::time::Duration::from_secs(secs.into());
    }
    let metrics_listen = args.metrics_listen.clone().or(file.metrics_listen.clone()).filter(|a| !a.trim().is_empty());
    let listen = listen.or(file.listen).unwrap_or_else(|| config::DEFAULT_LISTEN.into());
    let log_format = args.log_format.as_deref().and_then(LogFormat::from_name).or(file.log_format).unwrap_or_default();
    Ok(Settings { listen, metrics_listen, log_format, demo_asked: demo_choice.is_some(), config, tls })
}

/// Whether demo mode is on: as asked (`--demo`/`--no-demo`, `DUET_DEMO`, `demo` in the file, in that
/// order), else on only for a server started with no configuration, that is no config file and no
/// configured secret key (a key `serve` generated into the data directory counts as none). Demo mode
/// hands out UserSigs to anyone, so a configured key turns it off unless it is asked for.
pub fn demo_on(asked: Option<bool>, config_file: bool, key_configured: bool) -> bool {
    asked.unwrap_or(!config_file && !key_configured)
}

fn apply_media(config: &mut config::MediaConfig, file: &config::MediaFileConfig) -> anyhow::Result<()> {
    if let Some(dir) = &file.dir {
        config.dir = dir.clone();
    }
    if let Some(url) = &file.public_url {
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("media.public_url must be an http:// or https:// URL");
        }
        config.public_url = Some(url.to_owned());
    }
    let limits = [
        (file.max_image_bytes, &mut config.limits.image),
        (file.max_sound_bytes, &mut config.limits.sound),
        (file.max_file_bytes, &mut config.limits.file),
        (file.max_video_bytes, &mut config.limits.video),
    ];
    for (value, slot) in limits {
        if let Some(n) = value {
            if n == 0 {
                bail!("media size limits must be at least 1 byte");
            }
            *slot = n;
        }
    }
    if let Some(n) = file.max_image_pixels {
        if n == 0 {
            bail!("media.max_image_pixels must be at least 1");
        }
        config.max_image_pixels = n;
    }
    Ok(())
}

/// `[http]` and the connection cap flags.
fn apply_http(limits: &mut config::HttpLimits, args: &AppArgs, file: &config::HttpFileConfig) -> anyhow::Result<()> {
    let timeouts = [
        (file.header_timeout_secs, &mut limits.header_timeout, "http.header_timeout_secs"),
        (file.idle_timeout_secs, &mut limits.idle_timeout, "http.idle_timeout_secs"),
        (file.send_timeout_secs, &mut limits.send_timeout, "http.send_timeout_secs"),
        (file.body_timeout_secs, &mut limits.body_timeout, "http.body_timeout_secs"),
        (file.upload_window_secs, &mut limits.upload_window, "http.upload_window_secs"),
    ];
    for (value, slot, key) in timeouts {
        if let Some(secs) = value {
            if !(1..=86_400).contains(&secs) {
                bail!("{key} must be between 1 and 86400");
            }
            *slot = std::time::Duration::from_secs(secs);
        }
    }
    if let Some(n) = file.upload_min_bytes {
        limits.upload_min_bytes = n;
    }
    let caps = [
        (args.max_connections.or(file.max_connections), &mut limits.max_connections, "max_connections"),
        (
            args.max_connections_per_ip.or(file.max_connections_per_ip),
            &mut limits.max_connections_per_ip,
            "max_connections_per_ip",
        ),
    ];
    for (value, slot, name) in caps {
        if let Some(n) = value {
            if n == 0 {
                bail!("{name} must be at least 1");
            }
            *slot = Some(n);
        }
    }
    Ok(())
}

/// The key kept in the data directory, if there is one.
fn stored_key(data: &Path) -> anyhow::Result<Option<String>> {
    let path = data.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_owned())),
        Ok(_) => bail!("{} is empty; delete it to generate a new key", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The key kept in the data directory, generating and saving one on first use.
fn stored_or_new_key(data: &Path) -> anyhow::Result<String> {
    if let Some(key) = stored_key(data)? {
        return Ok(key);
    }
    let path = data.join(KEY_FILE);
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let bytes: [u8; 32] = rand::random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("duet: no secret key configured; generated one and saved it to {}", path.display());
    Ok(key)
}

fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(key.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{AppArgs, demo_on, resolve};

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        app: AppArgs,
    }

    #[test]
    fn the_recall_window_comes_from_the_toml_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("duet.toml");
        let args = |file: &std::path::Path| {
            Serve::parse_from(["serve", "--secret-key", "k", "--config", file.to_str().unwrap()]).app
        };
        std::fs::write(&file, "recall_window_secs = 30\n").unwrap();
        assert_eq!(resolve(&args(&file), None).unwrap().config.core.recall_window_secs, 30);
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(resolve(&args(&file), None).unwrap().config.core.recall_window_secs, 120, "Tencent's default");
    }

    #[test]
    fn the_media_store_is_local_or_an_s3_url_from_the_flag_or_the_file() {
        use duet_server::config::MediaStore;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("duet.toml");
        let resolved = |extra: &[&str]| {
            let mut argv = vec!["serve", "--secret-key", "k", "--config", file.to_str().unwrap()];
            argv.extend_from_slice(extra);
            resolve(&Serve::parse_from(argv).app, None).map(|s| s.config.media.store)
        };
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(resolved(&[]).unwrap(), MediaStore::Local);
        let MediaStore::S3(location) = resolved(&["--media-store", "s3://media/duet"]).unwrap() else {
            panic!("an s3:// URL selects S3")
        };
        assert_eq!((location.bucket(), location.prefix()), ("media", "duet"));
        std::fs::write(&file, "media_store = \"s3://files\"\n").unwrap();
        assert!(matches!(resolved(&[]).unwrap(), MediaStore::S3(l) if l.bucket() == "files"));
        assert_eq!(resolved(&["--media-store", "local"]).unwrap(), MediaStore::Local, "the flag wins");
        let err = resolved(&["--media-store", "/srv/media"]).unwrap_err().to_string();
        assert!(err.contains("s3://"), "{err}");
    }

    #[test]
    fn demo_mode_is_on_by_default_only_without_any_configuration_and_asking_always_wins() {
        // (asked, config file, configured key) -> on
        let table = [
            (None, false, false, true),
            (None, true, false, false),
            (None, false, true, false),
            (None, true, true, false),
            (Some(true), false, true, true),
            (Some(true), true, true, true),
            (Some(false), false, false, false),
            (Some(false), true, false, false),
        ];
        for (asked, file, key, on) in table {
            assert_eq!(demo_on(asked, file, key), on, "asked {asked:?}, config file {file}, configured key {key}");
        }
    }
}

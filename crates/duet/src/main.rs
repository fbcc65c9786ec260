//! `duet`: the server binary. Parses flags, sets up logging, waits for signals; everything else lives in
//! the library crates. An error ends the process with one line on stderr (`error: ...`, its causes
//! joined by `: `, never a backtrace) and status 2 for bad usage or configuration, 1 otherwise.

mod backup;
mod client_cmd;
mod export;
mod logging;
mod settings;
mod status;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use duet_core::clock::{Clock, SystemClock};

use crate::settings::{AppArgs, KeyArgs};

/// mimalloc rather than glibc's malloc: the server allocates and frees small buffers on every thread
/// (frames, futures, statements), and glibc's arenas showed in profiles as lock waits and `_int_free`.
/// Built without transparent huge pages (feature `no_thp`): with them, memory mimalloc took back from the
/// OS came back as 2 MiB pages zeroed at first touch, which slowed one user's sync of 1 000 offline
/// messages several times over (docs/benchmarks.md, "The allocator is mimalloc, without transparent huge
/// pages").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "duet", version, about = "A self-hosted one-to-one chat server, wire-compatible with Tencent IM")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve {
        #[command(flatten)]
        app: AppArgs,
        /// Address to listen on [env: DUET_LISTEN] [default: 0.0.0.0:7080]
        #[arg(long, env = "DUET_LISTEN", hide_env = true)]
        listen: Option<String>,
    },
    /// A terminal client: listen, send, history, conversations, chat, fetch.
    Client(client_cmd::ClientArgs),
    /// Load-test a server (one it starts, or a running one): pairs, idle, offline, history, rest.
    Bench(duet_bench::BenchArgs),
    /// Write every message of a time range as message-log records (the hourly files' format) to a file
    /// or stdout, beside a running server (read-only).
    Export(export::ExportArgs),
    /// A running server at a glance: version, uptime, readiness, connections, accounts, messages, the
    /// store's size, retention, the outboxes (asked as the app admin)
    Status(status::StatusArgs),
    /// Copy a running server's embedded store and media index (and, with --with-media, its uploads) into one
    /// backup file, without stopping it
    Backup(backup::BackupArgs),
    /// Bring a backup file back into a fresh data directory
    Restore(backup::RestoreArgs),
    /// Print a UserSig for a user of the server's app (its key: --secret-key, or the one `serve` generated
    /// into its data directory)
    Usersig {
        #[command(flatten)]
        key: KeyArgs,
        /// The UserID to sign for.
        #[arg(long)]
        user: String,
        /// Validity in seconds (Tencent's default: 180 days).
        #[arg(long, default_value_t = 180 * 86_400)]
        expire: i64,
    },
}

/// Why the process ends early: the error, and the exit status.
pub struct Failure {
    status: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure { status: 1, error }
    }
}

/// Bad usage or configuration: status 2, as for a flag clap refuses.
pub fn usage(error: anyhow::Error) -> Failure {
    Failure { status: 2, error }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match env_error(&e) {
            Some(line) => {
                eprintln!("error: {line}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { status, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(status)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Cmd::Serve { app, listen } => {
            let settings = settings::resolve(&app, listen).map_err(usage)?;
            let _log = logging::init(settings.log_format);
            raise_open_file_limit();
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            Ok(runtime.block_on(serve(settings))?)
        }
        Cmd::Bench(args) => {
            let exe = std::env::current_exe().context("locating the duet binary")?;
            let report = duet_bench::run_cli(args, exe).map_err(anyhow::Error::from)?;
            if !report.passed() {
                return Err(anyhow::anyhow!("the benchmark's correctness checks failed: {:?}", report.failures).into());
            }
            Ok(())
        }
        Cmd::Client(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let result = runtime.block_on(client_cmd::run(args));
            // Nothing left is worth waiting for (a blocking read of the terminal, say).
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            result
        }
        Cmd::Status(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(status::run(args))
        }
        Cmd::Export(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(export::run(args))
        }
        Cmd::Backup(args) => backup::run_backup(args),
        Cmd::Restore(args) => backup::run_restore(args),
        Cmd::Usersig { key, user, expire } => {
            let (sdkappid, secret_key) = settings::app_key(&key).map_err(usage)?;
            let sig = duet_core::usersig::generate(&secret_key, sdkappid, &user, SystemClock.now_secs(), expire, None);
            println!("{sig}");
            Ok(())
        }
    }
}

/// A refused value that came from an environment variable (not the command line), said as such:
/// clap's own message would blame the flag the variable stands for.
fn env_error(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(e.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) {
        return None;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) =
        (e.get(ContextKind::InvalidArg), e.get(ContextKind::InvalidValue))
    else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let on_command_line = std::env::args_os().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a.strip_prefix("--")
            .and_then(|a| a.strip_prefix(long))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
    });
    if on_command_line {
        return None;
    }
    let mut commands = vec![Cli::command()];
    while let Some(cmd) = commands.pop() {
        for a in cmd.get_arguments() {
            if let (Some(l), Some(var)) = (a.get_long(), a.get_env())
                && l == long
                && std::env::var_os(var).is_some_and(|v| v.to_string_lossy() == *value)
            {
                let why = match e.get(ContextKind::ValidValue) {
                    Some(ContextValue::Strings(valid)) => format!("expected one of {}", valid.join(", ")),
                    _ => std::error::Error::source(e).map(ToString::to_string).unwrap_or_else(|| "invalid".into()),
                };
                return Some(format!("invalid value {value:?} in {}: {why}", var.to_string_lossy()));
            }
        }
        commands.extend(cmd.get_subcommands().cloned());
    }
    None
}

async fn serve(mut settings: settings::Settings) -> anyhow::Result<()> {
    if let Some(files) = &settings.tls {
        settings.config.tls = Some(files.load()?);
    }
    let addr = tokio::net::lookup_host(&settings.listen)
        .await
        .with_context(|| format!("resolving {}", settings.listen))?
        .next()
        .with_context(|| format!("{} resolves to no address", settings.listen))?;
    let listener = duet_server::bind(addr).with_context(|| format!("listening on {addr}"))?;
    let metrics = match &settings.metrics_listen {
        Some(at) => {
            let addr = tokio::net::lookup_host(at)
                .await
                .with_context(|| format!("resolving --metrics-listen {at}"))?
                .next()
                .with_context(|| format!("--metrics-listen {at} resolves to no address"))?;
            Some(duet_server::bind(addr).with_context(|| format!("listening for metrics on {addr}"))?)
        }
        None => None,
    };
    if settings.config.demo {
        let bound = listener.local_addr().context("reading the listening address")?;
        eprintln!("{}", demo_line(bound, settings.config.tls.is_some(), settings.demo_asked));
    }
    let store = duet_server::open_store(&settings.config).await.context("opening the store")?;
    let listeners = duet_server::Listeners { api: listener, metrics };
    duet_server::run(settings.config, listeners, store, Arc::new(SystemClock), shutdown_signal()).await?;
    Ok(())
}

/// What `serve` says when demo mode is on: where the page is, what it allows, how to turn it off.
fn demo_line(addr: std::net::SocketAddr, tls: bool, asked: bool) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("{}://{}/demo", if tls { "https" } else { "http" }, std::net::SocketAddr::new(host, addr.port()));
    let off =
        if asked { "turn it off with --no-demo" } else { "turn it off with --no-demo or by configuring a secret key" };
    format!(
        "duet: demo on: {url} — anyone who can reach this server can get a UserSig for any user (except admins) \
         and chat as them; {off}"
    )
}

/// Every connection is a descriptor: `serve` takes as many as the hard limit allows (the connection caps
/// keep a reserve below it). A limit missing from the log line is unlimited.
fn raise_open_file_limit() {
    match duet_server::open_files::raise() {
        Ok(r) if r.before != r.now => tracing::info!(from = r.before, to = r.now, "raised the open-file limit"),
        Ok(r) => tracing::info!(limit = r.now, "open-file limit"),
        Err(error) => {
            tracing::warn!(%error, limit = duet_server::open_files::limit(), "could not raise the open-file limit")
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

//! `duet`: the server binary. Parses flags, sets up logging, waits for signals; everything else lives in
//! the library crates.

mod client_cmd;
mod settings;

use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use duet_core::clock::{Clock, SystemClock};

use crate::settings::AppArgs;

/// mimalloc rather than glibc's malloc: the server allocates and frees small buffers on every thread
/// (frames, futures, statements), and glibc's arenas showed in profiles as lock waits and `_int_free`.
/// Built without transparent huge pages (feature `no_thp`): with them, memory mimalloc took back from the
/// OS came back as 2 MiB pages zeroed at first touch, and one user's sync of 1 000 offline messages took
/// 50-75 ms instead of ~11.
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
    /// A terminal client: listen, send, history, conversations, chat.
    Client(client_cmd::ClientArgs),
    /// Load-test a server (one it starts, or a running one): pairs, idle, offline, history, rest.
    Bench(duet_bench::BenchArgs),
    /// Print a UserSig for a user of the configured app.
    Usersig {
        #[command(flatten)]
        app: AppArgs,
        /// The UserID to sign for.
        #[arg(long)]
        user: String,
        /// Validity in seconds (Tencent's default: 180 days).
        #[arg(long, default_value_t = 180 * 86_400)]
        expire: i64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve { app, listen } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
                )
                .init();
            let settings = settings::resolve(&app, listen)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(serve(settings))
        }
        Cmd::Bench(args) => {
            let exe = std::env::current_exe().context("locating the duet binary")?;
            let report = duet_bench::run_cli(args, exe)?;
            if !report.passed() {
                anyhow::bail!("the benchmark's correctness checks failed: {:?}", report.failures);
            }
            Ok(())
        }
        Cmd::Client(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(client_cmd::run(args))
        }
        Cmd::Usersig { app, user, expire } => {
            let settings = settings::resolve(&app, None)?;
            let core = &settings.config.core;
            let sig = duet_core::usersig::generate(
                &core.secret_key,
                core.sdkappid,
                &user,
                SystemClock.now_secs(),
                expire,
                None,
            );
            println!("{sig}");
            Ok(())
        }
    }
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
    let store = duet_server::open_store(&settings.config).context("opening the store")?;
    duet_server::run(settings.config, listener, store, Arc::new(SystemClock), shutdown_signal()).await?;
    Ok(())
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

//! The command line of `duet bench`: one subcommand per scenario, each with the target options
//! ([`TargetArgs`]) flattened in, so `duet bench pairs --rate 5000 --json` reads naturally.
//!
//! The workload definitions follow the ejabberd peer harness (`shared/peers/ejabberd/README.md`), so
//! the numbers compare: W1 = `pairs`, W2 = `idle`, W3 = `offline`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `duet bench`: load-test a Duet server, one scenario per run.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: Scenario,
}

impl BenchArgs {
    /// Parses `["pairs", "--users", "10", ...]` as `duet bench` would (for tests and tools).
    pub fn try_parse_from<I, T>(args: I) -> Result<BenchArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        #[command(name = "bench")]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let argv = std::iter::once(std::ffi::OsString::from("bench")).chain(args.into_iter().map(Into::into));
        Cli::try_parse_from(argv).map(|c| c.bench)
    }
}

#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// U users online in fixed pairs send ~100-byte texts to their partner at an offered rate (or closed loop):
    /// delivered msg/s, end-to-end and ack latency, server CPU per message (ejabberd harness W1)
    Pairs(PairsArgs),
    /// N logged-in idle connections: server memory per connection and login rate (W2)
    Idle(IdleArgs),
    /// K users receive M messages while offline, then all log in at once: time until all arrived (W3)
    Offline(OfflineArgs),
    /// Page back 20 messages at a time through a 10,000-message conversation: latency per page
    History(HistoryArgs),
    /// Import a million messages among 100 users, then search one user's history across all its
    /// conversations by keyword: search latency, the index's size per message
    Search(SearchArgs),
    /// Admin `openim/sendmsg` over HTTP/1.1 keep-alive from C concurrent clients: req/s and latency
    Rest(RestArgs),
    /// F users each send texts to a peer as fast as the server lets them (W sends in flight): sends
    /// attempted, accepted, refused by code. Run it with --server beside `pairs --server` to see what a
    /// flood does to other users
    Flood(FloodArgs),
    /// C users in pairs at a steady open-loop rate for minutes, with non-readers, slow uploaders and
    /// flooders mixed in: per-interval delivered msg/s, latency and server RSS; memory growth and p99 drift
    Soak(SoakArgs),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Pairs(_) => "pairs",
            Scenario::Idle(_) => "idle",
            Scenario::Offline(_) => "offline",
            Scenario::History(_) => "history",
            Scenario::Search(_) => "search",
            Scenario::Rest(_) => "rest",
            Scenario::Flood(_) => "flood",
            Scenario::Soak(_) => "soak",
        }
    }

    pub fn target(&self) -> &TargetArgs {
        match self {
            Scenario::Pairs(a) => &a.target,
            Scenario::Idle(a) => &a.target,
            Scenario::Offline(a) => &a.target,
            Scenario::History(a) => &a.target,
            Scenario::Search(a) => &a.target,
            Scenario::Rest(a) => &a.target,
            Scenario::Flood(a) => &a.target,
            Scenario::Soak(a) => &a.target,
        }
    }
}

/// Which server is loaded, and how the results are printed.
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Base URL of a running server to load, e.g. http://127.0.0.1:7080; several nodes of one cluster
    /// comma-separated (user i connects to node i mod N, so a pair's two users are on different nodes;
    /// REST calls go to the first) [default: start a fresh `duet serve` on 127.0.0.1:0 over a temporary data
    /// directory, and stop it afterwards]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The running server's secret key (with --server)
    #[arg(long, env = "DUET_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The app's SDKAppID
    #[arg(long, env = "DUET_SDKAPPID", default_value_t = 1_400_000_000)]
    pub sdkappid: u64,
    /// An app admin of the server, for the REST calls (account import, sendmsg)
    #[arg(long, default_value = "administrator")]
    pub admin: String,
    /// PID of the running server (with --server), to report its CPU and memory; several nodes'
    /// comma-separated (added up)
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Durability of the server the bench starts
    #[arg(long, value_enum, default_value_t = Durability::Fsync)]
    pub durability: Durability,
    /// Directory in which the started server gets its (temporary) data directory [default: the system's
    /// temporary directory]; put it on the disk you want to measure
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML configuration file for the server the bench starts (`duet serve --config`), e.g. shorter
    /// `[websocket]` or `[http]` deadlines; the bench's own settings (key, listen address, connection
    /// caps, durability) still apply
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub server_config: Option<PathBuf>,
    /// Connections logging in at the same time
    #[arg(long, default_value_t = 200)]
    pub login_concurrency: usize,
    /// Print one JSON document (field names carry their unit) instead of the summary
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Acknowledge after the group commit is fsynced (the server's default)
    Fsync,
    /// Acknowledge after the commit reaches the OS (survives a process crash, not an OS crash)
    Relaxed,
}

impl Durability {
    pub fn name(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Relaxed => "relaxed",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct PairsArgs {
    /// Users online, in fixed pairs (u0↔u1, u2↔u3, ...)
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Open loop: total offered rate in msg/s, spread round-robin over all users in 2 ms ticks; a comma list
    /// runs one step per rate (the ramp stops at the first step that does not drain)
    #[arg(long, value_delimiter = ',', default_value = "5000", conflicts_with = "closed")]
    pub rate: Vec<u64>,
    /// Closed loop instead: each user keeps W messages in flight to its partner (a new one each time one
    /// arrives); a comma list runs one step per W
    #[arg(long, value_delimiter = ',', value_name = "W")]
    pub closed: Option<Vec<u32>>,
    /// Seconds per step, warm-up included
    #[arg(long, default_value_t = 15.0)]
    pub duration: f64,
    /// Seconds of warm-up at the start of each step (delivered, not measured)
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Most seconds to wait after a step for messages still in flight
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Bytes of message text
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    /// Make each pair two-way friends first (`sns/friend_import`), so that the run also works with the
    /// server's friends-only mode (`DUET_FRIENDS_ONLY=true`)
    #[arg(long)]
    pub friends: bool,
    /// Offline push on: the server the bench starts gets a webhook push provider pointed at an endpoint the
    /// bench serves, and every user's device registers for push with its app in the background, so that
    /// every message is pushed as well as delivered (the cost of push per message)
    #[arg(long)]
    pub push: bool,
    /// Before-send callback on: the server the bench starts calls `C2C.CallbackBeforeSendMsg` before every
    /// send on an endpoint the bench serves, which answers at once. With MS > 0 one more user sends for the
    /// whole run (REST `openim/sendmsg`, 32 calls in flight, to an offline peer) and the endpoint answers
    /// its messages after MS milliseconds: a slow backend should slow only that user (past the server's
    /// 2 s callback timeout its sends are delivered at the timeout). 0: the fast callback alone, no slow
    /// user (the cost of a before-send call per message)
    #[arg(long, value_name = "MS")]
    pub slow_callback_ms: Option<u64>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    /// Connections to open (capped by the open-files limit of this process)
    #[arg(long, default_value_t = 10_000)]
    pub conns: usize,
    /// Seconds to wait after the last login before sampling the server's memory
    #[arg(long, default_value_t = 5.0)]
    pub settle: f64,
    /// Seconds to hold the connections idle afterwards (memory and CPU sampled again)
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct OfflineArgs {
    /// Cases as KxM (K offline users receive M messages each), comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1x1000,1000x10", value_parser = parse_case)]
    pub cases: Vec<(usize, usize)>,
    /// REST sendmsg calls in flight while storing the offline messages
    #[arg(long, default_value_t = 64)]
    pub store_concurrency: usize,
    /// Seconds to wait between storing and the logins
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// Most seconds the logins may take to receive everything
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub target: TargetArgs,
}

fn parse_case(s: &str) -> Result<(usize, usize), String> {
    let (k, m) = s.split_once(['x', 'X', '*']).ok_or_else(|| format!("{s:?} is not KxM"))?;
    let k: usize = k.trim().parse().map_err(|_| format!("{k:?} is not a number"))?;
    let m: usize = m.trim().parse().map_err(|_| format!("{m:?} is not a number"))?;
    if k == 0 || m == 0 {
        return Err("K and M must be at least 1".into());
    }
    Ok((k, m))
}

#[derive(Args, Debug, Clone)]
pub struct HistoryArgs {
    /// Messages in the conversation
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Messages per `history` page
    #[arg(long, default_value_t = 20)]
    pub page: u32,
    /// Times to page through the whole conversation
    #[arg(long, default_value_t = 1)]
    pub passes: usize,
    /// REST sendmsg calls in flight while filling the conversation
    #[arg(long, default_value_t = 64)]
    pub store_concurrency: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    /// Messages imported (each between two of the users, picked at random)
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: usize,
    /// Users the messages are among
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Keyword searches, one after another (0: only the import, which a server without search takes too)
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// Users that search, in turn, each over its own connection
    #[arg(long, default_value_t = 10)]
    pub searchers: usize,
    /// Messages per search page
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// REST importmsg calls in flight while importing
    #[arg(long, default_value_t = 64)]
    pub store_concurrency: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct RestArgs {
    /// Concurrent HTTP/1.1 keep-alive clients, each sending from its own user to its own peer
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds of load, warm-up included
    #[arg(long, default_value_t = 12.0)]
    pub duration: f64,
    /// Seconds of warm-up (sent, not measured)
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Bytes of message text
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct FloodArgs {
    /// Flooding users, each on one WebSocket, each sending to a peer of its own (a reader online)
    #[arg(long, default_value_t = 1)]
    pub flooders: usize,
    /// Sends each flooder keeps in flight (a new one as each is answered, `sent` or `error`)
    #[arg(long, default_value_t = 1000)]
    pub window: u32,
    /// Seconds of flooding
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Most seconds to wait afterwards for the answers to sends in flight and their arrival at the peers
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Bytes of message text
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SoakArgs {
    /// Users online, in fixed pairs (u0↔u1, ...), sending to their partner
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Total offered rate in msg/s, open loop, spread round-robin over the users in 2 ms ticks
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,
    /// Seconds of load
    #[arg(long, default_value_t = 600.0)]
    pub duration: f64,
    /// Seconds per reported interval
    #[arg(long, default_value_t = 60.0)]
    pub interval: f64,
    /// Most seconds to wait after the load for messages still in flight
    #[arg(long, default_value_t = 20.0)]
    pub drain: f64,
    /// Bytes of message text
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    /// Hostile: users that log in, ask for big `sync` and `history` pages (about 16 MiB in all) on a
    /// 4 KiB receive buffer and never read; each logs in again when the server cuts it off
    #[arg(long, default_value_t = 2)]
    pub non_readers: usize,
    /// Hostile: clients that upload (`POST /v1/media`, 1 MiB announced) at --slow-upload-rate, below the
    /// server's minimum; each starts again when the server cuts it off
    #[arg(long, default_value_t = 2)]
    pub slow_uploaders: usize,
    /// Bytes per second the slow uploaders send (the server's default minimum is 64 KiB per 30 s, ~2.2 KB/s)
    #[arg(long, default_value_t = 1024)]
    pub slow_upload_rate: u64,
    /// Hostile: users that flood a peer as `flood` does, with --flood-window sends in flight. Without per-user
    /// rate limits in the server a flooder takes all the capacity it can, so the default is none
    #[arg(long, default_value_t = 0)]
    pub flooders: usize,
    /// Sends each flooder keeps in flight
    #[arg(long, default_value_t = 1000)]
    pub flood_window: u32,
    /// The verdict's bound on the server's RSS growth from the end of the first interval to the end of
    /// the last, MiB
    #[arg(long, default_value_t = 64)]
    pub rss_budget_mib: u64,
    /// The verdict's bound on p99 drift: the last two intervals' p99 against the first two's, as a ratio
    /// (an increase under 5 ms is never drift)
    #[arg(long, default_value_t = 2.0)]
    pub max_p99_drift: f64,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_harness() {
        let a = BenchArgs::try_parse_from(["pairs", "--rate", "2000,5000", "--json"]).unwrap();
        let Scenario::Pairs(p) = a.scenario else { panic!() };
        assert_eq!(p.rate, vec![2000, 5000]);
        assert!(p.target.json && p.closed.is_none());
        let a = BenchArgs::try_parse_from(["offline", "--cases", "1x100,1000x10"]).unwrap();
        let Scenario::Offline(o) = a.scenario else { panic!() };
        assert_eq!(o.cases, vec![(1, 100), (1000, 10)]);
        assert!(BenchArgs::try_parse_from(["pairs", "--rate", "5", "--closed", "1"]).is_err());
        assert_eq!(p.slow_callback_ms, None);
        let a = BenchArgs::try_parse_from(["pairs", "--slow-callback-ms", "1500"]).unwrap();
        let Scenario::Pairs(p) = a.scenario else { panic!() };
        assert_eq!(p.slow_callback_ms, Some(1500));
        let a = BenchArgs::try_parse_from(["soak"]).unwrap();
        let Scenario::Soak(s) = a.scenario else { panic!() };
        assert_eq!((s.connections, s.rate, s.duration), (10_000, 2000, 600.0));
        assert!(s.non_readers > 0 && s.slow_uploaders > 0);
        let a = BenchArgs::try_parse_from(["flood", "--server", "http://127.0.0.1:1", "--secret-key", "k"]).unwrap();
        let Scenario::Flood(f) = a.scenario else { panic!() };
        assert_eq!((f.flooders, f.window), (1, 1000));
        assert!(BenchArgs::try_parse_from(["flood", "--server", "http://x", "--server-config", "a.toml"]).is_err());
    }
}

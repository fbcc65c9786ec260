//! `duet status`: a running server at a glance (version, uptime, readiness, connections, accounts,
//! messages, the store's size, retention, the outboxes), from its `duet/status` REST command, called as
//! the app admin with a UserSig signed by the server's key (found as `duet usersig` finds it) or given.

use std::fmt::Write as _;

use anyhow::Context;
use clap::Args;
use duet_core::clock::{Clock, SystemClock};
use duet_core::redact::Secret;
use duet_proto::rest::response::{OutboxStatus, StatusReply};

use crate::settings::{KeyArgs, app_key, status_target};
use crate::{Failure, usage};

/// The flags of `duet status`.
#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// The server's configuration, data directory or key, to sign the admin's UserSig with (as `duet
    /// usersig` finds them)
    #[command(flatten)]
    key: KeyArgs,
    /// The server's base URL [default: http://127.0.0.1:<the config file's listen port, else 7080>]
    #[arg(long, env = "DUET_SERVER", value_name = "URL")]
    server: Option<String>,
    /// The app admin to ask as [default: the config file's first admin, else administrator]
    #[arg(long, value_name = "ID")]
    identifier: Option<String>,
    /// The admin's UserSig, instead of signing one with the server's key
    #[arg(long, env = "DUET_USERSIG", hide_env_values = true, value_name = "SIG")]
    usersig: Option<Secret>,
    /// Print the server's JSON answer as it is
    #[arg(long)]
    json: bool,
}

pub async fn run(args: StatusArgs) -> Result<(), Failure> {
    let (default_server, default_admin) = status_target(&args.key).map_err(usage)?;
    let server = args.server.clone().unwrap_or(default_server);
    let admin = args.identifier.clone().unwrap_or(default_admin);
    let (sdkappid, usersig) = match &args.usersig {
        Some(sig) => (
            app_key(&args.key).map(|(id, _)| id).unwrap_or(duet_server::config::DEFAULT_SDKAPPID),
            sig.expose().to_owned(),
        ),
        None => {
            let (sdkappid, key) = app_key(&args.key).map_err(usage)?;
            (sdkappid, duet_core::usersig::generate(&key, sdkappid, &admin, SystemClock.now_secs(), 300, None))
        }
    };
    let base = server.trim_end_matches('/');
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("sdkappid", &sdkappid.to_string())
        .append_pair("identifier", &admin)
        .append_pair("usersig", &usersig)
        .append_pair("random", &rand::random::<u32>().to_string())
        .append_pair("contenttype", "json")
        .finish();
    let url = format!("{base}/v4/duet/status?{query}");
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .context("starting the HTTP client")?;
    // reqwest's errors name the URL, and the URL carries the UserSig: drop it from what is printed.
    let answer = http
        .post(&url)
        .body("{}")
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .with_context(|| format!("asking {base} for its status"))?;
    let body: serde_json::Value = answer
        .json()
        .await
        .map_err(reqwest::Error::without_url)
        .with_context(|| format!("{base} did not answer with JSON: is it a Duet server?"))?;
    if body["ErrorCode"] != 0 {
        return Err(anyhow::anyhow!(
            "{base} refused: {} (ErrorCode {})",
            body["ErrorInfo"].as_str().unwrap_or("no reason given"),
            body["ErrorCode"]
        )
        .into());
    }
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let status: StatusReply = serde_json::from_value(body).context("reading the server's status")?;
    print!("{}", table(base, &status));
    Ok(())
}

/// The status as aligned lines.
fn table(server: &str, s: &StatusReply) -> String {
    let mut out = String::new();
    let ready = if s.ready { "ready" } else { "NOT READY (see its /readyz and its log)" };
    let _ = writeln!(out, "duet {} at {server}: {ready}", s.version);
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<12} {value}");
    };
    row("up", format!("{} (since {})", duration(s.uptime_secs), utc(s.started_at)));
    let size = s.store_bytes.map(|b| format!(", {}", bytes(b))).unwrap_or_default();
    let cluster = if s.clustered { ", one node of several" } else { "" };
    row("store", format!("{}{size}{cluster}", s.store));
    row("accounts", count(s.accounts));
    row("messages", count(s.messages));
    let platforms: Vec<String> = s.connections_by_platform.iter().map(|(p, n)| format!("{p} {}", count(*n))).collect();
    let by = if platforms.is_empty() { String::new() } else { format!(" ({})", platforms.join(", ")) };
    row("connections", format!("{}{by}", count(s.connections)));
    row(
        "retention",
        format!("history {}, offline {}", duration(s.roaming_retention_secs), duration(s.offline_retention_secs)),
    );
    row("push", outbox(s.push_outbox, "no provider configured"));
    row("callbacks", outbox(s.callback_outbox, "no callback URL configured"));
    out
}

fn outbox(o: Option<OutboxStatus>, off: &str) -> String {
    match o {
        None => off.to_owned(),
        Some(OutboxStatus { depth: 0, .. }) => "outbox empty".to_owned(),
        Some(o) => format!("{} waiting, the oldest for {}", count(o.depth), duration(o.oldest_age_secs)),
    }
}

/// 1234567 → "1 234 567".
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = b as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{b} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Seconds as the two largest units: "7 days", "2 h 5 min", "42 s".
fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        (_, 0, _) => format!("{d} day{}", if d == 1 { "" } else { "s" }),
        _ => format!("{d} day{} {h} h", if d == 1 { "" } else { "s" }),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(secs: i64) -> String {
    duet_core::msglog::format_local(secs, duet_core::msglog::UtcOffset::UTC) + " UTC"
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(super::count(1_234_567), "1 234 567");
        assert_eq!(super::count(999), "999");
        assert_eq!(super::bytes(17_412_096), "16.6 MiB");
        assert_eq!(super::bytes(512), "512 B");
        assert_eq!(super::duration(7 * 86_400), "7 days");
        assert_eq!(super::duration(3 * 3600 + 5 * 60 + 9), "3 h 5 min");
        assert_eq!(super::duration(42), "42 s");
    }
}

//! `duet export`: every stored message of a time range, as the message log's records (the format of the
//! hourly files, `duet_server::msglog::write_records`), to a file or stdout. It opens the server's
//! database read-only, so it runs beside a running server.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use duet_core::msglog::{UtcOffset, parse_instant};
use duet_core::store::MessageExport;

use crate::settings::{KeyArgs, export_source};
use crate::{Failure, usage};

/// The flags of `duet export`.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The server's configuration and data directory, as `serve` is given them (only --config and --data
    /// are read)
    #[command(flatten)]
    key: KeyArgs,
    /// Start of the range, included: YYYYMMDDHH (in --utc-offset), RFC 3339, or unix seconds (@SECS)
    #[arg(long)]
    from: String,
    /// End of the range, excluded, in the same forms
    #[arg(long)]
    to: String,
    /// Where to write; `-` or nothing: stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The clock YYYYMMDDHH is read in, e.g. +08:00 [default: the server's `[message_log] utc_offset`,
    /// else +08:00, Beijing time, as Tencent]
    #[arg(long, value_name = "±HH:MM")]
    utc_offset: Option<String>,
}

pub async fn run(args: ExportArgs) -> Result<(), Failure> {
    let (data, message_log) = export_source(&args.key).map_err(usage)?;
    let offset = match &args.utc_offset {
        Some(o) => UtcOffset::parse(o)
            .ok_or_else(|| usage(anyhow::anyhow!("--utc-offset {o:?} is not an offset such as +08:00")))?,
        None => message_log.utc_offset,
    };
    let instant = |flag: &str, value: &str| {
        parse_instant(value, offset).ok_or_else(|| {
            usage(anyhow::anyhow!(
                "--{flag} {value:?} is not a time: YYYYMMDDHH, RFC 3339 (2026-12-04T00:00:00+08:00) or @UNIX_SECONDS"
            ))
        })
    };
    let (from, to) = (instant("from", &args.from)?, instant("to", &args.to)?);
    if from > to {
        return Err(usage(anyhow::anyhow!("--from is after --to")));
    }
    let store = duet_server::open_reader(&data)
        .with_context(|| format!("opening the database in {} read-only", data.display()))?;
    let out = args.out.filter(|p| p.as_os_str() != "-");
    let count = match &out {
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let written = write(&store, from, to, std::io::BufWriter::new(file)).await;
            if written.is_err() {
                // Half a file is worse than none.
                let _ = std::fs::remove_file(path);
            }
            written.with_context(|| format!("writing {}", path.display()))?
        }
        None => write(&store, from, to, std::io::BufWriter::new(std::io::stdout())).await.context("writing stdout")?,
    };
    eprintln!("exported {count} messages");
    Ok(())
}

/// Writes the records and flushes; how many there were.
async fn write<S: MessageExport + ?Sized, W: Write + Send + 'static>(
    store: &S,
    from: i64,
    to: i64,
    out: W,
) -> anyhow::Result<u64> {
    let (mut out, count) = duet_server::msglog::write_records(store, from, to, out).await?;
    tokio::task::spawn_blocking(move || out.flush()).await??;
    Ok(count)
}

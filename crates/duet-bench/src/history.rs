//! `history`: one conversation of N messages (stored through the admin's `sendmsg`, both directions
//! alternating), then one side pages back through it with `history` frames, `page` messages at a time,
//! newest first, each page asked for after the previous answer. Reported: latency per page; checked:
//! every message is seen exactly once per pass, newest first (`time` never increases), and the last page
//! says `complete`, and messages come in reverse `conv_seq` order (the messages carry no `MsgSeq`, so the
//! server picks increasing ones and same-second messages keep the order they were stored in).

use std::time::Instant;

use duet_proto::client::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::args::HistoryArgs;
use crate::stats::{self, Latency, Progress, round1, round3};
use crate::sys::{CpuUsage, CpuWindow};
use crate::target::{Outgoing, Target};
use crate::ws::{self, Buffers, Ledger, Mark};
use crate::{BenchError, Outcome};

#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryReport {
    pub messages: usize,
    pub page_size: u32,
    pub passes: usize,
    pub store_s: f64,
    pub stored_per_s: f64,
    pub pages: u64,
    pub pages_per_s: f64,
    /// `history` request → its answer.
    pub page_latency: Latency,
    /// Messages missing from a pass (summed over passes).
    pub missing: u64,
    /// Messages seen twice within a pass.
    pub duplicates: u64,
    /// Messages listed after a newer one (a larger `time`) in the same pass: newest first is broken.
    pub order_violations: u64,
    /// Messages listed after one with a smaller `conv_seq`: same-second messages out of the order they were
    /// stored in.
    pub conv_seq_inversions: u64,
    #[serde(flatten)]
    pub cpu: CpuUsage,
    pub server_cpu_us_per_page: Option<f64>,
}

pub(crate) async fn run(
    args: &HistoryArgs,
    target: &Target,
    progress: &Progress,
) -> Result<Outcome<HistoryReport>, BenchError> {
    if args.page == 0 {
        return Err(BenchError::Args("--page must be at least 1".into()));
    }
    let prefix = crate::run_prefix();
    let (alice, bob) = (format!("{prefix}ha"), format!("{prefix}hb"));
    target.import_accounts(&[alice.clone(), bob.clone()]).await?;
    let n = args.messages;
    let jobs: Vec<Outgoing> = (0..n)
        .map(|k| {
            let (from, to) = if k % 2 == 0 { (&alice, &bob) } else { (&bob, &alice) };
            Outgoing {
                from: from.clone(),
                to: to.clone(),
                mark: Mark { step: 0, t: 0, k: k as u64, from: (k % 2) as u32 },
                body_bytes: 100,
            }
        })
        .collect();
    let bar = progress.bar(n as u64, "store");
    let t0 = Instant::now();
    target.send_many(jobs, args.store_concurrency, &bar).await?;
    let store_s = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let (mut conn, _) = ws::open(target, &alice, 0, Buffers::Large).await?;
    let io = |e| BenchError::Connect(format!("{alice}: {e}"));
    let mut latency = stats::histogram();
    let (mut pages, mut missing, mut duplicates) = (0u64, 0u64, 0u64);
    let (mut order_violations, mut conv_seq_inversions) = (0u64, 0u64);
    let per_pass = n.div_ceil(args.page as usize) as u64 + 1;
    let bar = progress.bar(per_pass * args.passes as u64, "pages");
    let cpu = CpuWindow::start(&target.pids);
    let t_pages = Instant::now();
    let mut id = 10u64;
    for _ in 0..args.passes {
        let mut ledger = Ledger::default();
        let mut before: Option<String> = None;
        let (mut last_time, mut last_conv_seq) = (i64::MAX, u64::MAX);
        loop {
            id += 1;
            let frame = ClientFrame::History { id, peer: bob.clone(), count: args.page, before: before.clone() };
            let t = Instant::now();
            conn.send(WsMessage::Text(ws::encode(&frame).into())).await.map_err(io)?;
            let (messages, complete) = loop {
                let msg = conn
                    .next()
                    .await
                    .ok_or_else(|| BenchError::Connect(format!("{alice}: closed while paging")))?
                    .map_err(io)?;
                let WsMessage::Text(text) = msg else { continue };
                match ws::scan(&text) {
                    ws::Scanned::Other(ServerFrame::History { id: got, messages, complete, .. }) if got == id => {
                        break (messages, complete);
                    }
                    ws::Scanned::Other(ServerFrame::Error { code, info, .. }) => {
                        return Err(BenchError::Refused { what: "history".into(), code, info });
                    }
                    _ => {}
                }
            };
            stats::record(&mut latency, t.elapsed().as_nanos() as u64);
            pages += 1;
            bar.inc(1);
            for m in &messages {
                order_violations += u64::from(m.time > last_time);
                conv_seq_inversions += u64::from(m.conv_seq >= last_conv_seq);
                (last_time, last_conv_seq) = (m.time, m.conv_seq);
                if let Some(mark) = Mark::find(m.body.get()) {
                    ledger.record(mark.k);
                }
            }
            if complete {
                break;
            }
            match messages.last() {
                Some(m) => before = Some(m.msg_key.clone()),
                None => {
                    return Err(BenchError::Protocol(
                        "an empty history page that is not complete: paging cannot go on".into(),
                    ));
                }
            }
            if pages > per_pass * args.passes as u64 * 2 {
                return Err(BenchError::Protocol("paging does not end: the conversation repeats".into()));
            }
        }
        missing += (n as u64).saturating_sub(ledger.unique);
        duplicates += ledger.duplicates;
    }
    let elapsed = t_pages.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    bar.finish_and_clear();
    let _ = conn.close(None).await;

    let mut failures = Vec::new();
    if missing > 0 {
        failures.push(format!("history: {missing} messages were never listed"));
    }
    if duplicates > 0 {
        failures.push(format!("history: {duplicates} messages were listed twice in one pass"));
    }
    if order_violations > 0 {
        failures.push(format!("history: {order_violations} messages were listed after a newer one"));
    }
    if conv_seq_inversions > 0 {
        failures.push(format!(
            "history: {conv_seq_inversions} messages were listed after an older one (by conv_seq): same-second order is not send order"
        ));
    }
    let cpu_out = cpu.rounded();
    let report = HistoryReport {
        messages: n,
        page_size: args.page,
        passes: args.passes,
        store_s: round3(store_s),
        stored_per_s: round1(n as f64 / store_s.max(1e-9)),
        pages,
        pages_per_s: round1(pages as f64 / elapsed.max(1e-9)),
        page_latency: Latency::of(&latency),
        missing,
        duplicates,
        order_violations,
        conv_seq_inversions,
        server_cpu_us_per_page: cpu.server_cpu_us.map(|us| round1(us / pages.max(1) as f64)),
        cpu: cpu_out,
    };
    let notes = Vec::new();
    Ok(Outcome { report, failures, notes })
}

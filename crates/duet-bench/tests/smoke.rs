//! A short run of each scenario against a `duet serve` the bench starts itself: correctness only (every
//! message sent arrives exactly once), no timing assertions.
//!
//! The server is the workspace's `duet` binary, found next to this test's executable
//! (`target/<profile>/duet`; `cargo test --workspace` builds it for the `duet` crate's own tests), or at
//! `$DUET_BIN`.

use std::path::PathBuf;

use duet_bench::{BenchArgs, Details, Report};

fn duet_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("DUET_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/duet
    let dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let duet = dir.join(format!("duet{}", std::env::consts::EXE_SUFFIX));
    assert!(
        duet.exists(),
        "{} is missing: build it first (`cargo build -p duet`; `cargo test --workspace` does) or set DUET_BIN",
        duet.display()
    );
    duet
}

async fn bench(args: &[&str]) -> Report {
    let mut argv: Vec<&str> = args.to_vec();
    argv.extend(["--json", "--login-concurrency", "20"]);
    let args = BenchArgs::try_parse_from(argv).expect("valid arguments");
    let report = duet_bench::run(&args, &duet_exe()).await.expect("the run completes");
    // The JSON document is whole and carries the scenario's figures under its name.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("the report is JSON");
    assert_eq!(json["scenario"], report.scenario);
    assert!(json.get(report.scenario).is_some(), "{json}");
    assert!(!report.summary().is_empty());
    assert!(report.correct, "{}", report.summary());
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_open_loop_delivers_every_message_once() {
    let r = bench(&[
        "pairs",
        "--users",
        "20",
        "--rate",
        "200,400",
        "--duration",
        "1",
        "--warmup",
        "0.3",
        "--drain",
        "20",
        "--durability",
        "relaxed",
    ])
    .await;
    let Details::Pairs(p) = &r.details else { panic!("not a pairs report") };
    assert_eq!(p.steps.len(), 2);
    assert!(p.sent > 0);
    assert_eq!(p.delivered, p.sent);
    assert_eq!((p.undelivered, p.duplicates, p.send_errors), (0, 0, 0));
    // Senders get their own copies back (their sync log); those are not counted as deliveries.
    assert!(p.own_copies > 0);
    assert!(p.steps.iter().all(|s| s.drained && s.latency.count > 0 && s.ack_latency.count > 0));
    assert!(p.steps[0].cpu.server_cpu_us.is_some(), "the started server's CPU is sampled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_closed_loop_delivers_every_message_once() {
    let r = bench(&["pairs", "--users", "10", "--closed", "2", "--duration", "1", "--warmup", "0.3", "--drain", "20"])
        .await;
    let Details::Pairs(p) = &r.details else { panic!("not a pairs report") };
    assert!(p.sent >= 20, "at least the first window was sent: {}", p.sent);
    assert_eq!((p.delivered, p.undelivered, p.duplicates), (p.sent, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_stay_up() {
    let r = bench(&["idle", "--conns", "50", "--settle", "0.2", "--hold", "0.3"]).await;
    let Details::Idle(i) = &r.details else { panic!("not an idle report") };
    assert_eq!((i.conns, i.alive_at_end), (50, 50));
    assert_eq!(i.login_latency.count, 50);
    assert!(i.server_rss_bytes_after.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_messages_all_arrive_once() {
    let r = bench(&["offline", "--cases", "1x30,5x4", "--settle", "0"]).await;
    let Details::Offline(o) = &r.details else { panic!("not an offline report") };
    assert_eq!(o.cases.len(), 2);
    for c in &o.cases {
        assert_eq!(c.delivered, (c.users * c.msgs_per_user) as u64);
        assert_eq!((c.undelivered, c.duplicates, c.users_complete), (0, 0, c.users));
        assert!(c.all_delivered_ms.is_some());
    }
    assert!(o.cases[0].login_to_sync_complete_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_every_message_once() {
    let r = bench(&["history", "--messages", "130", "--page", "20"]).await;
    let Details::History(h) = &r.details else { panic!("not a history report") };
    assert_eq!((h.missing, h.duplicates, h.order_violations), (0, 0, 0));
    assert_eq!(h.pages, 7, "130 messages in pages of 20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_sends_are_all_stored_once() {
    let r = bench(&["rest", "--clients", "4", "--duration", "1", "--warmup", "0.2"]).await;
    let Details::Rest(x) = &r.details else { panic!("not a rest report") };
    assert!(x.requests_ok > 0);
    assert_eq!((x.requests_failed, x.missing, x.duplicates), (0, 0, 0));
}

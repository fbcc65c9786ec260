//! A short run of each scenario against a `duet serve` the bench starts itself: correctness (every
//! message sent arrives exactly once) and what the server did to hostile clients, no latency assertions.
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
    // Without --slow-callback-ms the document is as before.
    assert!(p.callbacks.is_none());
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert!(json["pairs"].get("callbacks").is_none(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_with_a_slow_before_send_backend() {
    let r = bench(&[
        "pairs",
        "--users",
        "10",
        "--rate",
        "100",
        "--duration",
        "1.5",
        "--warmup",
        "0.3",
        "--drain",
        "20",
        "--durability",
        "relaxed",
        "--slow-callback-ms",
        "300",
    ])
    .await;
    let Details::Pairs(p) = &r.details else { panic!("not a pairs report") };
    assert!(p.sent > 0);
    assert_eq!((p.delivered, p.undelivered, p.send_errors), (p.sent, 0, 0));
    let c = p.callbacks.as_ref().expect("the callback figures");
    // Every pairs send asked the backend, which answered at once; the slow user's sends waited for it.
    assert_eq!(c.before_send_fast_calls, p.sent, "{c:?}");
    let s = c.slow_sender.as_ref().expect("a slow user ran");
    assert!(s.sends_ok > 0, "{s:?}");
    assert_eq!(c.before_send_slow_calls, s.sends_ok + s.sends_failed, "{c:?}");
    assert_eq!((s.sends_failed, s.missing, s.duplicates), (0, 0, 0));
    assert!(s.latency.p50_ms >= 300.0, "{s:?}");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["pairs"]["callbacks"]["slow_callback_ms"], 300);
    assert!(r.summary().contains("slow user"));
    let log = r.server_log.as_ref().expect("the bench started the server");
    assert_eq!(log.warnings, 0, "no callback failed: {log:?}");

    // 0: the fast backend alone, no slow user.
    let r = bench(&[
        "pairs",
        "--users",
        "4",
        "--rate",
        "50",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--slow-callback-ms",
        "0",
    ])
    .await;
    let Details::Pairs(p) = &r.details else { panic!("not a pairs report") };
    let c = p.callbacks.as_ref().expect("the callback figures");
    assert_eq!((c.before_send_fast_calls, c.before_send_slow_calls), (p.sent, 0));
    assert!(c.slow_sender.is_none());
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
async fn search_finds_the_users_messages_holding_the_keyword() {
    let r = bench(&["search", "--messages", "3000", "--users", "6", "--queries", "40", "--searchers", "3"]).await;
    let Details::Search(x) = &r.details else { panic!("not a search report") };
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!((x.messages, x.queries, x.wrong_hits), (3000, 40, 0));
    assert_eq!(x.latency.count, 40);
    assert!(x.hits_per_search > 1.0, "about 3000 / 3 / 400 * 5 hits a Latin word: {x:?}");
    assert!(x.index_bytes_per_message.is_some_and(|b| b > 0.0), "{x:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_sends_are_all_stored_once() {
    let r = bench(&["rest", "--clients", "4", "--duration", "1", "--warmup", "0.2"]).await;
    let Details::Rest(x) = &r.details else { panic!("not a rest report") };
    assert!(x.requests_ok > 0);
    assert_eq!((x.requests_failed, x.missing, x.duplicates), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_counts_what_the_server_accepts_and_delivers() {
    let r = bench(&[
        "flood",
        "--flooders",
        "2",
        "--window",
        "200",
        "--duration",
        "1.5",
        "--drain",
        "20",
        "--durability",
        "relaxed",
    ])
    .await;
    let Details::Flood(f) = &r.details else { panic!("not a flood report") };
    let t = &f.totals;
    assert!(t.accepted > 0, "{t:?}");
    // Every send written is answered, one way or the other, and each refusal has its code.
    assert_eq!(t.attempted, t.accepted + t.refused + t.unanswered);
    assert_eq!(t.unanswered, 0, "the drain waits for every answer");
    assert_eq!(t.refused_by_code.values().sum::<u64>(), t.refused);
    assert_eq!(t.ack_latency.count, t.accepted);
    // The peers are online: every accepted message reaches its peer.
    assert_eq!(t.delivered, t.accepted);
    assert_eq!(f.per_flooder.len(), 2);
    assert!(f.per_flooder.iter().all(|p| p.accepted > 0 && p.closed_by_server.is_none()), "{:?}", f.per_flooder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_delivers_everything_while_the_server_cuts_off_the_hostile_clients() {
    // Short deadlines, so that the hostile clients meet them within the run.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("short.toml");
    std::fs::write(&conf, "[websocket]\nwrite_timeout_secs = 1\n\n[http]\nupload_window_secs = 1\n").unwrap();
    let r = bench(&[
        "soak",
        "--connections",
        "40",
        "--rate",
        "200",
        "--duration",
        "6",
        "--interval",
        "2",
        "--non-readers",
        "1",
        "--slow-uploaders",
        "1",
        "--flooders",
        "1",
        "--flood-window",
        "50",
        "--durability",
        "relaxed",
        "--server-config",
        conf.to_str().unwrap(),
    ])
    .await;
    let Details::Soak(s) = &r.details else { panic!("not a soak report") };
    // The pairs: every message once, every interval measured, no pair connection lost.
    assert!(s.sent > 0);
    assert_eq!((s.delivered, s.undelivered, s.duplicates, s.disconnects), (s.sent, 0, 0, 0));
    assert_eq!(s.intervals.len(), 3);
    for i in &s.intervals {
        assert!(i.latency.count > 0 && i.sent > 0, "{i:?}");
        assert_eq!(i.connections_open, 40);
        assert!(i.server_rss_bytes.is_some() && i.server_open_files.is_some());
    }
    // The non-reader is cut off by the server, one write timeout after its writes block (plus a ping).
    let nr = &s.non_readers[0];
    let cut: Vec<_> = nr.attacks.iter().filter(|a| a.cut).collect();
    assert!(!cut.is_empty(), "{nr:?}");
    assert!(cut.iter().all(|a| a.held_s < 4.0), "{nr:?}");
    // The slow upload is cut off with 408 / 6008 after the first window, and leaves no file behind.
    let up = &s.slow_uploaders[0];
    assert!(up.uploads.iter().any(|a| a.cut && a.outcome == "HTTP 408, error 6008" && a.held_s < 4.0), "{up:?}");
    assert!(up.uploads.iter().all(|a| a.outcome != "completed: HTTP 200"), "{up:?}");
    assert_eq!(s.media_tmp_files_at_end, Some(0));
    // The flooder's sends are answered.
    let flood = s.flood.as_ref().expect("a flooder ran");
    assert!(flood.accepted > 0, "{flood:?}");
    assert_eq!(flood.attempted, flood.accepted + flood.refused + flood.unanswered);
    assert!(s.verdict.hostile_cut_off && s.verdict.exactly_once, "{:?}", s.verdict);
    assert!(r.summary().contains("verdict:"));
}

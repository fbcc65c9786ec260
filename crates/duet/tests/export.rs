//! `duet export` beside a running server: every message of a range, in the message log's format, to
//! stdout or a file; bad times are usage errors.

use duet_test_support::{TestServer, text};
use serde_json::{Value, json};

async fn send(s: &TestServer, from: &str, to: &str, n: u32) {
    let body = json!({"From_Account": from, "To_Account": to, "MsgRandom": n, "MsgBody": text(&format!("m{n}"))});
    let r = s.rest("openim/sendmsg", body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

async fn export(s: &TestServer, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_duet"))
        .arg("export")
        .arg("--data")
        .arg(s.data_dir())
        .args(args)
        .env_remove("DUET_CONFIG")
        .output()
        .await
        .expect("running duet export")
}

/// The `<from>><to> <text>` of each record of a file's text.
fn described(text: &str) -> Vec<String> {
    let whole: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    whole["MsgList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}>{} {}", r["From_Account"], r["To_Account"], r["MsgBody"][0]["MsgContent"]["Text"]))
        .map(|s| s.replace('"', ""))
        .collect()
}

#[tokio::test]
async fn export_writes_a_range_beside_the_running_server() {
    let s = TestServer::spawn().await;
    s.import(&["alice", "bob"]).await;
    // The test clock starts at 06:13:20 on 2023-11-15 in Beijing.
    send(&s, "alice", "bob", 1).await;
    s.clock.advance_secs(3600);
    send(&s, "bob", "alice", 2).await;
    s.clock.advance_secs(3600);
    send(&s, "alice", "bob", 3).await;

    let out = export(&s, &["--from", "2023111506", "--to", "2023111508"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(described(&String::from_utf8(out.stdout).unwrap()), ["alice>bob m1", "bob>alice m2"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "exported 2 messages");

    // Other clocks and forms: the third message alone, to a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.json");
    let file_arg = file.to_str().unwrap();
    let utc = ["--utc-offset", "+00:00", "--from", "2023111500", "--to", "2023111600", "--out", file_arg];
    assert!(
        export(&s, &["--from", "2023-11-15T00:13:20Z", "--to", "@1700010000", "--out", file_arg])
            .await
            .status
            .success()
    );
    assert_eq!(described(&std::fs::read_to_string(&file).unwrap()), ["alice>bob m3"]);
    assert!(export(&s, &utc).await.status.success());
    assert_eq!(described(&std::fs::read_to_string(&file).unwrap()), ["alice>bob m3"], "in UTC the 15th starts later");

    // An empty range is an empty list; bad times are usage errors (status 2).
    let out = export(&s, &["--from", "2023111500", "--to", "2023111501", "--out", "-"]).await;
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "{\"MsgList\":[\n]}\n");
    for bad in [
        ["--from", "2023111524", "--to", "2023111501"],
        ["--from", "tomorrow", "--to", "2023111501"],
        ["--from", "2023111502", "--to", "2023111501"],
        ["--utc-offset", "CST", "--to", "2023111501"],
    ] {
        let mut args = bad.to_vec();
        if !args.contains(&"--from") {
            args.extend(["--from", "2023111500"]);
        }
        let out = export(&s, &args).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    s.stop().await;
}

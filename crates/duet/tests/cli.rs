//! `duet client` as a user runs it: a child process against a real server, its JSON lines read back.

use std::process::Stdio;
use std::time::Duration;

use duet_test_support::{TestServer, text};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn client(server: &TestServer, user: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    cmd.args(["client", "--server", &server.base_url(), "--user", user, "--usersig", &server.usersig(user)])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    cmd
}

async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("no line from `duet client` within 10 s")
        .expect("reading stdout")
        .expect("`duet client` ended early");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

/// The next line that is not a connection-state line.
async fn next_event(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    loop {
        let v = next_json(lines).await;
        if v["event"] != "connection" {
            return v;
        }
    }
}

async fn sendmsg(server: &TestServer, seq: u32, msg: &str) {
    let body =
        json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": seq, "MsgRandom": seq, "MsgBody": text(msg)});
    let r = server.rest("openim/sendmsg", body).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_offline_messages_conversations_sync_complete_then_live_messages() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    sendmsg(&server, 1, "first").await;
    sendmsg(&server, 2, "second").await;

    let mut child: Child = client(&server, "bob", &["listen"]).spawn().expect("starting duet client");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(next_event(&mut lines).await["event"], "sync_started");
    for expected in ["first", "second"] {
        let e = next_event(&mut lines).await;
        assert_eq!(e["event"], "new_message", "{e}");
        assert_eq!(e["message"]["from"], "alice");
        assert_eq!(e["message"]["body"], text(expected));
    }
    let e = next_event(&mut lines).await;
    assert_eq!(e["event"], "conversation_changed", "{e}");
    assert_eq!(e["conversation"]["peer"], "alice");
    assert_eq!(e["conversation"]["unread"], 2);
    assert_eq!(next_event(&mut lines).await["event"], "sync_complete");

    sendmsg(&server, 3, "live").await;
    let e = next_event(&mut lines).await;
    assert_eq!((e["event"].as_str(), e["message"]["body"].clone()), (Some("new_message"), text("live")), "{e}");

    // The admin kicks bob: listen prints the kick and exits with an error.
    server.clock.advance_secs(1);
    server.rest("im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    let e = loop {
        let e = next_event(&mut lines).await;
        if e["event"] != "conversation_changed" {
            break e;
        }
    };
    assert_eq!(e["event"], "kicked", "{e}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(!status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_history_and_conversations_print_json() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let out =
        client(&server, "alice", &["send", "--to", "bob", "--text", "hello from the cli"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sent["conv_seq"], 1, "{sent}");
    server.clock.advance_secs(1);

    let loc = client(&server, "alice", &["send", "--to", "bob", "--location", "39.9", "-116.4", "--desc", "here"])
        .output()
        .await
        .unwrap();
    assert!(loc.status.success(), "{}", String::from_utf8_lossy(&loc.stderr));
    let bad = client(&server, "alice", &["send", "--to", "bob"]).output().await.unwrap();
    assert!(!bad.status.success(), "sending nothing is refused");

    let out = client(&server, "bob", &["history", "--peer", "alice"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let history: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["body"][0]["MsgType"], "TIMLocationElem", "newest first");
    assert_eq!(history[1]["body"], text("hello from the cli"));
    assert_eq!(history[1]["msg_key"], sent["msg_key"]);

    let out = client(&server, "bob", &["conversations"]).output().await.unwrap();
    let conv: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!((conv["peer"].as_str(), conv["unread"].as_u64()), (Some("alice"), Some(2)), "{conv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sends_typed_lines_and_prints_the_peers_messages() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    sendmsg(&server, 1, "earlier").await;
    let mut child = client(&server, "bob", &["chat", "--peer", "alice"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(next_line(&mut lines).await.ends_with("alice: earlier"), "the recent history is shown first");

    use tokio::io::AsyncWriteExt;
    stdin.write_all(b"hello alice\n").await.unwrap();
    let line = next_line(&mut lines).await;
    assert!(line.ends_with("bob: hello alice"), "{line}");
    let roam = server
        .rest("openim/admin_getroammsg", json!({"Operator_Account": "alice", "Peer_Account": "bob", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64}))
        .await;
    assert_eq!(roam["MsgList"][1]["MsgBody"], text("hello alice"), "{roam}");

    server.clock.advance_secs(1);
    sendmsg(&server, 2, "hi bob").await;
    assert!(next_line(&mut lines).await.ends_with("alice: hi bob"));

    drop(stdin); // Ctrl-D
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_uploads_images_and_files_and_fetch_writes_them_to_disk() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("pic.png");
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(900, 300, |x, _| image::Rgb([x as u8, 0, 0])))
        .save(&png)
        .unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "the minutes of the meeting").unwrap();

    let args = ["send", "--to", "bob", "--image", png.to_str().unwrap(), "--file", doc.to_str().unwrap()];
    let out = client(&server, "alice", &args).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = client(&server, "bob", &["history", "--peer", "alice"]).output().await.unwrap();
    let msg: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    let image = &msg["body"][0]["MsgContent"];
    assert_eq!(msg["body"][0]["MsgType"], "TIMImageElem", "{msg}");
    assert_eq!(image["ImageInfoArray"][1]["Width"], 720, "{msg}");
    let file = &msg["body"][1]["MsgContent"];
    assert_eq!((file["FileName"].as_str(), file["FileSize"].as_u64()), (Some("doc.txt"), Some(26)), "{msg}");

    let fetched = dir.path().join("fetched.txt");
    let url = file["Url"].as_str().unwrap();
    let out = client(&server, "bob", &["fetch", url, "-o", fetched.to_str().unwrap()]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), "the minutes of the meeting");
    let thumb = dir.path().join("thumb.png");
    let what = format!("{}/thumb", image["UUID"].as_str().unwrap());
    let out = client(&server, "bob", &["fetch", &what, "-o", thumb.to_str().unwrap()]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(image::image_dimensions(&thumb).unwrap(), (198, 66));
}

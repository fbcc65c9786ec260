//! `duet client` as a user runs it: a child process against a real server, its JSON lines read back.

use std::process::Stdio;
use std::time::Duration;

use duet_test_support::{Proxy, TestServer, text};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
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

    // Search: the messages, newest first, then the cursor (none: one page).
    let search = |args: &[&str]| {
        let mut all = vec!["search"];
        all.extend(args);
        client(&server, "bob", &all).output()
    };
    let out = search(&["--keyword", "CLI", "--peer", "alice", "--type", "TIMTextElem"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!((&lines[0]["msg_key"], &lines[1]["cursor"]), (&sent["msg_key"], &Value::Null));
    let out = search(&["--from", "alice", "--limit", "1"]).await.unwrap();
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["body"][0]["MsgType"], "TIMLocationElem", "newest first");
    let cursor = lines[1]["cursor"].as_str().expect("a second page").to_owned();
    let out = search(&["--from", "alice", "--limit", "1", "--cursor", &cursor]).await.unwrap();
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!((&lines[0]["msg_key"], &lines[1]["cursor"]), (&sent["msg_key"], &Value::Null));
    let out = search(&["--keyword", "here"]).await.unwrap();
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["body"][0]["MsgType"], "TIMLocationElem", "a location's description is its text");
    let bad = search(&[]).await.unwrap();
    assert!(!bad.status.success(), "a search without a condition is refused");
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
    // `send` says what it uploaded: each upload's type, UUID and URL.
    let sent: Value = serde_json::from_slice(&out.stdout).unwrap();
    let uploads = sent["uploads"].as_array().unwrap_or_else(|| panic!("no uploads: {sent}"));
    assert_eq!((uploads[0]["type"].as_str(), uploads[1]["type"].as_str()), (Some("image"), Some("file")), "{sent}");
    for u in uploads {
        let (uuid, url) = (u["uuid"].as_str().unwrap(), u["url"].as_str().unwrap());
        assert_eq!(url, format!("{}/v1/media/{uuid}", server.base_url()), "{sent}");
    }

    let out = client(&server, "bob", &["history", "--peer", "alice"]).output().await.unwrap();
    let msg: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    let image = &msg["body"][0]["MsgContent"];
    assert_eq!(msg["body"][0]["MsgType"], "TIMImageElem", "{msg}");
    assert_eq!(image["ImageInfoArray"][1]["Width"], 720, "{msg}");
    let file = &msg["body"][1]["MsgContent"];
    assert_eq!((file["FileName"].as_str(), file["FileSize"].as_u64()), (Some("doc.txt"), Some(26)), "{msg}");

    assert_eq!(file["UUID"], uploads[1]["uuid"]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_logs_nobody_in_and_registers_no_account() {
    let server = TestServer::spawn().await;
    server.import(&["alice"]).await;
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.txt");
    std::fs::write(&doc, "private").unwrap();
    let out = client(&server, "alice", &["send", "--to", "alice", "--file", doc.to_str().unwrap()]).output().await;
    assert!(out.unwrap().status.success());
    let out = client(&server, "alice", &["history", "--peer", "alice"]).output().await.unwrap();
    let msg: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    let uuid = msg["body"][0]["MsgContent"]["UUID"].as_str().unwrap().to_owned();

    // carol, who never logged in, may not read it; asking does not make her an account.
    let out = client(&server, "carol", &["fetch", &uuid, "-o", dir.path().join("x").to_str().unwrap()]).output().await;
    let out = out.unwrap();
    assert!(!out.status.success());
    let r = server.rest("im_open_login_svc/account_check", json!({"CheckItem": [{"UserID": "carol"}]})).await;
    assert_eq!(r["ResultItem"][0]["AccountStatus"], "NotImported", "{r}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: downloading") && stderr.contains("6006"), "{stderr}");
}

/// Spawns `chat` with a keyboard (stdin) and returns it with its screen (stdout) and stderr lines.
fn chat(
    server_url: &str,
    server: &TestServer,
    user: &str,
    peer: &str,
) -> (Child, tokio::process::ChildStdin, Lines<BufReader<ChildStdout>>, Lines<BufReader<tokio::process::ChildStderr>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    cmd.args(["client", "--server", server_url, "--user", user, "--usersig", &server.usersig(user)])
        .args(["chat", "--peer", peer])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, stdin, stdout, stderr)
}

async fn stderr_line(lines: &mut Lines<BufReader<tokio::process::ChildStderr>>) -> String {
    tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("no line on stderr within 10 s")
        .unwrap()
        .expect("stderr ended")
}

/// The first stderr line starting with `prefix`.
async fn stderr_until(lines: &mut Lines<BufReader<tokio::process::ChildStderr>>, prefix: &str) -> String {
    loop {
        let line = stderr_line(lines).await;
        if line.starts_with(prefix) {
            return line;
        }
    }
}

/// Skips stderr lines up to chat's greeting, which it prints once it showed the history and is ready.
async fn until_ready(lines: &mut Lines<BufReader<tokio::process::ChildStderr>>) {
    stderr_until(lines, "-- chatting with").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_shows_every_element_type_readably_and_marks_what_it_shows_read() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let elems = [
        json!({"MsgType": "TIMFaceElem", "MsgContent": {"Index": 5, "Data": "smile"}}),
        json!({"MsgType": "TIMLocationElem", "MsgContent": {"Desc": "the office", "Latitude": 39.9, "Longitude": 116.4}}),
        json!({"MsgType": "TIMCustomElem", "MsgContent": {"Data": "{\"card\":1}", "Desc": "a card", "Ext": "", "Sound": ""}}),
        json!({"MsgType": "TIMImageElem", "MsgContent": {"UUID": "ext-img", "ImageFormat": 1, "ImageInfoArray": [
            {"Type": 1, "Size": 2048, "Width": 640, "Height": 480, "URL": "https://cdn.example/a.jpg"}]}}),
        json!({"MsgType": "TIMFileElem", "MsgContent": {"Url": "https://cdn.example/r.pdf", "UUID": "ext-file",
            "FileSize": 4096, "FileName": "report.pdf", "Download_Flag": 2}}),
        json!({"MsgType": "TIMSoundElem", "MsgContent": {"Url": "https://cdn.example/v.m4a", "UUID": "ext-sound",
            "Size": 1024, "Second": 7, "Download_Flag": 2}}),
        json!({"MsgType": "TIMVideoFileElem", "MsgContent": {"VideoUrl": "https://cdn.example/v.mp4",
            "VideoUUID": "ext-video", "VideoSize": 8192, "VideoSecond": 12, "VideoFormat": "mp4",
            "ThumbUrl": "https://cdn.example/t.jpg", "ThumbUUID": "ext-thumb", "ThumbSize": 100, "ThumbWidth": 10,
            "ThumbHeight": 10, "ThumbFormat": "JPG"}}),
    ];
    for (i, elem) in elems.iter().enumerate() {
        let i = i as u32 + 1;
        let body =
            json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": i, "MsgRandom": i, "MsgBody": [elem]});
        let r = server.rest("openim/sendmsg", body).await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    let (mut child, stdin, mut screen, mut stderr) = chat(&server.base_url(), &server, "bob", "alice");
    let mut shown = Vec::new();
    for _ in 0..elems.len() {
        shown.push(next_line(&mut screen).await);
    }
    let expected = [
        "alice: [face 5 \"smile\"]",
        "alice: [location \"the office\" at 39.9, 116.4]",
        "alice: [custom data \"{\\\"card\\\":1}\", desc \"a card\"]",
        "alice: [image 640x480, 2.00 KiB: https://cdn.example/a.jpg]",
        "alice: [file \"report.pdf\", 4.00 KiB: https://cdn.example/r.pdf]",
        "alice: [sound 7 s, 1.00 KiB: https://cdn.example/v.m4a]",
        "alice: [video 12 s, 8.00 KiB: https://cdn.example/v.mp4, thumbnail https://cdn.example/t.jpg]",
    ];
    for (line, want) in shown.iter().zip(expected) {
        assert!(line.ends_with(want), "{line:?} should end with {want:?}");
    }
    // What chat showed is read: bob has nothing unread from alice (marked before chat says it is ready).
    until_ready(&mut stderr).await;
    let out = client(&server, "bob", &["conversations"]).output().await.unwrap();
    let conv: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!((conv["peer"].as_str(), conv["unread"].as_u64()), (Some("alice"), Some(0)), "{conv}");

    // A new message is shown and marked read too.
    let r = server
        .rest(
            "openim/sendmsg",
            json!({"From_Account": "alice", "To_Account": "bob", "MsgSeq": 20, "MsgRandom": 20,
            "MsgBody": text("and now?")}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    assert!(next_line(&mut screen).await.ends_with("alice: and now?"));
    // chat takes one thing at a time: once a line typed after the message is echoed, the mark is done.
    let mut stdin = stdin;
    stdin.write_all(b"read it\n").await.unwrap();
    assert!(next_line(&mut screen).await.ends_with("bob: read it"));
    let out = client(&server, "bob", &["conversations"]).output().await.unwrap();
    let conv: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(conv["unread"], 0, "{conv}");
    drop(stdin);
    assert!(tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_ends_at_once_when_kicked_without_waiting_for_a_key() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let (mut child, _keyboard, _screen, mut stderr) = chat(&server.base_url(), &server, "bob", "alice");
    until_ready(&mut stderr).await;
    server.clock.advance_secs(1);
    let r = server.rest("im_open_login_svc/kick", json!({"UserID": "bob"})).await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    // The keyboard stays open and silent: chat must end on its own.
    let line = stderr_until(&mut stderr, "error: ").await;
    assert!(line.starts_with("error: kicked offline (6208)"), "{line}");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("chat did not end").unwrap();
    assert_eq!(status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_tells_a_lost_connection_at_once_and_carries_on_after_it() {
    let server = TestServer::spawn().await;
    server.import(&["alice", "bob"]).await;
    let proxy = Proxy::start(server.addr).await;
    let (_child, _keyboard, mut screen, mut stderr) = chat(&proxy.base_url(), &server, "bob", "alice");
    until_ready(&mut stderr).await;
    proxy.sever();
    stderr_until(&mut stderr, "-- connection lost").await;
    assert_eq!(stderr_line(&mut stderr).await, "-- connected again");
    sendmsg(&server, 1, "after the break").await;
    assert!(next_line(&mut screen).await.ends_with("alice: after the break"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_register_leaves_the_device_registered_and_away_and_push_unregister_ends_it() {
    use duet_test_support::endpoint::{Answer, Endpoint};
    let gateway = Endpoint::start(|_| Answer::json(200, json!({}))).await;
    let toml = format!("[push.webhook]\nurl = \"{}/push\"\nsecret = \"s\"\n", gateway.url);
    let providers = duet_server::config::FileConfig::parse(&toml).unwrap().push.unwrap().providers();
    let server = TestServer::spawn_with(|c| c.push_providers = providers).await;
    server.import(&["alice", "bob"]).await;

    let register = ["--platform", "Android", "push-register", "--provider", "webhook", "--token", "bob-token"];
    let no_device = client(&server, "bob", &register).output().await.unwrap();
    assert!(!no_device.status.success(), "a registration belongs to a device: --device is required");
    let args = [&["--device", "bob-phone"][..], &register[..]].concat();
    let out = client(&server, "bob", &args).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!({"registered": true}));
    let unknown =
        ["--device", "bob-phone", "--platform", "Android", "push-register", "--provider", "apns", "--token", "t"];
    let out = client(&server, "bob", &unknown).output().await.unwrap();
    assert!(!out.status.success(), "apns is not configured on this server");

    push_online(&server, "bob").await;
    sendmsg(&server, 1, "are you there?").await;
    let pushes = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let pushes = gateway.requests();
            if !pushes.is_empty() {
                return pushes;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a push within 10 s");
    assert_eq!(pushes[0].json()["token"], "bob-token");
    assert_eq!(pushes[0].json()["body"], "are you there?");

    let out = client(&server, "bob", &["--device", "bob-phone", "--platform", "Android", "push-unregister"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    sendmsg(&server, 2, "gone?").await;
    // The device logged out: the message is not even queued (the next one's push, to a device registered
    // again, is the barrier).
    let out = client(&server, "bob", &args).output().await.unwrap();
    assert!(out.status.success());
    push_online(&server, "bob").await;
    sendmsg(&server, 3, "back").await;
    let bodies = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let bodies: Vec<Value> = gateway.requests().iter().map(|r| r.json()["body"].clone()).collect();
            if bodies.len() >= 2 {
                return bodies;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the second push within 10 s");
    assert_eq!(bodies, ["are you there?", "back"]);
}

/// Waits until the server has seen `user`'s last device connection end (the user is `PushOnline`).
async fn push_online(server: &TestServer, user: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let r = server.rest("openim/query_online_status", json!({"To_Account": [user]})).await;
            if r["QueryResult"][0]["Status"] == "PushOnline" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("PushOnline within 10 s");
}

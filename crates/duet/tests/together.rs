//! The README's tour as one user in several terminals: the real `duet serve` (its key generated into its
//! data directory), UserSigs from `duet usersig --data`, and `duet client` processes configured through
//! `DUET_SERVER` / `DUET_USER` / `DUET_USERSIG`. bob's `listen` runs throughout while bob also runs
//! `send`, `history`, `conversations`, `fetch` and `chat`: none of them logs another out.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(20);

fn duet() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    cmd.env_remove("DUET_SECRET_KEY").env_remove("DUET_DATA").env_remove("DUET_CONFIG").kill_on_drop(true);
    cmd
}

/// `duet serve` on an ephemeral port over `data`, with the address it logged.
async fn serve(data: &Path) -> (Child, String) {
    let mut child = duet()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting duet serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = next_line(&mut lines, "the server's address").await;
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading the log so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"))
}

async fn usersig(data: &Path, user: &str) -> String {
    let out = duet().args(["usersig", "--user", user, "--data"]).arg(data).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct User {
    server: String,
    name: String,
    sig: String,
}

impl User {
    fn client(&self, args: &[&str]) -> Command {
        let mut cmd = duet();
        cmd.arg("client")
            .args(args)
            .env("DUET_SERVER", &self.server)
            .env("DUET_USER", &self.name)
            .env("DUET_USERSIG", &self.sig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs a one-shot command; asserts it succeeded and returns its stdout's lines.
    async fn run(&self, args: &[&str]) -> Vec<String> {
        let out = tokio::time::timeout(WAIT, self.client(args).output()).await.expect("the command hung").unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{} {args:?} failed: {stderr}", self.name);
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>, what: &str) -> String {
    tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("waiting for {what}: nothing within {WAIT:?}"))
        .expect("reading stdout")
        .unwrap_or_else(|| panic!("waiting for {what}: the process ended"))
}

/// Reads `listen`'s JSON lines until one satisfies `done`; fails on a kick or the end of the stream.
async fn listen_until(lines: &mut Lines<BufReader<ChildStdout>>, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    loop {
        let line = next_line(lines, what).await;
        let event: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_ne!(event["event"], "kicked", "listen was kicked while waiting for {what}: {event}");
        if event["event"] == "connection" && event["state"].as_str().is_some_and(|s| s.starts_with("Disconnected")) {
            panic!("listen lost its connection while waiting for {what}: {event}");
        }
        if done(&event) {
            return event;
        }
    }
}

fn is_message(event: &Value, from: &str, text: &str) -> bool {
    event["event"] == "new_message"
        && event["message"]["from"] == from
        && event["message"]["body"][0]["MsgContent"]["Text"] == text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_runs_listen_send_history_conversations_fetch_and_chat_at_once_and_nobody_is_kicked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("duet-data");
    let (_server, base) = serve(&data).await;
    let alice = User { server: base.clone(), name: "alice".into(), sig: usersig(&data, "alice").await };
    let bob = User { server: base.clone(), name: "bob".into(), sig: usersig(&data, "bob").await };

    // Terminal 1: bob listens (his first login registers him).
    let mut listen = bob.client(&["listen"]).stderr(Stdio::null()).spawn().unwrap();
    let mut events = BufReader::new(listen.stdout.take().unwrap()).lines();
    listen_until(&mut events, "sync_complete", |e| e["event"] == "sync_complete").await;
    alice.run(&["send", "--to", "bob", "--text", "hello bob"]).await;
    listen_until(&mut events, "alice's first message", |e| is_message(e, "alice", "hello bob")).await;

    // Terminals 2..: bob's one-shot commands, each while listen runs.
    bob.run(&["send", "--to", "alice", "--text", "sent by a one-shot"]).await;
    listen_until(&mut events, "bob's own send", |e| is_message(e, "bob", "sent by a one-shot")).await;
    let history = bob.run(&["history", "--peer", "alice"]).await;
    assert_eq!(history.len(), 2, "{history:?}");
    let conversations = bob.run(&["conversations"]).await;
    assert!(conversations[0].contains("\"peer\":\"alice\""), "{conversations:?}");

    // alice sends an image: `send` prints the upload's UUID and URL.
    let png = dir.path().join("cat.png");
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 0])))
        .save(&png)
        .unwrap();
    let sent: Value =
        serde_json::from_str(&alice.run(&["send", "--to", "bob", "--image", png.to_str().unwrap()]).await[0]).unwrap();
    let upload = &sent["uploads"][0];
    let (uuid, url) = (upload["uuid"].as_str().unwrap(), upload["url"].as_str().unwrap());
    assert_eq!(upload["type"], "image", "{sent}");
    assert!(url.starts_with(&base) && url.ends_with(uuid), "{sent}");
    listen_until(&mut events, "the image", |e| e["message"]["body"][0]["MsgType"] == "TIMImageElem").await;
    let fetched = dir.path().join("fetched.png");
    bob.run(&["fetch", url, "-o", fetched.to_str().unwrap()]).await;
    assert_eq!(image::image_dimensions(&fetched).unwrap(), (300, 200));

    // bob chats with alice: the image shows with its URL, typed lines are sent, alice's replies shown.
    let mut chat = bob.client(&["chat", "--peer", "alice"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut keyboard = chat.stdin.take().unwrap();
    let mut screen = BufReader::new(chat.stdout.take().unwrap()).lines();
    // The three messages so far (in the order of their time, then of their random MsgSeq within a second).
    let mut shown = Vec::new();
    for _ in 0..3 {
        shown.push(next_line(&mut screen, "chat's recent history").await);
    }
    let image_line = shown.iter().find(|l| l.contains("alice: [image")).unwrap_or_else(|| panic!("{shown:?}"));
    assert!(image_line.contains(url), "the image is shown with its URL: {image_line}");
    assert!(image_line.contains("300x200"), "{image_line}");

    keyboard.write_all(b"typed in chat\n").await.unwrap();
    let line = next_line(&mut screen, "the typed line").await;
    assert!(line.ends_with("bob: typed in chat"), "{line}");
    listen_until(&mut events, "chat's send", |e| is_message(e, "bob", "typed in chat")).await;

    alice.run(&["send", "--to", "bob", "--text", "reply to chat"]).await;
    let line = next_line(&mut screen, "alice's reply").await;
    assert!(line.ends_with("alice: reply to chat"), "{line}");
    listen_until(&mut events, "alice's reply", |e| is_message(e, "alice", "reply to chat")).await;
    // chat marks what it shows as read: listen hears of it.
    listen_until(&mut events, "the read mark", |e| {
        e["event"] == "conversation_changed" && e["conversation"]["peer"] == "alice" && e["conversation"]["unread"] == 0
    })
    .await;

    drop(keyboard); // Ctrl-D
    let status = tokio::time::timeout(WAIT, chat.wait()).await.expect("chat did not end").unwrap();
    assert!(status.success());

    // listen is still there for the next message.
    alice.run(&["send", "--to", "bob", "--text", "later"]).await;
    listen_until(&mut events, "the later message", |e| is_message(e, "alice", "later")).await;
    assert!(listen.try_wait().unwrap().is_none(), "listen is still running");
}

//! The real `duet serve --tls-cert --tls-key` with a certificate from a CA made for the test, and the real
//! `duet client --ca-cert … send` against it: the message and an image reach a peer over `wss://` and
//! `https://`; without the CA the client fails with a TLS error; half a TLS configuration is refused; a
//! SIGTERM stops the server cleanly.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use duet_client::{Client, ClientConfig, Event, Events, Message, MsgElem};
use duet_core::clock::{Clock, SystemClock};
use duet_test_support::TestCerts;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SDKAPPID: u64 = 1_400_000_001;
const KEY: &str = "a test key for the tls test";
const WAIT: Duration = Duration::from_secs(20);

fn usersig(user: &str) -> String {
    duet_core::usersig::generate(KEY, SDKAPPID, user, SystemClock.now_secs(), 86_400, None)
}

/// The test CA, the server's certificate and key, as files.
struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    ca_pem: String,
}

fn write_certs(dir: &Path) -> Files {
    let certs = TestCerts::generate();
    let files = Files {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca_pem: certs.ca_pem.clone(),
    };
    std::fs::write(&files.ca, &certs.ca_pem).unwrap();
    std::fs::write(&files.cert, &certs.cert_pem).unwrap();
    std::fs::write(&files.key, &certs.key_pem).unwrap();
    files
}

fn serve(data: &Path, args: &[&Path]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env("DUET_SDKAPPID", SDKAPPID.to_string())
        .env("DUET_SECRET_KEY", KEY)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts `duet serve` with TLS; returns it and the line it logged when it started serving.
async fn start_tls(data: &Path, files: &Files) -> (Child, String) {
    let tls = [Path::new("--tls-cert"), &files.cert, Path::new("--tls-key"), &files.key];
    let mut child = serve(data, &tls).spawn().expect("starting duet serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("reading the log") {
            if line.contains("duet is serving") {
                return line;
            }
        }
        panic!("duet serve ended before serving");
    })
    .await
    .expect("duet serve did not start within 20 s");
    // Keep reading the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, serving)
}

fn client(server: &str, user: &str, ca: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_duet"));
    cmd.args(["client", "--server", server, "--user", user, "--usersig", &usersig(user)]);
    if let Some(ca) = ca {
        cmd.arg("--ca-cert").arg(ca);
    }
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

async fn next_message(events: &mut Events) -> Message {
    let wait = async {
        loop {
            match events.recv().await {
                Some(Event::NewMessage(m)) => return m,
                Some(_) => {}
                None => panic!("bob's event stream ended"),
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.expect("no message for bob within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duet_client_with_ca_cert_sends_text_and_an_image_to_duet_serve_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_certs(dir.path());
    let (mut server, serving) = start_tls(&dir.path().join("data"), &files).await;
    assert!(serving.contains("tls=true"), "the start is logged with TLS on: {serving}");
    let addr = serving.split("addr=").nth(1).and_then(|s| s.split_whitespace().next()).expect("the address");
    let base = format!("https://{addr}");

    // Bob listens through the SDK, trusting the same CA.
    let bob = ClientConfig::new(&base, "bob", usersig("bob")).trust_ca_pem(&files.ca_pem);
    let (bob, mut bob_events) = tokio::time::timeout(WAIT, Client::connect(bob)).await.unwrap().expect("bob connects");

    let out =
        client(&base, "alice", Some(&files.ca), &["send", "--to", "bob", "--text", "over tls"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent: Value = serde_json::from_slice(&out.stdout).expect("the send's JSON answer");
    let got = next_message(&mut bob_events).await;
    assert_eq!((got.from.as_str(), got.text().as_str()), ("alice", "over tls"));
    assert_eq!(Some(got.msg_key.as_str()), sent["msg_key"].as_str());

    // An upload over https, the CA given through the environment this time.
    let png = dir.path().join("pic.png");
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(300, 200, |x, _| image::Rgb([x as u8, 0, 0])))
        .save(&png)
        .unwrap();
    let out = client(&base, "alice", None, &["send", "--to", "bob", "--image", png.to_str().unwrap()])
        .env("DUET_CA_CERT", &files.ca)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = next_message(&mut bob_events).await;
    let MsgElem::Image(image) = &got.elems[0] else { panic!("an image: {:?}", got.elems) };
    let original = &image.image_info_array[0];
    assert_eq!((original.width, original.height), (300, 200));
    assert!(original.url.starts_with(&format!("{base}/v1/media/")), "{}", original.url);
    let fetched = dir.path().join("fetched.png");
    bob.download(&original.url, &fetched, |_, _| {}).await.expect("bob downloads over https");
    assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(&png).unwrap());

    // Without the CA, the client stops with a TLS error.
    let out = client(&base, "alice", None, &["send", "--to", "bob", "--text", "untrusted"]).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid peer certificate: UnknownIssuer"), "{stderr}");

    // SIGTERM: the server stops cleanly, with bob still connected.
    let pid = server.id().expect("the server's pid").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, server.wait()).await.expect("duet serve stops").unwrap();
    assert!(status.success(), "duet serve exited with {status}");
    drop(bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_tls_configuration_or_a_bad_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_certs(dir.path());
    let data = dir.path().join("data");

    let only_cert = [Path::new("--tls-cert"), &files.cert];
    let out = serve(&data, &only_cert).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-cert needs --tls-key"), "{stderr}");

    let out = serve(&data, &[]).env("DUET_TLS_KEY", &files.key).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-key needs --tls-cert"), "{stderr}");

    // The CA's certificate with the server's key: they do not match.
    let mismatched = [Path::new("--tls-cert"), &files.ca, Path::new("--tls-key"), &files.key];
    let out = serve(&data, &mismatched).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be used"), "{stderr}");

    // A key file that holds no key.
    let swapped = [Path::new("--tls-cert"), &files.cert, Path::new("--tls-key"), &files.cert];
    let out = serve(&data, &swapped).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds no private key"), "{stderr}");
}

//! The SDK over TLS against the real server serving `https://` and `wss://` itself, with a certificate
//! from a CA made for the test: logging in, a message the peer receives, an image uploaded and
//! downloaded; a client that does not trust the CA fails at once with a TLS error; sockets that never
//! finish a handshake neither stop the server nor hold up its shutdown.

mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use common::*;
use duet_client::{Client, ClientConfig, Error, MsgElem, Platform, SendOptions};
use duet_test_support::TestServer;
use image::{DynamicImage, ImageFormat, RgbImage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A configuration for `user` that trusts the server's test CA.
fn trusting(server: &TestServer, user: &str) -> ClientConfig {
    let ca = &server.certs().expect("a TLS server").ca_pem;
    config(&server.base_url(), user, &server.usersig(user), Platform::Linux).trust_ca_pem(ca)
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).unwrap();
    bytes
}

#[tokio::test]
async fn over_tls_the_sdk_logs_in_sends_and_uploads_and_downloads_media() {
    let server = TestServer::spawn_tls().await;
    let base = server.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    // The port speaks TLS only: plain HTTP gets no answer.
    let plain = reqwest::Client::new().post(format!("http://{}/v4/x/y", server.addr)).send().await;
    assert!(plain.is_err(), "plain HTTP to the TLS port: {plain:?}");

    let (alice, _alice_events, _) = connect_synced(trusting(&server, "alice")).await;
    let (bob, mut bob_events, _) = connect_synced(trusting(&server, "bob")).await;

    // A message over wss://, pushed to the peer.
    let sent = alice.send_text("bob", "hello over tls").await.expect("sending over wss");
    let got = next_message(&mut bob_events).await;
    assert_eq!(
        (got.from.as_str(), got.text().as_str(), got.msg_key.as_str()),
        ("alice", "hello over tls", sent.msg_key.as_str())
    );

    // An image over https://: its URLs say https, the peer downloads it through them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat.png");
    let bytes = png(400, 300);
    std::fs::write(&path, &bytes).unwrap();
    let elem = alice.create_image_message(&path, |_, _| {}).await.expect("uploading over https");
    let MsgElem::Image(image) = &elem else { panic!("an image element: {elem:?}") };
    let dims: Vec<_> = image.image_info_array.iter().map(|i| (i.kind, i.width, i.height)).collect();
    assert_eq!(dims, vec![(1, 400, 300), (2, 400, 300), (3, 198, 149)]);
    for info in &image.image_info_array {
        assert!(info.url.starts_with(&format!("{base}/v1/media/")), "{}", info.url);
    }
    alice.send_message("bob", vec![elem.clone()], SendOptions::default()).await.expect("sending the image");
    let got = next_message(&mut bob_events).await;
    let MsgElem::Image(received) = &got.elems[0] else { panic!("{:?}", got.elems) };
    let original = &received.image_info_array[0];
    assert!(original.url.starts_with("https://"), "{}", original.url);
    let out = dir.path().join("received.png");
    let n = bob.download(&original.url, &out, |_, _| {}).await.expect("downloading over https");
    assert_eq!(n, bytes.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let thumb = dir.path().join("thumb.png");
    bob.download(&format!("{}/thumb", image.uuid), &thumb, |_, _| {}).await.expect("by UUID over https");
    let decoded = image::open(&thumb).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (198, 149));

    alice.logout().await.unwrap();
    bob.logout().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails_at_once_with_a_tls_error() {
    let server = TestServer::spawn_tls().await;
    let untrusting = config(&server.base_url(), "alice", &server.usersig("alice"), Platform::Linux);
    let started = Instant::now();
    let e = within("connecting without the CA", Client::connect(untrusting)).await.unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("certificate") && text.contains("UnknownIssuer"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused, not timed out: {:?}", started.elapsed());

    // Another CA (of the same name: the signature gives it away) does not help either.
    let other = duet_test_support::TestCerts::generate();
    let wrong =
        config(&server.base_url(), "alice", &server.usersig("alice"), Platform::Linux).trust_ca_pem(&other.ca_pem);
    let e = within("connecting with another CA", Client::connect(wrong)).await.unwrap_err();
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");

    // A CA that is not PEM is a configuration error before anything is sent.
    let bad = config(&server.base_url(), "alice", &server.usersig("alice"), Platform::Linux).trust_ca_pem("not pem");
    let e = Client::connect(bad).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert_eq!(e.to_string(), "invalid configuration: the extra CA holds no CERTIFICATE block");

    // The server is none the worse.
    let (alice, _events, _) = connect_synced(trusting(&server, "alice")).await;
    alice.logout().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn sockets_that_never_finish_a_handshake_neither_stop_the_server_nor_hold_up_shutdown() {
    let server = TestServer::spawn_tls().await;
    // One socket says nothing; another says something that is not TLS.
    let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut garbage = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    // The failed handshake is answered with a TLS alert or nothing, and the socket is closed.
    let mut answer = Vec::new();
    within("the server closing a socket that is not TLS", garbage.read_to_end(&mut answer)).await.ok();
    assert!(!answer.starts_with(b"HTTP/"), "no HTTP answer on the TLS port");

    // Others connect as usual meanwhile, and the server stops at once, the silent socket included.
    let (alice, _alice_events, _) = connect_synced(trusting(&server, "alice")).await;
    let (bob, mut bob_events, _) = connect_synced(trusting(&server, "bob")).await;
    alice.send_text("bob", "still here").await.unwrap();
    assert_eq!(next_message(&mut bob_events).await.text(), "still here");
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5), "graceful shutdown took {:?}", started.elapsed());
    drop((alice, bob));
}

//! The server's own TLS at the socket: ALPN picks HTTP/2 or HTTP/1.1 and each is served; uploads and
//! REST sends over https hand out download URLs that say `https://`, and those URLs work.

use std::sync::Arc;

use duet_test_support::TestServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TLS connection to `server` offering `alpn`, trusting its test CA.
async fn connect(server: &TestServer, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = server.certs().expect("a TLS server").ca_pem.as_bytes();
    roots.add(CertificateDer::from_pem_slice(ca).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("the TLS handshake")
}

#[tokio::test]
async fn alpn_picks_http2_or_http1_and_each_is_served() {
    let server = TestServer::spawn_tls().await;

    // HTTP/2: the server answers the connection preface with its SETTINGS frame.
    let mut h2 = connect(&server, &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap(); // an empty SETTINGS frame
    let mut header = [0u8; 9];
    h2.read_exact(&mut header).await.unwrap();
    assert_eq!((header[3], &header[5..9]), (4, &[0u8, 0, 0, 0][..]), "a SETTINGS frame on stream 0: {header:?}");
    // Closed here: a client that never answers the server's shutdown PING would hold the stop to its grace.
    drop(h2);

    // HTTP/1.1, asked for or by default.
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let mut h1 = connect(&server, alpn).await;
        assert_eq!(h1.get_ref().1.alpn_protocol(), alpn.first().copied());
        let request = "POST /v4/no/such HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        h1.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        h1.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("\"ErrorCode\":60009"), "Tencent's error body: {answer}");
    }
    server.stop().await;
}

#[tokio::test]
async fn uploads_and_rest_sends_over_https_hand_out_https_urls() {
    let server = TestServer::spawn_tls().await;
    let base = server.base_url();
    assert!(base.starts_with("https://"), "{base}");
    server.import(&["alice", "bob"]).await;
    let ca = reqwest::Certificate::from_pem(server.certs().unwrap().ca_pem.as_bytes()).unwrap();
    let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let auth = |user: &str| format!("identifier={user}&usersig={}", server.usersig(user));

    let url = format!("{base}/v1/media?type=file&filename=notes.txt&{}", auth("alice"));
    let up: Value = http.post(url).body("the minutes").send().await.unwrap().json().await.unwrap();
    let uuid = up["UUID"].as_str().expect("an upload");
    assert_eq!(up["URL"], format!("{base}/v1/media/{uuid}"), "{up}");

    let body =
        json!([{"MsgType": "TIMFileElem", "MsgContent": {"UUID": uuid, "Url": "http://x/forged", "FileSize": 1}}]);
    let r = server
        .rest("openim/sendmsg", json!({"From_Account": "alice", "To_Account": "bob", "MsgRandom": 1, "MsgBody": body}))
        .await;
    assert_eq!(r["ErrorCode"], 0, "{r}");
    let roam = server
        .rest("openim/admin_getroammsg", json!({"Operator_Account": "bob", "Peer_Account": "alice", "MaxCnt": 10, "MinTime": 0, "MaxTime": 4_000_000_000u64}))
        .await;
    let file = &roam["MsgList"][0]["MsgBody"][0]["MsgContent"];
    assert_eq!((&file["Url"], &file["FileSize"]), (&up["URL"], &json!(11)), "the server's https URL: {roam}");

    let got = http.get(format!("{}?{}", up["URL"].as_str().unwrap(), auth("bob"))).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), "the minutes");
    server.stop().await;
}

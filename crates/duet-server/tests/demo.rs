//! Demo mode (issue 18): with `Config::demo` the server serves the chat page at `/demo`, under a strict
//! Content-Security-Policy, and `POST /demo/usersig` hands out UserSigs that log in, for any valid UserID
//! but the admins'; without it everything under `/demo` is 404.

use duet_core::clock::Clock;
use duet_test_support::{ADMIN, SDKAPPID, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

async fn demo_server() -> TestServer {
    TestServer::spawn_with(|c| c.demo = true).await
}

async fn get(s: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", s.base_url())).await.unwrap()
}

async fn ask_usersig(s: &TestServer, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/demo/usersig", s.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json; charset=utf-8");
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_types_and_a_strict_csp() {
    let s = demo_server().await;
    for (path, content_type) in [
        ("/demo", "text/html; charset=utf-8"),
        ("/demo/", "text/html; charset=utf-8"),
        ("/demo/index.html", "text/html; charset=utf-8"),
        ("/demo/app.js", "text/javascript; charset=utf-8"),
        ("/demo/app.css", "text/css; charset=utf-8"),
    ] {
        let resp = get(&s, path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let headers = resp.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.split(';').any(|d| d.trim() == directive), "{path}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(!resp.bytes().await.unwrap().is_empty(), "{path}");
    }
    let page = get(&s, "/demo").await.text().await.unwrap();
    assert!(page.contains("/demo/app.js") && page.contains("/demo/app.css"), "{page}");
    assert!(page.contains("Demo mode"), "the page says that demo mode hands out UserSigs: {page}");
    for path in ["/demo/nothing.js", "/demo/dist/app.js", "/demo/a/b", "/demo/%2e%2e%2fCargo.toml"] {
        assert_eq!(get(&s, path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn a_demo_usersig_logs_in_over_the_websocket() {
    let s = demo_server().await;
    let (status, answer) = ask_usersig(&s, json!({"userID": "alice"}).to_string()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["SDKAppID"], SDKAPPID);
    assert_eq!(answer["userID"], "alice");
    assert_eq!(answer["expireSecs"], 86_400);
    let sig = answer["userSig"].as_str().unwrap();
    let now = s.clock.now_secs();
    let claims = duet_core::usersig::verify(duet_test_support::SECRET_KEY, SDKAPPID, "alice", sig, now)
        .expect("the UserSig verifies with the app's key");
    assert_eq!((claims.identifier.as_str(), claims.time, claims.expire), ("alice", now, 86_400));

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/connect", s.addr)).await.unwrap();
    let login = json!({"op": "login", "id": 1, "protocol": 1, "user": "alice", "usersig": sig,
                       "platform": "Web", "device": "alice-browser"});
    ws.send(Ws::Text(login.to_string().into())).await.unwrap();
    let reply = loop {
        let Some(Ok(Ws::Text(t))) = ws.next().await else { panic!("the connection ended") };
        let f: Value = serde_json::from_str(&t).unwrap();
        if f["id"] == 1 {
            break f;
        }
    };
    assert_eq!(reply["op"], "logged_in", "{reply}");
}

#[tokio::test]
async fn admins_and_invalid_user_ids_get_no_usersig() {
    let s = demo_server().await;
    let (status, answer) = ask_usersig(&s, json!({"userID": ADMIN}).to_string()).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("admin"), "{answer}");
    assert!(answer.get("userSig").is_none());

    let too_long = "x".repeat(33);
    for bad in [
        json!({"userID": ""}),
        json!({"userID": " alice"}),
        json!({"userID": too_long}),
        json!({"userID": "a\u{200b}b"}),
    ] {
        let (status, answer) = ask_usersig(&s, bad.to_string()).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["error"].is_string() && answer.get("userSig").is_none(), "{answer}");
    }
    for bad in ["", "alice", "{\"user\": \"alice\"}", "{\"userID\": 7}"] {
        let (status, answer) = ask_usersig(&s, bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
}

#[tokio::test]
async fn an_address_asking_too_often_is_throttled() {
    let s = TestServer::spawn_with(|c| {
        c.demo = true;
        c.rate_limits.failed_logins_per_ip = 3;
    })
    .await;
    for k in 0..3 {
        let (status, answer) = ask_usersig(&s, json!({"userID": format!("u{k}")}).to_string()).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, answer) = ask_usersig(&s, json!({"userID": "u3"}).to_string()).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("retry in"), "{answer}");
}

#[tokio::test]
async fn without_demo_mode_everything_under_demo_is_404() {
    let s = TestServer::spawn().await;
    for path in ["/demo", "/demo/", "/demo/index.html", "/demo/app.js", "/demo/app.css", "/demo/usersig", "/demo/a/b"] {
        assert_eq!(get(&s, path).await.status(), 404, "GET {path}");
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/demo/usersig", s.base_url()))
        .body(json!({"userID": "alice"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(!resp.text().await.unwrap().contains("userSig"));
}

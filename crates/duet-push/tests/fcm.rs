//! FCM against a local endpoint that plays both Google's token URL and FCM: the OAuth2 assertion
//! (verified with the test key's public half), the token's reuse and renewal, the message, and each
//! kind of answer mapped to its outcome.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::Method;
use common::{now, target};
use duet_core::push::{AndroidOptions, ApnsOptions, Notification, Outcome, Provider};
use duet_push::Clients;
use duet_push::fcm::{Fcm, FcmConfig};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use ring::signature::RSA_PKCS1_2048_8192_SHA256;
use serde_json::{Value, json};
use tempfile::NamedTempFile;

/// A key made for these tests only (tests/data/README.md).
const PRIVATE_KEY: &str = include_str!("data/fcm-test-key.pem");
/// Its public half, PKCS#1 DER.
const PUBLIC_KEY: &[u8] = include_bytes!("data/fcm-test-key.pub.der");
const CLIENT_EMAIL: &str = "duet-push@duet-test.iam.gserviceaccount.com";
const SEND_PATH: &str = "/v1/projects/duet-test/messages:send";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// A service account key file whose `token_uri` is `token_uri`.
fn service_account(token_uri: &str) -> NamedTempFile {
    let account = json!({
        "type": "service_account",
        "project_id": "duet-test",
        "private_key_id": "0123456789abcdef",
        "private_key": PRIVATE_KEY,
        "client_email": CLIENT_EMAIL,
        "client_id": "100000000000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    });
    let mut file = NamedTempFile::new().unwrap();
    file.write_all(account.to_string().as_bytes()).unwrap();
    file
}

fn config(account: &NamedTempFile, url: &str) -> FcmConfig {
    FcmConfig {
        service_account_file: account.path().to_owned(),
        project_id: None,
        url: Some(url.into()),
        token_url: None,
    }
}

/// The token URL's part of an endpoint: a new access token per call, `ya29.test-<n>`.
fn token_answer(calls: &AtomicUsize) -> Answer {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    Answer::json(200, json!({"access_token": format!("ya29.test-{n}"), "expires_in": 3599, "token_type": "Bearer"}))
}

/// An endpoint whose token URL is `/token` and whose send answers `send(request, message token)`.
async fn endpoint(send: impl Fn(&Recorded, &str) -> Answer + Send + Sync + 'static) -> (Endpoint, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let endpoint = Endpoint::start(move |r| match r.path() {
        "/token" => token_answer(&counter),
        SEND_PATH => {
            let token = r.json()["message"]["token"].as_str().unwrap_or_default().to_owned();
            send(r, &token)
        }
        _ => Answer::empty(404),
    })
    .await;
    (endpoint, calls)
}

fn fcm(endpoint: &Endpoint, account: &NamedTempFile) -> Fcm {
    Fcm::new(&config(account, &endpoint.url), &Clients::new(None).unwrap()).unwrap()
}

fn notification() -> Notification {
    Notification { body: "are you coming tonight?".into(), msg_key: "1700000000_42_7".into(), ..common::notification() }
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    let status_name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    Answer::json(
        status,
        json!({"error": {"code": status, "message": message, "status": status_name, "details": [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
        ]}}),
    )
}

fn sent() -> Answer {
    Answer::json(200, json!({"name": "projects/duet-test/messages/0:1700000000000000%abc"}))
}

/// Checks the assertion's RS256 signature with the test key's public half; returns header and claims.
fn verify_assertion(jwt: &str) -> (Value, Value) {
    common::verify_jws(jwt, &RSA_PKCS1_2048_8192_SHA256, PUBLIC_KEY)
}

#[tokio::test]
async fn a_signed_assertion_buys_one_token_for_several_pushes() {
    let (endpoint, token_calls) = endpoint(|_, _| sent()).await;
    let account = service_account(&format!("{}/token", endpoint.url));
    let fcm = fcm(&endpoint, &account);
    let before = now();
    for _ in 0..3 {
        assert_eq!(fcm.send(&target("device-1"), &notification()).await, Outcome::Sent);
    }
    let after = now();
    assert_eq!(token_calls.load(Ordering::SeqCst), 1);

    let token_requests = endpoint.requests_to("/token");
    assert_eq!(token_requests.len(), 1);
    let t = &token_requests[0];
    assert_eq!(t.method, Method::POST);
    assert_eq!(t.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form = t.form();
    assert_eq!(form.len(), 2, "{form:?}");
    assert_eq!(t.form_value("grant_type").as_deref(), Some("urn:ietf:params:oauth:grant-type:jwt-bearer"));
    let (header, claims) = verify_assertion(&t.form_value("assertion").unwrap());
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"}));
    let iat = claims["iat"].as_u64().unwrap();
    assert!((before..=after).contains(&iat), "iat {iat}");
    assert_eq!(
        claims,
        json!({
            "iss": CLIENT_EMAIL,
            "scope": SCOPE,
            "aud": format!("{}/token", endpoint.url),
            "iat": iat,
            "exp": iat + 3600,
        })
    );

    let sends = endpoint.requests_to(SEND_PATH);
    assert_eq!(sends.len(), 3);
    for s in &sends {
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.header("authorization"), Some("Bearer ya29.test-1"));
        assert_eq!(s.header("content-type"), Some("application/json"));
    }
    assert_eq!(
        sends[0].json(),
        json!({"message": {
            "token": "device-1",
            "notification": {"title": "Alice", "body": "are you coming tonight?"},
            "data": {"ext": r#"{"conv":"c2c_alice"}"#, "sender": "alice", "msg_key": "1700000000_42_7"},
            "android": {"priority": "HIGH", "notification": {"notification_count": 3}},
            "apns": {"payload": {"aps": {"badge": 3}}},
        }})
    );
}

#[tokio::test]
async fn the_android_and_apns_options_reach_the_message() {
    let (endpoint, _) = endpoint(|_, _| sent()).await;
    let account = service_account(&format!("{}/token", endpoint.url));
    let fcm = fcm(&endpoint, &account);
    let mut n = notification();
    n.badge = None;
    n.android = AndroidOptions {
        sound: "ping".into(),
        google_channel_id: "chat".into(),
        google_image: "https://img.example/a.png".into(),
        ..AndroidOptions::default()
    };
    n.apns = ApnsOptions {
        sound: "ping.caf".into(),
        image: "https://img.example/a.png".into(),
        mutable_content: true,
        interruption_level: "time-sensitive".into(),
        ..ApnsOptions::default()
    };
    assert_eq!(fcm.send(&target("device-1"), &n).await, Outcome::Sent);
    let message = endpoint.requests_to(SEND_PATH)[0].json()["message"].clone();
    assert_eq!(
        message["android"],
        json!({"priority": "HIGH", "notification": {
            "channel_id": "chat", "sound": "ping", "image": "https://img.example/a.png"
        }})
    );
    assert_eq!(
        message["apns"],
        json!({
            "payload": {"aps": {"sound": "ping.caf", "mutable-content": 1, "interruption-level": "time-sensitive"}},
            "fcm_options": {"image": "https://img.example/a.png"},
        })
    );
}

#[tokio::test]
async fn a_401_fetches_a_new_token_and_retries_once() {
    // The first access token stops working after the first push.
    let (endpoint, token_calls) = endpoint(|r, token| {
        if token == "device-2" && r.header("authorization") == Some("Bearer ya29.test-1") {
            error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        } else {
            sent()
        }
    })
    .await;
    let account = service_account(&format!("{}/token", endpoint.url));
    let fcm = fcm(&endpoint, &account);
    assert_eq!(fcm.send(&target("device-1"), &notification()).await, Outcome::Sent);
    assert_eq!(fcm.send(&target("device-2"), &notification()).await, Outcome::Sent);
    assert_eq!(token_calls.load(Ordering::SeqCst), 2);
    assert_eq!(fcm.send(&target("device-3"), &notification()).await, Outcome::Sent);
    assert_eq!(token_calls.load(Ordering::SeqCst), 2, "the new token is kept");

    let auth: Vec<String> =
        endpoint.requests_to(SEND_PATH).iter().map(|r| r.header("authorization").unwrap().to_owned()).collect();
    assert_eq!(auth, ["Bearer ya29.test-1", "Bearer ya29.test-1", "Bearer ya29.test-2", "Bearer ya29.test-2"]);
}

#[tokio::test]
async fn a_401_to_the_new_token_too_fails_without_a_third_try() {
    let (endpoint, token_calls) =
        endpoint(|_, _| error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")).await;
    let account = service_account(&format!("{}/token", endpoint.url));
    let fcm = fcm(&endpoint, &account);
    let outcome = fcm.send(&target("device-1"), &notification()).await;
    assert!(matches!(&outcome, Outcome::Failed { reason } if reason.contains("UNAUTHENTICATED")), "{outcome:?}");
    assert_eq!(token_calls.load(Ordering::SeqCst), 2);
    assert_eq!(endpoint.requests_to(SEND_PATH).len(), 2);
}

#[tokio::test]
async fn a_third_party_auth_error_is_not_retried() {
    let (endpoint, token_calls) =
        endpoint(|_, _| error(401, "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service")).await;
    let account = service_account(&format!("{}/token", endpoint.url));
    let fcm = fcm(&endpoint, &account);
    let outcome = fcm.send(&target("device-1"), &notification()).await;
    assert!(matches!(&outcome, Outcome::Failed { reason } if reason.contains("THIRD_PARTY_AUTH_ERROR")), "{outcome:?}");
    assert_eq!(token_calls.load(Ordering::SeqCst), 1);
    assert_eq!(endpoint.requests_to(SEND_PATH).len(), 1);
}

#[tokio::test]
async fn each_answer_maps_to_its_outcome() {
    let (endpoint, _) = endpoint(|_, token| match token {
        "ok" => sent(),
        "gone" => error(404, "UNREGISTERED", "Requested entity was not found."),
        "mismatch" => error(403, "SENDER_ID_MISMATCH", "SenderId mismatch"),
        "bad-token" => error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
        "bad-payload" => error(400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value'"),
        "busy" => {
            let mut a = error(503, "UNAVAILABLE", "The service is currently unavailable.");
            a.headers.push(("retry-after", "30".into()));
            a
        }
        "quota" => error(429, "QUOTA_EXCEEDED", "Quota exceeded."),
        "internal" => error(500, "INTERNAL", "Internal error."),
        "html-502" => Answer {
            status: 502,
            headers: Vec::new(),
            body: "<html>Bad Gateway</html>".into(),
            delay: std::time::Duration::ZERO,
        },
        "html-400" => Answer {
            status: 400,
            headers: Vec::new(),
            body: "<html>Bad Request</html>".into(),
            delay: std::time::Duration::ZERO,
        },
        _ => Answer::empty(500),
    })
    .await;
    let account = service_account(&format!("{}/token", endpoint.url));
    let fcm = fcm(&endpoint, &account);
    let send = |token: &'static str| {
        let fcm = &fcm;
        async move { fcm.send(&target(token), &notification()).await }
    };

    assert_eq!(send("ok").await, Outcome::Sent);
    assert!(matches!(send("gone").await, Outcome::InvalidToken { reason } if reason.contains("UNREGISTERED")));
    assert!(matches!(send("mismatch").await, Outcome::InvalidToken { .. }));
    assert!(matches!(send("bad-token").await, Outcome::InvalidToken { .. }));
    assert!(matches!(send("bad-payload").await, Outcome::Failed { reason } if reason.contains("INVALID_ARGUMENT")));
    assert!(matches!(send("busy").await, Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(30)));
    assert!(matches!(send("quota").await, Outcome::Retry { .. }));
    assert!(matches!(send("internal").await, Outcome::Retry { after: None, .. }));
    assert!(matches!(send("html-502").await, Outcome::Retry { .. }));
    assert!(matches!(send("html-400").await, Outcome::Failed { .. }));
    // None of these was an authentication failure: no second try.
    assert_eq!(endpoint.requests_to(SEND_PATH).len(), 10);
    assert_eq!(endpoint.requests_to("/token").len(), 1);
}

#[tokio::test]
async fn the_token_urls_refusal_fails_and_its_outage_retries() {
    let endpoint = Endpoint::start(|r| match r.path() {
        "/refuses" => {
            Answer::json(400, json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))
        }
        "/down" => Answer::empty(503),
        _ => sent(),
    })
    .await;
    let account = service_account(&format!("{}/refuses", endpoint.url));
    let refused = fcm(&endpoint, &account);
    let outcome = refused.send(&target("device-1"), &notification()).await;
    assert!(matches!(&outcome, Outcome::Failed { reason } if reason.contains("invalid_grant")), "{outcome:?}");

    // `token_url` overrides the file's `token_uri`, and is the assertion's audience.
    let mut down = config(&account, &endpoint.url);
    down.token_url = Some(format!("{}/down", endpoint.url));
    let down = Fcm::new(&down, &Clients::new(None).unwrap()).unwrap();
    let outcome = down.send(&target("device-1"), &notification()).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    let (_, claims) = verify_assertion(&endpoint.requests_to("/down")[0].form_value("assertion").unwrap());
    assert_eq!(claims["aud"], format!("{}/down", endpoint.url));

    assert!(endpoint.requests_to(SEND_PATH).is_empty());
}

#[test]
fn a_bad_service_account_file_is_named() {
    let clients = Clients::new(None).unwrap();
    let mut missing = config(&service_account("http://127.0.0.1:1/token"), "http://127.0.0.1:1");
    missing.service_account_file = "/nonexistent/sa.json".into();
    let error = Fcm::new(&missing, &clients).err().unwrap().to_string();
    assert!(error.starts_with("[push.fcm]: service_account_file /nonexistent/sa.json"), "{error}");

    let mut no_key = NamedTempFile::new().unwrap();
    no_key.write_all(json!({"client_email": CLIENT_EMAIL, "private_key": "x"}).to_string().as_bytes()).unwrap();
    let error = Fcm::new(&config(&no_key, "http://127.0.0.1:1"), &clients).err().unwrap().to_string();
    assert!(error.contains("private_key"), "{error}");

    let mut no_project = NamedTempFile::new().unwrap();
    no_project
        .write_all(json!({"client_email": CLIENT_EMAIL, "private_key": PRIVATE_KEY}).to_string().as_bytes())
        .unwrap();
    let error = Fcm::new(&config(&no_project, "http://127.0.0.1:1"), &clients).err().unwrap().to_string();
    assert!(error.contains("project_id"), "{error}");
}

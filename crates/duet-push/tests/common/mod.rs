//! What the providers' tests share: the push they send, a configuration from JSON, an endpoint that
//! plays a token (or auth) call beside the push service, an answer a test changes between pushes, a URL
//! where nothing listens, each outcome's name, and a signed JWT's check. Each test keeps its own
//! expectations.

// Each test binary uses a part of this.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use duet_core::push::{Notification, Outcome, Target};
use duet_test_support::endpoint::{Answer, Endpoint, Recorded};
use ring::signature::{UnparsedPublicKey, VerificationAlgorithm};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Alice's message to Bob, with a badge of 3.
pub fn notification() -> Notification {
    Notification {
        title: "Alice".into(),
        body: "See you at 8?".into(),
        ext: r#"{"conv":"c2c_alice"}"#.into(),
        badge: Some(3),
        from: "alice".into(),
        to: "bob".into(),
        msg_key: "1_2_3".into(),
        ..Notification::default()
    }
}

/// The device `token` of the configured app.
pub fn target(token: &str) -> Target {
    Target { token: token.into(), app_id: None }
}

/// A provider's configuration: the JSON object `base` with the fields of `extra` set over it.
pub fn config<T: DeserializeOwned>(mut base: Value, extra: Value) -> T {
    for (k, v) in extra.as_object().expect("extra is a JSON object") {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

/// An endpoint whose `auth_path` hands out the credentials `AT-1`, `AT-2`, … (each in the answer
/// `issue` makes of it) and whose other paths answer `send(request)`.
pub async fn start_with_auth(
    auth_path: &'static str,
    issue: impl Fn(&str) -> Answer + Send + Sync + 'static,
    send: impl Fn(&Recorded) -> Answer + Send + Sync + 'static,
) -> Endpoint {
    let issued = AtomicUsize::new(0);
    Endpoint::start(move |r| {
        if r.path() == auth_path {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            issue(&format!("AT-{n}"))
        } else {
            send(r)
        }
    })
    .await
}

/// A JSON answer that the test sets before each push.
#[derive(Clone)]
pub struct NextAnswer(Arc<Mutex<(u16, String)>>);

impl Default for NextAnswer {
    fn default() -> NextAnswer {
        NextAnswer(Arc::new(Mutex::new((200, String::new()))))
    }
}

impl NextAnswer {
    pub fn set(&self, status: u16, body: &str) {
        *self.0.lock().unwrap() = (status, body.to_owned());
    }

    /// An endpoint's handler that gives the answer set last.
    pub fn responder(&self) -> impl Fn(&Recorded) -> Answer + Send + Sync + 'static {
        let next = self.0.clone();
        move |_| {
            let (status, body) = next.lock().unwrap().clone();
            Answer { body, ..Answer::json(status, serde_json::Value::Null) }
        }
    }
}

/// `http://` and a local address where nothing listens.
pub fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// An outcome's kind, for tables of answers.
pub fn kind(o: &Outcome) -> &'static str {
    match o {
        Outcome::Sent => "sent",
        Outcome::Retry { .. } => "retry",
        Outcome::InvalidToken { .. } => "invalid",
        Outcome::Failed { .. } => "failed",
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Checks a compact JWS's signature with `public` by `algorithm`; returns its header and claims.
pub fn verify_jws(jwt: &str, algorithm: &'static dyn VerificationAlgorithm, public: &[u8]) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS: {jwt}");
    let signed = format!("{}.{}", parts[0], parts[1]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(algorithm, public)
        .verify(signed.as_bytes(), &signature)
        .expect("the signature verifies with the signing key's public half");
    let decode = |part: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    (decode(parts[0]), decode(parts[1]))
}

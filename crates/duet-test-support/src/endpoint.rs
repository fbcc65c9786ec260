//! [`Endpoint`]: a local HTTP server that plays a push provider's endpoint (or any other service Duet
//! calls): it records every request and answers with what the test's closure says. It speaks HTTP/1.1
//! and HTTP/2 (prior knowledge, as APNs clients use over plain TCP) on `127.0.0.1:0`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};

/// One request the endpoint received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub version: Version,
    /// Path and query, as sent.
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The body as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// What the endpoint answers: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// How long the endpoint waits before answering (a slow backend).
    pub delay: std::time::Duration,
}

impl Answer {
    /// The same answer, `delay` later.
    pub fn after(self, delay: std::time::Duration) -> Answer {
        Answer { delay, ..self }
    }

    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        let headers = vec![("content-type", "application/json".into())];
        Answer { status, headers, body: body.to_string(), delay: std::time::Duration::ZERO }
    }

    pub fn empty(status: u16) -> Answer {
        Answer { status, headers: Vec::new(), body: String::new(), delay: std::time::Duration::ZERO }
    }
}

type Handler = dyn Fn(&Recorded) -> Answer + Send + Sync;

pub struct Endpoint {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    /// Starts the endpoint; `answer` decides each response from the request (and may count calls).
    pub async fn start(answer: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Endpoint {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Handler> = Arc::new(answer);
        let log = recorded.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, version: Version, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let answer = answer.clone();
                async move {
                    let req = Recorded { method, version, uri, headers, body };
                    let a = answer(&req);
                    log.lock().unwrap().push(req);
                    tokio::time::sleep(a.delay).await;
                    let mut res: Response = a.body.into_response();
                    *res.status_mut() = StatusCode::from_u16(a.status).unwrap();
                    for (k, v) in a.headers {
                        res.headers_mut().insert(k, v.parse().unwrap());
                    }
                    res
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Endpoint { url, recorded, task }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    /// The requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path() == path).collect()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

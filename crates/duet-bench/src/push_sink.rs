//! `pairs --push`: a local HTTP endpoint that plays an app's push gateway for the server's `webhook`
//! provider, counting the pushes it receives, and the frames that register each bench user's device
//! for push with its app in the background (so that every message is pushed as well as delivered).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use duet_proto::client::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::BenchError;
use crate::ws::{Ws, encode};

/// The webhook endpoint: counts every push it is sent, answers 200.
pub struct Sink {
    pub url: String,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> Result<Sink, BenchError> {
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let app = axum::Router::new().route(
            "/push",
            axum::routing::post(move |_body: axum::body::Bytes| {
                let count = count.clone();
                async move {
                    count.fetch_add(1, Ordering::Relaxed);
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| BenchError::Setup(format!("starting the push sink: {e}")))?;
        let addr = listener.local_addr().map_err(|e| BenchError::Setup(format!("push sink: {e}")))?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { url: format!("http://{addr}/push"), received, task })
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The server's configuration that points its webhook provider here.
    pub fn server_config(&self) -> String {
        format!("[push.webhook]\nurl = \"{}\"\nsecret = \"duet-bench\"\n", self.url)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Registers the logged-in device of `user` for push (the webhook provider, the user's id as its token)
/// and puts its app in the background.
pub async fn register(ws: &mut Ws, user: &str) -> Result<(), BenchError> {
    let io = |e| BenchError::Connect(format!("{user}: {e}"));
    let frames = [
        ClientFrame::PushRegister { id: 2, provider: "webhook".into(), token: user.into(), app_id: None, lang: None },
        ClientFrame::Background { id: 3, unread: 0 },
    ];
    for frame in &frames {
        ws.send(WsMessage::Text(encode(frame).into())).await.map_err(io)?;
    }
    let mut answered = 0;
    while answered < frames.len() {
        let Some(msg) = ws.next().await else {
            return Err(BenchError::Connect(format!("{user}: closed while registering for push")));
        };
        let WsMessage::Text(text) = msg.map_err(io)? else { continue };
        match serde_json::from_str::<ServerFrame>(&text) {
            Ok(ServerFrame::Ok { .. }) => answered += 1,
            Ok(ServerFrame::Error { code, info, .. }) => {
                return Err(BenchError::Refused { what: format!("push registration of {user}"), code, info });
            }
            // Entries and other pushes before the answers: nothing is sent yet, so nothing to keep.
            _ => {}
        }
    }
    Ok(())
}

//! A minimal client of the WebSocket protocol for tests that only make requests: it logs in and sends
//! frames, and skips every frame that is not the answer it waits for (events included).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestServer;

/// How long an answer may take.
const WAIT: Duration = Duration::from_secs(5);

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl WsClient {
    /// Connects and logs `user` in (as an Android device) with a fresh UserSig; asserts success.
    pub async fn login(server: &TestServer, user: &str) -> WsClient {
        let url = format!("ws://{}/v1/connect", server.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connect");
        let mut client = WsClient { ws, next_id: 0 };
        let reply = client
            .request(json!({"op": "login", "protocol": 1, "user": user, "usersig": server.usersig(user),
                            "platform": "Android", "device": format!("{user}-phone")}))
            .await;
        assert_eq!(reply["op"], "logged_in", "{reply}");
        client
    }

    /// Sends `frame` with a fresh id and returns the frame answering it.
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next_id += 1;
        frame["id"] = json!(self.next_id);
        self.ws.send(Ws::Text(frame.to_string().into())).await.expect("sending a frame");
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("no answer within 5 s") {
                Some(Ok(Ws::Text(t))) => {
                    let f: Value = serde_json::from_str(&t).expect("frames are JSON");
                    if f["id"] == self.next_id {
                        return f;
                    }
                }
                Some(Ok(_)) => {}
                _ => panic!("the connection closed before the answer"),
            }
        }
    }

    /// A `send` of `body` to `to`; returns the answer.
    pub async fn send(&mut self, to: &str, random: u32, body: Value) -> Value {
        self.request(json!({"op": "send", "to": to, "random": random, "body": body})).await
    }
}

//! Helpers shared by the integration tests: waiting for events with a timeout (never sleeping), and
//! configurations with short timings.

#![allow(dead_code)]

use std::time::Duration;

use duet_client::{Client, ClientConfig, ConnectionState, Error, Event, Events, LocalStoreConfig, Message, Platform};
use duet_test_support::{TestServer, text};
use serde_json::{Value, json};

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A configuration with short reconnect delays.
pub fn config(base_url: &str, user: &str, usersig: &str, platform: Platform) -> ClientConfig {
    let mut c = ClientConfig::new(base_url, user, usersig).platform(platform);
    c.request_timeout = Duration::from_secs(5);
    c.reconnect_min = Duration::from_millis(20);
    c.reconnect_max = Duration::from_millis(200);
    c
}

/// Runs `f` with an overall deadline of [`WAIT`]: a client that keeps reconnecting (and so keeps
/// producing connection events) must not keep a test waiting forever.
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(t) => t,
        Err(_) => panic!("{what}: nothing within {WAIT:?}"),
    }
}

async fn recv(events: &mut Events) -> Event {
    match events.recv().await {
        Some(e) => e,
        None => panic!("the event stream ended"),
    }
}

/// The next event.
pub async fn next(events: &mut Events) -> Event {
    within("waiting for an event", recv(events)).await
}

async fn app_event(events: &mut Events) -> Event {
    loop {
        match recv(events).await {
            Event::Connection(_) => continue,
            e => return e,
        }
    }
}

/// The next event that is not a connection change.
pub async fn next_app_event(events: &mut Events) -> Event {
    within("waiting for an app event", app_event(events)).await
}

/// The next new message, skipping every other event.
pub async fn next_message(events: &mut Events) -> Message {
    within("waiting for a message", async {
        loop {
            if let Event::NewMessage(m) = recv(events).await {
                return m;
            }
        }
    })
    .await
}

/// Every event up to and including `SyncComplete`, without connection changes.
pub async fn until_sync_complete(events: &mut Events) -> Vec<Event> {
    within("waiting for SyncComplete", async {
        let mut seen = Vec::new();
        loop {
            let e = app_event(events).await;
            let done = e == Event::SyncComplete;
            seen.push(e);
            if done {
                return seen;
            }
        }
    })
    .await
}

/// Connects and waits for the first catch-up to end; returns the client, its events and the events of
/// the catch-up.
pub async fn connect_synced(config: ClientConfig) -> (Client, Events, Vec<Event>) {
    let (client, mut events) = Client::connect(config).await.expect("connecting");
    let sync = until_sync_complete(&mut events).await;
    (client, events, sync)
}

/// Waits for the stream to end; returns what it carried until then.
pub async fn until_end(events: &mut Events) -> Vec<Event> {
    within("waiting for the event stream to end", async {
        let mut seen = Vec::new();
        while let Some(e) = events.recv().await {
            seen.push(e);
        }
        seen
    })
    .await
}

/// A short description of an event, for assertions on sequences.
pub fn describe(e: &Event) -> String {
    match e {
        Event::Connection(ConnectionState::Connecting) => "connecting".into(),
        Event::Connection(ConnectionState::Connected) => "connected".into(),
        Event::Connection(ConnectionState::Disconnected { .. }) => "disconnected".into(),
        Event::SyncStarted => "sync-started".into(),
        Event::NewMessage(m) => format!("msg {}->{}: {}", m.from, m.to, m.text()),
        Event::SyncComplete => "sync-complete".into(),
        Event::ConversationChanged(c) => format!("conv {} unread {}", c.peer, c.unread),
        Event::MessageRecalled { peer, msg_key, by } if by == peer || by.is_empty() => {
            format!("recalled {peer} {msg_key}")
        }
        Event::MessageRecalled { peer, msg_key, by } => format!("recalled {peer} {msg_key} by {by}"),
        Event::PeerRead { peer, time } => format!("peer-read {peer} {time}"),
        Event::ReadReceipt { peer, msg_key, .. } => format!("receipt {peer} {msg_key}"),
        Event::Typing { from, typing } => format!("typing {from} {typing}"),
        Event::MessageModified(m) => format!("modified {}->{}: {} v{}", m.from, m.to, m.text(), m.version),
        Event::MessageDeleted { peer, msg_key } => format!("deleted {peer} {msg_key}"),
        Event::HistoryCleared { peer } => format!("cleared {peer}"),
        Event::ConversationDeleted { peer } => format!("conversation-deleted {peer}"),
        Event::Kicked { code, .. } => format!("kicked {code}"),
        Event::SigExpired => "sig-expired".into(),
        Event::Relation(r) => format!("relation {r:?}"),
    }
}

pub fn describe_all(events: &[Event]) -> Vec<String> {
    events.iter().map(describe).collect()
}

/// The admin's REST `sendmsg` of a text from `from` to `to`; asserts success and returns the answer.
pub async fn rest_send(server: &TestServer, from: &str, to: &str, random: u32, body: &str) -> Value {
    let r = server
        .rest(
            "openim/sendmsg",
            json!({"From_Account": from, "To_Account": to, "MsgRandom": random, "MsgBody": text(body)}),
        )
        .await;
    assert_eq!(r["ErrorCode"], 0, "sendmsg: {r}");
    r
}

/// A device of `user` on `platform` with a fresh UserSig for `server`.
pub fn user_config(server: &TestServer, user: &str, platform: Platform) -> ClientConfig {
    config(&server.base_url(), user, &server.usersig(user), platform)
}

/// A device of `user` that keeps its store in `dir`, so that it can go away and come back as itself.
pub fn device_in(server: &TestServer, user: &str, dir: &std::path::Path) -> ClientConfig {
    user_config(server, user, Platform::Pc).device("pc").store(LocalStoreConfig::Sqlite(dir.to_owned()))
}

/// The next event that `pick` accepts, skipping the others.
pub async fn next_matching<T>(events: &mut Events, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    within(what, async {
        loop {
            if let Some(t) = pick(events.recv().await.expect("the event stream ended")) {
                return t;
            }
        }
    })
    .await
}

/// The code of the server's refusal.
pub fn server_code(e: Error) -> u32 {
    match e {
        Error::Server { code, .. } => code,
        other => panic!("expected the server's refusal, got {other:?}"),
    }
}

//! The Rust SDK for Duet, a self-hosted one-to-one IM server compatible with Tencent IM.
//!
//! [`Client::connect`] opens the WebSocket described in `docs/protocol.md`, logs in and returns a
//! [`Client`] (a cheap handle to one background task) and its [`Events`]. It behaves like Tencent's
//! SDK:
//!
//! * after every login (the first and each reconnect) it catches up: [`Event::SyncStarted`], each
//!   missed message as [`Event::NewMessage`] (offline messages arrive the same way as live ones), the
//!   conversation list as [`Event::ConversationChanged`], then [`Event::SyncComplete`];
//! * live messages are raised exactly once per device, in log order, whatever duplicates or gaps the
//!   connection produces; messages sent from this device are not raised back;
//! * it pings, reconnects with backoff, and stops on logout, [`Event::Kicked`] or [`Event::SigExpired`];
//! * it keeps a local store ([`LocalStoreConfig`]) that answers history when it holds the whole page and
//!   asks the server when it does not.
//!
//! ```no_run
//! # async fn demo() -> Result<(), duet_client::Error> {
//! use duet_client::{Client, ClientConfig, Event, SendOptions, elems};
//!
//! let (client, mut events) =
//!     Client::connect(ClientConfig::new("http://127.0.0.1:7080", "bob", "eJyr…")).await?;
//! client.send_message("alice", vec![elems::text("hi")], SendOptions::default()).await?;
//! while let Some(event) = events.recv().await {
//!     if let Event::NewMessage(m) = event {
//!         println!("{}: {}", m.from, m.text());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Friends, friend requests and the blacklist are in [`friends`].
//!
//! Modules: [`config`] (configuration), [`event`] (events), [`model`] (messages and conversations),
//! [`elems`] (element constructors), [`media`] (uploads with progress, downloads), [`store`] (the local
//! store), [`error`]. The actor, the sync sequencer and the history completeness check are private.

#![warn(missing_docs)]

mod actor;
mod backoff;
pub mod config;
pub mod elems;
pub mod error;
pub mod event;
pub mod friends;
mod history;
pub mod media;
pub mod model;
pub mod push;
mod sequencer;
pub mod store;
mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use duet_proto::client::{Platform, UserSig};
pub use duet_proto::elem::MsgElem;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::actor::{Actor, Command, MessageAnswer, MessageRequest, Reply, Settings};
use crate::backoff::Backoff;
pub use crate::config::{ClientConfig, LocalStoreConfig, SessionKind};
pub use crate::error::Error;
pub use crate::event::{ConnectionState, Event, Events};
pub use crate::friends::{
    AddFriendOptions, Blocked, Friend, FriendAddResult, FriendRequest, FriendRequests, RelationEvent,
};
pub use crate::model::{
    Conversation, ConversationChange, ConversationSettings, DndSetting, Message, SearchPage, SearchQuery, SendOptions,
    Sender, SentMessage,
};
pub use crate::push::PushConfig;
use crate::store::{LocalStore, MemoryStore, SqliteStore, StoreHandle};

/// A handle to a logged-in client. Clones share one connection; the client stops when `logout` is
/// called, when the server ends the session (kick, expired UserSig), or when every handle is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    user: String,
    device: String,
    request_timeout: Duration,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Uploads and downloads (`media`).
    http: media::Http,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("user", &self.inner.user)
            .field("device", &self.inner.device)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens the local store, connects and logs in. Returns once the server accepted the login; the
    /// catch-up (`SyncStarted` … `SyncComplete`) follows on the returned [`Events`]. Must be called
    /// within a Tokio runtime (either flavour); the client's task runs on it.
    ///
    /// Fails if the first connection cannot be made (a server certificate that no trusted CA signed
    /// too) or the login is refused (with the server's code, e.g. 70001 for an expired UserSig), and at
    /// once with [`Error::Config`] for an `extra_ca_pem` that holds no usable certificate. Later
    /// connection losses are repaired in the background.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), Error> {
        let url = config.validate()?;
        let tls = tls::client_config(config.extra_ca_pem.as_deref()).await?;
        let http = media::Http::new(&config.server, &config.user, config.usersig.expose(), &tls)?;
        let store: Arc<dyn LocalStore> = match &config.store {
            LocalStoreConfig::Memory => Arc::new(MemoryStore::new()),
            LocalStoreConfig::Sqlite(dir) => {
                let (dir, user) = (dir.clone(), config.user.clone());
                let store = tokio::task::spawn_blocking(move || -> Result<SqliteStore, Error> {
                    std::fs::create_dir_all(&dir)?;
                    Ok(SqliteStore::open(&SqliteStore::file_in(&dir, &user), &user)?)
                })
                .await
                .map_err(|e| Error::Store(store::StoreError::Task(e.to_string())))??;
                Arc::new(store)
            }
        };
        let store = StoreHandle::new(store);
        let snapshot = store.call(|s| s.load()).await?;
        let device = match config.device.clone().or(snapshot.device.clone()) {
            Some(device) => device,
            None => {
                let device = format!("{:032x}", rand::random::<u128>());
                let saved = device.clone();
                store.call(move |s| s.set_device(&saved)).await?;
                device
            }
        };
        let settings = Settings {
            url,
            user: config.user.clone(),
            usersig: config.usersig.clone(),
            platform: config.platform,
            device: device.clone(),
            session: config.session,
            request_timeout: config.request_timeout,
            heartbeat: config.heartbeat,
            tls,
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = oneshot::channel();
        let actor = Actor::new(
            settings,
            store,
            snapshot.cursor,
            snapshot.conversations,
            snapshot.coverage,
            events_tx,
            commands_rx,
            first_tx,
            Backoff::new(config.reconnect_min, config.reconnect_max),
        );
        let task = tokio::spawn(actor.run());
        match first_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = task.await;
                return Err(e);
            }
            Err(_) => return Err(Error::Closed),
        }
        let client = Client {
            inner: Arc::new(Inner {
                http,
                commands: commands_tx,
                user: config.user,
                device,
                request_timeout: config.request_timeout,
                task: Mutex::new(Some(task)),
            }),
        };
        Ok((client, Events::new(events_rx)))
    }

    /// The logged-in user.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// This installation's device id.
    pub fn device(&self) -> &str {
        &self.inner.device
    }

    async fn request<T>(&self, make: impl FnOnce(Instant, Reply<T>) -> Command) -> Result<T, Error> {
        let timeout = self.inner.request_timeout;
        let (tx, rx) = oneshot::channel();
        self.inner.commands.send(make(Instant::now() + timeout, tx)).map_err(|_| Error::Closed)?;
        // The actor enforces the deadline; this guards against an actor that cannot (a stuck store).
        match tokio::time::timeout(timeout + Duration::from_secs(5), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Sends a message to `to`. The SDK chooses `MsgRandom`; the message is stored locally and is not
    /// raised as [`Event::NewMessage`] on this device (the user's other devices do raise it).
    ///
    /// While disconnected the request waits for the reconnection, up to the request timeout. A send
    /// interrupted by a lost connection is retried on the next one; the server recognises the retry.
    pub async fn send_message(&self, to: &str, elems: Vec<MsgElem>, opts: SendOptions) -> Result<SentMessage, Error> {
        if to.is_empty() {
            return Err(Error::InvalidArgument("the recipient must not be empty".into()));
        }
        if elems.is_empty() {
            return Err(Error::InvalidArgument("a message needs at least one element".into()));
        }
        let to = to.to_owned();
        self.request(|deadline, reply| Command::Send { to, elems, opts, deadline, reply }).await
    }

    /// Sends a text message; see [`Client::send_message`].
    pub async fn send_text(&self, to: &str, text: &str) -> Result<SentMessage, Error> {
        self.send_message(to, vec![elems::text(text)], SendOptions::default()).await
    }

    /// Up to `count` messages (at most 100) of the conversation with `peer`, newest first: the newest
    /// ones, or those older than the message `before` (a `msg_key`).
    ///
    /// Answered from the local store when it holds the whole page (consecutive `conv_seq`s down from
    /// `before` or from the newest message, or down to the conversation's first message); otherwise
    /// the page is fetched from the server, stored, and returned.
    pub async fn get_messages(&self, peer: &str, count: u32, before: Option<&str>) -> Result<Vec<Message>, Error> {
        if peer.is_empty() {
            return Err(Error::InvalidArgument("the peer must not be empty".into()));
        }
        let (peer, before) = (peer.to_owned(), before.map(str::to_owned));
        self.request(|deadline, reply| Command::GetMessages { peer, count, before, deadline, reply }).await
    }

    /// The recent contacts from the server, latest first (at most 100); the local copy is replaced.
    pub async fn conversations(&self) -> Result<Vec<Conversation>, Error> {
        self.request(|deadline, reply| Command::Conversations { deadline, reply }).await
    }

    /// The recent contacts as the client knows them, latest first, without asking the server.
    pub async fn local_conversations(&self) -> Result<Vec<Conversation>, Error> {
        self.request(|_, reply| Command::LocalConversations { reply }).await
    }

    /// Marks everything `peer` sent so far as read (on every device of the user).
    pub async fn mark_read(&self, peer: &str) -> Result<(), Error> {
        if peer.is_empty() {
            return Err(Error::InvalidArgument("the peer must not be empty".into()));
        }
        let peer = peer.to_owned();
        self.request(|deadline, reply| Command::MarkRead { peer, deadline, reply }).await
    }

    /// Recalls (takes back) a message this user sent `peer`, within the server's recall window (2 minutes
    /// by default; after it the server answers 20016). Every device of both users gets
    /// [`Event::MessageRecalled`], and history keeps the message flagged, without its content.
    pub async fn recall(&self, peer: &str, msg_key: &str) -> Result<(), Error> {
        let (peer, msg_key) = (non_empty(peer, "peer")?, non_empty(msg_key, "msg_key")?);
        match self.message_request(MessageRequest::Recall { peer, msg_key }).await? {
            MessageAnswer::Ok => Ok(()),
            other => Err(Error::Protocol(format!("recall answered with {other:?}"))),
        }
    }

    /// Acknowledges messages `peer` sent with `need_read_receipt` (at most 100 keys): the sender's devices
    /// get [`Event::ReadReceipt`]. Unread counts do not change (that is [`Client::mark_read`]). Returns
    /// the keys that carry a receipt now; keys of other messages are left out.
    pub async fn send_read_receipts(&self, peer: &str, msg_keys: &[&str]) -> Result<Vec<String>, Error> {
        let peer = non_empty(peer, "peer")?;
        let msg_keys = msg_keys.iter().map(|k| (*k).to_owned()).collect();
        match self.message_request(MessageRequest::ReadReceipt { peer, msg_keys }).await? {
            MessageAnswer::Acknowledged(keys) => Ok(keys),
            other => Err(Error::Protocol(format!("read_receipt answered with {other:?}"))),
        }
    }

    /// The messages of the conversation with `peer` named by `msg_keys` (at most 100), as the server holds
    /// them now: their recall, `peer_read` and `receipt_time` included; `None` for a key that names none.
    pub async fn find_messages(&self, peer: &str, msg_keys: &[&str]) -> Result<Vec<Option<Message>>, Error> {
        let peer = non_empty(peer, "peer")?;
        let msg_keys = msg_keys.iter().map(|k| (*k).to_owned()).collect();
        match self.message_request(MessageRequest::Find { peer, msg_keys }).await? {
            MessageAnswer::Found(messages) => Ok(messages),
            other => Err(Error::Protocol(format!("find answered with {other:?}"))),
        }
    }

    /// Searches the user's own history on the server (see [`SearchQuery`]), newest first; a page's
    /// [`SearchPage::cursor`], put in the query, gives the next. Invalid queries (no condition, a limit
    /// out of 1 to 100, an unknown type) fail with the server's 6017.
    pub async fn search_messages(&self, query: SearchQuery) -> Result<SearchPage, Error> {
        match self.message_request(MessageRequest::Search(query)).await? {
            MessageAnswer::Searched(page) => Ok(page),
            other => Err(Error::Protocol(format!("search answered with {other:?}"))),
        }
    }

    /// Edits a message this user sent `peer`: `elems` (text and custom elements only) and/or
    /// `cloud_custom_data` replace the message's. `version` is the version the app showed
    /// ([`Message::version`]); when someone edited it since, the server refuses with 20028 and this
    /// returns [`Error::EditConflict`] with the message as it is now. `None` edits whatever is stored.
    /// Both sides' devices get [`Event::MessageModified`]. Returns the message as edited.
    pub async fn modify(
        &self,
        peer: &str,
        msg_key: &str,
        elems: Option<Vec<MsgElem>>,
        cloud_custom_data: Option<&str>,
        version: Option<u32>,
    ) -> Result<Message, Error> {
        let (peer, msg_key) = (non_empty(peer, "peer")?, non_empty(msg_key, "msg_key")?);
        let data = cloud_custom_data.map(str::to_owned);
        let req = MessageRequest::Modify { peer: peer.clone(), msg_key: msg_key.clone(), body: elems, data, version };
        match self.message_request(req).await {
            Ok(MessageAnswer::Modified(m)) => Ok(*m),
            Err(Error::Server { code: duet_proto::code::MSG_MODIFY_CONFLICT, info }) => {
                let latest = self.find_messages(&peer, &[msg_key.as_str()]).await?.into_iter().next().flatten();
                Err(Error::EditConflict { info, latest: latest.map(Box::new) })
            }
            Err(e) => Err(e),
            Ok(other) => Err(Error::Protocol(format!("modify answered with {other:?}"))),
        }
    }

    /// Deletes messages of the conversation with `peer` (at most 50) from this user's side, on every
    /// device of this user ([`Event::MessageDeleted`]); the peer keeps them. Returns the keys deleted now.
    pub async fn delete_messages(&self, peer: &str, msg_keys: &[&str]) -> Result<Vec<String>, Error> {
        let peer = non_empty(peer, "peer")?;
        let msg_keys = msg_keys.iter().map(|k| (*k).to_owned()).collect();
        match self.message_request(MessageRequest::Delete { peer, msg_keys }).await? {
            MessageAnswer::Deleted(keys) => Ok(keys),
            other => Err(Error::Protocol(format!("delete answered with {other:?}"))),
        }
    }

    /// Clears this user's history of the conversation with `peer` on every device of this user
    /// ([`Event::HistoryCleared`]); the conversation stays, the peer keeps its history.
    pub async fn clear_history(&self, peer: &str) -> Result<(), Error> {
        let peer = non_empty(peer, "peer")?;
        match self.message_request(MessageRequest::ClearHistory { peer }).await? {
            MessageAnswer::Ok => Ok(()),
            other => Err(Error::Protocol(format!("clear_history answered with {other:?}"))),
        }
    }

    /// Deletes the conversation with `peer` from this user's list, and with `clear_history` its history,
    /// on every device of this user ([`Event::ConversationDeleted`]).
    pub async fn delete_conversation(&self, peer: &str, clear_history: bool) -> Result<(), Error> {
        let peer = non_empty(peer, "peer")?;
        match self.message_request(MessageRequest::DeleteConversation { peer, clear_history }).await? {
            MessageAnswer::Ok => Ok(()),
            other => Err(Error::Protocol(format!("delete_conversation answered with {other:?}"))),
        }
    }

    /// Changes this user's settings of the conversation with `peer` (pin, marks, custom data, draft, receive
    /// option): what `change` gives changes, the rest stays. Every device of this user gets
    /// [`Event::ConversationChanged`] with the conversation as it is now.
    pub async fn update_conversation(&self, peer: &str, change: ConversationChange) -> Result<(), Error> {
        let peer = non_empty(peer, "peer")?;
        match self.message_request(MessageRequest::UpdateConversation { peer, change }).await? {
            MessageAnswer::Ok => Ok(()),
            other => Err(Error::Protocol(format!("set_conversation answered with {other:?}"))),
        }
    }

    /// Tells `peer`'s live devices that this user is typing to it (`false`: stopped): they get
    /// [`Event::Typing`]. Never stored; the server passes on at most one `true` per peer per second, so an
    /// app may call this on every key press. A peer who blacklisted this user hears nothing.
    pub async fn send_typing(&self, peer: &str, typing: bool) -> Result<(), Error> {
        let peer = non_empty(peer, "peer")?;
        match self.message_request(MessageRequest::Typing { peer, typing }).await? {
            MessageAnswer::Ok => Ok(()),
            other => Err(Error::Protocol(format!("typing answered with {other:?}"))),
        }
    }

    /// Sets this user's do-not-disturb window over all conversations (Tencent's `setAllReceiveMessageOpt`):
    /// while it is on, nothing sent to the user is pushed to its phones (`receive_opt` 0 turns it off).
    pub async fn set_dnd(&self, dnd: DndSetting) -> Result<(), Error> {
        match self.message_request(MessageRequest::SetDnd(dnd)).await? {
            MessageAnswer::Ok => Ok(()),
            other => Err(Error::Protocol(format!("set_dnd answered with {other:?}"))),
        }
    }

    /// This user's do-not-disturb window (`receive_opt` 0: none).
    pub async fn dnd(&self) -> Result<DndSetting, Error> {
        match self.message_request(MessageRequest::GetDnd).await? {
            MessageAnswer::Dnd(d) => Ok(d),
            other => Err(Error::Protocol(format!("get_dnd answered with {other:?}"))),
        }
    }

    async fn message_request(&self, req: MessageRequest) -> Result<MessageAnswer, Error> {
        self.request(|deadline, reply| Command::Message { req, deadline, reply }).await
    }

    /// Logs out: tells the server (when connected), stops reconnecting, and waits for the client's task
    /// to end. Requests still waiting fail with [`Error::Closed`]. Logging out twice is harmless.
    pub async fn logout(&self) -> Result<(), Error> {
        let result = self.request(|_, reply| Command::Logout { reply }).await;
        let task = self.inner.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            // The actor ends right after answering; the bound only guards against a stuck store.
            if tokio::time::timeout(self.inner.request_timeout, task).await.is_err() {
                tracing::warn!(user = %self.inner.user, "the client task did not end after logout");
            }
        }
        match result {
            Err(Error::Closed) => Ok(()),
            other => other,
        }
    }
}

/// `value`, owned, unless it is empty.
fn non_empty(value: &str, what: &str) -> Result<String, Error> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("the {what} must not be empty")));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_cross_tasks_and_threads() {
        fn shared<T: Send + Sync + Clone + 'static>() {}
        fn sendable<T: Send + 'static>() {}
        shared::<super::Client>();
        sendable::<super::Events>();
        sendable::<super::Error>();
    }
}

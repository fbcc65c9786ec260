//! The actor: one task per client that owns the WebSocket, the local store and the sync state.
//!
//! [`Client`](crate::Client) handles talk to it over a channel of [`Command`]s. The actor connects,
//! logs in, catches up (`sync` from the cursor until `more` is false, then `conversations`), applies
//! live entries through the [`Sequencer`], answers requests, pings, and reconnects with backoff when
//! the connection drops. Everything happens on this one task, so the sync state needs no locks.
//!
//! Requests survive reconnects: a request sent on a connection that drops is sent again on the next
//! one (the server recognises a retried `send` with the same `random` and body and stores nothing
//! new). Every request has a deadline; a request still waiting for a connection at its deadline fails
//! with [`Error::NotConnected`], one waiting for its answer with [`Error::Timeout`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use duet_proto::client::{
    self as wire, ClientFrame, Entry, MAX_HISTORY_PAGE, MAX_SYNC_BATCH, PROTOCOL_VERSION, Platform, ServerFrame,
    UserSig, code,
};
use duet_proto::code as api_code;
use duet_proto::elem::MsgElem;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Error;
use crate::backoff::Backoff;
use crate::config::SessionKind;
use crate::event::{ConnectionState, Event};
use crate::friends::{FriendRequests, RelationAnswer, RelationRequest};
use crate::history::{Coverage, Held, Position};
use crate::model::{
    Conversation, ConversationChange, DndSetting, Message, SearchPage, SearchQuery, SendOptions, SentMessage,
};
use crate::sequencer::{Live, Sequencer};
use crate::store::{Batch, MessageRecord, StoreError, StoreHandle};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Where a request's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What a [`Client`](crate::Client) asks of the actor.
pub(crate) enum Command {
    Send { to: String, elems: Vec<MsgElem>, opts: SendOptions, deadline: Instant, reply: Reply<SentMessage> },
    GetMessages { peer: String, count: u32, before: Option<String>, deadline: Instant, reply: Reply<Vec<Message>> },
    Conversations { deadline: Instant, reply: Reply<Vec<Conversation>> },
    LocalConversations { reply: Reply<Vec<Conversation>> },
    MarkRead { peer: String, deadline: Instant, reply: Reply<()> },
    Logout { reply: Reply<()> },
    Relation { req: RelationRequest, deadline: Instant, reply: Reply<RelationAnswer> },
    Message { req: MessageRequest, deadline: Instant, reply: Reply<MessageAnswer> },
}

/// A request about messages already sent.
#[derive(Debug, Clone)]
pub(crate) enum MessageRequest {
    Recall { peer: String, msg_key: String },
    ReadReceipt { peer: String, msg_keys: Vec<String> },
    Find { peer: String, msg_keys: Vec<String> },
    Search(SearchQuery),
    Modify { peer: String, msg_key: String, body: Option<Vec<MsgElem>>, data: Option<String>, version: Option<u32> },
    Delete { peer: String, msg_keys: Vec<String> },
    ClearHistory { peer: String },
    DeleteConversation { peer: String, clear_history: bool },
    UpdateConversation { peer: String, change: ConversationChange },
    Typing { peer: String, typing: bool },
    SetDnd(DndSetting),
    GetDnd,
}

impl MessageRequest {
    fn frame(&self, id: u64) -> ClientFrame {
        match self.clone() {
            MessageRequest::Recall { peer, msg_key } => ClientFrame::Recall { id, peer, msg_key },
            MessageRequest::ReadReceipt { peer, msg_keys } => ClientFrame::ReadReceipt { id, peer, msg_keys },
            MessageRequest::Find { peer, msg_keys } => ClientFrame::Find { id, peer, msg_keys },
            MessageRequest::Search(q) => ClientFrame::Search {
                id,
                keywords: q.keywords,
                peer: q.peer,
                from: q.from,
                types: q.types,
                since: q.since,
                until: q.until,
                limit: q.limit,
                cursor: q.cursor,
            },
            MessageRequest::Modify { peer, msg_key, body, data, version } => {
                ClientFrame::Modify { id, peer, msg_key, body, cloud_custom_data: data, version }
            }
            MessageRequest::Delete { peer, msg_keys } => ClientFrame::Delete { id, peer, msg_keys },
            MessageRequest::ClearHistory { peer } => ClientFrame::ClearHistory { id, peer },
            MessageRequest::Typing { peer, typing } => ClientFrame::Typing { id, peer, typing },
            MessageRequest::SetDnd(d) => ClientFrame::SetDnd {
                id,
                receive_opt: d.receive_opt,
                start_of_day: d.start_of_day,
                start_time: d.start_time,
                duration: d.duration,
            },
            MessageRequest::GetDnd => ClientFrame::GetDnd { id },
            MessageRequest::UpdateConversation { peer, change } => ClientFrame::SetConversation {
                id,
                peer,
                pinned: change.pinned,
                set_marks: change.set_marks,
                clear_marks: change.clear_marks,
                custom_data: change.custom_data,
                draft: change.draft,
                receive_opt: change.receive_opt,
            },
            MessageRequest::DeleteConversation { peer, clear_history } => {
                ClientFrame::DeleteConversation { id, peer, clear_history }
            }
        }
    }
}

/// The answer to a [`MessageRequest`].
#[derive(Debug)]
pub(crate) enum MessageAnswer {
    Ok,
    Acknowledged(Vec<String>),
    Found(Vec<Option<Message>>),
    Searched(SearchPage),
    Modified(Box<Message>),
    Deleted(Vec<String>),
    Dnd(DndSetting),
}

impl Command {
    fn fail(self, e: Error) {
        match self {
            Command::Send { reply, .. } => drop(reply.send(Err(e))),
            Command::GetMessages { reply, .. } => drop(reply.send(Err(e))),
            Command::Conversations { reply, .. } | Command::LocalConversations { reply } => drop(reply.send(Err(e))),
            Command::MarkRead { reply, .. } | Command::Logout { reply } => drop(reply.send(Err(e))),
            Command::Relation { reply, .. } => drop(reply.send(Err(e))),
            Command::Message { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

/// The fixed parameters of a client.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) url: String,
    pub(crate) user: String,
    pub(crate) usersig: UserSig,
    pub(crate) platform: Platform,
    pub(crate) device: String,
    pub(crate) session: SessionKind,
    pub(crate) request_timeout: Duration,
    pub(crate) heartbeat: Duration,
    /// For `wss://` (`tls`).
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

/// A request from the app, kept until answered so that it can be sent again after a reconnect.
struct Request {
    op: Op,
    deadline: Instant,
}

enum Op {
    Send { to: String, random: u32, elems: Vec<MsgElem>, opts: SendOptions, reply: Reply<SentMessage> },
    History { peer: String, count: u32, before: Option<String>, reply: Reply<Vec<Message>> },
    Conversations { reply: Reply<Vec<Conversation>> },
    MarkRead { peer: String, reply: Reply<()> },
    Relation { req: RelationRequest, reply: Reply<RelationAnswer> },
    Message { req: MessageRequest, reply: Reply<MessageAnswer> },
}

impl Op {
    fn frame(&self, id: u64) -> ClientFrame {
        match self {
            Op::Send { to, random, elems, opts, .. } => ClientFrame::Send {
                id,
                to: to.clone(),
                seq: opts.seq,
                random: *random,
                body: elems.clone(),
                cloud_custom_data: opts.cloud_custom_data.clone(),
                online_only: opts.online_only,
                push: opts.push.clone(),
                need_read_receipt: opts.need_read_receipt,
            },
            Op::History { peer, count, before, .. } => {
                ClientFrame::History { id, peer: peer.clone(), count: *count, before: before.clone() }
            }
            Op::Conversations { .. } => ClientFrame::Conversations { id },
            Op::MarkRead { peer, .. } => ClientFrame::MarkRead { id, peer: peer.clone(), time: None },
            Op::Relation { req, .. } => req.frame(id),
            Op::Message { req, .. } => req.frame(id),
        }
    }

    /// The caller stopped waiting (its future was dropped): no need to send or answer.
    fn abandoned(&self) -> bool {
        match self {
            Op::Send { reply, .. } => reply.is_closed(),
            Op::History { reply, .. } => reply.is_closed(),
            Op::Conversations { reply } => reply.is_closed(),
            Op::MarkRead { reply, .. } => reply.is_closed(),
            Op::Relation { reply, .. } => reply.is_closed(),
            Op::Message { reply, .. } => reply.is_closed(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Op::Send { .. } => "send",
            Op::History { .. } => "history",
            Op::Conversations { .. } => "conversations",
            Op::MarkRead { .. } => "mark_read",
            Op::Relation { .. } => "relation",
            Op::Message { req: MessageRequest::Recall { .. }, .. } => "recall",
            Op::Message { req: MessageRequest::ReadReceipt { .. }, .. } => "read_receipt",
            Op::Message { req: MessageRequest::Find { .. }, .. } => "find",
            Op::Message { req: MessageRequest::Search(_), .. } => "search",
            Op::Message { req: MessageRequest::Modify { .. }, .. } => "modify",
            Op::Message { req: MessageRequest::Delete { .. }, .. } => "delete",
            Op::Message { req: MessageRequest::ClearHistory { .. }, .. } => "clear_history",
            Op::Message { req: MessageRequest::DeleteConversation { .. }, .. } => "delete_conversation",
            Op::Message { req: MessageRequest::UpdateConversation { .. }, .. } => "set_conversation",
            Op::Message { req: MessageRequest::Typing { .. }, .. } => "typing",
            Op::Message { req: MessageRequest::SetDnd(_), .. } => "set_dnd",
            Op::Message { req: MessageRequest::GetDnd, .. } => "get_dnd",
        }
    }

    fn fail(self, e: Error) {
        match self {
            Op::Send { reply, .. } => drop(reply.send(Err(e))),
            Op::History { reply, .. } => drop(reply.send(Err(e))),
            Op::Conversations { reply } => drop(reply.send(Err(e))),
            Op::MarkRead { reply, .. } => drop(reply.send(Err(e))),
            Op::Relation { reply, .. } => drop(reply.send(Err(e))),
            Op::Message { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

/// What an outstanding request id stands for.
enum Pending {
    Login,
    /// A page of a sync round.
    Sync,
    /// The conversation list that ends the sync after a login.
    SyncConversations,
    Ping,
    /// `background` said again after a reconnect (the app is still in the background).
    Background,
    Logout(Reply<()>),
    User(Request),
}

struct InFlight {
    what: Pending,
    deadline: Instant,
}

/// Why the actor stops for good.
struct Stop {
    /// For the final `Disconnected` event.
    reason: String,
    /// For [`Client::connect`](crate::Client::connect) when this happens before the first login.
    error: Error,
}

impl Stop {
    fn logged_out() -> Stop {
        Stop { reason: "logged out".into(), error: Error::Closed }
    }

    fn client_gone() -> Stop {
        Stop { reason: "every client handle was dropped".into(), error: Error::Closed }
    }
}

/// How a connection ended.
enum End {
    /// Lost: reconnect after a backoff.
    Dropped(Error),
    /// Over: stop the actor.
    Stop(Stop),
}

/// Where the catch-up after a login stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Catchup {
    /// Pulling the log.
    Log,
    /// Waiting for the conversation list.
    Conversations,
    /// `SyncComplete` was emitted: entries are live.
    Done,
}

/// One WebSocket connection.
struct Session {
    ws: Ws,
    inflight: HashMap<u64, InFlight>,
    logged_in: bool,
    /// A `sync` request is outstanding.
    pulling: bool,
    catchup: Catchup,
    next_ping: Instant,
}

pub(crate) struct Actor {
    settings: Settings,
    store: StoreHandle,
    events: mpsc::UnboundedSender<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Told the outcome of the first login, then `None`.
    first: Option<oneshot::Sender<Result<(), Error>>>,
    seq: Sequencer,
    conversations: HashMap<String, Conversation>,
    /// What the local store is known to hold of each conversation (see [`crate::history`]).
    coverage: HashMap<String, Coverage>,
    /// Each conversation's place in the recent-contact order among those of the same second: the server's
    /// order for the list it sent, then later for each newer last message.
    recency: HashMap<String, u64>,
    next_recency: u64,
    /// App requests waiting for a connection, oldest first.
    queue: VecDeque<Request>,
    next_id: u64,
    backoff: Backoff,
    /// The app said it is in the background (with its badge count), and not back in the foreground since.
    background: Option<u64>,
}

/// A time far enough away to stand for "never" in a `select!`.
fn never() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn push_unique(list: &mut Vec<String>, peer: &str) {
    if !list.iter().any(|p| p == peer) {
        list.push(peer.to_owned());
    }
}

async fn send_frame(ws: &mut Ws, frame: &ClientFrame) -> Result<(), Error> {
    let text = serde_json::to_string(frame).map_err(|e| Error::Protocol(format!("encoding a {frame:?} frame: {e}")))?;
    ws.send(WsMessage::text(text)).await.map_err(|e| Error::Connect(e.to_string()))
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        settings: Settings,
        store: StoreHandle,
        cursor: u64,
        conversations: Vec<Conversation>,
        coverage: Vec<(String, Coverage)>,
        events: mpsc::UnboundedSender<Event>,
        commands: mpsc::UnboundedReceiver<Command>,
        first: oneshot::Sender<Result<(), Error>>,
        backoff: Backoff,
    ) -> Actor {
        Actor {
            settings,
            store,
            events,
            commands,
            first: Some(first),
            seq: Sequencer::new(cursor),
            conversations: conversations.into_iter().map(|c| (c.peer.clone(), c)).collect(),
            coverage: coverage.into_iter().collect(),
            recency: HashMap::new(),
            next_recency: 0,
            queue: VecDeque::new(),
            next_id: 0,
            backoff,
            background: None,
        }
    }

    /// Connects, serves, reconnects, until logout, a kick, an expired UserSig, a refused login, or every
    /// client handle is dropped. A failure of the very first connection is reported to `connect` and
    /// ends the actor.
    pub(crate) async fn run(mut self) {
        let stop = loop {
            self.emit(Event::Connection(ConnectionState::Connecting));
            let error = match self.attempt().await {
                End::Stop(stop) => break stop,
                End::Dropped(error) => error,
            };
            if self.first.is_some() {
                break Stop { reason: error.to_string(), error };
            }
            self.emit(Event::Connection(ConnectionState::Disconnected { reason: error.to_string() }));
            let delay = self.backoff.next_delay();
            tracing::info!(user = %self.settings.user, %error, ?delay, "connection lost; reconnecting");
            if let Err(stop) = self.idle(tokio::time::sleep(delay)).await {
                break stop;
            }
        };
        self.finish(stop);
    }

    fn finish(mut self, stop: Stop) {
        tracing::info!(user = %self.settings.user, reason = %stop.reason, "client stopped");
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(stop.error));
        }
        for req in self.queue.drain(..) {
            req.op.fail(Error::Closed);
        }
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            cmd.fail(Error::Closed);
        }
        self.emit(Event::Connection(ConnectionState::Disconnected { reason: stop.reason }));
    }

    fn emit(&self, event: Event) {
        // The app may have dropped its `Events`; the client works on regardless.
        let _ = self.events.send(event);
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Waits for `fut` while accepting commands (they queue until a connection is up) and failing
    /// queued requests whose deadline passes.
    async fn idle<F: std::future::Future>(&mut self, fut: F) -> Result<F::Output, Stop> {
        tokio::pin!(fut);
        loop {
            let deadline = self.next_deadline(None);
            tokio::select! {
                out = &mut fut => return Ok(out),
                cmd = self.commands.recv() => match cmd {
                    None => return Err(Stop::client_gone()),
                    Some(cmd) => {
                        if let Err(End::Stop(stop)) = self.on_command(None, cmd).await {
                            return Err(stop);
                        }
                    }
                },
                () = sleep_until(deadline) => {
                    if let Err(End::Stop(stop)) = self.on_deadlines(None) {
                        return Err(stop);
                    }
                }
            }
        }
    }

    /// One connection: open, log in, serve until it ends; then requeue what was in flight.
    async fn attempt(&mut self) -> End {
        let timeout = self.settings.request_timeout;
        let connector = tokio_tungstenite::Connector::Rustls(self.settings.tls.clone());
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(self.settings.url.clone(), None, false, Some(connector));
        let connecting = tokio::time::timeout(timeout, connect);
        let ws = match self.idle(connecting).await {
            Err(stop) => return End::Stop(stop),
            Ok(Err(_)) => {
                return End::Dropped(Error::Connect(format!("no websocket handshake within {timeout:?}")));
            }
            Ok(Ok(Err(e))) => return End::Dropped(Error::Connect(e.to_string())),
            Ok(Ok(Ok((ws, _response)))) => ws,
        };
        let mut s = Session {
            ws,
            inflight: HashMap::new(),
            logged_in: false,
            pulling: false,
            catchup: Catchup::Log,
            next_ping: never(),
        };
        let end = self.session(&mut s).await;
        self.teardown(s, end).await
    }

    async fn session(&mut self, s: &mut Session) -> End {
        let id = self.id();
        let login = ClientFrame::Login {
            id,
            protocol: PROTOCOL_VERSION,
            user: self.settings.user.clone(),
            usersig: self.settings.usersig.clone(),
            platform: self.settings.platform,
            device: self.settings.device.clone(),
            transient: matches!(self.settings.session, SessionKind::Transient { .. }),
            live: matches!(self.settings.session, SessionKind::Transient { live: true }),
        };
        s.inflight
            .insert(id, InFlight { what: Pending::Login, deadline: Instant::now() + self.settings.request_timeout });
        if let Err(e) = send_frame(&mut s.ws, &login).await {
            return End::Dropped(e);
        }
        loop {
            let deadline = self.next_deadline(Some(s));
            let ping_at = if s.logged_in { s.next_ping } else { never() };
            let step = tokio::select! {
                item = s.ws.next() => self.on_ws(s, item).await,
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(Some(s), cmd).await,
                    None => Err(End::Stop(Stop::client_gone())),
                },
                () = sleep_until(deadline) => self.on_deadlines(Some(s)),
                () = sleep_until(ping_at) => self.ping(s).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Puts app requests that were in flight back at the head of the queue, in their original order,
    /// and closes the socket. A logout in flight counts as done.
    async fn teardown(&mut self, mut s: Session, end: End) -> End {
        let mut requeue = Vec::new();
        let mut logged_out = false;
        for (id, f) in s.inflight.drain() {
            match f.what {
                Pending::User(req) => requeue.push((id, req)),
                Pending::Logout(reply) => {
                    let _ = reply.send(Ok(()));
                    logged_out = true;
                }
                Pending::Login | Pending::Sync | Pending::SyncConversations | Pending::Ping | Pending::Background => {}
            }
        }
        requeue.sort_by_key(|(id, _)| *id);
        for (_, req) in requeue.into_iter().rev() {
            self.queue.push_front(req);
        }
        // The server may be gone already; closing is a courtesy.
        let _ = tokio::time::timeout(Duration::from_secs(1), s.ws.close(None)).await;
        match end {
            End::Dropped(_) if logged_out => End::Stop(Stop::logged_out()),
            end => end,
        }
    }

    fn next_deadline(&self, s: Option<&Session>) -> Instant {
        let queued = self.queue.iter().map(|r| r.deadline);
        let inflight = s.into_iter().flat_map(|s| s.inflight.values().map(|f| f.deadline));
        queued.chain(inflight).min().unwrap_or_else(never)
    }

    /// Fails what is past its deadline. An internal request (login, sync, ping) past its deadline means
    /// the connection is dead.
    fn on_deadlines(&mut self, s: Option<&mut Session>) -> Result<(), End> {
        let now = Instant::now();
        let timeout = self.settings.request_timeout;
        let (expired, waiting): (Vec<Request>, Vec<Request>) = self.queue.drain(..).partition(|r| r.deadline <= now);
        self.queue = waiting.into();
        for req in expired {
            req.op.fail(Error::NotConnected(timeout));
        }
        let Some(s) = s else { return Ok(()) };
        let expired: Vec<u64> = s.inflight.iter().filter(|(_, f)| f.deadline <= now).map(|(id, _)| *id).collect();
        let mut end = None;
        for id in expired {
            let Some(f) = s.inflight.remove(&id) else { continue };
            match f.what {
                Pending::User(req) => {
                    tracing::warn!(id, op = req.op.name(), "request timed out");
                    req.op.fail(Error::Timeout(timeout));
                }
                Pending::Logout(reply) => {
                    let _ = reply.send(Ok(()));
                    end = Some(End::Stop(Stop::logged_out()));
                }
                Pending::Login => {
                    end.get_or_insert(End::Dropped(Error::Connect(format!("no answer to login within {timeout:?}"))));
                }
                Pending::Sync | Pending::SyncConversations | Pending::Ping => {
                    end.get_or_insert(End::Dropped(Error::Timeout(timeout)));
                }
                Pending::Background => {}
            }
        }
        end.map_or(Ok(()), Err)
    }

    async fn ping(&mut self, s: &mut Session) -> Result<(), End> {
        let id = self.id();
        s.next_ping = Instant::now() + self.settings.heartbeat;
        s.inflight
            .insert(id, InFlight { what: Pending::Ping, deadline: Instant::now() + self.settings.request_timeout });
        send_frame(&mut s.ws, &ClientFrame::Ping { id }).await.map_err(End::Dropped)
    }

    // ---- commands -------------------------------------------------------------------------------

    async fn on_command(&mut self, s: Option<&mut Session>, cmd: Command) -> Result<(), End> {
        match cmd {
            Command::Send { to, elems, opts, deadline, reply } => {
                let random = rand::random();
                let op = Op::Send { to, random, elems, opts, reply };
                self.submit(s, Request { op, deadline }).await
            }
            Command::GetMessages { peer, count, before, deadline, reply } => {
                let count = count.min(MAX_HISTORY_PAGE);
                if count == 0 {
                    let _ = reply.send(Ok(Vec::new()));
                    return Ok(());
                }
                // A transient client without pushes cannot know what arrived since its catch-up: it asks.
                let local = match self.settings.session {
                    SessionKind::Transient { live: false } => Ok(None),
                    _ => self.local_page(&peer, count, before.clone()).await,
                };
                match local {
                    Ok(Some(page)) => {
                        tracing::debug!(%peer, count, n = page.len(), "history answered locally");
                        let me = self.settings.user.clone();
                        let page = page.into_iter().map(|m| self.with_peer_read(&me, m)).collect();
                        let _ = reply.send(Ok(page));
                        Ok(())
                    }
                    result => {
                        if let Err(error) = result {
                            tracing::warn!(%error, "reading local history; asking the server");
                        }
                        let op = Op::History { peer, count, before, reply };
                        self.submit(s, Request { op, deadline }).await
                    }
                }
            }
            Command::Conversations { deadline, reply } => {
                let op = Op::Conversations { reply };
                self.submit(s, Request { op, deadline }).await
            }
            Command::LocalConversations { reply } => {
                let _ = reply.send(Ok(self.sorted_conversations()));
                Ok(())
            }
            Command::MarkRead { peer, deadline, reply } => {
                let op = Op::MarkRead { peer, reply };
                self.submit(s, Request { op, deadline }).await
            }
            Command::Relation { req, deadline, reply } => {
                // The app's state outlives a connection: a new one is told again (see `on_logged_in`).
                match req {
                    RelationRequest::Background { unread } => self.background = Some(unread),
                    RelationRequest::Foreground => self.background = None,
                    _ => {}
                }
                let op = Op::Relation { req, reply };
                self.submit(s, Request { op, deadline }).await
            }
            Command::Message { req, deadline, reply } => {
                let op = Op::Message { req, reply };
                self.submit(s, Request { op, deadline }).await
            }
            Command::Logout { reply } => match s {
                Some(s) if s.logged_in => {
                    let id = self.id();
                    s.inflight.insert(
                        id,
                        InFlight {
                            what: Pending::Logout(reply),
                            deadline: Instant::now() + self.settings.request_timeout,
                        },
                    );
                    // If this fails, teardown answers the logout and stops.
                    send_frame(&mut s.ws, &ClientFrame::Logout { id }).await.map_err(End::Dropped)
                }
                _ => {
                    let _ = reply.send(Ok(()));
                    Err(End::Stop(Stop::logged_out()))
                }
            },
        }
    }

    async fn submit(&mut self, s: Option<&mut Session>, req: Request) -> Result<(), End> {
        match s {
            Some(s) if s.logged_in => self.send_request(s, req).await,
            _ => {
                self.queue.push_back(req);
                Ok(())
            }
        }
    }

    async fn send_request(&mut self, s: &mut Session, req: Request) -> Result<(), End> {
        if req.op.abandoned() {
            return Ok(());
        }
        let id = self.id();
        let frame = req.op.frame(id);
        let deadline = req.deadline;
        s.inflight.insert(id, InFlight { what: Pending::User(req), deadline });
        // On failure the request stays in flight; teardown puts it back in the queue.
        send_frame(&mut s.ws, &frame).await.map_err(End::Dropped)
    }

    async fn request_sync(&mut self, s: &mut Session) -> Result<(), End> {
        let id = self.id();
        s.pulling = true;
        s.inflight
            .insert(id, InFlight { what: Pending::Sync, deadline: Instant::now() + self.settings.request_timeout });
        let frame = ClientFrame::Sync { id, after: self.seq.cursor(), limit: Some(MAX_SYNC_BATCH) };
        send_frame(&mut s.ws, &frame).await.map_err(End::Dropped)
    }

    async fn request_conversations(&mut self, s: &mut Session) -> Result<(), End> {
        let id = self.id();
        s.catchup = Catchup::Conversations;
        s.inflight.insert(
            id,
            InFlight { what: Pending::SyncConversations, deadline: Instant::now() + self.settings.request_timeout },
        );
        send_frame(&mut s.ws, &ClientFrame::Conversations { id }).await.map_err(End::Dropped)
    }

    // ---- frames ---------------------------------------------------------------------------------

    async fn on_ws(
        &mut self,
        s: &mut Session,
        item: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(), End> {
        match item {
            None => Err(End::Dropped(Error::Connect("the server closed the connection".into()))),
            Some(Err(e)) => Err(End::Dropped(Error::Connect(e.to_string()))),
            Some(Ok(WsMessage::Text(text))) => self.on_text(s, text.as_str()).await,
            Some(Ok(WsMessage::Close(frame))) => {
                let why = frame.map(|f| format!(": {} {}", f.code, f.reason)).unwrap_or_default();
                Err(End::Dropped(Error::Connect(format!("the server closed the connection{why}"))))
            }
            Some(Ok(WsMessage::Binary(_))) => {
                tracing::warn!("ignoring a binary websocket message");
                Ok(())
            }
            Some(Ok(_)) => Ok(()),
        }
    }

    async fn on_text(&mut self, s: &mut Session, text: &str) -> Result<(), End> {
        match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => self.on_frame(s, frame).await,
            Err(error) => {
                // A frame we cannot read: if it answers a request, that request fails; otherwise it
                // is ignored (a newer server may send ops this version does not know).
                let id = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get("id").and_then(serde_json::Value::as_u64))
                    .filter(|id| *id != 0);
                tracing::warn!(%error, frame = %truncate(text), "unreadable frame from the server");
                match id.and_then(|id| s.inflight.remove(&id)) {
                    Some(f) => self.answer_failed(f.what, Error::Protocol(format!("unreadable answer: {error}"))),
                    None => Ok(()),
                }
            }
        }
    }

    /// A request could not be answered: the app's request fails; an internal one ends the connection.
    fn answer_failed(&mut self, what: Pending, error: Error) -> Result<(), End> {
        match what {
            Pending::User(req) => {
                req.op.fail(error);
                Ok(())
            }
            Pending::Ping | Pending::Background => Ok(()),
            Pending::Logout(reply) => {
                let _ = reply.send(Ok(()));
                Err(End::Stop(Stop::logged_out()))
            }
            Pending::Login | Pending::Sync | Pending::SyncConversations => Err(End::Dropped(error)),
        }
    }

    async fn on_frame(&mut self, s: &mut Session, frame: ServerFrame) -> Result<(), End> {
        match frame {
            ServerFrame::LoggedIn { id, user, latest, .. } => {
                match s.inflight.remove(&id) {
                    Some(InFlight { what: Pending::Login, .. }) => {}
                    other => return self.unexpected(id, other, "logged_in"),
                }
                if user != self.settings.user {
                    tracing::warn!(%user, expected = %self.settings.user, "logged in as another user");
                }
                self.on_logged_in(s, latest).await
            }
            ServerFrame::Error { id, code, info } => self.on_error(s, id, code, info),
            ServerFrame::Synced { id, entries, latest, more } => {
                match s.inflight.remove(&id) {
                    Some(InFlight { what: Pending::Sync, .. }) => {}
                    other => return self.unexpected(id, other, "synced"),
                }
                self.on_synced(s, entries, latest, more).await
            }
            ServerFrame::Sent { id, msg_key, seq, random, time, conv_seq, log_seq } => {
                let (to, elems, opts, reply) = match s.inflight.remove(&id) {
                    Some(InFlight {
                        what: Pending::User(Request { op: Op::Send { to, elems, opts, reply, .. }, .. }),
                        ..
                    }) => (to, elems, opts, reply),
                    other => return self.unexpected(id, other, "sent"),
                };
                let sent =
                    SentMessage { msg_key, seq, random, time, conv_seq, log_seq: Some(log_seq).filter(|&s| s > 0) };
                self.on_sent(&to, elems, opts, &sent).await;
                let _ = reply.send(Ok(sent));
                Ok(())
            }
            ServerFrame::History { id, messages, complete, conv_seq } => {
                let (peer, before, reply) = match s.inflight.remove(&id) {
                    Some(InFlight {
                        what: Pending::User(Request { op: Op::History { peer, before, reply, .. }, .. }),
                        ..
                    }) => (peer, before, reply),
                    other => return self.unexpected(id, other, "history"),
                };
                let messages: Vec<Message> = messages.into_iter().map(|m| Message::from_wire(m, None)).collect();
                tracing::debug!(%peer, n = messages.len(), complete, "history from the server");
                let mut batch = Batch {
                    messages: messages
                        .iter()
                        .filter(|m| m.conv_seq > 0)
                        .map(|m| MessageRecord { peer: peer.clone(), message: m.clone(), sent_here: false })
                        .collect(),
                    ..Batch::default()
                };
                // What the page proves is recorded with the page, in the same commit.
                let cursor = match before.as_deref() {
                    None | Some("") => Some(None),
                    Some(key) => position_of(key).map(Some),
                };
                if let Some(before) = cursor {
                    let mut cov = self.coverage.get(&peer).copied().unwrap_or_default();
                    let stored: Vec<Message> = messages.iter().filter(|m| m.conv_seq > 0).cloned().collect();
                    cov.server_page(before, &stored, complete, conv_seq);
                    self.coverage.insert(peer.clone(), cov);
                    batch.coverage.push((peer.clone(), cov));
                }
                self.cover(&mut batch).await;
                self.commit(batch).await;
                let me = self.settings.user.clone();
                let messages = messages.into_iter().map(|m| self.with_peer_read(&me, m)).collect();
                let _ = reply.send(Ok(messages));
                Ok(())
            }
            ServerFrame::Conversations { id, items } => match s.inflight.remove(&id) {
                Some(InFlight { what: Pending::SyncConversations, .. }) => {
                    let list = self.replace_conversations(items).await;
                    for c in list {
                        self.emit(Event::ConversationChanged(c));
                    }
                    s.catchup = Catchup::Done;
                    self.emit(Event::SyncComplete);
                    Ok(())
                }
                Some(InFlight { what: Pending::User(Request { op: Op::Conversations { reply }, .. }), .. }) => {
                    let list = self.replace_conversations(items).await;
                    let _ = reply.send(Ok(list));
                    Ok(())
                }
                other => self.unexpected(id, other, "conversations"),
            },
            ServerFrame::Ok { id } => match s.inflight.remove(&id) {
                Some(InFlight { what: Pending::User(Request { op: Op::MarkRead { peer, reply }, .. }), .. }) => {
                    self.on_marked_read(&peer).await;
                    let _ = reply.send(Ok(()));
                    Ok(())
                }
                Some(InFlight { what: Pending::Logout(reply), .. }) => {
                    let _ = reply.send(Ok(()));
                    Err(End::Stop(Stop::logged_out()))
                }
                Some(InFlight { what: Pending::User(Request { op: Op::Relation { reply, .. }, .. }), .. }) => {
                    let _ = reply.send(Ok(RelationAnswer::Ok));
                    Ok(())
                }
                Some(InFlight { what: Pending::User(Request { op: Op::Message { reply, .. }, .. }), .. }) => {
                    let _ = reply.send(Ok(MessageAnswer::Ok));
                    Ok(())
                }
                Some(InFlight { what: Pending::Background, .. }) => Ok(()),
                other => self.unexpected(id, other, "ok"),
            },
            ServerFrame::FriendAddResult { id, pending } => {
                self.relation_answer(s, id, RelationAnswer::Added { pending }, "friend_add_result")
            }
            ServerFrame::FriendList { id, friends } => {
                self.relation_answer(s, id, RelationAnswer::Friends(friends), "friend_list")
            }
            ServerFrame::FriendRequests { id, incoming, outgoing } => {
                let answer = RelationAnswer::Requests(FriendRequests { incoming, outgoing });
                self.relation_answer(s, id, answer, "friend_requests")
            }
            ServerFrame::BlackList { id, items } => {
                self.relation_answer(s, id, RelationAnswer::Blacklist(items), "black_list")
            }
            ServerFrame::Typing { from, typing } => {
                self.emit(Event::Typing { from, typing });
                Ok(())
            }
            ServerFrame::Relation { event } => {
                self.emit(Event::Relation(event));
                Ok(())
            }
            ServerFrame::Receipts { id, acknowledged } => {
                self.message_answer(s, id, MessageAnswer::Acknowledged(acknowledged), "receipts")
            }
            ServerFrame::Found { id, messages } => {
                let me = self.settings.user.clone();
                let found = messages
                    .into_iter()
                    .map(|m| m.map(|m| self.with_peer_read(&me, Message::from_wire(m, None))))
                    .collect();
                self.message_answer(s, id, MessageAnswer::Found(found), "found")
            }
            ServerFrame::SearchResult { id, messages, cursor } => {
                let me = self.settings.user.clone();
                let messages =
                    messages.into_iter().map(|m| self.with_peer_read(&me, Message::from_wire(m, None))).collect();
                self.message_answer(s, id, MessageAnswer::Searched(SearchPage { messages, cursor }), "search_result")
            }
            ServerFrame::Modified { id, msg } => {
                let me = self.settings.user.clone();
                let msg = self.with_peer_read(&me, Message::from_wire(msg, None));
                self.message_answer(s, id, MessageAnswer::Modified(Box::new(msg)), "modified")
            }
            ServerFrame::Dnd { id, receive_opt, start_of_day, start_time, duration } => {
                let dnd = DndSetting { receive_opt, start_of_day, start_time, duration };
                self.message_answer(s, id, MessageAnswer::Dnd(dnd), "dnd")
            }
            ServerFrame::Deleted { id, deleted } => {
                self.message_answer(s, id, MessageAnswer::Deleted(deleted), "deleted")
            }
            ServerFrame::Pong { id, latest, .. } => match s.inflight.remove(&id) {
                // The log has entries this device never got (a lost push of the newest entry): pull them.
                Some(InFlight { what: Pending::Ping, .. }) if latest > self.seq.cursor() && !s.pulling => {
                    self.request_sync(s).await
                }
                Some(InFlight { what: Pending::Ping, .. }) => Ok(()),
                other => self.unexpected(id, other, "pong"),
            },
            ServerFrame::Entry { entry } => self.on_entry(s, entry).await,
            ServerFrame::Kicked { code, info } => {
                tracing::warn!(code, %info, "kicked");
                self.emit(Event::Kicked { code, info: info.clone() });
                Err(End::Stop(Stop { reason: format!("kicked: {info} ({code})"), error: Error::Server { code, info } }))
            }
            ServerFrame::SigExpired { code, info } => {
                tracing::warn!(code, %info, "usersig expired");
                self.emit(Event::SigExpired);
                Err(End::Stop(Stop {
                    reason: format!("usersig expired: {info} ({code})"),
                    error: Error::Server { code, info },
                }))
            }
        }
    }

    /// The answer to a relationship request.
    fn relation_answer(&mut self, s: &mut Session, id: u64, answer: RelationAnswer, op: &str) -> Result<(), End> {
        match s.inflight.remove(&id) {
            Some(InFlight { what: Pending::User(Request { op: Op::Relation { reply, .. }, .. }), .. }) => {
                let _ = reply.send(Ok(answer));
                Ok(())
            }
            other => self.unexpected(id, other, op),
        }
    }

    /// The answer to a request about sent messages.
    fn message_answer(&mut self, s: &mut Session, id: u64, answer: MessageAnswer, op: &str) -> Result<(), End> {
        match s.inflight.remove(&id) {
            Some(InFlight { what: Pending::User(Request { op: Op::Message { reply, .. }, .. }), .. }) => {
                let _ = reply.send(Ok(answer));
                Ok(())
            }
            other => self.unexpected(id, other, op),
        }
    }

    /// `m` with `peer_read` set when it is this user's and the conversation's read receipt covers it.
    fn with_peer_read(&self, me: &str, mut m: Message) -> Message {
        if m.from == me
            && let Some(c) = self.conversations.get(&m.to)
        {
            m.peer_read = c.is_peer_read(&m);
        }
        m
    }

    /// An answer whose id is unknown (late, after a timeout) or that answers another kind of request.
    fn unexpected(&mut self, id: u64, found: Option<InFlight>, op: &str) -> Result<(), End> {
        match found {
            None => {
                tracing::debug!(id, op, "answer to no outstanding request (late or unknown); ignored");
                Ok(())
            }
            Some(f) => {
                tracing::warn!(id, op, "the server answered a request with the wrong op");
                self.answer_failed(f.what, Error::Protocol(format!("request {id} was answered with {op:?}")))
            }
        }
    }

    fn on_error(&mut self, s: &mut Session, id: u64, code: u32, info: String) -> Result<(), End> {
        let Some(f) = s.inflight.remove(&id) else {
            tracing::warn!(id, code, %info, "error frame from the server");
            if code == code::NOT_LOGGED_IN {
                // The server lost our session: log in again.
                return Err(End::Dropped(Error::Server { code, info }));
            }
            return Ok(());
        };
        match f.what {
            Pending::Login => Err(self.login_refused(code, info)),
            Pending::User(req) => {
                tracing::debug!(id, op = req.op.name(), code, %info, "request refused");
                req.op.fail(Error::Server { code, info });
                Ok(())
            }
            Pending::Ping => {
                tracing::warn!(code, %info, "ping refused");
                Ok(())
            }
            Pending::Background => {
                tracing::warn!(code, %info, "background refused");
                Ok(())
            }
            Pending::Logout(reply) => {
                tracing::warn!(code, %info, "logout refused; stopping anyway");
                let _ = reply.send(Ok(()));
                Err(End::Stop(Stop::logged_out()))
            }
            Pending::Sync | Pending::SyncConversations => {
                tracing::warn!(code, %info, "sync refused; reconnecting");
                Err(End::Dropped(Error::Server { code, info }))
            }
        }
    }

    /// A refused login: an expired or revoked UserSig ends the client with the matching event; a
    /// UserSig or UserID that can never work ends it too; anything else is retried.
    fn login_refused(&mut self, code: u32, info: String) -> End {
        tracing::warn!(code, %info, "login refused");
        let stop = |reason: &str, code: u32, info: String| {
            End::Stop(Stop { reason: format!("{reason}: {info} ({code})"), error: Error::Server { code, info } })
        };
        match code {
            api_code::USERSIG_EXPIRED | code::SIG_EXPIRED => {
                self.emit(Event::SigExpired);
                stop("usersig expired", code, info)
            }
            api_code::USERSIG_REVOKED | code::KICKED_BY_OTHER => {
                self.emit(Event::Kicked { code, info: info.clone() });
                stop("kicked", code, info)
            }
            api_code::USERSIG_EMPTY
            | api_code::USERSIG_INVALID
            | api_code::USERSIG_FIELDS
            | api_code::USERSIG_KEY_MISMATCH
            | api_code::USERSIG_IDENTIFIER_MISMATCH
            | api_code::USERSIG_SDKAPPID_MISMATCH
            | code::INVALID_USER_ID
            | code::UNSUPPORTED_PROTOCOL
            | code::INVALID_PARAMS => stop("login refused", code, info),
            _ => End::Dropped(Error::Server { code, info }),
        }
    }

    async fn on_logged_in(&mut self, s: &mut Session, latest: u64) -> Result<(), End> {
        s.logged_in = true;
        s.catchup = Catchup::Log;
        s.next_ping = Instant::now() + self.settings.heartbeat;
        self.backoff.reset();
        if latest < self.seq.cursor() {
            // The server's log restarted (a new server, or data lost): our cursor means nothing there.
            tracing::warn!(
                cursor = self.seq.cursor(),
                latest,
                "the server's log is behind the local cursor; syncing from 0"
            );
            self.seq = Sequencer::new(0);
        }
        tracing::info!(user = %self.settings.user, device = %self.settings.device, cursor = self.seq.cursor(), latest, "logged in");
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
        self.emit(Event::Connection(ConnectionState::Connected));
        self.emit(Event::SyncStarted);
        if latest > self.seq.cursor() {
            self.request_sync(s).await?;
        } else {
            self.request_conversations(s).await?;
        }
        // The app is still in the background: a new connection starts in the foreground, so say it again
        // (before the queued requests, which may change it once more).
        if let Some(unread) = self.background {
            let id = self.id();
            let deadline = Instant::now() + self.settings.request_timeout;
            s.inflight.insert(id, InFlight { what: Pending::Background, deadline });
            send_frame(&mut s.ws, &ClientFrame::Background { id, unread }).await.map_err(End::Dropped)?;
        }
        while let Some(req) = self.queue.pop_front() {
            self.send_request(s, req).await?;
        }
        Ok(())
    }

    async fn on_synced(&mut self, s: &mut Session, entries: Vec<Entry>, latest: u64, more: bool) -> Result<(), End> {
        s.pulling = false;
        let live = s.catchup == Catchup::Done;
        let before = self.seq.cursor();
        let ready = self.seq.synced(entries);
        self.apply(s, ready, live).await;
        if more {
            if self.seq.cursor() > before {
                return self.request_sync(s).await;
            }
            tracing::warn!(
                cursor = before,
                latest,
                "sync answered more=true without entries past the cursor; treating the round as over"
            );
        }
        let finish = self.seq.finish(latest);
        self.apply(s, finish.ready, live).await;
        if finish.again {
            return self.request_sync(s).await;
        }
        if s.catchup == Catchup::Log {
            return self.request_conversations(s).await;
        }
        Ok(())
    }

    async fn on_entry(&mut self, s: &mut Session, entry: Entry) -> Result<(), End> {
        if !s.logged_in {
            tracing::warn!("entry before logged_in; ignored");
            return Ok(());
        }
        let live = s.catchup == Catchup::Done;
        if entry.seq() == 0 {
            // Online-only: never logged, shown once, no gap logic.
            self.apply(s, vec![entry], live).await;
            return Ok(());
        }
        match self.seq.live(entry) {
            Live::Apply(entries) => {
                self.apply(s, entries, live).await;
                Ok(())
            }
            Live::Duplicate => Ok(()),
            Live::Gap => {
                if s.pulling {
                    Ok(())
                } else {
                    tracing::debug!(cursor = self.seq.cursor(), "gap in the live entries; pulling");
                    self.request_sync(s).await
                }
            }
        }
    }

    // ---- applying ---------------------------------------------------------------------------------

    /// `(to, random)` of every send not yet answered: their copies coming back through the log are
    /// this device's own messages, even before `sent` arrives.
    fn own_sends(&self, s: &Session) -> Vec<(String, u32)> {
        let queued = self.queue.iter().map(|r| &r.op);
        let inflight = s.inflight.values().filter_map(|f| match &f.what {
            Pending::User(r) => Some(&r.op),
            _ => None,
        });
        queued
            .chain(inflight)
            .filter_map(|op| match op {
                Op::Send { to, random, .. } => Some((to.clone(), *random)),
                _ => None,
            })
            .collect()
    }

    /// Applies entries in order: stores messages, read marks and recalls with the new cursor in one
    /// batch, then raises the events. `live`: also report conversation changes (during the catch-up
    /// the full conversation list follows instead).
    async fn apply(&mut self, s: &Session, entries: Vec<Entry>, live: bool) {
        if entries.is_empty() {
            return;
        }
        let me = self.settings.user.clone();
        let own = self.own_sends(s);
        let logged = entries.iter().any(|e| e.seq() > 0);
        let mut batch = Batch::default();
        let mut events = Vec::new();
        let mut changed: Vec<String> = Vec::new();
        for entry in entries {
            match entry {
                Entry::Msg { seq, msg } => {
                    let m = Message::from_wire(msg, Some(seq));
                    let mine = m.from == me;
                    let pending_send = mine && own.iter().any(|(to, r)| *to == m.to && *r == m.random);
                    if seq == 0 || m.conv_seq == 0 {
                        if !pending_send {
                            events.push(Event::NewMessage(m));
                        }
                        continue;
                    }
                    let peer = m.peer(&me).to_owned();
                    let sent_here = pending_send || (mine && self.sent_here(&peer, &m.msg_key).await);
                    let conv = self.conversations.entry(peer.clone()).or_insert_with(|| Conversation::empty(&peer));
                    if conv.last.as_ref().is_none_or(|l| m.position() >= l.position()) {
                        conv.last = Some(m.clone());
                        conv.time = conv.time.max(m.time);
                        self.next_recency += 1;
                        self.recency.insert(peer.clone(), self.next_recency);
                    }
                    if !mine && !m.recalled {
                        conv.unread += 1;
                    }
                    push_unique(&mut changed, &peer);
                    batch.messages.push(MessageRecord { peer, message: m.clone(), sent_here });
                    if !sent_here {
                        events.push(Event::NewMessage(m));
                    }
                }
                Entry::Read { peer, time, .. } => {
                    let Some(conv) = self.conversations.get(&peer) else {
                        continue;
                    };
                    let old = conv.unread;
                    let all_read = conv.last.as_ref().is_none_or(|l| l.time <= time);
                    let unread = if all_read || old == 0 {
                        0
                    } else {
                        let p = peer.clone();
                        let stored = self.store.call(move |st| st.count_from_after(&p, time)).await.unwrap_or(old);
                        let in_batch = batch
                            .messages
                            .iter()
                            .filter(|r| r.peer == peer && r.message.from == peer && r.message.time > time)
                            .count() as u64;
                        old.min(stored + in_batch)
                    };
                    if unread != old {
                        if let Some(conv) = self.conversations.get_mut(&peer) {
                            conv.unread = unread;
                        }
                        push_unique(&mut changed, &peer);
                    }
                }
                Entry::Recall { peer, msg_key, by, .. } => {
                    let recall = |m: &mut Message| {
                        m.recalled = true;
                        m.revoker = by.clone();
                        m.elems.clear();
                        m.cloud_custom_data.clear();
                    };
                    if self.recalled_unread(&batch, &peer, &msg_key).await
                        && let Some(conv) = self.conversations.get_mut(&peer)
                    {
                        conv.unread -= 1;
                        push_unique(&mut changed, &peer);
                    }
                    for r in batch.messages.iter_mut().filter(|r| r.peer == peer && r.message.msg_key == msg_key) {
                        recall(&mut r.message);
                    }
                    if let Some(last) = self
                        .conversations
                        .get_mut(&peer)
                        .and_then(|c| c.last.as_mut())
                        .filter(|l| l.msg_key == msg_key && !l.recalled)
                    {
                        recall(last);
                        push_unique(&mut changed, &peer);
                    }
                    batch.recalls.push((peer.clone(), msg_key.clone(), by.clone()));
                    events.push(Event::MessageRecalled { peer, msg_key, by });
                }
                Entry::PeerRead { peer, time, .. } => {
                    let conv = self.conversations.entry(peer.clone()).or_insert_with(|| Conversation::empty(&peer));
                    if time > conv.peer_read_time {
                        conv.peer_read_time = time;
                        push_unique(&mut changed, &peer);
                    }
                    events.push(Event::PeerRead { peer, time });
                }
                Entry::Receipt { peer, msg_key, time, .. } => {
                    for r in batch.messages.iter_mut().filter(|r| r.peer == peer && r.message.msg_key == msg_key) {
                        r.message.receipt_time = r.message.receipt_time.or(Some(time));
                    }
                    batch.receipts.push((peer.clone(), msg_key.clone(), time));
                    events.push(Event::ReadReceipt { peer, msg_key, time });
                }
                Entry::Modified { msg, .. } => {
                    let m = Message::from_wire(msg, None);
                    let peer = m.peer(&me).to_owned();
                    let in_batch = batch.messages.iter().any(|r| r.peer == peer && r.message.msg_key == m.msg_key);
                    // Only a message held here is updated: one never seen stays for history to bring.
                    // Not one this batch deleted or cleared (the store still has it until the batch commits).
                    let gone = batch.deletions.iter().any(|(p, k)| *p == peer && *k == m.msg_key)
                        || batch.clears.iter().any(|(p, upto)| *p == peer && m.conv_seq <= *upto);
                    let held = !gone && (in_batch || self.held(&peer, &m.msg_key).await);
                    if held {
                        batch.messages.push(MessageRecord { peer: peer.clone(), message: m.clone(), sent_here: false });
                    }
                    if let Some(last) = self
                        .conversations
                        .get_mut(&peer)
                        .and_then(|c| c.last.as_mut())
                        .filter(|l| l.msg_key == m.msg_key && l.version <= m.version)
                    {
                        last.elems = m.elems.clone();
                        last.cloud_custom_data = m.cloud_custom_data.clone();
                        last.version = m.version;
                        push_unique(&mut changed, &peer);
                    }
                    events.push(Event::MessageModified(m));
                }
                Entry::Deleted { peer, msg_key, .. } => {
                    if self.recalled_unread(&batch, &peer, &msg_key).await
                        && let Some(conv) = self.conversations.get_mut(&peer)
                    {
                        conv.unread -= 1;
                        push_unique(&mut changed, &peer);
                    }
                    batch.messages.retain(|r| !(r.peer == peer && r.message.msg_key == msg_key));
                    batch.deletions.push((peer.clone(), msg_key.clone()));
                    if self.conversations.get(&peer).and_then(|c| c.last.as_ref()).is_some_and(|l| l.msg_key == msg_key)
                    {
                        let last = self.latest_left(&batch, &peer).await;
                        if let Some(conv) = self.conversations.get_mut(&peer) {
                            conv.last = last;
                        }
                        push_unique(&mut changed, &peer);
                    }
                    events.push(Event::MessageDeleted { peer, msg_key });
                }
                Entry::Cleared { peer, upto, conversation, .. } => {
                    if upto > 0 {
                        batch.messages.retain(|r| !(r.peer == peer && r.message.conv_seq <= upto));
                        batch.clears.push((peer.clone(), upto));
                        if let Some(conv) = self.conversations.get_mut(&peer) {
                            conv.unread = 0;
                            if conv.last.as_ref().is_some_and(|l| l.conv_seq <= upto) {
                                conv.last = None;
                            }
                            push_unique(&mut changed, &peer);
                        }
                    }
                    if conversation {
                        self.conversations.remove(&peer);
                        self.recency.remove(&peer);
                        changed.retain(|p| *p != peer);
                        batch.removed_conversations.push(peer.clone());
                        events.push(Event::ConversationDeleted { peer: peer.clone() });
                    }
                    if upto > 0 {
                        events.push(Event::HistoryCleared { peer });
                    }
                }
                Entry::Settings { peer, settings, .. } => {
                    // A conversation not held here comes with the next conversation list.
                    if let Some(conv) = self.conversations.get_mut(&peer)
                        && conv.settings != settings
                    {
                        conv.settings = settings;
                        push_unique(&mut changed, &peer);
                    }
                }
                Entry::Unknown { seq } => {
                    tracing::debug!(seq, "skipping a sync-log entry of a kind this SDK does not know");
                }
            }
        }
        if logged {
            batch.cursor = Some(self.seq.cursor());
        }
        batch.conversations = changed.iter().filter_map(|p| self.conversations.get(p).cloned()).collect();
        self.cover(&mut batch).await;
        // Persist first, so that the app never hears of something the store would forget.
        self.commit(batch).await;
        for event in events {
            self.emit(event);
        }
        if live {
            for peer in changed {
                if let Some(c) = self.conversations.get(&peer) {
                    self.emit(Event::ConversationChanged(c.clone()));
                }
            }
        }
    }

    /// Whether the message `msg_key` that `peer` sent, about to be recalled, counts in the conversation's
    /// unread count: it is one of the newest `unread` messages received from `peer` not recalled (the
    /// unread ones are the newest, since a read covers everything up to a time), in `batch` (applied
    /// before it in this batch) or else in the local store.
    async fn recalled_unread(&self, batch: &Batch, peer: &str, msg_key: &str) -> bool {
        let unread = self.conversations.get(peer).map_or(0, |c| c.unread) as usize;
        if unread == 0 {
            return false;
        }
        // Recalled or deleted earlier in this batch: the store does not know yet.
        let settled = |m: &Message| {
            batch.recalls.iter().any(|(p, k, _)| p == peer && *k == m.msg_key)
                || batch.deletions.iter().any(|(p, k)| p == peer && *k == m.msg_key)
        };
        let received = |m: &Message| m.from == peer && !m.recalled && m.conv_seq > 0 && !settled(m);
        let mut newest: Vec<Message> = batch
            .messages
            .iter()
            .filter(|r| r.peer == peer && received(&r.message))
            .map(|r| r.message.clone())
            .collect();
        let (p, limit) = (peer.to_owned(), unread + 64);
        let stored = self.store.call(move |st| st.messages_before(&p, None, limit)).await.unwrap_or_default();
        newest.extend(stored.into_iter().filter(received));
        newest.sort_by_key(|m| std::cmp::Reverse(m.position()));
        newest.dedup_by(|a, b| a.msg_key == b.msg_key);
        newest.iter().take(unread).any(|m| m.msg_key == msg_key)
    }

    /// Whether the local store holds the message `msg_key` of the conversation with `peer`.
    async fn held(&self, peer: &str, msg_key: &str) -> bool {
        let (peer, key) = (peer.to_owned(), msg_key.to_owned());
        self.store.call(move |st| st.message(&peer, &key)).await.is_ok_and(|found| found.is_some())
    }

    /// The newest message of the conversation with `peer` left once `batch`'s deletions are applied: the
    /// conversation's last message after its last one was deleted (`None` when none is held here).
    async fn latest_left(&self, batch: &Batch, peer: &str) -> Option<Message> {
        let gone = |m: &Message| batch.deletions.iter().any(|(p, k)| p == peer && *k == m.msg_key);
        let (p, limit) = (peer.to_owned(), batch.deletions.len() + 1);
        let stored = self.store.call(move |st| st.messages_before(&p, None, limit)).await.unwrap_or_default();
        let in_batch = batch.messages.iter().filter(|r| r.peer == peer).map(|r| r.message.clone());
        stored.into_iter().chain(in_batch).filter(|m| !gone(m)).max_by_key(Message::position)
    }

    async fn sent_here(&self, peer: &str, msg_key: &str) -> bool {
        let (peer, key) = (peer.to_owned(), msg_key.to_owned());
        match self.store.call(move |st| st.message(&peer, &key)).await {
            Ok(found) => found.is_some_and(|r| r.sent_here),
            Err(error) => {
                tracing::error!(%error, "reading the local store");
                false
            }
        }
    }

    /// The server accepted a message sent from here: store it and update its conversation.
    async fn on_sent(&mut self, to: &str, elems: Vec<MsgElem>, opts: SendOptions, sent: &SentMessage) {
        if sent.conv_seq == 0 {
            return; // online only: never stored
        }
        let m = Message {
            from: self.settings.user.clone(),
            to: to.to_owned(),
            msg_key: sent.msg_key.clone(),
            seq: sent.seq,
            random: sent.random,
            time: sent.time,
            conv_seq: sent.conv_seq,
            elems,
            cloud_custom_data: opts.cloud_custom_data,
            recalled: false,
            revoker: String::new(),
            peer_read: false,
            need_read_receipt: opts.need_read_receipt,
            receipt_time: None,
            version: 0,
            log_seq: sent.log_seq,
            sender: Default::default(),
        };
        let conv = self.conversations.entry(to.to_owned()).or_insert_with(|| Conversation::empty(to));
        let newer = conv.last.as_ref().is_none_or(|l| m.position() > l.position());
        if newer {
            conv.last = Some(m.clone());
            conv.time = conv.time.max(m.time);
            self.next_recency += 1;
            self.recency.insert(to.to_owned(), self.next_recency);
        }
        let conv = conv.clone();
        let mut batch = Batch {
            messages: vec![MessageRecord { peer: to.to_owned(), message: m, sent_here: true }],
            conversations: vec![conv.clone()],
            ..Batch::default()
        };
        self.cover(&mut batch).await;
        self.commit(batch).await;
        if newer {
            self.emit(Event::ConversationChanged(conv));
        }
    }

    async fn on_marked_read(&mut self, peer: &str) {
        let Some(conv) = self.conversations.get_mut(peer) else {
            return;
        };
        if conv.unread == 0 {
            return;
        }
        conv.unread = 0;
        let conv = conv.clone();
        self.commit(Batch { conversations: vec![conv.clone()], ..Batch::default() }).await;
        self.emit(Event::ConversationChanged(conv));
    }

    /// The server's conversation list replaces the local one, and its order becomes the recent-contact
    /// order. Where the local copy already holds a newer last message (an entry applied after the server
    /// answered), that message is kept.
    async fn replace_conversations(&mut self, items: Vec<wire::Conversation>) -> Vec<Conversation> {
        let mut batch = Batch { replace_conversations: true, ..Batch::default() };
        let mut list = Vec::with_capacity(items.len());
        // The first in the server's order gets the highest.
        self.next_recency += items.len() as u64;
        for (i, item) in items.into_iter().enumerate() {
            // Messages numbered up to this exist, some perhaps never seen here (imported into the past).
            let cov = self.coverage.entry(item.peer.clone()).or_default();
            if item.conv_seq > cov.known {
                cov.heard_of(item.conv_seq);
                batch.coverage.push((item.peer.clone(), *cov));
            }
            let mut c = Conversation::from_wire(item);
            if let Some(local) = self.conversations.get(&c.peer)
                && let Some(mine) = &local.last
                && c.last.as_ref().is_none_or(|theirs| mine.position() > theirs.position())
            {
                c.last = local.last.clone();
                c.time = c.time.max(local.time);
            }
            self.recency.insert(c.peer.clone(), self.next_recency - i as u64);
            list.push(c);
        }
        self.conversations = list.iter().map(|c| (c.peer.clone(), c.clone())).collect();
        batch.conversations = list.clone();
        self.cover(&mut batch).await;
        self.commit(batch).await;
        list
    }

    /// Recent contacts, pinned first, then most recent first: by the last message's time, then the latest
    /// changed first.
    fn sorted_conversations(&self) -> Vec<Conversation> {
        let mut list: Vec<Conversation> = self.conversations.values().cloned().collect();
        let recency = |c: &Conversation| self.recency.get(&c.peer).copied().unwrap_or(0);
        list.sort_by(|a, b| {
            b.settings
                .pinned
                .cmp(&a.settings.pinned)
                .then_with(|| b.time.cmp(&a.time))
                .then_with(|| recency(b).cmp(&recency(a)))
                .then_with(|| a.peer.cmp(&b.peer))
        });
        list
    }

    /// Brings the coverage of the conversations whose messages `batch` stores up to date (see
    /// [`crate::history`]), adding each change to the batch.
    async fn cover(&mut self, batch: &mut Batch) {
        let mut stored: HashMap<String, Vec<u64>> = HashMap::new();
        let lasts = batch.conversations.iter().filter_map(|c| c.last.as_ref().map(|m| (&c.peer, m)));
        for (peer, m) in batch.messages.iter().map(|r| (&r.peer, &r.message)).chain(lasts) {
            if m.conv_seq > 0 {
                stored.entry(peer.clone()).or_default().push(m.conv_seq);
            }
        }
        for (peer, mut seqs) in stored {
            seqs.sort_unstable();
            seqs.dedup();
            let mut cov = self.coverage.get(&peer).copied().unwrap_or_default();
            let before = cov;
            // Nothing held lies above `through` when nothing above it is known to exist.
            let quiet = cov.through >= cov.known;
            for &c in &seqs {
                cov.stored(c);
            }
            let mut above: Vec<u64> = seqs.into_iter().filter(|&c| c > cov.through).collect();
            if !quiet && cov.held != Held::Nothing {
                let (p, after) = (peer.clone(), cov.through);
                match self.store.call(move |st| st.conv_seqs_above(&p, after, usize::MAX)).await {
                    Ok(held) => above.extend(held),
                    Err(error) => tracing::warn!(%error, "reading the local store"),
                }
                above.sort_unstable();
                above.dedup();
            }
            cov.extend(above);
            if cov != before {
                self.coverage.insert(peer.clone(), cov);
                batch.coverage.push((peer, cov));
            }
        }
    }

    async fn commit(&self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        if let Err(error) = self.store.call(move |st| st.commit(&batch)).await {
            tracing::error!(%error, "writing the local store");
        }
    }

    /// A history page from the local store, if it holds every message of it (see [`crate::history`]).
    async fn local_page(
        &self,
        peer: &str,
        count: u32,
        before: Option<String>,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        let Some(cov) = self.coverage.get(peer).copied() else {
            return Ok(None);
        };
        let count = count as usize;
        let peer = peer.to_owned();
        self.store
            .call(move |st| {
                let before = match before.as_deref() {
                    None | Some("") => None,
                    // The cursor must be a message held here.
                    Some(key) => match st.message(&peer, key)? {
                        Some(r) if r.message.conv_seq > 0 => Some(r.message.position()),
                        _ => return Ok(None),
                    },
                };
                let local = st.messages_before(&peer, before, count)?;
                Ok(cov.page(count, local))
            })
            .await
    }
}

/// The position in history of the message `msg_key` names (`<MsgSeq>_<MsgRandom>_<time>`).
fn position_of(msg_key: &str) -> Option<Position> {
    duet_proto::rest::parse_msg_key(msg_key).map(|(seq, random, time)| (time, seq, random))
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

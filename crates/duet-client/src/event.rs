//! [`Event`]s, what the client tells the app without being asked: connection changes, the sync
//! markers, new messages (live and offline alike), conversation changes, recalls, and the end of the
//! session (kicked, UserSig expired). They arrive in order on [`Events`].

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::model::{Conversation, Message};

/// The state of the connection to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the WebSocket and logging in.
    Connecting,
    /// Logged in; a sync follows (`SyncStarted` … `SyncComplete`).
    Connected,
    /// The connection is gone. The client reconnects by itself unless this is the last event (after
    /// logout, a kick, an expired UserSig, a refused login, or when every `Client` handle was dropped).
    Disconnected {
        /// Why, in words (for logs).
        reason: String,
    },
}

/// Something the app should know.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The connection changed state.
    Connection(ConnectionState),
    /// After each login (the first and every reconnect) the client catches up: this marks the start.
    SyncStarted,
    /// A message this device has not shown yet: a live one, or one that arrived while offline (raised
    /// during the sync, in log order). Messages sent from this device are not raised.
    NewMessage(Message),
    /// The catch-up is done: the missed messages were raised and the conversation list refreshed.
    SyncComplete,
    /// A conversation's last message, unread count or time changed (and, at the end of each sync, once
    /// for every conversation, latest first).
    ConversationChanged(Conversation),
    /// A message of the conversation with `peer` was recalled.
    MessageRecalled {
        /// The conversation.
        peer: String,
        /// The recalled message.
        msg_key: String,
        /// Who recalled it: its sender, or an app admin.
        by: String,
    },
    /// `peer` read what this user sent up to `time` (the conversation's read receipt, Tencent's
    /// `onRecvC2CReadReceipt`): this user's messages to `peer` dated at or before it are read.
    PeerRead {
        /// The reader.
        peer: String,
        /// Unix seconds.
        time: i64,
    },
    /// `peer` acknowledged this user's message `msg_key` (sent with `need_read_receipt`) with a read
    /// receipt (Tencent's `onRecvMessageReadReceipts`).
    ReadReceipt {
        /// The reader.
        peer: String,
        /// The acknowledged message.
        msg_key: String,
        /// Unix seconds.
        time: i64,
    },
    /// `from` is typing to this user (`typing: false`: stopped). Live only: never stored or synced.
    Typing {
        /// Who is typing.
        from: String,
        /// Started (`true`) or stopped.
        typing: bool,
    },
    /// A message was edited (by its sender, or an app admin): the message as it is now (Tencent's
    /// `onRecvMessageModified`).
    MessageModified(Message),
    /// This user deleted the message `msg_key` of the conversation with `peer` from its side (on this
    /// device or another); the peer keeps it.
    MessageDeleted {
        /// The conversation.
        peer: String,
        /// The deleted message.
        msg_key: String,
    },
    /// This user cleared its history of the conversation with `peer` (on this device or another).
    HistoryCleared {
        /// The conversation.
        peer: String,
    },
    /// This user deleted the conversation with `peer` from its list (on this device or another).
    ConversationDeleted {
        /// The conversation.
        peer: String,
    },
    /// Logged out by a login on another device or by the admin; the client stopped. Log in again with
    /// a new `Client` (and, after an admin kick, a new UserSig).
    Kicked {
        /// 6208 (another device, or the admin's kick), or 70052 when a login found the UserSig
        /// revoked by a kick.
        code: u32,
        /// The server's explanation.
        info: String,
    },
    /// The UserSig expired; the client stopped. Connect again with a new one.
    SigExpired,
    /// The user's friends, friend requests or blacklist changed (see [`crate::friends`]).
    Relation(crate::friends::RelationEvent),
}

/// The stream of [`Event`]s of one client. It ends (`None`) once the client has stopped.
///
/// The queue behind it is unbounded so that a slow app never stalls the connection: read it (or drop
/// it, which discards events).
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<Event>) -> Events {
        Events { rx }
    }

    /// The next event; `None` once the client has stopped and every event was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl futures_util::Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

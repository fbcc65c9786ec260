//! The after-event callbacks: what happened, as the outbox keeps it until the app's backend took it.
//!
//! An [`AfterEvent`] is written by the store in the commit of what it announces (a message, a recall, a
//! read report, a relation or profile change), or on its own for what has no other commit (a login, a
//! logout, a failed send). The facts only the commit knows (the `MsgSeq` the store picked, unread counts)
//! are filled in by the store ([`AfterEvent::fill`]) before it is encoded.

use serde::{Deserialize, Serialize};

use super::MsgKey;

/// A callback command, by Tencent's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    BeforeSendMsg,
    AfterSendMsg,
    AfterMsgWithDraw,
    AfterMsgReport,
    StateChange,
    FriendAdd,
    FriendDelete,
    BlackListAdd,
    BlackListDelete,
    PortraitSet,
}

impl Command {
    pub const ALL: [Command; 10] = [
        Command::BeforeSendMsg,
        Command::AfterSendMsg,
        Command::AfterMsgWithDraw,
        Command::AfterMsgReport,
        Command::StateChange,
        Command::FriendAdd,
        Command::FriendDelete,
        Command::BlackListAdd,
        Command::BlackListDelete,
        Command::PortraitSet,
    ];

    /// Tencent's `CallbackCommand`.
    pub fn name(self) -> &'static str {
        match self {
            Command::BeforeSendMsg => "C2C.CallbackBeforeSendMsg",
            Command::AfterSendMsg => "C2C.CallbackAfterSendMsg",
            Command::AfterMsgWithDraw => "C2C.CallbackAfterMsgWithDraw",
            Command::AfterMsgReport => "C2C.CallbackAfterMsgReport",
            Command::StateChange => "State.StateChange",
            Command::FriendAdd => "Sns.CallbackFriendAdd",
            Command::FriendDelete => "Sns.CallbackFriendDelete",
            Command::BlackListAdd => "Sns.CallbackBlackListAdd",
            Command::BlackListDelete => "Sns.CallbackBlackListDelete",
            Command::PortraitSet => "Profile.CallbackPortraitSet",
        }
    }

    /// The command named `name`.
    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Something that happened, to be told to the app's backend after the fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterEvent {
    /// Whose event it is: one user's events go out one at a time, in the order they were committed.
    pub user: String,
    /// When it happened (unix ms): Tencent's `EventTime`.
    pub time_ms: i64,
    /// Tencent's `OptPlatform` of whoever caused it (`RESTAPI` for the admin API).
    pub platform: String,
    pub client_ip: Option<String>,
    pub kind: EventKind,
}

/// What happened, with what Tencent's body of its command carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    /// `C2C.CallbackAfterSendMsg`: a message sent (`result` 0) or refused (`result` its code).
    SendMsg {
        from: String,
        to: String,
        /// The message's `MsgSeq` (the store fills in the one it picked).
        seq: u32,
        random: u32,
        time: i64,
        online_only: bool,
        /// `MsgBody` as compact JSON, as stored (after a before-send rewrite).
        body: String,
        cloud_custom_data: String,
        /// 0, or the code the sender got.
        result: u32,
        error_info: String,
        /// The recipient's total unread count after the send; -1 when it failed.
        unread: i64,
    },
    /// `C2C.CallbackAfterMsgWithDraw`.
    MsgWithdraw {
        from: String,
        to: String,
        key: String,
        /// The recipient's total unread count after the recall.
        unread: i64,
    },
    /// `C2C.CallbackAfterMsgReport`: `reporter` read what `peer` sent up to `last_read_time`.
    MsgReport { reporter: String, peer: String, last_read_time: i64, unread: i64 },
    /// `State.StateChange` of [`AfterEvent::user`].
    StateChange {
        /// `Login`, `Logout` or `Disconnect`.
        action: String,
        /// Tencent's `Reason` (`Register`, `Unregister`, `LinkClose`, `TimeOut`, …).
        reason: String,
    },
    /// `Sns.CallbackFriendAdd`: each pair's `from` has `to` as a friend now.
    FriendAdd {
        pairs: Vec<Pair>,
        /// Tencent's `ClientCmd`: `friend_add`, `friend_response`, `friend_import`.
        client_cmd: String,
        /// The admin who asked, for an admin's request.
        admin: Option<String>,
        force: bool,
    },
    /// `Sns.CallbackFriendDelete`: each pair's `from` no longer has `to` as a friend.
    FriendDelete { pairs: Vec<Pair> },
    /// `Sns.CallbackBlackListAdd`: each pair's `from` blocked `to`.
    BlackListAdd { pairs: Vec<Pair> },
    /// `Sns.CallbackBlackListDelete`.
    BlackListDelete { pairs: Vec<Pair> },
    /// `Profile.CallbackPortraitSet`: [`AfterEvent::user`]'s profile was set by `operator`.
    PortraitSet {
        operator: String,
        /// Each tag with its value (a string or a number) as JSON.
        items: Vec<(String, serde_json::Value)>,
    },
}

/// Two users a relation event names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub from: String,
    pub to: String,
    /// Who caused it (Tencent's `Initiator_Account`), where the command names one.
    pub initiator: Option<String>,
}

impl AfterEvent {
    pub fn command(&self) -> Command {
        match self.kind {
            EventKind::SendMsg { .. } => Command::AfterSendMsg,
            EventKind::MsgWithdraw { .. } => Command::AfterMsgWithDraw,
            EventKind::MsgReport { .. } => Command::AfterMsgReport,
            EventKind::StateChange { .. } => Command::StateChange,
            EventKind::FriendAdd { .. } => Command::FriendAdd,
            EventKind::FriendDelete { .. } => Command::FriendDelete,
            EventKind::BlackListAdd { .. } => Command::BlackListAdd,
            EventKind::BlackListDelete { .. } => Command::BlackListDelete,
            EventKind::PortraitSet { .. } => Command::PortraitSet,
        }
    }

    /// Whose total unread count the event carries, which the store reads in the event's commit.
    pub fn unread_of(&self) -> Option<&str> {
        match &self.kind {
            EventKind::SendMsg { to, result: 0, .. } | EventKind::MsgWithdraw { to, .. } => Some(to),
            EventKind::MsgReport { reporter, .. } => Some(reporter),
            _ => None,
        }
    }

    /// The facts of its commit, filled in by the store: the message's key (a send's `MsgSeq` may be the
    /// store's pick, and its second a later one), and the total unread count of [`AfterEvent::unread_of`].
    pub fn fill(&mut self, key: Option<MsgKey>, total_unread: Option<u64>) {
        let count = total_unread.map(|n| n.min(i64::MAX as u64) as i64);
        match &mut self.kind {
            EventKind::SendMsg { seq, time, unread, .. } => {
                if let Some(key) = key {
                    (*seq, *time) = (key.seq, key.time);
                }
                *unread = count.unwrap_or(*unread);
            }
            EventKind::MsgWithdraw { unread, .. } | EventKind::MsgReport { unread, .. } => {
                *unread = count.unwrap_or(*unread);
            }
            _ => {}
        }
    }

    /// The outbox's form.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("an event always encodes")
    }

    /// Reads the outbox's form; `None` for what this version cannot read (written by a newer one).
    pub fn decode(text: &str) -> Option<AfterEvent> {
        serde_json::from_str(text).ok()
    }
}

/// One event in the outbox, claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Never reused: the event's id for the backend to drop duplicates by.
    pub id: u64,
    pub event: AfterEvent,
    /// Earlier attempts that failed.
    pub attempts: u32,
    /// When it was committed (unix seconds).
    pub queued_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::from_name(c.name()), Some(c));
        }
        assert_eq!(Command::from_name("Sns.CallbackPrevFriendAdd"), None);
    }

    #[test]
    fn events_encode_and_fill() {
        let mut e = AfterEvent {
            user: "a".into(),
            time_ms: 1_000,
            platform: "RESTAPI".into(),
            client_ip: None,
            kind: EventKind::SendMsg {
                from: "a".into(),
                to: "b".into(),
                seq: 0,
                random: 7,
                time: 1,
                online_only: false,
                body: "[]".into(),
                cloud_custom_data: String::new(),
                result: 0,
                error_info: String::new(),
                unread: 0,
            },
        };
        assert_eq!(e.unread_of(), Some("b"));
        e.fill(Some(MsgKey { seq: 5, random: 7, time: 2 }), Some(3));
        let EventKind::SendMsg { seq, time, unread, .. } = e.kind else { unreachable!() };
        assert_eq!((seq, time, unread), (5, 2, 3));
        assert_eq!(AfterEvent::decode(&e.encode()), Some(e));
        assert_eq!(AfterEvent::decode(r#"{"user":"a","kind":{"type":"Later"}}"#), None);
    }
}

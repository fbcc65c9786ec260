//! The SDK's own message and conversation types, converted explicitly from the wire types of
//! [`duet_proto::client`], so that the wire can evolve without breaking apps.
//!
//! A [`Message`] carries typed elements ([`MsgElem`]) rather than raw JSON. Elements of a type this
//! version does not know are dropped with a warning (the protocol's version 1 has a closed set).

use duet_proto::client as wire;
pub use duet_proto::client::ConversationSettings;
use duet_proto::elem::MsgElem;
use serde_json::Value;

/// A one-to-one message, as the app sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The sender's UserID.
    pub from: String,
    /// The recipient's UserID.
    pub to: String,
    /// Tencent's `MsgKey`, `<seq>_<random>_<time>`: the message's id within its conversation.
    pub msg_key: String,
    /// `MsgSeq`.
    pub seq: u32,
    /// `MsgRandom`.
    pub random: u32,
    /// Server time, unix seconds.
    pub time: i64,
    /// Position in the conversation, from 1 without gaps for both sides together; 0 for an online-only
    /// message, which is never stored.
    pub conv_seq: u64,
    /// The body's elements, in order.
    pub elems: Vec<MsgElem>,
    /// `CloudCustomData`.
    pub cloud_custom_data: String,
    /// Whether the message was recalled (it stays in history, flagged, with no elements).
    pub recalled: bool,
    /// Who recalled it (its sender, or an app admin); empty while not recalled.
    pub revoker: String,
    /// For a message this user sent: the peer has read it (by the conversation's read receipt, as
    /// known when the message was handed over; [`Conversation::peer_read_time`] is the live value).
    pub peer_read: bool,
    /// The sender asked for a message-level read receipt ([`SendOptions::need_read_receipt`]).
    pub need_read_receipt: bool,
    /// When the recipient acknowledged it with a read receipt (unix seconds).
    pub receipt_time: Option<i64>,
    /// How many times it was edited (0: as sent); [`crate::Client::modify`] names the version it saw.
    pub version: u32,
    /// The position of the entry that brought this message in this user's sync log: `None` for a
    /// message that came from history, a conversation list, or online only.
    pub log_seq: Option<u64>,
    /// Who sent it, as the sender's profile was when it was sent.
    pub sender: Sender,
}

/// The sender of a message as an app shows it, without another lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sender {
    /// `Tag_Profile_IM_Nick` when the message was sent; empty if none was set.
    pub nick: String,
    /// `Tag_Profile_IM_Image` when the message was sent; empty if none was set.
    pub face_url: String,
    /// Sent by an app admin: a system notification (Tencent's "simulated system message"), which an app
    /// may show differently.
    pub system: bool,
}

impl Message {
    /// The other side of the conversation, seen from `me`.
    pub fn peer<'a>(&'a self, me: &str) -> &'a str {
        if self.from == me { &self.to } else { &self.from }
    }

    /// Whether this message was delivered online only (never stored, not in history).
    pub fn is_online_only(&self) -> bool {
        self.conv_seq == 0
    }

    /// The text of the message's text elements, concatenated.
    pub fn text(&self) -> String {
        self.elems
            .iter()
            .filter_map(|e| match e {
                MsgElem::Text(t) => Some(t.text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Converts a wire message; `log_seq` is the entry's sequence number when it came from the log.
    pub(crate) fn from_wire(m: wire::Message, log_seq: Option<u64>) -> Message {
        let elems = parse_elems(m.body.get(), &m.msg_key);
        Message {
            from: m.from,
            to: m.to,
            msg_key: m.msg_key,
            seq: m.seq,
            random: m.random,
            time: m.time,
            conv_seq: m.conv_seq,
            elems,
            cloud_custom_data: m.cloud_custom_data,
            recalled: m.recalled,
            revoker: m.revoker,
            peer_read: m.peer_read,
            need_read_receipt: m.need_read_receipt,
            receipt_time: Some(m.receipt_time).filter(|&t| t > 0),
            version: m.version,
            log_seq: log_seq.filter(|&s| s > 0),
            sender: Sender { nick: m.nick, face_url: m.face_url, system: m.system },
        }
    }
}

/// Reads a `MsgBody` leniently: every element this version understands, in order; others are dropped
/// with a warning rather than failing the whole message.
pub(crate) fn parse_elems(body: &str, msg_key: &str) -> Vec<MsgElem> {
    let items: Vec<Value> = match serde_json::from_str(body) {
        Ok(items) => items,
        Err(error) => {
            tracing::warn!(msg_key, %error, "message body is not an array of elements");
            return Vec::new();
        }
    };
    items
        .into_iter()
        .filter_map(|item| match serde_json::from_value(item) {
            Ok(elem) => Some(elem),
            Err(error) => {
                tracing::warn!(msg_key, %error, "dropping a message element this SDK cannot read");
                None
            }
        })
        .collect()
}

/// One recent contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The other side's UserID.
    pub peer: String,
    /// The last message, if it is still kept.
    pub last: Option<Message>,
    /// Messages from `peer` not yet read (on any device).
    pub unread: u64,
    /// Time of the last message, unix seconds.
    pub time: i64,
    /// Up to when `peer` has read what this user sent (the conversation's read receipt; unix seconds, 0:
    /// nothing yet). This user's messages dated at or before it are read.
    pub peer_read_time: i64,
    /// This user's settings of the conversation (pin, marks, custom data, draft, receive option), shared
    /// by its devices; changed with [`Client::update_conversation`](crate::Client::update_conversation).
    pub settings: ConversationSettings,
}

/// This user's do-not-disturb window over all conversations ([`Client::set_dnd`](crate::Client::set_dnd),
/// Tencent's `setAllReceiveMessageOpt`): while it is on, nothing is pushed to the user's phones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DndSetting {
    /// 0 off; 1 do not receive; 2 receive without notification.
    pub receive_opt: u8,
    /// Every day from this second after midnight (UTC)…
    pub start_of_day: Option<u32>,
    /// …or once from this unix second.
    pub start_time: Option<i64>,
    /// How long, in seconds; 0: always.
    pub duration: u32,
}

/// A change of this user's settings of a conversation ([`Client::update_conversation`](crate::Client::update_conversation)):
/// what is `None` (or 0 among the marks) stays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationChange {
    /// Pin (listed first) or unpin.
    pub pinned: Option<bool>,
    /// Mark bits to set, then to clear (Tencent's: 1 star, 2 unread, 4 fold, 8 hide; bits 32–63 the app's).
    pub set_marks: u64,
    /// Mark bits to clear (after setting `set_marks`).
    pub clear_marks: u64,
    /// The app's data about the conversation (at most 256 bytes).
    pub custom_data: Option<String>,
    /// The text being written (at most 10 KiB); `""` removes the draft.
    pub draft: Option<String>,
    /// 0 receive, 1 do not receive, 2 receive without notification (no push, not in the unread total).
    pub receive_opt: Option<u8>,
}

impl Conversation {
    /// Tencent's conversation id for a one-to-one conversation: `c2c_<peer>`.
    pub fn id(&self) -> String {
        format!("c2c_{}", self.peer)
    }

    pub(crate) fn empty(peer: &str) -> Conversation {
        Conversation {
            peer: peer.to_owned(),
            last: None,
            unread: 0,
            time: 0,
            peer_read_time: 0,
            settings: ConversationSettings::default(),
        }
    }

    pub(crate) fn from_wire(c: wire::Conversation) -> Conversation {
        Conversation {
            peer: c.peer,
            last: c.last.map(|m| Message::from_wire(m, None)),
            unread: c.unread,
            time: c.time,
            peer_read_time: c.peer_read_time,
            settings: c.settings,
        }
    }

    /// Whether `peer` has read `m`, a message this user sent in this conversation.
    pub fn is_peer_read(&self, m: &Message) -> bool {
        m.to == self.peer && (m.peer_read || m.time <= self.peer_read_time)
    }
}

/// Options of [`Client::send_message`](crate::Client::send_message).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendOptions {
    /// `CloudCustomData`: stored with the message and delivered to the peer.
    pub cloud_custom_data: String,
    /// Deliver only to live devices; store nothing (Tencent's `onlineUserOnly`, e.g. "typing…").
    pub online_only: bool,
    /// `MsgSeq`; the server picks one when `None`.
    pub seq: Option<u32>,
    /// Tencent's `OfflinePushInfo`, used for offline push.
    pub push: Option<Value>,
    /// Ask the recipient for a message-level read receipt (Tencent's `needReadReceipt`): the recipient's
    /// [`Client::send_read_receipts`](crate::Client::send_read_receipts) raises
    /// [`Event::ReadReceipt`](crate::Event::ReadReceipt) here.
    pub need_read_receipt: bool,
}

/// A search of the user's own history on the server ([`Client::search_messages`](crate::Client::search_messages)):
/// every condition given must hold, and at least one is given. Recalled messages and those deleted from
/// the user's side never match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Each keyword is in the message's text (a text's `Text`, a file's name, a location's or custom
    /// element's `Desc`); case-insensitive. Chinese, Japanese and Korean keywords match anywhere in a run
    /// of characters; other words match from their start.
    pub keywords: Vec<String>,
    /// Only the conversation with this user (else all the user's conversations).
    pub peer: Option<String>,
    /// Only messages this user sent.
    pub from: Option<String>,
    /// Only messages with an element of one of these `MsgType`s (`TIMTextElem`, `TIMImageElem`, …).
    pub types: Vec<String>,
    /// Dated at or after this (unix seconds).
    pub since: Option<i64>,
    /// Dated at or before this (unix seconds).
    pub until: Option<i64>,
    /// Messages per page, 1 to 100 (the server's default, 20, when `None`).
    pub limit: Option<u32>,
    /// The previous page's [`SearchPage::cursor`], to go on.
    pub cursor: Option<String>,
}

impl SearchQuery {
    /// A search for messages holding `keyword`, in all the user's conversations.
    pub fn keyword(keyword: &str) -> SearchQuery {
        SearchQuery { keywords: vec![keyword.to_owned()], ..SearchQuery::default() }
    }
}

/// A page of a search: messages newest first, and the cursor of the next page (`None`: no more).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// Newest first.
    pub messages: Vec<Message>,
    /// Put in [`SearchQuery::cursor`] for the next page; `None` when nothing more matches.
    pub cursor: Option<String>,
}

/// What the server assigned to a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// Tencent's `MsgKey`, `<seq>_<random>_<time>`.
    pub msg_key: String,
    /// `MsgSeq`.
    pub seq: u32,
    /// `MsgRandom`, chosen by the SDK.
    pub random: u32,
    /// Server time, unix seconds.
    pub time: i64,
    /// Position in the conversation (0 for an online-only message).
    pub conv_seq: u64,
    /// Position of the sender's copy in the sender's sync log (`None` when not logged).
    pub log_seq: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_elements_are_dropped_not_fatal() {
        let m: wire::Message = serde_json::from_str(
            r#"{"from":"alice","to":"bob","msg_key":"7_1_5","seq":7,"random":1,"time":5,"conv_seq":3,
                "body":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}},
                        {"MsgType":"TIMFutureElem","MsgContent":{}},
                        {"MsgType":"TIMFaceElem","MsgContent":{"Index":"2"}}]}"#,
        )
        .unwrap();
        let m = Message::from_wire(m, Some(0));
        assert_eq!(m.elems.len(), 2);
        assert_eq!(m.text(), "hi");
        assert_eq!(m.log_seq, None);
        assert_eq!(m.peer("bob"), "alice");
        assert_eq!(m.peer("alice"), "bob");
        assert!(parse_elems("{\"not\":\"an array\"}", "k").is_empty());
    }
}

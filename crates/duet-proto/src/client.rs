//! The client protocol, version 1: JSON frames over a WebSocket at [`CONNECT_PATH`].
//!
//! Each WebSocket text message is one JSON object with an `op` field. Clients send [`ClientFrame`]s;
//! requests carry an `id` the server echoes in its answer. The server sends [`ServerFrame`]s: answers
//! (`logged_in`, `synced`, `sent`, `history`, `conversations`, `ok`, `pong`, `error`, `friend_add_result`,
//! `friend_list`, `friend_requests`, `black_list`) and events (`entry`, `relation`, `kicked`, `sig_expired`). `docs/protocol.md` is the full description.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::elem::MsgElem;
use crate::limits;

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The WebSocket endpoint, relative to the server's base URL.
pub const CONNECT_PATH: &str = "/v1/connect";
/// Most entries one `sync` answer carries.
pub const MAX_SYNC_BATCH: u32 = 500;
/// Most messages one `history` answer carries.
pub const MAX_HISTORY_PAGE: u32 = 100;
/// Most bytes of entries (or messages) one `synced` (or `history`) answer carries, encoded: a page holds
/// fewer than asked for (and says there is more) rather than grow past it. One entry always fits.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;
/// Message keys one `read_receipt` or `find` may name.
pub const MAX_KEYS_PER_REQUEST: usize = 100;
/// Messages one `delete` may name.
pub const MAX_DELETE_PER_REQUEST: usize = 50;
/// Most messages one `search` answer carries, and how many when the request gives no `limit`.
pub const MAX_SEARCH_PAGE: u32 = 100;
pub const DEFAULT_SEARCH_PAGE: u32 = 20;
/// Keywords one `search` may give, and the longest (in bytes).
pub const MAX_SEARCH_KEYWORDS: usize = 10;
pub const MAX_SEARCH_KEYWORD_BYTES: usize = 100;
/// The `MsgType`s a `search` may filter on.
pub const SEARCH_TYPES: [&str; 8] = [
    "TIMTextElem",
    "TIMFaceElem",
    "TIMLocationElem",
    "TIMImageElem",
    "TIMSoundElem",
    "TIMFileElem",
    "TIMVideoFileElem",
    "TIMCustomElem",
];

/// A UserSig as it crosses the wire: the string itself when serialized, and in `Debug` only its first
/// four characters and its length (`eJwt…(212)`; a short one its length only), the form of
/// `duet_core::redact`, so that a login frame or a client's configuration printed whole leaks nothing
/// usable.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserSig(String);

impl UserSig {
    pub fn new(sig: impl Into<String>) -> UserSig {
        UserSig(sig.into())
    }

    /// The UserSig itself, for the code that sends or checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for UserSig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.0.chars().count();
        if len >= 16 {
            self.0.chars().take(4).try_for_each(|c| std::fmt::Write::write_char(f, c))?;
        }
        write!(f, "…({len})")
    }
}

impl From<String> for UserSig {
    fn from(sig: String) -> UserSig {
        UserSig(sig)
    }
}

impl From<&str> for UserSig {
    fn from(sig: &str) -> UserSig {
        UserSig(sig.to_owned())
    }
}

/// Client error codes, as Tencent's SDKs number them.
pub mod code {
    /// A request other than `login` before logging in.
    pub const NOT_LOGGED_IN: u32 = 6014;
    /// Invalid parameters.
    pub const INVALID_PARAMS: u32 = 6017;
    /// The UserSig expired (at login, or while online).
    pub const SIG_EXPIRED: u32 = 6206;
    /// Kicked offline by a login on another device.
    pub const KICKED_BY_OTHER: u32 = 6208;
    /// An invalid UserID.
    pub const INVALID_USER_ID: u32 = 7003;
    /// The protocol version is not supported.
    pub const UNSUPPORTED_PROTOCOL: u32 = 6022;
    /// Too many requests of this kind: a send over the user's rate (Tencent's "API call frequency limit").
    pub const TOO_FREQUENT: u32 = 7008;
}

/// The platform a device runs on, with Tencent's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "iPhone")]
    IPhone,
    #[serde(rename = "Android")]
    Android,
    #[serde(rename = "iPad")]
    IPad,
    #[serde(rename = "PC", alias = "Windows")]
    Pc,
    #[serde(rename = "Mac")]
    Mac,
    #[serde(rename = "Linux")]
    Linux,
    #[serde(rename = "Web")]
    Web,
}

impl Platform {
    pub const ALL: [Platform; 7] = [
        Platform::IPhone,
        Platform::Android,
        Platform::IPad,
        Platform::Pc,
        Platform::Mac,
        Platform::Linux,
        Platform::Web,
    ];

    /// Tencent's name of the platform.
    pub fn name(self) -> &'static str {
        match self {
            Platform::IPhone => "iPhone",
            Platform::Android => "Android",
            Platform::IPad => "iPad",
            Platform::Pc => "PC",
            Platform::Mac => "Mac",
            Platform::Linux => "Linux",
            Platform::Web => "Web",
        }
    }

    pub fn from_name(name: &str) -> Option<Platform> {
        Platform::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .or_else(|| name.eq_ignore_ascii_case("windows").then_some(Platform::Pc))
    }
}

/// A frame from client to server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientFrame {
    /// The first frame of a connection.
    Login {
        id: u64,
        protocol: u32,
        user: String,
        usersig: UserSig,
        platform: Platform,
        /// A stable id of this device (an installation), chosen by the client: 1 to
        /// [`MAX_DEVICE_ID_BYTES`](crate::limits::MAX_DEVICE_ID_BYTES) bytes of visible text.
        #[serde(deserialize_with = "device_id")]
        device: String,
        /// A transient session (a one-shot tool beside the user's devices): it takes no slot of the
        /// multi-device policy, kicks no one and is not kicked by another login, and leaves the user's
        /// online status alone. Older clients omit it (`false`: a device).
        #[serde(default, skip_serializing_if = "is_false")]
        transient: bool,
        /// With `transient`: receive the user's pushes (`entry`, `relation`) as a device does. A transient
        /// session without it gets only answers (and a kick by the admin); a device always gets pushes.
        #[serde(default, skip_serializing_if = "is_false")]
        live: bool,
    },
    /// Pull the user's sync log after `after`.
    Sync {
        id: u64,
        after: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Send a message to `to`.
    Send {
        id: u64,
        to: String,
        /// `MsgSeq`; the server picks one when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u32>,
        /// `MsgRandom`; with `seq` and the content it identifies retries of one message.
        random: u32,
        body: Vec<MsgElem>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        cloud_custom_data: String,
        /// Deliver only to live connections; store nothing.
        #[serde(default, skip_serializing_if = "is_false")]
        online_only: bool,
        /// Tencent's `OfflinePushInfo`, kept for offline push.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        push: Option<Value>,
        /// Ask the recipient for a message-level read receipt (`read_receipt`).
        #[serde(default, skip_serializing_if = "is_false")]
        need_read_receipt: bool,
    },
    /// Recall (take back) a message the user sent `peer`, within the recall window.
    Recall { id: u64, peer: String, msg_key: String },
    /// Edit a message the user sent `peer`: whichever of `body` (text and custom elements only) and
    /// `cloud_custom_data` is given replaces the message's. `version`: the version the user saw (an edit
    /// since is a conflict, 20028); without it the latest is edited. Answered with `modified`.
    Modify {
        id: u64,
        peer: String,
        msg_key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Vec<MsgElem>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cloud_custom_data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
    },
    /// Delete messages of the conversation with `peer` from the user's side (the peer keeps them); at most
    /// [`MAX_DELETE_PER_REQUEST`]. Answered with `deleted`.
    Delete { id: u64, peer: String, msg_keys: Vec<String> },
    /// Clear the user's history of the conversation with `peer` (the peer keeps it); the conversation stays.
    ClearHistory { id: u64, peer: String },
    /// Set the user's do-not-disturb window over all conversations (Tencent's `setAllReceiveMessageOpt`):
    /// while it is on, nothing is pushed to the user's phones. `receive_opt` 0 turns it off; 1 or 2 (do not
    /// receive, receive without notification) turn it on. The window starts every day at `start_of_day`
    /// (seconds after midnight UTC) or once at `start_time` (unix seconds), and lasts `duration` seconds
    /// (0: always). Answered with `ok`.
    SetDnd {
        id: u64,
        receive_opt: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_of_day: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_time: Option<i64>,
        #[serde(default)]
        duration: u32,
    },
    /// The user's do-not-disturb window; answered with `dnd`.
    GetDnd { id: u64 },
    /// Tell `peer`'s live devices that the user is typing to it (`typing: false`: stopped). Never stored;
    /// at most one `typing: true` per peer per second is passed on. Answered with `ok`.
    Typing {
        id: u64,
        peer: String,
        #[serde(default = "yes")]
        typing: bool,
    },
    /// Change the user's settings of the conversation with `peer`: what is given changes, the rest stays.
    /// Every device of the user gets a `settings` entry. Answered with `ok`.
    SetConversation {
        id: u64,
        peer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pinned: Option<bool>,
        /// Mark bits to set, then to clear (Tencent's: 1 star, 2 unread, 4 fold, 8 hide; bits 32–63 the app's).
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        set_marks: u64,
        #[serde(default, skip_serializing_if = "is_zero_u64")]
        clear_marks: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom_data: Option<String>,
        /// `""` removes the draft.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        draft: Option<String>,
        /// 0 receive, 1 do not receive, 2 receive without notification.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receive_opt: Option<u8>,
    },
    /// Delete the conversation with `peer` from the user's list and, with `clear_history`, its history.
    DeleteConversation {
        id: u64,
        peer: String,
        #[serde(default, skip_serializing_if = "is_false")]
        clear_history: bool,
    },
    /// Acknowledge messages `peer` sent with `need_read_receipt`: read receipts (unread counts stay).
    ReadReceipt { id: u64, peer: String, msg_keys: Vec<String> },
    /// The messages of the conversation with `peer` named by `msg_keys`, as history shows them (with
    /// their read and receipt state).
    Find { id: u64, peer: String, msg_keys: Vec<String> },
    /// Search the user's own history, newest first (answered with `search_result`): messages whose text
    /// holds every keyword, of the conversation with `peer` (else of all), sent by `from`, with an element
    /// of one of `types`, dated within [`since`, `until`]; at least one of these is given. `cursor`: the
    /// previous page's, to go on.
    Search {
        id: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keywords: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Tencent's `MsgType` names ([`SEARCH_TYPES`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        types: Vec<String>,
        /// Unix seconds, inclusive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<i64>,
        /// 1 to [`MAX_SEARCH_PAGE`] (default [`DEFAULT_SEARCH_PAGE`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// A page of the conversation with `peer`, newest first, older than `before` (a `MsgKey`).
    History {
        id: u64,
        peer: String,
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<String>,
    },
    /// The user's recent contacts, latest first.
    Conversations { id: u64 },
    /// Everything received from `peer` up to `time` (default: now; a time within
    /// `[0, 2^53 − 1]`, and one ahead of the server's clock reads as now) is read.
    MarkRead {
        id: u64,
        peer: String,
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "read_time")]
        time: Option<i64>,
    },
    /// Heartbeat.
    Ping { id: u64 },
    /// Log out: the server answers `ok` and closes the connection.
    Logout { id: u64 },
    /// Ask `to` to be friends (answered with `friend_add_result`). `single`: add `to` to this user's list
    /// only (`Add_Type_Single`); by default both lists.
    FriendAdd {
        id: u64,
        to: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        wording: String,
        /// `AddSource_Type_...`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        source: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        remark: String,
        #[serde(default, skip_serializing_if = "is_false")]
        single: bool,
    },
    /// Remove `peer` from the friend list (and, unless `single`, this user from `peer`'s). Answered `ok`.
    FriendDelete {
        id: u64,
        peer: String,
        #[serde(default, skip_serializing_if = "is_false")]
        single: bool,
    },
    /// Accept `peer`'s pending request: this user joins `peer`'s list and, unless `single`, `peer` joins
    /// this user's. Answered `ok`.
    FriendAccept {
        id: u64,
        peer: String,
        #[serde(default, skip_serializing_if = "is_false")]
        single: bool,
    },
    /// Decline `peer`'s pending request. Answered `ok`.
    FriendDecline { id: u64, peer: String },
    /// The friend list (answered with `friend_list`).
    FriendList { id: u64 },
    /// The pending requests received and sent (answered with `friend_requests`).
    FriendRequests { id: u64 },
    /// Add `peer` to the blacklist (removing any friendship and request between the two). Answered `ok`.
    BlackAdd { id: u64, peer: String },
    /// Remove `peer` from the blacklist. Answered `ok`.
    BlackDelete { id: u64, peer: String },
    /// The blacklist (answered with `black_list`).
    BlackList { id: u64 },
    /// Register this device for offline push (Tencent's `setOfflinePushConfig`), replacing what it
    /// registered before. Answered `ok`; an unknown provider, one the server has not configured, or a
    /// token, app id or language out of bounds ([`limits::check_push_registration`]) gets
    /// [`code::INVALID_PARAMS`].
    PushRegister {
        id: u64,
        /// `apns`, `fcm`, `huawei`, `honor`, `xiaomi`, `oppo`, `vivo`, `meizu` or `webhook`.
        provider: String,
        /// The token the maker's push service gave the app (at most
        /// [`MAX_PUSH_TOKEN_BYTES`](crate::limits::MAX_PUSH_TOKEN_BYTES)).
        token: String,
        /// The app's id at the provider, where one app has several (Tencent's business id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app_id: Option<String>,
        /// The language of the notifications' default texts (`en`, `zh`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lang: Option<String>,
    },
    /// End this device's push registration (Tencent's `setOfflinePushConfig` with an empty config).
    /// Answered `ok`.
    PushUnregister { id: u64 },
    /// The app went to the background (Tencent's `doBackground`): messages reach this device as pushes
    /// as well as over the connection. `unread` is the app's badge count. Answered `ok`.
    Background {
        id: u64,
        #[serde(default)]
        unread: u64,
    },
    /// The app is back in the foreground (`doForeground`): no more pushes while connected. Answered `ok`.
    Foreground { id: u64 },
}

impl ClientFrame {
    /// Reads a frame from the text of a WebSocket message, as the server does with every one; when it
    /// cannot, says why, with the frame's `id` (0 when it has none) so that the request fails fast.
    pub fn parse(text: &str) -> Result<ClientFrame, (u64, String)> {
        serde_json::from_str::<ClientFrame>(text).map_err(|e| {
            #[derive(Deserialize)]
            struct IdOnly {
                id: Option<u64>,
            }
            let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|f| f.id).unwrap_or(0);
            (id, format!("not a valid frame: {e}"))
        })
    }
}

/// What a `search` asks for, as the server checks it.
#[derive(Debug, Clone, Copy)]
pub struct SearchFilters<'a> {
    pub keywords: &'a [String],
    pub peer: Option<&'a str>,
    pub from: Option<&'a str>,
    pub types: &'a [String],
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: Option<u32>,
}

impl SearchFilters<'_> {
    /// Checks a `search` (every door's one check): at least one filter; at most [`MAX_SEARCH_KEYWORDS`]
    /// keywords, each with a letter or digit and at most [`MAX_SEARCH_KEYWORD_BYTES`]; types of
    /// [`SEARCH_TYPES`]; times within [`limits::check_time`], `since` not after `until`; a limit of 1 to
    /// [`MAX_SEARCH_PAGE`]. The page size, or why not.
    pub fn check(&self) -> Result<u32, String> {
        let filtered = !self.keywords.is_empty()
            || self.peer.is_some()
            || self.from.is_some()
            || !self.types.is_empty()
            || self.since.is_some()
            || self.until.is_some();
        if !filtered {
            return Err("give keywords, or a peer, a sender, types or a time range".into());
        }
        if self.keywords.len() > MAX_SEARCH_KEYWORDS {
            return Err(format!("at most {MAX_SEARCH_KEYWORDS} keywords"));
        }
        for k in self.keywords {
            if k.len() > MAX_SEARCH_KEYWORD_BYTES {
                return Err(format!("a keyword is at most {MAX_SEARCH_KEYWORD_BYTES} bytes"));
            }
            if !k.chars().any(char::is_alphanumeric) {
                return Err(format!("the keyword {k:?} has no letter or digit"));
            }
        }
        if let Some(t) = self.types.iter().find(|t| !SEARCH_TYPES.contains(&t.as_str())) {
            return Err(format!("{t:?} is not a MsgType"));
        }
        let since = self.since.map(limits::check_time).transpose()?;
        let until = self.until.map(limits::check_time).transpose()?;
        if let (Some(since), Some(until)) = (since, until)
            && since > until
        {
            return Err(format!("since ({since}) is after until ({until})"));
        }
        match self.limit {
            None => Ok(DEFAULT_SEARCH_PAGE),
            Some(n @ 1..=MAX_SEARCH_PAGE) => Ok(n),
            Some(n) => Err(format!("limit must be 1 to {MAX_SEARCH_PAGE}, not {n}")),
        }
    }
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn yes() -> bool {
    true
}

/// A user's settings of one of its conversations, shared by its devices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSettings {
    /// Pinned: listed first (the latest pinned first).
    #[serde(default, skip_serializing_if = "is_false")]
    pub pinned: bool,
    /// Marks (1 star, 2 unread, 4 fold, 8 hide; bits 32–63 the app's own).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub marks: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub custom_data: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub draft: String,
    /// When the draft was saved (unix seconds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub draft_time: i64,
    /// 0 receive, 1 do not receive, 2 receive without notification.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub receive_opt: u8,
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A login's `device`, refused unless [`limits::check_device_id`] accepts it.
fn device_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let device = String::deserialize(d)?;
    limits::check_device_id(&device).map_err(serde::de::Error::custom)?;
    Ok(device)
}

/// `mark_read`'s `time`, refused unless [`limits::check_time`] accepts it.
fn read_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<i64>::deserialize(d)?.map(|t| limits::check_time(t).map_err(serde::de::Error::custom)).transpose()
}

/// A frame from server to client.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A request failed. `id` is 0 for a frame that could not be read at all.
    Error {
        id: u64,
        code: u32,
        info: String,
    },
    LoggedIn {
        id: u64,
        user: String,
        /// Server time, unix milliseconds.
        server_time: i64,
        /// The last sequence number of the user's sync log.
        latest: u64,
    },
    Synced {
        id: u64,
        entries: Vec<Entry>,
        latest: u64,
        /// More entries follow `entries`' last; pull again.
        more: bool,
    },
    Sent {
        id: u64,
        msg_key: String,
        /// `MsgSeq`.
        seq: u32,
        random: u32,
        /// Unix seconds.
        time: i64,
        /// Position in the conversation (0 for online-only messages).
        conv_seq: u64,
        /// Position of the sender's copy in the sender's sync log (0 when not logged).
        log_seq: u64,
    },
    History {
        id: u64,
        /// Newest first.
        messages: Vec<Message>,
        /// No older messages exist (within the retention).
        complete: bool,
        /// The conversation's highest `conv_seq` when the page was read: every message numbered up to it
        /// that belongs in the page is in it (0 when the conversation has none).
        #[serde(default)]
        conv_seq: u64,
    },
    Conversations {
        id: u64,
        items: Vec<Conversation>,
    },
    /// The answer to `read_receipt`: the keys that now carry a receipt (sent now or before).
    Receipts {
        id: u64,
        acknowledged: Vec<String>,
    },
    /// The answer to `search`: newest first; `cursor` continues the search (absent: nothing more).
    SearchResult {
        id: u64,
        messages: Vec<Message>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// The answer to `find`: one item per key asked, `null` where no message of the user's view has it.
    Found {
        id: u64,
        messages: Vec<Option<Message>>,
    },
    /// The answer to `get_dnd`: `receive_opt` 0 when there is no window.
    Dnd {
        id: u64,
        receive_opt: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_of_day: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_time: Option<i64>,
        #[serde(default)]
        duration: u32,
    },
    /// The answer to `modify`: the message as it is now.
    Modified {
        id: u64,
        msg: Message,
    },
    /// The answer to `delete`: the keys deleted now (a key of a message the user no longer had is left out).
    Deleted {
        id: u64,
        deleted: Vec<String>,
    },
    Ok {
        id: u64,
    },
    Pong {
        id: u64,
        server_time: i64,
        /// The last sequence number of the user's sync log: a client behind it lost a push and pulls.
        #[serde(default)]
        latest: u64,
    },
    /// A new entry of the user's sync log (or, with `seq` 0, an online-only message).
    Entry {
        entry: Entry,
    },
    /// `from` is typing to the user (`typing: false`: stopped). Live only, never in the sync log.
    Typing {
        from: String,
        typing: bool,
    },
    /// This connection was logged out by a login elsewhere or by the admin; the server closes it.
    Kicked {
        code: u32,
        info: String,
    },
    /// The UserSig expired while online; log in again with a new one.
    SigExpired {
        code: u32,
        info: String,
    },
    /// The answer to `friend_add`: the friendship exists, or (`pending`) the peer must accept first.
    FriendAddResult {
        id: u64,
        pending: bool,
    },
    FriendList {
        id: u64,
        /// Oldest first.
        friends: Vec<Friend>,
    },
    FriendRequests {
        id: u64,
        /// Requests others sent this user, oldest first.
        incoming: Vec<FriendRequest>,
        /// Requests this user sent, oldest first.
        outgoing: Vec<FriendRequest>,
    },
    BlackList {
        id: u64,
        /// Oldest first.
        items: Vec<Blocked>,
    },
    /// The user's friends, friend requests or blacklist changed (on any device, or by the other side).
    Relation {
        event: RelationEvent,
    },
}

/// One entry of a friend list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Friend {
    pub peer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remark: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `AddSource_Type_...`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wording: String,
    /// When the friend was added, unix seconds.
    pub add_time: i64,
}

/// A pending friend request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequest {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wording: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Unix seconds.
    pub time: i64,
}

/// One blacklist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub peer: String,
    /// When it was added, unix seconds.
    pub time: i64,
}

/// Why a pending request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestEnd {
    Accepted,
    Declined,
    /// By a blacklist, an account deletion or a request the other way.
    Cancelled,
}

/// A change of the user's relations, pushed to every device of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RelationEvent {
    /// `friend.peer` joined the user's friend list.
    FriendAdded { friend: Friend },
    /// `peer` left the user's friend list.
    FriendRemoved { peer: String },
    /// Someone asks the user to be friends.
    RequestReceived { request: FriendRequest },
    /// The user (on some device) asked someone to be friends.
    RequestSent { request: FriendRequest },
    /// A pending request between the user and someone is gone.
    RequestDeleted { from: String, to: String, reason: RequestEnd },
    /// `entry.peer` joined the user's blacklist.
    BlackAdded { entry: Blocked },
    /// `peer` left the user's blacklist.
    BlackRemoved { peer: String },
    /// Many of the user's relations changed at once (a bulk operation such as `friend_delete_all`), told in
    /// this one event rather than one per change: re-list with `friend_list`, `friend_requests` and
    /// `black_list`.
    RelationsChanged,
}

/// One entry of a user's sync log. `seq` numbers the user's log from 1, without gaps.
///
/// New kinds may be added within protocol version 1: one this crate does not know reads as
/// [`Entry::Unknown`], which a client skips (counting its `seq`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", remote = "Self")]
pub enum Entry {
    /// A message the user received or sent.
    Msg { seq: u64, msg: Message },
    /// The user read what `peer` sent up to `time` (on some device).
    Read { seq: u64, peer: String, time: i64 },
    /// A message of the conversation with `peer` was recalled, by `by` (its sender, or an app admin).
    Recall {
        seq: u64,
        peer: String,
        msg_key: String,
        #[serde(default)]
        by: String,
    },
    /// `peer` read what the user sent up to `time` (the conversation's read receipt).
    PeerRead { seq: u64, peer: String, time: i64 },
    /// `peer` acknowledged the user's message `msg_key` with a read receipt at `time`.
    Receipt { seq: u64, peer: String, msg_key: String, time: i64 },
    /// A message of a conversation of the user's was edited: the message as it is now.
    Modified { seq: u64, msg: Message },
    /// The user deleted the message `msg_key` of the conversation with `peer` from its side (on some device).
    Deleted { seq: u64, peer: String, msg_key: String },
    /// The user cleared its history with `peer` up to position `upto` (its messages with `conv_seq` up to
    /// it are gone from the user's side; 0: none); with `conversation`, the conversation was deleted too.
    Cleared {
        seq: u64,
        peer: String,
        upto: u64,
        #[serde(default)]
        conversation: bool,
    },
    /// The user changed its settings of the conversation with `peer` (on some device): as they are now.
    Settings { seq: u64, peer: String, settings: ConversationSettings },
    /// An entry of a kind this crate does not know (a newer server's): skipped, its `seq` counted.
    #[serde(skip)]
    Unknown { seq: u64 },
}

impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // A server never writes one; a client that relays what it read writes it as read.
            Entry::Unknown { seq } => {
                use serde::ser::SerializeStruct;
                let mut entry = s.serialize_struct("Entry", 2)?;
                entry.serialize_field("kind", "unknown")?;
                entry.serialize_field("seq", seq)?;
                entry.end()
            }
            _ => Entry::serialize(self, s),
        }
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        const KNOWN: &[&str] =
            &["msg", "read", "recall", "peer_read", "receipt", "modified", "deleted", "cleared", "settings"];
        let v = Value::deserialize(d)?;
        match v.get("kind").and_then(Value::as_str) {
            None => Err(serde::de::Error::custom("an entry without a kind")),
            Some(kind) if KNOWN.contains(&kind) => Entry::deserialize(v).map_err(serde::de::Error::custom),
            Some(_) => match v.get("seq").and_then(Value::as_u64) {
                Some(seq) => Ok(Entry::Unknown { seq }),
                None => Err(serde::de::Error::custom("an entry without a seq")),
            },
        }
    }
}

/// Text a JSON string of `s` takes at most (every character escaped as `\u00XX`).
fn escaped_bound(s: &str) -> usize {
    6 * s.len() + 2
}

impl Entry {
    /// An upper bound of the entry's encoded size, computed without encoding it.
    pub fn size_bound(&self) -> usize {
        match self {
            Entry::Msg { msg, .. } => msg.size_bound() + 64,
            Entry::Read { peer, .. } | Entry::PeerRead { peer, .. } => escaped_bound(peer) + 96,
            Entry::Recall { peer, msg_key, by, .. } => {
                escaped_bound(peer) + escaped_bound(msg_key) + escaped_bound(by) + 96
            }
            Entry::Receipt { peer, msg_key, .. } | Entry::Deleted { peer, msg_key, .. } => {
                escaped_bound(peer) + escaped_bound(msg_key) + 96
            }
            Entry::Modified { msg, .. } => msg.size_bound() + 64,
            Entry::Cleared { peer, .. } => escaped_bound(peer) + 128,
            Entry::Settings { peer, settings, .. } => {
                escaped_bound(peer) + escaped_bound(&settings.custom_data) + escaped_bound(&settings.draft) + 192
            }
            Entry::Unknown { .. } => 64,
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            Entry::Msg { seq, .. }
            | Entry::Read { seq, .. }
            | Entry::Recall { seq, .. }
            | Entry::PeerRead { seq, .. }
            | Entry::Receipt { seq, .. }
            | Entry::Modified { seq, .. }
            | Entry::Deleted { seq, .. }
            | Entry::Cleared { seq, .. }
            | Entry::Settings { seq, .. }
            | Entry::Unknown { seq } => *seq,
        }
    }
}

/// A message as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub from: String,
    pub to: String,
    pub msg_key: String,
    /// `MsgSeq`.
    pub seq: u32,
    pub random: u32,
    /// Unix seconds.
    pub time: i64,
    /// Position in the conversation, from 1 without gaps (0: online-only, not stored).
    pub conv_seq: u64,
    /// `MsgBody`: an array of elements, as [`MsgElem`] reads them. The server writes the stored text as is.
    #[serde(deserialize_with = "raw_via_value")]
    pub body: Box<RawValue>,
    #[serde(default)]
    pub cloud_custom_data: String,
    /// Recalled: `body` is empty and `cloud_custom_data` too; `revoker` says who recalled it.
    #[serde(default)]
    pub recalled: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revoker: String,
    /// The recipient has read it (its read time is at or after the message's); in `history` and `find`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub peer_read: bool,
    /// The sender asked for a read receipt.
    #[serde(default, skip_serializing_if = "is_false")]
    pub need_read_receipt: bool,
    /// When the recipient acknowledged it with a read receipt (unix seconds; 0: not yet).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub receipt_time: i64,
    /// How many times the message was edited (0: as sent); a `modify` names the version it saw.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub version: u32,
    /// The sender's nickname (`Tag_Profile_IM_Nick`) when the message was sent; empty if none was set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nick: String,
    /// The sender's avatar URL (`Tag_Profile_IM_Image`) when the message was sent; empty if none was set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub face_url: String,
    /// Sent by an app admin: a system notification (Tencent's "simulated system message").
    #[serde(default, skip_serializing_if = "is_false")]
    pub system: bool,
}

/// Reads a raw JSON value where serde buffers content first (inside the internally tagged frame enums,
/// where `RawValue` itself cannot be read): through a `Value`, written back as text.
fn raw_via_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Box<RawValue>, D::Error> {
    let v = Value::deserialize(d)?;
    serde_json::value::to_raw_value(&v).map_err(serde::de::Error::custom)
}

impl Message {
    /// An upper bound of the message's encoded size, computed without encoding it (the body is JSON text
    /// already, written as is).
    pub fn size_bound(&self) -> usize {
        let texts =
            [&self.from, &self.to, &self.msg_key, &self.cloud_custom_data, &self.nick, &self.face_url, &self.revoker];
        self.body.get().len() + texts.iter().map(|t| escaped_bound(t)).sum::<usize>() + 320
    }

    /// The body's elements.
    pub fn elems(&self) -> serde_json::Result<Vec<MsgElem>> {
        serde_json::from_str(self.body.get())
    }
}

/// One recent contact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub peer: String,
    /// The last message, if it is still kept.
    pub last: Option<Message>,
    pub unread: u64,
    /// Time of the last message, unix seconds.
    pub time: i64,
    /// The conversation's highest `conv_seq`. Above the last message's when messages were imported into
    /// its past: a client holding fewer has not seen them all.
    #[serde(default)]
    pub conv_seq: u64,
    /// Up to when the peer has read what the user sent (unix seconds; 0: nothing yet): the user's
    /// messages dated at or before it show as read.
    #[serde(default)]
    pub peer_read_time: i64,
    /// The user's settings of the conversation (pin, marks, custom data, draft, receive option).
    #[serde(default)]
    pub settings: ConversationSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_of_a_kind_this_version_does_not_know_is_skipped_with_its_seq() {
        let synced = r#"{"op":"synced","id":2,"entries":[
            {"kind":"read","seq":1,"peer":"bob","time":5},
            {"kind":"reaction","seq":2,"peer":"bob","msg_key":"1_2_3","emoji":"+1"},
            {"kind":"deleted","seq":3,"peer":"bob","msg_key":"1_2_3"}],"latest":3,"more":false}"#;
        let ServerFrame::Synced { entries, .. } = serde_json::from_str(synced).unwrap() else {
            panic!("a synced frame");
        };
        assert!(matches!(entries[0], Entry::Read { seq: 1, .. }));
        assert!(matches!(entries[1], Entry::Unknown { seq: 2 }), "{:?}", entries[1]);
        assert!(matches!(entries[2], Entry::Deleted { seq: 3, .. }));
        assert_eq!(entries.iter().map(Entry::seq).collect::<Vec<_>>(), [1, 2, 3]);
        // A known kind that is malformed is still an error, and so is an entry without a seq or a kind
        // (found by fuzzing: such an entry read as unknown and then did not encode).
        assert!(serde_json::from_str::<Entry>(r#"{"kind":"read","seq":1}"#).is_err());
        assert!(serde_json::from_str::<Entry>(r#"{"kind":"reaction"}"#).is_err());
        assert!(serde_json::from_str::<Entry>(r#"{"khistorOind":"msg","seq":9}"#).is_err());
        // An unknown entry encodes (a client may relay what it read), and reads back as unknown.
        let frame = ServerFrame::Entry { entry: entries[1].clone() };
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(text, r#"{"op":"entry","entry":{"kind":"unknown","seq":2}}"#);
        assert!(text.len() <= entries[1].size_bound() + 32);
        assert!(matches!(
            serde_json::from_str(&text).unwrap(),
            ServerFrame::Entry { entry: Entry::Unknown { seq: 2 } }
        ));
        // What the server writes reads back as itself.
        let cleared = Entry::Cleared { seq: 4, peer: "bob".into(), upto: 9, conversation: true };
        let text = serde_json::to_string(&cleared).unwrap();
        assert_eq!(text, r#"{"kind":"cleared","seq":4,"peer":"bob","upto":9,"conversation":true}"#);
        assert!(matches!(serde_json::from_str(&text).unwrap(), Entry::Cleared { upto: 9, conversation: true, .. }));
    }

    #[test]
    fn a_login_frame_printed_shows_no_usable_usersig() {
        let sig = "eJwtzEELgjAYxvHvspMGvHu3d2p5k4LqYGAQRWc3p0xtmlqKCf73tA7P5f";
        let login = ClientFrame::Login {
            id: 1,
            protocol: PROTOCOL_VERSION,
            user: "bob".into(),
            usersig: sig.into(),
            platform: Platform::Web,
            device: "d1".into(),
            transient: false,
            live: false,
        };
        let printed = format!("{login:?}");
        assert!(printed.contains("usersig: eJwt…(58)"), "{printed}");
        assert!(!printed.contains(&sig[..8]), "{printed}");
        assert_eq!(format!("{:?}", UserSig::from("short")), "…(5)");
        // On the wire it is the string itself, both ways.
        let text = serde_json::to_string(&login).unwrap();
        assert!(text.contains(&format!(r#""usersig":"{sig}""#)), "{text}");
        assert_eq!(serde_json::from_str::<ClientFrame>(&text).unwrap(), login);
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let login = ClientFrame::Login {
            id: 1,
            protocol: PROTOCOL_VERSION,
            user: "bob".into(),
            usersig: "sig".into(),
            platform: Platform::IPhone,
            device: "d1".into(),
            transient: false,
            live: false,
        };
        assert_eq!(
            serde_json::to_string(&login).unwrap(),
            r#"{"op":"login","id":1,"protocol":1,"user":"bob","usersig":"sig","platform":"iPhone","device":"d1"}"#
        );
        let transient: ClientFrame = serde_json::from_str(
            r#"{"op":"login","id":1,"protocol":1,"user":"bob","usersig":"sig","platform":"Linux","device":"d","transient":true}"#,
        )
        .unwrap();
        assert!(matches!(transient, ClientFrame::Login { transient: true, live: false, .. }), "{transient:?}");
        let entry: ServerFrame =
            serde_json::from_str(r#"{"op":"entry","entry":{"kind":"read","seq":7,"peer":"alice","time":1700000000}}"#)
                .unwrap();
        assert!(matches!(entry, ServerFrame::Entry { entry: Entry::Read { seq: 7, .. } }));
        assert_eq!(Platform::from_name("windows"), Some(Platform::Pc));

        // A message inside a tagged frame reads back, body included.
        let text = r#"{"op":"entry","entry":{"kind":"msg","seq":3,"msg":{"from":"a","to":"b","msg_key":"1_2_3","seq":1,
            "random":2,"time":3,"conv_seq":1,"body":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}]}}}"#;
        let ServerFrame::Entry { entry: Entry::Msg { msg, .. } } = serde_json::from_str(text).unwrap() else {
            panic!("not a message entry")
        };
        assert_eq!(msg.elems().unwrap(), vec![MsgElem::Text(crate::elem::TextElem { text: "hi".into() })]);
        let page = r#"{"op":"history","id":1,"complete":true,"messages":[{"from":"a","to":"b","msg_key":"1_2_3",
            "seq":1,"random":2,"time":3,"conv_seq":1,"body":[]}]}"#;
        assert!(matches!(serde_json::from_str(page).unwrap(), ServerFrame::History { .. }));
        assert_eq!(Platform::from_name("iphone"), Some(Platform::IPhone));
    }

    #[test]
    fn relationship_frames_have_the_documented_shape() {
        let add = ClientFrame::FriendAdd {
            id: 9,
            to: "alice".into(),
            wording: "hi".into(),
            source: String::new(),
            remark: String::new(),
            single: false,
        };
        assert_eq!(serde_json::to_string(&add).unwrap(), r#"{"op":"friend_add","id":9,"to":"alice","wording":"hi"}"#);
        let parsed: ClientFrame = serde_json::from_str(r#"{"op":"black_add","id":3,"peer":"mallory"}"#).unwrap();
        assert_eq!(parsed, ClientFrame::BlackAdd { id: 3, peer: "mallory".into() });
        let event = ServerFrame::Relation {
            event: RelationEvent::RequestDeleted {
                from: "alice".into(),
                to: "bob".into(),
                reason: RequestEnd::Accepted,
            },
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"op":"relation","event":{"kind":"request_deleted","from":"alice","to":"bob","reason":"accepted"}}"#
        );
        let added: ServerFrame = serde_json::from_str(
            r#"{"op":"relation","event":{"kind":"friend_added","friend":{"peer":"bob","add_time":5}}}"#,
        )
        .unwrap();
        assert!(
            matches!(added, ServerFrame::Relation { event: RelationEvent::FriendAdded { friend } } if friend.peer == "bob")
        );
    }
}

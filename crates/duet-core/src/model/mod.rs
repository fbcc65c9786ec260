//! The domain's data: accounts, profile values, messages as sent and as stored, history queries.
//!
//! `event` holds the after-event callbacks' events, as the outbox keeps them; `search` the search of a
//! user's own history (its query, and the text of a message that a search matches).
//!
//! These are plain Rust types. Message bodies travel as the compact JSON text the wire layer validated,
//! so they are serialized once, at send time, and stored and served without being parsed again.

pub mod event;
pub mod search;

pub use search::{SearchCursor, SearchHit, SearchPage, SearchQuery, Searchable};

/// The profile tag that holds a user's nickname.
pub const TAG_NICK: &str = "Tag_Profile_IM_Nick";
/// The profile tag that holds a user's avatar URL.
pub const TAG_IMAGE: &str = "Tag_Profile_IM_Image";

/// An account to create (importing an existing one updates what is given and changes nothing else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub id: String,
    pub nick: Option<String>,
    pub face_url: Option<String>,
}

/// A profile value: Tencent's tags hold either text or an unsigned integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileValue {
    Text(String),
    Number(u64),
}

/// A user's global mute (`openconfigsvr/setnospeaking`), as stored: until when (unix seconds, the second
/// itself not included) its one-to-one and its group sends are refused. `0`, or any time past: not muted;
/// [`Mute::FOREVER`]: muted for good. The default is no mute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mute {
    pub c2c_until: i64,
    pub group_until: i64,
}

impl Mute {
    /// The until-time of a mute that never ends.
    pub const FOREVER: i64 = i64::MAX;
}

/// What the sender's side keeps of a message it sends (Tencent's `SyncOtherMachine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderCopy {
    /// Not given: the message is in the sender's history, and not pushed to the sender's devices.
    History,
    /// `1`: in the sender's history and in the sender's sync log, so every device of the sender sees it.
    Sync,
    /// `2`: nothing on the sender's side.
    Nothing,
}

/// A message as a sender hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub from: String,
    /// One recipient, or several for a batch send (all share one `MsgKey`).
    pub to: Vec<String>,
    /// The sender's `MsgSeq`, which orders messages within the same second. When absent the store picks
    /// the next of the conversation's own sequence, so that same-second messages keep their arrival order.
    pub seq: Option<u32>,
    pub random: u32,
    /// `MsgBody` as compact JSON.
    pub body: String,
    pub cloud_custom_data: String,
    /// `OfflinePushInfo` as JSON, kept for offline push.
    pub push_info: Option<String>,
    /// Seconds the message waits for an offline recipient; `0` = online only, never stored.
    pub lifetime_secs: u32,
    pub sender_copy: SenderCopy,
    /// `SendMsgControl: NoUnread`.
    pub no_unread: bool,
    /// `SendMsgControl: NoLastMsg`.
    pub no_last_msg: bool,
    pub need_read_receipt: bool,
}

/// The identity of a message within its conversation: Tencent's `MsgKey`, `<seq>_<random>_<time>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgKey {
    pub seq: u32,
    pub random: u32,
    /// Unix seconds.
    pub time: i64,
}

impl std::fmt::Display for MsgKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}_{}", self.seq, self.random, self.time)
    }
}

/// The result of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub key: MsgKey,
    /// Recipients that do not exist; nothing was stored for them.
    pub failed: Vec<String>,
    /// Whether this was a retry of an earlier send, answered with that send's result.
    pub duplicate: bool,
    /// Position of the (first recipient's) message in its conversation; 0 if not stored.
    pub conv_seq: u64,
    /// Position of the sender's copy in the sender's sync log; 0 if none.
    pub sender_log_seq: u64,
}

/// A sync-log entry for a user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub user: String,
    pub entry: LogEntry,
}

/// One entry of a user's sync log. `seq` numbers the log from 1 without gaps; 0 marks an online-only
/// message that is pushed but never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    pub event: LogEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// A message the user received or sent.
    Message(std::sync::Arc<StoredMessage>),
    /// The user read what `peer` sent up to `time`.
    Read { peer: String, time: i64 },
    /// The message `key` of the conversation with `peer` was recalled, by `by` (its sender or an admin).
    Recall { peer: String, key: MsgKey, by: String },
    /// `peer` read what the user sent up to `time` (the conversation-level read receipt).
    PeerRead { peer: String, time: i64 },
    /// `peer` acknowledged the user's message `key` with a read receipt at `time`.
    Receipt { peer: String, key: MsgKey, time: i64 },
    /// A message of the conversation was edited: the message as it is now (both sides get it).
    Modified(std::sync::Arc<StoredMessage>),
    /// The user deleted the message `key` of the conversation with `peer` from its own history.
    Deleted { peer: String, key: MsgKey },
    /// The user cleared its history of the conversation with `peer`: its messages up to position `upto`
    /// (`conv_seq`) are gone from the user's side; with `conversation`, the conversation itself too.
    Cleared { peer: String, upto: u64, conversation: bool },
    /// The user changed its settings of the conversation with `peer`: as they are now.
    Settings { peer: String, settings: ConversationSettings },
}

/// A page of a user's sync log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    /// The log's last sequence number.
    pub latest: u64,
    /// Entries after the page's last remain.
    pub more: bool,
}

/// One recent contact: the owner's side of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationView {
    pub peer: String,
    pub last: Option<StoredMessage>,
    pub unread: u64,
    /// Time of the last message, unix seconds.
    pub time: i64,
    /// The conversation's highest `conv_seq`: its messages are numbered from 1 to this in the order they
    /// were stored. It exceeds the last message's when a message was imported into the past.
    pub conv_seq: u64,
    /// Up to when the peer has read what the owner sent (unix seconds; 0: nothing yet).
    pub peer_read_time: i64,
    /// The owner's settings of the conversation.
    pub settings: ConversationSettings,
}

/// What a user set of one of its conversations: shared by the user's devices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationSettings {
    /// When it was pinned (unix seconds; 0: not pinned). Pinned conversations list first, the latest
    /// pinned first.
    pub pinned_at: i64,
    /// Marks, as Tencent numbers them: bit 0 star, 1 unread, 2 fold, 3 hide; bits 32–63 the app's own.
    pub marks: u64,
    /// The app's data about the conversation (Tencent's conversation custom data / `CustomMark`).
    pub custom_data: String,
    /// The text the user was writing, and when it was saved (unix seconds; 0: none).
    pub draft: String,
    pub draft_time: i64,
    pub receive: ReceiveOpt,
}

/// How the user takes messages from the conversation's peer (Tencent's `V2TIMReceiveMessageOpt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReceiveOpt {
    /// Delivered, pushed when offline, counted in the unread total.
    #[default]
    Receive,
    /// Not pushed and not counted in the unread total; devices still get the messages (and history keeps
    /// them), for the app to keep quiet.
    NotReceive,
    /// Delivered, but not pushed, and not counted in the unread total ("do not disturb").
    NotNotify,
}

impl ReceiveOpt {
    /// Tencent's number: 0 receive, 1 do not receive, 2 receive without notification.
    pub fn number(self) -> u8 {
        match self {
            ReceiveOpt::Receive => 0,
            ReceiveOpt::NotReceive => 1,
            ReceiveOpt::NotNotify => 2,
        }
    }

    pub fn from_number(n: u64) -> Option<ReceiveOpt> {
        Some(match n {
            0 => ReceiveOpt::Receive,
            1 => ReceiveOpt::NotReceive,
            2 => ReceiveOpt::NotNotify,
            _ => return None,
        })
    }
}

/// A user's do-not-disturb window over all conversations (Tencent's `setAllReceiveMessageOpt`): while it
/// is on, nothing sent to the user is pushed to its phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dnd {
    /// What the window means (not [`ReceiveOpt::Receive`]: a window that does something).
    pub receive: ReceiveOpt,
    pub window: DndWindow,
    /// How long the window lasts, in seconds; 0: no end (every day all day, or from its start on).
    pub duration_secs: u32,
}

/// When a do-not-disturb window starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DndWindow {
    /// Every day at this second of the day (UTC).
    Daily { start_secs: u32 },
    /// Once, at this unix second.
    From { start: i64 },
}

impl Dnd {
    /// Whether the window is on at `t` (unix seconds).
    pub fn quiet_at(&self, t: i64) -> bool {
        if self.receive == ReceiveOpt::Receive {
            return false;
        }
        // 0: no end (every day all day, or from its start on).
        let within = |elapsed: i64| self.duration_secs == 0 || elapsed < i64::from(self.duration_secs);
        match self.window {
            DndWindow::Daily { start_secs } => within((t - i64::from(start_secs)).rem_euclid(86_400)),
            DndWindow::From { start } => t >= start && within(t - start),
        }
    }
}

/// A change of a user's settings of a conversation: what is `None` (or 0 among the marks) stays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub pinned: Option<bool>,
    /// Marks to set, then marks to clear.
    pub set_marks: u64,
    pub clear_marks: u64,
    pub custom_data: Option<String>,
    pub draft: Option<String>,
    pub receive: Option<ReceiveOpt>,
}

/// The platforms a device may log in from (Tencent's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    IPhone,
    Android,
    IPad,
    Pc,
    Mac,
    Linux,
    Web,
}

impl Platform {
    /// Tencent's name of the platform, as `query_online_status` reports it.
    /// The platform of Tencent's name ([`Platform::name`]).
    pub fn from_name(name: &str) -> Option<Platform> {
        [
            Platform::IPhone,
            Platform::Android,
            Platform::IPad,
            Platform::Pc,
            Platform::Mac,
            Platform::Linux,
            Platform::Web,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }

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

    /// Phones and tablets: the devices that stay `PushOnline` after their connection drops.
    pub fn is_mobile(self) -> bool {
        matches!(self, Platform::IPhone | Platform::Android | Platform::IPad)
    }
}

/// A historical message to import (`importmsg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub from: String,
    pub to: String,
    /// `MsgSeq`; when absent the store picks the conversation's next, as for a send.
    pub seq: Option<u32>,
    pub random: u32,
    pub time: i64,
    pub body: String,
    pub cloud_custom_data: String,
    /// Real-time import (counted as unread, delivered) rather than history.
    pub counts_unread: bool,
}

/// A message as history and sync logs return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub from: String,
    pub to: String,
    pub key: MsgKey,
    /// Position in the conversation, from 1 without gaps (0: online only, never stored).
    pub conv_seq: u64,
    pub body: String,
    pub cloud_custom_data: String,
    pub recalled: bool,
    /// Who recalled it (the sender, or the app admin named by the REST call); `None` while not recalled.
    pub revoker: Option<String>,
    /// Whether the recipient has read it (its read time is at or after the message's).
    pub peer_read: bool,
    /// The sender asked for a message-level read receipt (`need_read_receipt`, REST `IsNeedReadReceipt`).
    pub need_receipt: bool,
    /// When the recipient acknowledged it with a read receipt (unix seconds).
    pub receipt_time: Option<i64>,
    /// The sender's nickname and avatar URL as they were when the message was sent.
    pub sender: SenderInfo,
    /// How many times it was edited (0: as sent); an edit naming an older version is a conflict.
    pub version: u32,
    /// The transport's encoding of the message, made by the first connection that pushes it: a message
    /// goes to its recipient's and its sender's devices under two log entries, one `Arc` of it.
    pub encoded: Encoded,
}

/// A value's encoding for the wire, made at most once and shared by all holders of one `Arc` of the value.
/// Not part of the value: equal whatever it holds, and a clone starts empty (a clone may be changed).
#[derive(Default)]
pub struct Encoded(std::sync::OnceLock<std::sync::Arc<str>>);

impl Encoded {
    pub fn get_or_init(&self, encode: impl FnOnce() -> std::sync::Arc<str>) -> &std::sync::Arc<str> {
        self.0.get_or_init(encode)
    }
}

impl Clone for Encoded {
    fn clone(&self) -> Encoded {
        Encoded::default()
    }
}

impl PartialEq for Encoded {
    fn eq(&self, _: &Encoded) -> bool {
        true
    }
}

impl Eq for Encoded {}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "Encoded(..)" } else { "Encoded(-)" })
    }
}

impl StoredMessage {
    /// A message just sent: not recalled, not read yet.
    pub fn fresh(
        from: &str,
        to: &str,
        key: MsgKey,
        conv_seq: u64,
        body: &str,
        cloud_custom_data: &str,
        sender: &SenderInfo,
    ) -> StoredMessage {
        StoredMessage {
            from: from.to_owned(),
            to: to.to_owned(),
            key,
            conv_seq,
            body: body.to_owned(),
            cloud_custom_data: cloud_custom_data.to_owned(),
            recalled: false,
            revoker: None,
            peer_read: false,
            need_receipt: false,
            receipt_time: None,
            sender: sender.clone(),
            version: 0,
            encoded: Encoded::default(),
        }
    }
}

/// Who sent a message, as the recipient shows it: the sender's profile at the time of sending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderInfo {
    pub nick: Option<String>,
    pub face_url: Option<String>,
}

/// A page of one side's view of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Whose view: messages the operator hid or sent with [`SenderCopy::Nothing`] are not in it.
    pub operator: String,
    pub peer: String,
    /// Unix seconds, inclusive.
    pub min_time: i64,
    /// Unix seconds, inclusive.
    pub max_time: i64,
    /// Continue after (older than) this message.
    pub before: Option<MsgKey>,
    pub limit: usize,
}

/// Messages newest first, and whether older ones remain in the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<StoredMessage>,
    pub more: bool,
    /// The conversation's highest `conv_seq` when the page was read (read before the messages, so every
    /// message numbered up to it that belongs in the page is in it).
    pub conv_seq: u64,
}

/// Where a read of every stored message ([`crate::store::MessageExport::export_messages`]) goes on: after
/// the message at this position. Messages are read in (time, id) order, `id` being the store's own number
/// of the message (one per recipient of a batch), so a position is stable while messages are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExportCursor {
    /// The message's time, unix seconds.
    pub time: i64,
    /// The store's number of the message.
    pub id: u64,
}

/// A page of every stored message in a time range, in (time, id) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPage {
    /// The messages, as their sender and recipient name them (`peer_read` is always `false`: an export
    /// carries no read state).
    pub messages: Vec<StoredMessage>,
    /// Where the next page starts; `None` when the range holds no more.
    pub next: Option<ExportCursor>,
}

/// What a retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub messages: u64,
    pub offline: u64,
    pub conversations: u64,
    pub dedup: u64,
}

// ---- the relationship chain ----------------------------------------------------------------------

/// One entry of a user's friend list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Friend {
    pub peer: String,
    /// `Tag_SNS_IM_Remark`.
    pub remark: String,
    /// `Tag_SNS_IM_Group`.
    pub groups: Vec<String>,
    /// `Tag_SNS_IM_AddSource`.
    pub add_source: String,
    /// `Tag_SNS_IM_AddWording`.
    pub add_wording: String,
    /// `Tag_SNS_IM_AddTime`, unix seconds.
    pub add_time: i64,
    /// `Tag_SNS_Custom_*` values.
    pub custom: Vec<(String, ProfileValue)>,
}

impl Friend {
    pub fn new(peer: &str, add_time: i64) -> Friend {
        Friend {
            peer: peer.to_owned(),
            remark: String::new(),
            groups: Vec::new(),
            add_source: String::new(),
            add_wording: String::new(),
            add_time,
            custom: Vec::new(),
        }
    }
}

/// A friend request waiting for its target to accept or decline it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriendRequest {
    pub from: String,
    pub to: String,
    pub wording: String,
    pub source: String,
    /// The remark and group the requester gives the target once accepted.
    pub remark: String,
    pub group: String,
    pub time: i64,
}

/// One blacklist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub peer: String,
    /// When it was added, unix seconds.
    pub time: i64,
}

/// Why a pending request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEnd {
    Accepted,
    Declined,
    /// Removed by a blacklist, a deletion of the account, or a new request the other way.
    Cancelled,
}

/// What a user's devices are told when the user's relations change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationEvent {
    /// `peer` was added to the user's friend list.
    FriendAdded(Friend),
    /// `peer` was removed from the user's friend list.
    FriendRemoved {
        peer: String,
    },
    /// Someone asks the user to be friends.
    RequestReceived(FriendRequest),
    /// The user asked someone (told to the user's devices).
    RequestSent(FriendRequest),
    /// A pending request between the user and someone is gone.
    RequestDeleted {
        from: String,
        to: String,
        why: RequestEnd,
    },
    BlacklistAdded(Blocked),
    BlacklistRemoved {
        peer: String,
    },
    /// Many of the user's relations changed at once (more than `relations::MAX_EVENTS_PER_USER` events in one
    /// operation, e.g. `friend_delete_all`): the devices re-list instead of getting each change.
    Changed,
}

/// The push services Duet sends through, by the names the client protocol and the configuration use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    Apns,
    Fcm,
    Huawei,
    Honor,
    Xiaomi,
    Oppo,
    Vivo,
    Meizu,
    /// The app's own gateway: a signed JSON POST.
    Webhook,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 9] = [
        ProviderKind::Apns,
        ProviderKind::Fcm,
        ProviderKind::Huawei,
        ProviderKind::Honor,
        ProviderKind::Xiaomi,
        ProviderKind::Oppo,
        ProviderKind::Vivo,
        ProviderKind::Meizu,
        ProviderKind::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Apns => "apns",
            ProviderKind::Fcm => "fcm",
            ProviderKind::Huawei => "huawei",
            ProviderKind::Honor => "honor",
            ProviderKind::Xiaomi => "xiaomi",
            ProviderKind::Oppo => "oppo",
            ProviderKind::Vivo => "vivo",
            ProviderKind::Meizu => "meizu",
            ProviderKind::Webhook => "webhook",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of [`ProviderKind::ALL`]'s names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown push provider {0:?} (apns, fcm, huawei, honor, xiaomi, oppo, vivo, meizu or webhook)")]
pub struct UnknownProvider(pub String);

impl std::str::FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<ProviderKind, UnknownProvider> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// A device's push registration: where its pushes go while it is not connected. `Debug` shows the token
/// redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub user: String,
    /// The device id its login gave.
    pub device: String,
    pub platform: Platform,
    pub provider: ProviderKind,
    pub token: String,
    /// The app's id at the provider, where one app has several (Tencent's business id).
    pub app_id: Option<String>,
    /// The language its notifications' default texts are in (`en`, `zh`, …); `None`: the server's default.
    pub lang: Option<String>,
    /// When the device was last connected (unix seconds): set at registration and at each disconnect.
    pub seen_at: i64,
}

impl std::fmt::Debug for PushDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let PushDevice { user, device, platform, provider, token, app_id, lang, seen_at } = self;
        f.debug_struct("PushDevice")
            .field("user", user)
            .field("device", device)
            .field("platform", platform)
            .field("provider", provider)
            .field("token", &crate::redact::redact(token))
            .field("app_id", app_id)
            .field("lang", lang)
            .field("seen_at", seen_at)
            .finish()
    }
}

/// A message a queued push announces, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub from: String,
    pub to: String,
    pub key: MsgKey,
    /// `MsgBody` as compact JSON.
    pub body: String,
    /// `OfflinePushInfo` as JSON.
    pub push_info: Option<String>,
    /// The sender's nickname when it was sent.
    pub sender_nick: Option<String>,
}

/// One push in the outbox, claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPush {
    pub id: u64,
    pub device: PushDevice,
    pub message: PushMessage,
    /// Earlier attempts that failed transiently.
    pub attempts: u32,
    /// When the message was committed (unix seconds).
    pub queued_at: i64,
    /// The recipient's total unread count when the push was claimed: its badge.
    pub unread: u64,
}

/// What a worker did with something it claimed from an outbox (a push, a callback event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Sent, or not needed any more: removed from the outbox.
    Done,
    /// A transient failure: due again at this time (unix seconds), its attempts counted.
    Retry { at: i64 },
    /// Not tried (an earlier one of the same user failed): its lease ends, nothing else changes.
    Release,
}

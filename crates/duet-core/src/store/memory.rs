//! [`MemoryStore`]: every storage trait of the domain ([`AccountStore`], [`MessageStore`],
//! [`RelationStore`], [`MediaIndex`]) held in memory, with the meaning the traits' docs give and the SQLite
//! backend implements. For tests: it passes the conformance suite ([`super::conformance`]) that every
//! backend passes, and lets domain tests run without a database. Nothing is durable.
//!
//! One mutex over one `State`: each operation runs whole under it, so each is atomic, and each checks
//! before it writes. Users are interned as uids that are never reused: what still names a deleted account
//! (its messages, its peers' conversation rows) stays, as in SQLite, and reaches no account created later.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use async_trait::async_trait;

use crate::media::{MediaIndex, MediaItem, RenditionKind, possible_blobs};
use crate::model::event::{AfterEvent, QueuedEvent};
use crate::model::{Blocked, FriendRequest};
use crate::model::{
    ConversationSettings, ConversationView, Delivery, Dnd, ExportCursor, ExportPage, HistoryPage, HistoryQuery, Import,
    LogEntry, LogEvent, LogPage, MsgKey, Mute, NewAccount, ProfileValue, ProviderKind, Purged, PushDevice, PushMessage,
    QueuedPush, ReceiveOpt, SearchCursor, SearchHit, SearchPage, SearchQuery, Searchable, SenderCopy, SenderInfo, Sent,
    SettingsChange, Settle, StoredMessage, TAG_IMAGE, TAG_NICK,
};
use crate::store::{
    AccountStore, Cutoffs, DeliveryHook, Edit, Imported, MessageStore, Modified, SendOutcome, SendPlan, StoreError,
    Withdrawn,
};
use crate::store::{CallbackStore, MessageExport, PushStore, RelationChange, RelationData, RelationStore};
use crate::store::{OpsStore, StoreStats};

type Uid = u64;
type MsgId = u64;
/// A message's key as history orders it: (time, `MsgSeq`, `MsgRandom`).
type Order = (i64, u32, u32);

/// The in-memory backend: a [`crate::store::Store`] and a [`MediaIndex`].
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Set once; later calls are ignored (as in SQLite).
    hook: OnceLock<DeliveryHook>,
    /// Taken before the state's lock is released and held while the hook runs, so that the hook gets the
    /// entries of each operation in the order the operations ran.
    delivering: Mutex<()>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked holding the lock loses the store anyway; the others may still read it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a write that appends sync-log entries, then hands them to the hook, in commit order.
    fn deliver<R>(&self, f: impl FnOnce(&mut State) -> (R, Vec<Delivery>)) -> R {
        let mut state = self.state();
        let (result, deliveries) = f(&mut state);
        if deliveries.is_empty() {
            return result;
        }
        let order = self.delivering.lock().unwrap_or_else(|e| e.into_inner());
        drop(state);
        if let Some(hook) = self.hook.get() {
            hook(deliveries);
        }
        drop(order);
        result
    }
}

#[derive(Default)]
struct State {
    uids: HashMap<String, Uid>,
    accounts: BTreeMap<Uid, Account>,
    last_uid: Uid,
    messages: BTreeMap<MsgId, Message>,
    last_msg: MsgId,
    /// (lo, hi) -> the conversation's messages by key, in history order.
    keys: HashMap<(Uid, Uid), BTreeMap<Order, MsgId>>,
    /// (lo, hi) -> the conversation's counters.
    threads: HashMap<(Uid, Uid), Thread>,
    logs: HashMap<Uid, Log>,
    /// owner -> peer -> the owner's side of the conversation.
    conversations: HashMap<Uid, HashMap<Uid, Conversation>>,
    /// (owner, peer) -> the owner's settings of the conversation.
    settings: HashMap<(Uid, Uid), ConversationSettings>,
    /// Each user's do-not-disturb window.
    dnd: HashMap<Uid, Dnd>,
    /// Dedup rows in send order.
    dedup: BTreeMap<u64, DedupRow>,
    /// Dedup key -> the latest row with it.
    dedup_keys: HashMap<[u8; 16], u64>,
    last_dedup: u64,
    relations: Relations,
    media: Media,
    /// (uid, device) -> the device's push registration.
    push_devices: BTreeMap<(Uid, String), PushDevice>,
    /// The push outbox by id.
    outbox: BTreeMap<u64, OutboxRow>,
    last_push: u64,
    /// The callback outbox by id (ids never reused).
    events: BTreeMap<u64, EventRow>,
    last_event: u64,
}

struct EventRow {
    event: AfterEvent,
    queued_at: i64,
    next_at: i64,
    attempts: u32,
    lease_owner: Option<String>,
    lease_until: i64,
}

struct OutboxRow {
    uid: Uid,
    device: String,
    msg: MsgId,
    queued_at: i64,
    next_at: i64,
    attempts: u32,
    lease_owner: Option<String>,
    lease_until: i64,
}

struct Account {
    id: String,
    revoked_before: i64,
    mute: Mute,
    profile: HashMap<String, ProfileValue>,
}

struct Message {
    sender: Uid,
    receiver: Uid,
    key: MsgKey,
    conv_seq: u64,
    body: String,
    cloud_custom_data: String,
    sender_info: SenderInfo,
    push_info: Option<String>,
    recalled: bool,
    revoker: Option<String>,
    need_receipt: bool,
    receipt_time: Option<i64>,
    hidden_from_sender: bool,
    hidden_from_receiver: bool,
    no_unread: bool,
    version: u32,
}

/// A conversation's counters.
#[derive(Debug, Clone, Copy, Default)]
struct Thread {
    /// The last position taken.
    conv_seq: u64,
    /// The last `MsgSeq` the store picked.
    key_seq: u32,
    /// The latest time of a message in it: a send is never dated before it.
    last_time: i64,
}

#[derive(Default)]
struct Log {
    /// The last sequence number given, whether or not its entry is left.
    last: u64,
    entries: BTreeMap<u64, LogRow>,
}

struct LogRow {
    kind: LogKind,
    expire_at: i64,
}

#[derive(Clone, Copy)]
enum LogKind {
    Message(MsgId),
    Read { peer: Uid, time: i64 },
    Recall(MsgId),
    PeerRead { peer: Uid, time: i64 },
    Receipt(MsgId),
    Modified(MsgId),
    Deleted(MsgId),
    Cleared { peer: Uid, upto: u64, conversation: bool },
    Settings { peer: Uid },
}

#[derive(Default)]
struct Conversation {
    /// `None`: no message made it the last (a read of a conversation never written, `NoLastMsg`): not listed.
    last_msg: Option<MsgId>,
    last_time: i64,
    unread: u64,
    read_time: i64,
}

struct DedupRow {
    created_ms: i64,
    sent: Sent,
}

#[derive(Default)]
struct Relations {
    /// (owner, peer) -> the entry of `peer` in `owner`'s list.
    friends: BTreeMap<(String, String), crate::model::Friend>,
    /// (owner, peer) -> when `peer` was added to `owner`'s blacklist.
    blacklist: BTreeMap<(String, String), i64>,
    /// (from, to) -> the pending request.
    requests: BTreeMap<(String, String), FriendRequest>,
}

#[derive(Default)]
struct Media {
    items: BTreeMap<String, MediaItem>,
    /// (uuid, user).
    grants: BTreeSet<(String, String)>,
    /// uuid -> when the upload began.
    uploads: BTreeMap<String, i64>,
    doomed: BTreeSet<String>,
}

fn pair(a: Uid, b: Uid) -> (Uid, Uid) {
    (a.min(b), a.max(b))
}

fn msg_entry(user: &str, seq: u64, msg: &Arc<StoredMessage>) -> Delivery {
    Delivery { user: user.to_owned(), entry: LogEntry { seq, event: LogEvent::Message(msg.clone()) } }
}

impl Message {
    fn view(&self, from: String, to: String, peer_read: bool) -> StoredMessage {
        StoredMessage {
            from,
            to,
            key: self.key,
            conv_seq: self.conv_seq,
            body: self.body.clone(),
            cloud_custom_data: self.cloud_custom_data.clone(),
            recalled: self.recalled,
            revoker: self.revoker.clone(),
            peer_read,
            need_receipt: self.need_receipt,
            receipt_time: self.receipt_time,
            sender: self.sender_info.clone(),
            version: self.version,
            encoded: Default::default(),
        }
    }

    /// What a sync-log page counts of it against `max_bytes`.
    fn text_len(&self) -> usize {
        let info = &self.sender_info;
        self.body.len()
            + self.cloud_custom_data.len()
            + info.nick.as_ref().map_or(0, String::len)
            + info.face_url.as_ref().map_or(0, String::len)
    }
}

impl State {
    /// Queues a push of message `msg` to each registered device of `uid`.
    fn queue_pushes(&mut self, uid: Uid, sender: Uid, msg: MsgId, now: i64) {
        if self.settings.get(&(uid, sender)).is_some_and(|s| s.receive != ReceiveOpt::Receive) {
            return;
        }
        let devices: Vec<String> = self
            .push_devices
            .range((uid, String::new())..)
            .take_while(|((u, _), _)| *u == uid)
            .map(|((_, d), _)| d.clone())
            .collect();
        for device in devices {
            self.last_push += 1;
            let row = OutboxRow {
                uid,
                device,
                msg,
                queued_at: now,
                next_at: now,
                attempts: 0,
                lease_owner: None,
                lease_until: 0,
            };
            self.outbox.insert(self.last_push, row);
        }
    }

    /// Removes the registrations `remove` selects and the pushes queued for them.
    fn remove_devices(&mut self, remove: impl Fn(&(Uid, String), &PushDevice) -> bool) -> u64 {
        let gone: Vec<(Uid, String)> =
            self.push_devices.iter().filter(|(k, d)| remove(k, d)).map(|(k, _)| k.clone()).collect();
        for key in &gone {
            self.push_devices.remove(key);
        }
        self.outbox.retain(|_, row| !gone.iter().any(|(uid, device)| row.uid == *uid && row.device == *device));
        gone.len() as u64
    }

    /// Queues a callback event, with the facts of its commit filled in (see [`AfterEvent::fill`]).
    fn queue_event(&mut self, mut event: AfterEvent, key: Option<MsgKey>) {
        let unread = event.unread_of().map(|user| {
            let rows = self.uid(user).and_then(|o| self.conversations.get(&o));
            rows.map_or(0, |rows| rows.values().map(|c| c.unread).sum())
        });
        event.fill(key, unread);
        let queued_at = event.time_ms.div_euclid(1000);
        self.last_event += 1;
        let row = EventRow { event, queued_at, next_at: queued_at, attempts: 0, lease_owner: None, lease_until: 0 };
        self.events.insert(self.last_event, row);
    }

    fn uid(&self, id: &str) -> Option<Uid> {
        self.uids.get(id).copied()
    }

    fn name(&self, uid: Uid) -> Option<&str> {
        self.accounts.get(&uid).map(|a| a.id.as_str())
    }

    fn import_accounts(&mut self, accounts: Vec<NewAccount>) {
        for a in accounts {
            let uid = match self.uid(&a.id) {
                Some(uid) => uid,
                None => {
                    self.last_uid += 1;
                    self.uids.insert(a.id.clone(), self.last_uid);
                    let account =
                        Account { id: a.id.clone(), revoked_before: 0, mute: Mute::default(), profile: HashMap::new() };
                    self.accounts.insert(self.last_uid, account);
                    self.last_uid
                }
            };
            if let Some(account) = self.accounts.get_mut(&uid) {
                for (tag, value) in [(TAG_NICK, a.nick), (TAG_IMAGE, a.face_url)] {
                    if let Some(v) = value {
                        account.profile.insert(tag.to_owned(), ProfileValue::Text(v));
                    }
                }
            }
        }
    }

    fn delete_account(&mut self, id: &str) -> bool {
        self.relations.drop_user(id);
        let Some(uid) = self.uids.remove(id) else {
            return false;
        };
        self.accounts.remove(&uid);
        self.logs.remove(&uid);
        self.conversations.remove(&uid);
        self.settings.retain(|(owner, _), _| *owner != uid);
        self.dnd.remove(&uid);
        self.remove_devices(|(u, _), _| *u == uid);
        true
    }

    /// The sender's current nickname and avatar, to keep with a message (empty and numeric values are none).
    fn sender_info(&self, uid: Uid) -> SenderInfo {
        let text = |tag: &str| match self.accounts.get(&uid).and_then(|a| a.profile.get(tag)) {
            Some(ProfileValue::Text(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        SenderInfo { nick: text(TAG_NICK), face_url: text(TAG_IMAGE) }
    }

    fn append_log(&mut self, uid: Uid, kind: LogKind, expire_at: i64) -> u64 {
        let log = self.logs.entry(uid).or_default();
        log.last += 1;
        log.entries.insert(log.last, LogRow { kind, expire_at });
        log.last
    }

    fn thread(&self, a: Uid, b: Uid) -> Thread {
        self.threads.get(&pair(a, b)).copied().unwrap_or_default()
    }

    /// Records that the conversation took its next position for a message of `time` under `picked` (a
    /// `MsgSeq` the store picked, or `None` when the sender gave one).
    fn advance_thread(&mut self, a: Uid, b: Uid, before: Thread, picked: Option<u32>, time: i64) {
        let after = Thread {
            conv_seq: before.conv_seq + 1,
            key_seq: picked.unwrap_or(before.key_seq),
            last_time: before.last_time.max(time),
        };
        self.threads.insert(pair(a, b), after);
    }

    /// Stores a message; `None` if its conversation has one with the same key already (either direction).
    fn insert_message(&mut self, m: Message) -> Option<MsgId> {
        let keys = self.keys.entry(pair(m.sender, m.receiver)).or_default();
        let key = (m.key.time, m.key.seq, m.key.random);
        if keys.contains_key(&key) {
            return None;
        }
        self.last_msg += 1;
        keys.insert(key, self.last_msg);
        self.messages.insert(self.last_msg, m);
        Some(self.last_msg)
    }

    fn conversation(&self, owner: Uid, peer: Uid) -> Option<&Conversation> {
        self.conversations.get(&owner).and_then(|rows| rows.get(&peer))
    }

    /// Updates `owner`'s side of the conversation with `peer` for a message of `time` (`last`: it becomes
    /// the last message, unless older than the last one), keeping at most `max` conversations per owner: a
    /// new one evicts the least recent.
    fn touch_conversation(&mut self, owner: Uid, peer: Uid, time: i64, last: Option<MsgId>, unread: bool, max: usize) {
        let rows = self.conversations.entry(owner).or_default();
        if let Some(c) = rows.get_mut(&peer) {
            if last.is_some() && time >= c.last_time {
                c.last_msg = last;
                c.last_time = time;
            }
            if unread && time > c.read_time {
                c.unread += 1;
            }
            return;
        }
        let last_time = if last.is_some() { time } else { 0 };
        let unread = u64::from(unread && time > 0);
        rows.insert(peer, Conversation { last_msg: last, last_time, unread, read_time: 0 });
        if rows.len() > max {
            let mut order: Vec<_> = rows.iter().map(|(&p, c)| (Reverse(c.last_time), Reverse(c.last_msg), p)).collect();
            order.sort_unstable();
            for (.., p) in order.into_iter().skip(max) {
                rows.remove(&p);
            }
        }
    }

    fn send(&mut self, plan: &SendPlan) -> (SendOutcome, Vec<Delivery>) {
        if let Some(row) = self.dedup_keys.get(&plan.dedup_key).and_then(|id| self.dedup.get(id))
            && row.created_ms >= plan.dedup_since_ms
        {
            return (SendOutcome::Duplicate(Sent { duplicate: true, ..row.sent.clone() }), Vec::new());
        }
        let msg = &plan.msg;
        let Some(sender) = self.uid(&msg.from) else {
            return (SendOutcome::NoSuchSender(msg.from.clone()), Vec::new());
        };
        let receivers: Vec<(&String, Option<Uid>)> = msg.to.iter().map(|to| (to, self.uid(to))).collect();
        // One key for every recipient: the sender's MsgSeq or one above what the store picked in each
        // conversation; the send's time unless a conversation holds a later message.
        let (mut next, mut time) = (None, plan.time);
        for &(_, receiver) in &receivers {
            if let Some(receiver) = receiver {
                let t = self.thread(sender, receiver);
                time = time.max(t.last_time);
                let seq = t.key_seq.wrapping_add(1);
                next = Some(next.map_or(seq, |n: u32| n.max(seq)));
            }
        }
        let picked = msg.seq.is_none().then(|| next.unwrap_or(1));
        let key = MsgKey { seq: msg.seq.or(picked).unwrap_or(1), random: msg.random, time };
        let mut sent = Sent { key, failed: Vec::new(), duplicate: false, conv_seq: 0, sender_log_seq: 0 };
        let mut deliveries = Vec::new();
        let info = self.sender_info(sender);
        for (to, receiver) in receivers {
            let Some(receiver) = receiver else {
                sent.failed.push(to.clone());
                continue;
            };
            let before = self.thread(sender, receiver);
            let conv_seq = before.conv_seq + 1;
            let stored = Message {
                sender,
                receiver,
                key,
                conv_seq,
                body: msg.body.clone(),
                cloud_custom_data: msg.cloud_custom_data.clone(),
                sender_info: info.clone(),
                push_info: msg.push_info.clone(),
                recalled: false,
                revoker: None,
                need_receipt: msg.need_read_receipt,
                receipt_time: None,
                hidden_from_sender: msg.sender_copy == SenderCopy::Nothing,
                hidden_from_receiver: false,
                no_unread: msg.no_unread,
                version: 0,
            };
            // A taken key (same MsgSeq and MsgRandom in the same second): Tencent's MsgRandom dedup.
            let Some(id) = self.insert_message(stored) else {
                continue;
            };
            self.advance_thread(sender, receiver, before, picked, time);
            let mut view = StoredMessage::fresh(&msg.from, to, key, conv_seq, &msg.body, &msg.cloud_custom_data, &info);
            view.need_receipt = msg.need_read_receipt;
            let view = Arc::new(view);
            let seq = self.append_log(receiver, LogKind::Message(id), plan.offline_until);
            deliveries.push(msg_entry(to, seq, &view));
            if plan.push && sender != receiver {
                self.queue_pushes(receiver, sender, id, plan.now_ms.div_euclid(1000));
            }
            if sent.conv_seq == 0 {
                sent.conv_seq = conv_seq;
            }
            let last = (!msg.no_last_msg).then_some(id);
            self.touch_conversation(receiver, sender, time, last, !msg.no_unread, plan.max_conversations);
            if sender == receiver {
                continue;
            }
            if msg.sender_copy == SenderCopy::Sync {
                let seq = self.append_log(sender, LogKind::Message(id), plan.offline_until);
                deliveries.push(msg_entry(&msg.from, seq, &view));
                if sent.sender_log_seq == 0 {
                    sent.sender_log_seq = seq;
                }
            }
            if msg.sender_copy != SenderCopy::Nothing {
                self.touch_conversation(sender, receiver, time, last, false, plan.max_conversations);
            }
        }
        if let Some(event) = &plan.after_send
            && sent.conv_seq > 0
        {
            self.queue_event(event.clone(), Some(key));
        }
        if sent.failed.len() < msg.to.len() {
            self.last_dedup += 1;
            let row = DedupRow { created_ms: plan.now_ms, sent: sent.clone() };
            self.dedup.insert(self.last_dedup, row);
            self.dedup_keys.insert(plan.dedup_key, self.last_dedup);
        }
        (SendOutcome::Sent(sent), deliveries)
    }

    fn import(&mut self, msg: &Import, offline_until: i64, max: usize) -> (Imported, Vec<Delivery>) {
        let Some(sender) = self.uid(&msg.from) else {
            return (Imported::NoSuchSender(msg.from.clone()), Vec::new());
        };
        let Some(receiver) = self.uid(&msg.to) else {
            return (Imported::NoSuchRecipient(msg.to.clone()), Vec::new());
        };
        let info = self.sender_info(sender);
        let before = self.thread(sender, receiver);
        let picked = msg.seq.is_none().then(|| before.key_seq.wrapping_add(1));
        let key = MsgKey { seq: msg.seq.or(picked).unwrap_or(1), random: msg.random, time: msg.time };
        let conv_seq = before.conv_seq + 1;
        let stored = Message {
            sender,
            receiver,
            key,
            conv_seq,
            body: msg.body.clone(),
            cloud_custom_data: msg.cloud_custom_data.clone(),
            sender_info: info.clone(),
            push_info: None,
            recalled: false,
            revoker: None,
            need_receipt: false,
            receipt_time: None,
            hidden_from_sender: false,
            hidden_from_receiver: false,
            no_unread: !msg.counts_unread,
            version: 0,
        };
        let Some(id) = self.insert_message(stored) else {
            return (Imported::Duplicate, Vec::new());
        };
        self.advance_thread(sender, receiver, before, picked, key.time);
        let mut deliveries = Vec::new();
        if msg.counts_unread {
            let seq = self.append_log(receiver, LogKind::Message(id), offline_until);
            let view =
                StoredMessage::fresh(&msg.from, &msg.to, key, conv_seq, &msg.body, &msg.cloud_custom_data, &info);
            deliveries.push(msg_entry(&msg.to, seq, &Arc::new(view)));
        }
        self.touch_conversation(receiver, sender, key.time, Some(id), msg.counts_unread, max);
        if sender != receiver {
            self.touch_conversation(sender, receiver, key.time, Some(id), false, max);
        }
        (Imported::Stored, deliveries)
    }

    fn history(&self, q: &HistoryQuery) -> HistoryPage {
        let (Some(op), Some(peer)) = (self.uid(&q.operator), self.uid(&q.peer)) else {
            return HistoryPage { messages: Vec::new(), more: false, conv_seq: 0 };
        };
        let conv_seq = self.thread(op, peer).conv_seq;
        let read_time = |owner, other| self.conversation(owner, other).map_or(0, |c| c.read_time);
        let (op_read, peer_read) = (read_time(op, peer), read_time(peer, op));
        let upper = match q.before {
            None => Bound::Unbounded,
            Some(k) => Bound::Excluded((k.time, k.seq, k.random)),
        };
        let name = |uid| if uid == op { q.operator.clone() } else { q.peer.clone() };
        let (mut messages, mut more) = (Vec::new(), false);
        let keys = self.keys.get(&pair(op, peer));
        for (&(time, ..), id) in keys.into_iter().flat_map(|k| k.range((Bound::Unbounded, upper)).rev()) {
            if time > q.max_time {
                continue;
            }
            if time < q.min_time {
                break;
            }
            let m = &self.messages[id];
            if (m.sender == op && m.hidden_from_sender) || (m.receiver == op && m.hidden_from_receiver) {
                continue;
            }
            if messages.len() == q.limit {
                more = true;
                break;
            }
            let read = m.key.time <= if m.sender == op { peer_read } else { op_read };
            messages.push(m.view(name(m.sender), name(m.receiver), read));
        }
        HistoryPage { messages, more, conv_seq }
    }

    fn export_messages(&self, start: i64, end: i64, after: Option<ExportCursor>, limit: usize) -> ExportPage {
        let limit = limit.max(1);
        let mut found: Vec<(ExportCursor, &Message)> = self
            .messages
            .iter()
            .map(|(&id, m)| (ExportCursor { time: m.key.time, id }, m))
            .filter(|(at, _)| at.time >= start && at.time < end && after.is_none_or(|after| *at > after))
            .collect();
        found.sort_by_key(|(at, _)| *at);
        let more = found.len() > limit;
        found.truncate(limit);
        let next = if more { found.last().map(|(at, _)| *at) } else { None };
        let messages = found
            .into_iter()
            .filter_map(|(_, m)| {
                let (from, to) = (self.name(m.sender)?, self.name(m.receiver)?);
                Some(m.view(from.to_owned(), to.to_owned(), false))
            })
            .collect();
        ExportPage { messages, next }
    }

    fn withdraw(
        &mut self,
        from: &str,
        to: &str,
        key: MsgKey,
        by: &str,
        expire_at: i64,
        event: Option<AfterEvent>,
    ) -> (Withdrawn, Vec<Delivery>) {
        let (Some(sender), Some(receiver)) = (self.uid(from), self.uid(to)) else {
            return (Withdrawn::NotFound, Vec::new());
        };
        let found = self.keys.get(&pair(sender, receiver)).and_then(|k| k.get(&(key.time, key.seq, key.random)));
        let Some(&id) = found else {
            return (Withdrawn::NotFound, Vec::new());
        };
        let Some(m) = self.messages.get_mut(&id).filter(|m| m.sender == sender) else {
            return (Withdrawn::NotFound, Vec::new());
        };
        if m.recalled {
            return (Withdrawn::AlreadyRecalled, Vec::new());
        }
        m.recalled = true;
        m.revoker = Some(by.to_owned());
        let (no_unread, hidden_from_sender) = (m.no_unread || m.hidden_from_receiver, m.hidden_from_sender);
        if !no_unread
            && let Some(c) = self.conversations.get_mut(&receiver).and_then(|rows| rows.get_mut(&sender))
            && c.read_time < key.time
        {
            c.unread = c.unread.saturating_sub(1);
        }
        let mut sides = vec![(receiver, to, from)];
        if sender != receiver && !hidden_from_sender {
            sides.push((sender, from, to));
        }
        let mut deliveries = Vec::with_capacity(sides.len());
        for (owner, name, peer) in sides {
            let seq = self.append_log(owner, LogKind::Recall(id), expire_at);
            let event = LogEvent::Recall { peer: peer.to_owned(), key, by: by.to_owned() };
            deliveries.push(Delivery { user: name.to_owned(), entry: LogEntry { seq, event } });
        }
        if let Some(event) = event {
            self.queue_event(event, None);
        }
        (Withdrawn::Done, deliveries)
    }

    fn set_read(
        &mut self,
        owner: &str,
        peer: &str,
        time: i64,
        expire_at: i64,
        event: Option<AfterEvent>,
    ) -> (bool, Vec<Delivery>) {
        let (Some(o), Some(p)) = (self.uid(owner), self.uid(peer)) else {
            return (false, Vec::new());
        };
        let rows = self.conversations.entry(o).or_default();
        let c = rows.entry(p).or_default();
        let advanced = time > c.read_time;
        c.read_time = c.read_time.max(time);
        let read_time = c.read_time;
        let unread = self.keys.get(&pair(o, p)).map_or(0, |keys| {
            keys.values()
                .map(|id| &self.messages[id])
                .filter(|m| m.sender == p && m.receiver == o && m.key.time > read_time)
                .filter(|m| !m.recalled && !m.hidden_from_receiver && !m.no_unread)
                .count() as u64
        });
        if let Some(c) = self.conversations.get_mut(&o).and_then(|rows| rows.get_mut(&p)) {
            c.unread = unread;
        }
        let seq = self.append_log(o, LogKind::Read { peer: p, time }, expire_at);
        let read = LogEntry { seq, event: LogEvent::Read { peer: peer.to_owned(), time } };
        let mut deliveries = vec![Delivery { user: owner.to_owned(), entry: read }];
        if advanced && o != p {
            let seq = self.append_log(p, LogKind::PeerRead { peer: o, time: read_time }, expire_at);
            let event = LogEvent::PeerRead { peer: owner.to_owned(), time: read_time };
            deliveries.push(Delivery { user: peer.to_owned(), entry: LogEntry { seq, event } });
        }
        if let Some(event) = event {
            self.queue_event(event, None);
        }
        (true, deliveries)
    }

    fn ack_receipts(
        &mut self,
        reader: &str,
        sender: &str,
        keys: &[MsgKey],
        time: i64,
        expire_at: i64,
    ) -> (Vec<Option<i64>>, Vec<Delivery>) {
        let (Some(r), Some(s)) = (self.uid(reader), self.uid(sender)) else {
            return (vec![None; keys.len()], Vec::new());
        };
        let mut deliveries = Vec::new();
        let mut times = Vec::with_capacity(keys.len());
        for key in keys {
            let found = self.keys.get(&pair(r, s)).and_then(|k| k.get(&(key.time, key.seq, key.random))).copied();
            let Some((id, m)) = found.and_then(|id| Some((id, self.messages.get_mut(&id)?))) else {
                times.push(None);
                continue;
            };
            if m.sender != s || m.receiver != r || !m.need_receipt || m.recalled || m.hidden_from_receiver {
                times.push(None);
                continue;
            }
            if let Some(t) = m.receipt_time {
                times.push(Some(t));
                continue;
            }
            m.receipt_time = Some(time);
            times.push(Some(time));
            let seq = self.append_log(s, LogKind::Receipt(id), expire_at);
            let event = LogEvent::Receipt { peer: reader.to_owned(), key: *key, time };
            deliveries.push(Delivery { user: sender.to_owned(), entry: LogEntry { seq, event } });
        }
        (times, deliveries)
    }

    /// Every message of the owner's view that passes the query, by a scan: the keywords are matched as
    /// case-insensitive substrings of the message's text ([`Searchable::matches`]).
    fn search(&self, q: &SearchQuery) -> SearchPage {
        let empty = SearchPage { hits: Vec::new(), more: false };
        let Some(owner) = self.uid(&q.owner) else { return empty };
        let named = |name: &Option<String>| match name {
            None => Some(None),
            Some(n) => self.uid(n).map(Some),
        };
        let (Some(peer), Some(sender)) = (named(&q.peer), named(&q.sender)) else { return empty };
        let limit = q.limit.min(crate::model::search::MAX_SEARCH_PAGE);
        let mut found: Vec<(SearchCursor, &Message)> = self
            .messages
            .iter()
            .map(|(&id, m)| (SearchCursor { time: m.key.time, id }, m))
            .filter(|(at, m)| {
                let other = if m.sender == owner { m.receiver } else { m.sender };
                (m.sender == owner || m.receiver == owner)
                    && !m.recalled
                    && !((m.sender == owner && m.hidden_from_sender) || (m.receiver == owner && m.hidden_from_receiver))
                    && self.name(other).is_some()
                    && peer.is_none_or(|p| p == other)
                    && sender.is_none_or(|s| s == m.sender)
                    && at.time >= q.min_time
                    && at.time <= q.max_time
                    && q.after.is_none_or(|after| *at < after)
                    && Searchable::of(&m.body).matches(&q.types, &q.keywords)
            })
            .collect();
        found.sort_by_key(|(at, _)| Reverse(*at));
        let more = found.len() > limit;
        found.truncate(limit);
        let hits = found
            .into_iter()
            .filter_map(|(at, m)| {
                let (from, to) = (self.name(m.sender)?, self.name(m.receiver)?);
                let read = m.key.time <= self.conversation(m.receiver, m.sender).map_or(0, |c| c.read_time);
                Some(SearchHit { at, message: m.view(from.to_owned(), to.to_owned(), read) })
            })
            .collect();
        SearchPage { hits, more }
    }

    fn find_messages(&self, owner: &str, peer: &str, keys: &[MsgKey]) -> Vec<Option<StoredMessage>> {
        let (Some(op), Some(p)) = (self.uid(owner), self.uid(peer)) else {
            return vec![None; keys.len()];
        };
        let read_time = |o, other| self.conversation(o, other).map_or(0, |c| c.read_time);
        let (op_read, peer_read) = (read_time(op, p), read_time(p, op));
        let name = |uid| if uid == op { owner.to_owned() } else { peer.to_owned() };
        keys.iter()
            .map(|key| {
                let id = self.keys.get(&pair(op, p))?.get(&(key.time, key.seq, key.random))?;
                let m = &self.messages[id];
                if (m.sender == op && m.hidden_from_sender) || (m.receiver == op && m.hidden_from_receiver) {
                    return None;
                }
                let read = m.key.time <= if m.sender == op { peer_read } else { op_read };
                Some(m.view(name(m.sender), name(m.receiver), read))
            })
            .collect()
    }

    fn log_after(&self, user: &str, after: u64, limit: usize, max_bytes: usize) -> LogPage {
        let Some((log_owner, log)) = self.uid(user).and_then(|uid| Some((uid, self.logs.get(&uid)?))) else {
            return LogPage { entries: Vec::new(), latest: 0, more: false };
        };
        let (mut count, mut bytes, mut full, mut more) = (0, 0, false, false);
        let mut entries = Vec::new();
        for (&seq, row) in log.entries.range((Bound::Excluded(after), Bound::Unbounded)) {
            count += 1;
            if count > limit || full {
                more = true;
                break;
            }
            let event = match row.kind {
                LogKind::Read { peer, time } => match self.name(peer) {
                    Some(peer) => LogEvent::Read { peer: peer.to_owned(), time },
                    None => continue,
                },
                LogKind::PeerRead { peer, time } => match self.name(peer) {
                    Some(peer) => LogEvent::PeerRead { peer: peer.to_owned(), time },
                    None => continue,
                },
                LogKind::Settings { peer } => match self.name(peer) {
                    Some(name) => LogEvent::Settings {
                        peer: name.to_owned(),
                        settings: self.settings.get(&(log_owner, peer)).cloned().unwrap_or_default(),
                    },
                    None => continue,
                },
                LogKind::Cleared { peer, upto, conversation } => match self.name(peer) {
                    Some(peer) => LogEvent::Cleared { peer: peer.to_owned(), upto, conversation },
                    None => continue,
                },
                LogKind::Message(id)
                | LogKind::Recall(id)
                | LogKind::Receipt(id)
                | LogKind::Modified(id)
                | LogKind::Deleted(id) => {
                    // The message or one of its accounts is gone: nothing left to deliver.
                    let Some(m) = self.messages.get(&id) else { continue };
                    let (Some(s), Some(r)) = (self.name(m.sender), self.name(m.receiver)) else { continue };
                    bytes += m.text_len();
                    full = bytes >= max_bytes;
                    let peer = if s == user { r } else { s };
                    match row.kind {
                        LogKind::Message(_) => LogEvent::Message(Arc::new(m.view(s.to_owned(), r.to_owned(), false))),
                        LogKind::Modified(_) => LogEvent::Modified(Arc::new(m.view(s.to_owned(), r.to_owned(), false))),
                        LogKind::Deleted(_) => LogEvent::Deleted { peer: peer.to_owned(), key: m.key },
                        LogKind::Receipt(_) => LogEvent::Receipt {
                            peer: peer.to_owned(),
                            key: m.key,
                            time: m.receipt_time.unwrap_or_default(),
                        },
                        _ => LogEvent::Recall {
                            peer: peer.to_owned(),
                            key: m.key,
                            by: m.revoker.clone().unwrap_or_else(|| s.to_owned()),
                        },
                    }
                }
            };
            entries.push(LogEntry { seq, event });
        }
        LogPage { entries, latest: log.last, more }
    }

    fn conversations(&self, user: &str, limit: usize) -> Vec<ConversationView> {
        let Some((owner, rows)) = self.uid(user).and_then(|o| Some((o, self.conversations.get(&o)?))) else {
            return Vec::new();
        };
        let mut listed: Vec<_> =
            rows.iter().filter(|(_, c)| c.last_time > 0).filter_map(|(&p, c)| Some((p, self.name(p)?, c))).collect();
        let pinned_at = |p: Uid| self.settings.get(&(owner, p)).map_or(0, |s| s.pinned_at);
        listed.sort_unstable_by_key(|&(p, _, c)| (Reverse(pinned_at(p)), Reverse(c.last_time), Reverse(c.last_msg), p));
        listed
            .into_iter()
            .take(limit)
            .map(|(p, peer, c)| {
                let name = |uid| if uid == p { peer.to_owned() } else { user.to_owned() };
                let last = c.last_msg.and_then(|id| self.messages.get(&id));
                ConversationView {
                    peer: peer.to_owned(),
                    last: last.map(|m| m.view(name(m.sender), name(m.receiver), false)),
                    unread: c.unread,
                    time: c.last_time,
                    conv_seq: self.thread(owner, p).conv_seq,
                    peer_read_time: self.conversation(p, owner).map_or(0, |c| c.read_time),
                    settings: self.settings.get(&(owner, p)).cloned().unwrap_or_default(),
                }
            })
            .collect()
    }

    fn clear_conversation(
        &mut self,
        owner: &str,
        peer: &str,
        clear_history: bool,
        delete_conversation: bool,
        expire_at: i64,
    ) -> (bool, Vec<Delivery>) {
        let (Some(o), Some(p)) = (self.uid(owner), self.uid(peer)) else {
            return (false, Vec::new());
        };
        let upto = if clear_history { self.thread(o, p).conv_seq } else { 0 };
        if clear_history {
            for id in self.keys.get(&pair(o, p)).into_iter().flat_map(|k| k.values()) {
                if let Some(m) = self.messages.get_mut(id) {
                    m.hidden_from_sender |= m.sender == o;
                    m.hidden_from_receiver |= m.receiver == o;
                }
            }
            if let Some(c) = self.conversations.get_mut(&o).and_then(|rows| rows.get_mut(&p)) {
                c.unread = 0;
                c.last_msg = None;
            }
        }
        if delete_conversation {
            if let Some(rows) = self.conversations.get_mut(&o) {
                rows.remove(&p);
            }
            if let Some(s) = self.settings.get_mut(&(o, p)) {
                *s = ConversationSettings { receive: s.receive, ..ConversationSettings::default() };
            }
        }
        let seq = self.append_log(o, LogKind::Cleared { peer: p, upto, conversation: delete_conversation }, expire_at);
        let event = LogEvent::Cleared { peer: peer.to_owned(), upto, conversation: delete_conversation };
        (true, vec![Delivery { user: owner.to_owned(), entry: LogEntry { seq, event } }])
    }

    fn update_conversation(
        &mut self,
        owner: &str,
        peer: &str,
        change: &SettingsChange,
        now: i64,
        expire_at: i64,
    ) -> (Option<ConversationSettings>, Vec<Delivery>) {
        let (Some(o), Some(p)) = (self.uid(owner), self.uid(peer)) else {
            return (None, Vec::new());
        };
        let s = self.settings.entry((o, p)).or_default();
        match change.pinned {
            Some(true) if s.pinned_at == 0 => s.pinned_at = now,
            Some(false) => s.pinned_at = 0,
            _ => {}
        }
        s.marks = (s.marks | change.set_marks) & !change.clear_marks;
        if let Some(data) = &change.custom_data {
            s.custom_data = data.clone();
        }
        if let Some(draft) = &change.draft {
            s.draft = draft.clone();
            s.draft_time = if draft.is_empty() { 0 } else { now };
        }
        if let Some(receive) = change.receive {
            s.receive = receive;
        }
        let settings = s.clone();
        let seq = self.append_log(o, LogKind::Settings { peer: p }, expire_at);
        let event = LogEvent::Settings { peer: peer.to_owned(), settings: settings.clone() };
        (Some(settings), vec![Delivery { user: owner.to_owned(), entry: LogEntry { seq, event } }])
    }

    fn delete_messages(
        &mut self,
        owner: &str,
        peer: &str,
        keys: &[MsgKey],
        expire_at: i64,
    ) -> (Vec<bool>, Vec<Delivery>) {
        let (Some(o), Some(p)) = (self.uid(owner), self.uid(peer)) else {
            return (vec![false; keys.len()], Vec::new());
        };
        let mut deleted = Vec::with_capacity(keys.len());
        let mut deliveries = Vec::new();
        for key in keys {
            let id = self.keys.get(&pair(o, p)).and_then(|k| k.get(&(key.time, key.seq, key.random))).copied();
            let Some(m) = id.and_then(|id| self.messages.get_mut(&id)) else {
                deleted.push(false);
                continue;
            };
            let (as_sender, as_receiver) = (m.sender == o, m.receiver == o);
            if (!as_sender || m.hidden_from_sender) && (!as_receiver || m.hidden_from_receiver) {
                deleted.push(false);
                continue;
            }
            let counted = as_receiver && !as_sender && !m.recalled && !m.no_unread && !m.hidden_from_receiver;
            m.hidden_from_sender |= as_sender;
            m.hidden_from_receiver |= as_receiver;
            let Some(id) = id else { continue };
            let shown =
                |m: &Message| !((m.sender == o && m.hidden_from_sender) || (m.receiver == o && m.hidden_from_receiver));
            let latest = self
                .keys
                .get(&pair(o, p))
                .and_then(|k| k.values().rev().map(|id| (*id, &self.messages[id])).find(|(_, m)| shown(m)))
                .map(|(id, _)| id);
            if let Some(c) = self.conversations.get_mut(&o).and_then(|rows| rows.get_mut(&p)) {
                if counted && c.read_time < key.time {
                    c.unread = c.unread.saturating_sub(1);
                }
                if c.last_msg == Some(id) {
                    c.last_msg = latest;
                }
            }
            let seq = self.append_log(o, LogKind::Deleted(id), expire_at);
            let event = LogEvent::Deleted { peer: peer.to_owned(), key: *key };
            deliveries.push(Delivery { user: owner.to_owned(), entry: LogEntry { seq, event } });
            deleted.push(true);
        }
        (deleted, deliveries)
    }

    fn modify(&mut self, e: &Edit, expire_at: i64) -> (Modified, Vec<Delivery>) {
        let (Some(sender), Some(receiver)) = (self.uid(&e.from), self.uid(&e.to)) else {
            return (Modified::NotFound, Vec::new());
        };
        let id = self.keys.get(&pair(sender, receiver)).and_then(|k| k.get(&(e.key.time, e.key.seq, e.key.random)));
        let Some(&id) = id else {
            return (Modified::NotFound, Vec::new());
        };
        let Some(m) = self.messages.get_mut(&id).filter(|m| m.sender == sender && m.receiver == receiver) else {
            return (Modified::NotFound, Vec::new());
        };
        if m.recalled {
            return (Modified::Recalled, Vec::new());
        }
        if e.base_version.is_some_and(|v| v != m.version) {
            return (Modified::Conflict(m.view(e.from.clone(), e.to.clone(), false)), Vec::new());
        }
        if let Some(body) = &e.body {
            m.body = body.clone();
        }
        if let Some(data) = &e.cloud_custom_data {
            m.cloud_custom_data = data.clone();
        }
        m.version += 1;
        let msg = Arc::new(m.view(e.from.clone(), e.to.clone(), false));
        let mut sides = Vec::with_capacity(2);
        if !m.hidden_from_receiver {
            sides.push((receiver, &e.to));
        }
        if sender != receiver && !m.hidden_from_sender {
            sides.push((sender, &e.from));
        }
        let mut deliveries = Vec::with_capacity(sides.len());
        for (owner, name) in sides {
            let seq = self.append_log(owner, LogKind::Modified(id), expire_at);
            deliveries
                .push(Delivery { user: name.clone(), entry: LogEntry { seq, event: LogEvent::Modified(msg.clone()) } });
        }
        (Modified::Done((*msg).clone()), deliveries)
    }

    fn purge(&mut self, cut: Cutoffs) -> Purged {
        // A conversation expires with its last message.
        let expiring: HashSet<(Uid, Uid)> = self
            .messages
            .values()
            .filter(|m| m.key.time < cut.roaming_before)
            .flat_map(|m| [(m.receiver, m.sender), (m.sender, m.receiver)])
            .collect();
        let mut conversations = 0;
        for (&owner, rows) in &mut self.conversations {
            rows.retain(|&peer, c| {
                let gone =
                    c.last_msg.is_some() && c.last_time < cut.roaming_before && expiring.contains(&(owner, peer));
                conversations += u64::from(gone);
                !gone
            });
        }
        let old: Vec<MsgId> =
            self.messages.iter().filter(|(_, m)| m.key.time < cut.roaming_before).map(|(&id, _)| id).collect();
        for id in &old {
            if let Some(m) = self.messages.remove(id)
                && let Some(keys) = self.keys.get_mut(&pair(m.sender, m.receiver))
            {
                keys.remove(&(m.key.time, m.key.seq, m.key.random));
            }
        }
        // Log positions stay (`Log::last`) when their entries go.
        let mut offline = 0;
        for log in self.logs.values_mut() {
            let before = log.entries.len();
            log.entries.retain(|_, e| e.expire_at >= cut.offline_before);
            offline += (before - log.entries.len()) as u64;
        }
        // Rows are in send order: everything before the first row still in the window goes.
        let boundary = self.dedup.iter().find(|(_, r)| r.created_ms >= cut.dedup_before_ms).map(|(&id, _)| id);
        let kept = match boundary {
            Some(b) => self.dedup.split_off(&b),
            None => BTreeMap::new(),
        };
        let dedup = self.dedup.len() as u64;
        self.dedup = kept;
        let rows = &self.dedup;
        self.dedup_keys.retain(|_, id| rows.contains_key(id));
        Purged { messages: old.len() as u64, offline, conversations, dedup }
    }
}

impl Relations {
    fn load(&self, user: &str) -> RelationData {
        let own = |(owner, _): &(String, String)| owner == user;
        RelationData {
            friends: self.friends.iter().filter(|(k, _)| own(k)).map(|(_, f)| f.clone()).collect(),
            blacklist: self
                .blacklist
                .iter()
                .filter(|(k, _)| own(k))
                .map(|((_, peer), &time)| Blocked { peer: peer.clone(), time })
                .collect(),
            incoming: self.requests.iter().filter(|((_, to), _)| to == user).map(|(_, r)| r.clone()).collect(),
            outgoing: self.requests.iter().filter(|((from, _), _)| from == user).map(|(_, r)| r.clone()).collect(),
        }
    }

    fn apply(&mut self, change: RelationChange) {
        match change {
            RelationChange::PutFriend { owner, mut friend } => {
                // As stored in SQLite: no empty group names; custom tags by name, the last value of each.
                friend.groups.retain(|g| !g.is_empty());
                let custom: BTreeMap<_, _> = friend.custom.drain(..).collect();
                friend.custom = custom.into_iter().collect();
                self.friends.insert((owner, friend.peer.clone()), friend);
            }
            RelationChange::DeleteFriend { owner, peer } => {
                self.friends.remove(&(owner, peer));
            }
            RelationChange::PutBlocked { owner, entry } => {
                self.blacklist.insert((owner, entry.peer), entry.time);
            }
            RelationChange::DeleteBlocked { owner, peer } => {
                self.blacklist.remove(&(owner, peer));
            }
            RelationChange::PutRequest(r) => {
                self.requests.insert((r.from.clone(), r.to.clone()), r);
            }
            RelationChange::DeleteRequest { from, to } => {
                self.requests.remove(&(from, to));
            }
        }
    }

    /// Deletes every row that names `user`, on either side.
    fn drop_user(&mut self, user: &str) {
        let names = |(a, b): &(String, String)| a == user || b == user;
        self.friends.retain(|k, _| !names(k));
        self.blacklist.retain(|k, _| !names(k));
        self.requests.retain(|k, _| !names(k));
    }
}

/// Renditions in the order the index returns them: original, large, thumbnail.
fn rendition_rank(kind: RenditionKind) -> u8 {
    match kind {
        RenditionKind::Original => 1,
        RenditionKind::Large => 2,
        RenditionKind::Thumb => 3,
    }
}

impl Media {
    fn expire(&mut self, before: i64, limit: usize) -> usize {
        let mut old: Vec<(i64, String)> =
            self.items.values().filter(|i| i.last_used < before).map(|i| (i.last_used, i.uuid.clone())).collect();
        old.sort_unstable();
        old.truncate(limit);
        let mut gone = 0;
        for (_, uuid) in old {
            if let Some(item) = self.items.remove(&uuid) {
                self.grants.retain(|(u, _)| *u != uuid);
                self.doomed.extend(item.blobs());
                gone += 1;
            }
        }
        let mut abandoned: Vec<(i64, String)> =
            self.uploads.iter().filter(|&(_, &started)| started < before).map(|(u, &s)| (s, u.clone())).collect();
        abandoned.sort_unstable();
        abandoned.truncate(limit.saturating_sub(gone));
        for (_, uuid) in abandoned {
            self.uploads.remove(&uuid);
            self.doomed.extend(possible_blobs(&uuid));
            gone += 1;
        }
        gone
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn import_accounts(&self, accounts: Vec<NewAccount>, _now: i64) -> Result<(), StoreError> {
        self.state().import_accounts(accounts);
        Ok(())
    }

    async fn delete_accounts(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        let mut state = self.state();
        Ok(ids.iter().map(|id| state.delete_account(id)).collect())
    }

    async fn accounts_exist(&self, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        let state = self.state();
        Ok(ids.iter().map(|id| state.uids.contains_key(id)).collect())
    }

    async fn revoke_sigs(&self, id: String, before: i64) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(uid) = state.uid(&id) else {
            return Ok(false);
        };
        if let Some(account) = state.accounts.get_mut(&uid) {
            account.revoked_before = before;
        }
        Ok(true)
    }

    async fn revocations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let state = self.state();
        Ok(state.accounts.values().filter(|a| a.revoked_before > 0).map(|a| (a.id.clone(), a.revoked_before)).collect())
    }

    async fn set_mute(&self, id: String, mute: Mute) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(uid) = state.uid(&id) else {
            return Ok(false);
        };
        if let Some(account) = state.accounts.get_mut(&uid) {
            account.mute = mute;
        }
        Ok(true)
    }

    async fn mutes(&self) -> Result<Vec<(String, Mute)>, StoreError> {
        let state = self.state();
        Ok(state.accounts.values().filter(|a| a.mute != Mute::default()).map(|a| (a.id.clone(), a.mute)).collect())
    }

    async fn set_profile(
        &self,
        id: String,
        items: Vec<(String, ProfileValue)>,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let uid = state.uid(&id);
        let Some(account) = uid.and_then(|uid| state.accounts.get_mut(&uid)) else {
            return Ok(false);
        };
        account.profile.extend(items);
        if let Some(event) = event {
            state.queue_event(event, None);
        }
        Ok(true)
    }

    async fn profiles(
        &self,
        ids: Vec<String>,
        tags: Vec<String>,
    ) -> Result<Vec<Option<Vec<(String, ProfileValue)>>>, StoreError> {
        let state = self.state();
        let profile = |id: &String| -> Option<Vec<(String, ProfileValue)>> {
            let account = state.accounts.get(&state.uid(id)?)?;
            Some(tags.iter().filter_map(|t| Some((t.clone(), account.profile.get(t)?.clone()))).collect())
        };
        Ok(ids.iter().map(profile).collect())
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    fn set_delivery_hook(&self, hook: DeliveryHook) {
        let _ = self.hook.set(hook);
    }

    async fn send(&self, plan: SendPlan) -> Result<SendOutcome, StoreError> {
        Ok(self.deliver(|s| s.send(&plan)))
    }

    async fn import(&self, msg: Import, offline_until: i64, max_conversations: usize) -> Result<Imported, StoreError> {
        Ok(self.deliver(|s| s.import(&msg, offline_until, max_conversations)))
    }

    async fn history(&self, q: HistoryQuery) -> Result<HistoryPage, StoreError> {
        Ok(self.state().history(&q))
    }

    async fn withdraw(
        &self,
        from: String,
        to: String,
        key: MsgKey,
        by: String,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<Withdrawn, StoreError> {
        Ok(self.deliver(|s| s.withdraw(&from, &to, key, &by, log_expire_at, event)))
    }

    async fn set_read(
        &self,
        owner: String,
        peer: String,
        time: i64,
        log_expire_at: i64,
        event: Option<AfterEvent>,
    ) -> Result<bool, StoreError> {
        Ok(self.deliver(|s| s.set_read(&owner, &peer, time, log_expire_at, event)))
    }

    async fn ack_receipts(
        &self,
        reader: String,
        sender: String,
        keys: Vec<MsgKey>,
        time: i64,
        log_expire_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        Ok(self.deliver(|s| s.ack_receipts(&reader, &sender, &keys, time, log_expire_at)))
    }

    async fn find_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
    ) -> Result<Vec<Option<StoredMessage>>, StoreError> {
        Ok(self.state().find_messages(&owner, &peer, &keys))
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchPage, StoreError> {
        Ok(self.state().search(&q))
    }

    async fn unread(&self, owner: String, peers: Vec<String>) -> Result<Vec<u64>, StoreError> {
        let state = self.state();
        let Some(o) = state.uid(&owner) else {
            return Ok(vec![0; peers.len()]);
        };
        let count = |p: &String| state.uid(p).and_then(|p| state.conversation(o, p)).map_or(0, |c| c.unread);
        Ok(peers.iter().map(count).collect())
    }

    async fn unread_total(&self, owner: String) -> Result<u64, StoreError> {
        let state = self.state();
        let Some(o) = state.uid(&owner) else { return Ok(0) };
        let counted = |p: &Uid| state.settings.get(&(o, *p)).is_none_or(|s| s.receive == ReceiveOpt::Receive);
        let rows = state.conversations.get(&o);
        Ok(rows.map_or(0, |rows| rows.iter().filter(|(p, _)| counted(p)).map(|(_, c)| c.unread).sum()))
    }

    async fn latest_seq(&self, user: String) -> Result<Option<u64>, StoreError> {
        let state = self.state();
        Ok(state.uid(&user).map(|uid| state.logs.get(&uid).map_or(0, |l| l.last)))
    }

    async fn log_after(&self, user: String, after: u64, limit: usize, max_bytes: usize) -> Result<LogPage, StoreError> {
        Ok(self.state().log_after(&user, after, limit, max_bytes))
    }

    async fn conversations(&self, user: String, limit: usize) -> Result<Vec<ConversationView>, StoreError> {
        Ok(self.state().conversations(&user, limit))
    }

    async fn update_conversation(
        &self,
        owner: String,
        peer: String,
        change: SettingsChange,
        now: i64,
        log_expire_at: i64,
    ) -> Result<Option<ConversationSettings>, StoreError> {
        Ok(self.deliver(|s| s.update_conversation(&owner, &peer, &change, now, log_expire_at)))
    }

    async fn modify(&self, edit: Edit, log_expire_at: i64) -> Result<Modified, StoreError> {
        Ok(self.deliver(|s| s.modify(&edit, log_expire_at)))
    }

    async fn delete_messages(
        &self,
        owner: String,
        peer: String,
        keys: Vec<MsgKey>,
        log_expire_at: i64,
    ) -> Result<Vec<bool>, StoreError> {
        Ok(self.deliver(|s| s.delete_messages(&owner, &peer, &keys, log_expire_at)))
    }

    async fn clear_conversation(
        &self,
        owner: String,
        peer: String,
        clear_history: bool,
        delete_conversation: bool,
        log_expire_at: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.deliver(|s| s.clear_conversation(&owner, &peer, clear_history, delete_conversation, log_expire_at)))
    }

    async fn purge(&self, cutoffs: Cutoffs) -> Result<Purged, StoreError> {
        Ok(self.state().purge(cutoffs))
    }
}

#[async_trait]
impl MessageExport for MemoryStore {
    async fn export_messages(
        &self,
        start: i64,
        end: i64,
        after: Option<ExportCursor>,
        limit: usize,
    ) -> Result<ExportPage, StoreError> {
        Ok(self.state().export_messages(start, end, after, limit))
    }
}

#[async_trait]
impl PushStore for MemoryStore {
    async fn register_device(&self, device: PushDevice) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(uid) = state.uid(&device.user) else {
            return Ok(false);
        };
        let key = (uid, device.device.clone());
        state.remove_devices(|k, d| *k != key && d.provider == device.provider && d.token == device.token);
        // Pushes queued for the device stay: they go to its new token.
        state.push_devices.insert(key, device);
        Ok(true)
    }

    async fn unregister_devices(&self, user: String, device: Option<String>) -> Result<(), StoreError> {
        let mut state = self.state();
        let Some(uid) = state.uid(&user) else {
            return Ok(());
        };
        state.remove_devices(|(u, d), _| *u == uid && device.as_ref().is_none_or(|device| d == device));
        Ok(())
    }

    async fn remove_push_token(&self, provider: ProviderKind, token: String) -> Result<u64, StoreError> {
        Ok(self.state().remove_devices(|_, d| d.provider == provider && d.token == token))
    }

    async fn device_seen(&self, user: String, device: String, at: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(uid) = state.uid(&user)
            && let Some(d) = state.push_devices.get_mut(&(uid, device))
        {
            d.seen_at = d.seen_at.max(at);
        }
        Ok(())
    }

    async fn push_devices(&self) -> Result<Vec<PushDevice>, StoreError> {
        Ok(self.state().push_devices.values().cloned().collect())
    }

    async fn claim_pushes(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedPush>, StoreError> {
        let mut state = self.state();
        let mut due: Vec<(i64, u64)> = state
            .outbox
            .iter()
            .filter(|(_, row)| row.next_at <= now && row.lease_until <= now)
            .map(|(id, row)| (row.next_at, *id))
            .collect();
        due.sort_unstable();
        let mut claimed = Vec::new();
        for (_, id) in due {
            if claimed.len() == limit {
                break;
            }
            let row = &state.outbox[&id];
            let device = state.push_devices.get(&(row.uid, row.device.clone())).cloned();
            let message = state.messages.get(&row.msg).and_then(|m| {
                Some(PushMessage {
                    from: state.name(m.sender)?.to_owned(),
                    to: state.name(m.receiver)?.to_owned(),
                    key: m.key,
                    body: m.body.clone(),
                    push_info: m.push_info.clone(),
                    sender_nick: m.sender_info.nick.clone(),
                })
            });
            let (Some(device), Some(message)) = (device, message) else {
                state.outbox.remove(&id);
                continue;
            };
            let uid = state.outbox[&id].uid;
            let unread = state.conversations.get(&uid).map_or(0, |rows| rows.values().map(|c| c.unread).sum());
            let row = state.outbox.get_mut(&id).expect("the row is there");
            row.lease_until = lease_until;
            row.lease_owner = Some(owner.clone());
            claimed.push(QueuedPush { id, device, message, attempts: row.attempts, queued_at: row.queued_at, unread });
        }
        Ok(claimed)
    }

    async fn settle_pushes(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        let mut state = self.state();
        for (id, settle) in settled {
            match settle {
                Settle::Done => {
                    state.outbox.remove(&id);
                }
                Settle::Retry { at } => {
                    if let Some(row) = state.outbox.get_mut(&id) {
                        row.attempts += 1;
                        row.next_at = at;
                        row.lease_owner = None;
                        row.lease_until = 0;
                    }
                }
                Settle::Release => {
                    if let Some(row) = state.outbox.get_mut(&id) {
                        row.lease_owner = None;
                        row.lease_until = 0;
                    }
                }
            }
        }
        Ok(())
    }

    async fn release_pushes(&self, owner: String) -> Result<(), StoreError> {
        let mut state = self.state();
        for row in state.outbox.values_mut().filter(|r| r.lease_owner.as_deref() == Some(owner.as_str())) {
            row.lease_owner = None;
            row.lease_until = 0;
        }
        Ok(())
    }

    async fn push_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let state = self.state();
        Ok((state.outbox.len() as u64, state.outbox.values().map(|r| r.queued_at).min()))
    }

    async fn set_dnd(&self, user: String, dnd: Option<Dnd>) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(uid) = state.uid(&user) else { return Ok(false) };
        match dnd {
            Some(d) => state.dnd.insert(uid, d),
            None => state.dnd.remove(&uid),
        };
        Ok(true)
    }

    async fn dnds(&self) -> Result<Vec<(String, Dnd)>, StoreError> {
        let state = self.state();
        Ok(state.dnd.iter().filter_map(|(uid, d)| Some((state.name(*uid)?.to_owned(), *d))).collect())
    }
}

#[async_trait]
impl RelationStore for MemoryStore {
    async fn load_relations(&self, user: String) -> Result<RelationData, StoreError> {
        Ok(self.state().relations.load(&user))
    }

    async fn apply_relations(&self, changes: Vec<RelationChange>, events: Vec<AfterEvent>) -> Result<(), StoreError> {
        let mut state = self.state();
        for change in changes {
            state.relations.apply(change);
        }
        for event in events {
            state.queue_event(event, None);
        }
        Ok(())
    }
}

#[async_trait]
impl OpsStore for MemoryStore {
    async fn check_writable(&self) -> Result<(), StoreError> {
        drop(self.state());
        Ok(())
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let state = self.state();
        Ok(StoreStats { accounts: state.accounts.len() as u64, messages: state.messages.len() as u64, bytes: None })
    }
}

#[async_trait]
impl CallbackStore for MemoryStore {
    async fn queue_events(&self, events: Vec<AfterEvent>, _now: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        for event in events {
            state.queue_event(event, None);
        }
        Ok(())
    }

    async fn claim_events(
        &self,
        owner: String,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let mut state = self.state();
        // Users with an earlier event held or waiting: their later events wait too.
        let mut blocked = std::collections::HashSet::new();
        let mut claimed = Vec::new();
        for (id, row) in state.events.iter_mut() {
            if claimed.len() == limit {
                break;
            }
            if blocked.contains(&row.event.user) {
                continue;
            }
            if row.next_at > now || row.lease_until > now {
                blocked.insert(row.event.user.clone());
                continue;
            }
            row.lease_owner = Some(owner.clone());
            row.lease_until = lease_until;
            let event = row.event.clone();
            claimed.push(QueuedEvent { id: *id, event, attempts: row.attempts, queued_at: row.queued_at });
        }
        Ok(claimed)
    }

    async fn settle_events(&self, settled: Vec<(u64, Settle)>) -> Result<(), StoreError> {
        let mut state = self.state();
        for (id, settle) in settled {
            let Some(row) = state.events.get_mut(&id) else { continue };
            match settle {
                Settle::Done => {
                    state.events.remove(&id);
                }
                Settle::Retry { at } => {
                    (row.attempts, row.next_at, row.lease_owner, row.lease_until) = (row.attempts + 1, at, None, 0);
                }
                Settle::Release => (row.lease_owner, row.lease_until) = (None, 0),
            }
        }
        Ok(())
    }

    async fn release_events(&self, owner: String) -> Result<(), StoreError> {
        let mut state = self.state();
        for row in state.events.values_mut().filter(|r| r.lease_owner.as_deref() == Some(owner.as_str())) {
            (row.lease_owner, row.lease_until) = (None, 0);
        }
        Ok(())
    }

    async fn event_backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        let state = self.state();
        Ok((state.events.len() as u64, state.events.values().map(|r| r.queued_at).min()))
    }
}

#[async_trait]
impl MediaIndex for MemoryStore {
    async fn begin(&self, uuid: String, now: i64) -> Result<(), StoreError> {
        self.state().media.uploads.insert(uuid, now);
        Ok(())
    }

    async fn insert(&self, mut item: MediaItem) -> Result<(), StoreError> {
        let mut state = self.state();
        let media = &mut state.media;
        if media.items.contains_key(&item.uuid) {
            return Err(StoreError::Backend(format!("media item {} exists already", item.uuid).into()));
        }
        media.uploads.remove(&item.uuid);
        if let Some(image) = &mut item.image {
            image.renditions.sort_by_key(|r| rendition_rank(r.kind));
        }
        media.items.insert(item.uuid.clone(), item);
        Ok(())
    }

    async fn abandon(&self, uuid: String) -> Result<(), StoreError> {
        let mut state = self.state();
        let media = &mut state.media;
        if media.uploads.remove(&uuid).is_some() {
            media.doomed.extend(possible_blobs(&uuid));
        }
        Ok(())
    }

    async fn get(&self, uuids: Vec<String>) -> Result<Vec<Option<MediaItem>>, StoreError> {
        let state = self.state();
        let media = &state.media;
        Ok(uuids.iter().map(|u| media.items.get(u).cloned()).collect())
    }

    async fn granted(&self, uuid: String, user: String) -> Result<bool, StoreError> {
        Ok(self.state().media.grants.contains(&(uuid, user)))
    }

    async fn grant(&self, uuids: Vec<String>, users: Vec<String>, now: i64) -> Result<Vec<String>, StoreError> {
        let mut state = self.state();
        let media = &mut state.media;
        let mut granted = Vec::with_capacity(uuids.len());
        for uuid in uuids {
            let Some(item) = media.items.get_mut(&uuid) else { continue };
            item.last_used = item.last_used.max(now);
            media.grants.extend(users.iter().map(|user| (uuid.clone(), user.clone())));
            granted.push(uuid);
        }
        Ok(granted)
    }

    async fn expire(&self, before: i64, limit: usize) -> Result<usize, StoreError> {
        Ok(self.state().media.expire(before, limit))
    }

    async fn doomed(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        Ok(self.state().media.doomed.iter().take(limit).cloned().collect())
    }

    async fn forget_doomed(&self, keys: Vec<String>) -> Result<(), StoreError> {
        let mut state = self.state();
        let media = &mut state.media;
        for key in &keys {
            media.doomed.remove(key);
        }
        Ok(())
    }

    async fn forget_users(&self, users: Vec<String>) -> Result<(), StoreError> {
        let mut state = self.state();
        let media = &mut state.media;
        media.grants.retain(|(_, user)| !users.contains(user));
        for item in media.items.values_mut().filter(|i| users.contains(&i.owner)) {
            item.owner.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::store::conformance::Backend;

    fn backend() -> Backend<MemoryStore, MemoryStore> {
        Backend::new(MemoryStore::new(), MemoryStore::new())
    }

    crate::store_conformance_suite!(backend());
}

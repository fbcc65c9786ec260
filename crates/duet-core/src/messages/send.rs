//! One send, as one domain operation in named stages, each run once, in this order:
//!
//! 1. **validate**: the content checks its limits and encodes itself ([`Content::validate`]);
//! 2. **permit**: a client send from a muted sender is refused (20012, and the app's backend is not
//!    asked); for a user's send, the permission policy (friends-only, blacklists), which may refuse
//!    the message or drop it silently; the admin's sends pass; then the app's before-send callback
//!    ([`crate::callbacks`], for a send that names its [`CallbackSource`]), which may refuse, drop or
//!    rewrite it (a rewritten content is checked again);
//! 3. **media grants**: the uploads the message names are granted to the sender and to the recipients
//!    it reaches, and the content takes the server's description of them ([`Content::describe`]);
//! 4. **store**: the commit ([`Prepared::commit`]); a retry within the dedup window is answered with
//!    the first send's result;
//! 5. **fan-out**: the entries the commit appended go to the store's delivery subscribers (the hub,
//!    which pushes them to live devices), in commit order. An online-only message skips the store and
//!    goes straight to them.
//!
//! Stages 1–3 are [`Messages::prepare_send`], which may read the store (a cold relation cache, the accounts
//! a grant needs); stage 4 enters the store's queue before it awaits anything. A transport that answers
//! requests out of order (a WebSocket) awaits each send's preparation in frame order and then starts
//! its commit, so that a connection's sends are stored in frame order.
//!
//! The content stays the transport's own type (the wire's message elements): the domain only asks it
//! which uploads it names, hands it the server's description of them, and takes its encoded form.

use std::sync::Arc;

use super::Messages;
use crate::callbacks::{self, AfterEvent, BeforeSendMsg, BeforeSendVerdict, Command, Source};
use crate::error::Error;
use crate::media::{AttachError, MediaItem};
use crate::model::{Delivery, Outgoing, TAG_IMAGE, TAG_NICK};
use crate::model::{LogEntry, LogEvent, MsgKey, ProfileValue, SenderCopy, SenderInfo, Sent, StoredMessage};
use crate::relations::{SendRefusal, Verdict};
use crate::store::{SendOutcome, SendPlan};

/// Who asks for a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// The sender's own device: the permission policy applies.
    Client,
    /// An app admin (the REST API), sending as itself or as any user: no permission policy.
    Admin(&'a str),
}

impl Origin<'_> {
    /// The door the send came through, as the metrics name it: `client` or `rest`.
    pub fn path(&self) -> &'static str {
        match self {
            Origin::Client => "client",
            Origin::Admin(_) => "rest",
        }
    }
}

/// A message's content as the transport holds it.
pub trait Content: Send {
    /// Why the content was refused (the transport's own error, with its codes).
    type Error;
    /// Checks the content's limits and encodes it; called once, first.
    fn validate(&mut self) -> Result<(), Self::Error>;
    /// The upload ids the content names, in order.
    fn uploads(&self) -> Vec<String>;
    /// Takes the server's description of the uploads (one per id of [`Content::uploads`]; `None` for an
    /// id Duet does not hold) and checks its limits again if that changed it: they hold for what is stored.
    fn describe(&mut self, items: Vec<Option<MediaItem>>) -> Result<(), Self::Error>;
    /// What the app's before-send callback is shown: `MsgBody` as compact JSON, and `CloudCustomData`.
    /// Called after [`Content::validate`].
    fn shown(&self) -> (String, String);
    /// Takes the `MsgBody` (a JSON array) and `CloudCustomData` the app's backend returned in place of the
    /// message's (either may be absent), checked as a client's content is.
    fn rewrite(
        &mut self,
        body: Option<serde_json::Value>,
        cloud_custom_data: Option<String>,
    ) -> Result<(), Self::Error>;
    /// The stored form, as validated.
    fn encode(self) -> Encoded;
}

/// The stored form of a message's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    /// `MsgBody` as compact JSON.
    pub body: String,
    pub cloud_custom_data: String,
    /// `OfflinePushInfo` as JSON.
    pub push_info: Option<String>,
}

/// Content already in its stored form that names no uploads, for callers that build messages themselves
/// (tools, the domain's own tests).
impl Content for Encoded {
    type Error = std::convert::Infallible;

    fn validate(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn uploads(&self) -> Vec<String> {
        Vec::new()
    }

    fn describe(&mut self, _: Vec<Option<MediaItem>>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn shown(&self) -> (String, String) {
        (self.body.clone(), self.cloud_custom_data.clone())
    }

    fn rewrite(
        &mut self,
        body: Option<serde_json::Value>,
        cloud_custom_data: Option<String>,
    ) -> Result<(), Self::Error> {
        if let Some(body) = body {
            self.body = body.to_string();
        }
        if let Some(data) = cloud_custom_data {
            self.cloud_custom_data = data;
        }
        Ok(())
    }

    fn encode(self) -> Encoded {
        self
    }
}

/// A send as the transport read it: everything but the content, which the stages finish.
#[derive(Debug, Clone)]
pub struct Draft<C> {
    pub from: String,
    /// One recipient, or several for a batch send (all share one `MsgKey`).
    pub to: Vec<String>,
    pub seq: Option<u32>,
    pub random: u32,
    pub content: C,
    /// Seconds the message waits for an offline recipient; `0` = online only, never stored.
    pub lifetime_secs: u32,
    pub sender_copy: SenderCopy,
    pub no_unread: bool,
    pub no_last_msg: bool,
    pub need_read_receipt: bool,
    /// Where the send came from, for the app's callbacks; `None`: no callback (a batch send, an import, a
    /// tool's).
    pub callback: Option<CallbackSource>,
}

/// Where a send came from, and which of the app's callbacks it passes (`ForbidCallbackControl` may forbid
/// either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackSource {
    pub source: Source,
    /// `C2C.CallbackBeforeSendMsg`.
    pub before_send: bool,
    /// `C2C.CallbackAfterSendMsg`.
    pub after_send: bool,
}

impl CallbackSource {
    /// Both callbacks, from `source`.
    pub fn both(source: Source) -> CallbackSource {
        CallbackSource { source, before_send: true, after_send: true }
    }
}

/// Why a send was refused before it was stored.
#[derive(Debug)]
pub enum SendError<E> {
    /// The content (its limits, its elements).
    Content(E),
    /// The domain: the permission policy, an upload the sender may not read, the store.
    Domain(Error),
}

impl<E> From<Error> for SendError<E> {
    fn from(e: Error) -> SendError<E> {
        SendError::Domain(e)
    }
}

/// A send that passed validation, the permission policy and the media grants: what is left is the
/// commit.
#[must_use = "a prepared send does nothing until committed"]
#[derive(Debug)]
pub struct Prepared {
    msg: Outgoing,
    /// Where the send came from and when it began, for its metrics (`duet_messages_total`,
    /// `duet_send_ack_seconds`).
    path: &'static str,
    began: std::time::Instant,
    /// The permission policy drops the message silently: answered as sent, stored nowhere.
    dropped: bool,
    /// The after-send callback's event, to be committed with the message (its key, time and unread count
    /// filled in then).
    after_send: Option<AfterEvent>,
}

impl Messages {
    /// A whole send, stages 1 to 5, for callers that do not pipeline sends.
    pub async fn send<C: Content>(&self, origin: Origin<'_>, draft: Draft<C>) -> Result<Sent, SendError<C::Error>> {
        Ok(self.prepare_send(origin, draft).await?.commit(self).await?)
    }

    /// Stages 1–3 of a send (see the module's documentation).
    pub async fn prepare_send<C: Content>(
        &self,
        origin: Origin<'_>,
        draft: Draft<C>,
    ) -> Result<Prepared, SendError<C::Error>> {
        let began = std::time::Instant::now();
        match self.prepare(origin, draft).await {
            Ok(prepared) => Ok(Prepared { began, ..prepared }),
            Err(e) => {
                let outcome = match &e {
                    SendError::Content(_) => "invalid",
                    SendError::Domain(Error::Store(_)) => "error",
                    SendError::Domain(_) => "refused",
                };
                metrics::counter!("duet_messages_total", "path" => origin.path(), "outcome" => outcome).increment(1);
                Err(e)
            }
        }
    }

    async fn prepare<C: Content>(&self, origin: Origin<'_>, draft: Draft<C>) -> Result<Prepared, SendError<C::Error>> {
        let Draft {
            from,
            to,
            seq,
            random,
            mut content,
            lifetime_secs,
            sender_copy,
            no_unread,
            no_last_msg,
            need_read_receipt,
            callback,
        } = draft;
        // 1. Validate.
        content.validate().map_err(SendError::Content)?;
        // What the app's callbacks are shown of the message as it stands (`None`: no callback).
        let shown = |content: &C| {
            let (Some(c), [one]) = (&callback, &to[..]) else { return None };
            let (body, cloud_custom_data) = content.shown();
            Some(BeforeSendMsg {
                from: from.clone(),
                to: one.clone(),
                seq: seq.unwrap_or(0),
                random,
                time: self.clock.now_secs(),
                online_only: lifetime_secs == 0,
                body,
                cloud_custom_data,
                platform: c.source.platform,
                client_ip: c.source.client_ip.clone(),
            })
        };
        let after_send = callback.as_ref().is_some_and(|c| c.after_send);
        // 2. Permit: first the sender's mute, for every client send (an admin's own device's too: the mute
        // was set on that account); then the permission policy, for a user's send. What the policy reads
        // about the recipient (its account, its relations) is what the grants use.
        let mut recipient_exists = None;
        let mut dropped = false;
        let (caller, admin) = match origin {
            Origin::Client => (None, self.accounts.is_admin(&from)),
            Origin::Admin(caller) => (Some(caller), true),
        };
        let permit = if origin == Origin::Client && self.accounts.c2c_muted(&from) {
            Err(Error::Refused(SendRefusal::Muted))
        } else if let (false, [one]) = (admin, &to[..]) {
            self.relations.permit(&from, one).await.map(Some)
        } else {
            Ok(None)
        };
        match permit {
            Err(Error::Refused(why)) => {
                // The after-send callback tells of refused sends too (Tencent's `SendMsgResult`).
                if let Some(msg) = shown(&content).filter(|_| after_send) {
                    let kind = callbacks::after_send(&msg, why.code(), &why.to_string(), -1);
                    let event = self.notifier.event(&from, msg.platform, msg.client_ip.as_deref(), kind);
                    self.notifier.queue(event.into_iter().collect()).await?;
                }
                return Err(Error::Refused(why).into());
            }
            Err(e) => return Err(e.into()),
            Ok(Some((verdict, exists))) => {
                recipient_exists = exists;
                dropped = verdict == Verdict::Drop;
            }
            Ok(None) => {}
        }
        // The app's before-send callback, which may refuse, drop or rewrite what the policy let through.
        if let (false, Some(hook), Some(msg)) =
            (dropped, &self.before_send, shown(&content).filter(|_| callback.as_ref().is_some_and(|c| c.before_send)))
        {
            match hook.before_send(msg).await {
                BeforeSendVerdict::Allow { body: None, cloud_custom_data: None } => {}
                BeforeSendVerdict::Allow { body, cloud_custom_data } => {
                    content.rewrite(body, cloud_custom_data).map_err(SendError::Content)?;
                }
                BeforeSendVerdict::Refuse { code, info } => return Err(Error::CallbackRefused { code, info }.into()),
                BeforeSendVerdict::Drop => dropped = true,
            }
        }
        // 3. Media grants: only to the participants the message reaches.
        if !dropped {
            let caller = caller.unwrap_or(&from);
            self.grant(caller, admin, &from, &to, recipient_exists, &mut content).await?;
        }
        // The after-send callback's event, of the message as it will be stored (its key, time and unread
        // count are the commit's).
        let wanted = after_send && !dropped && self.notifier.wants(Command::AfterSendMsg);
        let after_send = wanted.then(|| shown(&content)).flatten().and_then(|msg| {
            let kind = callbacks::after_send(&msg, 0, "send msg succeed", 0);
            self.notifier.event(&from, msg.platform, msg.client_ip.as_deref(), kind)
        });
        let Encoded { body, cloud_custom_data, push_info } = content.encode();
        let msg = Outgoing {
            from,
            to,
            seq,
            random,
            body,
            cloud_custom_data,
            push_info,
            lifetime_secs,
            sender_copy,
            no_unread,
            no_last_msg,
            need_read_receipt,
        };
        Ok(Prepared { msg, dropped, after_send, path: origin.path(), began: std::time::Instant::now() })
    }

    /// The sender and the recipients a send reaches, to grant its uploads to: `None` if the sender does
    /// not exist or no recipient is left. Recipients that do not exist (yet) are left out, so that
    /// registering a UserID later gives no access to what was sent to it before; so are those the
    /// permission policy refuses or drops the message for (a refusal ends the send before this).
    /// `recipient_exists`: what the permit stage learnt of the one recipient, if anything.
    async fn reached(
        &self,
        from: &str,
        to: &[String],
        recipient_exists: Option<bool>,
    ) -> Result<Option<Vec<String>>, Error> {
        // What the permit stage did not learn is read here, once.
        let mut ids = vec![from.to_owned()];
        if recipient_exists.is_none() {
            ids.extend(to.iter().cloned());
        }
        let exist = self.store.accounts_exist(ids).await?;
        if !exist[0] {
            return Ok(None);
        }
        let recipient_exists = |i: usize| recipient_exists.unwrap_or_else(|| exist[1 + i]);
        let mut participants = vec![from.to_owned()];
        for (i, to) in to.iter().enumerate() {
            if recipient_exists(i) && !participants.contains(to) {
                participants.push(to.clone());
            }
        }
        Ok((participants.len() > 1 || to.iter().any(|r| r == from)).then_some(participants))
    }
}

impl Prepared {
    /// Stage 4 and 5: commits the send (nothing is awaited before it enters the store's queue) and
    /// answers once it is durable; the commit's entries then reach the delivery subscribers. A message
    /// the permission policy drops is answered like a sent one (a fresh `MsgKey`, the current time) but
    /// stored and delivered nowhere, so `conv_seq` and `sender_log_seq` are 0.
    pub async fn commit(self, messages: &Messages) -> Result<Sent, Error> {
        let (path, began, recipients) = (self.path, self.began, self.msg.to.len());
        let sent = if self.dropped {
            let time = messages.clock.now_secs();
            let key = MsgKey { seq: self.msg.seq.unwrap_or_else(rand::random), random: self.msg.random, time };
            Ok(Sent { key, failed: Vec::new(), duplicate: false, conv_seq: 0, sender_log_seq: 0 })
        } else {
            messages.commit_send(self.msg, self.after_send).await
        };
        let outcome = match &sent {
            Ok(_) if self.dropped => "dropped",
            Ok(s) if s.duplicate => "duplicate",
            // No recipient exists: nothing was stored (REST answers 90012).
            Ok(s) if s.failed.len() >= recipients => "refused",
            Ok(_) => "sent",
            Err(_) => "error",
        };
        metrics::counter!("duet_messages_total", "path" => path, "outcome" => outcome).increment(1);
        if outcome != "refused" && sent.is_ok() {
            metrics::histogram!("duet_send_ack_seconds", "path" => path).record(began.elapsed());
        }
        sent
    }

    /// The message as it will be stored.
    pub fn message(&self) -> &Outgoing {
        &self.msg
    }
}

impl Messages {
    /// Stage 4 of a send: the store's commit (or, online only, the live devices at once).
    ///
    /// A retry (same sender, recipients, `MsgSeq`, `MsgRandom` and content) within the dedup window is
    /// answered with the first send's result and stores nothing new. An online-only message
    /// (`lifetime_secs` 0) is pushed to live devices and never stored.
    async fn commit_send(&self, msg: Outgoing, mut after_send: Option<AfterEvent>) -> Result<Sent, Error> {
        let now_ms = self.clock.now_ms();
        let time = now_ms.div_euclid(1000);
        if msg.lifetime_secs == 0 {
            // Never stored, so never ordered against stored messages: any MsgSeq will do.
            let key = MsgKey { seq: msg.seq.unwrap_or_else(rand::random), random: msg.random, time };
            let sent = self.send_online_only(msg, key).await?;
            // Nothing is committed: its callback is, on its own, once the message went out.
            if let Some(mut event) = after_send.filter(|_| sent.failed.is_empty()) {
                event.fill(Some(key), None);
                self.notifier.queue(vec![event]).await?;
            }
            return Ok(sent);
        }
        if let Some(event) = &mut after_send {
            event.fill(Some(MsgKey { seq: msg.seq.unwrap_or(0), random: msg.random, time }), None);
        }
        let dedup_key = dedup_key(&msg);
        let push = self.push.queues(&msg);
        let offline_until = time + i64::from(msg.lifetime_secs).min(self.retention.offline_secs);
        let plan = SendPlan {
            msg,
            time,
            dedup_key,
            dedup_since_ms: now_ms - self.retention.dedup_window_secs * 1000,
            now_ms,
            offline_until,
            max_conversations: self.retention.recent_contacts_max,
            push,
            after_send,
        };
        match self.store.send(plan).await? {
            SendOutcome::Sent(sent) => {
                self.notifier.wake();
                Ok(sent)
            }
            SendOutcome::Duplicate(sent) => Ok(sent),
            SendOutcome::NoSuchSender(from) => Err(Error::NoSuchSender(from)),
        }
    }

    async fn send_online_only(&self, msg: Outgoing, key: MsgKey) -> Result<Sent, Error> {
        let mut ids = vec![msg.from.clone()];
        ids.extend(msg.to.iter().cloned());
        let exist = self.store.accounts_exist(ids).await?;
        if !exist[0] {
            return Err(Error::NoSuchSender(msg.from));
        }
        let tags = vec![TAG_NICK.to_owned(), TAG_IMAGE.to_owned()];
        let profile = self.store.profiles(vec![msg.from.clone()], tags).await?.pop().flatten().unwrap_or_default();
        let text = |tag: &str| {
            profile.iter().find(|(t, _)| t == tag).and_then(|(_, v)| match v {
                ProfileValue::Text(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
        };
        let sender = SenderInfo { nick: text(TAG_NICK), face_url: text(TAG_IMAGE) };
        let mut failed = Vec::new();
        let mut deliveries = Vec::new();
        for (to, exists) in msg.to.iter().zip(&exist[1..]) {
            if !exists {
                failed.push(to.clone());
                continue;
            }
            let stored =
                Arc::new(StoredMessage::fresh(&msg.from, to, key, 0, &msg.body, &msg.cloud_custom_data, &sender));
            let entry = LogEntry { seq: 0, event: LogEvent::Message(stored) };
            let copy = (msg.sender_copy == SenderCopy::Sync && *to != msg.from).then(|| entry.clone());
            deliveries.push(Delivery { user: to.clone(), entry });
            if let Some(entry) = copy {
                deliveries.push(Delivery { user: msg.from.clone(), entry });
            }
        }
        self.fanout.deliver(&deliveries);
        Ok(Sent { key, failed, duplicate: false, conv_seq: 0, sender_log_seq: 0 })
    }

    /// The media grants of an import (the admin's): the uploads `content` names are granted to `from` and
    /// `to`, when both exist, and `content` takes the server's description of them.
    pub async fn grant_import_media<C: Content>(
        &self,
        caller: &str,
        from: &str,
        to: &str,
        content: &mut C,
    ) -> Result<(), SendError<C::Error>> {
        self.grant(caller, true, from, &[to.to_owned()], None, content).await
    }

    /// Grants the uploads `content` names to the participants a message from `from` to `to` reaches (see
    /// [`Messages::reached`]), as `caller` asks, and gives `content` the server's description of them.
    async fn grant<C: Content>(
        &self,
        caller: &str,
        admin: bool,
        from: &str,
        to: &[String],
        recipient_exists: Option<bool>,
        content: &mut C,
    ) -> Result<(), SendError<C::Error>> {
        let uploads = content.uploads();
        let Some(media) = &self.media else { return Ok(()) };
        if uploads.is_empty() {
            return Ok(());
        }
        let Some(participants) = self.reached(from, to, recipient_exists).await? else { return Ok(()) };
        let items = media.attach(caller, admin, &participants, uploads).await.map_err(|e| match e {
            AttachError::Forbidden(uuid) => Error::MediaForbidden(uuid),
            AttachError::Store(e) => Error::Store(e),
        })?;
        content.describe(items).map_err(SendError::Content)
    }
}

/// Identifies retries of one message: sender, recipients, `MsgSeq` (or its absence), `MsgRandom`, content.
fn dedup_key(msg: &Outgoing) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(msg.from.as_bytes());
    for to in &msg.to {
        field(to.as_bytes());
    }
    match msg.seq {
        Some(seq) => field(&seq.to_le_bytes()),
        None => field(b""),
    }
    field(&msg.random.to_le_bytes());
    field(msg.body.as_bytes());
    field(msg.cloud_custom_data.as_bytes());
    let digest = h.finalize();
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

//! What a push provider is to the domain: a client of one maker's push service that sends one
//! [`Notification`] to one device token and says what became of it. The HTTP clients live in the
//! `duet-push` crate; the outbox worker ([`super::Pusher`]) only sees this trait.

use std::time::Duration;

use async_trait::async_trait;

use crate::redact::redact;

pub use crate::model::{ProviderKind, UnknownProvider};

/// The device a push goes to. `Debug` shows the token redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The device token (APNs: hex; the others: the maker's registration id).
    pub token: String,
    /// The app's id at the provider, where one Duet app has several (APNs: the topic; the others: the
    /// app id the maker gave it). `None`: the provider's configured default.
    pub app_id: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("token", &redact(&self.token)).field("app_id", &self.app_id).finish()
    }
}

/// What a phone shows, as the domain decided it (Tencent's `OfflinePushInfo` and its defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    pub title: String,
    pub body: String,
    /// `OfflinePushInfo.Ext`: handed to the app when the user opens the notification.
    pub ext: String,
    /// The app icon's badge (the user's total unread count); `None` leaves the badge alone.
    pub badge: Option<u64>,
    /// Who sent the message and its `MsgKey`, so the app can open the conversation.
    pub from: String,
    pub to: String,
    pub msg_key: String,
    pub apns: ApnsOptions,
    pub android: AndroidOptions,
}

/// `OfflinePushInfo.ApnsInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApnsOptions {
    /// `Sound`: a sound file of the app, or empty for the default sound.
    pub sound: String,
    pub subtitle: String,
    /// `Image`: shown by the app's notification service extension (needs `mutable_content`).
    pub image: String,
    pub mutable_content: bool,
    /// A VoIP push (PushKit) rather than an alert (`ApnsInfo.PushType` 1, the SDK's `iOSPushType`).
    pub voip: bool,
    /// `InterruptionLevel`: `passive`, `active`, `time-sensitive` or `critical`; empty for the default.
    pub interruption_level: String,
}

/// `OfflinePushInfo.AndroidInfo`: each maker's channel and classification fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AndroidOptions {
    pub sound: String,
    pub huawei_channel_id: String,
    pub huawei_category: String,
    pub huawei_importance: String,
    pub huawei_image: String,
    pub honor_importance: String,
    pub honor_image: String,
    pub xiaomi_channel_id: String,
    pub oppo_channel_id: String,
    pub oppo_category: String,
    pub oppo_notify_level: Option<i64>,
    pub google_channel_id: String,
    pub google_image: String,
    /// 0 operational, 1 system (vivo's default).
    pub vivo_classification: Option<i64>,
    pub vivo_category: String,
}

/// What became of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it.
    Sent,
    /// A transient failure (the network, a 5xx, a rate limit): try again, after `after` if the provider
    /// said when.
    Retry { after: Option<Duration>, reason: String },
    /// The token is not (or no longer) valid for this app: drop the push and forget the token.
    InvalidToken { reason: String },
    /// A permanent failure for this push (a rejected payload, a quota for the day, the configuration):
    /// drop it, keep the token.
    Failed { reason: String },
}

/// A client of one push service.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;
    /// Sends `notification` to `target`. Never panics on a bad answer: every answer maps to an
    /// [`Outcome`]. Credentials the provider needs (an OAuth token, a signed JWT) are fetched and
    /// renewed inside.
    async fn send(&self, target: &Target, notification: &Notification) -> Outcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
        }
        assert_eq!("gcm".parse::<ProviderKind>(), Err(UnknownProvider("gcm".into())));
    }
}

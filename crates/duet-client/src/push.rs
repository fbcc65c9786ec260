//! Offline push from the app's side, as Tencent's `setOfflinePushConfig`, `doBackground` and
//! `doForeground`: the device registers the token its maker's push service gave it, and says when the
//! app goes to the background (pushes reach it then too) and comes back.

use crate::friends::RelationRequest;
use crate::{Client, Error};

/// A device's push registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushConfig {
    /// `apns`, `fcm`, `huawei`, `honor`, `xiaomi`, `oppo`, `vivo`, `meizu` or `webhook`.
    pub provider: String,
    /// The token the maker's push service gave the app on this device.
    pub token: String,
    /// The app's id at the provider, where one app has several (Tencent's business id).
    pub app_id: Option<String>,
    /// The language of the notifications' default texts (`en`, `zh`, …).
    pub lang: Option<String>,
}

impl Client {
    /// Registers this device for offline push, replacing what it registered before. The registration
    /// lasts until this device logs out, is logged out by another login, or registers again.
    pub async fn set_offline_push_config(&self, config: PushConfig) -> Result<(), Error> {
        if config.provider.is_empty() || config.token.is_empty() {
            return Err(Error::InvalidArgument("a push registration needs a provider and a token".into()));
        }
        let PushConfig { provider, token, app_id, lang } = config;
        self.relation_ok(RelationRequest::PushRegister { provider, token, app_id, lang }).await
    }

    /// Ends this device's push registration.
    pub async fn clear_offline_push_config(&self) -> Result<(), Error> {
        self.relation_ok(RelationRequest::PushUnregister).await
    }

    /// The app went to the background: messages reach this device as pushes too, while it stays connected.
    /// `unread` is the app's badge count.
    pub async fn do_background(&self, unread: u64) -> Result<(), Error> {
        self.relation_ok(RelationRequest::Background { unread }).await
    }

    /// The app is back in the foreground: no pushes while connected.
    pub async fn do_foreground(&self) -> Result<(), Error> {
        self.relation_ok(RelationRequest::Foreground).await
    }
}

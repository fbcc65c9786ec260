//! The app's own push gateway: Duet POSTs each push as JSON to a URL the operator configures, signed so
//! the gateway can tell it came from Duet.
//!
//! # The request
//!
//! `POST <url>` with `Content-Type: application/json` and the body
//!
//! ```json
//! {"token": "…", "app_id": "…" or null, "title": "…", "body": "…", "ext": "…", "badge": 3 or null,
//!  "from": "…", "to": "…", "msg_key": "…",
//!  "apns": {"sound", "subtitle", "image", "mutable_content", "voip", "interruption_level"},
//!  "android": {"sound", "huawei_channel_id", "huawei_category", "huawei_importance", "huawei_image",
//!              "honor_importance", "honor_image", "xiaomi_channel_id", "oppo_channel_id", "oppo_category",
//!              "oppo_notify_level", "google_channel_id", "google_image", "vivo_classification",
//!              "vivo_category"}}
//! ```
//!
//! (strings are `""` when unset; `oppo_notify_level` and `vivo_classification` are numbers or null).
//!
//! # The signature
//!
//! Two headers:
//!
//! * `X-Duet-Timestamp: <unix seconds>`, when the request was signed;
//! * `X-Duet-Signature: sha256=<hex>`, the lowercase hex HMAC-SHA256, keyed with the configured `secret`,
//!   of the timestamp, a `.` and the raw body: `<timestamp>.<body>`.
//!
//! The gateway recomputes the HMAC over the bytes it received, compares it in constant time, and
//! rejects a timestamp too far from its clock (five minutes, say) so a recorded request cannot be
//! replayed later.
//!
//! # The answer
//!
//! Any 2xx: sent. 410 Gone: the token is no longer valid, Duet forgets it. 429 or 5xx: Duet retries,
//! after `Retry-After` (seconds) if given. Anything else: the push failed, the token is kept.

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::jwt::unix_now;
use crate::reply;
use crate::{Clients, ConfigError};

pub const SIGNATURE_HEADER: &str = "x-duet-signature";
pub const TIMESTAMP_HEADER: &str = "x-duet-timestamp";

/// `[push.webhook]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The gateway's URL (`http` or `https`).
    pub url: String,
    /// The HMAC key the gateway shares.
    pub secret: String,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("WebhookConfig").field("url", &self.url).finish_non_exhaustive()
    }
}

/// The webhook client.
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

impl Webhook {
    pub fn new(config: &WebhookConfig, clients: &Clients) -> Result<Webhook, ConfigError> {
        let error = |message: String| ConfigError::Provider { provider: "webhook", message };
        if !(config.url.starts_with("https://") || config.url.starts_with("http://")) {
            return Err(error(format!("url {:?} is not an http or https URL", config.url)));
        }
        if config.secret.is_empty() {
            return Err(error("secret is empty".into()));
        }
        Ok(Webhook { client: clients.any.clone(), url: config.url.clone(), secret: config.secret.clone().into_bytes() })
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        let body = body(target, n).to_string();
        let timestamp = unix_now().to_string();
        let signature = sign(&self.secret, &timestamp, body.as_bytes());
        let request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, format!("sha256={signature}"))
            .body(body);
        let reply = match reply::send(request).await {
            Ok(reply) => reply,
            Err(outcome) => return outcome,
        };
        match reply.status.as_u16() {
            200..=299 => Outcome::Sent,
            410 => Outcome::InvalidToken { reason: format!("the webhook answered 410: {}", reply.snippet()) },
            _ => reply.by_status("the webhook"),
        }
    }
}

#[async_trait]
impl Provider for Webhook {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Webhook
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        let outcome = self.deliver(target, notification).await;
        reply::logged(ProviderKind::Webhook, &target.token, outcome)
    }
}

/// The lowercase hex HMAC-SHA256 of `<timestamp>.<body>`.
fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn body(target: &Target, n: &Notification) -> Value {
    let a = &n.android;
    json!({
        "token": target.token,
        "app_id": target.app_id,
        "title": n.title,
        "body": n.body,
        "ext": n.ext,
        "badge": n.badge,
        "from": n.from,
        "to": n.to,
        "msg_key": n.msg_key,
        "apns": {
            "sound": n.apns.sound,
            "subtitle": n.apns.subtitle,
            "image": n.apns.image,
            "mutable_content": n.apns.mutable_content,
            "voip": n.apns.voip,
            "interruption_level": n.apns.interruption_level,
        },
        "android": {
            "sound": a.sound,
            "huawei_channel_id": a.huawei_channel_id,
            "huawei_category": a.huawei_category,
            "huawei_importance": a.huawei_importance,
            "huawei_image": a.huawei_image,
            "honor_importance": a.honor_importance,
            "honor_image": a.honor_image,
            "xiaomi_channel_id": a.xiaomi_channel_id,
            "oppo_channel_id": a.oppo_channel_id,
            "oppo_category": a.oppo_category,
            "oppo_notify_level": a.oppo_notify_level,
            "google_channel_id": a.google_channel_id,
            "google_image": a.google_image,
            "vivo_classification": a.vivo_classification,
            "vivo_category": a.vivo_category,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        let expected = "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686";
        assert_eq!(sign(b"secret", "1700000000", br#"{"a":1}"#), expected);
        assert_ne!(sign(b"secret", "1700000001", br#"{"a":1}"#), expected);
    }
}

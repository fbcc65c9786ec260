//! Apple Push Notification service: the HTTP/2 provider API with a token-based connection.
//!
//! Each push is `POST /3/device/<hex token>` over HTTP/2 with a JSON `aps` payload. The credential is a
//! provider token: an ES256 JWT (`{alg, kid}` / `{iss: team id, iat}`) signed with the `.p8` key. Apple
//! refuses tokens older than an hour and answers 429 `TooManyProviderTokenUpdates` to a provider that
//! re-signs more often than every 20 minutes, so one token is kept and re-signed every 40 minutes, never
//! per request. Apple's documentation:
//! <https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns>,
//! <https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns>,
//! <https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns>.
//!
//! Answers: 200 is sent; 410, and 400 `BadDeviceToken` or `DeviceTokenNotForTopic`, drop the token
//! (`BadDeviceToken` is also the answer for a token of the other environment: `sandbox` must match the
//! app's build); 429 and 5xx retry; 403 `ExpiredProviderToken` or `InvalidProviderToken` re-sign the
//! token once if it is old enough to be re-signed, else retry (expired: the clock) or fail (invalid: the
//! key, key id or team id); any other answer fails the push.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::jwt::{Signer, unix_now};
use crate::reply::{self, Reply};
use crate::{Clients, ConfigError};

const PRODUCTION_URL: &str = "https://api.push.apple.com";
const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";

/// How long one provider token is used before it is re-signed (Apple: between 20 and 60 minutes).
const TOKEN_LIFETIME: u64 = 40 * 60;
/// A refused token younger than this is not replaced: re-signing sooner is what Apple rate-limits.
const TOKEN_MIN_AGE: u64 = 20 * 60;
/// How long Apple keeps a push for a device that is offline (`apns-expiration`).
const STORE_FOR: u64 = 7 * 24 * 3600;
/// Apple's payload limits, in bytes.
const MAX_PAYLOAD: usize = 4096;
const MAX_VOIP_PAYLOAD: usize = 5120;
/// `apns-collapse-id` is at most 64 bytes.
const MAX_COLLAPSE_ID: usize = 64;

/// `[push.apns]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// The `.p8` signing key from the Apple developer account (PKCS#8 P-256, PEM).
    pub key_file: PathBuf,
    /// The key's Key ID (10 characters), the JWT's `kid`.
    pub key_id: String,
    /// The developer account's Team ID (10 characters), the JWT's `iss`.
    pub team_id: String,
    /// The app's bundle id, the default `apns-topic` (a [`Target::app_id`] overrides it).
    pub topic: String,
    /// Send to Apple's development environment (apps built with the development `aps-environment`).
    #[serde(default)]
    pub sandbox: bool,
    /// The service's base URL; default Apple's production or sandbox host, by `sandbox`.
    pub url: Option<String>,
}

/// The APNs client.
pub struct Apns {
    client: reqwest::Client,
    url: String,
    topic: String,
    token: ProviderToken,
}

impl Apns {
    /// Reads and checks the key; fails naming the field that is wrong.
    pub fn new(config: &ApnsConfig, clients: &Clients) -> Result<Apns, ConfigError> {
        let error = |message: String| ConfigError::Provider { provider: "apns", message };
        for (field, value) in [("key_id", &config.key_id), ("team_id", &config.team_id), ("topic", &config.topic)] {
            if value.trim().is_empty() {
                return Err(error(format!("{field} is empty")));
            }
        }
        let path = config.key_file.display();
        let pem = std::fs::read(&config.key_file).map_err(|e| error(format!("key_file {path}: {e}")))?;
        let signer = Signer::es256(&pem).map_err(|e| error(format!("key_file {path}: {e}")))?;
        let url = match &config.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if config.sandbox => SANDBOX_URL.to_owned(),
            None => PRODUCTION_URL.to_owned(),
        };
        Ok(Apns {
            client: clients.h2.clone(),
            url,
            topic: config.topic.clone(),
            token: ProviderToken::new(signer, config.key_id.clone(), config.team_id.clone()),
        })
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        // The token goes into the path: only hex passes.
        if target.token.is_empty() || !target.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Outcome::InvalidToken { reason: "an APNs device token is hex".into() };
        }
        let topic = target.app_id.as_deref().filter(|t| !t.is_empty()).unwrap_or(&self.topic);
        let (topic, push_type, limit) = if n.apns.voip {
            (format!("{topic}.voip"), "voip", MAX_VOIP_PAYLOAD)
        } else {
            (topic.to_owned(), "alert", MAX_PAYLOAD)
        };
        let body = payload(n).to_string();
        if body.len() > limit {
            let reason = format!("the payload is {} bytes, over APNs' {limit}", body.len());
            return Outcome::Failed { reason };
        }
        let url = format!("{}/3/device/{}", self.url, target.token);
        let expiration = (unix_now() + STORE_FOR).to_string();
        let mut jwt = self.token.get(unix_now());
        let mut renewed = false;
        loop {
            let mut request = self
                .client
                .post(&url)
                .header(AUTHORIZATION, format!("bearer {jwt}"))
                .header("apns-topic", &topic)
                .header("apns-push-type", push_type)
                .header("apns-priority", "10")
                .header("apns-expiration", &expiration)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if !n.msg_key.is_empty() && n.msg_key.len() <= MAX_COLLAPSE_ID {
                request = request.header("apns-collapse-id", &n.msg_key);
            }
            let reply = match reply::send(request).await {
                Ok(reply) => reply,
                Err(outcome) => return outcome,
            };
            let reason = reply.json::<ErrorBody>().map(|e| e.reason);
            if reply.status == 403
                && !renewed
                && matches!(reason.as_deref(), Some("ExpiredProviderToken" | "InvalidProviderToken"))
                && let Some(fresh) = self.token.renew(&jwt, unix_now())
            {
                jwt = fresh;
                renewed = true;
                continue;
            }
            return outcome(&reply, reason.as_deref());
        }
    }
}

#[async_trait]
impl Provider for Apns {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Apns
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        let outcome = self.deliver(target, notification).await;
        reply::logged(ProviderKind::Apns, &target.token, outcome)
    }
}

/// The body of an error answer: `{"reason": "...", "timestamp": ms}`.
#[derive(Deserialize)]
struct ErrorBody {
    reason: String,
}

/// The JSON payload: Apple's `aps` dictionary and Duet's keys beside it.
fn payload(n: &Notification) -> Value {
    let mut alert = Map::new();
    alert.insert("title".into(), n.title.clone().into());
    if !n.apns.subtitle.is_empty() {
        alert.insert("subtitle".into(), n.apns.subtitle.clone().into());
    }
    alert.insert("body".into(), n.body.clone().into());
    let mut aps = Map::new();
    aps.insert("alert".into(), alert.into());
    if let Some(badge) = n.badge {
        aps.insert("badge".into(), badge.into());
    }
    let sound = if n.apns.sound.is_empty() { "default" } else { &n.apns.sound };
    aps.insert("sound".into(), sound.into());
    if n.apns.mutable_content {
        aps.insert("mutable-content".into(), 1.into());
    }
    if !n.apns.interruption_level.is_empty() {
        aps.insert("interruption-level".into(), n.apns.interruption_level.clone().into());
    }
    let mut payload = json!({ "aps": aps, "ext": n.ext, "from": n.from, "msg_key": n.msg_key });
    if !n.apns.image.is_empty() {
        // For the app's notification service extension, which downloads it.
        payload["image"] = n.apns.image.clone().into();
    }
    payload
}

/// What an answer other than a retried 403 means.
fn outcome(reply: &Reply, reason: Option<&str>) -> Outcome {
    let status = reply.status.as_u16();
    let Some(reason) = reason else {
        return match status {
            200 => Outcome::Sent,
            410 => Outcome::InvalidToken { reason: "APNs answered 410".into() },
            _ => reply.by_status("APNs"),
        };
    };
    let text = format!("APNs answered {status} {reason}");
    match (status, reason) {
        (200, _) => Outcome::Sent,
        (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => Outcome::InvalidToken { reason: text },
        (403, "ExpiredProviderToken") => {
            Outcome::Retry { after: reply.retry_after, reason: format!("{text} (is the clock right?)") }
        }
        (403, "InvalidProviderToken") => {
            Outcome::Failed { reason: format!("{text}: check [push.apns] key_file, key_id and team_id") }
        }
        _ if reply.is_transient() => Outcome::Retry { after: reply.retry_after, reason: text },
        _ => Outcome::Failed { reason: text },
    }
}

/// The provider token: one signed JWT, replaced when it is [`TOKEN_LIFETIME`] old.
struct ProviderToken {
    signer: Signer,
    key_id: String,
    team_id: String,
    /// The JWT and its `iat`.
    current: Mutex<Option<(String, u64)>>,
}

impl ProviderToken {
    fn new(signer: Signer, key_id: String, team_id: String) -> ProviderToken {
        ProviderToken { signer, key_id, team_id, current: Mutex::new(None) }
    }

    /// The token to use at `now` (Unix seconds), signed anew when there is none, it is
    /// [`TOKEN_LIFETIME`] old, or its `iat` is ahead of the clock (the clock was set back).
    fn get(&self, now: u64) -> String {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((jwt, iat)) = &*current
            && now < iat + TOKEN_LIFETIME
            && *iat <= now + 60
        {
            return jwt.clone();
        }
        let jwt = self.sign(now);
        *current = Some((jwt.clone(), now));
        jwt
    }

    /// A token to retry with after APNs refused `refused`: a new one if `refused` is still the current
    /// token and at least [`TOKEN_MIN_AGE`] old, the current one if another replaced it meanwhile, else
    /// `None` (re-signing now is what Apple rate-limits).
    fn renew(&self, refused: &str, now: u64) -> Option<String> {
        {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            match &*current {
                Some((jwt, iat)) if jwt == refused => {
                    if now.saturating_sub(*iat) < TOKEN_MIN_AGE {
                        return None;
                    }
                    *current = None;
                }
                _ => {}
            }
        }
        Some(self.get(now))
    }

    fn sign(&self, now: u64) -> String {
        let mut header = Map::new();
        header.insert("kid".into(), self.key_id.clone().into());
        self.signer.sign(header, &json!({ "iss": self.team_id, "iat": now }))
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

    use super::*;

    fn token() -> ProviderToken {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &SystemRandom::new()).unwrap();
        ProviderToken::new(Signer::Es256(key), "KEYID12345".into(), "TEAMID1234".into())
    }

    fn iat(jwt: &str) -> u64 {
        use base64::Engine;
        let claims = jwt.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        claims["iat"].as_u64().unwrap()
    }

    #[test]
    fn the_token_is_reused_until_it_is_forty_minutes_old() {
        let t = token();
        let start = 1_800_000_000;
        let first = t.get(start);
        assert_eq!(iat(&first), start);
        assert_eq!(t.get(start + 1), first);
        assert_eq!(t.get(start + TOKEN_LIFETIME - 1), first);
        let second = t.get(start + TOKEN_LIFETIME);
        assert_ne!(second, first);
        assert_eq!(iat(&second), start + TOKEN_LIFETIME);
    }

    #[test]
    fn a_clock_set_back_signs_anew() {
        let t = token();
        let first = t.get(1_800_000_000);
        let second = t.get(1_800_000_000 - 3600);
        assert_ne!(second, first);
        assert_eq!(iat(&second), 1_800_000_000 - 3600);
    }

    #[test]
    fn a_refused_token_is_replaced_only_when_twenty_minutes_old() {
        let t = token();
        let start = 1_800_000_000;
        let first = t.get(start);
        assert_eq!(t.renew(&first, start + 60), None);
        assert_eq!(t.get(start + 60), first);
        let second = t.renew(&first, start + TOKEN_MIN_AGE).unwrap();
        assert_ne!(second, first);
        // Another send that was refused the old token retries with the new one, without signing a third.
        assert_eq!(t.renew(&first, start + TOKEN_MIN_AGE + 1), Some(second.clone()));
        assert_eq!(t.get(start + TOKEN_MIN_AGE + 2), second);
    }

    #[test]
    fn the_payload_leaves_out_what_is_unset() {
        let n = Notification { title: "T".into(), body: "B".into(), ..Notification::default() };
        assert_eq!(
            payload(&n),
            json!({"aps": {"alert": {"title": "T", "body": "B"}, "sound": "default"}, "ext": "", "from": "", "msg_key": ""})
        );
    }
}

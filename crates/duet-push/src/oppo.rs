//! OPPO Push (OPUSH / HeyTap): an auth token from `/server/v1/auth`, signed with
//! `sha256(app_key + timestamp_ms + master_secret)` (lowercase hex) and valid 24 hours from its
//! `create_time`; then a unicast notification as the form field `message` (a JSON string) with the
//! token in the `auth_token` header.
//!
//! Answers carry a numeric `code`: 0 is success, 10000 (or a message naming an invalid registration
//! id) an invalid token, 11 an auth token to renew (once), 13 and -1 a retry, 33 the day's quota.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::reply::{self, Reply, retry};
use crate::text::clip;
use crate::token::{Attempt, CachedToken};
use crate::{Clients, ConfigError, check_url};

const URL: &str = "https://api.push.oppomobile.com/server/v1/message/notification/unicast";
const AUTH_URL: &str = "https://api.push.oppomobile.com/server/v1/auth";
/// An auth token lives 24 hours from its `create_time`.
const TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long OPPO keeps an offline message, in seconds.
const OFFLINE_TTL: u64 = 86400;
/// OPPO's limits for a style-1 notification, in characters.
const MAX_TITLE: usize = 50;
const MAX_CONTENT: usize = 200;
const FORM: &str = "application/x-www-form-urlencoded";

/// `[push.oppo]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OppoConfig {
    pub app_key: String,
    /// The MasterSecret (not the AppSecret): it signs the auth request.
    pub master_secret: String,
    /// The notification channel when the push names none: the approved private-message
    /// ("communication and service") channel, which has no daily quota.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// OPPO's message category when the push names none; empty to send none.
    #[serde(default = "default_category")]
    pub category: String,
    /// `notify_level` when the push names none: 1 bar, 2 bar and lock screen, 16 also banner, vibration
    /// and ringtone (a permission OPPO grants).
    #[serde(default = "default_notify_level")]
    pub notify_level: i64,
    /// The unicast endpoint.
    #[serde(default = "default_url")]
    pub url: String,
    /// The auth endpoint.
    #[serde(default = "default_auth_url")]
    pub auth_url: String,
}

fn default_category() -> String {
    "IM".into()
}

fn default_notify_level() -> i64 {
    2
}

fn default_url() -> String {
    URL.into()
}

fn default_auth_url() -> String {
    AUTH_URL.into()
}

impl fmt::Debug for OppoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OppoConfig")
            .field("app_key", &self.app_key)
            .field("master_secret", &"…")
            .field("channel_id", &self.channel_id)
            .field("category", &self.category)
            .field("notify_level", &self.notify_level)
            .field("url", &self.url)
            .field("auth_url", &self.auth_url)
            .finish()
    }
}

pub struct Oppo {
    http: reqwest::Client,
    config: OppoConfig,
    token: CachedToken,
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Provider { provider: "oppo", message }
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()
}

impl Oppo {
    pub fn new(config: &OppoConfig, clients: &Clients) -> Result<Oppo, ConfigError> {
        if config.app_key.trim().is_empty() {
            return Err(invalid("app_key is empty".into()));
        }
        if config.master_secret.is_empty() {
            return Err(invalid("master_secret is empty".into()));
        }
        if config.channel_id.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(invalid("channel_id is empty (leave it out to send none)".into()));
        }
        if config.notify_level <= 0 {
            return Err(invalid(format!("notify_level {} is not a positive number (1, 2 or 16)", config.notify_level)));
        }
        check_url("oppo", "url", &config.url)?;
        check_url("oppo", "auth_url", &config.auth_url)?;
        let token = CachedToken::new(ProviderKind::Oppo, "auth token");
        Ok(Oppo { http: clients.any.clone(), config: config.clone(), token })
    }

    /// The `message` form field's JSON for one device.
    fn message(&self, target: &Target, n: &Notification) -> String {
        let a = &n.android;
        let parameters = json!({"ext": n.ext, "from": n.from, "msg_key": n.msg_key}).to_string();
        let mut notification = json!({
            "style": 1,
            "title": clip(&n.title, MAX_TITLE),
            "content": clip(&n.body, MAX_CONTENT),
            // 0: launch the app, which gets `action_parameters` as extras.
            "click_action_type": 0,
            "action_parameters": parameters,
            "off_line": true,
            "off_line_ttl": OFFLINE_TTL,
            "notify_level": a.oppo_notify_level.unwrap_or(self.config.notify_level),
        });
        let channel =
            if a.oppo_channel_id.is_empty() { self.config.channel_id.as_deref() } else { Some(&*a.oppo_channel_id) };
        if let Some(channel) = channel {
            notification["channel_id"] = json!(channel);
        }
        let category = if a.oppo_category.is_empty() { &self.config.category } else { &a.oppo_category };
        if !category.is_empty() {
            notification["category"] = json!(category);
        }
        // 2: a registration id.
        json!({"target_type": 2, "target_value": target.token, "notification": notification}).to_string()
    }

    async fn fetch_token(&self) -> Result<(String, Duration), Outcome> {
        let timestamp = now_ms().to_string();
        let sign =
            format!("{:x}", Sha256::digest(format!("{}{timestamp}{}", self.config.app_key, self.config.master_secret)));
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("app_key", &self.config.app_key)
            .append_pair("timestamp", &timestamp)
            .append_pair("sign", &sign)
            .finish();
        let request = self.http.post(&self.config.auth_url).header(CONTENT_TYPE, FORM).body(form);
        let in_auth = |outcome| reply::context("auth request", outcome);
        let reply = reply::send(request).await.map_err(in_auth)?;
        let (code, body) = reply.coded("code").map_err(in_auth)?;
        let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
        let data = body.get("data");
        match (code, data.and_then(|d| d.get("auth_token")).and_then(Value::as_str)) {
            (0, Some(token)) if !token.is_empty() => {
                let created = data.and_then(|d| d.get("create_time")).and_then(Value::as_u64);
                Ok((token.to_owned(), lifetime(created, now_ms())))
            }
            (0, _) => Err(retry("auth answer without auth_token".into())),
            (13 | -1, _) => Err(retry(format!("auth request: {code} {message}"))),
            // 14 app_key, 16 signature, 28 timestamp, and others: the configuration or the clock.
            _ => Err(Outcome::Failed { reason: format!("auth request rejected: {code} {message}") }),
        }
    }

    async fn attempt(&self, auth_token: &str, form: &str) -> Attempt {
        let request = self
            .http
            .post(&self.config.url)
            .header("auth_token", auth_token)
            .header(CONTENT_TYPE, FORM)
            .body(form.to_owned());
        match reply::send(request).await {
            Ok(reply) => classify(&reply),
            Err(outcome) => Attempt::Done(outcome),
        }
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        let message = self.message(target, n);
        let form = &form_urlencoded::Serializer::new(String::new()).append_pair("message", &message).finish();
        self.token
            .renewing_once(|| self.fetch_token(), |auth_token| async move { self.attempt(&auth_token, form).await })
            .await
    }
}

/// How long a token created at `created_ms` (OPPO's clock) still lives at `now_ms` (ours): 24 hours
/// from its creation, or 24 hours when OPPO did not say or the clocks disagree.
fn lifetime(created_ms: Option<u64>, now_ms: u128) -> Duration {
    let Some(created) = created_ms else { return TOKEN_LIFETIME };
    let age = Duration::from_millis(u64::try_from(now_ms.saturating_sub(u128::from(created))).unwrap_or(u64::MAX));
    match TOKEN_LIFETIME.checked_sub(age) {
        Some(left) if !left.is_zero() => left,
        _ => TOKEN_LIFETIME,
    }
}

/// Maps OPPO's answer to an outcome.
fn classify(reply: &Reply) -> Attempt {
    let (code, body) = match reply.coded("code") {
        Ok(coded) => coded,
        Err(outcome) => return Attempt::Done(outcome),
    };
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
    let reason = format!("{code} {message}");
    Attempt::Done(match code {
        0 => Outcome::Sent,
        11 => return Attempt::Renew(reason),
        10000 => Outcome::InvalidToken { reason },
        _ if message.to_ascii_lowercase().contains("invalid registrationid") => Outcome::InvalidToken { reason },
        13 | -1 => retry(reason),
        // 33 the day's quota, 14/16/28 the configuration, and others: this push cannot go.
        _ => Outcome::Failed { reason },
    })
}

#[async_trait]
impl Provider for Oppo {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Oppo
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        reply::logged(ProviderKind::Oppo, &target.token, self.deliver(target, notification).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lives_24_hours_from_its_creation() {
        let hour = 3_600_000;
        assert_eq!(
            lifetime(Some(1_000 * hour), 1_000 * hour as u128 + 2 * hour as u128),
            Duration::from_secs(22 * 3600)
        );
        assert_eq!(lifetime(None, 5), TOKEN_LIFETIME);
        // Created in our future (clock skew), or already past its day: a full day, renewed on code 11.
        assert_eq!(lifetime(Some(10 * hour), 9 * hour as u128), TOKEN_LIFETIME);
        assert_eq!(lifetime(Some(0), 30 * hour as u128), TOKEN_LIFETIME);
    }
}

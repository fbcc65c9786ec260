//! Honor Push: an OAuth 2.0 client-credentials token from `iam.developer.honor.com`, then one flat,
//! camelCase JSON message per device token to `/api/v1/{appId}/sendMessage` with
//! `Authorization: Bearer` (and a `timestamp` header, as Honor's clients send).
//!
//! The answer's `code` is a number: 200 (also `80000000` or 0) is success, and the tokens in
//! `data.failTokens` or `data.expireTokens` are invalid. Honor's error codes are not published in a
//! source we could read, so HTTP 401 and Huawei's `80200001`/`80200003` renew the token (once),
//! `80300007` means an invalid token, and 5xx (as HTTP status or code) means retry.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::reply::{self, Reply, retry};
use crate::token::{self, Attempt, CachedToken};
use crate::{Clients, ConfigError, check_url};

const URL: &str = "https://push-api.cloud.honor.com";
const TOKEN_URL: &str = "https://iam.developer.honor.com/auth/token";
/// How long Honor keeps an offline message.
const TTL: &str = "86400s";
/// The largest badge number set (as Huawei's).
const MAX_BADGE: u64 = 99;

/// `[push.honor]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HonorConfig {
    /// The app ID the send URL names (`/api/v1/{app_id}/sendMessage`). A target's `app_id` replaces it.
    pub app_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// The launcher activity's full class name, which the badge needs: without it no badge is set.
    #[serde(default)]
    pub badge_class: Option<String>,
    /// `android.notification.importance` when the push names none: `LOW` or `NORMAL`.
    #[serde(default = "default_importance")]
    pub importance: String,
    /// The push API's base URL; the send goes to `{url}/api/v1/{app_id}/sendMessage`.
    #[serde(default = "default_url")]
    pub url: String,
    /// The OAuth 2.0 token endpoint.
    #[serde(default = "default_token_url")]
    pub token_url: String,
}

fn default_importance() -> String {
    "NORMAL".into()
}

fn default_url() -> String {
    URL.into()
}

fn default_token_url() -> String {
    TOKEN_URL.into()
}

impl fmt::Debug for HonorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HonorConfig")
            .field("app_id", &self.app_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"…")
            .field("badge_class", &self.badge_class)
            .field("importance", &self.importance)
            .field("url", &self.url)
            .field("token_url", &self.token_url)
            .finish()
    }
}

pub struct Honor {
    http: reqwest::Client,
    config: HonorConfig,
    token: CachedToken,
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Provider { provider: "honor", message }
}

impl Honor {
    pub fn new(config: &HonorConfig, clients: &Clients) -> Result<Honor, ConfigError> {
        for (field, value) in [("app_id", &config.app_id), ("client_id", &config.client_id)] {
            if value.trim().is_empty() {
                return Err(invalid(format!("{field} is empty")));
            }
        }
        if config.client_secret.is_empty() {
            return Err(invalid("client_secret is empty".into()));
        }
        if !matches!(config.importance.as_str(), "LOW" | "NORMAL") {
            return Err(invalid(format!("importance {:?} is not LOW or NORMAL", config.importance)));
        }
        if config.badge_class.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(invalid("badge_class is empty (leave it out to set no badge)".into()));
        }
        check_url("honor", "url", &config.url)?;
        check_url("honor", "token_url", &config.token_url)?;
        let token = CachedToken::new(ProviderKind::Honor, "access token");
        Ok(Honor { http: clients.any.clone(), config: config.clone(), token })
    }

    /// The request body for one device.
    fn message(&self, target: &Target, n: &Notification) -> Value {
        let data = json!({"ext": n.ext, "from": n.from, "msg_key": n.msg_key}).to_string();
        let a = &n.android;
        let importance = if a.honor_importance.is_empty() { &self.config.importance } else { &a.honor_importance };
        let mut notification = json!({
            "title": n.title,
            "body": n.body,
            "importance": importance,
            // 3: open the app; the app reads `data` from the launch intent.
            "clickAction": {"type": 3},
        });
        if !a.honor_image.is_empty() {
            notification["image"] = json!(a.honor_image);
        }
        if let (Some(badge), Some(class)) = (n.badge, &self.config.badge_class) {
            notification["badge"] = json!({"setNum": badge.min(MAX_BADGE), "badgeClass": class});
        }
        json!({
            "data": data,
            "notification": {"title": n.title, "body": n.body},
            "android": {"ttl": TTL, "targetUserType": 0, "notification": notification},
            "token": [target.token],
        })
    }

    async fn fetch_token(&self) -> Result<(String, Duration), Outcome> {
        let c = &self.config;
        token::client_credentials(&self.http, &c.token_url, &c.client_id, &c.client_secret).await
    }

    async fn attempt(&self, access_token: &str, app_id: &str, body: &str, target: &Target) -> Attempt {
        let url = format!("{}/api/v1/{app_id}/sendMessage", self.config.url.trim_end_matches('/'));
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let request = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {access_token}"))
            .header(CONTENT_TYPE, "application/json")
            .header("timestamp", now_ms.to_string())
            .body(body.to_owned());
        match reply::send(request).await {
            Ok(reply) => classify(&reply, &target.token),
            Err(outcome) => Attempt::Done(outcome),
        }
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        let body = &self.message(target, n).to_string();
        let app_id = target.app_id.as_deref().filter(|a| !a.is_empty()).unwrap_or(&self.config.app_id);
        self.token
            .renewing_once(
                || self.fetch_token(),
                |access_token| async move { self.attempt(&access_token, app_id, body, target).await },
            )
            .await
    }
}

/// Maps Honor's answer to an outcome. `code` is a number; a string of digits is read too.
fn classify(reply: &Reply, token: &str) -> Attempt {
    if reply.status == StatusCode::UNAUTHORIZED {
        return Attempt::Renew(format!("HTTP 401 {}", reply.snippet()));
    }
    let (code, body) = match reply.coded("code") {
        Ok(coded) => coded,
        Err(outcome) => return Attempt::Done(outcome),
    };
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
    let reason = format!("{code} {message}");
    let data = body.get("data");
    let listed = |key: &str| {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_array)
            .is_some_and(|tokens| tokens.iter().any(|t| t.as_str() == Some(token)))
    };
    if listed("expireTokens") {
        return Attempt::Done(Outcome::InvalidToken { reason: format!("{reason} (expireTokens)") });
    }
    if listed("failTokens") {
        return Attempt::Done(Outcome::InvalidToken { reason: format!("{reason} (failTokens)") });
    }
    Attempt::Done(match code {
        200 | 0 | 80000000 => Outcome::Sent,
        80200001 | 80200003 => return Attempt::Renew(reason),
        80300007 => Outcome::InvalidToken { reason },
        500..=599 => retry(reason),
        _ => Outcome::Failed { reason },
    })
}

#[async_trait]
impl Provider for Honor {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Honor
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        reply::logged(ProviderKind::Honor, &target.token, self.deliver(target, notification).await)
    }
}

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
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target, redact};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::token::CachedToken;
use crate::{Clients, ConfigError};

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

fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(_) => Err(invalid(format!("{field} {url:?} is not an http(s) URL"))),
        Err(e) => Err(invalid(format!("{field} {url:?}: {e}"))),
    }
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
        check_url("url", &config.url)?;
        check_url("token_url", &config.token_url)?;
        Ok(Honor { http: clients.any.clone(), config: config.clone(), token: CachedToken::default() })
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
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("client_secret", &self.config.client_secret)
            .finish();
        let response = self
            .http
            .post(&self.config.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| retry(format!("token request: {e}")))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| retry(format!("token answer: {e}")))?;
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(retry(format!("token request: HTTP {status}")));
        }
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match body.get("access_token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() && status.is_success() => {
                let lifetime = body.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
                Ok((token.to_owned(), Duration::from_secs(lifetime)))
            }
            _ if status.is_success() => Err(retry("token answer without access_token".into())),
            _ => {
                let detail = body.get("error_description").or_else(|| body.get("error")).map(Value::to_string);
                let reason = format!("token request rejected: HTTP {status} {}", detail.unwrap_or_default());
                Err(Outcome::Failed { reason })
            }
        }
    }

    async fn attempt(&self, access_token: &str, app_id: &str, body: &Value, target: &Target) -> Attempt {
        let url = format!("{}/api/v1/{app_id}/sendMessage", self.config.url.trim_end_matches('/'));
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let sent = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {access_token}"))
            .header(CONTENT_TYPE, "application/json")
            .header("timestamp", now_ms.to_string())
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Done(retry(format!("request: {e}"))),
        };
        let status = response.status();
        match response.text().await {
            Ok(text) => classify(status, &text, &target.token),
            Err(e) => Attempt::Done(retry(format!("answer: {e}"))),
        }
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        let body = self.message(target, n);
        let app_id = target.app_id.as_deref().filter(|a| !a.is_empty()).unwrap_or(&self.config.app_id);
        let mut renewed = false;
        loop {
            let access_token = match self.token.get(|| self.fetch_token()).await {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            match self.attempt(&access_token, app_id, &body, target).await {
                Attempt::Done(outcome) => return outcome,
                Attempt::Renew(reason) if !renewed => {
                    tracing::debug!(provider = "honor", %reason, "renewing the access token");
                    self.token.invalidate(&access_token).await;
                    renewed = true;
                }
                Attempt::Renew(reason) => {
                    return Outcome::Failed { reason: format!("access token refused after renewal: {reason}") };
                }
            }
        }
    }
}

/// What one send request came to.
enum Attempt {
    Done(Outcome),
    /// The access token expired or was refused: renew it and send again.
    Renew(String),
}

fn retry(reason: String) -> Outcome {
    Outcome::Retry { after: None, reason }
}

/// Maps Honor's answer to an outcome. `code` is a number; a string of digits is read too.
fn classify(status: StatusCode, text: &str, token: &str) -> Attempt {
    if status == StatusCode::UNAUTHORIZED {
        return Attempt::Renew(format!("HTTP 401 {}", text.chars().take(200).collect::<String>()));
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Attempt::Done(retry(format!("HTTP {status}")));
    }
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let code = match body.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let Some(code) = code else {
        if status.is_success() {
            return Attempt::Done(retry("answer without a code".into()));
        }
        return Attempt::Done(Outcome::Failed { reason: format!("HTTP {status}") });
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

fn log(outcome: &Outcome, target: &Target) {
    let (what, reason) = match outcome {
        Outcome::Sent => return,
        Outcome::Retry { reason, .. } => ("retry", reason),
        Outcome::InvalidToken { reason } => ("invalid token", reason),
        Outcome::Failed { reason } => ("failed", reason),
    };
    tracing::warn!(provider = "honor", token = %redact(&target.token), outcome = what, %reason, "push not delivered");
}

#[async_trait]
impl Provider for Honor {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Honor
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        let outcome = self.deliver(target, notification).await;
        log(&outcome, target);
        outcome
    }
}

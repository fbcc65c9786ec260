//! Huawei Push Kit (HMS Core), the v1 `messages:send` API: an OAuth 2.0 client-credentials token from
//! `oauth-login.cloud.huawei.com`, then one JSON message per device token with `Authorization: Bearer`.
//!
//! The answer's `code` is a string: `80000000` is success, `80300007` an invalid token, `80100000` a
//! partial success whose `msg` lists the failed tokens, `80200001`/`80200003` (or HTTP 401) a token to
//! renew (once), 5xx and flow control a retry.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::reply::{self, Reply, retry};
use crate::token::{self, Attempt, CachedToken};
use crate::{Clients, ConfigError, check_url};

const URL: &str = "https://push-api.cloud.huawei.com";
const TOKEN_URL: &str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token";
/// How long Huawei keeps an offline message.
const TTL: &str = "86400s";
/// The badge Huawei accepts: `set_num` 0–99.
const MAX_BADGE: u64 = 99;

/// `[push.huawei]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiConfig {
    /// The OAuth 2.0 client ID that the send URL names (`/v1/{app_id}/messages:send`); for older apps
    /// the AppGallery app ID. A target's `app_id` replaces it in the URL.
    pub app_id: String,
    /// The client ID of the token call; `app_id` when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    pub client_secret: String,
    /// `android.notification.channel_id` when the push names none.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// `android.category`, Huawei's self-classification (it needs the right granted in AppGallery
    /// Connect); empty to send none.
    #[serde(default = "default_category")]
    pub category: String,
    /// `android.notification.importance` when the push names none: `LOW`, `NORMAL` or `HIGH`.
    #[serde(default = "default_importance")]
    pub importance: String,
    /// The launcher activity's full class name, which `badge.class` needs: without it no badge is set.
    #[serde(default)]
    pub badge_class: Option<String>,
    /// The push API's base URL; the send goes to `{url}/v1/{app_id}/messages:send`.
    #[serde(default = "default_url")]
    pub url: String,
    /// The OAuth 2.0 token endpoint.
    #[serde(default = "default_token_url")]
    pub token_url: String,
}

fn default_category() -> String {
    "IM".into()
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

impl fmt::Debug for HuaweiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HuaweiConfig")
            .field("app_id", &self.app_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"…")
            .field("channel_id", &self.channel_id)
            .field("category", &self.category)
            .field("importance", &self.importance)
            .field("badge_class", &self.badge_class)
            .field("url", &self.url)
            .field("token_url", &self.token_url)
            .finish()
    }
}

pub struct Huawei {
    http: reqwest::Client,
    config: HuaweiConfig,
    client_id: String,
    token: CachedToken,
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Provider { provider: "huawei", message }
}

impl Huawei {
    pub fn new(config: &HuaweiConfig, clients: &Clients) -> Result<Huawei, ConfigError> {
        if config.app_id.trim().is_empty() {
            return Err(invalid("app_id is empty".into()));
        }
        if config.client_secret.is_empty() {
            return Err(invalid("client_secret is empty".into()));
        }
        let client_id = config.client_id.clone().unwrap_or_else(|| config.app_id.clone());
        if client_id.trim().is_empty() {
            return Err(invalid("client_id is empty".into()));
        }
        if !matches!(config.importance.as_str(), "LOW" | "NORMAL" | "HIGH") {
            return Err(invalid(format!("importance {:?} is not LOW, NORMAL or HIGH", config.importance)));
        }
        if config.badge_class.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(invalid("badge_class is empty (leave it out to set no badge)".into()));
        }
        check_url("huawei", "url", &config.url)?;
        check_url("huawei", "token_url", &config.token_url)?;
        let token = CachedToken::new(ProviderKind::Huawei, "access token");
        Ok(Huawei { http: clients.any.clone(), config: config.clone(), client_id, token })
    }

    /// The request body for one device.
    fn message(&self, target: &Target, n: &Notification) -> Value {
        let data = json!({"ext": n.ext, "from": n.from, "msg_key": n.msg_key}).to_string();
        let a = &n.android;
        let importance = if a.huawei_importance.is_empty() { &self.config.importance } else { &a.huawei_importance };
        let mut notification = json!({
            "title": n.title,
            "body": n.body,
            "importance": importance,
            // 3: open the app; the app reads `data` from the launch intent.
            "click_action": {"type": 3},
        });
        let channel = if a.huawei_channel_id.is_empty() {
            self.config.channel_id.as_deref()
        } else {
            Some(&*a.huawei_channel_id)
        };
        if let Some(channel) = channel.filter(|c| !c.is_empty()) {
            notification["channel_id"] = json!(channel);
        }
        if !a.huawei_image.is_empty() {
            notification["image"] = json!(a.huawei_image);
        }
        if let (Some(badge), Some(class)) = (n.badge, &self.config.badge_class) {
            notification["badge"] = json!({"set_num": badge.min(MAX_BADGE), "class": class});
        }
        let mut android = json!({"urgency": "HIGH", "ttl": TTL, "notification": notification});
        let category = if a.huawei_category.is_empty() { &self.config.category } else { &a.huawei_category };
        if !category.is_empty() {
            android["category"] = json!(category);
        }
        json!({
            "validate_only": false,
            "message": {"data": data, "android": android, "token": [target.token]},
        })
    }

    async fn fetch_token(&self) -> Result<(String, Duration), Outcome> {
        token::client_credentials(&self.http, &self.config.token_url, &self.client_id, &self.config.client_secret).await
    }

    async fn attempt(&self, access_token: &str, app_id: &str, body: &str, target: &Target) -> Attempt {
        let url = format!("{}/v1/{app_id}/messages:send", self.config.url.trim_end_matches('/'));
        let request = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {access_token}"))
            .header(CONTENT_TYPE, "application/json; charset=UTF-8")
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

/// Maps Huawei's answer to an outcome. `code` is a string in Huawei's answers; a number is read too.
fn classify(reply: &Reply, token: &str) -> Attempt {
    let status = reply.status;
    if status == StatusCode::UNAUTHORIZED {
        return Attempt::Renew(format!("HTTP 401 {}", reply.snippet()));
    }
    if reply.is_transient() {
        return Attempt::Done(retry(format!("HTTP {status}")));
    }
    let body: Value = reply.json().unwrap_or(Value::Null);
    let code = match body.get("code") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ if status.is_success() => return Attempt::Done(retry("answer without a code".into())),
        _ => return Attempt::Done(Outcome::Failed { reason: format!("HTTP {status}") }),
    };
    let msg = body.get("msg").and_then(Value::as_str).unwrap_or_default();
    let reason = format!("{code} {msg}");
    Attempt::Done(match code.as_str() {
        "80000000" => Outcome::Sent,
        // `msg` lists whole device tokens: it stays out of the reason (and so out of the logs).
        "80100000" if lists_token(msg, token) => Outcome::InvalidToken { reason: format!("{code} illegal token") },
        "80100000" => Outcome::Sent,
        "80200001" | "80200003" => return Attempt::Renew(reason),
        "80300007" => Outcome::InvalidToken { reason },
        "81000001" => retry(reason),
        // 80100001 parameters, 80100003 structure, 80100016 content, 80300002 no permission,
        // 80300008 too large, 80300010 token count, and whatever else: this push cannot go.
        _ => Outcome::Failed { reason },
    })
}

/// Whether a partial success's `msg` (a JSON string such as `{"illegal_tokens": [...]}`; the key's
/// spelling varies) names `token`.
fn lists_token(msg: &str, token: &str) -> bool {
    fn walk(v: &Value, token: &str) -> bool {
        match v {
            Value::String(s) => s == token,
            Value::Array(items) => items.iter().any(|i| walk(i, token)),
            Value::Object(map) => map.values().any(|i| walk(i, token)),
            _ => false,
        }
    }
    match serde_json::from_str::<Value>(msg) {
        Ok(v) => walk(&v, token),
        Err(_) => msg.contains(token),
    }
}

#[async_trait]
impl Provider for Huawei {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Huawei
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        reply::logged(ProviderKind::Huawei, &target.token, self.deliver(target, notification).await)
    }
}

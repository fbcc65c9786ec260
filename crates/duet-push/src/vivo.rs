//! vivo Push: an auth token from `/message/auth`, signed with
//! `md5(appId + appKey + timestamp_ms + appSecret)` (lowercase hex), then one JSON message per
//! registration id to `/message/send` with the token in the `authToken` header.
//!
//! Answers carry a numeric `result`: 0 is success unless `invalidUser` names the regId (status 1–3: an
//! invalid token; 4: not a test device), 10302 an invalid token, 10000 an auth token to renew (once),
//! 10072 a retry, 10070 the day's quota.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use md5::{Digest, Md5};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::reply::{self, Reply, retry};
use crate::text;
use crate::token::{Attempt, CachedToken};
use crate::{Clients, ConfigError, check_url};

const URL: &str = "https://api-push.vivo.com.cn/message/send";
const AUTH_URL: &str = "https://api-push.vivo.com.cn/message/auth";
/// An auth token is valid for 24 hours, but vivo advises renewing it every one to two hours.
const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);
/// How long vivo keeps an offline message, in seconds.
const TIME_TO_LIVE: u64 = 86400;
/// vivo's limits, in its units: an ASCII character counts 1, any other 2 (20 CJK or 40 ASCII).
const MAX_TITLE: usize = 40;
const MAX_CONTENT: usize = 100;

/// `[push.vivo]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VivoConfig {
    pub app_id: u64,
    pub app_key: String,
    pub app_secret: String,
    /// `classification` when the push names none: 0 operational (a daily quota), 1 system (approved).
    #[serde(default = "default_classification")]
    pub classification: i64,
    /// `category`, vivo's secondary classification (such as `IM`), when the push names none.
    #[serde(default)]
    pub category: Option<String>,
    /// 0 production, 1 test (only the registered test devices get it).
    #[serde(default)]
    pub push_mode: i64,
    /// The send endpoint.
    #[serde(default = "default_url")]
    pub url: String,
    /// The auth endpoint.
    #[serde(default = "default_auth_url")]
    pub auth_url: String,
}

fn default_classification() -> i64 {
    1
}

fn default_url() -> String {
    URL.into()
}

fn default_auth_url() -> String {
    AUTH_URL.into()
}

impl fmt::Debug for VivoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VivoConfig")
            .field("app_id", &self.app_id)
            .field("app_key", &self.app_key)
            .field("app_secret", &"…")
            .field("classification", &self.classification)
            .field("category", &self.category)
            .field("push_mode", &self.push_mode)
            .field("url", &self.url)
            .field("auth_url", &self.auth_url)
            .finish()
    }
}

pub struct Vivo {
    http: reqwest::Client,
    config: VivoConfig,
    token: CachedToken,
    /// Makes each `requestId` unique within this process.
    sequence: AtomicU64,
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Provider { provider: "vivo", message }
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// At most `max` of vivo's units of `s` (ASCII 1, others 2), ending with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    text::clip_by(s, max, |c| if c.is_ascii() { 1 } else { 2 })
}

impl Vivo {
    pub fn new(config: &VivoConfig, clients: &Clients) -> Result<Vivo, ConfigError> {
        if config.app_id == 0 {
            return Err(invalid("app_id is 0".into()));
        }
        if config.app_key.trim().is_empty() {
            return Err(invalid("app_key is empty".into()));
        }
        if config.app_secret.is_empty() {
            return Err(invalid("app_secret is empty".into()));
        }
        if !matches!(config.classification, 0 | 1) {
            return Err(invalid(format!("classification {} is not 0 or 1", config.classification)));
        }
        if !matches!(config.push_mode, 0 | 1) {
            return Err(invalid(format!("push_mode {} is not 0 (production) or 1 (test)", config.push_mode)));
        }
        if config.category.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(invalid("category is empty (leave it out to send none)".into()));
        }
        check_url("vivo", "url", &config.url)?;
        check_url("vivo", "auth_url", &config.auth_url)?;
        let token = CachedToken::new(ProviderKind::Vivo, "auth token");
        Ok(Vivo { http: clients.any.clone(), config: config.clone(), token, sequence: AtomicU64::new(0) })
    }

    /// The request body for one device.
    fn message(&self, target: &Target, n: &Notification) -> Value {
        let a = &n.android;
        // Up to 10 pairs of strings; empty values are left out.
        let custom: serde_json::Map<String, Value> = [("ext", &n.ext), ("from", &n.from), ("msg_key", &n.msg_key)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let request_id =
            format!("{:x}", Md5::digest(format!("{}\n{}\n{}\n{sequence}", target.token, n.msg_key, now().as_nanos())));
        let mut body = json!({
            "appId": self.config.app_id,
            "regId": target.token,
            // 4: sound and vibration.
            "notifyType": 4,
            "title": clip(&n.title, MAX_TITLE),
            "content": clip(&n.body, MAX_CONTENT),
            "timeToLive": TIME_TO_LIVE,
            // 1: open the app, which gets `clientCustomMap` as extras.
            "skipType": 1,
            "classification": a.vivo_classification.unwrap_or(self.config.classification),
            "requestId": request_id,
            "pushMode": self.config.push_mode,
        });
        if !custom.is_empty() {
            body["clientCustomMap"] = Value::Object(custom);
        }
        let category =
            if a.vivo_category.is_empty() { self.config.category.as_deref() } else { Some(&*a.vivo_category) };
        if let Some(category) = category {
            body["category"] = json!(category);
        }
        body
    }

    async fn fetch_token(&self) -> Result<(String, Duration), Outcome> {
        let timestamp = u64::try_from(now().as_millis()).unwrap_or(u64::MAX);
        let c = &self.config;
        let signed = format!("{}{}{timestamp}{}", c.app_id, c.app_key, c.app_secret);
        let sign = format!("{:x}", Md5::digest(signed.trim()));
        let body = json!({"appId": c.app_id, "appKey": c.app_key, "timestamp": timestamp, "sign": sign});
        let request = self.http.post(&c.auth_url).header(CONTENT_TYPE, "application/json").body(body.to_string());
        let in_auth = |outcome| reply::context("auth request", outcome);
        let reply = reply::send(request).await.map_err(in_auth)?;
        let (result, body) = reply.coded("result").map_err(in_auth)?;
        let desc = body.get("desc").and_then(Value::as_str).unwrap_or_default();
        match (result, body.get("authToken").and_then(Value::as_str)) {
            (0, Some(token)) if !token.is_empty() => Ok((token.to_owned(), TOKEN_LIFETIME)),
            (0, _) => Err(retry("auth answer without authToken".into())),
            (10072, _) => Err(retry(format!("auth request: {result} {desc}"))),
            // 10200 appId empty, 10201 appKey empty, a bad signature or timestamp, and others.
            _ => Err(Outcome::Failed { reason: format!("auth request rejected: {result} {desc}") }),
        }
    }

    async fn attempt(&self, auth_token: &str, body: &str) -> Attempt {
        let request = self
            .http
            .post(&self.config.url)
            .header("authToken", auth_token)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        match reply::send(request).await {
            Ok(reply) => classify(&reply),
            Err(outcome) => Attempt::Done(outcome),
        }
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        // The credentials are one app's: a device registered with another app cannot be reached here.
        if let Some(app_id) = target.app_id.as_deref().filter(|a| !a.is_empty())
            && app_id.trim() != self.config.app_id.to_string()
        {
            return Outcome::Failed { reason: format!("the target's app id {app_id} is not the configured one") };
        }
        let body = &self.message(target, n).to_string();
        self.token
            .renewing_once(|| self.fetch_token(), |auth_token| async move { self.attempt(&auth_token, body).await })
            .await
    }
}

/// Maps vivo's answer to an outcome.
fn classify(reply: &Reply) -> Attempt {
    let (result, body) = match reply.coded("result") {
        Ok(coded) => coded,
        Err(outcome) => return Attempt::Done(outcome),
    };
    let desc = body.get("desc").and_then(Value::as_str).unwrap_or_default();
    let reason = format!("{result} {desc}");
    Attempt::Done(match result {
        // One regId per request: an `invalidUser` is this one.
        0 => match body.get("invalidUser").and_then(|u| u.get("status")).and_then(reply::code) {
            Some(s @ 1..=3) => Outcome::InvalidToken { reason: format!("invalidUser status {s}") },
            Some(s @ 4) => Outcome::Failed { reason: format!("invalidUser status {s}: not a test device") },
            _ => Outcome::Sent,
        },
        10000 => return Attempt::Renew(reason),
        10302 => Outcome::InvalidToken { reason },
        10072 => retry(reason),
        // 10070 the day's total, and the others (the payload, the configuration): this push cannot go.
        _ => Outcome::Failed { reason },
    })
}

#[async_trait]
impl Provider for Vivo {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Vivo
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        reply::logged(ProviderKind::Vivo, &target.token, self.deliver(target, notification).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_other_than_ascii_twice() {
        assert_eq!(clip("0123456789", 10), "0123456789");
        assert_eq!(clip("01234567890", 10), "01234567…");
        assert_eq!(clip("你好世界你好", 10), "你好世界…");
        assert_eq!(clip("你好世界你", 10), "你好世界你");
    }
}

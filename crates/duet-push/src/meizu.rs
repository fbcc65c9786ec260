//! Meizu Push (Flyme), the notification-bar push by pushId. There is no token: every request carries a
//! `sign`, the MD5 (lowercase hex) of its other parameters' raw values as `k1=v1k2=v2…` in ascending
//! name order, followed by the app secret.
//!
//! The answer's `code` is a string. `"200"` means the request was processed; its `value` maps a
//! per-target code to the pushIds that failed (`{}`: none did): 110002/110003/110005 an invalid token,
//! 501/513/519 a retry. At the top level 110010 (too fast), 1001, 1003 and 500 mean retry.

use std::fmt;

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use md5::{Digest, Md5};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::reply::{self, Reply, retry};
use crate::text::clip;
use crate::{Clients, ConfigError, check_url};

const URL: &str = "https://server-api-push.meizu.com/garcia/api/server/push/varnished/pushByPushId";
/// Hours Meizu keeps an offline message (1–72).
const VALID_HOURS: u64 = 24;
/// Meizu's limits, in characters.
const MAX_TITLE: usize = 32;
const MAX_CONTENT: usize = 100;

/// `[push.meizu]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeizuConfig {
    pub app_id: String,
    pub app_secret: String,
    /// The page a tap opens (`pkg.Activity`, `clickType` 1); without it, a tap opens the app
    /// (`clickType` 0). Either way the page gets `parameters` as extras.
    #[serde(default)]
    pub activity: Option<String>,
    /// The notification-bar push endpoint.
    #[serde(default = "default_url")]
    pub url: String,
}

fn default_url() -> String {
    URL.into()
}

impl fmt::Debug for MeizuConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeizuConfig")
            .field("app_id", &self.app_id)
            .field("app_secret", &"…")
            .field("activity", &self.activity)
            .field("url", &self.url)
            .finish()
    }
}

pub struct Meizu {
    http: reqwest::Client,
    config: MeizuConfig,
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Provider { provider: "meizu", message }
}

/// Meizu's signature of `params` (every parameter but `sign`, raw values).
fn sign(params: &[(&str, &str)], secret: &str) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_unstable_by_key(|(k, _)| *k);
    let mut base = String::new();
    for (k, v) in sorted {
        base.push_str(k);
        base.push('=');
        base.push_str(v);
    }
    base.push_str(secret);
    format!("{:x}", Md5::digest(base))
}

impl Meizu {
    pub fn new(config: &MeizuConfig, clients: &Clients) -> Result<Meizu, ConfigError> {
        if config.app_id.trim().is_empty() {
            return Err(invalid("app_id is empty".into()));
        }
        if config.app_secret.is_empty() {
            return Err(invalid("app_secret is empty".into()));
        }
        if config.activity.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(invalid("activity is empty (leave it out to open the app)".into()));
        }
        check_url("meizu", "url", &config.url)?;
        Ok(Meizu { http: clients.any.clone(), config: config.clone() })
    }

    /// The `messageJson` parameter.
    fn message(&self, n: &Notification) -> String {
        let mut click = json!({
            "clickType": 0,
            "parameters": {"ext": n.ext, "from": n.from, "msg_key": n.msg_key},
        });
        if let Some(activity) = &self.config.activity {
            click["clickType"] = json!(1);
            click["activity"] = json!(activity);
        }
        json!({
            "noticeBarInfo": {"noticeBarType": 0, "title": clip(&n.title, MAX_TITLE), "content": clip(&n.body, MAX_CONTENT)},
            "clickTypeInfo": click,
            "pushTimeInfo": {"offLine": 1, "validTime": VALID_HOURS},
        })
        .to_string()
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        // The secret is one app's: a device registered with another app cannot be reached here.
        if let Some(app_id) = target.app_id.as_deref().filter(|a| !a.is_empty())
            && app_id.trim() != self.config.app_id.trim()
        {
            return Outcome::Failed { reason: format!("the target's app id {app_id} is not the configured one") };
        }
        let message = self.message(n);
        let params = [
            ("appId", self.config.app_id.trim()),
            ("pushIds", target.token.as_str()),
            ("messageJson", message.as_str()),
        ];
        let signature = sign(&params, &self.config.app_secret);
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .append_pair("sign", &signature)
            .finish();
        let request = self
            .http
            .post(&self.config.url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")
            .body(form);
        match reply::send(request).await {
            Ok(reply) => classify(&reply, &target.token),
            Err(outcome) => outcome,
        }
    }
}

/// The per-target code Meizu gives `token` in a processed request's `value` (`{code: [pushIds]}`; some
/// answers nest that map as `value.respTarget`). One pushId per request, so a code listing another
/// spelling of it still counts.
fn target_code(value: Option<&Value>, token: &str) -> Option<i64> {
    let map = value?.as_object()?;
    let map = map.get("respTarget").and_then(Value::as_object).unwrap_or(map);
    let listed: Vec<(i64, &Vec<Value>)> = map
        .iter()
        .filter_map(|(k, v)| Some((k.trim().parse::<i64>().ok()?, v.as_array()?)))
        .filter(|(_, ids)| !ids.is_empty())
        .collect();
    listed
        .iter()
        .find(|(_, ids)| ids.iter().any(|id| id.as_str() == Some(token)))
        .or_else(|| listed.first())
        .map(|(code, _)| *code)
}

/// Maps Meizu's answer to an outcome.
fn classify(reply: &Reply, token: &str) -> Outcome {
    let (code, body) = match reply.coded("code") {
        Ok(coded) => coded,
        Err(outcome) => return outcome,
    };
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
    match code {
        200 => match target_code(body.get("value"), token) {
            None => Outcome::Sent,
            Some(c @ (110002 | 110003 | 110005)) => Outcome::InvalidToken { reason: format!("pushId {c}") },
            Some(c @ (501 | 513 | 519)) => retry(format!("pushId {c}")),
            // 520 folded (too many to one device within a minute), 201 no permission, and others.
            Some(c) => Outcome::Failed { reason: format!("pushId {c}") },
        },
        110010 | 1001 | 1003 | 500 => retry(format!("{code} {message}")),
        // 1005 parameters, 1006 signature, 110000 appId, 110001 appKey, 110009 blacklisted, and others.
        _ => Outcome::Failed { reason: format!("{code} {message}") },
    }
}

#[async_trait]
impl Provider for Meizu {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Meizu
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        reply::logged(ProviderKind::Meizu, &target.token, self.deliver(target, notification).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in Meizu's API document (MEIZUPUSH/PushAPI README, "接口签名规范"), whose secret is
    /// the literal placeholder `<APP_SECRET>`.
    #[test]
    fn sign_matches_meizus_example() {
        let params = [
            ("appId", "10000"),
            ("pushIds", "RA50c6348036344485d01776773577c64740465480a6b"),
            ("messageJson", r#"{"title":"title","content":"content","pushTimeInfo":{"offLine":1,"validTime":24}}"#),
        ];
        assert_eq!(sign(&params, "<APP_SECRET>"), "ac076ff25d9900015a681cb5172aa53b");
    }

    #[test]
    fn a_failed_target_is_found_in_either_shape() {
        let flat = json!({"110003": ["other"], "110002": ["tok"]});
        assert_eq!(target_code(Some(&flat), "tok"), Some(110002));
        let nested = json!({"msgId": "m", "respTarget": {"513": ["tok"]}});
        assert_eq!(target_code(Some(&nested), "tok"), Some(513));
        assert_eq!(target_code(Some(&json!({})), "tok"), None);
        assert_eq!(target_code(Some(&json!("")), "tok"), None);
    }
}

//! Xiaomi MiPush: the server API's `POST /v3/message/regid`, a form authorised by the app secret.
//!
//! There is no token exchange: every request carries `Authorization: key=<AppSecret>`. The fields are
//! form fields (not JSON): `registration_id`, `restricted_package_name`, `title`, `description`,
//! `payload` (the push's `ext`), `notify_type=-1` (sound, vibration and lights as the phone is set),
//! `pass_through=0` (a notification, not a message to the app), `extra.notify_effect=1` (tapping opens
//! the app), `extra.channel_id` (the private-message channel; without an approved one Xiaomi limits an
//! app to one push per device a day), and `extra.from` / `extra.msg_key` for the app. Xiaomi's
//! documentation: <https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1559> (the API),
//! <https://dev.mi.com/xiaomihyperos/documentation/detail?pId=1560> (the codes).
//!
//! Answers are JSON with a `code`, whatever the HTTP status: 0 is sent, unless `data.bad_regids` names
//! the token; 20301 (no valid target) drops the token; the system's busy and internal-error codes retry;
//! the daily quota, authentication and every other code fail the push. An HTTP 429 or 5xx retries.

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::Value;

use crate::reply::{self, Reply};
use crate::text::clip;
use crate::{Clients, ConfigError};

const URL: &str = "https://api.xmpush.xiaomi.com";
const PATH: &str = "/v3/message/regid";
/// Xiaomi wants the title under 50 characters and the description under 128.
const MAX_TITLE: usize = 49;
const MAX_DESCRIPTION: usize = 127;

/// The codes that mean "later": internal error, system error, busy, remote service error, called too
/// often, internal push call failed, remote service error.
const RETRY_CODES: [i64; 7] = [1, 10001, 10002, 10003, 10027, 26003, 65029];
/// Today's quota is spent: retrying today does not help.
const QUOTA_CODES: [i64; 2] = [10034, 200001];
/// The app secret or package name is wrong.
const AUTH_CODES: [i64; 4] = [21301, 21302, 22006, 22007];
/// None of the registration ids is valid.
const NO_VALID_TARGET: i64 = 20301;

/// `[push.xiaomi]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XiaomiConfig {
    /// The app's AppSecret from Xiaomi's developer console.
    pub app_secret: String,
    /// The app's package (`restricted_package_name`); a [`Target::app_id`] overrides it.
    pub package_name: String,
    /// The default notification channel (`extra.channel_id`); a notification's `xiaomi_channel_id`
    /// overrides it. Chat needs an approved private-message channel.
    pub channel_id: Option<String>,
    /// The API's base URL; default `https://api.xmpush.xiaomi.com` (mainland China). Global apps use
    /// their region's host, such as `https://sgp-api.xmpush.global.xiaomi.com`.
    pub url: Option<String>,
}

impl std::fmt::Debug for XiaomiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the app secret.
        f.debug_struct("XiaomiConfig")
            .field("package_name", &self.package_name)
            .field("channel_id", &self.channel_id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The Xiaomi client.
pub struct Xiaomi {
    client: reqwest::Client,
    url: String,
    authorization: String,
    package_name: String,
    channel_id: String,
}

impl Xiaomi {
    pub fn new(config: &XiaomiConfig, clients: &Clients) -> Result<Xiaomi, ConfigError> {
        let error = |message: String| ConfigError::Provider { provider: "xiaomi", message };
        for (field, value) in [("app_secret", &config.app_secret), ("package_name", &config.package_name)] {
            if value.trim().is_empty() {
                return Err(error(format!("{field} is empty")));
            }
        }
        let base = config.url.as_deref().unwrap_or(URL).trim_end_matches('/');
        Ok(Xiaomi {
            client: clients.any.clone(),
            url: format!("{base}{PATH}"),
            authorization: format!("key={}", config.app_secret),
            package_name: config.package_name.clone(),
            channel_id: config.channel_id.clone().unwrap_or_default(),
        })
    }

    async fn deliver(&self, target: &Target, n: &Notification) -> Outcome {
        let package = target.app_id.as_deref().filter(|p| !p.is_empty()).unwrap_or(&self.package_name);
        let channel =
            if n.android.xiaomi_channel_id.is_empty() { &self.channel_id } else { &n.android.xiaomi_channel_id };
        let form = form(&target.token, package, channel, n);
        let request = self
            .client
            .post(&self.url)
            .header(AUTHORIZATION, &self.authorization)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")
            .body(form);
        match reply::send(request).await {
            Ok(reply) => outcome(&reply, &target.token),
            Err(outcome) => outcome,
        }
    }
}

#[async_trait]
impl Provider for Xiaomi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Xiaomi
    }

    async fn send(&self, target: &Target, notification: &Notification) -> Outcome {
        let outcome = self.deliver(target, notification).await;
        reply::logged(ProviderKind::Xiaomi, &target.token, outcome)
    }
}

/// The form's fields, urlencoded.
fn form(token: &str, package: &str, channel: &str, n: &Notification) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("registration_id", token)
        .append_pair("restricted_package_name", package)
        .append_pair("title", &clip(&n.title, MAX_TITLE))
        .append_pair("description", &clip(&n.body, MAX_DESCRIPTION))
        .append_pair("payload", &n.ext)
        .append_pair("notify_type", "-1")
        .append_pair("pass_through", "0")
        .append_pair("extra.notify_effect", "1")
        .append_pair("extra.from", &n.from)
        .append_pair("extra.msg_key", &n.msg_key);
    if !channel.is_empty() {
        form.append_pair("extra.channel_id", channel);
    }
    form.finish()
}

/// `{"result": "ok"|"error", "code": 0, "data": {"id", "bad_regids": "a,b"}, "description", "reason"}`.
#[derive(Deserialize)]
struct Answer {
    code: Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    data: Value,
}

fn outcome(reply: &Reply, token: &str) -> Outcome {
    if reply.is_transient() {
        return reply.by_status("Xiaomi");
    }
    let Some(answer) = reply.json::<Answer>() else {
        return reply.by_status("Xiaomi");
    };
    // The code is a number; accept it as a string too.
    let Some(code) = reply::code(&answer.code) else {
        return reply.by_status("Xiaomi");
    };
    let reason = format!("Xiaomi answered code {code}: {} {}", answer.description, answer.reason);
    match code {
        0 if bad_regids(&answer.data).any(|bad| bad == token) => {
            Outcome::InvalidToken { reason: "Xiaomi listed the registration id in bad_regids".into() }
        }
        0 => Outcome::Sent,
        NO_VALID_TARGET => Outcome::InvalidToken { reason },
        c if RETRY_CODES.contains(&c) => Outcome::Retry { after: reply.retry_after, reason },
        c if QUOTA_CODES.contains(&c) => Outcome::Failed { reason: format!("{reason} (today's quota)") },
        c if AUTH_CODES.contains(&c) => {
            Outcome::Failed { reason: format!("{reason}: check [push.xiaomi] app_secret and package_name") }
        }
        _ => Outcome::Failed { reason },
    }
}

/// `data.bad_regids`: a comma-separated string (or, leniently, an array of strings).
fn bad_regids(data: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match data.get("bad_regids") {
        Some(Value::String(s)) => Box::new(s.split(',').map(str::trim).filter(|s| !s.is_empty())),
        Some(Value::Array(a)) => Box::new(a.iter().filter_map(Value::as_str)),
        _ => Box::new(std::iter::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_regids_reads_a_list_or_an_array() {
        let data = serde_json::json!({"bad_regids": "a, b"});
        assert_eq!(bad_regids(&data).collect::<Vec<_>>(), ["a", "b"]);
        let data = serde_json::json!({"bad_regids": ["c"]});
        assert_eq!(bad_regids(&data).collect::<Vec<_>>(), ["c"]);
        assert_eq!(bad_regids(&Value::Null).count(), 0);
    }
}

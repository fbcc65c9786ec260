//! The app backend's callbacks as Tencent IM sends them (`docs/callbacks.md`): a `POST` to the
//! configured URL with the query `SdkAppid`, `CallbackCommand`, `contenttype=json`, `ClientIP`,
//! `OptPlatform` (and `Sign`, `RequestTime` when a token is set: `Sign` is the lowercase hex SHA-256 of
//! the token followed by the request time), and a JSON body. The answer must be HTTP 200 with JSON; any
//! other answer, a timeout, or no free slot among the calls in flight, is a failure, which the configured
//! rule turns into a delivery (Tencent's default) or a refusal (80003).
//!
//! Today: `C2C.CallbackBeforeSendMsg` ([`Callbacks`] is the domain's
//! [`BeforeSendHook`](duet_core::callbacks::BeforeSendHook)).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use duet_core::callbacks::{BeforeSendHook, BeforeSendMsg, BeforeSendVerdict};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const BEFORE_SEND: &str = "C2C.CallbackBeforeSendMsg";

/// Every command Tencent documents for one-to-one chat; a `commands` list may name only these.
pub const COMMANDS: [&str; 11] = [
    BEFORE_SEND,
    "C2C.CallbackAfterSendMsg",
    "C2C.CallbackAfterMsgWithDraw",
    "C2C.CallbackAfterMsgReport",
    "State.StateChange",
    "Sns.CallbackFriendAdd",
    "Sns.CallbackFriendDelete",
    "Sns.CallbackBlackListAdd",
    "Sns.CallbackBlackListDelete",
    "Profile.CallbackPortraitSet",
    "Sns.CallbackPrevFriendAdd",
];

/// Tencent's code for a refusal by the backend (`ErrorCode` 1).
pub const REFUSED: u32 = 20006;
/// Tencent's code when the before-send callback failed and the app refuses then.
pub const CALLBACK_FAILED: u32 = 80003;

/// `[callbacks]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbacksConfig {
    /// Where callbacks go (`http` or `https`).
    pub url: String,
    /// Signs each callback (`Sign`, `RequestTime`) when set.
    #[serde(default)]
    pub token: Option<String>,
    /// The commands to send; all when absent.
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    /// How long a before-send callback may take (Tencent: 2 s).
    #[serde(default = "default_timeout_ms")]
    pub before_send_timeout_ms: u64,
    /// What a failed before-send callback means: deliver the message (Tencent's default) or refuse it.
    #[serde(default)]
    pub before_send_failure: FailureRule,
    /// Before-send callbacks in flight at once; beyond, the failure rule applies at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

impl std::fmt::Debug for CallbacksConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("CallbacksConfig")
            .field("url", &self.url)
            .field("commands", &self.commands)
            .field("before_send_timeout_ms", &self.before_send_timeout_ms)
            .field("before_send_failure", &self.before_send_failure)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

fn default_timeout_ms() -> u64 {
    2_000
}

fn default_concurrency() -> usize {
    256
}

impl CallbacksConfig {
    /// The configuration with only a URL: every command on, Tencent's timeout and failure rule.
    pub fn new(url: impl Into<String>) -> CallbacksConfig {
        CallbacksConfig {
            url: url.into(),
            token: None,
            commands: None,
            before_send_timeout_ms: default_timeout_ms(),
            before_send_failure: FailureRule::Deliver,
            concurrency: default_concurrency(),
        }
    }

    fn enabled(&self, command: &str) -> bool {
        self.commands.as_ref().is_none_or(|c| c.iter().any(|c| c == command))
    }
}

/// What a failed before-send callback (an error, a timeout, a bad answer, no free slot) means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureRule {
    /// Send the message as it is (Tencent's default).
    #[default]
    Deliver,
    /// Refuse it with 80003.
    Refuse,
}

/// Why a callback configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("[callbacks]: {0}")]
    Invalid(String),
}

/// The client of the app's callback URL.
pub struct Callbacks {
    config: CallbacksConfig,
    sdkappid: u64,
    client: reqwest::Client,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Callbacks {
    pub fn new(config: CallbacksConfig, sdkappid: u64) -> Result<Callbacks, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(invalid(format!("url {:?} is not an http or https URL", config.url)));
        }
        if let Some(unknown) = config.commands.iter().flatten().find(|c| !COMMANDS.contains(&c.as_str())) {
            return Err(invalid(format!("unknown command {unknown:?} in commands (known: {})", COMMANDS.join(", "))));
        }
        if config.before_send_timeout_ms == 0 || config.concurrency == 0 {
            return Err(invalid("before_send_timeout_ms and concurrency must be at least 1".into()));
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("duet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        let slots = Arc::new(tokio::sync::Semaphore::new(config.concurrency));
        Ok(Callbacks { config, sdkappid, client, slots })
    }

    /// Whether the before-send callback is on.
    pub fn before_send_enabled(&self) -> bool {
        self.config.enabled(BEFORE_SEND)
    }

    /// The query of a callback: Tencent's parameters, signed when a token is set.
    fn query(&self, command: &str, platform: &str, client_ip: Option<&str>) -> Vec<(&'static str, String)> {
        let mut q = vec![
            ("SdkAppid", self.sdkappid.to_string()),
            ("CallbackCommand", command.to_owned()),
            ("contenttype", "json".to_owned()),
            ("ClientIP", client_ip.unwrap_or_default().to_owned()),
            ("OptPlatform", platform.to_owned()),
        ];
        if let Some(token) = &self.config.token {
            let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            q.push(("Sign", sign(token, time)));
            q.push(("RequestTime", time.to_string()));
        }
        q
    }

    /// What the failure rule makes of a failed before-send callback.
    fn failed(&self, why: &str) -> BeforeSendVerdict {
        tracing::warn!(command = BEFORE_SEND, reason = why, rule = ?self.config.before_send_failure, "callback failed");
        match self.config.before_send_failure {
            FailureRule::Deliver => BeforeSendVerdict::Allow { body: None, cloud_custom_data: None },
            FailureRule::Refuse => {
                BeforeSendVerdict::Refuse { code: CALLBACK_FAILED, info: format!("the app's backend failed: {why}") }
            }
        }
    }
}

/// `Sign`: the lowercase hex SHA-256 of the token followed by the request time (Tencent's
/// `sha256(Token + RequestTime)`).
pub fn sign(token: &str, time: u64) -> String {
    let digest = Sha256::digest(format!("{token}{time}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the backend's answer to a before-send callback.
fn verdict(answer: &Value) -> Result<BeforeSendVerdict, String> {
    let code = answer.get("ErrorCode").and_then(Value::as_i64).ok_or("the answer has no numeric ErrorCode")?;
    let info = answer.get("ErrorInfo").and_then(Value::as_str).unwrap_or_default();
    Ok(match code {
        0 => {
            let body = match answer.get("MsgBody") {
                None | Some(Value::Null) => None,
                Some(b @ Value::Array(_)) => Some(b.clone()),
                Some(_) => return Err("MsgBody in the answer is not an array".into()),
            };
            let cloud_custom_data = match answer.get("CloudCustomData") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err("CloudCustomData in the answer is not a string".into()),
            };
            BeforeSendVerdict::Allow { body, cloud_custom_data }
        }
        1 => {
            let info = if info.is_empty() { "the message was refused by the app's backend" } else { info };
            BeforeSendVerdict::Refuse { code: REFUSED, info: info.to_owned() }
        }
        2 => BeforeSendVerdict::Drop,
        120_001..=130_000 => BeforeSendVerdict::Refuse { code: code as u32, info: info.to_owned() },
        other => return Err(format!("ErrorCode {other} means nothing to a before-send callback")),
    })
}

#[async_trait]
impl BeforeSendHook for Callbacks {
    async fn before_send(&self, msg: BeforeSendMsg) -> BeforeSendVerdict {
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            return self.failed("too many callbacks in flight");
        };
        let body: Value = serde_json::from_str(&msg.body).unwrap_or(Value::Array(Vec::new()));
        let key = format!("{}_{}_{}", msg.seq, msg.random, msg.time);
        let request = json!({
            "CallbackCommand": BEFORE_SEND,
            "From_Account": msg.from,
            "To_Account": msg.to,
            "MsgSeq": msg.seq,
            "MsgRandom": msg.random,
            "MsgTime": msg.time,
            "MsgKey": key,
            "OnlineOnlyFlag": u8::from(msg.online_only),
            "MsgBody": body,
            "CloudCustomData": msg.cloud_custom_data,
        });
        let query = self.query(BEFORE_SEND, msg.platform, msg.client_ip.as_deref());
        let timeout = Duration::from_millis(self.config.before_send_timeout_ms);
        let call = async {
            let response = self
                .client
                .post(&self.config.url)
                .query(&query)
                .json(&request)
                .send()
                .await
                .map_err(|e| format!("request: {e}"))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(format!("HTTP {}", response.status()));
            }
            let answer: Value = response.json().await.map_err(|e| format!("the answer is not JSON: {e}"))?;
            verdict(&answer)
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(why)) => self.failed(&why),
            Err(_) => self.failed(&format!("no answer within {timeout:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_is_the_sha256_of_token_then_time() {
        // `printf 'xxxyyy1669872112' | sha256sum`
        assert_eq!(sign("xxxyyy", 1_669_872_112), "e78a85473bed2cdc8d6fa8c4d5a4ba4735fd64156e15a99516b9890293e135de");
    }

    #[test]
    fn verdicts_by_error_code() {
        let allow = BeforeSendVerdict::Allow { body: None, cloud_custom_data: None };
        assert_eq!(verdict(&json!({"ActionStatus": "OK", "ErrorCode": 0})), Ok(allow));
        let body = json!([{"MsgType": "TIMTextElem", "MsgContent": {"Text": "***"}}]);
        assert_eq!(
            verdict(&json!({"ErrorCode": 0, "MsgBody": body, "CloudCustomData": "x"})),
            Ok(BeforeSendVerdict::Allow { body: Some(body), cloud_custom_data: Some("x".into()) })
        );
        assert!(matches!(verdict(&json!({"ErrorCode": 1})), Ok(BeforeSendVerdict::Refuse { code: 20006, .. })));
        assert_eq!(verdict(&json!({"ErrorCode": 2})), Ok(BeforeSendVerdict::Drop));
        assert_eq!(
            verdict(&json!({"ErrorCode": 120_005, "ErrorInfo": "no ads"})),
            Ok(BeforeSendVerdict::Refuse { code: 120_005, info: "no ads".into() })
        );
        assert!(verdict(&json!({"ErrorCode": 3})).is_err());
        assert!(verdict(&json!({"ErrorCode": 130_001})).is_err());
        assert!(verdict(&json!({"ErrorCode": "0"})).is_err());
        assert!(verdict(&json!({"ErrorCode": 0, "MsgBody": "text"})).is_err());
    }
}

//! The app backend's callbacks as Tencent IM sends them (`docs/callbacks.md`): a `POST` to the
//! configured URL with the query `SdkAppid`, `CallbackCommand`, `contenttype=json`, `ClientIP`,
//! `OptPlatform` (and `Sign`, `RequestTime` when a token is set: `Sign` is the lowercase hex SHA-256 of
//! the token followed by the request time), and a JSON body. The answer must be HTTP 200 with JSON; any
//! other answer, a timeout, or no free slot among the calls in flight, is a failure, which the configured
//! rule turns into a delivery (Tencent's default) or a refusal (80003).
//!
//! [`Callbacks`] is the domain's [`BeforeSendHook`] (`C2C.CallbackBeforeSendMsg`, answered in the send)
//! and its [`EventSink`] (the after-event callbacks, which the domain's outbox worker hands over one at a
//! time, each with its event id in the `X-Duet-Event-Id` header).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use duet_core::callbacks::{
    AfterEvent, BeforeSendHook, BeforeSendMsg, BeforeSendVerdict, Command, EventKind, EventSink, Failure, NotifyConfig,
    Pair, QueuedEvent, Stats,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The header that carries an after-event callback's id: the same for every attempt of one event, never
/// reused for another.
pub const EVENT_ID_HEADER: &str = "X-Duet-Event-Id";

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
    /// How long an after-event callback may take before it counts as failed (and is tried again).
    #[serde(default = "default_timeout_ms")]
    pub after_event_timeout_ms: u64,
    /// After-event callbacks in flight at once (one user's go one at a time, in order).
    #[serde(default = "default_after_event_concurrency")]
    pub after_event_concurrency: usize,
    /// Failed after-event callbacks are tried again after 1 s, 2 s, 4 s, … up to this.
    #[serde(default = "default_retry_max_interval_secs")]
    pub retry_max_interval_secs: i64,
    /// An after-event callback still failing this long after its event is given up on.
    #[serde(default = "default_give_up_after_secs")]
    pub give_up_after_secs: i64,
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
            .field("after_event_timeout_ms", &self.after_event_timeout_ms)
            .field("after_event_concurrency", &self.after_event_concurrency)
            .field("retry_max_interval_secs", &self.retry_max_interval_secs)
            .field("give_up_after_secs", &self.give_up_after_secs)
            .finish_non_exhaustive()
    }
}

fn default_timeout_ms() -> u64 {
    2_000
}

fn default_concurrency() -> usize {
    256
}

fn default_after_event_concurrency() -> usize {
    64
}

fn default_retry_max_interval_secs() -> i64 {
    300
}

fn default_give_up_after_secs() -> i64 {
    7 * 86_400
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
            after_event_timeout_ms: default_timeout_ms(),
            after_event_concurrency: default_after_event_concurrency(),
            retry_max_interval_secs: default_retry_max_interval_secs(),
            give_up_after_secs: default_give_up_after_secs(),
        }
    }

    fn enabled(&self, command: Command) -> bool {
        self.commands.as_ref().is_none_or(|c| c.iter().any(|c| c == command.name()))
    }

    /// How the domain's outbox worker sends after-event callbacks, on node `node`.
    pub fn notify_config(&self, node: &str) -> NotifyConfig {
        NotifyConfig {
            concurrency: self.after_event_concurrency,
            give_up_after_secs: self.give_up_after_secs,
            backoff_max_secs: self.retry_max_interval_secs,
            node: node.to_owned(),
            ..NotifyConfig::default()
        }
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
    stats: Stats,
}

impl Callbacks {
    pub fn new(config: CallbacksConfig, sdkappid: u64) -> Result<Callbacks, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(invalid(format!("url {:?} is not an http or https URL", config.url)));
        }
        if let Some(unknown) = config.commands.iter().flatten().find(|c| Command::from_name(c).is_none()) {
            let known: Vec<&str> = Command::ALL.iter().map(|c| c.name()).collect();
            return Err(invalid(format!("unknown command {unknown:?} in commands (known: {})", known.join(", "))));
        }
        if config.before_send_timeout_ms == 0
            || config.concurrency == 0
            || config.after_event_timeout_ms == 0
            || config.after_event_concurrency == 0
        {
            return Err(invalid(
                "before_send_timeout_ms, concurrency, after_event_timeout_ms and after_event_concurrency must be at \
                 least 1"
                    .into(),
            ));
        }
        if config.retry_max_interval_secs < 1 || config.give_up_after_secs < 1 {
            return Err(invalid("retry_max_interval_secs and give_up_after_secs must be at least 1".into()));
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("duet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("HTTP client: {e}")))?;
        let slots = Arc::new(tokio::sync::Semaphore::new(config.concurrency));
        Ok(Callbacks { config, sdkappid, client, slots, stats: Stats::default() })
    }

    /// Whether the before-send callback is on.
    pub fn before_send_enabled(&self) -> bool {
        self.config.enabled(Command::BeforeSendMsg)
    }

    /// Posts `body` as `command` and reads the answer: HTTP 200 with JSON, within `timeout`.
    async fn call(
        &self,
        query: &[(&'static str, String)],
        body: &Value,
        event_id: Option<u64>,
        timeout: Duration,
    ) -> Result<Value, Failure> {
        let fail = |reason: String| Failure { timed_out: false, reason };
        let call = async {
            let mut request = self.client.post(&self.config.url).query(query).json(body);
            if let Some(id) = event_id {
                request = request.header(EVENT_ID_HEADER, id.to_string());
            }
            let response = request.send().await.map_err(|e| fail(format!("request: {}", described(e))))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(fail(format!("HTTP {}", response.status())));
            }
            response.json::<Value>().await.map_err(|e| fail(format!("the answer is not JSON: {}", described(e))))
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure { timed_out: true, reason: format!("no answer within {timeout:?}") }),
        }
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
        tracing::warn!(command = Command::BeforeSendMsg.name(), reason = why, rule = ?self.config.before_send_failure, "callback failed");
        match self.config.before_send_failure {
            FailureRule::Deliver => BeforeSendVerdict::Allow { body: None, cloud_custom_data: None },
            FailureRule::Refuse => {
                BeforeSendVerdict::Refuse { code: CALLBACK_FAILED, info: format!("the app's backend failed: {why}") }
            }
        }
    }
}

/// A failed call's error with its causes, without its URL: the URL's query holds the signature (`Sign`),
/// and the reason is logged.
fn described(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
            self.stats.record(
                Command::BeforeSendMsg,
                &Err(Failure { timed_out: false, reason: "too many callbacks in flight".into() }),
            );
            return self.failed("too many callbacks in flight");
        };
        let body: Value = serde_json::from_str(&msg.body).unwrap_or(Value::Array(Vec::new()));
        let key = format!("{}_{}_{}", msg.seq, msg.random, msg.time);
        let request = json!({
            "CallbackCommand": Command::BeforeSendMsg.name(),
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
        let query = self.query(Command::BeforeSendMsg.name(), msg.platform, msg.client_ip.as_deref());
        let timeout = Duration::from_millis(self.config.before_send_timeout_ms);
        let outcome = self.call(&query, &request, None, timeout).await.and_then(|answer| {
            verdict(&answer).map_err(|reason| Failure { timed_out: false, reason: format!("bad answer: {reason}") })
        });
        self.stats.record(Command::BeforeSendMsg, &outcome.as_ref().map(drop).map_err(Clone::clone));
        outcome.unwrap_or_else(|failure| self.failed(&failure.reason))
    }
}

#[async_trait]
impl EventSink for Callbacks {
    fn enabled(&self, command: Command) -> bool {
        self.config.enabled(command)
    }

    async fn deliver(&self, queued: &QueuedEvent) -> Result<(), Failure> {
        let event = &queued.event;
        let command = event.command();
        // Tencent writes `IOS` in `State.StateChange` and `iOS` in every other callback.
        let platform = match (command, event.platform.as_str()) {
            (Command::StateChange, "iOS") => "IOS",
            (_, p) => p,
        };
        let query = self.query(command.name(), platform, event.client_ip.as_deref());
        let timeout = Duration::from_millis(self.config.after_event_timeout_ms);
        // The answer's `ErrorCode` means nothing here (Tencent ignores it too): an answer is a delivery.
        self.call(&query, &body(event), Some(queued.id), timeout).await.map(drop)
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Tencent's body of an after-event callback.
pub fn body(event: &AfterEvent) -> Value {
    let pairs = |pairs: &[Pair], initiator: bool| -> Vec<Value> {
        pairs
            .iter()
            .map(|p| {
                let mut pair = json!({"From_Account": p.from, "To_Account": p.to});
                if initiator {
                    pair["Initiator_Account"] = json!(p.initiator.as_deref().unwrap_or(&p.from));
                }
                pair
            })
            .collect()
    };
    let mut body = match &event.kind {
        EventKind::SendMsg {
            from,
            to,
            seq,
            random,
            time,
            online_only,
            body,
            cloud_custom_data,
            result,
            error_info,
            unread,
        } => json!({
            "From_Account": from,
            "To_Account": to,
            "MsgSeq": seq,
            "MsgRandom": random,
            "MsgTime": time,
            "MsgKey": format!("{seq}_{random}_{time}"),
            "OnlineOnlyFlag": u8::from(*online_only),
            "MsgBody": serde_json::from_str::<Value>(body).unwrap_or(Value::Array(Vec::new())),
            "CloudCustomData": cloud_custom_data,
            "SendMsgResult": result,
            "ErrorInfo": error_info,
            "UnreadMsgNum": unread,
        }),
        EventKind::MsgWithdraw { from, to, key, unread } => {
            json!({"From_Account": from, "To_Account": to, "MsgKey": key, "UnreadMsgNum": unread})
        }
        EventKind::MsgReport { reporter, peer, last_read_time, unread } => json!({
            "Report_Account": reporter,
            "Peer_Account": peer,
            "LastReadTime": last_read_time,
            "UnreadMsgNum": unread,
        }),
        EventKind::StateChange { action, reason } => {
            json!({"Info": {"Action": action, "To_Account": event.user, "Reason": reason}})
        }
        EventKind::FriendAdd { pairs: list, client_cmd, admin, force } => json!({
            "PairList": pairs(list, true),
            "ClientCmd": client_cmd,
            "Admin_Account": admin.as_deref().unwrap_or_default(),
            "ForceFlag": u8::from(*force),
        }),
        EventKind::FriendDelete { pairs: list }
        | EventKind::BlackListAdd { pairs: list }
        | EventKind::BlackListDelete { pairs: list } => json!({"PairList": pairs(list, false)}),
        EventKind::PortraitSet { operator, items } => json!({
            "Operator_Account": operator,
            "From_Account": event.user,
            "ProfileItem": items.iter().map(|(tag, value)| json!({"Tag": tag, "Value": value})).collect::<Vec<_>>(),
        }),
    };
    body["CallbackCommand"] = json!(event.command().name());
    body["EventTime"] = json!(event.time_ms);
    body
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

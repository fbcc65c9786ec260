//! What every provider reads the same way in a push service's answer: transport failures, the status,
//! `Retry-After`, the body (read whole, up to a bound) and a numeric code in it; the outcomes built the
//! same way (a retry with no time said, a reason naming the call it came from); and the one log line for
//! a push that did not go out. Each provider maps its maker's codes to an [`Outcome`] itself.

use std::time::Duration;

use duet_core::push::{Outcome, ProviderKind};
use duet_core::redact::{redact, scrub};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The most of an answer's body that is kept: the makers' answers are small JSON; a proxy's error page
/// need not be read to its end.
const MAX_BODY: usize = 64 * 1024;

/// The longest `Retry-After` honoured; a longer one is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A push service's answer.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// `Retry-After`, when given in seconds.
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

/// Sends `request` and reads the answer. A failure to build the request (a header value the
/// configuration made invalid) is [`Outcome::Failed`]; the network, a timeout or a broken answer is
/// [`Outcome::Retry`].
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<Reply, Outcome> {
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY {
            break;
        }
    }
    Ok(Reply { status, retry_after, body })
}

/// A request that did not get an answer. The URL is left out of the reason: APNs' holds the device token.
fn transport(error: reqwest::Error) -> Outcome {
    let error = error.without_url();
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        reason.push_str(": ");
        reason.push_str(&e.to_string());
        source = e.source();
    }
    if error.is_builder() { Outcome::Failed { reason } } else { retry(reason) }
}

/// A retry for `reason`, with no time said.
pub(crate) fn retry(reason: String) -> Outcome {
    Outcome::Retry { after: None, reason }
}

/// `outcome` with its reason prefixed by `what` (`"token request"`): which call did not get an answer.
pub(crate) fn context(what: &str, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Sent => Outcome::Sent,
        Outcome::Retry { after, reason } => Outcome::Retry { after, reason: format!("{what}: {reason}") },
        Outcome::InvalidToken { reason } => Outcome::InvalidToken { reason: format!("{what}: {reason}") },
        Outcome::Failed { reason } => Outcome::Failed { reason: format!("{what}: {reason}") },
    }
}

/// A code as a number, whether the service sent `0` or `"0"`.
pub(crate) fn code(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the push services and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

impl Reply {
    /// The body as `T`, or `None` when it is not that JSON. The body is read as `reqwest`'s `text()`
    /// reads UTF-8: a byte-order mark dropped, a bad byte replaced.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Option<T> {
        let text = String::from_utf8_lossy(&self.body);
        serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(&text)).ok()
    }

    /// The JSON body of a service that answers with a numeric code in `field` (`code`, `result`), and
    /// that code. 429 and 5xx are a retry, whatever the body; so is a success without a code, which
    /// is not an answer; another status without a code fails.
    pub(crate) fn coded(&self, field: &str) -> Result<(i64, Value), Outcome> {
        let status = self.status;
        if self.is_transient() {
            return Err(retry(format!("HTTP {status}")));
        }
        let body: Value = self.json().unwrap_or(Value::Null);
        match body.get(field).and_then(code) {
            Some(code) => Ok((code, body)),
            None if status.is_success() => Err(retry(format!("answer without a {field}"))),
            None => Err(Outcome::Failed { reason: format!("HTTP {status}") }),
        }
    }

    /// Whether the status says "later": 429 or a 5xx.
    pub(crate) fn is_transient(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS || self.status.is_server_error()
    }

    /// The outcome of an answer whose body says nothing more: a retry for 429 and 5xx, else a failure.
    pub(crate) fn by_status(&self, service: &str) -> Outcome {
        let reason = format!("{service} answered {}: {}", self.status, self.snippet());
        if self.is_transient() {
            Outcome::Retry { after: self.retry_after, reason }
        } else {
            Outcome::Failed { reason }
        }
    }

    /// The start of the body, for a log line.
    pub(crate) fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(200) {
            Some((end, _)) => format!("{}…", &text[..end]),
            None if text.is_empty() => "(empty body)".to_owned(),
            None => text.to_owned(),
        }
    }
}

/// Logs a push that did not go out (the token only through [`redact`]) and hands its outcome back, with
/// the token scrubbed from its reason: some makers echo the token in their answer, and the worker logs
/// the reason again.
pub(crate) fn logged(provider: ProviderKind, token: &str, outcome: Outcome) -> Outcome {
    let clean = |reason: String| match scrub(&reason, token) {
        std::borrow::Cow::Borrowed(_) => reason,
        std::borrow::Cow::Owned(scrubbed) => scrubbed,
    };
    let outcome = match outcome {
        Outcome::Sent => return Outcome::Sent,
        Outcome::Retry { after, reason } => Outcome::Retry { after, reason: clean(reason) },
        Outcome::InvalidToken { reason } => Outcome::InvalidToken { reason: clean(reason) },
        Outcome::Failed { reason } => Outcome::Failed { reason: clean(reason) },
    };
    match &outcome {
        Outcome::Sent => {}
        Outcome::Retry { after, reason } => {
            tracing::warn!(%provider, token = %redact(token), retry_after = ?after, %reason, "push not sent, to retry");
        }
        Outcome::InvalidToken { reason } => {
            tracing::warn!(%provider, token = %redact(token), %reason, "push token refused");
        }
        Outcome::Failed { reason } => {
            tracing::warn!(%provider, token = %redact(token), %reason, "push failed");
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn retry_after_takes_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 30 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("99999999"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn snippet_is_bounded() {
        let reply = Reply { status: StatusCode::BAD_GATEWAY, retry_after: None, body: "é".repeat(500).into_bytes() };
        assert_eq!(reply.snippet().chars().count(), 201);
        let empty = Reply { status: StatusCode::BAD_GATEWAY, retry_after: None, body: Vec::new() };
        assert_eq!(empty.snippet(), "(empty body)");
        assert!(matches!(empty.by_status("x"), Outcome::Retry { .. }));
        let bad = Reply { status: StatusCode::BAD_REQUEST, retry_after: None, body: Vec::new() };
        assert!(matches!(bad.by_status("x"), Outcome::Failed { .. }));
    }

    fn reply(status: u16, body: &[u8]) -> Reply {
        Reply { status: StatusCode::from_u16(status).unwrap(), retry_after: None, body: body.to_vec() }
    }

    #[test]
    fn json_reads_utf8_as_text_does() {
        let with_bom = reply(200, "\u{feff}{\"code\": 0}".as_bytes());
        assert_eq!(with_bom.json::<Value>(), Some(serde_json::json!({"code": 0})));
        let bad_byte = reply(200, b"{\"desc\": \"\xff\"}");
        assert_eq!(bad_byte.json::<Value>(), Some(serde_json::json!({"desc": "\u{fffd}"})));
        assert_eq!(reply(200, b"<html>").json::<Value>(), None);
    }

    #[test]
    fn a_code_is_a_number_or_a_string_of_digits() {
        let (code, body) = reply(200, br#"{"code": "200", "value": {}}"#).coded("code").unwrap();
        assert_eq!((code, &body["value"]), (200, &serde_json::json!({})));
        assert_eq!(reply(400, br#"{"result": -1}"#).coded("result").unwrap().0, -1);
        let retry = |r: Result<(i64, Value), Outcome>| matches!(r, Err(Outcome::Retry { after: None, .. }));
        assert!(retry(reply(503, br#"{"code": 0}"#).coded("code")));
        assert!(retry(reply(200, b"not json").coded("code")));
        assert!(retry(reply(200, br#"{"result": 0}"#).coded("code")));
        assert_eq!(reply(404, b"").coded("code").unwrap_err(), Outcome::Failed { reason: "HTTP 404 Not Found".into() });
    }

    #[test]
    fn context_names_the_call() {
        let outcome = context("auth request", retry("HTTP 503 Service Unavailable".into()));
        assert_eq!(outcome, retry("auth request: HTTP 503 Service Unavailable".into()));
    }
}

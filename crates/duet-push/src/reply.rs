//! What every provider reads the same way in a push service's answer: transport failures, the status,
//! `Retry-After` and the body (read whole, up to a bound), and the one log line for a push that did not go
//! out. Each provider maps its maker's codes to an [`Outcome`] itself.

use std::time::Duration;

use duet_core::push::{Outcome, ProviderKind, redact};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

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
    if error.is_builder() { Outcome::Failed { reason } } else { Outcome::Retry { after: None, reason } }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the push services and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

impl Reply {
    /// The body as `T`, or `None` when it is not that JSON.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
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

/// Logs a push that did not go out (the token only through [`redact`]) and hands its outcome back.
pub(crate) fn logged(provider: ProviderKind, token: &str, outcome: Outcome) -> Outcome {
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
}

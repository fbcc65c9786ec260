//! A credential fetched from a provider (an OAuth2 access token, an auth token) and kept until shortly
//! before it expires. Concurrent sends that find it missing or stale fetch it once: the others wait. A
//! send the provider refuses for the credential is tried once more with a new one
//! ([`CachedToken::renewing_once`]); the OAuth 2.0 client-credentials call that Huawei and Honor share
//! is [`client_credentials`].

use std::future::Future;
use std::time::{Duration, Instant};

use duet_core::push::{Outcome, ProviderKind};
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::reply::{self, retry};

/// Renew this long before the provider's expiry.
const MARGIN: Duration = Duration::from_secs(300);

pub(crate) struct CachedToken {
    provider: ProviderKind,
    /// What the provider calls it ("access token", "auth token"), for reasons and log lines.
    name: &'static str,
    current: Mutex<Option<(String, Instant)>>,
}

/// What one request sent with the credential came to.
pub(crate) enum Attempt {
    Done(Outcome),
    /// The credential expired or was refused (the reason says how): renew it and send again.
    Renew(String),
}

impl CachedToken {
    pub(crate) fn new(provider: ProviderKind, name: &'static str) -> CachedToken {
        CachedToken { provider, name, current: Mutex::new(None) }
    }

    /// Runs `attempt` with the credential, fetched by `fetch` (the token and how long it lives) when
    /// there is none or it is stale. When the attempt says the credential was refused, forgets it and
    /// runs the attempt once more with a new one; refused again, the push fails. A failed fetch is the
    /// push's outcome.
    pub(crate) async fn renewing_once<F, FetchFut, A, AttemptFut>(&self, fetch: F, attempt: A) -> Outcome
    where
        F: Fn() -> FetchFut,
        FetchFut: Future<Output = Result<(String, Duration), Outcome>>,
        A: Fn(String) -> AttemptFut,
        AttemptFut: Future<Output = Attempt>,
    {
        let mut renewed = false;
        loop {
            let token = match self.get(&fetch).await {
                Ok(token) => token,
                Err(outcome) => return outcome,
            };
            match attempt(token.clone()).await {
                Attempt::Done(outcome) => return outcome,
                Attempt::Renew(reason) if !renewed => {
                    tracing::debug!(provider = %self.provider, credential = self.name, %reason, "renewing the credential");
                    self.invalidate(&token).await;
                    renewed = true;
                }
                Attempt::Renew(reason) => {
                    return Outcome::Failed { reason: format!("{} refused after renewal: {reason}", self.name) };
                }
            }
        }
    }

    /// The cached token, or a new one from `fetch` (which returns the token and how long it lives).
    async fn get<F, Fut, E>(&self, fetch: F) -> Result<String, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, Duration), E>>,
    {
        let mut current = self.current.lock().await;
        if let Some((token, until)) = &*current
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch().await?;
        let until = Instant::now() + lifetime.saturating_sub(MARGIN).max(lifetime / 2);
        *current = Some((token.clone(), until));
        Ok(token)
    }

    /// Forgets `token` (the provider said it expired or is invalid), unless another was fetched since.
    async fn invalidate(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(t, _)| t == token) {
            *current = None;
        }
    }
}

/// An OAuth 2.0 access token by the client-credentials grant (a form POST to `token_url`) and how long
/// it lives (`expires_in`, an hour when absent). 429 and 5xx, or a success without a token, are a
/// retry; any other refusal fails the push.
pub(crate) async fn client_credentials(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
) -> Result<(String, Duration), Outcome> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", client_secret)
        .finish();
    let request = http.post(token_url).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(form);
    let reply = reply::send(request).await.map_err(|o| reply::context("token request", o))?;
    let status = reply.status;
    if reply.is_transient() {
        return Err(retry(format!("token request: HTTP {status}")));
    }
    let body: Value = reply.json().unwrap_or(Value::Null);
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the fetches and hands out `T-1`, `T-2`, …
    async fn fetch(count: &AtomicUsize) -> Result<(String, Duration), Outcome> {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        Ok((format!("T-{n}"), Duration::from_secs(3600)))
    }

    #[tokio::test]
    async fn a_refused_credential_is_renewed_once_then_kept() {
        let token = CachedToken::new(ProviderKind::Huawei, "access token");
        let fetches = AtomicUsize::new(0);
        let outcome =
            token
                .renewing_once(
                    || fetch(&fetches),
                    |t| async move {
                        if t == "T-1" { Attempt::Renew("expired".into()) } else { Attempt::Done(Outcome::Sent) }
                    },
                )
                .await;
        assert_eq!(outcome, Outcome::Sent);
        let used =
            token.renewing_once(|| fetch(&fetches), |t| async move { Attempt::Done(Outcome::Failed { reason: t }) });
        assert_eq!(used.await, Outcome::Failed { reason: "T-2".into() });
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_credential_refused_after_renewal_fails_without_a_loop() {
        let token = CachedToken::new(ProviderKind::Oppo, "auth token");
        let (fetches, attempts) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let outcome = token
            .renewing_once(
                || fetch(&fetches),
                |_| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    async { Attempt::Renew("11 Invalid AuthToken".into()) }
                },
            )
            .await;
        assert_eq!(
            outcome,
            Outcome::Failed { reason: "auth token refused after renewal: 11 Invalid AuthToken".into() }
        );
        assert_eq!((fetches.load(Ordering::SeqCst), attempts.load(Ordering::SeqCst)), (2, 2));
    }

    #[tokio::test]
    async fn a_failed_fetch_is_the_outcome() {
        let token = CachedToken::new(ProviderKind::Vivo, "auth token");
        let busy = || async { Err(retry("auth request: HTTP 503 Service Unavailable".into())) };
        let outcome = token.renewing_once(busy, |_| async { Attempt::Done(Outcome::Sent) }).await;
        assert!(matches!(outcome, Outcome::Retry { after: None, .. }), "{outcome:?}");
    }
}

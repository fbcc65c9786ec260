//! A credential fetched from a provider (an OAuth2 access token, an auth token) and kept until shortly
//! before it expires. Concurrent sends that find it missing or stale fetch it once: the others wait.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// Renew this long before the provider's expiry.
const MARGIN: Duration = Duration::from_secs(300);

#[derive(Default)]
pub(crate) struct CachedToken {
    current: Mutex<Option<(String, Instant)>>,
}

impl CachedToken {
    /// The cached token, or a new one from `fetch` (which returns the token and how long it lives).
    pub(crate) async fn get<F, Fut, E>(&self, fetch: F) -> Result<String, E>
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
    pub(crate) async fn invalidate(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(t, _)| t == token) {
            *current = None;
        }
    }
}

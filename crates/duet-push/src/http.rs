//! The HTTP clients the providers share: one that speaks HTTP/1.1 or HTTP/2 as the server offers (ALPN),
//! and one that speaks only HTTP/2 (APNs has no HTTP/1.1 endpoint; over plain `http://` it assumes
//! HTTP/2 from the first byte, for tests and private gateways).

use std::path::Path;
use std::time::Duration;

use reqwest::Certificate;

use crate::ConfigError;

/// How long one request to a provider may take, connection included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Clients {
    /// HTTP/1.1 or HTTP/2, by ALPN.
    pub(crate) any: reqwest::Client,
    /// HTTP/2 only.
    pub(crate) h2: reqwest::Client,
}

impl Clients {
    /// Clients that trust the system's roots and, when given, the PEM certificates in `ca_file`.
    pub fn new(ca_file: Option<&Path>) -> Result<Clients, ConfigError> {
        let mut roots = Vec::new();
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| ConfigError::CaFile { path: path.to_owned(), message: e.to_string() })?;
            roots = Certificate::from_pem_bundle(&pem)
                .map_err(|e| ConfigError::CaFile { path: path.to_owned(), message: e.to_string() })?;
            if roots.is_empty() {
                let message = "holds no CERTIFICATE block".to_owned();
                return Err(ConfigError::CaFile { path: path.to_owned(), message });
            }
        }
        let builder = || {
            let mut b = reqwest::Client::builder()
                .use_rustls_tls()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(300))
                .user_agent(concat!("duet/", env!("CARGO_PKG_VERSION")));
            for root in &roots {
                b = b.add_root_certificate(root.clone());
            }
            b
        };
        let any = builder().build().map_err(|e| ConfigError::Client(e.to_string()))?;
        let h2 = builder()
            .http2_prior_knowledge()
            .http2_keep_alive_interval(Duration::from_secs(60))
            .http2_keep_alive_while_idle(true)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Clients { any, h2 })
    }
}

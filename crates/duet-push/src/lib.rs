//! Duet's push providers: one HTTP client per maker's push service, each implementing
//! [`duet_core::push::Provider`]. Each follows its maker's documented API (`docs/push.md` cites them):
//!
//! * [`apns`]: Apple, HTTP/2 with an ES256 provider token (JWT) from a `.p8` key;
//! * [`fcm`]: Google's FCM HTTP v1, with a service account's OAuth2 token (an RS256 JWT exchanged);
//! * [`huawei`], [`honor`]: OAuth2 client credentials, JSON;
//! * [`xiaomi`]: the app secret in a header, a form;
//! * [`oppo`], [`vivo`]: an auth token from a signed request (SHA-256, MD5), then JSON or a form;
//! * [`meizu`]: every request signed (MD5 of the sorted parameters and the secret), a form;
//! * [`webhook`]: the app's own gateway, a JSON POST signed with HMAC-SHA256.
//!
//! Every endpoint URL can be overridden (tests, private gateways). [`ProvidersConfig`] is the `[push.*]`
//! part of the TOML file; [`ProvidersConfig::providers`] builds the configured ones.

pub mod apns;
pub mod fcm;
pub mod honor;
pub mod huawei;
pub mod meizu;
pub mod oppo;
pub mod vivo;
pub mod webhook;
pub mod xiaomi;

mod http;
mod jwt;
mod reply;
mod text;
mod token;

use std::path::PathBuf;
use std::sync::Arc;

use duet_core::push::Provider;
use serde::Deserialize;

pub use crate::http::Clients;

/// The providers' part of the configuration: `[push.apns]`, `[push.fcm]`, … Each present section turns
/// its provider on.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    pub apns: Option<apns::ApnsConfig>,
    pub fcm: Option<fcm::FcmConfig>,
    pub huawei: Option<huawei::HuaweiConfig>,
    pub honor: Option<honor::HonorConfig>,
    pub xiaomi: Option<xiaomi::XiaomiConfig>,
    pub oppo: Option<oppo::OppoConfig>,
    pub vivo: Option<vivo::VivoConfig>,
    pub meizu: Option<meizu::MeizuConfig>,
    pub webhook: Option<webhook::WebhookConfig>,
    /// Extra PEM root certificates to trust besides the system's (a private gateway's CA, a test's).
    pub ca_file: Option<PathBuf>,
}

/// Why a provider's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("[push.{provider}]: {message}")]
    Provider { provider: &'static str, message: String },
    #[error("push ca_file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("push HTTP client: {0}")]
    Client(String),
}

/// Checks that `[push.<provider>]`'s `field` is an `http` or `https` URL.
pub(crate) fn check_url(provider: &'static str, field: &str, url: &str) -> Result<(), ConfigError> {
    let message = match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => return Ok(()),
        Ok(_) => format!("{field} {url:?} is not an http(s) URL"),
        Err(e) => format!("{field} {url:?}: {e}"),
    };
    Err(ConfigError::Provider { provider, message })
}

impl ProvidersConfig {
    /// Builds the configured providers (reading their key files).
    pub fn providers(&self) -> Result<Vec<Arc<dyn Provider>>, ConfigError> {
        let clients = Clients::new(self.ca_file.as_deref())?;
        let mut out: Vec<Arc<dyn Provider>> = Vec::new();
        if let Some(c) = &self.apns {
            out.push(Arc::new(apns::Apns::new(c, &clients)?));
        }
        if let Some(c) = &self.fcm {
            out.push(Arc::new(fcm::Fcm::new(c, &clients)?));
        }
        if let Some(c) = &self.huawei {
            out.push(Arc::new(huawei::Huawei::new(c, &clients)?));
        }
        if let Some(c) = &self.honor {
            out.push(Arc::new(honor::Honor::new(c, &clients)?));
        }
        if let Some(c) = &self.xiaomi {
            out.push(Arc::new(xiaomi::Xiaomi::new(c, &clients)?));
        }
        if let Some(c) = &self.oppo {
            out.push(Arc::new(oppo::Oppo::new(c, &clients)?));
        }
        if let Some(c) = &self.vivo {
            out.push(Arc::new(vivo::Vivo::new(c, &clients)?));
        }
        if let Some(c) = &self.meizu {
            out.push(Arc::new(meizu::Meizu::new(c, &clients)?));
        }
        if let Some(c) = &self.webhook {
            out.push(Arc::new(webhook::Webhook::new(c, &clients)?));
        }
        Ok(out)
    }
}

//! Oppo: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OppoConfig {}

pub struct Oppo;

impl Oppo {
    pub fn new(_: &OppoConfig, _: &Clients) -> Result<Oppo, ConfigError> {
        Err(ConfigError::Provider { provider: "oppo", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Oppo {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Oppo
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

//! Meizu: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeizuConfig {}

pub struct Meizu;

impl Meizu {
    pub fn new(_: &MeizuConfig, _: &Clients) -> Result<Meizu, ConfigError> {
        Err(ConfigError::Provider { provider: "meizu", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Meizu {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Meizu
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

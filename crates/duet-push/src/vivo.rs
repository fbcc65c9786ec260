//! Vivo: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VivoConfig {}

pub struct Vivo;

impl Vivo {
    pub fn new(_: &VivoConfig, _: &Clients) -> Result<Vivo, ConfigError> {
        Err(ConfigError::Provider { provider: "vivo", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Vivo {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Vivo
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

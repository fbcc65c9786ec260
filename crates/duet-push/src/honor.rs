//! Honor: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HonorConfig {}

pub struct Honor;

impl Honor {
    pub fn new(_: &HonorConfig, _: &Clients) -> Result<Honor, ConfigError> {
        Err(ConfigError::Provider { provider: "honor", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Honor {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Honor
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

//! Xiaomi: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XiaomiConfig {}

pub struct Xiaomi;

impl Xiaomi {
    pub fn new(_: &XiaomiConfig, _: &Clients) -> Result<Xiaomi, ConfigError> {
        Err(ConfigError::Provider { provider: "xiaomi", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Xiaomi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Xiaomi
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

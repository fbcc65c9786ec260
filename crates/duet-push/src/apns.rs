//! Apns: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {}

pub struct Apns;

impl Apns {
    pub fn new(_: &ApnsConfig, _: &Clients) -> Result<Apns, ConfigError> {
        Err(ConfigError::Provider { provider: "apns", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Apns {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Apns
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

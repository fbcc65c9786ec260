//! Webhook: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {}

pub struct Webhook;

impl Webhook {
    pub fn new(_: &WebhookConfig, _: &Clients) -> Result<Webhook, ConfigError> {
        Err(ConfigError::Provider { provider: "webhook", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Webhook {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Webhook
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

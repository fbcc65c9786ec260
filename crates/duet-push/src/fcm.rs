//! Fcm: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {}

pub struct Fcm;

impl Fcm {
    pub fn new(_: &FcmConfig, _: &Clients) -> Result<Fcm, ConfigError> {
        Err(ConfigError::Provider { provider: "fcm", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Fcm {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Fcm
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

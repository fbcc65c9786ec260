//! Huawei: not written yet (the provider's module replaces this placeholder).

use async_trait::async_trait;
use duet_core::push::{Notification, Outcome, Provider, ProviderKind, Target};
use serde::Deserialize;

use crate::{Clients, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiConfig {}

pub struct Huawei;

impl Huawei {
    pub fn new(_: &HuaweiConfig, _: &Clients) -> Result<Huawei, ConfigError> {
        Err(ConfigError::Provider { provider: "huawei", message: "not built yet".into() })
    }
}

#[async_trait]
impl Provider for Huawei {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Huawei
    }

    async fn send(&self, _: &Target, _: &Notification) -> Outcome {
        Outcome::Failed { reason: "not built yet".into() }
    }
}

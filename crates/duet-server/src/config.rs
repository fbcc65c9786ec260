//! Configuration in two stages: [`FileConfig`] is what a TOML file may say (unknown keys refused);
//! the binary merges it with flags and `DUET_*` environment variables into a validated [`Config`].
//! This crate never reads the environment or files for configuration itself.

use std::path::PathBuf;
use std::time::Duration;

use duet_core::CoreConfig;
use duet_store_sqlite::Durability;
use serde::Deserialize;

/// The default listen address: all interfaces, a port clear of the usual services'.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7080";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./duet-data";
/// The default SDKAppID of a fresh installation.
pub const DEFAULT_SDKAPPID: u64 = 1_400_000_000;

/// What a `--config FILE` may hold. Every key is optional; flags and environment override it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub sdkappid: Option<u64>,
    pub secret_key: Option<String>,
    pub admins: Option<Vec<String>>,
    /// `"fsync"` (default) or `"relaxed"`.
    pub durability: Option<DurabilityName>,
    pub offline_retention_days: Option<u32>,
    pub roaming_retention_days: Option<u32>,
    /// Recent contacts kept per user (default 100).
    pub recent_contacts_max: Option<usize>,
    /// Which devices may be online together: `"multi"` (default), `"triple"`, `"dual"` or `"single"`.
    pub multi_login: Option<MultiLoginName>,
    /// Devices allowed per platform group (default 1).
    pub instances_per_platform: Option<usize>,
    /// Tencent's "relationship check": only two-way friends may message each other from a client
    /// (default false: anyone may message anyone). Admin sends are never checked.
    pub friends_only: Option<bool>,
    /// What a client send from a blacklisted sender gets: `"silent"` (default, Tencent's: a normal
    /// success, the message dropped) or `"report"` (error 20007).
    pub blacklist_check: Option<BlacklistCheckName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlacklistCheckName {
    Silent,
    Report,
}

impl From<BlacklistCheckName> for duet_core::relations::BlacklistCheck {
    fn from(b: BlacklistCheckName) -> duet_core::relations::BlacklistCheck {
        use duet_core::relations::BlacklistCheck;
        match b {
            BlacklistCheckName::Silent => BlacklistCheck::Silent,
            BlacklistCheckName::Report => BlacklistCheck::Report,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiLoginName {
    Single,
    Dual,
    Triple,
    Multi,
}

impl From<MultiLoginName> for duet_core::hub::MultiLogin {
    fn from(m: MultiLoginName) -> duet_core::hub::MultiLogin {
        use duet_core::hub::MultiLogin;
        match m {
            MultiLoginName::Single => MultiLogin::Single,
            MultiLoginName::Dual => MultiLogin::Dual,
            MultiLoginName::Triple => MultiLogin::Triple,
            MultiLoginName::Multi => MultiLogin::Multi,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityName {
    Fsync,
    Relaxed,
}

impl From<DurabilityName> for Durability {
    fn from(d: DurabilityName) -> Durability {
        match d {
            DurabilityName::Fsync => Durability::Fsync,
            DurabilityName::Relaxed => Durability::Relaxed,
        }
    }
}

impl FileConfig {
    pub fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
        toml::from_str(text)
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub core: CoreConfig,
    pub data_dir: PathBuf,
    pub durability: Durability,
    /// How often the retention task runs.
    pub purge_interval: Duration,
}

impl Config {
    /// A configuration with Tencent's defaults for the given app identity.
    pub fn new(sdkappid: u64, secret_key: impl Into<String>, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            core: CoreConfig::new(sdkappid, secret_key),
            data_dir: data_dir.into(),
            durability: Durability::Fsync,
            purge_interval: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_keys_parse_and_unknown_values_are_refused() {
        let c = FileConfig::parse("friends_only = true\nblacklist_check = \"report\"\n").unwrap();
        assert_eq!((c.friends_only, c.blacklist_check), (Some(true), Some(BlacklistCheckName::Report)));
        let c = FileConfig::parse("").unwrap();
        assert_eq!((c.friends_only, c.blacklist_check), (None, None));
        assert!(FileConfig::parse("blacklist_check = \"loud\"").is_err());
        assert!(FileConfig::parse("friends_only = \"yes\"").is_err());
        // Tencent's defaults.
        let core = Config::new(1, "k", "/tmp").core;
        assert!(!core.permissions.friends_only);
        assert_eq!(core.permissions.blacklist, duet_core::relations::BlacklistCheck::Silent);
    }
}

//! The process's open-file limit (`RLIMIT_NOFILE`): every connection is a descriptor, so the soft limit
//! (1 024 by default on most systems) is what caps connections, not memory. `duet serve` raises it to
//! the hard limit at start ([`raise`]); the default connection caps are derived from it ([`limit`]).

/// The soft limit after [`raise`], and before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub before: Option<u64>,
    pub now: Option<u64>,
}

/// The soft open-file limit of this process; `None` for unlimited or unknown.
pub fn limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard limit (to 2^20 when the hard limit is unlimited).
pub fn raise() -> std::io::Result<Raised> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let before = getrlimit(Resource::Nofile);
        let target = before.maximum.unwrap_or(1 << 20);
        if before.current.is_some_and(|soft| soft < target) {
            setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: before.maximum })?;
        }
        Ok(Raised { before: before.current, now: limit() })
    }
    #[cfg(not(unix))]
    {
        Ok(Raised { before: None, now: None })
    }
}

//! Logged-in client connections on this node, by platform: counted by a guard each connection holds from
//! its login to its end ([`Census::enter`]), read by `/metrics` (`duet_connections`) and `duet/status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use duet_core::model::Platform;

/// Every platform, in [`Census`]'s order.
const PLATFORMS: [Platform; 7] =
    [Platform::IPhone, Platform::Android, Platform::IPad, Platform::Pc, Platform::Mac, Platform::Linux, Platform::Web];

#[derive(Default)]
pub(crate) struct Census {
    by_platform: [AtomicI64; PLATFORMS.len()],
}

/// One logged-in connection, counted until dropped.
pub(crate) struct Entered {
    census: Arc<Census>,
    slot: usize,
}

impl Census {
    pub(crate) fn enter(self: &Arc<Census>, platform: Platform) -> Entered {
        let slot = PLATFORMS.iter().position(|p| *p == platform).unwrap_or(0);
        self.by_platform[slot].fetch_add(1, Ordering::Relaxed);
        Entered { census: self.clone(), slot }
    }

    /// Each platform with its connections, those with none too.
    pub(crate) fn snapshot(&self) -> Vec<(Platform, u64)> {
        PLATFORMS.iter().zip(&self.by_platform).map(|(p, n)| (*p, n.load(Ordering::Relaxed).max(0) as u64)).collect()
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.census.by_platform[self.slot].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_until_its_guard_drops() {
        let census = Arc::new(Census::default());
        let web = census.enter(Platform::Web);
        let phones = [census.enter(Platform::IPhone), census.enter(Platform::IPhone)];
        let count = |p| census.snapshot().into_iter().find(|(q, _)| *q == p).map(|(_, n)| n);
        assert_eq!((count(Platform::Web), count(Platform::IPhone), count(Platform::Mac)), (Some(1), Some(2), Some(0)));
        drop(web);
        drop(phones);
        assert!(census.snapshot().iter().all(|(_, n)| *n == 0));
    }
}

//! Rate limits on what one user or one address may do ([`RateLimits`], `[rate_limits]` in the TOML
//! file): client sends per user, and failed logins per address and per account (`docs/security.md`,
//! *Floods and guessing*).
//!
//! Each limit is a generic cell rate algorithm ([`Rule`]): a sustained rate and a burst above it, kept
//! as one instant per key (when the key's allowance will be whole again). A key whose allowance is whole
//! holds nothing: [`Limiter`] forgets such keys as it grows, so what it holds is bounded by the keys
//! active within one burst's time, not by every key ever seen.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimits;
use crate::http::address_of;

/// A rate and the burst allowed above it.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// Time one event uses of the allowance: 1 / rate.
    interval: Duration,
    /// How far ahead of now the allowance may be spent: (burst − 1) intervals.
    tolerance: Duration,
}

impl Rule {
    /// `count` events per `per`, `burst` of them at once; `None` when `count` is 0 (no limit).
    fn new(count: u32, per: Duration, burst: u32) -> Option<Rule> {
        if count == 0 {
            return None;
        }
        let interval = per / count;
        Some(Rule { interval, tolerance: interval * burst.max(1).saturating_sub(1) })
    }
}

/// One [`Rule`] applied to every key on its own.
struct Limiter<K> {
    rule: Option<Rule>,
    /// When each key's allowance is whole again ("theoretical arrival time"); keys past it are dropped.
    state: Mutex<Keys<K>>,
}

struct Keys<K> {
    tat: HashMap<K, Instant>,
    /// The size at which expired keys are next dropped.
    sweep_at: usize,
}

/// Fewest keys held before expired ones are dropped.
const SWEEP_FLOOR: usize = 1024;

impl<K: Hash + Eq> Limiter<K> {
    fn new(rule: Option<Rule>) -> Limiter<K> {
        Limiter { rule, state: Mutex::new(Keys { tat: HashMap::new(), sweep_at: SWEEP_FLOOR }) }
    }

    /// Spends one event of `key`'s allowance, or says how long until one is available (nothing spent).
    fn take<Q>(&self, key: &Q, now: Instant) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let Some(rule) = self.rule else { return Ok(()) };
        let mut keys = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tat = keys.tat.get(key).copied().unwrap_or(now).max(now);
        let allowed_at = tat.checked_sub(rule.tolerance).unwrap_or(now);
        if allowed_at > now {
            return Err(allowed_at - now);
        }
        let tat = tat + rule.interval;
        if keys.tat.len() >= keys.sweep_at && !keys.tat.contains_key(key) {
            keys.tat.retain(|_, t| *t > now);
            keys.sweep_at = (keys.tat.len() * 2).max(SWEEP_FLOOR);
        }
        match keys.tat.get_mut(key) {
            Some(t) => *t = tat,
            None => {
                keys.tat.insert(key.to_owned(), tat);
            }
        }
        Ok(())
    }

    /// How long until `key` may spend one event; `None` when it may now.
    fn wait<Q>(&self, key: &Q, now: Instant) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let rule = self.rule?;
        let keys = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let allowed_at = keys.tat.get(key)?.checked_sub(rule.tolerance)?;
        (allowed_at > now).then(|| allowed_at - now)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().unwrap().tat.len()
    }
}

/// Why a request was throttled, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttled {
    /// The user sent faster than `[rate_limits] sends_per_sec` allows.
    Sends { retry_after: Duration, per_sec: u32, burst: u32 },
    /// Too many failed logins from this address.
    Address { retry_after: Duration },
    /// Too many failed logins for this account.
    Account { retry_after: Duration },
}

impl Throttled {
    pub(crate) fn retry_after(self) -> Duration {
        match self {
            Throttled::Sends { retry_after, .. }
            | Throttled::Address { retry_after }
            | Throttled::Account { retry_after } => retry_after,
        }
    }

    /// What the client is told: the limit, and when to retry (in whole seconds, rounded up, for logins).
    pub(crate) fn info(self) -> String {
        let secs = |d: Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
        match self {
            Throttled::Sends { retry_after, per_sec, burst } => format!(
                "sending too fast: at most {per_sec} messages a second (bursts of {burst}); retry in {} ms",
                retry_after.as_millis().max(1)
            ),
            Throttled::Address { retry_after } => {
                format!("too many failed logins from this address; retry in {} s", secs(retry_after))
            }
            Throttled::Account { retry_after } => {
                format!("too many failed logins for this account; retry in {} s", secs(retry_after))
            }
        }
    }
}

/// The server's rate limits, shared by the REST API and every client connection.
pub(crate) struct Throttle {
    limits: RateLimits,
    sends: Limiter<String>,
    failed_by_address: Limiter<IpAddr>,
    failed_by_account: Limiter<String>,
    /// UserSigs handed out by demo mode, per address, at the rate of failed logins.
    demo_sigs: Limiter<IpAddr>,
}

impl Throttle {
    pub(crate) fn new(limits: RateLimits) -> Throttle {
        let minute = Duration::from_secs(60);
        let failed = |n| Rule::new(n, minute, n);
        Throttle {
            limits,
            sends: Limiter::new(Rule::new(limits.sends_per_sec, Duration::from_secs(1), limits.send_burst)),
            failed_by_address: Limiter::new(failed(limits.failed_logins_per_ip)),
            failed_by_account: Limiter::new(failed(limits.failed_logins_per_account)),
            demo_sigs: Limiter::new(failed(limits.failed_logins_per_ip)),
        }
    }

    /// Counts one client send of `user` (over all their devices); refused when over the user's rate.
    pub(crate) fn send(&self, user: &str) -> Result<(), Throttled> {
        self.sends.take(user, Instant::now()).map_err(|retry_after| Throttled::Sends {
            retry_after,
            per_sec: self.limits.sends_per_sec,
            burst: self.limits.send_burst,
        })
    }

    /// Whether a login of `account` from `ip` may be checked at all: not after too many failures from
    /// either. Spends nothing; a failure is counted with [`Throttle::failed_login`].
    pub(crate) fn login_allowed(&self, ip: IpAddr, account: &str) -> Result<(), Throttled> {
        let now = Instant::now();
        if let Some(retry_after) = self.failed_by_address.wait(&address_of(ip), now) {
            return Err(Throttled::Address { retry_after });
        }
        if let Some(retry_after) = self.failed_by_account.wait(account, now) {
            return Err(Throttled::Account { retry_after });
        }
        Ok(())
    }

    /// Counts one UserSig handed out by demo mode to `ip`; refused, with how long to wait, past
    /// `failed_logins_per_ip` a minute: demo mode may hand out sigs, but not let an address mint them
    /// faster than it may guess them.
    pub(crate) fn demo_usersig(&self, ip: IpAddr) -> Result<(), Duration> {
        self.demo_sigs.take(&address_of(ip), Instant::now())
    }

    /// Counts a failed login (a UserSig that did not verify) against `ip` and `account`.
    pub(crate) fn failed_login(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let _ = self.failed_by_address.take(&address_of(ip), now);
        if !account.is_empty() {
            let _ = self.failed_by_account.take(account, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_then_the_rate() {
        // 10 a second, bursts of 5.
        let limiter = Limiter::<&str>::new(Rule::new(10, Duration::from_secs(1), 5));
        let t0 = Instant::now();
        for _ in 0..5 {
            limiter.take(&"a", t0).unwrap();
        }
        assert_eq!(limiter.take(&"a", t0), Err(ms(100)));
        // Another key has its own allowance.
        limiter.take(&"b", t0).unwrap();
        // One more every 100 ms.
        limiter.take(&"a", t0 + ms(100)).unwrap();
        assert_eq!(limiter.take(&"a", t0 + ms(150)), Err(ms(50)));
        limiter.take(&"a", t0 + ms(200)).unwrap();
        // After a quiet second the whole burst is back.
        let later = t0 + ms(1300);
        for _ in 0..5 {
            limiter.take(&"a", later).unwrap();
        }
        assert!(limiter.take(&"a", later).is_err());
    }

    #[test]
    fn a_refused_event_spends_nothing() {
        let limiter = Limiter::<&str>::new(Rule::new(1, Duration::from_secs(1), 1));
        let t0 = Instant::now();
        limiter.take(&"a", t0).unwrap();
        for _ in 0..100 {
            assert!(limiter.take(&"a", t0 + ms(10)).is_err());
        }
        limiter.take(&"a", t0 + ms(1000)).unwrap();
    }

    #[test]
    fn zero_is_no_limit() {
        let limiter = Limiter::<&str>::new(Rule::new(0, Duration::from_secs(1), 0));
        let t0 = Instant::now();
        for _ in 0..10_000 {
            limiter.take(&"a", t0).unwrap();
        }
        assert_eq!(limiter.wait(&"a", t0), None);
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn wait_spends_nothing_and_says_how_long() {
        let limiter = Limiter::<&str>::new(Rule::new(60, Duration::from_secs(60), 3));
        let t0 = Instant::now();
        assert_eq!(limiter.wait(&"a", t0), None);
        for _ in 0..3 {
            assert_eq!(limiter.wait(&"a", t0), None);
            limiter.take(&"a", t0).unwrap();
        }
        assert_eq!(limiter.wait(&"a", t0), Some(Duration::from_secs(1)));
        assert_eq!(limiter.wait(&"a", t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn keys_whose_allowance_is_whole_are_forgotten() {
        let limiter = Limiter::<usize>::new(Rule::new(1, Duration::from_secs(1), 1));
        let t0 = Instant::now();
        for i in 0..SWEEP_FLOOR {
            limiter.take(&i, t0).unwrap();
        }
        assert_eq!(limiter.len(), SWEEP_FLOOR);
        // Two seconds later every key's allowance is whole: the next new key sweeps them all.
        let later = t0 + Duration::from_secs(2);
        for i in SWEEP_FLOOR..SWEEP_FLOOR + 10 {
            limiter.take(&i, later).unwrap();
        }
        assert_eq!(limiter.len(), 10);
        // Keys still within their burst are kept.
        assert!(limiter.take(&(SWEEP_FLOOR + 1), later).is_err());
    }

    #[test]
    fn failed_logins_count_per_address_and_per_account() {
        let limits = RateLimits { failed_logins_per_ip: 3, failed_logins_per_account: 2, ..RateLimits::default() };
        let throttle = Throttle::new(limits);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        throttle.failed_login(a, "alice");
        throttle.failed_login(a, "alice");
        assert!(matches!(throttle.login_allowed(b, "alice"), Err(Throttled::Account { .. })));
        assert!(throttle.login_allowed(a, "bob").is_ok());
        throttle.failed_login(a, "bob");
        let Err(Throttled::Address { retry_after }) = throttle.login_allowed(a, "carol") else { panic!() };
        assert!(retry_after > Duration::from_secs(19) && retry_after <= Duration::from_secs(20));
        assert!(throttle.login_allowed(b, "carol").is_ok());
    }
}

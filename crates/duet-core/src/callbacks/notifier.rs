//! The after-event callbacks' worker: claims what the outbox holds, hands it to the [`EventSink`] (the
//! HTTP client in `duet-callback`), and settles it: removed once the backend took it, retried with
//! backoff while it fails, given up after [`NotifyConfig::give_up_after_secs`].
//!
//! Guarantee: at least once, in order per user. An event is removed only after the backend answered it;
//! a crash in between sends it again, with the same id. One user's events go out one at a time: a failed
//! one holds back the later ones of its user (not of others) until it went through.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::error::Error;
use crate::model::Settle;
use crate::model::event::{AfterEvent, Command, EventKind, QueuedEvent};
use crate::store::{self, Claimed, Store};

/// How after-event callbacks are sent.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Calls in flight at once (each to a different user's next event).
    pub concurrency: usize,
    /// How long a claimed event is held by its worker before another may claim it.
    pub lease_secs: i64,
    /// Events claimed per round.
    pub batch: usize,
    /// An event still failing this long after it happened is given up on.
    pub give_up_after_secs: i64,
    /// Retries wait 1 s, 2 s, 4 s, … up to this.
    pub backoff_max_secs: i64,
    /// This node's name in the outbox's leases.
    pub node: String,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            concurrency: 64,
            lease_secs: 60,
            batch: 256,
            give_up_after_secs: 7 * 86_400,
            backoff_max_secs: 300,
            node: "duet".into(),
        }
    }
}

/// Why a callback did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// No answer within the timeout.
    pub timed_out: bool,
    pub reason: String,
}

/// Where after-event callbacks go: the app's backend.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Whether the app wants `command`: events of other commands are never written.
    fn enabled(&self, command: Command) -> bool;
    /// Sends one event; `Ok` once the backend answered it as the contract asks (HTTP 200 with JSON).
    async fn deliver(&self, event: &QueuedEvent) -> Result<(), Failure>;
    /// The counts of every command, before-send too.
    fn stats(&self) -> &Stats;
}

/// Per command: what became of its callbacks since start.
#[derive(Debug, Default)]
pub struct CommandStats {
    /// Answered by the backend.
    pub sent: AtomicU64,
    /// Failed (each failure of a before-send callback, or of one attempt of an after-event one).
    pub failed: AtomicU64,
    /// Of the failures, those with no answer in time.
    pub timed_out: AtomicU64,
    /// Attempts after the first.
    pub retried: AtomicU64,
    /// After-event callbacks given up on.
    pub dropped: AtomicU64,
}

impl CommandStats {
    /// `[sent, failed, timed_out, retried, dropped]`.
    pub fn snapshot(&self) -> [u64; 5] {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [load(&self.sent), load(&self.failed), load(&self.timed_out), load(&self.retried), load(&self.dropped)]
    }
}

/// Every command's counts.
#[derive(Debug)]
pub struct Stats(HashMap<Command, CommandStats>);

impl Default for Stats {
    fn default() -> Stats {
        Stats(Command::ALL.into_iter().map(|c| (c, CommandStats::default())).collect())
    }
}

impl Stats {
    pub fn of(&self, command: Command) -> &CommandStats {
        &self.0[&command]
    }

    /// Counts one call's outcome.
    pub fn record(&self, command: Command, outcome: &Result<(), Failure>) {
        let s = self.of(command);
        match outcome {
            Ok(()) => s.sent.fetch_add(1, Ordering::Relaxed),
            Err(f) => {
                if f.timed_out {
                    s.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                s.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// The after-event callbacks: which are wanted, and the outbox's worker.
pub struct Notifier {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sink: Option<Arc<dyn EventSink>>,
    config: NotifyConfig,
    wake: tokio::sync::Notify,
}

impl Notifier {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sink: Option<Arc<dyn EventSink>>,
        config: NotifyConfig,
    ) -> Notifier {
        Notifier { store, clock, sink, config, wake: tokio::sync::Notify::new() }
    }

    /// Whether events of `command` are written.
    pub fn wants(&self, command: Command) -> bool {
        self.sink.as_ref().is_some_and(|s| s.enabled(command))
    }

    /// The counts of every command, when callbacks are configured.
    pub fn stats(&self) -> Option<&Stats> {
        self.sink.as_deref().map(EventSink::stats)
    }

    /// An event of `command` about `user`, caused from `platform` (Tencent's `OptPlatform`) now; `None`
    /// when the app does not want `command`.
    pub fn event(&self, user: &str, platform: &str, client_ip: Option<&str>, kind: EventKind) -> Option<AfterEvent> {
        let event = AfterEvent {
            user: user.to_owned(),
            time_ms: self.clock.now_ms(),
            platform: platform.to_owned(),
            client_ip: client_ip.map(str::to_owned),
            kind,
        };
        self.wants(event.command()).then_some(event)
    }

    /// Events were committed: the worker looks for them now rather than at its next round.
    pub fn wake(&self) {
        if self.sink.is_some() {
            self.wake.notify_one();
        }
    }

    /// Commits events that have no other commit (a login, a failed send) and wakes the worker.
    pub async fn queue(&self, events: Vec<AfterEvent>) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        self.store.queue_events(events, self.clock.now_secs()).await?;
        self.wake();
        Ok(())
    }

    /// Sends queued events until the process ends.
    pub async fn run(self: Arc<Self>) {
        let Some(sink) = self.sink.clone() else { return };
        if let Err(e) = self.store.release_events(self.config.node.clone()).await {
            tracing::warn!(error = %e, "callbacks: releasing the leases of the last run failed");
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency.max(1)));
        let mut report = tokio::time::Instant::now() + REPORT_EVERY;
        let mut reported = Vec::new();
        loop {
            if tokio::time::Instant::now() >= report {
                report = tokio::time::Instant::now() + REPORT_EVERY;
                self.report(sink.stats(), &mut reported).await;
            }
            let now = self.clock.now_secs();
            let lease_until = now + self.config.lease_secs;
            let claim = self.store.claim_events(self.config.node.clone(), now, lease_until, self.config.batch).await;
            let claimed = match store::claimed(claim, &self.wake, "callback events").await {
                Claimed::Some(claimed) => claimed,
                Claimed::Nothing => continue,
                Claimed::Closed => return,
            };
            let full = claimed.len() == self.config.batch;
            // Each user's events in order, one at a time; users side by side.
            let mut chains: Vec<Vec<QueuedEvent>> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            for e in claimed {
                let i = *index.entry(e.event.user.clone()).or_insert_with(|| {
                    chains.push(Vec::new());
                    chains.len() - 1
                });
                chains[i].push(e);
            }
            let mut tasks = tokio::task::JoinSet::new();
            for chain in chains {
                let (this, sink, slots) = (self.clone(), sink.clone(), slots.clone());
                tasks.spawn(async move { this.send_chain(&*sink, &slots, chain).await });
            }
            let mut settled = Vec::new();
            while let Some(done) = tasks.join_next().await {
                if let Ok(s) = done {
                    settled.extend(s);
                }
            }
            if let Err(e) = self.store.settle_events(settled).await {
                tracing::warn!(error = %e, "callbacks: settling sent events failed; their leases will run out");
            }
            if !full {
                let _ = tokio::time::timeout(Duration::from_millis(20), self.wake.notified()).await;
            }
        }
    }

    /// Sends one user's claimed events in order; after a failure the rest are released untried.
    async fn send_chain(
        &self,
        sink: &dyn EventSink,
        slots: &tokio::sync::Semaphore,
        chain: Vec<QueuedEvent>,
    ) -> Vec<(u64, Settle)> {
        let mut settled = Vec::with_capacity(chain.len());
        let mut failed = false;
        for e in chain {
            if failed {
                settled.push((e.id, Settle::Release));
                continue;
            }
            let command = e.event.command();
            let stats = sink.stats().of(command);
            let outcome = {
                let _slot = slots.acquire().await;
                if e.attempts > 0 {
                    stats.retried.fetch_add(1, Ordering::Relaxed);
                }
                sink.deliver(&e).await
            };
            sink.stats().record(command, &outcome);
            let Err(failure) = outcome else {
                settled.push((e.id, Settle::Done));
                continue;
            };
            let now = self.clock.now_secs();
            if now - e.queued_at >= self.config.give_up_after_secs {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    command = command.name(),
                    id = e.id,
                    user = e.event.user,
                    reason = failure.reason,
                    "callbacks: given up on an event"
                );
                settled.push((e.id, Settle::Done));
                continue;
            }
            let wait = backoff(e.attempts, self.config.backoff_max_secs);
            tracing::info!(
                command = command.name(),
                id = e.id,
                reason = failure.reason,
                attempt = e.attempts + 1,
                retry_in_secs = wait,
                "callbacks: will try again"
            );
            settled.push((e.id, Settle::Retry { at: now + wait }));
            failed = true;
        }
        settled
    }

    /// Logs each command's totals, and the outbox's depth and age, when they changed since the last report.
    async fn report(&self, stats: &Stats, last: &mut Vec<[u64; 5]>) {
        let now: Vec<[u64; 5]> = Command::ALL.iter().map(|c| stats.of(*c).snapshot()).collect();
        if now == *last {
            return;
        }
        let (queued, oldest) = self.store.event_backlog().await.unwrap_or((0, None));
        let oldest_age_secs = oldest.map(|t| self.clock.now_secs() - t);
        for (command, [sent, failed, timed_out, retried, dropped]) in Command::ALL.iter().zip(&now) {
            if sent + failed > 0 {
                tracing::info!(
                    command = command.name(),
                    sent,
                    failed,
                    timed_out,
                    retried,
                    dropped,
                    "callbacks: totals since start"
                );
            }
        }
        tracing::info!(queued, oldest_age_secs, "callbacks: outbox");
        *last = now;
    }
}

/// How often the worker logs the totals (when they changed).
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Seconds before attempt `attempts + 1` is tried again: 1, 2, 4, … up to `max`.
fn backoff(attempts: u32, max: i64) -> i64 {
    2i64.saturating_pow(attempts).min(max.max(1))
}

#[test]
fn backoff_doubles_up_to_the_maximum() {
    assert_eq!((0..5).map(|a| backoff(a, 300)).collect::<Vec<_>>(), [1, 2, 4, 8, 16]);
    assert_eq!(backoff(9, 300), 300);
    assert_eq!(backoff(u32::MAX, 300), 300);
}

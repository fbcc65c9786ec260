//! The bus between Duet nodes (`duet serve --bus nats://…`): each node tells the others what it committed
//! and what changed in the state every node keeps in memory, as [`Notice`]s, and acts on theirs.
//!
//! - **Entries.** After each commit, a node publishes which sync-log numbers it appended for which users
//!   (a small notice, never the messages). A node holding live sessions of such a user reads those entries
//!   from the store and pushes them. The store stays the source of truth: a notice lost (NATS down) is
//!   repaired when the client sees a gap in the numbers, or at its next sync.
//! - **Kicks, mutes, relation writes, typing**: applied to the receiving node's sessions and caches.
//!
//! Every notice goes to one subject per app (`duet.<sdkappid>.notices`) that every node subscribes to, in
//! batches (all the notices waiting when the publisher wakes, in one NATS message), so a busy node sends a
//! few hundred messages a second, not one per send. Each node skips its own. NATS keeps one publisher's
//! messages in order, so a node receives another's notices in commit order; notices of two nodes about
//! one user may interleave, which the client's gap pull covers (it ignores numbers it has already seen).
//! With many nodes, every node reads every batch: past a few dozen nodes, subjects per user shard would
//! be the next step (docs/scale-out.md).

mod directory;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use duet_core::Core;
use duet_core::hub::{Notice, Peers};
use duet_core::messages::Subscriber;
use duet_core::model::Delivery;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::wire::Batch;

/// Most notices one NATS message carries (a batch stays well under NATS's default 1 MB payload).
const MAX_BATCH: usize = 2_000;
/// Users whose entries a node reads from the store at once, for one batch it received.
const PARALLEL_READS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("connecting to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("the presence directory (JetStream key-value): {0}")]
    Directory(String),
    #[error("subscribing to {subject}: {source}")]
    Subscribe {
        subject: String,
        #[source]
        source: async_nats::SubscribeError,
    },
}

/// This node on the bus: publishes its notices, receives the others'.
pub struct NatsBus {
    node: u64,
    client: async_nats::Client,
}

/// Hands notices to the publishing task without waiting (see [`Peers::publish`]).
struct Outbox(mpsc::UnboundedSender<Notice>);

impl Peers for Outbox {
    fn publish(&self, notice: Notice) {
        let _ = self.0.send(notice);
    }
}

impl Subscriber for Outbox {
    fn committed(&self, deliveries: &[Delivery]) {
        // One notice per user per commit; online-only messages (seq 0) are not logged, so not announced.
        let mut by_user: HashMap<&str, Vec<u64>> = HashMap::new();
        for d in deliveries.iter().filter(|d| d.entry.seq != 0) {
            by_user.entry(d.user.as_str()).or_default().push(d.entry.seq);
        }
        for (user, seqs) in by_user {
            let _ = self.0.send(Notice::Entries { user: user.to_owned(), seqs });
        }
    }
}

impl NatsBus {
    /// Whether the client is connected to NATS now (readiness): while it reconnects, notices wait in its
    /// buffer and presence goes stale.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Connects to NATS at `url`, joins `core` to the bus (its hub publishes through it, and what it
    /// commits is announced), and starts the tasks that publish and receive, until `stop` is cancelled.
    pub async fn start(url: &str, core: Arc<Core>, stop: CancellationToken) -> Result<NatsBus, BusError> {
        let node: u64 = rand::random();
        let client = async_nats::ConnectOptions::new()
            .name(format!("duet-{node:016x}"))
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("bus: connected to NATS"),
                    async_nats::Event::Disconnected => tracing::warn!("bus: disconnected from NATS; reconnecting"),
                    other => tracing::info!(event = %other, "bus: NATS event"),
                }
            })
            .connect(url)
            .await
            .map_err(|source| BusError::Connect { url: url.to_owned(), source })?;
        let subject = format!("duet.{}.notices", core.config().sdkappid);
        let subscription = client
            .subscribe(subject.clone())
            .await
            .map_err(|source| BusError::Subscribe { subject: subject.clone(), source })?;
        let directory = directory::KvDirectory::open(&client, core.config().sdkappid, node, stop.clone())
            .await
            .map_err(BusError::Directory)?;
        core.hub().set_directory(directory);
        let (tx, rx) = mpsc::unbounded_channel();
        core.hub().set_peers(Arc::new(Outbox(tx.clone())));
        core.subscribe(Arc::new(Outbox(tx.clone())));
        tokio::spawn(publish(client.clone(), subject.clone(), node, rx, stop.clone()));
        tokio::spawn(receive(subscription, node, core, stop));
        tracing::info!(node = format!("{node:016x}"), subject, "bus: joined");
        Ok(NatsBus { node, client })
    }

    /// This node's id on the bus.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// Waits until NATS has every notice published so far (at shutdown).
    pub async fn flush(&self) {
        if let Err(error) = self.client.flush().await {
            tracing::warn!(%error, "bus: flushing the last notices failed");
        }
    }
}

/// Sends the waiting notices, batched, in order.
async fn publish(
    client: async_nats::Client,
    subject: String,
    node: u64,
    mut rx: mpsc::UnboundedReceiver<Notice>,
    stop: CancellationToken,
) {
    let mut notices = Vec::new();
    loop {
        tokio::select! {
            n = rx.recv_many(&mut notices, MAX_BATCH) => if n == 0 { return },
            () = stop.cancelled() => return,
        }
        let payload = match serde_json::to_vec(&Batch::new(node, &notices)) {
            Ok(p) => p,
            Err(error) => {
                tracing::error!(%error, "bus: encoding notices failed; dropped");
                notices.clear();
                continue;
            }
        };
        notices.clear();
        // While NATS is away the client keeps what it is given and sends it once reconnected.
        if let Err(error) = client.publish(subject.clone(), payload.into()).await {
            tracing::warn!(%error, "bus: publishing notices failed; clients repair the gap from their log");
        }
    }
}

/// Acts on the other nodes' notices, batch after batch: a batch's entries are read per user, several users
/// at once, each user's in order.
async fn receive(mut subscription: async_nats::Subscriber, node: u64, core: Arc<Core>, stop: CancellationToken) {
    loop {
        let message = tokio::select! {
            m = subscription.next() => match m { Some(m) => m, None => return },
            () = stop.cancelled() => return,
        };
        let batch: Batch = match serde_json::from_slice(&message.payload) {
            Ok(b) => b,
            Err(error) => {
                tracing::warn!(%error, "bus: a notice batch this version cannot read; skipped");
                continue;
            }
        };
        if batch.node == node {
            continue;
        }
        let mut entries: Vec<(String, Vec<u64>)> = Vec::new();
        for notice in batch.notices.into_iter().filter_map(wire::WireNotice::into_notice) {
            match notice {
                Notice::Entries { user, seqs } => match entries.iter_mut().find(|(u, _)| *u == user) {
                    Some((_, all)) => all.extend(seqs),
                    None => entries.push((user, seqs)),
                },
                other => {
                    if let Err(error) = core.receive(other).await {
                        tracing::warn!(%error, "bus: acting on a notice failed");
                    }
                }
            }
        }
        let core = &core;
        futures_util::stream::iter(entries)
            .for_each_concurrent(PARALLEL_READS, |(user, seqs)| async move {
                if let Err(error) = core.receive(Notice::Entries { user, seqs }).await {
                    tracing::warn!(%error, "bus: pushing entries committed elsewhere failed; the client will pull them");
                }
            })
            .await;
    }
}

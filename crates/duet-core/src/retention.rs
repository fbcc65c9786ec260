//! The background task that deletes what has expired: history past the roaming retention, offline copies
//! past their lifetime, conversations whose last message expired, old dedup entries, and uploaded files
//! no message refers to any more (`media::Media::purge`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;

/// Runs a purge every `every` until `shutdown` completes.
pub async fn run(core: Arc<Core>, every: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let purged = core.messages().purge_expired().await;
        if let Ok(p) = &purged {
            for (kind, n) in [
                ("messages", p.messages),
                ("offline", p.offline),
                ("conversations", p.conversations),
                ("dedup", p.dedup),
            ] {
                metrics::counter!("duet_retention_deleted_total", "kind" => kind).increment(n);
            }
        }
        match purged {
            Ok(p) if p == Default::default() => {}
            Ok(p) => tracing::info!(
                messages = p.messages,
                offline = p.offline,
                conversations = p.conversations,
                dedup = p.dedup,
                "retention purge"
            ),
            Err(e) => tracing::warn!(error = %e, "retention purge failed"),
        }
        if let Some(media) = core.media() {
            let purged = media.purge().await;
            if let Ok(p) = &purged {
                metrics::counter!("duet_retention_deleted_total", "kind" => "media").increment(p.items as u64);
            }
            match purged {
                Ok(p) if p == Default::default() => {}
                Ok(p) => tracing::info!(items = p.items, blobs = p.blobs, "media purge"),
                Err(e) => tracing::warn!(error = %e, "media purge failed"),
            }
        }
    }
}

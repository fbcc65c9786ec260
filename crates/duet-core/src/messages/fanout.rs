//! Stage 5 of a send ([`super::send`]), and of every write that appends to sync logs: the entries a commit appended go
//! to each [`Subscriber`], in commit order, on the store's writer thread before the writers are
//! answered. The hub (live devices) is the first subscriber, offline push ([`Pusher`], which wakes its
//! worker) the second; the app's callbacks and the bus to other nodes will subscribe the same way, rather
//! than being code inside a send.

use std::sync::{Arc, RwLock};

use crate::hub::{Hub, Push};
use crate::model::Delivery;
use crate::push::Pusher;

/// Receives what commits appended to users' sync logs.
pub trait Subscriber: Send + Sync + 'static {
    /// Runs on the store's writer thread for each commit, in commit order: it must not block. An entry
    /// with `seq` 0 is an online-only message, delivered to live devices and never stored.
    fn committed(&self, deliveries: &[Delivery]);
}

/// The subscribers of committed entries.
#[derive(Clone, Default)]
pub struct Fanout {
    subscribers: Arc<RwLock<Vec<Arc<dyn Subscriber>>>>,
}

impl Fanout {
    pub fn subscribe(&self, subscriber: Arc<dyn Subscriber>) {
        self.subscribers.write().unwrap_or_else(|e| e.into_inner()).push(subscriber);
    }

    /// Hands `deliveries` to every subscriber, in the order they subscribed.
    pub fn deliver(&self, deliveries: &[Delivery]) {
        for subscriber in self.subscribers.read().unwrap_or_else(|e| e.into_inner()).iter() {
            subscriber.committed(deliveries);
        }
    }
}

impl Subscriber for Hub {
    fn committed(&self, deliveries: &[Delivery]) {
        for d in deliveries {
            self.deliver(&d.user, Arc::new(Push::new(d.entry.clone())));
        }
    }
}

impl Subscriber for Pusher {
    fn committed(&self, deliveries: &[Delivery]) {
        Pusher::committed(self, deliveries);
    }
}

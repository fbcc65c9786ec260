//! A TCP proxy for the tests that need a network between two parts to fail: in front of several nodes it is
//! the load balancer (each new connection goes to the next backend that accepts it); in front of
//! PostgreSQL or NATS it is the link that goes down ([`Proxy::cut`]: every connection through it drops and
//! new ones are refused) and comes back ([`Proxy::restore`]).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    backends: Mutex<Vec<SocketAddr>>,
    next: AtomicUsize,
    up: AtomicBool,
    /// Bumped by every cut: each connection ends when it changes.
    cuts: watch::Sender<u64>,
}

impl Proxy {
    /// A proxy on 127.0.0.1 to `backends`.
    pub async fn start(backends: Vec<SocketAddr>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            backends: Mutex::new(backends),
            next: AtomicUsize::new(0),
            up: AtomicBool::new(true),
            cuts: watch::Sender::new(0),
        });
        let accepting = state.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !accepting.up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(forward(inbound, accepting.clone()));
            }
        });
        Proxy { addr, state }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        self.state.cuts.send_modify(|n| *n += 1);
    }

    pub fn restore(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }

    /// Takes `backend` out of the rotation (a node that died).
    pub fn remove(&self, backend: SocketAddr) {
        self.state.backends.lock().unwrap().retain(|b| *b != backend);
    }
}

async fn forward(mut inbound: TcpStream, state: Arc<State>) {
    let backends = state.backends.lock().unwrap().clone();
    let mut outbound = None;
    for _ in 0..backends.len() {
        let i = state.next.fetch_add(1, Ordering::Relaxed) % backends.len();
        if let Ok(s) = TcpStream::connect(backends[i]).await {
            outbound = Some(s);
            break;
        }
    }
    let Some(mut outbound) = outbound else { return };
    let mut cuts = state.cuts.subscribe();
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cuts.changed() => {}
    }
}

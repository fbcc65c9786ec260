//! A TCP proxy between a client and the test server that can lose things on purpose: sever every
//! connection through it, or drop the next WebSocket frame from the server that carries a sync-log entry.
//! It parses server-to-client WebSocket framing (unmasked, no extensions) just enough to cut one frame out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    /// Entry frames still to drop.
    drop_entries: Arc<AtomicUsize>,
    /// Bumped to sever every open connection.
    sever: watch::Sender<u64>,
    /// Entry frames dropped so far.
    dropped: Arc<AtomicUsize>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<ephemeral> to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let drop_entries = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (sever, _) = watch::channel(0u64);
        let (d, dd, s) = (drop_entries.clone(), dropped.clone(), sever.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(client, server, d.clone(), dd.clone(), s.subscribe()));
            }
        });
        Proxy { addr, drop_entries, sever, dropped }
    }

    /// The base URL clients should use instead of the server's.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops the next `n` server frames that carry a sync-log entry (`"op":"entry"`).
    pub fn drop_next_entries(&self, n: usize) {
        self.drop_entries.fetch_add(n, Ordering::SeqCst);
    }

    /// How many entry frames were dropped.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Closes every connection open through the proxy, as a network failure would.
    pub fn sever(&self) {
        self.sever.send_modify(|n| *n += 1);
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    drop_entries: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    mut sever: watch::Receiver<u64>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            sw.write_all(&buf[..n]).await?;
        }
    };
    let down = async {
        // The HTTP upgrade response, then frames.
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut upgraded = false;
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            pending.extend_from_slice(&buf[..n]);
            if !upgraded {
                let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                cw.write_all(&pending[..end + 4]).await?;
                pending.drain(..end + 4);
                upgraded = true;
            }
            while let Some(len) = frame_len(&pending) {
                let frame: Vec<u8> = pending.drain(..len).collect();
                let is_entry = frame.windows(12).any(|w| w == br#""op":"entry""#);
                let drop_it = is_entry
                    && drop_entries.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                if drop_it {
                    dropped.fetch_add(1, Ordering::SeqCst);
                } else {
                    cw.write_all(&frame).await?;
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = sever.changed() => {}
    }
}

/// The length of the complete unmasked WebSocket frame at the start of `buf`, if it is all there.
fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 2 {
        return None;
    }
    let masked = buf[1] & 0x80 != 0;
    let (header, payload) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (4, u16::from_be_bytes([buf[2], buf[3]]) as usize),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (10, usize::try_from(u64::from_be_bytes(b)).ok()?)
        }
        126 | 127 => return None,
        n => (2, n as usize),
    };
    let total = header + if masked { 4 } else { 0 } + payload;
    (buf.len() >= total).then_some(total)
}

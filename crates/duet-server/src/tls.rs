//! The server's own TLS (`duet serve --tls-cert FILE --tls-key FILE`), so browsers and phones can use
//! `https://` and `wss://` with no proxy in front. Plain HTTP stays the default.
//!
//! [`TlsConfig`] is a certificate chain and its private key, parsed from PEM into a rustls server
//! configuration (the `ring` provider; ALPN `h2` and `http/1.1`). [`serve`] is the accept loop: each TCP
//! connection gets a tracked task that completes the TLS handshake (dropped after
//! [`HANDSHAKE_TIMEOUT`]; a failed handshake is logged at debug and never stops the loop), then serves
//! the app with hyper's `auto` connection (HTTP/1.1 with upgrades, so WebSockets work, or HTTP/2), as
//! `axum::serve` does over plain TCP. On shutdown the loop stops accepting and each connection is shut
//! down gracefully: the request in progress finishes, idle connections close.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a client has to complete the TLS handshake before its connection is dropped, so sockets that
/// never speak do not pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's certificate chain and key, ready to accept TLS connections.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// Why a certificate chain and key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the certificate file is not PEM: {0}")]
    CertificatePem(rustls::pki_types::pem::Error),
    #[error("the certificate file holds no CERTIFICATE block")]
    NoCertificate,
    #[error("the key file holds no private key (PKCS#8, RSA or EC, in PEM)")]
    NoKey,
    #[error("the key file is not PEM: {0}")]
    KeyPem(rustls::pki_types::pem::Error),
    #[error("the certificate and key cannot be used: {0}")]
    Rejected(rustls::Error),
}

impl TlsConfig {
    /// A configuration from a PEM certificate chain (the server's certificate first, then any
    /// intermediates) and a PEM private key (PKCS#8, RSA/PKCS#1 or EC/SEC1) that matches it.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsConfig, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(TlsError::CertificatePem)?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey,
            e => TlsError::KeyPem(e),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rejected)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(TlsError::Rejected)?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig { server: Arc::new(server) })
    }
}

/// Accepts TLS connections on `listener` and serves `app` on them until `shutdown` is cancelled; every
/// connection is a task of `tracker`, which outlives this loop until each has shut down.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: TlsConfig,
    app: Router,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server);
    // Small frames both ways: no Nagle delay on answers and pushes. Accept errors (out of descriptors)
    // are logged and retried by axum's listener.
    let mut listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
        };
        tracker.spawn(connection(tcp, peer, acceptor.clone(), app.clone(), shutdown.clone()));
    }
}

/// One connection: the handshake, then HTTP until the client closes or shutdown.
async fn connection(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    shutdown: CancellationToken,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stream = tokio::select! {
        () = shutdown.cancelled() => return,
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "tls handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "tls handshake not completed in time");
                return;
            }
        },
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // WebSockets over HTTP/2 (RFC 8441), as `axum::serve` allows.
    builder.http2().enable_connect_protocol();
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_a_certificate_and_key_are_clear_errors() {
        let e = TlsConfig::from_pem(b"", b"").unwrap_err();
        assert_eq!(e.to_string(), "the certificate file holds no CERTIFICATE block");
        let e = TlsConfig::from_pem(b"hello\n", b"").unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate), "{e}");
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(TlsConfig::from_pem(broken, b"").unwrap_err(), TlsError::CertificatePem(_)));
    }
}

//! The server's own TLS (`duet serve --tls-cert FILE --tls-key FILE`), so browsers and phones can use
//! `https://` and `wss://` with no proxy in front. Plain HTTP stays the default.
//!
//! [`TlsConfig`] is a certificate chain and its private key, parsed from PEM into a rustls server
//! configuration (the `ring` provider; ALPN `h2` and `http/1.1`). The accept loop, the same for plain
//! HTTP and TLS, is `http::serve`: it completes each handshake within the header timeout.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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

    /// What completes the handshake of each connection.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
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

//! TLS for `https://` and `wss://` servers: one rustls configuration per [`Client`](crate::Client), with
//! the `ring` provider, trusting the system's root certificates plus the CAs the app adds
//! ([`ClientConfig::trust_ca_pem`](crate::ClientConfig::trust_ca_pem)), shared by the WebSocket and the
//! HTTP client of uploads and downloads. No ALPN: both speak HTTP/1.1.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::OnceCell;

use crate::Error;

/// The system's roots, read once per process (a directory of files on most systems).
static SYSTEM_ROOTS: OnceCell<Arc<RootCertStore>> = OnceCell::const_new();

async fn system_roots() -> Arc<RootCertStore> {
    SYSTEM_ROOTS
        .get_or_init(|| async {
            // A panic while reading them leaves only the app's CAs trusted.
            let read = tokio::task::spawn_blocking(load_system_roots).await;
            read.unwrap_or_else(|_| Arc::new(RootCertStore::empty()))
        })
        .await
        .clone()
}

fn load_system_roots() -> Arc<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "reading the system's root certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "the system's root certificates");
    Arc::new(roots)
}

/// The CA certificates in `pem` (one or more `CERTIFICATE` blocks).
pub(crate) fn parse_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("the extra CA is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config("the extra CA holds no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The TLS configuration of one client: the system's roots and the CAs in `extra_ca` (PEM).
pub(crate) async fn client_config(extra_ca: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let extra = extra_ca.map(parse_ca_pem).transpose()?.unwrap_or_default();
    let mut roots = RootCertStore::clone(&*system_roots().await);
    for cert in extra {
        roots.add(cert).map_err(|e| Error::Config(format!("the extra CA cannot be used: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_is_a_configuration_error() {
        let e = parse_ca_pem(b"not a certificate").unwrap_err();
        assert_eq!(e.to_string(), "invalid configuration: the extra CA holds no CERTIFICATE block");
        let e = parse_ca_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(e.to_string().starts_with("invalid configuration: the extra CA is not PEM"), "{e}");
    }

    #[tokio::test]
    async fn a_pem_block_that_holds_no_certificate_is_refused() {
        // A well-formed PEM block whose content is not a certificate.
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = client_config(Some(pem)).await.unwrap_err();
        assert!(e.to_string().starts_with("invalid configuration: the extra CA cannot be used"), "{e}");
    }
}

//! [`TestCerts`]: a CA made for one test and a server certificate it signed, for `localhost` and
//! `127.0.0.1`, as PEM (what `duet serve --tls-cert/--tls-key` and `duet client --ca-cert` read).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A fresh CA and a server certificate it signed (ECDSA P-256), in PEM.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA's certificate: what a client must trust.
    pub ca_pem: String,
    /// The server's certificate (for `localhost` and `127.0.0.1`).
    pub cert_pem: String,
    /// The server certificate's private key (PKCS#8).
    pub key_pem: String,
}

impl TestCerts {
    /// Makes a new CA and server certificate; no other test shares them.
    pub fn generate() -> TestCerts {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "Duet test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("signing the CA");

        let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server certificate parameters");
        server.distinguished_name.push(DnType::CommonName, "localhost");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("server key");
        let cert = server.signed_by(&key, &ca).expect("signing the server certificate");
        TestCerts { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// The server's TLS configuration from these certificates.
    pub fn server_tls(&self) -> duet_server::tls::TlsConfig {
        duet_server::tls::TlsConfig::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
            .expect("the test certificate and key make a TLS configuration")
    }
}

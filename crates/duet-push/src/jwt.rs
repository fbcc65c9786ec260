//! Compact JWS signing for provider tokens: ES256 (APNs provider tokens) and RS256 (Google service
//! accounts' OAuth2 assertions), with ring, from PKCS#8 keys in PEM.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

/// Seconds since the Unix epoch, as JWTs count time (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A private key that signs JWTs.
pub(crate) enum Signer {
    /// P-256 with SHA-256; the JWS signature is R‖S (64 bytes), not DER.
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("not a PEM private key: {0}")]
    Pem(String),
    #[error("not a PKCS#8 P-256 key: {0}")]
    Ec(String),
    #[error("not a PKCS#8 RSA key: {0}")]
    Rsa(String),
}

fn pkcs8(pem: &[u8]) -> Result<Vec<u8>, KeyError> {
    match PrivateKeyDer::from_pem_slice(pem).map_err(|e| KeyError::Pem(e.to_string()))? {
        PrivateKeyDer::Pkcs8(der) => Ok(der.secret_pkcs8_der().to_vec()),
        _ => Err(KeyError::Pem("the key is not in PKCS#8 form (BEGIN PRIVATE KEY)".into())),
    }
}

impl Signer {
    /// An ES256 signer from a PEM PKCS#8 P-256 key (an APNs `.p8` file).
    pub(crate) fn es256(pem: &[u8]) -> Result<Signer, KeyError> {
        let der = pkcs8(pem)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
            .map_err(|e| KeyError::Ec(e.to_string()))?;
        Ok(Signer::Es256(key))
    }

    /// An RS256 signer from a PEM PKCS#8 RSA key (a service account's `private_key`).
    pub(crate) fn rs256(pem: &[u8]) -> Result<Signer, KeyError> {
        let der = pkcs8(pem)?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(Signer::Rs256(key))
    }

    fn alg(&self) -> &'static str {
        match self {
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
        }
    }

    /// `header.claims.signature`, each base64url without padding. `header` gets `alg` (and keeps what
    /// it holds, such as `kid` and `typ`).
    pub(crate) fn sign(&self, mut header: serde_json::Map<String, Value>, claims: &Value) -> String {
        header.insert("alg".into(), Value::from(self.alg()));
        let mut out = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = SystemRandom::new();
        let signature = match self {
            // Signing fails only if the system's random source does, which ring treats as fatal too.
            Signer::Es256(key) => key.sign(&rng, out.as_bytes()).expect("ECDSA signing").as_ref().to_vec(),
            Signer::Rs256(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut sig).expect("RSA signing");
                sig
            }
        };
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature));
        out
    }
}

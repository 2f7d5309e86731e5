//! Secrets at rest: API keys of external models are sealed with AES-256-GCM
//! before they enter an event, bound (as associated data) to what they
//! belong to, so a sealed key copied onto another model does not open. The
//! key comes from configuration; without one, nothing is sealed (fail closed).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no encryption key is configured ([secrets] encryption_key or FTL__SECRETS__ENCRYPTION_KEY; `finetune-lab keygen` makes one)"
    )]
    NoKey,
    #[error("[secrets] encryption_key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("the secret was sealed with key {sealed_with}, not the configured key {configured}")]
    OtherKey {
        sealed_with: String,
        configured: String,
    },
    #[error("the sealed secret is damaged or belongs to something else")]
    Damaged,
}

/// The configured key (or none).
#[derive(Clone)]
pub struct Sealer {
    key: Option<(Aes256Gcm, String)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        write!(f, "Sealer({:?})", self.key.as_ref().map(|(_, id)| id))
    }
}

/// A fresh key, base64 (what `finetune-lab keygen` prints).
pub fn generate_key() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    B64.encode(k)
}

impl Sealer {
    pub fn new(key_b64: Option<&str>) -> Result<Self, SecretError> {
        let Some(raw) = key_b64.map(str::trim).filter(|k| !k.is_empty()) else {
            return Ok(Self { key: None });
        };
        let bytes = B64.decode(raw).map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)?;
        // A short public id of the key, so a rotated key gives a clear error.
        let id = hex::encode(&Sha256::digest(&bytes)[..4]);
        Ok(Self {
            key: Some((cipher, id)),
        })
    }

    pub fn configured(&self) -> bool {
        self.key.is_some()
    }

    /// `v1:<key id>:<base64 of nonce ‖ ciphertext>`, bound to `context`.
    pub fn seal(&self, secret: &str, context: &str) -> Result<String, SecretError> {
        let (cipher, id) = self.key.as_ref().ok_or(SecretError::NoKey)?;
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Damaged)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("v1:{id}:{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SecretError> {
        let (cipher, id) = self.key.as_ref().ok_or(SecretError::NoKey)?;
        let mut parts = sealed.splitn(3, ':');
        let (Some("v1"), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SecretError::Damaged);
        };
        if kid != id {
            return Err(SecretError::OtherKey {
                sealed_with: kid.to_string(),
                configured: id.clone(),
            });
        }
        let bytes = B64.decode(body).map_err(|_| SecretError::Damaged)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretError::Damaged);
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Damaged)?;
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SecretError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let s = Sealer::new(Some(&generate_key())).unwrap();
        let sealed = s.seal("sk-live-123", "model/a").unwrap();
        assert!(!sealed.contains("sk-live-123"));
        assert_ne!(
            sealed,
            s.seal("sk-live-123", "model/a").unwrap(),
            "fresh nonce"
        );
        assert_eq!(s.open(&sealed, "model/a").unwrap(), "sk-live-123");
        assert_eq!(s.open(&sealed, "model/b"), Err(SecretError::Damaged));
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open(&String::from_utf8(flipped).unwrap(), "model/a"),
            Err(SecretError::Damaged)
        );
        let other = Sealer::new(Some(&generate_key())).unwrap();
        assert!(matches!(
            other.open(&sealed, "model/a"),
            Err(SecretError::OtherKey { .. })
        ));
        let none = Sealer::new(None).unwrap();
        assert_eq!(none.seal("x", "c"), Err(SecretError::NoKey));
        assert!(!format!("{s:?}").contains(&B64.encode([0u8; 4])));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert_eq!(Sealer::new(Some("short")).unwrap_err(), SecretError::BadKey);
        assert_eq!(
            Sealer::new(Some(&B64.encode([1u8; 16]))).unwrap_err(),
            SecretError::BadKey
        );
        assert!(Sealer::new(Some("")).unwrap().seal("x", "c").is_err());
    }
}

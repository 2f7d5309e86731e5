//! Content digests of the write side: SHA-256, whole or over
//! length-prefixed fields, for idempotency fingerprints, content-derived
//! command ids, request-body digests and stored key hashes.

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`, hex (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The first 16 bytes of SHA-256 of `bytes`, hex (32 characters).
pub fn sha256_hex16(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

/// A SHA-256 fed field by field: [`FieldHasher::field`] prefixes each with
/// its length, so no two sequences of fields feed the same bytes.
#[derive(Default, Clone)]
pub struct FieldHasher(Sha256);

impl FieldHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// A length-prefixed field.
    pub fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Bytes as they are (tags, counts the caller frames itself).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn hex(self) -> String {
        hex::encode(self.0.finalize())
    }

    pub fn hex16(self) -> String {
        hex::encode(&self.0.finalize()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex16(b"abc"), "ba7816bf8f01cfea414140de5dae2223");
        let mut h = FieldHasher::new();
        h.raw(b"abc");
        assert_eq!(h.hex(), sha256_hex(b"abc"));
        // Fields are framed: ("ab","c") and ("a","bc") differ.
        let framed = |a: &[u8], b: &[u8]| {
            let mut h = FieldHasher::new();
            h.field(a);
            h.field(b);
            h.hex()
        };
        assert_ne!(framed(b"ab", b"c"), framed(b"a", b"bc"));
    }
}

//! The master key and what is derived from it: the key that wraps every subject's data key,
//! and the key of the blind indexes (keyed hashes that outlive the data they stand for).

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const NONCE_BYTES: usize = 24;

/// Keys derived from `FLEET_MASTER_KEY`. Never stored; data keys are stored wrapped by it.
#[derive(Clone)]
pub struct Keyring {
    wrap: XChaCha20Poly1305,
    blind: [u8; 32],
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

/// One subject's data key, unwrapped.
#[derive(Clone)]
pub struct DataKey(XChaCha20Poly1305);

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Keyring {
    /// Derives the wrapping and blind-index keys from the master secret (≥ 32 bytes, checked
    /// by the configuration).
    pub fn from_secret(secret: &[u8]) -> Self {
        let wrap = derive(secret, "fleetstream/privacy/wrap/v1");
        Self {
            wrap: XChaCha20Poly1305::new(&wrap.into()),
            blind: derive(secret, "fleetstream/privacy/blind-index/v1"),
        }
    }

    /// A fresh data key for `subject` and its wrapped form (bound to the subject).
    pub fn new_data_key(&self, subject: &str) -> (DataKey, Vec<u8>) {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let wrapped = seal_bytes(&self.wrap, key.as_slice(), subject.as_bytes());
        (DataKey(XChaCha20Poly1305::new(&key)), wrapped)
    }

    /// The data key of `subject` from its wrapped form; `None` when it was not wrapped by this
    /// master key for this subject.
    pub fn unwrap_key(&self, subject: &str, wrapped: &[u8]) -> Option<DataKey> {
        let key = open_bytes(&self.wrap, wrapped, subject.as_bytes())?;
        (key.len() == 32)
            .then(|| DataKey(XChaCha20Poly1305::new_from_slice(&key).expect("32-byte key")))
    }

    /// A keyed hash of `value` (hex): equal values give equal hashes, and without the master
    /// key a hash reveals nothing, not even to a dictionary of phone numbers.
    pub fn blind_index(&self, kind: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.blind).expect("HMAC key");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

impl DataKey {
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal_bytes(&self.0, plaintext, aad)
    }

    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        open_bytes(&self.0, sealed, aad)
    }
}

/// nonce ‖ ciphertext ‖ tag, with a random 192-bit nonce (safe to draw at random).
fn seal_bytes(cipher: &XChaCha20Poly1305, msg: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(&nonce, Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
    let mut out = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn open_bytes(cipher: &XChaCha20Poly1305, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_BYTES {
        return None;
    }
    let (nonce, msg) = sealed.split_at(NONCE_BYTES);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg, aad })
        .ok()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_key_opens_only_what_it_sealed_for_the_same_context() {
        let ring = Keyring::from_secret(b"0123456789abcdef0123456789abcdef");
        let (key, wrapped) = ring.new_data_key("account-1");
        let sealed = key.encrypt(b"\"kim@example.com\"", b"profile.email");
        assert_eq!(
            key.decrypt(&sealed, b"profile.email").as_deref(),
            Some(&b"\"kim@example.com\""[..])
        );
        assert!(key.decrypt(&sealed, b"profile.phone").is_none());
        let again = ring.unwrap_key("account-1", &wrapped).expect("unwraps");
        assert!(again.decrypt(&sealed, b"profile.email").is_some());
        assert!(ring.unwrap_key("account-2", &wrapped).is_none());
        let other = Keyring::from_secret(b"another secret, also 32 bytes long");
        assert!(other.unwrap_key("account-1", &wrapped).is_none());
    }

    #[test]
    fn blind_indexes_are_stable_and_keyed() {
        let ring = Keyring::from_secret(b"0123456789abcdef0123456789abcdef");
        let other = Keyring::from_secret(b"another secret, also 32 bytes long");
        let a = ring.blind_index("phone", "+821012345678");
        assert_eq!(a, ring.blind_index("phone", "+821012345678"));
        assert_ne!(a, ring.blind_index("phone", "+821012345679"));
        assert_ne!(a, other.blind_index("phone", "+821012345678"));
        assert_eq!(a.len(), 64);
    }
}

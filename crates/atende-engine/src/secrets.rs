//! Encryption of secrets at rest (SMTP password, channel credentials) with XChaCha20-Poly1305.
//!
//! The key comes from `ATENDE_SECRET_KEY` or from `secret.key` in the data directory, created on
//! first start. The database keeps a check value derived from the key, so an instance started with
//! a different key refuses to start instead of silently failing to read (or overwriting) secrets.

use crate::{EngineError, EngineResult};
use atende_db::Db;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::path::Path;

const KEY_FILE: &str = "secret.key";
const CHECK_META_KEY: &str = "secret_key_check";
/// Ciphertext layout version, so the format can change without guessing.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    check_value: String,
}

impl SecretBox {
    /// Takes the key from `configured` (base64 or hex of 32 bytes) or from the key file in
    /// `data_dir`, creating the file (mode 0600) when neither exists.
    pub fn load(data_dir: &Path, configured: Option<&str>) -> EngineResult<SecretBox> {
        let key = match configured.map(str::trim).filter(|k| !k.is_empty()) {
            Some(text) => decode_key(text)?,
            None => load_or_create_key_file(data_dir)?,
        };
        Ok(SecretBox::from_key(key))
    }

    pub fn from_key(key: [u8; 32]) -> SecretBox {
        let check_value = hex::encode(Sha256::digest(
            [b"atende-secret-key-check:".as_slice(), &key].concat(),
        ));
        let cipher = XChaCha20Poly1305::new(&key.into());
        SecretBox {
            cipher,
            check_value,
        }
    }

    /// Stores the check value on first start; afterwards refuses a key that does not match it.
    pub async fn verify_against_store(&self, db: &Db) -> EngineResult<()> {
        let stored =
            atende_db::meta::platform_insert_if_absent(db, CHECK_META_KEY, &self.check_value)
                .await?;
        if stored != self.check_value {
            return Err(EngineError::SecretKey(
                "this database was set up with a different secret key; start with the original \
                 ATENDE_SECRET_KEY (or the original secret.key file in the data directory)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let sealed = self.cipher.encrypt(&nonce, plaintext).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(&self, stored: &[u8]) -> EngineResult<Vec<u8>> {
        let (version, rest) = stored
            .split_first()
            .ok_or_else(|| EngineError::Decrypt("empty value".into()))?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(EngineError::Decrypt("unknown format".into()));
        }
        let (nonce_bytes, sealed) = rest.split_at(NONCE_LEN);
        let nonce_array: [u8; NONCE_LEN] = nonce_bytes
            .try_into()
            .map_err(|_| EngineError::Decrypt("bad nonce".into()))?;
        self.cipher
            .decrypt(&XNonce::from(nonce_array), sealed)
            .map_err(|_| EngineError::Decrypt("authentication failed".into()))
    }

    /// Text form for storing inside JSON (settings): base64 of `encrypt`.
    pub fn encrypt_text(&self, plaintext: &str) -> String {
        BASE64.encode(self.encrypt(plaintext.as_bytes()))
    }

    pub fn decrypt_text(&self, stored: &str) -> EngineResult<String> {
        let bytes = BASE64
            .decode(stored)
            .map_err(|e| EngineError::Decrypt(e.to_string()))?;
        String::from_utf8(self.decrypt(&bytes)?).map_err(|e| EngineError::Decrypt(e.to_string()))
    }
}

fn decode_key(text: &str) -> EngineResult<[u8; 32]> {
    let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| EngineError::SecretKey(e.to_string()))?
    } else {
        BASE64.decode(text).map_err(|_| {
            EngineError::SecretKey(
                "ATENDE_SECRET_KEY must be 32 bytes in base64 or 64 hex digits".into(),
            )
        })?
    };
    bytes.try_into().map_err(|_| {
        EngineError::SecretKey(
            "ATENDE_SECRET_KEY must be 32 bytes in base64 or 64 hex digits".into(),
        )
    })
}

fn load_or_create_key_file(data_dir: &Path) -> EngineResult<[u8; 32]> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode_key(text.trim())
            .map_err(|e| EngineError::SecretKey(format!("{}: {e}", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                EngineError::SecretKey(format!("cannot create {}: {e}", data_dir.display()))
            })?;
            let key: [u8; 32] = rand::random();
            write_private(&path, &BASE64.encode(key))?;
            tracing::info!(path = %path.display(), "generated a new secret key; back it up with the database");
            Ok(key)
        }
        Err(error) => Err(EngineError::SecretKey(format!(
            "cannot read {}: {error}",
            path.display()
        ))),
    }
}

fn write_private(path: &Path, contents: &str) -> EngineResult<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| EngineError::SecretKey(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| EngineError::SecretKey(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let secrets = SecretBox::from_key([7; 32]);
        let sealed = secrets.encrypt(b"hunter2");
        assert_ne!(&sealed[25..], b"hunter2");
        assert_eq!(
            secrets.decrypt(&sealed).ok().as_deref(),
            Some(b"hunter2".as_slice())
        );
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(secrets.decrypt(&tampered).is_err());
        assert!(SecretBox::from_key([8; 32]).decrypt(&sealed).is_err());
    }

    #[test]
    fn same_plaintext_encrypts_differently() {
        let secrets = SecretBox::from_key([1; 32]);
        assert_ne!(secrets.encrypt(b"x"), secrets.encrypt(b"x"));
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let first = SecretBox::load(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        let second = SecretBox::load(dir.path(), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.check_value, second.check_value);
    }

    #[test]
    fn configured_keys_accept_hex_and_base64_and_reject_short_ones() {
        assert!(decode_key(&"ab".repeat(32)).is_ok());
        assert!(decode_key(&BASE64.encode([3u8; 32])).is_ok());
        assert!(decode_key("short").is_err());
    }
}

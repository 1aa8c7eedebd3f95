//! The model vault: content-addressed, encrypted at rest, write-once.
//!
//! An object is named by the SHA3-256 of its plaintext (the hash a candidate is proposed and
//! fetched under on chain), and stored as an envelope:
//!
//! ```text
//! "tclearn/vault/v1" | key nonce (12) | wrapped data key (32 + 16 tag) | data nonce (12) | ciphertext + tag (16)
//! ```
//!
//! - each object has its own random 256-bit data key, which encrypts it with AES-256-GCM;
//! - the data key is wrapped (AES-256-GCM) by the vault's master key, which never leaves the
//!   process and is never printed ([`MasterKey`]'s `Debug` shows nothing of it);
//! - both encryptions take the object's hash as associated data, so an envelope moved to
//!   another name does not open, and the plaintext's hash is checked again on every read;
//! - objects are written once ([`object_store::PutMode::Create`]): storing the same content
//!   again returns the object already there, and nothing ever overwrites one;
//! - an object over the size limit is refused before anything is written.
//!
//! Storage goes through [`object_store`]: local files by default; an S3-compatible store is a
//! matter of configuration.

use aes_gcm::{
    aead::{Aead, KeyInit, OsRng, Payload},
    AeadCore, Aes256Gcm, Key, Nonce,
};
use bytes::Bytes;
use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The tag every envelope starts with.
const TAG: &[u8] = b"tclearn/vault/v1";
/// Nonce bytes of AES-GCM.
const NONCE: usize = 12;
/// Authentication tag bytes of AES-GCM.
const AUTH: usize = 16;
/// Bytes of the envelope before the ciphertext.
const HEADER: usize = TAG.len() + NONCE + 32 + AUTH + NONCE;

/// Why the vault refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The object is larger than the vault takes.
    #[error("the object is {size} bytes; the vault's limit is {max}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// No object has this hash.
    #[error("no object 0x{0}")]
    NotFound(String),
    /// The stored envelope does not open with this vault's key, or its content is not the
    /// object its name says: tampered with, or another vault's.
    #[error("object 0x{0} does not open: tampered with, or encrypted under another master key")]
    Corrupt(String),
    /// A master key that is not 32 bytes of hex.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The storage backend failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The store holds objects, and this master key does not open them.
    #[error(
        "the vault holds objects (0x{0} among them) that this master key does not open: \
         give the key they were stored under (a new key would make every one unreadable)"
    )]
    WrongKey(String),
}

/// The vault's master key: wraps every object's data key. Never printed.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self(Zeroizing::new(Aes256Gcm::generate_key(OsRng).into()))
    }

    /// A key from 64 hex digits (optionally `0x`-prefixed, surrounding white space ignored), as
    /// in a key file or an environment variable.
    pub fn from_hex(text: &str) -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim().trim_start_matches("0x"), key.as_mut())
            .map_err(|_| VaultError::MasterKey("expected 64 hex digits (32 bytes)".into()))?;
        Ok(Self(key))
    }

    /// The coalition's secret for anonymised data IDs: SHA3-256 of a label, this key and the
    /// coalition's address. Members read it from the vault; it is the same for every member, so
    /// the same patient at two hospitals gets the same ID, and unknown to anyone else.
    pub fn data_id_key(&self, coalition: &[u8; 20]) -> Zeroizing<[u8; 32]> {
        use sha3::{Digest, Sha3_256};
        let mut hasher = Sha3_256::new();
        hasher.update(b"tclearn data-id key v1");
        hasher.update(self.0.as_ref());
        hasher.update(coalition);
        Zeroizing::new(hasher.finalize().into())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_ref()))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// SHA3-256 of `bytes`: an object's name, the hash candidates are proposed and fetched under.
pub use tclearn_model::hash::model_hash as object_hash;

/// An S3-compatible store at `url` (`s3://bucket[/prefix]`), configured from the standard
/// `AWS_*` environment variables, then `options` (`aws_endpoint`, `aws_allow_http`,
/// `aws_region`, ...: object_store's `AmazonS3ConfigKey` names).
pub fn s3_store(url: &str, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>, VaultError> {
    let (bucket_url, prefix) = match url.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
        Some((bucket, prefix)) => (format!("s3://{bucket}"), prefix.trim_matches('/').to_string()),
        None => (url.to_string(), String::new()),
    };
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(bucket_url);
    for (key, value) in options {
        let key = key
            .parse::<object_store::aws::AmazonS3ConfigKey>()
            .map_err(|_| VaultError::Storage(format!("unknown S3 option {key:?}")))?;
        builder = builder.with_config(key, value);
    }
    let store = builder.build().map_err(storage)?;
    if prefix.is_empty() {
        return Ok(Arc::new(store));
    }
    Ok(Arc::new(object_store::prefix::PrefixStore::new(store, prefix)))
}

/// The vault.
#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn ObjectStore>,
    key: MasterKey,
    max_bytes: u64,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("store", &self.store.to_string()).field("max_bytes", &self.max_bytes).finish()
    }
}

fn storage(error: object_store::Error) -> VaultError {
    VaultError::Storage(error.to_string())
}

impl Vault {
    /// The coalition's secret for anonymised data IDs ([`MasterKey::data_id_key`]).
    pub fn data_id_key(&self, coalition: &[u8; 20]) -> Zeroizing<[u8; 32]> {
        self.key.data_id_key(coalition)
    }

    /// A vault over `store`, its objects sealed with `key`, each at most `max_bytes`.
    pub fn new(store: Arc<dyn ObjectStore>, key: MasterKey, max_bytes: u64) -> Self {
        Self { store, key, max_bytes }
    }

    /// Largest object it takes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where object `hash` is stored.
    fn location(hash: &[u8; 32]) -> Path {
        Path::from(format!("objects/{}", hex::encode(hash)))
    }

    /// Store `plaintext` and return its hash. Storing content the vault already holds returns
    /// the same hash and writes nothing.
    pub async fn put(&self, plaintext: &[u8]) -> Result<[u8; 32], VaultError> {
        let size = plaintext.len() as u64;
        if size > self.max_bytes {
            return Err(VaultError::TooLarge { size, max: self.max_bytes });
        }
        let hash = object_hash(plaintext);
        let envelope = self.seal(&hash, plaintext)?;
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&Self::location(&hash), PutPayload::from(envelope), options).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(hash),
            Err(e) => Err(storage(e)),
        }
    }

    /// The plaintext of object `hash`, checked against its hash.
    pub async fn get(&self, hash: &[u8; 32]) -> Result<Bytes, VaultError> {
        let stored = match self.store.get(&Self::location(hash)).await {
            Ok(result) => result.bytes().await.map_err(storage)?,
            Err(object_store::Error::NotFound { .. }) => return Err(VaultError::NotFound(hex::encode(hash))),
            Err(e) => return Err(storage(e)),
        };
        let plaintext = self.open(hash, &stored)?;
        if object_hash(&plaintext) != *hash {
            return Err(VaultError::Corrupt(hex::encode(hash)));
        }
        Ok(Bytes::from(plaintext))
    }

    /// Up to `max` objects the store holds.
    pub async fn some_objects(store: &dyn ObjectStore, max: usize) -> Result<Vec<[u8; 32]>, VaultError> {
        use futures::TryStreamExt;
        let mut listing = store.list(Some(&Path::from("objects")));
        let mut found = Vec::new();
        while let Some(meta) = listing.try_next().await.map_err(storage)? {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(meta.location.filename().unwrap_or_default(), &mut hash).is_ok() {
                found.push(hash);
                if found.len() >= max {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Check that the master key opens what the store holds: the data key of one of `objects`
    /// (a few the store holds, [`Vault::some_objects`]) unwraps under it (a range read of each
    /// envelope's head, whatever the object's size). Objects that are not envelopes at all
    /// (truncated, planted) are passed over: only envelopes this key cannot open mean the key is
    /// wrong.
    ///
    /// # Errors
    /// [`VaultError::WrongKey`] when envelopes are found and none opens, [`VaultError::Storage`]
    /// when the store fails.
    pub async fn ensure_key_opens(&self, objects: &[[u8; 32]]) -> Result<(), VaultError> {
        let mut sealed_elsewhere = None;
        for hash in objects {
            let hash = *hash;
            let head = match self.store.get_range(&Self::location(&hash), 0..HEADER as u64).await {
                Ok(head) => head,
                Err(_) => continue, // shorter than a header: not an envelope
            };
            if !head.starts_with(TAG) {
                continue;
            }
            match self.data_key(&hash, &head) {
                Ok(_) => return Ok(()),
                Err(_) => sealed_elsewhere = Some(hash),
            }
        }
        match sealed_elsewhere {
            Some(hash) => Err(VaultError::WrongKey(hex::encode(hash))),
            None => Ok(()),
        }
    }

    /// Whether the vault holds object `hash`.
    pub async fn contains(&self, hash: &[u8; 32]) -> Result<bool, VaultError> {
        match self.store.head(&Self::location(hash)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage(e)),
        }
    }

    fn seal(&self, hash: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let failed = |_| VaultError::Storage("encryption failed".into());
        let data_key = Zeroizing::new(<[u8; 32]>::from(Aes256Gcm::generate_key(OsRng)));
        let key_nonce = Aes256Gcm::generate_nonce(OsRng);
        let wrapped =
            self.key.cipher().encrypt(&key_nonce, Payload { msg: data_key.as_ref(), aad: hash }).map_err(failed)?;
        let data_nonce = Aes256Gcm::generate_nonce(OsRng);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_ref()));
        let ciphertext = cipher.encrypt(&data_nonce, Payload { msg: plaintext, aad: hash }).map_err(failed)?;
        let mut envelope = Vec::with_capacity(HEADER + ciphertext.len());
        envelope.extend_from_slice(TAG);
        envelope.extend_from_slice(&key_nonce);
        envelope.extend_from_slice(&wrapped);
        envelope.extend_from_slice(&data_nonce);
        envelope.extend_from_slice(&ciphertext);
        Ok(envelope)
    }

    /// The data key of object `hash`, unwrapped from the head of its envelope (the first
    /// [`HEADER`] bytes at least).
    fn data_key(&self, hash: &[u8; 32], envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let corrupt = || VaultError::Corrupt(hex::encode(hash));
        let rest = envelope.strip_prefix(TAG).ok_or_else(corrupt)?;
        if rest.len() < NONCE + 32 + AUTH {
            return Err(corrupt());
        }
        let (key_nonce, rest) = rest.split_at(NONCE);
        let wrapped = rest.get(..32 + AUTH).ok_or_else(corrupt)?;
        let data_key = Zeroizing::new(
            self.key
                .cipher()
                .decrypt(Nonce::from_slice(key_nonce), Payload { msg: wrapped, aad: hash })
                .map_err(|_| corrupt())?,
        );
        if data_key.len() != 32 {
            return Err(corrupt());
        }
        Ok(data_key)
    }

    fn open(&self, hash: &[u8; 32], envelope: &[u8]) -> Result<Vec<u8>, VaultError> {
        let corrupt = || VaultError::Corrupt(hex::encode(hash));
        if envelope.len() < HEADER + AUTH {
            return Err(corrupt());
        }
        let data_key = self.data_key(hash, envelope)?;
        let (data_nonce, ciphertext) = envelope[HEADER - NONCE..].split_at(NONCE);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
        cipher.decrypt(Nonce::from_slice(data_nonce), Payload { msg: ciphertext, aad: hash }).map_err(|_| corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    fn vault(dir: &std::path::Path, key: MasterKey, max_bytes: u64) -> Vault {
        Vault::new(Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap()), key, max_bytes)
    }

    fn stored_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let objects = dir.join("objects");
        let mut files: Vec<_> =
            std::fs::read_dir(&objects).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        files.sort();
        files
    }

    #[tokio::test]
    async fn objects_round_trip_under_their_hash_and_are_encrypted_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path(), MasterKey::generate(), 1 << 20);
        let model = b"an ONNX model, or its weights, private to the coalition".repeat(100);
        let hash = vault.put(&model).await.unwrap();
        assert_eq!(hash, object_hash(&model));
        assert_eq!(vault.get(&hash).await.unwrap(), Bytes::from(model.clone()));
        assert!(vault.contains(&hash).await.unwrap());
        let files = stored_files(dir.path());
        assert_eq!(files, vec![dir.path().join("objects").join(hex::encode(hash))]);
        let at_rest = std::fs::read(&files[0]).unwrap();
        assert_eq!(at_rest.len(), model.len() + HEADER + AUTH);
        assert!(!at_rest.windows(16).any(|w| model.windows(16).any(|m| m == w)), "no plaintext at rest");
        let missing = vault.get(&[7; 32]).await.unwrap_err();
        assert!(matches!(missing, VaultError::NotFound(_)), "{missing}");
        assert!(!vault.contains(&[7; 32]).await.unwrap());
    }

    #[tokio::test]
    async fn objects_are_written_once_and_a_refused_upload_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path(), MasterKey::generate(), 1024);
        let hash = vault.put(b"first").await.unwrap();
        let path = dir.path().join("objects").join(hex::encode(hash));
        let before = std::fs::read(&path).unwrap();
        // The same content again: the same hash, the stored envelope untouched (a new one would
        // have other random keys and nonces).
        assert_eq!(vault.put(b"first").await.unwrap(), hash);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Over the limit: refused before anything is written.
        let error = vault.put(&[0u8; 1025]).await.unwrap_err();
        assert!(matches!(error, VaultError::TooLarge { size: 1025, max: 1024 }), "{error}");
        assert_eq!(stored_files(dir.path()), vec![path]);
        assert_eq!(vault.get(&hash).await.unwrap(), Bytes::from_static(b"first"));
    }

    #[tokio::test]
    async fn tampered_moved_or_foreign_envelopes_do_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let vault = vault(dir.path(), key.clone(), 1 << 20);
        let a = vault.put(b"model a").await.unwrap();
        let b = vault.put(b"model b").await.unwrap();
        let path = |hash: &[u8; 32]| dir.path().join("objects").join(hex::encode(hash));
        let original = std::fs::read(path(&a)).unwrap();
        // One bit flipped in the ciphertext.
        let mut flipped = original.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(path(&a), &flipped).unwrap();
        assert!(matches!(vault.get(&a).await, Err(VaultError::Corrupt(_))));
        // An envelope moved under another object's name (the hash is associated data).
        std::fs::write(path(&a), std::fs::read(path(&b)).unwrap()).unwrap();
        assert!(matches!(vault.get(&a).await, Err(VaultError::Corrupt(_))));
        // Truncated.
        std::fs::write(path(&a), &original[..20]).unwrap();
        assert!(matches!(vault.get(&a).await, Err(VaultError::Corrupt(_))));
        // Another vault's master key.
        std::fs::write(path(&a), &original).unwrap();
        let other = self::vault(dir.path(), MasterKey::generate(), 1 << 20);
        assert!(matches!(other.get(&a).await, Err(VaultError::Corrupt(_))));
        assert_eq!(self::vault(dir.path(), key, 1 << 20).get(&a).await.unwrap(), Bytes::from_static(b"model a"));
    }

    #[test]
    fn the_master_key_reads_from_hex_and_is_never_printed() {
        let hex_key = "0x".to_string() + &"ab".repeat(32);
        let key = MasterKey::from_hex(&format!("  {hex_key}\n")).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(..)");
        let vault = Vault::new(Arc::new(object_store::memory::InMemory::new()), key, 1);
        assert!(!format!("{vault:?}").contains("abab"), "{vault:?}");
        for bad in ["", "12", &"zz".repeat(32), &"ab".repeat(33)] {
            let error = MasterKey::from_hex(bad).unwrap_err().to_string();
            assert!(error.contains("64 hex digits") && !error.contains("abab"), "{error}");
        }
    }
}

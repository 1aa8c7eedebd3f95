//! The model vault: content-addressed, encrypted at rest, write-once.
//!
//! An object is named by the SHA3-256 of its plaintext (the hash a candidate is proposed and
//! fetched under on chain), and stored as an envelope:
//!
//! ```text
//! "tclearn/vault/v2" | key id (8) | key nonce (12) | wrapped data key (32 + 16 tag) | data nonce (12) | ciphertext + tag (16)
//! ```
//!
//! - each object has its own random 256-bit data key, which encrypts it with AES-256-GCM;
//! - the data key is wrapped (AES-256-GCM) by the vault's master key, which never leaves the
//!   process and is never printed ([`MasterKey`]'s `Debug` shows nothing of it);
//! - the envelope names the master key that wrapped it ([`KeyId`], a hash of the key), so a
//!   wrong key is told apart from a tampered envelope, and a key rotation
//!   ([`Vault::rewrap`]) knows which objects it has done;
//! - both encryptions take the object's hash as associated data (the wrapping also its key
//!   id), so an envelope moved to another name does not open, and the plaintext's hash is
//!   checked again on every read;
//! - envelopes of the first version (`"tclearn/vault/v1"`, no key id) still open, and a
//!   rotation rewrites them in this one;
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

/// The tag every envelope written now starts with.
const TAG: &[u8] = b"tclearn/vault/v2";
/// The first version's tag: no key id.
const TAG_V1: &[u8] = b"tclearn/vault/v1";
/// Bytes of a key id.
const KEY_ID: usize = 8;
/// Nonce bytes of AES-GCM.
const NONCE: usize = 12;
/// Authentication tag bytes of AES-GCM.
const AUTH: usize = 16;
/// Bytes of a wrapped data key.
const WRAPPED: usize = 32 + AUTH;
/// Bytes of the envelope before the ciphertext.
const HEADER: usize = TAG.len() + KEY_ID + NONCE + WRAPPED + NONCE;

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
    /// The object is sealed under another master key than this one.
    #[error(
        "object 0x{object} is sealed under master key {sealed}, and this key is {ours}: give the key \
         it was stored under (if a key rotation stopped half-way, run tclearn-api vault rotate-key \
         again to finish it)"
    )]
    OtherKey {
        /// The object (hex).
        object: String,
        /// The key its envelope names.
        sealed: KeyId,
        /// This vault's key.
        ours: KeyId,
    },
}

/// A master key's public name: the first 8 bytes of the SHA3-256 of a label and the key. It
/// tells which key sealed an envelope and reveals nothing usable of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; KEY_ID]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// What [`Vault::rewrap`] did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrapped {
    /// Its data key is now wrapped by the new key (its ciphertext unchanged).
    Done,
    /// It was already sealed under the new key (a rotation run again after stopping).
    Already,
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

    /// The key's public name.
    pub fn id(&self) -> KeyId {
        use sha3::{Digest, Sha3_256};
        let digest = Sha3_256::new().chain_update(b"tclearn vault key id v1").chain_update(self.0.as_ref()).finalize();
        let mut id = [0u8; KEY_ID];
        id.copy_from_slice(&digest[..KEY_ID]);
        KeyId(id)
    }

    /// The key as 64 hex digits, to write to its file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    /// The data-ID secret an API derived from its master key before the secret had a file of
    /// its own (SHA3-256 of a label, the key and the coalition's address): read once, to move
    /// it to that file so that a coalition's data IDs stay valid ([`crate::keys`]).
    pub fn legacy_data_id_secret(&self, coalition: &[u8; 20]) -> Zeroizing<[u8; 32]> {
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
        let stored = self.envelope(hash).await?;
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
    /// [`VaultError::OtherKey`] when an envelope names another key, [`VaultError::WrongKey`]
    /// when envelopes are found and none opens, [`VaultError::Storage`] when the store fails.
    pub async fn ensure_key_opens(&self, objects: &[[u8; 32]]) -> Result<(), VaultError> {
        let mut sealed_elsewhere = None;
        for hash in objects {
            let hash = *hash;
            let head = match self.store.get_range(&Self::location(&hash), 0..HEADER as u64).await {
                Ok(head) => head,
                Err(_) => continue, // shorter than a header: not an envelope
            };
            match data_key(&self.key, &hash, &head) {
                Ok(_) => return Ok(()),
                Err(error @ VaultError::OtherKey { .. }) => return Err(error),
                Err(_) if parse_head(&head).is_some_and(|head| head.key_id.is_none()) => sealed_elsewhere = Some(hash),
                Err(_) => continue, // not an envelope, or tampered with
            }
        }
        match sealed_elsewhere {
            Some(hash) => Err(VaultError::WrongKey(hex::encode(hash))),
            None => Ok(()),
        }
    }

    /// Every object the store holds, by name (a listing: 32 bytes an object).
    pub async fn all_objects(&self) -> Result<Vec<[u8; 32]>, VaultError> {
        Self::some_objects(self.store.as_ref(), usize::MAX).await
    }

    /// Whether the vault holds object `hash`.
    pub async fn contains(&self, hash: &[u8; 32]) -> Result<bool, VaultError> {
        match self.store.head(&Self::location(hash)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage(e)),
        }
    }

    /// Re-wrap object `hash`'s data key under `new` (a key rotation): its envelope is rewritten
    /// with a new head and the same ciphertext, after the new envelope has been opened under
    /// `new` to the object whose hash it bears. An object already sealed under `new` is checked
    /// the same way and left as it is, so a rotation that stopped half-way is finished by
    /// running it again.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::Corrupt`] (it does not open under this vault's
    /// key or `new` to its hash: nothing is written), [`VaultError::OtherKey`] (sealed under a
    /// third key), [`VaultError::Storage`].
    pub async fn rewrap(&self, hash: &[u8; 32], new: &MasterKey) -> Result<Rewrapped, VaultError> {
        let envelope = self.envelope(hash).await?;
        let corrupt = || VaultError::Corrupt(hex::encode(hash));
        let head = parse_head(&envelope).ok_or_else(corrupt)?;
        if head.key_id == Some(new.id()) {
            ensure_opens(new, hash, &envelope)?;
            return Ok(Rewrapped::Already);
        }
        ensure_opens(&self.key, hash, &envelope)?;
        let key = data_key(&self.key, hash, &envelope)?;
        let mut rewritten = sealed_head(new, hash, &key, head.data_nonce)?;
        rewritten.extend_from_slice(envelope.get(head.body..).ok_or_else(corrupt)?);
        ensure_opens(new, hash, &rewritten)?;
        let options = PutOptions { mode: PutMode::Overwrite, ..Default::default() };
        self.store.put_opts(&Self::location(hash), PutPayload::from(rewritten), options).await.map_err(storage)?;
        Ok(Rewrapped::Done)
    }

    /// The stored envelope of object `hash`.
    async fn envelope(&self, hash: &[u8; 32]) -> Result<Bytes, VaultError> {
        match self.store.get(&Self::location(hash)).await {
            Ok(result) => result.bytes().await.map_err(storage),
            Err(object_store::Error::NotFound { .. }) => Err(VaultError::NotFound(hex::encode(hash))),
            Err(e) => Err(storage(e)),
        }
    }

    fn seal(&self, hash: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let data_key = Zeroizing::new(<[u8; 32]>::from(Aes256Gcm::generate_key(OsRng)));
        let data_nonce = Aes256Gcm::generate_nonce(OsRng);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_ref()));
        let ciphertext =
            cipher.encrypt(&data_nonce, Payload { msg: plaintext, aad: hash }).map_err(|_| encryption_failed())?;
        let mut envelope = sealed_head(&self.key, hash, data_key.as_ref(), &data_nonce)?;
        envelope.reserve_exact(ciphertext.len());
        envelope.extend_from_slice(&ciphertext);
        Ok(envelope)
    }

    fn open(&self, hash: &[u8; 32], envelope: &[u8]) -> Result<Vec<u8>, VaultError> {
        open_with(&self.key, hash, envelope)
    }
}

fn encryption_failed() -> VaultError {
    VaultError::Storage("encryption failed".into())
}

/// An envelope's head, parsed.
struct Head<'a> {
    /// The key that wrapped the data key: none in a first-version envelope.
    key_id: Option<KeyId>,
    key_nonce: &'a [u8],
    wrapped: &'a [u8],
    data_nonce: &'a [u8],
    /// Where the ciphertext starts.
    body: usize,
}

/// The head of `envelope` (either version), if it has one.
fn parse_head(envelope: &[u8]) -> Option<Head<'_>> {
    let (key_id, rest) = match envelope.strip_prefix(TAG) {
        Some(rest) => {
            let (id, rest) = rest.split_at_checked(KEY_ID)?;
            (Some(KeyId(id.try_into().ok()?)), rest)
        }
        None => (None, envelope.strip_prefix(TAG_V1)?),
    };
    let (key_nonce, rest) = rest.split_at_checked(NONCE)?;
    let (wrapped, rest) = rest.split_at_checked(WRAPPED)?;
    let (data_nonce, _) = rest.split_at_checked(NONCE)?;
    let body = HEADER - if key_id.is_some() { 0 } else { KEY_ID };
    Some(Head { key_id, key_nonce, wrapped, data_nonce, body })
}

/// What the wrapping of a data key is bound to: the object's hash, and the wrapping key's id
/// (none in a first-version envelope).
fn wrapping_aad(hash: &[u8; 32], key_id: Option<KeyId>) -> Vec<u8> {
    let mut aad = hash.to_vec();
    if let Some(id) = key_id {
        aad.extend_from_slice(&id.0);
    }
    aad
}

/// A current envelope's head: `data_key` wrapped by `key` for object `hash`, and the nonce
/// its ciphertext (which follows) was made with.
fn sealed_head(key: &MasterKey, hash: &[u8; 32], data_key: &[u8], data_nonce: &[u8]) -> Result<Vec<u8>, VaultError> {
    let id = key.id();
    let key_nonce = Aes256Gcm::generate_nonce(OsRng);
    let aad = wrapping_aad(hash, Some(id));
    let wrapped =
        key.cipher().encrypt(&key_nonce, Payload { msg: data_key, aad: &aad }).map_err(|_| encryption_failed())?;
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(TAG);
    head.extend_from_slice(&id.0);
    head.extend_from_slice(&key_nonce);
    head.extend_from_slice(&wrapped);
    head.extend_from_slice(data_nonce);
    Ok(head)
}

/// The data key of object `hash`, unwrapped by `key` from the head of its envelope.
fn data_key(key: &MasterKey, hash: &[u8; 32], envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let corrupt = || VaultError::Corrupt(hex::encode(hash));
    let head = parse_head(envelope).ok_or_else(corrupt)?;
    if let Some(sealed) = head.key_id.filter(|id| *id != key.id()) {
        return Err(VaultError::OtherKey { object: hex::encode(hash), sealed, ours: key.id() });
    }
    let aad = wrapping_aad(hash, head.key_id);
    let data_key = Zeroizing::new(
        key.cipher()
            .decrypt(Nonce::from_slice(head.key_nonce), Payload { msg: head.wrapped, aad: &aad })
            .map_err(|_| corrupt())?,
    );
    if data_key.len() != 32 {
        return Err(corrupt());
    }
    Ok(data_key)
}

/// The plaintext of envelope `envelope` of object `hash`, opened with `key`.
fn open_with(key: &MasterKey, hash: &[u8; 32], envelope: &[u8]) -> Result<Vec<u8>, VaultError> {
    let corrupt = || VaultError::Corrupt(hex::encode(hash));
    let head = parse_head(envelope).ok_or_else(corrupt)?;
    let ciphertext = envelope.get(head.body..).filter(|c| c.len() >= AUTH).ok_or_else(corrupt)?;
    let data_key = data_key(key, hash, envelope)?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
    cipher.decrypt(Nonce::from_slice(head.data_nonce), Payload { msg: ciphertext, aad: hash }).map_err(|_| corrupt())
}

/// Check that `envelope` opens with `key` to the object named `hash`.
fn ensure_opens(key: &MasterKey, hash: &[u8; 32], envelope: &[u8]) -> Result<(), VaultError> {
    match open_with(key, hash, envelope) {
        Ok(plaintext) if object_hash(&plaintext) == *hash => Ok(()),
        Ok(_) => Err(VaultError::Corrupt(hex::encode(hash))),
        Err(e) => Err(e),
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
        // Another vault's master key: the envelope names the key it was sealed under.
        std::fs::write(path(&a), &original).unwrap();
        let other_key = MasterKey::generate();
        let other = self::vault(dir.path(), other_key.clone(), 1 << 20);
        let error = other.get(&a).await.unwrap_err();
        assert!(
            matches!(error, VaultError::OtherKey { sealed, ours, .. } if sealed == key.id() && ours == other_key.id()),
            "{error}"
        );
        assert!(error.to_string().contains(&key.id().to_string()), "{error}");
        // A key id rewritten to the other key's: the wrapping is bound to its key id.
        let mut renamed = original.clone();
        renamed[TAG.len()..TAG.len() + KEY_ID].copy_from_slice(&other_key.id().0);
        std::fs::write(path(&a), &renamed).unwrap();
        assert!(matches!(other.get(&a).await, Err(VaultError::Corrupt(_))));
        std::fs::write(path(&a), &original).unwrap();
        assert_eq!(self::vault(dir.path(), key, 1 << 20).get(&a).await.unwrap(), Bytes::from_static(b"model a"));
    }

    /// An envelope as the first version sealed it: no key id, the wrapping bound to the hash
    /// alone.
    fn seal_v1(key: &MasterKey, hash: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
        let data_key = Aes256Gcm::generate_key(OsRng);
        let key_nonce = Aes256Gcm::generate_nonce(OsRng);
        let wrapped = key.cipher().encrypt(&key_nonce, Payload { msg: data_key.as_ref(), aad: hash }).unwrap();
        let data_nonce = Aes256Gcm::generate_nonce(OsRng);
        let ciphertext = Aes256Gcm::new(&data_key).encrypt(&data_nonce, Payload { msg: plaintext, aad: hash }).unwrap();
        [TAG_V1, key_nonce.as_slice(), &wrapped, data_nonce.as_slice(), &ciphertext].concat()
    }

    #[tokio::test]
    async fn a_rotation_rewraps_every_object_under_the_new_key_and_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let vault = vault(dir.path(), old.clone(), 1 << 20);
        let path = |hash: &[u8; 32]| dir.path().join("objects").join(hex::encode(hash));
        let models: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000 + usize::from(i)]).collect();
        let mut hashes = Vec::new();
        for model in &models[..2] {
            hashes.push(vault.put(model).await.unwrap());
        }
        // One stored by the first version, without a key id.
        let legacy = object_hash(&models[2]);
        std::fs::write(path(&legacy), seal_v1(&old, &legacy, &models[2])).unwrap();
        hashes.push(legacy);
        assert_eq!(vault.get(&legacy).await.unwrap(), Bytes::from(models[2].clone()), "v1 still opens");
        let before: Vec<Vec<u8>> = hashes.iter().map(|h| std::fs::read(path(h)).unwrap()).collect();
        let mut found = vault.all_objects().await.unwrap();
        found.sort();
        let mut sorted = hashes.clone();
        sorted.sort();
        assert_eq!(found, sorted);

        for hash in &hashes {
            assert_eq!(vault.rewrap(hash, &new).await.unwrap(), Rewrapped::Done);
        }
        let rotated = self::vault(dir.path(), new.clone(), 1 << 20);
        for ((hash, model), before) in hashes.iter().zip(&models).zip(&before) {
            assert_eq!(rotated.get(hash).await.unwrap(), Bytes::from(model.clone()));
            let error = vault.get(hash).await.unwrap_err();
            assert!(matches!(error, VaultError::OtherKey { sealed, .. } if sealed == new.id()), "{error}");
            // The ciphertext is the same: only the head changed.
            let after = std::fs::read(path(hash)).unwrap();
            assert!(after.starts_with(TAG) && after[TAG.len()..TAG.len() + KEY_ID] == new.id().0);
            let body = |envelope: &[u8]| envelope[parse_head(envelope).unwrap().body..].to_vec();
            assert_eq!(body(&after), body(before));
        }
        // Run again (a rotation that stopped half-way): nothing left to do, nothing written.
        let now: Vec<Vec<u8>> = hashes.iter().map(|h| std::fs::read(path(h)).unwrap()).collect();
        for hash in &hashes {
            assert_eq!(vault.rewrap(hash, &new).await.unwrap(), Rewrapped::Already);
        }
        assert_eq!(now, hashes.iter().map(|h| std::fs::read(path(h)).unwrap()).collect::<Vec<_>>());
        rotated.ensure_key_opens(&hashes).await.unwrap();
        let error = vault.ensure_key_opens(&hashes).await.unwrap_err();
        assert!(error.to_string().contains("rotate-key"), "{error}");
    }

    #[tokio::test]
    async fn a_rotation_never_rewrites_an_object_that_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let vault = vault(dir.path(), old.clone(), 1 << 20);
        let hash = vault.put(b"a model").await.unwrap();
        let path = dir.path().join("objects").join(hex::encode(hash));
        // Tampered with: one bit of ciphertext flipped (the data key still unwraps).
        let mut flipped = std::fs::read(&path).unwrap();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(vault.rewrap(&hash, &new).await, Err(VaultError::Corrupt(_))));
        assert_eq!(std::fs::read(&path).unwrap(), flipped, "left as it was");
        // Sealed under a third key.
        let third = self::vault(dir.path(), MasterKey::generate(), 1 << 20);
        std::fs::remove_file(&path).unwrap();
        third.put(b"a model").await.unwrap();
        let sealed = std::fs::read(&path).unwrap();
        assert!(matches!(vault.rewrap(&hash, &new).await, Err(VaultError::OtherKey { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), sealed, "left as it was");
        assert!(matches!(vault.rewrap(&[9; 32], &new).await, Err(VaultError::NotFound(_))));
    }

    #[test]
    fn key_ids_name_keys_and_only_them() {
        let key = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(key.id(), MasterKey::from_hex(&"ab".repeat(32)).unwrap().id());
        assert_ne!(key.id(), MasterKey::from_hex(&"ac".repeat(32)).unwrap().id());
        assert_eq!(key.id().to_string().len(), 16);
        assert!(!key.id().to_string().contains("abab"));
        assert_eq!(MasterKey::from_hex(&key.to_hex()).unwrap().id(), key.id());
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

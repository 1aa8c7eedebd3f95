//! The model vault: content-addressed, encrypted at rest, write-once.
//!
//! An object is named by the SHA3-256 of its plaintext (the hash a candidate is proposed and
//! fetched under on chain), and stored as an envelope:
//!
//! ```text
//! "tclearn/vault/v3" | key id (8) | key nonce (12) | wrapped data key (32 + 16 tag) | stream nonce (7) | chunk 0 | chunk 1 | ...
//! ```
//!
//! - each object has its own random 256-bit data key, which encrypts it with AES-256-GCM in
//!   chunks of [`CHUNK`] bytes (the last shorter; an empty object is one empty chunk), each
//!   sealed with its own tag under the nonce `stream nonce | chunk number (32-bit) | last?`:
//!   the STREAM construction (Hoang, Reyhanitabar, Rogaway and Vizár, 2015), as the `aead`
//!   crate's `StreamBE32` implements it. A chunk moved, repeated, dropped or cut, or an
//!   envelope cut at a chunk's end, does not open; so the vault takes an object in and serves
//!   it chunk by chunk, in memory bounded by a chunk, whatever its size ([`Vault::put_from`],
//!   [`Vault::open`]);
//! - the data key is wrapped (AES-256-GCM) by the vault's master key, which never leaves the
//!   process and is never printed ([`MasterKey`]'s `Debug` shows nothing of it);
//! - the envelope names the master key that wrapped it ([`KeyId`], a hash of the key), so a
//!   wrong key is told apart from a tampered envelope, and a key rotation
//!   ([`Vault::rewrap`]) knows which objects it has done;
//! - both encryptions take the object's hash as associated data (the wrapping also its key
//!   id and the envelope's version), so an envelope moved to another name, or relabelled as
//!   another version, does not open; and the plaintext's hash is checked again on every read
//!   (a read that streams ends in an error, not in its last chunk, when it does not match);
//! - envelopes of earlier versions still open: the second (`"tclearn/vault/v2"`, one AES-GCM
//!   message, `data nonce (12) | ciphertext + tag`) and the first (`"tclearn/vault/v1"`, the
//!   same without a key id). They were written whole, at most the vault's limit, and are read
//!   whole; a rotation rewraps them in the second version, their ciphertext untouched;
//! - objects are written once: storing content the vault already holds returns the object
//!   there and writes nothing (two uploads of the same content at the same moment may both
//!   write, each a whole envelope of the same plaintext: the last one stays);
//! - an object is written as a multipart upload that completes only once every chunk is
//!   sealed and the whole hashed to the object's name: an upload that fails half-way, or
//!   whose bytes are not the object its name says, leaves nothing;
//! - an object over the size limit is refused before anything is written.
//!
//! Storage goes through [`object_store`]: local files by default; an S3-compatible store is a
//! matter of configuration.

use aes_gcm::{
    aead::{
        stream::{NewStream, StreamBE32, StreamPrimitive},
        Aead, KeyInit, OsRng, Payload,
    },
    AeadCore, Aes256Gcm, Key, Nonce,
};
use bytes::{Bytes, BytesMut};
use futures::{stream::BoxStream, StreamExt, TryStreamExt};
use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::sync::Arc;
use tclearn_model::hash::ModelHasher;
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

/// The tag every envelope written now starts with.
const TAG: &[u8] = b"tclearn/vault/v3";
/// The second version's tag: one AES-GCM message.
const TAG_V2: &[u8] = b"tclearn/vault/v2";
/// The first version's tag: one AES-GCM message, no key id.
const TAG_V1: &[u8] = b"tclearn/vault/v1";
/// Bytes of a key id.
const KEY_ID: usize = 8;
/// Nonce bytes of AES-GCM.
const NONCE: usize = 12;
/// Nonce bytes of a STREAM (AES-GCM's, less the chunk number and the last flag).
const STREAM_NONCE: usize = NONCE - 5;
/// Authentication tag bytes of AES-GCM.
const AUTH: usize = 16;
/// Bytes of a wrapped data key.
const WRAPPED: usize = 32 + AUTH;
/// Bytes of the envelope before its first chunk.
#[cfg(test)]
const HEADER: usize = TAG.len() + KEY_ID + NONCE + WRAPPED + STREAM_NONCE;
/// Bytes of the longest head of any version (the second's): every envelope is longer.
const LONGEST_HEADER: usize = TAG.len() + KEY_ID + NONCE + WRAPPED + NONCE;
/// Plaintext bytes of a chunk (but the last).
pub const CHUNK: usize = 64 << 10;
/// Stored bytes of a chunk (but the last).
const SEALED_CHUNK: usize = CHUNK + AUTH;
/// Bytes of one part of a multipart upload (S3's least part size), and how many are sent at
/// once: what an upload into the store holds in memory.
const PART: usize = 5 << 20;
const PARTS_IN_FLIGHT: usize = 2;

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
    /// What was to be stored could not be read, or was not the `size` bytes hashing to `hash`
    /// it was said to be: nothing is written.
    #[error("the object to store: {0}")]
    Input(String),
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
    /// Its data key is now wrapped by the new key (its chunks, or its ciphertext, unchanged).
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

/// An S3-compatible store at `url` (`s3://bucket[/prefix]`), configured by [`s3_defaults`],
/// then the standard `AWS_*` environment variables, then `options` (`aws_endpoint`,
/// `aws_allow_http`, `aws_region`, `timeout`, `read_timeout`, ...: object_store's
/// `AmazonS3ConfigKey` names), which override both.
pub fn s3_store(url: &str, options: &[(String, String)]) -> Result<Arc<dyn ObjectStore>, VaultError> {
    let (bucket_url, prefix) = match url.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
        Some((bucket, prefix)) => (format!("s3://{bucket}"), prefix.trim_matches('/').to_string()),
        None => (url.to_string(), String::new()),
    };
    let environment =
        std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)));
    let store = s3_builder(&bucket_url, environment, options)?.build().map_err(storage)?;
    if prefix.is_empty() {
        return Ok(Arc::new(store));
    }
    Ok(Arc::new(object_store::prefix::PrefixStore::new(store, prefix)))
}

/// How long an S3 read may wait for its next bytes before it is retried ([`s3_defaults`]).
pub const S3_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The vault's S3 client settings, before the environment's and the operator's options:
///
/// - no timeout on a whole request, but [`S3_READ_TIMEOUT`] for an answer to start and between
///   two reads of it: a download streams from the store as the member reads it, so its GET
///   lasts as long as the member's download (bounded by the API's download deadline), and
///   object_store's default (30 s for the whole request) would cut a slow member's download of
///   a large model;
/// - retries (object_store retries a GET's body from where it stopped) until 10 have failed,
///   for up to [`S3_RETRY_TIMEOUT`] since the request started (object_store's default, 3
///   minutes, would end a slow download's retries).
pub fn s3_defaults(builder: object_store::aws::AmazonS3Builder) -> object_store::aws::AmazonS3Builder {
    let client = object_store::ClientOptions::new().with_timeout_disabled().with_read_timeout(S3_READ_TIMEOUT);
    let retry = object_store::RetryConfig { retry_timeout: S3_RETRY_TIMEOUT, ..Default::default() };
    builder.with_client_options(client).with_retry(retry)
}

/// How long after a request started object_store may still retry it ([`s3_defaults`]): longer
/// than the download of the largest object at the slowest pace the API allows.
pub const S3_RETRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// The builder of the S3 store at `bucket_url`: [`s3_defaults`], then the `AWS_*` variables of
/// `environment` (as object_store's `from_env` reads them), then `options`; each overrides what
/// came before.
fn s3_builder(
    bucket_url: &str,
    environment: impl IntoIterator<Item = (String, String)>,
    options: &[(String, String)],
) -> Result<object_store::aws::AmazonS3Builder, VaultError> {
    let mut builder = s3_defaults(object_store::aws::AmazonS3Builder::new());
    for (name, value) in environment {
        if let Some(key) = name.starts_with("AWS_").then(|| name.to_ascii_lowercase().parse().ok()).flatten() {
            builder = builder.with_config(key, value);
        }
    }
    builder = builder.with_url(bucket_url);
    for (key, value) in options {
        let key = key
            .parse::<object_store::aws::AmazonS3ConfigKey>()
            .map_err(|_| VaultError::Storage(format!("unknown S3 option {key:?}")))?;
        builder = builder.with_config(key, value);
    }
    Ok(builder)
}

/// How old a local store's staging file must be for [`sweep_staged`] to remove it: older than
/// any upload under way (whose deadline is minutes), so that two APIs sharing a store
/// directory never remove each other's.
pub const STAGED_AGE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Remove what a local store's interrupted multipart uploads left under `root`: files named
/// `<object>#<n>` in its `objects` directory (object_store's staging files, which a process
/// that died mid-upload never removed), last written more than `age` ago. Returns how many it
/// removed.
///
/// # Errors
/// The directory cannot be listed, or a staging file removed.
pub fn sweep_staged(root: &std::path::Path, age: std::time::Duration) -> std::io::Result<usize> {
    let objects = root.join("objects");
    let entries = match std::fs::read_dir(&objects) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        let old = metadata.modified()?.elapsed().is_ok_and(|elapsed| elapsed > age);
        if entry.file_name().to_string_lossy().contains('#') && metadata.is_file() && old {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
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

    /// Most stored bytes of an envelope of an earlier version, which is read whole: they were
    /// written whole, under the limit then in force, so this bound is generous (twice the
    /// limit, and a MiB); a larger one is not read into memory.
    fn whole_bound(&self) -> u64 {
        self.max_bytes.saturating_mul(2).saturating_add(1 << 20)
    }

    /// Where object `hash` is stored.
    fn location(hash: &[u8; 32]) -> Path {
        Path::from(format!("objects/{}", hex::encode(hash)))
    }

    /// Store `plaintext` and return its hash. Storing content the vault already holds returns
    /// the same hash and writes nothing.
    ///
    /// # Errors
    /// [`VaultError::TooLarge`], [`VaultError::Storage`].
    pub async fn put(&self, plaintext: &[u8]) -> Result<[u8; 32], VaultError> {
        let hash = object_hash(plaintext);
        self.put_from(&hash, plaintext.len() as u64, plaintext).await?;
        Ok(hash)
    }

    /// Store the object `reader` yields: `size` bytes hashing to `hash` (as the caller found
    /// while it took them in, [`ModelHasher`]), sealed chunk by chunk as they are read, in
    /// memory bounded by a chunk and the upload's parts. The vault hashes what it seals, and
    /// completes the upload only if that is `hash`: nothing is written otherwise, nor when
    /// `reader` fails, ends early or yields more; nor when this future is dropped half-way
    /// (the upload is aborted, [`Writing`]). Content the vault already holds whole
    /// ([`Vault::holds_whole`]) is not written again; an object under its name that is not
    /// (cut short, planted, sealed under another key) is replaced.
    ///
    /// # Errors
    /// [`VaultError::TooLarge`], [`VaultError::Input`], [`VaultError::Storage`].
    pub async fn put_from(&self, hash: &[u8; 32], size: u64, reader: impl AsyncRead + Unpin) -> Result<(), VaultError> {
        if size > self.max_bytes {
            return Err(VaultError::TooLarge { size, max: self.max_bytes });
        }
        if self.holds_whole(hash, size).await? {
            return Ok(());
        }
        let mut writer = self.write(hash).await?;
        let sealed = seal_into(&self.key, hash, size, reader, writer.multipart()).await;
        writer.complete(sealed).await
    }

    /// Whether the vault holds object `hash`, of `size` bytes, whole: it opens under this
    /// vault's key to `size` bytes hashing to `hash`, every chunk read and checked (as a
    /// download would; it costs a read of the object, not a write).
    ///
    /// # Errors
    /// [`VaultError::Storage`].
    pub async fn holds_whole(&self, hash: &[u8; 32], size: u64) -> Result<bool, VaultError> {
        let read = async {
            let opened = self.open(hash).await?;
            let mut chunks = opened.chunks;
            while chunks.try_next().await?.is_some() {}
            Ok::<_, VaultError>(opened.size)
        };
        match read.await {
            Ok(held) => Ok(held == size),
            Err(VaultError::Storage(reason)) => Err(VaultError::Storage(reason)),
            Err(_) => Ok(false),
        }
    }

    /// A multipart upload of object `hash`, to [`Writing::complete`].
    async fn write(&self, hash: &[u8; 32]) -> Result<Writing, VaultError> {
        let upload = self.store.put_multipart(&Self::location(hash)).await.map_err(storage)?;
        Ok(Writing(Some(WriteMultipart::new_with_chunk_size(upload, PART))))
    }

    /// Object `hash`, opened to be read chunk by chunk: its size, and its plaintext as a stream
    /// of chunks, each authenticated before it is yielded, in memory bounded by a chunk. The
    /// head is opened first: an object that is missing, sealed under another key or whose head
    /// is tampered with fails here, before any byte. A chunk that does not open, an envelope
    /// cut short, or a whole that does not hash to `hash` ends the stream with
    /// [`VaultError::Corrupt`] instead of its next chunk (a reader must take the stream to its
    /// end, as an HTTP body does, to know it had the object). Envelopes of earlier versions are
    /// read and checked whole, then yielded as one chunk.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::OtherKey`], [`VaultError::Corrupt`],
    /// [`VaultError::Storage`].
    pub async fn open(&self, hash: &[u8; 32]) -> Result<Opened, VaultError> {
        let corrupt = || VaultError::Corrupt(hex::encode(hash));
        let (stored, mut source, mut pending) = self.stored(hash).await?;
        let head = parse_head(&pending).ok_or_else(corrupt)?;
        if head.version != Version::V3 {
            if stored > self.whole_bound() {
                return Err(corrupt());
            }
            while let Some(bytes) = source.try_next().await.map_err(storage)? {
                pending.extend_from_slice(&bytes);
            }
            let plaintext = open_whole(&self.key, hash, &pending)?;
            let size = plaintext.len() as u64;
            let chunks = futures::stream::once(async move { Ok(Bytes::from(plaintext)) }).boxed();
            return Ok(Opened { size, chunks });
        }
        let body = head.body;
        let layout = Layout::of_body(stored.saturating_sub(body as u64)).ok_or_else(corrupt)?;
        let key = data_key(&self.key, hash, &pending)?;
        let cipher = chunk_cipher(&key, head.data_nonce);
        let reading = Reading::new(source, pending.split_off(body), *hash, layout, cipher);
        let chunks = futures::stream::try_unfold(reading, |mut reading| async move {
            Ok::<_, VaultError>(reading.next_chunk().await?.map(|(_, plaintext)| (plaintext, reading)))
        })
        .boxed();
        Ok(Opened { size: layout.plaintext, chunks })
    }

    /// The plaintext of object `hash`, checked against its hash, whole in memory.
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub async fn get(&self, hash: &[u8; 32]) -> Result<Bytes, VaultError> {
        let opened = self.open(hash).await?;
        let mut plaintext = Vec::with_capacity(opened.size.min(self.max_bytes) as usize);
        let mut chunks = opened.chunks;
        while let Some(chunk) = chunks.try_next().await? {
            plaintext.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(plaintext))
    }

    /// Object `hash` as stored: its size, the rest of its bytes as the store streams them, and
    /// its first bytes, at least the longest head's (or the whole of a shorter object).
    async fn stored(&self, hash: &[u8; 32]) -> Result<(u64, Source, BytesMut), VaultError> {
        let (size, mut source) = match self.store.get(&Self::location(hash)).await {
            Ok(result) => (result.meta.size, result.into_stream()),
            Err(object_store::Error::NotFound { .. }) => return Err(VaultError::NotFound(hex::encode(hash))),
            Err(e) => return Err(storage(e)),
        };
        let mut first = BytesMut::new();
        while (first.len() as u64) < size.min(LONGEST_HEADER as u64) {
            match source.try_next().await.map_err(storage)? {
                Some(bytes) => first.extend_from_slice(&bytes),
                None => return Err(VaultError::Corrupt(hex::encode(hash))),
            }
        }
        Ok((size, source, first))
    }

    /// Up to `max` objects the store holds.
    pub async fn some_objects(store: &dyn ObjectStore, max: usize) -> Result<Vec<[u8; 32]>, VaultError> {
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
            let head = match self.store.get_range(&Self::location(&hash), 0..LONGEST_HEADER as u64).await {
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

    /// Check that object `hash`'s data key unwraps under this vault's key (a range read of its
    /// head): after a rotation, that the store kept each rewritten envelope.
    ///
    /// # Errors
    /// [`VaultError::OtherKey`], [`VaultError::Corrupt`], [`VaultError::NotFound`],
    /// [`VaultError::Storage`].
    pub async fn ensure_sealed_here(&self, hash: &[u8; 32]) -> Result<(), VaultError> {
        let head = match self.store.get_range(&Self::location(hash), 0..LONGEST_HEADER as u64).await {
            Ok(head) => head,
            Err(object_store::Error::NotFound { .. }) => return Err(VaultError::NotFound(hex::encode(hash))),
            Err(e) => return Err(storage(e)),
        };
        data_key(&self.key, hash, &head).map(|_| ())
    }

    /// The store it keeps objects in.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Every object the store holds, by name (a listing: 32 bytes an object).
    pub async fn all_objects(&self) -> Result<Vec<[u8; 32]>, VaultError> {
        Self::some_objects(self.store.as_ref(), usize::MAX).await
    }

    /// Re-wrap object `hash`'s data key under `new` (a key rotation): its envelope is rewritten
    /// with a new head and the same chunks (or ciphertext), each chunk checked under the data
    /// key as it is copied and the whole against the object's hash, and the new head opened
    /// under `new` to the same data key, before the rewritten envelope replaces the old one (a
    /// multipart upload completed only then). An object already sealed under `new` is checked
    /// the same way and left as it is, so a rotation that stopped half-way is finished by
    /// running it again.
    ///
    /// # Errors
    /// [`VaultError::NotFound`], [`VaultError::Corrupt`] (it does not open under this vault's
    /// key or `new` to its hash: nothing is written), [`VaultError::OtherKey`] (sealed under a
    /// third key), [`VaultError::Storage`].
    pub async fn rewrap(&self, hash: &[u8; 32], new: &MasterKey) -> Result<Rewrapped, VaultError> {
        let corrupt = || VaultError::Corrupt(hex::encode(hash));
        let (stored, mut source, mut pending) = self.stored(hash).await?;
        let head = parse_head(&pending).ok_or_else(corrupt)?;
        let (version, body) = (head.version, head.body);
        let already = head.key_id == Some(new.id());
        let old = if already { new } else { &self.key };
        let key = data_key(old, hash, &pending)?;
        let rewritten = sealed_head(new, hash, &key, head.data_nonce, version.max(Version::V2))?;
        if *data_key(new, hash, &rewritten)? != *key {
            return Err(corrupt());
        }
        if version != Version::V3 {
            if stored > self.whole_bound() {
                return Err(corrupt());
            }
            while let Some(bytes) = source.try_next().await.map_err(storage)? {
                pending.extend_from_slice(&bytes);
            }
            ensure_opens(old, hash, &pending)?;
            if already {
                return Ok(Rewrapped::Already);
            }
            let mut envelope = rewritten;
            envelope.extend_from_slice(pending.get(body..).ok_or_else(corrupt)?);
            ensure_opens(new, hash, &envelope)?;
            let options = PutOptions { mode: PutMode::Overwrite, ..Default::default() };
            self.store.put_opts(&Self::location(hash), PutPayload::from(envelope), options).await.map_err(storage)?;
            return Ok(Rewrapped::Done);
        }
        let layout = Layout::of_body(stored.saturating_sub(body as u64)).ok_or_else(corrupt)?;
        let cipher = chunk_cipher(&key, head.data_nonce);
        let mut reading = Reading::new(source, pending.split_off(body), *hash, layout, cipher);
        if already {
            while reading.next_chunk().await?.is_some() {}
            return Ok(Rewrapped::Already);
        }
        let mut writing = self.write(hash).await?;
        let writer = writing.multipart();
        writer.write(&rewritten);
        let copied = async {
            while let Some((sealed, _)) = reading.next_chunk().await? {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(storage)?;
                writer.write(&sealed);
            }
            Ok(())
        }
        .await;
        writing.complete(copied).await?;
        Ok(Rewrapped::Done)
    }
}

/// A multipart upload under way, aborted unless completed: by [`Writing::complete`] when what
/// filled it failed, or when it is dropped half-way (the future that filled it was dropped: a
/// member who reset the connection while its upload was sealed), in a task of its own, so
/// that no part is left behind in the store (an S3 bucket keeps, and bills, the parts of an
/// upload never completed nor aborted).
struct Writing(Option<WriteMultipart>);

impl Writing {
    /// The upload, to write to.
    fn multipart(&mut self) -> &mut WriteMultipart {
        self.0.as_mut().expect("a Writing holds its upload until completed")
    }

    /// Complete the upload if what filled it succeeded (`filled`), else abort it: nothing is
    /// written. Either runs in a task of its own, so that a caller dropped meanwhile cannot
    /// leave the upload neither completed nor aborted.
    async fn complete(mut self, filled: Result<(), VaultError>) -> Result<(), VaultError> {
        let writer = self.0.take().expect("a Writing holds its upload until completed");
        let ended = tokio::spawn(async move {
            match filled {
                Ok(()) => writer.finish().await.map(|_| ()).map_err(storage),
                Err(error) => {
                    // The abort's own failure is secondary: the upload was never completed.
                    let _ = writer.abort().await;
                    Err(error)
                }
            }
        });
        ended.await.map_err(|e| VaultError::Storage(format!("the upload's end: {e}")))?
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if let (Some(writer), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                if let Err(error) = writer.abort().await {
                    tracing::warn!(%error, "could not abort a vault upload dropped half-way");
                }
            });
        }
    }
}

/// An object opened for reading ([`Vault::open`]).
pub struct Opened {
    /// Its size in bytes.
    pub size: u64,
    /// Its plaintext, chunk by chunk.
    pub chunks: BoxStream<'static, Result<Bytes, VaultError>>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").field("size", &self.size).finish_non_exhaustive()
    }
}

fn encryption_failed() -> VaultError {
    VaultError::Storage("encryption failed".into())
}

/// Seal the `size` bytes `reader` yields, object `hash`, into `writer` under a new data key
/// wrapped by `key`: the head, then each chunk as it is read and sealed. Fails, with
/// [`VaultError::Input`], if `reader` fails, ends before `size` bytes or has more, or if what
/// it yields does not hash to `hash`.
async fn seal_into(
    key: &MasterKey,
    hash: &[u8; 32],
    size: u64,
    mut reader: impl AsyncRead + Unpin,
    writer: &mut WriteMultipart,
) -> Result<(), VaultError> {
    let input = |what: String| VaultError::Input(what);
    let data_key = Zeroizing::new(<[u8; 32]>::from(Aes256Gcm::generate_key(OsRng)));
    let nonce = Aes256Gcm::generate_nonce(OsRng);
    let stream_nonce = nonce.get(..STREAM_NONCE).ok_or_else(encryption_failed)?;
    writer.write(&sealed_head(key, hash, data_key.as_ref(), stream_nonce, Version::V3)?);
    let cipher = chunk_cipher(data_key.as_ref(), stream_nonce);
    let mut hasher = ModelHasher::default();
    let (mut remaining, mut position) = (size, 0u32);
    loop {
        let take = remaining.min(CHUNK as u64) as usize;
        let mut chunk = Vec::with_capacity(take + AUTH);
        chunk.resize(take, 0);
        reader
            .read_exact(&mut chunk)
            .await
            .map_err(|e| input(format!("after {} bytes of {size}: {e}", size - remaining)))?;
        hasher.update(&chunk);
        remaining -= take as u64;
        let last = remaining == 0;
        cipher.encrypt_in_place(position, last, hash, &mut chunk).map_err(|_| encryption_failed())?;
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(storage)?;
        writer.write(&chunk);
        if last {
            break;
        }
        position = position.checked_add(1).ok_or_else(|| input("too many chunks".into()))?;
    }
    if reader.read(&mut [0u8; 1]).await.map_err(|e| input(e.to_string()))? != 0 {
        return Err(input(format!("more than the {size} bytes it was said to be")));
    }
    if hasher.finish() != *hash {
        return Err(input(format!("its bytes do not hash to 0x{}", hex::encode(hash))));
    }
    Ok(())
}

/// The STREAM that seals object chunks under `data_key`.
fn chunk_cipher(data_key: &[u8], stream_nonce: &[u8]) -> StreamBE32<Aes256Gcm> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key));
    StreamBE32::from_aead(cipher, aes_gcm::aead::generic_array::GenericArray::from_slice(stream_nonce))
}

/// How a current envelope's body (what follows its head) divides into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// How many chunks.
    chunks: u64,
    /// Stored bytes of the last one.
    last: usize,
    /// Plaintext bytes in all.
    plaintext: u64,
}

impl Layout {
    /// The layout of an object of `size` bytes.
    fn of_plaintext(size: u64) -> Self {
        let full = size / CHUNK as u64;
        let rest = (size % CHUNK as u64) as usize;
        if rest == 0 && full > 0 {
            Self { chunks: full, last: SEALED_CHUNK, plaintext: size }
        } else {
            Self { chunks: full + 1, last: rest + AUTH, plaintext: size }
        }
    }

    /// The layout of a body of `stored` bytes, if one of some size has it.
    fn of_body(stored: u64) -> Option<Self> {
        let full = stored / SEALED_CHUNK as u64;
        let rest = stored % SEALED_CHUNK as u64;
        // The last chunk is full, or holds at least a byte, or is the empty object's only one.
        let size = match rest {
            0 if full > 0 => full * CHUNK as u64,
            rest if rest > AUTH as u64 || (rest == AUTH as u64 && full == 0) => {
                full * CHUNK as u64 + rest - AUTH as u64
            }
            _ => return None,
        };
        Some(Self::of_plaintext(size))
    }

    /// Stored bytes of the body.
    #[cfg(test)]
    fn body(&self) -> u64 {
        (self.chunks - 1) * SEALED_CHUNK as u64 + self.last as u64
    }
}

/// An object's bytes as the store streams them.
type Source = BoxStream<'static, object_store::Result<Bytes>>;

/// A current envelope's body being read: each chunk taken from the store, opened and hashed.
struct Reading {
    source: Source,
    /// Bytes read and not yet opened.
    pending: BytesMut,
    hash: [u8; 32],
    layout: Layout,
    cipher: StreamBE32<Aes256Gcm>,
    /// The next chunk's number.
    position: u32,
    hasher: ModelHasher,
}

impl Reading {
    /// The body of object `hash`, laid out as `layout`, from its first chunk on: `pending` read
    /// already, the rest from `source`.
    fn new(source: Source, pending: BytesMut, hash: [u8; 32], layout: Layout, cipher: StreamBE32<Aes256Gcm>) -> Self {
        Self { source, pending, hash, layout, cipher, position: 0, hasher: ModelHasher::default() }
    }

    /// Whether the store yields any byte more (an empty frame is none).
    async fn more_bytes(&mut self) -> Result<bool, VaultError> {
        while let Some(bytes) = self.source.try_next().await.map_err(storage)? {
            if !bytes.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The next chunk, sealed and opened; none after the last, whose end also checks the
    /// whole's hash and that nothing follows.
    async fn next_chunk(&mut self) -> Result<Option<(Bytes, Bytes)>, VaultError> {
        let hash = self.hash;
        let corrupt = || VaultError::Corrupt(hex::encode(hash));
        if u64::from(self.position) >= self.layout.chunks {
            return Ok(None);
        }
        let last = u64::from(self.position) + 1 == self.layout.chunks;
        let want = if last { self.layout.last } else { SEALED_CHUNK };
        while self.pending.len() < want {
            match self.source.try_next().await.map_err(storage)? {
                Some(bytes) => self.pending.extend_from_slice(&bytes),
                None => return Err(corrupt()),
            }
        }
        let sealed = self.pending.split_to(want).freeze();
        let mut plaintext = sealed.to_vec();
        self.cipher.decrypt_in_place(self.position, last, &self.hash, &mut plaintext).map_err(|_| corrupt())?;
        self.hasher.update(&plaintext);
        self.position = self.position.saturating_add(1);
        if last {
            let hasher = std::mem::take(&mut self.hasher);
            let more = !self.pending.is_empty() || self.more_bytes().await?;
            if more || hasher.finish() != self.hash {
                return Err(corrupt());
            }
        }
        Ok(Some((sealed, Bytes::from(plaintext))))
    }
}

/// The envelope versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    /// One AES-GCM message, no key id.
    V1,
    /// One AES-GCM message.
    V2,
    /// Chunks.
    V3,
}

impl Version {
    fn tag(self) -> &'static [u8] {
        match self {
            Version::V1 => TAG_V1,
            Version::V2 => TAG_V2,
            Version::V3 => TAG,
        }
    }
}

/// An envelope's head, parsed.
struct Head<'a> {
    version: Version,
    /// The key that wrapped the data key: none in a first-version envelope.
    key_id: Option<KeyId>,
    key_nonce: &'a [u8],
    wrapped: &'a [u8],
    /// The data nonce (a STREAM nonce in the current version).
    data_nonce: &'a [u8],
    /// Where the ciphertext (the first chunk) starts.
    body: usize,
}

/// The head of `envelope` (any version), if it has one.
fn parse_head(envelope: &[u8]) -> Option<Head<'_>> {
    let (version, rest) = [Version::V3, Version::V2, Version::V1]
        .into_iter()
        .find_map(|version| envelope.strip_prefix(version.tag()).map(|rest| (version, rest)))?;
    let (key_id, rest) = match version {
        Version::V1 => (None, rest),
        _ => {
            let (id, rest) = rest.split_at_checked(KEY_ID)?;
            (Some(KeyId(id.try_into().ok()?)), rest)
        }
    };
    let (key_nonce, rest) = rest.split_at_checked(NONCE)?;
    let (wrapped, rest) = rest.split_at_checked(WRAPPED)?;
    let nonce = if version == Version::V3 { STREAM_NONCE } else { NONCE };
    let (data_nonce, rest) = rest.split_at_checked(nonce)?;
    Some(Head { version, key_id, key_nonce, wrapped, data_nonce, body: envelope.len() - rest.len() })
}

/// What the wrapping of a data key is bound to: the object's hash, the wrapping key's id (none
/// in a first-version envelope) and, from the third version on, the version's tag.
fn wrapping_aad(hash: &[u8; 32], key_id: Option<KeyId>, version: Version) -> Vec<u8> {
    let mut aad = hash.to_vec();
    if let Some(id) = key_id {
        aad.extend_from_slice(&id.0);
    }
    if version >= Version::V3 {
        aad.extend_from_slice(version.tag());
    }
    aad
}

/// An envelope's head of `version` (the second or the current): `data_key` wrapped by `key`
/// for object `hash`, and the nonce its ciphertext (which follows) was made with.
fn sealed_head(
    key: &MasterKey,
    hash: &[u8; 32],
    data_key: &[u8],
    data_nonce: &[u8],
    version: Version,
) -> Result<Vec<u8>, VaultError> {
    let id = key.id();
    let key_nonce = Aes256Gcm::generate_nonce(OsRng);
    let aad = wrapping_aad(hash, Some(id), version);
    let wrapped =
        key.cipher().encrypt(&key_nonce, Payload { msg: data_key, aad: &aad }).map_err(|_| encryption_failed())?;
    let mut head = Vec::with_capacity(LONGEST_HEADER);
    head.extend_from_slice(version.tag());
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
    let aad = wrapping_aad(hash, head.key_id, head.version);
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

/// The plaintext of an envelope of an earlier version (one AES-GCM message), `envelope` of
/// object `hash`, opened with `key` and checked against the hash.
fn open_whole(key: &MasterKey, hash: &[u8; 32], envelope: &[u8]) -> Result<Vec<u8>, VaultError> {
    let corrupt = || VaultError::Corrupt(hex::encode(hash));
    let head = parse_head(envelope).filter(|head| head.version != Version::V3).ok_or_else(corrupt)?;
    let ciphertext = envelope.get(head.body..).filter(|c| c.len() >= AUTH).ok_or_else(corrupt)?;
    let data_key = data_key(key, hash, envelope)?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
    let plaintext = cipher
        .decrypt(Nonce::from_slice(head.data_nonce), Payload { msg: ciphertext, aad: hash })
        .map_err(|_| corrupt())?;
    if object_hash(&plaintext) != *hash {
        return Err(corrupt());
    }
    Ok(plaintext)
}

/// Check that `envelope`, of an earlier version, opens with `key` to the object named `hash`.
fn ensure_opens(key: &MasterKey, hash: &[u8; 32], envelope: &[u8]) -> Result<(), VaultError> {
    open_whole(key, hash, envelope).map(|_| ())
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
        assert!(vault.holds_whole(&hash, model.len() as u64).await.unwrap());
        let files = stored_files(dir.path());
        assert_eq!(files, vec![dir.path().join("objects").join(hex::encode(hash))]);
        let at_rest = std::fs::read(&files[0]).unwrap();
        assert_eq!(at_rest.len(), model.len() + HEADER + AUTH);
        assert!(!at_rest.windows(16).any(|w| model.windows(16).any(|m| m == w)), "no plaintext at rest");
        let missing = vault.get(&[7; 32]).await.unwrap_err();
        assert!(matches!(missing, VaultError::NotFound(_)), "{missing}");
        assert!(!vault.holds_whole(&[7; 32], 0).await.unwrap());
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
    async fn an_object_held_but_not_whole_is_replaced_by_the_next_upload_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let vault = vault(dir.path(), key.clone(), 1 << 20);
        let model = noise(3 * CHUNK + 5);
        let hash = vault.put(&model).await.unwrap();
        let path = dir.path().join("objects").join(hex::encode(hash));
        let whole = std::fs::read(&path).unwrap();
        assert!(vault.holds_whole(&hash, model.len() as u64).await.unwrap());
        assert!(!vault.holds_whole(&hash, model.len() as u64 + 1).await.unwrap(), "another size");
        let other_key = self::vault(dir.path(), MasterKey::generate(), 1 << 20);
        let mut sealed_elsewhere = Vec::new();
        {
            let elsewhere = tempfile::tempdir().unwrap();
            self::vault(elsewhere.path(), MasterKey::generate(), 1 << 20).put(&model).await.unwrap();
            sealed_elsewhere.extend(std::fs::read(elsewhere.path().join("objects").join(hex::encode(hash))).unwrap());
        }
        // What a power cut after a receipt, or someone with write access to the store, leaves
        // under the object's name: empty, cut at a chunk's end, cut in its head, a byte more, a
        // whole envelope sealed under another master key. Each is replaced by the next upload
        // of the object, which then reads back (the vault once kept any of them for good: it
        // checked the name only).
        let bad: [(&str, Vec<u8>); 6] = [
            ("empty", Vec::new()),
            ("cut at a chunk's end", whole[..HEADER + SEALED_CHUNK].to_vec()),
            ("cut in its head", whole[..HEADER - 3].to_vec()),
            ("a byte more", [&whole[..], b"x"].concat()),
            ("a byte of a chunk flipped, its length kept", {
                let mut flipped = whole.clone();
                flipped[HEADER + SEALED_CHUNK + 9] ^= 1;
                flipped
            }),
            ("sealed under another key", sealed_elsewhere),
        ];
        for (what, bytes) in bad {
            std::fs::write(&path, &bytes).unwrap();
            assert!(!vault.holds_whole(&hash, model.len() as u64).await.unwrap(), "{what}");
            vault.put(&model).await.unwrap();
            assert_eq!(vault.get(&hash).await.unwrap(), Bytes::from(model.clone()), "{what}");
            assert_ne!(std::fs::read(&path).unwrap(), bytes, "{what}");
        }
        assert!(other_key.get(&hash).await.is_err());
    }

    #[tokio::test]
    async fn staging_files_an_upload_cut_by_a_crash_left_are_swept_and_objects_kept() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path(), MasterKey::generate(), 1 << 20);
        assert_eq!(sweep_staged(dir.path(), STAGED_AGE).unwrap(), 0, "no objects directory yet");
        let hash = vault.put(b"kept").await.unwrap();
        let objects = dir.path().join("objects");
        let staged = |n: u32| objects.join(format!("{}#{n}", hex::encode([5u8; 32])));
        for n in [1, 17, 18] {
            std::fs::write(staged(n), b"half an upload").unwrap();
        }
        // Two left by a crash hours ago; one being written now (by an API sharing the store).
        let long_ago = std::time::SystemTime::now() - STAGED_AGE - std::time::Duration::from_secs(60);
        for n in [1, 17] {
            std::fs::File::options().write(true).open(staged(n)).unwrap().set_modified(long_ago).unwrap();
        }
        assert_eq!(sweep_staged(dir.path(), STAGED_AGE).unwrap(), 2);
        assert_eq!(stored_files(dir.path()), vec![staged(18), objects.join(hex::encode(hash))]);
        assert_eq!(vault.get(&hash).await.unwrap(), Bytes::from_static(b"kept"));
    }

    #[test]
    fn an_s3_read_waits_for_its_member_and_the_environment_and_options_still_rule() {
        use object_store::{aws::AmazonS3ConfigKey, ClientConfigKey};
        let value = |builder: &object_store::aws::AmazonS3Builder, key| {
            builder.get_config_value(&AmazonS3ConfigKey::Client(key))
        };
        let none = std::iter::empty();
        let builder = s3_builder("s3://bucket", none.clone(), &[]).unwrap();
        assert_eq!(value(&builder, ClientConfigKey::Timeout), None, "no bound on a whole request");
        assert_eq!(value(&builder, ClientConfigKey::ReadTimeout).as_deref(), Some("30s"));
        // The environment's settings are kept (MinIO over plain HTTP, set in AWS_ALLOW_HTTP),
        // and the operator's options win over both.
        let environment = [("AWS_ALLOW_HTTP".to_string(), "true".to_string()), ("HOME".into(), "/root".into())];
        let builder = s3_builder("s3://bucket", environment.clone(), &[]).unwrap();
        assert_eq!(value(&builder, ClientConfigKey::AllowHttp).as_deref(), Some("true"));
        assert_eq!(value(&builder, ClientConfigKey::ReadTimeout).as_deref(), Some("30s"));
        let options = [("timeout".to_string(), "90s".to_string()), ("aws_allow_http".into(), "false".into())];
        let builder = s3_builder("s3://bucket", environment, &options).unwrap();
        assert_eq!(value(&builder, ClientConfigKey::Timeout).as_deref(), Some("90s"));
        assert_eq!(value(&builder, ClientConfigKey::AllowHttp).as_deref(), Some("false"));
        let unknown = s3_builder("s3://bucket", none, &[("time_out".into(), "1s".into())]).err().unwrap().to_string();
        assert!(unknown.contains("unknown S3 option \"time_out\""), "{unknown}");
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

    /// An envelope as the first version sealed it (no key id, the wrapping bound to the hash
    /// alone), or the second (a key id, the wrapping bound to it too): one AES-GCM message.
    fn seal_whole(key: &MasterKey, hash: &[u8; 32], plaintext: &[u8], version: Version) -> Vec<u8> {
        let data_key = Aes256Gcm::generate_key(OsRng);
        let data_nonce = Aes256Gcm::generate_nonce(OsRng);
        let ciphertext = Aes256Gcm::new(&data_key).encrypt(&data_nonce, Payload { msg: plaintext, aad: hash }).unwrap();
        let mut envelope = match version {
            Version::V1 => {
                let key_nonce = Aes256Gcm::generate_nonce(OsRng);
                let wrapped = key.cipher().encrypt(&key_nonce, Payload { msg: data_key.as_ref(), aad: hash }).unwrap();
                [TAG_V1, key_nonce.as_slice(), &wrapped, data_nonce.as_slice()].concat()
            }
            version => sealed_head(key, hash, &data_key, &data_nonce, version).unwrap(),
        };
        envelope.extend_from_slice(&ciphertext);
        envelope
    }

    /// Random bytes.
    fn noise(size: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; size];
        for (i, chunk) in bytes.chunks_mut(32).enumerate() {
            let block = object_hash(&(i as u64).to_le_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        bytes
    }

    #[test]
    fn every_size_has_one_layout_and_every_stored_size_at_most_one_object() {
        let sizes = [0, 1, 15, 16, 17, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 1000, 100 * CHUNK + 7];
        for size in sizes.map(|s| s as u64) {
            let layout = Layout::of_plaintext(size);
            assert_eq!(layout.plaintext, size);
            assert_eq!(layout.chunks, size.div_ceil(CHUNK as u64).max(1), "{size}");
            assert_eq!(layout.body(), size + layout.chunks * AUTH as u64, "{size}");
            assert_eq!(Layout::of_body(layout.body()), Some(layout), "{size}");
        }
        // A stored body is one object's, or none's: read back, a layout is the one that object
        // is written in, and when there is none, no size is written in that many bytes.
        for stored in 0..(3 * SEALED_CHUNK as u64) {
            match Layout::of_body(stored) {
                Some(layout) => assert_eq!(layout.body(), stored),
                None => {
                    let sizes = (1..=4).filter_map(|chunks| stored.checked_sub(chunks * AUTH as u64));
                    assert!(sizes.into_iter().all(|size| Layout::of_plaintext(size).body() != stored), "{stored}")
                }
            }
        }
    }

    #[tokio::test]
    async fn a_large_object_streams_by_chunks_and_a_chunk_moved_dropped_repeated_or_relabelled_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path(), MasterKey::generate(), 1 << 20);
        for size in [0, CHUNK, 2 * CHUNK] {
            let model = noise(size);
            let hash = vault.put(&model).await.unwrap();
            assert_eq!(vault.get(&hash).await.unwrap(), Bytes::from(model), "{size} bytes");
        }
        let model = noise(3 * CHUNK + 1000);
        let hash = vault.put(&model).await.unwrap();
        let opened = vault.open(&hash).await.unwrap();
        assert_eq!(opened.size, model.len() as u64);
        let chunks: Vec<Bytes> = opened.chunks.try_collect().await.unwrap();
        assert_eq!(chunks.iter().map(Bytes::len).collect::<Vec<_>>(), vec![CHUNK, CHUNK, CHUNK, 1000]);
        assert_eq!(chunks.concat(), model);

        let path = dir.path().join("objects").join(hex::encode(hash));
        let original = std::fs::read(&path).unwrap();
        assert_eq!(original.len(), HEADER + model.len() + 4 * AUTH);
        let chunk =
            |i: usize| &original[HEADER + i * SEALED_CHUNK..(HEADER + (i + 1) * SEALED_CHUNK).min(original.len())];
        let head = &original[..HEADER];
        // Read as one AES-GCM message: the wrapping is bound to the version's tag.
        let relabelled = [TAG_V2, &original[TAG.len()..]].concat();
        let tampered: Vec<(&str, Vec<u8>)> = vec![
            ("two chunks swapped", [head, chunk(1), chunk(0), chunk(2), chunk(3)].concat()),
            ("the last chunk dropped", [head, chunk(0), chunk(1), chunk(2)].concat()),
            ("a chunk repeated", [head, chunk(0), chunk(0), chunk(1), chunk(2), chunk(3)].concat()),
            ("cut in a chunk", original[..original.len() - 10].to_vec()),
            ("a byte more", [&original[..], &[0]].concat()),
            ("relabelled as the second version", relabelled),
        ];
        for (what, envelope) in tampered {
            std::fs::write(&path, &envelope).unwrap();
            let read: Result<Vec<Bytes>, _> = match vault.open(&hash).await {
                Ok(opened) => opened.chunks.try_collect().await,
                Err(e) => Err(e),
            };
            assert!(matches!(read, Err(VaultError::Corrupt(_))), "{what}: {:?}", read.map(|c| c.len()));
        }
        std::fs::write(&path, &original).unwrap();
        assert_eq!(vault.get(&hash).await.unwrap(), Bytes::from(model));
    }

    #[tokio::test]
    async fn empty_frames_from_the_store_are_no_bytes_and_a_byte_after_the_last_chunk_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let vault = vault(dir.path(), key.clone(), 1 << 20);
        let model = noise(CHUNK + 7);
        let hash = vault.put(&model).await.unwrap();
        let original = std::fs::read(dir.path().join("objects").join(hex::encode(hash))).unwrap();
        let head = parse_head(&original).unwrap();
        let data_key = data_key(&key, &hash, &original).unwrap();
        let body = Bytes::copy_from_slice(&original[head.body..]);
        let layout = Layout::of_body(body.len() as u64).unwrap();
        let read = |frames: Vec<Bytes>| {
            let source: Source = futures::stream::iter(frames.into_iter().map(Ok)).boxed();
            let mut reading =
                Reading::new(source, BytesMut::new(), hash, layout, chunk_cipher(&data_key, head.data_nonce));
            async move {
                let mut plaintext = Vec::new();
                while let Some((_, chunk)) = reading.next_chunk().await? {
                    plaintext.extend_from_slice(&chunk);
                }
                Ok::<_, VaultError>(plaintext)
            }
        };
        // How a store may frame the same bytes: empty frames anywhere, the last ones included.
        let (first, rest) = (body.slice(..100), body.slice(100..));
        for frames in [
            vec![body.clone(), Bytes::new()],
            vec![Bytes::new(), first.clone(), Bytes::new(), rest.clone(), Bytes::new(), Bytes::new()],
        ] {
            assert_eq!(read(frames).await.unwrap(), model);
        }
        // A byte after the last chunk, after an empty frame or not, is not the object.
        for frames in
            [vec![body.clone(), Bytes::new(), Bytes::from_static(b"x")], vec![first, rest, Bytes::from_static(b"x")]]
        {
            assert!(matches!(read(frames).await, Err(VaultError::Corrupt(_))));
        }
    }

    #[tokio::test]
    async fn a_stream_that_is_not_the_object_it_names_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path(), MasterKey::generate(), 1 << 20);
        let model = noise(2 * CHUNK + 5);
        let hash = object_hash(&model);
        let size = model.len() as u64;
        for (what, bytes, size, name) in [
            ("other bytes", noise(2 * CHUNK + 6)[1..].to_vec(), size, hash),
            ("shorter than said", model[..CHUNK].to_vec(), size, hash),
            ("longer than said", [&model[..], b"x"].concat(), size, hash),
            ("another name", model.clone(), size, [1; 32]),
        ] {
            let error = vault.put_from(&name, size, &bytes[..]).await.unwrap_err();
            assert!(matches!(error, VaultError::Input(_)), "{what}: {error}");
            assert!(stored_files(dir.path()).is_empty(), "{what}: {:?}", stored_files(dir.path()));
        }
        vault.put_from(&hash, size, &model[..]).await.unwrap();
        assert_eq!(vault.get(&hash).await.unwrap(), Bytes::from(model));
    }

    #[tokio::test]
    async fn a_rotation_rewraps_every_object_under_the_new_key_and_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let vault = vault(dir.path(), old.clone(), 1 << 20);
        let path = |hash: &[u8; 32]| dir.path().join("objects").join(hex::encode(hash));
        let models: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1000 + CHUNK * usize::from(i)]).collect();
        let mut hashes = Vec::new();
        for model in &models[..2] {
            hashes.push(vault.put(model).await.unwrap());
        }
        // One stored by the first version (without a key id), one by the second.
        for (model, version) in models[2..].iter().zip([Version::V1, Version::V2]) {
            let legacy = object_hash(model);
            std::fs::write(path(&legacy), seal_whole(&old, &legacy, model, version)).unwrap();
            hashes.push(legacy);
            assert_eq!(vault.get(&legacy).await.unwrap(), Bytes::from(model.clone()), "{version:?} still opens");
        }
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
            let version = parse_head(&after).unwrap().version;
            assert_eq!(version, parse_head(before).unwrap().version.max(Version::V2));
            assert_eq!(after[TAG.len()..TAG.len() + KEY_ID], new.id().0);
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
        // The read-back a rotation makes before it swaps the keys: a store that dropped the
        // rewrite of one object (its old envelope back) is caught.
        for hash in &hashes {
            rotated.ensure_sealed_here(hash).await.unwrap();
        }
        std::fs::write(path(&hashes[1]), &before[1]).unwrap();
        let dropped = rotated.ensure_sealed_here(&hashes[1]).await.unwrap_err();
        assert!(matches!(dropped, VaultError::OtherKey { sealed, .. } if sealed == old.id()), "{dropped}");
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

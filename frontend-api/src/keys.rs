//! The API's secrets at rest, and the one process that may use them at a time.
//!
//! - The vault's master key ([`master_key`]): given, or `vault.key` in the data directory,
//!   made on first start. An API whose vault holds objects, or that has run, refuses to start
//!   without it rather than make a new one that would leave every object unreadable.
//! - The coalition's data-ID secret ([`data_id_secret`]), in a file of its own, independent of
//!   the master key: rotating the master key leaves every member's data IDs valid. An API that
//!   ran before the secret had its file derived it from the master key; the first start after
//!   moves that secret to the file, once.
//! - The data directory's lock ([`DataDirLock`]): one process at a time, so a key rotation
//!   never races an upload sealed under the old key, and two APIs never append to one log.
//! - The master key's rotation ([`rotate`]): every object's data key re-wrapped under a new
//!   master key, resumable, losing nothing.
//!
//! Trust: whoever reads these files reads the vault and can compute data IDs. Keep them on a
//! volume only the API's user reads, apart from the data and its backups.

use crate::{
    config::VaultConfig,
    vault::{MasterKey, Rewrapped, Vault, VaultError},
};
use std::{
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};
use tclearn_client::H160;
use zeroize::Zeroizing;

/// Why a key could not be read, made, moved or rotated: a sentence saying what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |e| KeyError(format!("{}: {e}", path.display()))
}

/// The coalition's secret that keys members' anonymised data IDs. Never printed.
#[derive(Clone)]
pub struct DataIdSecret(Zeroizing<[u8; 32]>);

impl DataIdSecret {
    /// A new random secret.
    pub fn generate() -> Result<Self, KeyError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(secret.as_mut()).map_err(|e| KeyError(format!("the OS's random source: {e}")))?;
        Ok(Self(secret))
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// What the audit log records of it for `coalition`: 16 bytes of a SHA3-256 of a label, the
    /// coalition and the secret, in hex. It names the secret without revealing it (the secret
    /// is 32 random bytes), so that a start with another file is refused.
    pub fn fingerprint(&self, coalition: &H160) -> String {
        use sha3::{Digest, Sha3_256};
        let digest = Sha3_256::new()
            .chain_update(b"tclearn data-ID secret fingerprint v1")
            .chain_update(coalition.0)
            .chain_update(self.0.as_ref())
            .finalize();
        hex::encode(&digest[..16])
    }
}

impl std::fmt::Debug for DataIdSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataIdSecret(..)")
    }
}

/// The data-ID secret's file.
#[derive(serde::Serialize, serde::Deserialize)]
struct DataIdFile {
    /// The coalition it belongs to (`0x` and 40 hex digits).
    coalition: String,
    /// A secret from before oblivious data IDs (64 hex digits), which every member read
    /// (`GET /api/vault/data-id-key`): renewed at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// The seed of the vault's data-ID key (64 hex digits), never served. Named apart from
    /// `secret` so that an API from before oblivious data IDs (a rollback) refuses the file
    /// instead of serving it to every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
    /// The fingerprint of the served secret this seed renewed, if any: a start that stopped
    /// between renewing the file and recording it in the audit log still finds it valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    renews: Option<String>,
}

/// Write `text` to a new file at `path`, readable by its owner only, and sync it and its
/// directory (so that a power cut after this returns cannot lose the file).
fn write_secret_file(path: &Path, text: &str) -> Result<(), KeyError> {
    let io = io_error(path);
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent).map_err(&io)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(&io)?;
    file.write_all(text.as_bytes()).map_err(&io)?;
    file.sync_all().map_err(&io)?;
    sync_dir(parent.unwrap_or(Path::new(".")))
}

/// Sync directory `dir`: the names made, linked or renamed in it are on disk.
fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}

/// The audit log's action that records the data-ID secret's file: made, moved from its old
/// derivation, or found there, with its fingerprint ([`DataIdSecret::fingerprint`]).
pub const DATA_ID_SECRET_ACTION: &str = "data-id-secret";

/// What the audit log records of the data-ID secret's file, from its latest
/// [`DATA_ID_SECRET_ACTION`] entry's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRecord {
    /// No entry: the file was never recorded (a fresh API, one that ran before the secret had
    /// a file, one that made the file before its making was recorded, or one that stopped
    /// between writing the file and recording it).
    None,
    /// An entry without a fingerprint (recorded before fingerprints).
    Made,
    /// An entry naming the secret's fingerprint.
    Fingerprint(String),
}

impl SecretRecord {
    /// The record that the latest entry's `outcome` (if any) states.
    pub fn of(outcome: Option<&str>) -> Self {
        match outcome {
            None => SecretRecord::None,
            Some(outcome) => match outcome.rsplit_once(FINGERPRINT) {
                Some((_, fingerprint)) => SecretRecord::Fingerprint(fingerprint.to_owned()),
                None => SecretRecord::Made,
            },
        }
    }
}

const FINGERPRINT: &str = ", fingerprint ";

/// What [`data_id_secret`] did to the secret's file, to record in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMade {
    /// Made a new random secret.
    New,
    /// Moved the secret an API that ran before derived from its master key to the file.
    Moved,
    /// Found the file there, not yet recorded with its fingerprint.
    Found,
    /// Replaced a secret that was served to members (before oblivious data IDs) by a new one.
    Renewed,
}

impl SecretMade {
    /// The audit entry's outcome, naming the fingerprint of `secret` for `coalition`.
    pub fn outcome(self, secret: &DataIdSecret, coalition: &H160) -> String {
        let how = match self {
            SecretMade::New => "ok: made",
            SecretMade::Moved => "ok: moved from the master key's derivation",
            SecretMade::Found => "ok: found",
            // Within the log's 96 bytes with the fingerprint: the one before was served.
            SecretMade::Renewed => "ok: renewed, never served",
        };
        format!("{how}{FINGERPRINT}{}", secret.fingerprint(coalition))
    }
}

/// Whether an API has run on this data directory (its audit log has entries), or its vault
/// holds objects: then its keys exist somewhere, and new ones would lose what they protect.
pub fn has_run(config: &VaultConfig, holds_objects: bool) -> bool {
    holds_objects || std::fs::metadata(config.audit_path()).is_ok_and(|m| m.len() > 0)
}

/// The vault's master key: the configured one, else `vault.key` in the data directory, made
/// (readable by its owner only) on first start, when the API `has_run` not.
///
/// # Errors
/// The key is missing though the API has run, or unreadable, or not 64 hex digits.
pub fn master_key(config: &VaultConfig, has_run: bool) -> Result<MasterKey, KeyError> {
    let bad = |e: VaultError| KeyError(e.to_string());
    if let Some(key) = &config.vault_key {
        return MasterKey::from_hex(&key.0).map_err(bad);
    }
    let path = config.key_path();
    if config.vault_key_file.is_none() && !path.exists() {
        if has_run {
            return Err(KeyError(format!(
                "the vault holds objects (or this API has run: its audit log has entries) but its master \
                 key {} is missing: restore it, or give it with --vault-key-file (a new key would make \
                 every object unreadable)",
                path.display()
            )));
        }
        let key = MasterKey::generate();
        write_secret_file(&path, &key.to_hex())?;
        tracing::info!(path = %path.display(), id = %key.id(), "created the vault's master key");
    }
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io_error(&path))?);
    MasterKey::from_hex(&text).map_err(|e| KeyError(format!("{}: {e}", path.display())))
}

/// The coalition's data-ID secret, from its file, and what this did to the file when the audit
/// log must record it (with the secret's fingerprint).
///
/// - On first start the file is made with a new random secret.
/// - An API that ran before the secret had a file gets the secret it derived from `master`
///   then, written to the file once, so that its members' data IDs stay valid whatever happens
///   to the master key later.
/// - A file there that the log does not record with a fingerprint (`recorded`) is recorded
///   now: made by an API before its making was logged, or left by one that stopped between
///   writing the file and logging it.
/// - Once the log records the file, a missing file is refused (deriving it again from a master
///   key rotated since would change every data ID, and let a member use its samples again),
///   and so is a file whose secret has another fingerprint than the one recorded.
///
/// # Errors
/// The file is missing after it was recorded, holds another secret than the one recorded,
/// names another coalition, is malformed or unreadable, or cannot be written.
pub fn data_id_secret(
    config: &VaultConfig,
    coalition: &H160,
    master: &MasterKey,
    (has_run, recorded): (bool, &SecretRecord),
) -> Result<(DataIdSecret, Option<SecretMade>), KeyError> {
    let path = config.data_id_path();
    let made = if path.exists() {
        (!matches!(recorded, SecretRecord::Fingerprint(_))).then_some(SecretMade::Found)
    } else {
        if *recorded != SecretRecord::None {
            return Err(KeyError(format!(
                "the data-ID secret's file {} is missing (the audit log records it): restore it, or give \
                 it with --data-id-key-file (a new secret would change every member's data IDs)",
                path.display()
            )));
        }
        let (secret, made) = if has_run {
            tracing::info!(path = %path.display(), "moved the data-ID secret from the master key to its own file");
            (DataIdSecret(master.legacy_data_id_secret(&coalition.0)), SecretMade::Moved)
        } else {
            (DataIdSecret::generate()?, SecretMade::New)
        };
        write_data_id_file(&path, coalition, (&secret, None), made == SecretMade::New, false)?;
        Some(made)
    };
    let (secret, oblivious, renews) = read_data_id_file(&path, coalition)?;
    if let SecretRecord::Fingerprint(fingerprint) = recorded {
        if secret.fingerprint(coalition) != *fingerprint {
            if oblivious && renews.as_ref() == Some(fingerprint) {
                return Ok((secret, Some(SecretMade::Renewed)));
            }
            return Err(KeyError(format!(
                "the data-ID secret in {} is not the one the audit log records (fingerprint {fingerprint}): \
                 restore the file this API made (another secret would change every member's data IDs)",
                path.display()
            )));
        }
    }
    if !oblivious {
        // Every member read this secret: a key derived from it would let any of them, and any
        // past member, compute data IDs offline. The IDs change with the function anyway.
        let renewed = DataIdSecret::generate()?;
        let renews = Some(secret.fingerprint(coalition));
        write_data_id_file(&path, coalition, (&renewed, renews), true, true)?;
        tracing::warn!(
            path = %path.display(),
            "replaced the data-ID secret every member was served by a new one: back this file up now \
             (the audit log records its fingerprint, and a start with another is refused)"
        );
        return Ok((renewed, Some(SecretMade::Renewed)));
    }
    // Renewed, then stopped before the log recorded anything of the file.
    let made = match made {
        Some(SecretMade::Found) if renews.is_some() => Some(SecretMade::Renewed),
        made => made,
    };
    Ok((secret, made))
}

/// Write the data-ID secret's file at `path` (`replace`: over the one there, by a rename).
fn write_data_id_file(
    path: &Path,
    coalition: &H160,
    (secret, renews): (&DataIdSecret, Option<String>),
    oblivious: bool,
    replace: bool,
) -> Result<(), KeyError> {
    let hex_secret = hex::encode(secret.as_bytes());
    let (served, seed) = if oblivious { (None, Some(hex_secret)) } else { (Some(hex_secret), None) };
    let file = DataIdFile { coalition: format!("0x{}", hex::encode(coalition.0)), secret: served, seed, renews };
    let text = Zeroizing::new(serde_json::to_string(&file).map_err(|e| KeyError(e.to_string()))?);
    if !replace {
        return write_secret_file(path, &text);
    }
    // Over the file itself, not a link to it (a key kept on another volume stays there).
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let cannot = |e: KeyError| {
        KeyError(format!(
            "the data-ID secret in {} was served to every member and must be replaced once, here: {e} \
             (give a writable --data-id-key-file)",
            path.display()
        ))
    };
    let next = suffixed(&path, ".next");
    let _ = std::fs::remove_file(&next);
    write_secret_file(&next, &text).map_err(cannot)?;
    std::fs::rename(&next, &path).map_err(io_error(&path)).map_err(cannot)?;
    sync_dir(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
}

/// The secret in the data-ID secret's file at `path`, which must name `coalition`.
/// Whether it was made for oblivious data IDs, and the fingerprint of the secret it renewed.
fn read_data_id_file(path: &Path, coalition: &H160) -> Result<(DataIdSecret, bool, Option<String>), KeyError> {
    let named = format!("0x{}", hex::encode(coalition.0));
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io_error(path))?);
    let malformed =
        || KeyError(format!("{}: not a data-ID secret file (JSON: coalition, seed or secret)", path.display()));
    let file: DataIdFile = serde_json::from_str(&text).map_err(|_| malformed())?;
    let oblivious = file.seed.is_some();
    let hex_secret = Zeroizing::new(match (file.seed, file.secret) {
        (Some(seed), None) => seed,
        (None, Some(secret)) => secret,
        _ => return Err(malformed()),
    });
    if !file.coalition.eq_ignore_ascii_case(&named) {
        return Err(KeyError(format!(
            "{} is the data-ID secret of coalition {}, not {named}: give this coalition's with --data-id-key-file",
            path.display(),
            file.coalition
        )));
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_secret.trim(), secret.as_mut()).map_err(|_| malformed())?;
    Ok((DataIdSecret(secret), oblivious, file.renews))
}

/// An exclusive lock on a data directory (`flock` on its `lock` file), held while an API
/// serves it or its master key is rotated; released when dropped, or when the process dies.
#[derive(Debug)]
pub struct DataDirLock(#[allow(dead_code)] std::fs::File);

impl DataDirLock {
    /// Take the lock of `data_dir` (made if missing), or say who holds it.
    ///
    /// # Errors
    /// Another process holds it, or the file cannot be opened.
    pub fn acquire(data_dir: &Path) -> Result<Self, KeyError> {
        use std::os::fd::AsRawFd;
        let path = data_dir.join("lock");
        let io = io_error(&path);
        std::fs::create_dir_all(data_dir).map_err(&io)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(&io)?;
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::WouldBlock {
                return Err(KeyError(format!(
                    "{} is in use by another tclearn-api (serving, or rotating its key): stop it first",
                    data_dir.display()
                )));
            }
            return Err(io(error));
        }
        Ok(Self(file))
    }
}

/// Refuse to serve while a rotation is under way (its `.next` key file exists): some objects
/// are sealed under the new key, the others under the old.
///
/// # Errors
/// The rotation's new key file exists.
pub fn ensure_no_rotation_under_way(config: &VaultConfig) -> Result<(), KeyError> {
    let next = suffixed(&config.key_path(), ".next");
    if next.exists() {
        return Err(KeyError(format!(
            "a rotation of the master key stopped half-way ({} holds its new key): run tclearn-api vault rotate-key again to finish it before serving",
            next.display()
        )));
    }
    Ok(())
}

/// How a rotation went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Objects re-wrapped by this run.
    pub rewrapped: usize,
    /// Objects already under the new key (an earlier run stopped half-way).
    pub already: usize,
    /// The old key's file, kept for backups sealed under it: destroy it once they are.
    pub retired: PathBuf,
}

/// Rotate the vault's master key: make a new key (written beside the old one as
/// `<key file>.next` before anything else changes), re-wrap every object's data key under it
/// ([`Vault::rewrap`]: the ciphertexts stay, each new envelope is opened before it replaces the
/// old), then swap the files: the new key becomes the key file, the old one
/// `<key file>.retired-<its id>`. `progress(done, total)` is called after each object.
///
/// Stopped at any point, it loses nothing: until the swap the old key file is untouched and
/// the `.next` file holds the new key; run it again and it finishes where it stopped. The
/// API must be stopped (the data directory's lock); the data-ID secret must have its own file
/// first (any API start since that file exists makes it).
///
/// # Errors
/// The API is running; the key is given in the environment (there is no file to rotate);
/// the data-ID secret has no file yet; an object does not open under either key (nothing is
/// swapped: restore or remove it, then run again); the store fails.
pub async fn rotate(config: &VaultConfig, mut progress: impl FnMut(usize, usize)) -> Result<Rotation, KeyError> {
    if config.vault_key.is_some() {
        return Err(KeyError(
            "the master key is given in the environment (--vault-key, TCLEARN_VAULT_KEY): a rotation writes \
             the new key to a file; keep the key in a file (--vault-key-file) to rotate it"
                .into(),
        ));
    }
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    let key_path = config.key_path();
    if !key_path.exists() {
        return Err(KeyError(format!("no master key at {}: nothing to rotate", key_path.display())));
    }
    let old = master_key(config, true)?;
    let store = crate::object_store(config).map_err(|e| KeyError(e.to_string()))?;
    let objects = Vault::some_objects(store.as_ref(), usize::MAX).await.map_err(|e| KeyError(e.to_string()))?;
    let data_id_path = config.data_id_path();
    if has_run(config, !objects.is_empty()) && !data_id_path.exists() {
        return Err(KeyError(format!(
            "the data-ID secret has no file of its own yet ({} is missing): start the API once with this \
             key, which moves the secret there, then rotate (rotating now would change every member's \
             data IDs)",
            data_id_path.display()
        )));
    }
    let next_path = suffixed(&key_path, ".next");
    let new = if next_path.exists() {
        let text = Zeroizing::new(std::fs::read_to_string(&next_path).map_err(io_error(&next_path))?);
        MasterKey::from_hex(&text).map_err(|e| KeyError(format!("{}: {e}", next_path.display())))?
    } else {
        let new = MasterKey::generate();
        write_secret_file(&next_path, &new.to_hex())?;
        new
    };
    let vault = Vault::new(store, old.clone(), config.vault_max_bytes);
    let (mut rewrapped, mut already, mut failed) = (0, 0, Vec::new());
    for (done, hash) in objects.iter().enumerate() {
        match vault.rewrap(hash, &new).await {
            Ok(Rewrapped::Done) => rewrapped += 1,
            Ok(Rewrapped::Already) => already += 1,
            Err(VaultError::Storage(reason)) => return Err(KeyError(format!("the vault's store: {reason}"))),
            Err(e) => failed.push(e.to_string()),
        }
        progress(done + 1, objects.len());
    }
    if let Some(first) = failed.first() {
        return Err(KeyError(format!(
            "{} of {} objects do not open (the first: {first}); the others are re-wrapped, and the keys are \
             not swapped: restore or remove those objects, then run the rotation again",
            failed.len(),
            objects.len()
        )));
    }
    // Read back from the store: every object's key now unwraps under the new key (a store
    // that dropped a write would leave an object that only the retired key opens).
    let rotated = Vault::new(vault.store(), new.clone(), config.vault_max_bytes);
    for hash in &objects {
        rotated.ensure_sealed_here(hash).await.map_err(|e| {
            KeyError(format!("read back after re-wrapping, {e}; the keys are not swapped: run the rotation again"))
        })?;
    }
    // The swap: the old key linked to its retired name, then the new one renamed over the key
    // file (atomic), so the key file always holds a key that opens every object.
    let retired = suffixed(&key_path, &format!(".retired-{}", old.id()));
    match std::fs::hard_link(&key_path, &retired) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io_error(&retired)(e)),
        _ => {}
    }
    std::fs::rename(&next_path, &key_path).map_err(io_error(&next_path))?;
    sync_dir(key_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    Ok(Rotation { rewrapped, already, retired })
}

/// `path` with `suffix` appended to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn config(dir: &Path) -> VaultConfig {
        VaultConfig::local(dir.to_path_buf(), 1 << 20)
    }

    const COALITION: H160 = H160([7; 20]);

    /// A data directory as a running API leaves it: its keys, `n` objects, an audit log.
    async fn served(dir: &Path, n: u8) -> (VaultConfig, MasterKey, Vec<[u8; 32]>) {
        let config = config(dir);
        let master = master_key(&config, false).unwrap();
        data_id_secret(&config, &COALITION, &master, (false, &SecretRecord::None)).unwrap();
        let store = crate::object_store(&config).unwrap();
        let vault = Vault::new(store, master.clone(), 1 << 20);
        let mut hashes = Vec::new();
        for i in 0..n {
            hashes.push(vault.put(&[i; 100]).await.unwrap());
        }
        std::fs::write(config.audit_path(), "{}\n").unwrap();
        (config, master, hashes)
    }

    fn vault_of(config: &VaultConfig, key: MasterKey) -> Vault {
        Vault::new(crate::object_store(config).unwrap(), key, 1 << 20)
    }

    #[test]
    fn the_data_id_secret_survives_the_master_key_and_moves_from_its_old_derivation_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let (first, second) = (MasterKey::generate(), MasterKey::generate());
        // An API that ran before the secret had a file served the secret it derived from the
        // master key to every member: the first start now makes a new one in its place.
        let (moved, how) = data_id_secret(&config, &COALITION, &first, (true, &SecretRecord::None)).unwrap();
        assert_ne!(moved.as_bytes(), &*first.legacy_data_id_secret(&COALITION.0));
        assert_eq!(how, Some(SecretMade::Renewed));
        // Whatever master key comes after, the secret stays.
        let later = data_id_secret(&config, &COALITION, &second, (true, &SecretRecord::None)).unwrap().0;
        assert_eq!(later.as_bytes(), moved.as_bytes());
        assert_eq!(format!("{later:?}"), "DataIdSecret(..)");
        let text = std::fs::read_to_string(config.data_id_path()).unwrap();
        for made in [SecretMade::New, SecretMade::Moved, SecretMade::Found, SecretMade::Renewed] {
            let outcome = made.outcome(&later, &COALITION);
            assert!(outcome.len() <= crate::audit::MAX_OUTCOME_BYTES, "the log would cut {outcome}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config.data_id_path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another coalition's file is refused, not used.
        let other =
            data_id_secret(&config, &H160([8; 20]), &second, (true, &SecretRecord::None)).unwrap_err().to_string();
        assert!(other.contains("not 0x0808"), "{other}");
        // A fresh API's secret is random, not derived from its key.
        let fresh = tempfile::tempdir().unwrap();
        let secret =
            data_id_secret(&self::config(fresh.path()), &COALITION, &first, (false, &SecretRecord::None)).unwrap().0;
        assert_ne!(secret.as_bytes(), &*first.legacy_data_id_secret(&COALITION.0));
        assert!(!text.contains(first.to_hex().as_str()), "the file holds the secret, not the master key");
        // Once its making is recorded, a missing file is refused, not derived again from
        // whatever master key there is now (rotated since: every data ID would change).
        let made = tempfile::tempdir().unwrap();
        let made_config = self::config(made.path());
        let (kept, how) = data_id_secret(&made_config, &COALITION, &first, (true, &SecretRecord::None)).unwrap();
        assert_eq!(how, Some(SecretMade::Renewed));
        let recorded = SecretRecord::of(Some(&SecretMade::Renewed.outcome(&kept, &COALITION)));
        let (again, how) = data_id_secret(&made_config, &COALITION, &first, (true, &recorded)).unwrap();
        assert_eq!((again.as_bytes(), how), (kept.as_bytes(), None));
        std::fs::remove_file(made_config.data_id_path()).unwrap();
        let lost =
            data_id_secret(&made_config, &COALITION, &second, (true, &SecretRecord::Made)).unwrap_err().to_string();
        assert!(lost.contains("is missing") && lost.contains("restore it"), "{lost}");
        assert!(!made_config.data_id_path().exists(), "nothing made in its place");
        // Malformed: refused with the file's name.
        std::fs::write(config.data_id_path(), "not json").unwrap();
        let malformed =
            data_id_secret(&config, &COALITION, &second, (true, &SecretRecord::None)).unwrap_err().to_string();
        assert!(malformed.contains("data-id.key") && malformed.contains("not a data-ID secret file"), "{malformed}");
    }

    /// A data-ID file of [`COALITION`] holding a served `secret` or a `seed`.
    fn file_text(secret: Option<[u8; 32]>, seed: Option<[u8; 32]>) -> String {
        let coalition = format!("0x{}", hex::encode(COALITION.0));
        let (secret, seed) = (secret.map(hex::encode), seed.map(hex::encode));
        serde_json::to_string(&DataIdFile { coalition, secret, seed, renews: None }).unwrap()
    }

    /// What `serve` does at start: read the log's record, call [`data_id_secret`], and log what
    /// it made with the secret's fingerprint.
    fn start(config: &VaultConfig, log: &crate::audit::AuditLog, master: &MasterKey) -> Result<DataIdSecret, KeyError> {
        let recorded = SecretRecord::of(log.last_outcome(DATA_ID_SECRET_ACTION).as_deref());
        let (secret, made) = data_id_secret(config, &COALITION, master, (true, &recorded))?;
        if let Some(made) = made {
            log.append(1, None, DATA_ID_SECRET_ACTION, None, made.outcome(&secret, &COALITION), None).unwrap();
        }
        Ok(secret)
    }

    #[test]
    fn a_data_id_secret_file_the_log_does_not_record_is_recorded_and_then_never_replaced_or_lost() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let log = crate::audit::AuditLog::open(&config.audit_path()).unwrap();
        let master = MasterKey::generate();
        // An API that made its file before the making was logged (or stopped between writing
        // the file and logging it): the file is there, the log says nothing.
        let (made, _) = data_id_secret(&config, &COALITION, &master, (false, &SecretRecord::None)).unwrap();
        let kept = std::fs::read(config.data_id_path()).unwrap();
        // Its next start records the file it finds, with the secret's fingerprint...
        assert_eq!(start(&config, &log, &master).unwrap().as_bytes(), made.as_bytes());
        let outcome = log.last_outcome(DATA_ID_SECRET_ACTION).unwrap();
        assert_eq!(outcome, format!("ok: found, fingerprint {}", made.fingerprint(&COALITION)));
        assert!(!outcome.contains(&hex::encode(made.as_bytes())), "the fingerprint, not the secret");
        // ...once: a start with the same file records nothing more.
        let size = log.checkpoint().size;
        start(&config, &log, &master).unwrap();
        assert_eq!(log.checkpoint().size, size);
        // The file lost: refused, nothing made in its place.
        std::fs::remove_file(config.data_id_path()).unwrap();
        let lost = start(&config, &log, &master).err().unwrap().to_string();
        assert!(lost.contains("is missing") && lost.contains("restore it"), "{lost}");
        assert!(!config.data_id_path().exists());
        // Replaced by another secret of the same coalition (a copy from another deployment, a
        // new one made by hand): refused, naming the fingerprint recorded.
        std::fs::write(config.data_id_path(), file_text(None, Some([9; 32]))).unwrap();
        let replaced = start(&config, &log, &master).err().unwrap().to_string();
        assert!(
            replaced.contains("not the one the audit log records") && replaced.contains(&made.fingerprint(&COALITION)),
            "{replaced}"
        );
        // The right file back: it starts.
        std::fs::write(config.data_id_path(), &kept).unwrap();
        assert_eq!(start(&config, &log, &master).unwrap().as_bytes(), made.as_bytes());
        // A log that recorded the making before fingerprints gets the fingerprint recorded now.
        assert_eq!(SecretRecord::of(Some("ok: made")), SecretRecord::Made);
        let (_, how) = data_id_secret(&config, &COALITION, &master, (true, &SecretRecord::Made)).unwrap();
        assert_eq!(how, Some(SecretMade::Found));
    }

    /// A secret from before oblivious data IDs was served to every member: a key derived from
    /// it would let any member, or past member, compute data IDs offline. Its first start now
    /// replaces it and records the new fingerprint; a start that stopped before recording it
    /// finds the renewed file valid (it names the secret it renewed), and never renews twice.
    #[test]
    fn a_secret_every_member_was_served_is_renewed_once_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let log = crate::audit::AuditLog::open(&config.audit_path()).unwrap();
        let master = MasterKey::generate();
        let served = file_text(Some([5; 32]), None);
        std::fs::write(config.data_id_path(), &served).unwrap();
        let old = DataIdSecret(Zeroizing::new([5u8; 32]));
        let recorded_old = SecretRecord::Fingerprint(old.fingerprint(&COALITION));
        log.append(1, None, DATA_ID_SECRET_ACTION, None, SecretMade::Found.outcome(&old, &COALITION), None).unwrap();

        // Stopped between renewing the file and recording it: the next start accepts the
        // renewed file and records it then.
        let (renewed, how) = data_id_secret(&config, &COALITION, &master, (true, &recorded_old)).unwrap();
        assert_ne!(renewed.as_bytes(), old.as_bytes());
        assert_eq!(how, Some(SecretMade::Renewed));
        let (again, how) = data_id_secret(&config, &COALITION, &master, (true, &recorded_old)).unwrap();
        assert_eq!((again.as_bytes(), how), (renewed.as_bytes(), Some(SecretMade::Renewed)), "not renewed twice");
        assert_eq!(start(&config, &log, &master).unwrap().as_bytes(), renewed.as_bytes());
        let size = log.checkpoint().size;
        assert_eq!(start(&config, &log, &master).unwrap().as_bytes(), renewed.as_bytes());
        assert_eq!(log.checkpoint().size, size, "recorded once");
        assert!(log.last_outcome(DATA_ID_SECRET_ACTION).unwrap().contains("ok: renewed, never served, fingerprint "));

        // The renewed file is one an API from before oblivious data IDs cannot read (it would
        // serve the seed to every member after a rollback): it has no `secret`.
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Before {
            coalition: String,
            secret: String,
        }
        let text = std::fs::read_to_string(config.data_id_path()).unwrap();
        assert!(serde_json::from_str::<Before>(&text).is_err(), "{text}");

        // A file kept on another volume behind a link is renewed there, the link kept.
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("data-id.key");
        std::fs::write(&target, &served).unwrap();
        let linked = VaultConfig { data_id_key_file: Some(dir.path().join("linked.key")), ..config.clone() };
        std::os::unix::fs::symlink(&target, linked.data_id_path()).unwrap();
        let (renewed, _) = data_id_secret(&linked, &COALITION, &master, (true, &recorded_old)).unwrap();
        assert!(std::fs::symlink_metadata(linked.data_id_path()).unwrap().file_type().is_symlink());
        assert!(std::fs::read_to_string(&target).unwrap().contains(&hex::encode(renewed.as_bytes())));
    }

    #[test]
    fn one_process_holds_a_data_directory_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        let refused = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("in use by another tclearn-api"), "{refused}");
        drop(held);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn a_rotation_that_stopped_half_way_is_finished_by_running_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let (config, old, hashes) = served(dir.path(), 4).await;
        let secret = data_id_secret(&config, &COALITION, &old, (true, &SecretRecord::None)).unwrap().0;
        // Stopped after its new key was written and one object re-wrapped.
        let next = MasterKey::generate();
        write_secret_file(&suffixed(&config.key_path(), ".next"), &next.to_hex()).unwrap();
        vault_of(&config, old.clone()).rewrap(&hashes[0], &next).await.unwrap();
        let refused = ensure_no_rotation_under_way(&config).unwrap_err().to_string();
        assert!(refused.contains("stopped half-way"), "{refused}");

        let mut seen = Vec::new();
        let rotation = rotate(&config, |done, total| seen.push((done, total))).await.unwrap();
        assert_eq!((rotation.rewrapped, rotation.already), (3, 1));
        assert_eq!(seen, (1..=4).map(|done| (done, 4)).collect::<Vec<_>>());
        ensure_no_rotation_under_way(&config).unwrap();
        let key = master_key(&config, true).unwrap();
        assert_eq!(key.id(), next.id(), "the new key is the key file");
        assert_eq!(
            master_key(&VaultConfig { vault_key_file: Some(rotation.retired), ..config.clone() }, true).unwrap().id(),
            old.id()
        );
        let vault = vault_of(&config, key.clone());
        for (i, hash) in hashes.iter().enumerate() {
            assert_eq!(vault.get(hash).await.unwrap(), Bytes::from(vec![i as u8; 100]));
        }
        assert_eq!(
            data_id_secret(&config, &COALITION, &key, (true, &SecretRecord::None)).unwrap().0.as_bytes(),
            secret.as_bytes()
        );
    }

    #[tokio::test]
    async fn a_rotation_swaps_no_key_while_an_object_does_not_open_or_the_api_serves() {
        let dir = tempfile::tempdir().unwrap();
        let (config, old, hashes) = served(dir.path(), 3).await;
        let object = dir.path().join("vault/objects").join(hex::encode(hashes[1]));
        let mut envelope = std::fs::read(&object).unwrap();
        *envelope.last_mut().unwrap() ^= 1;
        std::fs::write(&object, &envelope).unwrap();
        let refused = rotate(&config, |_, _| {}).await.unwrap_err().to_string();
        assert!(refused.contains("1 of 3 objects do not open") && refused.contains("not swapped"), "{refused}");
        assert_eq!(master_key(&config, true).unwrap().id(), old.id(), "the key file is untouched");
        assert!(ensure_no_rotation_under_way(&config).is_err(), "the new key is kept for the next run");

        // While an API serves the directory.
        let serving = DataDirLock::acquire(&config.data_dir).unwrap();
        let refused = rotate(&config, |_, _| {}).await.unwrap_err().to_string();
        assert!(refused.contains("in use by another tclearn-api"), "{refused}");
        drop(serving);

        // A key given in the environment has no file to rotate.
        let given = VaultConfig { vault_key: Some(tclearn_client::Secret(old.to_hex().to_string())), ..config.clone() };
        assert!(rotate(&given, |_, _| {}).await.unwrap_err().to_string().contains("--vault-key-file"));

        // A data-ID secret still derived from the master key: rotating would change every ID.
        std::fs::remove_file(config.data_id_path()).unwrap();
        let refused = rotate(&config, |_, _| {}).await.unwrap_err().to_string();
        assert!(refused.contains("start the API once"), "{refused}");
    }
}

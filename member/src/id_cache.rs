//! The member's own cache of its rows' data IDs: each identifier is asked of the vault once.
//!
//! Data IDs are blinded queries to the vault, counted against the member's daily quota and
//! logged with their count ([`tclearn_api_client::data_ids`]). Without a cache every training
//! run would ask again for every row already in a block, spend the quota on them, and look in
//! the audit log like a sweep. The cache maps each (trimmed) identifier to its ID under the
//! vault key that answered; a different key (the vault's secret renewed) is refused with what to
//! do. It sits beside the member's data, which holds the identifiers already, and is written
//! readable by its owner only.

use std::{collections::BTreeMap, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

/// Why the cache could not be read, extended or written.
#[derive(Debug, thiserror::Error)]
pub enum IdCacheError {
    /// Reading or writing the file failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The cache is another coalition's.
    #[error("{path} holds the data IDs of coalition {cached}, not {now}: give another --id-cache")]
    OtherCoalition {
        /// The file.
        path: String,
        /// The coalition it is for.
        cached: String,
        /// This one.
        now: String,
    },
    /// The vault now answers under another key than the cached IDs are under, or gives a
    /// cached identifier another ID.
    #[error(
        "{path} holds data IDs under the vault's key {cached}, and the vault now answers under {now}: \
         the coalition's data-ID key changed; delete the file to ask for every row again"
    )]
    KeyChanged {
        /// The file.
        path: String,
        /// The key of the cached IDs.
        cached: String,
        /// The key of the vault's answers now.
        now: String,
    },
}

/// The cache's file.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct CacheFile {
    /// The coalition the IDs are for (its address, hex): a cache is never used for another.
    coalition: String,
    /// The vault's data-ID public key (hex) the IDs are under.
    public_key: Option<String>,
    /// Trimmed identifier → data ID (hex).
    ids: BTreeMap<String, String>,
}

/// A member's cache of its data IDs, in a file.
#[derive(Debug)]
pub struct IdCache {
    path: std::path::PathBuf,
    file: CacheFile,
}

impl IdCache {
    /// The cache at `path` (empty if there is no file yet).
    ///
    /// # Errors
    /// The file is unreadable or not a cache.
    pub fn open(path: &Path, coalition: &str) -> Result<Self, IdCacheError> {
        let io = |reason: String| IdCacheError::Io { path: path.display().to_string(), reason };
        let file: CacheFile = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| io(format!("not a data-ID cache: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                CacheFile { coalition: coalition.to_string(), ..CacheFile::default() }
            }
            Err(e) => return Err(io(e.to_string())),
        };
        if !file.coalition.eq_ignore_ascii_case(coalition) {
            let (path, cached, now) = (path.display().to_string(), file.coalition, coalition.to_string());
            return Err(IdCacheError::OtherCoalition { path, cached, now });
        }
        Ok(Self { path: path.to_path_buf(), file })
    }

    /// The cached ID of `identifier`.
    pub fn get(&self, identifier: &str) -> Option<[u8; 32]> {
        let mut id = [0u8; 32];
        let text = self.file.ids.get(identifier.trim())?;
        hex::decode_to_slice(text, &mut id).ok().map(|()| id)
    }

    /// Add `ids` of `identifiers`, answered under `public_key`, and write the file. An
    /// identifier already cached must get the same ID (what `tclearn train` checks on every run
    /// by asking for its first row again).
    ///
    /// # Errors
    /// [`IdCacheError::KeyChanged`] if the cached IDs are under another key or an identifier
    /// now has another ID; the file cannot be written.
    pub fn add(&mut self, public_key: &str, identifiers: &[String], ids: &[[u8; 32]]) -> Result<(), IdCacheError> {
        let changed = |cached: &str| IdCacheError::KeyChanged {
            path: self.path.display().to_string(),
            cached: cached.to_string(),
            now: public_key.to_string(),
        };
        match &self.file.public_key {
            Some(cached) if cached != public_key => return Err(changed(cached)),
            _ => {}
        }
        let cached = self.file.public_key.clone().unwrap_or_default();
        for (identifier, id) in identifiers.iter().zip(ids) {
            if self.get(identifier).is_some_and(|known| known != *id) {
                return Err(changed(&cached));
            }
        }
        self.file.public_key = Some(public_key.to_string());
        for (identifier, id) in identifiers.iter().zip(ids) {
            self.file.ids.insert(identifier.trim().to_string(), hex::encode(id));
        }
        self.save()
    }

    /// Write the file (0600), whole or not at all: a new file renamed over the old.
    fn save(&self) -> Result<(), IdCacheError> {
        let io = |e: std::io::Error| IdCacheError::Io { path: self.path.display().to_string(), reason: e.to_string() };
        let text = serde_json::to_string(&self.file).map_err(|e| io(std::io::Error::other(e)))?;
        let mut next = self.path.clone().into_os_string();
        next.push(".next");
        let next = std::path::PathBuf::from(next);
        // A new file (never one planted there, nor another run's), readable by its owner only.
        let _ = std::fs::remove_file(&next);
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&next).map_err(io)?;
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
        std::fs::rename(&next, &self.path).map_err(io)?;
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_under_one_key_and_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.csv.ids.json");
        let mut cache = IdCache::open(&path, "0x07").unwrap();
        assert_eq!(cache.get("wdbc-1"), None);
        cache.add("aa", &["wdbc-1".into(), " wdbc-2 ".into()], &[[1; 32], [2; 32]]).unwrap();
        let again = IdCache::open(&path, "0x07").unwrap();
        assert_eq!((again.get(" wdbc-1"), again.get("wdbc-2")), (Some([1; 32]), Some([2; 32])));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let mut again = again;
        let changed = again.add("bb", &["wdbc-3".into()], &[[3; 32]]).unwrap_err().to_string();
        assert!(
            changed.contains("the coalition's data-ID key changed") && changed.contains("delete the file"),
            "{changed}"
        );
        assert_eq!(IdCache::open(&path, "0x07").unwrap().get("wdbc-3"), None, "nothing written under another key");
        // The same key giving a cached identifier another ID is refused too.
        let moved = again.add("aa", &["wdbc-1".into()], &[[9; 32]]).unwrap_err().to_string();
        assert!(moved.contains("the coalition's data-ID key changed"), "{moved}");
        let other = IdCache::open(&path, "0x08").unwrap_err().to_string();
        assert!(other.contains("coalition 0x07, not 0x08"), "{other}");
        std::fs::write(&path, "not json").unwrap();
        assert!(IdCache::open(&path, "0x07").unwrap_err().to_string().contains("not a data-ID cache"));
    }
}

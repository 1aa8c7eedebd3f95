//! The audit log: every upload, download and refusal, appended to an RFC 6962 Merkle log.
//!
//! - An entry is one line of canonical JSON ([`Entry`]); its bytes, exactly as stored, are the
//!   leaf. The log is a file of such lines, appended and synced one entry at a time, and read
//!   back at start; the tree ([`ct_merkle`], SHA-256 as in RFC 6962) is rebuilt from it.
//! - The API serves a checkpoint (size and root), entries, inclusion proofs against the current
//!   checkpoint and consistency proofs from any earlier size.
//! - The size and root are anchored on chain (`contracts/audit-anchors`); the contract refuses a
//!   length that does not grow.
//! - [`verify`] (the members' API client's, `tclearn_api_client::audit`) checks a served log
//!   against those anchors: an entry edited, removed, inserted or
//!   reordered before an anchored length changes that prefix's root, and a log shorter than an
//!   anchor was rolled back. Entries after the last anchor are covered only once anchored.
//! - Entries name accounts and objects, and are served to members only; the checkpoint, the
//!   consistency proofs and the anchors are public, and reveal leaf hashes. Each entry carries
//!   16 random bytes ([`Entry::salt`]), so that a leaf hash cannot be matched against a guess
//!   (who did what, when: a few million tries without it). The file is readable by its owner
//!   only.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};
use tclearn_api_client::audit::{Checkpoint, MAX_PAGE};

/// Most bytes of an entry's action.
pub const MAX_ACTION_BYTES: usize = 32;
/// Most bytes of an entry's outcome: a refusal's reason may quote what a member sent (a model's
/// names), so it is cut here, and no member writes more than a few dozen bytes of its own text
/// into the log. The member who was refused gets the whole reason in the HTTP answer.
pub const MAX_OUTCOME_BYTES: usize = 96;
/// Most bytes of an account or an object (an SS58 address, a hex hash).
pub const MAX_NAME_BYTES: usize = 68;

/// `text` cut to at most `max` bytes on a character boundary, ending in `…` when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Why the log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log file could not be read or written.
    #[error("audit log {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The log is shorter than the latest anchor on chain says it was.
    #[error(
        "the audit log holds {held} entries, but anchor {index} on chain covers {anchored}: it was rolled back, \
         replaced or lost; restore it from a backup (a log that does not continue the anchored one is refused)"
    )]
    BehindAnchor {
        /// Entries the log holds.
        held: u64,
        /// The latest anchor's index.
        index: u64,
        /// Entries it covers.
        anchored: u64,
    },
    /// A proof was asked for beyond the log.
    #[error("the log has {size} entries; {asked} is out of range")]
    OutOfRange {
        /// Entries in the log.
        size: u64,
        /// What was asked.
        asked: u64,
    },
}

/// Check that a log of `held` entries reaches the latest anchor on chain (anchor `index`,
/// covering `anchored` entries). A shorter log was rolled back (an old backup restored), replaced
/// or lost: serving it would fork the log from its anchors, and lose what the log records (the
/// data-ID secret's fingerprint among them). A log as long or longer is checked against the
/// anchors' roots by the verifiers.
///
/// # Errors
/// [`AuditError::BehindAnchor`].
pub fn ensure_reaches_anchor(held: u64, (index, anchored): (u64, u64)) -> Result<(), AuditError> {
    if held < anchored {
        return Err(AuditError::BehindAnchor { held, index, anchored });
    }
    Ok(())
}

/// One audited event. Field order is the serialization order: the leaf's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// Position in the log.
    pub index: u64,
    /// When (ms since the Unix epoch).
    pub time_ms: u64,
    /// Who: the signed-in account (SS58), or none when the request carried no valid token.
    pub account: Option<String>,
    /// What was done: `upload-candidate`, `upload-delta`, `download`, ...
    pub action: String,
    /// The object concerned (SHA3-256, hex), if any.
    pub object: Option<String>,
    /// `ok`, or `refused: <why>`.
    pub outcome: String,
    /// 16 random bytes, hex, that keep the entry's leaf hash from confirming a guess of the
    /// entry (entries logged before salts have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// The member's nonce for this access (32 hex digits, `tclearn-access-nonce`), which its
    /// receipt's entry must name; none when the request named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// An entry just appended.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The entry.
    pub entry: Entry,
    /// Its bytes as logged (the leaf).
    pub leaf: String,
    /// The log's checkpoint right after it.
    pub checkpoint: Checkpoint,
    /// Its inclusion proof in that checkpoint.
    pub proof: Vec<u8>,
}

struct Inner {
    file: std::fs::File,
    tree: MemoryBackedTree<Sha256, Vec<u8>>,
}

/// The log.
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

fn root_of(tree: &MemoryBackedTree<Sha256, Vec<u8>>) -> [u8; 32] {
    let mut root = [0u8; 32];
    root.copy_from_slice(tree.root().as_bytes());
    root
}

impl AuditLog {
    /// Open (or create) the log at `path` and rebuild its tree.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let io = |e: std::io::Error| AuditError::Io { path: path.to_path_buf(), reason: e.to_string() };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut tree = MemoryBackedTree::new();
        if path.exists() {
            let reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
            for line in reader.split(b'\n') {
                let line = line.map_err(io)?;
                if !line.is_empty() {
                    tree.push(line);
                }
            }
        }
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(io)?
        };
        Ok(Self { path: path.to_path_buf(), inner: Mutex::new(Inner { file, tree }) })
    }

    /// The outcome of the latest entry that records `action`, if any (a scan of the whole log).
    pub fn last_outcome(&self, action: &str) -> Option<String> {
        let inner = self.inner.lock().expect("audit lock");
        inner
            .tree
            .items()
            .iter()
            .rev()
            .filter_map(|leaf| serde_json::from_slice::<Entry>(leaf).ok())
            .find(|entry| entry.action == action)
            .map(|entry| entry.outcome)
    }

    /// Append an entry, naming the member's `nonce` for its access when given (a
    /// [`tclearn_api_client::receipt::parse_nonce`]: anything else is left out); returns it
    /// with its index, as logged, with the checkpoint right after it and its inclusion proof
    /// there (what a member's receipt signs).
    pub fn append(
        &self,
        time_ms: u64,
        account: Option<String>,
        action: &str,
        object: Option<String>,
        outcome: String,
        nonce: Option<&str>,
    ) -> Result<Appended, AuditError> {
        let nonce = nonce.and_then(tclearn_api_client::receipt::parse_nonce).map(str::to_owned);
        let (account, object) =
            (account.map(|a| bounded(&a, MAX_NAME_BYTES)), object.map(|o| bounded(&o, MAX_NAME_BYTES)));
        let (action, outcome) = (bounded(action, MAX_ACTION_BYTES), bounded(&outcome, MAX_OUTCOME_BYTES));
        let mut salt = [0u8; 16];
        let io = |e: std::io::Error| AuditError::Io { path: self.path.clone(), reason: e.to_string() };
        getrandom::getrandom(&mut salt).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut inner = self.inner.lock().expect("audit lock");
        let entry = Entry {
            index: inner.tree.len(),
            time_ms,
            account,
            action,
            object,
            outcome,
            salt: Some(hex::encode(salt)),
            nonce,
        };
        let leaf = serde_json::to_vec(&entry).expect("an entry serializes");
        inner.file.write_all(&[&leaf[..], b"\n"].concat()).map_err(io)?;
        inner.file.sync_data().map_err(io)?;
        inner.tree.push(leaf.clone());
        let checkpoint = Checkpoint { size: inner.tree.len(), root: root_of(&inner.tree) };
        let proof = inner.tree.prove_inclusion(entry.index as usize).as_bytes().to_vec();
        let leaf = String::from_utf8(leaf).expect("JSON is UTF-8");
        Ok(Appended { entry, leaf, checkpoint, proof })
    }

    /// The current checkpoint.
    pub fn checkpoint(&self) -> Checkpoint {
        let inner = self.inner.lock().expect("audit lock");
        Checkpoint { size: inner.tree.len(), root: root_of(&inner.tree) }
    }

    /// Entries `start..start + count` (at most [`MAX_PAGE`]), as stored.
    pub fn entries(&self, start: u64, count: u64) -> Vec<String> {
        let inner = self.inner.lock().expect("audit lock");
        let items = inner.tree.items();
        let start = start.min(items.len() as u64) as usize;
        let end = start.saturating_add(count.min(MAX_PAGE) as usize).min(items.len());
        items[start..end].iter().map(|leaf| String::from_utf8_lossy(leaf).into_owned()).collect()
    }

    /// An inclusion proof of entry `index` in the current tree, with that checkpoint.
    pub fn inclusion(&self, index: u64) -> Result<(Checkpoint, Vec<u8>), AuditError> {
        let inner = self.inner.lock().expect("audit lock");
        let size = inner.tree.len();
        if index >= size {
            return Err(AuditError::OutOfRange { size, asked: index });
        }
        let proof = inner.tree.prove_inclusion(index as usize);
        Ok((Checkpoint { size, root: root_of(&inner.tree) }, proof.as_bytes().to_vec()))
    }

    /// A consistency proof from the tree of the first `from` entries to the current one.
    pub fn consistency(&self, from: u64) -> Result<(Checkpoint, Vec<u8>), AuditError> {
        let inner = self.inner.lock().expect("audit lock");
        let size = inner.tree.len();
        if from == 0 || from > size {
            return Err(AuditError::OutOfRange { size, asked: from });
        }
        let proof = inner.tree.prove_consistency((size - from) as usize);
        Ok((Checkpoint { size, root: root_of(&inner.tree) }, proof.as_bytes().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tclearn_api_client::audit::{verify, verify_consistency, verify_inclusion, Tampering, Verified};

    fn log_with(n: u64) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
        for i in 0..n {
            log.append(
                1_000 + i,
                Some(format!("5Member{i}")),
                "download",
                Some(format!("{i:064x}")),
                "ok".into(),
                None,
            )
            .unwrap();
        }
        (dir, log)
    }

    fn leaves(log: &AuditLog) -> Vec<Vec<u8>> {
        log.entries(0, MAX_PAGE).into_iter().map(String::into_bytes).collect()
    }

    /// The checkpoint of the first `n` of `leaves`.
    fn prefix(leaves: &[Vec<u8>], n: usize) -> Checkpoint {
        let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
        leaves[..n].iter().for_each(|leaf| tree.push(leaf.clone()));
        Checkpoint { size: n as u64, root: root_of(&tree) }
    }

    #[test]
    fn a_public_proof_does_not_confirm_a_guessed_entry() {
        // Every field of the newest entry is guessable (its index is the size, its time is
        // close to when the checkpoint moved, accounts and objects are few); the consistency
        // proof from one entry back, which anyone may ask for, names its leaf hash.
        let (_dir, log) = log_with(6);
        let appended = log
            .append(5_000, Some("5Alice".into()), "download", Some(format!("{:064x}", 3)), "ok".into(), None)
            .unwrap();
        let leaf_hash =
            |leaf: &[u8]| -> Vec<u8> { <Sha256 as sha2::Digest>::digest([&[0u8][..], leaf].concat()).to_vec() };
        let (_, proof) = log.consistency(6).unwrap();
        let revealed: Vec<&[u8]> = proof.chunks(32).collect();
        assert!(revealed.contains(&leaf_hash(appended.leaf.as_bytes()).as_slice()), "the proof names the leaf");
        let guess = Entry { salt: None, ..appended.entry.clone() };
        let guessed = serde_json::to_vec(&guess).unwrap();
        assert!(
            !revealed.contains(&leaf_hash(&guessed).as_slice()),
            "a guess of every field but the salt is not confirmed"
        );
        // Two entries alike but for their salt are different leaves; an entry without one (logged
        // before salts) still reads back.
        let again = log
            .append(5_000, Some("5Alice".into()), "download", Some(format!("{:064x}", 3)), "ok".into(), None)
            .unwrap();
        assert_ne!(Entry { index: 6, ..again.entry.clone() }, appended.entry);
        let old: Entry = serde_json::from_str(
            r#"{"index":0,"time_ms":1,"account":null,"action":"download","object":null,"outcome":"ok"}"#,
        )
        .unwrap();
        assert_eq!(old.salt, None);
        assert_eq!(log.last_outcome("download").as_deref(), Some("ok"));
        assert_eq!(log.last_outcome("data-id-secret"), None);
        log.append(6_000, None, "download", None, "refused".into(), None).unwrap();
        assert_eq!(log.last_outcome("download").as_deref(), Some("refused"), "the latest entry's");
    }

    #[test]
    fn a_log_shorter_than_its_latest_anchor_is_refused() {
        assert!(ensure_reaches_anchor(13, (1, 13)).is_ok());
        assert!(ensure_reaches_anchor(20, (1, 13)).is_ok(), "grown since");
        for held in [0, 8, 12] {
            let refused = ensure_reaches_anchor(held, (1, 13)).unwrap_err().to_string();
            assert!(refused.contains(&format!("holds {held} entries, but anchor 1 on chain covers 13")), "{refused}");
        }
    }

    #[test]
    fn an_entry_is_bounded_whatever_a_member_sends() {
        let (_dir, log) = log_with(0);
        let quoted = format!("refused: the model checks refuse it: opset domain {:?}", "é".repeat(32 << 20));
        let long = "x".repeat(1 << 20);
        let appended = log.append(1, Some(long.clone()), &long, Some(long.clone()), quoted, None).unwrap();
        let stored = &log.entries(0, 1)[0];
        assert_eq!(&appended.leaf, stored);
        assert!(verify_inclusion(&appended.checkpoint, stored.as_bytes(), 0, &appended.proof));
        let entry = appended.entry;
        assert!(stored.len() <= 400, "{} bytes", stored.len());
        assert!(
            entry.outcome.starts_with("refused: the model checks refuse it: opset domain")
                && entry.outcome.ends_with('…')
        );
        assert!(entry.outcome.len() <= MAX_OUTCOME_BYTES, "cut on a character boundary");
        assert_eq!(bounded("short", 8), "short");
    }

    #[test]
    fn the_log_survives_a_restart_and_proves_inclusion_and_consistency() {
        let (dir, log) = log_with(7);
        let at_5 = prefix(&leaves(&log), 5);
        let checkpoint = log.checkpoint();
        assert_eq!(checkpoint.size, 7);
        drop(log);
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).unwrap();
        assert_eq!(log.checkpoint(), checkpoint, "rebuilt from the file");
        let entry: Entry = serde_json::from_str(&log.entries(3, 1)[0]).unwrap();
        assert_eq!((entry.index, entry.action.as_str()), (3, "download"));

        for index in 0..7 {
            let (at, proof) = log.inclusion(index).unwrap();
            let leaf = log.entries(index, 1).remove(0).into_bytes();
            assert!(verify_inclusion(&at, &leaf, index, &proof));
            assert!(!verify_inclusion(&at, &leaf, (index + 1) % 7, &proof));
        }
        let (now, proof) = log.consistency(5).unwrap();
        assert!(verify_consistency(&at_5, &now, &proof));
        let forged = Checkpoint { root: [7; 32], ..at_5 };
        assert!(!verify_consistency(&forged, &now, &proof));
        assert!(matches!(log.inclusion(7), Err(AuditError::OutOfRange { size: 7, asked: 7 })));
        assert!(log.consistency(0).is_err() && log.consistency(8).is_err());
        assert_eq!(log.entries(5, 100).len(), 2);
    }

    #[test]
    fn edits_removals_reorders_and_rollbacks_before_an_anchor_are_detected() {
        let (_dir, log) = log_with(10);
        let all = leaves(&log);
        let anchor = |n: usize| (n as u64, prefix(&all, n).root);
        let anchors = vec![anchor(4), anchor(8)];
        let checkpoint = log.checkpoint();
        assert_eq!(
            verify(&all, &checkpoint, &anchors),
            Ok(Verified { entries: 10, anchors: 2, anchored: 8, receipts: 0 })
        );

        let served = |leaves: &[Vec<u8>]| {
            let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
            leaves.iter().for_each(|leaf| tree.push(leaf.clone()));
            Checkpoint { size: tree.len(), root: root_of(&tree) }
        };
        let mut edited = all.clone();
        edited[2] = String::from_utf8(edited[2].clone()).unwrap().replace("download", "upload").into_bytes();
        assert_eq!(verify(&edited, &served(&edited), &anchors), Err(Tampering::Rewritten { anchor: 0, anchored: 4 }));
        let mut removed = all.clone();
        removed.remove(5);
        assert_eq!(verify(&removed, &served(&removed), &anchors), Err(Tampering::Rewritten { anchor: 1, anchored: 8 }));
        let mut reordered = all.clone();
        reordered.swap(0, 1);
        assert!(matches!(
            verify(&reordered, &served(&reordered), &anchors),
            Err(Tampering::Rewritten { anchor: 0, .. })
        ));
        let rolled_back = all[..6].to_vec();
        assert_eq!(
            verify(&rolled_back, &served(&rolled_back), &anchors),
            Err(Tampering::RolledBack { anchor: 1, anchored: 8, served: 6 })
        );
        // After the last anchor, an edit shows only against the served checkpoint until anchored.
        let mut late = all.clone();
        late[9] = b"{}".to_vec();
        assert_eq!(verify(&late, &checkpoint, &anchors), Err(Tampering::CheckpointMismatch));
        assert_eq!(verify(&all, &checkpoint, &[anchors[1], anchors[0]]), Err(Tampering::AnchorsOutOfOrder(1)));
    }
}

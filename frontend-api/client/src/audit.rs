//! Checking the audit log a members' API serves: RFC 6962 proofs, and a served log against the
//! roots anchored on chain (`contracts/audit-anchors`).
//!
//! An entry edited, removed, inserted or reordered before an anchored length changes that
//! prefix's root, and a log shorter than an anchor was rolled back. Entries after the last anchor
//! are covered only once anchored. The log itself is the server's (`tclearn_api::audit`).

use ct_merkle::{mem_backed_tree::MemoryBackedTree, ConsistencyProof, InclusionProof, RootHash};
use sha2::Sha256;

/// Most entries one page of `GET /api/audit/entries` returns.
pub const MAX_PAGE: u64 = 1_000;

/// A checkpoint: the log's size and root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of entries.
    pub size: u64,
    /// RFC 6962 root over them (SHA-256; the empty log's root is SHA-256 of nothing).
    pub root: [u8; 32],
}

/// Whether `proof` shows `leaf` at `index` under `checkpoint`.
pub fn verify_inclusion(checkpoint: &Checkpoint, leaf: &[u8], index: u64, proof: &[u8]) -> bool {
    let root = RootHash::<Sha256>::new(checkpoint.root.into(), checkpoint.size);
    root.verify_inclusion(&leaf, index, &InclusionProof::from_bytes(proof.to_vec())).is_ok()
}

/// Whether `proof` shows `old` to be a prefix of `new`.
pub fn verify_consistency(old: &Checkpoint, new: &Checkpoint, proof: &[u8]) -> bool {
    let old = RootHash::<Sha256>::new(old.root.into(), old.size);
    let new_root = RootHash::<Sha256>::new(new.root.into(), new.size);
    match ConsistencyProof::try_from_bytes(proof.to_vec()) {
        Ok(proof) => new_root.verify_consistency(&old, &proof).is_ok(),
        Err(_) => false,
    }
}

/// What is wrong with a served log, against the anchors on chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tampering {
    /// The log is shorter than an anchored length: entries were removed from its end, or it was
    /// restored from an older copy.
    #[error("rolled back: anchor {anchor} covers {anchored} entries, the log has {served}")]
    RolledBack {
        /// The anchor's index.
        anchor: u64,
        /// Entries it covers.
        anchored: u64,
        /// Entries served.
        served: u64,
    },
    /// The first `anchored` entries do not hash to the anchored root: an entry among them was
    /// edited, removed, inserted or moved.
    #[error("rewritten: the first {anchored} entries do not hash to anchor {anchor}'s root")]
    Rewritten {
        /// The anchor's index.
        anchor: u64,
        /// Entries it covers.
        anchored: u64,
    },
    /// The served entries do not hash to the served checkpoint.
    #[error("the served entries do not hash to the served checkpoint")]
    CheckpointMismatch,
    /// Anchors whose lengths do not grow (the contract refuses those: not this chain's contract).
    #[error("anchor {0}'s length does not grow")]
    AnchorsOutOfOrder(u64),
    /// The log is shorter than a checkpoint the API signed in a member's receipt: its tail was
    /// cut (anchored or not).
    #[error("cut: the API's signed receipt for entry {index} covers {size} entries, the log has {served}")]
    CutBehindReceipt {
        /// The receipt's entry.
        index: u64,
        /// Entries its checkpoint covers.
        size: u64,
        /// Entries served.
        served: u64,
    },
    /// The served log's first `size` entries do not hash to the root the API signed in a
    /// member's receipt, or the receipt's entry is not at its index.
    #[error("rewritten: the first {size} entries do not match the API's signed receipt for entry {index}")]
    ContradictsReceipt {
        /// The receipt's entry.
        index: u64,
        /// Entries its checkpoint covers.
        size: u64,
    },
}

/// What a verification covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Entries served.
    pub entries: u64,
    /// Anchors checked.
    pub anchors: u64,
    /// Entries covered by the latest anchor (the rest is not yet anchored).
    pub anchored: u64,
    /// Receipts checked (set by [`crate::verify::verify_served`]).
    pub receipts: u64,
}

/// Check `leaves` (the served log) against `anchors` (`(log_length, root)`, oldest first, as on
/// chain) and the served `checkpoint`.
pub fn verify(leaves: &[Vec<u8>], checkpoint: &Checkpoint, anchors: &[(u64, [u8; 32])]) -> Result<Verified, Tampering> {
    let mut tree = MemoryBackedTree::<Sha256, &[u8]>::new();
    let mut previous = 0u64;
    for (index, &(length, root)) in anchors.iter().enumerate() {
        let anchor = index as u64;
        if length <= previous && index > 0 {
            return Err(Tampering::AnchorsOutOfOrder(anchor));
        }
        previous = length;
        if length > leaves.len() as u64 {
            return Err(Tampering::RolledBack { anchor, anchored: length, served: leaves.len() as u64 });
        }
        while tree.len() < length {
            tree.push(&leaves[tree.len() as usize]);
        }
        if tree.root().as_bytes().as_slice() != root {
            return Err(Tampering::Rewritten { anchor, anchored: length });
        }
    }
    while (tree.len() as usize) < leaves.len() {
        tree.push(&leaves[tree.len() as usize]);
    }
    if checkpoint.size != tree.len() || tree.root().as_bytes().as_slice() != checkpoint.root {
        return Err(Tampering::CheckpointMismatch);
    }
    Ok(Verified { entries: tree.len(), anchors: anchors.len() as u64, anchored: previous, receipts: 0 })
}

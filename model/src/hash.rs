//! The hashes a model goes by, and where the members' API's vault keeps it.
//!
//! A candidate is proposed, fetched and checked under the SHA3-256 of its file ([`model_hash`]);
//! in the members' API's vault it is the object [`members_api_ref`] names. The architecture hash,
//! which leaves the weights out, is [`crate::checks::architecture_hash`].

use sha3::{Digest, Sha3_256};

/// SHA3-256 of a model file: the hash a candidate is proposed and fetched under.
pub fn model_hash(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = ModelHasher::default();
    hasher.update(bytes);
    hasher.finish()
}

/// [`model_hash`] of a file taken in piece by piece (an upload as it arrives).
#[derive(Default, Clone)]
pub struct ModelHasher(Sha3_256);

impl ModelHasher {
    /// Take in the next `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The hash of everything taken in.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// The vault reference of object `hash` in the members' API's vault.
pub fn members_api_ref(hash: &[u8; 32]) -> String {
    format!("objects/0x{}", hex::encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_hashed_piece_by_piece_has_the_hash_of_the_whole() {
        let file: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(hex::encode(model_hash(b"")), "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
        for piece in [1, 7, 64, 4096, 10_000] {
            let mut hasher = ModelHasher::default();
            file.chunks(piece).for_each(|chunk| hasher.update(chunk));
            assert_eq!(hasher.finish(), model_hash(&file), "pieces of {piece}");
        }
    }

    #[test]
    fn a_reference_names_the_object_by_its_full_hash() {
        let hash = model_hash(b"model");
        let reference = members_api_ref(&hash);
        assert_eq!(reference.len(), "objects/0x".len() + 64);
        assert!(reference.ends_with(&hex::encode(hash)));
        assert_ne!(model_hash(b"model"), model_hash(b"model."));
    }
}

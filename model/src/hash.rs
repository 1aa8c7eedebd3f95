//! The hashes a model goes by, and where the members' API's vault keeps it.
//!
//! A candidate is proposed, fetched and checked under the SHA3-256 of its file ([`model_hash`]);
//! in the members' API's vault it is the object [`members_api_ref`] names. The architecture hash,
//! which leaves the weights out, is [`crate::checks::architecture_hash`].

use sha3::{Digest, Sha3_256};

/// SHA3-256 of a model file: the hash a candidate is proposed and fetched under.
pub fn model_hash(bytes: &[u8]) -> [u8; 32] {
    Sha3_256::digest(bytes).into()
}

/// The vault reference of object `hash` in the members' API's vault.
pub fn members_api_ref(hash: &[u8; 32]) -> String {
    format!("objects/0x{}", hex::encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_the_object_by_its_full_hash() {
        let hash = model_hash(b"model");
        let reference = members_api_ref(&hash);
        assert_eq!(reference.len(), "objects/0x".len() + 64);
        assert!(reference.ends_with(&hex::encode(hash)));
        assert_ne!(model_hash(b"model"), model_hash(b"model."));
    }
}

//! The coalition's hashes, all keccak-256 over SCALE encodings. The hasher is a parameter: the
//! contract passes the host's keccak-256 (cheap on chain), the client and the oracle
//! [`NativeKeccak`] (feature `native`); `tests::native_keccak_is_keccak_256` and the contract's
//! own tests check the two agree.

use crate::{types::BlockHeader, Address, Report, H256};
use codec::Encode;

/// keccak-256.
pub trait Keccak {
    /// keccak-256 of `input`.
    fn keccak256(input: &[u8]) -> [u8; 32];
}

/// keccak-256 in Rust (`sp-crypto-hashing`), for programs off chain.
#[cfg(feature = "native")]
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeKeccak;

#[cfg(feature = "native")]
impl Keccak for NativeKeccak {
    fn keccak256(input: &[u8]) -> [u8; 32] {
        sp_crypto_hashing::keccak_256(input)
    }
}

/// keccak-256 of `bytes`.
pub fn keccak<K: Keccak>(bytes: &[u8]) -> H256 {
    H256(K::keccak256(bytes))
}

/// keccak-256 of `SCALE(value)`.
pub fn keccak_encoded<K: Keccak, T: Encode + ?Sized>(value: &T) -> H256 {
    value.using_encoded(|bytes| H256(K::keccak256(bytes)))
}

/// What a validator commits: `keccak(SCALE(contract, validator, report, salt))`. Naming the
/// contract keeps a commitment from being replayed on another coalition, naming the validator
/// keeps another validator from copying it, and the report names its round and candidate.
pub fn commitment<K: Keccak>(contract: &Address, validator: &Address, report: &Report, salt: &[u8; 32]) -> H256 {
    keccak_encoded::<K, _>(&(contract, validator, report, salt))
}

/// `keccak(SCALE(strengths))`, the strengths as `Vec<(H160, u64)>` in slot order.
pub fn strengths_hash<K: Keccak>(strengths: &[(Address, u64)]) -> H256 {
    keccak_encoded::<K, _>(strengths)
}

/// `keccak(SCALE(header))`: index `u32`, timestamp `u64`, previous hash, parameter hash,
/// keccak-256 of the vault reference, contributor `Option<H160>`, strengths hash.
pub fn block_hash<K: Keccak>(header: &BlockHeader) -> H256 {
    keccak_encoded::<K, _>(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scores, TestKeccak as NativeKeccak, Verdict};

    #[test]
    fn native_keccak_is_keccak_256() {
        // keccak-256("") and keccak-256("abc"), the published test vectors.
        assert_eq!(
            keccak::<NativeKeccak>(b""),
            H256(hex_literal("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"))
        );
        assert_eq!(
            keccak::<NativeKeccak>(b"abc"),
            H256(hex_literal("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"))
        );
    }

    fn hex_literal(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn commitments_bind_contract_validator_report_and_salt() {
        let report = Report {
            round: 1,
            candidate: H256::repeat_byte(2),
            verdict: Verdict::Scored(Scores { g_metric: 3, g_digest: H256::repeat_byte(4), l_keeps: true, l_size: 6 }),
        };
        let (c, v) = (Address::repeat_byte(9), Address::repeat_byte(1));
        let a = commitment::<NativeKeccak>(&c, &v, &report, &[0; 32]);
        assert_ne!(a, commitment::<NativeKeccak>(&Address::repeat_byte(8), &v, &report, &[0; 32]));
        assert_ne!(a, commitment::<NativeKeccak>(&c, &Address::repeat_byte(2), &report, &[0; 32]));
        assert_ne!(a, commitment::<NativeKeccak>(&c, &v, &report, &[1; 32]));
        let preimage = [&[9u8; 20][..], &[1u8; 20][..], &report.encode(), &[0u8; 32]].concat();
        assert_eq!(a, keccak::<NativeKeccak>(&preimage));
    }

    #[test]
    fn the_block_hash_covers_the_vault_reference() {
        let header = BlockHeader {
            index: 1,
            timestamp: 2,
            previous_hash: H256::repeat_byte(3),
            parameter_hash: H256::repeat_byte(4),
            vault_ref_hash: keccak::<NativeKeccak>(b"vault://a"),
            contributor: Some(Address::repeat_byte(5)),
            strengths_hash: H256::repeat_byte(6),
        };
        let other = BlockHeader { vault_ref_hash: keccak::<NativeKeccak>(b"vault://b"), ..header };
        assert_ne!(block_hash::<NativeKeccak>(&header), block_hash::<NativeKeccak>(&other));
        assert_eq!(block_hash::<NativeKeccak>(&header), keccak::<NativeKeccak>(&header.encode()));
    }
}

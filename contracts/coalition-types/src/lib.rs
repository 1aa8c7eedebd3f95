//! # coalition-types
//!
//! The coalition protocol of TCLearn written once: its wire types ([`types`]), its events
//! ([`events`]), its hashes ([`hashing`]) and its pure rules ([`rules`]). The coalition contract
//! (`contracts/coalition`), the Rust client (`tclearn-client`) and the oracle all use this crate,
//! so what the client encodes, what the oracle votes and what the contract checks is the same
//! code, not a copy kept in step by hand.
//!
//! The crate is `no_std` and depends on nothing of ink!: the contract adds ink!'s storage layout
//! (a leaf per stored value) and event derives on its side, and supplies the host's keccak-256
//! through [`hashing::Keccak`]. Off chain, the `native` feature gives [`hashing::NativeKeccak`].
//! Addresses are `primitive-types`' [`H160`], which is both ink!'s `Address` and subxt's `H160`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
// The events macro names this crate `::coalition_types`, here too.
extern crate self as coalition_types;

pub mod events;
pub mod hashing;
pub mod rdp;
pub mod rules;
#[cfg(test)]
mod tests;
pub mod types;

pub use primitive_types::{H160, H256};

/// `Vec`, for the paths in [`coalition_events!`] (the contract and the client share them).
#[doc(hidden)]
pub mod alloc_vec {
    pub use alloc::vec::Vec;
}
pub use types::*;

/// An account as contracts know it: the last 20 bytes of keccak-256 of the `AccountId32`.
pub type Address = H160;
/// A chain block number.
pub type BlockNumber = u32;

/// Most members a coalition has.
pub const MAX_MEMBERS: u32 = 64;
/// Most validators per round (`k`): a round's validator list must fit one storage value.
pub const MAX_VALIDATORS: u32 = 16;
/// Most data IDs (training samples) in one proposal. A `propose` call carries them all in its
/// input, which ink! reads into a 16 KiB buffer ([`INPUT_BUFFER`]); 448 IDs (14 KiB) leave room
/// for the other arguments at their largest (`tests::the_largest_propose_fits_the_input_buffer`).
pub const MAX_DATA_IDS: u32 = 448;
/// Data IDs per stored chunk while a round is open (12 × 32 bytes fit a storage value).
pub const DATA_IDS_PER_CHUNK: u32 = 12;
/// Longest vault reference, in bytes.
pub const MAX_VAULT_REF: u32 = 128;
/// Most governance proposals open at once.
pub const MAX_OPEN_PROPOSALS: u32 = 16;
/// Most governance proposals one member may have open at once.
pub const MAX_OPEN_PROPOSALS_PER_MEMBER: u32 = 2;
/// Longest phase timeout or governance period, in blocks.
pub const MAX_PERIOD: u32 = 1_000_000;
/// Shortest voting period, in blocks: members must have time to see a proposal.
pub const MIN_VOTING_PERIOD: u32 = 3;
/// Blocks after a proposal's block whose VRF randomness draws its validators: the draw uses
/// the randomness of blocks `proposal + 1 ..= proposal + DRAW_DELAY`, none of which exists when
/// the proposal is signed (`rules::window_randomness`).
pub const DRAW_DELAY: u32 = 3;
/// Blocks back whose VRF randomness the runtime keeps for contracts (its `randomness` pallet).
pub const RANDOMNESS_HISTORY: u32 = 256;
/// The runtime's precompile that serves BABE's VRF randomness of past blocks:
/// `0x00000000000000000000000000000000BABE0000` (pallet-revive's fixed address of id `0xBABE`).
pub const RANDOMNESS_PRECOMPILE: [u8; 20] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBA, 0xBE, 0, 0];
/// The precompile's one function, `blockRandomness(uint32 number) returns (bool known, bytes32
/// randomness)`: its Solidity selector.
pub const RANDOMNESS_SELECTOR: [u8; 4] = [0xae, 0xe3, 0x60, 0xc6];
/// pallet-revive's largest storage value, in bytes: every stored type must fit.
pub const MAX_STORAGE_VALUE: usize = 416;
/// ink!'s buffer for a message's input (selector and arguments), in bytes.
pub const INPUT_BUFFER: usize = 16 * 1024;
/// The largest local test set a member may register, in samples.
pub const MAX_LOCAL_SET: u32 = 10_000_000;
/// The most faults a member's standing holds ([`Member::faults`]): its draw weight falls to at
/// most a quarter of its strength, and three rounds reported consistently restore it.
pub const MAX_FAULTS: u32 = 3;
/// Blocks after a round ends without a block, on top of its proposer's cooldown, during which
/// its data IDs and its candidate stay reserved for that proposer: another member (one of its
/// validators, who saw the candidate) cannot take them while the proposer waits.
pub const CLAIM_RESERVE: u32 = 100;

/// keccak-256 for this crate's tests (the `native` feature's may be off).
#[cfg(test)]
pub(crate) struct TestKeccak;

#[cfg(test)]
impl hashing::Keccak for TestKeccak {
    fn keccak256(input: &[u8]) -> [u8; 32] {
        sp_crypto_hashing::keccak_256(input)
    }
}

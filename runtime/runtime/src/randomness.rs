//! BABE's per-block VRF randomness, kept for a bounded window and read by contracts.
//!
//! The coalition contract seeds each round's draw from the VRF outputs of the blocks made after
//! the proposal (`coalition_types::rules::window_randomness`). BABE's runtime keeps only the last
//! block's output (`pallet_babe::AuthorVrfRandomness`), so this pallet records it for every block
//! that carries one and keeps the last [`RANDOMNESS_HISTORY`] of them; the precompile
//! [`BlockRandomness`] serves them to contracts at [`RANDOMNESS_PRECOMPILE`].
//!
//! Nothing here makes randomness: a block's output is BABE's `make_bytes` of its author's VRF
//! over `(epoch randomness, slot, epoch index)`, which pallet_babe computes and the client
//! verifies on import. What one party can still do with it is in the coalition's module doc.

use alloc::vec::Vec;
pub use coalition_types::{RANDOMNESS_HISTORY, RANDOMNESS_PRECOMPILE};
use core::{marker::PhantomData, num::NonZero};
pub use pallet::*;
use polkadot_sdk::{
    pallet_revive::precompiles::{
        alloy::{primitives::B256, sol_types::SolValue},
        AddressMatcher, Error, Ext, Precompile, Token,
    },
    *,
};

alloy_core::sol! {
    /// BABE's VRF randomness of past blocks, at `RANDOMNESS_PRECOMPILE`.
    interface IBlockRandomness {
        /// The VRF randomness of block `number`: `known` is false for the current block and later
        /// ones, for blocks older than `RANDOMNESS_HISTORY`, and for a block without a VRF output.
        function blockRandomness(uint32 number) external view returns (bool known, bytes32 randomness);
    }
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;
    use sp_consensus_babe::{digests::PreDigest, BABE_ENGINE_ID};
    use sp_runtime::{traits::Saturating, DigestItem};

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Needs BABE, whose `on_finalize` must run first (it comes before this pallet in the runtime).
    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config + pallet_babe::Config {}

    /// The VRF randomness of each of the last `RANDOMNESS_HISTORY` blocks that carried a VRF
    /// output, by block number.
    #[pallet::storage]
    pub type Outputs<T: Config> = StorageMap<_, Twox64Concat, BlockNumberFor<T>, [u8; 32], OptionQuery>;

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(_now: BlockNumberFor<T>) -> Weight {
            // `on_finalize`: two digest and BABE reads, one write, one removal.
            T::DbWeight::get().reads_writes(2, 2)
        }

        fn on_finalize(now: BlockNumberFor<T>) {
            if carries_vrf_output::<T>() {
                if let Some(randomness) = pallet_babe::AuthorVrfRandomness::<T>::get() {
                    Outputs::<T>::insert(now, randomness);
                }
            }
            let expired = now.saturating_sub(RANDOMNESS_HISTORY.into());
            if expired > Zero::zero() {
                Outputs::<T>::remove(expired);
            }
        }
    }

    /// Whether this block's BABE pre-digest carries a VRF output (primary and secondary-VRF
    /// slots do, secondary-plain ones do not): only then has BABE just set `AuthorVrfRandomness`
    /// to this block's output.
    fn carries_vrf_output<T: Config>() -> bool {
        frame_system::Pallet::<T>::digest().logs.iter().any(|item| match item {
            DigestItem::PreRuntime(engine, data) if *engine == BABE_ENGINE_ID => {
                PreDigest::decode(&mut &data[..]).map(|digest| digest.vrf_signature().is_some()).unwrap_or(false)
            }
            _ => false,
        })
    }

    impl<T: Config> Pallet<T> {
        /// The recorded randomness of block `number`, if it is a past block still in the window.
        pub fn randomness(number: BlockNumberFor<T>) -> Option<[u8; 32]> {
            let now = frame_system::Pallet::<T>::block_number();
            let in_window = number < now && now.saturating_sub(number) <= RANDOMNESS_HISTORY.into();
            in_window.then(|| Outputs::<T>::get(number)).flatten()
        }
    }
}

/// The weight of one lookup: a storage read.
#[derive(Clone, Copy)]
struct ReadRandomness;

impl<T: pallet_revive::Config> Token<T> for ReadRandomness {
    fn weight(&self) -> frame_support::weights::Weight {
        // A map read: ref time of a database read, proof size of one entry's key and value.
        use frame_support::traits::Get;
        <T as frame_system::Config>::DbWeight::get()
            .reads(1)
            .saturating_add(frame_support::weights::Weight::from_parts(0, RANDOMNESS_PROOF_BYTES))
    }
}

/// Proof size of one `Outputs` entry: a trie path of up to 16 nodes plus the key and value.
const RANDOMNESS_PROOF_BYTES: u64 = 16 * 32 + 48 + 32;

/// The precompile that serves [`Outputs`] to contracts (see [`IBlockRandomness`]).
pub struct BlockRandomness<T>(PhantomData<T>);

impl<T: Config + pallet_revive::Config> Precompile for BlockRandomness<T> {
    type T = T;
    type Interface = IBlockRandomness::IBlockRandomnessCalls;
    const MATCHER: AddressMatcher = AddressMatcher::Fixed(match NonZero::new(RANDOMNESS_PRECOMPILE_ID) {
        Some(id) => id,
        None => panic!("a precompile's id is not zero"),
    });
    const HAS_CONTRACT_INFO: bool = false;

    fn call(_address: &[u8; 20], input: &Self::Interface, env: &mut impl Ext<T = Self::T>) -> Result<Vec<u8>, Error> {
        let IBlockRandomness::IBlockRandomnessCalls::blockRandomness(call) = input;
        env.frame_meter_mut().charge_weight_token(ReadRandomness)?;
        let randomness = Pallet::<T>::randomness(call.number.into());
        Ok((randomness.is_some(), B256::from(randomness.unwrap_or_default())).abi_encode_params())
    }
}

/// The precompile's id: bytes 16 and 17 of [`RANDOMNESS_PRECOMPILE`], big endian.
pub const RANDOMNESS_PRECOMPILE_ID: u16 = u16::from_be_bytes([RANDOMNESS_PRECOMPILE[16], RANDOMNESS_PRECOMPILE[17]]);

//! The TCLearn runtime.
//!
//! A solochain runtime whose only application logic is `pallet-revive`: the coalition protocol
//! lives in ink! 6 contracts compiled to PolkaVM. Block production is BABE, finality GRANDPA; both
//! are reused as they are (the paper's federated agreement becomes contract vote tallies on top).
//! BABE, unlike round-robin Aura, puts a VRF output in every block: the [`randomness`] pallet keeps
//! the recent ones and a pallet-revive precompile serves them to the coalition contract, whose
//! draws they seed.
//!
//! Accounts are 32-byte `AccountId32`s, so members sign with the wallets they already have
//! (polkadot.js extension, Talisman, SubWallet). pallet-revive addresses contracts and callers by
//! 20-byte H160; an account gets its H160 through `AccountId32Mapper`, which needs a one-time
//! `Revive::map_account` call before the account can call a contract (the Rust client does it).
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

use alloc::{vec, vec::Vec};
use pallet_revive::{
    evm::{
        fees::{BlockRatioFee, Info as FeeInfo},
        runtime::EthExtra,
    },
    AccountId32Mapper,
};
use pallet_transaction_payment::{ConstFeeMultiplier, FeeDetails, Multiplier, RuntimeDispatchInfo};
use polkadot_sdk::{
    polkadot_sdk_frame::{
        deps::sp_genesis_builder,
        runtime::{apis, prelude::*},
        traits::Block as BlockT,
    },
    *,
};
use sp_consensus_babe::AuthorityId as BabeId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_runtime::traits::{IdentifyAccount, NumberFor, Verify};
use sp_weights::ConstantMultiplier;

pub mod genesis;
pub mod randomness;

/// A signature: sr25519, ed25519 or ecdsa, as wallets produce them.
pub type Signature = sp_runtime::MultiSignature;
/// An account: the 32-byte public key (or its hash) behind a [`Signature`].
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balance of an account, in the chain's smallest unit (see [`currency`]).
pub type Balance = u128;
/// Transaction index of an account.
pub type Nonce = u32;
/// Block height.
pub type BlockNumber = u32;
/// Block and state hash.
pub type Hash = sp_core::H256;
/// Block header.
pub type Header = sp_runtime::generic::Header<BlockNumber, sp_runtime::traits::BlakeTwo256>;
/// The address format of extrinsics.
pub type Address = sp_runtime::MultiAddress<AccountId, ()>;

/// Denominations of the native token (12 decimals).
pub mod currency {
    use super::Balance;
    /// One whole token.
    pub const UNIT: Balance = 1_000_000_000_000;
    /// A hundredth of a token.
    pub const CENTS: Balance = UNIT / 100;
    /// A thousandth of a cent.
    pub const MILLICENTS: Balance = CENTS / 1_000;
}

/// Target block time in milliseconds: the BABE slot duration.
///
/// With `--sealing` the dev node seals on its own schedule instead, but every block still
/// advances the on-chain clock by exactly one slot.
pub const MILLISECS_PER_BLOCK: u64 = 3_000;
/// BABE slot duration; equal to the block time.
pub const SLOT_DURATION: u64 = MILLISECS_PER_BLOCK;
/// Slots per BABE epoch (10 minutes). The validators never change (`SameAuthoritiesForever`);
/// an epoch is only the period after which BABE's epoch randomness, an input of every block's
/// VRF, is renewed from the last epoch's outputs.
pub const EPOCH_DURATION_IN_SLOTS: u64 = 200;
/// BABE's epoch configuration: a slot has a primary author with probability 1/4 per authority,
/// and every slot without one has a secondary author that also signs a VRF output (no
/// secondary-plain slots), so that every block carries randomness.
pub const BABE_GENESIS_EPOCH_CONFIG: sp_consensus_babe::BabeEpochConfiguration =
    sp_consensus_babe::BabeEpochConfiguration {
        c: (1, 4),
        allowed_slots: sp_consensus_babe::AllowedSlots::PrimaryAndSecondaryVRFSlots,
    };

/// Opaque types for the node, which does not know the runtime's call type.
pub mod opaque {
    use super::*;
    /// Opaque block as the node sees it.
    pub type Block = sp_runtime::generic::Block<Header, sp_runtime::OpaqueExtrinsic>;

    sp_runtime::impl_opaque_keys! {
        /// The session keys of a validator: one for block production, one for finality.
        pub struct SessionKeys {
            /// BABE: block authoring, and the VRF output every block carries.
            pub babe: Babe,
            /// GRANDPA: finality voting.
            pub grandpa: Grandpa,
        }
    }
}

/// The runtime version.
#[runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("tclearn"),
    impl_name: alloc::borrow::Cow::Borrowed("tclearn"),
    authoring_version: 1,
    spec_version: 100,
    impl_version: 1,
    apis: RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

/// Block type of the runtime.
pub type Block = sp_runtime::generic::Block<Header, UncheckedExtrinsic>;

/// The transaction extensions, in the order they run.
pub type TxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
    // After every extension that relies on a signed origin: turns Ethereum transactions'
    // origins into revive's.
    pallet_revive::evm::tx_extension::SetOrigin<Runtime>,
    // Last, so that it sees every refund made before it.
    frame_system::WeightReclaim<Runtime>,
);

/// The extensions that pallet-revive puts on transactions that arrive through its Ethereum RPC.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EthExtraImpl;

impl EthExtra for EthExtraImpl {
    type Config = Runtime;
    type ExtensionV0 = TxExtension;
    // Only version-0 extensions: the runtime defines no other extension versions.
    type ExtensionOtherVersions = sp_runtime::traits::InvalidVersion;

    fn get_eth_extension(nonce: u32, tip: Balance) -> Self::ExtensionV0 {
        (
            frame_system::CheckNonZeroSender::<Runtime>::new(),
            frame_system::CheckSpecVersion::<Runtime>::new(),
            frame_system::CheckTxVersion::<Runtime>::new(),
            frame_system::CheckGenesis::<Runtime>::new(),
            frame_system::CheckMortality::from(sp_runtime::generic::Era::Immortal),
            frame_system::CheckNonce::<Runtime>::from(nonce),
            frame_system::CheckWeight::<Runtime>::new(),
            pallet_transaction_payment::ChargeTransactionPayment::<Runtime>::from(tip),
            pallet_revive::evm::tx_extension::SetOrigin::<Runtime>::new_from_eth_transaction(),
            frame_system::WeightReclaim::<Runtime>::new(),
        )
    }
}

/// Extrinsic type: Substrate-signed or Ethereum-signed.
pub type UncheckedExtrinsic = pallet_revive::evm::runtime::UncheckedExtrinsic<Address, Signature, EthExtraImpl>;

/// Block execution: the pallets' hooks and the extrinsics, in order.
pub type Executive =
    frame_executive::Executive<Runtime, Block, frame_system::ChainContext<Runtime>, Runtime, AllPalletsWithSystem>;

#[frame_construct_runtime]
mod runtime {
    /// The runtime.
    #[runtime::runtime]
    #[runtime::derive(
        RuntimeCall,
        RuntimeEvent,
        RuntimeError,
        RuntimeOrigin,
        RuntimeFreezeReason,
        RuntimeHoldReason,
        RuntimeSlashReason,
        RuntimeLockId,
        RuntimeTask,
        RuntimeViewFunction
    )]
    pub struct Runtime;

    /// Accounts, blocks, events.
    #[runtime::pallet_index(0)]
    pub type System = frame_system::Pallet<Runtime>;

    /// The on-chain clock, set by the block author's inherent.
    #[runtime::pallet_index(1)]
    pub type Timestamp = pallet_timestamp::Pallet<Runtime>;

    /// Block production: slots won by VRF among the validators, each block with a VRF output.
    #[runtime::pallet_index(2)]
    pub type Babe = pallet_babe::Pallet<Runtime>;

    /// Finality.
    #[runtime::pallet_index(3)]
    pub type Grandpa = pallet_grandpa::Pallet<Runtime>;

    /// Native token balances, holds for storage deposits.
    #[runtime::pallet_index(4)]
    pub type Balances = pallet_balances::Pallet<Runtime>;

    /// Transaction fees.
    #[runtime::pallet_index(5)]
    pub type TransactionPayment = pallet_transaction_payment::Pallet<Runtime>;

    /// A superuser for the dev and local chains.
    #[runtime::pallet_index(6)]
    pub type Sudo = pallet_sudo::Pallet<Runtime>;

    /// PolkaVM smart contracts (ink! 6).
    #[runtime::pallet_index(7)]
    pub type Revive = pallet_revive::Pallet<Runtime>;

    /// The last blocks' BABE VRF randomness, for contracts (after BABE: its `on_finalize` reads
    /// what BABE's just wrote).
    #[runtime::pallet_index(8)]
    pub type Randomness = randomness::Pallet<Runtime>;
}

/// About 10% of the block weight goes to `on_initialize` handlers.
const AVERAGE_ON_INITIALIZE_RATIO: Perbill = Perbill::from_percent(10);
/// Normal extrinsics may fill 75% of a block; the rest is kept for operational ones.
const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
/// Two seconds of compute per block, with unlimited proof size (a solochain has no PoV limit).
const MAXIMUM_BLOCK_WEIGHT: Weight =
    Weight::from_parts(frame_support::weights::constants::WEIGHT_REF_TIME_PER_SECOND.saturating_mul(2), u64::MAX);

/// Five MiB per block: room for a contract upload (up to 1 MiB of code plus call data).
const MAXIMUM_BLOCK_LENGTH: u32 = 5 * 1024 * 1024;

parameter_types! {
    pub const Version: RuntimeVersion = VERSION;
    pub RuntimeBlockWeights: frame_system::limits::BlockWeights =
        frame_system::limits::BlockWeights::builder()
            .base_block(frame_support::weights::constants::BlockExecutionWeight::get())
            .for_class(DispatchClass::all(), |weights| {
                weights.base_extrinsic = frame_support::weights::constants::ExtrinsicBaseWeight::get();
            })
            .for_class(DispatchClass::Normal, |weights| {
                weights.max_total = Some(NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
            })
            .for_class(DispatchClass::Operational, |weights| {
                weights.max_total = Some(MAXIMUM_BLOCK_WEIGHT);
                weights.reserved =
                    Some(MAXIMUM_BLOCK_WEIGHT - NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_WEIGHT);
            })
            .avg_block_initialization(AVERAGE_ON_INITIALIZE_RATIO)
            .build_or_panic();
    pub RuntimeBlockLength: frame_system::limits::BlockLength =
        frame_system::limits::BlockLength::builder()
            .max_length(MAXIMUM_BLOCK_LENGTH)
            .modify_max_length_for_class(DispatchClass::Normal, |max| {
                *max = NORMAL_DISPATCH_RATIO * MAXIMUM_BLOCK_LENGTH
            })
            .build();
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type Version = Version;
    type AccountId = AccountId;
    type Hash = Hash;
    type Nonce = Nonce;
    type AccountData = pallet_balances::AccountData<Balance>;
}

impl pallet_babe::Config for Runtime {
    type EpochDuration = ConstU64<EPOCH_DURATION_IN_SLOTS>;
    type ExpectedBlockTime = ConstU64<MILLISECS_PER_BLOCK>;
    // The genesis validators for ever: no session pallet, no staking.
    type EpochChangeTrigger = pallet_babe::SameAuthoritiesForever;
    type DisabledValidators = ();
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<32>;
    type MaxNominators = ConstU32<0>;
    // No equivocation reports: nothing to slash without staking.
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

impl randomness::Config for Runtime {}

impl pallet_grandpa::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<32>;
    type MaxNominators = ConstU32<0>;
    type MaxSetIdSessionEntries = ConstU64<0>;
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

#[derive_impl(pallet_timestamp::config_preludes::TestDefaultConfig)]
impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = Babe;
    type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
}

parameter_types! {
    pub const ExistentialDeposit: Balance = currency::CENTS;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Runtime {
    type AccountStore = System;
    type Balance = Balance;
    type ExistentialDeposit = ExistentialDeposit;
    // One freeze per reason the runtime has (pallet-revive's).
    type MaxFreezes = frame_support::traits::VariantCountOf<RuntimeFreezeReason>;
}

parameter_types! {
    pub const TransactionByteFee: Balance = 10 * currency::MILLICENTS;
    pub FeeMultiplier: Multiplier = Multiplier::one();
}

#[derive_impl(pallet_transaction_payment::config_preludes::TestDefaultConfig)]
impl pallet_transaction_payment::Config for Runtime {
    type OnChargeTransaction = pallet_transaction_payment::FungibleAdapter<Balances, ()>;
    type WeightToFee = BlockRatioFee<1, 1, Self, Balance>;
    type LengthToFee = ConstantMultiplier<Balance, TransactionByteFee>;
    type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
}

#[derive_impl(pallet_sudo::config_preludes::TestDefaultConfig)]
impl pallet_sudo::Config for Runtime {}

parameter_types! {
    pub CodeHashLockupDepositPercent: Perbill = Perbill::from_percent(30);
}

#[derive_impl(pallet_revive::config_preludes::TestDefaultConfig)]
impl pallet_revive::Config for Runtime {
    type AddressMapper = AccountId32Mapper<Self>;
    type ChainId = ConstU64<420_420_421>;
    type CodeHashLockupDepositPercent = CodeHashLockupDepositPercent;
    type Balance = Balance;
    type Currency = Balances;
    type NativeToEthRatio = ConstU32<1_000_000>;
    type UploadOrigin = EnsureSigned<Self::AccountId>;
    type InstantiateOrigin = EnsureSigned<Self::AccountId>;
    type Time = Timestamp;
    type FeeInfo = FeeInfo<Address, Signature, EthExtraImpl>;
    // No debug settings (unlimited code size, PVM logs, ...), even for root.
    type DebugEnabled = ConstBool<false>;
    type GasScale = ConstU32<50000>;
    // BABE's per-block VRF randomness, for the coalition's draws.
    type Precompiles = (randomness::BlockRandomness<Self>,);
}

pallet_revive::impl_runtime_apis_plus_revive_traits!(
    Runtime,
    Revive,
    Executive,
    EthExtraImpl,

    impl apis::Core<Block> for Runtime {
        fn version() -> RuntimeVersion {
            VERSION
        }

        fn execute_block(block: <Block as BlockT>::LazyBlock) {
            Executive::execute_block(block)
        }

        fn initialize_block(header: &Header) -> ExtrinsicInclusionMode {
            Executive::initialize_block(header)
        }
    }

    impl apis::Metadata<Block> for Runtime {
        fn metadata() -> OpaqueMetadata {
            OpaqueMetadata::new(Runtime::metadata().into())
        }

        fn metadata_at_version(version: u32) -> Option<OpaqueMetadata> {
            Runtime::metadata_at_version(version)
        }

        fn metadata_versions() -> Vec<u32> {
            Runtime::metadata_versions()
        }
    }

    impl apis::BlockBuilder<Block> for Runtime {
        fn apply_extrinsic(extrinsic: ExtrinsicFor<Runtime>) -> ApplyExtrinsicResult {
            Executive::apply_extrinsic(extrinsic)
        }

        fn finalize_block() -> HeaderFor<Runtime> {
            Executive::finalize_block()
        }

        fn inherent_extrinsics(data: InherentData) -> Vec<ExtrinsicFor<Runtime>> {
            data.create_extrinsics()
        }

        fn check_inherents(
            block: <Block as BlockT>::LazyBlock,
            data: InherentData,
        ) -> CheckInherentsResult {
            data.check_extrinsics(&block)
        }
    }

    impl apis::TaggedTransactionQueue<Block> for Runtime {
        fn validate_transaction(
            source: TransactionSource,
            tx: ExtrinsicFor<Runtime>,
            block_hash: <Runtime as frame_system::Config>::Hash,
        ) -> TransactionValidity {
            Executive::validate_transaction(source, tx, block_hash)
        }
    }

    impl apis::OffchainWorkerApi<Block> for Runtime {
        fn offchain_worker(header: &HeaderFor<Runtime>) {
            Executive::offchain_worker(header)
        }
    }

    impl sp_consensus_babe::BabeApi<Block> for Runtime {
        fn configuration() -> sp_consensus_babe::BabeConfiguration {
            let epoch_config = Babe::epoch_config().unwrap_or(BABE_GENESIS_EPOCH_CONFIG);
            sp_consensus_babe::BabeConfiguration {
                slot_duration: Babe::slot_duration(),
                epoch_length: EPOCH_DURATION_IN_SLOTS,
                c: epoch_config.c,
                authorities: Babe::authorities().to_vec(),
                randomness: Babe::randomness(),
                allowed_slots: epoch_config.allowed_slots,
            }
        }

        fn current_epoch_start() -> sp_consensus_babe::Slot {
            Babe::current_epoch_start()
        }

        fn current_epoch() -> sp_consensus_babe::Epoch {
            Babe::current_epoch()
        }

        fn next_epoch() -> sp_consensus_babe::Epoch {
            Babe::next_epoch()
        }

        fn generate_key_ownership_proof(
            _slot: sp_consensus_babe::Slot,
            _authority_id: BabeId,
        ) -> Option<sp_consensus_babe::OpaqueKeyOwnershipProof> {
            // No session pallet: validators are fixed at genesis, there is nothing to slash.
            None
        }

        fn submit_report_equivocation_unsigned_extrinsic(
            _equivocation_proof: sp_consensus_babe::EquivocationProof<HeaderFor<Runtime>>,
            _key_owner_proof: sp_consensus_babe::OpaqueKeyOwnershipProof,
        ) -> Option<()> {
            None
        }
    }

    impl apis::GrandpaApi<Block> for Runtime {
        fn grandpa_authorities() -> sp_consensus_grandpa::AuthorityList {
            Grandpa::grandpa_authorities()
        }

        fn current_set_id() -> sp_consensus_grandpa::SetId {
            Grandpa::current_set_id()
        }

        fn submit_report_equivocation_unsigned_extrinsic(
            _equivocation_proof: sp_consensus_grandpa::EquivocationProof<Hash, NumberFor<Block>>,
            _key_owner_proof: sp_consensus_grandpa::OpaqueKeyOwnershipProof,
        ) -> Option<()> {
            // No session pallet: validators are fixed at genesis, there is nothing to slash.
            None
        }

        fn generate_key_ownership_proof(
            _set_id: sp_consensus_grandpa::SetId,
            _authority_id: GrandpaId,
        ) -> Option<sp_consensus_grandpa::OpaqueKeyOwnershipProof> {
            None
        }
    }

    impl apis::SessionKeys<Block> for Runtime {
        fn generate_session_keys(
            owner: Vec<u8>,
            seed: Option<Vec<u8>>,
        ) -> sp_session::OpaqueGeneratedSessionKeys {
            opaque::SessionKeys::generate(&owner, seed).into()
        }

        fn decode_session_keys(encoded: Vec<u8>) -> Option<Vec<(Vec<u8>, apis::KeyTypeId)>> {
            opaque::SessionKeys::decode_into_raw_public_keys(&encoded)
        }
    }

    impl apis::AccountNonceApi<Block, AccountId, Nonce> for Runtime {
        fn account_nonce(account: AccountId) -> Nonce {
            System::account_nonce(account)
        }
    }

    impl pallet_transaction_payment_rpc_runtime_api::TransactionPaymentApi<Block, Balance>
        for Runtime
    {
        fn query_info(uxt: ExtrinsicFor<Runtime>, len: u32) -> RuntimeDispatchInfo<Balance> {
            TransactionPayment::query_info(uxt, len)
        }
        fn query_fee_details(uxt: ExtrinsicFor<Runtime>, len: u32) -> FeeDetails<Balance> {
            TransactionPayment::query_fee_details(uxt, len)
        }
        fn query_weight_to_fee(weight: Weight) -> Balance {
            TransactionPayment::weight_to_fee(weight)
        }
        fn query_length_to_fee(length: u32) -> Balance {
            TransactionPayment::length_to_fee(length)
        }
    }

    impl apis::GenesisBuilder<Block> for Runtime {
        fn build_state(config: Vec<u8>) -> sp_genesis_builder::Result {
            build_state::<RuntimeGenesisConfig>(config)
        }

        fn get_preset(id: &Option<PresetId>) -> Option<Vec<u8>> {
            get_preset::<RuntimeGenesisConfig>(id, genesis::get_preset)
        }

        fn preset_names() -> Vec<PresetId> {
            genesis::preset_names()
        }
    }
);

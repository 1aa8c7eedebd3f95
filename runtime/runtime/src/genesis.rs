//! Genesis presets: `development` (one validator, Alice) and `local_testnet` (four validators:
//! Alice, Bob, Charlie, Dave). Both prefund the twelve well-known dev accounts and make Alice sudo.

use crate::{
    currency::UNIT, AccountId, BabeConfig, Balance, BalancesConfig, GrandpaConfig, RuntimeGenesisConfig, SudoConfig,
    BABE_GENESIS_EPOCH_CONFIG,
};
use alloc::{vec, vec::Vec};
use polkadot_sdk::{
    polkadot_sdk_frame::{deps::sp_genesis_builder, runtime::prelude::*},
    sp_consensus_babe::AuthorityId as BabeId,
    sp_consensus_grandpa::AuthorityId as GrandpaId,
    sp_keyring::{Ed25519Keyring, Sr25519Keyring},
    *,
};
use serde_json::Value;

/// Balance of each prefunded dev account.
pub const ENDOWMENT: Balance = 1_000_000_000 * UNIT;

/// Name of the four-validator preset (the `local` chain).
pub const LOCAL_TESTNET_PRESET: &str = sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET;
/// Name of the one-validator preset (the `dev` chain).
pub const DEVELOPMENT_PRESET: &str = sp_genesis_builder::DEV_RUNTIME_PRESET;

/// The BABE (sr25519) and GRANDPA (ed25519) keys of a well-known dev validator.
fn authority(who: Sr25519Keyring, grandpa: Ed25519Keyring) -> (BabeId, GrandpaId) {
    (who.public().into(), grandpa.public().into())
}

fn genesis(authorities: Vec<(BabeId, GrandpaId)>) -> Value {
    let endowed: Vec<(AccountId, Balance)> = Sr25519Keyring::iter().map(|k| (k.to_account_id(), ENDOWMENT)).collect();
    frame_support::build_struct_json_patch!(RuntimeGenesisConfig {
        balances: BalancesConfig { balances: endowed },
        babe: BabeConfig {
            authorities: authorities.iter().map(|(b, _)| (b.clone(), 1)).collect(),
            epoch_config: BABE_GENESIS_EPOCH_CONFIG,
        },
        grandpa: GrandpaConfig { authorities: authorities.iter().map(|(_, g)| (g.clone(), 1)).collect() },
        sudo: SudoConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
    })
}

/// The genesis patch of a preset, as JSON bytes.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
    let patch = match id.as_ref() {
        DEVELOPMENT_PRESET => genesis(vec![authority(Sr25519Keyring::Alice, Ed25519Keyring::Alice)]),
        LOCAL_TESTNET_PRESET => genesis(vec![
            authority(Sr25519Keyring::Alice, Ed25519Keyring::Alice),
            authority(Sr25519Keyring::Bob, Ed25519Keyring::Bob),
            authority(Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
            authority(Sr25519Keyring::Dave, Ed25519Keyring::Dave),
        ]),
        _ => return None,
    };
    serde_json::to_vec(&patch).ok()
}

/// The presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
    vec![PresetId::from(DEVELOPMENT_PRESET), PresetId::from(LOCAL_TESTNET_PRESET)]
}

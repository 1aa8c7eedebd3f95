//! The chain specifications built into the node: `dev` (one validator) and `local` (four).

use polkadot_sdk::{sc_service::ChainType, sp_genesis_builder};
use tclearn_runtime::WASM_BINARY;

/// The chain specification type of this node: no client extensions.
pub type ChainSpec = polkadot_sdk::sc_service::GenericChainSpec;

fn properties() -> polkadot_sdk::sc_chain_spec::Properties {
    let mut properties = polkadot_sdk::sc_chain_spec::Properties::new();
    properties.insert("tokenSymbol".into(), "TCL".into());
    properties.insert("tokenDecimals".into(), 12.into());
    properties.insert("ss58Format".into(), 42.into());
    properties
}

fn wasm() -> Result<&'static [u8], String> {
    WASM_BINARY.ok_or_else(|| "the runtime's wasm binary was not built".to_string())
}

/// One validator (Alice), prefunded dev accounts.
pub fn development() -> Result<ChainSpec, String> {
    Ok(ChainSpec::builder(wasm()?, None)
        .with_name("TCLearn Development")
        .with_id("tclearn_dev")
        .with_chain_type(ChainType::Development)
        .with_genesis_config_preset_name(sp_genesis_builder::DEV_RUNTIME_PRESET)
        .with_properties(properties())
        .build())
}

/// Four validators (Alice, Bob, Charlie, Dave) for a network of four nodes on one machine.
pub fn local_testnet() -> Result<ChainSpec, String> {
    Ok(ChainSpec::builder(wasm()?, None)
        .with_name("TCLearn Local Testnet")
        .with_id("tclearn_local")
        .with_chain_type(ChainType::Local)
        .with_genesis_config_preset_name(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET)
        .with_properties(properties())
        .build())
}

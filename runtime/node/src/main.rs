//! `tclearn-node`: the TCLearn chain's node.

// The node's functions return polkadot-sdk's own errors (`sc_cli::Error`, `sc_service::Error`),
// as its CLI and service builders expect; their size is theirs to choose.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod rpc;
mod service;

fn main() -> polkadot_sdk::sc_cli::Result<()> {
    command::run()
}

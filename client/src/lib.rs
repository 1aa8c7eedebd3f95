//! # tclearn-client
//!
//! The one way TCLearn's Rust programs (oracle, API, CLI, tests) talk to ink! contracts on our
//! node. Every state change goes the same way:
//!
//! 1. **dry run** through the `ReviveApi` runtime API, which reports the weight and storage
//!    deposit the call needs, what it returns, and whether it reverts; a reverting call or a
//!    module error stops here, before anything is signed;
//! 2. **submit** `Revive::call` / `Revive::instantiate_with_code` with those limits plus a
//!    margin ([`DEFAULT_LIMIT_MARGIN_PERCENT`]: a path that depends on the block may cost a little
//!    more in its real block), signed by an sr25519 key (sp-core);
//! 3. **wait** for the best or the finalized block ([`WaitFor`]), then decode the transaction's
//!    outcome: module errors by name ([`Error::Module`]), contract events
//!    ([`ContractEvent`], from `Revive::ContractEmitted`).
//!
//! pallet-revive knows callers by H160; a fresh `AccountId32` needs a one-time
//! `Revive::map_account`, which [`Client::call`] and [`Client::deploy`] submit when needed.
//!
//! Selectors and event topics come from cargo-contract's metadata ([`ContractMetadata`]), never
//! from constants copied by hand.
//!
//! ```no_run
//! # async fn demo() -> tclearn_client::Result<()> {
//! use tclearn_client::{Client, ContractArtifact, Keypair};
//! let client = Client::connect("ws://127.0.0.1:9944").await?;
//! let alice = Keypair::dev("Alice")?;
//! let anchors = ContractArtifact::load("audit_anchors.contract".as_ref())?;
//! let new = anchors.metadata.constructor("new")?.call();
//! let deployed = client.deploy(&alice, &anchors.code, new, 0, None).await?;
//! let count = anchors.metadata.message("count")?.call();
//! let n: u64 = client.read(&alice.account_id(), deployed.address, count).await?;
//! assert_eq!(n, 0);
//! # Ok(()) }
//! ```

pub mod anchors;
pub mod args;
mod client;
pub mod coalition;
mod contract;
mod error;
mod keys;
pub mod parse;

pub use client::{
    CallOutcome, Client, ContractEvent, Deployment, DryRun, Included, StorageDeposit, WaitFor, Weight,
    DEFAULT_LIMIT_MARGIN_PERCENT,
};
pub use contract::{decode_return, CallData, ContractArtifact, ContractMetadata, LangError, Selector};
pub use error::{Error, Result};
pub use keys::{account_to_address, is_eth_derived, verify, Keypair, Secret};
pub use subxt::utils::{AccountId32, H160, H256};

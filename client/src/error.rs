//! What can go wrong talking to a contract, said so that a caller can act on it.

use crate::H160;

/// Errors of the contract client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node could not be reached or answered with an RPC error.
    #[error("node RPC: {0}")]
    Rpc(String),
    /// A runtime module refused the call, e.g. `Revive::ContractNotFound`.
    #[error("{pallet}::{error} ({docs})")]
    Module {
        /// Pallet name.
        pallet: String,
        /// Error variant name.
        error: String,
        /// The error's documentation, first line.
        docs: String,
    },
    /// The dispatch failed for a reason other than a module error (bad origin, tokens...).
    #[error("dispatch failed: {0}")]
    Dispatch(String),
    /// The contract ran and reverted; `data` is its SCALE-encoded revert value.
    #[error("contract {contract:?} reverted with 0x{}", hex::encode(data))]
    Reverted {
        /// The contract that reverted.
        contract: Option<H160>,
        /// What it returned.
        data: Vec<u8>,
    },
    /// ink! refused to dispatch the message: unknown selector, or it could not decode the input.
    #[error("ink! language error: {0}")]
    Lang(String),
    /// The transaction pool or a block refused the transaction.
    #[error("transaction: {0}")]
    Transaction(String),
    /// A submitted transaction did not reach the block waited for in time; it may still be
    /// included later.
    #[error("timeout: {0}")]
    Timeout(String),
    /// A value could not be decoded as the type expected.
    #[error("decoding {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The contract metadata (cargo-contract JSON) is missing something or is malformed.
    #[error("contract metadata: {0}")]
    Metadata(String),
    /// A secret key could not be read.
    #[error("key: {0}")]
    Key(String),
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// The contract's own error, if this is a revert of a message returning `Result<T, E>`: its
    /// revert data is the message's `Ok(Err(error))`.
    pub fn contract_error<E: codec::Decode>(&self) -> Option<E> {
        match self {
            Error::Reverted { data, .. } => match data.as_slice() {
                [0, 1, rest @ ..] => E::decode(&mut &rest[..]).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn rpc(error: impl std::fmt::Display) -> Self {
        Self::Rpc(error.to_string())
    }

    pub(crate) fn decode(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Decode { what, reason: reason.to_string() }
    }

    /// Turn subxt's decoded dispatch error into ours, keeping module errors by name.
    pub(crate) fn from_dispatch(error: subxt::error::DispatchError) -> Self {
        match error {
            subxt::error::DispatchError::Module(module) => match module.details() {
                Ok(details) => Self::Module {
                    pallet: details.pallet.name().to_string(),
                    error: details.variant.name.clone(),
                    docs: details.variant.docs.first().cloned().unwrap_or_default(),
                },
                Err(e) => Self::Dispatch(format!("module error with unknown name: {e}")),
            },
            other => Self::Dispatch(other.to_string()),
        }
    }
}

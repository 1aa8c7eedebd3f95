//! The audit-anchors contract from Rust: the roots of the vault's audit log, anchored on chain.
//!
//! The types mirror `contracts/audit-anchors` (which cannot be a dependency: ink! and the node's
//! tree do not resolve together); an end-to-end test decodes what the built contract returns.

use crate::{
    client::{CallOutcome, Client},
    contract::{ContractArtifact, ContractMetadata},
    keys::Keypair,
    AccountId32, Error, H160, H256,
};
use codec::Decode;

/// One anchored root (`audit_anchors::Anchor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Decode)]
pub struct Anchor {
    /// Root over log entries `0..log_length`.
    pub root: H256,
    /// Number of log entries the root covers.
    pub log_length: u64,
    /// Block in which the root was anchored.
    pub block: u32,
    /// Timestamp (ms) of that block.
    pub timestamp: u64,
}

/// The `Anchored` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Decode)]
pub struct Anchored {
    /// Index of the new anchor.
    pub index: u64,
    /// The anchored root.
    pub root: H256,
    /// Number of log entries it covers.
    pub log_length: u64,
}

/// The contract's own errors (`audit_anchors::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Decode)]
pub enum AnchorError {
    /// The caller is not the operator.
    NotOperator,
    /// The log did not grow since the latest anchor.
    LogNotGrown,
    /// No more anchors can be counted.
    TooManyAnchors,
}

/// Why an anchors call failed.
#[derive(Debug, thiserror::Error)]
pub enum AnchorsCallError {
    /// The contract refused.
    #[error("audit anchors refused: {0:?}")]
    Contract(AnchorError),
    /// Anything else: node, runtime, decoding.
    #[error(transparent)]
    Client(#[from] Error),
}

/// A deployed audit-anchors contract.
#[derive(Clone)]
pub struct AuditAnchors {
    client: Client,
    /// Its address.
    pub address: H160,
    metadata: ContractMetadata,
}

impl AuditAnchors {
    /// Deploy one; `operator` becomes its operator.
    pub async fn deploy(client: &Client, operator: &Keypair, artifact: &ContractArtifact) -> Result<Self, Error> {
        let deployment =
            client.deploy(operator, &artifact.code, artifact.metadata.constructor("new")?.call(), 0, None).await?;
        Ok(Self::at(client.clone(), deployment.address, artifact.metadata.clone()))
    }

    /// The contract at `address`.
    pub fn at(client: Client, address: H160, metadata: ContractMetadata) -> Self {
        Self { client, address, metadata }
    }

    /// Its metadata.
    pub fn metadata(&self) -> &ContractMetadata {
        &self.metadata
    }

    /// `anchor(root, log_length)`: the new anchor's index.
    pub async fn anchor(
        &self,
        operator: &Keypair,
        root: H256,
        log_length: u64,
    ) -> Result<(u64, CallOutcome), AnchorsCallError> {
        let data = self.metadata.message("anchor")?.call().arg(&root).arg(&log_length);
        let outcome = self.client.call(operator, self.address, data, 0).await.map_err(|error| {
            error.contract_error::<AnchorError>().map_or(AnchorsCallError::Client(error), AnchorsCallError::Contract)
        })?;
        let index = outcome.decode::<Result<u64, AnchorError>>()?.map_err(AnchorsCallError::Contract)?;
        Ok((index, outcome))
    }

    /// The operator: the account that anchors, and signs the log's receipts.
    pub async fn operator(&self, origin: &AccountId32) -> Result<H160, Error> {
        self.client.read(origin, self.address, self.metadata.message("operator")?.call()).await
    }

    /// How many anchors there are.
    pub async fn count(&self, origin: &AccountId32) -> Result<u64, Error> {
        self.client.read(origin, self.address, self.metadata.message("count")?.call()).await
    }

    /// Anchor `index`.
    pub async fn get(&self, origin: &AccountId32, index: u64) -> Result<Option<Anchor>, Error> {
        self.client.read(origin, self.address, self.metadata.message("get")?.call().arg(&index)).await
    }

    /// The latest anchor and its index.
    pub async fn latest(&self, origin: &AccountId32) -> Result<Option<(u64, Anchor)>, Error> {
        self.client.read(origin, self.address, self.metadata.message("latest")?.call()).await
    }

    /// Every anchor, oldest first.
    pub async fn all(&self, origin: &AccountId32) -> Result<Vec<Anchor>, Error> {
        let count = self.count(origin).await?;
        let mut anchors = Vec::with_capacity(count.min(1 << 16) as usize);
        for index in 0..count {
            if let Some(anchor) = self.get(origin, index).await? {
                anchors.push(anchor);
            }
        }
        Ok(anchors)
    }
}

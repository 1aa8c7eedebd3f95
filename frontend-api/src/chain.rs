//! The coalition as the API reads it: members, blocks, rounds, and who may read which object.
//!
//! Every read is a dry run through `tclearn-client` as the API's own account. The access rule
//! ([`may_read`]) is a pure function of what the chain says about an object.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};
use tclearn_client::{
    anchors::AuditAnchors,
    coalition::{CallError, Coalition, Member, Round},
    AccountId32, Client, ContractMetadata, Keypair, H160, H256,
};

/// Most rounds searched backwards for the one an object was proposed in.
pub const ROUND_SEARCH_DEPTH: u64 = 256;

/// Why reading the chain failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node or the contract call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The client failed.
    #[error(transparent)]
    Client(#[from] tclearn_client::Error),
}

/// What the chain says about an object of the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The parameters of model block `index`.
    Block(u32),
    /// The candidate of round `id`, proposed by `proposer`, with the validators drawn so far.
    Candidate {
        /// The round.
        round: u64,
        /// Who proposed it.
        proposer: H160,
        /// Its validators (empty until drawn).
        validators: Vec<H160>,
    },
    /// Neither: an upload no round names (yet).
    Unknown,
}

/// Who may read an object (members only):
/// - a block's model: every member;
/// - a round's candidate, accepted or not: the members who uploaded it, and the round's
///   validators when its proposer is one of them. A proposal of someone else's upload (its hash
///   is public in the audit log) opens it to no one: its proposer does not read it, and its
///   validators cannot evaluate it, so the round gives the proposer nothing;
/// - an object no round names: the members who uploaded it.
///
/// Uploading bytes proves holding them, so an uploader gains nothing by reading them back.
pub fn may_read(reader: &H160, is_member: bool, standing: &Standing, uploaders: &[H160]) -> bool {
    if !is_member {
        return false;
    }
    match standing {
        Standing::Block(_) => true,
        Standing::Candidate { proposer, validators, .. } => {
            uploaders.contains(reader) || (uploaders.contains(proposer) && validators.contains(reader))
        }
        Standing::Unknown => uploaders.contains(reader),
    }
}

/// The coalition, read as the API's account, over one connection to the node.
pub struct Chain {
    /// The coalition contract.
    pub coalition: Coalition,
    /// The API's own account: the origin of every read, and the anchors' operator.
    pub operator: Keypair,
    /// The audit-anchors contract, once known.
    pub anchors: Option<AuditAnchors>,
    /// Rounds known to exist: `0..known_rounds`.
    known_rounds: AtomicU64,
    /// The members as of a best block: every request asks who is a member, and a contract read
    /// costs tens of milliseconds on the node, so one read per block serves them all.
    members_at: tokio::sync::Mutex<Option<(H256, std::sync::Arc<Vec<Member>>)>>,
    /// Where and how to connect again.
    rpc: String,
    submit_timeout: Duration,
    coalition_metadata: ContractMetadata,
}

impl Chain {
    /// The coalition at `coalition` on the node at `rpc`, read as `operator`.
    pub async fn connect(
        rpc: &str,
        submit_timeout: Duration,
        operator: Keypair,
        coalition: H160,
        coalition_metadata: ContractMetadata,
    ) -> Result<Self, ChainError> {
        let client = Client::connect(rpc).await?.with_submit_timeout(submit_timeout);
        client.ensure_mapped(&operator).await?;
        Ok(Self {
            coalition: Coalition::at(client, coalition, coalition_metadata.clone()),
            operator,
            anchors: None,
            known_rounds: AtomicU64::new(0),
            members_at: tokio::sync::Mutex::new(None),
            rpc: rpc.to_string(),
            submit_timeout,
            coalition_metadata,
        })
    }

    /// Use the audit-anchors contract at `address`.
    pub fn set_anchors(&mut self, address: H160, metadata: ContractMetadata) {
        self.anchors = Some(AuditAnchors::at(self.coalition.client().clone(), address, metadata));
    }

    /// The same coalition over a new connection (after the node went away).
    pub async fn reconnect(&self) -> Result<Self, ChainError> {
        let mut chain = Self::connect(
            &self.rpc,
            self.submit_timeout,
            self.operator.clone(),
            self.coalition.address,
            self.coalition_metadata.clone(),
        )
        .await?;
        if let Some(anchors) = &self.anchors {
            chain.set_anchors(anchors.address, anchors.metadata().clone());
        }
        chain.known_rounds.store(self.known_rounds.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(chain)
    }

    /// The origin of reads.
    pub fn origin(&self) -> AccountId32 {
        self.operator.account_id()
    }

    /// The members at the best block (read once per best block).
    pub async fn members(&self) -> Result<std::sync::Arc<Vec<Member>>, ChainError> {
        let best = self.coalition.client().best_hash().await?;
        if let Some((at, members)) = self.members_at.lock().await.as_ref() {
            if *at == best {
                return Ok(members.clone());
            }
        }
        // Read at the best block or a later one: never older than what `best` names.
        let members = std::sync::Arc::new(self.coalition.members(&self.origin()).await?);
        *self.members_at.lock().await = Some((best, members.clone()));
        Ok(members)
    }

    /// Whether `address` is a member at the best block.
    pub async fn is_member(&self, address: &H160) -> Result<bool, ChainError> {
        Ok(self.members().await?.iter().any(|member| &member.account == address))
    }

    /// Round `id`.
    pub async fn round(&self, id: u64) -> Result<Option<Round>, ChainError> {
        Ok(self.coalition.round(&self.origin(), id).await?)
    }

    /// How many rounds there are (round ids are `0..n`): a doubling then a bisection from the
    /// count known so far.
    pub async fn round_count(&self) -> Result<u64, ChainError> {
        let mut low = self.known_rounds.load(Ordering::Relaxed);
        if low > 0 && self.round(low - 1).await?.is_none() {
            low = 0;
        }
        let mut step = 1u64;
        let mut high = low;
        while self.round(high).await?.is_some() {
            low = high + 1;
            high = high.saturating_add(step);
            step = step.saturating_mul(2);
        }
        // Rounds 0..low exist, round `high` does not.
        while low < high {
            let middle = low + (high - low) / 2;
            if self.round(middle).await?.is_some() {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        self.known_rounds.fetch_max(low, Ordering::Relaxed);
        Ok(low)
    }

    /// What the chain says about the object `hash`.
    pub async fn standing(&self, hash: &[u8; 32]) -> Result<Standing, ChainError> {
        let hash = H256::from(*hash);
        if let Some(index) = self.coalition.parameters_block(&self.origin(), hash).await? {
            return Ok(Standing::Block(index));
        }
        let count = self.round_count().await?;
        for id in (count.saturating_sub(ROUND_SEARCH_DEPTH)..count).rev() {
            let Some(round) = self.round(id).await? else { continue };
            if round.candidate == hash {
                let validators = self.coalition.round_validators(&self.origin(), id).await?;
                return Ok(Standing::Candidate { round: id, proposer: round.proposer, validators });
            }
        }
        Ok(Standing::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_models_are_the_members_and_candidates_their_uploaders_and_rounds() {
        let (alice, bob, carol, dave) =
            (H160::repeat_byte(1), H160::repeat_byte(2), H160::repeat_byte(3), H160::repeat_byte(4));
        let candidate = Standing::Candidate { round: 3, proposer: alice, validators: vec![bob, carol] };
        assert!(may_read(&dave, true, &Standing::Block(0), &[]));
        assert!(!may_read(&dave, false, &Standing::Block(0), &[]), "non-members read nothing");
        assert!(may_read(&alice, true, &candidate, &[alice]), "its proposer, who uploaded it");
        assert!(may_read(&carol, true, &candidate, &[alice]), "a validator of a round its uploader proposed");
        assert!(!may_read(&dave, true, &candidate, &[alice]), "a member not drawn");
        assert!(!may_read(&bob, false, &candidate, &[alice]), "a validator removed from the coalition");
        assert!(may_read(&dave, true, &Standing::Unknown, &[dave]));
        assert!(!may_read(&alice, true, &Standing::Unknown, &[dave]));
    }

    /// Alice proposes Dave's upload (she read its hash in the audit log): she and the round's
    /// validators read nothing, and Dave keeps his own upload.
    #[test]
    fn proposing_another_members_upload_opens_it_to_no_one() {
        let (alice, bob, carol, dave) =
            (H160::repeat_byte(1), H160::repeat_byte(2), H160::repeat_byte(3), H160::repeat_byte(4));
        let stolen = Standing::Candidate { round: 3, proposer: alice, validators: vec![bob, carol] };
        for reader in [alice, bob, carol] {
            assert!(!may_read(&reader, true, &stolen, &[dave]), "{reader:?}");
        }
        assert!(may_read(&dave, true, &stolen, &[dave]), "the uploader keeps access to its own upload");
        // Once Alice uploads the same bytes (she holds them), the round is hers to have judged.
        assert!(may_read(&bob, true, &stolen, &[dave, alice]));
    }
}

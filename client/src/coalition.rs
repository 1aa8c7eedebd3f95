//! The coalition contract from Rust: its wire types, events, hashes and rules are the contract's
//! own (`coalition-types`, re-exported here), and [`Coalition`] has one method per message.
//!
//! A message that returns `Err` reverts; its error comes back as [`CallError::Contract`] with the
//! contract's own [`CoalitionError`], decoded from the revert data.

use crate::{
    client::{CallOutcome, Client, ContractEvent},
    contract::{CallData, ContractArtifact, ContractMetadata},
    keys::Keypair,
    AccountId32, Error, H160, H256,
};
pub use coalition_types::{
    events::{self, *},
    hashing::{self, NativeKeccak},
    rdp::{self, Rdp},
    rules, Action, Ballot, BlockHeader, Deviation, DpDeclaration, Error as CoalitionError, EvaluationSpec, Failure,
    Fraction, Genesis, GovernanceParams, Hyperparameter, Hyperparameters, LocalTestSet, Member, MetricKind, ModelBlock,
    Phase, PrivacySpend, Proposal, ProposalRejection, ProposalStatus, Refusal, Rejection, Report, Round, Scores, Seal,
    Verdict, DRAW_DELAY, MAX_DATA_IDS, MAX_MEMBERS, MAX_VALIDATORS, METRIC_ONE,
};
use codec::Decode;

/// Why a coalition call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The contract refused: its own error.
    #[error("coalition refused: {0:?}")]
    Contract(CoalitionError),
    /// Anything else: node, runtime, decoding.
    #[error(transparent)]
    Client(#[from] Error),
}

/// Result of coalition calls.
pub type CallResult<T> = Result<T, CallError>;

/// A deployed coalition contract.
#[derive(Clone)]
pub struct Coalition {
    client: Client,
    /// Its address.
    pub address: H160,
    metadata: ContractMetadata,
}

impl Coalition {
    /// Deploy a coalition from its artifact and genesis.
    pub async fn deploy(
        client: &Client,
        signer: &Keypair,
        artifact: &ContractArtifact,
        genesis: &Genesis,
    ) -> CallResult<Self> {
        let data = artifact.metadata.constructor("new")?.call().arg(genesis);
        let deployment = client.deploy(signer, &artifact.code, data, 0, None).await.map_err(refusal)?;
        // The constructor returns `Result<(), Error>`: an `Err` reverts, so this one succeeded.
        Ok(Self::at(client.clone(), deployment.address, artifact.metadata.clone()))
    }

    /// The coalition at `address`.
    pub fn at(client: Client, address: H160, metadata: ContractMetadata) -> Self {
        Self { client, address, metadata }
    }

    /// The client it uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The call data of message `label`, before its arguments.
    pub fn message(&self, label: &str) -> CallResult<CallData> {
        Ok(self.metadata.message(label)?.call())
    }

    /// Submit a message whose return type is `Result<T, CoalitionError>`.
    pub async fn send<T: Decode>(&self, signer: &Keypair, data: CallData) -> CallResult<(T, CallOutcome)> {
        let outcome = self.client.call(signer, self.address, data, 0).await.map_err(refusal)?;
        let value = outcome.decode::<Result<T, CoalitionError>>()?.map_err(CallError::Contract)?;
        Ok((value, outcome))
    }

    /// Read a message's return value without a transaction.
    pub async fn query<T: Decode>(&self, origin: &AccountId32, data: CallData) -> CallResult<T> {
        Ok(self.client.read(origin, self.address, data).await?)
    }

    /// Events of `label` in `events`, decoded as `T`.
    pub fn events<T: Decode>(&self, events: &[ContractEvent], label: &str) -> CallResult<Vec<T>> {
        let Some(topic) = self.metadata.event_topic(label)? else { return Ok(Vec::new()) };
        events
            .iter()
            .filter(|event| event.contract == self.address)
            .filter_map(|event| event.decode_if::<T>(&topic))
            .map(|decoded| decoded.map_err(CallError::from))
            .collect()
    }

    /// The last `label` event of a transaction, decoded as `T`.
    fn last_event<T: Decode>(&self, outcome: &CallOutcome, label: &'static str) -> CallResult<T> {
        self.events(&outcome.included.contract_events, label)?
            .pop()
            .ok_or(CallError::Client(Error::Decode { what: label, reason: "no such event".into() }))
    }

    /// `propose`: open a round, declaring the differential privacy the training spent. Returns
    /// the round id (from `RoundOpened`).
    #[allow(clippy::too_many_arguments)] // One argument per argument of the message.
    pub async fn propose(
        &self,
        signer: &Keypair,
        parent: u32,
        candidate: H256,
        vault_ref: &[u8],
        samples: u64,
        data_ids: &[H256],
        privacy: Option<DpDeclaration>,
    ) -> CallResult<(u64, CallOutcome)> {
        let data = self
            .message("propose")?
            .arg(&parent)
            .arg(&candidate)
            .arg(&vault_ref.to_vec())
            .arg(&samples)
            .arg(&data_ids.to_vec())
            .arg(&privacy);
        let (_, outcome) = self.send::<u64>(signer, data).await?;
        let opened: RoundOpened = self.last_event(&outcome, "RoundOpened")?;
        Ok((opened.round, outcome))
    }

    /// `release_claims`: returns the data IDs released (from `ClaimsReleased`).
    pub async fn release_claims(&self, signer: &Keypair, round: u64) -> CallResult<(u32, CallOutcome)> {
        let (_, outcome) = self.send::<u32>(signer, self.message("release_claims")?.arg(&round)).await?;
        let released: ClaimsReleased = self.last_event(&outcome, "ClaimsReleased")?;
        Ok((released.released, outcome))
    }

    /// `commit`.
    pub async fn commit(&self, signer: &Keypair, round: u64, commitment: H256) -> CallResult<CallOutcome> {
        let data = self.message("commit")?.arg(&round).arg(&commitment);
        Ok(self.send::<()>(signer, data).await?.1)
    }

    /// `reveal`.
    pub async fn reveal(
        &self,
        signer: &Keypair,
        round: u64,
        report: &Report,
        salt: &[u8; 32],
    ) -> CallResult<CallOutcome> {
        let data = self.message("reveal")?.arg(&round).arg(report).arg(salt);
        Ok(self.send::<()>(signer, data).await?.1)
    }

    /// `seal`: returns the block hash (from `Sealed`: it depends on the block's timestamp).
    pub async fn seal(&self, signer: &Keypair, round: u64, vault_ref: &[u8]) -> CallResult<(H256, CallOutcome)> {
        let data = self.message("seal")?.arg(&round).arg(&vault_ref.to_vec());
        let (_, outcome) = self.send::<H256>(signer, data).await?;
        let sealed: Sealed = self.last_event(&outcome, "Sealed")?;
        Ok((sealed.block_hash, outcome))
    }

    /// `attest`.
    pub async fn attest(&self, signer: &Keypair, round: u64, block_hash: H256) -> CallResult<CallOutcome> {
        let data = self.message("attest")?.arg(&round).arg(&block_hash);
        Ok(self.send::<()>(signer, data).await?.1)
    }

    /// `advance`: returns the new phase (from the last `PhaseChanged`).
    pub async fn advance(&self, signer: &Keypair) -> CallResult<(Phase, CallOutcome)> {
        let (_, outcome) = self.send::<Phase>(signer, self.message("advance")?).await?;
        let changed: PhaseChanged = self.last_event(&outcome, "PhaseChanged")?;
        Ok((changed.phase, outcome))
    }

    /// `propose_action`: returns the proposal id (from `ProposalCreated`).
    pub async fn propose_action(&self, signer: &Keypair, action: &Action) -> CallResult<(u32, CallOutcome)> {
        let (_, outcome) = self.send::<u32>(signer, self.message("propose_action")?.arg(action)).await?;
        let created: ProposalCreated = self.last_event(&outcome, "ProposalCreated")?;
        Ok((created.proposal, outcome))
    }

    /// `vote`.
    pub async fn vote(&self, signer: &Keypair, proposal: u32, aye: bool) -> CallResult<CallOutcome> {
        Ok(self.send::<()>(signer, self.message("vote")?.arg(&proposal).arg(&aye)).await?.1)
    }

    /// `enact`: returns the proposal's status (from the event its closing emitted).
    pub async fn enact(&self, signer: &Keypair, proposal: u32) -> CallResult<(ProposalStatus, CallOutcome)> {
        let (_, outcome) = self.send::<ProposalStatus>(signer, self.message("enact")?.arg(&proposal)).await?;
        let events = &outcome.included.contract_events;
        let status = if let Some(rejected) = self.events::<ProposalRejected>(events, "ProposalRejected")?.pop() {
            ProposalStatus::Rejected(rejected.reason)
        } else if let Some(failed) = self.events::<ProposalFailed>(events, "ProposalFailed")?.pop() {
            ProposalStatus::Failed(failed.reason)
        } else if !self.events::<ProposalExpired>(events, "ProposalExpired")?.is_empty() {
            ProposalStatus::Expired
        } else {
            let _: ProposalEnacted = self.last_event(&outcome, "ProposalEnacted")?;
            ProposalStatus::Enacted
        };
        Ok((status, outcome))
    }

    /// `register_local_test_set`: the caller's local test set L, once.
    pub async fn register_local_test_set(&self, signer: &Keypair, set: &LocalTestSet) -> CallResult<CallOutcome> {
        Ok(self.send::<()>(signer, self.message("register_local_test_set")?.arg(set)).await?.1)
    }

    /// What `validator` commits for `report` and `salt` in this coalition:
    /// `keccak(SCALE(contract, validator, report, salt))`, computed here, never by a node.
    pub fn commitment(&self, validator: &H160, report: &Report, salt: &[u8; 32]) -> H256 {
        hashing::commitment::<NativeKeccak>(&self.address, validator, report, salt)
    }

    /// `height`.
    pub async fn height(&self, origin: &AccountId32) -> CallResult<u32> {
        self.query(origin, self.message("height")?).await
    }

    /// `block`.
    pub async fn block(&self, origin: &AccountId32, index: u32) -> CallResult<Option<ModelBlock>> {
        self.query(origin, self.message("block")?.arg(&index)).await
    }

    /// `round`.
    pub async fn round(&self, origin: &AccountId32, id: u64) -> CallResult<Option<Round>> {
        self.query(origin, self.message("round")?.arg(&id)).await
    }

    /// `round_privacy`: round `id`'s DP declaration, if it made one.
    pub async fn round_privacy(&self, origin: &AccountId32, id: u64) -> CallResult<Option<DpDeclaration>> {
        self.query(origin, self.message("round_privacy")?.arg(&id)).await
    }

    /// `privacy_totals`: a member's declared Rényi DP composed over its proposals.
    pub async fn privacy_totals(&self, origin: &AccountId32, account: H160) -> CallResult<Rdp> {
        self.query(origin, self.message("privacy_totals")?.arg(&account)).await
    }

    /// `round_validators`.
    pub async fn round_validators(&self, origin: &AccountId32, id: u64) -> CallResult<Vec<H160>> {
        self.query(origin, self.message("round_validators")?.arg(&id)).await
    }

    /// `open_round`.
    pub async fn open_round(&self, origin: &AccountId32) -> CallResult<Option<u64>> {
        self.query(origin, self.message("open_round")?).await
    }

    /// `strengths`.
    pub async fn strengths(&self, origin: &AccountId32) -> CallResult<Vec<(H160, u64)>> {
        self.query(origin, self.message("strengths")?).await
    }

    /// `members`.
    pub async fn members(&self, origin: &AccountId32) -> CallResult<Vec<Member>> {
        self.query(origin, self.message("members")?).await
    }

    /// `evaluation_spec`.
    pub async fn evaluation_spec(&self, origin: &AccountId32) -> CallResult<EvaluationSpec> {
        self.query(origin, self.message("evaluation_spec")?).await
    }

    /// `hyperparameters`.
    pub async fn hyperparameters(&self, origin: &AccountId32) -> CallResult<Hyperparameters> {
        self.query(origin, self.message("hyperparameters")?).await
    }

    /// `candidate_ref`: where round `id`'s candidate is in the vault.
    pub async fn candidate_ref(&self, origin: &AccountId32, id: u64) -> CallResult<Option<Vec<u8>>> {
        self.query(origin, self.message("candidate_ref")?.arg(&id)).await
    }

    /// `seal_of`: round `id`'s sealed block, once sealed.
    pub async fn seal_of(&self, origin: &AccountId32, id: u64) -> CallResult<Option<Seal>> {
        self.query(origin, self.message("seal_of")?.arg(&id)).await
    }

    /// `ballot`.
    pub async fn ballot(&self, origin: &AccountId32, round: u64, validator: H160) -> CallResult<Option<Ballot>> {
        self.query(origin, self.message("ballot")?.arg(&round).arg(&validator)).await
    }

    /// `local_test_set`: a member's registered local test set.
    pub async fn local_test_set(&self, origin: &AccountId32, member: H160) -> CallResult<Option<LocalTestSet>> {
        self.query(origin, self.message("local_test_set")?.arg(&member)).await
    }

    /// `governance_params`.
    pub async fn governance_params(&self, origin: &AccountId32) -> CallResult<GovernanceParams> {
        self.query(origin, self.message("governance_params")?).await
    }

    /// `proposal`.
    pub async fn proposal(&self, origin: &AccountId32, id: u32) -> CallResult<Option<Proposal>> {
        self.query(origin, self.message("proposal")?.arg(&id)).await
    }

    /// `open_proposals`.
    pub async fn open_proposals(&self, origin: &AccountId32) -> CallResult<Vec<u32>> {
        self.query(origin, self.message("open_proposals")?).await
    }

    /// `parameters_block`: the first block with these parameters.
    pub async fn parameters_block(&self, origin: &AccountId32, parameter_hash: H256) -> CallResult<Option<u32>> {
        self.query(origin, self.message("parameters_block")?.arg(&parameter_hash)).await
    }

    /// `audit_anchors`: the vault's audit-anchors contract, if recorded.
    pub async fn audit_anchors(&self, origin: &AccountId32) -> CallResult<Option<H160>> {
        self.query(origin, self.message("audit_anchors")?).await
    }

    /// `data_id_block`.
    pub async fn data_id_block(&self, origin: &AccountId32, id: H256) -> CallResult<Option<u32>> {
        self.query(origin, self.message("data_id_block")?.arg(&id)).await
    }
}

/// A revert carries the message's `Result<Result<T, CoalitionError>, LangError>`, which for any
/// `T` encodes an error as `0x00 0x01 error`: surface the contract's own error.
/// Each contributor's share of the model's improvement: the sum of the metric gains of the
/// blocks it contributed, each measured against the block before it (so a revert, which has no
/// contributor, counts for nobody, and the next block's gain is measured from the reverted
/// state). A gain is positive when the metric improved (`higher_is_better` says which way).
/// Contributors in order of their first block.
pub fn contributions(blocks: &[ModelBlock], higher_is_better: bool) -> Vec<(H160, i64)> {
    let mut shares: Vec<(H160, i64)> = Vec::new();
    for pair in blocks.windows(2) {
        let [previous, block] = pair else { continue };
        let Some(contributor) = block.contributor else { continue };
        let change = block.performance.saturating_sub(previous.performance);
        let gain = if higher_is_better { change } else { change.saturating_neg() };
        match shares.iter_mut().find(|(member, _)| *member == contributor) {
            Some((_, total)) => *total = total.saturating_add(gain),
            None => shares.push((contributor, gain)),
        }
    }
    shares
}

fn refusal(error: Error) -> CallError {
    error.contract_error::<CoalitionError>().map_or(CallError::Client(error), CallError::Contract)
}

#[cfg(test)]
mod tests {
    use super::*;

    use codec::Encode;

    #[test]
    fn refusals_decode_to_the_contract_error() {
        let data = Ok::<Result<u64, CoalitionError>, crate::LangError>(Err(CoalitionError::StaleParent)).encode();
        let error = refusal(Error::Reverted { contract: None, data });
        assert!(matches!(error, CallError::Contract(CoalitionError::StaleParent)), "{error}");
        let other = refusal(Error::Rpc("down".into()));
        assert!(matches!(other, CallError::Client(Error::Rpc(_))));
    }

    #[test]
    fn contributions_sum_each_members_gains_and_reverts_count_for_nobody() {
        let (alice, bob) = (H160::repeat_byte(1), H160::repeat_byte(2));
        let block = |index: u32, contributor: Option<H160>, performance: i64| ModelBlock {
            index,
            timestamp: 0,
            previous_hash: H256::zero(),
            parameter_hash: H256::zero(),
            vault_ref: Vec::new(),
            contributor,
            samples: 0,
            strengths_hash: H256::zero(),
            best_performance: performance,
            performance,
            round: None,
            block_hash: H256::zero(),
        };
        // 0.80 -> Alice 0.84 -> Bob 0.86 -> revert to 0.84 -> Alice 0.85.
        let chain = [
            block(0, None, 800_000),
            block(1, Some(alice), 840_000),
            block(2, Some(bob), 860_000),
            block(3, None, 840_000),
            block(4, Some(alice), 850_000),
        ];
        assert_eq!(contributions(&chain, true), vec![(alice, 50_000), (bob, 20_000)]);
        // For an error metric, lower is better: the same numbers are losses.
        assert_eq!(contributions(&chain, false), vec![(alice, -50_000), (bob, -20_000)]);
        assert!(contributions(&chain[..1], true).is_empty());
    }

    #[test]
    fn commitments_name_the_coalition() {
        let report = Report {
            round: 1,
            candidate: H256::repeat_byte(2),
            verdict: Verdict::Scored(Scores { g_metric: 3, g_digest: H256::repeat_byte(4), l_keeps: true, l_size: 6 }),
        };
        let (contract, validator) = (H160::repeat_byte(9), H160::repeat_byte(1));
        let expected =
            sp_crypto_hashing::keccak_256(&[&[9u8; 20][..], &[1u8; 20][..], &report.encode(), &[0u8; 32]].concat());
        assert_eq!(hashing::commitment::<NativeKeccak>(&contract, &validator, &report, &[0; 32]), H256::from(expected));
    }
}

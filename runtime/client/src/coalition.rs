//! The coalition contract from Rust: its types as they are on the wire (SCALE, field for field
//! as in `contracts/coalition`), and [`Coalition`], one method per message.
//!
//! A message that returns `Err` reverts; its error comes back as [`CallError::Contract`] with the
//! contract's own [`CoalitionError`], decoded from the revert data.

use crate::{
    client::{CallOutcome, Client, ContractEvent},
    contract::{CallData, ContractArtifact, ContractMetadata},
    keys::Keypair,
    AccountId32, Error, H160, H256,
};
use codec::{Decode, Encode};

/// A fraction `num / den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Fraction {
    /// Numerator.
    pub num: u32,
    /// Denominator.
    pub den: u32,
}

impl Fraction {
    /// Two thirds.
    pub const TWO_THIRDS: Self = Self { num: 2, den: 3 };
}

/// The coalition's metric (snake_case names in JSON: `accuracy`, `roc_auc`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Share of correct labels.
    Accuracy,
    /// Mean recall over classes.
    BalancedAccuracy,
    /// F1 score.
    F1,
    /// Area under the ROC curve.
    RocAuc,
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    Mae,
    /// Coefficient of determination.
    R2,
    /// Dice coefficient.
    Dice,
    /// Intersection over union.
    Iou,
}

impl MetricKind {
    /// Whether a larger value is a better model (errors are lower-is-better).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, MetricKind::Mse | MetricKind::Mae)
    }

    /// Whether a model's outputs are class scores.
    pub fn is_classification(self) -> bool {
        matches!(self, MetricKind::Accuracy | MetricKind::BalancedAccuracy | MetricKind::F1 | MetricKind::RocAuc)
    }
}

/// Round and training hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Hyperparameters {
    /// Share of the tip's performance to keep, parts per million.
    pub lambda_ppm: u32,
    /// Validators per round, `k`.
    pub validators_per_round: u32,
    /// Agreement, votes and attestations needed.
    pub quorum: Fraction,
    /// Blocks to commit.
    pub commit_timeout: u32,
    /// Blocks to reveal.
    pub reveal_timeout: u32,
    /// Blocks to seal.
    pub seal_timeout: u32,
    /// Blocks to attest.
    pub attest_timeout: u32,
    /// Fewest samples per contribution.
    pub min_batch_size: u64,
    /// Learning rate in units of 1e-9.
    pub learning_rate_e9: u64,
    /// Epochs.
    pub epochs: u32,
    /// Batch size.
    pub batch_size: u32,
}

/// One hyperparameter with a new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Hyperparameter {
    /// `lambda_ppm`.
    Lambda(u32),
    /// `validators_per_round`.
    ValidatorsPerRound(u32),
    /// `quorum`.
    Quorum(Fraction),
    /// `commit_timeout`.
    CommitTimeout(u32),
    /// `reveal_timeout`.
    RevealTimeout(u32),
    /// `seal_timeout`.
    SealTimeout(u32),
    /// `attest_timeout`.
    AttestTimeout(u32),
    /// `min_batch_size`.
    MinBatchSize(u64),
    /// `learning_rate_e9`.
    LearningRate(u64),
    /// `epochs`.
    Epochs(u32),
    /// `batch_size`.
    BatchSize(u32),
}

/// How governance decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct GovernanceParams {
    /// Blocks of voting.
    pub voting_period: u32,
    /// Blocks between voting's end and enactment.
    pub enactment_delay: u32,
    /// Share of members that must vote.
    pub quorum: Fraction,
    /// Share of votes that must be ayes.
    pub threshold: Fraction,
}

/// The constructor's input.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Genesis {
    /// Hash of the ONNX graph without weights.
    pub architecture_hash: H256,
    /// Hash of the initial parameters.
    pub parameter_hash: H256,
    /// Vault reference of the initial model.
    pub vault_ref: Vec<u8>,
    /// Hash of G.
    pub test_set_hash: H256,
    /// Samples in G.
    pub test_set_size: u32,
    /// The metric.
    pub metric: MetricKind,
    /// Whether higher is better.
    pub higher_is_better: bool,
    /// The initial model's metric on G (1.0 = 1_000_000).
    pub performance: i64,
    /// Hyperparameters.
    pub hyperparameters: Hyperparameters,
    /// Governance parameters.
    pub governance: GovernanceParams,
    /// Founding members.
    pub founders: Vec<H160>,
    /// The vault's audit-anchors contract.
    pub audit_anchors: Option<H160>,
}

/// What candidates are evaluated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct EvaluationSpec {
    /// Architecture hash.
    pub architecture_hash: H256,
    /// Hash of G.
    pub test_set_hash: H256,
    /// Samples in G.
    pub test_set_size: u32,
    /// The metric.
    pub metric: MetricKind,
    /// Whether higher is better.
    pub higher_is_better: bool,
}

/// A member and its `D_i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Member {
    /// Account (H160).
    pub account: H160,
    /// Samples contributed.
    pub samples: u64,
}

/// A block of the model chain.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ModelBlock {
    /// Height.
    pub index: u32,
    /// Timestamp (ms).
    pub timestamp: u64,
    /// Previous block's hash.
    pub previous_hash: H256,
    /// Parameter hash.
    pub parameter_hash: H256,
    /// Vault reference.
    pub vault_ref: Vec<u8>,
    /// Contributor.
    pub contributor: Option<H160>,
    /// Samples.
    pub samples: u64,
    /// Hash of the strengths.
    pub strengths_hash: H256,
    /// Performance.
    pub performance: i64,
    /// Round.
    pub round: Option<u64>,
    /// Block hash.
    pub block_hash: H256,
}

/// A validator's score report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Report {
    /// Round id.
    pub round: u64,
    /// Candidate parameter hash.
    pub candidate: H256,
    /// Metric on G.
    pub g_metric: i64,
    /// Digest of predictions on G.
    pub g_digest: H256,
    /// Metric on L.
    pub l_metric: i64,
    /// Samples in L.
    pub l_size: u32,
    /// Verdict.
    pub accept: bool,
}

impl Report {
    /// `keccak(SCALE(validator, report, salt))`: what `validator` commits.
    pub fn commitment(&self, validator: &H160, salt: &[u8; 32]) -> H256 {
        H256::from(sp_crypto_hashing::keccak_256(&(validator, self, salt).encode()))
    }
}

/// A validator's part in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Ballot {
    /// Commitment.
    pub commitment: Option<H256>,
    /// Revealed report.
    pub report: Option<Report>,
    /// Attested.
    pub attested: bool,
    /// Off the G majority.
    pub deviant: bool,
    /// In the G majority and voted accept.
    pub accepting: bool,
    /// Drawn as general.
    pub drawn_as_general: bool,
}

/// Why a candidate was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Rejection {
    /// G digests disagreed.
    InconsistentPredictions,
    /// Below lambda times the tip's performance.
    Degrades,
    /// Too few accept votes.
    NotEnoughVotes,
}

/// Why a round failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Failure {
    /// No commits.
    NoCommits,
    /// No reveals.
    NoReveals,
    /// No general sealed.
    NoGeneral,
    /// Too few attestations.
    NotAttested,
}

/// A round's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Phase {
    /// Committing.
    Commit,
    /// Revealing.
    Reveal,
    /// Waiting for the general's seal.
    Sealing,
    /// Attesting.
    Attesting,
    /// Appended.
    Appended,
    /// Rejected.
    Rejected(Rejection),
    /// Failed.
    Failed(Failure),
}

/// A sealed block.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Seal {
    /// Vault reference.
    pub vault_ref: Vec<u8>,
    /// Timestamp.
    pub timestamp: u64,
    /// Block hash.
    pub block_hash: H256,
    /// Strengths hash.
    pub strengths_hash: H256,
}

/// A round.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Round {
    /// Id.
    pub id: u64,
    /// Proposer.
    pub proposer: H160,
    /// Parent index.
    pub parent: u32,
    /// Parent hash.
    pub parent_hash: H256,
    /// Candidate parameter hash.
    pub candidate: H256,
    /// Samples.
    pub samples: u64,
    /// Validators drawn.
    pub validators: u32,
    /// Seed.
    pub seed: H256,
    /// Hyperparameters.
    pub params: Hyperparameters,
    /// Phase.
    pub phase: Phase,
    /// Deadline.
    pub deadline: u32,
    /// Commits.
    pub commits: u32,
    /// Reveals.
    pub reveals: u32,
    /// Merged performance.
    pub performance: Option<i64>,
    /// Accept votes.
    pub accepts: u32,
    /// Deviants.
    pub deviants: u32,
    /// Generals drawn.
    pub generals_drawn: u32,
    /// Current general.
    pub general: Option<H160>,
    /// Attestations.
    pub attestations: u32,
    /// Appended block.
    pub block: Option<u32>,
}

/// A governance action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Action {
    /// Change one hyperparameter.
    SetHyperparameter(Hyperparameter),
    /// Change governance.
    SetGovernance(GovernanceParams),
    /// Admit a member.
    AddMember(H160),
    /// Remove a member.
    RemoveMember(H160),
    /// Revert to block `index`'s parameters.
    Revert(u32),
    /// Record the audit-anchors contract.
    SetAuditAnchors(Option<H160>),
}

/// Why a proposal was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ProposalRejection {
    /// Turnout too low.
    QuorumNotMet,
    /// Ayes too few.
    ThresholdNotMet,
}

/// A proposal's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ProposalStatus {
    /// Open.
    Open,
    /// Rejected.
    Rejected(ProposalRejection),
    /// Enacted.
    Enacted,
}

/// The coalition contract's errors, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
#[allow(missing_docs)]
pub enum CoalitionError {
    InvalidGenesis,
    InvalidHyperparameters,
    InvalidGovernanceParams,
    NotMember,
    AlreadyMember,
    TooManyMembers,
    LastMember,
    RoundOpen,
    NoOpenRound,
    WrongRound,
    WrongPhase,
    StaleParent,
    BatchTooSmall,
    DataIdCountMismatch,
    TooManyDataIds,
    DuplicateDataId,
    DataIdUsed,
    InvalidVaultRef,
    NoEligibleValidators,
    NotValidator,
    AlreadyCommitted,
    NotCommitted,
    AlreadyRevealed,
    DeadlinePassed,
    DeadlineNotReached,
    ReportMismatch,
    CommitmentMismatch,
    NotGeneral,
    SealMismatch,
    AlreadyAttested,
    UnknownProposal,
    ProposalClosed,
    VotingEnded,
    VotingOpen,
    EnactmentNotDue,
    AlreadyVoted,
    TooManyProposals,
    InvalidRevert,
    Overflow,
}

/// `RoundOpened`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct RoundOpened {
    /// Round id.
    pub round: u64,
    /// Proposer.
    pub proposer: H160,
    /// Candidate.
    pub candidate: H256,
    /// Parent.
    pub parent: u32,
    /// Vault reference.
    pub vault_ref: Vec<u8>,
    /// Validators.
    pub validators: Vec<H160>,
    /// Commit deadline.
    pub commit_deadline: u32,
}

/// `RoundTallied`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct RoundTallied {
    /// Round id.
    pub round: u64,
    /// Why rejected, if so.
    pub rejection: Option<Rejection>,
    /// Merged performance.
    pub performance: Option<i64>,
    /// The tip's performance.
    pub previous_performance: i64,
    /// Accept votes.
    pub accepts: u32,
}

/// `GeneralChosen`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct GeneralChosen {
    /// Round id.
    pub round: u64,
    /// General.
    pub general: H160,
}

/// `Sealed`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct Sealed {
    /// Round id.
    pub round: u64,
    /// General.
    pub general: H160,
    /// Block hash.
    pub block_hash: H256,
    /// Vault reference.
    pub vault_ref: Vec<u8>,
}

/// `BlockAppended`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct BlockAppended {
    /// Index.
    pub index: u32,
    /// Block hash.
    pub block_hash: H256,
    /// Parameter hash.
    pub parameter_hash: H256,
    /// Contributor.
    pub contributor: Option<H160>,
    /// Round.
    pub round: Option<u64>,
    /// Strengths.
    pub strengths: Vec<(H160, u64)>,
}

/// `PhaseChanged`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct PhaseChanged {
    /// Round id.
    pub round: u64,
    /// New phase.
    pub phase: Phase,
    /// Its last block.
    pub deadline: u32,
}

/// `ProposalCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct ProposalCreated {
    /// Proposal id.
    pub proposal: u32,
    /// Proposer.
    pub proposer: H160,
    /// Action.
    pub action: Action,
    /// Last block of voting.
    pub voting_ends: u32,
}

/// `ProposalEnacted`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct ProposalEnacted {
    /// Proposal id.
    pub proposal: u32,
    /// Action.
    pub action: Action,
}

/// `ProposalRejected`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct ProposalRejected {
    /// Proposal id.
    pub proposal: u32,
    /// Why.
    pub reason: ProposalRejection,
}

/// `Committed`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct Committed {
    /// Round id.
    pub round: u64,
    /// Validator.
    pub validator: H160,
}

/// `ValidatorDeviated`.
#[derive(Debug, Clone, PartialEq, Eq, Decode)]
pub struct ValidatorDeviated {
    /// Round id.
    pub round: u64,
    /// Validator.
    pub validator: H160,
}

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

    fn message(&self, label: &str) -> CallResult<CallData> {
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

    /// `propose`: open a round. Returns the round id (from `RoundOpened`).
    pub async fn propose(
        &self,
        signer: &Keypair,
        parent: u32,
        candidate: H256,
        vault_ref: &[u8],
        samples: u64,
        data_ids: &[H256],
    ) -> CallResult<(u64, CallOutcome)> {
        let data = self
            .message("propose")?
            .arg(&parent)
            .arg(&candidate)
            .arg(&vault_ref.to_vec())
            .arg(&samples)
            .arg(&data_ids.to_vec());
        let (_, outcome) = self.send::<u64>(signer, data).await?;
        let opened: RoundOpened = self.last_event(&outcome, "RoundOpened")?;
        Ok((opened.round, outcome))
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

    /// `enact`: returns the proposal's status (from `ProposalEnacted` or `ProposalRejected`).
    pub async fn enact(&self, signer: &Keypair, proposal: u32) -> CallResult<(ProposalStatus, CallOutcome)> {
        let (_, outcome) = self.send::<ProposalStatus>(signer, self.message("enact")?.arg(&proposal)).await?;
        let events = &outcome.included.contract_events;
        let status = if let Some(rejected) = self.events::<ProposalRejected>(events, "ProposalRejected")?.pop() {
            ProposalStatus::Rejected(rejected.reason)
        } else {
            let _: ProposalEnacted = self.last_event(&outcome, "ProposalEnacted")?;
            ProposalStatus::Enacted
        };
        Ok((status, outcome))
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

    /// `data_id_block`.
    pub async fn data_id_block(&self, origin: &AccountId32, id: H256) -> CallResult<Option<u32>> {
        self.query(origin, self.message("data_id_block")?.arg(&id)).await
    }
}

/// A revert carries the message's `Result<Result<T, CoalitionError>, LangError>`, which for any
/// `T` encodes an error as `0x00 0x01 error`: surface the contract's own error.
fn refusal(error: Error) -> CallError {
    let contract_error = match &error {
        Error::Reverted { data, .. } => match data.as_slice() {
            [0, 1, rest @ ..] => CoalitionError::decode(&mut &rest[..]).ok(),
            _ => None,
        },
        _ => None,
    };
    contract_error.map_or(CallError::Client(error), CallError::Contract)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_decode_to_the_contract_error() {
        let data = Ok::<Result<u64, CoalitionError>, crate::LangError>(Err(CoalitionError::StaleParent)).encode();
        let error = refusal(Error::Reverted { contract: None, data });
        assert!(matches!(error, CallError::Contract(CoalitionError::StaleParent)), "{error}");
        let other = refusal(Error::Rpc("down".into()));
        assert!(matches!(other, CallError::Client(Error::Rpc(_))));
    }

    #[test]
    fn commitments_hash_validator_report_and_salt() {
        let report = Report {
            round: 1,
            candidate: H256::repeat_byte(2),
            g_metric: 3,
            g_digest: H256::repeat_byte(4),
            l_metric: 5,
            l_size: 6,
            accept: true,
        };
        let a = report.commitment(&H160::repeat_byte(1), &[0; 32]);
        assert_ne!(a, report.commitment(&H160::repeat_byte(2), &[0; 32]));
        assert_ne!(a, report.commitment(&H160::repeat_byte(1), &[1; 32]));
        let expected = sp_crypto_hashing::keccak_256(
            &[&[1u8; 20][..], &report.encode(), &[0u8; 32]].concat(),
        );
        assert_eq!(a, H256::from(expected));
    }
}

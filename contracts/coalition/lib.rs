//! # Coalition
//!
//! One TCLearn coalition on chain (Lugan et al., section 2.1, figures 1-2; section 3.1): its
//! members and their strengths, the hash-linked model chain, the rounds that extend it, and the
//! governance that changes it. Evaluation and storage happen off chain (the oracle, the vault);
//! this contract records, checks and aggregates.
//!
//! ## Protocol
//! 1. **Genesis** (constructor): architecture hash, initial parameter hash and vault reference,
//!    the global test set G (hash, size), the metric and whether higher is better, the initial
//!    model's performance on G, hyperparameters, governance parameters, founding members. Block 0
//!    is the genesis block.
//! 2. **Strengths**: `S_i = 1/N + D_i/D` in parts per billion ([`rules::strength`]); with `D = 0`
//!    the data term is zero. Always computed from the current `N` and `D_i`, so never stale.
//! 3. **Propose**: a member proposes a candidate on the tip (its parent must be the tip), with
//!    its vault reference, sample count (>= the minimum batch size) and one anonymised ID per
//!    training sample (32-byte keyed hashes); an ID used by an appended block is refused. **One
//!    round is open at a time**, no queue: a queued candidate would be evaluated against a tip
//!    that changes under it, and every round needs the same validators' attention.
//! 4. **Selection**: `min(k, N - 1)` validators, never the proposer, drawn without replacement with
//!    probability proportional to strength ([`rules::select_weighted`]), from
//!    `seed = keccak(parent block hash ‖ round id ‖ tip block hash)`, uniform draws by rejection
//!    (no modulo bias).
//! 5. **Commit, then reveal**: each validator commits `keccak(SCALE(validator, report, salt))`,
//!    then reveals `report` and `salt`. The report names the round and the candidate hash, so it
//!    cannot be replayed in another round; the commitment names the validator, so it cannot be
//!    copied by another. Late or mismatching reveals, and reveals by anyone else, are refused.
//! 6. **Tally** (when every commit is revealed, or at the reveal deadline): the digests of the
//!    predictions on G must agree among at least `quorum` of the reveals, else the round is
//!    rejected as inconsistent; validators off that majority are recorded as deviants and not
//!    counted. The merged performance weights G (its median reported metric) and each local set
//!    L by size. The candidate is accepted iff it keeps `lambda` of the tip's performance
//!    ([`rules::keeps_performance`], mirrored for lower-is-better metrics) and at least `quorum`
//!    of the `k` selected validators voted accept.
//! 7. **General and block**: a general is drawn from the accepting validators; it seals the block
//!    with the vault reference of the stored model, and the contract computes
//!    `block_hash = keccak(SCALE(index u32, timestamp u64, previous block hash, parameter hash,
//!    contributor Option<H160>, strengths_hash))`, where `strengths_hash =
//!    keccak(SCALE(Vec<(H160, u64)>))` over every member's strength once the block is appended
//!    (the list itself is in the block's `BlockAppended` event). Validators attest that the vault
//!    copy is there and matches (the general's seal counts as its attestation); `quorum` of `k`
//!    attestations append the block, add the samples to the contributor's `D_i` and so use its
//!    data IDs. A general that does not seal in time is replaced by another accepting validator;
//!    when none is left, the round fails.
//! 8. **Deadlines**: phases end early when everyone has acted; otherwise anyone may call
//!    `advance` after a deadline.
//! 9. **Governance**: members propose a change (one hyperparameter, the governance parameters,
//!    admission or removal of a member, a revert to an earlier block, the audit-anchors contract)
//!    and vote **one member, one vote**: strength measures data contributed and is what weights
//!    validation, but letting it weigh governance would let the largest data holders alone admit
//!    members and set lambda. A proposal passes when the turnout reaches the governance quorum of
//!    the members at its creation and the ayes reach the threshold of the turnout; it is enacted
//!    by anyone after voting ends plus the enactment delay. Membership changes and reverts wait
//!    for no round to be open; hyperparameter changes apply from the next round.
//! 10. **Revert**: appends a block whose parameters are those of an earlier block.
//! 11. **Audit anchors**: the vault operator's access-log roots live in the `audit-anchors`
//!     contract, whose address the coalition records for anyone to find.
//!
//! ## Trust assumption of the seed
//! The seed mixes the parent block's hash, which the author of that block chooses among the
//! blocks it could build (by ordering or leaving out transactions), and the proposer chooses in
//! which block to propose. Either can grind for a favourable draw at the cost of discarded
//! blocks or delayed proposals; a proposer that is also a block author has the most leverage.
//! The draw is as good as the block authors (Aura validators) are independent of the coalition's
//! members.
//!
//! ## Invariants
//! - The model chain is append-only; block `i + 1` carries block `i`'s hash.
//! - At most one round is open; a round's parent is the tip for its whole life.
//! - A data ID is in at most one appended block: each ID records the last round that claimed
//!   it, and counts as used iff that round appended its block.
//! - Every collection is bounded: members, validators, data IDs per round, vault references,
//!   open proposals (see the `MAX_*` constants); every stored value fits pallet-revive's
//!   416-byte storage item, so collections live in mappings, one bounded value per key.
//! - No message panics on input: no indexing, no unchecked arithmetic, no unwrap.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

pub mod rules;
#[cfg(test)]
mod tests;

#[ink::contract]
pub mod coalition {
    use crate::rules::{self, Fraction};
    use ink::{
        env::hash::{HashOutput, Keccak256},
        prelude::vec::Vec,
        storage::Mapping,
        H256,
    };

    /// Most members a coalition has.
    pub const MAX_MEMBERS: u32 = 64;
    /// Most validators per round (`k`): a round's validator list must fit one storage value.
    pub const MAX_VALIDATORS: u32 = 16;
    /// Most data IDs (training samples) in one proposal.
    pub const MAX_DATA_IDS: u32 = 512;
    /// Longest vault reference, in bytes.
    pub const MAX_VAULT_REF: u32 = 128;
    /// Most governance proposals open at once.
    pub const MAX_OPEN_PROPOSALS: u32 = 16;
    /// Longest phase timeout or governance period, in blocks.
    pub const MAX_PERIOD: u32 = 1_000_000;
    /// pallet-revive's largest storage value, in bytes: every stored type must fit
    /// (`tests::every_stored_value_fits_a_storage_item` checks the largest of each).
    pub const MAX_STORAGE_VALUE: usize = 416;

    /// The metric validators compute (fixed point, 1.0 = 1_000_000).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
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
        /// Dice coefficient of masks.
        Dice,
        /// Intersection over union of masks.
        Iou,
    }

    impl MetricKind {
        /// Whether a higher value is a better model.
        pub fn higher_is_better(&self) -> bool {
            !matches!(self, Self::Mse | Self::Mae)
        }
    }

    /// Hyperparameters of rounds and of local training.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Hyperparameters {
        /// Share of the tip's performance a candidate must keep, parts per million (0..=1e6).
        pub lambda_ppm: u32,
        /// Validators per round, `k` (1..=MAX_VALIDATORS).
        pub validators_per_round: u32,
        /// Agreement, votes and attestations needed: a fraction in (1/2, 1], 2/3 by default.
        pub quorum: Fraction,
        /// Blocks validators have to commit.
        pub commit_timeout: u32,
        /// Blocks validators have to reveal.
        pub reveal_timeout: u32,
        /// Blocks a general has to seal.
        pub seal_timeout: u32,
        /// Blocks validators have to attest.
        pub attest_timeout: u32,
        /// Fewest samples a contribution may have.
        pub min_batch_size: u64,
        /// Local training: learning rate, in units of 1e-9.
        pub learning_rate_e9: u64,
        /// Local training: epochs.
        pub epochs: u32,
        /// Local training: batch size.
        pub batch_size: u32,
    }

    /// One hyperparameter with its new value: what a governance proposal changes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
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

    impl Hyperparameters {
        fn with(mut self, change: Hyperparameter) -> Self {
            match change {
                Hyperparameter::Lambda(v) => self.lambda_ppm = v,
                Hyperparameter::ValidatorsPerRound(v) => self.validators_per_round = v,
                Hyperparameter::Quorum(v) => self.quorum = v,
                Hyperparameter::CommitTimeout(v) => self.commit_timeout = v,
                Hyperparameter::RevealTimeout(v) => self.reveal_timeout = v,
                Hyperparameter::SealTimeout(v) => self.seal_timeout = v,
                Hyperparameter::AttestTimeout(v) => self.attest_timeout = v,
                Hyperparameter::MinBatchSize(v) => self.min_batch_size = v,
                Hyperparameter::LearningRate(v) => self.learning_rate_e9 = v,
                Hyperparameter::Epochs(v) => self.epochs = v,
                Hyperparameter::BatchSize(v) => self.batch_size = v,
            }
            self
        }

        fn ensure_valid(&self) -> Result<()> {
            let periods = [self.commit_timeout, self.reveal_timeout, self.seal_timeout, self.attest_timeout];
            let valid = self.lambda_ppm <= rules::LAMBDA_ONE &&
                (1..=MAX_VALIDATORS).contains(&self.validators_per_round) &&
                self.quorum.is_majority() &&
                periods.iter().all(|p| (1..=MAX_PERIOD).contains(p)) &&
                self.min_batch_size >= 1 &&
                u64::from(MAX_DATA_IDS) >= self.min_batch_size &&
                self.epochs >= 1 &&
                self.batch_size >= 1;
            if valid {
                Ok(())
            } else {
                Err(Error::InvalidHyperparameters)
            }
        }
    }

    /// How governance decides.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct GovernanceParams {
        /// Blocks a proposal is open for votes.
        pub voting_period: u32,
        /// Blocks between the end of voting and enactment.
        pub enactment_delay: u32,
        /// Share of the members (at creation) that must vote, in (0, 1].
        pub quorum: Fraction,
        /// Share of the votes cast that must be ayes, in (1/2, 1].
        pub threshold: Fraction,
    }

    impl GovernanceParams {
        fn ensure_valid(&self) -> Result<()> {
            let quorum_ok = self.quorum.den > 0 && self.quorum.num > 0 && self.quorum.num <= self.quorum.den;
            let valid = (1..=MAX_PERIOD).contains(&self.voting_period) &&
                self.enactment_delay <= MAX_PERIOD &&
                quorum_ok &&
                self.threshold.is_majority();
            if valid {
                Ok(())
            } else {
                Err(Error::InvalidGovernanceParams)
            }
        }
    }

    /// The constructor's input.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub struct Genesis {
        /// Hash of the ONNX graph without weight values.
        pub architecture_hash: H256,
        /// Hash of the initial model parameters.
        pub parameter_hash: H256,
        /// Where the initial model is in the vault.
        pub vault_ref: Vec<u8>,
        /// Hash of the global test set G.
        pub test_set_hash: H256,
        /// Number of samples in G (> 0).
        pub test_set_size: u32,
        /// The metric.
        pub metric: MetricKind,
        /// Whether a higher metric is better; must agree with `metric`.
        pub higher_is_better: bool,
        /// The initial model's metric on G (fixed point, 1.0 = 1_000_000).
        pub performance: i64,
        /// Round hyperparameters.
        pub hyperparameters: Hyperparameters,
        /// Governance parameters.
        pub governance: GovernanceParams,
        /// The founding members (1..=MAX_MEMBERS, distinct).
        pub founders: Vec<Address>,
        /// The vault operator's audit-anchors contract, if deployed.
        pub audit_anchors: Option<Address>,
    }

    /// What the coalition evaluates models against, fixed at genesis.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct EvaluationSpec {
        /// Hash of the ONNX graph without weight values: every candidate must have it.
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

    /// A member and the samples it has contributed (`D_i`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Member {
        /// The member's account.
        pub account: Address,
        /// Samples in its appended contributions.
        pub samples: u64,
    }

    /// A block of the model chain.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct ModelBlock {
        /// Height (0 for genesis).
        pub index: u32,
        /// Timestamp (ms) at sealing.
        pub timestamp: u64,
        /// The previous block's hash (zero for genesis).
        pub previous_hash: H256,
        /// Hash of the model parameters.
        pub parameter_hash: H256,
        /// Where the model is in the vault.
        pub vault_ref: Vec<u8>,
        /// The member whose increment this is (none for genesis and reverts).
        pub contributor: Option<Address>,
        /// Samples the increment was trained on.
        pub samples: u64,
        /// `keccak(SCALE(strengths))` of every member's strength once this block is appended;
        /// the strengths themselves are in the block's `BlockAppended` event.
        pub strengths_hash: H256,
        /// Merged performance that accepted it (genesis: on G).
        pub performance: i64,
        /// The round that produced it, if any.
        pub round: Option<u64>,
        /// `keccak(SCALE(index, timestamp, previous_hash, parameter_hash, contributor,
        /// strengths_hash))`.
        pub block_hash: H256,
    }

    /// A validator's score report on a candidate.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Report {
        /// The round it is for.
        pub round: u64,
        /// The candidate parameter hash it is for.
        pub candidate: H256,
        /// Metric on G.
        pub g_metric: i64,
        /// Digest of the predictions on G.
        pub g_digest: H256,
        /// Metric on the validator's local set L.
        pub l_metric: i64,
        /// Samples in L.
        pub l_size: u32,
        /// Whether the validator accepts the candidate.
        pub accept: bool,
    }

    /// A validator's part in a round.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Ballot {
        /// Its commitment, once committed.
        pub commitment: Option<H256>,
        /// Its report, once revealed.
        pub report: Option<Report>,
        /// Whether it attested the sealed block.
        pub attested: bool,
        /// Whether its G digest disagreed with the majority (set at tally).
        pub deviant: bool,
        /// Whether it is in the G majority and voted accept: eligible as general (set at tally).
        pub accepting: bool,
        /// Whether it was drawn as general.
        pub drawn_as_general: bool,
    }

    /// Why a round rejected its candidate.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum Rejection {
        /// The digests of predictions on G did not agree among `quorum` of the reveals.
        InconsistentPredictions,
        /// The merged performance fell below lambda times the tip's.
        Degrades,
        /// Fewer than `quorum` of the selected validators voted accept.
        NotEnoughVotes,
    }

    /// Why a round ended without a decision or without a block.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum Failure {
        /// No validator committed in time.
        NoCommits,
        /// No committed validator revealed in time.
        NoReveals,
        /// Every accepting validator was general and none sealed in time.
        NoGeneral,
        /// Too few validators attested the sealed block in time.
        NotAttested,
    }

    /// Where a round is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum Phase {
        /// Validators commit.
        Commit,
        /// Validators reveal.
        Reveal,
        /// Accepted; the general seals.
        Sealing,
        /// Sealed; validators attest.
        Attesting,
        /// The block is on the chain.
        Appended,
        /// The candidate was rejected.
        Rejected(Rejection),
        /// The round failed.
        Failed(Failure),
    }

    /// The block a general sealed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Seal {
        /// Where the general stored the model.
        pub vault_ref: Vec<u8>,
        /// Timestamp of sealing.
        pub timestamp: u64,
        /// The block's hash.
        pub block_hash: H256,
        /// Hash of the strengths hashed into it.
        pub strengths_hash: H256,
    }

    /// A round: one candidate and its verdict. Its validators are in `round_validators`, its
    /// vault reference in `candidate_refs`, each validator's part in `ballots`, the sealed block
    /// in `seals`: this record must fit one storage value.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Round {
        /// Round id.
        pub id: u64,
        /// The member who proposed the candidate.
        pub proposer: Address,
        /// Index of the tip the candidate builds on.
        pub parent: u32,
        /// That tip's hash.
        pub parent_hash: H256,
        /// The candidate's parameter hash.
        pub candidate: H256,
        /// Samples it was trained on.
        pub samples: u64,
        /// Number of validators drawn (`min(k, N - 1)`).
        pub validators: u32,
        /// The seed of every draw in this round.
        pub seed: H256,
        /// Hyperparameters as they were when the round opened.
        pub params: Hyperparameters,
        /// Current phase.
        pub phase: Phase,
        /// Last block of the current phase.
        pub deadline: BlockNumber,
        /// Commits so far.
        pub commits: u32,
        /// Reveals so far.
        pub reveals: u32,
        /// Merged performance, once tallied.
        pub performance: Option<i64>,
        /// Accept votes of validators in the G majority, once tallied.
        pub accepts: u32,
        /// Validators whose G digest disagreed with the majority, once tallied.
        pub deviants: u32,
        /// Generals drawn so far.
        pub generals_drawn: u32,
        /// The current general.
        pub general: Option<Address>,
        /// Attestations so far (the general's seal included).
        pub attestations: u32,
        /// The block it appended.
        pub block: Option<u32>,
    }

    /// A governance action.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum Action {
        /// Change one hyperparameter.
        SetHyperparameter(Hyperparameter),
        /// Change how governance decides.
        SetGovernance(GovernanceParams),
        /// Admit a member.
        AddMember(Address),
        /// Remove a member (its `D_i` leaves `D`).
        RemoveMember(Address),
        /// Append a block with the parameters of block `index`.
        Revert(u32),
        /// Record the vault's audit-anchors contract.
        SetAuditAnchors(Option<Address>),
    }

    /// Why governance rejected a proposal.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum ProposalRejection {
        /// Too few members voted.
        QuorumNotMet,
        /// Too few of the votes were ayes.
        ThresholdNotMet,
    }

    /// Where a proposal is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub enum ProposalStatus {
        /// Voting, or waiting for enactment.
        Open,
        /// Rejected.
        Rejected(ProposalRejection),
        /// Enacted.
        Enacted,
    }

    /// A governance proposal.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    #[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
    pub struct Proposal {
        /// Proposal id.
        pub id: u32,
        /// Who proposed it.
        pub proposer: Address,
        /// What it does.
        pub action: Action,
        /// Last block of voting.
        pub voting_ends: BlockNumber,
        /// Members when it was created: the base of the quorum.
        pub electorate: u32,
        /// Aye votes.
        pub ayes: u32,
        /// Nay votes.
        pub nays: u32,
        /// Status.
        pub status: ProposalStatus,
    }

    /// Errors of the coalition's messages.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[ink::scale_derive(Encode, Decode, TypeInfo)]
    pub enum Error {
        /// The genesis is inconsistent (metric direction, empty G, founders, vault reference).
        InvalidGenesis,
        /// A hyperparameter is out of its range.
        InvalidHyperparameters,
        /// A governance parameter is out of its range.
        InvalidGovernanceParams,
        /// The caller is not a member.
        NotMember,
        /// The account is a member already.
        AlreadyMember,
        /// The coalition has `MAX_MEMBERS` members.
        TooManyMembers,
        /// The last member cannot be removed.
        LastMember,
        /// A round is open.
        RoundOpen,
        /// No round is open.
        NoOpenRound,
        /// The round is not the open one, or does not exist.
        WrongRound,
        /// The round is not in the phase this message needs.
        WrongPhase,
        /// The parent is not the tip.
        StaleParent,
        /// Fewer samples than the minimum batch size.
        BatchTooSmall,
        /// The number of data IDs differs from the sample count.
        DataIdCountMismatch,
        /// More than `MAX_DATA_IDS` data IDs.
        TooManyDataIds,
        /// A data ID appears twice in the proposal.
        DuplicateDataId,
        /// A data ID is in an appended block already.
        DataIdUsed,
        /// The vault reference is empty or longer than `MAX_VAULT_REF`.
        InvalidVaultRef,
        /// No member other than the proposer can validate.
        NoEligibleValidators,
        /// The caller is not a validator of this round.
        NotValidator,
        /// The caller committed already.
        AlreadyCommitted,
        /// The caller did not commit.
        NotCommitted,
        /// The caller revealed already.
        AlreadyRevealed,
        /// The phase's deadline has passed.
        DeadlinePassed,
        /// The phase's deadline has not passed yet.
        DeadlineNotReached,
        /// The report names another round or candidate.
        ReportMismatch,
        /// The report and salt do not hash to the commitment.
        CommitmentMismatch,
        /// The caller is not the round's general.
        NotGeneral,
        /// The attested block hash is not the sealed one.
        SealMismatch,
        /// The caller attested already.
        AlreadyAttested,
        /// No such proposal.
        UnknownProposal,
        /// The proposal is not open.
        ProposalClosed,
        /// Voting on the proposal has ended.
        VotingEnded,
        /// Voting on the proposal has not ended.
        VotingOpen,
        /// The enactment delay has not passed.
        EnactmentNotDue,
        /// The caller voted already.
        AlreadyVoted,
        /// `MAX_OPEN_PROPOSALS` are open.
        TooManyProposals,
        /// A revert must target an earlier block.
        InvalidRevert,
        /// A counter would overflow.
        Overflow,
    }

    /// Result type of the coalition's messages.
    pub type Result<T> = core::result::Result<T, Error>;

    /// A member joined.
    #[ink(event)]
    pub struct MemberAdded {
        /// The new member.
        #[ink(topic)]
        pub member: Address,
    }

    /// A member left.
    #[ink(event)]
    pub struct MemberRemoved {
        /// The former member.
        #[ink(topic)]
        pub member: Address,
    }

    /// Strengths changed because `N` or some `D_i` changed.
    #[ink(event)]
    pub struct StrengthsUpdated {
        /// Members, `N`.
        pub members: u32,
        /// Samples, `D`.
        pub total_samples: u64,
        /// Every member's strength.
        pub strengths: Vec<(Address, u64)>,
    }

    /// A round opened on a candidate.
    #[ink(event)]
    pub struct RoundOpened {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The proposer.
        #[ink(topic)]
        pub proposer: Address,
        /// The candidate's parameter hash.
        pub candidate: H256,
        /// The tip it builds on.
        pub parent: u32,
        /// Where it is in the vault.
        pub vault_ref: Vec<u8>,
        /// The validators drawn.
        pub validators: Vec<Address>,
        /// Last block to commit.
        pub commit_deadline: BlockNumber,
    }

    /// A validator committed.
    #[ink(event)]
    pub struct Committed {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The validator.
        #[ink(topic)]
        pub validator: Address,
    }

    /// A round moved to another phase.
    #[ink(event)]
    pub struct PhaseChanged {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The new phase.
        pub phase: Phase,
        /// Its last block (for open phases).
        pub deadline: BlockNumber,
    }

    /// A validator revealed its report.
    #[ink(event)]
    pub struct Revealed {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The validator.
        #[ink(topic)]
        pub validator: Address,
        /// The report.
        pub report: Report,
    }

    /// A validator's G digest disagreed with the majority.
    #[ink(event)]
    pub struct ValidatorDeviated {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The validator.
        #[ink(topic)]
        pub validator: Address,
    }

    /// A round was tallied.
    #[ink(event)]
    pub struct RoundTallied {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// `None` if accepted, else why not.
        pub rejection: Option<Rejection>,
        /// Merged performance (none when predictions were inconsistent).
        pub performance: Option<i64>,
        /// The tip's performance it was compared with.
        pub previous_performance: i64,
        /// Accept votes counted.
        pub accepts: u32,
    }

    /// A general was drawn to seal the block.
    #[ink(event)]
    pub struct GeneralChosen {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The general.
        #[ink(topic)]
        pub general: Address,
    }

    /// The general sealed the block.
    #[ink(event)]
    pub struct Sealed {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The general.
        #[ink(topic)]
        pub general: Address,
        /// The block's hash.
        pub block_hash: H256,
        /// Where the model is in the vault.
        pub vault_ref: Vec<u8>,
    }

    /// A validator attested the sealed block.
    #[ink(event)]
    pub struct Attested {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// The validator.
        #[ink(topic)]
        pub validator: Address,
    }

    /// A round failed.
    #[ink(event)]
    pub struct RoundFailed {
        /// Round id.
        #[ink(topic)]
        pub round: u64,
        /// Why.
        pub reason: Failure,
    }

    /// A block was appended to the model chain.
    #[ink(event)]
    pub struct BlockAppended {
        /// Its index.
        #[ink(topic)]
        pub index: u32,
        /// Its hash.
        pub block_hash: H256,
        /// Its parameter hash.
        pub parameter_hash: H256,
        /// Its contributor.
        pub contributor: Option<Address>,
        /// The round, or none for a revert.
        pub round: Option<u64>,
        /// Every member's strength once the block is appended (hashed into `block_hash`).
        pub strengths: Vec<(Address, u64)>,
    }

    /// A governance proposal was made.
    #[ink(event)]
    pub struct ProposalCreated {
        /// Proposal id.
        #[ink(topic)]
        pub proposal: u32,
        /// Who made it.
        #[ink(topic)]
        pub proposer: Address,
        /// What it does.
        pub action: Action,
        /// Last block of voting.
        pub voting_ends: BlockNumber,
    }

    /// A member voted.
    #[ink(event)]
    pub struct Voted {
        /// Proposal id.
        #[ink(topic)]
        pub proposal: u32,
        /// The voter.
        #[ink(topic)]
        pub voter: Address,
        /// Aye or nay.
        pub aye: bool,
    }

    /// A proposal was rejected.
    #[ink(event)]
    pub struct ProposalRejected {
        /// Proposal id.
        #[ink(topic)]
        pub proposal: u32,
        /// Why.
        pub reason: ProposalRejection,
    }

    /// A proposal was enacted.
    #[ink(event)]
    pub struct ProposalEnacted {
        /// Proposal id.
        #[ink(topic)]
        pub proposal: u32,
        /// What it did.
        pub action: Action,
    }

    /// Contract storage. Everything outside a `Mapping` is one storage value, so collections
    /// live in mappings.
    #[ink(storage)]
    pub struct Coalition {
        /// Architecture, G and metric: fixed at genesis.
        spec: EvaluationSpec,
        /// Current hyperparameters.
        params: Hyperparameters,
        /// Current governance parameters.
        governance: GovernanceParams,
        /// Members by slot, `0..member_count` (removal moves the last member into the gap).
        members: Mapping<u32, Member>,
        /// Slot of each member.
        member_slots: Mapping<Address, u32>,
        /// Number of members, `N` (at most `MAX_MEMBERS`).
        member_count: u32,
        /// The model chain by index, `0..=height`.
        blocks: Mapping<u32, ModelBlock>,
        /// Index of the tip.
        height: u32,
        /// Rounds by id, `0..next_round`.
        rounds: Mapping<u64, Round>,
        /// Each round's validators, in draw order.
        round_validators: Mapping<u64, Vec<Address>>,
        /// Each round's candidate vault reference.
        candidate_refs: Mapping<u64, Vec<u8>>,
        /// Each sealed round's block.
        seals: Mapping<u64, Seal>,
        /// Each validator's ballot, by (round, validator).
        ballots: Mapping<(u64, Address), Ballot>,
        /// The open round, if any.
        open_round: Option<u64>,
        /// Id of the next round.
        next_round: u64,
        /// The last round that claimed each data ID; the ID is used iff that round appended.
        data_ids: Mapping<H256, u64>,
        /// Proposals by id, `0..next_proposal`.
        proposals: Mapping<u32, Proposal>,
        /// Votes by (proposal, member).
        votes: Mapping<(u32, Address), bool>,
        /// Id of the next proposal.
        next_proposal: u32,
        /// Proposals with status `Open`.
        open_proposals: u32,
        /// The vault's audit-anchors contract.
        audit_anchors: Option<Address>,
    }

    impl Coalition {
        /// Found a coalition: block 0 is the genesis model.
        #[ink(constructor)]
        pub fn new(genesis: Genesis) -> Result<Self> {
            Self::ensure_genesis(&genesis)?;
            let mut coalition = Self {
                spec: EvaluationSpec {
                    architecture_hash: genesis.architecture_hash,
                    test_set_hash: genesis.test_set_hash,
                    test_set_size: genesis.test_set_size,
                    metric: genesis.metric,
                    higher_is_better: genesis.higher_is_better,
                },
                params: genesis.hyperparameters,
                governance: genesis.governance,
                members: Mapping::new(),
                member_slots: Mapping::new(),
                member_count: 0,
                blocks: Mapping::new(),
                height: 0,
                rounds: Mapping::new(),
                round_validators: Mapping::new(),
                candidate_refs: Mapping::new(),
                seals: Mapping::new(),
                ballots: Mapping::new(),
                open_round: None,
                next_round: 0,
                data_ids: Mapping::new(),
                proposals: Mapping::new(),
                votes: Mapping::new(),
                next_proposal: 0,
                open_proposals: 0,
                audit_anchors: genesis.audit_anchors,
            };
            for account in &genesis.founders {
                coalition.add_member(*account)?;
            }
            let strengths = coalition.strengths();
            let timestamp = coalition.env().block_timestamp();
            let strengths_hash = hash_strengths(&strengths);
            let block_hash =
                block_hash(0, timestamp, &H256::zero(), &genesis.parameter_hash, &None, &strengths_hash);
            let block = ModelBlock {
                index: 0,
                timestamp,
                previous_hash: H256::zero(),
                parameter_hash: genesis.parameter_hash,
                vault_ref: genesis.vault_ref,
                contributor: None,
                samples: 0,
                strengths_hash,
                performance: genesis.performance,
                round: None,
                block_hash,
            };
            coalition.blocks.insert(0, &block);
            coalition.emit_strengths();
            coalition.env().emit_event(BlockAppended {
                index: 0,
                block_hash,
                parameter_hash: genesis.parameter_hash,
                contributor: None,
                round: None,
                strengths,
            });
            Ok(coalition)
        }

        // ---- Queries -------------------------------------------------------------------

        /// What candidates are evaluated against.
        #[ink(message)]
        pub fn evaluation_spec(&self) -> EvaluationSpec {
            self.spec
        }

        /// Current hyperparameters.
        #[ink(message)]
        pub fn hyperparameters(&self) -> Hyperparameters {
            self.params
        }

        /// Current governance parameters.
        #[ink(message)]
        pub fn governance_params(&self) -> GovernanceParams {
            self.governance
        }

        /// Members with their `D_i`, in slot order.
        #[ink(message)]
        pub fn members(&self) -> Vec<Member> {
            (0..self.member_count).filter_map(|slot| self.members.get(slot)).collect()
        }

        /// Every member's strength (parts per billion), in slot order.
        #[ink(message)]
        pub fn strengths(&self) -> Vec<(Address, u64)> {
            let members = self.members();
            let total = total_samples(&members);
            members
                .iter()
                .map(|m| (m.account, rules::strength(self.member_count, m.samples, total)))
                .collect()
        }

        /// One member's strength, if it is a member.
        #[ink(message)]
        pub fn strength_of(&self, account: Address) -> Option<u64> {
            self.member_slots.get(account)?;
            self.strengths().into_iter().find(|(a, _)| *a == account).map(|(_, s)| s)
        }

        /// Index of the tip.
        #[ink(message)]
        pub fn height(&self) -> u32 {
            self.height
        }

        /// Block `index` of the model chain.
        #[ink(message)]
        pub fn block(&self, index: u32) -> Option<ModelBlock> {
            self.blocks.get(index)
        }

        /// The open round's id, if any.
        #[ink(message)]
        pub fn open_round(&self) -> Option<u64> {
            self.open_round
        }

        /// Round `id`.
        #[ink(message)]
        pub fn round(&self, id: u64) -> Option<Round> {
            self.rounds.get(id)
        }

        /// Round `id`'s validators, in draw order.
        #[ink(message)]
        pub fn round_validators(&self, id: u64) -> Vec<Address> {
            self.round_validators.get(id).unwrap_or_default()
        }

        /// Round `id`'s candidate vault reference.
        #[ink(message)]
        pub fn candidate_ref(&self, id: u64) -> Option<Vec<u8>> {
            self.candidate_refs.get(id)
        }

        /// Round `id`'s sealed block, once sealed.
        #[ink(message)]
        pub fn seal_of(&self, id: u64) -> Option<Seal> {
            self.seals.get(id)
        }

        /// A validator's ballot in a round.
        #[ink(message)]
        pub fn ballot(&self, round: u64, validator: Address) -> Option<Ballot> {
            self.ballots.get((round, validator))
        }

        /// The block a data ID was used in, if any.
        #[ink(message)]
        pub fn data_id_block(&self, id: H256) -> Option<u32> {
            self.rounds.get(self.data_ids.get(id)?)?.block
        }

        /// Proposal `id`.
        #[ink(message)]
        pub fn proposal(&self, id: u32) -> Option<Proposal> {
            self.proposals.get(id)
        }

        /// The vault's audit-anchors contract.
        #[ink(message)]
        pub fn audit_anchors(&self) -> Option<Address> {
            self.audit_anchors
        }

        /// The commitment `validator` must commit for `report` and `salt`:
        /// `keccak(SCALE(validator, report, salt))`.
        #[ink(message)]
        pub fn commitment_of(&self, validator: Address, report: Report, salt: [u8; 32]) -> H256 {
            commitment(&validator, &report, &salt)
        }

        // ---- Rounds --------------------------------------------------------------------

        /// Propose a candidate on the tip and open a round. Returns the round id.
        #[ink(message)]
        pub fn propose(
            &mut self,
            parent: u32,
            candidate: H256,
            vault_ref: Vec<u8>,
            samples: u64,
            data_ids: Vec<H256>,
        ) -> Result<u64> {
            let proposer = self.env().caller();
            self.ensure_member(&proposer)?;
            self.ensure_no_open_round()?;
            if parent != self.height {
                return Err(Error::StaleParent);
            }
            ensure_vault_ref(&vault_ref)?;
            if samples < self.params.min_batch_size {
                return Err(Error::BatchTooSmall);
            }
            if data_ids.len() > MAX_DATA_IDS as usize {
                return Err(Error::TooManyDataIds);
            }
            if u64::try_from(data_ids.len()).ok() != Some(samples) {
                return Err(Error::DataIdCountMismatch);
            }
            self.ensure_fresh_data_ids(&data_ids)?;

            let id = self.next_round;
            let next_round = id.checked_add(1).ok_or(Error::Overflow)?;
            let tip = self.tip()?;
            let eligible: Vec<(Address, u64)> =
                self.strengths().into_iter().filter(|(account, _)| *account != proposer).collect();
            if eligible.is_empty() {
                return Err(Error::NoEligibleValidators);
            }
            let seed = rules::round_seed(&self.chain_randomness(), id, &tip.block_hash.0);
            let validators =
                rules::select_weighted(&eligible, self.params.validators_per_round as usize, seed);
            let deadline = self.deadline_after(self.params.commit_timeout)?;
            let round = Round {
                id,
                proposer,
                parent,
                parent_hash: tip.block_hash,
                candidate,
                samples,
                validators: u32::try_from(validators.len()).map_err(|_| Error::Overflow)?,
                seed: H256::from(seed),
                params: self.params,
                phase: Phase::Commit,
                deadline,
                commits: 0,
                reveals: 0,
                performance: None,
                accepts: 0,
                deviants: 0,
                generals_drawn: 0,
                general: None,
                attestations: 0,
                block: None,
            };
            for data_id in &data_ids {
                self.data_ids.insert(data_id, &id);
            }
            self.rounds.insert(id, &round);
            self.round_validators.insert(id, &validators);
            self.candidate_refs.insert(id, &vault_ref);
            self.open_round = Some(id);
            self.next_round = next_round;
            self.env().emit_event(RoundOpened {
                round: id,
                proposer,
                candidate,
                parent,
                vault_ref,
                validators,
                commit_deadline: deadline,
            });
            Ok(id)
        }

        /// Commit to a report: `commitment = keccak(SCALE(caller, report, salt))`.
        #[ink(message)]
        pub fn commit(&mut self, round: u64, commitment: H256) -> Result<()> {
            let validator = self.env().caller();
            let mut state = self.open_round_in(round, Phase::Commit)?;
            self.ensure_before_deadline(&state)?;
            let mut ballot = self.ensure_validator_ballot(round, &validator)?;
            if ballot.commitment.is_some() {
                return Err(Error::AlreadyCommitted);
            }
            ballot.commitment = Some(commitment);
            state.commits = state.commits.checked_add(1).ok_or(Error::Overflow)?;
            self.ballots.insert((round, validator), &ballot);
            self.env().emit_event(Committed { round, validator });
            if state.commits >= state.validators {
                self.enter(&mut state, Phase::Reveal)?;
            }
            self.rounds.insert(round, &state);
            Ok(())
        }

        /// Reveal the committed report and its salt.
        #[ink(message)]
        pub fn reveal(&mut self, round: u64, report: Report, salt: [u8; 32]) -> Result<()> {
            let validator = self.env().caller();
            let mut state = self.open_round_in(round, Phase::Reveal)?;
            self.ensure_before_deadline(&state)?;
            let mut ballot = self.ensure_validator_ballot(round, &validator)?;
            let committed = ballot.commitment.ok_or(Error::NotCommitted)?;
            if ballot.report.is_some() {
                return Err(Error::AlreadyRevealed);
            }
            if report.round != round || report.candidate != state.candidate {
                return Err(Error::ReportMismatch);
            }
            if commitment(&validator, &report, &salt) != committed {
                return Err(Error::CommitmentMismatch);
            }
            ballot.report = Some(report);
            state.reveals = state.reveals.checked_add(1).ok_or(Error::Overflow)?;
            self.ballots.insert((round, validator), &ballot);
            self.env().emit_event(Revealed { round, validator, report });
            if state.reveals >= state.commits {
                self.tally(&mut state)?;
            }
            self.rounds.insert(round, &state);
            Ok(())
        }

        /// The general seals the accepted candidate: `vault_ref` is where it stored the model.
        /// Returns the block hash validators attest.
        #[ink(message)]
        pub fn seal(&mut self, round: u64, vault_ref: Vec<u8>) -> Result<H256> {
            let general = self.env().caller();
            let mut state = self.open_round_in(round, Phase::Sealing)?;
            self.ensure_before_deadline(&state)?;
            if state.general != Some(general) {
                return Err(Error::NotGeneral);
            }
            ensure_vault_ref(&vault_ref)?;
            let strengths = self.strengths_after(&state.proposer, state.samples)?;
            let strengths_hash = hash_strengths(&strengths);
            let timestamp = self.env().block_timestamp();
            let index = self.height.checked_add(1).ok_or(Error::Overflow)?;
            let hash = block_hash(
                index,
                timestamp,
                &state.parent_hash,
                &state.candidate,
                &Some(state.proposer),
                &strengths_hash,
            );
            self.seals.insert(
                round,
                &Seal { vault_ref: vault_ref.clone(), timestamp, block_hash: hash, strengths_hash },
            );
            let mut ballot = self.ballots.get((round, general)).unwrap_or_default();
            ballot.attested = true;
            self.ballots.insert((round, general), &ballot);
            state.attestations = 1;
            self.env().emit_event(Sealed { round, general, block_hash: hash, vault_ref });
            self.enter(&mut state, Phase::Attesting)?;
            self.append_if_attested(&mut state)?;
            self.rounds.insert(round, &state);
            Ok(hash)
        }

        /// Attest that the sealed model is in the vault and matches `block_hash`.
        #[ink(message)]
        pub fn attest(&mut self, round: u64, block_hash: H256) -> Result<()> {
            let validator = self.env().caller();
            let mut state = self.open_round_in(round, Phase::Attesting)?;
            self.ensure_before_deadline(&state)?;
            let mut ballot = self.ensure_validator_ballot(round, &validator)?;
            if self.seals.get(round).map(|s| s.block_hash) != Some(block_hash) {
                return Err(Error::SealMismatch);
            }
            if ballot.attested {
                return Err(Error::AlreadyAttested);
            }
            ballot.attested = true;
            state.attestations = state.attestations.checked_add(1).ok_or(Error::Overflow)?;
            self.ballots.insert((round, validator), &ballot);
            self.env().emit_event(Attested { round, validator });
            self.append_if_attested(&mut state)?;
            self.rounds.insert(round, &state);
            Ok(())
        }

        /// After the open round's deadline, move it on: commit → reveal (or fail without
        /// commits), reveal → tally, sealing → the next general (or fail), attesting → fail.
        /// Anyone may call it. Returns the new phase.
        #[ink(message)]
        pub fn advance(&mut self) -> Result<Phase> {
            let id = self.open_round.ok_or(Error::NoOpenRound)?;
            let mut state = self.rounds.get(id).ok_or(Error::WrongRound)?;
            if self.env().block_number() <= state.deadline {
                return Err(Error::DeadlineNotReached);
            }
            match state.phase {
                Phase::Commit if state.commits == 0 => self.fail(&mut state, Failure::NoCommits),
                Phase::Commit => self.enter(&mut state, Phase::Reveal)?,
                Phase::Reveal => self.tally(&mut state)?,
                Phase::Sealing => self.next_general(&mut state)?,
                Phase::Attesting => self.fail(&mut state, Failure::NotAttested),
                _ => return Err(Error::NoOpenRound),
            }
            self.rounds.insert(id, &state);
            Ok(state.phase)
        }

        // ---- Governance ----------------------------------------------------------------

        /// Propose a governance action. Returns the proposal id.
        #[ink(message)]
        pub fn propose_action(&mut self, action: Action) -> Result<u32> {
            let proposer = self.env().caller();
            self.ensure_member(&proposer)?;
            if self.open_proposals >= MAX_OPEN_PROPOSALS {
                return Err(Error::TooManyProposals);
            }
            self.ensure_action_valid(&action)?;
            let id = self.next_proposal;
            let voting_ends = self.deadline_after(self.governance.voting_period)?;
            let proposal = Proposal {
                id,
                proposer,
                action,
                voting_ends,
                electorate: self.member_count,
                ayes: 0,
                nays: 0,
                status: ProposalStatus::Open,
            };
            self.next_proposal = id.checked_add(1).ok_or(Error::Overflow)?;
            self.open_proposals = self.open_proposals.checked_add(1).ok_or(Error::Overflow)?;
            self.proposals.insert(id, &proposal);
            self.env().emit_event(ProposalCreated { proposal: id, proposer, action, voting_ends });
            Ok(id)
        }

        /// Vote on an open proposal: one member, one vote.
        #[ink(message)]
        pub fn vote(&mut self, proposal: u32, aye: bool) -> Result<()> {
            let voter = self.env().caller();
            self.ensure_member(&voter)?;
            let mut state = self.proposals.get(proposal).ok_or(Error::UnknownProposal)?;
            if state.status != ProposalStatus::Open {
                return Err(Error::ProposalClosed);
            }
            if self.env().block_number() > state.voting_ends {
                return Err(Error::VotingEnded);
            }
            if self.votes.contains((proposal, voter)) {
                return Err(Error::AlreadyVoted);
            }
            if aye {
                state.ayes = state.ayes.checked_add(1).ok_or(Error::Overflow)?;
            } else {
                state.nays = state.nays.checked_add(1).ok_or(Error::Overflow)?;
            }
            self.votes.insert((proposal, voter), &aye);
            self.proposals.insert(proposal, &state);
            self.env().emit_event(Voted { proposal, voter, aye });
            Ok(())
        }

        /// After voting ends: reject a proposal that missed quorum or threshold, or enact one
        /// that passed once the enactment delay is over. Anyone may call it.
        #[ink(message)]
        pub fn enact(&mut self, proposal: u32) -> Result<ProposalStatus> {
            let mut state = self.proposals.get(proposal).ok_or(Error::UnknownProposal)?;
            if state.status != ProposalStatus::Open {
                return Err(Error::ProposalClosed);
            }
            let now = self.env().block_number();
            if now <= state.voting_ends {
                return Err(Error::VotingOpen);
            }
            let turnout = state.ayes.saturating_add(state.nays);
            let rejection = if !self.governance.quorum.reached_by(turnout, state.electorate) {
                Some(ProposalRejection::QuorumNotMet)
            } else if !self.governance.threshold.reached_by(state.ayes, turnout) {
                Some(ProposalRejection::ThresholdNotMet)
            } else {
                None
            };
            if let Some(reason) = rejection {
                state.status = ProposalStatus::Rejected(reason);
                self.close_proposal(&state);
                self.env().emit_event(ProposalRejected { proposal, reason });
                return Ok(state.status);
            }
            if now <= state.voting_ends.saturating_add(self.governance.enactment_delay) {
                return Err(Error::EnactmentNotDue);
            }
            self.ensure_action_valid(&state.action)?;
            self.apply(state.action)?;
            state.status = ProposalStatus::Enacted;
            self.close_proposal(&state);
            self.env().emit_event(ProposalEnacted { proposal, action: state.action });
            Ok(state.status)
        }

        // ---- Internals -----------------------------------------------------------------

        fn ensure_genesis(genesis: &Genesis) -> Result<()> {
            genesis.hyperparameters.ensure_valid()?;
            genesis.governance.ensure_valid()?;
            ensure_vault_ref(&genesis.vault_ref).map_err(|_| Error::InvalidGenesis)?;
            let mut founders = genesis.founders.clone();
            founders.sort_unstable();
            founders.dedup();
            let valid = genesis.test_set_size > 0 &&
                genesis.higher_is_better == genesis.metric.higher_is_better() &&
                !founders.is_empty() &&
                founders.len() == genesis.founders.len() &&
                founders.len() <= MAX_MEMBERS as usize;
            if valid {
                Ok(())
            } else {
                Err(Error::InvalidGenesis)
            }
        }

        fn ensure_member(&self, account: &Address) -> Result<()> {
            if self.member_slots.contains(account) {
                Ok(())
            } else {
                Err(Error::NotMember)
            }
        }

        fn ensure_no_open_round(&self) -> Result<()> {
            match self.open_round {
                Some(_) => Err(Error::RoundOpen),
                None => Ok(()),
            }
        }

        /// No duplicates in `data_ids`, and none in an appended block.
        fn ensure_fresh_data_ids(&self, data_ids: &[H256]) -> Result<()> {
            let mut sorted = data_ids.to_vec();
            sorted.sort_unstable();
            if sorted.windows(2).any(|pair| pair.first() == pair.get(1)) {
                return Err(Error::DuplicateDataId);
            }
            if data_ids.iter().any(|id| self.data_id_block(*id).is_some()) {
                return Err(Error::DataIdUsed);
            }
            Ok(())
        }

        /// The open round `id`, which must be in `phase`.
        fn open_round_in(&self, id: u64, phase: Phase) -> Result<Round> {
            if self.open_round != Some(id) {
                return Err(Error::WrongRound);
            }
            let round = self.rounds.get(id).ok_or(Error::WrongRound)?;
            if round.phase != phase {
                return Err(Error::WrongPhase);
            }
            Ok(round)
        }

        fn ensure_before_deadline(&self, round: &Round) -> Result<()> {
            if self.env().block_number() > round.deadline {
                Err(Error::DeadlinePassed)
            } else {
                Ok(())
            }
        }

        fn ensure_validator_ballot(&self, round: u64, account: &Address) -> Result<Ballot> {
            if !self.round_validators(round).contains(account) {
                return Err(Error::NotValidator);
            }
            Ok(self.ballots.get((round, *account)).unwrap_or_default())
        }

        fn ensure_action_valid(&self, action: &Action) -> Result<()> {
            match action {
                Action::SetHyperparameter(change) => self.params.with(*change).ensure_valid(),
                Action::SetGovernance(params) => params.ensure_valid(),
                Action::AddMember(account) if self.ensure_member(account).is_ok() => {
                    Err(Error::AlreadyMember)
                },
                Action::AddMember(_) if self.member_count >= MAX_MEMBERS => Err(Error::TooManyMembers),
                Action::RemoveMember(account) => {
                    self.ensure_member(account)?;
                    if self.member_count <= 1 {
                        return Err(Error::LastMember);
                    }
                    Ok(())
                },
                Action::Revert(index) if *index >= self.height => Err(Error::InvalidRevert),
                _ => Ok(()),
            }
        }

        fn apply(&mut self, action: Action) -> Result<()> {
            match action {
                Action::SetHyperparameter(change) => self.params = self.params.with(change),
                Action::SetGovernance(params) => self.governance = params,
                Action::SetAuditAnchors(address) => self.audit_anchors = address,
                Action::AddMember(account) => {
                    self.ensure_no_open_round()?;
                    self.add_member(account)?;
                    self.emit_strengths();
                },
                Action::RemoveMember(account) => {
                    self.ensure_no_open_round()?;
                    self.remove_member(account)?;
                    self.emit_strengths();
                },
                Action::Revert(index) => {
                    self.ensure_no_open_round()?;
                    let target = self.blocks.get(index).ok_or(Error::InvalidRevert)?;
                    let strengths = self.strengths();
                    let timestamp = self.env().block_timestamp();
                    self.append_block(
                        NewBlock {
                            parameter_hash: target.parameter_hash,
                            vault_ref: target.vault_ref,
                            contributor: None,
                            samples: 0,
                            performance: target.performance,
                            round: None,
                            timestamp,
                        },
                        strengths,
                    )?;
                },
            }
            Ok(())
        }

        fn add_member(&mut self, account: Address) -> Result<()> {
            let slot = self.member_count;
            self.member_count = slot.checked_add(1).ok_or(Error::Overflow)?;
            self.members.insert(slot, &Member { account, samples: 0 });
            self.member_slots.insert(account, &slot);
            self.env().emit_event(MemberAdded { member: account });
            Ok(())
        }

        /// Remove `account`, moving the last member into its slot.
        fn remove_member(&mut self, account: Address) -> Result<()> {
            let slot = self.member_slots.take(account).ok_or(Error::NotMember)?;
            let last = self.member_count.checked_sub(1).ok_or(Error::NotMember)?;
            if slot != last {
                let moved = self.members.get(last).ok_or(Error::NotMember)?;
                self.members.insert(slot, &moved);
                self.member_slots.insert(moved.account, &slot);
            }
            self.members.remove(last);
            self.member_count = last;
            self.env().emit_event(MemberRemoved { member: account });
            Ok(())
        }

        fn close_proposal(&mut self, proposal: &Proposal) {
            self.proposals.insert(proposal.id, proposal);
            self.open_proposals = self.open_proposals.saturating_sub(1);
        }

        /// Strengths once `contributor`'s `D_i` grows by `samples`.
        fn strengths_after(&self, contributor: &Address, samples: u64) -> Result<Vec<(Address, u64)>> {
            let mut members = self.members();
            for member in members.iter_mut().filter(|m| m.account == *contributor) {
                member.samples = member.samples.checked_add(samples).ok_or(Error::Overflow)?;
            }
            let total = total_samples(&members);
            Ok(members
                .iter()
                .map(|m| (m.account, rules::strength(self.member_count, m.samples, total)))
                .collect())
        }

        fn emit_strengths(&self) {
            self.env().emit_event(StrengthsUpdated {
                members: self.member_count,
                total_samples: total_samples(&self.members()),
                strengths: self.strengths(),
            });
        }

        fn tip(&self) -> Result<ModelBlock> {
            self.blocks.get(self.height).ok_or(Error::Overflow)
        }

        fn deadline_after(&self, blocks: u32) -> Result<BlockNumber> {
            self.env().block_number().checked_add(blocks).ok_or(Error::Overflow)
        }

        /// Enter an open phase, with its deadline from the round's hyperparameters.
        fn enter(&mut self, round: &mut Round, phase: Phase) -> Result<()> {
            let timeout = match phase {
                Phase::Commit => round.params.commit_timeout,
                Phase::Reveal => round.params.reveal_timeout,
                Phase::Sealing => round.params.seal_timeout,
                Phase::Attesting => round.params.attest_timeout,
                _ => 0,
            };
            round.phase = phase;
            round.deadline = self.deadline_after(timeout)?;
            self.env().emit_event(PhaseChanged { round: round.id, phase, deadline: round.deadline });
            Ok(())
        }

        /// Close the round with a final phase.
        fn close(&mut self, round: &mut Round, phase: Phase) {
            round.phase = phase;
            round.deadline = self.env().block_number();
            self.open_round = None;
            self.env().emit_event(PhaseChanged { round: round.id, phase, deadline: round.deadline });
        }

        fn fail(&mut self, round: &mut Round, reason: Failure) {
            self.close(round, Phase::Failed(reason));
            self.env().emit_event(RoundFailed { round: round.id, reason });
        }

        /// Aggregate the revealed reports and decide (protocol step 6).
        fn tally(&mut self, round: &mut Round) -> Result<()> {
            let mut ballots: Vec<(Address, Ballot, Report)> = self
                .round_validators(round.id)
                .into_iter()
                .filter_map(|v| {
                    let ballot = self.ballots.get((round.id, v))?;
                    ballot.report.map(|report| (v, ballot, report))
                })
                .collect();
            if ballots.is_empty() {
                self.fail(round, Failure::NoReveals);
                return Ok(());
            }
            let previous = self.tip()?.performance;
            let digests: Vec<[u8; 32]> = ballots.iter().map(|(_, _, r)| r.g_digest.0).collect();
            let Some(majority) = rules::majority_digest(&digests, round.params.quorum) else {
                self.reject(round, Rejection::InconsistentPredictions, previous);
                return Ok(());
            };
            let mut g_metrics = Vec::new();
            let mut locals = Vec::new();
            for (validator, ballot, report) in ballots.iter_mut() {
                ballot.deviant = report.g_digest.0 != majority;
                ballot.accepting = !ballot.deviant && report.accept;
                if ballot.deviant {
                    round.deviants = round.deviants.saturating_add(1);
                    self.env().emit_event(ValidatorDeviated { round: round.id, validator: *validator });
                } else {
                    g_metrics.push(report.g_metric);
                    locals.push((report.l_metric, report.l_size));
                }
                if ballot.accepting {
                    round.accepts = round.accepts.saturating_add(1);
                }
                self.ballots.insert((round.id, *validator), ballot);
            }
            let performance = rules::median(&g_metrics)
                .and_then(|g| rules::merged_performance(g, self.spec.test_set_size, &locals))
                .ok_or(Error::Overflow)?;
            round.performance = Some(performance);
            if !rules::keeps_performance(performance, previous, round.params.lambda_ppm, self.spec.higher_is_better) {
                self.reject(round, Rejection::Degrades, previous);
                return Ok(());
            }
            if !round.params.quorum.reached_by(round.accepts, round.validators) {
                self.reject(round, Rejection::NotEnoughVotes, previous);
                return Ok(());
            }
            self.env().emit_event(RoundTallied {
                round: round.id,
                rejection: None,
                performance: Some(performance),
                previous_performance: previous,
                accepts: round.accepts,
            });
            self.next_general(round)
        }

        fn reject(&mut self, round: &mut Round, rejection: Rejection, previous: i64) {
            self.close(round, Phase::Rejected(rejection));
            self.env().emit_event(RoundTallied {
                round: round.id,
                rejection: Some(rejection),
                performance: round.performance,
                previous_performance: previous,
                accepts: round.accepts,
            });
        }

        /// Draw the next general among accepting validators not drawn yet, or fail the round.
        fn next_general(&mut self, round: &mut Round) -> Result<()> {
            let pool: Vec<(Address, u64)> = self
                .round_validators(round.id)
                .into_iter()
                .filter(|v| {
                    self.ballots.get((round.id, *v)).is_some_and(|b| b.accepting && !b.drawn_as_general)
                })
                .map(|v| (v, 1))
                .collect();
            let seed = rules::derive_seed(&round.seed.0, b"general", round.generals_drawn);
            let Some(general) = rules::select_weighted(&pool, 1, seed).first().copied() else {
                round.general = None;
                self.fail(round, Failure::NoGeneral);
                return Ok(());
            };
            let mut ballot = self.ballots.get((round.id, general)).unwrap_or_default();
            ballot.drawn_as_general = true;
            self.ballots.insert((round.id, general), &ballot);
            round.general = Some(general);
            round.generals_drawn = round.generals_drawn.saturating_add(1);
            self.env().emit_event(GeneralChosen { round: round.id, general });
            self.enter(round, Phase::Sealing)
        }

        fn append_if_attested(&mut self, round: &mut Round) -> Result<()> {
            if !round.params.quorum.reached_by(round.attestations, round.validators) {
                return Ok(());
            }
            let seal = self.seals.get(round.id).ok_or(Error::WrongPhase)?;
            let performance = round.performance.ok_or(Error::WrongPhase)?;
            // The proposer is still a member: removals wait for no round to be open.
            if let Some(slot) = self.member_slots.get(round.proposer) {
                if let Some(mut member) = self.members.get(slot) {
                    member.samples = member.samples.checked_add(round.samples).ok_or(Error::Overflow)?;
                    self.members.insert(slot, &member);
                }
            }
            let strengths = self.strengths();
            let index = self.append_block(
                NewBlock {
                    parameter_hash: round.candidate,
                    vault_ref: seal.vault_ref,
                    contributor: Some(round.proposer),
                    samples: round.samples,
                    performance,
                    round: Some(round.id),
                    timestamp: seal.timestamp,
                },
                strengths,
            )?;
            round.block = Some(index);
            self.close(round, Phase::Appended);
            self.emit_strengths();
            Ok(())
        }

        fn append_block(&mut self, new: NewBlock, strengths: Vec<(Address, u64)>) -> Result<u32> {
            let previous = self.tip()?;
            let index = self.height.checked_add(1).ok_or(Error::Overflow)?;
            let strengths_hash = hash_strengths(&strengths);
            let hash = block_hash(
                index,
                new.timestamp,
                &previous.block_hash,
                &new.parameter_hash,
                &new.contributor,
                &strengths_hash,
            );
            let block = ModelBlock {
                index,
                timestamp: new.timestamp,
                previous_hash: previous.block_hash,
                parameter_hash: new.parameter_hash,
                vault_ref: new.vault_ref,
                contributor: new.contributor,
                samples: new.samples,
                strengths_hash,
                performance: new.performance,
                round: new.round,
                block_hash: hash,
            };
            self.blocks.insert(index, &block);
            self.height = index;
            self.env().emit_event(BlockAppended {
                index,
                block_hash: hash,
                parameter_hash: new.parameter_hash,
                contributor: new.contributor,
                round: new.round,
                strengths,
            });
            Ok(index)
        }

        /// The parent block's hash: the chain randomness a contract can read.
        #[cfg(target_arch = "riscv64")]
        fn chain_randomness(&self) -> [u8; 32] {
            use pallet_revive_uapi::{HostFn, HostFnImpl};
            let parent = self.env().block_number().saturating_sub(1);
            let mut number = [0u8; 32];
            number[..4].copy_from_slice(&parent.to_le_bytes());
            let mut hash = [0u8; 32];
            HostFnImpl::block_hash(&number, &mut hash);
            hash
        }

        /// Off chain (unit tests) there are no block hashes: a hash of the block number.
        #[cfg(not(target_arch = "riscv64"))]
        fn chain_randomness(&self) -> [u8; 32] {
            let mut hash = <Keccak256 as HashOutput>::Type::default();
            ink::env::hash_encoded::<Keccak256, _>(&self.env().block_number(), &mut hash);
            hash
        }
    }

    /// The parts of a block that differ between a round's block and a revert's.
    struct NewBlock {
        parameter_hash: H256,
        vault_ref: Vec<u8>,
        contributor: Option<Address>,
        samples: u64,
        performance: i64,
        round: Option<u64>,
        timestamp: u64,
    }

    fn total_samples(members: &[Member]) -> u64 {
        members.iter().fold(0u64, |sum, m| sum.saturating_add(m.samples))
    }

    fn keccak_encoded<T: ink::scale::Encode>(value: &T) -> H256 {
        let mut hash = <Keccak256 as HashOutput>::Type::default();
        ink::env::hash_encoded::<Keccak256, _>(value, &mut hash);
        H256::from(hash)
    }

    /// `keccak(SCALE(validator, report, salt))`.
    pub fn commitment(validator: &Address, report: &Report, salt: &[u8; 32]) -> H256 {
        keccak_encoded(&(validator, report, salt))
    }

    /// `keccak(SCALE(strengths))`, the strengths as `Vec<(H160, u64)>`.
    pub fn hash_strengths(strengths: &Vec<(Address, u64)>) -> H256 {
        keccak_encoded(strengths)
    }

    /// `keccak(SCALE(index, timestamp, previous_hash, parameter_hash, contributor,
    /// strengths_hash))`: `u32`, `u64`, 32 bytes, 32 bytes, `Option<H160>`, 32 bytes.
    pub fn block_hash(
        index: u32,
        timestamp: u64,
        previous_hash: &H256,
        parameter_hash: &H256,
        contributor: &Option<Address>,
        strengths_hash: &H256,
    ) -> H256 {
        keccak_encoded(&(index, timestamp, previous_hash, parameter_hash, contributor, strengths_hash))
    }

    fn ensure_vault_ref(vault_ref: &[u8]) -> Result<()> {
        if vault_ref.is_empty() || vault_ref.len() > MAX_VAULT_REF as usize {
            Err(Error::InvalidVaultRef)
        } else {
            Ok(())
        }
    }
}

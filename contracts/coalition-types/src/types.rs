//! The coalition's wire types: what its messages take and return, what it stores, what its
//! events carry. SCALE-encoded, field for field the same in the contract, the client and the
//! oracle, because they are these types.

use crate::{Address, BlockNumber, H256};
use alloc::vec::Vec;
use codec::{Decode, Encode};
use scale_info::TypeInfo;

/// A fraction `num / den`, for quorums and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Fraction {
    /// Numerator.
    pub num: u32,
    /// Denominator, > 0.
    pub den: u32,
}

impl Fraction {
    /// Two thirds.
    pub const TWO_THIRDS: Self = Self { num: 2, den: 3 };
    /// One half.
    pub const HALF: Self = Self { num: 1, den: 2 };

    /// Whether `count` out of `total` reaches this fraction: `count / total >= num / den`.
    /// Nothing reaches a fraction of zero items.
    pub fn reached_by(&self, count: u32, total: u32) -> bool {
        total > 0 && u64::from(count) * u64::from(self.den) >= u64::from(total) * u64::from(self.num)
    }

    /// Whether this fraction lies in `[low, 1]` (a zero denominator never does).
    pub fn within(&self, low: Fraction) -> bool {
        self.den > 0
            && self.num <= self.den
            && u64::from(self.num) * u64::from(low.den) >= u64::from(low.num) * u64::from(self.den)
    }

    /// Whether this fraction is in `(1/2, 1]`: two disjoint groups cannot both reach it.
    pub fn is_majority(&self) -> bool {
        self.den > 0 && self.num <= self.den && u64::from(self.num) * 2 > u64::from(self.den)
    }
}

/// The metric validators compute, in fixed point (1.0 = 1_000_000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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

/// 1.0 in the metrics' fixed point.
pub const METRIC_ONE: i64 = 1_000_000;

impl MetricKind {
    /// Whether a higher value is a better model (errors are lower-is-better).
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Self::Mse | Self::Mae)
    }

    /// Whether a model's outputs are class scores.
    pub fn is_classification(self) -> bool {
        matches!(self, Self::Accuracy | Self::BalancedAccuracy | Self::F1 | Self::RocAuc)
    }

    /// The values an honest evaluation can give, inclusive: shares and scores in `[0, 1]`,
    /// errors `>= 0`, R² `<= 1` (a model worse than the mean has a negative R², without bound).
    pub fn range(self) -> (i64, i64) {
        match self {
            Self::Mse | Self::Mae => (0, i64::MAX),
            Self::R2 => (i64::MIN, METRIC_ONE),
            _ => (0, METRIC_ONE),
        }
    }

    /// Whether `value` is in [`MetricKind::range`].
    pub fn admits(self, value: i64) -> bool {
        let (low, high) = self.range();
        (low..=high).contains(&value)
    }
}

/// Round and local training hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Hyperparameters {
    /// Share of the tip's performance a candidate must keep, parts per million (0..=1e6): a
    /// candidate may lose at most `1 - lambda` of it ([`crate::rules::keeps_performance`]).
    pub lambda_ppm: u32,
    /// Validators per round, `k` (1..=MAX_VALIDATORS).
    pub validators_per_round: u32,
    /// Agreement, votes and attestations needed, a fraction of `k` in `[2/3, 1]`: below 2/3 a
    /// third of lying validators could outvote the honest ones.
    pub quorum: Fraction,
    /// Blocks validators have to commit.
    pub commit_timeout: u32,
    /// Blocks validators have to reveal.
    pub reveal_timeout: u32,
    /// Blocks a general has to seal.
    pub seal_timeout: u32,
    /// Blocks validators have to attest a seal.
    pub attest_timeout: u32,
    /// Fewest samples a contribution may have (1..=MAX_DATA_IDS).
    pub min_batch_size: u64,
    /// Local training: learning rate, in units of 1e-9.
    pub learning_rate_e9: u64,
    /// Local training: epochs.
    pub epochs: u32,
    /// Local training: batch size.
    pub batch_size: u32,
    /// The most differential privacy each member may spend on its proposals: the epsilon of all
    /// its declarations composed in Rényi DP ([`crate::rdp`]), at this budget's delta (`0 <
    /// delta <= MAX_BUDGET_DELTA`). `None`: no budget, and proposals need not declare DP.
    pub privacy_budget: Option<PrivacySpend>,
    /// The gain on G a block must show over the credit mark, the best performance that earned
    /// strength so far, for its samples to count in its contributor's `D_i` (fixed point, like
    /// the metric; at least 1; never less than the tolerance nor, on a metric over samples, one
    /// sample of G is used: [`crate::rules::credit_margin`]). Candidates that only keep the
    /// model earn nothing.
    pub min_gain: u32,
    /// Blocks a member waits after each round of its own, whatever the outcome, before it may
    /// propose again (..=MAX_PERIOD): one member cannot hold the single round slot.
    pub proposal_cooldown: u32,
}

/// Differential privacy spent, `(epsilon, delta)`, in fixed point: what a proposal's training
/// spent, what a member spent in all (its declarations' Rényi DP composed on chain, converted at
/// the budget's delta: [`crate::rdp`]), or the budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct PrivacySpend {
    /// Epsilon, in units of `1 / EPSILON_ONE` (millionths).
    pub epsilon: u64,
    /// Delta, in units of `1 / DELTA_ONE` (10^-15).
    pub delta: u64,
}

impl PrivacySpend {
    /// 1.0 for epsilon.
    pub const EPSILON_ONE: u64 = 1_000_000;
    /// 1.0 for delta.
    pub const DELTA_ONE: u64 = 1_000_000_000_000_000;

    /// Both spends together, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        Some(Self { epsilon: self.epsilon.checked_add(other.epsilon)?, delta: self.delta.checked_add(other.delta)? })
    }

    /// The fixed point of a real `(epsilon, delta)`, rounded up so that a declared spend never
    /// under-counts; `None` for a negative, infinite or unrepresentable value.
    pub fn from_real(epsilon: f64, delta: f64) -> Option<Self> {
        Some(Self { epsilon: scale_up(epsilon, Self::EPSILON_ONE)?, delta: scale_up(delta, Self::DELTA_ONE)? })
    }

    /// Epsilon as a real number.
    pub fn epsilon_real(&self) -> f64 {
        self.epsilon as f64 / Self::EPSILON_ONE as f64
    }

    /// Delta as a real number.
    pub fn delta_real(&self) -> f64 {
        self.delta as f64 / Self::DELTA_ONE as f64
    }

    /// Whether this spend is within `budget` on both counts.
    pub fn within(&self, budget: &Self) -> bool {
        self.epsilon <= budget.epsilon && self.delta <= budget.delta
    }
}

/// `value · one`, rounded up, if it is a finite non-negative value that fits a `u64`.
fn scale_up(value: f64, one: u64) -> Option<u64> {
    let scaled = value * one as f64;
    // 2^64 as f64; NaN is in no range.
    if !(0.0..18_446_744_073_709_551_616.0).contains(&scaled) {
        return None;
    }
    let truncated = scaled as u64;
    Some(if (truncated as f64) < scaled { truncated.saturating_add(1) } else { truncated })
}

/// One hyperparameter with its new value: what a governance proposal changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
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
    /// `privacy_budget`.
    PrivacyBudget(Option<PrivacySpend>),
    /// `min_gain`.
    MinGain(u32),
    /// `proposal_cooldown`.
    ProposalCooldown(u32),
}

impl Hyperparameters {
    /// These hyperparameters with one changed.
    pub fn with(mut self, change: Hyperparameter) -> Self {
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
            Hyperparameter::PrivacyBudget(v) => self.privacy_budget = v,
            Hyperparameter::MinGain(v) => self.min_gain = v,
            Hyperparameter::ProposalCooldown(v) => self.proposal_cooldown = v,
        }
        self
    }

    /// Every value in its range.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameters`] naming nothing more: the ranges are documented on the
    /// fields.
    pub fn ensure_valid(&self) -> Result<(), Error> {
        let periods = [self.commit_timeout, self.reveal_timeout, self.seal_timeout, self.attest_timeout];
        let valid = self.lambda_ppm <= crate::rules::LAMBDA_ONE
            && (1..=crate::MAX_VALIDATORS).contains(&self.validators_per_round)
            && self.quorum.within(Fraction::TWO_THIRDS)
            && periods.iter().all(|p| (1..=crate::MAX_PERIOD).contains(p))
            && (1..=u64::from(crate::MAX_DATA_IDS)).contains(&self.min_batch_size)
            && self.epochs >= 1
            && self.batch_size >= 1
            && self.min_gain >= 1
            && self.proposal_cooldown <= crate::MAX_PERIOD
            && self.privacy_budget.is_none_or(|b| (1..=crate::rdp::MAX_BUDGET_DELTA).contains(&b.delta));
        if valid {
            Ok(())
        } else {
            Err(Error::InvalidHyperparameters)
        }
    }

    /// The most blocks a round can stay open: the draw, commit, reveal, and a seal and an
    /// attestation for every validator that could be general.
    pub fn longest_round(&self) -> u32 {
        let per_general = self.seal_timeout.saturating_add(self.attest_timeout).saturating_add(2);
        crate::DRAW_DELAY
            .saturating_add(crate::RANDOMNESS_HISTORY)
            .saturating_add(self.commit_timeout)
            .saturating_add(self.reveal_timeout)
            .saturating_add(per_general.saturating_mul(self.validators_per_round))
            .saturating_add(4)
    }
}

/// How governance decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct GovernanceParams {
    /// Blocks a proposal is open for votes (MIN_VOTING_PERIOD..=MAX_PERIOD).
    pub voting_period: u32,
    /// Blocks between the end of voting and enactment (..=MAX_PERIOD).
    pub enactment_delay: u32,
    /// Share of the members (at creation) that must vote, in `[1/2, 1]`.
    pub quorum: Fraction,
    /// Share of the votes cast that must be ayes, in `(1/2, 1]`. With the quorum's lower bound,
    /// a decision needs the ayes of more than a quarter of the members.
    pub threshold: Fraction,
}

impl GovernanceParams {
    /// Every value in its range.
    ///
    /// # Errors
    /// [`Error::InvalidGovernanceParams`].
    pub fn ensure_valid(&self) -> Result<(), Error> {
        let valid = (crate::MIN_VOTING_PERIOD..=crate::MAX_PERIOD).contains(&self.voting_period)
            && self.enactment_delay <= crate::MAX_PERIOD
            && self.quorum.within(Fraction::HALF)
            && self.threshold.is_majority();
        if valid {
            Ok(())
        } else {
            Err(Error::InvalidGovernanceParams)
        }
    }
}

/// The constructor's input.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
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
    /// The largest difference two honest evaluations of the same predictions may show, and
    /// the loss too small to count as one (fixed point; 0 for exact metrics such as accuracy).
    pub metric_tolerance: u32,
    /// The initial model's metric on G (fixed point, in the metric's range).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
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
    /// See [`Genesis::metric_tolerance`].
    pub metric_tolerance: u32,
}

/// A member and the samples it has contributed (`D_i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Member {
    /// The member's account.
    pub account: Address,
    /// Samples in its appended contributions.
    pub samples: u64,
    /// Differential privacy its proposals declared, composed (whatever their verdict: a
    /// candidate reaches the validators either way): the epsilon of its RDP totals at the
    /// budget's delta, or at [`crate::rdp::REPORT_DELTA`] without a budget.
    pub privacy_spent: PrivacySpend,
    /// Its standing as a validator: rounds it deviated in or stayed silent in while its panel
    /// reached a verdict, less those it reported in consistently, within `0..=MAX_FAULTS`
    /// ([`crate::rules::standing_after`]). Its draw weight is its strength divided by
    /// `1 + faults` ([`crate::rules::draw_weight`]).
    pub faults: u32,
    /// First block it may propose in ([`Hyperparameters::proposal_cooldown`]).
    pub may_propose_at: BlockNumber,
}

/// A member's local test set L, registered once: the hash its oracle checks at start and the
/// size every report of its must state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct LocalTestSet {
    /// Hash of the set, as the oracle computes it.
    pub hash: H256,
    /// Samples in it (1..=MAX_LOCAL_SET).
    pub size: u32,
}

/// A block of the model chain.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct ModelBlock {
    /// Height (0 for genesis).
    pub index: u32,
    /// Timestamp (ms) at sealing.
    pub timestamp: u64,
    /// The previous block's hash (zero for genesis).
    pub previous_hash: H256,
    /// Hash of the model parameters.
    pub parameter_hash: H256,
    /// Where the model is in the vault (its keccak-256 is hashed into the block).
    pub vault_ref: Vec<u8>,
    /// The member whose increment this is (none for genesis and reverts).
    pub contributor: Option<Address>,
    /// Samples the block credited to its contributor's `D_i`: those it was trained on if it
    /// beat the credit mark by the credit margin ([`crate::rules::earns_strength`]), else 0.
    pub samples: u64,
    /// `keccak(SCALE(strengths))` of every member's strength once this block is appended;
    /// the strengths themselves are in the block's `BlockAppended` event.
    pub strengths_hash: H256,
    /// Its performance on G: the median G metric of the validators that agreed on its
    /// predictions, which anyone holding G reproduces (genesis: declared; a revert: its
    /// target's).
    pub performance: i64,
    /// The best performance on its lineage, itself included: what the lambda rule compares the
    /// next candidate with ([`crate::rules::lineage_best`]). A revert takes its target's.
    pub best_performance: i64,
    /// The round that produced it, if any.
    pub round: Option<u64>,
    /// [`crate::hashing::block_hash`] of its [`BlockHeader`].
    pub block_hash: H256,
}

impl ModelBlock {
    /// The fields its hash covers.
    pub fn header<K: crate::hashing::Keccak>(&self) -> BlockHeader {
        BlockHeader {
            index: self.index,
            timestamp: self.timestamp,
            previous_hash: self.previous_hash,
            parameter_hash: self.parameter_hash,
            vault_ref_hash: crate::hashing::keccak::<K>(&self.vault_ref),
            contributor: self.contributor,
            strengths_hash: self.strengths_hash,
        }
    }
}

/// What a block hash covers: `block_hash = keccak(SCALE(BlockHeader))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct BlockHeader {
    /// Height.
    pub index: u32,
    /// Timestamp (ms).
    pub timestamp: u64,
    /// The previous block's hash.
    pub previous_hash: H256,
    /// Hash of the model parameters.
    pub parameter_hash: H256,
    /// keccak-256 of the vault reference.
    pub vault_ref_hash: H256,
    /// The contributor.
    pub contributor: Option<Address>,
    /// Hash of the strengths once appended.
    pub strengths_hash: H256,
}

/// What a validator measured on a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Scores {
    /// Metric on G (fixed point).
    pub g_metric: i64,
    /// Digest of the predictions on G.
    pub g_digest: H256,
    /// The validator's vote from its local set L: whether the candidate keeps the lambda rule
    /// on its view of G and L, L weighing at most as much as G ([`crate::rules::local_vote`]).
    /// A vote, not a metric: it can refuse a candidate but never raise the recorded
    /// performance, and it tells a proposer one bit about L. Ignored when `l_size` is 0.
    pub l_keeps: bool,
    /// Samples in L: the size the validator registered, or 0 if it registered none.
    pub l_size: u32,
}

/// Why a validator refused to score a candidate: a fault of the candidate itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Refusal {
    /// The vault's copy does not hash to the candidate's parameter hash.
    HashMismatch,
    /// The model failed the checks every candidate must pass (architecture, operators, ...).
    ModelRefused,
    /// The model gave non-finite outputs.
    NonFiniteOutputs,
    /// The proposal's DP declaration spends less, at some order, than its own noise multiplier
    /// gives with the round's samples, batch size and epochs; or it declares no noise while the
    /// coalition has a privacy budget. The validators refuse it before fetching the candidate.
    PrivacyUnderDeclared,
}

/// What a proposal declares of its DP-SGD training: the noise and clipping it used, and the Rényi
/// DP that gives over the round's samples (its data IDs), with the round's batch size and epochs
/// (its hyperparameters). The chain composes `rdp` into the member's totals; the validators
/// recompute it from the rest and refuse an under-declaration
/// ([`Refusal::PrivacyUnderDeclared`]). Nothing on chain can tell whether the noise was really
/// added: the declaration is checked for consistency, not for truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct DpDeclaration {
    /// The noise multiplier `sigma`, as the bits of the `f32` the trainer used.
    pub noise_multiplier: u32,
    /// The clipping norm `C`, as the bits of the `f32` the trainer used.
    pub clip_norm: u32,
    /// RDP at each of [`crate::rdp::RDP_ORDERS_CENTI`], in units of `1 / rdp::RDP_ONE` nats.
    pub rdp: crate::rdp::Rdp,
}

impl DpDeclaration {
    /// The noise multiplier as the trainer's `f32`.
    pub fn noise_multiplier(&self) -> f32 {
        f32::from_bits(self.noise_multiplier)
    }

    /// The clipping norm as the trainer's `f32`.
    pub fn clip_norm(&self) -> f32 {
        f32::from_bits(self.clip_norm)
    }
}

/// A validator's finding: scores, or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Verdict {
    /// The candidate was evaluated.
    Scored(Scores),
    /// The candidate could not be evaluated, for a fault of its own.
    Refused(Refusal),
}

/// A validator's report on a candidate. The vote is not in it: the contract derives it from the
/// scores with [`crate::rules::keeps_performance`], so a report cannot say "accept" with
/// numbers that say otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Report {
    /// The round it is for.
    pub round: u64,
    /// The candidate parameter hash it is for.
    pub candidate: H256,
    /// What the validator found.
    pub verdict: Verdict,
}

/// Why a validator's report was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Deviation {
    /// A metric outside the metric's range.
    OutOfRange,
    /// An `l_size` other than the validator's registered local set.
    LocalSetMismatch,
    /// A G digest off the majority's.
    Digest,
    /// The majority's digest, but a G metric further than the tolerance from theirs.
    GMetric,
    /// A refusal of a candidate that a quorum of the panel scored with one G digest.
    Refused,
    /// Drawn, but no commit or no reveal, while its panel reached a verdict.
    Silent,
}

/// A validator's part in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode, TypeInfo)]
pub struct Ballot {
    /// Its commitment, once committed.
    pub commitment: Option<H256>,
    /// Its report, once revealed.
    pub report: Option<Report>,
    /// The sealed block hash it attested, if any.
    pub attested: Option<H256>,
    /// Why its report was not counted, or that it was silent (set at tally).
    pub deviation: Option<Deviation>,
    /// Whether its counted report keeps the tip's performance: eligible as general (tally).
    pub accepting: bool,
    /// Whether it was drawn as general.
    pub drawn_as_general: bool,
}

/// Why a round rejected its candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Rejection {
    /// No G digest was shared by `quorum` of the reveals.
    InconsistentPredictions,
    /// Its performance on G (the counted reports' median G metric) does not keep the lambda
    /// rule against the lineage's best.
    Degrades,
    /// Its performance on G keeps the lambda rule, but fewer than `quorum` of `k` validators
    /// voted to accept (their local sets voted against it, or too few were counted).
    NotEnoughVotes,
    /// `quorum` of the reveals refused the candidate (a fault of the candidate).
    Refused,
}

/// Why a round ended without a decision or without a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Failure {
    /// No validator committed in time.
    NoCommits,
    /// No committed validator revealed in time.
    NoReveals,
    /// Every accepting validator was general and none sealed in time.
    NoGeneral,
    /// Every accepting validator was general and no seal was attested in time.
    NotAttested,
}

/// Where a round is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Phase {
    /// Waiting for the draw window: the blocks whose VRF randomness draws the validators.
    Drawing,
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

impl Phase {
    /// Whether the round is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Appended | Self::Rejected(_) | Self::Failed(_))
    }
}

/// The block a general sealed.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Seal {
    /// The general that sealed it.
    pub general: Address,
    /// Where the general stored the model.
    pub vault_ref: Vec<u8>,
    /// Timestamp of sealing.
    pub timestamp: u64,
    /// The block's hash.
    pub block_hash: H256,
    /// Hash of the strengths hashed into it.
    pub strengths_hash: H256,
}

/// A round: one candidate and its verdict. Its validators, vault reference, ballots, data IDs
/// and seal are stored apart, so that this record fits one storage value.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
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
    /// Samples it was trained on (= its data IDs).
    pub samples: u64,
    /// Differential privacy its training spent, as the proposer declared it: the epsilon of its
    /// declaration alone, at the budget's delta (or [`crate::rdp::REPORT_DELTA`]); the whole
    /// declaration is the contract's `round_privacy`.
    pub privacy: Option<PrivacySpend>,
    /// Block of the proposal.
    pub opened_at: BlockNumber,
    /// Number of validators drawn (`min(k, N - 1)`), once drawn.
    pub validators: u32,
    /// The seed of every draw in this round (zero until drawn).
    pub seed: H256,
    /// Hyperparameters as they were when the round opened.
    pub params: Hyperparameters,
    /// Current phase.
    pub phase: Phase,
    /// Last block of the current phase (for `Drawing`: the last block of the draw window; once
    /// final: the block it ended in).
    pub deadline: BlockNumber,
    /// Commits so far.
    pub commits: u32,
    /// Reveals so far.
    pub reveals: u32,
    /// Performance on G (median G metric of the counted reports), once tallied.
    pub performance: Option<i64>,
    /// Counted validators that voted to accept, once tallied.
    pub accepts: u32,
    /// Samples the round's block credits its proposer, decided at the tally: all of them if
    /// the performance beats the credit mark by the credit margin (and another member's
    /// reserved gain, while it is reserved), else none. The seal's strengths use it, so every
    /// attester recomputes the block from the round alone.
    pub credited: u64,
    /// Validators whose report was not counted, once tallied.
    pub deviants: u32,
    /// Generals drawn so far.
    pub generals_drawn: u32,
    /// The current general.
    pub general: Option<Address>,
    /// Attestations of the current seal (the general's seal included).
    pub attestations: u32,
    /// The block it appended.
    pub block: Option<u32>,
}

/// A governance action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Action {
    /// Change one hyperparameter.
    SetHyperparameter(Hyperparameter),
    /// Change how governance decides (for proposals created afterwards).
    SetGovernance(GovernanceParams),
    /// Admit a member.
    AddMember(Address),
    /// Remove a member (its `D_i` leaves `D`).
    RemoveMember(Address),
    /// Append a block with the parameters of block `index`.
    Revert(u32),
    /// Record the vault's audit-anchors contract.
    SetAuditAnchors(Option<Address>),
    /// Replace (or clear) a member's registered local test set.
    SetLocalTestSet(Address, Option<LocalTestSet>),
}

impl Action {
    /// Whether the action must wait for no round to be open, and then goes before any new one:
    /// it changes who validates, the chain, or what a validator must report.
    pub fn waits_for_rounds(&self) -> bool {
        matches!(self, Self::AddMember(_) | Self::RemoveMember(_) | Self::Revert(_) | Self::SetLocalTestSet(..))
    }
}

/// Why governance rejected a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum ProposalRejection {
    /// Too few members voted.
    QuorumNotMet,
    /// Too few of the votes were ayes.
    ThresholdNotMet,
}

/// Where a proposal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum ProposalStatus {
    /// Voting, or waiting for enactment.
    Open,
    /// Rejected by the vote.
    Rejected(ProposalRejection),
    /// Enacted.
    Enacted,
    /// Passed, but its action could no longer apply when enacted: closed with the reason.
    Failed(Error),
    /// Passed, but not enacted before it expired.
    Expired,
}

/// A governance proposal, with the rules it is decided by taken when it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Proposal {
    /// Proposal id.
    pub id: u32,
    /// Who proposed it.
    pub proposer: Address,
    /// What it does.
    pub action: Action,
    /// Last block of voting.
    pub voting_ends: BlockNumber,
    /// First block it may be enacted in.
    pub enactable_from: BlockNumber,
    /// Last block it may be enacted in; afterwards it expires.
    pub expires: BlockNumber,
    /// Members when it was created: the base of the quorum.
    pub electorate: u32,
    /// The governance quorum when it was created.
    pub quorum: Fraction,
    /// The governance threshold when it was created.
    pub threshold: Fraction,
    /// Aye votes.
    pub ayes: u32,
    /// Nay votes.
    pub nays: u32,
    /// Status.
    pub status: ProposalStatus,
}

impl Proposal {
    /// The vote's verdict: `None` if it passed.
    pub fn rejection(&self) -> Option<ProposalRejection> {
        let turnout = self.ayes.saturating_add(self.nays);
        if !self.quorum.reached_by(turnout, self.electorate) {
            Some(ProposalRejection::QuorumNotMet)
        } else if !self.threshold.reached_by(self.ayes, turnout) {
            Some(ProposalRejection::ThresholdNotMet)
        } else {
            None
        }
    }
}

/// Errors of the coalition's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub enum Error {
    /// The genesis is inconsistent (metric direction or range, empty G, founders, vault
    /// reference).
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
    /// The candidate's parameters are those of a block already on the chain.
    KnownParameters,
    /// No member other than the proposer can validate.
    NoEligibleValidators,
    /// A passed governance proposal that changes members or reverts is due: enact it first.
    GovernancePending,
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
    /// The caller attested this seal already.
    AlreadyAttested,
    /// The member registered a local test set already (governance may replace it).
    LocalTestSetRegistered,
    /// A local test set of no samples or more than `MAX_LOCAL_SET`.
    InvalidLocalTestSet,
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
    /// The caller has `MAX_OPEN_PROPOSALS_PER_MEMBER` proposals open.
    TooManyProposalsByMember,
    /// A revert must target an earlier block.
    InvalidRevert,
    /// A counter would overflow.
    Overflow,
    /// The proposal would take the proposer's privacy spend past the coalition's budget, or
    /// declares no DP while a budget is set.
    PrivacyBudgetExceeded,
    /// The chain's randomness precompile did not answer (a runtime without it): no draw can be
    /// made.
    RandomnessUnavailable,
    /// The caller's cooldown after its last round has not passed (`Member::may_propose_at`).
    ProposalCooldown,
    /// The candidate belongs to another member's round that ended without a block and is still
    /// reserved for that member ([`crate::rules::reserved_for_other`]).
    Reserved,
    /// The caller did not propose this round.
    NotProposer,
}

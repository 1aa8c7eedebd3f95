//! What the API returns: JSON views of the coalition's on-chain records, with their OpenAPI
//! schemas. Addresses and hashes are `0x` hex; fixed-point metrics stay integers (1.0 =
//! 1,000,000, [`tclearn_client::coalition::METRIC_ONE`]).

use serde::{Deserialize, Serialize};
use tclearn_client::{
    coalition::{rdp, Ballot, DpDeclaration, ModelBlock, Phase, Proposal, Round, Verdict},
    H160, H256,
};
use utoipa::ToSchema;

/// `0x` hex of an address.
pub fn address(a: &H160) -> String {
    format!("{a:#x}")
}

/// `0x` hex of a hash.
pub fn hash(h: &H256) -> String {
    format!("{h:#x}")
}

/// What a proposal declares of its DP-SGD training, as JSON (in `candidate.json` and in a
/// `propose` call): the noise multiplier and clipping norm it trained with, and the Rényi DP
/// they give at each of the chain's orders, which the validators recompute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyDeclaration {
    /// DP-SGD's noise multiplier (an `f32`, written so that it reads back to the same bits).
    pub noise_multiplier: f32,
    /// DP-SGD's clipping norm (an `f32`).
    pub clip_norm: f32,
    /// RDP at each of the chain's orders (`rdp::RDP_ORDERS_CENTI`, from 1.25 to 256), in
    /// 10^-9 nats; `u64::MAX` is infinite.
    pub rdp: Vec<u64>,
}

impl PrivacyDeclaration {
    /// The JSON of the contract's declaration.
    pub fn of(declaration: &DpDeclaration) -> Self {
        Self {
            noise_multiplier: declaration.noise_multiplier(),
            clip_norm: declaration.clip_norm(),
            rdp: declaration.rdp.to_vec(),
        }
    }

    /// The contract's declaration.
    ///
    /// # Errors
    /// Not one RDP value per order.
    pub fn to_declaration(&self) -> Result<DpDeclaration, String> {
        let rdp = rdp::Rdp::try_from(self.rdp.as_slice()).map_err(|_| {
            format!("privacy.rdp has one value per order ({}), not {}", rdp::RDP_ORDERS, self.rdp.len())
        })?;
        Ok(DpDeclaration {
            noise_multiplier: self.noise_multiplier.to_bits(),
            clip_norm: self.clip_norm.to_bits(),
            rdp,
        })
    }
}

/// The service's health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The node's best block.
    pub best_block: u64,
    /// The coalition contract.
    pub coalition: String,
}

/// `POST /api/auth/challenge`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChallengeRequest {
    /// The member's account: SS58, or 32 bytes of `0x` hex.
    pub account: String,
}

/// A challenge to sign.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChallengeResponse {
    /// The sign-in message ([`crate::sign_in`]): check every field, then sign it wrapped in
    /// `<Bytes>…</Bytes>`.
    pub challenge: String,
}

/// `POST /api/auth/token`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// The account the challenge was issued to.
    pub account: String,
    /// The challenge, exactly as issued.
    pub challenge: String,
    /// The sr25519 signature of `<Bytes>` + challenge + `</Bytes>`, 64 bytes of hex.
    pub signature: String,
}

/// A bearer token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The token: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// When it expires (ms since the Unix epoch).
    pub expires_at: u64,
}

/// An object stored in the vault.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredObject {
    /// SHA3-256 of the object: the candidate hash to propose.
    pub hash: String,
    /// The vault reference to propose with.
    pub vault_ref: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The coalition in brief.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CoalitionView {
    /// The contract.
    pub address: String,
    /// The tip's index (0: only the genesis block).
    pub tip: u32,
    /// The round in progress, if any.
    pub open_round: Option<u64>,
    /// Number of members.
    pub members: u32,
    /// The metric validators compute.
    pub metric: String,
    /// Whether higher is better.
    pub higher_is_better: bool,
    /// The tip's performance on G (fixed point).
    pub performance: Option<i64>,
    /// The best performance of the tip's lineage: what a candidate is compared with.
    pub best_performance: Option<i64>,
    /// lambda (ppm): a candidate may lose at most `1 - lambda` of the lineage's best.
    pub lambda_ppm: u32,
    /// Validators drawn per round.
    pub validators_per_round: u32,
    /// The vote a round needs, as `num/den`.
    pub quorum: String,
    /// Local training's learning rate.
    pub learning_rate: f64,
    /// Local training's epochs.
    pub epochs: u32,
    /// Local training's batch size.
    pub batch_size: u32,
    /// Fewest samples a contribution may have.
    pub min_batch_size: u64,
    /// The gain on G over the credit mark a block needs to earn its samples strength
    /// (fixed point).
    pub min_gain: u32,
    /// Blocks a member waits after its round before proposing again.
    pub proposal_cooldown: u32,
    /// The differential privacy each member may spend in all, if governance set a budget.
    pub privacy_budget: Option<PrivacyView>,
    /// The audit-anchors contract, if the coalition records one.
    pub audit_anchors: Option<String>,
    /// The node RPC endpoint a browser submits signed calls to.
    pub node_rpc: String,
}

/// `POST /api/vault/data-ids`: identifiers blinded by the member
/// ([`crate::data_ids::Blinded`]).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataIdsRequest {
    /// 1 to [`crate::data_ids::MAX_BATCH`] blinded identifiers, each a ristretto255 element
    /// (32 bytes of hex).
    pub blinded: Vec<String>,
}

/// The vault's answer to a [`DataIdsRequest`] (RFC 9497's VOPRF).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataIdsAnswer {
    /// Each blinded identifier times the vault's key, in the request's order (32 bytes of hex
    /// each).
    pub evaluated: Vec<String>,
    /// One DLEQ proof for the batch that the key is the one `public_key` names (64 bytes of
    /// hex).
    pub proof: String,
    /// The vault's data-ID public key (32 bytes of hex).
    pub public_key: String,
}

/// Differential privacy `(epsilon, delta)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PrivacyView {
    /// Epsilon.
    pub epsilon: f64,
    /// Delta.
    pub delta: f64,
}

/// A member and its strength `S_i = 1/N + D_i/D`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    /// Its address.
    pub address: String,
    /// Samples its appended contributions earned (`D_i`).
    pub samples: u64,
    /// Its faults as a validator: its draw weight is its strength over `1 + faults`.
    pub faults: u32,
    /// Its strength `S_i` in the contract's fixed point (`STRENGTH_ONE` = 1.0; the strengths
    /// sum to 2.0).
    pub strength: u64,
    /// Its share of the model's improvement: the metric gains (fixed point) of the blocks it
    /// contributed ([`tclearn_client::coalition::contributions`]).
    pub contribution: i64,
    /// The differential privacy epsilon its proposals declared, summed.
    pub epsilon_spent: f64,
    /// The delta its proposals declared, summed.
    pub delta_spent: f64,
}

/// A block of the model chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    /// Height.
    pub index: u32,
    /// Sealing time (ms).
    pub timestamp: u64,
    /// Its hash.
    pub hash: String,
    /// The previous block's hash.
    pub previous_hash: String,
    /// The model's parameter hash (the vault object).
    pub parameter_hash: String,
    /// Where the model is.
    pub vault_ref: String,
    /// The member whose increment it is.
    pub contributor: Option<String>,
    /// Samples it credited to its contributor (0 when it did not beat the credit mark).
    pub samples: u64,
    /// Its performance on G (fixed point).
    pub performance: i64,
    /// The best performance of its lineage.
    pub best_performance: i64,
    /// The round that produced it.
    pub round: Option<u64>,
}

impl From<&ModelBlock> for BlockView {
    fn from(block: &ModelBlock) -> Self {
        Self {
            index: block.index,
            timestamp: block.timestamp,
            hash: hash(&block.block_hash),
            previous_hash: hash(&block.previous_hash),
            parameter_hash: hash(&block.parameter_hash),
            vault_ref: String::from_utf8_lossy(&block.vault_ref).into_owned(),
            contributor: block.contributor.as_ref().map(address),
            samples: block.samples,
            performance: block.performance,
            best_performance: block.best_performance,
            round: block.round,
        }
    }
}

/// A validator's part in a round.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BallotView {
    /// The validator.
    pub validator: String,
    /// Whether it committed.
    pub committed: bool,
    /// Whether it revealed.
    pub revealed: bool,
    /// Its G metric, if it revealed scores.
    pub g_metric: Option<i64>,
    /// Its local set's vote, if it revealed scores with a local set.
    pub l_keeps: Option<bool>,
    /// Its refusal, if it revealed one.
    pub refused: Option<String>,
    /// Why its report was not counted, or `Silent`.
    pub deviation: Option<String>,
    /// Whether its counted report voted to accept.
    pub accepting: bool,
    /// Whether it attested the seal.
    pub attested: bool,
}

impl BallotView {
    /// The view of `validator`'s `ballot` (none: drawn, nothing done yet).
    pub fn new(validator: &H160, ballot: Option<&Ballot>) -> Self {
        let report = ballot.and_then(|b| b.report.as_ref());
        let (g_metric, l_keeps, refused) = match report.map(|r| &r.verdict) {
            Some(Verdict::Scored(scores)) => {
                (Some(scores.g_metric), (scores.l_size > 0).then_some(scores.l_keeps), None)
            }
            Some(Verdict::Refused(refusal)) => (None, None, Some(format!("{refusal:?}"))),
            None => (None, None, None),
        };
        Self {
            validator: address(validator),
            committed: ballot.is_some_and(|b| b.commitment.is_some()),
            revealed: report.is_some(),
            g_metric,
            l_keeps,
            refused,
            deviation: ballot.and_then(|b| b.deviation).map(|d| format!("{d:?}")),
            accepting: ballot.is_some_and(|b| b.accepting),
            attested: ballot.is_some_and(|b| b.attested.is_some()),
        }
    }
}

/// A round.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoundView {
    /// Round id.
    pub id: u64,
    /// The proposer.
    pub proposer: String,
    /// The tip it builds on.
    pub parent: u32,
    /// The candidate's hash.
    pub candidate: String,
    /// Samples it was trained on.
    pub samples: u64,
    /// The differential privacy its training spent, as the proposer declared it.
    pub privacy: Option<PrivacyView>,
    /// The phase: drawing, commit, reveal, sealing, attesting, appended, rejected, failed.
    pub phase: String,
    /// Why it was rejected or failed.
    pub reason: Option<String>,
    /// Last block of the phase.
    pub deadline: u32,
    /// Commits so far.
    pub commits: u32,
    /// Reveals so far.
    pub reveals: u32,
    /// The performance on G, once tallied.
    pub performance: Option<i64>,
    /// Counted validators that voted to accept.
    pub accepts: u32,
    /// Samples the block credits its proposer's strength, once tallied: all of them if the
    /// candidate beats the credit mark by the credit margin, else none.
    pub credited: u64,
    /// Validators not counted.
    pub deviants: u32,
    /// The general sealing the block.
    pub general: Option<String>,
    /// The block appended.
    pub block: Option<u32>,
    /// The validators drawn and what each did.
    pub validators: Vec<BallotView>,
}

/// A phase's name and, for an end without a block, why.
pub fn phase(phase: &Phase) -> (String, Option<String>) {
    match phase {
        Phase::Drawing => ("drawing".into(), None),
        Phase::Commit => ("commit".into(), None),
        Phase::Reveal => ("reveal".into(), None),
        Phase::Sealing => ("sealing".into(), None),
        Phase::Attesting => ("attesting".into(), None),
        Phase::Appended => ("appended".into(), None),
        Phase::Rejected(why) => ("rejected".into(), Some(format!("{why:?}"))),
        Phase::Failed(why) => ("failed".into(), Some(format!("{why:?}"))),
    }
}

impl RoundView {
    /// The view of `round`, with its validators' ballots.
    pub fn new(round: &Round, ballots: Vec<BallotView>) -> Self {
        let (phase, reason) = phase(&round.phase);
        Self {
            id: round.id,
            proposer: address(&round.proposer),
            parent: round.parent,
            candidate: hash(&round.candidate),
            samples: round.samples,
            privacy: round.privacy.map(|p| PrivacyView { epsilon: p.epsilon_real(), delta: p.delta_real() }),
            phase,
            reason,
            deadline: round.deadline,
            commits: round.commits,
            reveals: round.reveals,
            performance: round.performance,
            accepts: round.accepts,
            credited: round.credited,
            deviants: round.deviants,
            general: round.general.as_ref().map(address),
            block: round.block,
            validators: ballots,
        }
    }
}

/// A governance proposal and its tally.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalView {
    /// Proposal id.
    pub id: u32,
    /// Who proposed it.
    pub proposer: String,
    /// What it does.
    pub action: String,
    /// Last block of voting.
    pub voting_ends: u32,
    /// First block it may be enacted in.
    pub enactable_from: u32,
    /// Members when it was created.
    pub electorate: u32,
    /// Aye votes.
    pub ayes: u32,
    /// Nay votes.
    pub nays: u32,
    /// open, enacted, rejected, failed, expired.
    pub status: String,
    /// Why it was rejected or failed.
    pub reason: Option<String>,
}

impl From<&Proposal> for ProposalView {
    fn from(p: &Proposal) -> Self {
        use tclearn_client::coalition::ProposalStatus as S;
        let (status, reason) = match p.status {
            S::Open => ("open", None),
            S::Enacted => ("enacted", None),
            S::Expired => ("expired", None),
            S::Rejected(why) => ("rejected", Some(format!("{why:?}"))),
            S::Failed(why) => ("failed", Some(format!("{why:?}"))),
        };
        Self {
            id: p.id,
            proposer: address(&p.proposer),
            action: format!("{:?}", p.action),
            voting_ends: p.voting_ends,
            enactable_from: p.enactable_from,
            electorate: p.electorate,
            ayes: p.ayes,
            nays: p.nays,
            status: status.into(),
            reason,
        }
    }
}

/// An audit checkpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// Entries in the log.
    pub size: u64,
    /// RFC 6962 root (SHA-256), hex.
    pub root: String,
}

/// A page of audit entries, each as stored (its bytes are the Merkle leaf).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntriesView {
    /// Index of the first.
    pub start: u64,
    /// The entries.
    pub entries: Vec<String>,
}

/// A Merkle proof against a checkpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProofView {
    /// The checkpoint the proof is against.
    pub checkpoint: CheckpointView,
    /// The proof's hashes, concatenated, hex.
    pub proof: String,
}

/// An anchoring of the audit log on chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnchorView {
    /// The anchor's index in the contract.
    pub index: u64,
    /// Entries it covers.
    pub log_length: u64,
    /// Its root, hex.
    pub root: String,
}

/// A contract call for a member's wallet to sign (`Revive::call`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallView {
    /// Whether the member's account must first be mapped for contracts (`Revive::map_account`,
    /// once per account).
    pub needs_mapping: bool,
    /// The contract to call.
    pub contract: String,
    /// The call data (selector and SCALE arguments), hex.
    pub call_data: String,
    /// Weight limit from a dry run as the member, with a margin.
    pub weight_ref_time: u64,
    /// Proof-size part of the weight limit.
    pub weight_proof_size: u64,
    /// Storage deposit limit, in plancks (a decimal string: it may exceed 2^53).
    pub storage_deposit_limit: String,
}

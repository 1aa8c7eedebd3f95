//! # Coalition
//!
//! One TCLearn coalition on chain (Lugan et al., section 2.1, figures 1-2; section 3.1): its
//! members and their strengths, the hash-linked model chain, the rounds that extend it, and the
//! governance that changes it. Evaluation and storage happen off chain (the oracle, the vault);
//! this contract records, checks and aggregates. Its types, events, hashes and pure rules are in
//! `coalition-types`, which the client and the oracle use too.
//!
//! ## Protocol
//! 1. **Genesis** (constructor): architecture hash, initial parameter hash and vault reference,
//!    the global test set G (hash, size), the metric, whether higher is better and the metric
//!    tolerance, the initial model's performance on G (in the metric's range), hyperparameters,
//!    governance parameters, founding members. Block 0 is the genesis block.
//! 2. **Strengths**: `S_i = 1/N + D_i/D` in parts per billion (`rules::strength`); with `D = 0`
//!    the data term is zero. Always computed from the current `N` and `D_i`, so never stale.
//!    `D_i` counts only samples that earned their place: a block credits its samples when its
//!    performance beats the credit mark (the best performance that earned before; a revert sets
//!    it to its target's best) by the credit margin (`min_gain`, at least the tolerance and, on a
//!    metric over samples, one sample of G: `rules::credit_margin`, `rules::earns_strength`). A
//!    candidate that only keeps the model is appended and earns nothing. A candidate rejected
//!    while it beat the mark has its gain reserved for its proposer for its cooldown and
//!    `CLAIM_RESERVE` blocks: another member's copy of it (a validator saw it) earns nothing
//!    before then.
//! 3. **Local test sets**: each member registers its local set L once (hash and size,
//!    [`Coalition::register_local_test_set`]); only governance replaces it. A report must state
//!    exactly the registered size.
//! 4. **Propose**: a member proposes a candidate on the tip (its parent must be the tip), with its
//!    vault reference, sample count (>= the minimum batch size) and one anonymised ID per training
//!    sample (32-byte keyed hashes); an ID used by an appended block, or parameters equal to an
//!    appended block's, are refused. It declares its DP-SGD training (`DpDeclaration`: noise,
//!    clipping, and the Rényi DP they give at `rdp::RDP_ORDERS` orders); the chain composes the
//!    proposer's declarations order by order (`rules::spend_privacy`), and their epsilon at the
//!    budget's delta may not pass the coalition's `privacy_budget`, a hyperparameter governance
//!    sets. The validators recompute the declared RDP from its noise and the round's samples,
//!    batch size and epochs before they fetch the candidate, and refuse an under-declaration
//!    (`Refusal::PrivacyUnderDeclared`). **One round is open at
//!    a time**, no queue: a queued candidate would be evaluated against a tip that changes under
//!    it. So that one member cannot hold that slot, a member whose round ended, whatever its
//!    outcome, waits `proposal_cooldown` blocks before proposing again. A round that ends without
//!    a block leaves its claims void: its data IDs may be taken by anyone, its candidate hash
//!    only by its proposer for its cooldown and `CLAIM_RESERVE` blocks more
//!    (`rules::reserved_for_other`). The proposer frees them with
//!    [`Coalition::release_claims`], which returns their deposit to it whoever ended the round.
//! 5. **Draw**: the round waits in `Drawing` until `DRAW_DELAY` blocks after the proposal; the
//!    first `advance` after that draws `min(k, N - 1)` validators, never the proposer, without
//!    replacement and with probability proportional to their draw weight, strength divided by
//!    `1 + faults` (`rules::draw_weights`, `rules::select_weighted`), from
//!    `seed = keccak(window randomness ‖ round id ‖ tip block hash)`. The window randomness is
//!    `keccak(r_1 ‖ r_2 ‖ r_3)` over BABE's VRF randomness of the `DRAW_DELAY` blocks after the
//!    proposal's (`rules::window_randomness`), read from the runtime's randomness precompile
//!    (`RANDOMNESS_PRECOMPILE`). None of those blocks existed when the proposal was signed, and
//!    the seed does not depend on who calls `advance` or when. If a window block's randomness is
//!    out of reach (older than `RANDOMNESS_HISTORY` blocks), the draw moves to a new window that
//!    starts after the current block.
//! 6. **Commit, then reveal**: each validator commits
//!    `keccak(SCALE(contract, validator, report, salt))`, then reveals `report` and `salt`. The
//!    report names the round and the candidate; the commitment names this contract and the
//!    validator, so it is replayed neither elsewhere nor by another validator. A report holds
//!    scores (G metric and digest, the vote of its L and L's size) or a refusal (a fault of the
//!    candidate). L enters a report as a vote only (`rules::local_vote`: L weighs at most as much
//!    as G), so a crafted candidate learns one bit about a validator's L, not a metric.
//! 7. **Tally** (every commit revealed, or the reveal deadline): `rules::tally`. Reports out of
//!    range or with an unregistered L size, off the G-digest majority (2/3 of the reveals), with
//!    a G metric further than the tolerance from the majority's median, or refusing what that
//!    majority scored, are not counted and their validators are recorded as deviants
//!    (`ValidatorDeviated`). The performance is the counted reports' median G metric, which an
//!    audit on G reproduces; the candidate is accepted iff it keeps the lambda rule against the
//!    best performance of the tip's lineage (`rules::keeps_performance`: lose at most
//!    `1 - lambda` of it, or the tolerance; `ModelBlock::best_performance`, so losses do not
//!    compound) and `quorum` of the `k` validators vote for it (the rule on G and, for those
//!    with an L, their L's vote). **Standing**: when the panel reached a verdict (a G-digest
//!    majority), each drawn validator whose report the verdict proves wrong, or that stayed
//!    silent (its ballot records `Silent`), gains a fault, each that reported consistently loses
//!    one, within `0..=MAX_FAULTS` (`rules::standing_after`); a refusal is recorded and moves
//!    nothing (its cause may lie outside the validator); a round without a verdict changes
//!    nobody's.
//! 8. **General and block**: a general is drawn from the accepting validators; it seals the block
//!    with the vault reference of the stored model, and the contract computes
//!    `block_hash = keccak(SCALE(index, timestamp, previous hash, parameter hash,
//!    keccak(vault reference), contributor, strengths_hash))`. Validators attest that the vault
//!    copy is there and matches (the seal counts as the general's attestation); `quorum` of `k`
//!    attestations append the block (its hash recomputed and checked against the seal), add the
//!    samples it earned to the contributor's `D_i` and record its data IDs as used. A general
//!    that does not seal in time, or whose seal is not attested in time (a wrong vault
//!    reference), is replaced by another accepting validator; when none is left, the round fails.
//! 9. **Deadlines**: phases end early when everyone has acted; otherwise anyone may `advance`.
//! 10. **Governance**: members propose a change (a hyperparameter, the governance parameters,
//!     admission or removal of a member, a revert to an earlier block, the audit-anchors contract,
//!     a member's local set) and vote **one member, one vote** (strength weighs validation, not
//!     decisions about the coalition itself). A proposal keeps the quorum, threshold, delay and
//!     expiry of its creation; it passes when the turnout reaches the quorum of the members at
//!     creation and the ayes the threshold of the turnout, and is enacted by anyone between the
//!     end of voting plus the delay and its expiry. An action that can no longer apply closes
//!     the proposal as `Failed` with the reason; one not enacted in time closes as `Expired`.
//!     Each member may have `MAX_OPEN_PROPOSALS_PER_MEMBER` open. Membership changes, reverts
//!     and local-set changes wait for no round to be open, and while one is due no new round
//!     opens (`GovernancePending`): a member cannot starve its own removal by proposing.
//! 11. **Revert**: appends a block whose parameters are those of an earlier block.
//! 12. **Audit anchors**: the vault operator's access-log roots live in the `audit-anchors`
//!     contract, whose address the coalition records for anyone to find.
//!
//! ## Trust assumptions
//! - **Validators**: the tally holds against up to `k/3` lying validators, at `k/3` only while
//!   every honest one reveals (the guarantees and their proof are in `coalition_types::rules`).
//!   Liars beyond that bound, colluding, can accept a degrading candidate or record a G
//!   performance of their choosing; the recorded number is the G metric alone, their reports
//!   stay on chain (`Revealed`), and an audit re-evaluating the block's model on G
//!   (`tclearn audit blocks`) finds them. Their local sets can only vote: with a registered L of
//!   any size they can refuse a good candidate, not raise the number.
//! - **The draw**: each window block's randomness is BABE's VRF output of its author's key over
//!   the slot and the epoch randomness; the client checks the VRF proof on import, so the author
//!   can neither choose nor grind it, and nobody else knows it before the block is out. Hence:
//!   - A party that authors none of the window's three blocks (a member, a proposer, an oracle,
//!     anyone with every key but the honest authors') cannot predict the panel before its
//!     proposal is included: it does no better than chance (`unpredictable_panels` in the
//!     runtime's tests, which also shows the old block-hash seed predicted every time).
//!   - A colluding block author knows its own future outputs. It can predict a panel only when it
//!     authors all three blocks of the window (with a share `f` of the slots, about `f^3` of the
//!     windows, which it can see coming and time a proposal for).
//!   - An author that makes the window's last block can withhold it when it dislikes the panel:
//!     the next slot's author makes that block instead, a second draw. One re-roll per withheld
//!     block, at the cost of the block. Measured on the runtime: one validator of four with two
//!     partner members of nine captured two seats in 10.0% of 600 rounds against 8.3% for an honest
//!     draw (`a_colluding_author_that_withholds_gets_at_most_one_re_roll`).
//!   - Once drawn, the panel and the order of generals are fixed and public.
//!
//!   This is BABE's own bound (its `ParentBlockRandomness`, which trades that bias for freshness);
//!   Algorand's sortition has the same one-re-roll bias from a withholding leader, and only a
//!   threshold beacon such as drand, which no single member can stop, removes it.
//! - **Data IDs and strength**: the chain checks that an ID is used once, not that it names a
//!   real patient: a member can claim IDs of samples it does not have (squatting another
//!   member's patients, whose later contribution is then refused) or make up IDs to raise its
//!   `D_i`. Made-up IDs earn strength only with a candidate that beats the credit mark by
//!   `min_gain` on G, so farming with no-op candidates (the tip with noise) earns nothing; a
//!   member that truly improves the model may still inflate its sample count. Keyed IDs from a
//!   coalition secret and audits of the vault's training data are the remedies off chain.
//! - **Colluders**: the cooldown is per member, so colluding members can take turns holding the
//!   round slot; standing bounds how much a validator that deviates or stays silent is drawn,
//!   not what colluders above `k/3` of a panel can do (see `README.md`, "What insiders can still
//!   do").
//! - **Privacy spends** are declared by the proposer, and the validators check that the
//!   declaration is consistent: its RDP is what its noise gives over the round's samples, batch
//!   size and epochs. Nobody can check from the chain that the noise was really added, nor that
//!   the samples are real (made-up data IDs lower the sampling rate, and so the declared
//!   spend), nor that the gradients were clipped: attested training or proofs of training would.
//!   The totals are kept per account, not per patient: a patient in two hospitals' data is
//!   charged twice, once in each. A budget whose delta governance changes converts the totals
//!   at the new delta from the member's next proposal on.
//!
//! ## Invariants
//! - The model chain is append-only; block `i + 1` carries block `i`'s hash.
//! - At most one round is open; a round's parent is the tip for its whole life.
//! - A data ID is in at most one appended block; a round that ends without a block appends none,
//!   and its claims hold against nobody once its reserve is over.
//! - The lambda rule's reference is the lineage's best performance; the credit mark never falls.
//! - Every collection is bounded (the `MAX_*` constants of `coalition-types`); every stored value
//!   fits pallet-revive's 416-byte storage item, so collections live in mappings, one bounded
//!   value per key (`tests::every_stored_value_fits_a_storage_item`).
//! - No message panics on input: no indexing, no unchecked arithmetic, no unwrap.
//!
//! ## Storage a round leaves behind
//! The round record (at most 315 bytes), its validators (at most 322), its candidate reference
//! (at most 130), one ballot per drawn validator that acted or stayed silent while its panel
//! reached a verdict (at most 157 each; a silent one's is paid by whoever ends the tally) and,
//! if sealed, the seal (at most 222). A proposal writes an entry per data ID and one for its
//! candidate (its claims, paid by the proposer) and keeps its IDs in chunks of 12. The round
//! that appends its block removes the chunks (the claims stay: the IDs are used); a round that
//! ends without a block keeps both until its proposer's `release_claims` removes them and the
//! deposit returns to the proposer.
#![cfg_attr(not(feature = "std"), no_std, no_main)]

// 32 KiB of stack: PolkaVM gives a program 8 KiB unless it asks for more, and a tally with its
// standing and the reveal that ends it need more (a stack overflow traps the call).
#[cfg(target_arch = "riscv64")]
polkavm_derive::min_stack_size!(32 * 1024);

pub mod events;
pub mod storage;
#[cfg(test)]
mod tests;

use coalition_types::hashing::Keccak;

/// keccak-256 by the host (`hash_keccak_256`), far cheaper on chain than in PolkaVM code.
pub struct HostKeccak;

impl Keccak for HostKeccak {
    fn keccak256(input: &[u8]) -> [u8; 32] {
        let mut output = [0u8; 32];
        ink::env::hash_bytes::<ink::env::hash::Keccak256>(input, &mut output);
        output
    }
}

// ink! decodes each call into one enum of every message's arguments, held by value: `propose`'s
// DP declaration (264 bytes) makes its variant the largest. A message is decoded once per call, so
// the size costs nothing worth an indirection in the contract's ABI.
#[allow(clippy::large_enum_variant)]
#[ink::contract]
pub mod coalition {
    use crate::{events::*, storage::Stored, HostKeccak};
    pub use coalition_types::Error;
    use coalition_types::{
        hashing, rdp, rules, Action, Ballot, BlockHeader, Deviation, DpDeclaration, EvaluationSpec, Failure, Genesis,
        GovernanceParams, Hyperparameters, LocalTestSet, Member, ModelBlock, Phase, Proposal, ProposalStatus, Report,
        Round, Seal, CLAIM_RESERVE, DATA_IDS_PER_CHUNK, DRAW_DELAY, MAX_DATA_IDS, MAX_LOCAL_SET, MAX_MEMBERS,
        MAX_OPEN_PROPOSALS, MAX_OPEN_PROPOSALS_PER_MEMBER, MAX_VAULT_REF,
    };
    use ink::{prelude::vec::Vec, storage::Mapping, H256};

    /// Result type of the coalition's messages.
    pub type Result<T> = core::result::Result<T, Error>;

    /// A ballot's key: the round and the validator.
    type BallotKey = (u64, Address);
    /// A data-ID chunk's key: the round and the chunk's index.
    type ChunkKey = (u64, u32);

    /// Contract storage. Everything outside a `Mapping` is one storage value, so collections
    /// live in mappings.
    #[ink(storage)]
    pub struct Coalition {
        /// Architecture, G, metric and tolerance: fixed at genesis.
        spec: Stored<EvaluationSpec>,
        /// Current hyperparameters (a round keeps those it opened with).
        params: Stored<Hyperparameters>,
        /// Current governance parameters (a proposal keeps those it was created with).
        governance: Stored<GovernanceParams>,
        /// Members by slot, `0..member_count` (removal moves the last member into the gap).
        members: Mapping<u32, Stored<Member>>,
        /// Slot of each member.
        member_slots: Mapping<Address, u32>,
        /// Number of members, `N` (at most `MAX_MEMBERS`).
        member_count: u32,
        /// Each member's registered local test set.
        local_sets: Mapping<Address, Stored<LocalTestSet>>,
        /// The model chain by index, `0..=height`.
        blocks: Mapping<u32, Stored<ModelBlock>>,
        /// Index of the tip.
        height: u32,
        /// The first block with each parameter hash.
        known_parameters: Mapping<H256, u32>,
        /// Rounds by id, `0..next_round`.
        rounds: Mapping<u64, Stored<Round>>,
        /// Each round's validators, in draw order (empty until drawn).
        round_validators: Mapping<u64, Vec<Address>>,
        /// Each round's candidate vault reference.
        candidate_refs: Mapping<u64, Vec<u8>>,
        /// Each sealed round's current seal.
        seals: Mapping<u64, Stored<Seal>>,
        /// Each validator's ballot, by (round, validator).
        ballots: Mapping<BallotKey, Stored<Ballot>>,
        /// The open round, if any.
        open_round: Option<u64>,
        /// Id of the next round.
        next_round: u64,
        /// Each round's data IDs by (round, chunk), `DATA_IDS_PER_CHUNK` per chunk: kept while
        /// the round is open, and after it ends without a block until its proposer releases its
        /// claims; removed when it appends its block.
        round_data_ids: Mapping<ChunkKey, Vec<H256>>,
        /// The round that claimed each data ID. The claim holds while that round is open or once
        /// it appended its block; the claim of a round that ended without a block is void: anyone
        /// may take it over, and its proposer's `release_claims` removes it.
        data_ids: Mapping<H256, u64>,
        /// The last round that proposed each candidate that is not on the chain: reserved for
        /// that round's proposer like its data IDs.
        candidate_rounds: Mapping<H256, u64>,
        /// The credit mark: the best performance that earned strength so far (genesis: its
        /// performance; a revert: its target's best) (`rules::earns_strength`).
        credit_mark: i64,
        /// The gain of the last candidate rejected while it beat the credit mark, reserved for
        /// its proposer until a block number: another member's copy of it earns nothing before.
        reserved_gain: Option<(Address, i64, BlockNumber)>,
        /// Proposals by id, `0..next_proposal`.
        proposals: Mapping<u32, Stored<Proposal>>,
        /// Votes by (proposal, member).
        votes: Mapping<(u32, Address), bool>,
        /// Id of the next proposal.
        next_proposal: u32,
        /// Ids of the open proposals (at most `MAX_OPEN_PROPOSALS`).
        open_proposals: Vec<u32>,
        /// The vault's audit-anchors contract.
        audit_anchors: Option<Address>,
        /// Each member's declared Rényi DP, composed over its proposals (`rules::spend_privacy`);
        /// kept when it leaves, so that a member re-admitted starts from what it spent. Written
        /// only by a proposal that declares DP.
        privacy_totals: Mapping<Address, Stored<rdp::Rdp>>,
        /// Each round's DP declaration, if it made one: what its validators check.
        round_privacy: Mapping<u64, Stored<DpDeclaration>>,
    }

    impl Coalition {
        /// Found a coalition: block 0 is the genesis model.
        ///
        /// # Errors
        /// - `InvalidHyperparameters`, `InvalidGovernanceParams`: a parameter out of range.
        /// - `InvalidGenesis`: metric direction, performance out of the metric's range, empty G,
        ///   no founders, duplicate or too many founders, bad vault reference.
        #[ink(constructor)]
        pub fn new(genesis: Genesis) -> Result<Self> {
            Self::ensure_genesis(&genesis)?;
            let mut coalition = Self {
                spec: Stored(EvaluationSpec {
                    architecture_hash: genesis.architecture_hash,
                    test_set_hash: genesis.test_set_hash,
                    test_set_size: genesis.test_set_size,
                    metric: genesis.metric,
                    higher_is_better: genesis.higher_is_better,
                    metric_tolerance: genesis.metric_tolerance,
                }),
                params: Stored(genesis.hyperparameters),
                governance: Stored(genesis.governance),
                members: Mapping::new(),
                member_slots: Mapping::new(),
                member_count: 0,
                local_sets: Mapping::new(),
                blocks: Mapping::new(),
                height: 0,
                known_parameters: Mapping::new(),
                rounds: Mapping::new(),
                round_validators: Mapping::new(),
                candidate_refs: Mapping::new(),
                seals: Mapping::new(),
                ballots: Mapping::new(),
                open_round: None,
                next_round: 0,
                round_data_ids: Mapping::new(),
                data_ids: Mapping::new(),
                candidate_rounds: Mapping::new(),
                credit_mark: genesis.performance,
                reserved_gain: None,
                proposals: Mapping::new(),
                votes: Mapping::new(),
                next_proposal: 0,
                open_proposals: Vec::new(),
                audit_anchors: genesis.audit_anchors,
                privacy_totals: Mapping::new(),
                round_privacy: Mapping::new(),
            };
            for account in &genesis.founders {
                coalition.add_member(*account)?;
            }
            let strengths = coalition.strengths();
            let mut block = ModelBlock {
                index: 0,
                timestamp: coalition.env().block_timestamp(),
                previous_hash: H256::zero(),
                parameter_hash: genesis.parameter_hash,
                vault_ref: genesis.vault_ref,
                contributor: None,
                samples: 0,
                strengths_hash: hashing::strengths_hash::<HostKeccak>(&strengths),
                performance: genesis.performance,
                best_performance: genesis.performance,
                round: None,
                block_hash: H256::zero(),
            };
            block.block_hash = hashing::block_hash::<HostKeccak>(&block.header::<HostKeccak>());
            coalition.blocks.insert(0, &Stored(block.clone()));
            coalition.known_parameters.insert(block.parameter_hash, &0);
            coalition.emit_strengths();
            coalition.env().emit_event(BlockAppended {
                index: 0,
                block_hash: block.block_hash,
                parameter_hash: block.parameter_hash,
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
            self.spec.0
        }

        /// Current hyperparameters.
        #[ink(message)]
        pub fn hyperparameters(&self) -> Hyperparameters {
            self.params.0
        }

        /// Current governance parameters.
        #[ink(message)]
        pub fn governance_params(&self) -> GovernanceParams {
            self.governance.0
        }

        /// Members with their `D_i`, in slot order.
        #[ink(message)]
        pub fn members(&self) -> Vec<Member> {
            (0..self.member_count).filter_map(|slot| self.members.get(slot).map(|m| m.0)).collect()
        }

        /// Every member's strength (parts per billion), in slot order.
        #[ink(message)]
        pub fn strengths(&self) -> Vec<(Address, u64)> {
            rules::strengths(&self.members())
        }

        /// One member's strength, if it is a member.
        #[ink(message)]
        pub fn strength_of(&self, account: Address) -> Option<u64> {
            self.member_slots.get(account)?;
            self.strengths().into_iter().find(|(a, _)| *a == account).map(|(_, s)| s)
        }

        /// A member's registered local test set.
        #[ink(message)]
        pub fn local_test_set(&self, account: Address) -> Option<LocalTestSet> {
            self.local_sets.get(account).map(|s| s.0)
        }

        /// Index of the tip.
        #[ink(message)]
        pub fn height(&self) -> u32 {
            self.height
        }

        /// Block `index` of the model chain.
        #[ink(message)]
        pub fn block(&self, index: u32) -> Option<ModelBlock> {
            self.blocks.get(index).map(|b| b.0)
        }

        /// The open round's id, if any.
        #[ink(message)]
        pub fn open_round(&self) -> Option<u64> {
            self.open_round
        }

        /// Round `id`.
        #[ink(message)]
        pub fn round(&self, id: u64) -> Option<Round> {
            self.rounds.get(id).map(|r| r.0)
        }

        /// Round `id`'s DP declaration, if it made one.
        #[ink(message)]
        pub fn round_privacy(&self, id: u64) -> Option<DpDeclaration> {
            self.round_privacy.get(id).map(|d| d.0)
        }

        /// `account`'s declared Rényi DP, composed over its proposals (zero at every order if it
        /// declared none).
        #[ink(message)]
        pub fn privacy_totals(&self, account: Address) -> rdp::Rdp {
            self.privacy_totals.get(account).map(|t| t.0).unwrap_or_default()
        }

        /// Round `id`'s validators, in draw order (empty until drawn).
        #[ink(message)]
        pub fn round_validators(&self, id: u64) -> Vec<Address> {
            self.round_validators.get(id).unwrap_or_default()
        }

        /// Round `id`'s candidate vault reference.
        #[ink(message)]
        pub fn candidate_ref(&self, id: u64) -> Option<Vec<u8>> {
            self.candidate_refs.get(id)
        }

        /// Round `id`'s current seal, once sealed.
        #[ink(message)]
        pub fn seal_of(&self, id: u64) -> Option<Seal> {
            self.seals.get(id).map(|s| s.0)
        }

        /// A validator's ballot in a round.
        #[ink(message)]
        pub fn ballot(&self, round: u64, validator: Address) -> Option<Ballot> {
            self.ballots.get((round, validator)).map(|b| b.0)
        }

        /// The block a data ID was used in, if any.
        #[ink(message)]
        pub fn data_id_block(&self, id: H256) -> Option<u32> {
            self.round(self.data_ids.get(id)?)?.block
        }

        /// The first block with these parameters, if any.
        #[ink(message)]
        pub fn parameters_block(&self, parameter_hash: H256) -> Option<u32> {
            self.known_parameters.get(parameter_hash)
        }

        /// Proposal `id`.
        #[ink(message)]
        pub fn proposal(&self, id: u32) -> Option<Proposal> {
            self.proposals.get(id).map(|p| p.0)
        }

        /// Ids of the open proposals.
        #[ink(message)]
        pub fn open_proposals(&self) -> Vec<u32> {
            self.open_proposals.clone()
        }

        /// The vault's audit-anchors contract.
        #[ink(message)]
        pub fn audit_anchors(&self) -> Option<Address> {
            self.audit_anchors
        }

        /// Whether a round claims `id` (for tests).
        #[cfg(test)]
        pub fn data_id_claimed(&self, id: H256) -> bool {
            self.data_ids.contains(id)
        }

        /// Chunks of a round's data IDs still stored (for tests).
        #[cfg(test)]
        pub fn stored_data_id_chunks(&self, round: u64) -> u32 {
            let most = data_chunks(u64::from(MAX_DATA_IDS));
            u32::try_from((0..most).filter(|chunk| self.round_data_ids.contains((round, *chunk))).count())
                .unwrap_or(u32::MAX)
        }

        /// The credit mark (for tests).
        #[cfg(test)]
        pub fn credit_mark(&self) -> i64 {
            self.credit_mark
        }

        // ---- Members -------------------------------------------------------------------

        /// Register the caller's local test set L (hash and size), once. Every later report of
        /// the caller must state this size; only governance replaces it (`SetLocalTestSet`).
        ///
        /// # Errors
        /// - `NotMember`: the caller is not a member.
        /// - `LocalTestSetRegistered`: the caller has registered one already.
        /// - `InvalidLocalTestSet`: no samples, or more than `MAX_LOCAL_SET`.
        #[ink(message)]
        pub fn register_local_test_set(&mut self, set: LocalTestSet) -> Result<()> {
            let member = self.env().caller();
            self.ensure_member(&member)?;
            if self.local_sets.contains(member) {
                return Err(Error::LocalTestSetRegistered);
            }
            ensure_local_set(&set)?;
            self.local_sets.insert(member, &Stored(set));
            self.env().emit_event(LocalTestSetChanged { member, set: Some(set) });
            Ok(())
        }

        // ---- Rounds --------------------------------------------------------------------

        /// Propose a candidate on the tip and open a round, whose validators are drawn
        /// `DRAW_DELAY` blocks later. Returns the round id.
        ///
        /// # Errors
        /// - `NotMember`: the caller is not a member.
        /// - `ProposalCooldown`: the caller's cooldown after its last round has not passed.
        /// - `RoundOpen`: a round is open.
        /// - `GovernancePending`: a passed membership change, revert or local-set change is due.
        /// - `StaleParent`: `parent` is not the tip.
        /// - `InvalidVaultRef`: empty or longer than `MAX_VAULT_REF`.
        /// - `KnownParameters`: the candidate's parameters are a block's already.
        /// - `Reserved`: the candidate is reserved for another member's round.
        /// - `BatchTooSmall`, `TooManyDataIds`, `DataIdCountMismatch`, `DuplicateDataId`,
        ///   `DataIdUsed`: the sample count and data IDs.
        /// - `NoEligibleValidators`: no other member can validate.
        /// - `PrivacyBudgetExceeded`: `privacy`, composed with the proposer's earlier
        ///   declarations, would pass the budget's epsilon, or is `None` while a budget is set.
        #[ink(message)]
        pub fn propose(
            &mut self,
            parent: u32,
            candidate: H256,
            vault_ref: Vec<u8>,
            samples: u64,
            data_ids: Vec<H256>,
            privacy: Option<DpDeclaration>,
        ) -> Result<u64> {
            let proposer = self.env().caller();
            let (slot, mut member) = self.ensure_member_slot(&proposer)?;
            let now = self.env().block_number();
            if now < member.may_propose_at {
                return Err(Error::ProposalCooldown);
            }
            self.ensure_no_open_round()?;
            self.ensure_no_pending_governance()?;
            if parent != self.height {
                return Err(Error::StaleParent);
            }
            ensure_vault_ref(&vault_ref)?;
            if self.known_parameters.contains(candidate) {
                return Err(Error::KnownParameters);
            }
            if let Some(earlier) = self.candidate_rounds.get(candidate) {
                self.ensure_not_reserved(earlier, &proposer, now)?;
            }
            if samples < self.params.0.min_batch_size {
                return Err(Error::BatchTooSmall);
            }
            if data_ids.len() > MAX_DATA_IDS as usize {
                return Err(Error::TooManyDataIds);
            }
            if u64::try_from(data_ids.len()).ok() != Some(samples) {
                return Err(Error::DataIdCountMismatch);
            }
            self.ensure_fresh_data_ids(&data_ids)?;
            if self.member_count < 2 {
                return Err(Error::NoEligibleValidators);
            }
            let totals = self.privacy_totals(proposer);
            let after = rules::spend_privacy(&totals, privacy.as_ref(), self.params.0.privacy_budget)?;
            member.privacy_spent = after.spent;

            let id = self.next_round;
            let next_round = id.checked_add(1).ok_or(Error::Overflow)?;
            let tip = self.tip()?;
            let draw_block = self.deadline_after(DRAW_DELAY)?;
            let round = Round {
                id,
                proposer,
                parent,
                parent_hash: tip.block_hash,
                candidate,
                samples,
                privacy: after.spend,
                opened_at: now,
                validators: 0,
                seed: H256::zero(),
                params: self.params.0,
                phase: Phase::Drawing,
                deadline: draw_block,
                commits: 0,
                reveals: 0,
                performance: None,
                accepts: 0,
                credited: 0,
                deviants: 0,
                generals_drawn: 0,
                general: None,
                attestations: 0,
                block: None,
            };
            // The proposer pays the deposit of its claims; if the round ends without a block,
            // the proposer frees them (`release_claims`) and the deposit comes back to it.
            for data_id in &data_ids {
                self.data_ids.insert(data_id, &id);
            }
            for (chunk, ids) in (0u32..).zip(data_ids.chunks(DATA_IDS_PER_CHUNK as usize)) {
                self.round_data_ids.insert((id, chunk), &ids.to_vec());
            }
            self.candidate_rounds.insert(candidate, &id);
            if let Some(declaration) = privacy {
                self.privacy_totals.insert(proposer, &Stored(after.totals));
                self.round_privacy.insert(id, &Stored(declaration));
            }
            self.members.insert(slot, &Stored(member));
            self.rounds.insert(id, &Stored(round));
            self.candidate_refs.insert(id, &vault_ref);
            self.open_round = Some(id);
            self.next_round = next_round;
            self.env().emit_event(RoundOpened {
                round: id,
                proposer,
                candidate,
                parent,
                vault_ref,
                samples,
                privacy: after.spend,
                draw_block,
            });
            Ok(id)
        }

        /// Release the claims of a round of the caller's that ended without a block: its data IDs
        /// (those no later round took over) and its candidate are free again, and the storage
        /// deposit the caller paid for them comes back to it. Returns the data IDs released.
        ///
        /// # Errors
        /// - `WrongRound`: no such round.
        /// - `NotProposer`: the caller did not propose it.
        /// - `RoundOpen`: it is still open.
        /// - `WrongPhase`: it appended its block (its claims hold for good).
        #[ink(message)]
        pub fn release_claims(&mut self, round: u64) -> Result<u32> {
            let caller = self.env().caller();
            let state = self.round(round).ok_or(Error::WrongRound)?;
            if state.proposer != caller {
                return Err(Error::NotProposer);
            }
            if !state.phase.is_final() {
                return Err(Error::RoundOpen);
            }
            if state.phase == Phase::Appended {
                return Err(Error::WrongPhase);
            }
            let mut released = 0u32;
            for chunk in 0..data_chunks(state.samples) {
                for id in self.round_data_ids.take((round, chunk)).unwrap_or_default() {
                    if self.data_ids.get(id) == Some(round) {
                        self.data_ids.remove(id);
                        released = released.saturating_add(1);
                    }
                }
            }
            if self.candidate_rounds.get(state.candidate) == Some(round) {
                self.candidate_rounds.remove(state.candidate);
            }
            self.env().emit_event(ClaimsReleased { round, proposer: caller, released });
            Ok(released)
        }

        /// Commit to a report: `commitment = keccak(SCALE(contract, caller, report, salt))`.
        ///
        /// # Errors
        /// - `WrongRound`, `WrongPhase`: `round` is not open, or not taking commits.
        /// - `DeadlinePassed`: the commit deadline has passed.
        /// - `NotValidator`: the caller was not drawn.
        /// - `AlreadyCommitted`: the caller committed already.
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
            self.ballots.insert((round, validator), &Stored(ballot));
            self.env().emit_event(Committed { round, validator });
            if state.commits >= state.validators {
                self.enter(&mut state, Phase::Reveal)?;
            }
            self.rounds.insert(round, &Stored(state));
            Ok(())
        }

        /// Reveal the committed report and its salt. The last reveal tallies the round.
        ///
        /// # Errors
        /// - `WrongRound`, `WrongPhase`: `round` is not open, or not taking reveals.
        /// - `DeadlinePassed`: the reveal deadline has passed.
        /// - `NotValidator`, `NotCommitted`, `AlreadyRevealed`: the caller's ballot.
        /// - `ReportMismatch`: the report names another round or candidate.
        /// - `CommitmentMismatch`: report and salt do not open the caller's commitment.
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
            let contract = self.env().address();
            if hashing::commitment::<HostKeccak>(&contract, &validator, &report, &salt) != committed {
                return Err(Error::CommitmentMismatch);
            }
            ballot.report = Some(report);
            state.reveals = state.reveals.checked_add(1).ok_or(Error::Overflow)?;
            self.ballots.insert((round, validator), &Stored(ballot));
            self.env().emit_event(Revealed { round, validator, report });
            if state.reveals >= state.commits {
                self.tally(&mut state)?;
            }
            self.rounds.insert(round, &Stored(state));
            Ok(())
        }

        /// The general seals the accepted candidate: `vault_ref` is where it stored the model.
        /// Returns the block hash validators attest.
        ///
        /// # Errors
        /// - `WrongRound`, `WrongPhase`: `round` is not open, or not being sealed.
        /// - `DeadlinePassed`: the seal deadline has passed.
        /// - `NotGeneral`: the caller is not the current general.
        /// - `InvalidVaultRef`: empty or longer than `MAX_VAULT_REF`.
        #[ink(message)]
        pub fn seal(&mut self, round: u64, vault_ref: Vec<u8>) -> Result<H256> {
            let general = self.env().caller();
            let mut state = self.open_round_in(round, Phase::Sealing)?;
            self.ensure_before_deadline(&state)?;
            if state.general != Some(general) {
                return Err(Error::NotGeneral);
            }
            ensure_vault_ref(&vault_ref)?;
            let strengths = self.strengths_after(&state.proposer, state.credited)?;
            let strengths_hash = hashing::strengths_hash::<HostKeccak>(&strengths);
            let timestamp = self.env().block_timestamp();
            let header = BlockHeader {
                index: self.height.checked_add(1).ok_or(Error::Overflow)?,
                timestamp,
                previous_hash: state.parent_hash,
                parameter_hash: state.candidate,
                vault_ref_hash: hashing::keccak::<HostKeccak>(&vault_ref),
                contributor: Some(state.proposer),
                strengths_hash,
            };
            let hash = hashing::block_hash::<HostKeccak>(&header);
            self.seals.insert(
                round,
                &Stored(Seal { general, vault_ref: vault_ref.clone(), timestamp, block_hash: hash, strengths_hash }),
            );
            let mut ballot = self.ballot(round, general).unwrap_or_default();
            ballot.attested = Some(hash);
            self.ballots.insert((round, general), &Stored(ballot));
            state.attestations = 1;
            self.env().emit_event(Sealed { round, general, block_hash: hash, vault_ref });
            self.enter(&mut state, Phase::Attesting)?;
            self.append_if_attested(&mut state)?;
            self.rounds.insert(round, &Stored(state));
            Ok(hash)
        }

        /// Attest that the sealed model is in the vault and matches `block_hash`.
        ///
        /// # Errors
        /// - `WrongRound`, `WrongPhase`: `round` is not open, or not being attested.
        /// - `DeadlinePassed`: the attestation deadline has passed.
        /// - `NotValidator`: the caller was not drawn.
        /// - `SealMismatch`: `block_hash` is not the current seal's.
        /// - `AlreadyAttested`: the caller attested this seal already.
        #[ink(message)]
        pub fn attest(&mut self, round: u64, block_hash: H256) -> Result<()> {
            let validator = self.env().caller();
            let mut state = self.open_round_in(round, Phase::Attesting)?;
            self.ensure_before_deadline(&state)?;
            let mut ballot = self.ensure_validator_ballot(round, &validator)?;
            if self.seals.get(round).map(|s| s.0.block_hash) != Some(block_hash) {
                return Err(Error::SealMismatch);
            }
            if ballot.attested == Some(block_hash) {
                return Err(Error::AlreadyAttested);
            }
            ballot.attested = Some(block_hash);
            state.attestations = state.attestations.checked_add(1).ok_or(Error::Overflow)?;
            self.ballots.insert((round, validator), &Stored(ballot));
            self.env().emit_event(Attested { round, validator });
            self.append_if_attested(&mut state)?;
            self.rounds.insert(round, &Stored(state));
            Ok(())
        }

        /// After the open round's deadline, move it on: drawing → draw the validators (or move
        /// the draw if its block's hash is out of reach), commit → reveal (or fail without
        /// commits), reveal → tally, sealing or attesting → the next general (or fail). Anyone
        /// may call it. Returns the new phase.
        ///
        /// # Errors
        /// - `NoOpenRound`: no round is open.
        /// - `DeadlineNotReached`: the phase's deadline has not passed.
        #[ink(message)]
        pub fn advance(&mut self) -> Result<Phase> {
            let id = self.open_round.ok_or(Error::NoOpenRound)?;
            let mut state = self.round(id).ok_or(Error::WrongRound)?;
            if self.env().block_number() <= state.deadline {
                return Err(Error::DeadlineNotReached);
            }
            match state.phase {
                Phase::Drawing => self.draw(&mut state)?,
                Phase::Commit if state.commits == 0 => self.fail(&mut state, Failure::NoCommits),
                Phase::Commit => self.enter(&mut state, Phase::Reveal)?,
                Phase::Reveal => self.tally(&mut state)?,
                Phase::Sealing => self.next_general(&mut state, Failure::NoGeneral)?,
                Phase::Attesting => self.next_general(&mut state, Failure::NotAttested)?,
                _ => return Err(Error::NoOpenRound),
            }
            self.rounds.insert(id, &Stored(state.clone()));
            Ok(state.phase)
        }

        // ---- Governance ----------------------------------------------------------------

        /// Propose a governance action. The proposal keeps today's governance rules. Returns
        /// the proposal id.
        ///
        /// # Errors
        /// - `NotMember`: the caller is not a member.
        /// - `TooManyProposals`, `TooManyProposalsByMember`: too many open proposals.
        /// - The action's own refusal if it could not apply now (`AlreadyMember`,
        ///   `TooManyMembers`, `NotMember`, `LastMember`, `InvalidRevert`,
        ///   `InvalidHyperparameters`, `InvalidGovernanceParams`, `InvalidLocalTestSet`).
        #[ink(message)]
        pub fn propose_action(&mut self, action: Action) -> Result<u32> {
            let proposer = self.env().caller();
            self.ensure_member(&proposer)?;
            if self.open_proposals.len() >= MAX_OPEN_PROPOSALS as usize {
                return Err(Error::TooManyProposals);
            }
            let mine = self
                .open_proposals
                .iter()
                .filter(|id| self.proposals.get(**id).is_some_and(|p| p.0.proposer == proposer))
                .count();
            if mine >= MAX_OPEN_PROPOSALS_PER_MEMBER as usize {
                return Err(Error::TooManyProposalsByMember);
            }
            self.ensure_action_valid(&action)?;
            let id = self.next_proposal;
            let rules = self.governance.0;
            let voting_ends = self.deadline_after(rules.voting_period)?;
            let enactable_from =
                voting_ends.checked_add(rules.enactment_delay).and_then(|b| b.checked_add(1)).ok_or(Error::Overflow)?;
            // Long enough for an open round to end first, so a member cannot run it out.
            let window = rules.voting_period.saturating_add(self.params.0.longest_round());
            let expires = enactable_from.checked_add(window).ok_or(Error::Overflow)?;
            let proposal = Proposal {
                id,
                proposer,
                action,
                voting_ends,
                enactable_from,
                expires,
                electorate: self.member_count,
                quorum: rules.quorum,
                threshold: rules.threshold,
                ayes: 0,
                nays: 0,
                status: ProposalStatus::Open,
            };
            self.next_proposal = id.checked_add(1).ok_or(Error::Overflow)?;
            self.open_proposals.push(id);
            self.proposals.insert(id, &Stored(proposal));
            self.env().emit_event(ProposalCreated { proposal: id, proposer, action, voting_ends, expires });
            Ok(id)
        }

        /// Vote on an open proposal: one member, one vote.
        ///
        /// # Errors
        /// - `NotMember`: the caller is not a member.
        /// - `UnknownProposal`, `ProposalClosed`, `VotingEnded`: the proposal.
        /// - `AlreadyVoted`: the caller voted already.
        #[ink(message)]
        pub fn vote(&mut self, proposal: u32, aye: bool) -> Result<()> {
            let voter = self.env().caller();
            self.ensure_member(&voter)?;
            let mut state = self.proposal(proposal).ok_or(Error::UnknownProposal)?;
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
            self.proposals.insert(proposal, &Stored(state));
            self.env().emit_event(Voted { proposal, voter, aye });
            Ok(())
        }

        /// After voting ends, close a proposal: rejected if it missed its quorum or threshold;
        /// expired past its expiry; failed, with the reason, if its action can no longer apply;
        /// else enacted once its delay is over. Anyone may call it. Returns the new status.
        ///
        /// # Errors
        /// - `UnknownProposal`, `ProposalClosed`: the proposal.
        /// - `VotingOpen`, `EnactmentNotDue`: too early.
        /// - `RoundOpen`: it changes members, reverts or changes a local set, and a round is
        ///   open (it waits; no new round opens while it is due).
        #[ink(message)]
        pub fn enact(&mut self, proposal: u32) -> Result<ProposalStatus> {
            let mut state = self.proposal(proposal).ok_or(Error::UnknownProposal)?;
            if state.status != ProposalStatus::Open {
                return Err(Error::ProposalClosed);
            }
            let now = self.env().block_number();
            if now <= state.voting_ends {
                return Err(Error::VotingOpen);
            }
            if let Some(reason) = state.rejection() {
                state.status = ProposalStatus::Rejected(reason);
                self.close_proposal(&state);
                self.env().emit_event(ProposalRejected { proposal, reason });
                return Ok(state.status);
            }
            if now < state.enactable_from {
                return Err(Error::EnactmentNotDue);
            }
            if now > state.expires {
                state.status = ProposalStatus::Expired;
                self.close_proposal(&state);
                self.env().emit_event(ProposalExpired { proposal });
                return Ok(state.status);
            }
            if state.action.waits_for_rounds() {
                self.ensure_no_open_round()?;
            }
            if let Err(reason) = self.ensure_action_valid(&state.action) {
                state.status = ProposalStatus::Failed(reason);
                self.close_proposal(&state);
                self.env().emit_event(ProposalFailed { proposal, reason });
                return Ok(state.status);
            }
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
            let valid = genesis.test_set_size > 0
                && genesis.higher_is_better == genesis.metric.higher_is_better()
                && genesis.metric.admits(genesis.performance)
                && !founders.is_empty()
                && founders.len() == genesis.founders.len()
                && founders.len() <= MAX_MEMBERS as usize;
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

        /// A member's slot and record.
        fn ensure_member_slot(&self, account: &Address) -> Result<(u32, Member)> {
            let slot = self.member_slots.get(account).ok_or(Error::NotMember)?;
            let member = self.members.get(slot).ok_or(Error::NotMember)?;
            Ok((slot, member.0))
        }

        fn ensure_no_open_round(&self) -> Result<()> {
            match self.open_round {
                Some(_) => Err(Error::RoundOpen),
                None => Ok(()),
            }
        }

        /// No passed proposal that waits for rounds is due: it goes before any new round.
        fn ensure_no_pending_governance(&self) -> Result<()> {
            let now = self.env().block_number();
            let due = self.open_proposals.iter().filter_map(|id| self.proposal(*id)).any(|p| {
                p.action.waits_for_rounds()
                    && now > p.voting_ends
                    && now >= p.enactable_from
                    && now <= p.expires
                    && p.rejection().is_none()
                    && self.ensure_action_valid(&p.action).is_ok()
            });
            if due {
                Err(Error::GovernancePending)
            } else {
                Ok(())
            }
        }

        /// No duplicates in `data_ids`, and none in an appended block (a claim of a round that
        /// ended without a block is void: anyone may take it over).
        fn ensure_fresh_data_ids(&self, data_ids: &[H256]) -> Result<()> {
            let mut sorted = data_ids.to_vec();
            sorted.sort_unstable();
            if sorted.windows(2).any(|pair| pair.first() == pair.get(1)) {
                return Err(Error::DuplicateDataId);
            }
            // Rounds already found to have ended without a block: IDs come in batches of one.
            let mut void: Vec<u64> = Vec::new();
            for id in data_ids {
                let Some(round) = self.data_ids.get(id) else { continue };
                if !void.contains(&round) {
                    if self.round(round).is_none_or(|r| r.phase == Phase::Appended || !r.phase.is_final()) {
                        return Err(Error::DataIdUsed);
                    }
                    void.push(round);
                }
            }
            Ok(())
        }

        /// The candidate of round `id` is free for `caller`: the round ended without a block, and
        /// its reserve for its proposer is over or `caller` is that proposer.
        fn ensure_not_reserved(&self, id: u64, caller: &Address, now: BlockNumber) -> Result<()> {
            let Some(round) = self.round(id) else { return Ok(()) };
            if round.phase == Phase::Appended {
                return Err(Error::DataIdUsed);
            }
            if round.phase.is_final() && self.ensure_member(&round.proposer).is_err() {
                // A former member waits for nothing.
                return Ok(());
            }
            let cooldown = round.params.proposal_cooldown;
            if rules::reserved_for_other(round.phase, &round.proposer, round.deadline, cooldown, caller, now) {
                return Err(Error::Reserved);
            }
            Ok(())
        }

        /// The open round `id`, which must be in `phase`.
        fn open_round_in(&self, id: u64, phase: Phase) -> Result<Round> {
            if self.open_round != Some(id) {
                return Err(Error::WrongRound);
            }
            let round = self.round(id).ok_or(Error::WrongRound)?;
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
            Ok(self.ballot(round, *account).unwrap_or_default())
        }

        /// Whether `action` could apply now.
        fn ensure_action_valid(&self, action: &Action) -> Result<()> {
            match action {
                Action::SetHyperparameter(change) => self.params.0.with(*change).ensure_valid(),
                Action::SetGovernance(params) => params.ensure_valid(),
                Action::AddMember(account) if self.ensure_member(account).is_ok() => Err(Error::AlreadyMember),
                Action::AddMember(_) if self.member_count >= MAX_MEMBERS => Err(Error::TooManyMembers),
                Action::RemoveMember(account) => {
                    self.ensure_member(account)?;
                    if self.member_count <= 1 {
                        return Err(Error::LastMember);
                    }
                    Ok(())
                }
                Action::Revert(index) if *index >= self.height => Err(Error::InvalidRevert),
                Action::SetLocalTestSet(account, set) => {
                    self.ensure_member(account)?;
                    set.as_ref().map_or(Ok(()), ensure_local_set)
                }
                _ => Ok(()),
            }
        }

        /// Apply a valid action.
        fn apply(&mut self, action: Action) -> Result<()> {
            match action {
                Action::SetHyperparameter(change) => self.params = Stored(self.params.0.with(change)),
                Action::SetGovernance(params) => self.governance = Stored(params),
                Action::SetAuditAnchors(address) => self.audit_anchors = address,
                Action::AddMember(account) => {
                    self.add_member(account)?;
                    self.emit_strengths();
                }
                Action::RemoveMember(account) => {
                    self.remove_member(account)?;
                    self.emit_strengths();
                }
                Action::SetLocalTestSet(member, set) => {
                    if let Some(set) = set {
                        self.local_sets.insert(member, &Stored(set));
                    } else {
                        self.local_sets.remove(member);
                    }
                    self.env().emit_event(LocalTestSetChanged { member, set });
                }
                Action::Revert(index) => {
                    let target = self.block(index).ok_or(Error::InvalidRevert)?;
                    // Blocks reverted away, forged ones among them, no longer hold the mark up.
                    self.credit_mark = target.best_performance;
                    let strengths = self.strengths();
                    let timestamp = self.env().block_timestamp();
                    self.append_block(
                        NewBlock {
                            parameter_hash: target.parameter_hash,
                            vault_ref: target.vault_ref,
                            contributor: None,
                            samples: 0,
                            performance: target.performance,
                            best_performance: target.best_performance,
                            round: None,
                            timestamp,
                        },
                        strengths,
                    )?;
                }
            }
            Ok(())
        }

        fn add_member(&mut self, account: Address) -> Result<()> {
            let slot = self.member_count;
            self.member_count = slot.checked_add(1).ok_or(Error::Overflow)?;
            let delta = rules::report_delta(self.params.0.privacy_budget);
            let privacy_spent = rules::privacy_spent(&self.privacy_totals(account), delta);
            let member = Member { account, samples: 0, privacy_spent, faults: 0, may_propose_at: 0 };
            self.members.insert(slot, &Stored(member));
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
                self.member_slots.insert(moved.0.account, &slot);
                self.members.insert(slot, &moved);
            }
            self.members.remove(last);
            self.local_sets.remove(account);
            self.member_count = last;
            self.env().emit_event(MemberRemoved { member: account });
            Ok(())
        }

        fn close_proposal(&mut self, proposal: &Proposal) {
            self.proposals.insert(proposal.id, &Stored(*proposal));
            self.open_proposals.retain(|id| *id != proposal.id);
        }

        /// Strengths once `contributor`'s `D_i` grows by `samples`.
        fn strengths_after(&self, contributor: &Address, samples: u64) -> Result<Vec<(Address, u64)>> {
            let mut members = self.members();
            for member in members.iter_mut().filter(|m| m.account == *contributor) {
                member.samples = member.samples.checked_add(samples).ok_or(Error::Overflow)?;
            }
            Ok(rules::strengths(&members))
        }

        fn emit_strengths(&self) {
            let members = self.members();
            self.env().emit_event(StrengthsUpdated {
                members: self.member_count,
                total_samples: rules::total_samples(&members),
                strengths: rules::strengths(&members),
            });
        }

        fn tip(&self) -> Result<ModelBlock> {
            self.block(self.height).ok_or(Error::Overflow)
        }

        fn deadline_after(&self, blocks: u32) -> Result<BlockNumber> {
            self.env().block_number().checked_add(blocks).ok_or(Error::Overflow)
        }

        /// Enter an open phase, with its deadline from the round's hyperparameters.
        fn enter(&mut self, round: &mut Round, phase: Phase) -> Result<()> {
            let timeout = match phase {
                Phase::Drawing => DRAW_DELAY,
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

        /// Draw the round's validators from the VRF randomness of its draw window (protocol
        /// step 5).
        fn draw(&mut self, round: &mut Round) -> Result<()> {
            let Some(randomness) = self.window_randomness(round.deadline)? else {
                // Out of reach: draw from blocks that do not exist yet either.
                return self.enter(round, Phase::Drawing);
            };
            let eligible = rules::draw_weights(&self.members(), &round.proposer);
            let seed = rules::round_seed::<HostKeccak>(&randomness, round.id, &round.parent_hash.0);
            let validators =
                rules::select_weighted::<HostKeccak>(&eligible, round.params.validators_per_round as usize, seed);
            round.validators = u32::try_from(validators.len()).map_err(|_| Error::Overflow)?;
            round.seed = H256::from(seed);
            self.round_validators.insert(round.id, &validators);
            self.enter(round, Phase::Commit)?;
            self.env().emit_event(ValidatorsDrawn {
                round: round.id,
                validators,
                seed: round.seed,
                commit_deadline: round.deadline,
            });
            Ok(())
        }

        /// Close the round with a final phase. An appended round's data IDs stay claimed for good
        /// (their chunks go); a round without a block keeps its chunks for its proposer's
        /// `release_claims`, and a rejected candidate that beat the credit mark has its gain
        /// reserved for its proposer. The proposer's cooldown starts, whatever the outcome.
        fn close(&mut self, round: &mut Round, phase: Phase) {
            let now = self.env().block_number();
            round.phase = phase;
            round.deadline = now;
            self.open_round = None;
            if phase == Phase::Appended {
                for chunk in 0..data_chunks(round.samples) {
                    self.round_data_ids.remove((round.id, chunk));
                }
            }
            let reserve_until = now.saturating_add(round.params.proposal_cooldown).saturating_add(CLAIM_RESERVE);
            if let (Phase::Rejected(_), Some(performance)) = (phase, round.performance) {
                if self.earns(performance, &round.params) {
                    self.reserved_gain = Some((round.proposer, performance, reserve_until));
                }
            }
            if let Some(slot) = self.member_slots.get(round.proposer) {
                if let Some(Stored(mut member)) = self.members.get(slot) {
                    member.may_propose_at = now.saturating_add(round.params.proposal_cooldown);
                    self.members.insert(slot, &Stored(member));
                }
            }
            self.env().emit_event(PhaseChanged { round: round.id, phase, deadline: round.deadline });
        }

        fn fail(&mut self, round: &mut Round, reason: Failure) {
            self.close(round, Phase::Failed(reason));
            self.env().emit_event(RoundFailed { round: round.id, reason });
        }

        /// Aggregate the revealed reports and decide (protocol step 7).
        fn tally(&mut self, round: &mut Round) -> Result<()> {
            let revealed: Vec<(Address, Ballot, Report)> = self
                .round_validators(round.id)
                .into_iter()
                .filter_map(|v| {
                    let ballot = self.ballot(round.id, v)?;
                    ballot.report.map(|report| (v, ballot, report))
                })
                .collect();
            if revealed.is_empty() {
                self.fail(round, Failure::NoReveals);
                return Ok(());
            }
            let previous = self.tip()?.best_performance;
            let reveals: Vec<rules::Reveal> = revealed
                .iter()
                .map(|(v, _, report)| rules::Reveal {
                    report: *report,
                    registered_l_size: self.local_test_set(*v).map_or(0, |set| set.size),
                })
                .collect();
            let tally = rules::tally(
                &rules::TallyRules {
                    spec: self.spec.0,
                    previous,
                    lambda_ppm: round.params.lambda_ppm,
                    quorum: round.params.quorum,
                    validators: round.validators,
                },
                &reveals,
            );
            for ((validator, mut ballot, _), finding) in revealed.into_iter().zip(&tally.findings) {
                ballot.deviation = finding.deviation;
                ballot.accepting = finding.accepting;
                if let Some(deviation) = finding.deviation {
                    round.deviants = round.deviants.saturating_add(1);
                    self.env().emit_event(ValidatorDeviated { round: round.id, validator, deviation });
                }
                self.ballots.insert((round.id, validator), &Stored(ballot));
            }
            if tally.judged() {
                self.settle_standing(round)?;
            }
            round.performance = tally.performance;
            round.accepts = tally.accepts;
            if tally.rejection.is_none() {
                round.credited = self.credited_samples(round)?;
            }
            self.env().emit_event(RoundTallied {
                round: round.id,
                rejection: tally.rejection,
                performance: tally.performance,
                best_performance: previous,
                accepts: tally.accepts,
                counted: tally.counted,
            });
            match tally.rejection {
                Some(rejection) => {
                    self.close(round, Phase::Rejected(rejection));
                    Ok(())
                }
                None => self.next_general(round, Failure::NoGeneral),
            }
        }

        /// After a tally with a verdict: record silence on the ballots of the validators that did
        /// not reveal, and move every validator's standing (`rules::standing_after`). Not inlined:
        /// its locals would add to the tally's stack frame, and PolkaVM's stack is small.
        #[inline(never)]
        fn settle_standing(&mut self, round: &mut Round) -> Result<()> {
            for validator in self.round_validators(round.id) {
                let mut ballot = self.ballot(round.id, validator).unwrap_or_default();
                if ballot.report.is_none() {
                    ballot.deviation = Some(Deviation::Silent);
                    round.deviants = round.deviants.saturating_add(1);
                    self.ballots.insert((round.id, validator), &Stored(ballot));
                    self.env().emit_event(ValidatorDeviated {
                        round: round.id,
                        validator,
                        deviation: Deviation::Silent,
                    });
                }
                // Validators stay members while a round is open: removals wait for it.
                let (slot, mut member) = self.ensure_member_slot(&validator)?;
                let faults = rules::standing_after(member.faults, ballot.deviation);
                if faults != member.faults {
                    member.faults = faults;
                    self.members.insert(slot, &Stored(member));
                }
            }
            Ok(())
        }

        /// The samples a tallied round credits its proposer (`Round::credited`): all of them if
        /// its performance beats the credit mark by the credit margin (`rules::earns_strength`),
        /// and, while another member's rejected gain is reserved, that gain too; else none.
        /// Decided once, at the tally, so that the seal and the append agree even when the
        /// reserve expires between them.
        fn credited_samples(&self, round: &Round) -> Result<u64> {
            let performance = round.performance.ok_or(Error::WrongPhase)?;
            let mut earns = self.earns(performance, &round.params);
            if let Some((owner, reserved, until)) = self.reserved_gain {
                if owner != round.proposer && self.env().block_number() <= until {
                    let higher = self.spec.0.higher_is_better;
                    let margin = rules::credit_margin(round.params.min_gain, &self.spec.0);
                    earns = earns && rules::earns_strength(performance, reserved, margin, higher);
                }
            }
            Ok(if earns { round.samples } else { 0 })
        }

        /// Whether `performance` beats the credit mark by the credit margin.
        fn earns(&self, performance: i64, params: &Hyperparameters) -> bool {
            let spec = self.spec.0;
            let margin = rules::credit_margin(params.min_gain, &spec);
            rules::earns_strength(performance, self.credit_mark, margin, spec.higher_is_better)
        }

        /// Draw the next general among accepting validators not drawn yet, or fail the round
        /// with `none_left`.
        fn next_general(&mut self, round: &mut Round, none_left: Failure) -> Result<()> {
            let pool: Vec<(Address, u64)> = self
                .round_validators(round.id)
                .into_iter()
                .filter(|v| self.ballot(round.id, *v).is_some_and(|b| b.accepting && !b.drawn_as_general))
                .map(|v| (v, 1))
                .collect();
            let seed = rules::derive_seed::<HostKeccak>(&round.seed.0, b"general", round.generals_drawn);
            let Some(general) = rules::select_weighted::<HostKeccak>(&pool, 1, seed).first().copied() else {
                round.general = None;
                self.fail(round, none_left);
                return Ok(());
            };
            let mut ballot = self.ballot(round.id, general).unwrap_or_default();
            ballot.drawn_as_general = true;
            self.ballots.insert((round.id, general), &Stored(ballot));
            round.general = Some(general);
            round.generals_drawn = round.generals_drawn.saturating_add(1);
            round.attestations = 0;
            self.env().emit_event(GeneralChosen { round: round.id, general });
            self.enter(round, Phase::Sealing)
        }

        fn append_if_attested(&mut self, round: &mut Round) -> Result<()> {
            if !round.params.quorum.reached_by(round.attestations, round.validators) {
                return Ok(());
            }
            let seal = self.seal_of(round.id).ok_or(Error::WrongPhase)?;
            let performance = round.performance.ok_or(Error::WrongPhase)?;
            let credited = round.credited;
            // The proposer is still a member: removals wait for no round to be open.
            if let Some(slot) = self.member_slots.get(round.proposer) {
                if let Some(Stored(mut member)) = self.members.get(slot) {
                    member.samples = member.samples.checked_add(credited).ok_or(Error::Overflow)?;
                    self.members.insert(slot, &Stored(member));
                }
            }
            let higher = self.spec.0.higher_is_better;
            if credited > 0 {
                self.credit_mark = rules::lineage_best(self.credit_mark, performance, higher);
                if self.reserved_gain.is_some_and(|(owner, _, _)| owner == round.proposer) {
                    self.reserved_gain = None;
                }
            }
            let best_performance = rules::lineage_best(self.tip()?.best_performance, performance, higher);
            let strengths = self.strengths();
            let index = self.append_block(
                NewBlock {
                    parameter_hash: round.candidate,
                    vault_ref: seal.vault_ref,
                    contributor: Some(round.proposer),
                    samples: credited,
                    performance,
                    best_performance,
                    round: Some(round.id),
                    timestamp: seal.timestamp,
                },
                strengths,
            )?;
            let appended = self.block(index).ok_or(Error::Overflow)?;
            if appended.block_hash != seal.block_hash {
                // What was attested is not what would be appended: append nothing.
                return Err(Error::SealMismatch);
            }
            round.block = Some(index);
            self.close(round, Phase::Appended);
            self.emit_strengths();
            Ok(())
        }

        fn append_block(&mut self, new: NewBlock, strengths: Vec<(Address, u64)>) -> Result<u32> {
            let previous = self.tip()?;
            let index = self.height.checked_add(1).ok_or(Error::Overflow)?;
            let mut block = ModelBlock {
                index,
                timestamp: new.timestamp,
                previous_hash: previous.block_hash,
                parameter_hash: new.parameter_hash,
                vault_ref: new.vault_ref,
                contributor: new.contributor,
                samples: new.samples,
                strengths_hash: hashing::strengths_hash::<HostKeccak>(&strengths),
                performance: new.performance,
                best_performance: new.best_performance,
                round: new.round,
                block_hash: H256::zero(),
            };
            block.block_hash = hashing::block_hash::<HostKeccak>(&block.header::<HostKeccak>());
            if !self.known_parameters.contains(block.parameter_hash) {
                self.known_parameters.insert(block.parameter_hash, &index);
            }
            self.env().emit_event(BlockAppended {
                index,
                block_hash: block.block_hash,
                parameter_hash: block.parameter_hash,
                contributor: block.contributor,
                round: block.round,
                strengths,
            });
            self.blocks.insert(index, &Stored(block));
            self.height = index;
            Ok(index)
        }

        /// The randomness of the `DRAW_DELAY` blocks that end with block `last`
        /// (`rules::window_randomness`), or `None` if one of them is not readable (not made yet,
        /// older than `RANDOMNESS_HISTORY`, or without a VRF output).
        fn window_randomness(&self, last: BlockNumber) -> Result<Option<[u8; 32]>> {
            let first = last.saturating_sub(DRAW_DELAY).saturating_add(1);
            let mut outputs = [[0u8; 32]; DRAW_DELAY as usize];
            for (output, number) in outputs.iter_mut().zip(first..=last) {
                match self.block_randomness(number)? {
                    Some(randomness) => *output = randomness,
                    None => return Ok(None),
                }
            }
            Ok(Some(rules::window_randomness::<HostKeccak>(&outputs)))
        }

        /// BABE's VRF randomness of block `number`, from the runtime's randomness precompile.
        ///
        /// # Errors
        /// - `RandomnessUnavailable`: the precompile failed or is not there.
        #[cfg(target_arch = "riscv64")]
        fn block_randomness(&self, number: BlockNumber) -> Result<Option<[u8; 32]>> {
            use coalition_types::RANDOMNESS_PRECOMPILE;
            use pallet_revive_uapi::{CallFlags, HostFn, HostFnImpl};
            let input = rules::block_randomness_call(number);
            let mut buffer = [0u8; 64];
            let mut output = &mut buffer[..];
            // Read only, no value, no deposit; the precompile charges its one storage read.
            HostFnImpl::call(
                CallFlags::READ_ONLY,
                &RANDOMNESS_PRECOMPILE,
                u64::MAX,
                u64::MAX,
                &[0u8; 32],
                &[0u8; 32],
                &input,
                Some(&mut output),
            )
            .map_err(|_| Error::RandomnessUnavailable)?;
            rules::block_randomness_answer(output)
        }

        /// Off chain (unit tests) there is no runtime: the keccak of the block number, for the
        /// same blocks as on chain.
        #[cfg(not(target_arch = "riscv64"))]
        fn block_randomness(&self, number: BlockNumber) -> Result<Option<[u8; 32]>> {
            let now = self.env().block_number();
            let reachable = number < now && now.saturating_sub(number) <= coalition_types::RANDOMNESS_HISTORY;
            Ok(reachable.then(|| hashing::keccak_encoded::<HostKeccak, _>(&number).0))
        }
    }

    /// The parts of a block that differ between a round's block and a revert's.
    struct NewBlock {
        parameter_hash: H256,
        vault_ref: Vec<u8>,
        contributor: Option<Address>,
        samples: u64,
        performance: i64,
        best_performance: i64,
        round: Option<u64>,
        timestamp: u64,
    }

    /// Chunks the open round's data IDs take.
    fn data_chunks(samples: u64) -> u32 {
        u32::try_from(samples.div_ceil(u64::from(DATA_IDS_PER_CHUNK))).unwrap_or(u32::MAX)
    }

    fn ensure_vault_ref(vault_ref: &[u8]) -> Result<()> {
        if vault_ref.is_empty() || vault_ref.len() > MAX_VAULT_REF as usize {
            Err(Error::InvalidVaultRef)
        } else {
            Ok(())
        }
    }

    fn ensure_local_set(set: &LocalTestSet) -> Result<()> {
        if (1..=MAX_LOCAL_SET).contains(&set.size) {
            Ok(())
        } else {
            Err(Error::InvalidLocalTestSet)
        }
    }
}

//! The coalition's rules as pure functions: strengths, the validators' draw, the lambda rule and
//! the tally of revealed reports. No storage and no environment but a keccak-256; each rule is
//! tested alone here, and the tally against a lying minority with property-based tests.
//!
//! ## What the tally guarantees
//! Let `k` validators be drawn, `f` of them lie (any reports, chosen after seeing the honest
//! ones, any registered local-set sizes, colluding), the others report honestly (the same
//! predictions on G, so the same G digest and G metrics within the tolerance; their local set
//! at its registered size), every honest validator reveals, and the quorum is 2/3 (the lowest
//! allowed). If `f < k/3`, or `f = k/3` with every honest validator revealing:
//! - the performance recorded is the median G metric of the reports that share the majority's
//!   G digest; it lies within the tolerance of every honest G metric, so anyone holding G
//!   reproduces it (`tclearn audit blocks`). Local sets never enter it: a validator's L is a
//!   vote ([`local_vote`]), which can refuse a candidate but not raise the number;
//! - a candidate whose recorded performance does not keep the lineage's best is rejected; one
//!   that keeps it and that every honest validator votes for is accepted: liars flip no
//!   decision the honest validators agree on;
//! - a liar's report with a metric out of range, an `l_size` other than its registered one, an
//!   off-majority G digest, a G metric further than the tolerance from the majority's, or a
//!   refusal of a candidate the majority scored, is not counted and its validator is recorded
//!   as a deviant; so is a validator that stays silent while its panel reaches a verdict.
//!
//! Why: the honest validators are at least `2k/3`, so their digest is the only one that can
//! reach 2/3 of the reveals; among the reports that share it, honest ones are a majority, so
//! the median G metric lies between honest G metrics; the G part of every vote is that one
//! median, so liars cannot vote a degrading candidate in, and the honest alone reach the
//! quorum of `k`. What is not guaranteed: at `f = k/3`, one silent honest validator lets the
//! liars block the digest majority (the round is rejected, nothing is recorded); with a quorum
//! above 2/3 liars can make a good candidate fail (safe, not live); and beyond `k/3` colluders
//! that share a digest record a G performance of their choosing, which an audit on G exposes.
//!
//! ## Standing, weight and credit
//! - A member's draw weight is its strength divided by `1 + faults` ([`draw_weight`]); a fault
//!   is a round in which its panel reached a verdict (a G-digest majority) and it deviated or
//!   stayed silent; a round in which it reported consistently removes one ([`standing_after`]).
//!   Rounds without a verdict change nobody's standing: their reports cannot be judged.
//! - A block's samples count in its contributor's `D_i` only when its performance beats the
//!   credit mark, the best performance that earned strength before, by the credit margin
//!   ([`credit_margin`], [`earns_strength`]). A revert sets the mark to its target's best, so
//!   forged blocks reverted by governance do not stop everyone from earning; a near copy of a
//!   reverted block earns again only by beating that by the margin.
//! - The lambda rule compares a candidate with the best performance of its lineage
//!   ([`lineage_best`]), not with the tip, so small losses cannot compound.

use crate::{
    hashing::Keccak, rdp, Address, BlockNumber, Deviation, DpDeclaration, Error, EvaluationSpec, Fraction, Member,
    Phase, PrivacySpend, Rejection, Report, Scores, Verdict, CLAIM_RESERVE, H256, MAX_FAULTS,
};
use alloc::vec::Vec;

/// 1.0 in the strength fixed point (parts per billion).
pub const STRENGTH_ONE: u64 = 1_000_000_000;
/// 1.0 for `lambda` (parts per million).
pub const LAMBDA_ONE: u32 = 1_000_000;

/// Strength of a member: `S_i = 1/N + D_i/D` in parts per billion (floor).
///
/// With `D = 0` (no member has contributed data yet) the data term is taken as zero, so every
/// member has `1/N`. With `N = 0` the strength is zero.
pub fn strength(members: u32, samples: u64, total_samples: u64) -> u64 {
    if members == 0 {
        return 0;
    }
    let base = STRENGTH_ONE / u64::from(members);
    let data = u128::from(STRENGTH_ONE)
        .checked_mul(u128::from(samples))
        .and_then(|product| product.checked_div(u128::from(total_samples)))
        .map_or(0, |share| u64::try_from(share).unwrap_or(STRENGTH_ONE));
    base.saturating_add(data)
}

/// A member's privacy after a proposal: its RDP totals with the proposal's declaration composed
/// in, what it has spent in all, and what this proposal spends alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivacyAfter {
    /// The member's RDP at each order, this proposal's included.
    pub totals: rdp::Rdp,
    /// The epsilon of `totals` at the budget's delta ([`privacy_spent`]).
    pub spent: PrivacySpend,
    /// The epsilon of this proposal's declaration alone, if it declares one.
    pub spend: Option<PrivacySpend>,
}

/// The delta at which a coalition reports epsilon: its budget's, or [`rdp::REPORT_DELTA`].
pub fn report_delta(budget: Option<PrivacySpend>) -> u64 {
    budget.map_or(rdp::REPORT_DELTA, |b| b.delta)
}

/// What RDP `totals` have spent at `delta`: their epsilon (saturating when every order is
/// infinite), or nothing at all when no order holds a spend.
pub fn privacy_spent(totals: &rdp::Rdp, delta: u64) -> PrivacySpend {
    if totals.iter().all(|&t| t == 0) {
        return PrivacySpend::default();
    }
    PrivacySpend { epsilon: rdp::epsilon(totals, delta).unwrap_or(u64::MAX), delta }
}

/// A member's privacy after a proposal that declares `declared`, given its RDP `totals` so far
/// and the coalition's `budget`: the declaration's RDP composes into the totals order by order
/// (Rényi composition, tighter than adding epsilons and as sound), and their epsilon at the
/// budget's delta may not pass the budget's epsilon.
///
/// # Errors
/// [`Error::PrivacyBudgetExceeded`]: a budget is set and the proposal declares nothing, or the
/// composed epsilon passes the budget (an infinite one, from a declaration without noise,
/// always does).
pub fn spend_privacy(
    totals: &rdp::Rdp,
    declared: Option<&DpDeclaration>,
    budget: Option<PrivacySpend>,
) -> Result<PrivacyAfter, Error> {
    let delta = report_delta(budget);
    let Some(declared) = declared else {
        return match budget {
            Some(_) => Err(Error::PrivacyBudgetExceeded),
            None => Ok(PrivacyAfter { totals: *totals, spent: privacy_spent(totals, delta), spend: None }),
        };
    };
    let composed = rdp::compose(totals, &declared.rdp);
    let spent = privacy_spent(&composed, delta);
    if let Some(budget) = budget {
        if composed.iter().all(|&t| t == rdp::INFINITE) || spent.epsilon > budget.epsilon {
            return Err(Error::PrivacyBudgetExceeded);
        }
    }
    Ok(PrivacyAfter { totals: composed, spent, spend: Some(privacy_spent(&declared.rdp, delta)) })
}

/// `D`: every member's samples together.
pub fn total_samples(members: &[Member]) -> u64 {
    members.iter().fold(0u64, |sum, m| sum.saturating_add(m.samples))
}

/// Every member's strength, in the members' order: what a block's strengths hash covers.
pub fn strengths(members: &[Member]) -> Vec<(Address, u64)> {
    let total = total_samples(members);
    let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
    members.iter().map(|m| (m.account, strength(count, m.samples, total))).collect()
}

/// A member's weight in the validators' draw: its strength divided by `1 + faults`.
pub fn draw_weight(strength: u64, faults: u32) -> u64 {
    strength / u64::from(faults.min(MAX_FAULTS)).saturating_add(1)
}

/// Every member but `excluded` with its draw weight, in the members' order.
pub fn draw_weights(members: &[Member], excluded: &Address) -> Vec<(Address, u64)> {
    strengths(members)
        .into_iter()
        .zip(members)
        .filter(|((account, _), _)| account != excluded)
        .map(|((account, strength), member)| (account, draw_weight(strength, member.faults)))
        .collect()
}

/// A validator's faults after a round whose panel reached a verdict, given its ballot's
/// `deviation`: one more (up to `MAX_FAULTS`) for a report the verdict proves wrong or for
/// silence, one fewer for a consistent report, none either way for a refusal. A refusal is
/// recorded (`Deviation::Refused`) but costs nothing: its cause may be outside the validator
/// (a vault that served it other bytes), and it votes no more than a reject.
pub fn standing_after(faults: u32, deviation: Option<Deviation>) -> u32 {
    match deviation {
        None => faults.saturating_sub(1),
        Some(Deviation::Refused) => faults,
        Some(_) => faults.saturating_add(1).min(MAX_FAULTS),
    }
}

/// The best performance of a lineage once a block of `performance` extends it.
pub fn lineage_best(best: i64, performance: i64, higher_is_better: bool) -> i64 {
    if higher_is_better {
        best.max(performance)
    } else {
        best.min(performance)
    }
}

/// The least gain on G that earns strength: `min_gain`, and never less than the tolerance (a
/// difference within measurement noise is no gain), nor, for a metric over samples (accuracy
/// and the like), one sample of G. So over a coalition's life at most `|G|` blocks earn on such
/// a metric, whoever overfits G.
pub fn credit_margin(min_gain: u32, spec: &EvaluationSpec) -> u32 {
    let one_sample = if spec.metric.is_classification() {
        u32::try_from(crate::METRIC_ONE / i64::from(spec.test_set_size.max(1))).unwrap_or(u32::MAX)
    } else {
        0
    };
    min_gain.max(spec.metric_tolerance).max(one_sample).max(1)
}

/// Whether a block of `performance` earns its contributor strength: it beats the credit `mark`
/// by at least `margin` ([`credit_margin`]). Re-proposing the model with noise, or any
/// candidate that only keeps it, earns nothing.
pub fn earns_strength(performance: i64, mark: i64, margin: u32, higher_is_better: bool) -> bool {
    let gain = if higher_is_better {
        i128::from(performance) - i128::from(mark)
    } else {
        i128::from(mark) - i128::from(performance)
    };
    gain >= i128::from(margin.max(1))
}

/// Whether what a round claimed (its data IDs, its candidate) is closed to `caller` at block
/// `now`: the round is open or appended, or it ended without a block at `ended` and its
/// `proposer`, not `caller`, still has it reserved until `cooldown + CLAIM_RESERVE` blocks later.
pub fn reserved_for_other(
    phase: Phase,
    proposer: &Address,
    ended: BlockNumber,
    cooldown: u32,
    caller: &Address,
    now: BlockNumber,
) -> bool {
    if !phase.is_final() || phase == Phase::Appended {
        return true;
    }
    let until = ended.saturating_add(cooldown).saturating_add(CLAIM_RESERVE);
    proposer != caller && now <= until
}

/// A deterministic stream of 64-bit words: `keccak(seed ‖ counter)`, four words per hash.
pub struct RandomStream<K> {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
    hasher: core::marker::PhantomData<K>,
}

impl<K: Keccak> RandomStream<K> {
    /// A stream from a 32-byte seed.
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0, block: [0; 32], used: 4, hasher: core::marker::PhantomData }
    }

    /// The next word.
    pub fn next_u64(&mut self) -> u64 {
        if self.used >= 4 {
            let mut input = [0u8; 40];
            input[..32].copy_from_slice(&self.seed);
            input[32..].copy_from_slice(&self.counter.to_le_bytes());
            self.block = K::keccak256(&input);
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
        }
        let mut word = [0u8; 8];
        let start = self.used.saturating_mul(8);
        if let Some(bytes) = self.block.get(start..start.saturating_add(8)) {
            word.copy_from_slice(bytes);
        }
        self.used = self.used.saturating_add(1);
        u64::from_le_bytes(word)
    }

    /// A uniform draw from `0..bound` without modulo bias: words below `2^64 mod bound` are
    /// rejected, so the accepted range is a whole multiple of `bound`. `bound = 0` gives 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let word = self.next_u64();
            if word >= threshold {
                return word % bound;
            }
        }
    }
}

/// The randomness of a draw window: `keccak(r_1 ‖ … ‖ r_n)` over the VRF randomness of the
/// window's blocks, in block order (`DRAW_DELAY` blocks after the proposal's).
///
/// Predicting it takes every block's output; each is known before its block only to that block's
/// author (a BABE VRF output is a function of the author's secret key). So a party that authors
/// none of the window's blocks cannot predict it, and an author of all of them is the only one
/// who can. The last author can still withhold its block, which changes the last output: one
/// re-roll per withheld block (see the coalition's module doc for the measured bias).
pub fn window_randomness<K: Keccak>(outputs: &[[u8; 32]]) -> [u8; 32] {
    let mut input = Vec::with_capacity(outputs.len().saturating_mul(32));
    for output in outputs {
        input.extend_from_slice(output);
    }
    K::keccak256(&input)
}

/// The call data of the randomness precompile's `blockRandomness(uint32 number)`: its selector
/// and `number` as one big-endian ABI word.
pub fn block_randomness_call(number: u32) -> [u8; 36] {
    let mut input = [0u8; 36];
    input[..4].copy_from_slice(&crate::RANDOMNESS_SELECTOR);
    input[32..].copy_from_slice(&number.to_be_bytes());
    input
}

/// The randomness precompile's answer, ABI `(bool known, bytes32 randomness)`: `Ok(Some(_))` for
/// a known block, `Ok(None)` for one it does not know (not yet made, too old, or without a VRF
/// output), `Err(RandomnessUnavailable)` for anything that is not such an answer.
pub fn block_randomness_answer(output: &[u8]) -> Result<Option<[u8; 32]>, Error> {
    let (Some(known), Some(randomness)) = (output.get(..32), output.get(32..64)) else {
        return Err(Error::RandomnessUnavailable);
    };
    if output.len() != 64 {
        return Err(Error::RandomnessUnavailable);
    }
    let mut word = [0u8; 32];
    word.copy_from_slice(randomness);
    match known.split_last() {
        Some((1, zeros)) if zeros.iter().all(|b| *b == 0) => Ok(Some(word)),
        Some((0, zeros)) if zeros.iter().all(|b| *b == 0) => Ok(None),
        _ => Err(Error::RandomnessUnavailable),
    }
}

/// The seed of a round's draws: `keccak(randomness ‖ round ‖ tip_hash)`, where `randomness` is
/// the [`window_randomness`] of the blocks made after the proposal.
pub fn round_seed<K: Keccak>(randomness: &[u8; 32], round: u64, tip_hash: &[u8; 32]) -> [u8; 32] {
    let mut input = [0u8; 72];
    input[..32].copy_from_slice(randomness);
    input[32..40].copy_from_slice(&round.to_le_bytes());
    input[40..].copy_from_slice(tip_hash);
    K::keccak256(&input)
}

/// A seed derived from `seed` for a purpose (`b"general"`) and an attempt number.
pub fn derive_seed<K: Keccak>(seed: &[u8; 32], purpose: &[u8], attempt: u32) -> [u8; 32] {
    let mut input = Vec::with_capacity(seed.len().saturating_add(purpose.len()).saturating_add(4));
    input.extend_from_slice(seed);
    input.extend_from_slice(purpose);
    input.extend_from_slice(&attempt.to_le_bytes());
    K::keccak256(&input)
}

/// Draw up to `k` distinct candidates, each draw with probability proportional to weight among
/// those not drawn yet. Returns all candidates (in draw order) when `k` exceeds their number.
/// Zero-weight candidates are drawn only when every remaining weight is zero (uniformly then).
pub fn select_weighted<K: Keccak>(candidates: &[(Address, u64)], k: usize, seed: [u8; 32]) -> Vec<Address> {
    let mut remaining: Vec<(Address, u64)> = candidates.to_vec();
    let mut chosen = Vec::with_capacity(k.min(remaining.len()));
    let mut stream = RandomStream::<K>::new(seed);
    while chosen.len() < k && !remaining.is_empty() {
        let total = remaining.iter().fold(0u64, |sum, (_, weight)| sum.saturating_add(*weight));
        let index = if total == 0 {
            usize::try_from(stream.below(remaining.len() as u64)).unwrap_or(0)
        } else {
            let mut point = stream.below(total);
            let mut index = 0;
            for (position, (_, weight)) in remaining.iter().enumerate() {
                if point < *weight {
                    index = position;
                    break;
                }
                point = point.saturating_sub(*weight);
            }
            index
        };
        if index < remaining.len() {
            chosen.push(remaining.swap_remove(index).0);
        }
    }
    chosen
}

/// The value that at least `quorum` of `total` entries of `values` share, if any.
pub fn majority<T: PartialEq + Copy>(values: &[T], total: u32, quorum: Fraction) -> Option<T> {
    values.iter().find_map(|candidate| {
        let count = values.iter().filter(|value| *value == candidate).count();
        quorum.reached_by(u32::try_from(count).ok()?, total).then_some(*candidate)
    })
}

/// The median of `values`, taking the worse of the two middle values for an even count (the
/// lower when higher is better); `None` for no values.
pub fn median(values: &[i64], higher_is_better: bool) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let last = sorted.len().checked_sub(1)?;
    let middle = if higher_is_better { last / 2 } else { sorted.len() / 2 };
    sorted.get(middle).copied()
}

/// A validator's view of G and its local set, weighted by size with L weighing at most as much
/// as G: `(g·|G| + l·|L'|) / (|G| + |L'|)` with `|L'| = min(|L|, |G|)`, rounded toward zero (so
/// between `g` and `l`). `None` when both sets are empty.
pub fn local_view(g_metric: i64, g_size: u32, l_metric: i64, l_size: u32) -> Option<i64> {
    let l_size = l_size.min(g_size);
    let weighted = i128::from(g_metric)
        .checked_mul(i128::from(g_size))?
        .checked_add(i128::from(l_metric).checked_mul(i128::from(l_size))?)?;
    let size = i128::from(g_size).checked_add(i128::from(l_size))?;
    i64::try_from(weighted.checked_div(size)?).ok()
}

/// A validator's local vote ([`Scores::l_keeps`]): whether its view of G and L
/// ([`local_view`]) keeps the lambda rule against the lineage's best performance `best`.
pub fn local_vote(
    g_metric: i64,
    l_metric: i64,
    l_size: u32,
    spec: &EvaluationSpec,
    best: i64,
    lambda_ppm: u32,
) -> bool {
    local_view(g_metric, spec.test_set_size, l_metric, l_size)
        .is_some_and(|view| keeps_performance(view, best, lambda_ppm, spec.higher_is_better, spec.metric_tolerance))
}

/// The lambda rule: does `new` keep at least `lambda` of `previous`'s performance, i.e. lose
/// at most `(1 - lambda)·|previous|`?
///
/// The loss is `previous - new` when higher is better, `new - previous` for errors; it is
/// measured against `|previous|`, so a negative R² may lose as much as a positive one, and it
/// is never asked to be smaller than `tolerance` (a difference within measurement noise is no
/// loss), so a zero error baseline does not freeze the chain. `lambda` is in parts per million.
pub fn keeps_performance(new: i64, previous: i64, lambda_ppm: u32, higher_is_better: bool, tolerance: u32) -> bool {
    let one = i128::from(LAMBDA_ONE);
    let loss =
        if higher_is_better { i128::from(previous) - i128::from(new) } else { i128::from(new) - i128::from(previous) };
    let relative = (one - i128::from(lambda_ppm.min(LAMBDA_ONE))) * i128::from(previous).abs();
    let allowed = relative.max(i128::from(tolerance) * one);
    loss * one <= allowed
}

/// What a round's tally needs besides the reports.
#[derive(Debug, Clone, Copy)]
pub struct TallyRules {
    /// The coalition's metric, G's size and the tolerance.
    pub spec: EvaluationSpec,
    /// The best performance of the tip's lineage.
    pub previous: i64,
    /// The round's lambda.
    pub lambda_ppm: u32,
    /// The round's quorum.
    pub quorum: Fraction,
    /// Validators drawn, `k`.
    pub validators: u32,
}

/// A revealed report with the size of its validator's registered local set (0 if none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reveal {
    /// The report.
    pub report: Report,
    /// The validator's registered local-set size.
    pub registered_l_size: u32,
}

/// What the tally makes of one reveal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Finding {
    /// Why it was not counted, if it was not.
    pub deviation: Option<Deviation>,
    /// Counted, and a vote to accept: the performance on G keeps the lambda rule, and so does
    /// the validator's local vote if it has a local set.
    pub accepting: bool,
}

/// A round's tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// `None` if accepted.
    pub rejection: Option<Rejection>,
    /// The median G metric of the counted reports, if any were counted.
    pub performance: Option<i64>,
    /// Counted votes to accept.
    pub accepts: u32,
    /// Reports counted.
    pub counted: u32,
    /// One per reveal, in order.
    pub findings: Vec<Finding>,
}

impl Tally {
    /// Whether the panel reached a verdict on the candidate's predictions (a G-digest majority):
    /// only then are its validators' reports judged, and their standing changes.
    pub fn judged(&self) -> bool {
        self.performance.is_some()
    }
}

/// The scores of a report, if they are in range and state the registered local-set size.
pub fn check_scores(scores: &Scores, registered_l_size: u32, spec: &EvaluationSpec) -> Result<(), Deviation> {
    if !spec.metric.admits(scores.g_metric) {
        return Err(Deviation::OutOfRange);
    }
    if scores.l_size != registered_l_size {
        return Err(Deviation::LocalSetMismatch);
    }
    Ok(())
}

/// Tally the reveals of a round (protocol step 7 of the contract; guarantees in the module doc).
///
/// 1. Reports out of range or with an unregistered `l_size` are deviants.
/// 2. If `quorum` of the reveals refused the candidate, it is rejected as `Refused`.
/// 3. The G digest shared by `quorum` of the reveals is the majority's (else the candidate is
///    rejected as `InconsistentPredictions`); other digests, and refusals, are deviants; within
///    the majority, G metrics further than the tolerance from their median are deviants.
/// 4. The performance is the median G metric of the counted reports. A counted report votes to
///    accept when that performance keeps the lambda rule against the lineage's best and, if it
///    has a local set, its local vote does too. The candidate is accepted iff the performance
///    keeps the rule and `quorum` of `k` vote to accept.
pub fn tally(rules: &TallyRules, reveals: &[Reveal]) -> Tally {
    let spec = &rules.spec;
    let higher = spec.higher_is_better;
    let total = u32::try_from(reveals.len()).unwrap_or(u32::MAX);
    let mut findings: Vec<Finding> = Vec::with_capacity(reveals.len());
    let mut refusals = 0u32;
    for reveal in reveals {
        let deviation = match &reveal.report.verdict {
            Verdict::Refused(_) => {
                refusals = refusals.saturating_add(1);
                None
            }
            Verdict::Scored(scores) => check_scores(scores, reveal.registered_l_size, spec).err(),
        };
        findings.push(Finding { deviation, accepting: false });
    }
    let rejected =
        |rejection, findings| Tally { rejection: Some(rejection), performance: None, accepts: 0, counted: 0, findings };
    if rules.quorum.reached_by(refusals, total) {
        return rejected(Rejection::Refused, findings);
    }
    // Scores still in play, by reveal index.
    let scored = |findings: &[Finding]| -> Vec<(usize, Scores)> {
        reveals
            .iter()
            .zip(findings)
            .enumerate()
            .filter_map(|(i, (reveal, finding))| match (&reveal.report.verdict, finding.deviation) {
                (Verdict::Scored(scores), None) => Some((i, *scores)),
                _ => None,
            })
            .collect()
    };
    let digests: Vec<H256> = scored(&findings).iter().map(|(_, s)| s.g_digest).collect();
    let Some(digest) = majority(&digests, total, rules.quorum) else {
        return rejected(Rejection::InconsistentPredictions, findings);
    };
    for (reveal, finding) in reveals.iter().zip(findings.iter_mut()) {
        match &reveal.report.verdict {
            Verdict::Refused(_) => finding.deviation = Some(Deviation::Refused),
            Verdict::Scored(scores) if finding.deviation.is_none() && scores.g_digest != digest => {
                finding.deviation = Some(Deviation::Digest)
            }
            Verdict::Scored(_) => {}
        }
    }
    let g_metrics: Vec<i64> = scored(&findings).iter().map(|(_, s)| s.g_metric).collect();
    let Some(performance) = median(&g_metrics, higher) else {
        return rejected(Rejection::InconsistentPredictions, findings);
    };
    let tolerance = u128::from(spec.metric_tolerance);
    for (i, scores) in scored(&findings) {
        if i128::from(scores.g_metric).abs_diff(i128::from(performance)) > tolerance {
            if let Some(finding) = findings.get_mut(i) {
                finding.deviation = Some(Deviation::GMetric);
            }
        }
    }
    let keeps = keeps_performance(performance, rules.previous, rules.lambda_ppm, higher, spec.metric_tolerance);
    let mut accepts = 0u32;
    let mut counted = 0u32;
    for (i, scores) in scored(&findings) {
        let accepting = keeps && (scores.l_size == 0 || scores.l_keeps);
        if let Some(finding) = findings.get_mut(i) {
            finding.accepting = accepting;
        }
        accepts = accepts.saturating_add(u32::from(accepting));
        counted = counted.saturating_add(1);
    }
    let rejection = if !keeps {
        Some(Rejection::Degrades)
    } else if !rules.quorum.reached_by(accepts, rules.validators) {
        Some(Rejection::NotEnoughVotes)
    } else {
        None
    };
    Tally { rejection, performance: Some(performance), accepts, counted, findings }
}

//! The coalition's rules as pure functions: strengths, the validators' draw, the lambda rule and
//! the tally of revealed reports. No storage and no environment but a keccak-256; each rule is
//! tested alone here, and the tally against a lying minority with property-based tests.
//!
//! ## What the tally guarantees
//! Let `k` validators be drawn, `f < k/3` of them lie (any reports, any registered local-set
//! sizes), the others report honestly (the same predictions on G, so the same G digest and G
//! metric; their own local set at its registered size), every honest validator reveals, and the
//! quorum is 2/3 (the lowest allowed). Then:
//! - the performance recorded is the median of counted findings, and lies between the lowest
//!   and the highest honest finding (a finding is `merge(G metric, L metric)` weighted by size);
//! - if every honest finding keeps the tip's performance, the candidate is accepted; if none
//!   does, it is rejected: liars flip no decision the honest validators agree on;
//! - a liar's report with a metric out of range, an `l_size` other than its registered one, an
//!   off-majority G digest, or a G metric further than the tolerance from the majority's is not
//!   counted and its validator is recorded as a deviant.
//!
//! Why: the honest validators are more than `2k/3`, so their digest is the only one that can
//! reach 2/3 of the reveals; among the reports counted, liars are fewer than `k/3` and honest
//! ones more than `2k/3`, so every median (of G metrics, of findings) lies in the honest range;
//! and a decision needs the findings of 2/3 of `k` to keep the tip's performance, which the
//! honest alone reach and the liars alone do not. With a quorum above 2/3, liars can still not
//! make a degrading candidate pass, but they can make a good one fail (safe, not live). A
//! validator that does not reveal counts as a reject: a silent honest validator weakens the
//! bound by one.

use crate::{
    hashing::Keccak, Address, Deviation, Error, EvaluationSpec, Fraction, Member, PrivacySpend, Rejection, Report,
    Scores, Verdict, H256,
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

/// A member's privacy spend after a proposal that declares `spend`, given the coalition's
/// `budget`: spends add up (basic composition).
///
/// With a budget, a proposal must declare its spend and the sum must stay within the budget on
/// both epsilon and delta. Without one, a declared spend is still recorded (saturating).
///
/// # Errors
/// [`Error::PrivacyBudgetExceeded`]: the sum passes the budget (or overflows), or a budget is
/// set and the proposal declares nothing.
pub fn spend_privacy(
    spent: PrivacySpend,
    spend: Option<PrivacySpend>,
    budget: Option<PrivacySpend>,
) -> Result<PrivacySpend, Error> {
    match (budget, spend) {
        (None, None) => Ok(spent),
        (None, Some(spend)) => Ok(PrivacySpend {
            epsilon: spent.epsilon.saturating_add(spend.epsilon),
            delta: spent.delta.saturating_add(spend.delta),
        }),
        (Some(_), None) => Err(Error::PrivacyBudgetExceeded),
        (Some(budget), Some(spend)) => {
            spent.checked_add(spend).filter(|total| total.within(&budget)).ok_or(Error::PrivacyBudgetExceeded)
        }
    }
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

/// The seed of a round's draws: `keccak(randomness ‖ round ‖ tip_hash)`, where `randomness` is
/// the hash of a block made after the proposal.
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

/// A validator's finding: its performance over G and its local set, weighted by size,
/// `(g·|G| + l·|L|) / (|G| + |L|)`, rounded toward zero (so between `g` and `l`). `None` when
/// both sets are empty.
pub fn merge(g_metric: i64, g_size: u32, l_metric: i64, l_size: u32) -> Option<i64> {
    let weighted = i128::from(g_metric)
        .checked_mul(i128::from(g_size))?
        .checked_add(i128::from(l_metric).checked_mul(i128::from(l_size))?)?;
    let size = i128::from(g_size).checked_add(i128::from(l_size))?;
    i64::try_from(weighted.checked_div(size)?).ok()
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
    /// The tip's performance.
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
    /// Counted, and its finding keeps the tip's performance.
    pub accepting: bool,
}

/// A round's tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// `None` if accepted.
    pub rejection: Option<Rejection>,
    /// The median of the counted findings, if any were counted.
    pub performance: Option<i64>,
    /// Counted findings that keep the tip's performance.
    pub accepts: u32,
    /// Reports counted.
    pub counted: u32,
    /// One per reveal, in order.
    pub findings: Vec<Finding>,
}

/// The scores of a report, if they are in range and state the registered local-set size.
pub fn check_scores(scores: &Scores, registered_l_size: u32, spec: &EvaluationSpec) -> Result<(), Deviation> {
    let l_in_range = scores.l_size == 0 || spec.metric.admits(scores.l_metric);
    if !spec.metric.admits(scores.g_metric) || !l_in_range {
        return Err(Deviation::OutOfRange);
    }
    if scores.l_size != registered_l_size {
        return Err(Deviation::LocalSetMismatch);
    }
    Ok(())
}

/// Tally the reveals of a round (protocol step 6 of the contract; guarantees in the module doc).
///
/// 1. Reports out of range or with an unregistered `l_size` are deviants.
/// 2. If `quorum` of the reveals refused the candidate, it is rejected as `Refused`.
/// 3. The G digest shared by `quorum` of the reveals is the majority's (else the candidate is
///    rejected as `InconsistentPredictions`); other digests are deviants; within the majority,
///    G metrics further than the tolerance from their median are deviants.
/// 4. Each counted report's finding merges the majority's median G metric with its local set;
///    it accepts when the finding keeps the tip's performance. The performance is the median
///    finding; the candidate is accepted iff `quorum` of `k` accept and the median keeps too.
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
    for (i, scores) in scored(&findings) {
        if scores.g_digest != digest {
            if let Some(finding) = findings.get_mut(i) {
                finding.deviation = Some(Deviation::Digest);
            }
        }
    }
    let g_metrics: Vec<i64> = scored(&findings).iter().map(|(_, s)| s.g_metric).collect();
    let Some(g_reference) = median(&g_metrics, higher) else {
        return rejected(Rejection::InconsistentPredictions, findings);
    };
    let tolerance = u128::from(spec.metric_tolerance);
    for (i, scores) in scored(&findings) {
        if i128::from(scores.g_metric).abs_diff(i128::from(g_reference)) > tolerance {
            if let Some(finding) = findings.get_mut(i) {
                finding.deviation = Some(Deviation::GMetric);
            }
        }
    }
    let mut views = Vec::new();
    let mut accepts = 0u32;
    for (i, scores) in scored(&findings) {
        let Some(view) = merge(g_reference, spec.test_set_size, scores.l_metric, scores.l_size) else { continue };
        let keeps = keeps_performance(view, rules.previous, rules.lambda_ppm, higher, spec.metric_tolerance);
        if let Some(finding) = findings.get_mut(i) {
            finding.accepting = keeps;
        }
        accepts = accepts.saturating_add(u32::from(keeps));
        views.push(view);
    }
    let performance = median(&views, higher);
    let median_keeps = performance
        .is_some_and(|p| keeps_performance(p, rules.previous, rules.lambda_ppm, higher, spec.metric_tolerance));
    let rejection = if rules.quorum.reached_by(accepts, rules.validators) && median_keeps {
        None
    } else if median_keeps {
        Some(Rejection::NotEnoughVotes)
    } else {
        Some(Rejection::Degrades)
    };
    Tally { rejection, performance, accepts, counted: u32::try_from(views.len()).unwrap_or(u32::MAX), findings }
}

//! The coalition's rules as pure functions: strengths, validator selection, and the aggregation
//! of score reports. No storage, no environment but the keccak-256 hasher; each rule is tested
//! alone at the bottom of this file.

use ink::{
    env::hash::{HashOutput, Keccak256},
    prelude::vec::Vec,
    Address,
};

/// 1.0 in the strength fixed point (parts per billion).
pub const STRENGTH_ONE: u64 = 1_000_000_000;
/// 1.0 for `lambda` (parts per million).
pub const LAMBDA_ONE: u32 = 1_000_000;

/// A fraction `num / den`, for quorums and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[ink::scale_derive(Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(ink::storage::traits::StorageLayout))]
pub struct Fraction {
    /// Numerator.
    pub num: u32,
    /// Denominator, > 0.
    pub den: u32,
}

impl Fraction {
    /// Two thirds.
    pub const TWO_THIRDS: Self = Self { num: 2, den: 3 };

    /// Whether this fraction is in (1/2, 1]: a quorum that two disjoint groups cannot both reach.
    pub fn is_majority(&self) -> bool {
        self.den > 0 && self.num <= self.den && u64::from(self.num) * 2 > u64::from(self.den)
    }

    /// Whether `count` out of `total` reaches this fraction: `count / total >= num / den`.
    /// Nothing reaches a fraction of zero items.
    pub fn reached_by(&self, count: u32, total: u32) -> bool {
        total > 0 && u64::from(count) * u64::from(self.den) >= u64::from(total) * u64::from(self.num)
    }
}

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

fn keccak(input: &[u8]) -> [u8; 32] {
    let mut output = <Keccak256 as HashOutput>::Type::default();
    ink::env::hash_bytes::<Keccak256>(input, &mut output);
    output
}

/// A deterministic stream of 64-bit words: `keccak(seed ‖ counter)`, four words per hash.
pub struct RandomStream {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl RandomStream {
    /// A stream from a 32-byte seed.
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0, block: [0; 32], used: 4 }
    }

    /// The next word.
    pub fn next_u64(&mut self) -> u64 {
        if self.used >= 4 {
            let mut input = [0u8; 40];
            input[..32].copy_from_slice(&self.seed);
            input[32..].copy_from_slice(&self.counter.to_le_bytes());
            self.block = keccak(&input);
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

/// The seed of a round's draws: `keccak(randomness ‖ round ‖ tip_hash)`.
pub fn round_seed(randomness: &[u8; 32], round: u64, tip_hash: &[u8; 32]) -> [u8; 32] {
    let mut input = [0u8; 72];
    input[..32].copy_from_slice(randomness);
    input[32..40].copy_from_slice(&round.to_le_bytes());
    input[40..].copy_from_slice(tip_hash);
    keccak(&input)
}

/// A seed derived from `seed` for a purpose (`b"general"`) and an attempt number.
pub fn derive_seed(seed: &[u8; 32], purpose: &[u8], attempt: u32) -> [u8; 32] {
    let mut input = Vec::with_capacity(seed.len().saturating_add(purpose.len()).saturating_add(4));
    input.extend_from_slice(seed);
    input.extend_from_slice(purpose);
    input.extend_from_slice(&attempt.to_le_bytes());
    keccak(&input)
}

/// Draw up to `k` distinct candidates, each draw with probability proportional to weight among
/// those not drawn yet. Returns all candidates (in draw order) when `k` exceeds their number.
/// Zero-weight candidates are drawn only when every remaining weight is zero (uniformly then).
pub fn select_weighted(candidates: &[(Address, u64)], k: usize, seed: [u8; 32]) -> Vec<Address> {
    let mut remaining: Vec<(Address, u64)> = candidates.to_vec();
    let mut chosen = Vec::with_capacity(k.min(remaining.len()));
    let mut stream = RandomStream::new(seed);
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

/// The digest of predictions on G that at least `quorum` of the `digests` agree on, if any.
pub fn majority_digest(digests: &[[u8; 32]], quorum: Fraction) -> Option<[u8; 32]> {
    let total = u32::try_from(digests.len()).ok()?;
    digests.iter().find_map(|candidate| {
        let count = digests.iter().filter(|digest| *digest == candidate).count();
        quorum.reached_by(u32::try_from(count).ok()?, total).then_some(*candidate)
    })
}

/// The median of `values` (the lower middle for an even count); `None` for no values.
pub fn median(values: &[i64]) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let middle = sorted.len().checked_sub(1)? / 2;
    sorted.get(middle).copied()
}

/// Merged performance over G and the validators' local sets, weighted by set size:
/// `(g·|G| + Σ l_i·|L_i|) / (|G| + Σ |L_i|)`, rounded toward zero. `None` when every set is empty.
pub fn merged_performance(g_metric: i64, g_size: u32, locals: &[(i64, u32)]) -> Option<i64> {
    let mut weighted = i128::from(g_metric).checked_mul(i128::from(g_size))?;
    let mut size = i128::from(g_size);
    for (metric, local_size) in locals {
        weighted = weighted.checked_add(i128::from(*metric).checked_mul(i128::from(*local_size))?)?;
        size = size.checked_add(i128::from(*local_size))?;
    }
    i64::try_from(weighted.checked_div(size)?).ok()
}

/// The lambda rule: does `new` keep at least `lambda` of `previous`'s performance?
///
/// Higher-is-better metrics need `new >= lambda · previous`; lower-is-better ones (errors) need
/// the mirror `lambda · new <= previous`. `lambda` is in parts per million.
pub fn keeps_performance(new: i64, previous: i64, lambda_ppm: u32, higher_is_better: bool) -> bool {
    let lambda = i128::from(lambda_ppm);
    let one = i128::from(LAMBDA_ONE);
    if higher_is_better {
        i128::from(new) * one >= lambda * i128::from(previous)
    } else {
        lambda * i128::from(new) <= i128::from(previous) * one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(byte: u8) -> Address {
        Address::from([byte; 20])
    }

    #[test]
    fn strengths_sum_to_two_with_data_and_one_without() {
        assert_eq!(strength(4, 0, 0), STRENGTH_ONE / 4);
        assert_eq!(strength(0, 5, 10), 0);
        let samples = [100u64, 300, 600];
        let total: u64 = samples.iter().sum();
        let sum: u64 = samples.iter().map(|d| strength(3, *d, total)).sum();
        // 1/N terms sum to 1, D_i/D terms to 1; floor rounding loses at most one part per term.
        assert!((2 * STRENGTH_ONE - 6..=2 * STRENGTH_ONE).contains(&sum), "{sum}");
        assert_eq!(strength(3, 600, 1000), STRENGTH_ONE / 3 + STRENGTH_ONE * 6 / 10);
    }

    #[test]
    fn fractions_compare_without_rounding() {
        let q = Fraction::TWO_THIRDS;
        assert!(q.reached_by(2, 3) && q.reached_by(4, 6) && q.reached_by(3, 3));
        assert!(!q.reached_by(1, 2) && !q.reached_by(3, 5) && !q.reached_by(0, 0));
        assert!(q.is_majority() && Fraction { num: 1, den: 1 }.is_majority());
        assert!(!Fraction { num: 1, den: 2 }.is_majority());
        assert!(!Fraction { num: 3, den: 2 }.is_majority() && !Fraction { num: 0, den: 0 }.is_majority());
    }

    #[test]
    fn draws_below_a_bound_are_in_range_and_roughly_uniform() {
        let mut stream = RandomStream::new([7; 32]);
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            let draw = stream.below(3) as usize;
            counts[draw] += 1;
        }
        assert!(counts.iter().all(|c| (850..=1150).contains(c)), "{counts:?}");
        assert_eq!(stream.below(1), 0);
        assert_eq!(stream.below(0), 0);
        // The same seed gives the same stream.
        let (mut a, mut b) = (RandomStream::new([1; 32]), RandomStream::new([1; 32]));
        assert!((0..10).all(|_| a.next_u64() == b.next_u64()));
    }

    #[test]
    fn selection_is_without_replacement_and_follows_weights() {
        let candidates = [(address(1), 1), (address(2), 1), (address(3), 8)];
        let chosen = select_weighted(&candidates, 2, [3; 32]);
        assert_eq!(chosen.len(), 2);
        assert_ne!(chosen[0], chosen[1]);
        // k beyond the candidates: everyone, once.
        let mut all = select_weighted(&candidates, 10, [3; 32]);
        all.sort();
        assert_eq!(all, vec![address(1), address(2), address(3)]);
        // The heavy candidate is first in about 80% of seeds.
        let first_heavy = (0u8..200)
            .filter(|s| select_weighted(&candidates, 1, [*s; 32])[0] == address(3))
            .count();
        assert!((140..=185).contains(&first_heavy), "{first_heavy}");
        assert!(select_weighted(&[], 3, [0; 32]).is_empty());
        // Zero weights: still a draw, uniformly.
        assert_eq!(select_weighted(&[(address(9), 0)], 1, [0; 32]), vec![address(9)]);
    }

    #[test]
    fn the_g_digest_needs_two_thirds_agreement() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(majority_digest(&[a, a, b], Fraction::TWO_THIRDS), Some(a));
        assert_eq!(majority_digest(&[a, b], Fraction::TWO_THIRDS), None);
        assert_eq!(majority_digest(&[a, a, b, b], Fraction::TWO_THIRDS), None);
        assert_eq!(majority_digest(&[], Fraction::TWO_THIRDS), None);
        assert_eq!(majority_digest(&[b], Fraction::TWO_THIRDS), Some(b));
    }

    #[test]
    fn medians_and_merged_performance() {
        assert_eq!(median(&[5, 1, 3]), Some(3));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2));
        assert_eq!(median(&[]), None);
        // G: 0.9 on 100 samples; locals 0.6 on 50 and 0.8 on 50 → 0.8.
        assert_eq!(merged_performance(900_000, 100, &[(600_000, 50), (800_000, 50)]), Some(800_000));
        assert_eq!(merged_performance(900_000, 100, &[]), Some(900_000));
        assert_eq!(merged_performance(1, 0, &[(5, 0)]), None);
        assert_eq!(merged_performance(i64::MAX, u32::MAX, &[(i64::MAX, u32::MAX)]), Some(i64::MAX));
    }

    #[test]
    fn the_lambda_rule_and_its_mirror() {
        // Accuracy 0.80 → 0.78 with lambda 0.95: kept (0.78 >= 0.76); 0.70: degraded.
        assert!(keeps_performance(780_000, 800_000, 950_000, true));
        assert!(!keeps_performance(700_000, 800_000, 950_000, true));
        assert!(keeps_performance(760_000, 800_000, 950_000, true), "the boundary is accepted");
        // MSE 100 → 104 with lambda 0.95: 98.8 <= 100 kept; 110: degraded.
        assert!(keeps_performance(104, 100, 950_000, false));
        assert!(!keeps_performance(110, 100, 950_000, false));
        // lambda 0 accepts any non-negative score for higher-is-better.
        assert!(keeps_performance(0, 800_000, 0, true));
    }
}

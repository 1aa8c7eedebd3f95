//! DP-SGD's privacy step (Abadi et al. 2016), independent of the model: Poisson sampling of a
//! batch, per-example clipping, Gaussian noise.
//!
//! Each example's gradient is scaled down to L2 norm at most `clip_norm`; the clipped gradients
//! are summed, Gaussian noise of standard deviation `noise_multiplier × clip_norm` is added to
//! every coordinate, and the sum is divided by the expected batch size `q × N` (not the drawn
//! one, which would leak it). Adding or removing one example changes the clipped sum by at most
//! `clip_norm`: that bound, with the noise and the sampling, is what the accountant
//! ([`crate::privacy`]) charges for.

use rand::Rng;
use rand_distr::{Distribution, Normal};

/// DP-SGD's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpSgd {
    /// Largest L2 norm of one example's gradient.
    pub clip_norm: f32,
    /// Noise standard deviation over `clip_norm`.
    pub noise_multiplier: f32,
}

/// Each index of `0..examples` independently with probability `q`.
pub fn poisson_sample(examples: usize, q: f64, rng: &mut impl Rng) -> Vec<usize> {
    (0..examples).filter(|_| rng.random_bool(q.clamp(0.0, 1.0))).collect()
}

/// `gradient` scaled to L2 norm at most `clip_norm` (unchanged if already within it). A gradient
/// with a coordinate that is not finite (NaN or infinite: an example that overflows the loss)
/// contributes nothing: all zeros. Its norm is then 0, within the bound the accountant charges
/// for; scaling it would not be (`NaN > clip_norm` is false, and `inf × 0` is NaN).
pub fn clip(gradient: &[f32], clip_norm: f32) -> Vec<f32> {
    if !gradient.iter().all(|g| g.is_finite()) {
        return vec![0.0; gradient.len()];
    }
    let norm = gradient.iter().map(|g| f64::from(*g) * f64::from(*g)).sum::<f64>().sqrt();
    let scale = if norm > f64::from(clip_norm) { (f64::from(clip_norm) / norm) as f32 } else { 1.0 };
    gradient.iter().map(|g| g * scale).collect()
}

/// The sum of the clipped gradients, without noise.
pub fn clipped_sum(per_example: &[Vec<f32>], width: usize, clip_norm: f32) -> Vec<f32> {
    let mut sum = vec![0f32; width];
    for gradient in per_example {
        for (total, value) in sum.iter_mut().zip(clip(gradient, clip_norm)) {
            *total += value;
        }
    }
    sum
}

impl DpSgd {
    /// The private gradient of a batch: clipped sum plus noise, over the expected batch size.
    pub fn gradient(
        &self,
        per_example: &[Vec<f32>],
        width: usize,
        expected_batch: f32,
        rng: &mut impl Rng,
    ) -> Vec<f32> {
        let deviation = f64::from(self.noise_multiplier) * f64::from(self.clip_norm);
        clipped_sum(per_example, width, self.clip_norm)
            .into_iter()
            .map(|value| (value + gaussian_noise(deviation, rng) as f32) / expected_batch.max(1.0))
            .collect()
    }
}

/// One draw of Gaussian noise of standard deviation `deviation`, as Opacus's `secure_mode` draws
/// it: the sum of four draws of that deviation, halved (same distribution). A single
/// floating-point Gaussian draw leaves traces of the value it was added to in its low bits
/// (Mironov 2012; Jin et al. 2022, "Are we there yet? Timing and floating-point attacks on
/// differential privacy systems"); the sum of several, as Holohan and Braghin (2021) propose,
/// blurs them. The generator is the caller's: the trainer's is a ChaCha20 seeded from the OS.
pub fn gaussian_noise(deviation: f64, rng: &mut impl Rng) -> f64 {
    let normal = Normal::new(0.0, deviation).expect("a finite, non-negative deviation");
    (0..SECURE_DRAWS).map(|_| normal.sample(rng)).sum::<f64>() / f64::from(SECURE_DRAWS).sqrt()
}

/// How many draws [`gaussian_noise`] sums (Opacus's `secure_mode`: `2n` with `n = 2`).
const SECURE_DRAWS: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    proptest! {
        /// Whatever one example's gradient is (an adversary's, as large as it likes), adding it
        /// to a batch moves the clipped sum by at most the clipping norm.
        #[test]
        fn one_example_moves_the_clipped_sum_by_at_most_the_clip_norm(
            batch in proptest::collection::vec(proptest::collection::vec(-1e6f32..1e6, 4), 0..16),
            extra in proptest::collection::vec(-1e30f32..1e30, 4),
            clip_norm in 0.01f32..10.0,
        ) {
            let without = clipped_sum(&batch, 4, clip_norm);
            let mut with_extra = batch.clone();
            with_extra.push(extra);
            let with = clipped_sum(&with_extra, 4, clip_norm);
            let moved: Vec<f32> = with.iter().zip(&without).map(|(a, b)| a - b).collect();
            prop_assert!(norm(&moved) <= clip_norm * (1.0 + 1e-3), "moved {} > {clip_norm}", norm(&moved));
        }

        /// An example whose gradient holds NaN or an infinity, anywhere, at any magnitude
        /// around it: the clipped sum stays finite and moves by at most the clipping norm.
        #[test]
        fn a_gradient_that_is_not_finite_moves_the_clipped_sum_by_at_most_the_clip_norm(
            batch in proptest::collection::vec(proptest::collection::vec(-1e6f32..1e6, 4), 0..16),
            mut extra in proptest::collection::vec(-1e38f32..1e38, 4),
            at in 0usize..4,
            which in 0usize..3,
            clip_norm in 0.01f32..10.0,
        ) {
            extra[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][which];
            let without = clipped_sum(&batch, 4, clip_norm);
            let mut with_extra = batch.clone();
            with_extra.push(extra);
            let with = clipped_sum(&with_extra, 4, clip_norm);
            prop_assert!(with.iter().all(|v| v.is_finite()));
            let moved: Vec<f32> = with.iter().zip(&without).map(|(a, b)| a - b).collect();
            prop_assert!(norm(&moved) <= clip_norm * (1.0 + 1e-3), "moved {} > {clip_norm}", norm(&moved));
        }
    }

    #[test]
    fn small_gradients_are_kept_and_the_noise_has_the_stated_deviation() {
        assert_eq!(clip(&[0.3, 0.4], 1.0), vec![0.3, 0.4]);
        let clipped = clip(&[30.0, 40.0], 1.0);
        assert!((norm(&clipped) - 1.0).abs() < 1e-6 && (clipped[0] / clipped[1] - 0.75).abs() < 1e-6, "direction kept");
        assert_eq!(clip(&[0.0, 0.0], 1.0), vec![0.0, 0.0]);

        // Noise alone (no example): 20,000 coordinates of N(0, (1.1 × 0.5)^2), over a batch of 1.
        let dp = DpSgd { clip_norm: 0.5, noise_multiplier: 1.1 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let noise = dp.gradient(&[], 20_000, 1.0, &mut rng);
        let mean = noise.iter().sum::<f32>() / noise.len() as f32;
        let deviation = (noise.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / noise.len() as f32).sqrt();
        assert!(mean.abs() < 0.02 && (deviation - 0.55).abs() < 0.01, "mean {mean}, deviation {deviation}");

        // Each draw is the halved sum of four of the same deviation (Opacus's secure_mode).
        let (mut a, mut b) = (rand_chacha::ChaCha8Rng::seed_from_u64(9), rand_chacha::ChaCha8Rng::seed_from_u64(9));
        let four: f64 = (0..4).map(|_| Normal::new(0.0, 0.55).unwrap().sample(&mut b)).sum();
        assert_eq!(gaussian_noise(0.55, &mut a), four / 2.0);

        // Poisson sampling draws about q N examples.
        let drawn = poisson_sample(100_000, 0.01, &mut rng).len();
        assert!((900..1_100).contains(&drawn), "{drawn}");
    }
}

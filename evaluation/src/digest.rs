//! Digests of predictions on the global test set G.
//!
//! The contract counts a report only when its digest is the one at least 2/3 of the validators
//! report (a "functional and identical" model run on the same G), and when its G metric is within
//! the coalition's `metric_tolerance` of theirs. Honest validators must agree on any hardware:
//! ONNX Runtime picks kernels by instruction set (SSE, AVX2, AVX-512, NEON) and thread count, so
//! the same model's float outputs can differ in their last bits from host to host. A digest is
//! therefore never taken over raw floats, and agreement does not hinge on where a float rounds:
//! - classifiers: the predicted class of each sample ([`predicted_labels`], [`labels_digest`]);
//! - masks: each output thresholded at 0.5 ([`mask_labels`], then [`labels_digest`]);
//! - regressors: what was evaluated, the candidate and G ([`evaluated_digest`]); consistency
//!   then rests on the G metric, which honest validators reproduce within the declared tolerance.
//!
//! Labels can still differ where a sample sits on a decision boundary. A sample whose top two
//! scores (or whose output and 0.5) are closer than the declared tie margin is a *near tie*,
//! and the candidate is refused ([`DigestError::NearTie`]) by every validator that sees it. The
//! margin (1e-5 by default, relative to the score's size) is about 100 times the float32
//! rounding noise of a softmax output, so a sample is a tie on one host and a confident label on
//! another only within that noise of the margin itself, where both hosts still agree on the
//! label: the verdicts can split between a refusal and a score, never between two labels. A
//! candidate built to put samples on its boundaries is refused, not accepted by luck.
//!
//! [`rounded_digest`] (outputs rounded to declared decimals) remains for coalitions that declare
//! it: an output within rounding noise of a rounding boundary flips, so it is fit only for
//! outputs whose noise is far below the declared precision.
//!
//! All are SHA3-256 over a domain tag, the number of values and the values, little-endian, so
//! that digests of different kinds never collide.

use sha3::{Digest, Sha3_256};

/// Why a digest cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// An output is NaN or infinite.
    #[error("output {index} is not finite")]
    NotFinite {
        /// Its position.
        index: usize,
    },
    /// The precision is beyond what an i64 holds for these outputs.
    #[error("output {index} does not fit an i64 at {decimals} decimals")]
    OutOfRange {
        /// Its position.
        index: usize,
        /// The declared precision.
        decimals: u32,
    },
    /// More than 15 decimals: beyond f64 precision.
    #[error("{0} decimals is beyond f64 precision (at most 15)")]
    TooPrecise(u32),
    /// A sample sits on a decision boundary: hosts could disagree on its label.
    #[error("sample {row} is a near tie: its label would depend on the host's float rounding")]
    NearTie {
        /// The sample.
        row: usize,
    },
}

const LABELS_TAG: &[u8] = b"tclearn/labels/v1";
const ROUNDED_TAG: &[u8] = b"tclearn/rounded/v1";
const EVALUATED_TAG: &[u8] = b"tclearn/evaluated/v1";

pub use tclearn_model::genesis::DEFAULT_TIE_MARGIN;

/// Whether `a` and `b` are closer than `margin`, relative to their size (at least 1).
fn near(a: f32, b: f32, margin: f32) -> bool {
    (a - b).abs() < margin * a.abs().max(b.abs()).max(1.0)
}

/// The predicted class of each row of `width` outputs: the argmax of the row (the first on
/// exact ties), or `p >= 0.5` for one output per row. A row whose two best scores, or whose
/// output and 0.5, are within `margin` is a [`DigestError::NearTie`].
pub fn predicted_labels(outputs: &[f32], width: usize, margin: f32) -> Result<Vec<u32>, DigestError> {
    if width == 1 {
        return mask_labels(outputs, margin);
    }
    let labels = argmax_rows(outputs, width)?;
    for (row, (values, label)) in outputs.chunks(width).zip(&labels).enumerate() {
        let best = values.get(*label as usize).copied().unwrap_or(f32::NEG_INFINITY);
        let tie = values.iter().enumerate().any(|(i, v)| i != *label as usize && near(*v, best, margin));
        if tie {
            return Err(DigestError::NearTie { row });
        }
    }
    Ok(labels)
}

/// Each output thresholded at 0.5 (1 above, 0 below); an output within `margin` of 0.5 is a
/// [`DigestError::NearTie`].
pub fn mask_labels(outputs: &[f32], margin: f32) -> Result<Vec<u32>, DigestError> {
    outputs
        .iter()
        .enumerate()
        .map(|(index, p)| {
            if !p.is_finite() {
                Err(DigestError::NotFinite { index })
            } else if near(*p, 0.5, margin) {
                Err(DigestError::NearTie { row: index })
            } else {
                Ok(u32::from(*p >= 0.5))
            }
        })
        .collect()
}

/// SHA3-256 over what was evaluated: the candidate's hash, G's hash and the number of outputs,
/// after checking that every output is finite. It says nothing about the outputs' values,
/// which the G metric and its tolerance cover.
pub fn evaluated_digest(
    model_hash: &[u8; 32],
    test_set_hash: &[u8; 32],
    outputs: &[f32],
) -> Result<[u8; 32], DigestError> {
    if let Some(index) = outputs.iter().position(|o| !o.is_finite()) {
        return Err(DigestError::NotFinite { index });
    }
    let mut hasher = Sha3_256::new();
    hasher.update(EVALUATED_TAG);
    hasher.update(model_hash);
    hasher.update(test_set_hash);
    hasher.update((outputs.len() as u64).to_le_bytes());
    Ok(hasher.finalize().into())
}

/// SHA3-256 over the predicted class of each sample (`u32` little-endian).
pub fn labels_digest(labels: &[u32]) -> [u8; 32] {
    let mut hasher = Sha3_256::new();
    hasher.update(LABELS_TAG);
    hasher.update((labels.len() as u64).to_le_bytes());
    for label in labels {
        hasher.update(label.to_le_bytes());
    }
    hasher.finalize().into()
}

/// SHA3-256 over each output rounded to `decimals` decimal places (`round(x · 10^decimals)` as an
/// `i64` little-endian); the precision itself is hashed too.
pub fn rounded_digest(outputs: &[f32], decimals: u32) -> Result<[u8; 32], DigestError> {
    if decimals > 15 {
        return Err(DigestError::TooPrecise(decimals));
    }
    let scale = 10f64.powi(decimals as i32);
    let mut hasher = Sha3_256::new();
    hasher.update(ROUNDED_TAG);
    hasher.update(decimals.to_le_bytes());
    hasher.update((outputs.len() as u64).to_le_bytes());
    for (index, output) in outputs.iter().enumerate() {
        if !output.is_finite() {
            return Err(DigestError::NotFinite { index });
        }
        let scaled = (f64::from(*output) * scale).round();
        if scaled.abs() >= 9.0e18 {
            return Err(DigestError::OutOfRange { index, decimals });
        }
        hasher.update((scaled as i64).to_le_bytes());
    }
    Ok(hasher.finalize().into())
}

/// Index of the largest value of each row of `width` scores (the first on ties): the predicted
/// classes of a classifier's output. Rows with a NaN are refused.
pub fn argmax_rows(scores: &[f32], width: usize) -> Result<Vec<u32>, DigestError> {
    if width == 0 {
        return Ok(Vec::new());
    }
    scores
        .chunks(width)
        .enumerate()
        .map(|(row, values)| {
            if let Some(column) = values.iter().position(|v| !v.is_finite()) {
                return Err(DigestError::NotFinite { index: row * width + column });
            }
            let (best, _) = values.iter().enumerate().fold((0usize, f32::NEG_INFINITY), |(best, max), (i, v)| {
                if *v > max {
                    (i, *v)
                } else {
                    (best, max)
                }
            });
            Ok(best as u32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_digests_depend_on_every_label_and_their_order() {
        let base = labels_digest(&[0, 1, 1, 0]);
        assert_eq!(base, labels_digest(&[0, 1, 1, 0]));
        assert_ne!(base, labels_digest(&[0, 1, 0, 1]));
        assert_ne!(base, labels_digest(&[0, 1, 1]));
        assert_ne!(labels_digest(&[]), labels_digest(&[0]));
        // The input SHA3 sees, spelled out.
        let mut expected = Sha3_256::new();
        expected.update(b"tclearn/labels/v1");
        expected.update(1u64.to_le_bytes());
        expected.update(7u32.to_le_bytes());
        assert_eq!(labels_digest(&[7]), <[u8; 32]>::from(expected.finalize()));
    }

    #[test]
    fn rounding_absorbs_noise_below_the_declared_precision() {
        let a = rounded_digest(&[0.123_401, 2.5], 4).unwrap();
        let b = rounded_digest(&[0.123_399, 2.500_02], 4).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, rounded_digest(&[0.1235, 2.5], 4).unwrap());
        assert_ne!(a, rounded_digest(&[0.123_401, 2.5], 3).unwrap(), "the precision is hashed");
        assert_ne!(rounded_digest(&[], 2).unwrap(), labels_digest(&[]), "domains are separate");
    }

    #[test]
    fn bad_outputs_are_refused() {
        assert_eq!(rounded_digest(&[1.0, f32::NAN], 2), Err(DigestError::NotFinite { index: 1 }));
        assert_eq!(rounded_digest(&[1.0e10], 12), Err(DigestError::OutOfRange { index: 0, decimals: 12 }));
        assert_eq!(rounded_digest(&[1.0], 16), Err(DigestError::TooPrecise(16)));
        assert_eq!(argmax_rows(&[0.1, f32::NAN], 2), Err(DigestError::NotFinite { index: 1 }));
    }

    #[test]
    fn near_ties_are_refused_and_confident_labels_are_not() {
        assert_eq!(predicted_labels(&[0.1, 0.7, 0.2, 0.6, 0.3, 0.1], 3, DEFAULT_TIE_MARGIN).unwrap(), vec![1, 0]);
        // Two classes a float32 ULP apart, on the second sample.
        let tie = [0.2, 0.8, 0.5, f32::from_bits(0.5f32.to_bits() + 1)];
        assert_eq!(predicted_labels(&tie, 2, DEFAULT_TIE_MARGIN), Err(DigestError::NearTie { row: 1 }));
        assert_eq!(predicted_labels(&[0.5, 0.5], 2, DEFAULT_TIE_MARGIN), Err(DigestError::NearTie { row: 0 }));
        // Large logits: the margin is relative to their size.
        assert_eq!(predicted_labels(&[1000.0, 1000.001], 2, DEFAULT_TIE_MARGIN), Err(DigestError::NearTie { row: 0 }));
        assert_eq!(predicted_labels(&[1000.0, 1000.1], 2, DEFAULT_TIE_MARGIN).unwrap(), vec![1]);
        // One output per sample, and masks: against 0.5.
        assert_eq!(predicted_labels(&[0.9, 0.1], 1, DEFAULT_TIE_MARGIN).unwrap(), vec![1, 0]);
        assert_eq!(mask_labels(&[0.9, 0.500_001, 0.0], DEFAULT_TIE_MARGIN), Err(DigestError::NearTie { row: 1 }));
        assert_eq!(mask_labels(&[0.9, 0.499, 0.0], DEFAULT_TIE_MARGIN).unwrap(), vec![1, 0, 0]);
        assert_eq!(mask_labels(&[f32::INFINITY], DEFAULT_TIE_MARGIN), Err(DigestError::NotFinite { index: 0 }));
        // A zero margin refuses nothing: the argmax takes the first of equal scores.
        assert_eq!(predicted_labels(&tie, 2, 0.0).unwrap(), vec![1, 1]);
    }

    #[test]
    fn the_evaluated_digest_names_the_candidate_and_the_set_not_the_values() {
        let a = evaluated_digest(&[1; 32], &[2; 32], &[0.25, 7.0]).unwrap();
        assert_eq!(
            a,
            evaluated_digest(&[1; 32], &[2; 32], &[0.250_001, 7.000_1]).unwrap(),
            "rounding noise is irrelevant"
        );
        assert_ne!(a, evaluated_digest(&[3; 32], &[2; 32], &[0.25, 7.0]).unwrap());
        assert_ne!(a, evaluated_digest(&[1; 32], &[3; 32], &[0.25, 7.0]).unwrap());
        assert_ne!(a, evaluated_digest(&[1; 32], &[2; 32], &[0.25]).unwrap());
        assert_eq!(evaluated_digest(&[1; 32], &[2; 32], &[1.0, f32::NAN]), Err(DigestError::NotFinite { index: 1 }));
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax_rows(&[0.1, 0.7, 0.2, 0.5, 0.5, 0.0], 3).unwrap(), vec![1, 0]);
        assert_eq!(argmax_rows(&[-3.0, -1.0], 2).unwrap(), vec![1]);
    }
}

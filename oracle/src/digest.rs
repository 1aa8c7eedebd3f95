//! Digests of predictions on the global test set G.
//!
//! The contract accepts a round only when at least 2/3 of the validators report the same digest,
//! i.e. ran a "functional and identical" model on the same G. Raw floating-point outputs can
//! differ in their last bits between CPUs and thread counts, so the digest is taken over a
//! representation that honest validators agree on:
//! - for classifiers, the predicted class of each sample ([`labels_digest`]);
//! - for regressors and masks, each output rounded to a precision the coalition declares
//!   ([`rounded_digest`]). An output within rounding noise of a rounding boundary can still
//!   differ; the declared precision should be well above the models' numerical noise.
//!
//! Both are SHA3-256 over a domain tag, the number of values and the values, little-endian, so
//! that a digest of labels can never equal a digest of rounded outputs.

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
}

const LABELS_TAG: &[u8] = b"tclearn/labels/v1";
const ROUNDED_TAG: &[u8] = b"tclearn/rounded/v1";

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
            let (best, _) = values
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |(best, max), (i, v)| if *v > max { (i, *v) } else { (best, max) });
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
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax_rows(&[0.1, 0.7, 0.2, 0.5, 0.5, 0.0], 3).unwrap(), vec![1, 0]);
        assert_eq!(argmax_rows(&[-3.0, -1.0], 2).unwrap(), vec![1]);
    }
}

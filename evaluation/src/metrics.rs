//! The coalition's metrics, as plain functions of true and predicted values.
//!
//! Conventions follow scikit-learn's, so that a member can check a number with the tool it
//! already uses: F1 of the positive class 1 for binary labels, balanced accuracy as the mean recall
//! over the classes present in the truth, R² of a constant truth is 1 for a perfect prediction and
//! 0 otherwise, ROC AUC by the Mann-Whitney statistic with tied scores counted one half.
//! The contract stores metrics in fixed point ([`to_fixed`]: 1.0 = 1_000_000).

use std::collections::BTreeSet;

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// No samples.
    #[error("no samples")]
    Empty,
    /// Truth and prediction differ in length.
    #[error("{truth} true values but {predicted} predictions")]
    LengthMismatch {
        /// True values.
        truth: usize,
        /// Predictions.
        predicted: usize,
    },
    /// ROC AUC needs both classes in the truth.
    #[error("ROC AUC needs both classes among the true labels")]
    OneClass,
    /// A value is NaN or infinite.
    #[error("a value is not finite")]
    NotFinite,
    /// ROC AUC labels must be 0 or 1.
    #[error("label {0} is not binary (0 or 1)")]
    NotBinary(u32),
}

/// Result of a metric.
pub type Result<T> = core::result::Result<T, MetricError>;

fn ensure_pairs<A, B>(truth: &[A], predicted: &[B]) -> Result<usize> {
    if truth.len() != predicted.len() {
        return Err(MetricError::LengthMismatch { truth: truth.len(), predicted: predicted.len() });
    }
    if truth.is_empty() {
        return Err(MetricError::Empty);
    }
    Ok(truth.len())
}

fn ensure_finite(values: &[f64]) -> Result<()> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(MetricError::NotFinite)
    }
}

/// Share of predictions equal to the truth.
pub fn accuracy(truth: &[u32], predicted: &[u32]) -> Result<f64> {
    let n = ensure_pairs(truth, predicted)?;
    let correct = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    Ok(correct as f64 / n as f64)
}

/// Mean recall over the classes present in the truth.
pub fn balanced_accuracy(truth: &[u32], predicted: &[u32]) -> Result<f64> {
    ensure_pairs(truth, predicted)?;
    let classes: BTreeSet<u32> = truth.iter().copied().collect();
    let recalls: f64 = classes
        .iter()
        .map(|class| {
            let (hits, total) = truth
                .iter()
                .zip(predicted)
                .filter(|(t, _)| *t == class)
                .fold((0usize, 0usize), |(hits, total), (_, p)| (hits + usize::from(p == class), total + 1));
            hits as f64 / total as f64
        })
        .sum();
    Ok(recalls / classes.len() as f64)
}

/// F1 of class 1: `2·TP / (2·TP + FP + FN)`; 0 when there are no positives at all.
pub fn f1(truth: &[u32], predicted: &[u32]) -> Result<f64> {
    ensure_pairs(truth, predicted)?;
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (t, p) in truth.iter().zip(predicted) {
        match (*t == 1, *p == 1) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    let denominator = 2 * tp + fp + fn_;
    Ok(if denominator == 0 { 0.0 } else { 2.0 * tp as f64 / denominator as f64 })
}

/// Area under the ROC curve of `scores` (higher = more likely class 1) against binary labels.
pub fn roc_auc(truth: &[u32], scores: &[f64]) -> Result<f64> {
    ensure_pairs(truth, scores)?;
    ensure_finite(scores)?;
    if let Some(label) = truth.iter().find(|label| **label > 1) {
        return Err(MetricError::NotBinary(*label));
    }
    let positives = truth.iter().filter(|t| **t == 1).count();
    let negatives = truth.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(MetricError::OneClass);
    }
    // Rank the scores, ties getting their average rank (1-based).
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        let average = (start + end) as f64 / 2.0 + 1.0;
        for index in &order[start..=end] {
            ranks[*index] = average;
        }
        start = end + 1;
    }
    let positive_rank_sum: f64 = truth.iter().zip(&ranks).filter(|(t, _)| **t == 1).map(|(_, r)| r).sum();
    let u = positive_rank_sum - (positives * (positives + 1)) as f64 / 2.0;
    Ok(u / (positives * negatives) as f64)
}

/// Mean squared error.
pub fn mse(truth: &[f64], predicted: &[f64]) -> Result<f64> {
    let n = ensure_pairs(truth, predicted)?;
    ensure_finite(truth)?;
    ensure_finite(predicted)?;
    Ok(truth.iter().zip(predicted).map(|(t, p)| (t - p) * (t - p)).sum::<f64>() / n as f64)
}

/// Mean absolute error.
pub fn mae(truth: &[f64], predicted: &[f64]) -> Result<f64> {
    let n = ensure_pairs(truth, predicted)?;
    ensure_finite(truth)?;
    ensure_finite(predicted)?;
    Ok(truth.iter().zip(predicted).map(|(t, p)| (t - p).abs()).sum::<f64>() / n as f64)
}

/// Coefficient of determination `1 - SS_res / SS_tot`.
pub fn r2(truth: &[f64], predicted: &[f64]) -> Result<f64> {
    let n = ensure_pairs(truth, predicted)?;
    ensure_finite(truth)?;
    ensure_finite(predicted)?;
    let mean = truth.iter().sum::<f64>() / n as f64;
    let residual: f64 = truth.iter().zip(predicted).map(|(t, p)| (t - p) * (t - p)).sum();
    let total: f64 = truth.iter().map(|t| (t - mean) * (t - mean)).sum();
    Ok(if total == 0.0 {
        if residual == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        1.0 - residual / total
    })
}

fn overlap(truth: &[bool], predicted: &[bool]) -> Result<(usize, usize, usize)> {
    ensure_pairs(truth, predicted)?;
    let both = truth.iter().zip(predicted).filter(|(t, p)| **t && **p).count();
    Ok((both, truth.iter().filter(|t| **t).count(), predicted.iter().filter(|p| **p).count()))
}

/// Dice coefficient of two masks: `2·|T∩P| / (|T| + |P|)`; 1 when both are empty.
pub fn dice(truth: &[bool], predicted: &[bool]) -> Result<f64> {
    let (both, t, p) = overlap(truth, predicted)?;
    Ok(if t + p == 0 { 1.0 } else { 2.0 * both as f64 / (t + p) as f64 })
}

/// Intersection over union of two masks: `|T∩P| / |T∪P|`; 1 when both are empty.
pub fn iou(truth: &[bool], predicted: &[bool]) -> Result<f64> {
    let (both, t, p) = overlap(truth, predicted)?;
    let union = t + p - both;
    Ok(if union == 0 { 1.0 } else { both as f64 / union as f64 })
}

/// A metric in the contract's fixed point: `round(value · 1_000_000)`, saturating.
pub fn to_fixed(value: f64) -> i64 {
    (value * 1_000_000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    // Truth and predictions of 10 samples; counted by hand:
    // truth:     1 1 1 1 0 0 0 0 0 0   (4 positives, 6 negatives)
    // predicted: 1 1 1 0 1 0 0 0 0 0   TP 3, FN 1, FP 1, TN 5
    const TRUTH: [u32; 10] = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
    const PREDICTED: [u32; 10] = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0];

    #[test]
    fn classification_metrics_match_hand_counts() {
        assert!(close(accuracy(&TRUTH, &PREDICTED).unwrap(), 8.0 / 10.0));
        // Recall of 1: 3/4, recall of 0: 5/6, mean 19/24.
        assert!(close(balanced_accuracy(&TRUTH, &PREDICTED).unwrap(), 19.0 / 24.0));
        // 2·3 / (2·3 + 1 + 1) = 0.75.
        assert!(close(f1(&TRUTH, &PREDICTED).unwrap(), 0.75));
        assert_eq!(f1(&[0, 0], &[0, 0]).unwrap(), 0.0);
        // Three classes: recalls 1/2, 1, 0 → 1/2.
        assert!(close(balanced_accuracy(&[0, 0, 1, 2], &[0, 1, 1, 1]).unwrap(), 0.5));
    }

    #[test]
    fn roc_auc_counts_pairs_and_halves_ties() {
        // Perfect ranking, reversed ranking, and the classic 0.75 example:
        // truth 0 0 1 1, scores 0.1 0.4 0.35 0.8 → 3 of 4 (pos, neg) pairs ordered right.
        assert!(close(roc_auc(&[0, 0, 1, 1], &[0.1, 0.2, 0.3, 0.4]).unwrap(), 1.0));
        assert!(close(roc_auc(&[1, 1, 0, 0], &[0.1, 0.2, 0.3, 0.4]).unwrap(), 0.0));
        assert!(close(roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap(), 0.75));
        // All scores tied: every pair counts one half.
        assert!(close(roc_auc(&[0, 1, 0, 1], &[0.5; 4]).unwrap(), 0.5));
        assert_eq!(roc_auc(&[1, 1], &[0.1, 0.2]), Err(MetricError::OneClass));
        assert_eq!(roc_auc(&[0, 2], &[0.1, 0.2]), Err(MetricError::NotBinary(2)));
        assert_eq!(roc_auc(&[0, 1], &[0.1, f64::NAN]), Err(MetricError::NotFinite));
    }

    #[test]
    fn regression_metrics_match_hand_sums() {
        let truth = [3.0, -0.5, 2.0, 7.0];
        let predicted = [2.5, 0.0, 2.0, 8.0];
        // Squared errors 0.25 0.25 0 1 → 1.5 / 4; absolute 0.5 0.5 0 1 → 2 / 4.
        assert!(close(mse(&truth, &predicted).unwrap(), 0.375));
        assert!(close(mae(&truth, &predicted).unwrap(), 0.5));
        // Mean 2.875; SS_tot = 29.1875; SS_res = 1.5 → 1 - 1.5 / 29.1875.
        assert!(close(r2(&truth, &predicted).unwrap(), 1.0 - 1.5 / 29.1875));
        assert_eq!(r2(&[2.0, 2.0], &[2.0, 2.0]).unwrap(), 1.0);
        assert_eq!(r2(&[2.0, 2.0], &[1.0, 2.0]).unwrap(), 0.0);
        assert_eq!(mse(&[1.0], &[f64::INFINITY]), Err(MetricError::NotFinite));
    }

    #[test]
    fn mask_metrics_and_their_empty_case() {
        let truth = [true, true, false, false];
        let predicted = [true, false, true, false];
        // |T∩P| = 1, |T| = 2, |P| = 2, |T∪P| = 3.
        assert!(close(dice(&truth, &predicted).unwrap(), 0.5));
        assert!(close(iou(&truth, &predicted).unwrap(), 1.0 / 3.0));
        assert_eq!(dice(&[false; 3], &[false; 3]).unwrap(), 1.0);
        assert_eq!(iou(&[false; 3], &[false; 3]).unwrap(), 1.0);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert_eq!(accuracy(&[], &[]), Err(MetricError::Empty));
        assert_eq!(accuracy(&[1, 0], &[1]), Err(MetricError::LengthMismatch { truth: 2, predicted: 1 }));
        assert_eq!(to_fixed(0.8234567), 823_457);
        assert_eq!(to_fixed(-0.5), -500_000);
    }
}

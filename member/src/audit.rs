//! Auditing the model chain after the fact: what finds validators that lied together beyond the
//! tally's bound.
//!
//! The tally (`coalition_types::rules::tally`) holds against fewer than a third of a round's
//! validators lying. Liars beyond that bound who agree on the same lie (the same forged G digest
//! and metric) outvote the honest validators: they can append a candidate with a performance of
//! their choosing, and the honest validators are the ones recorded as deviants. What they cannot
//! do is make their reports true: every revealed report stays on chain with its validator, and
//! the block's model is in the vault under its hash. G's predictions are reproducible (the same
//! model, the same G and the same ONNX Runtime give the same digest and metric, which is what
//! lets honest validators agree), so anyone holding G re-evaluates each block's model and
//! compares it with each validator's revealed G scores: [`check_report`], and with the block's
//! recorded performance, which is a G metric and nothing else ([`check_recorded`]). A local set
//! enters a report only as a vote (L is private to its member): it is not audited, and it
//! cannot move the recorded number.

use tclearn_client::{
    coalition::{Report, Scores, Verdict},
    H256,
};

/// What an audit makes of one validator's revealed report on an appended block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The revealed G digest is the model's, and its G metric within the tolerance.
    Matches,
    /// The revealed G digest is not the model's: the validator reported predictions the model
    /// does not make.
    ForgedDigest {
        /// What the validator revealed.
        revealed: H256,
    },
    /// The digest is the model's but the G metric is further than the tolerance from it.
    ForgedMetric {
        /// What the validator revealed.
        revealed: i64,
    },
    /// The validator refused the candidate (a fault it found in it, or in its own setup).
    Refused,
    /// The validator revealed nothing.
    Silent,
}

impl Check {
    /// Whether the report is a lie the audit proves.
    pub fn is_forged(&self) -> bool {
        matches!(self, Check::ForgedDigest { .. } | Check::ForgedMetric { .. })
    }
}

/// Compare a validator's revealed `report` with the model's re-evaluation on G (`g_metric` in
/// the contract's fixed point, `g_digest`), allowing the coalition's `tolerance`.
pub fn check_report(report: Option<&Report>, g_metric: i64, g_digest: H256, tolerance: u32) -> Check {
    match report.map(|report| &report.verdict) {
        None => Check::Silent,
        Some(Verdict::Refused(_)) => Check::Refused,
        Some(Verdict::Scored(Scores { g_digest: revealed, .. })) if *revealed != g_digest => {
            Check::ForgedDigest { revealed: *revealed }
        }
        Some(Verdict::Scored(Scores { g_metric: revealed, .. })) => {
            if i128::from(*revealed).abs_diff(i128::from(g_metric)) > u128::from(tolerance) {
                Check::ForgedMetric { revealed: *revealed }
            } else {
                Check::Matches
            }
        }
    }
}

/// Whether a block's recorded `performance` is what its model does on G (`g_metric`, in the
/// contract's fixed point), within the coalition's `tolerance`: the recorded number is the
/// median G metric of the reports that shared the majority's digest, so an honest majority
/// records the model's own G metric.
pub fn check_recorded(performance: i64, g_metric: i64, tolerance: u32) -> bool {
    i128::from(performance).abs_diff(i128::from(g_metric)) <= u128::from(tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tclearn_client::coalition::Refusal;

    fn scored(g_metric: i64, digest: u8) -> Option<Report> {
        let scores = Scores { g_metric, g_digest: H256::repeat_byte(digest), l_keeps: true, l_size: 0 };
        Some(Report { round: 1, candidate: H256::repeat_byte(9), verdict: Verdict::Scored(scores) })
    }

    #[test]
    fn a_report_matches_the_re_evaluation_or_is_a_forgery_by_digest_or_metric() {
        let digest = H256::repeat_byte(7);
        assert_eq!(check_report(scored(900_000, 7).as_ref(), 900_000, digest, 0), Check::Matches);
        assert_eq!(
            check_report(scored(900_500, 7).as_ref(), 900_000, digest, 500),
            Check::Matches,
            "within the tolerance"
        );
        assert_eq!(
            check_report(scored(900_501, 7).as_ref(), 900_000, digest, 500),
            Check::ForgedMetric { revealed: 900_501 }
        );
        assert_eq!(
            check_report(scored(899_499, 7).as_ref(), 900_000, digest, 500),
            Check::ForgedMetric { revealed: 899_499 }
        );
        let forged = check_report(scored(900_000, 8).as_ref(), 900_000, digest, 500);
        assert_eq!(forged, Check::ForgedDigest { revealed: H256::repeat_byte(8) });
        assert!(forged.is_forged());
        assert_eq!(
            check_report(scored(i64::MIN, 7).as_ref(), i64::MAX, digest, u32::MAX),
            Check::ForgedMetric { revealed: i64::MIN },
            "no overflow"
        );
        let refused = Report { round: 1, candidate: H256::zero(), verdict: Verdict::Refused(Refusal::ModelRefused) };
        assert_eq!(check_report(Some(&refused), 900_000, digest, 0), Check::Refused);
        assert_eq!(check_report(None, 900_000, digest, 0), Check::Silent);
        assert!(!Check::Refused.is_forged() && !Check::Silent.is_forged() && !Check::Matches.is_forged());
    }

    #[test]
    fn the_recorded_performance_is_the_models_g_metric() {
        assert!(check_recorded(850_000, 850_000, 0));
        assert!(check_recorded(850_400, 850_000, 500) && !check_recorded(850_501, 850_000, 500));
        // The capture before L was a vote: 0.999998 recorded where G said 0.85.
        assert!(!check_recorded(999_998, 850_000, 0));
        assert!(!check_recorded(i64::MIN, i64::MAX, u32::MAX), "no overflow");
    }
}

//! One evaluation: check a candidate, run it over a test set in batches, score it with the
//! coalition's metric and digest its predictions.
//!
//! How outputs become predictions: for classification metrics, the predicted class is the
//! argmax of each row (or `p >= 0.5` for a single output) and ROC AUC scores are the
//! probability of class 1 (the second column, or the only one); regression and mask metrics
//! take the outputs as they are, masks thresholded at 0.5. Inputs are read batch by batch;
//! outputs are kept until the end (they are as large as the targets, already in memory).

use crate::{
    digest::{self, DigestError},
    engine::{Engine, EngineError},
    metrics::{self, MetricError},
    testset::{TestSet, TestSetError},
};
use coalition_types::{rules, EvaluationSpec, Refusal as ChainRefusal};
use serde::Serialize;
use std::time::Instant;
use tclearn_model::hash::model_hash;
use tclearn_model::{
    checks::{self as model, Refusal},
    genesis::{Declaration, DigestRule, Hash, Metric},
};

/// Why an evaluation did not produce a score.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The model breaks the coalition's rules.
    #[error("model refused: {0}")]
    Refused(#[from] Refusal),
    /// The test set could not be read.
    #[error("test set: {0}")]
    TestSet(#[from] TestSetError),
    /// The test set is not the one the coalition declared.
    #[error("test set hash {found} is not the coalition's {expected}")]
    TestSetHash {
        /// Declared.
        expected: Hash,
        /// Found.
        found: Hash,
    },
    /// The test set does not fit the model's signature.
    #[error("test set samples are {found:?} but the coalition's input is {declared:?}")]
    Shape {
        /// One sample's shape in the set.
        found: Vec<usize>,
        /// The declared input dimensions after the batch.
        declared: Vec<Option<i64>>,
    },
    /// ONNX Runtime failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Outputs do not fit the metric.
    #[error("outputs: {0}")]
    Outputs(String),
    /// The metric could not be computed.
    #[error("metric: {0}")]
    Metric(#[from] MetricError),
    /// The digest could not be taken.
    #[error("digest: {0}")]
    Digest(#[from] DigestError),
}

/// The report of one evaluation (what `oracle evaluate` prints).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// The metric.
    pub metric: Metric,
    /// Its value.
    pub value: f64,
    /// Its value in the contract's fixed point.
    pub fixed: i64,
    /// Digest of the predictions.
    pub digest: Hash,
    /// Samples evaluated.
    pub samples: usize,
    /// Wall time of the whole evaluation: checks, load, preprocessing, inference, metric, digest.
    pub seconds: f64,
    /// SHA3-256 of the model file (the candidate's parameter hash).
    pub model_hash: Hash,
    /// The model's architecture hash.
    pub architecture_hash: Hash,
    /// The test set's hash.
    pub test_set_hash: Hash,
}

/// A candidate that passed the model checks, loaded once to be scored on any number of sets.
pub struct Candidate {
    model: crate::engine::Model,
    architecture_hash: [u8; 32],
    model_hash: [u8; 32],
}

impl Candidate {
    /// Check `model_bytes` against `declaration` and load it.
    pub fn load(engine: &Engine, declaration: &Declaration, model_bytes: &[u8]) -> Result<Self, EvaluateError> {
        let checked = model::check(model_bytes, &declaration.policy())?;
        Ok(Self {
            model: engine.load_scoring(model_bytes, declaration.output_name.as_deref())?,
            architecture_hash: checked.architecture_hash,
            model_hash: model_hash(model_bytes),
        })
    }

    /// Score the candidate on `set`, which must hash to `expected_hash` when one is given.
    /// `seconds` counts from `started`.
    pub fn score_set(
        &mut self,
        declaration: &Declaration,
        set: &TestSet,
        expected_hash: Option<Hash>,
        started: Instant,
    ) -> Result<Evaluation, EvaluateError> {
        if let Some(expected) = expected_hash.filter(|expected| expected.0 != set.hash) {
            return Err(EvaluateError::TestSetHash { expected, found: Hash(set.hash) });
        }
        ensure_fits(declaration, set)?;
        let batch = declaration.batch_size.max(1);
        let mut outputs = Vec::new();
        let mut width = 0;
        for start in (0..set.samples).step_by(batch) {
            let inputs = set.inputs(start..start + batch)?;
            let predictions = self.model.run_batch(&inputs, &set.sample_shape)?;
            width = predictions.width;
            outputs.extend_from_slice(&predictions.values);
        }
        let (value, digest) = assess(declaration, &outputs, width, set, &self.model_hash)?;
        Ok(Evaluation {
            metric: declaration.metric,
            value,
            fixed: metrics::to_fixed(value),
            digest: Hash(digest),
            samples: set.samples,
            seconds: started.elapsed().as_secs_f64(),
            model_hash: Hash(self.model_hash),
            architecture_hash: Hash(self.architecture_hash),
            test_set_hash: Hash(set.hash),
        })
    }
}

/// The metric and the digest of a model's `outputs` (rows of `width`) on `set`, by the
/// declaration's rules. The digest comes first: a near tie refuses the candidate whatever its
/// metric.
pub fn assess(
    declaration: &Declaration,
    outputs: &[f32],
    width: usize,
    set: &TestSet,
    model_hash: &[u8; 32],
) -> Result<(f64, [u8; 32]), EvaluateError> {
    let margin = declaration.tie_margin;
    let digest = match declaration.digest_rule() {
        DigestRule::Labels => digest::labels_digest(&digest::predicted_labels(outputs, width, margin)?),
        DigestRule::Mask => digest::labels_digest(&digest::mask_labels(outputs, margin)?),
        DigestRule::Evaluated => digest::evaluated_digest(model_hash, &set.hash, outputs)?,
        DigestRule::Rounded { decimals } => digest::rounded_digest(outputs, decimals)?,
    };
    Ok((score(declaration.metric, outputs, width, set)?, digest))
}

/// Evaluate `model_bytes` on `set` as `declaration` says (the set must be the declared one).
pub fn evaluate(
    engine: &Engine,
    declaration: &Declaration,
    model_bytes: &[u8],
    set: &TestSet,
) -> Result<Evaluation, EvaluateError> {
    let started = Instant::now();
    Candidate::load(engine, declaration, model_bytes)?.score_set(declaration, set, declaration.test_set_hash, started)
}

/// The set's samples have the shape of the declared input (after the batch dimension).
pub fn ensure_fits(declaration: &Declaration, set: &TestSet) -> Result<(), EvaluateError> {
    let declared = declaration.input.dims.get(1..).unwrap_or_default();
    let fits = declared.len() == set.sample_shape.len()
        && declared.iter().zip(&set.sample_shape).all(|(d, s)| d.is_none_or(|d| d == *s as i64));
    if fits {
        Ok(())
    } else {
        Err(EvaluateError::Shape { found: set.sample_shape.clone(), declared: declared.to_vec() })
    }
}

/// This validator's votes, by the contract's own rules (`coalition_types::rules`): whether the
/// candidate's G metric keeps the lambda rule against the lineage's best performance `best`
/// (the contract recomputes it from the recorded G), and whether its view of G and this
/// validator's L (`local`: metric and size) keeps it too, L weighing at most as much as G
/// (`rules::local_vote`; `true` without a local set). The second is the report's `l_keeps`.
pub fn finding(
    g_metric: i64,
    local: Option<(i64, u32)>,
    best: i64,
    lambda_ppm: u32,
    spec: &EvaluationSpec,
) -> (bool, bool) {
    let g_keeps = rules::keeps_performance(g_metric, best, lambda_ppm, spec.higher_is_better, spec.metric_tolerance);
    let l_keeps =
        local.is_none_or(|(l_metric, l_size)| rules::local_vote(g_metric, l_metric, l_size, spec, best, lambda_ppm));
    (g_keeps, l_keeps)
}

/// Whose fault a failed evaluation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The candidate's: every honest validator meets it, so it is reported on chain as a
    /// refusal (a reject vote with its reason).
    Candidate(ChainRefusal),
    /// This validator's own (its files, its memory, its configuration): never a vote. The
    /// evaluation is tried again later, and the operator told.
    Validator,
}

/// Whose fault `error` is. Only what the candidate's bytes decide is the candidate's: the model
/// checks, ONNX Runtime refusing the graph or its run, outputs of the wrong width, NaN or
/// infinite outputs. A test set that does not read or hash as declared, an allocation failure
/// and anything the declaration makes impossible are the validator's.
pub fn fault_of(error: &EvaluateError) -> Fault {
    match error {
        EvaluateError::Refused(_) => Fault::Candidate(ChainRefusal::ModelRefused),
        EvaluateError::Digest(DigestError::NotFinite { .. } | DigestError::OutOfRange { .. })
        | EvaluateError::Metric(MetricError::NotFinite) => Fault::Candidate(ChainRefusal::NonFiniteOutputs),
        EvaluateError::Digest(DigestError::NearTie { .. }) | EvaluateError::Outputs(_) => {
            Fault::Candidate(ChainRefusal::ModelRefused)
        }
        EvaluateError::Engine(EngineError::Runtime(reason)) if is_resource_exhaustion(reason) => Fault::Validator,
        EvaluateError::Engine(EngineError::Runtime(_) | EngineError::Signature(_)) => {
            Fault::Candidate(ChainRefusal::ModelRefused)
        }
        EvaluateError::Engine(
            EngineError::Library { .. } | EngineError::Version { .. } | EngineError::Ragged { .. },
        )
        | EvaluateError::TestSet(_)
        | EvaluateError::TestSetHash { .. }
        | EvaluateError::Shape { .. }
        | EvaluateError::Metric(_)
        | EvaluateError::Digest(DigestError::TooPrecise(_)) => Fault::Validator,
    }
}

/// Whose fault `error` is when the evaluation ran within the coalition's declared limits (in
/// the oracle's sandboxed child): running out of memory there is the candidate's fault, since
/// every validator gives it the same memory.
pub fn fault_of_within_limits(error: &EvaluateError) -> Fault {
    match error {
        EvaluateError::Engine(EngineError::Runtime(reason)) if is_resource_exhaustion(reason) => {
            Fault::Candidate(ChainRefusal::ModelRefused)
        }
        _ => fault_of(error),
    }
}

/// Whether ONNX Runtime's message says the host ran out of something (memory, threads), which
/// is not the candidate's fault on its face: a candidate whose size makes it so is stopped by
/// the declared limits before it gets there.
fn is_resource_exhaustion(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    ["bad_alloc", "failed to allocate", "out of memory", "resource temporarily unavailable"]
        .iter()
        .any(|needle| reason.contains(needle))
}

/// The predicted class of each row of `width` outputs: the argmax of the row (the first on
/// exact ties), or `p >= 0.5` for one output per row; no tie margin (that is the digest's).
pub fn predicted_labels(outputs: &[f32], width: usize) -> Result<Vec<u32>, EvaluateError> {
    match width {
        0 => Err(EvaluateError::Outputs("no outputs".into())),
        // With no margin, no row is a near tie.
        _ => Ok(digest::predicted_labels(outputs, width, 0.0)?),
    }
}

/// The metric of `outputs` (rows of `width`) against the set's targets.
pub fn score(metric: Metric, outputs: &[f32], width: usize, set: &TestSet) -> Result<f64, EvaluateError> {
    let as_f64 = |values: &[f32]| values.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>();
    let same_width = || {
        if width == set.target_width {
            Ok(())
        } else {
            Err(EvaluateError::Outputs(format!("{width} outputs per sample for {} targets", set.target_width)))
        }
    };
    Ok(match metric {
        Metric::Accuracy | Metric::BalancedAccuracy | Metric::F1 => {
            let truth = set.labels()?;
            let predicted = predicted_labels(outputs, width)?;
            match metric {
                Metric::Accuracy => metrics::accuracy(&truth, &predicted)?,
                Metric::BalancedAccuracy => metrics::balanced_accuracy(&truth, &predicted)?,
                _ => metrics::f1(&truth, &predicted)?,
            }
        }
        Metric::RocAuc => {
            let column = match width {
                1 => 0,
                2 => 1,
                _ => {
                    return Err(EvaluateError::Outputs(format!("ROC AUC needs 1 or 2 outputs per sample, not {width}")))
                }
            };
            let scores: Vec<f64> = outputs.chunks(width).map(|row| f64::from(row[column])).collect();
            metrics::roc_auc(&set.labels()?, &scores)?
        }
        Metric::Mse | Metric::Mae | Metric::R2 => {
            same_width()?;
            let predicted = as_f64(outputs);
            match metric {
                Metric::Mse => metrics::mse(&set.targets, &predicted)?,
                Metric::Mae => metrics::mae(&set.targets, &predicted)?,
                _ => metrics::r2(&set.targets, &predicted)?,
            }
        }
        Metric::Dice | Metric::Iou => {
            same_width()?;
            let truth: Vec<bool> = set.targets.iter().map(|t| *t >= 0.5).collect();
            let predicted: Vec<bool> = outputs.iter().map(|p| *p >= 0.5).collect();
            if metric == Metric::Dice {
                metrics::dice(&truth, &predicted)?
            } else {
                metrics::iou(&truth, &predicted)?
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testset::ImageSpec;
    use std::path::{Path, PathBuf};
    use tclearn_model::{
        architectures::{train_logistic, Cnn, Dense},
        checks::TensorSpec,
    };

    fn datasets() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets")
    }

    fn engine() -> Engine {
        let library: PathBuf = std::env::var_os("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH").into();
        Engine::new(Some(&library), 2).unwrap()
    }

    fn declaration(metric: Metric, input: Vec<Option<i64>>, classes: i64) -> Declaration {
        let output = TensorSpec { dims: vec![None, Some(classes)] };
        Declaration { batch_size: 100, ..Declaration::new(metric, TensorSpec { dims: input }, output) }
    }

    #[test]
    fn the_votes_are_the_contracts_lambda_rule_and_local_view() {
        let spec = |metric: Metric, tolerance| EvaluationSpec {
            architecture_hash: Default::default(),
            test_set_hash: Default::default(),
            test_set_size: 100,
            metric,
            higher_is_better: metric.higher_is_better(),
            metric_tolerance: tolerance,
        };
        let accuracy = spec(Metric::Accuracy, 0);
        // L's view: (0.90·100 + 0.60·50) / 150 = 0.80, a loss of 0.04 from 0.84: within 5%.
        assert_eq!(finding(900_000, Some((600_000, 50)), 840_000, 950_000, &accuracy), (true, true));
        assert_eq!(finding(900_000, Some((600_000, 50)), 850_000, 950_000, &accuracy), (true, false));
        assert_eq!(finding(900_000, None, 940_000, 950_000, &accuracy), (true, true), "G alone");
        // An L of 10^7 weighs as G's 100: 0.45 from 0.9 and 0 on L, never L alone.
        assert_eq!(finding(900_000, Some((0, 10_000_000)), 900_000, 950_000, &accuracy), (true, false));
        assert_eq!(finding(700_000, Some((1_000_000, 10_000_000)), 900_000, 950_000, &accuracy), (false, false));
        // Errors: 5% more error kept, more degrades; a zero baseline keeps what the tolerance allows.
        assert_eq!(finding(105, None, 100, 950_000, &spec(Metric::Mse, 0)), (true, true));
        assert_eq!(finding(106, None, 100, 950_000, &spec(Metric::Mse, 0)), (false, true));
        assert_eq!(finding(3, None, 0, 950_000, &spec(Metric::Mse, 5)), (true, true));
    }

    #[test]
    fn only_what_the_candidate_decides_is_its_fault() {
        let candidate = |refusal| Fault::Candidate(refusal);
        assert_eq!(
            fault_of(&EvaluateError::Digest(DigestError::NotFinite { index: 3 })),
            candidate(ChainRefusal::NonFiniteOutputs)
        );
        assert_eq!(fault_of(&EvaluateError::Metric(MetricError::NotFinite)), candidate(ChainRefusal::NonFiniteOutputs));
        assert_eq!(fault_of(&EvaluateError::Outputs("no outputs".into())), candidate(ChainRefusal::ModelRefused));
        assert_eq!(
            fault_of(&EvaluateError::Refused(Refusal::Malformed("x".into()))),
            candidate(ChainRefusal::ModelRefused)
        );
        assert_eq!(
            fault_of(&EvaluateError::Engine(EngineError::Runtime("Invalid rank for input".into()))),
            candidate(ChainRefusal::ModelRefused)
        );
        assert_eq!(
            fault_of(&EvaluateError::Digest(DigestError::NearTie { row: 1 })),
            candidate(ChainRefusal::ModelRefused)
        );
        // The validator's own: a G replaced by another file, an unreadable image, no memory.
        let validator = [
            EvaluateError::TestSetHash { expected: Hash([1; 32]), found: Hash([2; 32]) },
            EvaluateError::TestSet(TestSetError::Format { path: "g/0/3.png".into(), reason: "not a PNG".into() }),
            EvaluateError::Engine(EngineError::Runtime(
                "Failed to allocate memory for requested buffer of size 8589934592".into(),
            )),
            EvaluateError::Engine(EngineError::Runtime("std::bad_alloc".into())),
            EvaluateError::Metric(MetricError::OneClass),
            EvaluateError::Shape { found: vec![29], declared: vec![Some(30)] },
        ];
        for error in validator {
            assert_eq!(fault_of(&error), Fault::Validator, "{error}");
        }
    }

    #[test]
    fn a_trained_model_on_breast_cancer_scores_what_an_independent_count_says() {
        let set = TestSet::open(&datasets().join("breast_cancer.csv"), None).unwrap();
        let labels = set.labels().unwrap();
        let features = set.inputs(0..set.samples).unwrap().into_owned();
        let mlp = train_logistic(&features, 30, &labels, 2, 200, 0.5);
        let onnx = mlp.to_onnx();
        let mut declared = declaration(Metric::Accuracy, vec![None, Some(30)], 2);
        declared.test_set_hash = Some(Hash(set.hash));
        let report = evaluate(&engine(), &declared, &onnx, &set).unwrap();

        let predicted: Vec<u32> = features
            .chunks(30)
            .map(|x| {
                let p = mlp.forward(x);
                u32::from(p[1] > p[0])
            })
            .collect();
        let correct = predicted.iter().zip(&labels).filter(|(p, t)| p == t).count();
        assert_eq!(report.samples, 569);
        assert_eq!(report.value, correct as f64 / 569.0);
        assert!(report.value > 0.95, "logistic regression on this set is about 0.98: {}", report.value);
        assert_eq!(report.digest, Hash(digest::labels_digest(&predicted)));
        assert_eq!(report.model_hash, Hash(model_hash(&onnx)));

        // ROC AUC from the same probabilities, and the batch size does not change anything.
        declared.metric = Metric::RocAuc;
        declared.batch_size = 7;
        let auc = evaluate(&engine(), &declared, &onnx, &set).unwrap();
        let scores: Vec<f64> = features.chunks(30).map(|x| f64::from(mlp.forward(x)[1])).collect();
        assert!((auc.value - metrics::roc_auc(&labels, &scores).unwrap()).abs() < 1e-9);
        assert_eq!(auc.digest, report.digest);

        declared.test_set_hash = Some(Hash([0; 32]));
        assert!(matches!(evaluate(&engine(), &declared, &onnx, &set), Err(EvaluateError::TestSetHash { .. })));
        let narrow = declaration(Metric::Accuracy, vec![None, Some(29)], 2);
        assert!(matches!(
            evaluate(&engine(), &narrow, &onnx, &set),
            Err(EvaluateError::Refused(Refusal::Signature(_)))
        ));
    }

    /// What a coalition of validators with these evaluations decides, by the contract's tally:
    /// each evaluation is one validator's report (or its refusal).
    fn verdict(spec: EvaluationSpec, previous: i64, reports: &[Result<Evaluation, EvaluateError>]) -> rules::Tally {
        use tclearn_client::{
            coalition::{Fraction, Report, Scores, Verdict},
            H256,
        };
        let reveals: Vec<rules::Reveal> = reports
            .iter()
            .map(|report| {
                let verdict = match report {
                    Ok(evaluation) => Verdict::Scored(Scores {
                        g_metric: evaluation.fixed,
                        g_digest: H256(evaluation.digest.0),
                        l_keeps: true,
                        l_size: 0,
                    }),
                    Err(error) => match fault_of(error) {
                        Fault::Candidate(refusal) => Verdict::Refused(refusal),
                        Fault::Validator => panic!("a validator fault: {error}"),
                    },
                };
                rules::Reveal { report: Report { round: 1, candidate: H256([7; 32]), verdict }, registered_l_size: 0 }
            })
            .collect();
        let validators = reveals.len() as u32;
        let rules =
            rules::TallyRules { spec, previous, lambda_ppm: 950_000, quorum: Fraction { num: 2, den: 3 }, validators };
        rules::tally(&rules, &reveals)
    }

    /// `model` evaluated by validators with 1, 2 and 4 threads, no and full graph optimisation,
    /// and batches of 1, 7, 64 and 256.
    fn on_every_host(declared: &Declaration, model: &[u8], set: &TestSet) -> Vec<Result<Evaluation, EvaluateError>> {
        use tclearn_model::genesis::Optimization;
        let mut reports = Vec::new();
        for threads in [1, 2, 4] {
            for optimization in [Optimization::Disable, Optimization::All] {
                let engine = Engine::new(Some(&PathBuf::from(std::env::var_os("ORT_DYLIB_PATH").unwrap())), threads)
                    .unwrap()
                    .with_optimization(optimization);
                for batch_size in [1, 7, 64, 256] {
                    let declared = Declaration { batch_size, ..declared.clone() };
                    reports.push(evaluate(&engine, &declared, model, set));
                }
            }
        }
        reports
    }

    fn spec_of(declared: &Declaration, set: &TestSet, tolerance: u32) -> EvaluationSpec {
        EvaluationSpec {
            architecture_hash: Default::default(),
            test_set_hash: tclearn_client::H256(set.hash),
            test_set_size: set.samples as u32,
            metric: declared.metric,
            higher_is_better: declared.metric.higher_is_better(),
            metric_tolerance: tolerance,
        }
    }

    #[test]
    fn honest_validators_agree_whatever_their_threads_optimisation_and_batches() {
        // A classifier on breast cancer: one label digest, one accuracy, on every host.
        let cancer = TestSet::open(&datasets().join("breast_cancer.csv"), None).unwrap();
        let features = cancer.inputs(0..cancer.samples).unwrap().into_owned();
        let classifier = train_logistic(&features, 30, &cancer.labels().unwrap(), 2, 200, 0.5).to_onnx();
        let declared = declaration(Metric::Accuracy, vec![None, Some(30)], 2);
        let reports = on_every_host(&declared, &classifier, &cancer);
        let tally = verdict(spec_of(&declared, &cancer, 0), 900_000, &reports);
        assert_eq!((tally.rejection, tally.counted, tally.accepts), (None, 24, 24), "{tally:?}");
        assert!(tally.findings.iter().all(|f| f.deviation.is_none()));

        // A regressor on diabetes, outputs at the targets' scale (25 to 346), where float32 noise
        // moves outputs at their 4th decimal: the digest names what was evaluated and the MSE
        // agrees within a tolerance of 0.001.
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(datasets().join("diabetes_data_raw.csv.gz"), dir.path().join("features.csv.gz")).unwrap();
        std::fs::copy(datasets().join("diabetes_target.csv.gz"), dir.path().join("targets.csv.gz")).unwrap();
        let diabetes = TestSet::open(dir.path(), None).unwrap();
        let values = |n: usize, seed: usize, scale: f32| -> Vec<f32> {
            (0..n).map(|i| (((i + seed) * 7919 % 211) as f32 - 105.0) * scale).collect()
        };
        let regressor = tclearn_model::architectures::Mlp {
            hidden: Some(Dense { inputs: 10, outputs: 32, weights: values(320, 1, 1e-3), bias: values(32, 2, 1e-2) }),
            output: Dense { inputs: 32, outputs: 1, weights: values(32, 3, 1e-2), bias: vec![150.0] },
        };
        let onnx = regressor.to_regressor_onnx();
        let declared = declaration(Metric::Mse, vec![None, Some(10)], 1);
        let reports = on_every_host(&declared, &onnx, &diabetes);
        let outputs: Vec<i64> = reports.iter().map(|r| r.as_ref().unwrap().fixed).collect();
        let spread = outputs.iter().max().unwrap() - outputs.iter().min().unwrap();
        let tally = verdict(spec_of(&declared, &diabetes, 1_000), i64::MAX / 4, &reports);
        assert_eq!((tally.rejection, tally.counted), (None, 24), "{tally:?}; MSE spread {spread} ppm");
        assert!(tally.findings.iter().all(|f| f.deviation.is_none()));
        // Another CPU: the same network with its float32 sums in another order, as other
        // kernels (AVX-512, NEON) may add. Its outputs differ in their last bits; half the hosts
        // are such CPUs, and the coalition still agrees.
        let x = diabetes.inputs(0..diabetes.samples).unwrap().into_owned();
        let other_cpu: Vec<f32> = x.chunks(10).map(|row| regress_summing_backwards(&regressor, row)).collect();
        let model_hash = model_hash(&onnx);
        let (value, digest) = assess(&declared, &other_cpu, 1, &diabetes, &model_hash).unwrap();
        let here = reports[0].as_ref().unwrap();
        let there = Evaluation { value, fixed: metrics::to_fixed(value), digest: Hash(digest), ..here.clone() };
        let mixed: Vec<_> = (0..6).map(|i| if i % 2 == 0 { Ok(here.clone()) } else { Ok(there.clone()) }).collect();
        let tally = verdict(spec_of(&declared, &diabetes, 1_000), i64::MAX / 4, &mixed);
        assert_eq!((tally.rejection, tally.counted), (None, 6), "{tally:?}");
        // Under the former default, outputs rounded to 4 decimals, the two CPUs disagree.
        let rounded = Declaration { digest: Some(DigestRule::Rounded { decimals: 4 }), ..declared.clone() };
        let (_, digest_here) = assess(&rounded, &ort_outputs(&onnx, &diabetes), 1, &diabetes, &model_hash).unwrap();
        let (_, digest_there) = assess(&rounded, &other_cpu, 1, &diabetes, &model_hash).unwrap();
        assert_ne!(digest_here, digest_there, "the rounding rule splits honest hosts");
        // The MSE itself is what an independent forward pass gives.
        let mse = x
            .chunks(10)
            .zip(&diabetes.targets)
            .map(|(x, t)| (f64::from(regressor.regress(x)[0]) - t).powi(2))
            .sum::<f64>()
            / diabetes.samples as f64;
        assert!((here.value - mse).abs() < 1e-3 * mse.max(1.0), "{} vs {mse}", here.value);

        // The classifier on the other CPU: the same labels, so the same digest.
        let model = train_logistic(&features, 30, &cancer.labels().unwrap(), 2, 200, 0.5);
        let other_cpu: Vec<f32> = features
            .chunks(30)
            .flat_map(|row| {
                let logits: Vec<f32> =
                    (0..2).map(|j| sum_backwards(row, &model.output.weights, 2, j) + model.output.bias[j]).collect();
                tclearn_model::architectures::softmax_row(&logits)
            })
            .collect();
        let declared = declaration(Metric::Accuracy, vec![None, Some(30)], 2);
        let (_, digest) = assess(&declared, &other_cpu, 2, &cancer, &[0; 32]).unwrap();
        assert_eq!(Hash(digest), on_every_host(&declared, &classifier, &cancer)[0].as_ref().unwrap().digest);
    }

    /// `Σ x[i]·w[i][j]` over a row-major `x.len() × width` matrix, summed from the last term.
    fn sum_backwards(x: &[f32], weights: &[f32], width: usize, j: usize) -> f32 {
        (0..x.len()).rev().fold(0.0f32, |sum, i| sum + x[i] * weights[i * width + j])
    }

    /// The regressor's output for one row with every sum taken backwards.
    fn regress_summing_backwards(model: &tclearn_model::architectures::Mlp, x: &[f32]) -> f32 {
        let hidden = model.hidden.as_ref().unwrap();
        let h: Vec<f32> = (0..hidden.outputs)
            .map(|j| (sum_backwards(x, &hidden.weights, hidden.outputs, j) + hidden.bias[j]).max(0.0))
            .collect();
        sum_backwards(&h, &model.output.weights, 1, 0) + model.output.bias[0]
    }

    /// The outputs ONNX Runtime gives for `model` on `set`.
    fn ort_outputs(model: &[u8], set: &TestSet) -> Vec<f32> {
        let mut loaded = engine().load(model).unwrap();
        loaded.predict(&set.inputs(0..set.samples).unwrap(), &set.sample_shape, 256).unwrap().values
    }

    #[test]
    fn a_candidate_built_on_its_decision_boundary_is_refused_on_every_host() {
        // Two classes whose weights differ by one part in ten million: every sample's
        // probabilities are equal to the last bits, so the label is the host's rounding.
        let set = TestSet::open(&datasets().join("breast_cancer.csv"), None).unwrap();
        let weights: Vec<f32> = (0..60).map(|i| if i % 2 == 0 { 1e-3 } else { 1e-3 * (1.0 + 1e-7) }).collect();
        let tie = tclearn_model::architectures::Mlp {
            hidden: None,
            output: Dense { inputs: 30, outputs: 2, weights, bias: vec![0.0, 0.0] },
        };
        let declared = declaration(Metric::Accuracy, vec![None, Some(30)], 2);
        let reports = on_every_host(&declared, &tie.to_onnx(), &set);
        for report in &reports {
            assert!(matches!(report, Err(EvaluateError::Digest(DigestError::NearTie { .. }))), "{report:?}");
        }
        let tally = verdict(spec_of(&declared, &set, 0), 0, &reports);
        assert_eq!(tally.rejection, Some(coalition_types::Rejection::Refused), "rejected, never accepted: {tally:?}");
    }

    #[test]
    fn a_scikit_learn_model_exported_by_skl2onnx_scores_what_scikit_learn_said() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/sklearn");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json")).unwrap()).unwrap();
        let set = TestSet::open(&datasets().join("breast_cancer.csv"), None).unwrap();
        let mut declared = declaration(Metric::Accuracy, vec![None, Some(30)], 2);
        declared.output_name = Some("probabilities".into());
        for seed in [0, 1] {
            let name = format!("sklearn_mlp_seed{seed}.onnx");
            let bytes = std::fs::read(fixtures.join(&name)).unwrap();
            let report = evaluate(&engine(), &declared, &bytes, &set).unwrap();
            let accuracy = expected[&name]["accuracy"].as_f64().unwrap();
            assert!(
                (report.value - accuracy).abs() < 0.5 / 569.0,
                "{name}: {} vs scikit-learn's {accuracy}",
                report.value
            );
            let mut model = engine().load_scoring(&bytes, Some("probabilities")).unwrap();
            let first = model.run_batch(&set.inputs(0..1).unwrap(), &set.sample_shape).unwrap();
            for (ours, theirs) in first.values.iter().zip(expected[&name]["probability_row0"].as_array().unwrap()) {
                assert!((f64::from(*ours) - theirs.as_f64().unwrap()).abs() < 1e-5, "{name}: {:?}", first.values);
            }
        }
    }

    /// The first `count` digits (8×8, values 0..16) and their labels.
    fn digits(count: usize) -> (Vec<[u8; 64]>, Vec<u32>) {
        let set = TestSet::open(&datasets().join("digits.csv.gz"), None).unwrap();
        let pixels = set.inputs(0..count).unwrap();
        let images = pixels.chunks(64).map(|p| std::array::from_fn(|i| (p[i] * 255.0 / 16.0).round() as u8)).collect();
        (images, set.labels().unwrap()[..count].to_vec())
    }

    fn write_png(path: &Path, pixels: &[u8], side: usize) {
        use zune_core::{bit_depth::BitDepth, colorspace::ColorSpace, options::EncoderOptions};
        let options = EncoderOptions::new(side, side, ColorSpace::Luma, BitDepth::Eight);
        let mut bytes = Vec::new();
        zune_png::PngEncoder::new(pixels, options).encode(&mut bytes).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_cnn_on_an_image_folder_scores_what_an_independent_forward_pass_says() {
        let (images, labels) = digits(120);
        let dir = tempfile::tempdir().unwrap();
        let classes: Vec<String> = (0..10).map(|d| format!("digit{d}")).collect();
        for class in &classes {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        for (i, (image, label)) in images.iter().zip(&labels).enumerate() {
            write_png(&dir.path().join(&classes[*label as usize]).join(format!("{i:04}.png")), image, 8);
        }
        let spec =
            ImageSpec { height: 8, width: 8, channels: 1, mean: vec![0.5], std: vec![0.25], classes: classes.clone() };
        let set = TestSet::open(dir.path(), Some(&spec)).unwrap();
        assert_eq!((set.samples, set.sample_shape.as_slice()), (120, &[1, 8, 8][..]));

        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n).map(|i| (((i + seed) * 7919 % 211) as f32 - 105.0) / 400.0).collect()
        };
        let cnn = Cnn {
            channels: 1,
            height: 8,
            width: 8,
            filters: 4,
            kernel: values(36, 1),
            kernel_bias: values(4, 2),
            dense: Dense { inputs: 64, outputs: 10, weights: values(640, 3), bias: values(10, 4) },
        };
        let mut declared = declaration(Metric::Accuracy, vec![None, Some(1), Some(8), Some(8)], 10);
        declared.image = Some(spec);
        declared.batch_size = 32;
        let report = evaluate(&engine(), &declared, &cnn.to_onnx(), &set).unwrap();
        // Decoded once and kept (as the evaluating child keeps G): the same tensors.
        let decoded = set.clone().decoded().unwrap();
        assert_eq!(decoded.inputs(0..120).unwrap(), set.inputs(0..120).unwrap());
        assert_eq!(evaluate(&engine(), &declared, &cnn.to_onnx(), &decoded).unwrap().digest, report.digest);

        // Independently: files in class then name order, pixels normalised by hand (8×8 to 8×8
        // is the identity resize).
        let mut order: Vec<usize> = (0..images.len()).collect();
        order.sort_by_key(|i| (labels[*i], *i));
        let predicted: Vec<u32> = order
            .iter()
            .map(|i| {
                let x: Vec<f32> = images[*i].iter().map(|p| (f32::from(*p) / 255.0 - 0.5) / 0.25).collect();
                crate::digest::argmax_rows(&cnn.forward(&x), 10).unwrap()[0]
            })
            .collect();
        let truth: Vec<u32> = order.iter().map(|i| labels[*i]).collect();
        let correct = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
        assert_eq!(report.value, correct as f64 / 120.0);
        assert_eq!(report.digest, Hash(digest::labels_digest(&predicted)));
    }
}

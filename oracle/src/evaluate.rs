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
    genesis::{Declaration, DigestRule, Hash, Metric},
    metrics::{self, MetricError},
    model::{self, Refusal},
    testset::{TestSet, TestSetError},
};
use serde::Serialize;
use sha3::{Digest, Sha3_256};
use tclearn_client::coalition::{rules, EvaluationSpec, Refusal as ChainRefusal};
use std::time::Instant;

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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// SHA3-256 of a model file: the hash a candidate is proposed and fetched under.
pub fn model_hash(bytes: &[u8]) -> [u8; 32] {
    Sha3_256::digest(bytes).into()
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
            model: engine.load(model_bytes)?,
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
        let value = score(declaration.metric, &outputs, width, set)?;
        let digest = match declaration.digest_rule() {
            DigestRule::Labels => digest::labels_digest(&predicted_labels(&outputs, width)?),
            DigestRule::Rounded { decimals } => digest::rounded_digest(&outputs, decimals)?,
        };
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

/// This validator's finding and vote, by the contract's own rules (`coalition_types::rules`):
/// G merged with this validator's L by size, and whether that keeps the parent block's
/// performance. `None` when both sets are empty. The contract recomputes both from the report.
pub fn finding(g_metric: i64, g_size: u32, local: Option<(i64, u32)>, previous: i64, lambda_ppm: u32, spec: &EvaluationSpec) -> Option<(i64, bool)> {
    let (l_metric, l_size) = local.unwrap_or((0, 0));
    let view = rules::merge(g_metric, g_size, l_metric, l_size)?;
    let keeps = rules::keeps_performance(view, previous, lambda_ppm, spec.higher_is_better, spec.metric_tolerance);
    Some((view, keeps))
}

/// What a failed evaluation reports on chain: the candidate's own fault.
pub fn refusal_of(error: &EvaluateError) -> ChainRefusal {
    match error {
        EvaluateError::Digest(DigestError::NotFinite { .. }) | EvaluateError::Metric(MetricError::NotFinite) => {
            ChainRefusal::NonFiniteOutputs
        }
        _ => ChainRefusal::ModelRefused,
    }
}

/// The predicted class of each row of `width` outputs.
pub fn predicted_labels(outputs: &[f32], width: usize) -> Result<Vec<u32>, EvaluateError> {
    match width {
        0 => Err(EvaluateError::Outputs("no outputs".into())),
        1 => outputs
            .iter()
            .enumerate()
            .map(|(index, p)| if p.is_finite() { Ok(u32::from(*p >= 0.5)) } else { Err(DigestError::NotFinite { index }.into()) })
            .collect(),
        _ => Ok(digest::argmax_rows(outputs, width)?),
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
                _ => return Err(EvaluateError::Outputs(format!("ROC AUC needs 1 or 2 outputs per sample, not {width}"))),
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
    use crate::{
        architectures::{train_logistic, Cnn, Dense},
        model::TensorSpec,
        testset::ImageSpec,
    };
    use std::path::{Path, PathBuf};

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
    fn the_finding_is_the_contracts_merge_and_lambda_rule() {
        let spec = |metric: Metric, tolerance| EvaluationSpec {
            architecture_hash: Default::default(),
            test_set_hash: Default::default(),
            test_set_size: 100,
            metric,
            higher_is_better: metric.higher_is_better(),
            metric_tolerance: tolerance,
        };
        let accuracy = spec(Metric::Accuracy, 0);
        // (0.90·100 + 0.60·50) / 150 = 0.80, a loss of 0.04 from 0.84: within 5% of 0.84.
        assert_eq!(finding(900_000, 100, Some((600_000, 50)), 840_000, 950_000, &accuracy), Some((800_000, true)));
        assert_eq!(finding(900_000, 100, Some((600_000, 50)), 850_000, 950_000, &accuracy), Some((800_000, false)));
        assert_eq!(finding(900_000, 100, None, 940_000, 950_000, &accuracy), Some((900_000, true)), "G alone");
        // Errors: 5% more error kept, more degrades; a zero baseline keeps what the tolerance allows.
        assert_eq!(finding(105, 10, None, 100, 950_000, &spec(Metric::Mse, 0)), Some((105, true)));
        assert_eq!(finding(106, 10, None, 100, 950_000, &spec(Metric::Mse, 0)), Some((106, false)));
        assert_eq!(finding(3, 10, None, 0, 950_000, &spec(Metric::Mse, 5)), Some((3, true)));
        assert_eq!(finding(1, 0, None, 0, 950_000, &accuracy), None, "no samples, no finding");
    }

    #[test]
    fn evaluation_failures_are_reported_as_the_candidates_fault() {
        assert_eq!(refusal_of(&EvaluateError::Digest(DigestError::NotFinite { index: 3 })), ChainRefusal::NonFiniteOutputs);
        assert_eq!(refusal_of(&EvaluateError::Metric(MetricError::NotFinite)), ChainRefusal::NonFiniteOutputs);
        assert_eq!(refusal_of(&EvaluateError::Outputs("no outputs".into())), ChainRefusal::ModelRefused);
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
        assert!(matches!(evaluate(&engine(), &narrow, &onnx, &set), Err(EvaluateError::Refused(Refusal::Signature(_)))));
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
        let spec = ImageSpec { height: 8, width: 8, channels: 1, mean: vec![0.5], std: vec![0.25], classes: classes.clone() };
        let set = TestSet::open(dir.path(), Some(&spec)).unwrap();
        assert_eq!((set.samples, set.sample_shape.as_slice()), (120, &[1, 8, 8][..]));

        let values = |n: usize, seed: usize| -> Vec<f32> { (0..n).map(|i| (((i + seed) * 7919 % 211) as f32 - 105.0) / 400.0).collect() };
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

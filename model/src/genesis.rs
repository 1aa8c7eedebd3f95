//! The coalition's genesis declaration: what every validator must agree on to evaluate a
//! candidate the same way. The chain keeps the part the contract enforces (architecture hash,
//! G's hash and size, metric; [`Declaration::check_chain`] compares them); this file adds what
//! only the oracles need: the model signature and limits, the digest rule, image preprocessing
//! and the batch size. Founders publish it with the genesis model.
//!
//! ```json
//! {
//!   "metric": "accuracy",
//!   "input": { "dims": [null, 30] },
//!   "output": { "dims": [null, 2] },
//!   "architecture_hash": "0x…",
//!   "test_set_hash": "0x…"
//! }
//! ```
//! Everything else has a default: the digest rule (predicted labels for classification metrics,
//! outputs rounded to 4 decimals otherwise), opsets 13 to 21, 64 MiB models, batches of 256.

use crate::checks::{ModelPolicy, TensorSpec};
use coalition_types::EvaluationSpec;
pub use coalition_types::MetricKind as Metric;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::{Path, PathBuf};

/// The ONNX Runtime version every validator evaluates with by default: the one `ort` binds,
/// which `scripts/setup.sh` installs.
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// The default tie margin, relative to the size of the scores compared.
pub const DEFAULT_TIE_MARGIN: f32 = 1e-5;

/// Largest image side accepted, pixels.
const MAX_SIDE: usize = 4096;

/// How the coalition turns an image into a model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Height after resizing.
    pub height: usize,
    /// Width after resizing.
    pub width: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Mean of each channel, subtracted from values in `[0, 1]`.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel, divided by.
    pub std: Vec<f32>,
    /// Class subfolder names in label order; empty means name order.
    #[serde(default)]
    pub classes: Vec<String>,
}

impl ImageSpec {
    /// The declaration is usable.
    pub fn validate(&self) -> core::result::Result<(), String> {
        if !(1..=MAX_SIDE).contains(&self.height) || !(1..=MAX_SIDE).contains(&self.width) {
            return Err(format!("image size {}x{} is outside 1..={MAX_SIDE}", self.height, self.width));
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(format!("{} channels; 1 or 3 are supported", self.channels));
        }
        if self.mean.len() != self.channels || self.std.len() != self.channels {
            return Err(format!("mean and std need one value per channel ({})", self.channels));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || self.mean.iter().any(|m| !m.is_finite()) {
            return Err("std must be positive and finite, mean finite".into());
        }
        Ok(())
    }
}

/// Most inputs a [`Standardisation`] may list.
pub const MAX_STANDARDISED_INPUTS: usize = 1 << 20;

/// How the genesis model standardises its inputs: each input `x` becomes `(x − centre) /
/// half-width` of a public range `[low, high]` the founders declare, so that the values a model
/// sees lie about in `[−1, 1]`.
///
/// The ranges are public constants (a data dictionary, a device's specification, a published
/// dataset's description), never statistics of any member's rows: a genesis model is public to
/// every member, and a per-feature mean and deviation of the founder's patients would be a
/// release of their data outside any privacy accounting. The declaration records them and their
/// source, so that every founder can see what the genesis carries.
///
/// ```json
/// { "source": "the dataset's data dictionary",
///   "ranges": [{ "name": "radius (mean)", "low": 6.981, "high": 28.11 }, …] }
/// ```
/// One range per input, in the model's input order; or one range for every input (an image's
/// pixels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standardisation {
    /// Where the ranges come from.
    pub source: String,
    /// One range per input, or one for every input.
    pub ranges: Vec<InputRange>,
}

/// The public range of one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputRange {
    /// The input's name, for the reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Lowest value.
    pub low: f64,
    /// Highest value.
    pub high: f64,
}

/// How the genesis model was made (`tclearn model init`), so that anyone can make it again from
/// the declaration and the model's shape, and compare it byte for byte with the genesis on
/// chain: its weights then come from the seed alone, and its standardisation from the declared
/// ranges alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisRecipe {
    /// The seed of the initial weights (`tclearn model init --seed`).
    pub seed: u64,
    /// The public ranges of the inputs.
    pub standardisation: Standardisation,
}

impl Standardisation {
    /// Read and validate a standardisation file.
    ///
    /// # Errors
    /// [`GenesisError::Io`], [`GenesisError::Parse`], [`GenesisError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io { path: path.into(), source })?;
        let parse = |reason: String| GenesisError::Parse { path: path.into(), reason };
        let standardisation: Self = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        standardisation.validate().map_err(|e| parse(e.to_string()))?;
        Ok(standardisation)
    }

    /// A source is named, and every range is finite, not empty, and within `f32`.
    ///
    /// # Errors
    /// [`GenesisError::Invalid`], naming the first bad range.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let invalid = |reason: String| Err(GenesisError::Invalid(format!("standardisation: {reason}")));
        if self.source.trim().is_empty() {
            return invalid("name the public source of the ranges".into());
        }
        if self.ranges.is_empty() || self.ranges.len() > MAX_STANDARDISED_INPUTS {
            return invalid(format!("{} ranges; 1 to {MAX_STANDARDISED_INPUTS}", self.ranges.len()));
        }
        let fits = |v: f64| v.is_finite() && v.abs() <= f64::from(f32::MAX) / 2.0;
        for (i, range) in self.ranges.iter().enumerate() {
            let scale = (2.0 / (range.high - range.low)) as f32;
            if !(fits(range.low) && fits(range.high) && range.low < range.high && scale.is_normal()) {
                let name = range.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                return invalid(format!(
                    "range {}{name} is [{:?}, {:?}]: it needs finite bounds, low below high, and a width neither too narrow nor too wide for f32",
                    i + 1,
                    range.low,
                    range.high
                ));
            }
        }
        Ok(())
    }

    /// The model's `(shift, scale)` for `inputs` inputs: `x ↦ (x − shift) · scale`, with `shift`
    /// each range's centre and `scale` one over its half-width.
    ///
    /// # Errors
    /// [`GenesisError::Invalid`]: the ranges are neither one nor `inputs`, or invalid.
    pub fn shift_scale(&self, inputs: usize) -> Result<(Vec<f32>, Vec<f32>), GenesisError> {
        self.validate()?;
        let ranges: Vec<&InputRange> = match self.ranges.as_slice() {
            [every] => vec![every; inputs],
            ranges if ranges.len() == inputs => ranges.iter().collect(),
            ranges => {
                return Err(GenesisError::Invalid(format!(
                    "standardisation: {} ranges for a model of {inputs} inputs (one per input, or one for all)",
                    ranges.len()
                )))
            }
        };
        Ok(ranges.into_iter().map(|r| (((r.low + r.high) / 2.0) as f32, (2.0 / (r.high - r.low)) as f32)).unzip())
    }
}

/// How the digest of the predictions on G is taken (`tclearn_evaluation::digest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum DigestRule {
    /// Over the predicted class of each sample (classification metrics' default).
    Labels,
    /// Over every output thresholded at 0.5 (masks' default: Dice, IoU).
    Mask,
    /// Over what was evaluated, not the outputs (regression's default): consistency rests on the
    /// G metric within the coalition's `metric_tolerance`, which must then be above zero.
    Evaluated,
    /// Over every output rounded to `decimals` decimals: honest hosts disagree whenever an output
    /// is within float noise of a rounding boundary (`tclearn_evaluation::digest`).
    Rounded {
        /// Decimal places kept.
        decimals: u32,
    },
}

/// A 32-byte hash written as `0x`-prefixed hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash(pub [u8; 32]);

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim_start_matches("0x"), &mut bytes)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not 32 bytes of hex: {e}")))?;
        Ok(Hash(bytes))
    }
}

/// How ONNX Runtime's graph optimisations are set: they fuse and reorder operations, which can
/// change the last bits of the outputs, so every validator uses the same level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimization {
    /// No graph optimisation.
    Disable,
    /// Constant folding and redundant node elimination.
    Basic,
    /// Basic and operator fusions.
    Extended,
    /// Everything, layout included (ONNX Runtime's default).
    All,
}

/// The inference runtime every validator runs: the part of its setup that can change outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSpec {
    /// The ONNX Runtime version (`major.minor.patch`), checked against the loaded library at
    /// start.
    #[serde(default = "default_runtime_version")]
    pub version: String,
    /// The graph optimisation level of every session.
    #[serde(default = "default_optimization")]
    pub optimization: Optimization,
}

impl Default for RuntimeSpec {
    fn default() -> Self {
        Self { version: default_runtime_version(), optimization: default_optimization() }
    }
}

fn default_runtime_version() -> String {
    ONNXRUNTIME_VERSION.into()
}
fn default_optimization() -> Optimization {
    Optimization::All
}

/// What one evaluation may use, the same for every validator (the oracle's sandbox): a candidate
/// that needs more is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationLimits {
    /// Address space of the evaluating process, MiB (ONNX Runtime and the sets included).
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Wall-clock seconds of one evaluation (G and L); CPU time is this times the threads.
    #[serde(default = "default_seconds")]
    pub seconds: u64,
}

impl Default for EvaluationLimits {
    fn default() -> Self {
        Self { memory_mib: default_memory_mib(), seconds: default_seconds() }
    }
}

fn default_memory_mib() -> u64 {
    4096
}
fn default_seconds() -> u64 {
    300
}

/// The declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// The metric.
    pub metric: Metric,
    /// The digest rule; by default labels for classification, 4 decimals otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestRule>,
    /// The model's one input.
    pub input: TensorSpec,
    /// The scored output.
    pub output: TensorSpec,
    /// The scored output's name, for models with several outputs (scikit-learn's classifiers
    /// export a label and the probabilities: name the probabilities, exported with
    /// `zipmap=False`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_name: Option<String>,
    /// Lowest standard opset accepted.
    #[serde(default = "default_min_opset")]
    pub min_opset: i64,
    /// Highest standard opset accepted.
    #[serde(default = "default_max_opset")]
    pub max_opset: i64,
    /// Largest model file accepted, bytes.
    #[serde(default = "default_max_model_bytes")]
    pub max_model_bytes: u64,
    /// The genesis model's architecture hash ([`crate::checks`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture_hash: Option<Hash>,
    /// G's hash (`tclearn_evaluation::testset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_set_hash: Option<Hash>,
    /// Image preprocessing, for image sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// Samples per inference batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// How close two class scores (or a score and 0.5) may be before a sample is a near tie
    /// and the candidate refused, relative to the scores' size (`tclearn_evaluation::digest`).
    #[serde(default = "default_tie_margin")]
    pub tie_margin: f32,
    /// The ONNX Runtime version and settings.
    #[serde(default)]
    pub runtime: RuntimeSpec,
    /// What one evaluation may use.
    #[serde(default)]
    pub limits: EvaluationLimits,
    /// How the genesis model was made: its seed and the public ranges of its inputs, declared
    /// by the founders (`tclearn found --standardisation --seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<GenesisRecipe>,
}

fn default_tie_margin() -> f32 {
    DEFAULT_TIE_MARGIN
}

fn default_min_opset() -> i64 {
    13
}
fn default_max_opset() -> i64 {
    21
}
fn default_max_model_bytes() -> u64 {
    64 << 20
}
fn default_batch_size() -> usize {
    256
}

/// Why a declaration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a declaration.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value is unusable.
    #[error("genesis declaration: {0}")]
    Invalid(String),
    /// The chain says otherwise.
    #[error("the declaration's {field} is {declared} but the coalition on chain has {on_chain}")]
    ChainMismatch {
        /// Which field.
        field: &'static str,
        /// In the file.
        declared: String,
        /// On chain.
        on_chain: String,
    },
}

impl Declaration {
    /// A declaration of `metric` for models from `input` to `output`, every other field at its
    /// default and no hashes.
    pub fn new(metric: Metric, input: TensorSpec, output: TensorSpec) -> Self {
        Self {
            metric,
            digest: None,
            input,
            output,
            output_name: None,
            min_opset: default_min_opset(),
            max_opset: default_max_opset(),
            max_model_bytes: default_max_model_bytes(),
            architecture_hash: None,
            test_set_hash: None,
            image: None,
            batch_size: default_batch_size(),
            tie_margin: default_tie_margin(),
            runtime: RuntimeSpec::default(),
            limits: EvaluationLimits::default(),
            recipe: None,
        }
    }

    /// Read and validate a declaration file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io { path: path.into(), source })?;
        let declaration: Self = serde_json::from_str(&text)
            .map_err(|e| GenesisError::Parse { path: path.into(), reason: e.to_string() })?;
        declaration.validate()?;
        Ok(declaration)
    }

    /// The values are usable together.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let invalid = |reason: String| Err(GenesisError::Invalid(reason));
        if self.min_opset > self.max_opset {
            return invalid(format!("opset range {}..={} is empty", self.min_opset, self.max_opset));
        }
        if self.batch_size == 0 {
            return invalid("batch_size must be at least 1".into());
        }
        if self.input.dims.first() != Some(&None) || self.output.dims.first() != Some(&None) {
            return invalid("the first dimension of input and output is the batch and must be null".into());
        }
        if self.limits.memory_mib < 64 || self.limits.seconds == 0 {
            return invalid(format!(
                "limits of {} MiB and {} s leave no room to evaluate (at least 64 MiB and 1 s)",
                self.limits.memory_mib, self.limits.seconds
            ));
        }
        if !(0.0..0.5).contains(&self.tie_margin) {
            return invalid(format!("tie_margin {} is outside [0, 0.5)", self.tie_margin));
        }
        if self.runtime.version.split('.').count() != 3
            || self.runtime.version.split('.').any(|p| p.parse::<u32>().is_err())
        {
            return invalid(format!("runtime version {:?} is not major.minor.patch", self.runtime.version));
        }
        if let Some(DigestRule::Rounded { decimals }) = self.digest {
            if decimals > 15 {
                return invalid(format!("{decimals} decimals is beyond f64 precision (at most 15)"));
            }
        }
        if let Some(recipe) = &self.recipe {
            recipe.standardisation.validate()?;
            let sizes = self.input.dims.get(1..).unwrap_or_default();
            let inputs = sizes.iter().try_fold(1usize, |n, d| n.checked_mul(usize::try_from((*d)?).ok()?));
            let ranges = recipe.standardisation.ranges.len();
            if ranges != 1 && Some(ranges) != inputs {
                return invalid(format!("{ranges} standardisation ranges for inputs {:?}", self.input.dims));
            }
        }
        if let Some(image) = &self.image {
            image.validate().map_err(GenesisError::Invalid)?;
            let expected = [Some(image.channels as i64), Some(image.height as i64), Some(image.width as i64)];
            if self.input.dims.get(1..) != Some(&expected[..]) {
                return invalid(format!("input {:?} does not take the declared images {expected:?}", self.input.dims));
            }
        }
        Ok(())
    }

    /// The digest rule in force: by default labels for classification, thresholded outputs for
    /// masks, and what was evaluated for regression.
    pub fn digest_rule(&self) -> DigestRule {
        self.digest.unwrap_or(match self.metric {
            _ if self.metric.is_classification() => DigestRule::Labels,
            Metric::Dice | Metric::Iou => DigestRule::Mask,
            _ => DigestRule::Evaluated,
        })
    }

    /// What the model checks require.
    pub fn policy(&self) -> ModelPolicy {
        ModelPolicy {
            max_bytes: self.max_model_bytes,
            min_opset: self.min_opset,
            max_opset: self.max_opset,
            input: self.input.clone(),
            output: self.output.clone(),
            output_name: self.output_name.clone(),
            architecture_hash: self.architecture_hash.map(|h| h.0),
        }
    }

    /// The declaration agrees with the coalition on chain; fills in the hashes it leaves out.
    pub fn check_chain(&mut self, spec: &EvaluationSpec) -> Result<(), GenesisError> {
        let mismatch =
            |field, declared: String, on_chain: String| Err(GenesisError::ChainMismatch { field, declared, on_chain });
        if self.metric != spec.metric {
            return mismatch("metric", format!("{:?}", self.metric), format!("{:?}", spec.metric));
        }
        if self.metric.higher_is_better() != spec.higher_is_better {
            return mismatch(
                "direction",
                self.metric.higher_is_better().to_string(),
                spec.higher_is_better.to_string(),
            );
        }
        let chain_architecture = Hash(spec.architecture_hash.0);
        match self.architecture_hash {
            Some(declared) if declared != chain_architecture => {
                return mismatch("architecture_hash", declared.to_string(), chain_architecture.to_string())
            }
            _ => self.architecture_hash = Some(chain_architecture),
        }
        let chain_test_set = Hash(spec.test_set_hash.0);
        match self.test_set_hash {
            Some(declared) if declared != chain_test_set => {
                return mismatch("test_set_hash", declared.to_string(), chain_test_set.to_string())
            }
            _ => self.test_set_hash = Some(chain_test_set),
        }
        if self.digest_rule() == DigestRule::Evaluated && spec.metric_tolerance == 0 {
            // Two honest hosts' G metrics differ in their last bits: with no tolerance, every
            // report but one would be a deviant.
            return mismatch(
                "metric_tolerance",
                "above zero (the digest rule `evaluated` compares G metrics within it)".into(),
                "0".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Declaration, String> {
        let declaration: Declaration = serde_json::from_str(text).map_err(|e| e.to_string())?;
        declaration.validate().map_err(|e| e.to_string())?;
        Ok(declaration)
    }

    #[test]
    fn a_minimal_declaration_gets_its_defaults_and_a_bad_one_its_reason() {
        let minimal =
            parse(r#"{"metric": "accuracy", "input": {"dims": [null, 30]}, "output": {"dims": [null, 2]}}"#).unwrap();
        assert_eq!(minimal.digest_rule(), DigestRule::Labels);
        assert_eq!((minimal.min_opset, minimal.max_opset, minimal.batch_size), (13, 21, 256));
        let regression =
            parse(r#"{"metric": "mse", "input": {"dims": [null, 10]}, "output": {"dims": [null, 1]}}"#).unwrap();
        assert_eq!(regression.digest_rule(), DigestRule::Evaluated);
        let masks =
            parse(r#"{"metric": "dice", "input": {"dims": [null, 16]}, "output": {"dims": [null, 16]}}"#).unwrap();
        assert_eq!(masks.digest_rule(), DigestRule::Mask);
        assert_eq!(minimal.runtime, RuntimeSpec { version: "1.31.1".into(), optimization: Optimization::All });
        assert_eq!(minimal.tie_margin, 1e-5);
        let runtime = parse(
            r#"{"metric": "mse", "input": {"dims": [null, 10]}, "output": {"dims": [null, 1]},
            "runtime": {"version": "1.31.1", "optimization": "disable"}, "tie_margin": 0.001}"#,
        )
        .unwrap();
        assert_eq!((runtime.runtime.optimization, runtime.tie_margin), (Optimization::Disable, 0.001));
        let bad_version = parse(
            r#"{"metric": "mse", "input": {"dims": [null]}, "output": {"dims": [null]}, "runtime": {"version": "1.31"}}"#,
        );
        assert!(bad_version.unwrap_err().contains("not major.minor.patch"));
        let bad_margin =
            parse(r#"{"metric": "f1", "input": {"dims": [null]}, "output": {"dims": [null]}, "tie_margin": 0.5}"#);
        assert!(bad_margin.unwrap_err().contains("tie_margin"));
        assert!(!regression.metric.higher_is_better());

        let unknown =
            parse(r#"{"metric": "accuracy", "inputs": {}, "input": {"dims": [null]}, "output": {"dims": [null]}}"#);
        assert!(unknown.unwrap_err().contains("unknown field `inputs`"));
        let fixed_batch = parse(r#"{"metric": "accuracy", "input": {"dims": [1, 30]}, "output": {"dims": [null, 2]}}"#);
        assert!(fixed_batch.unwrap_err().contains("batch"));
        let bad_hash = parse(
            r#"{"metric": "f1", "input": {"dims": [null]}, "output": {"dims": [null]}, "architecture_hash": "0x12"}"#,
        );
        assert!(bad_hash.unwrap_err().contains("not 32 bytes of hex"));
        let image = r#"{"metric": "accuracy", "input": {"dims": [null, 1, 8, 8]}, "output": {"dims": [null, 2]},
            "image": {"height": 8, "width": 8, "channels": 3, "mean": [0.5], "std": [0.5]}}"#;
        assert!(parse(image).unwrap_err().contains("one value per channel"));
    }

    #[test]
    fn a_standardisation_maps_each_public_range_onto_minus_one_to_one_or_says_why_not() {
        let read = |text: &str| -> Result<Standardisation, String> {
            let standardisation: Standardisation = serde_json::from_str(text).map_err(|e| e.to_string())?;
            standardisation.validate().map_err(|e| e.to_string())?;
            Ok(standardisation)
        };
        let two = read(
            r#"{"source": "a data dictionary", "ranges": [{"name": "age", "low": 20, "high": 100}, {"low": -1, "high": 1}]}"#,
        )
        .unwrap();
        assert_eq!(two.shift_scale(2).unwrap(), (vec![60.0, 0.0], vec![0.025, 1.0]));
        let error = two.shift_scale(3).unwrap_err().to_string();
        assert!(error.contains("2 ranges for a model of 3 inputs"), "{error}");
        // One range is every input's.
        let pixels = read(r#"{"source": "0 to 255", "ranges": [{"low": 0, "high": 255}]}"#).unwrap();
        assert_eq!(pixels.shift_scale(3).unwrap(), (vec![127.5; 3], vec![2.0 / 255.0; 3]));
        for (bad, reason) in [
            (r#"{"source": " ", "ranges": [{"low": 0, "high": 1}]}"#, "name the public source"),
            (r#"{"source": "s", "ranges": []}"#, "0 ranges"),
            (r#"{"source": "s", "ranges": [{"name": "age", "low": 5, "high": 5}]}"#, "range 1 (age) is [5.0, 5.0]"),
            (r#"{"source": "s", "ranges": [{"low": 0, "high": 1}, {"low": 2, "high": 1}]}"#, "range 2 is [2.0, 1.0]"),
            (r#"{"source": "s", "ranges": [{"low": 0, "high": 1e300}]}"#, "range 1 is [0.0, 1e300]"),
            (r#"{"source": "s", "ranges": [{"low": 0, "high": 1e-45}]}"#, "range 1 is [0.0, 1"),
            (r#"{"source": "s", "ranges": [{"low": -3e38, "high": 3e38}]}"#, "too narrow nor too wide"),
            (r#"{"source": "s", "ranges": [{"low": 0, "high": 1, "mean": 0.5}]}"#, "unknown field `mean`"),
        ] {
            let error = read(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
        // The declaration carries it in its recipe, and reads it back; ranges for another count
        // of inputs are refused.
        let mut declaration =
            parse(r#"{"metric": "accuracy", "input": {"dims": [null, 2]}, "output": {"dims": [null, 2]}}"#).unwrap();
        let recipe = GenesisRecipe { seed: 7, standardisation: two.clone() };
        declaration.recipe = Some(recipe.clone());
        let text = serde_json::to_string(&declaration).unwrap();
        assert_eq!(parse(&text).unwrap().recipe, Some(recipe));
        declaration.input.dims = vec![None, Some(3)];
        let error = parse(&serde_json::to_string(&declaration).unwrap()).unwrap_err();
        assert!(error.contains("2 standardisation ranges for inputs [None, Some(3)]"), "{error}");
    }

    #[test]
    fn the_chain_fills_in_hashes_and_refuses_disagreement() {
        let mut declaration =
            parse(r#"{"metric": "accuracy", "input": {"dims": [null, 30]}, "output": {"dims": [null, 2]}}"#).unwrap();
        let spec = EvaluationSpec {
            architecture_hash: [1; 32].into(),
            test_set_hash: [2; 32].into(),
            test_set_size: 100,
            metric: Metric::Accuracy,
            higher_is_better: true,
            metric_tolerance: 0,
        };
        declaration.check_chain(&spec).unwrap();
        assert_eq!(declaration.architecture_hash, Some(Hash([1; 32])));
        let mut other = declaration.clone();
        other.test_set_hash = Some(Hash([3; 32]));
        let error = other.check_chain(&spec).unwrap_err().to_string();
        assert!(error.starts_with("the declaration's test_set_hash is 0x0303"), "{error}");
        let mut f1 = declaration.clone();
        f1.metric = Metric::F1;
        assert!(matches!(f1.check_chain(&spec), Err(GenesisError::ChainMismatch { field: "metric", .. })));

        // Regression compares G metrics within the tolerance: none at all cannot work.
        let mut mse =
            parse(r#"{"metric": "mse", "input": {"dims": [null, 10]}, "output": {"dims": [null, 1]}}"#).unwrap();
        let regression = EvaluationSpec { metric: Metric::Mse, higher_is_better: false, ..spec };
        let error = mse.clone().check_chain(&regression).unwrap_err().to_string();
        assert!(error.contains("metric_tolerance") && error.contains("above zero"), "{error}");
        mse.check_chain(&EvaluationSpec { metric_tolerance: 10, ..regression }).unwrap();
    }
}

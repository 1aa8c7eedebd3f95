//! Local training: a member's increment, trained on its own data with burn's autodiff and
//! written as ONNX with burn-onnx's exporter.
//!
//! The model is the coalition's tabular perceptron ([`TabularMlp`]):
//! `logits = W2·relu(W1·((x − shift) ⊙ scale) + b1) + b2`. `shift` and `scale` standardise the
//! raw features; they are fixed at genesis ([`MlpParameters::init`], from the founder's data)
//! and never trained, so that every member trains in the same space and validators evaluate
//! raw features. The ONNX graph is what burn-onnx records from [`TabularMlp::forward`]
//! (`Sub`, `Mul`, `MatMul`, `Add`, `Relu`), with a free batch dimension; every export of the
//! same shape has the same architecture hash, so a candidate keeps the genesis model's. Vectors
//! are stored as `[1, n]` rows that broadcast: burn's `Linear` reshapes its bias, and the
//! oracle's architecture hash pins any initializer that feeds a `Reshape` (it is structure
//! there), so a trained bias would change the architecture.
//!
//! A training run starts from the coalition's tip ([`MlpParameters::from_onnx`] reads the
//! weights back by their names) and runs SGD on cross-entropy for the coalition's epochs, batch
//! size and learning rate. With differential privacy it is DP-SGD ([`crate::dp_sgd`]): Poisson
//! batches of rate `batch_size / N`, each example's gradient clipped, Gaussian noise added, and
//! the run's `(epsilon, delta)` from the accountant ([`crate::privacy`]).
//!
//! Per-example gradients come from one backward pass per batch: each example gets its own copy
//! of the weights (a `[B, …]` leaf), so the gradient of the summed loss with respect to copy `b`
//! is example `b`'s gradient alone.

use crate::{dp_sgd::DpSgd, privacy};
use burn::{
    module::{Module, Param},
    tensor::{
        activation::{log_softmax, relu},
        Device, Tensor, TensorData,
    },
};
use burn_onnx::export::{AxisSpec, InputSpec, OnnxExporter};
use onnx_rs::ast::{DataType, TensorProto};
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::path::Path;

/// Why data, a model or a training run was refused.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The data file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the data file is malformed.
    #[error("{path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The data does not fit the model (width, labels), or is empty.
    #[error("{0}")]
    Data(String),
    /// The ONNX model is not one of this trainer's perceptrons.
    #[error("the model is not a TCLearn tabular perceptron: {0}")]
    Model(String),
    /// burn-onnx could not export the model.
    #[error("ONNX export failed: {0}")]
    Export(String),
    /// A setting is out of range.
    #[error("{0}")]
    Setting(String),
}

/// A member's tabular data: one row per sample, with the sample's own identifier.
///
/// Read from CSV ([`Table::read_csv`]): a header line, then `identifier,feature,…,label` per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Each row's identifier (a patient or record number), for its anonymised data ID.
    pub ids: Vec<String>,
    /// Features, row-major, `width` per row.
    pub features: Vec<f32>,
    /// Class labels.
    pub labels: Vec<u32>,
    /// Features per row.
    pub width: usize,
}

impl Table {
    /// Read `identifier,feature,…,label` rows after a header line.
    ///
    /// # Errors
    /// [`TrainError::Io`], [`TrainError::Line`] (a row of another width, a value that is not a
    /// number, a label that is not a class), [`TrainError::Data`] (no rows).
    pub fn read_csv(path: &Path) -> Result<Self, TrainError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io { path: name.clone(), source })?;
        let mut table = Table { ids: Vec::new(), features: Vec::new(), labels: Vec::new(), width: 0 };
        for (number, line) in text.lines().enumerate().skip(1) {
            let bad = |reason: String| TrainError::Line { path: name.clone(), line: number + 1, reason };
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() < 3 {
                return Err(bad("expected identifier, features and label".into()));
            }
            let width = fields.len() - 2;
            if table.width == 0 {
                table.width = width;
            } else if width != table.width {
                return Err(bad(format!("{width} features; earlier rows have {}", table.width)));
            }
            for field in &fields[1..=width] {
                let value: f32 = field.parse().map_err(|_| bad(format!("{field:?} is not a number")))?;
                if !value.is_finite() {
                    return Err(bad(format!("{field:?} is not finite")));
                }
                table.features.push(value);
            }
            let label = fields[width + 1];
            table.labels.push(label.parse().map_err(|_| bad(format!("label {label:?} is not a class number")))?);
            table.ids.push(fields[0].to_string());
        }
        if table.labels.is_empty() {
            return Err(TrainError::Data(format!("{name}: no rows")));
        }
        Ok(table)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.width..(i + 1) * self.width]
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Table {
        Table {
            ids: indices.iter().map(|&i| self.ids[i].clone()).collect(),
            features: indices.iter().flat_map(|&i| self.row(i).iter().copied()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            width: self.width,
        }
    }

    /// Split off a share of the rows (shuffled by `seed`) as the member's local test set L:
    /// `(training rows, local test rows)`.
    pub fn split_local(&self, share: f64, seed: u64) -> (Table, Table) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
        let local = ((self.len() as f64) * share.clamp(0.0, 1.0)).round() as usize;
        let (local, train) = order.split_at(local.min(self.len()));
        (self.select(train), self.select(local))
    }

    /// The rows as [`Table::read_csv`] reads them: a header, then `identifier,feature,…,label`.
    pub fn to_member_csv(&self) -> String {
        let header: Vec<String> = (0..self.width).map(|j| format!("x{j}")).collect();
        let mut out = format!("id,{},label\n", header.join(","));
        for i in 0..self.len() {
            let row: Vec<String> = self.row(i).iter().map(|v| v.to_string()).collect();
            out.push_str(&format!("{},{},{}\n", self.ids[i], row.join(","), self.labels[i]));
        }
        out
    }

    /// The rows as the oracle reads a test set: `feature,…,label` per line, no header.
    pub fn to_test_set_csv(&self) -> String {
        let mut out = String::new();
        for i in 0..self.len() {
            let row: Vec<String> = self.row(i).iter().map(|v| v.to_string()).collect();
            out.push_str(&row.join(","));
            out.push_str(&format!(",{}\n", self.labels[i]));
        }
        out
    }
}

/// A dense layer `x·W + b`, with `b` a `[1, outputs]` row.
#[derive(Module, Debug)]
pub struct Dense {
    /// `[inputs, outputs]`.
    weight: Param<Tensor<2>>,
    /// `[1, outputs]`.
    bias: Param<Tensor<2>>,
}

impl Dense {
    /// `x·W + b` of a `[batch, inputs]` batch.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val()) + self.bias.val()
    }
}

/// The coalition's tabular perceptron as a burn module: what is exported to ONNX and run for
/// inference. Training works on [`MlpParameters`].
#[derive(Module, Debug)]
pub struct TabularMlp {
    /// Subtracted from each raw feature, a `[1, inputs]` row (fixed at genesis).
    shift: Param<Tensor<2>>,
    /// Multiplies each shifted feature, a `[1, inputs]` row (fixed at genesis).
    scale: Param<Tensor<2>>,
    /// The hidden layer, followed by ReLU.
    hidden: Dense,
    /// The output layer: one logit per class.
    output: Dense,
}

impl TabularMlp {
    /// Logits of a `[batch, inputs]` batch.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = (x - self.shift.val()) * self.scale.val();
        self.output.forward(relu(self.hidden.forward(x)))
    }
}

/// The perceptron's numbers: what training updates and what ONNX carries.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpParameters {
    /// Raw features.
    pub inputs: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Classes.
    pub classes: usize,
    /// Standardisation shift, one per input (not trained).
    pub shift: Vec<f32>,
    /// Standardisation scale, one per input (not trained).
    pub scale: Vec<f32>,
    /// `inputs × hidden`, row-major.
    pub w1: Vec<f32>,
    /// One per hidden unit.
    pub b1: Vec<f32>,
    /// `hidden × classes`, row-major.
    pub w2: Vec<f32>,
    /// One per class.
    pub b2: Vec<f32>,
}

/// The ONNX initializer names burn-onnx gives the module's parameters.
const NAMES: [&str; 6] = ["shift", "scale", "hidden.weight", "hidden.bias", "output.weight", "output.bias"];

impl MlpParameters {
    /// A genesis model: standardisation from `data` (mean and standard deviation of each
    /// feature), weights drawn uniformly in `±1/√fan_in` from `seed`.
    ///
    /// # Errors
    /// [`TrainError::Data`]: no rows, no features, fewer than two classes or no hidden unit.
    pub fn init(data: &Table, hidden: usize, classes: usize, seed: u64) -> Result<Self, TrainError> {
        if data.is_empty() || data.width == 0 || classes < 2 || hidden == 0 {
            return Err(TrainError::Data("a model needs rows, features, two classes or more and a hidden unit".into()));
        }
        let n = data.len() as f64;
        let mut shift = vec![0f32; data.width];
        let mut scale = vec![1f32; data.width];
        for j in 0..data.width {
            let mean = (0..data.len()).map(|i| f64::from(data.row(i)[j])).sum::<f64>() / n;
            let var = (0..data.len()).map(|i| (f64::from(data.row(i)[j]) - mean).powi(2)).sum::<f64>() / n;
            shift[j] = mean as f32;
            scale[j] = if var > 0.0 { (1.0 / var.sqrt()) as f32 } else { 1.0 };
        }
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut uniform = |fan_in: usize, count: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..count).map(|_| rng.random_range(-bound..bound)).collect()
        };
        Ok(Self {
            inputs: data.width,
            hidden,
            classes,
            shift,
            scale,
            w1: uniform(data.width, data.width * hidden),
            b1: uniform(data.width, hidden),
            w2: uniform(hidden, hidden * classes),
            b2: uniform(hidden, classes),
        })
    }

    /// The parameters of an ONNX model this trainer wrote (the coalition's tip), read from its
    /// initializers by name.
    ///
    /// # Errors
    /// [`TrainError::Model`]: not ONNX, a missing or non-float initializer, or shapes that do
    /// not chain.
    pub fn from_onnx(bytes: &[u8]) -> Result<Self, TrainError> {
        let model = onnx_rs::parse(bytes).map_err(|e| TrainError::Model(format!("not ONNX: {e:?}")))?;
        let graph = model.graph.as_ref().ok_or_else(|| TrainError::Model("no graph".into()))?;
        let find = |name: &str| -> Result<(Vec<usize>, Vec<f32>), TrainError> {
            let tensor = graph
                .initializer
                .iter()
                .find(|t| t.name() == name)
                .ok_or_else(|| TrainError::Model(format!("no initializer {name:?}")))?;
            Ok((tensor.dims().iter().map(|d| *d as usize).collect(), floats(tensor)?))
        };
        let [shift, scale, w1, b1, w2, b2] = NAMES.map(find);
        let ((shift_dims, shift), (_, scale), (w1_dims, w1), (_, b1), (w2_dims, w2), (_, b2)) =
            (shift?, scale?, w1?, b1?, w2?, b2?);
        let (inputs, hidden, classes) = match (shift_dims.as_slice(), w1_dims.as_slice(), w2_dims.as_slice()) {
            ([1, i], [i2, h], [h2, c]) if i == i2 && h == h2 => (*i, *h, *c),
            _ => return Err(TrainError::Model(format!("shapes {shift_dims:?}, {w1_dims:?}, {w2_dims:?} do not chain"))),
        };
        let parameters = Self { inputs, hidden, classes, shift, scale, w1, b1, w2, b2 };
        if parameters.scale.len() != inputs || parameters.b1.len() != hidden || parameters.b2.len() != classes {
            return Err(TrainError::Model("a bias or the standardisation has the wrong length".into()));
        }
        Ok(parameters)
    }

    /// Every trained number, in the order of [`Self::set_trained`]: `w1, b1, w2, b2`.
    pub fn trained(&self) -> Vec<f32> {
        [&self.w1, &self.b1, &self.w2, &self.b2].into_iter().flatten().copied().collect()
    }

    /// Replace the trained numbers from a vector laid out as [`Self::trained`] (as long).
    pub fn set_trained(&mut self, values: &[f32]) {
        let mut rest = values;
        for part in [&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2] {
            let (head, tail) = rest.split_at(part.len());
            part.copy_from_slice(head);
            rest = tail;
        }
    }

    /// The burn module on `device`.
    pub fn module(&self, device: &Device) -> TabularMlp {
        let matrix = |values: &[f32], rows: usize| {
            let shape = [rows, values.len() / rows.max(1)];
            Param::from_tensor(Tensor::<2>::from_data(TensorData::new(values.to_vec(), shape), device))
        };
        TabularMlp {
            shift: matrix(&self.shift, 1),
            scale: matrix(&self.scale, 1),
            hidden: Dense { weight: matrix(&self.w1, self.inputs), bias: matrix(&self.b1, 1) },
            output: Dense { weight: matrix(&self.w2, self.hidden), bias: matrix(&self.b2, 1) },
        }
    }

    /// Logits of `data`'s rows, row-major, computed by burn on its CPU backend.
    pub fn logits(&self, data: &Table) -> Vec<f32> {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(data.features.clone(), [data.len(), data.width]), &device);
        self.module(&device).forward(x).into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// Share of `data`'s rows whose highest logit is their label.
    pub fn accuracy(&self, data: &Table) -> f64 {
        let logits = self.logits(data);
        let correct = logits
            .chunks(self.classes)
            .zip(&data.labels)
            .filter(|(row, label)| argmax(row) == **label as usize)
            .count();
        correct as f64 / data.len().max(1) as f64
    }

    /// Mean cross-entropy of `data`'s rows.
    pub fn loss(&self, data: &Table) -> f64 {
        let logits = self.logits(data);
        let total: f64 = logits
            .chunks(self.classes)
            .zip(&data.labels)
            .map(|(row, label)| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let log_sum = row.iter().map(|v| f64::from(v - max).exp()).sum::<f64>().ln() + f64::from(max);
                log_sum - f64::from(row[*label as usize])
            })
            .sum();
        total / data.len().max(1) as f64
    }

    /// The model as ONNX (opset 18, batch dimension free), exported by burn-onnx.
    ///
    /// # Errors
    /// [`TrainError::Export`]: burn-onnx refused the graph.
    pub fn to_onnx(&self) -> Result<Vec<u8>, TrainError> {
        let device = Device::flex();
        let module = self.module(&device);
        let sample = Tensor::<2>::zeros([2, self.inputs], &device);
        let validation = Tensor::<2>::zeros([3, self.inputs], &device);
        let specs = [InputSpec::new([AxisSpec::dynamic("batch"), AxisSpec::Static])];
        OnnxExporter::new()
            .export_dynamic(&module, sample, validation, &specs, TabularMlp::forward)
            .map(|model| model.into_bytes())
            .map_err(|e| TrainError::Export(format!("{e}")))
    }

    /// Per-example gradients of the cross-entropy for `rows` of `data`, one vector per row laid
    /// out as [`Self::trained`], from one backward pass (see the module documentation).
    pub fn per_example_gradients(&self, data: &Table, rows: &[usize]) -> Vec<Vec<f32>> {
        let b = rows.len();
        if b == 0 {
            return Vec::new();
        }
        let device = Device::flex().autodiff();
        let (i, h, c) = (self.inputs, self.hidden, self.classes);
        // Standardised inputs and one-hot labels are constants; each example's weights a leaf.
        let mut x = Vec::with_capacity(b * i);
        let mut onehot = vec![0f32; b * c];
        for (k, &row) in rows.iter().enumerate() {
            x.extend(data.row(row).iter().zip(self.shift.iter().zip(&self.scale)).map(|(v, (s, m))| (v - s) * m));
            onehot[k * c + data.labels[row] as usize] = 1.0;
        }
        let constant = |values: Vec<f32>, shape: [usize; 3]| Tensor::<3>::from_data(TensorData::new(values, shape), &device);
        let leaf = |values: &[f32], shape: [usize; 3]| {
            let copies: Vec<f32> = (0..b).flat_map(|_| values.iter().copied()).collect();
            Tensor::<3>::from_data(TensorData::new(copies, shape), &device).require_grad()
        };
        let x = constant(x, [b, 1, i]);
        let onehot = constant(onehot, [b, 1, c]);
        let (w1, b1, w2, b2) = (leaf(&self.w1, [b, i, h]), leaf(&self.b1, [b, 1, h]), leaf(&self.w2, [b, h, c]), leaf(&self.b2, [b, 1, c]));
        let hidden = relu(x.matmul(w1.clone()) + b1.clone());
        let logits = hidden.matmul(w2.clone()) + b2.clone();
        let loss = -(log_softmax(logits, 2) * onehot).sum();
        let grads = loss.backward();
        let take = |leaf: &Tensor<3>| leaf.grad(&grads).map(|g| g.into_data().try_to_vec::<f32>().unwrap_or_default()).unwrap_or_default();
        let parts = [take(&w1), take(&b1), take(&w2), take(&b2)];
        let sizes = [i * h, h, h * c, c];
        (0..b)
            .map(|k| parts.iter().zip(sizes).flat_map(|(part, size)| part[k * size..(k + 1) * size].iter().copied()).collect())
            .collect()
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, v)| if *v > best.1 { (i, *v) } else { best }).0
}

/// An initializer's values as f32.
fn floats(tensor: &TensorProto<'_>) -> Result<Vec<f32>, TrainError> {
    if tensor.data_type() != DataType::Float {
        return Err(TrainError::Model(format!("{} is {:?}, not float", tensor.name(), tensor.data_type())));
    }
    let count: i64 = tensor.dims().iter().product();
    match tensor.as_f32() {
        Some(values) if values.len() as i64 == count => Ok(values.into_owned()),
        _ => Err(TrainError::Model(format!("{} does not hold {count} floats", tensor.name()))),
    }
}

/// A training run's settings: the coalition's hyperparameters, and the member's privacy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Training {
    /// SGD's learning rate.
    pub learning_rate: f32,
    /// Passes over the data.
    pub epochs: u32,
    /// Batch size (DP-SGD: the expected batch size of Poisson sampling).
    pub batch_size: u32,
    /// DP-SGD's clipping and noise; `None` trains without differential privacy.
    pub privacy: Option<DpSgd>,
    /// Target delta of the privacy accounting.
    pub delta: f64,
    /// Seed of batches and noise.
    pub seed: u64,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Training rows.
    pub examples: usize,
    /// SGD steps.
    pub steps: u64,
    /// Mean cross-entropy on the training rows before and after.
    pub loss_before: f64,
    /// After.
    pub loss_after: f64,
    /// The spend `(epsilon, delta)` of DP-SGD, if private.
    pub privacy: Option<(f64, f64)>,
    /// Poisson sampling rate (batch size over rows).
    pub sampling_rate: f64,
    /// Per-example gradients computed (the examples of every batch).
    pub gradients: u64,
    /// Seconds spent in SGD steps.
    pub seconds: f64,
}

/// Train `parameters` on `data` (SGD, or DP-SGD with `training.privacy`); `on_step(done,
/// total)` after each step.
///
/// # Errors
/// [`TrainError::Data`] (labels or width that do not fit the model), [`TrainError::Setting`]
/// (no epoch, no batch, a learning rate or privacy setting out of range).
pub fn train(
    parameters: &mut MlpParameters,
    data: &Table,
    training: &Training,
    mut on_step: impl FnMut(u64, u64),
) -> Result<TrainReport, TrainError> {
    if data.width != parameters.inputs {
        return Err(TrainError::Data(format!("{} features per row; the model takes {}", data.width, parameters.inputs)));
    }
    if let Some(label) = data.labels.iter().find(|l| **l as usize >= parameters.classes) {
        return Err(TrainError::Data(format!("label {label}; the model has {} classes", parameters.classes)));
    }
    if training.epochs == 0 || training.batch_size == 0 || !(training.learning_rate > 0.0 && training.learning_rate.is_finite()) {
        return Err(TrainError::Setting("epochs, batch size and learning rate must be positive".into()));
    }
    if let Some(dp) = training.privacy {
        if !(dp.clip_norm > 0.0 && dp.noise_multiplier > 0.0 && dp.clip_norm.is_finite() && dp.noise_multiplier.is_finite()) {
            return Err(TrainError::Setting("DP-SGD needs a positive clipping norm and noise multiplier".into()));
        }
    }
    let n = data.len();
    let batch = (training.batch_size as usize).min(n);
    let q = batch as f64 / n as f64;
    let steps_per_epoch = n.div_ceil(batch) as u64;
    let steps = steps_per_epoch * u64::from(training.epochs);
    let mut rng = ChaCha20Rng::seed_from_u64(training.seed);
    let loss_before = parameters.loss(data);
    let started = std::time::Instant::now();
    let mut order: Vec<usize> = (0..n).collect();
    let width = parameters.trained().len();
    let mut gradients = 0u64;
    for step in 0..steps {
        let gradient = match training.privacy {
            Some(dp) => {
                let rows = crate::dp_sgd::poisson_sample(n, q, &mut rng);
                let per_example = parameters.per_example_gradients(data, &rows);
                gradients += per_example.len() as u64;
                dp.gradient(&per_example, width, (q * n as f64) as f32, &mut rng)
            }
            None => {
                let at = (step % steps_per_epoch) as usize * batch;
                if at == 0 {
                    order.shuffle(&mut rng);
                }
                let rows = &order[at..(at + batch).min(n)];
                let per_example = parameters.per_example_gradients(data, rows);
                gradients += per_example.len() as u64;
                let mut sum = vec![0f32; width];
                for g in &per_example {
                    sum.iter_mut().zip(g).for_each(|(s, v)| *s += v);
                }
                sum.into_iter().map(|s| s / rows.len() as f32).collect()
            }
        };
        let updated: Vec<f32> =
            parameters.trained().iter().zip(&gradient).map(|(p, g)| p - training.learning_rate * g).collect();
        parameters.set_trained(&updated);
        on_step(step + 1, steps);
    }
    let seconds = started.elapsed().as_secs_f64();
    let privacy = match training.privacy {
        Some(dp) => {
            let (epsilon, _) = privacy::dp_sgd_epsilon(q, f64::from(dp.noise_multiplier), steps, training.delta)
                .map_err(|e| TrainError::Setting(e.to_string()))?;
            Some((epsilon, training.delta))
        }
        None => None,
    };
    Ok(TrainReport { examples: n, steps, loss_before, loss_after: parameters.loss(data), privacy, sampling_rate: q, gradients, seconds })
}

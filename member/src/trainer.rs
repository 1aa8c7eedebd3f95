//! Local training: a member's increment, trained on its own data with burn's autodiff and
//! written as ONNX with burn-onnx's exporter.
//!
//! Two networks ([`Network`]; [`Model`] reads either back from ONNX): for tables, the
//! perceptron below; for images given as rows of pixels, a small convolutional network
//! ([`ImageCnn`]: a 3×3 convolution, ReLU, 2×2 max pooling, a dense layer), whose per-example
//! gradients come from one grouped convolution (group `k` carries example `k`'s own kernel).
//!
//! The tabular model is the coalition's perceptron ([`TabularMlp`]):
//! `logits = W2·relu(W1·((x − shift) ⊙ scale) + b1) + b2`. `shift` and `scale` standardise the
//! raw features; they are fixed at genesis ([`MlpParameters::init`], from the public ranges the
//! founders declare in a [`Standardisation`], never from anyone's rows) and never trained, so that every member trains in the same space and validators evaluate
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
pub use tclearn_model::genesis::{GenesisRecipe, Standardisation};

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
    /// A genesis model is not what its declared recipe makes.
    #[error("{0}")]
    Genesis(String),
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

/// What the trainer needs of a model: its numbers, its logits, per-example gradients of its
/// loss, and its ONNX form.
pub trait Network: Clone {
    /// Raw features per row.
    fn inputs(&self) -> usize;

    /// Classes.
    fn classes(&self) -> usize;

    /// Every trained number, in the order [`Network::set_trained`] and the gradients use.
    fn trained(&self) -> Vec<f32>;

    /// Replace the trained numbers from a vector laid out as [`Network::trained`] (as long).
    fn set_trained(&mut self, values: &[f32]);

    /// The trained tensors as ONNX names them: name, dimensions, values (in the order of
    /// [`Network::trained`]).
    fn tensors(&self) -> Vec<(&'static str, Vec<i64>, Vec<f32>)>;

    /// Logits of `data`'s rows, row-major, computed by burn on its CPU backend.
    fn logits(&self, data: &Table) -> Vec<f32>;

    /// Per-example gradients of the cross-entropy for `rows` of `data`, one vector per row laid
    /// out as [`Network::trained`], from one backward pass (see the module documentation).
    fn per_example_gradients(&self, data: &Table, rows: &[usize]) -> Vec<Vec<f32>>;

    /// The model as ONNX (opset 18, batch dimension free), exported by burn-onnx.
    ///
    /// # Errors
    /// [`TrainError::Export`]: burn-onnx refused the graph.
    fn to_onnx(&self) -> Result<Vec<u8>, TrainError>;

    /// Share of `data`'s rows whose highest logit is their label.
    fn accuracy(&self, data: &Table) -> f64 {
        let logits = self.logits(data);
        let correct = logits
            .chunks(self.classes())
            .zip(&data.labels)
            .filter(|(row, label)| argmax(row) == **label as usize)
            .count();
        correct as f64 / data.len().max(1) as f64
    }

    /// Mean cross-entropy of `data`'s rows.
    fn loss(&self, data: &Table) -> f64 {
        let logits = self.logits(data);
        let total: f64 = logits
            .chunks(self.classes())
            .zip(&data.labels)
            .map(|(row, label)| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let log_sum = row.iter().map(|v| f64::from(v - max).exp()).sum::<f64>().ln() + f64::from(max);
                log_sum - f64::from(row[*label as usize])
            })
            .sum();
        total / data.len().max(1) as f64
    }
}

/// Longest image side the image network takes.
pub const MAX_IMAGE_SIDE: usize = 4096;

/// Most pooled features (filters × height/2 × width/2) the image network's dense layer takes.
pub const MAX_CNN_FEATURES: usize = 1 << 22;

/// The `(shift, scale)` of `inputs` inputs under the founders' declared `standardisation`.
fn declared(standardisation: &Standardisation, inputs: usize) -> Result<(Vec<f32>, Vec<f32>), TrainError> {
    standardisation.shift_scale(inputs).map_err(|e| TrainError::Data(e.to_string()))
}

/// Draws of `count` weights uniform in `±1/√fan_in`, from `seed`.
fn uniform(seed: u64) -> impl FnMut(usize, usize) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    move |fan_in, count| {
        let bound = 1.0 / (fan_in as f32).sqrt();
        (0..count).map(|_| rng.random_range(-bound..bound)).collect()
    }
}

/// Fill `parts` in order from `values`.
fn set_parts<const N: usize>(parts: [&mut Vec<f32>; N], values: &[f32]) {
    let mut rest = values;
    for part in parts {
        let (head, tail) = rest.split_at(part.len().min(rest.len()));
        part[..head.len()].copy_from_slice(head);
        rest = tail;
    }
}

/// The standardised features of `rows` (row-major) and their one-hot labels over `classes`.
fn standardised_batch(
    data: &Table,
    rows: &[usize],
    shift: &[f32],
    scale: &[f32],
    classes: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut x = Vec::with_capacity(rows.len() * data.width);
    let mut onehot = vec![0f32; rows.len() * classes];
    for (k, &row) in rows.iter().enumerate() {
        x.extend(data.row(row).iter().zip(shift.iter().zip(scale)).map(|(v, (s, m))| (v - s) * m));
        onehot[k * classes + data.labels[row] as usize] = 1.0;
    }
    (x, onehot)
}

/// `copies` copies of `values` as one leaf of `shape` that keeps its gradient.
fn replicated<const D: usize>(values: &[f32], copies: usize, shape: [usize; D], device: &Device) -> Tensor<D> {
    let all: Vec<f32> = (0..copies).flat_map(|_| values.iter().copied()).collect();
    Tensor::<D>::from_data(TensorData::new(all, shape), device).require_grad()
}

/// A leaf's gradient, flat.
fn gradient<const D: usize>(leaf: &Tensor<D>, grads: &burn::tensor::Gradients) -> Vec<f32> {
    leaf.grad(grads).and_then(|g| g.into_data().try_to_vec::<f32>().ok()).unwrap_or_default()
}

/// Per-example vectors from per-copy gradients: copy `k` of part `p` is `sizes[p]` values at
/// `k * sizes[p]`.
fn per_example(parts: &[Vec<f32>], sizes: &[usize], copies: usize) -> Vec<Vec<f32>> {
    (0..copies)
        .map(|k| {
            parts
                .iter()
                .zip(sizes)
                .flat_map(|(part, size)| part.get(k * size..(k + 1) * size).unwrap_or_default().iter().copied())
                .collect()
        })
        .collect()
}

/// Export `module`'s `forward` over a batch of samples of `shape`, the batch dimension free.
fn export<M: Module, const D: usize>(
    module: &M,
    shape: [usize; D],
    forward: fn(&M, Tensor<D>) -> Tensor<2>,
) -> Result<Vec<u8>, TrainError> {
    let device = Device::flex();
    let batch = |n: usize| {
        let mut dims = shape;
        dims[0] = n;
        Tensor::<D>::zeros(dims, &device)
    };
    let axes: [AxisSpec; D] =
        std::array::from_fn(|axis| if axis == 0 { AxisSpec::dynamic("batch") } else { AxisSpec::Static });
    OnnxExporter::new()
        .export_dynamic(module, batch(2), batch(3), &[InputSpec::new(axes)], forward)
        .map(|model| model.into_bytes())
        .map_err(|e| TrainError::Export(format!("{e}")))
}

/// A model's float initializers by name: shape and values.
type Initializers = std::collections::HashMap<String, (Vec<usize>, Vec<f32>)>;

/// The float initializers of an ONNX model.
fn initializers(bytes: &[u8]) -> Result<Initializers, TrainError> {
    let model = onnx_rs::parse(bytes).map_err(|e| TrainError::Model(format!("not ONNX: {e:?}")))?;
    let graph = model.graph.as_ref().ok_or_else(|| TrainError::Model("no graph".into()))?;
    graph
        .initializer
        .iter()
        .filter(|t| t.data_type() == DataType::Float)
        .map(|t| Ok((t.name().to_string(), (t.dims().iter().map(|d| *d as usize).collect(), floats(t)?))))
        .collect()
}

fn take(found: &mut Initializers, name: &str) -> Result<(Vec<usize>, Vec<f32>), TrainError> {
    found.remove(name).ok_or_else(|| TrainError::Model(format!("no initializer {name:?}")))
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

impl MlpParameters {
    /// A genesis model of one input per range of the founders' declared `standardisation`
    /// (never statistics of anyone's rows: the genesis is public), weights drawn uniformly in
    /// `±1/√fan_in` from `seed`.
    ///
    /// # Errors
    /// [`TrainError::Data`]: an invalid standardisation, fewer than two classes or no hidden
    /// unit.
    pub fn init(
        standardisation: &Standardisation,
        hidden: usize,
        classes: usize,
        seed: u64,
    ) -> Result<Self, TrainError> {
        if classes < 2 || hidden == 0 {
            return Err(TrainError::Data("a model needs two classes or more and a hidden unit".into()));
        }
        let inputs = standardisation.ranges.len();
        let (shift, scale) = declared(standardisation, inputs)?;
        let mut uniform = uniform(seed);
        Ok(Self {
            inputs,
            hidden,
            classes,
            shift,
            scale,
            w1: uniform(inputs, inputs * hidden),
            b1: uniform(inputs, hidden),
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
        Self::from_initializers(initializers(bytes)?)
    }

    /// The parameters in a model's initializers ([`initializers`]).
    fn from_initializers(mut found: Initializers) -> Result<Self, TrainError> {
        let mut next = |name: &str| take(&mut found, name);
        let ((shift_dims, shift), (_, scale), (w1_dims, w1), (_, b1), (w2_dims, w2), (_, b2)) = (
            next("shift")?,
            next("scale")?,
            next("hidden.weight")?,
            next("hidden.bias")?,
            next("output.weight")?,
            next("output.bias")?,
        );
        let (inputs, hidden, classes) = match (shift_dims.as_slice(), w1_dims.as_slice(), w2_dims.as_slice()) {
            ([1, i], [i2, h], [h2, c]) if i == i2 && h == h2 => (*i, *h, *c),
            _ => {
                return Err(TrainError::Model(format!("shapes {shift_dims:?}, {w1_dims:?}, {w2_dims:?} do not chain")))
            }
        };
        let parameters = Self { inputs, hidden, classes, shift, scale, w1, b1, w2, b2 };
        if parameters.scale.len() != inputs || parameters.b1.len() != hidden || parameters.b2.len() != classes {
            return Err(TrainError::Model("a bias or the standardisation has the wrong length".into()));
        }
        Ok(parameters)
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
}

impl Network for MlpParameters {
    fn inputs(&self) -> usize {
        self.inputs
    }

    fn classes(&self) -> usize {
        self.classes
    }

    /// `w1, b1, w2, b2`.
    fn trained(&self) -> Vec<f32> {
        [&self.w1, &self.b1, &self.w2, &self.b2].into_iter().flatten().copied().collect()
    }

    fn set_trained(&mut self, values: &[f32]) {
        set_parts([&mut self.w1, &mut self.b1, &mut self.w2, &mut self.b2], values);
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<i64>, Vec<f32>)> {
        let (i, h, c) = (self.inputs as i64, self.hidden as i64, self.classes as i64);
        vec![
            ("hidden.weight", vec![i, h], self.w1.clone()),
            ("hidden.bias", vec![1, h], self.b1.clone()),
            ("output.weight", vec![h, c], self.w2.clone()),
            ("output.bias", vec![1, c], self.b2.clone()),
        ]
    }

    fn logits(&self, data: &Table) -> Vec<f32> {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(TensorData::new(data.features.clone(), [data.len(), data.width]), &device);
        self.module(&device).forward(x).into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    fn to_onnx(&self) -> Result<Vec<u8>, TrainError> {
        export(&self.module(&Device::flex()), [0, self.inputs], TabularMlp::forward)
    }

    fn per_example_gradients(&self, data: &Table, rows: &[usize]) -> Vec<Vec<f32>> {
        let b = rows.len();
        if b == 0 {
            return Vec::new();
        }
        let device = Device::flex().autodiff();
        let (i, h, c) = (self.inputs, self.hidden, self.classes);
        // Standardised inputs and one-hot labels are constants; each example's weights a leaf.
        let (x, onehot) = standardised_batch(data, rows, &self.shift, &self.scale, c);
        let constant =
            |values: Vec<f32>, shape: [usize; 3]| Tensor::<3>::from_data(TensorData::new(values, shape), &device);
        let leaf = |values: &[f32], shape: [usize; 3]| replicated(values, b, shape, &device);
        let x = constant(x, [b, 1, i]);
        let onehot = constant(onehot, [b, 1, c]);
        let (w1, b1, w2, b2) = (
            leaf(&self.w1, [b, i, h]),
            leaf(&self.b1, [b, 1, h]),
            leaf(&self.w2, [b, h, c]),
            leaf(&self.b2, [b, 1, c]),
        );
        let hidden = relu(x.matmul(w1.clone()) + b1.clone());
        let logits = hidden.matmul(w2.clone()) + b2.clone();
        let loss = -(log_softmax(logits, 2) * onehot).sum();
        let grads = loss.backward();
        let parts = [gradient(&w1, &grads), gradient(&b1, &grads), gradient(&w2, &grads), gradient(&b2, &grads)];
        per_example(&parts, &[i * h, h, h * c, c], b)
    }
}

/// A 3×3 convolution, padding 1, stride 1: `weight` is `[filters, channels, 3, 3]`.
#[derive(Module, Debug)]
pub struct Conv {
    /// `[filters, channels, 3, 3]`.
    weight: Param<Tensor<4>>,
    /// One per filter.
    bias: Param<Tensor<1>>,
}

fn conv_options(groups: usize) -> burn::tensor::ops::ConvOptions<2> {
    burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], groups)
}

fn pool(x: Tensor<4>) -> Tensor<4> {
    burn::tensor::module::max_pool2d(x, burn::tensor::ops::MaxPoolOptions::new([2, 2]))
}

/// The coalition's small convolutional network for `[batch, channels, height, width]` images:
/// `dense(flatten(maxpool2(relu(conv3x3((x − shift) ⊙ scale)))))`. Its ONNX input is the
/// image batch, as the oracle reads an image test set; the trainer holds images as rows of
/// pixels (a [`Table`]).
#[derive(Module, Debug)]
pub struct ImageCnn {
    /// Subtracted from each raw pixel, `[1, channels, height, width]` (fixed at genesis).
    shift: Param<Tensor<4>>,
    /// Multiplies each shifted pixel, `[1, channels, height, width]` (fixed at genesis).
    scale: Param<Tensor<4>>,
    /// The convolution, followed by ReLU and 2×2 max pooling.
    conv: Conv,
    /// From the pooled maps to one logit per class.
    output: Dense,
    /// Channels, height, width of an image.
    #[module(skip)]
    image: [usize; 3],
}

impl ImageCnn {
    /// Logits of a `[batch, channels, height, width]` batch.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [batch, _, _, _] = x.dims();
        let x = (x - self.shift.val()) * self.scale.val();
        let maps =
            relu(burn::tensor::module::conv2d(x, self.conv.weight.val(), Some(self.conv.bias.val()), conv_options(1)));
        let pooled = pool(maps);
        let [_, f, ph, pw] = pooled.dims();
        self.output.forward(pooled.reshape([batch, f * ph * pw]))
    }
}

/// The convolutional network's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct CnnParameters {
    /// Channels, height and width of an image (even sides).
    pub image: [usize; 3],
    /// Convolution filters.
    pub filters: usize,
    /// Classes.
    pub classes: usize,
    /// Standardisation shift, one per pixel (not trained).
    pub shift: Vec<f32>,
    /// Standardisation scale, one per pixel (not trained).
    pub scale: Vec<f32>,
    /// `filters × channels × 3 × 3`.
    pub kernel: Vec<f32>,
    /// One per filter.
    pub kernel_bias: Vec<f32>,
    /// `filters·(height/2)·(width/2) × classes`, row-major.
    pub w: Vec<f32>,
    /// One per class.
    pub b: Vec<f32>,
}

impl CnnParameters {
    /// A genesis model for images of `image` (channels, height, width; even sides): the
    /// founders' declared `standardisation` of the pixels (one range for all, or one per
    /// pixel), weights uniform in `±1/√fan_in`.
    ///
    /// # Errors
    /// [`TrainError::Data`]: an invalid standardisation or one of another size, odd sides, no
    /// filter, or fewer than two classes.
    pub fn init(
        standardisation: &Standardisation,
        image: [usize; 3],
        filters: usize,
        classes: usize,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let [c, h, w] = image;
        let sides = 2..=MAX_IMAGE_SIDE;
        let flat = filters.checked_mul((h / 2) * (w / 2)).filter(|f| (1..=MAX_CNN_FEATURES).contains(f));
        let shape = matches!(c, 1 | 3) && h % 2 == 0 && w % 2 == 0 && sides.contains(&h) && sides.contains(&w);
        let (Some(flat), true, true) = (flat, shape, classes >= 2) else {
            return Err(TrainError::Data(format!(
                "a {c}x{h}x{w} image network needs 1 or 3 channels, even sides up to {MAX_IMAGE_SIDE}, 1 to \
                 {MAX_CNN_FEATURES} pooled features (filters × height/2 × width/2) and two classes"
            )));
        };
        let (shift, scale) = declared(standardisation, c * h * w)?;
        let mut uniform = uniform(seed);
        Ok(Self {
            image,
            filters,
            classes,
            shift,
            scale,
            kernel: uniform(c * 9, filters * c * 9),
            kernel_bias: uniform(c * 9, filters),
            w: uniform(flat, flat * classes),
            b: uniform(flat, classes),
        })
    }

    /// The parameters of an ONNX model this trainer wrote, read from its initializers by name.
    ///
    /// # Errors
    /// [`TrainError::Model`]: not ONNX, a missing initializer, or shapes that do not chain.
    pub fn from_onnx(bytes: &[u8]) -> Result<Self, TrainError> {
        Self::from_initializers(initializers(bytes)?)
    }

    /// The parameters in a model's initializers ([`initializers`]).
    fn from_initializers(mut found: Initializers) -> Result<Self, TrainError> {
        let mut next = |name: &str| take(&mut found, name);
        let ((shift_dims, shift), (_, scale), (kernel_dims, kernel), (_, kernel_bias), (w_dims, w), (_, b)) = (
            next("shift")?,
            next("scale")?,
            next("conv.weight")?,
            next("conv.bias")?,
            next("output.weight")?,
            next("output.bias")?,
        );
        let (filters, c, classes, flat) = match (kernel_dims.as_slice(), w_dims.as_slice()) {
            ([f, c, 3, 3], [flat, k]) => (*f, *c, *k, *flat),
            _ => {
                return Err(TrainError::Model(format!(
                    "shapes {kernel_dims:?}, {w_dims:?} are not the image network's"
                )))
            }
        };
        let image = match shift_dims.as_slice() {
            [1, c2, h, w] if *c2 == c && filters * (h / 2) * (w / 2) == flat => [c, *h, *w],
            _ => return Err(TrainError::Model(format!("images {shift_dims:?} and {flat} pooled values do not chain"))),
        };
        Ok(Self { image, filters, classes, shift, scale, kernel, kernel_bias, w, b })
    }

    /// The burn module on `device`.
    pub fn module(&self, device: &Device) -> ImageCnn {
        let matrix = |values: &[f32], rows: usize| {
            let shape = [rows, values.len() / rows.max(1)];
            Param::from_tensor(Tensor::<2>::from_data(TensorData::new(values.to_vec(), shape), device))
        };
        let [c, h, w] = self.image;
        let image = |values: &[f32]| {
            Param::from_tensor(Tensor::<4>::from_data(TensorData::new(values.to_vec(), [1, c, h, w]), device))
        };
        ImageCnn {
            shift: image(&self.shift),
            scale: image(&self.scale),
            conv: Conv {
                weight: Param::from_tensor(Tensor::<4>::from_data(
                    TensorData::new(self.kernel.clone(), [self.filters, c, 3, 3]),
                    device,
                )),
                bias: Param::from_tensor(Tensor::<1>::from_data(
                    TensorData::new(self.kernel_bias.clone(), [self.filters]),
                    device,
                )),
            },
            output: Dense { weight: matrix(&self.w, self.w.len() / self.classes.max(1)), bias: matrix(&self.b, 1) },
            image: self.image,
        }
    }
}

impl Network for CnnParameters {
    fn inputs(&self) -> usize {
        self.image.iter().product()
    }

    fn classes(&self) -> usize {
        self.classes
    }

    /// `kernel, kernel_bias, w, b`.
    fn trained(&self) -> Vec<f32> {
        [&self.kernel, &self.kernel_bias, &self.w, &self.b].into_iter().flatten().copied().collect()
    }

    fn set_trained(&mut self, values: &[f32]) {
        set_parts([&mut self.kernel, &mut self.kernel_bias, &mut self.w, &mut self.b], values);
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<i64>, Vec<f32>)> {
        let (f, c, k) = (self.filters as i64, self.image[0] as i64, self.classes as i64);
        let flat = (self.w.len() / self.classes.max(1)) as i64;
        vec![
            ("conv.weight", vec![f, c, 3, 3], self.kernel.clone()),
            ("conv.bias", vec![f], self.kernel_bias.clone()),
            ("output.weight", vec![flat, k], self.w.clone()),
            ("output.bias", vec![1, k], self.b.clone()),
        ]
    }

    fn logits(&self, data: &Table) -> Vec<f32> {
        let device = Device::flex();
        let [c, h, w] = self.image;
        let x = Tensor::<4>::from_data(TensorData::new(data.features.clone(), [data.len(), c, h, w]), &device);
        self.module(&device).forward(x).into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    fn to_onnx(&self) -> Result<Vec<u8>, TrainError> {
        let [c, h, w] = self.image;
        export(&self.module(&Device::flex()), [0, c, h, w], ImageCnn::forward)
    }

    /// One grouped convolution carries every example's own kernel (group `k` is example `k`),
    /// and batched matrix products its own dense layer.
    fn per_example_gradients(&self, data: &Table, rows: &[usize]) -> Vec<Vec<f32>> {
        let n = rows.len();
        if n == 0 {
            return Vec::new();
        }
        let device = Device::flex().autodiff();
        let ([c, h, w], f, k) = (self.image, self.filters, self.classes);
        let flat = f * (h / 2) * (w / 2);
        let (x, onehot) = standardised_batch(data, rows, &self.shift, &self.scale, k);
        let x = Tensor::<4>::from_data(TensorData::new(x, [1, n * c, h, w]), &device);
        let onehot = Tensor::<3>::from_data(TensorData::new(onehot, [n, 1, k]), &device);
        let kernel = replicated(&self.kernel, n, [n * f, c, 3, 3], &device);
        let kernel_bias = replicated(&self.kernel_bias, n, [n * f], &device);
        let dense = replicated(&self.w, n, [n, flat, k], &device);
        let bias = replicated(&self.b, n, [n, 1, k], &device);
        let maps = relu(burn::tensor::module::conv2d(x, kernel.clone(), Some(kernel_bias.clone()), conv_options(n)));
        let pooled = pool(maps.reshape([n, f, h, w])).reshape([n, 1, flat]);
        let logits = pooled.matmul(dense.clone()) + bias.clone();
        let loss = -(log_softmax(logits, 2) * onehot).sum();
        let grads = loss.backward();
        let parts = [
            gradient(&kernel, &grads),
            gradient(&kernel_bias, &grads),
            gradient(&dense, &grads),
            gradient(&bias, &grads),
        ];
        per_example(&parts, &[f * c * 9, f, flat * k, k], n)
    }
}

/// A model this trainer writes: the tabular perceptron or the image network, told apart by
/// their initializers.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// [`MlpParameters`].
    Mlp(MlpParameters),
    /// [`CnnParameters`].
    Cnn(CnnParameters),
}

impl Model {
    /// The model an ONNX file holds.
    ///
    /// # Errors
    /// [`TrainError::Model`]: neither network.
    pub fn from_onnx(bytes: &[u8]) -> Result<Self, TrainError> {
        let found = initializers(bytes)?;
        if found.contains_key("conv.weight") {
            CnnParameters::from_initializers(found).map(Self::Cnn)
        } else {
            MlpParameters::from_initializers(found).map(Self::Mlp)
        }
    }

    /// The fixed `(shift, scale)` that standardise the inputs.
    pub fn standardisation(&self) -> (&[f32], &[f32]) {
        match self {
            Self::Mlp(m) => (&m.shift, &m.scale),
            Self::Cnn(m) => (&m.shift, &m.scale),
        }
    }

    /// The genesis model `tclearn model init` makes of this model's shape from a `recipe`
    /// (its seed and declared ranges): what a genesis of this trainer must be, byte for byte,
    /// so that its weights carry nothing but the seed and its standardisation nothing but the
    /// ranges.
    ///
    /// # Errors
    /// [`TrainError::Genesis`]: ranges that do not fit the model's inputs.
    pub fn regenerate(&self, recipe: &GenesisRecipe) -> Result<Model, TrainError> {
        let genesis = |e: TrainError| TrainError::Genesis(e.to_string());
        let ranges = &recipe.standardisation;
        match self {
            Self::Mlp(m) if ranges.ranges.len() != m.inputs => Err(TrainError::Genesis(format!(
                "{} standardisation ranges for a perceptron of {} inputs",
                ranges.ranges.len(),
                m.inputs
            ))),
            Self::Mlp(m) => {
                MlpParameters::init(ranges, m.hidden, m.classes, recipe.seed).map(Self::Mlp).map_err(genesis)
            }
            Self::Cnn(m) => {
                CnnParameters::init(ranges, m.image, m.filters, m.classes, recipe.seed).map(Self::Cnn).map_err(genesis)
            }
        }
    }
}

impl Network for Model {
    fn inputs(&self) -> usize {
        match self {
            Self::Mlp(m) => m.inputs(),
            Self::Cnn(m) => m.inputs(),
        }
    }

    fn classes(&self) -> usize {
        match self {
            Self::Mlp(m) => m.classes(),
            Self::Cnn(m) => m.classes(),
        }
    }

    fn trained(&self) -> Vec<f32> {
        match self {
            Self::Mlp(m) => m.trained(),
            Self::Cnn(m) => m.trained(),
        }
    }

    fn set_trained(&mut self, values: &[f32]) {
        match self {
            Self::Mlp(m) => m.set_trained(values),
            Self::Cnn(m) => m.set_trained(values),
        }
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<i64>, Vec<f32>)> {
        match self {
            Self::Mlp(m) => m.tensors(),
            Self::Cnn(m) => m.tensors(),
        }
    }

    fn logits(&self, data: &Table) -> Vec<f32> {
        match self {
            Self::Mlp(m) => m.logits(data),
            Self::Cnn(m) => m.logits(data),
        }
    }

    fn per_example_gradients(&self, data: &Table, rows: &[usize]) -> Vec<Vec<f32>> {
        match self {
            Self::Mlp(m) => m.per_example_gradients(data, rows),
            Self::Cnn(m) => m.per_example_gradients(data, rows),
        }
    }

    fn to_onnx(&self) -> Result<Vec<u8>, TrainError> {
        match self {
            Self::Mlp(m) => m.to_onnx(),
            Self::Cnn(m) => m.to_onnx(),
        }
    }
}

/// The increment from `parent` to `trained` as a delta file: every trained tensor's change, as
/// `tclearn_model::delta` reads it (the members' API merges it onto the parent block's model).
pub fn delta<N: Network>(parent: &N, trained: &N) -> Vec<u8> {
    let changes: Vec<(&str, Vec<i64>, Vec<f32>)> = trained
        .tensors()
        .into_iter()
        .zip(parent.tensors())
        .map(|((name, dims, after), (_, _, before))| {
            (name, dims, after.iter().zip(&before).map(|(a, b)| a - b).collect())
        })
        .collect();
    tclearn_model::delta::encode(&changes)
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
    /// Seed of batches and noise, for reproducible runs (tests of the trainer); `None` (what a
    /// member's training uses) draws them from a generator seeded with 256 bits of the OS's
    /// random source on every run, so that nobody can regenerate the noise.
    pub seed: Option<u64>,
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

pub use privacy::Schedule;

/// The schedule of `training` over `examples` rows (at least one): the accountant's, which the
/// validators recompute from the round.
pub fn schedule(examples: usize, training: &Training) -> Schedule {
    privacy::schedule(examples, training.batch_size, training.epochs)
}

/// Train `parameters` on `data` (SGD, or DP-SGD with `training.privacy`); `on_step(done,
/// total)` after each step.
///
/// # Errors
/// [`TrainError::Data`] (labels or width that do not fit the model), [`TrainError::Setting`]
/// (no epoch, no batch, a learning rate or privacy setting out of range).
pub fn train<N: Network>(
    parameters: &mut N,
    data: &Table,
    training: &Training,
    mut on_step: impl FnMut(u64, u64),
) -> Result<TrainReport, TrainError> {
    if data.width != parameters.inputs() {
        return Err(TrainError::Data(format!(
            "{} features per row; the model takes {}",
            data.width,
            parameters.inputs()
        )));
    }
    if let Some(label) = data.labels.iter().find(|l| **l as usize >= parameters.classes()) {
        return Err(TrainError::Data(format!("label {label}; the model has {} classes", parameters.classes())));
    }
    if training.epochs == 0
        || training.batch_size == 0
        || !(training.learning_rate > 0.0 && training.learning_rate.is_finite())
    {
        return Err(TrainError::Setting("epochs, batch size and learning rate must be positive".into()));
    }
    if let Some(dp) = training.privacy {
        if !(dp.clip_norm > 0.0
            && dp.noise_multiplier > 0.0
            && dp.clip_norm.is_finite()
            && dp.noise_multiplier.is_finite())
        {
            return Err(TrainError::Setting("DP-SGD needs a positive clipping norm and noise multiplier".into()));
        }
    }
    let n = data.len();
    let Schedule { batch, q, steps_per_epoch, steps } = schedule(n, training);
    let mut rng = match training.seed {
        Some(seed) => ChaCha20Rng::seed_from_u64(seed),
        None => ChaCha20Rng::from_os_rng(),
    };
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
    Ok(TrainReport {
        examples: n,
        steps,
        loss_before,
        loss_after: parameters.loss(data),
        privacy,
        sampling_rate: q,
        gradients,
        seconds,
    })
}

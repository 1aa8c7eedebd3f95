//! Models built in code, as ONNX: the reference architectures the tests, benchmarks and demos
//! run, so that no binary model file has to be trusted or vendored.
//!
//! - [`Mlp`]: `softmax(relu(x·W1 + b1)·W2 + b2)`, or without the hidden layer
//!   (`softmax(x·W + b)`, a multinomial logistic regression) for tabular sets;
//! - [`Cnn`]: `softmax(dense(flatten(maxpool2(relu(conv3x3(x))))))` for images.
//!
//! Both take a free batch dimension. [`train_logistic`] fits the one-layer [`Mlp`] by full-batch
//! gradient descent with standardised features, so that a test can make a model that is good
//! on real data without Python.

use onnx_rs::ast::{
    Attribute, AttributeType, DataType, Dimension, Graph, Node, OpType, OperatorSetId, TensorProto, TensorShape,
    TensorShapeDimension, TensorTypeProto, TypeProto, TypeValue, ValueInfo,
};

/// The opset the built models import.
pub const OPSET: i64 = 17;

/// A dense layer: `weights` is `inputs × outputs`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// `inputs × outputs` weights, row-major.
    pub weights: Vec<f32>,
    /// One bias per output.
    pub bias: Vec<f32>,
}

impl Dense {
    /// `x·W + b` for one row.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        (0..self.outputs)
            .map(|j| self.bias[j] + (0..self.inputs).map(|i| x[i] * self.weights[i * self.outputs + j]).sum::<f32>())
            .collect()
    }
}

/// A perceptron with zero or one hidden layer and a softmax output.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// The hidden layer (followed by ReLU), if any.
    pub hidden: Option<Dense>,
    /// The output layer (followed by softmax).
    pub output: Dense,
}

/// A convolutional classifier for `channels × height × width` images (even sides): a 3×3
/// convolution with padding 1 into `filters` maps, ReLU, 2×2 max pooling, then a dense softmax.
#[derive(Debug, Clone, PartialEq)]
pub struct Cnn {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Convolution filters.
    pub filters: usize,
    /// `filters × channels × 3 × 3` kernel, as ONNX lays it out.
    pub kernel: Vec<f32>,
    /// One bias per filter.
    pub kernel_bias: Vec<f32>,
    /// Dense layer from `filters × height/2 × width/2` to the classes.
    pub dense: Dense,
}

fn tensor_type(dims: Vec<Dimension<'static>>) -> TypeProto<'static> {
    TypeProto {
        value: Some(TypeValue::Tensor(TensorTypeProto {
            elem_type: DataType::Float,
            shape: Some(TensorShape {
                dim: dims.into_iter().map(|value| TensorShapeDimension { value, ..Default::default() }).collect(),
            }),
        })),
        ..Default::default()
    }
}

fn value(name: &'static str, dims: Vec<Dimension<'static>>) -> ValueInfo<'static> {
    ValueInfo { name, r#type: Some(tensor_type(dims)), ..Default::default() }
}

fn node(op_type: OpType<'static>, input: Vec<&'static str>, output: &'static str) -> Node<'static> {
    Node { op_type, input, output: vec![output], ..Default::default() }
}

fn ints(name: &'static str, values: Vec<i64>) -> Attribute<'static> {
    Attribute { name, r#type: AttributeType::Ints, ints: values, ..Default::default() }
}

fn int(name: &'static str, value: i64) -> Attribute<'static> {
    Attribute { name, r#type: AttributeType::Int, i: value, ..Default::default() }
}

fn softmax(input: &'static str) -> Node<'static> {
    let mut softmax = node(OpType::Softmax, vec![input], "probabilities");
    softmax.attribute = vec![int("axis", 1)];
    softmax
}

fn model(graph: Graph<'static>) -> Vec<u8> {
    onnx_rs::encode(&onnx_rs::ast::Model {
        ir_version: 8,
        opset_import: vec![OperatorSetId { domain: "", version: OPSET }],
        producer_name: "tclearn-oracle",
        graph: Some(graph),
        ..Default::default()
    })
}

fn dims(values: &[usize]) -> Vec<i64> {
    values.iter().map(|v| *v as i64).collect()
}

impl Mlp {
    /// The model as ONNX bytes: input `x` of `[batch, inputs]`, output `probabilities`.
    pub fn to_onnx(&self) -> Vec<u8> {
        self.onnx(true)
    }

    /// The model without its softmax, as a regressor: output `logits`, `relu(x·W1 + b1)·W2 + b2`
    /// ([`Mlp::regress`]).
    pub fn to_regressor_onnx(&self) -> Vec<u8> {
        self.onnx(false)
    }

    /// What [`Mlp::to_regressor_onnx`] computes, for one row.
    pub fn regress(&self, x: &[f32]) -> Vec<f32> {
        let hidden = match &self.hidden {
            Some(layer) => layer.forward(x).into_iter().map(|v| v.max(0.0)).collect(),
            None => x.to_vec(),
        };
        self.output.forward(&hidden)
    }

    fn onnx(&self, softmax_output: bool) -> Vec<u8> {
        let inputs = self.hidden.as_ref().unwrap_or(&self.output).inputs;
        let out = &self.output;
        let mut nodes = Vec::new();
        let mut initializer = Vec::new();
        let mut last = "x";
        if let Some(hidden) = &self.hidden {
            nodes.push(node(OpType::Gemm, vec!["x", "w1", "b1"], "h"));
            nodes.push(node(OpType::Relu, vec!["h"], "a"));
            initializer.push(TensorProto::from_f32(
                "w1",
                dims(&[hidden.inputs, hidden.outputs]),
                hidden.weights.clone(),
            ));
            initializer.push(TensorProto::from_f32("b1", dims(&[hidden.outputs]), hidden.bias.clone()));
            last = "a";
        }
        nodes.push(node(OpType::Gemm, vec![last, "w2", "b2"], "logits"));
        let output = if softmax_output {
            nodes.push(softmax("logits"));
            "probabilities"
        } else {
            "logits"
        };
        initializer.push(TensorProto::from_f32("w2", dims(&[out.inputs, out.outputs]), out.weights.clone()));
        initializer.push(TensorProto::from_f32("b2", dims(&[out.outputs]), out.bias.clone()));
        model(Graph {
            name: "mlp",
            node: nodes,
            initializer,
            input: vec![value("x", vec![Dimension::Param("batch"), Dimension::Value(inputs as i64)])],
            output: vec![value(output, vec![Dimension::Param("batch"), Dimension::Value(out.outputs as i64)])],
            ..Default::default()
        })
    }

    /// The same computation in plain Rust, for one row.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let hidden = match &self.hidden {
            Some(layer) => layer.forward(x).into_iter().map(|v| v.max(0.0)).collect(),
            None => x.to_vec(),
        };
        softmax_row(&self.output.forward(&hidden))
    }
}

impl Cnn {
    /// The model as ONNX bytes: input `x` of `[batch, channels, height, width]`.
    pub fn to_onnx(&self) -> Vec<u8> {
        let mut conv = node(OpType::Conv, vec!["x", "kernel", "kernel_bias"], "c");
        conv.attribute = vec![ints("kernel_shape", vec![3, 3]), ints("pads", vec![1, 1, 1, 1])];
        let mut pool = node(OpType::MaxPool, vec!["r"], "p");
        pool.attribute = vec![ints("kernel_shape", vec![2, 2]), ints("strides", vec![2, 2])];
        let mut flatten = node(OpType::Flatten, vec!["p"], "f");
        flatten.attribute = vec![int("axis", 1)];
        let classes = self.dense.outputs;
        model(Graph {
            name: "cnn",
            node: vec![
                conv,
                node(OpType::Relu, vec!["c"], "r"),
                pool,
                flatten,
                node(OpType::Gemm, vec!["f", "w", "b"], "logits"),
                softmax("logits"),
            ],
            initializer: vec![
                TensorProto::from_f32("kernel", dims(&[self.filters, self.channels, 3, 3]), self.kernel.clone()),
                TensorProto::from_f32("kernel_bias", dims(&[self.filters]), self.kernel_bias.clone()),
                TensorProto::from_f32("w", dims(&[self.dense.inputs, classes]), self.dense.weights.clone()),
                TensorProto::from_f32("b", dims(&[classes]), self.dense.bias.clone()),
            ],
            input: vec![value(
                "x",
                vec![
                    Dimension::Param("batch"),
                    Dimension::Value(self.channels as i64),
                    Dimension::Value(self.height as i64),
                    Dimension::Value(self.width as i64),
                ],
            )],
            output: vec![value("probabilities", vec![Dimension::Param("batch"), Dimension::Value(classes as i64)])],
            ..Default::default()
        })
    }

    /// The same computation in plain Rust, for one `C×H×W` image.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (h, w) = (self.height, self.width);
        let pixel = |c: usize, y: isize, x_: isize| -> f32 {
            if y < 0 || x_ < 0 || y >= h as isize || x_ >= w as isize {
                0.0
            } else {
                x[(c * h + y as usize) * w + x_ as usize]
            }
        };
        let mut pooled = Vec::with_capacity(self.filters * (h / 2) * (w / 2));
        for f in 0..self.filters {
            let conv = |y: usize, x_: usize| -> f32 {
                let mut sum = self.kernel_bias[f];
                for c in 0..self.channels {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let weight = self.kernel[((f * self.channels + c) * 3 + ky) * 3 + kx];
                            sum += weight * pixel(c, y as isize + ky as isize - 1, x_ as isize + kx as isize - 1);
                        }
                    }
                }
                sum.max(0.0)
            };
            for py in 0..h / 2 {
                for px in 0..w / 2 {
                    let window = [
                        conv(2 * py, 2 * px),
                        conv(2 * py, 2 * px + 1),
                        conv(2 * py + 1, 2 * px),
                        conv(2 * py + 1, 2 * px + 1),
                    ];
                    pooled.push(window.into_iter().fold(f32::NEG_INFINITY, f32::max));
                }
            }
        }
        softmax_row(&self.dense.forward(&pooled))
    }
}

/// Softmax of one row.
pub fn softmax_row(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// Fit a multinomial logistic regression (a one-layer [`Mlp`]) on `rows × width` features and
/// their labels, by `epochs` of full-batch gradient descent at `rate` on standardised features;
/// the standardisation is folded into the weights, so the model takes raw features.
pub fn train_logistic(features: &[f32], width: usize, labels: &[u32], classes: usize, epochs: usize, rate: f32) -> Mlp {
    let rows = labels.len();
    let column = |j: usize| features.iter().skip(j).step_by(width).take(rows);
    let mean: Vec<f32> = (0..width).map(|j| column(j).sum::<f32>() / rows as f32).collect();
    let std: Vec<f32> = (0..width)
        .map(|j| (column(j).map(|v| (v - mean[j]).powi(2)).sum::<f32>() / rows as f32).sqrt().max(1e-6))
        .collect();
    let standard: Vec<f32> = features.iter().enumerate().map(|(i, v)| (v - mean[i % width]) / std[i % width]).collect();
    let mut layer =
        Dense { inputs: width, outputs: classes, weights: vec![0.0; width * classes], bias: vec![0.0; classes] };
    for _ in 0..epochs {
        let mut grad_w = vec![0.0f32; width * classes];
        let mut grad_b = vec![0.0f32; classes];
        for (x, label) in standard.chunks(width).zip(labels) {
            let p = softmax_row(&layer.forward(x));
            for k in 0..classes {
                let error = p[k] - if *label as usize == k { 1.0 } else { 0.0 };
                grad_b[k] += error;
                for i in 0..width {
                    grad_w[i * classes + k] += error * x[i];
                }
            }
        }
        let step = rate / rows as f32;
        layer.weights.iter_mut().zip(&grad_w).for_each(|(w, g)| *w -= step * g);
        layer.bias.iter_mut().zip(&grad_b).for_each(|(b, g)| *b -= step * g);
    }
    // x_std = (x - mean) / std  =>  W' = W / std (per input row), b' = b - Σ_i mean_i W'_i.
    for (row, s) in layer.weights.chunks_mut(classes).zip(&std).take(width) {
        row.iter_mut().for_each(|w| *w /= s);
    }
    for k in 0..classes {
        layer.bias[k] -= (0..width).map(|i| mean[i] * layer.weights[i * classes + k]).sum::<f32>();
    }
    Mlp { hidden: None, output: layer }
}

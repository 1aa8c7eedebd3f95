//! Inference with ONNX Runtime (through `ort`, the library loaded at run time from
//! `ORT_DYLIB_PATH` or a path given here).
//!
//! A [`Model`] runs a test set in batches of a fixed number of rows, so memory follows the batch
//! size, not the test set's size; ONNX Runtime parallelises each batch over `threads` cores.
//! This is the engine's first layer: the model checks the coalition requires before anything
//! runs (size, opsets, domains, signature, architecture hash) come next.

use ort::{
    environment::Environment,
    session::Session,
    value::TensorRef,
};
use std::path::Path;

/// Why inference failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The ONNX Runtime library could not be loaded.
    #[error("loading ONNX Runtime from {path}: {reason}")]
    Library {
        /// Where it was looked for.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// ONNX Runtime refused the model or the run.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The model's inputs or outputs are not one float tensor in, one out.
    #[error("model signature: {0}")]
    Signature(String),
    /// The features do not fill whole rows of `width`.
    #[error("{len} feature values do not make rows of {width}")]
    Ragged {
        /// Number of values.
        len: usize,
        /// Row width.
        width: usize,
    },
}

fn runtime(error: ort::Error) -> EngineError {
    EngineError::Runtime(error.to_string())
}

/// ONNX Runtime, loaded once, and the thread count of the sessions it makes.
pub struct Engine {
    environment: Environment,
    threads: usize,
}

impl Engine {
    /// Load ONNX Runtime from `library` (or `$ORT_DYLIB_PATH`); sessions use `threads` threads.
    /// The library is loaded once per process: the first engine's path wins.
    pub fn new(library: Option<&Path>, threads: usize) -> Result<Self, EngineError> {
        let path = match library {
            Some(path) => path.to_path_buf(),
            None => std::env::var_os("ORT_DYLIB_PATH").map(Into::into).ok_or_else(|| EngineError::Library {
                path: "$ORT_DYLIB_PATH".into(),
                reason: "not set".into(),
            })?,
        };
        let library_error = |reason: String| EngineError::Library { path: path.display().to_string(), reason };
        // ort keeps the first library it loads for the whole process and then ignores later
        // paths, so a missing file is reported here rather than papered over.
        if !path.is_file() {
            return Err(library_error("no such file".into()));
        }
        let environment = ort::init_from(&path)
            .map_err(|e| library_error(e.to_string()))?
            .with_name("tclearn-oracle")
            .build()
            .map_err(|e| library_error(e.to_string()))?;
        Ok(Self { environment, threads: threads.max(1) })
    }

    /// A model from its ONNX bytes: one float tensor in, one float tensor out.
    pub fn load(&self, onnx: &[u8]) -> Result<Model, EngineError> {
        let session = Session::builder(&self.environment)
            .map_err(runtime)?
            .with_intra_threads(self.threads)
            .map_err(|e| EngineError::Runtime(e.to_string()))?
            .commit_from_memory(onnx)
            .map_err(runtime)?;
        if session.inputs().len() != 1 || session.outputs().len() != 1 {
            return Err(EngineError::Signature(format!(
                "{} inputs and {} outputs; the coalition's models have one of each",
                session.inputs().len(),
                session.outputs().len()
            )));
        }
        Ok(Model { session })
    }
}

/// A loaded model.
pub struct Model {
    session: Session,
}

/// A model's outputs: one row of `width` values per input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Outputs, row-major.
    pub values: Vec<f32>,
    /// Values per row.
    pub width: usize,
}

impl Model {
    /// Run `features` (rows of `width`) through the model, `batch` rows at a time.
    pub fn predict(&mut self, features: &[f32], width: usize, batch: usize) -> Result<Predictions, EngineError> {
        if width == 0 || features.len() % width != 0 {
            return Err(EngineError::Ragged { len: features.len(), width });
        }
        let rows_per_batch = batch.max(1);
        let mut values = Vec::new();
        let mut out_width = 0;
        for chunk in features.chunks(rows_per_batch * width) {
            let rows = chunk.len() / width;
            // Borrowed, not copied: ONNX Runtime reads the batch where it lies.
            let input = TensorRef::from_array_view(([rows, width], chunk)).map_err(runtime)?;
            let outputs = self.session.run(ort::inputs![input]).map_err(runtime)?;
            let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(runtime)?;
            let produced_rows = shape.first().copied().unwrap_or(0);
            if produced_rows != rows as i64 || data.len() % rows.max(1) != 0 {
                return Err(EngineError::Signature(format!("{rows} rows in, output shape {shape:?}")));
            }
            out_width = data.len() / rows.max(1);
            values.extend_from_slice(data);
        }
        Ok(Predictions { values, width: out_width })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_rs::ast::*;

    /// A two-layer perceptron `softmax(relu(x·W1 + b1)·W2 + b2)` as ONNX (opset 17), with a
    /// dynamic batch dimension.
    fn mlp(w1: &[f32], b1: &[f32], w2: &[f32], b2: &[f32], inputs: i64, hidden: i64, classes: i64) -> Vec<u8> {
        let tensor_type = |dims: Vec<Dimension<'static>>| TypeProto {
            value: Some(TypeValue::Tensor(TensorTypeProto {
                elem_type: DataType::Float,
                shape: Some(TensorShape {
                    dim: dims.into_iter().map(|value| TensorShapeDimension { value, ..Default::default() }).collect(),
                }),
            })),
            ..Default::default()
        };
        let node = |op_type, input: Vec<&'static str>, output| Node {
            op_type,
            input,
            output: vec![output],
            ..Default::default()
        };
        let mut softmax = node(OpType::Softmax, vec!["logits"], "probabilities");
        softmax.attribute = vec![Attribute { name: "axis", r#type: AttributeType::Int, i: 1, ..Default::default() }];
        let model = onnx_rs::ast::Model {
            ir_version: 8,
            opset_import: vec![OperatorSetId { domain: "", version: 17 }],
            producer_name: "tclearn-oracle tests",
            graph: Some(Graph {
                name: "mlp",
                node: vec![
                    node(OpType::Gemm, vec!["x", "w1", "b1"], "h"),
                    node(OpType::Relu, vec!["h"], "a"),
                    node(OpType::Gemm, vec!["a", "w2", "b2"], "logits"),
                    softmax,
                ],
                initializer: vec![
                    TensorProto::from_f32("w1", vec![inputs, hidden], w1.to_vec()),
                    TensorProto::from_f32("b1", vec![hidden], b1.to_vec()),
                    TensorProto::from_f32("w2", vec![hidden, classes], w2.to_vec()),
                    TensorProto::from_f32("b2", vec![classes], b2.to_vec()),
                ],
                input: vec![ValueInfo {
                    name: "x",
                    r#type: Some(tensor_type(vec![Dimension::Param("batch"), Dimension::Value(inputs)])),
                    ..Default::default()
                }],
                output: vec![ValueInfo {
                    name: "probabilities",
                    r#type: Some(tensor_type(vec![Dimension::Param("batch"), Dimension::Value(classes)])),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        onnx_rs::encode(&model)
    }

    /// The same perceptron in plain Rust, to check ONNX Runtime against.
    fn forward(x: &[f32], w1: &[f32], b1: &[f32], w2: &[f32], b2: &[f32], hidden: usize, classes: usize) -> Vec<f32> {
        let inputs = x.len();
        let h: Vec<f32> = (0..hidden)
            .map(|j| (b1[j] + (0..inputs).map(|i| x[i] * w1[i * hidden + j]).sum::<f32>()).max(0.0))
            .collect();
        let logits: Vec<f32> = (0..classes)
            .map(|k| b2[k] + (0..hidden).map(|j| h[j] * w2[j * classes + k]).sum::<f32>())
            .collect();
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = exps.iter().sum();
        exps.iter().map(|e| e / total).collect()
    }

    fn library() -> std::path::PathBuf {
        // Set by .cargo/config.toml for every cargo command in the repository.
        std::env::var_os("ORT_DYLIB_PATH").expect("ORT_DYLIB_PATH (scripts/setup.sh links the library)").into()
    }

    #[test]
    fn onnx_runtime_matches_an_independent_forward_pass_in_every_batch_size() {
        let (inputs, hidden, classes) = (3usize, 4usize, 2usize);
        let w1: Vec<f32> = (0..inputs * hidden).map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0).collect();
        let b1 = [0.1, -0.2, 0.05, 0.0];
        let w2: Vec<f32> = (0..hidden * classes).map(|i| ((i * 5 % 7) as f32 - 3.0) / 4.0).collect();
        let b2 = [0.3, -0.3];
        let onnx = mlp(&w1, &b1, &w2, &b2, inputs as i64, hidden as i64, classes as i64);
        let engine = Engine::new(Some(&library()), 2).unwrap();
        let mut model = engine.load(&onnx).unwrap();
        let rows = 10;
        let features: Vec<f32> = (0..rows * inputs).map(|i| ((i * 13 % 17) as f32 - 8.0) / 3.0).collect();
        let expected: Vec<f32> = features
            .chunks(inputs)
            .flat_map(|x| forward(x, &w1, &b1, &w2, &b2, hidden, classes))
            .collect();
        for batch in [1, 3, 10, 64] {
            let predictions = model.predict(&features, inputs, batch).unwrap();
            assert_eq!(predictions.width, classes);
            assert_eq!(predictions.values.len(), expected.len());
            for (got, want) in predictions.values.iter().zip(&expected) {
                assert!((got - want).abs() < 1e-5, "batch {batch}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn bad_models_and_inputs_are_refused_with_a_reason() {
        let engine = Engine::new(Some(&library()), 1).unwrap();
        let error = engine.load(b"not an onnx model").err().expect("garbage is refused").to_string();
        assert!(error.starts_with("ONNX Runtime:"), "{error}");
        let onnx = mlp(&[0.0; 2], &[0.0], &[0.0; 2], &[0.0; 2], 2, 1, 2);
        let mut model = engine.load(&onnx).unwrap();
        assert!(matches!(model.predict(&[1.0, 2.0, 3.0], 2, 4), Err(EngineError::Ragged { len: 3, width: 2 })));
        let missing = Engine::new(Some(Path::new("/nonexistent/libonnxruntime.so")), 1).err().unwrap();
        assert!(missing.to_string().starts_with("loading ONNX Runtime from /nonexistent"), "{missing}");
    }
}

//! Weight deltas (TCLearn's "gradients"): an increment sent as the change of the weights, merged
//! onto a block's model by a rule anyone can run and get the same bytes.
//!
//! A delta is an ONNX file whose graph holds only initializers: float tensors named as weights
//! of the parent model, with the same dimensions. [`merge`] adds each to the parent's tensor
//! (one IEEE-754 single-precision addition per element, so every host gets the same bits),
//! leaves every other tensor and the whole graph as they are, and encodes the result with
//! `onnx-rs`'s encoder. The merged model's SHA3-256 is the candidate's hash; it must pass the
//! same model checks as any candidate (its architecture hash is the parent's, since only
//! weights change).

use onnx_rs::ast::{DataType, TensorProto};

/// Most tensors a delta may hold.
pub const MAX_DELTA_TENSORS: usize = 4_096;

/// Why a delta does not merge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeltaError {
    /// The parent or the delta is not an ONNX file.
    #[error("{which} is not an ONNX model: {reason}")]
    Malformed {
        /// `parent` or `delta`.
        which: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The delta has nodes: it must hold initializers only.
    #[error("a delta holds initializers only; this one has {0} nodes")]
    HasNodes(usize),
    /// No tensor, or too many.
    #[error("a delta holds 1 to {MAX_DELTA_TENSORS} tensors; this one has {0}")]
    TensorCount(usize),
    /// A tensor the parent has no float weight for.
    #[error("the parent has no float tensor {0:?}")]
    UnknownTensor(String),
    /// The same tensor twice.
    #[error("tensor {0:?} appears twice in the delta")]
    Duplicate(String),
    /// Dimensions or element type that differ from the parent's.
    #[error("tensor {name:?}: the delta is {found:?} floats, the parent {expected:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// The parent's dimensions.
        expected: Vec<i64>,
        /// The delta's.
        found: Vec<i64>,
    },
    /// A NaN or infinite value in the delta or in the sum.
    #[error("tensor {0:?}: the delta or the merged weights are not finite")]
    NonFinite(String),
}

fn floats<'t>(tensor: &'t TensorProto<'_>) -> Option<std::borrow::Cow<'t, [f32]>> {
    if tensor.data_type() != DataType::Float {
        return None;
    }
    let elements: i64 = tensor.dims().iter().product();
    if elements == 0 {
        return Some(std::borrow::Cow::Owned(Vec::new()));
    }
    tensor.as_f32().filter(|values| values.len() as i64 == elements)
}

/// The model `parent + delta`, encoded.
pub fn merge(parent: &[u8], delta: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let malformed = |which, e: onnx_rs::Error| DeltaError::Malformed { which, reason: e.to_string() };
    let mut model = onnx_rs::parse(parent).map_err(|e| malformed("parent", e))?;
    let changes = onnx_rs::parse(delta).map_err(|e| malformed("delta", e))?;
    let no_graph = |which| DeltaError::Malformed { which, reason: "no graph".into() };
    let changes = changes.graph.as_ref().ok_or_else(|| no_graph("delta"))?;
    if !changes.node.is_empty() {
        return Err(DeltaError::HasNodes(changes.node.len()));
    }
    if changes.initializer.is_empty() || changes.initializer.len() > MAX_DELTA_TENSORS {
        return Err(DeltaError::TensorCount(changes.initializer.len()));
    }
    let graph = model.graph.as_mut().ok_or_else(|| no_graph("parent"))?;
    let mut seen = std::collections::HashSet::new();
    for change in &changes.initializer {
        let name = change.name();
        if !seen.insert(name) {
            return Err(DeltaError::Duplicate(name.into()));
        }
        let unknown = || DeltaError::UnknownTensor(name.into());
        let slot = graph.initializer.iter().position(|t| t.name() == name).ok_or_else(unknown)?;
        let weights = &graph.initializer[slot];
        let base = floats(weights).ok_or_else(unknown)?;
        let shape = || DeltaError::Shape {
            name: name.into(),
            expected: weights.dims().to_vec(),
            found: change.dims().to_vec(),
        };
        if change.dims() != weights.dims() {
            return Err(shape());
        }
        let step = floats(change).ok_or_else(shape)?;
        let merged: Vec<f32> = base.iter().zip(step.iter()).map(|(w, d)| w + d).collect();
        if step.iter().chain(merged.iter()).any(|v| !v.is_finite()) {
            return Err(DeltaError::NonFinite(name.into()));
        }
        let replacement = TensorProto::from_f32(weights.name(), weights.dims().to_vec(), merged)
            .with_doc_string(weights.doc_string());
        graph.initializer[slot] = replacement;
    }
    Ok(onnx_rs::encode(&model))
}

/// A delta file holding `tensors` (name, dimensions, values).
pub fn encode(tensors: &[(&str, Vec<i64>, Vec<f32>)]) -> Vec<u8> {
    use onnx_rs::ast::{Graph, Model, OperatorSetId};
    let initializer =
        tensors.iter().map(|(name, dims, values)| TensorProto::from_f32(name, dims.clone(), values.clone())).collect();
    onnx_rs::encode(&Model {
        ir_version: 8,
        producer_name: "tclearn-delta",
        opset_import: vec![OperatorSetId { domain: "", version: 13 }],
        graph: Some(Graph { name: "delta", initializer, ..Default::default() }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architectures::{Dense, Mlp};

    fn mlp() -> Mlp {
        let dense = |inputs, outputs, seed: f32| Dense {
            inputs,
            outputs,
            weights: (0..inputs * outputs).map(|i| ((i as f32) * 0.37 + seed).sin()).collect(),
            bias: (0..outputs).map(|i| (i as f32 + seed).cos()).collect(),
        };
        Mlp { hidden: Some(dense(4, 3, 0.1)), output: dense(3, 2, 0.7) }
    }

    fn tensor(bytes: &[u8], name: &str) -> Vec<f32> {
        let model = onnx_rs::parse(bytes).unwrap();
        floats(model.graph.as_ref().unwrap().get_initializer(name).unwrap()).unwrap().into_owned()
    }

    #[test]
    fn a_delta_adds_to_the_named_weights_and_keeps_the_architecture() {
        let parent = mlp();
        let parent_bytes = parent.to_onnx();
        let d_w2: Vec<f32> = (0..6).map(|i| 0.01 * i as f32).collect();
        let d_b1 = vec![-0.5, 0.25, 1.0];
        let delta = encode(&[("w2", vec![3, 2], d_w2.clone()), ("b1", vec![3], d_b1.clone())]);
        let merged = merge(&parent_bytes, &delta).unwrap();

        // Recomputed independently: the parent's weights plus the delta, nothing else changed.
        let mut expected = parent.clone();
        expected.output.weights.iter_mut().zip(&d_w2).for_each(|(w, d)| *w += d);
        expected.hidden.as_mut().unwrap().bias.iter_mut().zip(&d_b1).for_each(|(b, d)| *b += d);
        assert_eq!(tensor(&merged, "w2"), expected.output.weights);
        assert_eq!(tensor(&merged, "b1"), expected.hidden.as_ref().unwrap().bias);
        assert_eq!(tensor(&merged, "w1"), parent.hidden.as_ref().unwrap().weights);
        let architecture = |bytes: &[u8]| crate::checks::architecture_hash(&onnx_rs::parse(bytes).unwrap());
        assert_eq!(architecture(&merged), architecture(&parent_bytes));
        assert_eq!(merge(&parent_bytes, &delta).unwrap(), merged, "deterministic");
        assert_eq!(
            merged,
            merge(&merged_parent_reencoded(&parent_bytes), &delta).unwrap(),
            "the encoding is canonical"
        );
    }

    fn merged_parent_reencoded(parent: &[u8]) -> Vec<u8> {
        onnx_rs::encode(&onnx_rs::parse(parent).unwrap())
    }

    #[test]
    fn deltas_that_do_not_fit_the_parent_are_refused() {
        let parent = mlp().to_onnx();
        let refuse = |delta: Vec<u8>| merge(&parent, &delta).unwrap_err();
        assert!(matches!(refuse(encode(&[("w9", vec![3, 2], vec![0.0; 6])])), DeltaError::UnknownTensor(_)));
        assert!(matches!(refuse(encode(&[("w2", vec![2, 3], vec![0.0; 6])])), DeltaError::Shape { .. }));
        assert!(matches!(refuse(encode(&[("w2", vec![3, 2], vec![0.0; 5])])), DeltaError::Shape { .. }));
        assert!(matches!(refuse(encode(&[("w2", vec![3, 2], vec![f32::NAN; 6])])), DeltaError::NonFinite(_)));
        assert!(matches!(
            refuse(encode(&[("b2", vec![2], vec![0.5; 2]), ("b2", vec![2], vec![0.0; 2])])),
            DeltaError::Duplicate(_)
        ));
        assert!(matches!(refuse(encode(&[])), DeltaError::TensorCount(0)));
        assert!(matches!(refuse(parent.clone()), DeltaError::HasNodes(_)), "a whole model is not a delta");
        assert!(matches!(refuse(b"junk".to_vec()), DeltaError::Malformed { which: "delta", .. }));
        assert!(matches!(
            merge(b"junk", &encode(&[("w2", vec![3, 2], vec![0.0; 6])])),
            Err(DeltaError::Malformed { which: "parent", .. })
        ));
    }
}

//! The checks a candidate model passes before ONNX Runtime sees it.
//!
//! A candidate is refused, with the reason, when it:
//! - is larger than the coalition's limit ([`Refusal::TooLarge`]);
//! - is not a whole ONNX model: truncated, or not ONNX at all ([`Refusal::Malformed`]);
//! - imports the standard operator set outside the coalition's range ([`Refusal::Opset`]);
//! - uses anything but the standard domains `""`/`ai.onnx` and `ai.onnx.ml`, or model-local
//!   functions ([`Refusal::Domain`]): custom operators are native code the coalition never agreed to;
//! - uses an operator that is not in the standard set ([`Refusal::UnknownOp`]);
//! - keeps weights outside the file ([`Refusal::ExternalData`]);
//! - has inputs or outputs other than the coalition's signature ([`Refusal::Signature`]);
//! - has a weight that is NaN or infinite ([`Refusal::NonFinite`]);
//! - has another architecture than the genesis model ([`Refusal::Architecture`]).
//!
//! The architecture hash is SHA3-256 over a canonical encoding of everything in the model
//! except the values of floating-point tensors: operator-set imports, the graph's inputs and
//! outputs with their types, every node in order (operator, domain, input and output names,
//! attributes with their values) including subgraphs, and every initializer's name, type and
//! shape. Integer tensors (reshape targets, axes, indices) are structure, not weights, so their
//! values are hashed too. Names of nodes, documentation, producer and metadata are left out, as is
//! `value_info` (optional shape annotations exporters add or drop). Two models with the same
//! architecture hash therefore differ only in their floating-point weights.

use onnx_rs::ast::{
    Attribute, DataLocation, DataType, Dimension, Graph, Node, OpType, TensorProto, TypeProto, TypeValue, ValueInfo,
};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};

/// The standard ONNX operator set's domain, in its two spellings.
const DEFAULT_DOMAINS: [&str; 2] = ["", "ai.onnx"];
/// The standard classical machine-learning domain.
const ML_DOMAIN: &str = "ai.onnx.ml";
/// Tag that starts every architecture hash's input.
const ARCHITECTURE_TAG: &[u8] = b"tclearn/architecture/v1";

/// One tensor of the coalition's signature: float elements and these dimensions, `None` being a
/// free (symbolic) dimension such as the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Dimensions; `None` must be symbolic in the model.
    pub dims: Vec<Option<i64>>,
}

/// What the coalition requires of every model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPolicy {
    /// Largest file accepted, bytes.
    pub max_bytes: u64,
    /// Lowest standard opset accepted.
    pub min_opset: i64,
    /// Highest standard opset accepted.
    pub max_opset: i64,
    /// The one input.
    pub input: TensorSpec,
    /// The one output.
    pub output: TensorSpec,
    /// The genesis model's architecture hash, when known.
    pub architecture_hash: Option<[u8; 32]>,
}

/// Why a model is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Larger than the limit.
    #[error("model is {size} bytes; the coalition's limit is {max}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not a whole ONNX model.
    #[error("not a whole ONNX model (truncated or another format): {0}")]
    Malformed(String),
    /// The standard opset is missing or outside the range.
    #[error("standard opset {version} is outside the coalition's range {min}..={max}")]
    Opset {
        /// Imported version (0 when none is imported).
        version: i64,
        /// Lowest accepted.
        min: i64,
        /// Highest accepted.
        max: i64,
    },
    /// A non-standard domain.
    #[error("domain {0:?} is not a standard ONNX domain")]
    Domain(String),
    /// An operator outside the standard set.
    #[error("operator {0:?} is not a standard ONNX operator")]
    UnknownOp(String),
    /// Weights stored outside the file.
    #[error("tensor {0:?} keeps its data outside the model file")]
    ExternalData(String),
    /// Inputs or outputs differ from the coalition's.
    #[error("signature: {0}")]
    Signature(String),
    /// A NaN or infinite weight.
    #[error("tensor {0:?} holds a NaN or infinite value")]
    NonFinite(String),
    /// Another architecture than the genesis model.
    #[error("architecture {found} differs from the coalition's {expected}")]
    Architecture {
        /// Hex of the coalition's hash.
        expected: String,
        /// Hex of this model's.
        found: String,
    },
}

/// What the checks learnt about an accepted model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedModel {
    /// Its architecture hash.
    pub architecture_hash: [u8; 32],
    /// The standard opset it imports.
    pub opset: i64,
    /// Number of weight values (floating-point initializer elements).
    pub parameters: u64,
}

/// Check `bytes` against `policy`.
pub fn check(bytes: &[u8], policy: &ModelPolicy) -> Result<CheckedModel, Refusal> {
    let size = bytes.len() as u64;
    if size > policy.max_bytes {
        return Err(Refusal::TooLarge { size, max: policy.max_bytes });
    }
    let model = onnx_rs::parse(bytes).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let graph = model.graph.as_ref().filter(|g| !g.node.is_empty()).ok_or_else(|| Refusal::Malformed("no graph".into()))?;
    let mut opset = 0;
    for import in &model.opset_import {
        if DEFAULT_DOMAINS.contains(&import.domain) {
            opset = import.version;
        } else if import.domain != ML_DOMAIN {
            return Err(Refusal::Domain(import.domain.into()));
        }
    }
    if !(policy.min_opset..=policy.max_opset).contains(&opset) {
        return Err(Refusal::Opset { version: opset, min: policy.min_opset, max: policy.max_opset });
    }
    if let Some(function) = model.functions.first() {
        return Err(Refusal::Domain(format!("{} (a model-local function)", function.domain)));
    }
    let mut parameters = 0;
    check_graph(graph, &mut parameters)?;
    check_signature(graph, policy)?;
    let architecture_hash = architecture_hash(&model);
    if let Some(expected) = policy.architecture_hash.filter(|expected| *expected != architecture_hash) {
        return Err(Refusal::Architecture { expected: hex::encode(expected), found: hex::encode(architecture_hash) });
    }
    Ok(CheckedModel { architecture_hash, opset, parameters })
}

/// The model's own signature: its one input's and one output's dimensions, symbolic ones as
/// `None` (for `oracle evaluate` without a genesis declaration).
pub fn signature(bytes: &[u8]) -> Result<(TensorSpec, TensorSpec), Refusal> {
    let model = onnx_rs::parse(bytes).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let graph = model.graph.as_ref().ok_or_else(|| Refusal::Malformed("no graph".into()))?;
    let spec = |value: &ValueInfo<'_>| TensorSpec {
        dims: value
            .tensor_shape()
            .map(|shape| shape.dim.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|d| match d.value {
                Dimension::Value(v) if v > 0 => Some(v),
                _ => None,
            })
            .collect(),
    };
    match (graph.non_init_inputs().as_slice(), graph.output.as_slice()) {
        ([input], [output]) => Ok((spec(input), spec(output))),
        (inputs, outputs) => Err(Refusal::Signature(format!(
            "{} inputs and {} outputs; the coalition's models have one of each",
            inputs.len(),
            outputs.len()
        ))),
    }
}

/// Domains, operators and weights of `graph` and its subgraphs.
fn check_graph(graph: &Graph<'_>, parameters: &mut u64) -> Result<(), Refusal> {
    for tensor in &graph.initializer {
        *parameters = parameters.saturating_add(check_tensor(tensor)?);
    }
    for node in &graph.node {
        if DEFAULT_DOMAINS.contains(&node.domain) {
            if let OpType::Custom(name) = node.op_type {
                return Err(Refusal::UnknownOp(name.into()));
            }
        } else if node.domain != ML_DOMAIN {
            return Err(Refusal::Domain(node.domain.into()));
        }
        for attribute in &node.attribute {
            for tensor in attribute.t.iter().chain(&attribute.tensors) {
                check_tensor(tensor)?;
            }
            for subgraph in attribute.g.iter().map(|g| &**g).chain(&attribute.graphs) {
                check_graph(subgraph, parameters)?;
            }
        }
    }
    Ok(())
}

/// A tensor's data must be in the file and finite; returns its number of float values.
fn check_tensor(tensor: &TensorProto<'_>) -> Result<u64, Refusal> {
    if tensor.data_location() == DataLocation::External || !tensor.external_data().is_empty() {
        return Err(Refusal::ExternalData(tensor.name().into()));
    }
    let non_finite = Refusal::NonFinite(tensor.name().into());
    if let Some(values) = tensor.as_f32() {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(non_finite);
        }
        return Ok(values.len() as u64);
    }
    if let Some(values) = tensor.as_f64() {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(non_finite);
        }
        return Ok(values.len() as u64);
    }
    Ok(0)
}

/// One float input and one float output, shaped as the coalition declares.
fn check_signature(graph: &Graph<'_>, policy: &ModelPolicy) -> Result<(), Refusal> {
    let inputs = graph.non_init_inputs();
    let [input] = inputs.as_slice() else {
        return Err(Refusal::Signature(format!("{} inputs; the coalition's models have one", inputs.len())));
    };
    let [output] = graph.output.as_slice() else {
        return Err(Refusal::Signature(format!("{} outputs; the coalition's models have one", graph.output.len())));
    };
    check_tensor_spec("input", input, &policy.input)?;
    check_tensor_spec("output", output, &policy.output)
}

fn check_tensor_spec(role: &str, value: &ValueInfo<'_>, spec: &TensorSpec) -> Result<(), Refusal> {
    let refuse = |what: String| Refusal::Signature(format!("{role} {:?}: {what}", value.name));
    if value.tensor_elem_type() != Some(DataType::Float) {
        return Err(refuse(format!("element type {:?}; the coalition's is Float", value.tensor_elem_type())));
    }
    let dims = value.tensor_shape().map(|shape| shape.dim.as_slice()).unwrap_or_default();
    let shape: Vec<String> = dims.iter().map(|d| dimension_text(&d.value)).collect();
    let declared: Vec<String> = spec.dims.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
    let mismatch = || refuse(format!("shape [{}]; the coalition's is [{}]", shape.join(", "), declared.join(", ")));
    if dims.len() != spec.dims.len() {
        return Err(mismatch());
    }
    for (dim, want) in dims.iter().zip(&spec.dims) {
        match (&dim.value, want) {
            (Dimension::Value(v), Some(w)) if v == w => {}
            (Dimension::Param(_), None) => {}
            // An unnamed dimension is stored as 0 and is free as well.
            (Dimension::Value(0), None) => {}
            _ => return Err(mismatch()),
        }
    }
    Ok(())
}

fn dimension_text(dimension: &Dimension<'_>) -> String {
    match dimension {
        Dimension::Value(v) => v.to_string(),
        Dimension::Param(name) => (*name).to_string(),
    }
}

/// The architecture hash of a parsed model (see the module documentation).
pub fn architecture_hash(model: &onnx_rs::ast::Model<'_>) -> [u8; 32] {
    let mut hasher = Canonical(Sha3_256::new());
    hasher.bytes(ARCHITECTURE_TAG);
    let mut imports: Vec<(&str, i64)> = model
        .opset_import
        .iter()
        .map(|import| (if DEFAULT_DOMAINS.contains(&import.domain) { "" } else { import.domain }, import.version))
        .collect();
    imports.sort();
    hasher.len(imports.len());
    for (domain, version) in imports {
        hasher.str(domain);
        hasher.i64(version);
    }
    match &model.graph {
        Some(graph) => hasher.graph(graph),
        None => hasher.len(0),
    }
    hasher.0.finalize().into()
}

/// A length-prefixed, little-endian encoding into SHA3-256: no two different sequences of calls
/// write the same bytes.
struct Canonical(Sha3_256);

impl Canonical {
    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.0.update(bytes);
    }
    fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }
    fn len(&mut self, len: usize) {
        self.0.update((len as u64).to_le_bytes());
    }
    fn i64(&mut self, value: i64) {
        self.0.update(value.to_le_bytes());
    }
    fn strs(&mut self, texts: &[&str]) {
        self.len(texts.len());
        for text in texts {
            self.str(text);
        }
    }

    fn graph(&mut self, graph: &Graph<'_>) {
        self.len(graph.input.len());
        for value in &graph.input {
            self.value_info(value);
        }
        self.len(graph.output.len());
        for value in &graph.output {
            self.value_info(value);
        }
        let mut initializers: Vec<&TensorProto<'_>> = graph.initializer.iter().collect();
        initializers.sort_by_key(|t| t.name());
        self.len(initializers.len());
        for tensor in initializers {
            self.tensor(tensor);
        }
        self.len(graph.node.len());
        for node in &graph.node {
            self.node(node);
        }
    }

    fn value_info(&mut self, value: &ValueInfo<'_>) {
        self.str(value.name);
        self.type_proto(value.r#type.as_ref());
    }

    fn type_proto(&mut self, proto: Option<&TypeProto<'_>>) {
        match proto.and_then(|p| p.value.as_ref()) {
            Some(TypeValue::Tensor(tensor)) => {
                self.str("tensor");
                self.str(&format!("{:?}", tensor.elem_type));
                let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
                self.len(dims.len());
                for dim in dims {
                    // A symbolic dimension's name is the exporter's choice, not the architecture.
                    self.i64(match dim.value {
                        Dimension::Value(v) => v,
                        Dimension::Param(_) => -1,
                    });
                }
            }
            Some(other) => self.str(&format!("{other:?}")),
            None => self.str("untyped"),
        }
    }

    fn tensor(&mut self, tensor: &TensorProto<'_>) {
        self.str(tensor.name());
        self.str(&format!("{:?}", tensor.data_type()));
        self.len(tensor.dims().len());
        for dim in tensor.dims() {
            self.i64(*dim);
        }
        // Weights (floating point) are left out; integer tensors are structure.
        match tensor.data_type() {
            DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16 => self.str("weights"),
            _ => {
                if let Some(values) = tensor.as_i64() {
                    self.str("i64");
                    self.len(values.len());
                    values.iter().for_each(|v| self.i64(*v));
                } else if let Some(values) = tensor.as_i32() {
                    self.str("i32");
                    self.len(values.len());
                    values.iter().for_each(|v| self.i64(i64::from(*v)));
                } else {
                    self.str("raw");
                    self.bytes(tensor.as_raw().unwrap_or_default());
                }
            }
        }
    }

    fn node(&mut self, node: &Node<'_>) {
        self.str(if DEFAULT_DOMAINS.contains(&node.domain) { "" } else { node.domain });
        self.str(node.op_type.as_str());
        self.strs(&node.input);
        self.strs(&node.output);
        let mut attributes: Vec<&Attribute<'_>> = node.attribute.iter().collect();
        attributes.sort_by_key(|a| a.name);
        self.len(attributes.len());
        for attribute in attributes {
            self.attribute(attribute);
        }
    }

    fn attribute(&mut self, attribute: &Attribute<'_>) {
        self.str(attribute.name);
        self.str(attribute.ref_attr_name);
        self.str(&format!("{:?}", attribute.r#type));
        // Float attributes (alpha, epsilon, ...) are hyperparameters of the architecture.
        self.0.update(attribute.f.to_bits().to_le_bytes());
        self.i64(attribute.i);
        self.bytes(attribute.s);
        self.len(attribute.floats.len());
        attribute.floats.iter().for_each(|f| self.0.update(f.to_bits().to_le_bytes()));
        self.len(attribute.ints.len());
        attribute.ints.iter().for_each(|i| self.i64(*i));
        self.len(attribute.strings.len());
        attribute.strings.iter().for_each(|s| self.bytes(s));
        let tensors: Vec<&TensorProto<'_>> = attribute.t.iter().chain(&attribute.tensors).collect();
        self.len(tensors.len());
        tensors.into_iter().for_each(|t| self.tensor(t));
        let graphs: Vec<&Graph<'_>> = attribute.g.iter().map(|g| &**g).chain(&attribute.graphs).collect();
        self.len(graphs.len());
        graphs.into_iter().for_each(|g| self.graph(g));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architectures::{Dense, Mlp};
    use onnx_rs::ast::DataLocation;

    fn mlp(inputs: usize, hidden: Option<usize>, fill: f32) -> Mlp {
        let layer = |inputs, outputs| Dense { inputs, outputs, weights: vec![fill; inputs * outputs], bias: vec![fill; outputs] };
        match hidden {
            Some(h) => Mlp { hidden: Some(layer(inputs, h)), output: layer(h, 2) },
            None => Mlp { hidden: None, output: layer(inputs, 2) },
        }
    }

    fn policy(architecture_hash: Option<[u8; 32]>) -> ModelPolicy {
        ModelPolicy {
            max_bytes: 1 << 20,
            min_opset: 13,
            max_opset: 21,
            input: TensorSpec { dims: vec![None, Some(4)] },
            output: TensorSpec { dims: vec![None, Some(2)] },
            architecture_hash,
        }
    }

    /// Parse `bytes`, let `edit` change the model, encode it again.
    fn edited(bytes: &[u8], edit: impl FnOnce(&mut onnx_rs::ast::Model<'_>)) -> Vec<u8> {
        let mut model = onnx_rs::parse(bytes).unwrap();
        edit(&mut model);
        onnx_rs::encode(&model)
    }

    #[test]
    fn a_good_model_passes_and_its_architecture_ignores_weight_values() {
        let genesis = mlp(4, Some(3), 0.1).to_onnx();
        let checked = check(&genesis, &policy(None)).unwrap();
        assert_eq!((checked.opset, checked.parameters), (17, 4 * 3 + 3 + 3 * 2 + 2));
        let retrained = mlp(4, Some(3), -0.7).to_onnx();
        assert_ne!(genesis, retrained);
        let again = check(&retrained, &policy(Some(checked.architecture_hash))).unwrap();
        assert_eq!(again.architecture_hash, checked.architecture_hash);
    }

    #[test]
    fn every_bad_model_is_refused_with_its_reason() {
        let genesis = mlp(4, Some(3), 0.1).to_onnx();
        let architecture = check(&genesis, &policy(None)).unwrap().architecture_hash;
        let strict = policy(Some(architecture));

        let mut small = strict.clone();
        small.max_bytes = 100;
        assert_eq!(check(&genesis, &small), Err(Refusal::TooLarge { size: genesis.len() as u64, max: 100 }));

        let truncated = &genesis[..genesis.len() / 2];
        assert!(matches!(check(truncated, &strict), Err(Refusal::Malformed(_))), "{:?}", check(truncated, &strict));
        assert!(matches!(check(b"\x89PNG\r\n\x1a\n", &strict), Err(Refusal::Malformed(_))));

        let unknown = edited(&genesis, |m| m.graph.as_mut().unwrap().node[1].op_type = OpType::Custom("FancyRelu"));
        assert_eq!(check(&unknown, &strict), Err(Refusal::UnknownOp("FancyRelu".into())));

        let custom = edited(&genesis, |m| m.graph.as_mut().unwrap().node[1].domain = "com.example");
        assert_eq!(check(&custom, &strict), Err(Refusal::Domain("com.example".into())));
        let imported = edited(&genesis, |m| m.opset_import.push(onnx_rs::ast::OperatorSetId { domain: "com.microsoft", version: 1 }));
        assert_eq!(check(&imported, &strict), Err(Refusal::Domain("com.microsoft".into())));

        let old = edited(&genesis, |m| m.opset_import[0].version = 9);
        assert_eq!(check(&old, &strict), Err(Refusal::Opset { version: 9, min: 13, max: 21 }));

        let wrong_input = mlp(5, Some(3), 0.1).to_onnx();
        let error = check(&wrong_input, &strict).unwrap_err();
        assert_eq!(error.to_string(), "signature: input \"x\": shape [batch, 5]; the coalition's is [?, 4]");

        let fixed_batch = edited(&genesis, |m| {
            let input = &mut m.graph.as_mut().unwrap().input[0];
            let Some(TypeValue::Tensor(tensor)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) else { unreachable!() };
            tensor.shape.as_mut().unwrap().dim[0].value = Dimension::Value(1);
        });
        assert!(matches!(check(&fixed_batch, &strict), Err(Refusal::Signature(_))));

        let changed = mlp(4, None, 0.1).to_onnx();
        let Err(Refusal::Architecture { expected, .. }) = check(&changed, &strict) else { panic!("architecture not checked") };
        assert_eq!(expected, hex::encode(architecture));
        let wider = mlp(4, Some(5), 0.1).to_onnx();
        assert!(matches!(check(&wider, &strict), Err(Refusal::Architecture { .. })));

        let mut poisoned = mlp(4, Some(3), 0.1);
        poisoned.output.weights[3] = f32::NAN;
        assert_eq!(check(&poisoned.to_onnx(), &strict), Err(Refusal::NonFinite("w2".into())));
        let mut infinite = mlp(4, Some(3), 0.1);
        infinite.hidden.as_mut().unwrap().bias[0] = f32::INFINITY;
        assert_eq!(check(&infinite.to_onnx(), &strict), Err(Refusal::NonFinite("b1".into())));

        let external = edited(&genesis, |m| {
            let graph = m.graph.as_mut().unwrap();
            graph.initializer[0] = graph.initializer[0].clone().with_data_location(DataLocation::External);
        });
        assert_eq!(check(&external, &strict), Err(Refusal::ExternalData("w1".into())));
    }
}

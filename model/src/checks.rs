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
//! - has inputs or outputs other than the coalition's signature: one float input, and one float
//!   output or the output the declaration names as scored ([`Refusal::Signature`]);
//! - has a weight that is NaN or infinite, in any float format and storage (typed fields, raw
//!   little-endian bytes as PyTorch writes, half precision) ([`Refusal::NonFinite`]);
//! - stores a tensor's values in two fields at once, uses sparse tensors, nests subgraphs more
//!   than [`MAX_SUBGRAPH_DEPTH`] deep, or has a cycle ([`Refusal::Malformed`]);
//! - has another architecture than the genesis model ([`Refusal::Architecture`]).
//!
//! The architecture hash is SHA3-256 over a canonical encoding of everything in the model but
//! its weights and its exporter's choices:
//! - operator-set imports; the graph's inputs and outputs by position, with their types (element
//!   type numbers, fixed dimensions; a symbolic dimension's name is left out);
//! - every node (domain, operator, attributes with their values, including float attributes,
//!   constant tensors and subgraphs) and how the nodes are wired, in a canonical order: Kahn's
//!   topological order, always taking the ready node whose own encoding is smallest. Values are
//!   named by that order (`v0`, `v1`, ...), initializers by first use, so neither the exporter's
//!   tensor names nor its node order change the hash; only nodes that are exactly alike keep
//!   their file order between them;
//! - every initializer's element type and shape, and its values unless it is a *weight*: a float
//!   tensor that every consumer takes in a weight slot (a `Gemm`, `MatMul` or arithmetic operand,
//!   a `Conv` kernel or bias, normalisation parameters, recurrent weights, an embedding table)
//!   of an operator that computes on data derived from the model's input. Floats that act as
//!   structure (a `Resize` scale, a `Range` bound, a float cast to a shape, a `Clip` bound, two
//!   constants folded together) are pinned, so a candidate cannot ask for gigabytes or for a
//!   loop without end with the genesis architecture. Integer, boolean and string tensors are
//!   always pinned.
//!
//! Node names, documentation, producer, metadata and `value_info` (optional shape annotations
//! exporters add or drop) are left out. Nothing in the encoding is a dependency's `Debug` text: a
//! test pins the hash of a reference model. Two models with the same architecture hash therefore
//! differ only in the values of their weights. Values a weight feeds into a shape through the
//! data itself (`Cast` of a computed tensor) are not fixed by any hash: the evaluation's declared
//! memory and time limits bound them.

use onnx_rs::ast::{
    Attribute, AttributeType, DataLocation, DataType, Dimension, Graph, Node, OpType, TensorProto, TypeProto,
    TypeValue, ValueInfo,
};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};
use std::{
    borrow::Cow,
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
};

/// The standard ONNX operator set's domain, in its two spellings.
const DEFAULT_DOMAINS: [&str; 2] = ["", "ai.onnx"];
/// The standard classical machine-learning domain.
const ML_DOMAIN: &str = "ai.onnx.ml";
/// Tag that starts every architecture hash's input.
const ARCHITECTURE_TAG: &[u8] = b"tclearn/architecture/v2";

/// One tensor of the coalition's signature: float elements and these dimensions, `None` being a
/// free (symbolic) dimension such as the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Dimensions; `None` must be symbolic in the model.
    pub dims: Vec<Option<i64>>,
}

/// What the coalition requires of every model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPolicy {
    /// Largest file accepted, bytes.
    pub max_bytes: u64,
    /// Lowest standard opset accepted.
    pub min_opset: i64,
    /// Highest standard opset accepted.
    pub max_opset: i64,
    /// The one input.
    pub input: TensorSpec,
    /// The scored output.
    pub output: TensorSpec,
    /// The scored output's name, for models with several outputs (a scikit-learn classifier's
    /// label and probabilities); without it the model must have exactly one output.
    pub output_name: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    let graph =
        model.graph.as_ref().filter(|g| !g.node.is_empty()).ok_or_else(|| Refusal::Malformed("no graph".into()))?;
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
    check_graph(graph, &mut parameters, 0)?;
    check_signature(graph, policy)?;
    let (architecture_hash, ordered) = canonical_architecture(&model);
    if !ordered {
        return Err(Refusal::Malformed("the graph has a cycle or uses a value nothing defines".into()));
    }
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

/// Domains, operators and weights of `graph` and its subgraphs, at most
/// [`MAX_SUBGRAPH_DEPTH`] deep.
fn check_graph(graph: &Graph<'_>, parameters: &mut u64, depth: usize) -> Result<(), Refusal> {
    if depth > MAX_SUBGRAPH_DEPTH {
        return Err(Refusal::Malformed(format!("subgraphs nested more than {MAX_SUBGRAPH_DEPTH} deep")));
    }
    if !graph.sparse_initializer.is_empty() {
        return Err(Refusal::Malformed("sparse initializers are not supported".into()));
    }
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
            if attribute.sparse_tensor.is_some() || !attribute.sparse_tensors.is_empty() {
                return Err(Refusal::Malformed(format!(
                    "attribute {:?}: sparse tensors are not supported",
                    attribute.name
                )));
            }
            for tensor in attribute.t.iter().chain(&attribute.tensors) {
                check_tensor(tensor)?;
            }
            for subgraph in attribute.g.iter().map(|g| &**g).chain(&attribute.graphs) {
                check_graph(subgraph, parameters, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// A tensor's data must be in the file, in one field, and finite; returns its number of float
/// values.
fn check_tensor(tensor: &TensorProto<'_>) -> Result<u64, Refusal> {
    if tensor.data_location() == DataLocation::External || !tensor.external_data().is_empty() {
        return Err(Refusal::ExternalData(tensor.name().into()));
    }
    // Values in a typed field and in `raw_data` at once: the checks would read one and ONNX
    // Runtime the other.
    let typed = match tensor.data_type() {
        DataType::Float => matches!(tensor.as_f32(), Some(Cow::Borrowed(_))),
        DataType::Double => matches!(tensor.as_f64(), Some(Cow::Borrowed(_))),
        DataType::Int64 => matches!(tensor.as_i64(), Some(Cow::Borrowed(_))),
        DataType::Uint64 => matches!(tensor.as_u64(), Some(Cow::Borrowed(_))),
        DataType::String => tensor.as_strings().is_some(),
        _ => matches!(tensor.as_i32(), Some(Cow::Borrowed(_))),
    };
    if typed && tensor.as_raw().is_some() {
        return Err(Refusal::Malformed(format!("tensor {:?} holds values in two fields", tensor.name())));
    }
    let non_finite = || Refusal::NonFinite(tensor.name().into());
    let count = match tensor.data_type() {
        DataType::Float => {
            let values = tensor.as_f32().unwrap_or_default();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(non_finite());
            }
            values.len()
        }
        DataType::Double => {
            let values = tensor.as_f64().unwrap_or_default();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(non_finite());
            }
            values.len()
        }
        DataType::Float16 | DataType::Bfloat16 => {
            // Exponent bits all set: infinite or NaN.
            let exponent: u16 = if tensor.data_type() == DataType::Float16 { 0x7c00 } else { 0x7f80 };
            let halves: Vec<u16> = match tensor.as_raw() {
                Some(raw) => raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect(),
                None => tensor.as_i32().unwrap_or_default().iter().map(|v| *v as u16).collect(),
            };
            if halves.iter().any(|h| h & exponent == exponent) {
                return Err(non_finite());
            }
            halves.len()
        }
        _ => 0,
    };
    Ok(count as u64)
}

/// One float input and the scored float output, shaped as the coalition declares: the model's
/// one output, or the one the declaration names (the others are pinned by the architecture
/// hash).
fn check_signature(graph: &Graph<'_>, policy: &ModelPolicy) -> Result<(), Refusal> {
    let inputs = graph.non_init_inputs();
    let [input] = inputs.as_slice() else {
        return Err(Refusal::Signature(format!("{} inputs; the coalition's models have one", inputs.len())));
    };
    let output = match &policy.output_name {
        Some(name) => graph
            .output
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| Refusal::Signature(format!("no output named {name:?}, which the coalition scores")))?,
        None => match graph.output.as_slice() {
            [output] => output,
            outputs => {
                return Err(Refusal::Signature(format!(
                "{} outputs; the coalition's models have one, or the declaration names the scored one (output_name)",
                outputs.len()
            )))
            }
        },
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

/// Subgraphs (`If`, `Loop`, `Scan` bodies) nested deeper than this are refused.
pub const MAX_SUBGRAPH_DEPTH: usize = 4;

/// The architecture hash of a parsed model (see the module documentation).
pub fn architecture_hash(model: &onnx_rs::ast::Model<'_>) -> [u8; 32] {
    canonical_architecture(model).0
}

/// The architecture hash, and whether every node of every graph could be put in order (a
/// graph with a cycle or a value nothing defines cannot).
fn canonical_architecture(model: &onnx_rs::ast::Model<'_>) -> ([u8; 32], bool) {
    let mut hasher = Canonical::new();
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
    let mut ordered = true;
    match &model.graph {
        Some(graph) => {
            let digest = graph_digest(graph, &Scope::default(), 0, &mut ordered);
            hasher.bytes(&digest);
        }
        None => hasher.len(0),
    }
    (hasher.finish(), ordered)
}

/// The canonical names of the values a graph can see: its own and its enclosing graphs'.
#[derive(Clone, Default)]
struct Scope<'a> {
    names: HashMap<&'a str, String>,
}

/// Which inputs of an operator of the standard domain hold learnt values (weights) when they
/// come from an initializer; a float initializer anywhere else (a `Resize` scale, a `Range`
/// bound, a `Cast` to a shape, a `Clip` bound, a `Pad` value) is structure and its values are
/// pinned.
fn is_weight_slot(op: &str, slot: usize) -> bool {
    match op {
        // Arithmetic on data: any operand.
        "Gemm" | "MatMul" | "Add" | "Sub" | "Mul" | "Div" | "Sum" | "Mean" | "Max" | "Min" | "Einsum" | "Concat"
        | "Where" => true,
        "Conv" | "ConvTranspose" | "InstanceNormalization" | "LayerNormalization" | "GroupNormalization" => {
            matches!(slot, 1 | 2)
        }
        "BatchNormalization" => matches!(slot, 1..=4),
        "PRelu" => slot == 1,
        "LSTM" | "GRU" | "RNN" => matches!(slot, 1 | 2 | 3 | 5 | 6 | 7),
        "Gather" => slot == 0,
        _ => false,
    }
}

fn is_float(data_type: DataType) -> bool {
    matches!(data_type, DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16)
}

/// The canonical digest of `graph` seen from `outer`: names, node order and the exporter's
/// choices left out (module documentation).
fn graph_digest(graph: &Graph<'_>, outer: &Scope<'_>, depth: usize, ordered: &mut bool) -> [u8; 32] {
    let mut hasher = Canonical::new();
    hasher.str("graph");
    if depth > MAX_SUBGRAPH_DEPTH {
        *ordered = false;
        hasher.str("too deep");
        return hasher.finish();
    }
    let mut scope = outer.clone();
    let initializers: HashMap<&str, &TensorProto<'_>> = graph.initializer.iter().map(|t| (t.name(), t)).collect();

    // The graph's inputs (not initializers), by position.
    let inputs: Vec<&ValueInfo<'_>> = graph.input.iter().filter(|v| !initializers.contains_key(v.name)).collect();
    hasher.len(inputs.len());
    for (k, input) in inputs.iter().enumerate() {
        scope.names.insert(input.name, format!("{depth}.in{k}"));
        hasher.type_proto(input.r#type.as_ref());
    }

    // Values that depend on the graph's inputs (or an enclosing graph's values): an operator
    // with such an input computes on data, so its weight slots hold weights.
    let implicit: Vec<Vec<&str>> = graph.node.iter().map(|node| outer_references(node)).collect();
    let mut dynamic: HashSet<&str> = inputs.iter().map(|v| v.name).collect();
    dynamic.extend(outer.names.keys().copied());
    for index in plain_order(graph, &implicit, &initializers, &scope) {
        let node = &graph.node[index];
        if node.input.iter().chain(&implicit[index]).any(|name| dynamic.contains(name)) {
            dynamic.extend(node.output.iter().copied().filter(|name| !name.is_empty()));
        }
    }
    // A float initializer is a weight when every consumer takes it in a weight slot and
    // computes on data; otherwise its values are pinned.
    let mut pinned: HashSet<&str> = HashSet::new();
    for (index, node) in graph.node.iter().enumerate() {
        let computes_on_data = node.input.iter().chain(&implicit[index]).any(|name| dynamic.contains(name));
        let standard = DEFAULT_DOMAINS.contains(&node.domain);
        for (slot, name) in node.input.iter().enumerate() {
            if initializers.contains_key(name)
                && !(standard && computes_on_data && is_weight_slot(node.op_type.as_str(), slot))
            {
                pinned.insert(name);
            }
        }
        for name in &implicit[index] {
            if initializers.contains_key(name) {
                pinned.insert(name);
            }
        }
    }
    for output in &graph.output {
        if initializers.contains_key(output.name) {
            pinned.insert(output.name);
        }
    }
    let describe_initializer = |tensor: &TensorProto<'_>| -> [u8; 32] {
        let mut h = Canonical::new();
        h.tensor(tensor, pinned.contains(tensor.name()));
        h.finish()
    };

    // Kahn's order, the next node always the one with the smallest canonical key among those
    // ready (file order only between nodes whose keys are equal).
    let (mut waiting, mut consumers) = dependencies(graph, &implicit, &initializers, &scope);
    let node_key = |index: usize, scope: &Scope<'_>, ordered: &mut bool| -> [u8; 32] {
        let node = &graph.node[index];
        let mut h = Canonical::new();
        h.node_head(node);
        h.len(node.input.len());
        for name in &node.input {
            match (scope.names.get(name), initializers.get(name)) {
                (Some(canonical), _) => h.str(canonical),
                (None, Some(tensor)) => h.bytes(&describe_initializer(tensor)),
                (None, None) => h.str(if name.is_empty() { "" } else { "undefined" }),
            }
        }
        h.len(node.output.len());
        for output in &node.output {
            h.str(if output.is_empty() { "" } else { "out" });
        }
        h.attributes(node, scope, depth, ordered);
        h.finish()
    };
    let mut ready: BinaryHeap<Reverse<([u8; 32], usize)>> = BinaryHeap::new();
    for (index, count) in waiting.iter().enumerate() {
        if *count == 0 {
            ready.push(Reverse((node_key(index, &scope, ordered), index)));
        }
    }
    let mut order = Vec::with_capacity(graph.node.len());
    let mut produced = 0usize;
    while let Some(Reverse((key, index))) = ready.pop() {
        order.push((key, index));
        for output in graph.node[index].output.iter().filter(|name| !name.is_empty()) {
            scope.names.insert(output, format!("{depth}.v{produced}"));
            produced += 1;
            for consumer in consumers.remove(output).unwrap_or_default() {
                waiting[consumer] -= 1;
                if waiting[consumer] == 0 {
                    ready.push(Reverse((node_key(consumer, &scope, ordered), consumer)));
                }
            }
        }
    }
    if order.len() != graph.node.len() {
        *ordered = false;
    }

    // The nodes in that order, initializers numbered as first used, then the outputs.
    let mut weights: HashMap<&str, usize> = HashMap::new();
    let mut numbered: Vec<&TensorProto<'_>> = Vec::new();
    hasher.len(order.len());
    for (key, index) in &order {
        let node = &graph.node[*index];
        hasher.bytes(key);
        for name in &node.input {
            if let Some(tensor) = initializers.get(name) {
                let next = weights.len();
                let number = *weights.entry(name).or_insert_with(|| {
                    numbered.push(tensor);
                    next
                });
                hasher.len(number);
            } else {
                hasher.str("-");
            }
        }
        for output in &node.output {
            hasher.str(scope.names.get(output).map_or("", String::as_str));
        }
    }
    hasher.len(numbered.len());
    for tensor in numbered {
        hasher.bytes(&describe_initializer(tensor));
    }
    // Initializers nothing uses, by content.
    let mut unused: Vec<[u8; 32]> =
        graph.initializer.iter().filter(|t| !weights.contains_key(t.name())).map(&describe_initializer).collect();
    unused.sort_unstable();
    hasher.len(unused.len());
    unused.iter().for_each(|digest| hasher.bytes(digest));
    hasher.len(graph.output.len());
    for output in &graph.output {
        hasher.type_proto(output.r#type.as_ref());
        match (scope.names.get(output.name), initializers.get(output.name)) {
            (Some(name), _) => hasher.str(name),
            (None, Some(tensor)) => hasher.bytes(&describe_initializer(tensor)),
            (None, None) => hasher.str("undefined"),
        }
    }
    hasher.finish()
}

/// Names a node's subgraphs read from enclosing graphs (not defined inside them).
fn outer_references<'a>(node: &Node<'a>) -> Vec<&'a str> {
    let mut names = Vec::new();
    for attribute in &node.attribute {
        for graph in attribute.g.iter().map(|g| &**g).chain(&attribute.graphs) {
            free_names(graph, &mut names, 0);
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

fn free_names<'a>(graph: &Graph<'a>, names: &mut Vec<&'a str>, depth: usize) {
    if depth > MAX_SUBGRAPH_DEPTH {
        return;
    }
    let mut defined: HashSet<&str> = graph.input.iter().map(|v| v.name).collect();
    defined.extend(graph.initializer.iter().map(|t| t.name()));
    defined.extend(graph.node.iter().flat_map(|n| n.output.iter().copied()));
    for node in &graph.node {
        names.extend(node.input.iter().copied().filter(|name| !name.is_empty() && !defined.contains(name)));
        let mut inner = Vec::new();
        for attribute in &node.attribute {
            for sub in attribute.g.iter().map(|g| &**g).chain(&attribute.graphs) {
                free_names(sub, &mut inner, depth + 1);
            }
        }
        names.extend(inner.into_iter().filter(|name| !defined.contains(name)));
    }
}

/// For each node of `graph`, how many of the values it reads (its inputs and its subgraphs'
/// outer references) other nodes must produce first; and for each such value, the nodes that
/// wait for it. Values in `scope` (inputs, enclosing graphs') and initializers wait for nothing.
fn dependencies<'a>(
    graph: &Graph<'a>,
    implicit: &[Vec<&'a str>],
    initializers: &HashMap<&str, &TensorProto<'_>>,
    scope: &Scope<'_>,
) -> (Vec<usize>, HashMap<&'a str, Vec<usize>>) {
    let mut waiting: Vec<usize> = vec![0; graph.node.len()];
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, node) in graph.node.iter().enumerate() {
        let mut needs: Vec<&str> = node.input.iter().chain(&implicit[index]).copied().collect();
        needs.sort_unstable();
        needs.dedup();
        for name in needs {
            if !name.is_empty() && !scope.names.contains_key(name) && !initializers.contains_key(name) {
                waiting[index] += 1;
                consumers.entry(name).or_default().push(index);
            }
        }
    }
    (waiting, consumers)
}

/// A topological order of `graph`'s nodes (file order among those ready), for the data-flow
/// pass; nodes that never become ready are left out.
fn plain_order<'a>(
    graph: &Graph<'a>,
    implicit: &[Vec<&'a str>],
    initializers: &HashMap<&str, &TensorProto<'_>>,
    scope: &Scope<'_>,
) -> Vec<usize> {
    let (mut waiting, mut consumers) = dependencies(graph, implicit, initializers, scope);
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..graph.node.len()).filter(|i| waiting[*i] == 0).map(Reverse).collect();
    let mut order = Vec::new();
    while let Some(Reverse(index)) = ready.pop() {
        order.push(index);
        for output in graph.node[index].output.iter().filter(|name| !name.is_empty()) {
            for consumer in consumers.remove(output).unwrap_or_default() {
                waiting[consumer] -= 1;
                if waiting[consumer] == 0 {
                    ready.push(Reverse(consumer));
                }
            }
        }
    }
    order
}

/// ONNX's number for an element type (`TensorProto.DataType`).
fn data_type_code(data_type: DataType) -> i64 {
    match data_type {
        DataType::Undefined => 0,
        DataType::Float => 1,
        DataType::Uint8 => 2,
        DataType::Int8 => 3,
        DataType::Uint16 => 4,
        DataType::Int16 => 5,
        DataType::Int32 => 6,
        DataType::Int64 => 7,
        DataType::String => 8,
        DataType::Bool => 9,
        DataType::Float16 => 10,
        DataType::Double => 11,
        DataType::Uint32 => 12,
        DataType::Uint64 => 13,
        DataType::Complex64 => 14,
        DataType::Complex128 => 15,
        DataType::Bfloat16 => 16,
        DataType::Float8e4m3fn => 17,
        DataType::Float8e4m3fnuz => 18,
        DataType::Float8e5m2 => 19,
        DataType::Float8e5m2fnuz => 20,
        DataType::Uint4 => 21,
        DataType::Int4 => 22,
        DataType::Float4e2m1 => 23,
    }
}

/// ONNX's number for an attribute type (`AttributeProto.AttributeType`).
fn attribute_type_code(attribute_type: AttributeType) -> i64 {
    match attribute_type {
        AttributeType::Undefined => 0,
        AttributeType::Float => 1,
        AttributeType::Int => 2,
        AttributeType::String => 3,
        AttributeType::Tensor => 4,
        AttributeType::Graph => 5,
        AttributeType::Floats => 6,
        AttributeType::Ints => 7,
        AttributeType::Strings => 8,
        AttributeType::Tensors => 9,
        AttributeType::Graphs => 10,
        AttributeType::SparseTensor => 11,
        AttributeType::SparseTensors => 12,
        AttributeType::TypeProto => 13,
        AttributeType::TypeProtos => 14,
    }
}

/// A tensor's values as canonical little-endian bytes, whichever field holds them: for
/// integers and booleans each value as an `i64`, for `uint64` as a `u64`, for floats their IEEE
/// bits at their width, strings length-prefixed; `None` when no field holds values.
fn tensor_values(tensor: &TensorProto<'_>) -> Option<Vec<u8>> {
    let data_type = tensor.data_type();
    let mut out = Vec::new();
    match data_type {
        DataType::Float => tensor.as_f32()?.iter().for_each(|v| out.extend(v.to_bits().to_le_bytes())),
        DataType::Double => tensor.as_f64()?.iter().for_each(|v| out.extend(v.to_bits().to_le_bytes())),
        DataType::Int64 => tensor.as_i64()?.iter().for_each(|v| out.extend(v.to_le_bytes())),
        DataType::Uint64 => tensor.as_u64()?.iter().for_each(|v| out.extend(v.to_le_bytes())),
        DataType::String => tensor.as_strings()?.iter().for_each(|s| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend_from_slice(s);
        }),
        _ => match tensor.as_raw() {
            // Raw little-endian storage, exactly as ONNX Runtime reads it.
            Some(raw) => out.extend_from_slice(raw),
            // Small types packed one per `int32_data` entry: as stored, at their width.
            None => {
                let width = element_width(data_type);
                tensor.as_i32()?.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes()[..width]));
            }
        },
    }
    Some(out)
}

/// Bytes per element of the types `int32_data` can hold (1 for 4-bit types, packed by pairs).
fn element_width(data_type: DataType) -> usize {
    match data_type {
        DataType::Int32 | DataType::Uint32 => 4,
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => 2,
        _ => 1,
    }
}

/// A length-prefixed, little-endian encoding into SHA3-256: no two different sequences of calls
/// write the same bytes, and nothing in it is a dependency's `Debug` text.
struct Canonical(Sha3_256);

impl Canonical {
    fn new() -> Self {
        Self(Sha3_256::new())
    }
    fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
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

    fn type_proto(&mut self, proto: Option<&TypeProto<'_>>) {
        match proto.and_then(|p| p.value.as_ref()) {
            Some(TypeValue::Tensor(tensor)) => {
                self.str("tensor");
                self.i64(data_type_code(tensor.elem_type));
                self.shape(tensor.shape.as_ref());
            }
            Some(TypeValue::SparseTensor(tensor)) => {
                self.str("sparse");
                self.i64(data_type_code(tensor.elem_type));
                self.shape(tensor.shape.as_ref());
            }
            Some(TypeValue::Sequence(sequence)) => {
                self.str("sequence");
                self.type_proto(Some(&sequence.elem_type));
            }
            Some(TypeValue::Map(map)) => {
                self.str("map");
                self.i64(data_type_code(map.key_type));
                self.type_proto(Some(&map.value_type));
            }
            Some(TypeValue::Optional(optional)) => {
                self.str("optional");
                self.type_proto(Some(&optional.elem_type));
            }
            None => self.str("untyped"),
        }
    }

    fn shape(&mut self, shape: Option<&onnx_rs::ast::TensorShape<'_>>) {
        let dims = shape.map(|s| s.dim.as_slice()).unwrap_or_default();
        self.len(dims.len());
        for dim in dims {
            // A symbolic dimension's name is the exporter's choice, not the architecture.
            self.i64(match dim.value {
                Dimension::Value(v) => v,
                Dimension::Param(_) => -1,
            });
        }
    }

    /// Type, shape and, unless it is a weight, the values.
    fn tensor(&mut self, tensor: &TensorProto<'_>, pinned: bool) {
        self.i64(data_type_code(tensor.data_type()));
        self.len(tensor.dims().len());
        tensor.dims().iter().for_each(|d| self.i64(*d));
        if pinned || !is_float(tensor.data_type()) {
            self.str("values");
            self.bytes(&tensor_values(tensor).unwrap_or_default());
        } else {
            self.str("weights");
        }
    }

    fn node_head(&mut self, node: &Node<'_>) {
        self.str(if DEFAULT_DOMAINS.contains(&node.domain) { "" } else { node.domain });
        self.str(node.op_type.as_str());
    }

    fn attributes(&mut self, node: &Node<'_>, scope: &Scope<'_>, depth: usize, ordered: &mut bool) {
        let mut attributes: Vec<&Attribute<'_>> = node.attribute.iter().collect();
        attributes.sort_by_key(|a| a.name);
        self.len(attributes.len());
        for attribute in attributes {
            self.str(attribute.name);
            self.str(attribute.ref_attr_name);
            self.i64(attribute_type_code(attribute.r#type));
            // Float attributes (alpha, epsilon, scales) are part of the architecture.
            self.0.update(attribute.f.to_bits().to_le_bytes());
            self.i64(attribute.i);
            self.bytes(attribute.s);
            self.len(attribute.floats.len());
            attribute.floats.iter().for_each(|f| self.0.update(f.to_bits().to_le_bytes()));
            self.len(attribute.ints.len());
            attribute.ints.iter().for_each(|i| self.i64(*i));
            self.len(attribute.strings.len());
            attribute.strings.iter().for_each(|s| self.bytes(s));
            // Constant tensors are structure: their values are pinned, floats included.
            let tensors: Vec<&TensorProto<'_>> = attribute.t.iter().chain(&attribute.tensors).collect();
            self.len(tensors.len());
            tensors.into_iter().for_each(|t| self.tensor(t, true));
            let types: Vec<&TypeProto<'_>> = attribute.tp.iter().chain(&attribute.type_protos).collect();
            self.len(types.len());
            types.into_iter().for_each(|t| self.type_proto(Some(t)));
            let graphs: Vec<&Graph<'_>> = attribute.g.iter().map(|g| &**g).chain(&attribute.graphs).collect();
            self.len(graphs.len());
            for graph in graphs {
                let digest = graph_digest(graph, scope, depth + 1, ordered);
                self.bytes(&digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architectures::{Dense, Mlp};
    use onnx_rs::ast::DataLocation;

    /// The architecture hash of `mlp(4, Some(3), _)`, as the first version of this encoding
    /// computed it.
    const REFERENCE_MLP_ARCHITECTURE: &str = "9093b046e1f57e179b50375cf58ecd737a1a23ff7b981bde678762f8cced0c00";

    fn mlp(inputs: usize, hidden: Option<usize>, fill: f32) -> Mlp {
        let layer = |inputs, outputs| Dense {
            inputs,
            outputs,
            weights: vec![fill; inputs * outputs],
            bias: vec![fill; outputs],
        };
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
            output_name: None,
            architecture_hash,
        }
    }

    /// Parse `bytes`, let `edit` change the model, encode it again.
    fn edited(bytes: &[u8], edit: impl FnOnce(&mut onnx_rs::ast::Model<'_>)) -> Vec<u8> {
        let mut model = onnx_rs::parse(bytes).unwrap();
        edit(&mut model);
        onnx_rs::encode(&model)
    }

    fn hash_of(bytes: &[u8]) -> [u8; 32] {
        architecture_hash(&onnx_rs::parse(bytes).unwrap())
    }

    fn leak(bytes: Vec<u8>) -> &'static [u8] {
        Box::leak(bytes.into_boxed_slice())
    }

    fn node(
        op_type: OpType<'static>,
        input: Vec<&'static str>,
        output: &'static str,
        attribute: Vec<Attribute<'static>>,
    ) -> Node<'static> {
        Node { op_type, input, output: vec![output], attribute, ..Default::default() }
    }

    fn int_attribute(name: &'static str, value: i64) -> Attribute<'static> {
        Attribute { name, r#type: AttributeType::Int, i: value, ..Default::default() }
    }

    /// The reference MLP with its logits reshaped to `shape` before the softmax, the shape
    /// coming from a float tensor cast to integers: an initializer, or a `Constant` node.
    fn reshaped(fill: f32, shape: [f32; 2], as_constant: bool) -> Vec<u8> {
        edited(&mlp(4, Some(3), fill).to_onnx(), |m| {
            let graph = m.graph.as_mut().unwrap();
            let softmax = graph.node.pop().unwrap();
            let shape_tensor = TensorProto::from_f32("shape_f", vec![2], shape.to_vec());
            if as_constant {
                let value = Attribute {
                    name: "value",
                    r#type: AttributeType::Tensor,
                    t: Some(shape_tensor),
                    ..Default::default()
                };
                graph.node.push(node(OpType::Constant, vec![], "shape_f", vec![value]));
            } else {
                graph.initializer.push(shape_tensor);
            }
            graph.node.push(node(OpType::Cast, vec!["shape_f"], "shape_i", vec![int_attribute("to", 7)]));
            graph.node.push(node(OpType::Reshape, vec!["logits", "shape_i"], "reshaped", vec![]));
            graph.node.push(Node { input: vec!["reshaped"], ..softmax });
        })
    }

    #[test]
    fn floats_that_act_as_structure_are_pinned_and_weights_are_not() {
        for as_constant in [false, true] {
            let genesis = hash_of(&reshaped(0.1, [-1.0, 2.0], as_constant));
            assert_eq!(
                hash_of(&reshaped(-0.4, [-1.0, 2.0], as_constant)),
                genesis,
                "retrained weights keep the architecture"
            );
            // A candidate asking for another shape (a huge one) is another architecture.
            assert_ne!(hash_of(&reshaped(0.1, [-1.0, 2.0e9], as_constant)), genesis, "constant: {as_constant}");
        }
        // A float that is a weight only when it meets data: here two initializers are added
        // together before the cast, so both are pinned.
        let folded = |offset: f32| {
            edited(&reshaped(0.1, [-1.0, 2.0], false), |m| {
                let graph = m.graph.as_mut().unwrap();
                graph.initializer.push(TensorProto::from_f32("offset", vec![2], vec![0.0, offset]));
                let cast = graph.node.iter().position(|n| n.op_type == OpType::Cast).unwrap();
                graph.node[cast].input = vec!["shape_sum"];
                graph.node.insert(cast, node(OpType::Add, vec!["shape_f", "offset"], "shape_sum", vec![]));
            })
        };
        assert_ne!(hash_of(&folded(0.0)), hash_of(&folded(1.0e9)));
    }

    #[test]
    fn the_architecture_does_not_depend_on_names_node_order_or_storage() {
        let genesis = reshaped(0.1, [-1.0, 2.0], false);
        let renames: HashMap<&str, &'static str> = [
            ("x", "input.1"),
            ("w1", "fc1.weight"),
            ("b1", "fc1.bias"),
            ("h", "/fc1/Gemm_output_0"),
            ("a", "/relu/Relu_output_0"),
            ("w2", "fc2.weight"),
            ("b2", "fc2.bias"),
            ("logits", "/fc2/Gemm_output_0"),
            ("shape_f", "onnx::Cast_7"),
            ("shape_i", "/Cast_output_0"),
            ("reshaped", "/Reshape_output_0"),
            ("probabilities", "output"),
        ]
        .into_iter()
        .collect();
        // Another exporter: other names, the nodes in another valid order, the shape stored as
        // raw little-endian bytes (as PyTorch writes), the batch dimension named otherwise.
        let re_exported = edited(&genesis, |m| {
            let graph = m.graph.as_mut().unwrap();
            let rename = |name: &mut &str| *name = renames.get(name).copied().unwrap_or(name);
            for node in &mut graph.node {
                node.input.iter_mut().for_each(rename);
                node.output.iter_mut().for_each(rename);
                node.name = "exported_node";
            }
            for value in graph.input.iter_mut().chain(graph.output.iter_mut()) {
                rename(&mut value.name);
                if let Some(TypeValue::Tensor(tensor)) = value.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                    tensor.shape.as_mut().unwrap().dim[0].value = Dimension::Param("N");
                }
            }
            for tensor in &mut graph.initializer {
                let name = renames.get(tensor.name()).copied().unwrap_or("?");
                let raw: Vec<u8> = tensor.as_f32().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect();
                *tensor = TensorProto::from_raw(name, tensor.dims().to_vec(), DataType::Float, leak(raw));
            }
            // Cast and the first Gemm are independent: swap them, and reverse the initializers.
            let cast = graph.node.iter().position(|n| n.op_type == OpType::Cast).unwrap();
            let node = graph.node.remove(cast);
            graph.node.insert(0, node);
            graph.initializer.reverse();
        });
        assert_ne!(genesis, re_exported);
        assert_eq!(hash_of(&re_exported), hash_of(&genesis));
        let policy =
            ModelPolicy { output: TensorSpec { dims: vec![None, Some(2)] }, ..policy(Some(hash_of(&genesis))) };
        check(&re_exported, &policy).unwrap();
        // Wiring is architecture: the same nodes with the Gemm's inputs swapped are not.
        let rewired = edited(&genesis, |m| m.graph.as_mut().unwrap().node[0].input.swap(1, 2));
        assert_ne!(hash_of(&rewired), hash_of(&genesis));
    }

    #[test]
    fn the_architecture_hash_of_the_reference_mlp_is_pinned() {
        // A change here changes every coalition's genesis: it must be deliberate (a new tag).
        let hash = hex::encode(hash_of(&mlp(4, Some(3), 0.1).to_onnx()));
        assert_eq!(hash, REFERENCE_MLP_ARCHITECTURE);
    }

    /// A protobuf field: `number` with wire type 2 (length-delimited) or 0 (varint).
    fn field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = varint(number << 3 | 2);
        out.extend(varint(payload.len() as u64));
        out.extend_from_slice(payload);
        out
    }

    fn varint_field(number: u64, value: u64) -> Vec<u8> {
        [varint(number << 3), varint(value)].concat()
    }

    fn varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    #[test]
    fn hostile_encodings_are_refused() {
        let genesis = mlp(4, Some(3), 0.1).to_onnx();
        let loose = policy(None);

        // A weight whose finite values sit in `float_data` and whose NaNs sit in `raw_data`,
        // which ONNX Runtime reads: written field by field, as no library would.
        let value_type = |dims: &[u8]| field(2, &field(1, &[varint_field(1, 1), field(2, dims)].concat()));
        let dims = [field(1, &field(2, b"N")), field(1, &varint_field(1, 4))].concat();
        let float_data: Vec<u8> = [1.0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
        let raw_data: Vec<u8> = [f32::NAN; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensor =
            [varint_field(1, 4), varint_field(2, 1), field(4, &float_data), field(8, b"w"), field(9, &raw_data)]
                .concat();
        let graph = [
            field(1, &[field(1, b"x"), field(1, b"w"), field(2, b"y"), field(4, b"Add")].concat()),
            field(2, b"g"),
            field(5, &tensor),
            field(11, &[field(1, b"x"), value_type(&dims)].concat()),
            field(12, &[field(1, b"y"), value_type(&dims)].concat()),
        ]
        .concat();
        let model =
            [varint_field(1, 8), field(7, &graph), field(8, &[field(1, b""), varint_field(2, 17)].concat())].concat();
        let add_policy = ModelPolicy {
            input: TensorSpec { dims: vec![None, Some(4)] },
            output: TensorSpec { dims: vec![None, Some(4)] },
            ..loose.clone()
        };
        let error = check(&model, &add_policy).unwrap_err();
        assert_eq!(error, Refusal::Malformed("tensor \"w\" holds values in two fields".into()));

        // Half-precision weights with a NaN, in raw bytes and in `int32_data`.
        let half_nan = edited(&genesis, |m| {
            m.graph.as_mut().unwrap().initializer.push(TensorProto::from_raw(
                "h",
                vec![2],
                DataType::Float16,
                &[0, 0x3c, 0x01, 0x7e],
            ))
        });
        assert_eq!(check(&half_nan, &loose), Err(Refusal::NonFinite("h".into())));
        let bf16_infinite = edited(&genesis, |m| {
            m.graph.as_mut().unwrap().initializer.push(TensorProto::from_raw(
                "b",
                vec![1],
                DataType::Bfloat16,
                &[0x80, 0x7f],
            ))
        });
        assert_eq!(check(&bf16_infinite, &loose), Err(Refusal::NonFinite("b".into())));

        // Sparse tensors are neither run nor hashed by the checks: refused.
        let sparse = edited(&genesis, |m| {
            m.graph.as_mut().unwrap().sparse_initializer.push(onnx_rs::ast::SparseTensor {
                values: Some(TensorProto::from_f32("s", vec![1], vec![f32::NAN])),
                indices: Some(TensorProto::from_i64("s_i", vec![1], vec![0])),
                dims: vec![4],
            })
        });
        assert!(matches!(check(&sparse, &loose), Err(Refusal::Malformed(reason)) if reason.contains("sparse")));

        // Subgraphs nested six deep.
        let nested = edited(&genesis, |m| {
            let mut body = Graph { name: "leaf", ..Default::default() };
            for _ in 0..6 {
                let branch = Attribute {
                    name: "then_branch",
                    r#type: AttributeType::Graph,
                    g: Some(Box::new(body)),
                    ..Default::default()
                };
                body = Graph {
                    name: "level",
                    node: vec![node(OpType::If, vec!["c"], "o", vec![branch])],
                    ..Default::default()
                };
            }
            m.graph.as_mut().unwrap().node.extend(body.node);
        });
        assert!(
            matches!(check(&nested, &loose), Err(Refusal::Malformed(reason)) if reason.contains("nested")),
            "{:?}",
            check(&nested, &loose)
        );

        // A cycle.
        let cycle = edited(&genesis, |m| m.graph.as_mut().unwrap().node[0].input[0] = "a");
        assert!(
            matches!(check(&cycle, &loose), Err(Refusal::Malformed(reason)) if reason.contains("cycle")),
            "{:?}",
            check(&cycle, &loose)
        );
    }

    fn sklearn(seed: u8) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/sklearn/sklearn_mlp_seed{seed}.onnx")),
        )
        .unwrap()
    }

    #[test]
    fn a_scikit_learn_classifier_from_skl2onnx_is_checked_by_its_named_output() {
        let policy = ModelPolicy {
            input: TensorSpec { dims: vec![None, Some(30)] },
            output: TensorSpec { dims: vec![None, Some(2)] },
            output_name: Some("probabilities".into()),
            ..policy(None)
        };
        // Two outputs: without a named one, refused with the way out.
        let unnamed = ModelPolicy { output_name: None, ..policy.clone() };
        let error = check(&sklearn(0), &unnamed).unwrap_err().to_string();
        assert!(error.contains("2 outputs") && error.contains("output_name"), "{error}");
        let genesis = check(&sklearn(0), &policy).unwrap();
        let pinned = ModelPolicy { architecture_hash: Some(genesis.architecture_hash), ..policy.clone() };
        // The same pipeline trained with another seed: the same architecture.
        assert_eq!(check(&sklearn(1), &pinned).unwrap().architecture_hash, genesis.architecture_hash);
        // The label output is pinned with the rest: swapping the class labels is refused.
        let swapped = edited(&sklearn(1), |m| {
            let graph = m.graph.as_mut().unwrap();
            let classes = graph.initializer.iter_mut().find(|t| t.name() == "classes").unwrap();
            *classes = TensorProto::from_i32("classes", vec![2], vec![1, 0]);
        });
        assert!(matches!(check(&swapped, &pinned), Err(Refusal::Architecture { .. })));
        let missing = ModelPolicy { output_name: Some("scores".into()), ..policy };
        assert!(check(&sklearn(0), &missing).unwrap_err().to_string().contains("no output named \"scores\""));
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
        let imported = edited(&genesis, |m| {
            m.opset_import.push(onnx_rs::ast::OperatorSetId { domain: "com.microsoft", version: 1 })
        });
        assert_eq!(check(&imported, &strict), Err(Refusal::Domain("com.microsoft".into())));

        let old = edited(&genesis, |m| m.opset_import[0].version = 9);
        assert_eq!(check(&old, &strict), Err(Refusal::Opset { version: 9, min: 13, max: 21 }));

        let wrong_input = mlp(5, Some(3), 0.1).to_onnx();
        let error = check(&wrong_input, &strict).unwrap_err();
        assert_eq!(error.to_string(), "signature: input \"x\": shape [batch, 5]; the coalition's is [?, 4]");

        let fixed_batch = edited(&genesis, |m| {
            let input = &mut m.graph.as_mut().unwrap().input[0];
            let Some(TypeValue::Tensor(tensor)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
                unreachable!()
            };
            tensor.shape.as_mut().unwrap().dim[0].value = Dimension::Value(1);
        });
        assert!(matches!(check(&fixed_batch, &strict), Err(Refusal::Signature(_))));

        let changed = mlp(4, None, 0.1).to_onnx();
        let Err(Refusal::Architecture { expected, .. }) = check(&changed, &strict) else {
            panic!("architecture not checked")
        };
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

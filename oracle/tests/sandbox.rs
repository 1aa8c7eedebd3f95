//! A candidate evaluated in the child process (`oracle evaluate-candidate`) within the declared
//! limits: the scores it gives are the in-process ones; a candidate that needs more memory or
//! time than the coalition declares is refused (a reject vote) and the oracle lives on; the
//! validator's own faults are told apart.

use onnx_rs::ast::{
    Attribute, AttributeType, DataType, Dimension, Graph, Model, Node, OpType, OperatorSetId, TensorProto, TensorShape,
    TensorShapeDimension, TensorTypeProto, TypeProto, TypeValue, ValueInfo,
};
use std::{path::Path, time::Duration};
use tclearn_evaluation::engine::Engine;
use tclearn_evaluation::evaluate::evaluate;
use tclearn_evaluation::testset::TestSet;
use tclearn_model::architectures::train_logistic;
use tclearn_model::checks::TensorSpec;
use tclearn_model::genesis::{Declaration, Metric};
use tclearn_oracle::sandbox::{evaluate_in_child, ChildRefusal, Limits, Outcome, Request};

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_oracle"))
}

fn value(name: &'static str, elem_type: DataType, dims: Vec<Dimension<'static>>) -> ValueInfo<'static> {
    let shape = TensorShape {
        dim: dims.into_iter().map(|value| TensorShapeDimension { value, ..Default::default() }).collect(),
    };
    let tensor = TensorTypeProto { elem_type, shape: Some(shape) };
    ValueInfo {
        name,
        r#type: Some(TypeProto { value: Some(TypeValue::Tensor(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

fn node(
    op_type: OpType<'static>,
    input: Vec<&'static str>,
    output: Vec<&'static str>,
    attribute: Vec<Attribute<'static>>,
) -> Node<'static> {
    Node { op_type, input, output, attribute, ..Default::default() }
}

/// A model from `x` (`[batch, 2]`) to `y` (`[batch, 2]`) with these nodes and initializers.
fn model(nodes: Vec<Node<'static>>, initializer: Vec<TensorProto<'static>>) -> Vec<u8> {
    let batch = || vec![Dimension::Param("batch"), Dimension::Value(2)];
    onnx_rs::encode(&Model {
        ir_version: 8,
        opset_import: vec![OperatorSetId { domain: "", version: 17 }],
        graph: Some(Graph {
            name: "hostile",
            node: nodes,
            initializer,
            input: vec![value("x", DataType::Float, batch())],
            output: vec![value("y", DataType::Float, batch())],
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `y = x + sum(ones(shape))·0`: the output is `x`, after making a tensor of `shape` (pinned by
/// the architecture hash, so only a genesis model could do this: the limits are the backstop).
fn allocating(shape: Vec<i64>) -> Vec<u8> {
    let one = Attribute {
        name: "value",
        r#type: AttributeType::Tensor,
        t: Some(TensorProto::from_f32("one", vec![1], vec![1.0])),
        ..Default::default()
    };
    let no_keep = Attribute { name: "keepdims", r#type: AttributeType::Int, i: 0, ..Default::default() };
    model(
        vec![
            node(OpType::ConstantOfShape, vec!["shape"], vec!["big"], vec![one]),
            node(OpType::ReduceSum, vec!["big"], vec!["total"], vec![no_keep]),
            node(OpType::Mul, vec!["total", "zero"], vec!["nothing"], vec![]),
            node(OpType::Add, vec!["x", "nothing"], vec!["y"], vec![]),
        ],
        vec![
            TensorProto::from_i64("shape", vec![shape.len() as i64], shape),
            TensorProto::from_f32("zero", vec![], vec![0.0]),
        ],
    )
}

/// `y = x` after a loop of `trips` iterations that do nothing.
fn looping(trips: i64) -> Vec<u8> {
    let body = Graph {
        name: "body",
        node: vec![
            node(OpType::Identity, vec!["cond_in"], vec!["cond_out"], vec![]),
            node(OpType::Identity, vec!["v_in"], vec!["v_out"], vec![]),
        ],
        input: vec![
            value("i", DataType::Int64, vec![]),
            value("cond_in", DataType::Bool, vec![]),
            value("v_in", DataType::Float, vec![]),
        ],
        output: vec![value("cond_out", DataType::Bool, vec![]), value("v_out", DataType::Float, vec![])],
        ..Default::default()
    };
    let body = Attribute { name: "body", r#type: AttributeType::Graph, g: Some(Box::new(body)), ..Default::default() };
    model(
        vec![
            node(OpType::Loop, vec!["trips", "", "start"], vec!["end"], vec![body]),
            node(OpType::Mul, vec!["end", "zero"], vec!["nothing"], vec![]),
            node(OpType::Add, vec!["x", "nothing"], vec!["y"], vec![]),
        ],
        vec![
            TensorProto::from_i64("trips", vec![], vec![trips]),
            TensorProto::from_f32("start", vec![], vec![0.0]),
            TensorProto::from_f32("zero", vec![], vec![0.0]),
        ],
    )
}

/// A two-feature set whose label is the larger feature's index, and the declaration for it.
fn setup(dir: &Path, memory_mib: u64, seconds: u64) -> Request {
    let rows: String = (0..40)
        .map(|i| if i % 2 == 0 { format!("0.{},0.8,1\n", i % 7) } else { format!("0.8,0.{},0\n", i % 7) })
        .collect();
    std::fs::write(dir.join("g.csv"), rows).unwrap();
    let spec = || TensorSpec { dims: vec![None, Some(2)] };
    let mut declaration = Declaration { batch_size: 16, ..Declaration::new(Metric::Accuracy, spec(), spec()) };
    declaration.limits.memory_mib = memory_mib;
    declaration.limits.seconds = seconds;
    Request { declaration, global: dir.join("g.csv"), local: None, ort_library: None, threads: 1 }
}

fn limits(request: &Request) -> Limits {
    Limits::of(&request.declaration)
}

#[tokio::test]
async fn the_child_scores_what_the_oracle_would_and_refuses_what_exceeds_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let request = setup(dir.path(), 1024, 20);

    // An honest model: the same report as in process.
    let set = TestSet::open(&request.global, None).unwrap();
    let honest = train_logistic(&set.inputs(0..set.samples).unwrap(), 2, &set.labels().unwrap(), 2, 200, 1.0).to_onnx();
    let Outcome::Scored { g, l } = evaluate_in_child(program(), &request, &honest, limits(&request)).await else {
        panic!("scored")
    };
    let in_process = evaluate(&Engine::new(None, 1).unwrap(), &request.declaration, &honest, &set).unwrap();
    assert_eq!((g.value, g.digest, g.fixed, l), (in_process.value, in_process.digest, in_process.fixed, None));

    // 4 GiB of ones under a 1 GiB limit: refused, quickly, and nothing else happens.
    let started = std::time::Instant::now();
    let outcome = evaluate_in_child(program(), &request, &allocating(vec![1 << 16, 1 << 14]), limits(&request)).await;
    assert!(matches!(&outcome, Outcome::Refused { refusal: ChildRefusal::ModelRefused, .. }), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    // The same model asking for 64 KiB is fine: the limit, not the graph, refused it.
    let small = evaluate_in_child(program(), &request, &allocating(vec![16, 1024]), limits(&request)).await;
    assert!(matches!(small, Outcome::Scored { .. }), "{small:?}");

    // A loop of a trillion empty iterations under a 2 s limit: killed at the deadline.
    let quick = setup(dir.path(), 1024, 2);
    let started = std::time::Instant::now();
    let outcome = evaluate_in_child(program(), &quick, &looping(1_000_000_000_000), limits(&quick)).await;
    let Outcome::Refused { refusal: ChildRefusal::ModelRefused, reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("did not finish within the declared 2s"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    let few = evaluate_in_child(program(), &quick, &looping(10), limits(&quick)).await;
    assert!(matches!(few, Outcome::Scored { .. }), "{few:?}");
}

#[tokio::test]
async fn the_validators_own_faults_are_not_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let mut request = setup(dir.path(), 1024, 20);
    let set = TestSet::open(&request.global, None).unwrap();
    let honest = train_logistic(&set.inputs(0..set.samples).unwrap(), 2, &set.labels().unwrap(), 2, 50, 1.0).to_onnx();
    // G replaced by a file of the same size and other content.
    request.declaration.test_set_hash = Some(tclearn_model::genesis::Hash(set.hash));
    let original = std::fs::read(&request.global).unwrap();
    let mut replaced = original.clone();
    replaced[0] = if replaced[0] == b'1' { b'2' } else { b'1' };
    std::fs::write(&request.global, &replaced).unwrap();
    let outcome = evaluate_in_child(program(), &request, &honest, limits(&request)).await;
    let Outcome::ValidatorFault { reason } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("is not the coalition's"), "{reason}");
    // A missing program is the validator's too.
    std::fs::write(&request.global, &original).unwrap();
    let outcome = evaluate_in_child(Path::new("/nonexistent/oracle"), &request, &honest, limits(&request)).await;
    assert!(matches!(outcome, Outcome::ValidatorFault { .. }), "{outcome:?}");
}

#[tokio::test]
async fn one_child_serves_candidate_after_candidate_and_another_replaces_it_when_killed() {
    use tclearn_oracle::sandbox::Evaluator;
    let dir = tempfile::tempdir().unwrap();
    let request = setup(dir.path(), 1024, 2);
    let set = TestSet::open(&request.global, None).unwrap();
    let honest = train_logistic(&set.inputs(0..set.samples).unwrap(), 2, &set.labels().unwrap(), 2, 200, 1.0).to_onnx();
    let mut evaluator = Evaluator::new(program().to_path_buf(), request.clone(), limits(&request));
    let Outcome::Scored { g: first, .. } = evaluator.evaluate(&honest).await else { panic!("scored") };
    // Refused within the limits, the child lives on; killed at the deadline, another starts.
    let too_big = evaluator.evaluate(&allocating(vec![1 << 16, 1 << 14])).await;
    assert!(matches!(too_big, Outcome::Refused { .. }), "{too_big:?}");
    let endless = evaluator.evaluate(&looping(1_000_000_000_000)).await;
    assert!(matches!(endless, Outcome::Refused { .. }), "{endless:?}");
    for _ in 0..3 {
        let Outcome::Scored { g, .. } = evaluator.evaluate(&honest).await else { panic!("scored again") };
        assert_eq!((g.fixed, g.digest), (first.fixed, first.digest));
    }
    // A model over the declared size never reaches the child.
    let small = Request { declaration: Declaration { max_model_bytes: 100, ..request.declaration.clone() }, ..request };
    let mut evaluator = Evaluator::new(Path::new("/nonexistent/oracle").to_path_buf(), small.clone(), limits(&small));
    let outcome = evaluator.evaluate(&honest).await;
    assert!(matches!(&outcome, Outcome::Refused { reason, .. } if reason.contains("limit is 100")), "{outcome:?}");
}

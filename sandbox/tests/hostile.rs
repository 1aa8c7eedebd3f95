//! Hostile models against the checks' child: every one is refused, as the member's fault, and
//! the program that asked lives on. Models a recursive parser overflows its stack on, models that
//! make it allocate a hundred times their size, huge declared shapes, malformed protobuf, deltas
//! that overflow; and children that hang, crash or do not start.

use std::{path::PathBuf, time::Duration};
use tclearn_e2e::hostile::{deep_subgraphs, deep_type, empty_nodes, tag, wide_input};
use tclearn_model::architectures::{Dense, Mlp};
use tclearn_model::checks::{self as model, ModelPolicy, TensorSpec};
use tclearn_sandbox::{limits, CheckError, Checker, Limits};
use tokio::io::AsyncReadExt;

fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tclearn-check-model"))
}

fn checker(memory_mib: u64, seconds: u64) -> Checker {
    Checker::new(program(), Limits { memory_bytes: memory_mib << 20, wall: Duration::from_secs(seconds) }, 2)
}

fn honest() -> Mlp {
    let dense = |inputs: usize, outputs: usize, scale: f32| Dense {
        inputs,
        outputs,
        weights: (0..inputs * outputs).map(|i| (i as f32 * scale).sin()).collect(),
        bias: vec![0.1; outputs],
    };
    Mlp { hidden: Some(dense(4, 3, 0.7)), output: dense(3, 2, 0.3) }
}

fn policy(max_bytes: u64) -> ModelPolicy {
    let architecture = model::architecture_hash(&onnx_rs::parse(&honest().to_onnx()).unwrap());
    ModelPolicy {
        max_bytes,
        min_opset: 13,
        max_opset: 21,
        input: TensorSpec { dims: vec![None, Some(4)] },
        output: TensorSpec { dims: vec![None, Some(2)] },
        output_name: None,
        architecture_hash: Some(architecture),
    }
}

#[tokio::test]
async fn the_child_accepts_what_the_checks_accept_and_merges_as_they_do() {
    let (checker, policy) = (checker(512, 30), policy(1 << 20));
    let bytes = honest().to_onnx();
    assert_eq!(checker.check(&bytes, &policy).await.unwrap(), model::check(&bytes, &policy).unwrap());
    let (input, output) = checker.signature(&bytes).await.unwrap();
    assert_eq!((input, output), model::signature(&bytes).unwrap());
    let delta = tclearn_model::delta::encode(&[("w2", vec![3, 2], vec![0.5; 6])]);
    let (merged, checked) = checker.merge(&bytes, &delta, &policy).await.unwrap();
    assert_eq!(merged, tclearn_model::delta::merge(&bytes, &delta).unwrap());
    assert_eq!(checked, model::check(&merged, &policy).unwrap());
}

#[tokio::test]
async fn models_that_overflow_a_recursive_parser_are_refused() {
    let (checker, policy) = (checker(512, 30), policy(64 << 20));
    // As deep as fits in 1 MiB (the members' API's tests), and deeper.
    let cases = [
        ("types", deep_type(100_000)),
        ("subgraphs", deep_subgraphs(60_000)),
        ("types", deep_type(2_000_000)),
        ("subgraphs", deep_subgraphs(1_000_000)),
    ];
    for (what, bytes) in cases {
        assert!(bytes.len() < 64 << 20, "{what}: {} bytes", bytes.len());
        let refused = checker.check(&bytes, &policy).await;
        assert!(
            matches!(&refused, Err(CheckError::Refused(reason)) if reason.contains("signal")),
            "{what}: {refused:?}"
        );
        // And as a delta: its parser is the same.
        let merged = checker.merge(&honest().to_onnx(), &bytes, &policy).await;
        assert!(matches!(&merged, Err(CheckError::Refused(_))), "{what} as a delta: {merged:?}");
    }
    // Shallow nesting of the same kinds is only refused by the rules.
    let shallow = checker.check(&deep_subgraphs(3), &policy).await;
    assert!(matches!(&shallow, Err(CheckError::Refused(reason)) if !reason.contains("signal")), "{shallow:?}");
}

#[tokio::test]
async fn a_model_that_parses_into_a_hundred_times_its_size_is_refused_within_the_memory_limit() {
    let (checker, policy) = (checker(512, 60), policy(64 << 20));
    let bytes = empty_nodes(30_000_000);
    let refused = checker.check(&bytes, &policy).await;
    assert!(matches!(&refused, Err(CheckError::Refused(reason)) if reason.contains("512 MiB")), "{refused:?}");
}

#[tokio::test]
async fn huge_declared_shapes_and_malformed_protobuf_are_refused_by_the_rules() {
    let (checker, policy) = (checker(512, 30), policy(1 << 20));
    let honest_bytes = honest().to_onnx();
    let mut with_huge_weight = onnx_rs::parse(&honest_bytes).unwrap();
    let graph = with_huge_weight.graph.as_mut().unwrap();
    let slot = graph.initializer.iter().position(|t| t.name() == "w1").unwrap();
    graph.initializer[slot] = onnx_rs::ast::TensorProto::from_f32("w1", vec![1 << 40, 1 << 40], Vec::new());
    let huge_weight = onnx_rs::encode(&with_huge_weight);
    let bytes = honest().to_onnx();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a weight declared 2^80 elements, without data", huge_weight),
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("a length past the end", [bytes.clone(), tag(7, 2), vec![0xff, 0xff, 0xff, 0x7f]].concat()),
        ("a group wire type", [bytes.clone(), tag(9, 3)].concat()),
        ("an unfinished varint", [bytes.clone(), vec![0x08, 0xff, 0xff]].concat()),
        ("not ONNX", b"\x89PNG\r\n\x1a\n not a model".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, case) in cases {
        let refused = checker.check(&case, &policy).await;
        assert!(
            matches!(&refused, Err(CheckError::Refused(reason)) if !reason.contains("signal")),
            "{what}: {refused:?}"
        );
    }
    // A delta whose shape's element count overflows, and one naming no weight of the parent.
    let overflowing = tclearn_model::delta::encode(&[("w2", vec![i64::MAX, 3], vec![])]);
    let refused = checker.merge(&bytes, &overflowing, &policy).await;
    assert!(matches!(&refused, Err(CheckError::Delta(_) | CheckError::Refused(_))), "{refused:?}");
    let unknown = tclearn_model::delta::encode(&[("nope", vec![1], vec![1.0])]);
    assert!(matches!(checker.merge(&bytes, &unknown, &policy).await, Err(CheckError::Delta(_))));
}

#[tokio::test]
async fn a_reason_quoting_the_model_is_bounded() {
    let (checker, policy) = (checker(512, 30), policy(4 << 20));
    let honest_bytes = honest().to_onnx();
    let mut hostile = onnx_rs::parse(&honest_bytes).unwrap();
    let domain = "x".repeat(1 << 20);
    hostile.opset_import.push(onnx_rs::ast::OperatorSetId { domain: &domain, version: 1 });
    let refused = checker.check(&onnx_rs::encode(&hostile), &policy).await;
    let Err(CheckError::Refused(reason)) = refused else { panic!("{refused:?}") };
    assert!(reason.len() <= tclearn_sandbox::checks::MAX_REASON_BYTES, "{} bytes", reason.len());
}

/// A stand-in child, as a shell script.
fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn a_child_that_hangs_or_crashes_is_the_models_fault_one_that_cannot_start_is_ours() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { memory_bytes: 512 << 20, wall: Duration::from_secs(2) };
    let bytes = honest().to_onnx();
    let policy = policy(1 << 20);
    let hangs = Checker::new(script(&dir, "hangs", "exec sleep 60"), limits, 1);
    let started = std::time::Instant::now();
    assert!(matches!(hangs.check(&bytes, &policy).await, Err(CheckError::Refused(r)) if r.contains("did not finish")));
    assert!(started.elapsed() < Duration::from_secs(20));
    let crashes = Checker::new(script(&dir, "crashes", "cat >/dev/null; kill -SEGV $$"), limits, 1);
    assert!(matches!(crashes.check(&bytes, &policy).await, Err(CheckError::Refused(r)) if r.contains("signal 11")));
    let exits = Checker::new(script(&dir, "exits", "cat >/dev/null; exit 1"), limits, 1);
    assert!(matches!(exits.check(&bytes, &policy).await, Err(CheckError::Checker(_))));
    let gibberish = Checker::new(script(&dir, "gibberish", "cat >/dev/null; echo '{\"nonsense\":1}'"), limits, 1);
    assert!(matches!(gibberish.check(&bytes, &policy).await, Err(CheckError::Checker(_))));
    let missing = Checker::new(dir.path().join("missing"), limits, 1);
    assert!(matches!(missing.check(&bytes, &policy).await, Err(CheckError::Checker(_))));
}

#[tokio::test]
async fn a_child_gets_none_of_the_parents_secrets_and_no_new_privileges() {
    // The members' API holds S3 credentials in its environment; a child that a model could
    // take over must not see them.
    limits::hide_from_children();
    assert!(limits::hidden_from_children());
    let mut command = tokio::process::Command::new("sh");
    command
        .args(["-c", "env; grep NoNewPrivs /proc/self/status; cat /proc/$PPID/environ || echo parent-hidden"])
        .env("AWS_SECRET_ACCESS_KEY", "the-vaults-key");
    limits::bounded(&mut command, Limits { memory_bytes: 256 << 20, wall: Duration::from_secs(10) }, Some(10));
    let mut child = command.spawn().unwrap();
    drop(child.stdin.take());
    let mut seen = String::new();
    child.stdout.take().unwrap().read_to_string(&mut seen).await.unwrap();
    assert!(child.wait().await.unwrap().success());
    assert!(!seen.contains("the-vaults-key"), "{seen}");
    assert!(seen.contains("NoNewPrivs:\t1"), "{seen}");
    // Nor through its parent's /proc entry, unless it runs as root (which reads everything: the
    // programs are meant to run as their own user).
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if !root {
        assert!(seen.contains("parent-hidden"), "{seen}");
    }
    // What the child needs to find ONNX Runtime passes.
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        assert!(seen.contains(&format!("ORT_DYLIB_PATH={}", path.to_string_lossy())), "{seen}");
    }
}

#[tokio::test]
async fn an_answer_longer_than_its_bound_is_the_models_refusal() {
    let checker = checker(512, 30);
    // Fifty thousand dimensions: a 200 kB model whose signature, as the child writes it, is
    // longer than any answer is read.
    let wide = wide_input(50_000);
    assert!(wide.len() < 1 << 20);
    let refused = checker.signature(&wide).await;
    assert!(matches!(&refused, Err(CheckError::Refused(reason)) if reason.contains("answer")), "{refused:?}");
    // A few dimensions are read as they are.
    let (input, _) = checker.signature(&wide_input(3)).await.unwrap();
    assert_eq!(input, TensorSpec { dims: vec![Some(1); 3] });
}

//! `oracle evaluate` as a validator runs it: a JSON report on success, a non-zero exit with the
//! refusal reason otherwise.

use std::{path::Path, process::Command};
use tclearn_evaluation::testset::TestSet;
use tclearn_model::architectures::{train_logistic, Dense, Mlp};
use tclearn_model::checks as model;
use tclearn_model::genesis::Hash;

fn breast_cancer() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/breast_cancer.csv")
}

fn oracle(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_oracle")).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[test]
fn evaluate_prints_a_report_or_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let set = TestSet::open(&breast_cancer(), None).unwrap();
    let features = set.inputs(0..set.samples).unwrap();
    let mlp = train_logistic(&features, 30, &set.labels().unwrap(), 2, 100, 0.5);
    let model_path = dir.path().join("model.onnx");
    std::fs::write(&model_path, mlp.to_onnx()).unwrap();
    let data = breast_cancer().display().to_string();
    let model_arg = model_path.display().to_string();

    let (ok, stdout, stderr) = oracle(&["evaluate", "--model", &model_arg, "--test-set", &data]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["metric"], "accuracy");
    assert_eq!(report["samples"], 569);
    assert!(report["value"].as_f64().unwrap() > 0.95, "{report}");
    assert!(report["digest"].as_str().unwrap().starts_with("0x"));
    assert!(report["seconds"].as_f64().unwrap() > 0.0);

    // With a genesis declaration of another architecture: refused, with the reason.
    let hidden = Mlp {
        hidden: Some(Dense { inputs: 30, outputs: 4, weights: vec![0.1; 120], bias: vec![0.0; 4] }),
        output: Dense { inputs: 4, outputs: 2, weights: vec![0.1; 8], bias: vec![0.0; 2] },
    };
    let other = model::architecture_hash(&onnx_rs::parse(&hidden.to_onnx()).unwrap());
    let genesis = serde_json::json!({
        "metric": "roc_auc", "input": {"dims": [null, 30]}, "output": {"dims": [null, 2]},
        "architecture_hash": Hash(other), "test_set_hash": Hash(set.hash),
    });
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_string()).unwrap();
    let genesis_arg = genesis_path.display().to_string();
    let (ok, stdout, stderr) =
        oracle(&["evaluate", "--model", &model_arg, "--test-set", &data, "--genesis", &genesis_arg]);
    assert!(!ok && stdout.is_empty());
    assert!(stderr.contains("model refused: architecture"), "{stderr}");

    // The same declaration with this architecture: ROC AUC.
    let own = model::architecture_hash(&onnx_rs::parse(&mlp.to_onnx()).unwrap());
    let genesis = serde_json::json!({
        "metric": "roc_auc", "input": {"dims": [null, 30]}, "output": {"dims": [null, 2]},
        "architecture_hash": Hash(own), "test_set_hash": Hash(set.hash),
    });
    std::fs::write(&genesis_path, genesis.to_string()).unwrap();
    let (ok, stdout, stderr) =
        oracle(&["evaluate", "--model", &model_arg, "--test-set", &data, "--genesis", &genesis_arg]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["metric"], "roc_auc");
    assert_eq!(report["architecture_hash"], Hash(own).to_string());

    // A truncated model and a missing test set.
    let bytes = std::fs::read(&model_path).unwrap();
    std::fs::write(&model_path, &bytes[..bytes.len() / 3]).unwrap();
    let (ok, _, stderr) = oracle(&["evaluate", "--model", &model_arg, "--test-set", &data]);
    assert!(!ok && stderr.contains("not a whole ONNX model"), "{stderr}");
    std::fs::write(&model_path, &bytes).unwrap();
    let (ok, _, stderr) = oracle(&["evaluate", "--model", &model_arg, "--test-set", "/nonexistent.csv"]);
    assert!(!ok && stderr.contains("/nonexistent.csv"), "{stderr}");
}

/// A model that overflows a recursive parser's stack: `oracle evaluate` refuses it with an
/// error, as its children crash on it (it used to parse it in its own process, and die).
#[test]
fn evaluate_survives_a_model_that_crashes_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("hostile.onnx");
    std::fs::write(&model_path, tclearn_e2e::hostile::deep_type(200_000)).unwrap();
    let data = breast_cancer().display().to_string();
    let model_arg = model_path.display().to_string();
    let genesis_path = dir.path().join("genesis.json");
    let genesis =
        serde_json::json!({ "metric": "accuracy", "input": {"dims": [null, 30]}, "output": {"dims": [null, 2]} });
    std::fs::write(&genesis_path, genesis.to_string()).unwrap();
    let genesis_arg = genesis_path.display().to_string();
    for args in [
        vec!["evaluate", "--model", &model_arg, "--test-set", &data],
        vec!["evaluate", "--model", &model_arg, "--test-set", &data, "--genesis", &genesis_arg],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_oracle")).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "an error, not a crash: {stderr}");
        assert!(stderr.contains("refused") || stderr.contains("killed by signal"), "{stderr}");
    }
}

/// The installed binary finds the ONNX Runtime library setup installed, as the README runs it:
/// without `ORT_DYLIB_PATH` (which only cargo sets, from `.cargo/config.toml`).
#[test]
fn evaluate_runs_without_ort_dylib_path() {
    let dir = tempfile::tempdir().unwrap();
    let set = TestSet::open(&breast_cancer(), None).unwrap();
    let features = set.inputs(0..set.samples).unwrap();
    let mlp = train_logistic(&features, 30, &set.labels().unwrap(), 2, 20, 0.5);
    let model_path = dir.path().join("model.onnx");
    std::fs::write(&model_path, mlp.to_onnx()).unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oracle"));
        command.env_remove("ORT_DYLIB_PATH").envs(env.iter().copied());
        command.args([
            "evaluate",
            "--model",
            model_path.to_str().unwrap(),
            "--test-set",
            breast_cancer().to_str().unwrap(),
        ]);
        let output = command.output().unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stderr).to_string())
    };
    let (ok, stderr) = run(&[]);
    assert!(ok, "{stderr}");
    // Nowhere to find it: a clear refusal that says what to do.
    let empty = dir.path().display().to_string();
    let (ok, stderr) = run(&[("TCLEARN_CACHE", &empty)]);
    assert!(!ok && stderr.contains("run scripts/setup.sh, or pass --ort-library"), "{stderr}");
}

//! `tclearn` as a member runs it.

mod common;

use std::{path::PathBuf, process::Command};

fn tclearn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tclearn")).args(args).output().unwrap()
}

#[test]
fn privacy_epsilon_prints_the_accountants_answer_or_a_clear_error() {
    let out = tclearn(&[
        "privacy",
        "epsilon",
        "--sampling-rate",
        "0.01",
        "--noise-multiplier",
        "1.0",
        "--steps",
        "1000",
        "--delta",
        "1e-5",
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("epsilon = 2.1014 at delta = 1e-5"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = tclearn(&[
        "privacy",
        "epsilon",
        "--json",
        "--sampling-rate",
        "0.00426666666666667",
        "--noise-multiplier",
        "1.1",
        "--steps",
        "14062",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((report["epsilon"].as_f64().unwrap() - 2.5966).abs() < 5e-5, "{report}");
    assert_eq!(report["optimal_order"].as_f64(), Some(8.1));

    let out = tclearn(&["privacy", "epsilon", "--sampling-rate", "1.5", "--noise-multiplier", "1.0", "--steps", "10"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the sampling rate is a probability; got 1.5"));
}

#[test]
fn model_init_makes_a_perceptron_or_an_image_network_or_says_why_not() {
    let dir = std::env::temp_dir().join(format!("tclearn-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pixels = dir.join("pixels.json");
    std::fs::write(&pixels, r#"{"source": "the scanner's manual: 0 to 16", "ranges": [{"low": 0, "high": 16}]}"#)
        .unwrap();
    let out_path = dir.join("cnn.onnx");
    let init = |image: &str| {
        tclearn(&[
            "model",
            "init",
            "--json",
            "--standardisation",
            pixels.to_str().unwrap(),
            "--image",
            image,
            "--filters",
            "2",
            "--classes",
            "3",
            "--out",
            out_path.to_str().unwrap(),
        ])
    };
    let out = init("1x4x4");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["model"], "1x4x4 image network with 2 filters and 3 classes");
    let model = tclearn_member::trainer::Model::from_onnx(&std::fs::read(&out_path).unwrap()).unwrap();
    assert!(matches!(model, tclearn_member::trainer::Model::Cnn(_)));
    assert_eq!(model.standardisation(), (&[8.0f32; 16][..], &[0.125f32; 16][..]));

    let out = init("1x3x4");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs 1 or 3 channels, even sides up to 4096"));
    // Sixteen ranges are one per pixel of a 4x4 image, not of an 8x8 one.
    let sixteen =
        format!(r#"{{"source": "a manual", "ranges": [{}]}}"#, vec![r#"{"low": 0, "high": 1}"#; 16].join(","));
    std::fs::write(&pixels, sixteen).unwrap();
    let out = init("1x8x8");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("16 ranges for a model of 64 inputs"));
    assert!(init("1x4x4").status.success());
    std::fs::write(&pixels, r#"{"source": "", "ranges": [{"low": 0, "high": 16}]}"#).unwrap();
    assert!(String::from_utf8_lossy(&init("1x4x4").stderr).contains("name the public source of the ranges"));
    std::fs::write(&pixels, r#"{"source": "a manual", "ranges": [{"low": 3, "high": 3}]}"#).unwrap();
    assert!(String::from_utf8_lossy(&init("1x4x4").stderr).contains("range 1 is [3.0, 3.0]: it needs finite bounds"));
    assert!(String::from_utf8_lossy(&init("4by4").stderr).contains("CxHxW, like 1x8x8"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The genesis model is public to every member: what standardises its inputs must be the public
/// ranges the founders declare, never the founder's patients' means and deviations, which the
/// genesis used to carry (`model init --data`). `found` makes the genesis again from the
/// declared ranges and seed and refuses one that differs by a byte (constants or weights), one
/// whose constants nobody declared, and a model from outside unless the founder vouches for it.
#[test]
fn the_genesis_carries_declared_public_ranges_never_the_founders_statistics() {
    use tclearn_member::trainer::{MlpParameters, Model, Network};
    let dir = std::env::temp_dir().join(format!("tclearn-genesis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ranges = common::breast_cancer_standardisation_path();
    let genesis = dir.join("genesis.onnx");
    let out = tclearn(&[
        "model",
        "init",
        "--standardisation",
        ranges.to_str().unwrap(),
        "--hidden",
        "4",
        "--out",
        genesis.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let model = Model::from_onnx(&std::fs::read(&genesis).unwrap()).unwrap();
    let (shift, scale) = common::breast_cancer_standardisation().shift_scale(30).unwrap();
    assert_eq!(model.standardisation(), (&shift[..], &scale[..]));
    // The founder's rows' mean radius is nowhere in it: the centre of the published range is.
    let founder = common::breast_cancer().select(&(0..100).collect::<Vec<_>>());
    let mean_radius = (0..100).map(|i| founder.row(i)[0]).sum::<f32>() / 100.0;
    assert!((mean_radius - shift[0]).abs() > 1.0 && shift[0] == (6.981f32 + 28.11) / 2.0, "{mean_radius} {shift:?}");

    // What `model init --data` made: the founder's means and deviations. `found` refuses it
    // undeclared, and refuses it against the declared ranges, before any chain is involved.
    let mut leaky = MlpParameters::init(&common::breast_cancer_standardisation(), 4, 2, 0).unwrap();
    leaky.shift = (0..30).map(|j| (0..100).map(|i| founder.row(i)[j]).sum::<f32>() / 100.0).collect();
    let leaky_path = dir.join("leaky.onnx");
    std::fs::write(&leaky_path, leaky.to_onnx().unwrap()).unwrap();
    let test_set = dir.join("g.csv");
    std::fs::write(&test_set, common::breast_cancer_rows(0..20, false)).unwrap();
    let found = |model: &std::path::Path, more: &[&str]| {
        let mut args = vec![
            "found".to_string(),
            "--model".into(),
            model.display().to_string(),
            "--test-set".into(),
            test_set.display().to_string(),
            "--declaration".into(),
            dir.join("declaration.json").display().to_string(),
        ];
        args.extend(more.iter().map(|a| a.to_string()));
        let out = Command::new(env!("CARGO_BIN_EXE_tclearn"))
            .args(&args)
            .env("TCLEARN_KEY_FILE", dir.join("no-such.key"))
            .env("TCLEARN_RPC", "ws://127.0.0.1:9")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let declared = ["--standardisation", ranges.to_str().unwrap()];
    let undeclared = found(&leaky_path, &[]);
    assert!(undeclared.contains("constants nobody declared"), "{undeclared}");
    let not_made = "is not what `tclearn model init --standardisation` makes";
    let other = found(&leaky_path, &declared);
    assert!(other.contains(not_made), "{other}");
    // The means folded into the weights instead, or another seed: the same refusal.
    let mut folded = Model::from_onnx(&std::fs::read(&genesis).unwrap()).unwrap();
    let mut weights = folded.trained();
    weights[0] += 1e-3;
    folded.set_trained(&weights);
    let folded_path = dir.join("folded.onnx");
    std::fs::write(&folded_path, folded.to_onnx().unwrap()).unwrap();
    assert!(found(&folded_path, &declared).contains(not_made));
    assert!(found(&genesis, &[&declared[..], &["--seed", "1"]].concat()).contains(not_made));
    // The declared genesis passes and goes on to the key (absent here).
    let passed = found(&genesis, &declared);
    assert!(!passed.contains("standardis") && passed.contains("no-such.key"), "{passed}");
    assert!(!dir.join("declaration.json").exists());
    // A model from outside (scikit-learn's) is founded only on the founder's word.
    let sklearn =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/sklearn/sklearn_mlp_seed0.onnx");
    let foreign = found(&sklearn, &[]);
    assert!(foreign.contains("not one of tclearn model init") && foreign.contains("--foreign-genesis"), "{foreign}");
    let vouched = found(&sklearn, &["--foreign-genesis"]);
    assert!(vouched.contains("warning: founding on a model tclearn model init did not make"), "{vouched}");
    assert!(vouched.contains("no-such.key"), "{vouched}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_malicious_training_is_only_in_a_build_with_the_attack_feature() {
    let out = tclearn(&["train", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(help.contains("--attack"), cfg!(feature = "attack"), "{help}");
}

//! `tclearn` as a member runs it.

use std::process::Command;

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
    let data = dir.join("images.csv");
    let header: Vec<String> = (0..16).map(|j| format!("p{j}")).collect();
    let rows: String = (0..6)
        .map(|r| {
            format!(
                "img-{r},{},{}\n",
                (0..16).map(|p| ((r * 7 + p) % 17).to_string()).collect::<Vec<_>>().join(","),
                r % 3
            )
        })
        .collect();
    std::fs::write(&data, format!("id,{},label\n{rows}", header.join(","))).unwrap();
    let out_path = dir.join("cnn.onnx");
    let out = tclearn(&[
        "model",
        "init",
        "--json",
        "--data",
        data.to_str().unwrap(),
        "--image",
        "1x4x4",
        "--filters",
        "2",
        "--classes",
        "3",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["model"], "1x4x4 image network with 2 filters and 3 classes");
    let model = tclearn_member::trainer::Model::from_onnx(&std::fs::read(&out_path).unwrap()).unwrap();
    assert!(matches!(model, tclearn_member::trainer::Model::Cnn(_)));

    let out = tclearn(&[
        "model",
        "init",
        "--data",
        data.to_str().unwrap(),
        "--image",
        "1x8x8",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("needs rows of 64 pixels (even sides), a filter and two classes; the rows have 16"));
    let out = tclearn(&[
        "model",
        "init",
        "--data",
        data.to_str().unwrap(),
        "--image",
        "4by4",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("CxHxW, like 1x8x8"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_malicious_training_is_only_in_a_build_with_the_attack_feature() {
    let out = tclearn(&["train", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(help.contains("--attack"), cfg!(feature = "attack"), "{help}");
}

//! `tclearn` as a member runs it.

use std::process::Command;

fn tclearn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tclearn")).args(args).output().unwrap()
}

#[test]
fn privacy_epsilon_prints_the_accountants_answer_or_a_clear_error() {
    let out = tclearn(&["privacy", "epsilon", "--sampling-rate", "0.01", "--noise-multiplier", "1.0", "--steps", "1000", "--delta", "1e-5"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("epsilon = 2.1014 at delta = 1e-5"), "{}", String::from_utf8_lossy(&out.stdout));

    let out = tclearn(&["privacy", "epsilon", "--json", "--sampling-rate", "0.00426666666666667", "--noise-multiplier", "1.1", "--steps", "14062"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((report["epsilon"].as_f64().unwrap() - 2.5966).abs() < 5e-5, "{report}");
    assert_eq!(report["optimal_order"].as_f64(), Some(8.1));

    let out = tclearn(&["privacy", "epsilon", "--sampling-rate", "1.5", "--noise-multiplier", "1.0", "--steps", "10"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the sampling rate is a probability; got 1.5"));
}

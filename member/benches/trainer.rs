//! The trainer's speed: DP-SGD on the breast-cancer data (455 training rows of 30 features),
//! per-example gradients per second, against the same run in NumPy
//! (`benches/dp_sgd_reference.py`: the same model, batch rate, clipping, noise and learning
//! rate, per-example gradients written out by hand and vectorised over the batch). Both sides
//! run on one thread (`OPENBLAS_NUM_THREADS=1`; burn's Flex backend without `rayon`), five runs
//! each, interleaved. Python is `$TCLEARN_BENCH_PYTHON` (scripts/bench.sh makes a venv with
//! NumPy).

#[path = "../tests/common/mod.rs"]
mod common;

use std::{path::PathBuf, process::Command};
use tclearn_member::{
    dp_sgd::DpSgd,
    trainer::{self, MlpParameters, Training},
};

const RUNS: usize = 5;

fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[0], values[values.len() / 2], values[values.len() - 1])
}

fn main() {
    let python = std::env::var("TCLEARN_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let (path, data) = (common::breast_cancer_path(), common::breast_cancer());
    let standardisation = common::breast_cancer_standardisation();
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/dp_sgd_reference.py");
    println!("| model | batch | epochs | burn (gradients/s) | NumPy (gradients/s) | burn / NumPy | loss after, burn / NumPy |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (hidden, batch) in [(16usize, 32u32), (64, 128)] {
        let (mut ours, mut theirs, mut losses) = (Vec::new(), Vec::new(), (0.0, 0.0));
        for run in 0..RUNS {
            let mut model = MlpParameters::init(&standardisation, hidden, 2, 7).unwrap();
            let training = Training {
                learning_rate: 0.1,
                epochs: 5,
                batch_size: batch,
                privacy: Some(DpSgd { clip_norm: 1.0, noise_multiplier: 1.0 }),
                delta: 1e-5,
                seed: Some(run as u64),
            };
            let report = trainer::train(&mut model, &data, &training, |_, _| {}).unwrap();
            ours.push(report.gradients as f64 / report.seconds);
            losses.0 = report.loss_after;
            let out = Command::new(&python)
                .arg(&reference)
                .args([path.display().to_string(), hidden.to_string(), batch.to_string(), "5".into(), "1.0".into()])
                .arg(common::breast_cancer_standardisation_path())
                .env("OPENBLAS_NUM_THREADS", "1")
                .env("OMP_NUM_THREADS", "1")
                .output()
                .expect("python runs");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            theirs.push(line["samples_per_second"].as_f64().unwrap());
            losses.1 = line["loss_after"].as_f64().unwrap();
        }
        let (a, b) = (spread(ours), spread(theirs));
        println!(
            "| MLP 30-{hidden}-2, DP-SGD | {batch} | 5 | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {:.2} | {:.3} / {:.3} |",
            a.0, a.1, a.2, b.0, b.1, b.2, a.1 / b.1, losses.0, losses.1
        );
    }
}

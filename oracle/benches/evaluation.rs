//! Evaluation throughput of the oracle against Python onnxruntime, in one run.
//!
//! Two workloads, each written to disk first: an MLP (30 → 64 → 2) on the breast-cancer set
//! tiled to 56,900 rows (CSV), and a small CNN (8 filters, 28×28) on the 1,797 digits written as
//! PNG files in class folders. For each, on the same model file, data, thread count and batch:
//! - Rust end to end: open the test set, check the model, create the session, preprocess,
//!   infer in batches, accuracy and digest (`oracle evaluate`'s path);
//! - Rust bare: `run_batch` over inputs already in memory, session already made;
//! - Python end to end and bare, by `evaluation.py` with the onnxruntime wheel of the same
//!   version (`$TCLEARN_BENCH_PYTHON`, which `scripts/bench.sh` sets up).
//!
//! Samples per second, best of `REPEATS`; the two sides' label digests must agree. Then what a
//! validator does per round (G loaded once by the evaluating child, then per candidate: check,
//! load, infer, metric, digest) against Python onnxruntime doing the same, with min, median and
//! max over the rounds. Then the
//! peak resident memory of `oracle evaluate` on each workload's data and on four copies of it
//! (GNU `time`), to show what grows with the test set and what stays bounded by the batch.
//! Run: `scripts/bench.sh` (or `cargo bench --workspace --bench evaluation`).

use std::{path::Path, process::Command, time::Instant};
use tclearn_evaluation::engine::Engine;
use tclearn_evaluation::evaluate::evaluate;
use tclearn_evaluation::testset::{images::resize_bilinear, ImageSpec, TestSet};
use tclearn_model::architectures::{Cnn, Dense, Mlp};
use tclearn_model::checks::TensorSpec;
use tclearn_model::genesis::{Declaration, Metric};

const REPEATS: usize = 5;
const BATCH: usize = 256;

fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((((i + seed) * 7919) % 211) as f32 - 105.0) / 105.0 * scale).collect()
}

struct Workload {
    name: &'static str,
    model: Vec<u8>,
    data: std::path::PathBuf,
    kind: &'static str,
    declaration: Declaration,
}

fn declaration(input: Vec<Option<i64>>, classes: i64, image: Option<ImageSpec>) -> Declaration {
    let output = TensorSpec { dims: vec![None, Some(classes)] };
    // Weights here are arbitrary, not trained: near ties are not refused (a speed benchmark).
    Declaration {
        image,
        batch_size: BATCH,
        tie_margin: 0.0,
        ..Declaration::new(Metric::Accuracy, TensorSpec { dims: input }, output)
    }
}

fn tabular(dir: &Path, datasets: &Path) -> Workload {
    let set = TestSet::open(&datasets.join("breast_cancer.csv"), None).expect("breast_cancer.csv");
    let inputs = set.inputs(0..set.samples).unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        for (row, target) in inputs.chunks(30).zip(&set.targets) {
            let fields: Vec<String> = row.iter().map(f32::to_string).collect();
            text.push_str(&format!("{},{target}\n", fields.join(",")));
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("tabular.csv");
    std::fs::write(&data, text).unwrap();
    // Features are raw (tens to thousands): small weights keep the softmax informative.
    let mlp = Mlp {
        hidden: Some(Dense { inputs: 30, outputs: 64, weights: values(30 * 64, 1, 0.01), bias: values(64, 2, 0.1) }),
        output: Dense { inputs: 64, outputs: 2, weights: values(128, 3, 0.1), bias: values(2, 4, 0.1) },
    };
    Workload {
        name: "MLP 30-64-2, 56,900 CSV rows",
        model: mlp.to_onnx(),
        data,
        kind: "csv",
        declaration: declaration(vec![None, Some(30)], 2, None),
    }
}

fn images(dir: &Path, datasets: &Path) -> Workload {
    use zune_core::{bit_depth::BitDepth, colorspace::ColorSpace, options::EncoderOptions};
    let set = TestSet::open(&datasets.join("digits.csv.gz"), None).expect("digits.csv.gz");
    let pixels = set.inputs(0..set.samples).unwrap();
    let data = dir.join("digits");
    for (i, (image, label)) in pixels.chunks(64).zip(&set.targets).enumerate() {
        let folder = data.join(format!("{label}"));
        std::fs::create_dir_all(&folder).unwrap();
        let grey: Vec<f32> = image.iter().map(|v| v * 255.0 / 16.0).collect();
        let big: Vec<u8> = resize_bilinear(&grey, 8, 8, 1, 28, 28).iter().map(|v| v.round() as u8).collect();
        let mut png = Vec::new();
        zune_png::PngEncoder::new(&big, EncoderOptions::new(28, 28, ColorSpace::Luma, BitDepth::Eight))
            .encode(&mut png)
            .unwrap();
        std::fs::write(folder.join(format!("{i:05}.png")), png).unwrap();
    }
    let cnn = Cnn {
        channels: 1,
        height: 28,
        width: 28,
        filters: 8,
        kernel: values(72, 5, 0.3),
        kernel_bias: values(8, 6, 0.1),
        dense: Dense { inputs: 8 * 14 * 14, outputs: 10, weights: values(15_680, 7, 0.05), bias: values(10, 8, 0.1) },
    };
    let spec = ImageSpec {
        height: 28,
        width: 28,
        channels: 1,
        mean: vec![0.5],
        std: vec![0.25],
        classes: (0..10).map(|d| d.to_string()).collect(),
    };
    Workload {
        name: "CNN 8x3x3 on 28x28, 1,797 PNG files",
        model: cnn.to_onnx(),
        data,
        kind: "images",
        declaration: declaration(vec![None, Some(1), Some(28), Some(28)], 10, Some(spec)),
    }
}

struct Rates {
    e2e: f64,
    bare: f64,
    digest: String,
}

fn rust(engine: &Engine, workload: &Workload, model_path: &Path) -> Rates {
    let (mut e2e, mut bare, mut digest) = (0f64, 0f64, String::new());
    for _ in 0..REPEATS {
        let started = Instant::now();
        let bytes = std::fs::read(model_path).unwrap();
        let set = TestSet::open(&workload.data, workload.declaration.image.as_ref()).unwrap();
        let report = evaluate(engine, &workload.declaration, &bytes, &set).unwrap();
        e2e = e2e.max(set.samples as f64 / started.elapsed().as_secs_f64());
        digest = report.digest.to_string();

        let inputs = set.inputs(0..set.samples).unwrap().into_owned();
        let mut model = engine.load(&bytes).unwrap();
        // Warm, like the Python session, which its end-to-end run has just used on every batch.
        for batch in inputs.chunks(BATCH * set.sample_len()) {
            model.run_batch(batch, &set.sample_shape).unwrap();
        }
        let started = Instant::now();
        for batch in inputs.chunks(BATCH * set.sample_len()) {
            std::hint::black_box(model.run_batch(batch, &set.sample_shape).unwrap());
        }
        bare = bare.max(set.samples as f64 / started.elapsed().as_secs_f64());
    }
    Rates { e2e, bare, digest }
}

fn python(workload: &Workload, model_path: &Path, threads: usize) -> Rates {
    let python = std::env::var("TCLEARN_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/evaluation.py");
    let output = Command::new(&python)
        .arg(script)
        .arg(model_path)
        .arg(&workload.data)
        .args([workload.kind, &threads.to_string(), &BATCH.to_string(), &REPEATS.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (scripts/bench.sh sets up a venv with onnxruntime)"));
    assert!(output.status.success(), "{python} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    Rates {
        e2e: result["e2e"].as_f64().unwrap(),
        bare: result["bare"].as_f64().unwrap(),
        digest: result["digest"].as_str().unwrap().to_string(),
    }
}

fn main() {
    let threads: usize = std::env::var("TCLEARN_BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    let datasets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets");
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(None, threads).expect("ONNX Runtime ($ORT_DYLIB_PATH)");
    println!("threads {threads}, batch {BATCH}, best of {REPEATS}; samples/s");
    println!("| workload | Rust e2e | Python e2e | Rust/Python e2e | Rust bare | Python bare | Rust/Python bare | Rust e2e/bare | Python e2e/bare |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for workload in [tabular(dir.path(), &datasets), images(dir.path(), &datasets)] {
        let model_path = dir.path().join(format!("{}.onnx", workload.kind));
        std::fs::write(&model_path, &workload.model).unwrap();
        let r = rust(&engine, &workload, &model_path);
        let p = python(&workload, &model_path, threads);
        assert_eq!(r.digest, p.digest, "{}: Rust and Python predict different labels", workload.name);
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
            workload.name,
            r.e2e,
            p.e2e,
            r.e2e / p.e2e,
            r.bare,
            p.bare,
            r.bare / p.bare,
            r.e2e / r.bare,
            p.e2e / p.bare
        );
    }
    println!("label digests agree between Rust and Python on both workloads");
    per_round(dir.path(), &datasets, threads);
    memory(dir.path(), &datasets);
}

/// Rounds measured per workload in the per-round comparison.
const ROUNDS: usize = 15;

/// `(min, median, max)` of `values`.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (sorted[0], sorted[sorted.len() / 2], sorted[sorted.len() - 1])
}

/// What a validator does per round: G parsed, hashed and decoded once when the evaluating
/// child starts; then per candidate, sent to the child, checked, loaded, run, scored and
/// digested (`sandbox::Evaluator`, as `oracle run` does). Against Python onnxruntime doing the
/// same per-round work on data it parsed once, and against both bare loops, in one run.
fn per_round(dir: &Path, datasets: &Path, threads: usize) {
    use tclearn_oracle::sandbox::{Evaluator, Limits, Outcome, Request};
    println!();
    println!("Per round, {ROUNDS} rounds each, seconds min / median / max (start-up once, not counted):");
    println!("| workload | Rust child start | Rust per round | Python per round | Rust bare | Python bare | Python/Rust per round (median) | Rust per round / Rust bare (median) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for workload in [tabular(&dir.join("r1"), datasets), images(&dir.join("r2"), datasets)] {
        let model_path = dir.join(format!("round-{}.onnx", workload.kind));
        std::fs::write(&model_path, &workload.model).unwrap();
        let request = Request {
            declaration: workload.declaration.clone(),
            global: workload.data.clone(),
            local: None,
            ort_library: None,
            threads,
        };
        let limits = Limits::of(&workload.declaration);
        let mut evaluator = Evaluator::new(env!("CARGO_BIN_EXE_oracle").into(), request, limits);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let started = Instant::now();
        let Outcome::Scored { g: first, .. } = runtime.block_on(evaluator.evaluate(&workload.model)) else {
            panic!("the child scored")
        };
        let start_up = started.elapsed().as_secs_f64() - first.seconds;
        let mut rust_rounds = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let Outcome::Scored { g, .. } = runtime.block_on(evaluator.evaluate(&workload.model)) else {
                panic!("scored")
            };
            rust_rounds.push(started.elapsed().as_secs_f64());
            assert_eq!(g.digest, first.digest);
        }
        // The bare loop, in this process, on the same decoded inputs.
        let set = TestSet::open(&workload.data, workload.declaration.image.as_ref()).unwrap().decoded().unwrap();
        let inputs = set.inputs(0..set.samples).unwrap().into_owned();
        let engine = Engine::new(None, threads).unwrap();
        let mut model = engine.load(&workload.model).unwrap();
        let mut rust_bare = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for batch in inputs.chunks(BATCH * set.sample_len()) {
                std::hint::black_box(model.run_batch(batch, &set.sample_shape).unwrap());
            }
            rust_bare.push(started.elapsed().as_secs_f64());
        }
        let python = std::env::var("TCLEARN_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let output = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/evaluation.py"))
            .arg(&model_path)
            .arg(&workload.data)
            .args([workload.kind, &threads.to_string(), &BATCH.to_string(), &ROUNDS.to_string(), "round"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            result["digest"].as_str().unwrap(),
            first.digest.to_string(),
            "{}: Rust and Python disagree",
            workload.name
        );
        let seconds =
            |key: &str| -> Vec<f64> { result[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
        let (python_rounds, python_bare) = (seconds("rounds"), seconds("bare_seconds"));
        let show = |values: &[f64]| {
            let (min, median, max) = spread(values);
            format!("{min:.4} / {median:.4} / {max:.4}")
        };
        let median = |values: &[f64]| spread(values).1;
        println!(
            "| {} | {:.3} | {} | {} | {} | {} | {:.2} | {:.2} |",
            workload.name,
            start_up,
            show(&rust_rounds),
            show(&python_rounds),
            show(&rust_bare),
            show(&python_bare),
            median(&python_rounds) / median(&rust_rounds),
            median(&rust_rounds) / median(&rust_bare)
        );
    }
}

/// Peak resident memory (KiB) of `oracle evaluate` on `data`, by GNU time.
fn peak_rss_kib(model: &Path, data: &Path, genesis: &Path) -> Option<u64> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", env!("CARGO_BIN_EXE_oracle"), "evaluate", "--model"])
        .arg(model)
        .arg("--test-set")
        .arg(data)
        .arg("--genesis")
        .arg(genesis)
        .output()
        .ok()?;
    assert!(output.status.success(), "oracle evaluate: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).lines().last()?.trim().parse().ok()
}

/// Peak memory of `oracle evaluate` on each workload's data, once and four times over.
fn memory(dir: &Path, datasets: &Path) {
    if !Path::new("/usr/bin/time").exists() {
        println!("(no /usr/bin/time: memory not measured)");
        return;
    }
    println!();
    println!("| workload | samples | peak RSS (MiB) | samples ×4 | peak RSS ×4 (MiB) |");
    println!("|---|---:|---:|---:|---:|");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for workload in [tabular(&dir.join("m1"), datasets), images(&dir.join("m2"), datasets)] {
        let model = dir.join(format!("memory-{}.onnx", workload.kind));
        std::fs::write(&model, &workload.model).unwrap();
        let genesis = dir.join(format!("memory-{}.json", workload.kind));
        std::fs::write(&genesis, serde_json::to_string(&workload.declaration).unwrap()).unwrap();
        let four = dir.join(format!("four-{}", workload.kind));
        if workload.kind == "csv" {
            let text = std::fs::read_to_string(&workload.data).unwrap();
            std::fs::write(&four, text.repeat(4)).unwrap();
        } else {
            for class in std::fs::read_dir(&workload.data).unwrap() {
                let class = class.unwrap().path();
                let target = four.join(class.file_name().unwrap());
                std::fs::create_dir_all(&target).unwrap();
                for file in std::fs::read_dir(&class).unwrap() {
                    let file = file.unwrap().path();
                    for copy in 0..4 {
                        std::fs::copy(
                            &file,
                            target.join(format!("{copy}-{}", file.file_name().unwrap().to_string_lossy())),
                        )
                        .unwrap();
                    }
                }
            }
        }
        let samples = TestSet::open(&workload.data, workload.declaration.image.as_ref()).unwrap().samples;
        let (Some(one), Some(four_rss)) =
            (peak_rss_kib(&model, &workload.data, &genesis), peak_rss_kib(&model, &four, &genesis))
        else {
            println!("| {} | (GNU time gave no number) |", workload.name);
            continue;
        };
        println!("| {} | {samples} | {:.1} | {} | {:.1} |", workload.name, mib(one), samples * 4, mib(four_rss));
    }
}

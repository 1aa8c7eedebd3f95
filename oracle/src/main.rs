//! `oracle`: evaluate a model alone, or run the validator worker.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tclearn_oracle::{
    engine::Engine,
    evaluate::evaluate,
    genesis::{Declaration, Metric},
    model,
    testset::TestSet,
    worker::{self, Config},
};

#[derive(Parser)]
#[command(name = "oracle", version, about = "TCLearn validator oracle")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check and evaluate one model on one test set; print the report as JSON.
    Evaluate(EvaluateArgs),
    /// Run the validator worker against a node.
    Run(Config),
}

#[derive(clap::Args)]
struct EvaluateArgs {
    /// The ONNX model file.
    #[arg(long)]
    model: PathBuf,
    /// The test set: a CSV file, or a folder (features and targets, or class subfolders).
    #[arg(long)]
    test_set: PathBuf,
    /// The coalition's genesis declaration; without it the model's own signature is used.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// The metric when there is no declaration.
    #[arg(long, value_enum, default_value = "accuracy")]
    metric: MetricArg,
    /// The ONNX Runtime library (default: `$ORT_DYLIB_PATH`).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_library: Option<PathBuf>,
    /// Inference threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MetricArg {
    Accuracy,
    BalancedAccuracy,
    F1,
    RocAuc,
    Mse,
    Mae,
    R2,
    Dice,
    Iou,
}

impl From<MetricArg> for Metric {
    fn from(metric: MetricArg) -> Self {
        match metric {
            MetricArg::Accuracy => Metric::Accuracy,
            MetricArg::BalancedAccuracy => Metric::BalancedAccuracy,
            MetricArg::F1 => Metric::F1,
            MetricArg::RocAuc => Metric::RocAuc,
            MetricArg::Mse => Metric::Mse,
            MetricArg::Mae => Metric::Mae,
            MetricArg::R2 => Metric::R2,
            MetricArg::Dice => Metric::Dice,
            MetricArg::Iou => Metric::Iou,
        }
    }
}

fn evaluate_command(args: EvaluateArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let declaration = match &args.genesis {
        Some(path) => Declaration::load(path)?,
        None => {
            let (input, output) = model::signature(&bytes).context("model refused")?;
            let text = serde_json::json!({ "metric": Metric::from(args.metric), "input": input, "output": output });
            let declaration: Declaration = serde_json::from_value(text)?;
            declaration.validate()?;
            declaration
        }
    };
    let set = TestSet::open(&args.test_set, declaration.image.as_ref())
        .with_context(|| format!("test set {}", args.test_set.display()))?;
    let engine = Engine::new(args.ort_library.as_deref(), args.threads)?;
    let report = evaluate(&engine, &declaration, &bytes, &set)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Evaluate(args) => evaluate_command(args),
        Command::Run(config) => {
            let shutdown = async {
                let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            };
            worker::run(config, shutdown).await.context("oracle stopped")
        }
    }
}

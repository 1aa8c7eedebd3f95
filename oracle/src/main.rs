//! `oracle`: evaluate a model alone, or run the validator worker.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tclearn_evaluation::testset::TestSet;
use tclearn_model::genesis::{Declaration, EvaluationLimits, Metric};
use tclearn_oracle::sandbox;
use tclearn_oracle::worker::{self, Config};
use tclearn_sandbox::{CheckError, Checker, Limits};

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
    Run(Box<Config>),
    /// Evaluate one candidate for the worker, in a child process within the declared limits
    /// (internal: the request comes on standard input).
    #[command(name = "evaluate-candidate", hide = true)]
    EvaluateCandidate,
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
    /// The metric when there is no declaration: accuracy, balanced_accuracy, f1, roc_auc, mse,
    /// mae, r2, dice or iou.
    #[arg(long, value_parser = parse_metric, default_value = "accuracy")]
    metric: Metric,
    /// The ONNX Runtime library (default: `$ORT_DYLIB_PATH`).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_library: Option<PathBuf>,
    /// Inference threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// A metric by its declaration name (`accuracy`, `roc_auc`, ...).
fn parse_metric(name: &str) -> Result<Metric, String> {
    serde_json::from_value(serde_json::Value::String(name.into())).map_err(|e| e.to_string())
}

/// `oracle evaluate`: the model is read, checked and evaluated in children of this program,
/// within the declaration's limits, as `oracle run` evaluates candidates.
async fn evaluate_command(args: EvaluateArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let declaration = match &args.genesis {
        Some(path) => Declaration::load(path)?,
        None => {
            let limits = Limits::from(EvaluationLimits::default());
            let (input, output) =
                Checker::of_this_program(limits, 1)?.signature(&bytes).await.map_err(|e| match e {
                    CheckError::Refused(reason) => anyhow::anyhow!("model refused: {reason}"),
                    other => other.into(),
                })?;
            let declaration = Declaration::new(args.metric, input, output);
            declaration.validate()?;
            declaration
        }
    };
    // Opened here for a clear error; the child reads it again.
    TestSet::open(&args.test_set, declaration.image.as_ref())
        .with_context(|| format!("test set {}", args.test_set.display()))?;
    let limits = Limits::of(&declaration);
    let request = sandbox::Request {
        declaration,
        global: args.test_set,
        local: None,
        ort_library: args.ort_library,
        threads: args.threads,
    };
    let program = std::env::current_exe().context("this program's path")?;
    match sandbox::evaluate_in_child(&program, &request, &bytes, limits).await {
        sandbox::Outcome::Scored { g, .. } => {
            println!("{}", serde_json::to_string_pretty(&g)?);
            Ok(())
        }
        sandbox::Outcome::Refused { reason, .. } => anyhow::bail!("{reason}"),
        sandbox::Outcome::ValidatorFault { reason } => anyhow::bail!("the evaluation failed: {reason}"),
    }
}

fn main() -> anyhow::Result<()> {
    // The model checks' child (`check-model`), before any runtime or thread starts.
    tclearn_sandbox::checks::serve_if_child();
    // Its children read none of its memory or environment through /proc.
    tclearn_sandbox::limits::hide_from_children();
    tokio::runtime::Runtime::new().context("the async runtime")?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Evaluate(args) => evaluate_command(args).await,
        Command::EvaluateCandidate => std::process::exit(tclearn_oracle::sandbox::child_main()),
        Command::Run(config) => {
            let shutdown = async {
                let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            };
            worker::run(*config, shutdown).await.context("oracle stopped")
        }
    }
}

//! `tclearn`: a member's command line. So far: `tclearn privacy epsilon`, for planning a privacy
//! budget before training.

use clap::{Parser, Subcommand};
use tclearn_member::privacy;

#[derive(Parser)]
#[command(name = "tclearn", version, about = "A TCLearn member's command line")]
struct Cli {
    /// Print JSON instead of a sentence.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Differential privacy.
    #[command(subcommand)]
    Privacy(Privacy),
}

#[derive(Subcommand)]
enum Privacy {
    /// The epsilon DP-SGD spends at `--delta` (Rényi-DP accountant of the sampled Gaussian
    /// mechanism, with dp-accounting's orders).
    Epsilon {
        /// Probability that each example is in a batch (batch size / examples).
        #[arg(long)]
        sampling_rate: f64,
        /// Noise standard deviation over the clipping norm.
        #[arg(long)]
        noise_multiplier: f64,
        /// Training steps.
        #[arg(long)]
        steps: u64,
        /// Target delta.
        #[arg(long, default_value_t = 1e-5)]
        delta: f64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Privacy(Privacy::Epsilon { sampling_rate, noise_multiplier, steps, delta }) => {
            let (epsilon, order) = privacy::dp_sgd_epsilon(sampling_rate, noise_multiplier, steps, delta)?;
            if cli.json {
                let report = serde_json::json!({
                    "epsilon": epsilon, "delta": delta, "optimal_order": order,
                    "sampling_rate": sampling_rate, "noise_multiplier": noise_multiplier, "steps": steps,
                });
                println!("{report}");
            } else {
                println!("epsilon = {epsilon:.4} at delta = {delta:e} (optimal Rényi order {order})");
            }
        }
    }
    Ok(())
}

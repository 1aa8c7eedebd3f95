//! `tclearn privacy epsilon`: what a DP-SGD run spends.

use super::*;

/// `tclearn privacy epsilon`.
pub fn privacy_epsilon(g: &Global, sampling_rate: f64, noise_multiplier: f64, steps: u64, delta: f64) -> Result<i32> {
    let (epsilon, order) = privacy::dp_sgd_epsilon(sampling_rate, noise_multiplier, steps, delta)?;
    if g.json {
        println!(
            "{}",
            json!({
                "epsilon": epsilon, "delta": delta, "optimal_order": order,
                "sampling_rate": sampling_rate, "noise_multiplier": noise_multiplier, "steps": steps,
            })
        );
    } else {
        println!("epsilon = {epsilon:.4} at delta = {delta:e} (optimal Rényi order {order})");
    }
    Ok(0)
}

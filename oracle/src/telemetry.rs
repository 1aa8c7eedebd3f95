//! Prometheus metrics of the worker, served by Substrate's own endpoint crate.

use substrate_prometheus_endpoint::{
    register, Counter, Gauge, Histogram, HistogramOpts, PrometheusError, Registry, F64, U64,
};

/// The worker's metrics (prefix `tclearn_oracle_`).
#[derive(Clone)]
pub struct Telemetry {
    /// The registry they live in.
    pub registry: Registry,
    /// `RoundOpened` events seen.
    pub rounds_seen: Counter<U64>,
    /// Candidate evaluations finished (scored or refused).
    pub evaluations: Counter<U64>,
    /// Seconds per evaluation (G and L).
    pub evaluation_seconds: Histogram,
    /// Commitments and reveals posted.
    pub reports_posted: Counter<U64>,
    /// Seals and attestations posted.
    pub blocks_signed: Counter<U64>,
    /// Errors (RPC, vault, transactions), each retried.
    pub errors: Counter<U64>,
    /// Unix time of the last tick that completed: a stalled oracle stops moving it.
    pub last_tick_seconds: Gauge<U64>,
    /// The best block the node reported at the last tick.
    pub best_block: Gauge<U64>,
    /// 1 while a candidate is being evaluated.
    pub evaluating: Gauge<U64>,
    /// The validator account's free balance, in planck: what pays its transactions.
    pub free_balance: Gauge<F64>,
}

impl Telemetry {
    /// Register the metrics in a fresh registry.
    pub fn new() -> Result<Self, PrometheusError> {
        let registry = Registry::new_custom(Some("tclearn_oracle".into()), None)?;
        let counter = |name: &str, help: &str| register(Counter::new(name, help)?, &registry);
        Ok(Self {
            rounds_seen: counter("rounds_seen_total", "RoundOpened events seen")?,
            evaluations: counter("evaluations_total", "Candidate evaluations finished")?,
            evaluation_seconds: register(
                Histogram::with_opts(
                    HistogramOpts::new("evaluation_seconds", "Seconds per candidate evaluation (G and L)")
                        .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0]),
                )?,
                &registry,
            )?,
            reports_posted: counter("reports_posted_total", "Commitments and reveals posted")?,
            blocks_signed: counter("blocks_signed_total", "Seals and attestations posted")?,
            errors: counter("errors_total", "Errors, each retried")?,
            last_tick_seconds: register(
                Gauge::new("last_tick_seconds", "Unix time of the last tick that completed")?,
                &registry,
            )?,
            best_block: register(Gauge::new("best_block", "The node's best block at the last tick")?, &registry)?,
            evaluating: register(Gauge::new("evaluating", "1 while a candidate is being evaluated")?, &registry)?,
            free_balance: register(Gauge::new("free_balance", "The validator's free balance, planck")?, &registry)?,
            registry,
        })
    }
}

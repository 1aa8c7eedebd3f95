//! # tclearn-oracle
//!
//! The worker on each validator host, and the evaluation engine it runs.
//!
//! Evaluation (also `oracle evaluate`, for validators checking their setup):
//! - [`model`]: the checks a candidate passes before it runs (size, opsets, standard domains and
//!   operators, signature, finite weights, the architecture hash of the genesis model);
//! - [`testset`]: G and L as CSV, text pairs, `.npy` or image folders, with the hash on chain;
//! - [`engine`]: batched inference with ONNX Runtime; [`evaluate`]: metric and digest of one run;
//! - [`metrics`], [`digest`]: the coalition's metrics and the prediction digest validators agree on;
//! - [`genesis`]: the declaration that says how the coalition evaluates;
//! - [`delta`]: weight deltas merged onto a block's model, by a rule anyone can recompute;
//! - [`architectures`]: reference models built in code (an MLP, a small CNN) and a trainer.
//!
//! The chain side ([`worker`]): follows the coalition, commits and reveals reports, seals and
//! attests blocks, with a [`journal`] that makes restarts safe, a [`vault`] client and
//! Prometheus [`telemetry`]. Candidates are evaluated in a child process within the limits the
//! genesis declares ([`sandbox`]).

pub mod architectures;
pub mod delta;
pub mod digest;
pub mod engine;
pub mod evaluate;
pub mod genesis;
pub mod journal;
pub mod metrics;
pub mod model;
pub mod sandbox;
pub mod telemetry;
pub mod testset;
pub mod vault;
pub mod worker;

//! # tclearn-oracle
//!
//! The worker on each validator host. This crate grows in layers:
//! - [`metrics`]: the coalition's metrics, computed the same way on every validator;
//! - [`digest`]: a deterministic digest of predictions on G, so that honest validators on
//!   different CPUs report the same one and the contract can compare them;
//! - [`testset`]: tabular test sets and the hash the chain records for them;
//! - [`engine`]: batched inference with ONNX Runtime.

pub mod architectures;
pub mod digest;
pub mod engine;
pub mod evaluate;
pub mod genesis;
pub mod metrics;
pub mod model;
pub mod testset;

//! # tclearn-model
//!
//! What a TCLearn model is, in pure Rust and without ONNX Runtime: the rules every program
//! applies to a model file the same way (the oracle before it evaluates a candidate, the members'
//! API at upload, the member's command line before it proposes).
//!
//! - [`checks`]: the checks a candidate passes before it runs (size, opsets, standard domains and
//!   operators, signature, finite weights) and the architecture hash of the genesis model;
//! - [`hash`]: the model hash a candidate is proposed under, and the vault reference rule;
//! - [`delta`]: weight deltas merged onto a block's model, by a rule anyone can recompute;
//! - [`genesis`]: the declaration that says how the coalition evaluates;
//! - [`architectures`]: reference models built in code (an MLP, a small CNN) and a trainer, for
//!   tests, benchmarks and the demo's genesis model.

pub mod architectures;
pub mod checks;
pub mod delta;
pub mod genesis;
pub mod hash;

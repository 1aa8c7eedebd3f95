//! # tclearn-evaluation
//!
//! One evaluation of a model on a test set, as every validator runs it: the oracle on G and its
//! L, the member's command line on its own data. The model rules it applies first are
//! [`tclearn_model`]'s.
//!
//! - [`testset`]: G and L as CSV, text pairs, `.npy` or image folders, with the hash on chain;
//! - [`engine`]: batched inference with ONNX Runtime, loaded at run time;
//! - [`evaluate`]: the metric and the digest of one run;
//! - [`metrics`], [`digest`]: the coalition's metrics and the prediction digest validators agree on.

pub mod digest;
pub mod engine;
pub mod evaluate;
pub mod metrics;
pub mod testset;

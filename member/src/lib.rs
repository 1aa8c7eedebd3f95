//! # tclearn-member
//!
//! The members' side of TCLearn, on each member's own machine: what a hospital runs to train on
//! its data and take part in its coalition.
//!
//! - [`trainer`]: local training of the coalition's perceptron with burn's autodiff, SGD or
//!   DP-SGD, written as ONNX by burn-onnx;
//! - [`dp_sgd`]: DP-SGD's privacy step (Poisson sampling, per-example clipping, Gaussian noise);
//! - [`privacy`]: the Rényi-DP accountant of DP-SGD (what a training run spends, as epsilon at a
//!   given delta);
//! - [`id_cache`]: the member's cache of its rows' data IDs, so that each is asked of the vault
//!   once;
//! - [`audit`]: the model chain audited after the fact, each validator's revealed G scores
//!   against its block's model re-evaluated.

pub mod audit;
pub mod dp_sgd;
pub mod id_cache;
/// The privacy accountant (its own crate, shared with the validators' oracle).
pub use tclearn_privacy as privacy;
pub mod trainer;

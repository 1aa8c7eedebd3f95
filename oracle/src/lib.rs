//! # tclearn-oracle
//!
//! The worker on each validator host. It evaluates candidates by [`tclearn_evaluation`] under
//! [`tclearn_model`]'s rules (also `oracle evaluate`, for validators checking their setup).
//!
//! The chain side ([`worker`]): follows the coalition, commits and reveals reports, seals and
//! attests blocks, with a [`journal`] that makes restarts safe, a [`vault`] client and
//! Prometheus [`telemetry`]. Candidates are evaluated in a child process within the limits the
//! genesis declares ([`sandbox`]).

pub mod journal;
pub mod sandbox;
pub mod telemetry;
pub mod vault;
pub mod worker;

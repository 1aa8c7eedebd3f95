//! Child processes for untrusted models, bounded in memory, CPU time and wall time.
//!
//! A member's model is input that every program of the coalition parses: ONNX protobuf, which a
//! recursive parser can be driven to overflow its stack on (a few bytes per level of nesting), to
//! allocate a hundred times the file's size on (empty repeated messages), or to abort on. A crash
//! there must cost one refusal, not a program: the members' API serves every member's vault, and
//! an oracle's worker holds its validator's commitments.
//!
//! So no program parses a member's model in its own process. It starts itself again as a child
//! ([`limits::bounded`]): address-space limit (`RLIMIT_AS`), CPU-time limit (`RLIMIT_CPU`), no
//! core dumps, death with its parent (`PR_SET_PDEATHSIG`), and a wall-clock deadline after which
//! the parent kills it. The limits are the genesis declaration's evaluation limits
//! ([`limits::Limits::of`]), the same for every validator and every vault, so a model that
//! exceeds them is refused everywhere alike.
//!
//! - [`checks`]: the model checks, the delta merge and the signature read, one child per model
//!   (the members' API on every upload, `tclearn` on every model it trains from, `oracle
//!   evaluate` on the model it is given).
//! - The oracle's evaluations (ONNX Runtime) run in a longer-lived child of the same kind
//!   (`tclearn_oracle::sandbox`), on the same [`limits`].
//!
//! A program that uses [`checks`] calls [`checks::serve_if_child`] first thing in `main`, before
//! any runtime or thread starts: the child is the same program, started with
//! [`checks::SUBCOMMAND`].
//!
//! Trust: the child's limits hold against the model, not against the machine's operator; the
//! child reads nothing but its standard input and writes nothing but its standard output.

pub mod checks;
pub mod limits;

pub use checks::{CheckError, Checker};
pub use limits::Limits;

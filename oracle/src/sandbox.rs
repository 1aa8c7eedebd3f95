//! Evaluating a candidate in a child process, within the limits the genesis declares.
//!
//! A candidate is code the coalition runs: an ONNX graph that ONNX Runtime may make allocate
//! gigabytes, loop for hours or crash. The worker never runs one in its own process. It starts
//! its own binary again as `oracle evaluate-candidate`, with an address-space limit
//! (`RLIMIT_AS`), a CPU-time limit (`RLIMIT_CPU`, the declared seconds times the threads, plus
//! 5 s to start), no core dumps, a wall-clock deadline after which the child is killed, and
//! death with its parent (`PR_SET_PDEATHSIG`). The limits are the
//! genesis declaration's (`limits`), the same for every validator, so a candidate that exceeds
//! them is refused by every honest validator: its fault, a reject vote, not a crash of the
//! oracle.
//!
//! The request goes to the child's standard input as one JSON line (the checked declaration,
//! the sets' paths, the runtime settings) followed by the model's bytes; the child answers one
//! JSON [`Outcome`] on its standard output. Its logs go to the oracle's standard error.
//!
//! What the parent makes of the child's end:
//! - an [`Outcome`]: the scores, the candidate's refusal, or the validator's own fault;
//! - killed by a signal (`SIGKILL` from the kernel's limits, `SIGXCPU`, `SIGSEGV`, `SIGABRT` on
//!   an allocation failure) or past the deadline: the candidate's fault ([`Outcome::Refused`]);
//! - any other exit without an outcome (the program did not start, a bug of ours): the
//!   validator's fault.

use crate::{
    engine::Engine,
    evaluate::{self, Evaluation, Fault},
    genesis::Declaration,
    testset::TestSet,
};
use serde::{Deserialize, Serialize};
use std::{
    io::{BufRead, Read, Write},
    path::PathBuf,
    process::Stdio,
    time::Duration,
};
use tclearn_client::coalition::Refusal;
use tokio::io::AsyncWriteExt;

/// The subcommand the child runs.
pub const SUBCOMMAND: &str = "evaluate-candidate";

/// What the child is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The declaration, as checked against the chain (hashes filled in).
    pub declaration: Declaration,
    /// The global test set G.
    pub global: PathBuf,
    /// The validator's local test set L.
    pub local: Option<PathBuf>,
    /// The ONNX Runtime library.
    pub ort_library: Option<PathBuf>,
    /// Inference threads.
    pub threads: usize,
}

/// A refusal the child can reach: the model's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildRefusal {
    /// Refused by the checks, by ONNX Runtime, over the limits, or near ties.
    ModelRefused,
    /// NaN or infinite outputs.
    NonFiniteOutputs,
}

impl From<ChildRefusal> for Refusal {
    fn from(refusal: ChildRefusal) -> Self {
        match refusal {
            ChildRefusal::ModelRefused => Refusal::ModelRefused,
            ChildRefusal::NonFiniteOutputs => Refusal::NonFiniteOutputs,
        }
    }
}

/// How an evaluation ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Scored on G, and on L if the validator has one.
    Scored {
        /// On G.
        g: Evaluation,
        /// On L.
        l: Option<Evaluation>,
    },
    /// The candidate's fault: a reject vote with its reason.
    Refused {
        /// The reason on chain.
        refusal: ChildRefusal,
        /// What happened.
        reason: String,
    },
    /// The validator's own fault: no vote; tried again later.
    ValidatorFault {
        /// What happened.
        reason: String,
    },
}

/// The child's side: read the request and the model from standard input, evaluate, print the
/// outcome. Returns the process's exit code.
pub fn child_main() -> i32 {
    let outcome = match read_request() {
        Ok((request, model)) => evaluate(&request, &model),
        Err(reason) => Outcome::ValidatorFault { reason },
    };
    match serde_json::to_string(&outcome) {
        Ok(line) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_ok() {
                0
            } else {
                3
            }
        }
        Err(_) => 3,
    }
}

fn read_request() -> Result<(Request, Vec<u8>), String> {
    let mut input = std::io::stdin().lock();
    let mut line = String::new();
    input.read_line(&mut line).map_err(|e| format!("reading the request: {e}"))?;
    let request: Request = serde_json::from_str(&line).map_err(|e| format!("the request: {e}"))?;
    let mut model = Vec::new();
    input
        .take(request.declaration.max_model_bytes.saturating_add(1))
        .read_to_end(&mut model)
        .map_err(|e| format!("reading the model: {e}"))?;
    Ok((request, model))
}

/// Evaluate in this process, under the limits the parent set: running out of memory here is
/// the candidate's fault, since the limit is the coalition's.
fn evaluate(request: &Request, model: &[u8]) -> Outcome {
    let declaration = &request.declaration;
    let validator = |what: &str, e: &dyn std::fmt::Display| Outcome::ValidatorFault { reason: format!("{what}: {e}") };
    let engine = match Engine::for_runtime(request.ort_library.as_deref(), request.threads, &declaration.runtime) {
        Ok(engine) => engine,
        Err(e) => return validator("engine", &e),
    };
    let global = match TestSet::open(&request.global, declaration.image.as_ref()) {
        Ok(set) => set,
        Err(e) => return validator("G", &e),
    };
    let local = match request.local.as_ref().map(|path| TestSet::open(path, declaration.image.as_ref())).transpose() {
        Ok(set) => set,
        Err(e) => return validator("L", &e),
    };
    let started = std::time::Instant::now();
    let scored = evaluate::Candidate::load(&engine, declaration, model).and_then(|mut candidate| {
        let g = candidate.score_set(declaration, &global, declaration.test_set_hash, started)?;
        let l = match &local {
            Some(set) => Some(candidate.score_set(declaration, set, None, std::time::Instant::now())?),
            None => None,
        };
        Ok((g, l))
    });
    match scored {
        Ok((g, l)) => Outcome::Scored { g, l },
        Err(error) => match evaluate::fault_of_within_limits(&error) {
            Fault::Candidate(Refusal::NonFiniteOutputs) => {
                Outcome::Refused { refusal: ChildRefusal::NonFiniteOutputs, reason: error.to_string() }
            }
            Fault::Candidate(_) => Outcome::Refused { refusal: ChildRefusal::ModelRefused, reason: error.to_string() },
            Fault::Validator => Outcome::ValidatorFault { reason: error.to_string() },
        },
    }
}

/// The limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address space, bytes.
    pub memory_bytes: u64,
    /// Wall-clock time; CPU time is this times the threads.
    pub wall: Duration,
    /// Inference threads.
    pub threads: usize,
}

/// Evaluate `model` in a child process running `program` (this binary), within `limits`.
pub async fn evaluate_in_child(program: &std::path::Path, request: &Request, model: &[u8], limits: Limits) -> Outcome {
    let validator = |reason: String| Outcome::ValidatorFault { reason };
    let line = match serde_json::to_string(request) {
        Ok(line) => line,
        Err(e) => return validator(format!("encoding the request: {e}")),
    };
    let mut command = tokio::process::Command::new(program);
    command.arg(SUBCOMMAND).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    // CPU time for every thread over the whole deadline, and a margin for starting up: the
    // deadline is what normally ends a slow evaluation; this bounds a child whose parent died.
    let cpu_seconds = limits.wall.as_secs().max(1).saturating_mul(limits.threads.max(1) as u64).saturating_add(5);
    let memory = limits.memory_bytes;
    // SAFETY: runs in the forked child before exec; it only calls `prctl`, `getrlimit` and
    // `setrlimit`, which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // Killed with its parent, whatever kills the parent.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            set_limit(libc::RLIMIT_AS, memory)?;
            set_limit(libc::RLIMIT_CPU, cpu_seconds)?;
            set_limit(libc::RLIMIT_CORE, 0)
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return validator(format!("starting {}: {e}", program.display())),
    };
    let Some(mut stdin) = child.stdin.take() else { return validator("no standard input to the child".into()) };
    let input = [line.as_bytes(), b"\n", model].concat();
    let write = async move {
        // A child that dies early closes its input: what it says about itself is in its exit.
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    };
    let run = async {
        write.await;
        child.wait_with_output().await
    };
    let output = match tokio::time::timeout(limits.wall, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return validator(format!("waiting for the evaluation: {e}")),
        // Dropping the child kills it (`kill_on_drop`).
        Err(_) => {
            return Outcome::Refused {
                refusal: ChildRefusal::ModelRefused,
                reason: format!("the evaluation did not finish within the declared {:?}", limits.wall),
            }
        }
    };
    if let Ok(outcome) = serde_json::from_slice::<Outcome>(output.stdout.trim_ascii()) {
        return outcome;
    }
    use std::os::unix::process::ExitStatusExt;
    match output.status.signal() {
        Some(signal) => Outcome::Refused {
            refusal: ChildRefusal::ModelRefused,
            reason: format!(
                "the evaluation was killed by signal {signal}: it crashed or exceeded the declared limits ({} MiB, {:?})",
                limits.memory_bytes >> 20,
                limits.wall
            ),
        },
        None => validator(format!("the evaluation exited with {} and no outcome", output.status)),
    }
}

/// Lower `resource`'s soft and hard limits to `value` (never above the hard limit in force).
fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let value = (value as libc::rlim_t).min(current.rlim_max);
    let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: `setrlimit` reads the struct it is given and nothing else.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

//! Evaluating candidates in a child process, within the limits the genesis declares.
//!
//! A candidate is code the coalition runs: an ONNX graph that ONNX Runtime may make allocate
//! gigabytes, loop for hours or crash. The worker never runs one in its own process. An
//! [`Evaluator`] starts the oracle's own binary again as `oracle evaluate-candidate`, bounded as
//! every child of [`tclearn_sandbox`] is: an address-space limit (`RLIMIT_AS`), no core dumps
//! and death with its parent (`PR_SET_PDEATHSIG`). The child loads ONNX Runtime, G and L once (decoding image sets once),
//! then evaluates one candidate after another, each within a wall-clock deadline (the parent
//! kills the child past it) and a CPU-time budget (the child lowers its own soft `RLIMIT_CPU`
//! to what it has used plus the declared seconds times its threads, plus 5 s, before each). The
//! limits are the genesis declaration's (`limits`), the same for every validator, so a candidate
//! that exceeds them is refused by every honest validator: its fault, a reject vote, not a crash
//! of the oracle. A child that dies is started again for the next candidate.
//!
//! The protocol, over the child's standard input and output: one JSON [`Request`] line, to which
//! the child answers one [`Ready`] line; then per candidate, a line with the model's length
//! followed by its bytes, to which the child answers one JSON [`Outcome`] line. Its logs go to
//! the oracle's standard error.
//!
//! What the parent makes of a candidate's end:
//! - an [`Outcome`]: the scores, the candidate's refusal, or the validator's own fault;
//! - the child killed by a signal (`SIGKILL`, `SIGXCPU`, `SIGSEGV`, `SIGABRT` on an allocation
//!   failure) or past the deadline: the candidate's fault ([`Outcome::Refused`]);
//! - any other end without an outcome (the program did not start, a bug of ours): the
//!   validator's fault.

use serde::{Deserialize, Serialize};
use std::{
    io::{BufRead, Read, Write},
    path::PathBuf,
    time::Duration,
};
use tclearn_client::coalition::Refusal;
use tclearn_evaluation::engine::Engine;
use tclearn_evaluation::evaluate::{self, Evaluation, Fault};
use tclearn_evaluation::testset::TestSet;
use tclearn_model::genesis::Declaration;
use tclearn_sandbox::limits;
pub use tclearn_sandbox::Limits;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

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

/// How an evaluation ended: one message from the child, read once (its size does not matter).
#[allow(clippy::large_enum_variant)]
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

/// The child's answer to the [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    /// ONNX Runtime, G and L are loaded.
    Ready,
    /// They could not be: the validator's fault.
    Failed {
        /// Why.
        reason: String,
    },
}

/// The header of one candidate: its length in bytes, which follow.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Candidate {
    model_bytes: u64,
}

/// What the child holds between candidates.
struct Loaded {
    request: Request,
    engine: Engine,
    global: TestSet,
    local: Option<TestSet>,
}

/// The child's side: read the request, load, then evaluate candidates until the input ends.
/// Returns the process's exit code.
pub fn child_main() -> i32 {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let mut say = |value: &dyn Say| value.say(&mut stdout);
    let mut line = String::new();
    let loaded = match input.read_line(&mut line) {
        Ok(0) => return 0,
        Ok(_) => serde_json::from_str::<Request>(&line).map_err(|e| format!("the request: {e}")).and_then(load),
        Err(e) => Err(format!("reading the request: {e}")),
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(reason) => return if say(&Ready::Failed { reason }) { 0 } else { 3 },
    };
    if !say(&Ready::Ready) {
        return 3;
    }
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => return 0,
            Ok(_) => {}
            Err(_) => return 3,
        }
        let outcome = match serde_json::from_str::<Candidate>(&line) {
            Ok(header) if header.model_bytes <= loaded.request.declaration.max_model_bytes => {
                let mut model = vec![0u8; header.model_bytes as usize];
                if input.read_exact(&mut model).is_err() {
                    return 3;
                }
                limit_cpu_from_now(&loaded.request);
                evaluate(&loaded, &model)
            }
            // The parent checks the size first: a header over it means the stream is not ours.
            Ok(_) => return 3,
            Err(e) => {
                return if say(&Outcome::ValidatorFault { reason: format!("the candidate header: {e}") }) {
                    0
                } else {
                    3
                }
            }
        };
        if !say(&outcome) {
            return 3;
        }
    }
}

/// A message the child writes: one JSON line, flushed.
trait Say {
    fn say(&self, out: &mut dyn Write) -> bool;
}

impl<T: Serialize> Say for T {
    fn say(&self, out: &mut dyn Write) -> bool {
        serde_json::to_string(self).is_ok_and(|line| writeln!(out, "{line}").and_then(|()| out.flush()).is_ok())
    }
}

fn load(request: Request) -> Result<Loaded, String> {
    let declaration = &request.declaration;
    let engine = Engine::for_runtime(request.ort_library.as_deref(), request.threads, &declaration.runtime)
        .map_err(|e| format!("engine: {e}"))?;
    let open = |path: &std::path::Path, what: &str| {
        TestSet::open(path, declaration.image.as_ref()).and_then(TestSet::decoded).map_err(|e| format!("{what}: {e}"))
    };
    let global = open(&request.global, "G")?;
    let local = request.local.as_deref().map(|path| open(path, "L")).transpose()?;
    Ok(Loaded { engine, global, local, request })
}

/// Lower this process's soft CPU-time limit to what it has used plus one evaluation's budget.
fn limit_cpu_from_now(request: &Request) {
    limits::limit_cpu_from_now(Limits::of(&request.declaration).cpu_seconds(request.threads));
}

/// Evaluate in this process, under the limits the parent set: running out of memory here is
/// the candidate's fault, since the limit is the coalition's.
fn evaluate(loaded: &Loaded, model: &[u8]) -> Outcome {
    let declaration = &loaded.request.declaration;
    let started = std::time::Instant::now();
    let scored = evaluate::Candidate::load(&loaded.engine, declaration, model).and_then(|mut candidate| {
        let g = candidate.score_set(declaration, &loaded.global, declaration.test_set_hash, started)?;
        let l = match &loaded.local {
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

/// A running child.
struct Running {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
}

/// Evaluates candidates in a child process that lives from one candidate to the next.
pub struct Evaluator {
    program: PathBuf,
    request: Request,
    limits: Limits,
    running: Option<Running>,
}

impl Evaluator {
    /// An evaluator running `program` (this binary) for `request`, within `limits`. The child
    /// starts with the first candidate.
    pub fn new(program: PathBuf, request: Request, limits: Limits) -> Self {
        Self { program, request, limits, running: None }
    }

    /// Evaluate `model`.
    pub async fn evaluate(&mut self, model: &[u8]) -> Outcome {
        let max = self.request.declaration.max_model_bytes;
        if model.len() as u64 > max {
            return Outcome::Refused {
                refusal: ChildRefusal::ModelRefused,
                reason: format!("the model is {} bytes; the coalition's limit is {max}", model.len()),
            };
        }
        let mut running = match self.running.take() {
            Some(running) => running,
            None => match self.start().await {
                Ok(running) => running,
                Err(reason) => return Outcome::ValidatorFault { reason },
            },
        };
        let header = match serde_json::to_string(&Candidate { model_bytes: model.len() as u64 }) {
            Ok(header) => header,
            Err(e) => return Outcome::ValidatorFault { reason: format!("encoding the header: {e}") },
        };
        let input = [header.as_bytes(), b"\n", model].concat();
        let exchange = async {
            // A child that dies early closes its input: what it says about itself is in its exit.
            let written = running.stdin.write_all(&input).await.and(running.stdin.flush().await);
            let mut line = String::new();
            let read = running.stdout.read_line(&mut line).await;
            (written, read, line)
        };
        match tokio::time::timeout(self.limits.wall, exchange).await {
            Err(_) => {
                // Dropping the child kills it (`kill_on_drop`); the next candidate starts another.
                drop(running);
                Outcome::Refused {
                    refusal: ChildRefusal::ModelRefused,
                    reason: format!("the evaluation did not finish within the declared {:?}", self.limits.wall),
                }
            }
            Ok((_, Ok(n), line)) if n > 0 => match serde_json::from_str::<Outcome>(&line) {
                Ok(outcome) => {
                    self.running = Some(running);
                    outcome
                }
                Err(e) => Outcome::ValidatorFault { reason: format!("the evaluation's answer: {e}") },
            },
            Ok(_) => self.ended(running).await,
        }
    }

    /// The outcome of a child that ended without answering.
    async fn ended(&self, mut running: Running) -> Outcome {
        let status = tokio::time::timeout(Duration::from_secs(5), running.child.wait()).await;
        match status {
            Ok(Ok(status)) => match limits::killed_by(status) {
                Some(signal) => Outcome::Refused {
                    refusal: ChildRefusal::ModelRefused,
                    reason: format!(
                        "the evaluation was killed by signal {signal}: it crashed or exceeded the declared limits ({} MiB, {:?})",
                        self.limits.memory_bytes >> 20,
                        self.limits.wall
                    ),
                },
                None => Outcome::ValidatorFault { reason: format!("the evaluation exited with {status} and no outcome") },
            },
            _ => Outcome::ValidatorFault { reason: "the evaluation closed its output and did not exit".into() },
        }
    }

    async fn start(&self) -> Result<Running, String> {
        let line = serde_json::to_string(&self.request).map_err(|e| format!("encoding the request: {e}"))?;
        let mut command = tokio::process::Command::new(&self.program);
        command.arg(SUBCOMMAND);
        limits::bounded(&mut command, self.limits, None);
        let mut child = command.spawn().map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        let mut stdin = child.stdin.take().ok_or("no standard input to the child")?;
        let stdout = child.stdout.take().ok_or("no standard output from the child")?;
        let mut stdout = tokio::io::BufReader::new(stdout);
        let handshake = async {
            stdin.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| format!("sending the request: {e}"))?;
            stdin.flush().await.map_err(|e| format!("sending the request: {e}"))?;
            let mut answer = String::new();
            stdout.read_line(&mut answer).await.map_err(|e| format!("reading the answer: {e}"))?;
            serde_json::from_str::<Ready>(&answer)
                .map_err(|e| format!("the evaluation process did not start ({e}): see its log"))
        };
        match tokio::time::timeout(self.limits.wall, handshake).await {
            Ok(Ok(Ready::Ready)) => Ok(Running { child, stdin, stdout }),
            Ok(Ok(Ready::Failed { reason })) => Err(reason),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!("loading G and L took more than the declared {:?}", self.limits.wall)),
        }
    }
}

/// Evaluate `model` in a child process of its own (one candidate, then the child ends).
pub async fn evaluate_in_child(program: &std::path::Path, request: &Request, model: &[u8], limits: Limits) -> Outcome {
    Evaluator::new(program.to_path_buf(), request.clone(), limits).evaluate(model).await
}

//! The model checks, the delta merge and the signature read, each in a child of its own.
//!
//! The protocol, over the child's standard input and output: one JSON [`Task`] line followed by
//! the bytes it names; the child answers one JSON [`Answer`] line, followed by the merged model's
//! bytes for a merge, and exits. A child killed by a signal or past the deadline is the model's
//! fault ([`CheckError::Refused`]); a child that cannot start, or ends without an answer and
//! without a signal, is the program's ([`CheckError::Checker`]).

use crate::limits::{self, Limits};
use serde::{Deserialize, Serialize};
use std::{
    io::{BufRead, Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
};
use tclearn_model::checks::{self as model, CheckedModel, ModelPolicy, TensorSpec};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The first argument that makes a program the checks' child.
pub const SUBCOMMAND: &str = "check-model";

/// What the child is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Task {
    /// Check a whole model (its bytes follow).
    Check {
        /// The coalition's rules.
        policy: ModelPolicy,
        /// The model's length.
        model_bytes: u64,
    },
    /// Merge a delta onto its parent, then check the merged model (the parent's bytes follow,
    /// then the delta's).
    Merge {
        /// The coalition's rules.
        policy: ModelPolicy,
        /// The parent's length.
        parent_bytes: u64,
        /// The delta's length.
        delta_bytes: u64,
    },
    /// Read the model's own signature (its bytes follow).
    Signature {
        /// The model's length.
        model_bytes: u64,
    },
}

/// The child's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    /// The model passes; for a merge, the merged model's bytes follow.
    Checked {
        /// What the checks learnt.
        checked: CheckedModel,
        /// The merged model's length, for a merge.
        merged_bytes: Option<u64>,
    },
    /// The model's own input and output.
    Signature {
        /// Its input.
        input: TensorSpec,
        /// Its output.
        output: TensorSpec,
    },
    /// The checks refuse the model.
    Refused {
        /// Why.
        reason: String,
    },
    /// The delta does not apply to the parent.
    DeltaRefused {
        /// Why.
        reason: String,
    },
}

/// Why a model was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The delta does not fit its parent: the member's fault.
    #[error("the delta does not apply: {0}")]
    Delta(String),
    /// The checks refuse the model, or it made the child exceed its limits or crash: the
    /// member's fault.
    #[error("the model checks refuse it: {0}")]
    Refused(String),
    /// The child could not run or answered nothing we understand: this program's fault.
    #[error("the model checker failed: {0}")]
    Checker(String),
}

/// Runs the checks in children of `program`, at most `concurrency` at a time.
#[derive(Debug, Clone)]
pub struct Checker {
    program: PathBuf,
    limits: Limits,
    running: Arc<tokio::sync::Semaphore>,
}

impl Checker {
    /// Children of `program` (a program that calls [`serve_if_child`] first), each within
    /// `limits`, at most `concurrency` at once (the others wait their turn).
    pub fn new(program: PathBuf, limits: Limits, concurrency: usize) -> Self {
        Self { program, limits, running: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))) }
    }

    /// Children of this very program.
    ///
    /// # Errors
    /// When the program's own path cannot be read.
    pub fn of_this_program(limits: Limits, concurrency: usize) -> Result<Self, CheckError> {
        let program = std::env::current_exe().map_err(|e| CheckError::Checker(format!("this program's path: {e}")))?;
        Ok(Self::new(program, limits, concurrency))
    }

    /// The limits each child runs within.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Check `model` against `policy`.
    ///
    /// # Errors
    /// [`CheckError::Refused`] with the checks' reason, or the limit the model exceeded.
    pub async fn check(&self, model: &[u8], policy: &ModelPolicy) -> Result<CheckedModel, CheckError> {
        self.check_part(Part::Bytes(model), model.len() as u64, policy).await
    }

    /// Check the model in file `path`, `size` bytes, against `policy`: the file is copied to
    /// the child as it is read, never whole in this process's memory.
    ///
    /// # Errors
    /// As [`Checker::check`]; [`CheckError::Checker`] when the file cannot be read.
    pub async fn check_file(&self, path: &Path, size: u64, policy: &ModelPolicy) -> Result<CheckedModel, CheckError> {
        self.check_part(Part::File(path), size, policy).await
    }

    async fn check_part(&self, model: Part<'_>, size: u64, policy: &ModelPolicy) -> Result<CheckedModel, CheckError> {
        let task = Task::Check { policy: policy.clone(), model_bytes: size };
        match self.run(&task, &[model], policy.max_bytes).await? {
            (Answer::Checked { checked, merged_bytes: None }, _) => Ok(checked),
            (answer, _) => Err(unexpected(&answer)),
        }
    }

    /// Merge `delta` onto `parent` (`tclearn_model::delta::merge`) and check the merged model.
    ///
    /// # Errors
    /// [`CheckError::Delta`] when it does not apply, [`CheckError::Refused`] when the merged
    /// model fails the checks or the child its limits.
    pub async fn merge(
        &self,
        parent: &[u8],
        delta: &[u8],
        policy: &ModelPolicy,
    ) -> Result<(Vec<u8>, CheckedModel), CheckError> {
        let task =
            Task::Merge { policy: policy.clone(), parent_bytes: parent.len() as u64, delta_bytes: delta.len() as u64 };
        match self.run(&task, &[Part::Bytes(parent), Part::Bytes(delta)], policy.max_bytes).await? {
            (Answer::Checked { checked, merged_bytes: Some(_) }, merged) => Ok((merged, checked)),
            (answer, _) => Err(unexpected(&answer)),
        }
    }

    /// The model's own input and output (`tclearn_model::checks::signature`).
    ///
    /// # Errors
    /// [`CheckError::Refused`] when it is not a model with one input and one output.
    pub async fn signature(&self, model: &[u8]) -> Result<(TensorSpec, TensorSpec), CheckError> {
        match self.run(&Task::Signature { model_bytes: model.len() as u64 }, &[Part::Bytes(model)], 0).await? {
            (Answer::Signature { input, output }, _) => Ok((input, output)),
            (answer, _) => Err(unexpected(&answer)),
        }
    }

    /// Run `task` on `payload` in a child; a merged model longer than `max_merged` is not read.
    async fn run(&self, task: &Task, payload: &[Part<'_>], max_merged: u64) -> Result<(Answer, Vec<u8>), CheckError> {
        let _turn = self.running.acquire().await.map_err(|e| CheckError::Checker(e.to_string()))?;
        let line = serde_json::to_string(task).map_err(|e| CheckError::Checker(format!("encoding the task: {e}")))?;
        let mut command = tokio::process::Command::new(&self.program);
        command.arg(SUBCOMMAND);
        limits::bounded(&mut command, self.limits, Some(self.limits.cpu_seconds(1)));
        let mut child =
            command.spawn().map_err(|e| CheckError::Checker(format!("starting {}: {e}", self.program.display())))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(CheckError::Checker("the child's standard input and output".into()));
        };
        let mut stdout = tokio::io::BufReader::new(stdout);
        let exchange = async {
            // A child that dies early closes its input: what it says about itself is in its exit.
            let mut written = stdin.write_all(format!("{line}\n").as_bytes()).await;
            for part in payload {
                if written.is_err() {
                    break;
                }
                written = match part {
                    Part::Bytes(bytes) => stdin.write_all(bytes).await,
                    Part::File(path) => match tokio::fs::File::open(path).await {
                        Ok(mut file) => tokio::io::copy(&mut file, &mut stdin).await.map(|_| ()),
                        Err(e) => return Err(format!("reading {}: {e}", path.display())),
                    },
                };
            }
            drop(stdin);
            let mut answer = String::new();
            let read = (&mut stdout).take(MAX_ANSWER_BYTES).read_line(&mut answer).await;
            if !answer.ends_with('\n') && answer.len() as u64 >= MAX_ANSWER_BYTES {
                // What makes an answer long is the model's (a signature of a million dimensions).
                let reason = format!("the checks' answer about this model is over {MAX_ANSWER_BYTES} bytes");
                return Ok(Some((Answer::Refused { reason }, Vec::new())));
            }
            let answer = match read {
                Ok(n) if n > 0 => serde_json::from_str::<Answer>(&answer).map_err(|e| e.to_string()),
                _ => return Ok(None),
            };
            let merged = match &answer {
                Ok(Answer::Checked { merged_bytes: Some(length), .. }) if *length <= max_merged => {
                    let mut merged = vec![0; *length as usize];
                    if stdout.read_exact(&mut merged).await.is_err() {
                        // Cut short: how the child ended says whose fault it was.
                        return Ok(None);
                    }
                    merged
                }
                Ok(Answer::Checked { merged_bytes: Some(length), .. }) => {
                    return Err(format!("a merged model of {length} bytes, over the limit of {max_merged}"))
                }
                _ => Vec::new(),
            };
            answer.map(|answer| Some((answer, merged)))
        };
        let ended = match tokio::time::timeout(self.limits.wall, exchange).await {
            Err(_) => {
                return Err(CheckError::Refused(format!(
                    "the checks did not finish within the coalition's {:?}",
                    self.limits.wall
                )))
            }
            Ok(Err(reason)) => return Err(CheckError::Checker(format!("the child's answer: {reason}"))),
            Ok(Ok(Some((answer, merged)))) => return answered(answer, merged),
            Ok(Ok(None)) => tokio::time::timeout(std::time::Duration::from_secs(5), child.wait()).await,
        };
        match ended {
            Ok(Ok(status)) => match limits::killed_by(status) {
                Some(signal) => Err(CheckError::Refused(format!(
                    "the checks crashed or exceeded the coalition's limits ({} MiB, {:?}): signal {signal}",
                    self.limits.memory_bytes >> 20,
                    self.limits.wall
                ))),
                None => Err(CheckError::Checker(format!("the child exited with {status} and no answer"))),
            },
            _ => Err(CheckError::Checker("the child closed its output and did not exit".into())),
        }
    }
}

/// What a task is given: bytes in memory, or a file copied to the child as it is read.
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// The child's answer as the caller's result.
fn answered(answer: Answer, merged: Vec<u8>) -> Result<(Answer, Vec<u8>), CheckError> {
    match answer {
        Answer::Refused { reason } => Err(CheckError::Refused(reason)),
        Answer::DeltaRefused { reason } => Err(CheckError::Delta(reason)),
        answer => Ok((answer, merged)),
    }
}

fn unexpected(answer: &Answer) -> CheckError {
    CheckError::Checker(format!("an answer to another task: {answer:?}"))
}

/// When this process was started as the checks' child (its first argument is [`SUBCOMMAND`]),
/// serve the one task on standard input and exit; otherwise return at once. Call it first in
/// `main`, before any runtime or thread starts, so the child's address space holds only the
/// checks.
pub fn serve_if_child() {
    if std::env::args_os().nth(1).is_some_and(|first| first == SUBCOMMAND) {
        std::process::exit(child_main());
    }
}

/// The child's side: read the task and its bytes, answer, return the exit code.
fn child_main() -> i32 {
    let mut input = std::io::stdin().lock();
    let mut line = String::new();
    if input.read_line(&mut line).is_err() {
        return 3;
    }
    let Ok(task) = serde_json::from_str::<Task>(&line) else { return 3 };
    let mut read = |length: u64| -> Option<Vec<u8>> {
        let mut bytes = vec![0; usize::try_from(length).ok()?];
        input.read_exact(&mut bytes).ok().map(|()| bytes)
    };
    let Some(payload) = (match &task {
        Task::Check { model_bytes, .. } | Task::Signature { model_bytes } => {
            read(*model_bytes).map(|m| (m, Vec::new()))
        }
        Task::Merge { parent_bytes, delta_bytes, .. } => read(*parent_bytes).zip(read(*delta_bytes)),
    }) else {
        return 3;
    };
    // A panic on a model is the model's refusal (the default hook still logs it).
    let (answer, merged) = std::panic::catch_unwind(move || serve(task, payload)).unwrap_or_else(|panic| {
        let reason =
            panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
        (
            Answer::Refused { reason: bounded(format!("the checks failed on it: {}", reason.unwrap_or_default())) },
            Vec::new(),
        )
    });
    let merged = if matches!(answer, Answer::Checked { merged_bytes: Some(_), .. }) { merged } else { Vec::new() };
    let mut out = std::io::stdout().lock();
    let said = serde_json::to_string(&answer).is_ok_and(|line| {
        writeln!(out, "{line}").and_then(|()| out.write_all(&merged)).and_then(|()| out.flush()).is_ok()
    });
    if said {
        0
    } else {
        3
    }
}

/// One task on its bytes (the model, or the parent and the delta): the answer, and the merged
/// model's bytes for a merge.
fn serve(task: Task, (first, second): (Vec<u8>, Vec<u8>)) -> (Answer, Vec<u8>) {
    match task {
        Task::Check { policy, .. } => (checked(model::check(&first, &policy), None), Vec::new()),
        Task::Merge { policy, .. } => match tclearn_model::delta::merge(&first, &second) {
            Ok(merged) => (checked(model::check(&merged, &policy), Some(merged.len() as u64)), merged),
            Err(e) => (Answer::DeltaRefused { reason: bounded(e.to_string()) }, Vec::new()),
        },
        Task::Signature { .. } => match model::signature(&first) {
            Ok((input, output)) => (Answer::Signature { input, output }, Vec::new()),
            Err(refusal) => (Answer::Refused { reason: bounded(refusal.to_string()) }, Vec::new()),
        },
    }
}

fn checked(result: Result<CheckedModel, model::Refusal>, merged_bytes: Option<u64>) -> Answer {
    match result {
        Ok(checked) => Answer::Checked { checked, merged_bytes },
        Err(refusal) => Answer::Refused { reason: bounded(refusal.to_string()) },
    }
}

/// The longest reason a child gives, bytes: a refusal may quote the model (a domain's name, a
/// tensor's), and the model is the member's to choose.
pub const MAX_REASON_BYTES: usize = 240;

/// Longest answer line read from a child: a checked model's facts or a signature; a signature
/// with more dimensions than fit is refused.
pub const MAX_ANSWER_BYTES: u64 = 64 << 10;

/// `reason`, cut to [`MAX_REASON_BYTES`] at a character boundary.
fn bounded(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES - '…'.len_utf8();
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

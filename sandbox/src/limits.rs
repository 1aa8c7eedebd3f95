//! The limits a child runs within, and how a child is started within them.

use std::time::Duration;
use tclearn_model::genesis::{Declaration, EvaluationLimits};

/// The limits of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address space of the child, bytes (its program, libraries and threads included).
    pub memory_bytes: u64,
    /// Wall-clock time of one model; CPU time is bounded by this times the child's threads.
    pub wall: Duration,
}

impl Limits {
    /// The limits a declaration states for one evaluation: checking or merging a model takes
    /// less than evaluating it, so a model over them would be refused by every validator anyway.
    pub fn of(declaration: &Declaration) -> Self {
        declaration.limits.into()
    }

    /// CPU seconds for `threads` threads over the whole deadline, and a margin: the deadline is
    /// what normally ends a slow child; this bounds a child whose parent is gone or stuck.
    pub fn cpu_seconds(&self, threads: usize) -> u64 {
        self.wall.as_secs().max(1).saturating_mul(threads.max(1) as u64).saturating_add(5)
    }
}

impl From<EvaluationLimits> for Limits {
    fn from(limits: EvaluationLimits) -> Self {
        Self { memory_bytes: limits.memory_mib.saturating_mul(1 << 20), wall: Duration::from_secs(limits.seconds) }
    }
}

/// The environment variables a child keeps: where ONNX Runtime is ([`ORT_DYLIB_PATH`], or the
/// cache under `TCLEARN_CACHE` or `HOME`), the loader's path, logging and the temporary
/// directory. Nothing else of the parent's passes (an S3 key, a token in the environment).
///
/// [`ORT_DYLIB_PATH`]: https://ort.pyke.io/setup/linking
pub const CHILD_ENVIRONMENT: &[&str] =
    &["ORT_DYLIB_PATH", "TCLEARN_CACHE", "HOME", "LD_LIBRARY_PATH", "PATH", "TMPDIR", "RUST_LOG", "RUST_BACKTRACE"];

/// Make `command` start its child within `limits`: killed with its parent, at most
/// `limits.memory_bytes` of address space, no core dump, no new privileges (a set-user-ID
/// program it could exec runs as the child's user), only the [`CHILD_ENVIRONMENT`] of the
/// parent's environment, and, when `cpu_seconds` is given, at most that much CPU time
/// (`SIGXCPU`, then `SIGKILL`). The child's standard input and output are piped; it dies when
/// its handle is dropped.
pub fn bounded(command: &mut tokio::process::Command, limits: Limits, cpu_seconds: Option<u64>) {
    command
        .env_clear()
        .envs(CHILD_ENVIRONMENT.iter().filter_map(|name| std::env::var_os(name).map(|value| (name, value))))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    let memory = limits.memory_bytes;
    // SAFETY: runs in the forked child before exec; it only calls `prctl`, `getrlimit` and
    // `setrlimit`, which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // Killed with its parent, whatever kills the parent.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            set_limit(libc::RLIMIT_AS, memory)?;
            if let Some(seconds) = cpu_seconds {
                set_limit(libc::RLIMIT_CPU, seconds)?;
            }
            set_limit(libc::RLIMIT_CORE, 0)
        });
    }
}

/// Make this process's memory and environment unreadable through `/proc` by its children (and
/// by any other process of its user), and leave no core dump of it: `PR_SET_DUMPABLE` 0. A child
/// gets only [`CHILD_ENVIRONMENT`], but runs as its parent's user, so without this it could read
/// `/proc/<parent>/environ` (an S3 key, a signing key in the environment) and the parent's
/// memory. Call it at the start of every program that starts children on untrusted input. (It
/// does not keep files of the user's from a child, nor anything from root: run the programs as
/// their own unprivileged user.)
pub fn hide_from_children() {
    // SAFETY: `prctl` with these arguments changes one flag of this process and reads no memory.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Whether this process is hidden as [`hide_from_children`] makes it.
pub fn hidden_from_children() -> bool {
    // SAFETY: `prctl(PR_GET_DUMPABLE)` reads one flag of this process.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 }
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

/// Lower this process's soft CPU-time limit to what it has used plus `seconds` (a child that
/// handles one model after another, before each).
pub fn limit_cpu_from_now(seconds: u64) {
    // SAFETY: `getrusage` writes the struct it is given and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return;
    }
    let used = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec).max(0) as u64;
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` and `setrlimit` read or write the struct they are given and nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_CPU, &mut current) == 0 {
            let soft = (used.saturating_add(seconds) as libc::rlim_t).min(current.rlim_max);
            libc::setrlimit(libc::RLIMIT_CPU, &libc::rlimit { rlim_cur: soft, rlim_max: current.rlim_max });
        }
    }
}

/// How a child that ended without answering is judged: killed by a signal (the memory limit's
/// failed allocation aborts, a stack overflow faults, `SIGXCPU`, the deadline's `SIGKILL`), it is
/// the model's fault; any other end is the program's own.
pub fn killed_by(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

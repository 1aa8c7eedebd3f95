//! The worker: follows the chain and plays this validator's part in every open round.
//!
//! Each tick it reads the new blocks' coalition events (counting opened rounds), then looks at
//! the open round on chain and does what is due, each step at most once:
//! - commit phase, selected: fetch the candidate from the vault, check its SHA3-256 against the
//!   chain, evaluate it on G and on its own L, journal the report and a fresh salt, commit;
//! - reveal phase: reveal the journaled report;
//! - sealing phase, as the general: seal, pointing at the candidate's vault copy;
//! - attesting phase: fetch the sealed copy, check it is the candidate, attest the block hash;
//! - past a deadline: call `advance` (anyone may; a refusal because another oracle was first is
//!   expected and ignored).
//!
//! What is due is read from the chain (phase, own ballot), and what was decided from the
//! [`Journal`], so a restarted oracle picks up where it stopped. RPC and vault failures are
//! logged, counted and retried on the next tick; the connection is made again when it drops.

use crate::journal::{Journal, RoundEntry};
use crate::sandbox;
use crate::telemetry::Telemetry;
use crate::vault::{Vault, VaultError};
use std::{collections::HashSet, future::Future, net::SocketAddr, path::PathBuf, time::Duration};
use tclearn_client::{
    args::CoalitionArgs,
    coalition::{
        hashing, rules, Ballot, BlockHeader, CallError, Coalition, CoalitionError, EvaluationSpec, LocalTestSet,
        Member, NativeKeccak, Phase, Refusal, Report, Round, RoundOpened, Scores, Seal, ValidatorsDrawn, Verdict,
    },
    AccountId32, Client, ContractMetadata, Error, Keypair, Secret, WaitFor, H160, H256,
};
use tclearn_evaluation::engine::Engine;
use tclearn_evaluation::evaluate;
use tclearn_evaluation::testset::TestSet;
use tclearn_model::genesis::Declaration;
use tracing::{debug, info, warn};

/// Configuration of `oracle run`; every option can come from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// The node and the coalition.
    #[command(flatten)]
    pub chain: CoalitionArgs,
    /// The coalition's genesis declaration.
    #[arg(long, env = "TCLEARN_GENESIS")]
    pub genesis: PathBuf,
    /// The global test set G.
    #[arg(long, env = "TCLEARN_GLOBAL_TEST_SET")]
    pub global_test_set: PathBuf,
    /// This validator's local test set L.
    #[arg(long, env = "TCLEARN_LOCAL_TEST_SET")]
    pub local_test_set: Option<PathBuf>,
    /// Base URL of the model vault, for vault references that are paths; absolute references
    /// at its origin are fetched too. HTTPS, or HTTP on loopback.
    #[arg(long, env = "TCLEARN_VAULT_URL")]
    pub vault_url: Option<String>,
    /// The coalition's members' API (`tclearn-api`), as the vault: references must name the
    /// candidate's own object there, and the oracle signs in with its key to read it.
    #[arg(long, env = "TCLEARN_VAULT_API", conflicts_with_all = ["vault_url", "vault_origins"])]
    pub vault_api: Option<String>,
    /// More origins (`https://host[:port]`) absolute vault references may name, comma-separated;
    /// a reference anywhere else is refused without a request.
    #[arg(long = "vault-origin", env = "TCLEARN_VAULT_ORIGINS", value_delimiter = ',')]
    pub vault_origins: Vec<String>,
    /// The validator's secret URI (mnemonic, hex seed or `//Dev` derivation).
    #[arg(long, env = "TCLEARN_KEY_URI", hide_env_values = true, conflicts_with = "key_file")]
    pub key_uri: Option<Secret>,
    /// A file holding the validator's secret URI.
    #[arg(long, env = "TCLEARN_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Where the oracle keeps its state (default: `$XDG_DATA_HOME/tclearn/oracle`, else
    /// `~/.local/share/tclearn/oracle`).
    #[arg(long, env = "TCLEARN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The journal file (default: in the data directory, one per chain and coalition:
    /// `journal-<genesis hash>-<coalition>.redb`).
    #[arg(long, env = "TCLEARN_JOURNAL")]
    pub journal: Option<PathBuf>,
    /// Serve Prometheus metrics on this address.
    #[arg(long, env = "TCLEARN_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// The ONNX Runtime library (default: `$ORT_DYLIB_PATH`).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_library: Option<PathBuf>,
    /// Inference threads.
    #[arg(long, env = "TCLEARN_THREADS", default_value_t = 2)]
    pub threads: usize,
    /// Milliseconds between looks at the chain.
    #[arg(long, env = "TCLEARN_POLL_MS", default_value_t = 500)]
    pub poll_ms: u64,
    /// Seconds a whole vault fetch may take, body included (then it is given up and retried on
    /// a later tick).
    #[arg(long, env = "TCLEARN_VAULT_TIMEOUT", default_value_t = 30)]
    pub vault_timeout: u64,
    /// Seconds a transaction may take to be in a block (then the step is tried again on a later
    /// tick, after checking the chain: every step is idempotent).
    #[arg(long, env = "TCLEARN_SUBMIT_TIMEOUT", default_value_t = 60)]
    pub submit_timeout: u64,
    /// Fault injection for the restart tests, only in builds with the `fault-injection`
    /// feature (the end-to-end tests'): abort the process right after this step's transaction
    /// is in a block and before the journal records it (`commit` or `reveal`), or right after
    /// an evaluation is journaled as started (`evaluation-started`).
    #[cfg(feature = "fault-injection")]
    #[arg(long, env = "TCLEARN_ORACLE_ABORT_AFTER", hide = true)]
    pub abort_after: Option<String>,
}

/// The default data directory: `$XDG_DATA_HOME/tclearn/oracle`, else
/// `$HOME/.local/share/tclearn/oracle`.
pub fn default_data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(base.join("tclearn").join("oracle"))
}

/// The journal's file for a chain and a coalition: one per pair, so that a journal is never
/// read on another chain or for another coalition.
pub fn journal_path(data_dir: &std::path::Path, genesis: &H256, coalition: &H160) -> PathBuf {
    data_dir.join(format!("journal-{}-{}.redb", hex::encode(&genesis.0[..8]), hex::encode(coalition.0)))
}

/// Why the worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration cannot work.
    #[error("{0}")]
    Setup(String),
    /// The journal failed: going on could break its promises.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The coalition on chain disagrees with the declaration.
    #[error(transparent)]
    Genesis(#[from] tclearn_model::genesis::GenesisError),
}

/// A failure in one tick: logged, counted, retried.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Chain(#[from] CallError),
    #[error(transparent)]
    Client(#[from] tclearn_client::Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// This validator could not evaluate (its own fault: files, memory): no vote; tried again.
    #[error("evaluation failed on this validator's side (no vote cast; will retry): {0}")]
    Evaluation(String),
    /// This oracle cannot work with this coalition as it is set up (another G, another local
    /// set, no funds, no data directory): it stops rather than retry.
    #[error("fatal: {0}")]
    Fatal(String),
    #[error("{0}")]
    Other(String),
}

impl StepError {
    /// The node could not be reached: connect again.
    fn is_connection(&self) -> bool {
        matches!(self, StepError::Client(Error::Rpc(_)) | StepError::Chain(CallError::Client(Error::Rpc(_))))
    }

    /// The chain moved on under this oracle's step: its dry run passed on one state and the
    /// transaction met another in its block, or the contract says the phase or round has moved.
    fn is_overtaken(&self) -> bool {
        match self {
            StepError::Client(error) | StepError::Chain(CallError::Client(error)) => overtaken_in_block(error),
            StepError::Chain(CallError::Contract(error)) => matches!(
                error,
                CoalitionError::WrongPhase
                    | CoalitionError::WrongRound
                    | CoalitionError::NoOpenRound
                    | CoalitionError::DeadlineNotReached
                    | CoalitionError::AlreadyCommitted
                    | CoalitionError::AlreadyRevealed
                    | CoalitionError::AlreadyAttested
            ),
            _ => false,
        }
    }
}

/// Whether a transaction failed in its block for a state its dry run did not see: the contract
/// reverted, or a longer path ran out of the gas or deposit the dry run sized.
fn overtaken_in_block(error: &Error) -> bool {
    matches!(error, Error::Module { pallet, error, .. }
        if pallet == "Revive" && matches!(error.as_str(), "ContractReverted" | "OutOfGas" | "StorageDepositLimitExhausted"))
}

/// Read the validator's key from the configuration.
pub fn load_key(config: &Config) -> Result<Keypair, WorkerError> {
    let uri = match (&config.key_uri, &config.key_file) {
        (Some(Secret(uri)), None) => uri.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| WorkerError::Setup(format!("key file {}: {e}", path.display())))?
            .trim()
            .to_string(),
        _ => return Err(WorkerError::Setup("give the key as --key-uri (TCLEARN_KEY_URI) or --key-file".into())),
    };
    Keypair::from_uri(&uri).map_err(|e| WorkerError::Setup(e.to_string()))
}

/// Run the worker until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| WorkerError::Setup(format!("{what}: {e}"));
    let key = load_key(&config)?;
    let declaration = Declaration::load(&config.genesis)?;
    let global = TestSet::open(&config.global_test_set, declaration.image.as_ref()).map_err(|e| setup("G", &e))?;
    let local = match &config.local_test_set {
        Some(path) => Some(TestSet::open(path, declaration.image.as_ref()).map_err(|e| setup("L", &e))?),
        None => None,
    };
    // A set that cannot fit the models would make every vote a refusal: stop here instead.
    evaluate::ensure_fits(&declaration, &global).map_err(|e| setup("G", &e))?;
    if let Some(local) = &local {
        evaluate::ensure_fits(&declaration, local).map_err(|e| setup("L", &e))?;
    }
    // Evaluations run in a child process; the library's version is checked here, at start.
    Engine::check_runtime(config.ort_library.as_deref(), &declaration.runtime).map_err(|e| setup("engine", &e))?;
    let metadata_text = std::fs::read_to_string(&config.chain.metadata).map_err(|e| setup("metadata", &e))?;
    let metadata = ContractMetadata::parse(&metadata_text).map_err(|e| setup("metadata", &e))?;
    let vault_timeout = Duration::from_secs(config.vault_timeout);
    let vault = match &config.vault_api {
        Some(api) => Vault::members_api(
            api,
            config.chain.coalition,
            load_key(&config)?,
            declaration.max_model_bytes,
            vault_timeout,
        ),
        None => {
            Vault::new(config.vault_url.as_deref(), &config.vault_origins, declaration.max_model_bytes, vault_timeout)
        }
    }
    .map_err(|e| setup("vault", &e))?;
    let data_dir = match &config.data_dir {
        Some(dir) => dir.clone(),
        None => {
            default_data_dir().ok_or_else(|| WorkerError::Setup("no data directory: set --data-dir or HOME".into()))?
        }
    };
    let telemetry = Telemetry::new().map_err(|e| setup("metrics", &e))?;
    if let Some(addr) = config.metrics_addr {
        let registry = telemetry.registry.clone();
        tokio::spawn(async move {
            if let Err(e) = substrate_prometheus_endpoint::init_prometheus(addr, registry).await {
                warn!(%addr, "metrics endpoint stopped: {e}");
            }
        });
    }
    info!(validator = %key.address(), coalition = %config.chain.coalition, g = global.samples,
        l = local.as_ref().map_or(0, |l| l.samples), "oracle starting");
    let mut oracle = Oracle {
        address: key.address(),
        account: key.account_id(),
        key,
        shared: Shared { declaration, global: SetSummary::of(&global), local: local.as_ref().map(SetSummary::of) },
        vault,
        data_dir,
        journal: None,
        telemetry,
        metadata,
        coalition: None,
        spec: None,
        refused_seals: HashSet::new(),
        evaluator: None,
        config,
    };
    tokio::pin!(shutdown);
    let mut failures = 0u32;
    loop {
        // A tick can wait on the node or the vault: a shutdown does not wait for it. What it
        // had done is in the journal and on chain, which the next start reads first.
        let outcome = tokio::select! {
            outcome = oracle.tick() => outcome,
            () = &mut shutdown => {
                info!("shutting down");
                return Ok(());
            }
        };
        match outcome {
            Ok(()) => failures = 0,
            Err(fatal @ StepError::Fatal(_)) => return Err(WorkerError::Setup(fatal.to_string())),
            Err(StepError::Journal(e)) => return Err(e.into()),
            Err(e) if e.is_overtaken() => {
                // Another transaction changed the state first (a race to `advance`, a dry run
                // made before another validator's call in the same block): the next tick acts on
                // the new state. Not an error, and no reason to reconnect.
                info!("overtaken: {e}");
                failures = 0;
            }
            Err(e) => {
                oracle.telemetry.errors.inc();
                failures = failures.saturating_add(1);
                warn!(failures, "{e}");
                if e.is_connection() {
                    // Connect again on the next tick.
                    oracle.coalition = None;
                }
            }
        }
        let pause = backoff(Duration::from_millis(oracle.config.poll_ms), failures, jitter());
        tokio::select! {
            () = &mut shutdown => {
                info!("shutting down");
                return Ok(());
            }
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// The declaration as checked against the chain, and what the start checks need of the sets
/// (the evaluating child holds the sets themselves).
struct Shared {
    declaration: Declaration,
    global: SetSummary,
    local: Option<SetSummary>,
}

/// A test set's hash and size.
struct SetSummary {
    hash: [u8; 32],
    samples: usize,
}

impl SetSummary {
    fn of(set: &TestSet) -> Self {
        Self { hash: set.hash, samples: set.samples }
    }
}

/// The pause before the next tick after `failures` failed ticks in a row: the polling interval,
/// doubled per failure up to 16 times it (and never above a minute), so that a node or a vault
/// in trouble is not hammered; `jitter` in `[0, 1)` spreads the retries of many oracles over
/// the upper quarter of the pause, so they do not retry in step.
fn backoff(poll: Duration, failures: u32, jitter: f64) -> Duration {
    if failures == 0 {
        return poll;
    }
    let factor = 1u32 << failures.min(4);
    let pause = poll.saturating_mul(factor).min(Duration::from_secs(60));
    pause.mul_f64(0.75 + 0.25 * jitter.clamp(0.0, 1.0))
}

/// A uniform draw from `[0, 1)`, from the system's randomness (0 if it fails).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

struct Oracle {
    config: Config,
    key: Keypair,
    address: H160,
    account: AccountId32,
    shared: Shared,
    vault: Vault,
    data_dir: PathBuf,
    /// Opened at the first connection, when the chain's genesis hash is known.
    journal: Option<Journal>,
    telemetry: Telemetry,
    metadata: ContractMetadata,
    coalition: Option<Coalition>,
    /// The coalition's evaluation spec, checked against the declaration and the sets at the
    /// first connection.
    spec: Option<EvaluationSpec>,
    /// Seals this oracle found wrong (not the candidate, or a hash that covers something else).
    refused_seals: HashSet<H256>,
    /// The child process that evaluates candidates, from the first one on.
    evaluator: Option<sandbox::Evaluator>,
}

impl Oracle {
    fn journal(&self) -> Result<&Journal, StepError> {
        self.journal.as_ref().ok_or_else(|| StepError::Other("the journal is opened at the first connection".into()))
    }

    async fn connect(&mut self) -> Result<Coalition, StepError> {
        if let Some(coalition) = &self.coalition {
            return Ok(coalition.clone());
        }
        // In a block is enough: every step is checked on chain before it is taken again, so a
        // block that is replaced only means the step is taken again. Waiting for finality would
        // hang on a GRANDPA stall.
        let client = Client::connect(&self.config.chain.chain.rpc)
            .await?
            .with_wait_for(WaitFor::InBlock)
            .with_submit_timeout(Duration::from_secs(self.config.submit_timeout));
        if self.journal.is_none() {
            let path = match &self.config.journal {
                Some(path) => path.clone(),
                None => journal_path(&self.data_dir, &client.genesis_hash(), &self.config.chain.coalition),
            };
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StepError::Fatal(format!("data directory {}: {e}", dir.display())))?;
            }
            let journal = Journal::open(&path)?;
            journal.ensure_identity(&client.genesis_hash().0, &self.config.chain.coalition.0)?;
            info!(journal = %path.display(), "journal open");
            self.journal = Some(journal);
        }
        let coalition = Coalition::at(client, self.config.chain.coalition, self.metadata.clone());
        if self.spec.is_none() {
            let spec = coalition.evaluation_spec(&self.account).await?;
            let mut declaration = self.shared.declaration.clone();
            declaration.check_chain(&spec).map_err(|e| StepError::Fatal(format!("{e}")))?;
            if u64::from(spec.test_set_size) != self.shared.global.samples as u64 {
                return Err(StepError::Fatal(format!(
                    "G has {} samples, the coalition's has {}",
                    self.shared.global.samples, spec.test_set_size
                )));
            }
            if self.shared.global.hash != spec.test_set_hash.0 {
                return Err(StepError::Fatal(format!(
                    "G's hash is 0x{}, the coalition's G is {}: this is not the coalition's test set",
                    hex::encode(self.shared.global.hash),
                    spec.test_set_hash
                )));
            }
            if coalition.client().free_balance(&self.account).await? == 0 {
                return Err(StepError::Fatal(format!(
                    "the validator's account {} has no funds to pay for its transactions",
                    self.address
                )));
            }
            self.shared.declaration = declaration;
            self.ensure_local_set(&coalition).await?;
            self.spec = Some(spec);
        }
        info!(rpc = %self.config.chain.chain.rpc, "connected");
        self.coalition = Some(coalition.clone());
        Ok(coalition)
    }

    async fn tick(&mut self) -> Result<(), StepError> {
        let coalition = self.connect().await?;
        let client = coalition.client();
        if client.is_syncing().await? {
            // Its best block may be far behind: acting on it could commit to a stale round.
            info!("the node is syncing: waiting");
            return Ok(());
        }
        let best = client.best_number().await?;
        self.telemetry.best_block.set(best);
        self.telemetry.free_balance.set(client.free_balance(&self.account).await? as f64);
        // Following events is for the record; acting must never wait on it.
        if let Err(e) = self.follow(&coalition, best).await {
            self.telemetry.errors.inc();
            warn!("reading events: {e}");
        }
        self.act(&coalition, best).await?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.telemetry.last_tick_seconds.set(now);
        Ok(())
    }

    /// Read the events of blocks not read yet.
    async fn follow(&mut self, coalition: &Coalition, best: u64) -> Result<(), StepError> {
        let (mut next, last, skipped) = catch_up(self.journal()?.next_block()?, best);
        if skipped > 0 {
            warn!(skipped, from = next, "offline too long: the events of older blocks may be pruned, skipped");
        }
        while next <= last {
            let (_, events) = coalition.client().block_contract_events(next).await?;
            for opened in coalition.events::<RoundOpened>(&events, "RoundOpened")? {
                self.telemetry.rounds_seen.inc();
                info!(round = opened.round, candidate = %opened.candidate, draw_block = opened.draw_block, "round opened");
            }
            for drawn in coalition.events::<ValidatorsDrawn>(&events, "ValidatorsDrawn")? {
                info!(round = drawn.round, selected = drawn.validators.contains(&self.address), "validators drawn");
            }
            next += 1;
            self.journal()?.set_next_block(next)?;
        }
        Ok(())
    }

    /// Do what is due in the open round.
    async fn act(&mut self, coalition: &Coalition, best: u64) -> Result<(), StepError> {
        let me = self.account;
        let Some(id) = coalition.open_round(&me).await? else { return Ok(()) };
        let round = coalition.round(&me, id).await?.ok_or_else(|| StepError::Other(format!("round {id} not found")))?;
        // The dry run sees the best block's number: the deadline has passed once it is beyond.
        if best > u64::from(round.deadline) {
            match coalition.advance(&self.key).await {
                Ok((phase, _)) => info!(round = id, ?phase, "advanced past the deadline"),
                Err(CallError::Contract(error)) => debug!(round = id, ?error, "advance not needed"),
                Err(e) => return Err(e.into()),
            }
            return Ok(());
        }
        let validators = coalition.round_validators(&me, id).await?;
        if !validators.contains(&self.address) {
            return Ok(());
        }
        let ballot = coalition.ballot(&me, id, self.address).await?;
        let entry = self.journal()?.round(id)?;
        match round.phase {
            Phase::Commit => self.commit_phase(coalition, id, &round, ballot.as_ref(), entry).await,
            Phase::Reveal => self.reveal_phase(coalition, id, ballot.as_ref(), entry).await,
            // Checked on chain, not in the journal: a seal whose block was replaced is sealed again.
            Phase::Sealing if round.general == Some(self.address) => {
                self.seal_phase(coalition, id, &round, entry).await
            }
            Phase::Attesting => self.attest_phase(coalition, id, &round, ballot.as_ref(), entry).await,
            _ => Ok(()),
        }
    }

    /// The commit phase: commit to this round's report, evaluating the candidate first unless the
    /// journal has its report already ([`commit_step`]).
    async fn commit_phase(
        &mut self,
        coalition: &Coalition,
        id: u64,
        round: &Round,
        ballot: Option<&Ballot>,
        mut entry: RoundEntry,
    ) -> Result<(), StepError> {
        let (report, salt) = match commit_step(ballot, &entry, id, &round.candidate) {
            CommitStep::Committed { journal_behind: false } => return Ok(()),
            CommitStep::Committed { journal_behind: true } => {
                entry.committed = true;
                return Ok(self.journal()?.record(id, &entry)?);
            }
            CommitStep::Commit(report, salt) => (report, salt),
            step @ (CommitStep::ForgetAndEvaluate | CommitStep::Evaluate) => {
                if step == CommitStep::ForgetAndEvaluate {
                    // Not this round's candidate (a journal from another chain state): never
                    // commit it. No commitment of ours is on chain, so evaluating again is safe.
                    warn!(round = id, journaled = ?entry.report, "the journaled report is not for this round's candidate: evaluating again");
                    self.journal()?.forget(id)?;
                    entry = RoundEntry::default();
                }
                let report = self.evaluate(coalition, id, round).await?;
                let mut salt = [0u8; 32];
                getrandom::getrandom(&mut salt).map_err(|e| StepError::Other(format!("salt: {e}")))?;
                entry.report = Some(report);
                entry.salt = Some(salt);
                // Durable before the commitment leaves this process.
                self.journal()?.record(id, &entry)?;
                (report, salt)
            }
        };
        coalition.commit(&self.key, id, coalition.commitment(&self.address, &report, &salt)).await?;
        self.telemetry.reports_posted.inc();
        self.abort_if("commit");
        info!(round = id, verdict = ?report.verdict, "committed");
        entry.committed = true;
        Ok(self.journal()?.record(id, &entry)?)
    }

    /// The reveal phase: reveal the journaled report this validator committed to
    /// ([`reveal_step`]).
    async fn reveal_phase(
        &mut self,
        coalition: &Coalition,
        id: u64,
        ballot: Option<&Ballot>,
        mut entry: RoundEntry,
    ) -> Result<(), StepError> {
        let (report, salt) = match reveal_step(ballot, &entry) {
            RevealStep::Nothing => return Ok(()),
            RevealStep::Lost => {
                warn!(round = id, commitment = ?ballot.and_then(|b| b.commitment), "committed, but the journal has no report to reveal");
                return Ok(());
            }
            RevealStep::Reveal(report, salt) => (report, salt),
        };
        coalition.reveal(&self.key, id, &report, &salt).await?;
        self.telemetry.reports_posted.inc();
        self.abort_if("reveal");
        info!(round = id, "revealed");
        entry.revealed = true;
        Ok(self.journal()?.record(id, &entry)?)
    }

    /// Why round `id`'s DP declaration does not hold ([`tclearn_privacy::check_round`]), if it
    /// does not: such a candidate is never fetched, sealed or attested, whatever the panel's
    /// majority voted.
    async fn privacy_refusal(
        &self,
        coalition: &Coalition,
        id: u64,
        round: &Round,
    ) -> Result<Option<String>, StepError> {
        let declared = coalition.round_privacy(&self.account, id).await?;
        Ok(tclearn_privacy::check_round(round, declared.as_ref()).err().map(|e| e.to_string()))
    }

    /// The sealing phase, as the round's general: seal the block that points at the candidate
    /// where it already is in the vault, unless its DP declaration does not hold (the next
    /// general gets its turn).
    async fn seal_phase(
        &mut self,
        coalition: &Coalition,
        id: u64,
        round: &Round,
        mut entry: RoundEntry,
    ) -> Result<(), StepError> {
        if let Some(reason) = self.privacy_refusal(coalition, id, round).await? {
            warn!(round = id, "not sealing a candidate whose privacy declaration does not hold: {reason}");
            return Ok(());
        }
        let vault_ref = coalition
            .candidate_ref(&self.account, id)
            .await?
            .ok_or_else(|| StepError::Other(format!("round {id} has no candidate reference")))?;
        let (block_hash, _) = coalition.seal(&self.key, id, &vault_ref).await?;
        self.telemetry.blocks_signed.inc();
        info!(round = id, %block_hash, "sealed as general");
        entry.sealed = true;
        Ok(self.journal()?.record(id, &entry)?)
    }

    /// The attesting phase: attest the general's seal once its hash is the block's, recomputed
    /// from the chain ([`attest_step`]), and the sealed copy in the vault is the candidate.
    async fn attest_phase(
        &mut self,
        coalition: &Coalition,
        id: u64,
        round: &Round,
        ballot: Option<&Ballot>,
        mut entry: RoundEntry,
    ) -> Result<(), StepError> {
        let me = self.account;
        let seal = coalition
            .seal_of(&me, id)
            .await?
            .ok_or_else(|| StepError::Other(format!("round {id} is attesting without a seal")))?;
        let attested = ballot.is_some_and(|b| b.attested == Some(seal.block_hash));
        if attested || self.refused_seals.contains(&seal.block_hash) {
            return Ok(());
        }
        // The block the seal stands for, recomputed from the chain: never attest a hash that
        // covers something else (another vault reference, other strengths).
        if let Some(reason) = self.privacy_refusal(coalition, id, round).await? {
            warn!(round = id, "not attesting a candidate whose privacy declaration does not hold: {reason}");
            self.refused_seals.insert(seal.block_hash);
            return Ok(());
        }
        let expected = sealed_block_hash(round, &seal, &coalition.members(&me).await?);
        if attest_step(&seal, expected) == AttestStep::Refuse {
            warn!(round = id, sealed = %seal.block_hash, %expected, "the seal's hash is not the block's: not attesting");
            self.refused_seals.insert(seal.block_hash);
            return Ok(());
        }
        match self.vault.fetch(&seal.vault_ref, &round.candidate.0).await {
            Ok(_) => {
                coalition.attest(&self.key, id, seal.block_hash).await?;
                self.telemetry.blocks_signed.inc();
                info!(round = id, block_hash = %seal.block_hash, "attested");
                entry.attested = true;
                self.journal()?.record(id, &entry)?;
            }
            Err(e) if !e.is_candidates_fault() => return Err(e.into()),
            Err(e) => {
                // Not the candidate: never attest it; the next general gets its turn.
                warn!(round = id, "sealed copy refused: {e}");
                self.refused_seals.insert(seal.block_hash);
            }
        }
        Ok(())
    }

    /// Fetch and evaluate round `id`'s candidate: the report to commit.
    async fn evaluate(&mut self, coalition: &Coalition, id: u64, round: &Round) -> Result<Report, StepError> {
        let me = &self.account;
        let vault_ref = coalition
            .candidate_ref(me, id)
            .await?
            .ok_or_else(|| StepError::Other(format!("round {id} has no candidate reference")))?;
        let parent = coalition
            .block(me, round.parent)
            .await?
            .ok_or_else(|| StepError::Other(format!("parent block {} not found", round.parent)))?;
        let refusal = |refusal: Refusal, reason: String| {
            warn!(round = id, ?refusal, "candidate refused: {reason}");
            Report { round: id, candidate: round.candidate, verdict: Verdict::Refused(refusal) }
        };
        // The DP declaration first: an under-declared candidate is never fetched (nor sealed or
        // attested), so its model reaches no honest validator.
        if let Some(reason) = self.privacy_refusal(coalition, id, round).await? {
            self.telemetry.evaluations.inc();
            return Ok(refusal(Refusal::PrivacyUnderDeclared, reason));
        }
        let bytes = match self.vault.fetch(&vault_ref, &round.candidate.0).await {
            Ok(bytes) => bytes,
            Err(e) if !e.is_candidates_fault() => return Err(e.into()),
            Err(e) => {
                self.telemetry.evaluations.inc();
                let reason = if matches!(e, VaultError::HashMismatch { .. }) {
                    Refusal::HashMismatch
                } else {
                    Refusal::ModelRefused
                };
                return Ok(refusal(reason, e.to_string()));
            }
        };
        // A crash of the oracle or its host in the middle of evaluating this candidate twice
        // already: the candidate is what brings it down, so it is refused rather than tried a
        // third time (a crash loop).
        let interrupted = self.journal()?.evaluation_started(id)?;
        if interrupted >= MAX_INTERRUPTED_EVALUATIONS {
            self.journal()?.evaluation_ended(id)?;
            self.telemetry.evaluations.inc();
            return Ok(refusal(
                Refusal::ModelRefused,
                format!("its evaluation was interrupted {interrupted} times by a crash of this oracle or its host"),
            ));
        }
        self.abort_if("evaluation-started");
        if self.evaluator.is_none() {
            // The child that evaluates, started with the first candidate and kept for the next.
            let request = sandbox::Request {
                declaration: self.shared.declaration.clone(),
                global: self.config.global_test_set.clone(),
                local: self.config.local_test_set.clone(),
                ort_library: self.config.ort_library.clone(),
                threads: self.config.threads,
            };
            let program = std::env::current_exe().map_err(|e| StepError::Other(format!("this program's path: {e}")))?;
            let limits = sandbox::Limits::of(&self.shared.declaration);
            self.evaluator = Some(sandbox::Evaluator::new(program, request, limits));
        }
        let evaluator = self.evaluator.as_mut().ok_or_else(|| StepError::Other("no evaluator".into()))?;
        let timer = self.telemetry.evaluation_seconds.start_timer();
        self.telemetry.evaluating.set(1);
        let outcome = evaluator.evaluate(&bytes).await;
        self.telemetry.evaluating.set(0);
        self.journal()?.evaluation_ended(id)?;
        timer.observe_duration();
        let (g, l) = match outcome {
            sandbox::Outcome::Scored { g, l } => (g, l),
            sandbox::Outcome::Refused { refusal: reason, reason: text } => {
                self.telemetry.evaluations.inc();
                return Ok(refusal(reason.into(), text));
            }
            sandbox::Outcome::ValidatorFault { reason } => return Err(StepError::Evaluation(reason)),
        };
        self.telemetry.evaluations.inc();
        let local = l.as_ref().map(|l| (l.fixed, l.samples as u32));
        let spec =
            self.spec.as_ref().ok_or_else(|| StepError::Other("evaluating before the spec was checked".into()))?;
        let (g_keeps, l_keeps) =
            evaluate::finding(g.fixed, local, parent.best_performance, round.params.lambda_ppm, spec);
        info!(round = id, g = g.value, l = ?l.as_ref().map(|l| l.value), seconds = g.seconds, g_keeps, l_keeps, "evaluated");
        Ok(Report {
            round: id,
            candidate: round.candidate,
            verdict: Verdict::Scored(Scores {
                g_metric: g.fixed,
                g_digest: H256(g.digest.0),
                l_keeps,
                l_size: local.map_or(0, |(_, size)| size),
            }),
        })
    }

    /// The local set this oracle evaluates on must be the one its member registered: register it
    /// if none is, refuse to start if another is.
    async fn ensure_local_set(&self, coalition: &Coalition) -> Result<(), StepError> {
        let registered = coalition.local_test_set(&self.account, self.address).await?;
        let ours = self
            .shared
            .local
            .as_ref()
            .map(|set| LocalTestSet { hash: H256(set.hash), size: u32::try_from(set.samples).unwrap_or(u32::MAX) });
        match (registered, ours) {
            (None, None) => Ok(()),
            (Some(on_chain), Some(ours)) if on_chain == ours => Ok(()),
            (None, Some(ours)) => {
                coalition.register_local_test_set(&self.key, &ours).await?;
                info!(hash = %ours.hash, size = ours.size, "registered the local test set");
                Ok(())
            }
            (on_chain, ours) => Err(StepError::Fatal(format!(
                "the local test set registered for this member is {} but this oracle has {}; \
                 a registered set changes only through governance (SetLocalTestSet)",
                describe(on_chain),
                describe(ours)
            ))),
        }
    }

    #[cfg(feature = "fault-injection")]
    fn abort_if(&self, step: &str) {
        if self.config.abort_after.as_deref() == Some(step) {
            warn!(step, "aborting as asked (fault injection)");
            std::process::abort();
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    fn abort_if(&self, _step: &str) {}
}

/// Evaluations of one candidate interrupted by a crash of the oracle (or its host) after which
/// the candidate is refused instead of evaluated again.
const MAX_INTERRUPTED_EVALUATIONS: u32 = 2;

/// Blocks whose events an oracle reads per tick, at most.
const EVENTS_PER_TICK: u64 = 64;
/// How far back an oracle reads events after being offline: within the 256 blocks a node keeps
/// by default, with a margin.
const CATCH_UP: u64 = 128;

/// The blocks to read events from this tick, from the journaled `next` (none on a first start:
/// from the best block) to `best`: `(first, last, skipped)`, skipping what is older than
/// [`CATCH_UP`] blocks and reading at most [`EVENTS_PER_TICK`].
fn catch_up(next: Option<u64>, best: u64) -> (u64, u64, u64) {
    let next = next.unwrap_or(best);
    let first = next.max(best.saturating_sub(CATCH_UP));
    let last = best.min(first.saturating_add(EVENTS_PER_TICK - 1));
    (first, last, first - next)
}

/// The journaled report and salt of `entry`, if they are for round `id` and its `candidate`.
/// What the commit phase asks of a validator.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CommitStep {
    /// Its commitment is on chain; the journal may not say so yet.
    Committed {
        /// The journal does not record the commitment.
        journal_behind: bool,
    },
    /// Commit to this journaled report with this salt.
    Commit(Report, [u8; 32]),
    /// The journal holds a report for another candidate: forget it, then evaluate.
    ForgetAndEvaluate,
    /// Evaluate the candidate.
    Evaluate,
}

/// The commit phase's decision, from the validator's ballot on chain and its journal.
fn commit_step(ballot: Option<&Ballot>, entry: &RoundEntry, id: u64, candidate: &H256) -> CommitStep {
    if ballot.is_some_and(|b| b.commitment.is_some()) {
        return CommitStep::Committed { journal_behind: !entry.committed };
    }
    match usable_report(entry, id, candidate) {
        Some((report, salt)) => CommitStep::Commit(report, salt),
        None if entry.report.is_some() => CommitStep::ForgetAndEvaluate,
        None => CommitStep::Evaluate,
    }
}

/// What the reveal phase asks of a validator.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RevealStep {
    /// Not committed, or revealed already.
    Nothing,
    /// Committed, but the journal lost what: nothing can be revealed.
    Lost,
    /// Reveal this report with this salt.
    Reveal(Report, [u8; 32]),
}

/// The reveal phase's decision, from the validator's ballot on chain and its journal.
fn reveal_step(ballot: Option<&Ballot>, entry: &RoundEntry) -> RevealStep {
    if !ballot.is_some_and(|b| b.commitment.is_some() && b.report.is_none()) {
        return RevealStep::Nothing;
    }
    match (entry.report, entry.salt) {
        (Some(report), Some(salt)) => RevealStep::Reveal(report, salt),
        _ => RevealStep::Lost,
    }
}

/// Whether a seal may be attested.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AttestStep {
    /// Its hash is the block's: fetch the sealed copy, then attest.
    Fetch,
    /// Its hash covers something else: never attest it.
    Refuse,
}

/// The attesting phase's decision: a seal is attested only for the block hash recomputed from
/// the chain (`expected`).
fn attest_step(seal: &Seal, expected: H256) -> AttestStep {
    if seal.block_hash == expected {
        AttestStep::Fetch
    } else {
        AttestStep::Refuse
    }
}

fn usable_report(entry: &RoundEntry, id: u64, candidate: &H256) -> Option<(Report, [u8; 32])> {
    match (entry.report, entry.salt) {
        (Some(report), Some(salt)) if report.round == id && report.candidate == *candidate => Some((report, salt)),
        _ => None,
    }
}

fn describe(set: Option<LocalTestSet>) -> String {
    set.map_or("none".into(), |set| format!("{} samples with hash {}", set.size, set.hash))
}

/// The hash of the block `seal` stands for, from the round and the members as the chain has
/// them: the samples the round credits its proposer added (none for a candidate that does not
/// beat the credit mark), the seal's vault reference and timestamp.
fn sealed_block_hash(round: &Round, seal: &Seal, members: &[Member]) -> H256 {
    let mut after: Vec<Member> = members.to_vec();
    for member in after.iter_mut().filter(|m| m.account == round.proposer) {
        member.samples = member.samples.saturating_add(round.credited);
    }
    let strengths = rules::strengths(&after);
    let header = BlockHeader {
        index: round.parent.saturating_add(1),
        timestamp: seal.timestamp,
        previous_hash: round.parent_hash,
        parameter_hash: round.candidate,
        vault_ref_hash: hashing::keccak::<NativeKeccak>(&seal.vault_ref),
        contributor: Some(round.proposer),
        strengths_hash: hashing::strengths_hash::<NativeKeccak>(&strengths),
    };
    hashing::block_hash::<NativeKeccak>(&header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    const ARGS: [&str; 9] = [
        "oracle",
        "--coalition",
        "0x0101010101010101010101010101010101010101",
        "--metadata",
        "m.json",
        "--genesis",
        "g.json",
        "--global-test-set",
        "g.csv",
    ];

    #[test]
    fn retries_back_off_with_jitter_and_a_success_resets_them() {
        let poll = Duration::from_millis(500);
        assert_eq!(backoff(poll, 0, 0.9), poll, "no failure, no backoff");
        assert!(
            backoff(poll, 1, 0.999) < Duration::from_secs(1) && backoff(poll, 1, 0.999) > Duration::from_millis(990)
        );
        assert_eq!(backoff(poll, 1, 0.0), Duration::from_millis(750));
        assert_eq!(backoff(poll, 3, 0.0), Duration::from_secs(3));
        assert_eq!(backoff(poll, 4, 0.0), backoff(poll, 40, 0.0), "capped at 16 polls");
        assert_eq!(backoff(Duration::from_secs(10), 9, 0.0), Duration::from_secs(45), "and at a minute");
        let draws: HashSet<u64> = (0..32).map(|_| (jitter() * 1e9) as u64).collect();
        assert!(draws.len() > 16, "draws differ: {draws:?}");
        assert!((0..1000).map(|_| jitter()).all(|j| (0.0..1.0).contains(&j)));
    }

    #[test]
    fn a_journaled_report_is_committed_only_for_its_round_and_candidate() {
        let report = Report { round: 4, candidate: H256([1; 32]), verdict: Verdict::Refused(Refusal::ModelRefused) };
        let entry = crate::journal::RoundEntry { report: Some(report), salt: Some([9; 32]), ..Default::default() };
        assert_eq!(usable_report(&entry, 4, &H256([1; 32])), Some((report, [9; 32])));
        assert_eq!(usable_report(&entry, 4, &H256([2; 32])), None, "another candidate in round 4");
        assert_eq!(usable_report(&entry, 5, &H256([1; 32])), None, "another round");
        assert_eq!(usable_report(&Default::default(), 4, &H256([1; 32])), None);
    }

    #[test]
    fn each_phase_decides_from_the_ballot_on_chain_and_the_journal() {
        let report = Report { round: 4, candidate: H256([1; 32]), verdict: Verdict::Refused(Refusal::ModelRefused) };
        let journaled = RoundEntry { report: Some(report), salt: Some([9; 32]), ..Default::default() };
        let ballot = |commitment: bool, revealed: bool| Ballot {
            commitment: commitment.then_some(H256([7; 32])),
            report: revealed.then_some(report),
            attested: None,
            deviation: None,
            accepting: false,
            drawn_as_general: false,
        };
        let candidate = H256([1; 32]);
        // Commit: what the chain has decides, then the journal.
        assert_eq!(commit_step(None, &RoundEntry::default(), 4, &candidate), CommitStep::Evaluate);
        assert_eq!(
            commit_step(Some(&ballot(false, false)), &journaled, 4, &candidate),
            CommitStep::Commit(report, [9; 32])
        );
        assert_eq!(
            commit_step(None, &journaled, 4, &H256([2; 32])),
            CommitStep::ForgetAndEvaluate,
            "another candidate"
        );
        assert_eq!(commit_step(None, &journaled, 5, &candidate), CommitStep::ForgetAndEvaluate, "another round");
        assert_eq!(
            commit_step(Some(&ballot(true, false)), &journaled, 4, &candidate),
            CommitStep::Committed { journal_behind: true }
        );
        let noted = RoundEntry { committed: true, ..journaled };
        assert_eq!(
            commit_step(Some(&ballot(true, false)), &noted, 4, &candidate),
            CommitStep::Committed { journal_behind: false }
        );
        // Reveal: only a commitment not yet revealed, and only what the journal kept.
        assert_eq!(reveal_step(None, &journaled), RevealStep::Nothing);
        assert_eq!(reveal_step(Some(&ballot(false, false)), &journaled), RevealStep::Nothing, "never committed");
        assert_eq!(reveal_step(Some(&ballot(true, true)), &journaled), RevealStep::Nothing, "revealed already");
        assert_eq!(reveal_step(Some(&ballot(true, false)), &journaled), RevealStep::Reveal(report, [9; 32]));
        assert_eq!(reveal_step(Some(&ballot(true, false)), &RoundEntry::default()), RevealStep::Lost);
        // Attest: only the block hash recomputed from the chain.
        let seal = Seal {
            general: H160([3; 20]),
            vault_ref: Vec::new(),
            timestamp: 0,
            block_hash: H256([5; 32]),
            strengths_hash: H256([0; 32]),
        };
        assert_eq!(attest_step(&seal, H256([5; 32])), AttestStep::Fetch);
        assert_eq!(attest_step(&seal, H256([6; 32])), AttestStep::Refuse);
    }

    /// Round 3, proposed by `proposer` on block 1 with 8 samples (batch size 1, one epoch), sealed
    /// by `general`, crediting nothing.
    fn test_round(proposer: H160, general: H160) -> Round {
        use tclearn_client::coalition::{Fraction, Hyperparameters};
        let params = Hyperparameters {
            lambda_ppm: 950_000,
            validators_per_round: 1,
            quorum: Fraction::TWO_THIRDS,
            commit_timeout: 5,
            reveal_timeout: 5,
            seal_timeout: 5,
            attest_timeout: 5,
            min_batch_size: 2,
            learning_rate_e9: 1,
            epochs: 1,
            batch_size: 1,
            privacy_budget: None,
            min_gain: 1,
            proposal_cooldown: 0,
        };
        Round {
            id: 3,
            proposer,
            parent: 1,
            parent_hash: H256([7; 32]),
            candidate: H256([8; 32]),
            samples: 8,
            privacy: None,
            opened_at: 10,
            validators: 1,
            seed: H256([9; 32]),
            params,
            phase: Phase::Attesting,
            deadline: 20,
            commits: 1,
            reveals: 1,
            performance: Some(900_000),
            accepts: 1,
            credited: 0,
            deviants: 0,
            generals_drawn: 1,
            general: Some(general),
            attestations: 1,
            block: None,
        }
    }

    /// A declaration is checked against the round's own samples, batch size and epochs before
    /// the candidate is fetched: an honest one passes, an under-declared one, one for fewer
    /// epochs, or none in a coalition with a budget is refused.
    #[test]
    fn the_privacy_declaration_is_recomputed_from_the_round() {
        use tclearn_client::coalition::PrivacySpend;
        let round = test_round(H160([1; 20]), H160([2; 20]));
        let honest = tclearn_privacy::declare(8, 1, 1, 1.5, 1.0).unwrap();
        assert_eq!(tclearn_privacy::check_round(&round, Some(&honest)), Ok(()));
        assert_eq!(tclearn_privacy::check_round(&round, None), Ok(()), "no budget, no declaration needed");
        let mut under = honest;
        under.rdp.iter_mut().for_each(|r| *r /= 2);
        assert!(tclearn_privacy::check_round(&round, Some(&under)).unwrap_err().to_string().contains("below"));
        let mut two_epochs = round.clone();
        two_epochs.params.epochs = 2;
        assert!(tclearn_privacy::check_round(&two_epochs, Some(&honest)).is_err());
        let mut budgeted = round;
        budgeted.params.privacy_budget = Some(PrivacySpend { epsilon: 1, delta: 1 });
        assert_eq!(tclearn_privacy::check_round(&budgeted, None), Err(tclearn_privacy::DeclarationError::Undeclared));
    }

    /// A no-op (the tip with a bit flipped) is appended but credits nothing: the block the
    /// oracle expects has the strengths as they were, as the contract's seal has them. Adding
    /// the round's samples instead would refuse every such seal, and the round would fail.
    #[test]
    fn the_expected_block_credits_only_what_the_round_credits() {
        use tclearn_client::coalition::PrivacySpend;
        let (alice, bob) = (H160([1; 20]), H160([2; 20]));
        let member = |account, samples| Member {
            account,
            samples,
            privacy_spent: PrivacySpend::default(),
            faults: 0,
            may_propose_at: 0,
        };
        let members = [member(alice, 8), member(bob, 4)];
        let round = |credited| Round { credited, ..test_round(alice, bob) };
        let seal = Seal {
            general: bob,
            vault_ref: b"vault://c".to_vec(),
            timestamp: 5,
            block_hash: H256([0; 32]),
            strengths_hash: H256([0; 32]),
        };
        let block = |strengths: &[Member]| {
            hashing::block_hash::<NativeKeccak>(&BlockHeader {
                index: 2,
                timestamp: 5,
                previous_hash: H256([7; 32]),
                parameter_hash: H256([8; 32]),
                vault_ref_hash: hashing::keccak::<NativeKeccak>(b"vault://c"),
                contributor: Some(alice),
                strengths_hash: hashing::strengths_hash::<NativeKeccak>(&rules::strengths(strengths)),
            })
        };
        assert_eq!(sealed_block_hash(&round(0), &seal, &members), block(&members), "a no-op credits nothing");
        let credited = [member(alice, 16), member(bob, 4)];
        assert_eq!(sealed_block_hash(&round(8), &seal, &members), block(&credited), "a gain credits its samples");
    }

    #[test]
    fn each_chain_and_coalition_has_its_own_journal_in_the_data_directory() {
        let dir = std::path::Path::new("/var/lib/tclearn");
        let a = journal_path(dir, &H256([1; 32]), &H160([2; 20]));
        assert_eq!(a, dir.join(format!("journal-0101010101010101-{}.redb", "02".repeat(20))));
        assert_ne!(a, journal_path(dir, &H256([3; 32]), &H160([2; 20])), "another chain");
        assert_ne!(a, journal_path(dir, &H256([1; 32]), &H160([4; 20])), "another coalition");
        let cli = Cli::try_parse_from(ARGS).unwrap();
        assert_eq!(
            (cli.config.journal, cli.config.data_dir),
            (None, None),
            "nothing in the working directory by default"
        );
    }

    #[test]
    fn catching_up_skips_what_a_node_has_pruned_and_reads_a_bounded_span() {
        assert_eq!(catch_up(None, 1_000), (1_000, 1_000, 0), "a first start reads from the best block");
        assert_eq!(catch_up(Some(990), 1_000), (990, 1_000, 0));
        assert_eq!(catch_up(Some(800), 1_000), (872, 935, 72), "13 minutes away: older blocks skipped");
        assert_eq!(catch_up(Some(0), 100), (0, 63, 0), "a young chain is read from its start, 64 at a time");
        assert_eq!(catch_up(Some(1_001), 1_000), (1_001, 1_000, 0), "nothing new: an empty span");
    }

    #[tokio::test]
    async fn a_shutdown_does_not_wait_for_a_node_that_never_answers() {
        // A node that accepts connections and never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rpc = format!("ws://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let genesis = dir.path().join("genesis.json");
        std::fs::write(
            &genesis,
            r#"{"metric": "accuracy", "input": {"dims": [null, 30]}, "output": {"dims": [null, 2]}}"#,
        )
        .unwrap();
        let metadata = dir.path().join("metadata.json");
        std::fs::write(&metadata, "{}").unwrap();
        let g = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/breast_cancer.csv");
        let journal = dir.path().join("journal.redb");
        let cli = Cli::try_parse_from([
            "oracle",
            "--coalition",
            "0x0101010101010101010101010101010101010101",
            "--key-uri",
            "//Bob",
            "--rpc",
            &rpc,
            "--metadata",
            metadata.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
            "--global-test-set",
            g.to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
        ])
        .unwrap();
        let started = std::time::Instant::now();
        let shutdown = tokio::time::sleep(Duration::from_millis(300));
        let stopped = tokio::time::timeout(Duration::from_secs(5), run(cli.config, shutdown)).await;
        assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "stopped after {:?}", started.elapsed());
    }

    #[test]
    fn races_are_not_errors_and_only_lost_connections_reconnect() {
        let module = |error: &str| Error::Module { pallet: "Revive".into(), error: error.into(), docs: String::new() };
        let chain = |error| StepError::Chain(CallError::Client(error));
        assert!(chain(module("ContractReverted")).is_overtaken());
        assert!(chain(module("OutOfGas")).is_overtaken());
        assert!(StepError::Chain(CallError::Contract(CoalitionError::DeadlineNotReached)).is_overtaken());
        assert!(StepError::Chain(CallError::Contract(CoalitionError::WrongPhase)).is_overtaken());
        assert!(!StepError::Chain(CallError::Contract(CoalitionError::CommitmentMismatch)).is_overtaken());
        assert!(!chain(module("ContractNotFound")).is_overtaken());
        assert!(!chain(Error::Rpc("closed".into())).is_overtaken());
        assert!(chain(Error::Rpc("closed".into())).is_connection());
        assert!(StepError::Client(Error::Rpc("closed".into())).is_connection());
        assert!(!chain(module("OutOfGas")).is_connection(), "a refused transaction keeps the connection");
        assert!(!StepError::Chain(CallError::Contract(CoalitionError::WrongPhase)).is_connection());
    }

    #[test]
    fn the_key_comes_from_a_uri_or_a_file_and_is_never_printed() {
        let secret = "bottom drive obey lake curtain smoke basket hold race lonely fit walk//Alice";
        let cli = Cli::try_parse_from(ARGS.iter().copied().chain(["--key-uri", secret])).unwrap();
        let printed = format!("{:?}", cli.config);
        assert!(!printed.contains("bottom drive") && printed.contains("Secret(..)"), "{printed}");
        assert_eq!(load_key(&cli.config).unwrap().address(), Keypair::dev("Alice").unwrap().address());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "//Bob\n").unwrap();
        let cli = Cli::try_parse_from(ARGS.iter().copied().chain(["--key-file", file.to_str().unwrap()])).unwrap();
        assert_eq!(load_key(&cli.config).unwrap().address(), Keypair::dev("Bob").unwrap().address());

        let none = Cli::try_parse_from(ARGS).unwrap();
        assert!(load_key(&none.config).unwrap_err().to_string().contains("--key-uri"));
        let bad =
            Cli::try_parse_from(ARGS.iter().copied().chain(["--key-uri", "not a valid secret phrase at all"])).unwrap();
        let error = load_key(&bad.config).unwrap_err().to_string();
        assert!(!error.contains("not a valid secret phrase"), "the URI is not echoed: {error}");
        assert!(
            Cli::try_parse_from(ARGS.iter().copied().chain(["--key-uri", "//A", "--key-file", "f"])).is_err(),
            "one or the other"
        );
    }

    #[tokio::test]
    async fn a_local_set_that_does_not_fit_the_models_stops_the_worker_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = dir.path().join("genesis.json");
        std::fs::write(
            &genesis,
            r#"{"metric": "accuracy", "input": {"dims": [null, 30]}, "output": {"dims": [null, 2]}}"#,
        )
        .unwrap();
        let local = dir.path().join("l.csv");
        std::fs::write(&local, "1,2,0\n3,4,1\n").unwrap();
        let g = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/breast_cancer.csv");
        let args =
            ["oracle", "--coalition", "0x0101010101010101010101010101010101010101", "--metadata", "missing.json"];
        let cli = Cli::try_parse_from(args.iter().copied().chain([
            "--genesis",
            genesis.to_str().unwrap(),
            "--global-test-set",
            g.to_str().unwrap(),
            "--local-test-set",
            local.to_str().unwrap(),
            "--key-uri",
            "//Bob",
        ]))
        .unwrap();
        let error = run(cli.config, std::future::pending()).await.unwrap_err().to_string();
        assert!(error.starts_with("L: test set samples are [2]"), "{error}");
    }
}

//! What each `tclearn` subcommand does. Reads go through the members' API; proposals and votes
//! are signed with the member's key and sent to the chain; the vault is reached signed in.

use crate::{
    output::{self, metric, short, strength},
    Global,
};
use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::{
    io::Write,
    path::PathBuf,
    str::FromStr,
    time::{Duration, Instant},
};
use tclearn_api::{
    client::{self as api, ApiClient},
    views::{BlockView, CoalitionView, MemberView, ProposalView, RoundView, StoredObject},
};
use tclearn_client::{
    account_to_address,
    anchors::AuditAnchors,
    coalition::{
        Action, CallError, Coalition, CoalitionError, EvaluationSpec, Fraction, Genesis, GovernanceParams,
        Hyperparameters, MetricKind, PrivacySpend,
    },
    AccountId32, Client, ContractArtifact, ContractMetadata, Keypair, H160, H256,
};
use tclearn_member::{
    data_ids::DataIdKey,
    dp_sgd::DpSgd,
    privacy,
    trainer::{self, CnnParameters, MlpParameters, Model, Network, Table, Training},
};

// ---- Keys -----------------------------------------------------------------------------------

fn key_path(g: &Global) -> Result<PathBuf> {
    if let Some(path) = &g.key {
        return Ok(path.clone());
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| anyhow!("no --key, and neither XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(config.join("tclearn").join("key"))
}

/// The member's key, from its key file.
fn load_key(g: &Global) -> Result<Keypair> {
    let path = key_path(g)?;
    let secret = std::fs::read_to_string(&path)
        .with_context(|| format!("no key at {}: run `tclearn key new` or `tclearn key import`", path.display()))?;
    Keypair::from_uri(secret.trim()).with_context(|| format!("the key file {}", path.display()))
}

/// Write `secret` to the key file, readable by its owner only.
fn store_key(g: &Global, secret: &str, force: bool) -> Result<Keypair> {
    let key = Keypair::from_uri(secret.trim()).context("not a secret URI (a mnemonic, a hex seed or a //Dev path)")?;
    let path = key_path(g)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| {
        if path.exists() {
            format!("{} exists: pass --force to replace it", path.display())
        } else {
            path.display().to_string()
        }
    })?;
    writeln!(file, "{}", secret.trim()).with_context(|| path.display().to_string())?;
    Ok(key)
}

fn print_key(g: &Global, key: &Keypair, note: &str) -> Result<i32> {
    let path = key_path(g)?;
    if g.json {
        println!("{}", json!({ "account": key.account_id().to_string(), "address": format!("{:?}", key.address()), "key_file": path }));
    } else {
        println!("account {}\naddress {:?}\n{note}{}", key.account_id(), key.address(), path.display());
    }
    Ok(0)
}

/// `tclearn key new`.
pub fn key_new(g: &Global, force: bool) -> Result<i32> {
    use sp_core::crypto::Pair as _;
    let (_, phrase, _) = sp_core::sr25519::Pair::generate_with_phrase(None);
    let key = store_key(g, &phrase, force)?;
    print_key(g, &key, "the secret (a 12-word phrase) is in ")
}

/// `tclearn key import`: the secret comes on standard input, never on the command line.
pub fn key_import(g: &Global, force: bool) -> Result<i32> {
    let mut secret = String::new();
    std::io::stdin().read_line(&mut secret).context("reading the secret from standard input")?;
    if secret.trim().is_empty() {
        bail!("no secret on standard input");
    }
    let key = store_key(g, &secret, force)?;
    print_key(g, &key, "the secret is in ")
}

/// `tclearn key show`.
pub fn key_show(g: &Global) -> Result<i32> {
    let key = load_key(g)?;
    print_key(g, &key, "key file ")
}

// ---- The chain --------------------------------------------------------------------------------

fn artifacts(g: &Global) -> Result<PathBuf> {
    g.artifacts.clone().ok_or_else(|| anyhow!("where are the contracts' metadata? pass --artifacts or set TCLEARN_ARTIFACTS"))
}

fn metadata(g: &Global, name: &str) -> Result<ContractMetadata> {
    let path = artifacts(g)?.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(ContractMetadata::parse(&text)?)
}

async fn connect(g: &Global) -> Result<Client> {
    Client::connect(&g.node).await.with_context(|| format!("connecting to the node at {}", g.node))
}

fn parse_address(text: &str) -> Result<H160> {
    H160::from_str(text.trim().trim_start_matches("0x")).map_err(|_| anyhow!("{text:?} is not a 20-byte address"))
}

/// The coalition the API serves, on the chain.
async fn coalition(g: &Global) -> Result<(Coalition, CoalitionView)> {
    let view: CoalitionView = api::read(&g.api, "/api/coalition").await.context("reading the coalition from the members' API")?;
    let client = connect(g).await?;
    Ok((Coalition::at(client, parse_address(&view.address)?, metadata(g, "coalition")?), view))
}

/// A contract's refusal in a member's words.
fn explain(error: CallError, view: &CoalitionView) -> anyhow::Error {
    let CallError::Contract(error) = error else {
        return anyhow!(error);
    };
    let why = match error {
        CoalitionError::NotMember => "this key is not a member of the coalition".to_string(),
        CoalitionError::RoundOpen => "another round is open: wait for its verdict (`tclearn status`)".to_string(),
        CoalitionError::StaleParent => {
            format!("the tip moved to block {} since this candidate was trained: train again on the new tip", view.tip)
        }
        CoalitionError::KnownParameters => "these parameters are a block's already".to_string(),
        CoalitionError::DataIdUsed => "some of these samples are in a block already: train again".to_string(),
        CoalitionError::BatchTooSmall => format!("too few samples: the coalition needs at least {}", view.min_batch_size),
        CoalitionError::PrivacyBudgetExceeded => match view.privacy_budget {
            Some(budget) => format!(
                "this would take your privacy spend past the coalition's budget of epsilon {} at delta {:e} \
                 (a proposal must declare its spend when a budget is set)",
                budget.epsilon, budget.delta
            ),
            None => "privacy budget exceeded".to_string(),
        },
        CoalitionError::GovernancePending => "a passed governance change is due: enact it first".to_string(),
        other => format!("{other:?}"),
    };
    anyhow!("the coalition refused: {why}")
}

// ---- Status -----------------------------------------------------------------------------------

/// Everything `tclearn status` shows.
#[derive(Serialize)]
struct Status {
    coalition: CoalitionView,
    blocks: Vec<BlockStatus>,
    members: Vec<MemberView>,
    round: Option<RoundView>,
    proposals: Vec<ProposalView>,
}

#[derive(Serialize)]
struct BlockStatus {
    #[serde(flatten)]
    block: BlockView,
    /// The epsilon its round's proposer declared.
    epsilon: Option<f64>,
}

/// `tclearn status`.
pub async fn status(g: &Global) -> Result<i32> {
    let coalition: CoalitionView = api::read(&g.api, "/api/coalition").await.context("the members' API")?;
    let blocks: Vec<BlockView> = api::read(&g.api, "/api/blocks").await?;
    let members: Vec<MemberView> = api::read(&g.api, "/api/members").await?;
    let proposals: Vec<ProposalView> = api::read(&g.api, "/api/proposals").await?;
    let round: Option<RoundView> = api::read(&g.api, "/api/rounds/current").await.ok();
    let mut with_privacy = Vec::new();
    for block in blocks {
        let epsilon = match block.round {
            Some(id) => api::read::<RoundView>(&g.api, &format!("/api/rounds/{id}")).await?.privacy.map(|p| p.epsilon),
            None => None,
        };
        with_privacy.push(BlockStatus { block, epsilon });
    }
    let status = Status { coalition, blocks: with_privacy, members, round, proposals };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(0);
    }
    let c = &status.coalition;
    let budget = c.privacy_budget.map_or("none".to_string(), |b| format!("epsilon {} at delta {:e}", b.epsilon, b.delta));
    println!(
        "coalition {} · tip block {} · {} {} · lambda {} · {} validators per round, quorum {} · privacy budget {budget}",
        c.address,
        c.tip,
        c.metric.to_lowercase(),
        c.performance.map_or("-".into(), |p| format!("{:.4}", metric(p))),
        f64::from(c.lambda_ppm) / 1e6,
        c.validators_per_round,
        c.quorum
    );
    println!("training: learning rate {}, {} epochs, batches of {}", c.learning_rate, c.epochs, c.batch_size);
    let mut blocks = output::table(&["block", "contributor", "metric", "samples", "epsilon", "round", "hash"]);
    for b in &status.blocks {
        let contributor = b.block.contributor.as_deref().map(|c| g.who(c)).unwrap_or_else(|| if b.block.index == 0 { "genesis" } else { "revert" }.into());
        blocks.add_row([
            b.block.index.to_string(),
            contributor,
            format!("{:.4}", metric(b.block.performance)),
            b.block.samples.to_string(),
            b.epsilon.map_or("-".into(), |e| format!("{e:.3}")),
            b.block.round.map_or("-".into(), |r| r.to_string()),
            short(&b.block.hash),
        ]);
    }
    println!("{blocks}");
    let mut members = output::table(&["member", "samples", "strength", "contribution", "epsilon spent"]);
    for m in &status.members {
        let of = c.privacy_budget.map_or(String::new(), |b| format!(" of {}", b.epsilon));
        members.add_row([
            g.name_of(&m.address).map_or(m.address.clone(), |name| format!("{name} ({})", short(&m.address))),
            m.samples.to_string(),
            format!("{:.3}", strength(m.strength)),
            format!("{:+.4}", metric(m.contribution)),
            format!("{:.3}{of}", m.epsilon_spent),
        ]);
    }
    println!("{members}");
    match &status.round {
        Some(r) => print_round(g, r),
        None => println!("no round yet"),
    }
    if !status.proposals.is_empty() {
        let mut proposals = output::table(&["proposal", "action", "ayes", "nays", "status"]);
        for p in &status.proposals {
            proposals.add_row([p.id.to_string(), p.action.clone(), p.ayes.to_string(), p.nays.to_string(), p.status.clone()]);
        }
        println!("{proposals}");
    }
    Ok(0)
}

fn print_round(g: &Global, r: &RoundView) {
    let reason = r.reason.as_deref().map_or(String::new(), |why| format!(": {why}"));
    let privacy = r.privacy.map_or(String::new(), |p| format!(", epsilon {:.3}", p.epsilon));
    println!(
        "round {} by {} on block {} ({} samples{privacy}): {}{reason}{}",
        r.id,
        g.who(&r.proposer),
        r.parent,
        r.samples,
        r.phase,
        r.performance.map_or(String::new(), |p| format!(", metric {:.4}", metric(p)))
    );
    if r.validators.is_empty() {
        return;
    }
    let mut table = output::table(&["validator", "committed", "revealed", "G metric", "L metric", "accepts", "note"]);
    for v in &r.validators {
        let note = v.refused.clone().or_else(|| v.deviation.clone().map(|d| format!("deviated: {d}"))).unwrap_or_default();
        table.add_row([
            g.who(&v.validator),
            yes(v.committed),
            yes(v.revealed),
            v.g_metric.map_or("-".into(), |m| format!("{:.4}", metric(m))),
            v.l_metric.map_or("-".into(), |m| format!("{:.4}", metric(m))),
            yes(v.accepting),
            note,
        ]);
    }
    println!("{table}");
}

fn yes(value: bool) -> String {
    if value { "yes" } else { "no" }.into()
}

// ---- Data and training -------------------------------------------------------------------------

/// `tclearn split`.
#[derive(clap::Args)]
pub struct SplitArgs {
    /// The member's data: a header line, then `identifier,feature,…,label` rows.
    #[arg(long)]
    data: PathBuf,
    /// Share of the rows kept as the local test set L.
    #[arg(long, default_value_t = 0.2)]
    local_share: f64,
    /// Where the training rows go (same layout as --data).
    #[arg(long)]
    train: PathBuf,
    /// Where L goes, as the oracle reads a test set (`feature,…,label`).
    #[arg(long)]
    local: PathBuf,
    /// Seed of the shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `tclearn split`.
pub fn split(g: &Global, args: SplitArgs) -> Result<i32> {
    if !(0.0..1.0).contains(&args.local_share) {
        bail!("--local-share is a share of the rows, at least 0 and below 1");
    }
    let table = Table::read_csv(&args.data)?;
    let (train, local) = table.split_local(args.local_share, args.seed);
    std::fs::write(&args.train, train.to_member_csv()).with_context(|| args.train.display().to_string())?;
    std::fs::write(&args.local, local.to_test_set_csv()).with_context(|| args.local.display().to_string())?;
    if g.json {
        println!("{}", json!({ "training_rows": train.len(), "local_rows": local.len() }));
    } else {
        println!("{} rows for training in {}, {} as the local test set in {}", train.len(), args.train.display(), local.len(), args.local.display());
    }
    Ok(0)
}

/// How a malicious member spoils its increment, for demonstrations and tests of the coalition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attack {
    /// Train on wrong labels.
    FlipLabels,
    /// Scale the increment (trained minus parent weights) by a factor: a boosted or reversed
    /// update.
    Scale(f32),
    /// Add Gaussian noise of this deviation to the trained weights.
    Noise(f32),
}

impl FromStr for Attack {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let number = |v: &str| v.parse::<f32>().map_err(|_| format!("{v:?} is not a number"));
        match text.split_once(':') {
            None if text == "flip-labels" => Ok(Self::FlipLabels),
            Some(("scale", v)) => number(v).map(Self::Scale),
            Some(("noise", v)) => number(v).map(Self::Noise),
            _ => Err("flip-labels, scale:FACTOR or noise:DEVIATION".into()),
        }
    }
}

/// `tclearn train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The training rows: a header line, then `identifier,feature,…,label` rows.
    #[arg(long)]
    data: PathBuf,
    /// Where the candidate (`candidate.onnx`) and its metadata (`candidate.json`) go.
    #[arg(long)]
    out: PathBuf,
    /// Use at most this many of the rows not yet in a block.
    #[arg(long)]
    max_samples: Option<usize>,
    /// Train with DP-SGD at this noise multiplier (noise deviation over the clipping norm).
    #[arg(long)]
    noise_multiplier: Option<f32>,
    /// DP-SGD's clipping norm of each example's gradient.
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f32,
    /// The delta of the privacy accounting.
    #[arg(long, default_value_t = 1e-5)]
    delta: f64,
    /// Seed of batches and noise (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Train as a malicious member would (demonstrations and tests of the coalition):
    /// flip-labels, scale:FACTOR or noise:DEVIATION.
    #[arg(long)]
    attack: Option<Attack>,
}

/// What `tclearn train` writes beside the candidate, and `tclearn propose` reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct CandidateFile {
    /// The tip it was trained from.
    pub parent: u32,
    /// The candidate's SHA3-256, hex.
    pub model_hash: String,
    /// Training samples.
    pub samples: u64,
    /// Their anonymised data IDs, hex.
    pub data_ids: Vec<String>,
    /// The differential privacy spent, if trained with DP-SGD.
    pub epsilon: Option<f64>,
    /// Its delta.
    pub delta: Option<f64>,
    /// Mean cross-entropy before and after training.
    pub loss_before: f64,
    /// After.
    pub loss_after: f64,
    /// SGD steps.
    pub steps: u64,
    /// Per-example gradients computed per second of training.
    pub samples_per_second: f64,
    /// The attack played, if any.
    pub attack: Option<String>,
}

/// `tclearn train`.
pub async fn train(g: &Global, args: TrainArgs) -> Result<i32> {
    let key = load_key(g)?;
    let data = Table::read_csv(&args.data)?;
    let (coalition, view) = coalition(g).await?;
    let session = ApiClient::sign_in(&g.api, &key).await.context("signing in to the members' API")?;
    let tip: BlockView = api::read(&g.api, &format!("/api/blocks/{}", view.tip)).await?;
    let tip_model = session.download(&tip.parameter_hash).await.context("downloading the tip's model")?;
    let mut model = Model::from_onnx(&tip_model)?;
    let parent = model.clone();

    // The rows not yet in a block, by their anonymised IDs.
    let secret = DataIdKey::from_hex(&session.data_id_key().await?).map_err(|_| anyhow!("the vault's data-ID secret is malformed"))?;
    let origin = key.account_id();
    let mut fresh = Vec::new();
    let checking = output::bar(data.len() as u64, "checking which rows are new", g.json);
    for (row, id) in data.ids.iter().enumerate() {
        let data_id = H256(secret.data_id(id));
        if coalition.data_id_block(&origin, data_id).await?.is_none() {
            fresh.push((row, data_id));
        }
        checking.inc(1);
        if args.max_samples.is_some_and(|max| fresh.len() >= max) {
            break;
        }
    }
    checking.finish_and_clear();
    let params = coalition.hyperparameters(&origin).await?;
    if (fresh.len() as u64) < params.min_batch_size {
        bail!(
            "only {} of the {} rows are not in a block yet; a proposal needs at least {}",
            fresh.len(),
            data.len(),
            params.min_batch_size
        );
    }
    let rows: Vec<usize> = fresh.iter().map(|(row, _)| *row).collect();
    let mut training_rows = data.select(&rows);
    if args.attack == Some(Attack::FlipLabels) {
        let classes = model.classes() as u32;
        training_rows.labels.iter_mut().for_each(|l| *l = (*l + 1) % classes);
    }
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let training = Training {
        learning_rate: params.learning_rate_e9 as f32 / 1e9,
        epochs: params.epochs,
        batch_size: params.batch_size,
        privacy: args.noise_multiplier.map(|noise_multiplier| DpSgd { clip_norm: args.clip_norm, noise_multiplier }),
        delta: args.delta,
        seed,
    };
    let bar = output::bar(0, "training", g.json);
    let report = trainer::train(&mut model, &training_rows, &training, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    match args.attack {
        Some(Attack::Scale(factor)) => {
            let trained = model.trained();
            let scaled: Vec<f32> = parent.trained().iter().zip(&trained).map(|(p, t)| p + factor * (t - p)).collect();
            model.set_trained(&scaled);
        }
        Some(Attack::Noise(deviation)) => {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let normal = rand_distr::Normal::new(0.0f32, deviation).map_err(|e| anyhow!("noise:{deviation}: {e}"))?;
            let noised: Vec<f32> = model.trained().iter().map(|v| v + rand_distr::Distribution::sample(&normal, &mut rng)).collect();
            model.set_trained(&noised);
        }
        _ => {}
    }
    let onnx = model.to_onnx()?;
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    std::fs::write(args.out.join("candidate.onnx"), &onnx)?;
    std::fs::write(args.out.join("delta.onnx"), trainer::delta(&parent, &model))?;
    let file = CandidateFile {
        parent: view.tip,
        model_hash: format!("0x{}", hex::encode(tclearn_oracle::evaluate::model_hash(&onnx))),
        samples: rows.len() as u64,
        data_ids: fresh.iter().map(|(_, id)| format!("0x{}", hex::encode(id.0))).collect(),
        epsilon: report.privacy.map(|(epsilon, _)| epsilon),
        delta: report.privacy.map(|(_, delta)| delta),
        loss_before: report.loss_before,
        loss_after: report.loss_after,
        steps: report.steps,
        samples_per_second: report.gradients as f64 / report.seconds.max(1e-9),
        attack: args.attack.map(|a| format!("{a:?}")),
    };
    std::fs::write(args.out.join("candidate.json"), serde_json::to_string_pretty(&file)?)?;
    if g.json {
        println!("{}", serde_json::to_string(&file)?);
    } else {
        let privacy = file.epsilon.map_or("without differential privacy".to_string(), |e| format!("epsilon {e:.3} at delta {:e}", args.delta));
        println!(
            "trained on {} new rows from block {}: {} steps, loss {:.4} → {:.4}, {privacy}; candidate {} in {}",
            file.samples,
            file.parent,
            file.steps,
            file.loss_before,
            file.loss_after,
            short(&file.model_hash),
            args.out.display()
        );
    }
    Ok(0)
}

// ---- Proposing and following a round -------------------------------------------------------------

/// `tclearn propose`.
#[derive(clap::Args)]
pub struct ProposeArgs {
    /// The folder `tclearn train` wrote (`candidate.onnx`, `delta.onnx`, `candidate.json`).
    #[arg(long)]
    candidate: PathBuf,
    /// Send the weight changes (`delta.onnx`) instead of the whole model: the vault merges
    /// them onto the parent block's model, and the merged model is proposed.
    #[arg(long)]
    delta: bool,
    /// Give up following the round after this many seconds.
    #[arg(long, default_value_t = 600)]
    wait_secs: u64,
}

/// `tclearn propose`.
pub async fn propose(g: &Global, args: ProposeArgs) -> Result<i32> {
    let key = load_key(g)?;
    let meta: CandidateFile = serde_json::from_str(
        &std::fs::read_to_string(args.candidate.join("candidate.json")).with_context(|| args.candidate.join("candidate.json").display().to_string())?,
    )
    .context("candidate.json")?;
    let file = args.candidate.join(if args.delta { "delta.onnx" } else { "candidate.onnx" });
    let onnx = std::fs::read(&file).with_context(|| file.display().to_string())?;
    let (coalition, view) = coalition(g).await?;
    let session = ApiClient::sign_in(&g.api, &key).await.context("signing in to the members' API")?;
    let uploading = output::spinner(&format!("uploading {} bytes to the vault", onnx.len()), g.json);
    let stored: StoredObject = if args.delta {
        session.upload_delta(meta.parent, onnx).await.context("the vault refused the delta")?
    } else {
        session.upload_candidate(onnx).await.context("the vault refused the candidate")?
    };
    uploading.finish_and_clear();
    // A merged delta is the trained model up to float rounding, so its hash is its own.
    if !args.delta && stored.hash != meta.model_hash {
        bail!("the vault stored {} but candidate.json names {}: the folder was changed after training", stored.hash, meta.model_hash);
    }
    let candidate = H256(parse_hash(&stored.hash)?);
    let data_ids = meta.data_ids.iter().map(|id| parse_hash(id).map(H256)).collect::<Result<Vec<_>>>()?;
    let privacy = match (meta.epsilon, meta.delta) {
        (Some(epsilon), Some(delta)) => Some(PrivacySpend::from_real(epsilon, delta).ok_or_else(|| anyhow!("candidate.json: epsilon {epsilon}, delta {delta}"))?),
        _ => None,
    };
    let proposing = output::spinner("proposing on chain", g.json);
    let proposed = coalition.propose(&key, meta.parent, candidate, stored.vault_ref.as_bytes(), meta.samples, &data_ids, privacy).await;
    proposing.finish_and_clear();
    let (round, _) = proposed.map_err(|e| explain(e, &view))?;
    if !g.json {
        println!("proposed {} on block {} as round {round}", short(&stored.hash), meta.parent);
    }
    let final_view = follow(g, round, Duration::from_secs(args.wait_secs)).await?;
    if g.json {
        println!("{}", serde_json::to_string(&final_view)?);
    } else {
        print_round(g, &final_view);
    }
    Ok(if final_view.phase == "appended" { 0 } else { 2 })
}

/// Follow round `id` through the API until it ends, saying each phase as it comes.
async fn follow(g: &Global, id: u64, patience: Duration) -> Result<RoundView> {
    let deadline = Instant::now() + patience;
    let spinner = output::spinner(&format!("round {id}: waiting"), g.json);
    let mut seen = String::new();
    loop {
        let round: RoundView = api::read(&g.api, &format!("/api/rounds/{id}")).await?;
        if round.phase != seen {
            seen = round.phase.clone();
            let detail = match seen.as_str() {
                "commit" => format!(" by {}", round.validators.iter().map(|v| g.who(&v.validator)).collect::<Vec<_>>().join(", ")),
                _ => String::new(),
            };
            spinner.println(format!("round {id}: {seen}{detail}"));
            spinner.set_message(format!("round {id}: {seen}"));
        }
        if matches!(round.phase.as_str(), "appended" | "rejected" | "failed") {
            spinner.finish_and_clear();
            return Ok(round);
        }
        if Instant::now() > deadline {
            spinner.finish_and_clear();
            bail!("round {id} is still in {} after {} s: follow it with `tclearn status`", round.phase, patience.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn parse_hash(text: &str) -> Result<[u8; 32]> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text.trim().trim_start_matches("0x"), &mut hash).map_err(|_| anyhow!("{text:?} is not 32 bytes of hex"))?;
    Ok(hash)
}

// ---- Governance -----------------------------------------------------------------------------------

/// `tclearn vote`.
#[derive(clap::Args)]
pub struct VoteArgs {
    /// The proposal.
    #[arg(long)]
    proposal: u32,
    /// Vote aye.
    #[arg(long, conflicts_with = "nay", required_unless_present = "nay")]
    aye: bool,
    /// Vote nay.
    #[arg(long)]
    nay: bool,
}

/// `tclearn vote`.
pub async fn vote(g: &Global, args: VoteArgs) -> Result<i32> {
    let key = load_key(g)?;
    let (coalition, view) = coalition(g).await?;
    coalition.vote(&key, args.proposal, args.aye).await.map_err(|e| explain(e, &view))?;
    let proposal = coalition.proposal(&key.account_id(), args.proposal).await?.ok_or_else(|| anyhow!("no proposal {}", args.proposal))?;
    if g.json {
        println!("{}", json!({ "proposal": args.proposal, "aye": args.aye, "ayes": proposal.ayes, "nays": proposal.nays }));
    } else {
        println!("voted {} on proposal {}: {} ayes, {} nays", if args.aye { "aye" } else { "nay" }, args.proposal, proposal.ayes, proposal.nays);
    }
    Ok(0)
}

/// `tclearn proposal new`.
#[derive(clap::Args)]
pub struct ProposalNewArgs {
    /// add_member, remove_member, revert or set_hyperparameter.
    #[arg(long)]
    action: String,
    /// The member's address, the block to revert to, or `name=value` (`epochs=3`,
    /// `privacy_budget=8,1e-5`, `lambda_ppm=950000`, ...).
    #[arg(long)]
    argument: String,
}

/// `tclearn proposal new`.
pub async fn proposal_new(g: &Global, args: ProposalNewArgs) -> Result<i32> {
    let action = match args.action.as_str() {
        "add_member" => Action::AddMember(parse_address(&args.argument)?),
        "remove_member" => Action::RemoveMember(parse_address(&args.argument)?),
        "revert" => Action::Revert(args.argument.parse().map_err(|_| anyhow!("revert takes a block index"))?),
        "set_hyperparameter" => Action::SetHyperparameter(
            tclearn_api::api::parse_hyperparameter(&args.argument).map_err(|e| anyhow!("{e:?}"))?,
        ),
        other => bail!("unknown action {other:?}: add_member, remove_member, revert or set_hyperparameter"),
    };
    let key = load_key(g)?;
    let (coalition, view) = coalition(g).await?;
    let (id, _) = coalition.propose_action(&key, &action).await.map_err(|e| explain(e, &view))?;
    if g.json {
        println!("{}", json!({ "proposal": id, "action": format!("{action:?}") }));
    } else {
        println!("proposal {id}: {action:?}; members vote with `tclearn vote --proposal {id} --aye`");
    }
    Ok(0)
}

/// `tclearn proposal enact`.
pub async fn proposal_enact(g: &Global, id: u32) -> Result<i32> {
    let key = load_key(g)?;
    let (coalition, view) = coalition(g).await?;
    let (status, _) = coalition.enact(&key, id).await.map_err(|e| explain(e, &view))?;
    if g.json {
        println!("{}", json!({ "proposal": id, "status": format!("{status:?}") }));
    } else {
        println!("proposal {id}: {status:?}");
    }
    Ok(0)
}

// ---- The vault and its audit log ------------------------------------------------------------------

/// `tclearn download`.
#[derive(clap::Args)]
pub struct DownloadArgs {
    /// A block's model.
    #[arg(long, conflicts_with = "hash", required_unless_present = "hash")]
    block: Option<u32>,
    /// Any object by its hash.
    #[arg(long)]
    hash: Option<String>,
    /// Where to write it.
    #[arg(long)]
    out: PathBuf,
}

/// The model stored under `hash` in the vault, checked to hash to it.
async fn download_model(session: &ApiClient, hash: &str) -> Result<Vec<u8>> {
    let bytes = session.download(hash).await?;
    if tclearn_oracle::evaluate::model_hash(&bytes) != parse_hash(hash)? {
        bail!("the vault served bytes that do not hash to {hash}");
    }
    Ok(bytes)
}

/// `tclearn download`.
pub async fn download(g: &Global, args: DownloadArgs) -> Result<i32> {
    let key = load_key(g)?;
    let hash = match (args.block, args.hash) {
        (Some(index), _) => api::read::<BlockView>(&g.api, &format!("/api/blocks/{index}")).await?.parameter_hash,
        (None, Some(hash)) => hash,
        (None, None) => bail!("--block or --hash"),
    };
    let session = ApiClient::sign_in(&g.api, &key).await.context("signing in to the members' API")?;
    let bytes = download_model(&session, &hash).await?;
    std::fs::write(&args.out, &bytes).with_context(|| args.out.display().to_string())?;
    if g.json {
        println!("{}", json!({ "hash": hash, "size": bytes.len(), "out": args.out }));
    } else {
        println!("{} bytes, hash {} checked, written to {}", bytes.len(), short(&hash), args.out.display());
    }
    Ok(0)
}

/// `tclearn audit verify`.
pub async fn audit_verify(g: &Global) -> Result<i32> {
    let view: CoalitionView = api::read(&g.api, "/api/coalition").await.context("the members' API")?;
    let address = view.audit_anchors.ok_or_else(|| anyhow!("the coalition records no audit-anchors contract"))?;
    let anchors = AuditAnchors::at(connect(g).await?, parse_address(&address)?, metadata(g, "audit_anchors")?);
    // Reads need an origin, not a key: any well-formed account will do.
    let origin = AccountId32([0; 32]);
    let verified = tclearn_api::verify::verify_served(&reqwest::Client::new(), &g.api, &anchors, &origin)
        .await
        .context("the audit log does not verify")?;
    if g.json {
        println!("{}", json!({ "entries": verified.entries, "anchors": verified.anchors, "anchored": verified.anchored }));
    } else {
        println!(
            "audit log verified: {} entries, {} anchors on chain, the latest covering {} entries",
            verified.entries, verified.anchors, verified.anchored
        );
    }
    Ok(0)
}

/// `tclearn audit anchor`.
pub async fn audit_anchor(g: &Global) -> Result<i32> {
    let key = load_key(g)?;
    let session = ApiClient::sign_in(&g.api, &key).await.context("signing in to the members' API")?;
    let anchor = session.anchor().await?;
    if g.json {
        println!("{}", serde_json::to_string(&anchor)?);
    } else {
        println!("anchor {} on chain: the log's first {} entries, root {}", anchor.index, anchor.log_length, short(&anchor.root));
    }
    Ok(0)
}

/// `tclearn audit blocks`.
#[derive(clap::Args)]
pub struct AuditBlocksArgs {
    /// G, the coalition's global test set, as its oracles read it.
    #[arg(long)]
    pub test_set: PathBuf,
    /// The oracles' genesis declaration (`tclearn found --declaration`).
    #[arg(long)]
    pub declaration: PathBuf,
    /// The first block to audit.
    #[arg(long, default_value_t = 1)]
    pub from: u32,
}

/// `tclearn audit blocks`: re-evaluate every appended block's model on G and compare it with
/// each of its round's validators' revealed G scores (`tclearn_member::audit`). Exits 3 when a
/// revealed report is proven forged.
pub async fn audit_blocks(g: &Global, args: AuditBlocksArgs) -> Result<i32> {
    use tclearn_member::audit::{check_report, Check};
    use tclearn_oracle::{engine::Engine, evaluate::evaluate, genesis::Declaration, testset::TestSet};
    let key = load_key(g)?;
    let (c, _) = coalition(g).await?;
    let me = key.account_id();
    let declaration = Declaration::load(&args.declaration)?;
    let set = TestSet::open(&args.test_set, declaration.image.as_ref()).with_context(|| args.test_set.display().to_string())?;
    let spec = c.evaluation_spec(&me).await?;
    if spec.test_set_hash.0 != set.hash {
        bail!("{} is not the coalition's G (its hash is not the one on chain)", args.test_set.display());
    }
    let engine = Engine::for_runtime(None, 1, &declaration.runtime).context("ONNX Runtime (scripts/setup.sh installs it)")?;
    let session = ApiClient::sign_in(&g.api, &key).await.context("signing in to the members' API")?;
    let mut rows = Vec::new();
    let mut table = output::table(&["block", "round", "validator", "revealed G", "re-evaluated G", "audit"]);
    for index in args.from..=c.height(&me).await? {
        let block = c.block(&me, index).await?.ok_or_else(|| anyhow!("block {index} is missing"))?;
        // Genesis and reverts had no round: nothing was reported on them.
        let Some(round) = block.round else { continue };
        let hash = format!("0x{}", hex::encode(block.parameter_hash.0));
        let bytes = download_model(&session, &hash).await.with_context(|| format!("block {index}'s model"))?;
        let evaluation = evaluate(&engine, &declaration, &bytes, &set).with_context(|| format!("re-evaluating block {index} on G"))?;
        for validator in c.round_validators(&me, round).await? {
            let report = c.ballot(&me, round, validator).await?.and_then(|ballot| ballot.report);
            let check = check_report(report.as_ref(), evaluation.fixed, H256(evaluation.digest.0), spec.metric_tolerance);
            let revealed = match report.map(|r| r.verdict) {
                Some(tclearn_client::coalition::Verdict::Scored(scores)) => Some(scores.g_metric),
                _ => None,
            };
            let verdict = match check {
                Check::Matches => "matches".to_string(),
                Check::ForgedDigest { revealed } => format!("FORGED: G digest {} is not the model's", short(&format!("{revealed:?}"))),
                Check::ForgedMetric { .. } => "FORGED: G metric is not the model's".to_string(),
                Check::Refused => "refused the candidate".to_string(),
                Check::Silent => "revealed nothing".to_string(),
            };
            let name = g.who(&format!("{validator:?}"));
            table.add_row(vec![
                index.to_string(),
                round.to_string(),
                name.clone(),
                revealed.map_or("-".into(), |m| format!("{:.4}", metric(m))),
                format!("{:.4}", metric(evaluation.fixed)),
                verdict.clone(),
            ]);
            rows.push(json!({
                "block": index, "round": round, "validator": format!("{validator:?}"), "name": name,
                "revealed_g_metric": revealed, "g_metric": evaluation.fixed, "forged": check.is_forged(), "audit": verdict,
            }));
        }
    }
    let forged: Vec<&serde_json::Value> = rows.iter().filter(|r| r["forged"] == true).collect();
    if g.json {
        println!("{}", json!({ "reports": rows, "forged": forged.len() }));
    } else {
        println!("{table}");
        match forged.len() {
            0 => println!("every revealed G score matches its block's model"),
            n => println!("{n} revealed reports are not what the blocks' models do on G: their validators lied"),
        }
    }
    Ok(if forged.is_empty() { 0 } else { 3 })
}

/// `tclearn upload`.
#[derive(clap::Args)]
pub struct UploadArgs {
    /// ONNX files.
    #[arg(required = true)]
    models: Vec<PathBuf>,
}

/// `tclearn upload`.
pub async fn upload(g: &Global, args: UploadArgs) -> Result<i32> {
    let key = load_key(g)?;
    let session = ApiClient::sign_in(&g.api, &key).await.context("signing in to the members' API")?;
    for path in &args.models {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let stored = session.upload_candidate(bytes).await.with_context(|| path.display().to_string())?;
        if g.json {
            println!("{}", serde_json::to_string(&stored)?);
        } else {
            println!("{}: {} ({} bytes)", path.display(), stored.vault_ref, stored.size);
        }
    }
    Ok(0)
}

// ---- Founding ---------------------------------------------------------------------------------------

/// `tclearn model init`.
#[derive(clap::Args)]
pub struct InitArgs {
    /// The founder's data (`identifier,feature,…,label` rows): it sets the standardisation.
    #[arg(long)]
    data: PathBuf,
    /// Hidden units of the tabular perceptron.
    #[arg(long, default_value_t = 16, conflicts_with = "image")]
    hidden: usize,
    /// Make the image network instead, for rows that are images of `CxHxW` pixels (`1x8x8`).
    #[arg(long, value_parser = parse_image)]
    image: Option<[usize; 3]>,
    /// The image network's convolution filters.
    #[arg(long, default_value_t = 8, requires = "image")]
    filters: usize,
    /// Classes.
    #[arg(long, default_value_t = 2)]
    classes: usize,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the ONNX model goes.
    #[arg(long)]
    out: PathBuf,
}

fn parse_image(text: &str) -> Result<[usize; 3], String> {
    let sides: Vec<usize> = text.split('x').map(|v| v.trim().parse::<usize>()).collect::<Result<_, _>>().map_err(|_| "CxHxW, like 1x8x8".to_string())?;
    <[usize; 3]>::try_from(sides).map_err(|_| "CxHxW, like 1x8x8".to_string())
}

/// `tclearn model init`.
pub fn model_init(g: &Global, args: InitArgs) -> Result<i32> {
    let data = Table::read_csv(&args.data)?;
    let (onnx, what) = match args.image {
        Some(image) => {
            let model = CnnParameters::init(&data, image, args.filters, args.classes, args.seed)?;
            let [c, h, w] = image;
            (model.to_onnx()?, format!("{c}x{h}x{w} image network with {} filters and {} classes", args.filters, args.classes))
        }
        None => {
            let model = MlpParameters::init(&data, args.hidden, args.classes, args.seed)?;
            (model.to_onnx()?, format!("{}-{}-{} perceptron", model.inputs, model.hidden, model.classes))
        }
    };
    std::fs::write(&args.out, &onnx).with_context(|| args.out.display().to_string())?;
    let hash = format!("0x{}", hex::encode(tclearn_oracle::evaluate::model_hash(&onnx)));
    if g.json {
        println!("{}", json!({ "out": args.out, "hash": hash, "model": what }));
    } else {
        println!("{what}, hash {}, written to {}", short(&hash), args.out.display());
    }
    Ok(0)
}

/// `tclearn found`.
#[derive(clap::Args)]
pub struct FoundArgs {
    /// The genesis model (ONNX).
    #[arg(long)]
    model: PathBuf,
    /// The global test set G, as the oracles read it.
    #[arg(long)]
    test_set: PathBuf,
    /// The founding members, SS58 accounts or 0x addresses, comma-separated (the founder's
    /// own key is added).
    #[arg(long, value_delimiter = ',')]
    founders: Vec<String>,
    /// The metric: accuracy, balanced_accuracy, f1, roc_auc.
    #[arg(long, default_value = "accuracy")]
    metric: String,
    /// Validators drawn per round, k.
    #[arg(long, default_value_t = 3)]
    validators_per_round: u32,
    /// Share of the tip's performance a candidate must keep.
    #[arg(long, default_value_t = 0.95)]
    lambda: f64,
    /// Blocks for each phase of a round (commit, reveal, seal, attest).
    #[arg(long, default_value_t = 20)]
    phase_blocks: u32,
    /// Fewest samples a proposal may have.
    #[arg(long, default_value_t = 10)]
    min_batch_size: u64,
    /// Local training's learning rate.
    #[arg(long, default_value_t = 0.1)]
    learning_rate: f64,
    /// Local training's epochs.
    #[arg(long, default_value_t = 5)]
    epochs: u32,
    /// Local training's batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: u32,
    /// Each member's privacy budget, `epsilon,delta` (none by default).
    #[arg(long)]
    privacy_budget: Option<String>,
    /// Governance's voting period, in blocks.
    #[arg(long, default_value_t = 20)]
    voting_period: u32,
    /// Where the oracles' genesis declaration goes.
    #[arg(long)]
    declaration: PathBuf,
}

/// `tclearn found`.
pub async fn found(g: &Global, args: FoundArgs) -> Result<i32> {
    use tclearn_oracle::{engine::Engine, evaluate::evaluate, genesis::Declaration, model, testset::TestSet};
    let key = load_key(g)?;
    let onnx = std::fs::read(&args.model).with_context(|| args.model.display().to_string())?;
    let set = TestSet::open(&args.test_set, None).with_context(|| args.test_set.display().to_string())?;
    let (input, output) = model::signature(&onnx).map_err(|e| anyhow!("the genesis model: {e}"))?;
    let architecture = model::architecture_hash(&onnx_rs::parse(&onnx).map_err(|e| anyhow!("the genesis model: {e}"))?);
    let metric_kind: MetricKind = serde_json::from_value(json!(args.metric)).map_err(|_| anyhow!("unknown metric {:?}", args.metric))?;
    let declaration_json = json!({
        "metric": args.metric,
        "input": { "dims": input.dims },
        "output": { "dims": output.dims },
        "architecture_hash": tclearn_oracle::genesis::Hash(architecture),
        "test_set_hash": tclearn_oracle::genesis::Hash(set.hash),
    });
    std::fs::write(&args.declaration, serde_json::to_string_pretty(&declaration_json)?).with_context(|| args.declaration.display().to_string())?;
    let declaration = Declaration::load(&args.declaration)?;
    let engine = Engine::new(None, 1).context("ONNX Runtime (scripts/setup.sh installs it)")?;
    let score = evaluate(&engine, &declaration, &onnx, &set).context("evaluating the genesis model on G")?;

    let mut founders = vec![key.address()];
    for founder in &args.founders {
        let address = match AccountId32::from_str(founder.trim()) {
            Ok(account) => account_to_address(&account),
            Err(_) => parse_address(founder)?,
        };
        if !founders.contains(&address) {
            founders.push(address);
        }
    }
    let privacy_budget = match &args.privacy_budget {
        Some(text) => {
            let (epsilon, delta) = text.split_once(',').ok_or_else(|| anyhow!("--privacy-budget is epsilon,delta"))?;
            let real = |v: &str| v.trim().parse::<f64>().map_err(|_| anyhow!("--privacy-budget is epsilon,delta"));
            Some(PrivacySpend::from_real(real(epsilon)?, real(delta)?).ok_or_else(|| anyhow!("--privacy-budget: finite, not negative"))?)
        }
        None => None,
    };
    let client = connect(g).await?;
    let artifacts = artifacts(g)?;
    let bundle = |name: &str| ContractArtifact::load(&artifacts.join(format!("{name}.contract"))).with_context(|| format!("{name}.contract"));
    let anchors = AuditAnchors::deploy(&client, &key, &bundle("audit_anchors")?).await.context("deploying the audit anchors")?;
    let blocks = args.phase_blocks;
    let genesis = Genesis {
        architecture_hash: H256(architecture),
        parameter_hash: H256(score.model_hash.0),
        vault_ref: tclearn_oracle::vault::members_api_ref(&score.model_hash.0).into_bytes(),
        test_set_hash: H256(set.hash),
        test_set_size: u32::try_from(set.samples).context("G is too large")?,
        metric: metric_kind,
        higher_is_better: metric_kind.higher_is_better(),
        metric_tolerance: 0,
        performance: score.fixed,
        hyperparameters: Hyperparameters {
            lambda_ppm: (args.lambda * 1e6).round() as u32,
            validators_per_round: args.validators_per_round,
            quorum: Fraction::TWO_THIRDS,
            commit_timeout: blocks,
            reveal_timeout: blocks,
            seal_timeout: blocks,
            attest_timeout: blocks,
            min_batch_size: args.min_batch_size,
            learning_rate_e9: (args.learning_rate * 1e9).round() as u64,
            epochs: args.epochs,
            batch_size: args.batch_size,
            privacy_budget,
        },
        governance: GovernanceParams { voting_period: args.voting_period, enactment_delay: 0, quorum: Fraction::HALF, threshold: Fraction::TWO_THIRDS },
        founders: founders.clone(),
        audit_anchors: Some(anchors.address),
    };
    let coalition = Coalition::deploy(&client, &key, &bundle("coalition")?, &genesis).await.map_err(|e| match e {
        CallError::Contract(error) => anyhow!("the genesis was refused: {error:?}"),
        other => anyhow!(other),
    })?;
    let spec: EvaluationSpec = coalition.evaluation_spec(&key.account_id()).await?;
    if g.json {
        println!(
            "{}",
            json!({
                "coalition": format!("{:?}", coalition.address),
                "audit_anchors": format!("{:?}", anchors.address),
                "genesis_metric": score.value,
                "genesis_hash": score.model_hash.to_string(),
                "founders": founders.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>(),
                "declaration": args.declaration,
                "test_set_size": spec.test_set_size,
            })
        );
    } else {
        println!(
            "coalition {:?} founded by {} members; genesis {} on G ({} samples): {:.4}; audit anchors {:?}; declaration for the oracles in {}",
            coalition.address,
            founders.len(),
            args.metric,
            spec.test_set_size,
            score.value,
            anchors.address,
            args.declaration.display()
        );
    }
    Ok(0)
}

// ---- Privacy ---------------------------------------------------------------------------------------

/// `tclearn privacy epsilon`.
pub fn privacy_epsilon(g: &Global, sampling_rate: f64, noise_multiplier: f64, steps: u64, delta: f64) -> Result<i32> {
    let (epsilon, order) = privacy::dp_sgd_epsilon(sampling_rate, noise_multiplier, steps, delta)?;
    if g.json {
        println!(
            "{}",
            json!({
                "epsilon": epsilon, "delta": delta, "optimal_order": order,
                "sampling_rate": sampling_rate, "noise_multiplier": noise_multiplier, "steps": steps,
            })
        );
    } else {
        println!("epsilon = {epsilon:.4} at delta = {delta:e} (optimal Rényi order {order})");
    }
    Ok(0)
}

// ---- Report -----------------------------------------------------------------------------------------

/// `tclearn report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The folder `summary.json` and `metric.svg` go to.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Members known to have played malicious increments (addresses): their rounds are marked
    /// `"malicious": true`.
    #[arg(long, value_delimiter = ',')]
    malicious: Vec<String>,
    /// Wall time of the run being reported, in seconds, to record in the summary.
    #[arg(long)]
    wall_seconds: Option<f64>,
}

/// One round in `summary.json`.
#[derive(Serialize)]
struct RoundSummary {
    round: u64,
    proposer: String,
    proposer_name: Option<String>,
    malicious: bool,
    verdict: String,
    reason: Option<String>,
    /// The performance the round recorded: the median of the validators' findings (G merged
    /// with each validator's L).
    metric: Option<f64>,
    /// The candidate's metric on G, as the validators' majority measured it.
    g_metric: Option<f64>,
    epsilon: Option<f64>,
    samples: u64,
    block: Option<u32>,
    validators: Vec<serde_json::Value>,
}

/// `tclearn report`.
pub async fn report(g: &Global, args: ReportArgs) -> Result<i32> {
    let coalition: CoalitionView = api::read(&g.api, "/api/coalition").await.context("the members' API")?;
    let blocks: Vec<BlockView> = api::read(&g.api, "/api/blocks").await?;
    let members: Vec<MemberView> = api::read(&g.api, "/api/members").await?;
    let last: Option<RoundView> = api::read(&g.api, "/api/rounds/current").await.ok();
    let name_of = |address: &str| g.name_of(address);
    let malicious: Vec<String> = args.malicious.iter().map(|a| a.trim().to_lowercase()).collect();
    let mut rounds = Vec::new();
    for id in 0..=last.as_ref().map_or(0, |r| r.id) {
        let Ok(r) = api::read::<RoundView>(&g.api, &format!("/api/rounds/{id}")).await else { continue };
        let validators = r
            .validators
            .iter()
            .map(|v| {
                json!({
                    "validator": v.validator, "name": name_of(&v.validator), "g_metric": v.g_metric.map(metric),
                    "l_metric": v.l_metric.map(metric), "accepts": v.accepting, "refused": v.refused, "deviation": v.deviation,
                })
            })
            .collect();
        let mut g_metrics: Vec<i64> = r.validators.iter().filter(|v| v.deviation.is_none()).filter_map(|v| v.g_metric).collect();
        g_metrics.sort_unstable();
        let g_metric = g_metrics.get(g_metrics.len() / 2).copied().map(metric);
        rounds.push(RoundSummary {
            g_metric,
            round: r.id,
            proposer_name: name_of(&r.proposer),
            malicious: malicious.contains(&r.proposer.to_lowercase()),
            proposer: r.proposer,
            verdict: r.phase,
            reason: r.reason,
            metric: r.performance.map(metric),
            epsilon: r.privacy.map(|p| p.epsilon),
            samples: r.samples,
            block: r.block,
            validators,
        });
    }
    let chain: Vec<serde_json::Value> = blocks
        .iter()
        .map(|b| {
            let round = b.round.and_then(|id| rounds.iter().find(|r| r.round == id));
            // The genesis block's performance is the genesis model's metric on G.
            let g_metric = if b.index == 0 { Some(metric(b.performance)) } else { round.and_then(|r| r.g_metric) };
            json!({
                "block": b.index, "contributor": b.contributor, "contributor_name": b.contributor.as_deref().and_then(name_of),
                "metric": metric(b.performance), "g_metric": g_metric, "epsilon": round.and_then(|r| r.epsilon),
                "samples": b.samples, "round": b.round, "hash": b.hash,
            })
        })
        .collect();
    let summary = json!({
        "coalition": coalition.address,
        "metric": coalition.metric.to_lowercase(),
        "genesis_metric": blocks.first().map(|b| metric(b.performance)),
        "final_metric": blocks.last().map(|b| metric(b.performance)),
        "final_g_metric": chain.last().and_then(|b| b["g_metric"].as_f64()),
        "wall_seconds": args.wall_seconds,
        "rounds": rounds,
        "blocks": chain,
        "members": members.iter().map(|m| json!({
            "address": m.address, "name": name_of(&m.address), "samples": m.samples, "strength": strength(m.strength),
            "contribution": metric(m.contribution), "epsilon_spent": m.epsilon_spent,
        })).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    std::fs::write(args.out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    let points: Vec<(u32, f64)> = blocks.iter().map(|b| (b.index, metric(b.performance))).collect();
    chart(&args.out.join("metric.svg"), &points, &coalition.metric.to_lowercase()).context("drawing the chart")?;
    if g.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("summary.json and metric.svg written to {}", args.out.display());
    }
    Ok(0)
}

/// The metric per block as an SVG line chart.
fn chart(path: &std::path::Path, points: &[(u32, f64)], metric_name: &str) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let last = points.last().map_or(1, |(i, _)| *i).max(1);
    let low = points.iter().map(|(_, m)| *m).fold(1.0f64, f64::min);
    let high = points.iter().map(|(_, m)| *m).fold(0.0f64, f64::max);
    let margin = ((high - low) * 0.1).max(0.01);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{metric_name} of each block's model, as its validators measured it"), ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0u32..last, (low - margin).max(0.0)..(high + margin).min(1.0))
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("block")
        .y_desc(metric_name)
        .x_labels(points.len().max(2))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart.draw_series(LineSeries::new(points.iter().copied(), &BLUE)).map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(points.iter().map(|(i, m)| Circle::new((*i, *m), 4, BLUE.filled())))
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacks_read_as_the_demo_writes_them() {
        assert_eq!("flip-labels".parse(), Ok(Attack::FlipLabels));
        assert_eq!("scale:-10".parse(), Ok(Attack::Scale(-10.0)));
        assert_eq!("noise:3".parse(), Ok(Attack::Noise(3.0)));
        for bad in ["flip", "scale", "scale:x", "noise:", "boost:2"] {
            assert!(bad.parse::<Attack>().is_err(), "{bad}");
        }
    }
}

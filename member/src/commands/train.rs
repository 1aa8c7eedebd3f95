//! `tclearn train`: local training on the rows not yet in a block, SGD or DP-SGD, written as a candidate.

use super::*;

/// `tclearn train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The training rows: a header line, then `identifier,feature,…,label` rows.
    #[arg(long)]
    data: PathBuf,
    /// Where the candidate (`candidate.onnx`) and its metadata (`candidate.json`) go.
    #[arg(long)]
    out: PathBuf,
    /// The cache of the rows' data IDs, so that each identifier is asked of the vault once
    /// (each ask counts against the member's daily quota). Default: the data file's path with
    /// `.ids.json` added.
    #[arg(long)]
    id_cache: Option<PathBuf>,
    /// Use at most this many of the rows not yet in a block.
    #[arg(long)]
    max_samples: Option<usize>,
    /// DP-SGD's noise multiplier (noise deviation over the clipping norm). Default: 1.0, unless
    /// `--target-epsilon` is given.
    #[arg(long, conflicts_with_all = ["target_epsilon", "without_privacy"])]
    noise_multiplier: Option<f32>,
    /// Train with the least noise that keeps this candidate's epsilon, at `--delta`, within this.
    #[arg(long, conflicts_with = "without_privacy")]
    target_epsilon: Option<f64>,
    /// DP-SGD's clipping norm of each example's gradient.
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f32,
    /// The delta of the privacy accounting.
    #[arg(long, default_value_t = 1e-5)]
    delta: f64,
    /// Train without differential privacy (plain SGD). A coalition with a privacy budget
    /// refuses such a candidate.
    #[arg(long)]
    without_privacy: bool,
    /// Seed of batches, for a reproducible run without differential privacy (tests of the
    /// trainer). Refused with DP-SGD: whoever knows the seed regenerates the noise, and the
    /// candidate would carry no privacy at all. DP-SGD draws from a ChaCha20 seeded with 256 bits
    /// of the OS's random source on every run.
    #[arg(long, requires = "without_privacy", conflicts_with_all = ["noise_multiplier", "target_epsilon"])]
    seed: Option<u64>,
    /// Train as a malicious member would (demonstrations and tests of the coalition):
    /// flip-labels, scale:FACTOR, noise:DEVIATION, or under-declare (honest training, a tenth of
    /// its privacy spend declared).
    #[cfg(feature = "attack")]
    #[arg(long)]
    attack: Option<attack::Attack>,
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
    /// What the proposal declares of its DP-SGD training, if trained with it: the chain composes
    /// its RDP into the member's totals, the validators recompute it.
    pub privacy: Option<PrivacyDeclaration>,
    /// This candidate's epsilon as the chain counts it (its declaration alone), at `delta`.
    pub epsilon: Option<f64>,
    /// The coalition's delta: its budget's, or 1e-5 without a budget.
    pub delta: Option<f64>,
    /// The batch size it was trained with (the coalition's when it trained): the validators
    /// recompute the declaration with the round's.
    pub batch_size: u32,
    /// The epochs it was trained for (likewise).
    pub epochs: u32,
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
    let session = sign_in(g, &key).await?;
    let origin = key.account_id();
    let tip_model = block_model(&coalition, &origin, &session, view.tip).await.context("the tip's model")?;
    let mut model = Model::from_onnx(&tip_model)?;
    let parent = model.clone();

    // The rows not yet in a block, by their data IDs: blinded queries to the vault, a batch at
    // a time, only as many as the candidate needs (each counts against the daily quota).
    let mut fresh = Vec::new();
    let checking = output::bar(data.len() as u64, "checking which rows are new", g.json);
    let wanted = args.max_samples.unwrap_or(usize::MAX);
    let cache_path = args.id_cache.clone().unwrap_or_else(|| {
        let mut path = args.data.clone().into_os_string();
        path.push(".ids.json");
        path.into()
    });
    let mut cache = IdCache::open(&cache_path, &format!("0x{}", hex::encode(coalition.address.0)))?;
    // The first row is asked again on every run: its ID and the vault's key must be the cached
    // ones (a vault's key renewed, or another vault, is caught before any cached ID is used).
    if let Some(first) = data.ids.first() {
        let probe = session.data_ids(std::slice::from_ref(first)).await.context("the rows' data IDs")?;
        cache.add(&probe.public_key, std::slice::from_ref(first), &probe.ids)?;
    }
    'rows: for (chunk, identifiers) in data.ids.chunks(ID_BATCH).enumerate() {
        if let Some(blank) = identifiers.iter().position(|i| i.trim().is_empty()) {
            bail!("{}: row {} has no identifier", args.data.display(), chunk * ID_BATCH + blank + 1);
        }
        let missing: Vec<String> = identifiers.iter().filter(|i| cache.get(i).is_none()).cloned().collect();
        if !missing.is_empty() {
            let answered = session.data_ids(&missing).await.context("the rows' data IDs")?;
            cache.add(&answered.public_key, &missing, &answered.ids)?;
        }
        for (offset, identifier) in identifiers.iter().enumerate() {
            let data_id = H256(cache.get(identifier).ok_or_else(|| anyhow!("no data ID for {identifier}"))?);
            if coalition.data_id_block(&origin, data_id).await?.is_none() {
                fresh.push((chunk * ID_BATCH + offset, data_id));
            }
            checking.inc(1);
            if fresh.len() >= wanted {
                break 'rows;
            }
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
    let training_rows = data.select(&rows);
    #[cfg(feature = "attack")]
    let training_rows = attack::spoil_rows(args.attack, &model, training_rows);
    let mut training = Training {
        learning_rate: params.learning_rate_e9 as f32 / 1e9,
        epochs: params.epochs,
        batch_size: params.batch_size,
        privacy: None,
        delta: args.delta,
        seed: args.seed,
    };
    let schedule = trainer::schedule(training_rows.len(), &training);
    training.privacy = privacy_setting(&args, schedule)?;
    let samples = rows.len() as u64;
    let declaration = training
        .privacy
        .map(|dp| privacy::declare(samples, params.batch_size, params.epochs, dp.noise_multiplier, dp.clip_norm))
        .transpose()?;
    let totals = coalition.privacy_totals(&origin, key.address()).await?;
    let (cost, after) = privacy_cost(&training, schedule, declaration.as_ref(), &totals, params.privacy_budget)?;
    if !g.json {
        println!("{cost}");
    }
    let bar = output::bar(0, "training", g.json);
    let report = trainer::train(&mut model, &training_rows, &training, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    #[cfg(feature = "attack")]
    attack::spoil_model(args.attack, &parent, &mut model, args.seed.unwrap_or_else(rand::random))?;
    #[cfg(feature = "attack")]
    let declaration = attack::spoil_declaration(args.attack, declaration);
    let onnx = model.to_onnx()?;
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    std::fs::write(args.out.join("candidate.onnx"), &onnx)?;
    std::fs::write(args.out.join("delta.onnx"), trainer::delta(&parent, &model))?;
    let file = CandidateFile {
        parent: view.tip,
        model_hash: format!("0x{}", hex::encode(tclearn_model::hash::model_hash(&onnx))),
        samples,
        data_ids: fresh.iter().map(|(_, id)| format!("0x{}", hex::encode(id.0))).collect(),
        privacy: declaration.as_ref().map(PrivacyDeclaration::of),
        epsilon: after.spend.map(|s| s.epsilon_real()),
        delta: after.spend.map(|s| s.delta_real()),
        batch_size: params.batch_size,
        epochs: params.epochs,
        loss_before: report.loss_before,
        loss_after: report.loss_after,
        steps: report.steps,
        samples_per_second: report.gradients as f64 / report.seconds.max(1e-9),
        #[cfg(feature = "attack")]
        attack: args.attack.map(|a| format!("{a:?}")),
        #[cfg(not(feature = "attack"))]
        attack: None,
    };
    std::fs::write(args.out.join("candidate.json"), serde_json::to_string_pretty(&file)?)?;
    if g.json {
        println!("{}", serde_json::to_string(&file)?);
    } else {
        let privacy = match (file.epsilon, file.delta) {
            (Some(epsilon), Some(delta)) => format!("epsilon {epsilon:.3} at delta {delta:e}"),
            _ => "without differential privacy".to_string(),
        };
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

/// Identifiers per data-ID request while looking for rows not in a block yet.
const ID_BATCH: usize = 100;

/// The noise multiplier DP-SGD trains at when neither `--noise-multiplier` nor
/// `--target-epsilon` is given.
pub const DEFAULT_NOISE_MULTIPLIER: f32 = 1.0;

/// DP-SGD's setting from the arguments: none only with `--without-privacy`; the noise for
/// `--target-epsilon` if given (over this run's `schedule`), `--noise-multiplier` else, or
/// [`DEFAULT_NOISE_MULTIPLIER`].
fn privacy_setting(args: &TrainArgs, schedule: trainer::Schedule) -> Result<Option<DpSgd>> {
    if args.without_privacy {
        return Ok(None);
    }
    let noise_multiplier = match (args.target_epsilon, args.noise_multiplier) {
        (Some(target), _) => {
            // Rounded up to an f32, never down: less noise would spend more than the target.
            let sigma = privacy::noise_for_epsilon(schedule.q, schedule.steps, args.delta, target)?;
            let near = sigma as f32;
            if f64::from(near) < sigma {
                near.next_up()
            } else {
                near
            }
        }
        (None, given) => given.unwrap_or(DEFAULT_NOISE_MULTIPLIER),
    };
    Ok(Some(DpSgd { clip_norm: args.clip_norm, noise_multiplier }))
}

/// What a run will spend, told before it trains, against what the member has spent (its RDP
/// `totals` on chain) and the coalition's budget, as the chain will count it; refused if the
/// proposal would pass the budget (the coalition would refuse it, after the training).
fn privacy_cost(
    training: &Training,
    schedule: trainer::Schedule,
    declaration: Option<&DpDeclaration>,
    totals: &rdp::Rdp,
    budget: Option<PrivacySpend>,
) -> Result<(String, rules::PrivacyAfter)> {
    let (Some(dp), Some(declaration)) = (training.privacy, declaration) else {
        if budget.is_some() {
            bail!("this coalition has a privacy budget: a candidate trained --without-privacy would be refused");
        }
        let after = rules::spend_privacy(totals, None, None).map_err(|e| anyhow!("{e:?}"))?;
        return Ok(("training without differential privacy: the candidate can reveal its rows".to_string(), after));
    };
    let delta = rules::report_delta(budget);
    let (before, alone) = (rules::privacy_spent(totals, delta), rules::privacy_spent(&declaration.rdp, delta));
    let this = format!(
        "DP-SGD: noise multiplier {:.3}, clipping norm {}, sampling rate {:.4}, {} steps: this candidate spends epsilon \
         {:.3} at delta {:e}",
        dp.noise_multiplier,
        dp.clip_norm,
        schedule.q,
        schedule.steps,
        alone.epsilon_real(),
        alone.delta_real()
    );
    match rules::spend_privacy(totals, Some(declaration), budget) {
        Ok(after) => {
            let total = match budget {
                Some(budget) => format!(
                    "with those before, epsilon {:.3} of the budget's {} at delta {:e} (Rényi composition)",
                    after.spent.epsilon_real(),
                    budget.epsilon_real(),
                    budget.delta_real()
                ),
                None => format!("with those before, epsilon {:.3} (no budget)", after.spent.epsilon_real()),
            };
            Ok((format!("{this}; {total}"), after))
        }
        Err(_) => {
            bail!(
                "{this}, but this member has spent epsilon {:.3} already and the coalition's budget is {}: raise the \
                 noise, train on fewer epochs, or stop proposing",
                before.epsilon_real(),
                budget.map_or(0.0, |b| b.epsilon_real())
            )
        }
    }
}

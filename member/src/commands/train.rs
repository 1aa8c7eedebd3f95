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
    /// Seed of batches and noise, for a reproducible run. Default: 256 bits of the OS's random
    /// source, on every run. Anyone who knows a seed regenerates the noise: a seeded run carries
    /// no differential privacy.
    #[arg(long)]
    seed: Option<u64>,
    /// Train as a malicious member would (demonstrations and tests of the coalition):
    /// flip-labels, scale:FACTOR or noise:DEVIATION.
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
    let session = sign_in(g, &key).await?;
    let origin = key.account_id();
    let tip_model = block_model(&coalition, &origin, &session, view.tip).await.context("the tip's model")?;
    let mut model = Model::from_onnx(&tip_model)?;
    let parent = model.clone();

    // The rows not yet in a block, by their anonymised IDs.
    let secret = DataIdKey::from_hex(&session.data_id_key().await?)
        .map_err(|_| anyhow!("the vault's data-ID secret is malformed"))?;
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
    let training_rows = data.select(&rows);
    #[cfg(feature = "attack")]
    let training_rows = attack::spoil_rows(args.attack, &model, training_rows);
    let training = Training {
        learning_rate: params.learning_rate_e9 as f32 / 1e9,
        epochs: params.epochs,
        batch_size: params.batch_size,
        privacy: args.noise_multiplier.map(|noise_multiplier| DpSgd { clip_norm: args.clip_norm, noise_multiplier }),
        delta: args.delta,
        seed: args.seed,
    };
    let bar = output::bar(0, "training", g.json);
    let report = trainer::train(&mut model, &training_rows, &training, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    #[cfg(feature = "attack")]
    attack::spoil_model(
        args.attack,
        &parent,
        &mut model,
        args.seed.unwrap_or_else(|| rand::Rng::random(&mut rand::rng())),
    )?;
    let onnx = model.to_onnx()?;
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    std::fs::write(args.out.join("candidate.onnx"), &onnx)?;
    std::fs::write(args.out.join("delta.onnx"), trainer::delta(&parent, &model))?;
    let file = CandidateFile {
        parent: view.tip,
        model_hash: format!("0x{}", hex::encode(tclearn_model::hash::model_hash(&onnx))),
        samples: rows.len() as u64,
        data_ids: fresh.iter().map(|(_, id)| format!("0x{}", hex::encode(id.0))).collect(),
        epsilon: report.privacy.map(|(epsilon, _)| epsilon),
        delta: report.privacy.map(|(_, delta)| delta),
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
        let privacy = file.epsilon.map_or("without differential privacy".to_string(), |e| {
            format!("epsilon {e:.3} at delta {:e}", args.delta)
        });
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

//! `tclearn propose`: a trained candidate uploaded to the vault and proposed, then its round followed.

use super::*;

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
        &std::fs::read_to_string(args.candidate.join("candidate.json"))
            .with_context(|| args.candidate.join("candidate.json").display().to_string())?,
    )
    .context("candidate.json")?;
    let file = args.candidate.join(if args.delta { "delta.onnx" } else { "candidate.onnx" });
    let onnx = std::fs::read(&file).with_context(|| file.display().to_string())?;
    let (coalition, view) = coalition(g).await?;
    let session = sign_in(g, &key).await?;
    let uploading = output::spinner(&format!("uploading {} bytes to the vault", onnx.len()), g.json);
    let stored: StoredObject = if args.delta {
        // What the vault must store: this delta merged onto the parent the chain names, computed
        // here, so that the API's word is not what this member proposes.
        let parent = block_model(&coalition, &key.account_id(), &session, meta.parent).await?;
        let merged = tclearn_model::delta::merge(&parent, &onnx).with_context(|| file.display().to_string())?;
        let merged = tclearn_model::hash::model_hash(&merged);
        session.upload_delta(meta.parent, onnx, &merged).await.context("the vault refused the delta")?
    } else {
        session.upload_candidate(onnx).await.context("the vault refused the candidate")?
    };
    uploading.finish_and_clear();
    // A merged delta is the trained model up to float rounding, so its hash is its own.
    if !args.delta && stored.hash != meta.model_hash {
        bail!(
            "the vault stored {} but candidate.json names {}: the folder was changed after training",
            stored.hash,
            meta.model_hash
        );
    }
    let candidate = H256(parse::hash(&stored.hash)?);
    let data_ids = meta.data_ids.iter().map(|id| parse::hash(id).map(H256)).collect::<Result<Vec<_>, _>>()?;
    let privacy =
        meta.privacy.as_ref().map(|p| p.to_declaration()).transpose().map_err(|e| anyhow!("candidate.json: {e}"))?;
    // The validators recompute the declaration with the round's batch size and epochs: a
    // candidate trained under other hyperparameters would be refused.
    let params = coalition.hyperparameters(&key.account_id()).await?;
    if privacy.is_some() && (params.batch_size, params.epochs) != (meta.batch_size, meta.epochs) {
        bail!(
            "the candidate was trained with batch size {} for {} epochs, the coalition now trains with {} for {}: its \
             privacy declaration would not hold; train again",
            meta.batch_size,
            meta.epochs,
            params.batch_size,
            params.epochs
        );
    }
    let proposing = output::spinner("proposing on chain", g.json);
    let proposed = coalition
        .propose(&key, meta.parent, candidate, stored.vault_ref.as_bytes(), meta.samples, &data_ids, privacy)
        .await;
    proposing.finish_and_clear();
    let (round, _) = proposed.map_err(|e| explain(e, &view))?;
    if !g.json {
        println!("proposed {} on block {} as round {round}", short(&stored.hash), meta.parent);
    }
    let final_view = follow(g, round, Duration::from_secs(args.wait_secs)).await?;
    if final_view.phase != "appended" {
        // The round's claims are void: take their deposit back, and free the samples at once.
        match coalition.release_claims(&key, round).await {
            Ok((released, _)) if !g.json => println!("released the claims of {released} samples"),
            Ok(_) => {}
            Err(e) => eprintln!("could not release the round's claims (`tclearn status`, then try again): {e}"),
        }
    }
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
                "commit" => format!(
                    " by {}",
                    round.validators.iter().map(|v| g.who(&v.validator)).collect::<Vec<_>>().join(", ")
                ),
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
            bail!(
                "round {id} is still in {} after {} s: follow it with `tclearn status`",
                round.phase,
                patience.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

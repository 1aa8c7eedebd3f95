//! `tclearn found`: a coalition founded on chain with its genesis model, G and founders.

use super::*;

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
    /// The gain on G (in the metric's units) a block must show over the best block that earned
    /// before for its samples to count in its contributor's strength.
    #[arg(long, default_value_t = 0.001)]
    min_gain: f64,
    /// Blocks a member waits after its round before proposing again.
    #[arg(long, default_value_t = 10)]
    proposal_cooldown: u32,
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
    /// The public ranges the genesis model standardises its inputs with (the file `tclearn
    /// model init --standardisation` read). With `--seed`, the genesis must be byte for byte
    /// what `model init` makes of them (its weights from the seed alone); both go into the
    /// declaration, for anyone to check again. Required for a model of `tclearn model init`.
    #[arg(long, conflicts_with = "foreign_genesis")]
    standardisation: Option<PathBuf>,
    /// The seed the genesis was made with (`tclearn model init --seed`).
    #[arg(long, default_value_t = 0, requires = "standardisation")]
    seed: u64,
    /// Found on a model that `tclearn model init` did not make (scikit-learn's, through
    /// skl2onnx): nothing checks what its constants and weights carry (a `StandardScaler`
    /// holds the means of the rows it was fitted on), so check it yourself before founding.
    #[arg(long)]
    foreign_genesis: bool,
}

/// `tclearn found`.
pub async fn found(g: &Global, args: FoundArgs) -> Result<i32> {
    use tclearn_evaluation::engine::Engine;
    use tclearn_evaluation::evaluate::evaluate;
    use tclearn_evaluation::testset::TestSet;
    use tclearn_model::checks as model;
    use tclearn_model::genesis::Declaration;
    let onnx = std::fs::read(&args.model).with_context(|| args.model.display().to_string())?;
    let recipe = match &args.standardisation {
        Some(path) => Some(GenesisRecipe { seed: args.seed, standardisation: Standardisation::load(path)? }),
        None => None,
    };
    check_genesis(&onnx, recipe.as_ref(), args.foreign_genesis)?;
    let key = load_key(g)?;
    let set = TestSet::open(&args.test_set, None).with_context(|| args.test_set.display().to_string())?;
    let (input, output) = model::signature(&onnx).map_err(|e| anyhow!("the genesis model: {e}"))?;
    let architecture = model::architecture_hash(&onnx_rs::parse(&onnx).map_err(|e| anyhow!("the genesis model: {e}"))?);
    let metric_kind: MetricKind =
        serde_json::from_value(json!(args.metric)).map_err(|_| anyhow!("unknown metric {:?}", args.metric))?;
    let mut declaration_json = json!({
        "metric": args.metric,
        "input": { "dims": input.dims },
        "output": { "dims": output.dims },
        "architecture_hash": tclearn_model::genesis::Hash(architecture),
        "test_set_hash": tclearn_model::genesis::Hash(set.hash),
    });
    if let Some(recipe) = &recipe {
        declaration_json["recipe"] = json!(recipe);
    }
    std::fs::write(&args.declaration, serde_json::to_string_pretty(&declaration_json)?)
        .with_context(|| args.declaration.display().to_string())?;
    let declaration = Declaration::load(&args.declaration)?;
    let engine = Engine::new(None, 1).context("ONNX Runtime (scripts/setup.sh installs it)")?;
    let score = evaluate(&engine, &declaration, &onnx, &set).context("evaluating the genesis model on G")?;

    let mut founders = vec![key.address()];
    for founder in &args.founders {
        let address = match AccountId32::from_str(founder.trim()) {
            Ok(account) => account_to_address(&account),
            Err(_) => parse::address(founder)?,
        };
        if !founders.contains(&address) {
            founders.push(address);
        }
    }
    let privacy_budget = match &args.privacy_budget {
        Some(text) => {
            let (epsilon, delta) = text.split_once(',').ok_or_else(|| anyhow!("--privacy-budget is epsilon,delta"))?;
            let real = |v: &str| v.trim().parse::<f64>().map_err(|_| anyhow!("--privacy-budget is epsilon,delta"));
            Some(
                PrivacySpend::from_real(real(epsilon)?, real(delta)?)
                    .ok_or_else(|| anyhow!("--privacy-budget: finite, not negative"))?,
            )
        }
        None => None,
    };
    let client = connect(g).await?;
    let artifacts = artifacts(g)?;
    let bundle = |name: &str| {
        ContractArtifact::load(&artifacts.join(format!("{name}.contract"))).with_context(|| format!("{name}.contract"))
    };
    let anchors =
        AuditAnchors::deploy(&client, &key, &bundle("audit_anchors")?).await.context("deploying the audit anchors")?;
    let blocks = args.phase_blocks;
    let genesis = Genesis {
        architecture_hash: H256(architecture),
        parameter_hash: H256(score.model_hash.0),
        vault_ref: tclearn_model::hash::members_api_ref(&score.model_hash.0).into_bytes(),
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
            min_gain: (args.min_gain * METRIC_ONE as f64).round().clamp(1.0, f64::from(u32::MAX)) as u32,
            proposal_cooldown: args.proposal_cooldown,
        },
        governance: GovernanceParams {
            voting_period: args.voting_period,
            enactment_delay: 0,
            quorum: Fraction::HALF,
            threshold: Fraction::TWO_THIRDS,
        },
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
        if let Some(recipe) = &recipe {
            println!(
                "the genesis standardises its {} inputs by {} declared ranges from: {} (seed {}); every founder \
                 should check that they are public constants, not statistics of anyone's rows",
                input.dims.get(1..).map_or(0, |d| d.iter().flatten().product::<i64>()),
                recipe.standardisation.ranges.len(),
                recipe.standardisation.source,
                recipe.seed
            );
        }
    }
    Ok(0)
}

/// A genesis carries nothing of anyone's rows: one of `tclearn model init` is byte for byte what
/// the declared `recipe` makes of its shape; another is founded only when the founder says so
/// (`foreign`), since nothing can check what its constants and weights carry.
fn check_genesis(onnx: &[u8], recipe: Option<&GenesisRecipe>, foreign: bool) -> Result<()> {
    let ours = Model::from_onnx(onnx);
    match (ours, recipe) {
        (Ok(_), None) => bail!(
            "the genesis model standardises its inputs with constants nobody declared, which could be the \
             founder's patients' means and deviations: make it with `tclearn model init --standardisation` from \
             public ranges, and found with the same --standardisation and --seed"
        ),
        (Ok(_), Some(_)) if foreign => bail!("--foreign-genesis: this genesis is one of tclearn model init"),
        (Ok(model), Some(recipe)) => {
            let made = model.regenerate(recipe)?.to_onnx()?;
            if made != onnx {
                bail!(
                    "the genesis model is not what `tclearn model init --standardisation` makes with seed {} of its \
                     shape: its weights or constants differ, and could carry the founder's data",
                    recipe.seed
                );
            }
            Ok(())
        }
        (Err(e), _) if !foreign => bail!(
            "the genesis model is not one of tclearn model init ({e}): nothing can check what its constants and \
             weights carry (a StandardScaler holds its rows' means); check it, then found with --foreign-genesis"
        ),
        (Err(_), _) => {
            eprintln!(
                "warning: founding on a model tclearn model init did not make: its constants and weights are unchecked"
            );
            Ok(())
        }
    }
}

//! `tclearn audit`: the vault's audit log verified against the anchors on chain, anchored, and the model chain audited.

use super::*;

/// `tclearn audit verify`.
pub async fn audit_verify(g: &Global) -> Result<i32> {
    // The anchors contract is the one the coalition records on chain, not the one the API names
    // (its operator could anchor a rewritten log to a contract of its own).
    let (coalition, _) = coalition(g).await?;
    let key = load_key(g)?;
    let origin = key.account_id();
    let address = coalition
        .audit_anchors(&origin)
        .await
        .context("reading the coalition's audit-anchors contract")?
        .ok_or_else(|| anyhow!("the coalition records no audit-anchors contract"))?;
    let anchors = AuditAnchors::at(connect(g).await?, address, metadata(g, "audit_anchors")?);
    // The entries are served to members only.
    let session = sign_in(g, &key).await?;
    let receipts = match &g.receipts {
        Some(path) => tclearn_api_client::client::read_receipts(path).map_err(|e| anyhow!(e))?,
        None => Vec::new(),
    };
    let verified =
        tclearn_api_client::verify::verify_served(&session, &anchors, &origin, &coalition.address, &receipts)
            .await
            .context("the audit log does not verify")?;
    if g.json {
        println!(
            "{}",
            json!({
                "entries": verified.entries, "anchors": verified.anchors, "anchored": verified.anchored,
                "receipts": verified.receipts,
            })
        );
    } else {
        println!(
            "audit log verified: {} entries, {} anchors on chain, the latest covering {} entries; {} of your receipts",
            verified.entries, verified.anchors, verified.anchored, verified.receipts
        );
    }
    Ok(0)
}

/// `tclearn audit anchor`.
pub async fn audit_anchor(g: &Global) -> Result<i32> {
    let key = load_key(g)?;
    let session = sign_in(g, &key).await?;
    let anchor = session.anchor().await?;
    if g.json {
        println!("{}", serde_json::to_string(&anchor)?);
    } else {
        println!(
            "anchor {} on chain: the log's first {} entries, root {}",
            anchor.index,
            anchor.log_length,
            short(&anchor.root)
        );
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
/// each of its round's validators' revealed G scores (`tclearn_member::audit`), and recompute
/// its round's DP declaration (`privacy::check_round`, as the validators must have). Exits 3
/// when a revealed report is proven forged or a block's declaration is under-declared.
pub async fn audit_blocks(g: &Global, args: AuditBlocksArgs) -> Result<i32> {
    use tclearn_evaluation::engine::Engine;
    use tclearn_evaluation::evaluate::evaluate;
    use tclearn_evaluation::testset::TestSet;
    use tclearn_member::audit::{check_recorded, check_report, Check};
    use tclearn_model::genesis::Declaration;
    let key = load_key(g)?;
    let (c, _) = coalition(g).await?;
    let me = key.account_id();
    let declaration = Declaration::load(&args.declaration)?;
    let set = TestSet::open(&args.test_set, declaration.image.as_ref())
        .with_context(|| args.test_set.display().to_string())?;
    let spec = c.evaluation_spec(&me).await?;
    if spec.test_set_hash.0 != set.hash {
        bail!("{} is not the coalition's G (its hash is not the one on chain)", args.test_set.display());
    }
    let engine =
        Engine::for_runtime(None, 1, &declaration.runtime).context("ONNX Runtime (scripts/setup.sh installs it)")?;
    let session = sign_in(g, &key).await?;
    let mut rows = Vec::new();
    let mut table = output::table(&["block", "round", "validator", "revealed G", "re-evaluated G", "audit"]);
    for index in args.from..=c.height(&me).await? {
        let block = c.block(&me, index).await?.ok_or_else(|| anyhow!("block {index} is missing"))?;
        // Genesis and reverts had no round: nothing was reported on them.
        let Some(round) = block.round else { continue };
        let bytes = block_model(&c, &me, &session, index).await?;
        let evaluation = evaluate(&engine, &declaration, &bytes, &set)
            .with_context(|| format!("re-evaluating block {index} on G"))?;
        let recorded = check_recorded(block.performance, evaluation.fixed, spec.metric_tolerance);
        let state = c.round(&me, round).await?.ok_or_else(|| anyhow!("round {round} is missing"))?;
        let declared = c.round_privacy(&me, round).await?;
        let privacy = match privacy::check_round(&state, declared.as_ref()) {
            Ok(()) if declared.is_some() => Ok("DP declaration consistent"),
            Ok(()) => Ok("no DP declared"),
            Err(e) => Err(format!("UNDER-DECLARED privacy: {e}")),
        };
        let performance =
            if recorded { "recorded performance matches" } else { "FORGED: recorded performance is not the model's" };
        let said = match &privacy {
            Ok(said) => *said,
            Err(said) => said.as_str(),
        };
        let verdict = format!("{performance}; {said}");
        table.add_row(vec![
            index.to_string(),
            round.to_string(),
            "(the block)".to_string(),
            format!("{:.4}", metric(block.performance)),
            format!("{:.4}", metric(evaluation.fixed)),
            verdict.clone(),
        ]);
        rows.push(json!({
            "block": index, "round": round, "validator": null, "name": "(the block)",
            "revealed_g_metric": block.performance, "g_metric": evaluation.fixed,
            "forged": !recorded || privacy.is_err(), "privacy_consistent": privacy.is_ok(), "audit": verdict,
        }));
        for validator in c.round_validators(&me, round).await? {
            let report = c.ballot(&me, round, validator).await?.and_then(|ballot| ballot.report);
            let check =
                check_report(report.as_ref(), evaluation.fixed, H256(evaluation.digest.0), spec.metric_tolerance);
            let revealed = match report.map(|r| r.verdict) {
                Some(tclearn_client::coalition::Verdict::Scored(scores)) => Some(scores.g_metric),
                _ => None,
            };
            let verdict = match check {
                Check::Matches => "matches".to_string(),
                Check::ForgedDigest { revealed } => {
                    format!("FORGED: G digest {} is not the model's", short(&format!("{revealed:?}")))
                }
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
            0 => println!("every recorded performance and revealed G score matches its block's model"),
            n => println!("{n} recorded performances or revealed reports are not what the blocks' models do on G: their validators lied"),
        }
    }
    Ok(if forged.is_empty() { 0 } else { 3 })
}

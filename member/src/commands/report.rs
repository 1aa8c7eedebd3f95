//! `tclearn report`: the chain's story as JSON and a chart of the metric per block.

use super::*;

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
    let coalition: CoalitionView = coalition_view(g).await?;
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
                    "l_keeps": v.l_keeps, "accepts": v.accepting, "refused": v.refused, "deviation": v.deviation,
                })
            })
            .collect();
        let mut g_metrics: Vec<i64> =
            r.validators.iter().filter(|v| v.deviation.is_none()).filter_map(|v| v.g_metric).collect();
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

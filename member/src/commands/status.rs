//! `tclearn status`: the coalition, its chain of blocks and the rounds in progress.

use super::*;

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
    /// Its delta.
    delta: Option<f64>,
}

/// `tclearn status`.
pub async fn status(g: &Global) -> Result<i32> {
    let coalition: CoalitionView = coalition_view(g).await?;
    let blocks: Vec<BlockView> = api::read(&g.api, "/api/blocks").await?;
    let members: Vec<MemberView> = api::read(&g.api, "/api/members").await?;
    let proposals: Vec<ProposalView> = api::read(&g.api, "/api/proposals").await?;
    let round: Option<RoundView> = api::read(&g.api, "/api/rounds/current").await.ok();
    let mut with_privacy = Vec::new();
    for block in blocks {
        let privacy = match block.round {
            Some(id) => api::read::<RoundView>(&g.api, &format!("/api/rounds/{id}")).await?.privacy,
            None => None,
        };
        let (epsilon, delta) = (privacy.map(|p| p.epsilon), privacy.map(|p| p.delta));
        with_privacy.push(BlockStatus { block, epsilon, delta });
    }
    let status = Status { coalition, blocks: with_privacy, members, round, proposals };
    if g.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(0);
    }
    let c = &status.coalition;
    let budget =
        c.privacy_budget.map_or("none".to_string(), |b| format!("epsilon {} at delta {:e}", b.epsilon, b.delta));
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
    let mut blocks = output::table(&["block", "contributor", "metric", "samples", "epsilon (delta)", "round", "hash"]);
    for b in &status.blocks {
        let contributor = b
            .block
            .contributor
            .as_deref()
            .map(|c| g.who(c))
            .unwrap_or_else(|| if b.block.index == 0 { "genesis" } else { "revert" }.into());
        blocks.add_row([
            b.block.index.to_string(),
            contributor,
            format!("{:.4}", metric(b.block.performance)),
            b.block.samples.to_string(),
            b.epsilon.zip(b.delta).map_or("-".into(), |(e, d)| format!("{e:.3} ({d:e})")),
            b.block.round.map_or("-".into(), |r| r.to_string()),
            short(&b.block.hash),
        ]);
    }
    println!("{blocks}");
    let mut members =
        output::table(&["member", "samples", "strength", "faults", "contribution", "epsilon (delta) spent"]);
    for m in &status.members {
        let of = c.privacy_budget.map_or(String::new(), |b| format!(" of {} ({:e})", b.epsilon, b.delta));
        members.add_row([
            g.name_of(&m.address).map_or(m.address.clone(), |name| format!("{name} ({})", short(&m.address))),
            m.samples.to_string(),
            format!("{:.3}", strength(m.strength)),
            m.faults.to_string(),
            format!("{:+.4}", metric(m.contribution)),
            format!("{:.3} ({:e}){of}", m.epsilon_spent, m.delta_spent),
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
            proposals.add_row([
                p.id.to_string(),
                p.action.clone(),
                p.ayes.to_string(),
                p.nays.to_string(),
                p.status.clone(),
            ]);
        }
        println!("{proposals}");
    }
    Ok(0)
}

pub(super) fn print_round(g: &Global, r: &RoundView) {
    let reason = r.reason.as_deref().map_or(String::new(), |why| format!(": {why}"));
    let privacy = r.privacy.map_or(String::new(), |p| format!(", epsilon {:.3}", p.epsilon));
    // Once tallied, what the block credits the proposer's strength (nothing below the margin).
    let credited = if r.performance.is_some() && r.reason.is_none() {
        format!(", {} credited", r.credited)
    } else {
        String::new()
    };
    println!(
        "round {} by {} on block {} ({} samples{credited}{privacy}): {}{reason}{}",
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
    let mut table = output::table(&["validator", "committed", "revealed", "G metric", "L vote", "accepts", "note"]);
    for v in &r.validators {
        let note =
            v.refused.clone().or_else(|| v.deviation.clone().map(|d| format!("deviated: {d}"))).unwrap_or_default();
        table.add_row([
            g.who(&v.validator),
            yes(v.committed),
            yes(v.revealed),
            v.g_metric.map_or("-".into(), |m| format!("{:.4}", metric(m))),
            v.l_keeps.map_or("-".into(), |keeps| if keeps { "keeps" } else { "degrades" }.to_string()),
            yes(v.accepting),
            note,
        ]);
    }
    println!("{table}");
}

fn yes(value: bool) -> String {
    if value { "yes" } else { "no" }.into()
}

//! `tclearn vote` and `tclearn proposal`: governance proposals, their votes and their enactment.

use super::*;

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
    let proposal = coalition
        .proposal(&key.account_id(), args.proposal)
        .await?
        .ok_or_else(|| anyhow!("no proposal {}", args.proposal))?;
    if g.json {
        println!(
            "{}",
            json!({ "proposal": args.proposal, "aye": args.aye, "ayes": proposal.ayes, "nays": proposal.nays })
        );
    } else {
        println!(
            "voted {} on proposal {}: {} ayes, {} nays",
            if args.aye { "aye" } else { "nay" },
            args.proposal,
            proposal.ayes,
            proposal.nays
        );
    }
    Ok(0)
}

/// `tclearn proposal new`.
#[derive(clap::Args)]
pub struct ProposalNewArgs {
    /// add_member, remove_member, revert, set_audit_anchors or set_hyperparameter.
    #[arg(long)]
    action: String,
    /// The member's address, the block to revert to, or `name=value` (`epochs=3`,
    /// `privacy_budget=8,1e-5`, `lambda_ppm=950000`, ...).
    #[arg(long)]
    argument: String,
}

/// `tclearn proposal new`.
pub async fn proposal_new(g: &Global, args: ProposalNewArgs) -> Result<i32> {
    let action = parse::action(&args.action, &args.argument)?;
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

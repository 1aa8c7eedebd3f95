//! `tclearn download`: a block's model or an object from the vault, checked against its hash.

use super::*;

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

/// Block `index`'s model: the hash is the chain's (not the API's word), the bytes must hash to
/// it, and they are parsed once in a bounded child ([`tclearn_sandbox`]) before this program
/// parses them, so that a model that would crash the parser costs an error, not a crash.
pub(super) async fn block_model(
    coalition: &Coalition,
    origin: &AccountId32,
    session: &ApiClient,
    index: u32,
) -> Result<Vec<u8>> {
    let hash = block_hash(coalition, origin, index).await?;
    let bytes = session.download(&hash).await.with_context(|| format!("block {index}'s model"))?;
    let limits = tclearn_sandbox::Limits::from(tclearn_model::genesis::EvaluationLimits::default());
    tclearn_sandbox::Checker::of_this_program(limits, 1)?
        .signature(&bytes)
        .await
        .with_context(|| format!("block {index}'s model"))?;
    Ok(bytes)
}

/// Block `index`'s model hash, as the chain records it.
async fn block_hash(coalition: &Coalition, origin: &AccountId32, index: u32) -> Result<String> {
    let block = coalition.block(origin, index).await?.ok_or_else(|| anyhow!("the chain has no block {index}"))?;
    Ok(format!("0x{}", hex::encode(block.parameter_hash.0)))
}

/// `tclearn download`.
pub async fn download(g: &Global, args: DownloadArgs) -> Result<i32> {
    let key = load_key(g)?;
    let hash = match (args.block, args.hash) {
        (Some(index), _) => block_hash(&coalition(g).await?.0, &key.account_id(), index).await?,
        (None, Some(hash)) => hash,
        (None, None) => bail!("--block or --hash"),
    };
    let session = sign_in(g, &key).await?;
    let bytes = session.download(&hash).await?;
    std::fs::write(&args.out, &bytes).with_context(|| args.out.display().to_string())?;
    if g.json {
        println!("{}", json!({ "hash": hash, "size": bytes.len(), "out": args.out }));
    } else {
        println!("{} bytes, hash {} checked, written to {}", bytes.len(), short(&hash), args.out.display());
    }
    Ok(0)
}

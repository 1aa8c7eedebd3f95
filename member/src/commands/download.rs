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

/// The model stored under `hash` in the vault, checked to hash to it.
pub(super) async fn download_model(session: &ApiClient, hash: &str) -> Result<Vec<u8>> {
    let bytes = session.download(hash).await?;
    if tclearn_model::hash::model_hash(&bytes) != parse::hash(hash)? {
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

//! `tclearn upload`: models uploaded to the vault as candidates.

use super::*;

/// `tclearn upload`.
#[derive(clap::Args)]
pub struct UploadArgs {
    /// ONNX files.
    #[arg(required = true)]
    models: Vec<PathBuf>,
}

/// `tclearn upload`.
pub async fn upload(g: &Global, args: UploadArgs) -> Result<i32> {
    let key = load_key(g)?;
    let session = sign_in(g, &key).await?;
    for path in &args.models {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let stored = session.upload_candidate(bytes).await.with_context(|| path.display().to_string())?;
        if g.json {
            println!("{}", serde_json::to_string(&stored)?);
        } else {
            println!("{}: {} ({} bytes)", path.display(), stored.vault_ref, stored.size);
        }
    }
    Ok(0)
}

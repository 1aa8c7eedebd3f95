//! `tclearn split`: a member's rows split into training rows and its local test set L.

use super::*;

/// `tclearn split`.
#[derive(clap::Args)]
pub struct SplitArgs {
    /// The member's data: a header line, then `identifier,feature,…,label` rows.
    #[arg(long)]
    data: PathBuf,
    /// Share of the rows kept as the local test set L.
    #[arg(long, default_value_t = 0.2)]
    local_share: f64,
    /// Where the training rows go (same layout as --data).
    #[arg(long)]
    train: PathBuf,
    /// Where L goes, as the oracle reads a test set (`feature,…,label`).
    #[arg(long)]
    local: PathBuf,
    /// Seed of the shuffle.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `tclearn split`.
pub fn split(g: &Global, args: SplitArgs) -> Result<i32> {
    if !(0.0..1.0).contains(&args.local_share) {
        bail!("--local-share is a share of the rows, at least 0 and below 1");
    }
    let table = Table::read_csv(&args.data)?;
    let (train, local) = table.split_local(args.local_share, args.seed);
    std::fs::write(&args.train, train.to_member_csv()).with_context(|| args.train.display().to_string())?;
    std::fs::write(&args.local, local.to_test_set_csv()).with_context(|| args.local.display().to_string())?;
    if g.json {
        println!("{}", json!({ "training_rows": train.len(), "local_rows": local.len() }));
    } else {
        println!(
            "{} rows for training in {}, {} as the local test set in {}",
            train.len(),
            args.train.display(),
            local.len(),
            args.local.display()
        );
    }
    Ok(0)
}

//! `tclearn-api`: serve the members' API of one coalition, verify a served audit log, or rotate
//! the vault's master key.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tclearn_api::config::Config;
use tclearn_api_client::verify;
use tclearn_client::{anchors::AuditAnchors, Client, ContractMetadata, Keypair, H160};

#[derive(Parser)]
#[command(name = "tclearn-api", version, about = "TCLearn's members' API: vault, sign-in, coalition, audit log")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (until SIGINT or SIGTERM).
    Serve(Box<Config>),
    /// Check the audit log an API serves against the anchors on chain (and receipts a member
    /// kept): any entry edited, removed, reordered or rolled back before the latest anchor (or
    /// a receipt's checkpoint) is found.
    AuditVerify(VerifyArgs),
    /// Sign in and upload candidate models; prints one JSON line per model (hash, vault_ref,
    /// size), or the API's refusal.
    Upload(UploadArgs),
    /// The vault's keys (the API stopped).
    #[command(subcommand)]
    Vault(VaultCommand),
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Re-wrap every object's data key under a new master key, which replaces the key file;
    /// the old key is kept as `<key file>.retired-<id>` until you destroy it. Resumable: run it
    /// again after an interruption. The data-ID secret is not changed.
    RotateKey(Box<tclearn_api::config::VaultConfig>),
}

async fn rotate_key(config: tclearn_api::config::VaultConfig) -> anyhow::Result<()> {
    let mut shown = 0;
    let rotation = tclearn_api::keys::rotate(&config, |done, total| {
        // A line per tenth (and the last), so a long rotation shows it moves.
        if done == total || done * 10 / total.max(1) > shown {
            shown = done * 10 / total.max(1);
            eprintln!("re-wrapped {done} of {total} objects");
        }
    })
    .await?;
    println!(
        "rotated the vault's master key: {} objects re-wrapped, {} already under the new key; the old key is {} \
         (destroy it once no backup needs it)",
        rotation.rewrapped,
        rotation.already,
        rotation.retired.display()
    );
    Ok(())
}

#[derive(clap::Args)]
struct UploadArgs {
    /// The API's base URL.
    #[arg(long, env = "TCLEARN_API_URL")]
    api: String,
    /// The member's secret URI.
    #[arg(long, env = "TCLEARN_KEY_URI", hide_env_values = true)]
    suri: tclearn_client::Secret,
    /// ONNX files to upload.
    #[arg(required = true)]
    models: Vec<PathBuf>,
}

async fn upload(args: UploadArgs) -> anyhow::Result<()> {
    let key = Keypair::from_uri(&args.suri.0)?;
    let session = tclearn_api_client::client::ApiClient::sign_in(&args.api, &key).await?;
    for path in &args.models {
        let model = std::fs::read(path).with_context(|| path.display().to_string())?;
        let stored = session.upload_candidate(model).await.with_context(|| path.display().to_string())?;
        println!("{}", serde_json::to_string(&stored)?);
    }
    Ok(())
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The API's base URL.
    #[arg(long, env = "TCLEARN_API_URL")]
    api: String,
    /// A member's secret URI: the entries are served to members only.
    #[arg(long, env = "TCLEARN_KEY_URI", hide_env_values = true)]
    suri: tclearn_client::Secret,
    /// Receipts to check the log against too (JSON lines, as `tclearn --receipts` keeps them).
    #[arg(long, env = "TCLEARN_RECEIPTS")]
    receipts: Option<PathBuf>,
    /// The coalition whose log this is (its contract's address, as the founders gave it): the
    /// receipts must be this coalition's, and the API must sign in for it.
    #[arg(long, env = "TCLEARN_COALITION")]
    coalition: H160,
    /// The node.
    #[command(flatten)]
    chain: tclearn_client::args::ChainArgs,
    /// The audit-anchors contract.
    #[arg(long, env = "TCLEARN_AUDIT_ANCHORS")]
    audit_anchors: H160,
    /// Its metadata (`audit_anchors.json`).
    #[arg(long, env = "TCLEARN_ANCHORS_METADATA")]
    anchors_metadata: PathBuf,
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

async fn audit_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(&args.anchors_metadata).with_context(|| args.anchors_metadata.display().to_string())?;
    let metadata = ContractMetadata::parse(&text)?;
    let rpc = &args.chain.rpc;
    let client = Client::connect(rpc).await.with_context(|| format!("connecting to {rpc}"))?;
    let anchors = AuditAnchors::at(client, args.audit_anchors, metadata);
    let key = Keypair::from_uri(&args.suri.0)?;
    let session = tclearn_api_client::client::ApiClient::sign_in(&args.api, &key).await?;
    let coalition = args.coalition;
    let named = session.signed_in_to().context("the sign-in named no coalition")?;
    anyhow::ensure!(named == coalition, "the API signs in for coalition {named:?}, not {coalition:?}");
    let receipts = match &args.receipts {
        Some(path) => tclearn_api_client::client::read_receipts(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let verified = verify::verify_served(&session, &anchors, &key.account_id(), &coalition, &receipts).await?;
    println!(
        "audit log verified: {} entries, {} anchors, the latest covering {} entries ({} not yet anchored), {} receipts",
        verified.entries,
        verified.anchors,
        verified.anchored,
        verified.entries - verified.anchored,
        verified.receipts
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // The model checks' child (`check-model`), before any runtime or thread starts.
    tclearn_sandbox::checks::serve_if_child();
    // Its children read none of its memory or environment through /proc.
    tclearn_sandbox::limits::hide_from_children();
    tokio::runtime::Runtime::new().context("the async runtime")?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    tclearn_api_client::install_crypto_provider();
    match Cli::parse().command {
        Command::Serve(config) => tclearn_api::run(*config, shutdown_signal()).await.context("tclearn-api serve")?,
        Command::AuditVerify(args) => audit_verify(args).await?,
        Command::Upload(args) => upload(args).await?,
        Command::Vault(VaultCommand::RotateKey(config)) => {
            rotate_key(*config).await.context("tclearn-api vault rotate-key")?
        }
    }
    Ok(())
}

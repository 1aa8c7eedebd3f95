//! `tclearn`: a member's command line. It talks to the coalition's members' API (the vault, the
//! audit log, the coalition's state) and to the chain (proposals and votes, signed with the
//! member's own key). Human tables by default, `--json` for scripts; a failure is one clear
//! message and a non-zero exit.

mod commands;
mod output;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "tclearn", version, about = "A TCLearn member's command line")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Where the coalition is, and who the member is.
#[derive(Args, Clone)]
pub struct Global {
    /// Print JSON instead of tables and sentences.
    #[arg(long, global = true)]
    pub json: bool,
    /// The members' API.
    #[arg(long, global = true, env = "TCLEARN_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// The node.
    #[command(flatten)]
    pub chain: tclearn_client::args::ChainArgs,
    /// The coalition's contract address: when given, the members' API must serve this
    /// coalition, or nothing is read, trained, signed or sent (an API's operator could
    /// otherwise name a look-alike contract).
    #[arg(long, global = true, env = "TCLEARN_COALITION", value_parser = parse_coalition)]
    pub coalition: Option<tclearn_client::H160>,
    /// The built contracts' metadata (`coalition.json`, `audit_anchors.json`, and the
    /// `.contract` bundles for `found`).
    #[arg(long, global = true, env = "TCLEARN_ARTIFACTS")]
    pub artifacts: Option<PathBuf>,
    /// The member's key file (written by `tclearn key new` or `import`).
    #[arg(long, global = true, env = "TCLEARN_KEY_FILE")]
    pub key: Option<PathBuf>,
    /// A file to keep the API's signed receipts of this member's accesses in (JSON lines,
    /// appended): `tclearn audit verify` checks the API's log against them, so its operator
    /// cannot cut or rewrite entries after the last anchor unseen.
    #[arg(long, global = true, env = "TCLEARN_RECEIPTS")]
    pub receipts: Option<PathBuf>,
    /// An address book: names to show for members, `ADDRESS=NAME` (repeatable, or
    /// comma-separated in the environment).
    #[arg(long = "name", global = true, env = "TCLEARN_NAMES", value_delimiter = ',', value_parser = output::parse_name)]
    pub names: Vec<(String, String)>,
}

fn parse_coalition(text: &str) -> Result<tclearn_client::H160, String> {
    tclearn_client::parse::address(text).map_err(|e| e.to_string())
}

impl Global {
    /// A member's name from the address book, else its shortened address.
    pub fn who(&self, address: &str) -> String {
        self.name_of(address).unwrap_or_else(|| output::short(address))
    }

    /// A member's name from the address book.
    pub fn name_of(&self, address: &str) -> Option<String> {
        self.names.iter().find(|(a, _)| a.eq_ignore_ascii_case(address.trim())).map(|(_, n)| n.clone())
    }
}

#[derive(Subcommand)]
enum Command {
    /// The member's signing key (sr25519).
    #[command(subcommand)]
    Key(KeyCommand),
    /// The coalition: tip, metric per block, members with strength, contribution and privacy
    /// spent, the open round, proposals.
    Status,
    /// Split a data file: a share of the rows becomes the local test set L the member's
    /// oracle validates on, the rest is for training.
    Split(commands::SplitArgs),
    /// Train on the rows not yet in a block, from the coalition's tip, with its
    /// hyperparameters; write the candidate, its metadata and its anonymised data IDs.
    Train(commands::TrainArgs),
    /// Upload a trained candidate to the vault, propose it on chain and follow its round to the
    /// verdict (exit 0 appended, 2 rejected or failed).
    Propose(commands::ProposeArgs),
    /// Vote on a governance proposal.
    Vote(commands::VoteArgs),
    /// Governance proposals.
    #[command(subcommand)]
    Proposal(ProposalCommand),
    /// Download a block's model (or any object the member may read) from the vault; the API
    /// records the read in its audit log.
    Download(commands::DownloadArgs),
    /// The vault's audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Upload models to the vault (the founder's genesis model, for one).
    Upload(commands::UploadArgs),
    /// The coalition's models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Write the coalition's story so far: every round (proposer, validators, scores, verdict
    /// and why), the model chain, members, and a chart of the metric per block, to `--out`
    /// (`summary.json`, `metric.svg`).
    Report(commands::ReportArgs),
    /// Found a coalition: evaluate the genesis model on G, deploy the coalition and its
    /// audit-anchors contract, write the oracles' genesis declaration.
    Found(Box<commands::FoundArgs>),
    /// Differential privacy.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Make a new key; the secret goes to the key file only.
    New {
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// Store a secret URI (mnemonic, hex seed or `//Dev` path) read from standard input.
    Import {
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
    /// The key's account and contract address.
    Show,
}

#[derive(Subcommand)]
enum ProposalCommand {
    /// Propose a governance action (add_member, remove_member, revert, set_hyperparameter).
    New(commands::ProposalNewArgs),
    /// Enact a proposal whose vote passed and whose delay is over.
    Enact {
        /// The proposal.
        id: u32,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the log the API serves against every root anchored on chain.
    Verify,
    /// Ask the API to anchor its log's current root on chain now.
    Anchor,
    /// Re-evaluate every appended block's model on G and check each validator's revealed G
    /// scores against it: what finds validators that lied together (exit 3 if any did).
    Blocks(commands::AuditBlocksArgs),
}

#[derive(Subcommand)]
enum ModelCommand {
    /// A genesis model: the coalition's perceptron, standardised on the founder's data.
    Init(commands::InitArgs),
}

#[derive(Subcommand)]
enum PrivacyCommand {
    /// The epsilon DP-SGD spends at `--delta` (Rényi-DP accountant of the sampled Gaussian
    /// mechanism, with dp-accounting's orders).
    Epsilon {
        /// Probability that each example is in a batch (batch size / examples).
        #[arg(long)]
        sampling_rate: f64,
        /// Noise standard deviation over the clipping norm.
        #[arg(long)]
        noise_multiplier: f64,
        /// Training steps.
        #[arg(long)]
        steps: u64,
        /// Target delta.
        #[arg(long, default_value_t = 1e-5)]
        delta: f64,
    },
}

fn main() {
    // The model checks' child (`check-model`), before any runtime or thread starts.
    tclearn_sandbox::checks::serve_if_child();
    // Its children read none of its memory or environment through /proc.
    tclearn_sandbox::limits::hide_from_children();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: the async runtime: {e}");
            std::process::exit(1)
        }
    }
}

async fn run() {
    let cli = Cli::parse();
    // HTTPS to the members' API and S3 goes through rustls with ring, as the API's own clients.
    tclearn_api_client::install_crypto_provider();
    let g = cli.global;
    let result = match cli.command {
        Command::Key(KeyCommand::New { force }) => commands::key_new(&g, force),
        Command::Key(KeyCommand::Import { force }) => commands::key_import(&g, force),
        Command::Key(KeyCommand::Show) => commands::key_show(&g),
        Command::Status => commands::status(&g).await,
        Command::Split(args) => commands::split(&g, args),
        Command::Train(args) => commands::train(&g, args).await,
        Command::Propose(args) => commands::propose(&g, args).await,
        Command::Vote(args) => commands::vote(&g, args).await,
        Command::Proposal(ProposalCommand::New(args)) => commands::proposal_new(&g, args).await,
        Command::Proposal(ProposalCommand::Enact { id }) => commands::proposal_enact(&g, id).await,
        Command::Download(args) => commands::download(&g, args).await,
        Command::Audit(AuditCommand::Verify) => commands::audit_verify(&g).await,
        Command::Audit(AuditCommand::Anchor) => commands::audit_anchor(&g).await,
        Command::Audit(AuditCommand::Blocks(args)) => commands::audit_blocks(&g, args).await,
        Command::Upload(args) => commands::upload(&g, args).await,
        Command::Model(ModelCommand::Init(args)) => commands::model_init(&g, args),
        Command::Report(args) => commands::report(&g, args).await,
        Command::Found(args) => commands::found(&g, *args).await,
        Command::Privacy(PrivacyCommand::Epsilon { sampling_rate, noise_multiplier, steps, delta }) => {
            commands::privacy_epsilon(&g, sampling_rate, noise_multiplier, steps, delta)
        }
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("tclearn: {error:#}");
            std::process::exit(1);
        }
    }
}

//! The API's one configuration: every flag also reads an environment variable.

use clap::Parser;
use std::{net::SocketAddr, path::PathBuf, time::Duration};
use tclearn_api_client::sign_in::origin;
use tclearn_client::{args::CoalitionArgs, H160};

/// A secret given on the command line or in the environment: never printed (the oracle's).
use tclearn_client::Secret;

/// Where the API keeps its data, its vault and the vault's keys: what `tclearn-api serve` and
/// `tclearn-api vault rotate-key` share.
#[derive(Debug, Clone, clap::Args)]
pub struct VaultConfig {
    /// Where the API keeps its audit log (and, by default, its vault and keys).
    #[arg(long, env = "TCLEARN_API_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The vault's store: a directory, or `s3://bucket[/prefix]` (S3 settings from the standard
    /// `AWS_*` variables, `AWS_ENDPOINT` for an S3-compatible endpoint, over the vault's own
    /// timeouts: `tclearn_api::vault::s3_defaults`). Default: `vault/` in the data directory.
    #[arg(long, env = "TCLEARN_VAULT_STORE")]
    pub vault_store: Option<String>,
    /// Options of an S3 store, `key=value`, comma-separated (`aws_endpoint=http://127.0.0.1:9000,
    /// aws_allow_http=true`): object_store's S3 configuration keys, over the `AWS_*` variables.
    #[arg(long = "vault-option", env = "TCLEARN_VAULT_OPTIONS", value_delimiter = ',', value_parser = parse_option)]
    pub vault_options: Vec<(String, String)>,
    /// A file holding the vault's master key (64 hex digits). Default: `vault.key` in the data
    /// directory, made on first start; keep it on another volume in production.
    #[arg(long, env = "TCLEARN_VAULT_KEY_FILE", conflicts_with = "vault_key")]
    pub vault_key_file: Option<PathBuf>,
    /// The vault's master key itself (64 hex digits); prefer the file.
    #[arg(long, env = "TCLEARN_VAULT_KEY", hide_env_values = true)]
    pub vault_key: Option<Secret>,
    /// A file holding the coalition's data-ID secret (JSON: the coalition and the secret),
    /// independent of the master key. Default: `data-id.key` in the data directory, made on
    /// first start (or, for an API that ran before the secret had a file, moved there from its
    /// old derivation so that members' data IDs stay valid).
    #[arg(long, env = "TCLEARN_DATA_ID_KEY_FILE")]
    pub data_id_key_file: Option<PathBuf>,
    /// Identifiers a member may have the vault turn into data IDs per day (blinded queries,
    /// `POST /api/vault/data-ids`): a hospital's rows, not a dictionary of patients' IDs.
    #[arg(long, env = "TCLEARN_DATA_ID_QUOTA", default_value_t = crate::quota::DEFAULT_PER_DAY)]
    pub data_id_quota: u64,
    /// Largest object the vault takes, bytes (a model above the declaration's limit is refused
    /// by the model checks first).
    #[arg(long, env = "TCLEARN_VAULT_MAX_BYTES", default_value_t = 256 << 20)]
    pub vault_max_bytes: u64,
}

impl VaultConfig {
    /// A vault on the file system in `data_dir`, with its keys there too, holding objects of up
    /// to `max_bytes`.
    pub fn local(data_dir: PathBuf, max_bytes: u64) -> Self {
        Self {
            data_dir,
            vault_store: None,
            vault_options: Vec::new(),
            vault_key_file: None,
            vault_key: None,
            data_id_key_file: None,
            data_id_quota: crate::quota::DEFAULT_PER_DAY,
            vault_max_bytes: max_bytes,
        }
    }

    /// The master key's file: the configured one, else `vault.key` in the data directory.
    pub fn key_path(&self) -> PathBuf {
        self.vault_key_file.clone().unwrap_or_else(|| self.data_dir.join("vault.key"))
    }

    /// The data-ID secret's file: the configured one, else `data-id.key` in the data directory.
    pub fn data_id_path(&self) -> PathBuf {
        self.data_id_key_file.clone().unwrap_or_else(|| self.data_dir.join("data-id.key"))
    }

    /// The audit log's file.
    pub fn audit_path(&self) -> PathBuf {
        self.data_dir.join("audit.jsonl")
    }

    /// Where uploads wait for their checks: `spool/` in the data directory, emptied at start.
    pub fn spool_path(&self) -> PathBuf {
        self.data_dir.join("spool")
    }
}

/// `tclearn-api serve`: the members' API, vault and audit log of one coalition.
#[derive(Debug, Clone, Parser)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "TCLEARN_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The origins members reach this API at (`https://api.example.org`), comma-separated: a
    /// sign-in message names one, and members sign only a message naming the API they asked.
    /// Default: the listening address (and `localhost` on a loopback one).
    #[arg(long = "public-origin", env = "TCLEARN_API_PUBLIC_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub public_origins: Vec<String>,
    /// The node and the coalition.
    #[command(flatten)]
    pub chain: CoalitionArgs,
    /// The audit-anchors contract's metadata (`audit_anchors.json`); without it the audit log
    /// is not anchored.
    #[arg(long, env = "TCLEARN_ANCHORS_METADATA")]
    pub anchors_metadata: Option<PathBuf>,
    /// The audit-anchors contract, when the coalition does not record one.
    #[arg(long, env = "TCLEARN_AUDIT_ANCHORS")]
    pub audit_anchors: Option<H160>,
    /// The API's own account (a secret URI): reads the chain, and anchors the audit log when it
    /// is the anchors' operator.
    #[arg(long, env = "TCLEARN_API_SURI", hide_env_values = true)]
    pub suri: Secret,
    /// The coalition's genesis declaration (the oracles'): the model checks an upload passes.
    #[arg(long, env = "TCLEARN_GENESIS")]
    pub genesis: PathBuf,
    /// The data directory, the vault and its keys.
    #[command(flatten)]
    pub vault: VaultConfig,
    /// Seconds a sign-in challenge stays valid.
    #[arg(long, env = "TCLEARN_API_CHALLENGE_TTL", default_value_t = 120)]
    pub challenge_ttl: u64,
    /// Seconds a bearer token stays valid.
    #[arg(long, env = "TCLEARN_API_TOKEN_TTL", default_value_t = 900)]
    pub token_ttl: u64,
    /// Seconds between anchorings of the audit log (0: only on demand).
    #[arg(long, env = "TCLEARN_API_ANCHOR_EVERY", default_value_t = 600)]
    pub anchor_every: u64,
    /// Largest JSON request body, bytes.
    #[arg(long, env = "TCLEARN_API_MAX_JSON_BYTES", default_value_t = 64 << 10)]
    pub max_json_bytes: usize,
    /// A PEM certificate chain: with `--tls-key`, the API serves HTTPS (rustls) only.
    #[arg(long, env = "TCLEARN_API_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, env = "TCLEARN_API_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The node RPC endpoint the dashboard's browsers connect to (default: `--rpc`).
    #[arg(long, env = "TCLEARN_PUBLIC_RPC")]
    pub public_rpc: Option<String>,
    /// The dashboard's built files (`npm run build` in `frontend-api/web`).
    #[arg(long, env = "TCLEARN_WEB_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/web/dist"))]
    pub web_dir: PathBuf,
    /// Seconds the API waits for a transaction's block.
    #[arg(long, env = "TCLEARN_API_SUBMIT_TIMEOUT", default_value_t = 60)]
    pub submit_timeout: u64,
    /// Uploads received at once (each is held whole in memory until stored), one per member;
    /// the others wait their turn, up to 10 s (then 503), before their body is read.
    #[arg(long, env = "TCLEARN_API_CONCURRENT_UPLOADS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrent_uploads: u16,
    /// Downloads sent at once (each holds its decrypted object until sent), two per member; the
    /// others wait their turn, up to 10 s (then 503).
    #[arg(long, env = "TCLEARN_API_CONCURRENT_DOWNLOADS", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrent_downloads: u16,
    /// Uploads checked at once, each in a child process within the genesis declaration's
    /// evaluation limits; the others wait their turn.
    #[arg(long, env = "TCLEARN_API_CONCURRENT_CHECKS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrent_checks: u16,
    /// Most connections served at once; the next waits until one closes. Lowered at start to
    /// what the process's open-file limit allows.
    #[arg(long, env = "TCLEARN_API_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most connections open at once from one peer address (IPv6: one /64); another is closed
    /// at once. Behind a proxy every client shares the proxy's address: raise it there.
    #[arg(long, env = "TCLEARN_API_CONNECTIONS_PER_ADDRESS", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections_per_address: u32,
    /// Seconds a connection has to send a request's headers; an idle keep-alive connection is
    /// closed after as long, and a TLS handshake must finish within it.
    #[arg(long, env = "TCLEARN_API_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a request body may go without a byte arriving; an upload or a download is also
    /// given this long, plus its size at 256 KiB/s, in all.
    #[arg(long, env = "TCLEARN_API_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Requests per second one peer address may make, sustained (behind a proxy every client
    /// shares the proxy's address: raise it there, and let the proxy limit per client).
    #[arg(long, env = "TCLEARN_API_RATE_PER_ADDRESS", default_value_t = 50)]
    pub rate_per_address: u32,
    /// Requests one peer address may make at once.
    #[arg(long, env = "TCLEARN_API_BURST_PER_ADDRESS", default_value_t = 200)]
    pub burst_per_address: u32,
    /// Requests per second one signed-in member may make, sustained.
    #[arg(long, env = "TCLEARN_API_RATE_PER_ACCOUNT", default_value_t = 20)]
    pub rate_per_account: u32,
    /// Requests one signed-in member may make at once.
    #[arg(long, env = "TCLEARN_API_BURST_PER_ACCOUNT", default_value_t = 100)]
    pub burst_per_account: u32,
    /// The program whose `check-model` child checks uploads (default: this one; tests that run
    /// the API inside another program name `tclearn-api`).
    #[arg(long, env = "TCLEARN_API_CHECKER", hide = true)]
    pub checker: Option<PathBuf>,
}

fn parse_origin(text: &str) -> Result<String, String> {
    origin(text).map_err(|e| e.to_string())
}

/// The origins of an API listening at `local` with no `--public-origin`: the address itself,
/// and `localhost` for a loopback or unspecified one (remote members then need
/// `--public-origin`).
pub fn default_origins(local: SocketAddr, tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let port = local.port();
    let mut urls = Vec::new();
    if !local.ip().is_unspecified() {
        urls.push(format!("{scheme}://{local}"));
    }
    if local.ip().is_loopback() || local.ip().is_unspecified() {
        urls.extend([format!("{scheme}://localhost:{port}"), format!("{scheme}://127.0.0.1:{port}")]);
    }
    let mut origins: Vec<String> = Vec::new();
    for found in urls.iter().filter_map(|url| origin(url).ok()) {
        if !origins.contains(&found) {
            origins.push(found);
        }
    }
    origins
}

/// Check a list of origins: the host of a request names one of them, so no host appears twice
/// (under `http` and `https`, the request would not say which).
pub fn check_origins(origins: &[String]) -> Result<(), String> {
    let host = |o: &str| o.split_once("://").map(|(_, h)| h.to_string()).unwrap_or_default();
    for (i, a) in origins.iter().enumerate() {
        if let Some(b) = origins.iter().skip(i + 1).find(|b| host(b) == host(a)) {
            return Err(format!("--public-origin names the host of {a} twice ({b}): give one scheme per host"));
        }
    }
    Ok(())
}

fn parse_option(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("{text:?} is not key=value"))
}

impl Config {
    /// How long a challenge stays valid.
    pub fn challenge_ttl(&self) -> Duration {
        Duration::from_secs(self.challenge_ttl)
    }

    /// How long a token stays valid.
    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_origins_are_canonical_and_a_host_is_named_once() {
        let local = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert_eq!(default_origins(local("127.0.0.1:8080"), false), ["http://127.0.0.1:8080", "http://localhost:8080"]);
        assert_eq!(default_origins(local("127.0.0.1:443"), true), ["https://127.0.0.1", "https://localhost"]);
        assert_eq!(default_origins(local("0.0.0.0:80"), false), ["http://localhost", "http://127.0.0.1"]);
        assert_eq!(default_origins(local("10.0.0.5:9000"), false), ["http://10.0.0.5:9000"]);
        assert!(check_origins(&["https://api.example".into(), "http://api.example".into()]).is_err());
        assert!(check_origins(&["https://api.example".into(), "https://api.example:8443".into()]).is_ok());
    }
}

//! # tclearn-api
//!
//! The members' side of TCLearn (level B of the paper: the model is private to the coalition).
//! One service per coalition, which every member and every oracle talks to:
//!
//! - [`vault`]: models and increments, content-addressed by SHA3-256 and encrypted at rest;
//! - [`keys`]: the vault's master key and the data-ID secret at rest, the data directory's
//!   lock, and the master key's rotation;
//! - [`auth`]: sign-in by an sr25519 signature of a challenge, as a browser wallet makes it;
//! - [`chain`]: the coalition read through `tclearn-client`, and who may read which object;
//! - [`audit`]: every upload, download, call built and member's refusal in an RFC 6962 Merkle
//!   log, anchored on chain in `contracts/audit-anchors`, each entry bounded in size;
//! - [`quota`]: how many data IDs a member may have the vault evaluate in a day;
//! - [`tally`]: refusals anyone can cause (no valid token, failed sign-ins), counted and
//!   summarised in the log at most once a minute;
//! - [`api`]: the HTTP routes and their OpenAPI document.
//!
//! What the routes return, the Rust client and the audit verifier are `tclearn_api_client`'s.
//!
//! [`bind`] sets everything up and binds the listener; [`Server::serve`] serves until shutdown;
//! [`run`] does both.

pub mod api;
pub mod audit;
pub mod auth;
pub mod chain;
pub mod config;
pub mod connections;
pub mod keys;
pub mod quota;
pub mod tally;
pub mod turns;
pub mod vault;

use api::{AppState, EventView, HttpError, HttpResult};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tclearn_api_client::views;
use tclearn_client::{ContractMetadata, Keypair, H256};
use tclearn_model::genesis::Declaration;

/// Why the API could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A configuration that cannot work, with what to change.
    #[error("configuration: {0}")]
    Config(String),
    /// The chain.
    #[error("chain: {0}")]
    Chain(String),
    /// Listening or serving failed.
    #[error("listening on {address}: {reason}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// What failed.
        reason: String,
    },
}

/// A bound API, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    config: config::Config,
    event_topics: Vec<(H256, &'static str)>,
    /// The data directory's, held until the server stops.
    _lock: keys::DataDirLock,
}

fn read_metadata(path: &std::path::Path) -> Result<ContractMetadata, ServeError> {
    let text = std::fs::read_to_string(path).map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?;
    ContractMetadata::parse(&text).map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))
}

/// The vault's object store: a directory (every write synced to disk, and the staging files of
/// uploads a stopped API never completed removed), or `s3://bucket[/prefix]`.
pub(crate) fn object_store(config: &config::VaultConfig) -> Result<Arc<dyn object_store::ObjectStore>, ServeError> {
    let location = config.vault_store.clone().unwrap_or_else(|| config.data_dir.join("vault").display().to_string());
    if location.starts_with("s3://") {
        return vault::s3_store(&location, &config.vault_options).map_err(|e| ServeError::Config(e.to_string()));
    }
    let bad = |e: &dyn std::fmt::Display| ServeError::Config(format!("vault store {location}: {e}"));
    std::fs::create_dir_all(&location).map_err(|e| bad(&e))?;
    // What an upload cut by a crash left is never completed (an API sharing this directory
    // writes its uploads' staging files for minutes, not hours).
    let swept = vault::sweep_staged(std::path::Path::new(&location), vault::STAGED_AGE).map_err(|e| bad(&e))?;
    if swept > 0 {
        tracing::info!(swept, "removed the staging files of uploads a stopped API never completed");
    }
    // Synced on every write: an object a member holds a receipt for survives a power cut.
    let store = object_store::local::LocalFileSystem::new_with_prefix(&location).map_err(|e| bad(&e))?.with_fsync(true);
    Ok(Arc::new(store))
}

/// Set up from `config` and bind its address.
pub async fn bind(config: config::Config) -> Result<Server, ServeError> {
    if config.challenge_ttl() > Duration::from_millis(tclearn_api_client::sign_in::MAX_LIFETIME_MS) {
        return Err(ServeError::Config(
            "--challenge-ttl is at most 600 s: members refuse to sign a challenge that lives longer".into(),
        ));
    }
    let mut declaration = Declaration::load(&config.genesis).map_err(|e| ServeError::Config(e.to_string()))?;
    let metadata = read_metadata(&config.chain.metadata)?;
    let operator = Keypair::from_uri(&config.suri.0).map_err(|e| ServeError::Config(e.to_string()))?;
    let event_topics = tclearn_client::coalition::events::NAMES
        .iter()
        .filter_map(|name| metadata.event_topic(name).ok().flatten().map(|topic| (topic, *name)))
        .collect();
    let submit_timeout = Duration::from_secs(config.submit_timeout);
    let mut chain =
        chain::Chain::connect(&config.chain.chain.rpc, submit_timeout, operator, config.chain.coalition, metadata)
            .await
            .map_err(|e| ServeError::Chain(format!("{}: {e}", config.chain.chain.rpc)))?;
    let origin = chain.origin();
    let spec = chain.coalition.evaluation_spec(&origin).await.map_err(|e| ServeError::Chain(e.to_string()))?;
    declaration.check_chain(&spec).map_err(|e| ServeError::Config(e.to_string()))?;
    if let Some(path) = &config.anchors_metadata {
        let anchors_metadata = read_metadata(path)?;
        let address = match config.audit_anchors {
            Some(address) => Some(address),
            None => chain.coalition.audit_anchors(&origin).await.map_err(|e| ServeError::Chain(e.to_string()))?,
        };
        match address {
            Some(address) => chain.set_anchors(address, anchors_metadata),
            None => {
                tracing::warn!("no audit-anchors contract: the coalition records none and --audit-anchors is not set")
            }
        }
    }
    let lock = keys::DataDirLock::acquire(&config.vault.data_dir).map_err(|e| ServeError::Config(e.to_string()))?;
    keys::ensure_no_rotation_under_way(&config.vault).map_err(|e| ServeError::Config(e.to_string()))?;
    let store = object_store(&config.vault)?;
    // A vault that holds objects, or an API that has run (its audit log has entries), needs its
    // keys back, not new ones.
    let objects = vault::Vault::some_objects(store.as_ref(), 8).await.map_err(|e| ServeError::Config(e.to_string()))?;
    let has_run = keys::has_run(&config.vault, !objects.is_empty());
    let master = keys::master_key(&config.vault, has_run).map_err(|e| ServeError::Config(e.to_string()))?;
    let audit = audit::AuditLog::open(&config.vault.audit_path()).map_err(|e| ServeError::Config(e.to_string()))?;
    if let Some(anchors) = &chain.anchors {
        if let Some((index, latest)) = anchors.latest(&origin).await.map_err(|e| ServeError::Chain(e.to_string()))? {
            audit::ensure_reaches_anchor(audit.checkpoint().size, (index, latest.log_length))
                .map_err(|e| ServeError::Config(e.to_string()))?;
        }
    }
    let coalition = &config.chain.coalition;
    let recorded = keys::SecretRecord::of(audit.last_outcome(keys::DATA_ID_SECRET_ACTION).as_deref());
    let (data_ids, made) = keys::data_id_secret(&config.vault, coalition, &master, (has_run, &recorded))
        .map_err(|e| ServeError::Config(e.to_string()))?;
    if let Some(made) = made {
        audit
            .append(
                auth::now_ms(),
                None,
                keys::DATA_ID_SECRET_ACTION,
                // The vault's data-ID public key, which every answer names: members can compare.
                Some(format!("0x{}", tclearn_api_client::data_ids::VaultKey::derive(data_ids.as_bytes()).public_key())),
                made.outcome(&data_ids, coalition),
                None,
            )
            .map_err(|e| ServeError::Config(e.to_string()))?;
    }
    let vault = vault::Vault::new(store, master, config.vault.vault_max_bytes);
    vault.ensure_key_opens(&objects).await.map_err(|e| ServeError::Config(e.to_string()))?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServeError::Listen { address: config.listen, reason: e.to_string() })?;
    let origins = match config.public_origins.as_slice() {
        [] => {
            let local = listener.local_addr().map_err(|e| ServeError::Config(e.to_string()))?;
            if local.ip().is_unspecified() {
                tracing::warn!(%local, "members elsewhere than this host cannot sign in until --public-origin names the URL they use");
            }
            config::default_origins(local, tls.is_some())
        }
        given => given.to_vec(),
    };
    config::check_origins(&origins).map_err(ServeError::Config)?;
    let sessions = auth::Sessions::new(config.chain.coalition, origins, config.challenge_ttl(), config.token_ttl());
    let public_rpc = config.public_rpc.clone().unwrap_or_else(|| config.chain.chain.rpc.clone());
    let limits = tclearn_sandbox::Limits::of(&declaration);
    let checker = match &config.checker {
        Some(program) => tclearn_sandbox::Checker::new(program.clone(), limits, config.concurrent_checks.into()),
        None => tclearn_sandbox::Checker::of_this_program(limits, config.concurrent_checks.into())
            .map_err(|e| ServeError::Config(e.to_string()))?,
    };
    let spool = config.vault.spool_path();
    // What an API that stopped left there was never stored: uploads start again.
    let _ = std::fs::remove_dir_all(&spool);
    std::fs::create_dir_all(&spool).map_err(|e| ServeError::Config(format!("{}: {e}", spool.display())))?;
    let checks = api::ModelChecks { policy: declaration.policy(), checker, spool };
    let load = api::Load {
        limiters: api::RateLimits::new(api::Rates {
            per_address: config.rate_per_address,
            address_burst: config.burst_per_address,
            per_account: config.rate_per_account,
            account_burst: config.burst_per_account,
        }),
        uploads: turns::Turns::new(config.concurrent_uploads.into(), UPLOADS_PER_ACCOUNT, TURN_WAIT),
        downloads: turns::Turns::new(config.concurrent_downloads.into(), DOWNLOADS_PER_ACCOUNT, TURN_WAIT),
        transfer_grace: Duration::from_secs(config.body_timeout),
        event_streams: api::EventStreams::new(config.max_connections as usize / 4),
        data_ids: quota::DataIdQuota::new(config.vault.data_id_quota),
    };
    let state = Arc::new(AppState::new(chain, sessions, (vault, data_ids), audit, checks, load, public_rpc));
    Ok(Server { listener, tls, state, config, event_topics, _lock: lock })
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serve until `shutdown` completes; the event follower and the anchoring schedule run
    /// alongside.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let address = self.local_addr();
        let follower = tokio::spawn(follow_events(self.state.clone(), self.event_topics));
        let watchdog = tokio::spawn(keep_connected(self.state.clone()));
        let summaries = tokio::spawn(summarise_on_schedule(self.state.clone()));
        let anchoring = (self.config.anchor_every > 0).then(|| {
            tokio::spawn(anchor_on_schedule(self.state.clone(), Duration::from_secs(self.config.anchor_every)))
        });
        let app = api::router(
            self.state.clone(),
            self.config.max_json_bytes,
            &self.config.web_dir,
            self.tls.is_some(),
            Duration::from_secs(self.config.body_timeout),
            // A request to a JSON route may read its body, and wait for a transaction.
            api::transfer_deadline(
                Duration::from_secs(self.config.body_timeout.saturating_add(self.config.submit_timeout)),
                self.config.max_json_bytes as u64,
            ),
        );
        tracing::info!(%address, tls = self.tls.is_some(), "serving the members' API");
        if self.tls.is_none() && !address.ip().is_loopback() {
            tracing::warn!(
                %address,
                "serving plain HTTP off loopback: tokens and models cross the network in the clear; \
                 give --tls-cert and --tls-key, or put a TLS proxy in front"
            );
        }
        let connections = connections::Connections {
            max: connections::connection_cap(
                self.config.max_connections as usize,
                self.config.concurrent_checks.into(),
                connections::raise_open_files(),
            ),
            per_address: self.config.connections_per_address as usize,
            header_timeout: Duration::from_secs(self.config.header_timeout),
        };
        let served = connections::serve_connections(self.listener, self.tls, app, connections, shutdown).await;
        follower.abort();
        watchdog.abort();
        if let Some(task) = anchoring {
            task.abort();
        }
        summaries.abort();
        if let Err(e) = self.state.summarise(true) {
            tracing::warn!(error = ?e, "the refusals counted since the last summary were not logged");
        }
        served.map_err(|e| ServeError::Listen { address, reason: e.to_string() })
    }
}

/// A TLS acceptor (rustls, ring) for the PEM certificate chain and key at `cert` and `key`.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let bad =
        |what: &std::path::Path, e: &dyn std::fmt::Display| ServeError::Config(format!("TLS {}: {e}", what.display()));
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| bad(cert, &e))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}

/// Uploads one member may have in progress at once.
pub const UPLOADS_PER_ACCOUNT: usize = 1;

/// Downloads one member may have in progress at once.
pub const DOWNLOADS_PER_ACCOUNT: usize = 2;

/// How long an upload or a download waits for a turn before it is answered 503.
pub const TURN_WAIT: Duration = Duration::from_secs(10);

/// Set up from `config` and serve until `shutdown`.
pub async fn run(
    config: config::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    bind(config).await?.serve(shutdown).await
}

/// Anchor the audit log's checkpoint, if it grew since the latest anchor; `None` if not.
pub async fn anchor(state: &AppState) -> HttpResult<Option<views::AnchorView>> {
    let chain = state.chain();
    let Some(anchors) = &chain.anchors else {
        return Err(HttpError::Refused("this API has no audit-anchors contract configured".into()));
    };
    let _one_at_a_time = state.anchoring.lock().await;
    state.summarise(true)?;
    let checkpoint = state.audit.checkpoint();
    let origin = chain.origin();
    let latest = anchors.latest(&origin).await.map_err(|e| HttpError::Chain(e.to_string()))?;
    if checkpoint.size == 0 || latest.is_some_and(|(_, a)| a.log_length >= checkpoint.size) {
        return Ok(None);
    }
    let (index, _) = anchors
        .anchor(&chain.operator, H256::from(checkpoint.root), checkpoint.size)
        .await
        .map_err(|e| HttpError::Chain(e.to_string()))?;
    tracing::info!(index, size = checkpoint.size, "anchored the audit log");
    Ok(Some(views::AnchorView {
        index,
        log_length: checkpoint.size,
        root: format!("0x{}", hex::encode(checkpoint.root)),
    }))
}

/// Log the tally's summaries once they are due, even when no refusal comes to trigger them;
/// prune the rate limiters' idle buckets on the same tick.
async fn summarise_on_schedule(state: Arc<AppState>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(tally::SUMMARY_EVERY_MS / 4));
    loop {
        ticker.tick().await;
        api::prune_rate_limits(&state);
        if let Err(e) = state.summarise(false) {
            tracing::warn!(error = ?e, "logging the refusals' summary failed; trying again");
        }
    }
}

async fn anchor_on_schedule(state: Arc<AppState>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(e) = anchor(&state).await {
            tracing::warn!(error = ?e, "scheduled anchoring failed; trying again at the next one");
        }
    }
}

/// Every 2 s, check the connection to the node; when it is gone, connect again (the node was
/// restarted, or the connection dropped).
async fn keep_connected(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let chain = state.chain();
        if chain.coalition.client().best_number().await.is_ok() {
            continue;
        }
        match chain.reconnect().await {
            Ok(fresh) => {
                tracing::info!("connected to the node again");
                state.set_chain(fresh);
            }
            Err(e) => tracing::warn!("the node is unreachable: {e}; trying again"),
        }
    }
}

/// Follow best blocks and broadcast the coalition's events.
async fn follow_events(state: Arc<AppState>, topics: Vec<(H256, &'static str)>) {
    let mut next = None;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let chain = state.chain();
        let (client, contract) = (chain.coalition.client(), chain.coalition.address);
        let Ok(best) = client.best_number().await else { continue };
        // Start at the tip; after a gap, catch up at most 64 blocks.
        let from = next.unwrap_or(best).max(best.saturating_sub(63));
        for number in from..=best {
            let Ok((_, events)) = client.block_contract_events(number).await else { break };
            for event in events.iter().filter(|e| e.contract == contract) {
                let name =
                    event.topics.first().and_then(|t| topics.iter().find(|(topic, _)| topic == t)).map(|(_, n)| *n);
                let view = EventView {
                    block: number,
                    name: name.unwrap_or("Unknown").into(),
                    data: format!("0x{}", hex::encode(&event.data)),
                };
                let _ = state.events.send(view);
            }
            next = Some(number + 1);
        }
    }
}

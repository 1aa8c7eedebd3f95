//! The HTTP API: routes, their OpenAPI description, and the error type that hides internals.

use crate::{
    audit::AuditLog,
    auth::{now_ms, parse_signature, AuthError, Sessions},
    chain::{may_read, Chain, ChainError, Standing},
    keys::DataIdSecret,
    quota::{self, DataIdQuota},
    tally::Tally,
    turns::{NoTurn, Turn, Turns},
    vault::{Vault, VaultError},
};
use axum::{
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    routing::{get, post},
    Json, Router,
};
use futures::Stream;
use serde::Deserialize;
use std::{
    collections::HashMap,
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tclearn_api_client::{
    audit::{Checkpoint, MAX_PAGE},
    data_ids::VaultKey,
    receipt::{self, Receipt},
    views::*,
};
use tclearn_client::{
    account_to_address,
    coalition::{CallError, CoalitionError},
    parse, AccountId32, H160, H256,
};
use tclearn_model::checks::ModelPolicy;
use tokio::sync::broadcast;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Contract reads one view keeps in flight at once.
const CHAIN_READS_AT_ONCE: usize = 16;

/// An HTTP error: a status and a message meant for the caller. Internal failures are logged and
/// answered with a generic message.
#[derive(Debug)]
pub enum HttpError {
    /// 400.
    BadRequest(String),
    /// 401: no valid token, or a failed sign-in.
    Unauthorized(String),
    /// 403.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 413.
    TooLarge(String),
    /// 422: well-formed, and refused (a model that fails the checks, a call the contract
    /// refuses).
    Refused(String),
    /// 502: the chain did not answer.
    Chain(String),
    /// 503.
    Busy(String),
    /// 429: over a rate limit; try again after this many seconds.
    TooManyRequests(u64),
    /// 408: the request's body stalled.
    Timeout(String),
    /// 500: logged with its detail, answered without it.
    Internal(String),
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            Self::Timeout(m) => (StatusCode::REQUEST_TIMEOUT, m),
            Self::Refused(m) => (StatusCode::UNPROCESSABLE_ENTITY, m),
            Self::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            Self::TooManyRequests(wait) => {
                let message = format!("too many requests; try again in {wait} s");
                let mut response =
                    (StatusCode::TOO_MANY_REQUESTS, Json(serde_json::json!({ "error": message }))).into_response();
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(wait));
                return response;
            }
            Self::Chain(detail) => {
                tracing::warn!(%detail, "chain request failed");
                (StatusCode::BAD_GATEWAY, "the chain did not answer; try again".into())
            }
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
        };
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body is never read: the connection cannot carry another request.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<ChainError> for HttpError {
    fn from(e: ChainError) -> Self {
        Self::Chain(e.to_string())
    }
}

impl From<CallError> for HttpError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Contract(error) => Self::Refused(format!("the coalition refuses: {error:?}")),
            CallError::Client(e) => Self::Chain(e.to_string()),
        }
    }
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Busy => Self::Busy(e.to_string()),
            AuthError::MalformedSignature | AuthError::UnknownOrigin(_) => Self::BadRequest(e.to_string()),
            _ => Self::Unauthorized(e.to_string()),
        }
    }
}

/// Result of a handler.
pub type HttpResult<T> = Result<T, HttpError>;

/// Counters served at `/metrics`.
pub struct Metrics {
    registry: prometheus::Registry,
    /// Objects stored.
    pub uploads: prometheus::IntCounter,
    /// Bytes stored.
    pub upload_bytes: prometheus::IntCounter,
    /// Objects served.
    pub downloads: prometheus::IntCounter,
    /// Bytes served.
    pub download_bytes: prometheus::IntCounter,
    /// Refusals (uploads, downloads, sign-ins).
    pub refusals: prometheus::IntCounter,
    /// Refusals of requests without a valid token (counted, summarised in the log).
    pub anonymous_refusals: prometheus::IntCounter,
    /// Failed sign-ins (counted, summarised in the log per account).
    pub failed_sign_ins: prometheus::IntCounter,
    /// Tokens issued.
    pub tokens: prometheus::IntCounter,
    /// Requests refused over a rate limit (per address or per account).
    pub rate_limited: prometheus::IntCounter,
    /// Entries in the audit log.
    pub audit_entries: prometheus::IntGauge,
}

impl Metrics {
    fn new() -> Self {
        let registry = prometheus::Registry::new_custom(Some("tclearn_api".into()), None).expect("a registry");
        let counter = |name: &str, help: &str| {
            let c = prometheus::IntCounter::new(name, help).expect("a counter");
            registry.register(Box::new(c.clone())).expect("registered once");
            c
        };
        let uploads = counter("uploads_total", "Objects stored in the vault");
        let upload_bytes = counter("upload_bytes_total", "Bytes stored in the vault");
        let downloads = counter("downloads_total", "Objects served from the vault");
        let download_bytes = counter("download_bytes_total", "Bytes served from the vault");
        let refusals = counter("refusals_total", "Uploads, downloads and sign-ins refused");
        let tokens = counter("tokens_total", "Bearer tokens issued");
        let anonymous_refusals = counter("anonymous_refusals_total", "Requests refused for want of a valid token");
        let failed_sign_ins = counter("failed_sign_ins_total", "Sign-ins refused: a bad signature, or too late");
        let rate_limited = counter("rate_limited_total", "Requests refused over a rate limit (429)");
        let audit_entries = prometheus::IntGauge::new("audit_entries", "Entries in the audit log").expect("a gauge");
        registry.register(Box::new(audit_entries.clone())).expect("registered once");
        Self {
            registry,
            uploads,
            upload_bytes,
            downloads,
            download_bytes,
            refusals,
            anonymous_refusals,
            failed_sign_ins,
            tokens,
            rate_limited,
            audit_entries,
        }
    }
}

/// A contract event, as the event stream sends it.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct EventView {
    /// The block it was emitted in.
    pub block: u64,
    /// The event's name (`RoundOpened`, `BlockAppended`, ...).
    pub name: String,
    /// Its SCALE-encoded fields, hex.
    pub data: String,
}

/// What every handler shares.
pub struct AppState {
    /// The coalition on chain, over the current connection ([`AppState::chain`]).
    pub chain_connection: std::sync::RwLock<Arc<Chain>>,
    /// Sign-in.
    pub sessions: Sessions,
    /// The vault.
    pub vault: Vault,
    /// The vault's data-ID key (RFC 9497), derived from the coalition's data-ID secret: it
    /// answers members' blinded queries and never leaves the API.
    pub data_ids: VaultKey,
    /// The audit log.
    pub audit: AuditLog,
    /// The model checks uploads pass.
    pub checks: ModelChecks,
    /// Request rates, and uploads and downloads in progress.
    pub load: Load,
    /// Counters.
    pub metrics: Metrics,
    /// Who uploaded each object (from the audit log).
    pub uploaders: Mutex<HashMap<[u8; 32], Vec<H160>>>,
    /// Contract events as they come.
    pub events: broadcast::Sender<EventView>,
    /// One anchoring at a time.
    pub anchoring: tokio::sync::Mutex<()>,
    /// The node RPC endpoint browsers connect to, to submit what their wallet signs.
    pub public_rpc: String,
    /// Views kept per best block.
    pub views: Views,
    /// Refusals counted rather than logged one by one.
    pub tally: Mutex<Tally>,
    /// The per-address limiter's buckets, once the router is built (pruned on a timer).
    pub address_limiter: Mutex<Option<AddressLimiter>>,
}

/// A view read from the chain, kept for one best block: until the next block every request gets
/// it without reading the chain again, and requests that arrive together wait for one read.
/// (Some views take one read per block, proposal or anchor ever made.)
pub struct AtBest<T> {
    slot: tokio::sync::Mutex<Option<(H256, Arc<T>)>>,
    reads: std::sync::atomic::AtomicU64,
}

impl<T> Default for AtBest<T> {
    fn default() -> Self {
        Self { slot: tokio::sync::Mutex::new(None), reads: std::sync::atomic::AtomicU64::new(0) }
    }
}

impl<T> AtBest<T> {
    /// The view at `chain`'s best block: kept, or read by `read`.
    pub async fn get<F: std::future::Future<Output = HttpResult<T>>>(
        &self,
        chain: &Chain,
        read: impl FnOnce() -> F,
    ) -> HttpResult<Arc<T>> {
        let best = chain.coalition.client().best_hash().await.map_err(|e| HttpError::Chain(e.to_string()))?;
        let mut slot = self.slot.lock().await;
        if let Some((at, view)) = slot.as_ref().filter(|(at, _)| *at == best) {
            tracing::trace!(?at, "a view kept for this best block");
            return Ok(view.clone());
        }
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let view = Arc::new(read().await?);
        *slot = Some((best, view.clone()));
        Ok(view)
    }

    /// How many times the view was read from the chain.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The views kept per best block.
#[derive(Default)]
pub struct Views {
    /// `GET /api/coalition`.
    pub coalition: AtBest<CoalitionView>,
    /// Every block of the model chain (`/api/blocks`, `/api/members`).
    pub blocks: AtBest<Vec<tclearn_client::coalition::ModelBlock>>,
    /// `GET /api/members`.
    pub members: AtBest<Vec<MemberView>>,
    /// `GET /api/proposals`.
    pub proposals: AtBest<Vec<ProposalView>>,
    /// `GET /api/audit/anchors`.
    pub anchors: AtBest<Vec<AnchorView>>,
}

/// The per-address limiter's buckets.
pub type AddressLimiter = tower_governor::governor::SharedRateLimiter<
    std::net::IpAddr,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
>;

impl AppState {
    /// The state; uploaders are read back from the audit log.
    pub fn new(
        chain: Chain,
        sessions: Sessions,
        (vault, data_ids): (Vault, DataIdSecret),
        audit: AuditLog,
        checks: ModelChecks,
        load: Load,
        public_rpc: String,
    ) -> Self {
        let mut uploaders: HashMap<[u8; 32], Vec<H160>> = HashMap::new();
        let size = audit.checkpoint().size;
        // Only the last day's data-ID counts matter; older ones are never kept.
        let quota_since = now_ms().saturating_sub(quota::WINDOW_MS);
        let mut start = 0;
        while start < size {
            for line in audit.entries(start, MAX_PAGE) {
                let Ok(entry) = serde_json::from_str::<crate::audit::Entry>(&line) else { continue };
                if let (Some(count), Some(account)) =
                    (quota::recorded_count(&entry.action, &entry.outcome), entry.account.as_deref())
                {
                    if entry.time_ms > quota_since {
                        load.data_ids.note(account, entry.time_ms, count);
                    }
                }
                if !entry.action.starts_with("upload") || entry.outcome != "ok" {
                    continue;
                }
                let account = entry.account.as_deref().and_then(|a| AccountId32::from_str(a).ok());
                let object = entry.object.as_deref().and_then(|h| parse::hash(h).ok());
                if let (Some(account), Some(object)) = (account, object) {
                    let list = uploaders.entry(object).or_default();
                    let address = account_to_address(&account);
                    if !list.contains(&address) {
                        list.push(address);
                    }
                }
            }
            start += MAX_PAGE;
        }
        let metrics = Metrics::new();
        metrics.audit_entries.set(size as i64);
        Self {
            chain_connection: std::sync::RwLock::new(Arc::new(chain)),
            sessions,
            vault,
            data_ids: VaultKey::derive(data_ids.as_bytes()),
            audit,
            checks,
            load,
            metrics,
            uploaders: Mutex::new(uploaders),
            events: broadcast::channel(1024).0,
            anchoring: tokio::sync::Mutex::new(()),
            public_rpc,
            views: Views::default(),
            tally: Mutex::new(Tally::default()),
            address_limiter: Mutex::new(None),
        }
    }

    /// The coalition over the current connection to the node.
    pub fn chain(&self) -> Arc<Chain> {
        self.chain_connection.read().expect("chain lock").clone()
    }

    /// Replace the connection (after the node went away).
    pub fn set_chain(&self, chain: Chain) {
        *self.chain_connection.write().expect("chain lock") = Arc::new(chain);
    }

    /// Append to the audit log, the entry naming the nonce of the member's request (`headers`'
    /// [`receipt::NONCE_HEADER`], [`access_nonce`]) when given; a log that cannot be written
    /// stops the request. Returns the entry's receipt, signed by the API's account
    /// ([`Receipt`]).
    fn record(
        &self,
        account: Option<&AccountId32>,
        action: &str,
        object: Option<&[u8; 32]>,
        outcome: &str,
        headers: Option<&HeaderMap>,
    ) -> HttpResult<Receipt> {
        let appended = self
            .audit
            .append(
                now_ms(),
                account.map(|a| a.to_string()),
                action,
                object.map(|h| format!("0x{}", hex::encode(h))),
                outcome.into(),
                headers.and_then(access_nonce),
            )
            .map_err(|e| HttpError::Internal(e.to_string()))?;
        self.metrics.audit_entries.inc();
        let chain = self.chain();
        Ok(Receipt::sign(
            &chain.operator,
            &chain.coalition.address,
            appended.leaf,
            appended.entry.index,
            &appended.checkpoint,
            &appended.proof,
        ))
    }

    /// Append the tally's summaries, if due (or at once when `force`).
    pub fn summarise(&self, force: bool) -> HttpResult<()> {
        let summaries = self.tally.lock().expect("tally lock").due(now_ms(), force);
        for summary in summaries {
            self.audit
                .append(now_ms(), summary.account, summary.action, None, summary.outcome, None)
                .map_err(|e| HttpError::Internal(e.to_string()))?;
            self.metrics.audit_entries.inc();
        }
        Ok(())
    }

    /// Count a request refused for want of a valid token, and return `error`.
    fn refuse_anonymous(&self, error: HttpError) -> HttpError {
        self.metrics.anonymous_refusals.inc();
        self.count(error, |tally, now| tally.anonymous(now))
    }

    /// Count a failed sign-in for `account`, and return `error`.
    fn refuse_sign_in(&self, account: &AccountId32, error: HttpError) -> HttpError {
        self.metrics.failed_sign_ins.inc();
        self.count(error, |tally, now| tally.failed_sign_in(account.to_string(), now))
    }

    /// Count a refusal in the tally (logging its summaries if due), and return `error`.
    fn count(&self, error: HttpError, note: impl FnOnce(&mut Tally, u64)) -> HttpError {
        self.metrics.refusals.inc();
        note(&mut self.tally.lock().expect("tally lock"), now_ms());
        match self.summarise(false) {
            Ok(()) => error,
            Err(log_error) => log_error,
        }
    }

    /// Record a refusal and return `error`; a request without a valid token (`account` none)
    /// is counted instead ([`AppState::refuse_anonymous`]).
    fn refuse(
        &self,
        account: Option<&AccountId32>,
        action: &str,
        object: Option<&[u8; 32]>,
        error: HttpError,
    ) -> HttpError {
        let Some(account) = account else { return self.refuse_anonymous(error) };
        let why = match &error {
            HttpError::Internal(_) => "internal error".to_string(),
            HttpError::Chain(_) => "the chain did not answer".to_string(),
            HttpError::BadRequest(m)
            | HttpError::Unauthorized(m)
            | HttpError::Forbidden(m)
            | HttpError::NotFound(m)
            | HttpError::TooLarge(m)
            | HttpError::Timeout(m)
            | HttpError::Refused(m)
            | HttpError::Busy(m) => m.clone(),
            HttpError::TooManyRequests(wait) => format!("rate limited for {wait} s"),
        };
        self.metrics.refusals.inc();
        match self.record(Some(account), action, object, &format!("refused: {why}"), None) {
            Ok(_) => error,
            Err(log_error) => log_error,
        }
    }
}

type Shared = Arc<AppState>;

/// An answer that carries the receipt of the access it records.
type Receipted<T> = ([(header::HeaderName, header::HeaderValue); 1], Json<T>);

/// The nonce a member's request names for its access ([`receipt::NONCE_HEADER`]), if it is one.
fn access_nonce(headers: &HeaderMap) -> Option<&str> {
    headers.get(receipt::NONCE_HEADER).and_then(|value| value.to_str().ok()).and_then(receipt::parse_nonce)
}

/// The header that hands a member the receipt of its access.
fn receipt_header(receipt: &Receipt) -> [(header::HeaderName, header::HeaderValue); 1] {
    let value = header::HeaderValue::from_str(&receipt.to_header()).expect("base64url is a header value");
    [(header::HeaderName::from_static(receipt::HEADER), value)]
}

/// A protocol value the request got wrong: a bad request, with the parser's reason.
fn bad_value(e: parse::ParseError) -> HttpError {
    HttpError::BadRequest(e.to_string())
}

/// The request's bearer token.
fn token_of(headers: &HeaderMap) -> Result<&str, HttpError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| HttpError::Unauthorized("sign in first: Authorization: Bearer <token>".into()))
}

/// The account of the request's bearer token.
fn bearer(state: &AppState, headers: &HeaderMap) -> Result<AccountId32, HttpError> {
    Ok(state.sessions.account_of(token_of(headers)?)?)
}

/// The account of the request's bearer token, if it is still a member, for a request doing
/// `action`. A request without a valid token is counted ([`AppState::refuse_anonymous`]); a
/// member removed from the coalition loses all its live tokens at its next request, which is
/// recorded once.
async fn member(state: &AppState, headers: &HeaderMap, action: &str) -> Result<AccountId32, HttpError> {
    let account = bearer(state, headers).map_err(|e| state.refuse_anonymous(e))?;
    if let Err(not_until) = state.load.limiters.per_account.check_key(&account.0) {
        state.metrics.rate_limited.inc();
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        return Err(HttpError::TooManyRequests(wait.as_secs().max(1)));
    }
    if !state.chain().is_member(&account_to_address(&account)).await? {
        state.sessions.revoke_account(&account);
        let removed = HttpError::Forbidden("not a member of this coalition".into());
        return Err(state.refuse(Some(&account), action, None, removed));
    }
    Ok(account)
}

/// The dashboard's content security policy: its own script and styles (the page's one inline
/// style sheet), WebAssembly for the wallet's cryptography, the node's WebSocket, no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers every answer carries; HSTS only over TLS (a browser ignores it over HTTP).
pub fn security_headers(tls: bool) -> Vec<(header::HeaderName, header::HeaderValue)> {
    use header::HeaderValue;
    let mut headers = vec![
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    if tls {
        headers.push((header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000")));
    }
    headers
}

async fn add_security_headers(State(tls): State<bool>, mut response: Response) -> Response {
    for (name, value) in security_headers(tls) {
        response.headers_mut().entry(name).or_insert(value);
    }
    response
}

/// The router, with every route of the API, and the dashboard from `web_dir` at `/`; served
/// over TLS when `tls`.
pub fn router(
    state: Shared,
    max_json_bytes: usize,
    web_dir: &std::path::Path,
    tls: bool,
    body_timeout: Duration,
    json_deadline: Duration,
) -> Router {
    // Uploads read their body themselves, within the vault's limit, to record a refusal.
    let uploads = Router::new()
        .route("/api/vault/candidates", post(upload_candidate))
        .route("/api/vault/deltas", post(upload_delta))
        .layer(DefaultBodyLimit::disable());
    if !web_dir.join("index.html").exists() {
        tracing::warn!(dir = %web_dir.display(), "the dashboard is not built: run `npm ci && npm run build` in frontend-api/web");
    }
    let dashboard = tower_http::services::ServeFile::new(web_dir.join("index.html"));
    let assets = tower_http::services::ServeDir::new(web_dir);
    Router::new()
        .route_service("/", dashboard)
        .nest_service("/assets", assets)
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/auth/challenge", post(challenge))
        .route("/api/auth/token", post(token))
        .route("/api/vault/objects/{hash}", get(download))
        .route("/api/vault/data-ids", post(data_ids))
        .route("/api/coalition", get(coalition))
        .route("/api/members", get(members))
        .route("/api/blocks", get(blocks))
        .route("/api/blocks/{index}", get(block))
        .route("/api/rounds/current", get(current_round))
        .route("/api/rounds/{id}", get(round))
        .route("/api/proposals", get(proposals))
        .route("/api/events", get(events))
        .route("/api/calls/{message}", post(call))
        .route("/api/audit/checkpoint", get(checkpoint))
        .route("/api/audit/entries", get(entries))
        .route("/api/audit/proof/inclusion", get(inclusion))
        .route("/api/audit/proof/consistency", get(consistency))
        .route("/api/audit/anchor", post(anchor_now))
        .route("/api/audit/anchors", get(anchors))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_json_bytes))
        // A request trickled a byte at a time never stalls: each has this long in all to be
        // answered (an upload's deadline is its own; a download's body and an event stream
        // run past their answer's head, which this bounds).
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, json_deadline))
        .merge(uploads)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(per_address_limit(&state))
        .layer(axum::middleware::map_response_with_state(tls, add_security_headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The limit per peer address, on every route: a token bucket per address
/// (`tower_governor`); its buckets are pruned with the per-account ones
/// ([`prune_rate_limits`]). Over it: 429, with `Retry-After`.
fn per_address_limit(
    state: &Shared,
) -> tower_governor::GovernorLayer<
    PeerKey,
    governor::middleware::NoOpMiddleware<governor::clock::QuantaInstant>,
    axum::body::Body,
> {
    let rates = state.load.limiters.rates;
    // One token every 1/rate seconds.
    let period = Duration::from_nanos(1_000_000_000 / u64::from(rates.per_address.max(1)));
    let config = tower_governor::governor::GovernorConfigBuilder::default()
        .key_extractor(PeerKey)
        .period(period)
        .burst_size(rates.address_burst.max(1))
        .finish()
        .expect("a nonzero period and burst");
    let limiter = config.limiter().clone();
    *state.address_limiter.lock().expect("limiter lock") = Some(limiter);
    let counted = state.clone();
    tower_governor::GovernorLayer::new(config).error_handler(move |error| match error {
        tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
            counted.metrics.rate_limited.inc();
            HttpError::TooManyRequests(wait_time.max(1)).into_response()
        }
        other => HttpError::Internal(format!("rate limit: {other}")).into_response(),
    })
}

/// The per-address limiter's key: the peer as the accept loop counts it
/// ([`crate::connections::peer_key`]: an IPv6 host is one peer whatever address of its /64 it
/// picks).
#[derive(Debug, Clone, Copy)]
pub struct PeerKey;

impl tower_governor::key_extractor::KeyExtractor for PeerKey {
    type Key = std::net::IpAddr;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<Self::Key, tower_governor::GovernorError> {
        request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| crate::connections::peer_key(info.0.ip()))
            .ok_or(tower_governor::GovernorError::UnableToExtractKey)
    }
}

/// Forget the buckets of addresses and accounts that have not asked for a while (they are
/// full again anyway): the limiters' memory stays bounded by the recent callers.
pub fn prune_rate_limits(state: &AppState) {
    state.load.limiters.per_account.retain_recent();
    if let Some(limiter) = state.address_limiter.lock().expect("limiter lock").as_ref() {
        limiter.retain_recent();
    }
}

/// The bearer scheme of the routes that need a sign-in.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("A token from POST /api/auth/token"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    modifiers(&BearerScheme),
    info(
        title = "TCLearn members' API",
        description = "The vault, sign-in, the coalition and the audit log of one TCLearn coalition."
    ),
    paths(
        health,
        openapi,
        challenge,
        token,
        upload_candidate,
        upload_delta,
        download,
        data_ids,
        coalition,
        members,
        blocks,
        block,
        current_round,
        round,
        proposals,
        events,
        call,
        checkpoint,
        entries,
        inclusion,
        consistency,
        anchor_now,
        anchors
    ),
    components(schemas(
        Health,
        ChallengeRequest,
        ChallengeResponse,
        TokenRequest,
        TokenResponse,
        StoredObject,
        DataIdsRequest,
        DataIdsAnswer,
        CoalitionView,
        MemberView,
        BlockView,
        RoundView,
        BallotView,
        ProposalView,
        CheckpointView,
        EntriesView,
        ProofView,
        AnchorView,
        CallView,
        EventView,
        CallRequest,
        PrivacyDeclaration,
        crate::audit::Entry
    ))
)]
pub struct ApiDoc;

/// Liveness, and the chain's best block.
#[utoipa::path(get, path = "/api/health", responses((status = 200, body = Health)))]
async fn health(State(state): State<Shared>) -> HttpResult<Json<Health>> {
    let best_block =
        state.chain().coalition.client().best_number().await.map_err(|e| HttpError::Chain(e.to_string()))?;
    Ok(Json(Health { status: "ok".into(), best_block, coalition: address(&state.chain().coalition.address) }))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, description = "The OpenAPI document")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A sign-in challenge for a member's account: `tclearn sign-in: api <origin>, coalition
/// <address>, account <account>, nonce <n>, expires <t>`, to be signed wrapped in
/// `<Bytes>…</Bytes>` after checking every field.
#[utoipa::path(post, path = "/api/auth/challenge", request_body = ChallengeRequest,
    responses((status = 200, body = ChallengeResponse), (status = 400, description = "Not an account, or a Host that is not this API's"), (status = 403, description = "Not a member")))]
async fn challenge(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Json(request): Json<ChallengeRequest>,
) -> HttpResult<Json<ChallengeResponse>> {
    let account = parse::account(&request.account).map_err(bad_value)?;
    // HTTP/1.1 names the host in `Host`, HTTP/2 in the URI's authority.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(uri.authority().map(|a| a.as_str()));
    let api = state.sessions.origin_for(host)?;
    if !state.chain().is_member(&account_to_address(&account)).await? {
        return Err(state.refuse_anonymous(HttpError::Forbidden("not a member of this coalition".into())));
    }
    Ok(Json(ChallengeResponse { challenge: state.sessions.challenge(&account, api) }))
}

/// A bearer token for a signed challenge.
#[utoipa::path(post, path = "/api/auth/token", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "Unknown, used or expired challenge, or a bad signature"), (status = 403, description = "Not a member")))]
async fn token(State(state): State<Shared>, Json(request): Json<TokenRequest>) -> HttpResult<Json<TokenResponse>> {
    let account = parse::account(&request.account).map_err(bad_value)?;
    let signature = parse_signature(&request.signature)?;
    match state.sessions.redeem(&account, &request.challenge, &signature) {
        Ok(()) => {}
        // A challenge issued for this account (anyone may ask one): counted as attempts for it,
        // not by it.
        Err(error @ (AuthError::BadSignature | AuthError::ChallengeExpired)) => {
            return Err(state.refuse_sign_in(&account, error.into()))
        }
        // Anyone can name any account with a made-up challenge.
        Err(error) => return Err(state.refuse_anonymous(error.into())),
    }
    if !state.chain().is_member(&account_to_address(&account)).await? {
        // Removed since its challenge: counted with the account's failed sign-ins.
        return Err(state.refuse_sign_in(&account, HttpError::Forbidden("not a member of this coalition".into())));
    }
    let token = state.sessions.issue(&account)?;
    state.metrics.tokens.inc();
    Ok(Json(TokenResponse { token: token.token, expires_at: token.expires_ms }))
}

/// Store a candidate model (a whole ONNX file) after the oracles' model checks.
#[utoipa::path(post, path = "/api/vault/candidates", params(("tclearn-access-nonce" = Option<String>, Header, description = "16 random bytes (32 lowercase hex digits) naming this access: its audit entry and receipt name them")), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = StoredObject, headers(("tclearn-audit-receipt" = String, description = "The signed receipt of this access (base64url JSON, tclearn_api_client::receipt)"))), (status = 401), (status = 413), (status = 422, description = "The model checks refuse it")),
    security(("bearer" = [])))]
async fn upload_candidate(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Receipted<StoredObject>> {
    const ACTION: &str = "upload-candidate";
    let account = member(&state, &headers, ACTION).await?;
    let _turn = turn(&state, &state.load.uploads, &account, ACTION).await?;
    let limit = state.checks.policy.max_bytes.min(state.vault.max_bytes());
    let spooled = spool(&state, &account, ACTION, body, limit).await?;
    let checked = state.checks.checker.check_file(spooled.file.path(), spooled.size, &state.checks.policy).await;
    if let Err(error) = checked {
        return Err(refused_model(&state, &account, ACTION, &spooled.hash, error));
    }
    let file = tokio::fs::File::open(spooled.file.path()).await.map_err(|e| HttpError::Internal(e.to_string()))?;
    let put = state.vault.put_from(&spooled.hash, spooled.size, tokio::io::BufReader::new(file)).await;
    put.map_err(|e| vault_refusal(&state, &account, ACTION, e))?;
    stored(&state, (&account, &headers), ACTION, spooled.hash, spooled.size)
}

/// An upload taken in: its bytes in a file of the spool directory (removed when this is
/// dropped, whatever becomes of the upload), their hash and their size.
struct Spooled {
    file: tempfile::NamedTempFile,
    hash: [u8; 32],
    size: u64,
}

/// Take a request body of at most `limit` bytes into a file of the spool directory, hashing
/// it as it arrives (memory: one frame of the body at a time), refusing (and recording) one
/// that is larger, stalls past the body timeout, or takes longer than [`transfer_deadline`] of
/// the limit in all.
async fn spool(state: &AppState, account: &AccountId32, action: &str, body: Body, limit: u64) -> HttpResult<Spooled> {
    let deadline = transfer_deadline(state.load.transfer_grace, limit);
    match tokio::time::timeout(deadline, spool_body(&state.checks.spool, body, limit)).await {
        Ok(Ok(spooled)) => Ok(spooled),
        Ok(Err(SpoolError::Body(refusal))) => Err(state.refuse(Some(account), action, None, refusal)),
        Ok(Err(SpoolError::Disk(e))) => Err(HttpError::Internal(format!("the spool directory: {e}"))),
        Err(_) => {
            let slow = HttpError::Timeout(format!("the request body took longer than {deadline:?}"));
            Err(state.refuse(Some(account), action, None, slow))
        }
    }
}

/// Why a body was not spooled: the sender's doing, or the disk's.
enum SpoolError {
    Body(HttpError),
    Disk(std::io::Error),
}

async fn spool_body(dir: &std::path::Path, body: Body, limit: u64) -> Result<Spooled, SpoolError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let file = tempfile::NamedTempFile::new_in(dir).map_err(SpoolError::Disk)?;
    let mut writer = tokio::io::BufWriter::new(tokio::fs::File::from_std(file.reopen().map_err(SpoolError::Disk)?));
    let (mut hasher, mut size) = (tclearn_model::hash::ModelHasher::default(), 0u64);
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let bytes = frame.map_err(|e| SpoolError::Body(body_refusal(&e, limit)))?;
        size = size.saturating_add(bytes.len() as u64);
        if size > limit {
            return Err(SpoolError::Body(HttpError::TooLarge(format!("at most {limit} bytes"))));
        }
        hasher.update(&bytes);
        writer.write_all(&bytes).await.map_err(SpoolError::Disk)?;
    }
    writer.flush().await.map_err(SpoolError::Disk)?;
    Ok(Spooled { file, hash: hasher.finish(), size })
}

/// What to answer a body that failed as it was read: it stalled past the body timeout, or was
/// cut off, or over the limit.
fn body_refusal(error: &(dyn std::error::Error + 'static), limit: u64) -> HttpError {
    let stalled =
        std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<tower_http::timeout::TimeoutError>());
    if stalled {
        HttpError::Timeout("the request body stalled".into())
    } else {
        HttpError::TooLarge(format!("at most {limit} bytes"))
    }
}

/// The answer to a store the vault refused: too large (the member's, recorded) or the vault's own
/// failure.
fn vault_refusal(state: &AppState, account: &AccountId32, action: &str, error: VaultError) -> HttpError {
    match error {
        VaultError::TooLarge { .. } => {
            state.refuse(Some(account), action, None, HttpError::TooLarge(error.to_string()))
        }
        error => HttpError::Internal(error.to_string()),
    }
}

/// Requests per second and bursts, per peer address (every route) and per member account
/// (every route that needs a sign-in, after the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Sustained requests per second of one peer address.
    pub per_address: u32,
    /// Requests one address may make at once.
    pub address_burst: u32,
    /// Sustained requests per second of one signed-in account.
    pub per_account: u32,
    /// Requests one account may make at once.
    pub account_burst: u32,
}

/// The rate limiters: token buckets keyed by account here, by peer address in the router's
/// layer (`tower_governor`).
pub struct RateLimits {
    /// The rates.
    pub rates: Rates,
    /// One bucket per signed-in account.
    pub per_account: governor::DefaultKeyedRateLimiter<[u8; 32]>,
}

impl RateLimits {
    /// Limiters for `rates` (a rate of 0 counts as 1).
    pub fn new(rates: Rates) -> Self {
        let quota = governor::Quota::per_second(nonzero(rates.per_account)).allow_burst(nonzero(rates.account_burst));
        Self { rates, per_account: governor::RateLimiter::keyed(quota) }
    }
}

fn nonzero(value: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(value).unwrap_or(std::num::NonZeroU32::MIN)
}

/// The model checks, each upload's in a child process ([`tclearn_sandbox`]): a model that
/// crashes, overflows or exhausts the parser costs a refusal, never the API.
#[derive(Debug, Clone)]
pub struct ModelChecks {
    /// The coalition's rules.
    pub policy: ModelPolicy,
    /// Where they run.
    pub checker: tclearn_sandbox::Checker,
    /// Where an upload waits, in a file, for its checks and the vault
    /// ([`crate::config::VaultConfig::spool_path`]).
    pub spool: std::path::PathBuf,
}

/// What bounds the load members put on the API.
pub struct Load {
    /// Requests per second, per address and per account.
    pub limiters: RateLimits,
    /// Uploads in progress, from the first byte read to the object stored: each a file in the
    /// spool directory (a delta, and the model it is merged onto, in memory).
    pub uploads: Turns,
    /// Downloads in progress, from the object opened to its last byte sent: each holds a chunk
    /// of it (an object stored before chunks, whole).
    pub downloads: Turns,
    /// What an upload or a download is given beyond its size at [`MIN_TRANSFER_RATE`] (the
    /// body timeout).
    pub transfer_grace: Duration,
    /// Event streams open.
    pub event_streams: EventStreams,
    /// Data IDs each member had evaluated in the last day.
    pub data_ids: DataIdQuota,
}

/// A turn for `account`, or the refusal, recorded: 429 for a member over its share, 503 when
/// every turn stayed taken.
async fn turn(state: &AppState, turns: &Turns, account: &AccountId32, action: &str) -> HttpResult<Turn> {
    turns.take(&account.0).await.map_err(|refusal| {
        let error = match refusal {
            NoTurn::Account(_) => {
                state.metrics.rate_limited.inc();
                HttpError::TooManyRequests(1)
            }
            NoTurn::Busy(_) => HttpError::Busy(refusal.to_string()),
        };
        state.refuse(Some(account), action, None, error)
    })
}

/// The answer to an upload the checks did not pass: the member's fault (422), recorded, or the
/// checker's own (500).
fn refused_model(
    state: &AppState,
    account: &AccountId32,
    action: &str,
    object: &[u8; 32],
    error: tclearn_sandbox::CheckError,
) -> HttpError {
    match error {
        tclearn_sandbox::CheckError::Checker(reason) => HttpError::Internal(reason),
        refused => state.refuse(Some(account), action, Some(object), HttpError::Refused(refused.to_string())),
    }
}

/// Query of `POST /api/vault/deltas`.
#[derive(Debug, Deserialize, IntoParams)]
struct DeltaQuery {
    /// The block whose model the delta applies to.
    parent: u32,
}

/// Read a request body of at most `limit` bytes, refusing (and recording) a larger one, one
/// that stalls past the body timeout, or one that takes longer than [`transfer_deadline`] of the
/// limit in all (a body trickled a byte at a time never stalls, and would hold its upload turn).
async fn read_body(state: &AppState, account: &AccountId32, action: &str, body: Body, limit: u64) -> HttpResult<Bytes> {
    let deadline = transfer_deadline(state.load.transfer_grace, limit);
    let read = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit as usize)).await {
        Ok(read) => read,
        Err(_) => {
            let slow = HttpError::Timeout(format!("the request body took longer than {deadline:?}"));
            return Err(state.refuse(Some(account), action, None, slow));
        }
    };
    read.map_err(|e| state.refuse(Some(account), action, None, body_refusal(&e, limit)))
}

/// The slowest rate an upload or a download may go at, bytes per second, on average: a member's
/// link is faster than this (2 Mbit/s), a client that holds a turn by trickling is not.
pub const MIN_TRANSFER_RATE: u64 = 256 << 10;

/// How long moving `bytes` may take: `grace`, and their time at [`MIN_TRANSFER_RATE`].
pub fn transfer_deadline(grace: Duration, bytes: u64) -> Duration {
    grace.saturating_add(Duration::from_secs(bytes / MIN_TRANSFER_RATE))
}

/// Store a weight delta merged onto block `parent`'s model: the merged model is the candidate
/// (anyone can recompute it with `tclearn_model::delta::merge`), checked like any upload.
#[utoipa::path(post, path = "/api/vault/deltas", params(DeltaQuery, ("tclearn-access-nonce" = Option<String>, Header, description = "16 random bytes (32 lowercase hex digits) naming this access: its audit entry and receipt name them")), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = StoredObject, description = "The merged candidate", headers(("tclearn-audit-receipt" = String, description = "The signed receipt of this access (base64url JSON, tclearn_api_client::receipt)"))), (status = 401), (status = 404, description = "No such block, or its model is not in this vault"),
        (status = 413), (status = 422, description = "The delta does not fit the parent, or the merged model fails the checks")),
    security(("bearer" = [])))]
async fn upload_delta(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<DeltaQuery>,
    body: Body,
) -> HttpResult<Receipted<StoredObject>> {
    const ACTION: &str = "upload-delta";
    let account = member(&state, &headers, ACTION).await?;
    let _turn = turn(&state, &state.load.uploads, &account, ACTION).await?;
    let limit = state.checks.policy.max_bytes.min(state.vault.max_bytes());
    let delta = read_body(&state, &account, ACTION, body, limit).await?;
    let Some(block) = state.chain().coalition.block(&state.chain().origin(), query.parent).await? else {
        return Err(state.refuse(
            Some(&account),
            ACTION,
            None,
            HttpError::NotFound(format!("no block {}", query.parent)),
        ));
    };
    let parent_hash = block.parameter_hash.0;
    let parent = match state.vault.get(&parent_hash).await {
        Ok(bytes) => bytes,
        Err(VaultError::NotFound(_)) => {
            let missing = HttpError::NotFound(format!("block {}'s model is not in this vault", query.parent));
            return Err(state.refuse(Some(&account), ACTION, Some(&parent_hash), missing));
        }
        Err(e) => return Err(HttpError::Internal(e.to_string())),
    };
    let merged = match state.checks.checker.merge(&parent, &delta, &state.checks.policy).await {
        Ok((merged, _)) => merged,
        Err(error) => return Err(refused_model(&state, &account, ACTION, &parent_hash, error)),
    };
    let hash = state.vault.put(&merged).await.map_err(|e| vault_refusal(&state, &account, ACTION, e))?;
    stored(&state, (&account, &headers), ACTION, hash, merged.len() as u64)
}

/// Object `hash` (`size` bytes), just stored for `account` (whose request had `headers`): noted
/// as its upload, recorded, and answered with the receipt.
fn stored(
    state: &AppState,
    (account, headers): (&AccountId32, &HeaderMap),
    action: &str,
    hash: [u8; 32],
    size: u64,
) -> HttpResult<Receipted<StoredObject>> {
    {
        let mut uploaders = state.uploaders.lock().expect("uploaders lock");
        let list = uploaders.entry(hash).or_default();
        let address = account_to_address(account);
        if !list.contains(&address) {
            list.push(address);
        }
    }
    let receipt = state.record(Some(account), action, Some(&hash), "ok", Some(headers))?;
    state.metrics.uploads.inc();
    state.metrics.upload_bytes.inc_by(size);
    let stored = StoredObject {
        hash: format!("0x{}", hex::encode(hash)),
        vault_ref: tclearn_model::hash::members_api_ref(&hash),
        size,
    };
    Ok((receipt_header(&receipt), Json(stored)))
}

/// Data IDs by blinded queries (RFC 9497's VOPRF, [`tclearn_api_client::data_ids`]): each
/// blinded identifier times the vault's key, with one proof for the batch. Members only; each
/// request is an audit entry with its count (`ok N`) and is held to the member's daily quota
/// ([`crate::quota`]). The API never sees an identifier.
#[utoipa::path(post, path = "/api/vault/data-ids", request_body = DataIdsRequest, params(("tclearn-access-nonce" = Option<String>, Header, description = "16 random bytes (32 lowercase hex digits) naming this access: its audit entry and receipt name them")), responses((status = 200, body = DataIdsAnswer, headers(("tclearn-audit-receipt" = String, description = "The signed receipt of this access (base64url JSON, tclearn_api_client::receipt)"))), (status = 400), (status = 401), (status = 403), (status = 429, description = "The member's daily quota of data IDs is spent: retry after the seconds the message names")),
    security(("bearer" = [])))]
async fn data_ids(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> HttpResult<Receipted<DataIdsAnswer>> {
    use tclearn_api_client::data_ids::ACTION;
    let account = member(&state, &headers, ACTION).await?;
    let blinded = serde_json::from_slice::<DataIdsRequest>(&body)
        .map_err(|_| "a JSON object with `blinded`, a list of 32-byte hex elements".to_string())
        .and_then(|request| VaultKey::parse(&request).map_err(|e| e.to_string()))
        .map_err(|why| state.refuse(Some(&account), ACTION, None, HttpError::BadRequest(why)))?;
    let asked = blinded.len() as u64;
    let per_day = state.load.data_ids.per_day();
    if asked > per_day {
        let never = HttpError::BadRequest(format!("at most {per_day} data IDs a day: ask for fewer at a time"));
        return Err(state.refuse(Some(&account), ACTION, None, never));
    }
    let (who, now) = (account.to_string(), now_ms());
    if let Err(wait) = state.load.data_ids.take(&who, now, asked) {
        state.metrics.rate_limited.inc();
        let spent = HttpError::TooManyRequests(wait);
        tracing::warn!(%account, asked, per_day, "a member's data-ID quota is spent");
        return Err(state.refuse(Some(&account), ACTION, None, spent));
    }
    let key = state.data_ids.clone();
    let answer = tokio::task::spawn_blocking(move || key.evaluate(blinded)).await;
    let answer = match answer {
        Ok(Ok(answer)) => answer,
        failed => {
            state.load.data_ids.give_back(&who, now, asked);
            let reason = failed.map_or_else(|e| e.to_string(), |e| e.err().map(|e| e.to_string()).unwrap_or_default());
            return Err(HttpError::Internal(reason));
        }
    };
    let receipt = state.record(Some(&account), ACTION, None, &format!("ok {asked}"), Some(&headers))?;
    Ok((receipt_header(&receipt), Json(answer)))
}

/// An object of the vault: block models to members; a candidate to its uploaders and, when one
/// of them proposed it, its round's validators; an object no round names to its uploaders.
#[utoipa::path(get, path = "/api/vault/objects/{hash}", params(("hash" = String, Path, description = "SHA3-256, hex"), ("tclearn-access-nonce" = Option<String>, Header, description = "16 random bytes (32 lowercase hex digits) naming this access: its audit entry and receipt name them")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, headers(("tclearn-audit-receipt" = String, description = "The signed receipt of this access (base64url JSON, tclearn_api_client::receipt)"))), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
async fn download(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    deadlines: Option<axum::Extension<crate::connections::Deadlines>>,
) -> HttpResult<Response> {
    const ACTION: &str = "download";
    let object = parse::hash(&hash).ok();
    let account = member(&state, &headers, ACTION).await?;
    let Some(object) = object else {
        return Err(state.refuse(
            Some(&account),
            ACTION,
            None,
            HttpError::BadRequest("an object is named by 32 bytes of hex".into()),
        ));
    };
    let reader = account_to_address(&account);
    let standing = state.chain().standing(&object).await?;
    let uploaders = state.uploaders.lock().expect("uploaders lock").get(&object).cloned().unwrap_or_default();
    // `member` checked membership.
    if !may_read(&reader, true, &standing, &uploaders) {
        let why = match standing {
            Standing::Candidate { .. } => {
                "a candidate is readable only by its uploaders and, when one of them proposed it, its round's validators"
            }
            _ => "readable only by the member who uploaded it until a round names it",
        };
        return Err(state.refuse(Some(&account), ACTION, Some(&object), HttpError::Forbidden(why.into())));
    }
    let turn = turn(&state, &state.load.downloads, &account, ACTION).await?;
    let opened = match state.vault.open(&object).await {
        Ok(opened) => opened,
        Err(VaultError::NotFound(_)) => {
            return Err(state.refuse(
                Some(&account),
                ACTION,
                Some(&object),
                HttpError::NotFound("no such object in this vault".into()),
            ))
        }
        Err(e) => return Err(HttpError::Internal(e.to_string())),
    };
    let receipt = state.record(Some(&account), ACTION, Some(&object), "ok", Some(&headers))?;
    state.metrics.downloads.inc();
    state.metrics.download_bytes.inc_by(opened.size);
    let size = opened.size;
    let within = transfer_deadline(state.load.transfer_grace, size);
    // The connection is closed at the deadline even if its reader stopped reading (then the
    // body is never asked for more, and could not end itself).
    let deadline = deadlines.map(|axum::Extension(deadlines)| deadlines.set(within));
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_LENGTH, size.to_string())],
        receipt_header(&receipt),
        Body::from_stream(sent_by_deadline(opened.chunks, (turn, deadline), within)),
    )
        .into_response())
}

/// The object's `chunks` as they are opened (one in memory at a time), holding `held` (the
/// download's turn and its connection's deadline) until the last is sent or the body is
/// dropped. A reader too slow to take them within `deadline` gets a cut body (its client sees
/// fewer bytes than the length announced), and the turn back; so does every reader of an
/// object found corrupt half-way (the vault's error ends the body: logged, never sent).
fn sent_by_deadline(
    chunks: futures::stream::BoxStream<'static, Result<Bytes, VaultError>>,
    held: (Turn, Option<crate::connections::Deadline>),
    deadline: Duration,
) -> impl Stream<Item = Result<Bytes, VaultError>> + Send {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + deadline;
    chunks
        .map(move |chunk| {
            let _held = &held;
            chunk.inspect_err(|error| tracing::error!(%error, "a download was cut: the stored object does not open"))
        })
        .take_until(tokio::time::sleep_until(deadline))
}

/// The coalition in brief.
#[utoipa::path(get, path = "/api/coalition", responses((status = 200, body = CoalitionView)))]
async fn coalition(State(state): State<Shared>) -> HttpResult<Json<CoalitionView>> {
    let chain = state.chain();
    let view = state.views.coalition.get(&chain, || coalition_view(&state, &chain)).await?;
    Ok(Json(view.as_ref().clone()))
}

async fn coalition_view(state: &AppState, chain: &Chain) -> HttpResult<CoalitionView> {
    let (c, origin) = (&chain.coalition, chain.origin());
    let (height, open_round, members, spec, params) = tokio::try_join!(
        c.height(&origin),
        c.open_round(&origin),
        c.members(&origin),
        c.evaluation_spec(&origin),
        c.hyperparameters(&origin)
    )?;
    let tip = c.block(&origin, height).await?;
    let anchors = match &chain.anchors {
        Some(anchors) => Some(anchors.address),
        None => c.audit_anchors(&origin).await?,
    };
    Ok(CoalitionView {
        address: address(&c.address),
        tip: height,
        open_round,
        members: members.len() as u32,
        metric: format!("{:?}", spec.metric),
        higher_is_better: spec.higher_is_better,
        performance: tip.as_ref().map(|b| b.performance),
        best_performance: tip.as_ref().map(|b| b.best_performance),
        lambda_ppm: params.lambda_ppm,
        validators_per_round: params.validators_per_round,
        quorum: format!("{}/{}", params.quorum.num, params.quorum.den),
        learning_rate: params.learning_rate_e9 as f64 / 1e9,
        epochs: params.epochs,
        batch_size: params.batch_size,
        min_batch_size: params.min_batch_size,
        min_gain: params.min_gain,
        proposal_cooldown: params.proposal_cooldown,
        privacy_budget: params.privacy_budget.map(|b| PrivacyView { epsilon: b.epsilon_real(), delta: b.delta_real() }),
        audit_anchors: anchors.as_ref().map(address),
        node_rpc: state.public_rpc.clone(),
    })
}

fn c_message(state: &AppState, label: &str) -> HttpResult<tclearn_client::CallData> {
    state.chain().coalition.message(label).map_err(|e| HttpError::Internal(e.to_string()))
}

/// Members and their strengths.
#[utoipa::path(get, path = "/api/members", responses((status = 200, body = Vec<MemberView>)))]
async fn members(State(state): State<Shared>) -> HttpResult<Json<Vec<MemberView>>> {
    let chain = state.chain();
    let views = state.views.members.get(&chain, || member_views(&state, &chain)).await?;
    Ok(Json(views.as_ref().clone()))
}

async fn member_views(state: &AppState, chain: &Chain) -> HttpResult<Vec<MemberView>> {
    let members = chain.members().await?;
    let strengths = tclearn_client::coalition::rules::strengths(&members);
    let spec = chain.coalition.evaluation_spec(&chain.origin()).await?;
    let blocks = all_blocks(state, chain).await?;
    let shares = tclearn_client::coalition::contributions(&blocks, spec.higher_is_better);
    let share = |member: &H160| shares.iter().find(|(m, _)| m == member).map_or(0, |(_, gain)| *gain);
    Ok(members
        .iter()
        .zip(strengths)
        .map(|(m, (_, strength))| MemberView {
            address: address(&m.account),
            samples: m.samples,
            faults: m.faults,
            strength,
            contribution: share(&m.account),
            epsilon_spent: m.privacy_spent.epsilon_real(),
            delta_spent: m.privacy_spent.delta_real(),
        })
        .collect())
}

/// Every block of the model chain, kept per best block.
async fn all_blocks(state: &AppState, chain: &Chain) -> HttpResult<Arc<Vec<tclearn_client::coalition::ModelBlock>>> {
    state
        .views
        .blocks
        .get(chain, || async {
            let origin = chain.origin();
            use futures::{StreamExt, TryStreamExt};
            // The tip's index; then at most `CHAIN_READS_AT_ONCE` reads in flight, however long
            // the chain.
            let height = chain.coalition.height(&origin).await?;
            let blocks: Vec<_> = futures::stream::iter((0..=height).map(|index| chain.coalition.block(&origin, index)))
                .buffered(CHAIN_READS_AT_ONCE)
                .try_collect()
                .await?;
            Ok(blocks.into_iter().flatten().collect())
        })
        .await
}

/// Query of `GET /api/blocks`.
#[derive(Debug, Deserialize, IntoParams)]
struct BlocksQuery {
    /// First block (default 0).
    from: Option<u32>,
    /// At most this many (default and maximum 256).
    limit: Option<u32>,
}

/// The model chain.
#[utoipa::path(get, path = "/api/blocks", params(BlocksQuery), responses((status = 200, body = Vec<BlockView>)))]
async fn blocks(State(state): State<Shared>, Query(query): Query<BlocksQuery>) -> HttpResult<Json<Vec<BlockView>>> {
    let blocks = all_blocks(&state, &state.chain()).await?;
    let from = query.from.unwrap_or(0) as usize;
    let limit = query.limit.unwrap_or(256).min(256) as usize;
    Ok(Json(blocks.iter().skip(from).take(limit).map(BlockView::from).collect()))
}

/// One block of the model chain.
#[utoipa::path(get, path = "/api/blocks/{index}", params(("index" = u32, Path)), responses((status = 200, body = BlockView), (status = 404)))]
async fn block(State(state): State<Shared>, Path(index): Path<u32>) -> HttpResult<Json<BlockView>> {
    let block = state.chain().coalition.block(&state.chain().origin(), index).await?;
    block.map(|b| Json(BlockView::from(&b))).ok_or_else(|| HttpError::NotFound(format!("no block {index}")))
}

async fn round_view(state: &AppState, id: u64) -> HttpResult<Option<RoundView>> {
    let chain = state.chain();
    let origin = chain.origin();
    let Some(round) = chain.round(id).await? else { return Ok(None) };
    let validators = chain.coalition.round_validators(&origin, id).await?;
    let ballots =
        futures::future::try_join_all(validators.iter().map(|v| chain.coalition.ballot(&origin, id, *v))).await?;
    let views = validators.iter().zip(&ballots).map(|(v, b)| BallotView::new(v, b.as_ref())).collect();
    Ok(Some(RoundView::new(&round, views)))
}

/// The round in progress, or the latest one.
#[utoipa::path(get, path = "/api/rounds/current", responses((status = 200, body = RoundView), (status = 404, description = "No round yet")))]
async fn current_round(State(state): State<Shared>) -> HttpResult<Json<RoundView>> {
    let id = match state.chain().coalition.open_round(&state.chain().origin()).await? {
        Some(id) => id,
        None => state
            .chain()
            .round_count()
            .await?
            .checked_sub(1)
            .ok_or_else(|| HttpError::NotFound("no round yet".into()))?,
    };
    round_view(&state, id).await?.map(Json).ok_or_else(|| HttpError::NotFound(format!("no round {id}")))
}

/// One round: phase, validators, reveals, outcome and why.
#[utoipa::path(get, path = "/api/rounds/{id}", params(("id" = u64, Path)), responses((status = 200, body = RoundView), (status = 404)))]
async fn round(State(state): State<Shared>, Path(id): Path<u64>) -> HttpResult<Json<RoundView>> {
    round_view(&state, id).await?.map(Json).ok_or_else(|| HttpError::NotFound(format!("no round {id}")))
}

/// Governance proposals and their tallies (the last 64).
#[utoipa::path(get, path = "/api/proposals", responses((status = 200, body = Vec<ProposalView>)))]
async fn proposals(State(state): State<Shared>) -> HttpResult<Json<Vec<ProposalView>>> {
    let chain = state.chain();
    let views = state
        .views
        .proposals
        .get(&chain, || async {
            let origin = chain.origin();
            let mut views = Vec::new();
            // Proposal ids are 0..n: read until one is missing.
            let mut id = 0u32;
            while let Some(p) = chain.coalition.proposal(&origin, id).await? {
                views.push(ProposalView::from(&p));
                id += 1;
                if id == u32::MAX {
                    break;
                }
            }
            let skip = views.len().saturating_sub(64);
            Ok(views.split_off(skip))
        })
        .await?;
    Ok(Json(views.as_ref().clone()))
}

/// The contract's events as they are emitted on best blocks (server-sent events, each an
/// [`EventView`] in JSON).
#[utoipa::path(get, path = "/api/events", responses((status = 200, content_type = "text/event-stream", body = EventView),
    (status = 429, description = "This peer has its share of event streams open"), (status = 503, description = "Every event stream is taken")))]
async fn events(
    State(state): State<Shared>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> HttpResult<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>> {
    // A stream never ends: each holds a connection for as long as its client likes.
    let Some(counted) =
        state.load.event_streams.per_peer.open(crate::connections::peer_key(peer.ip()), EVENT_STREAMS_PER_PEER)
    else {
        state.metrics.rate_limited.inc();
        return Err(HttpError::TooManyRequests(10));
    };
    let Ok(slot) = state.load.event_streams.total.clone().try_acquire_owned() else {
        return Err(HttpError::Busy("every event stream is taken: try again".into()));
    };
    let receiver = state.events.subscribe();
    let stream = futures::stream::unfold((receiver, counted, slot), |(mut receiver, counted, slot)| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let sse = Event::default().json_data(&event).unwrap_or_default();
                    return Some((Ok(sse), (receiver, counted, slot)));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Event streams open at once from one peer.
pub const EVENT_STREAMS_PER_PEER: usize = 4;

/// The event streams open: in all, and per peer.
pub struct EventStreams {
    /// Slots for all streams (a quarter of the connections).
    pub total: Arc<tokio::sync::Semaphore>,
    /// Streams open per peer.
    pub per_peer: Arc<crate::connections::OpenPerPeer>,
}

impl EventStreams {
    /// At most `total` streams at once.
    pub fn new(total: usize) -> Self {
        Self { total: Arc::new(tokio::sync::Semaphore::new(total.max(1))), per_peer: Arc::default() }
    }
}

/// `POST /api/calls/{message}`: the message's arguments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// `propose`: the tip the candidate builds on.
    pub parent: Option<u32>,
    /// `propose`: the candidate's hash.
    pub candidate: Option<String>,
    /// `propose`: its vault reference.
    pub vault_ref: Option<String>,
    /// `propose`: samples it was trained on.
    pub samples: Option<u64>,
    /// `propose`: the anonymised data IDs, hex.
    pub data_ids: Option<Vec<String>>,
    /// `propose`: the DP-SGD training's declaration (`tclearn train` writes it into
    /// `candidate.json` as `privacy`).
    pub privacy: Option<PrivacyDeclaration>,
    /// `vote`, `enact`: the proposal.
    pub proposal: Option<u32>,
    /// `vote`: aye or nay.
    pub aye: Option<bool>,
    /// `propose_action`: `add_member`, `remove_member`, `revert`, `set_audit_anchors`,
    /// `set_hyperparameter`.
    pub action: Option<String>,
    /// `propose_action`: its argument: an address, a block index, or `name=value` for a
    /// hyperparameter (`lambda_ppm=950000`, `quorum=2/3`, `epochs=3`, ...).
    pub argument: Option<String>,
}

fn required<T>(value: Option<T>, name: &str) -> HttpResult<T> {
    value.ok_or_else(|| HttpError::BadRequest(format!("{name} is required")))
}

/// The call data of `message` with `request`'s arguments.
pub fn call_data(state: &AppState, message: &str, request: CallRequest) -> HttpResult<tclearn_client::CallData> {
    let data = c_message(state, message);
    match message {
        "propose" => {
            let candidate = parse::hash(&required(request.candidate, "candidate")?)
                .map_err(|_| HttpError::BadRequest("candidate is 32 bytes of hex".into()))?;
            let data_ids = required(request.data_ids, "data_ids")?
                .iter()
                .map(|id| {
                    parse::hash(id)
                        .map(H256::from)
                        .map_err(|_| HttpError::BadRequest(format!("data id {id:?} is not 32 bytes of hex")))
                })
                .collect::<HttpResult<Vec<_>>>()?;
            let privacy = request.privacy.map(|p| p.to_declaration()).transpose().map_err(HttpError::BadRequest)?;
            Ok(data?
                .arg(&required(request.parent, "parent")?)
                .arg(&H256::from(candidate))
                .arg(&required(request.vault_ref, "vault_ref")?.into_bytes())
                .arg(&required(request.samples, "samples")?)
                .arg(&data_ids)
                .arg(&privacy))
        }
        "vote" => Ok(data?.arg(&required(request.proposal, "proposal")?).arg(&required(request.aye, "aye")?)),
        "enact" => Ok(data?.arg(&required(request.proposal, "proposal")?)),
        "propose_action" => {
            let argument = required(request.argument, "argument")?;
            let action = parse::action(&required(request.action, "action")?, &argument).map_err(bad_value)?;
            Ok(data?.arg(&action))
        }
        other => Err(HttpError::NotFound(format!("no call {other:?}: propose, propose_action, vote, enact"))),
    }
}

/// A contract call for the signed-in member's wallet to sign: the call data, and the limits a
/// dry run as that member needs. A call the contract would refuse is refused here, with its
/// reason.
#[utoipa::path(post, path = "/api/calls/{message}", params(("message" = String, Path, description = "propose, propose_action, vote, enact"), ("tclearn-access-nonce" = Option<String>, Header, description = "16 random bytes (32 lowercase hex digits) naming this access: its audit entry and receipt name them")),
    request_body = CallRequest, responses((status = 200, body = CallView, headers(("tclearn-audit-receipt" = String, description = "The signed receipt of this access (base64url JSON, tclearn_api_client::receipt)"))), (status = 401), (status = 422, description = "The contract refuses it")),
    security(("bearer" = [])))]
async fn call(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(message): Path<String>,
    Json(request): Json<CallRequest>,
) -> HttpResult<Receipted<CallView>> {
    // The action names a known message only: the path is the caller's text.
    let action = match message.as_str() {
        "propose" => "call-propose",
        "propose_action" => "call-propose_action",
        "vote" => "call-vote",
        "enact" => "call-enact",
        _ => "call",
    };
    let account = member(&state, &headers, action).await?;
    match build_call(&state, &account, &message, request).await {
        Ok(view) => {
            let receipt = state.record(Some(&account), action, None, "ok", Some(&headers))?;
            Ok((receipt_header(&receipt), Json(view)))
        }
        Err(error) => Err(state.refuse(Some(&account), action, None, error)),
    }
}

/// The call of `message` with `request`'s arguments, dry-run as `account`.
async fn build_call(
    state: &AppState,
    account: &AccountId32,
    message: &str,
    request: CallRequest,
) -> HttpResult<CallView> {
    let data = call_data(state, message, request)?.into_bytes();
    let chain = state.chain();
    let client = chain.coalition.client();
    let contract = chain.coalition.address;
    let dry_run = client.dry_run_call(account, contract, &data, 0).await.map_err(|e| {
        match e.contract_error::<CoalitionError>() {
            Some(error) => HttpError::Refused(format!("the coalition refuses: {error:?}")),
            None if matches!(e, tclearn_client::Error::Reverted { .. }) => {
                HttpError::Refused("the coalition refuses this call".into())
            }
            None => HttpError::Chain(e.to_string()),
        }
    })?;
    let (weight, deposit) = client.limits_for(&dry_run);
    let needs_mapping = !client.is_mapped(account).await.map_err(|e| HttpError::Chain(e.to_string()))?;
    Ok(CallView {
        needs_mapping,
        contract: address(&contract),
        call_data: format!("0x{}", hex::encode(&data)),
        weight_ref_time: weight.ref_time,
        weight_proof_size: weight.proof_size,
        storage_deposit_limit: deposit.to_string(),
    })
}

fn checkpoint_view(c: &Checkpoint) -> CheckpointView {
    CheckpointView { size: c.size, root: format!("0x{}", hex::encode(c.root)) }
}

/// The audit log's size and root.
#[utoipa::path(get, path = "/api/audit/checkpoint", responses((status = 200, body = CheckpointView)))]
async fn checkpoint(State(state): State<Shared>) -> Json<CheckpointView> {
    Json(checkpoint_view(&state.audit.checkpoint()))
}

/// Query of `GET /api/audit/entries`.
#[derive(Debug, Deserialize, IntoParams)]
struct EntriesQuery {
    /// First entry (default 0).
    start: Option<u64>,
    /// At most this many (default and maximum 1000).
    count: Option<u64>,
}

/// Audit entries, as stored, to members only (they name accounts, actions and objects; the
/// checkpoint, the consistency proofs and the anchors stay public).
#[utoipa::path(get, path = "/api/audit/entries", params(EntriesQuery), responses((status = 200, body = EntriesView), (status = 401), (status = 403)),
    security(("bearer" = [])))]
async fn entries(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<EntriesQuery>,
) -> HttpResult<Json<EntriesView>> {
    member(&state, &headers, "audit-entries").await?;
    let start = query.start.unwrap_or(0);
    Ok(Json(EntriesView { start, entries: state.audit.entries(start, query.count.unwrap_or(MAX_PAGE)) }))
}

/// Query of the inclusion proof.
#[derive(Debug, Deserialize, IntoParams)]
struct InclusionQuery {
    /// The entry.
    index: u64,
}

/// An inclusion proof of one entry in the current checkpoint.
/// To members only: its hashes would let anyone test a guessed entry.
#[utoipa::path(get, path = "/api/audit/proof/inclusion", params(InclusionQuery), responses((status = 200, body = ProofView), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
async fn inclusion(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<InclusionQuery>,
) -> HttpResult<Json<ProofView>> {
    member(&state, &headers, "audit-proof").await?;
    let (checkpoint, proof) = state.audit.inclusion(query.index).map_err(|e| HttpError::NotFound(e.to_string()))?;
    Ok(Json(ProofView { checkpoint: checkpoint_view(&checkpoint), proof: hex::encode(proof) }))
}

/// Query of the consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
struct ConsistencyQuery {
    /// The earlier size.
    from: u64,
}

/// A consistency proof from an earlier size to the current checkpoint.
#[utoipa::path(get, path = "/api/audit/proof/consistency", params(ConsistencyQuery), responses((status = 200, body = ProofView), (status = 404)))]
async fn consistency(
    State(state): State<Shared>,
    Query(query): Query<ConsistencyQuery>,
) -> HttpResult<Json<ProofView>> {
    let (checkpoint, proof) = state.audit.consistency(query.from).map_err(|e| HttpError::NotFound(e.to_string()))?;
    Ok(Json(ProofView { checkpoint: checkpoint_view(&checkpoint), proof: hex::encode(proof) }))
}

/// Anchor the audit log's checkpoint on chain now (any signed-in member may ask).
#[utoipa::path(post, path = "/api/audit/anchor", responses((status = 200, body = AnchorView), (status = 401), (status = 422, description = "Nothing new to anchor")),
    security(("bearer" = [])))]
async fn anchor_now(State(state): State<Shared>, headers: HeaderMap) -> HttpResult<Json<AnchorView>> {
    member(&state, &headers, "anchor").await?;
    match crate::anchor(&state).await {
        Ok(Some(view)) => Ok(Json(view)),
        Ok(None) => Err(HttpError::Refused("nothing new to anchor".into())),
        Err(e) => Err(e),
    }
}

/// The anchors on chain, oldest first (empty without an audit-anchors contract).
#[utoipa::path(get, path = "/api/audit/anchors", responses((status = 200, body = Vec<AnchorView>)))]
async fn anchors(State(state): State<Shared>) -> HttpResult<Json<Vec<AnchorView>>> {
    let chain = state.chain();
    let Some(contract) = &chain.anchors else { return Ok(Json(Vec::new())) };
    let views = state
        .views
        .anchors
        .get(&chain, || async {
            let all = contract.all(&chain.origin()).await.map_err(|e| HttpError::Chain(e.to_string()))?;
            Ok(all
                .iter()
                .enumerate()
                .map(|(index, a)| AnchorView {
                    index: index as u64,
                    log_length: a.log_length,
                    root: format!("{:#x}", a.root),
                })
                .collect())
        })
        .await?;
    Ok(Json(views.as_ref().clone()))
}

/// Prometheus metrics.
async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    let mut text = String::new();
    let families = state.metrics.registry.gather();
    match prometheus::TextEncoder::new().encode_utf8(&families, &mut text) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => HttpError::Internal(e.to_string()).into_response(),
    }
}

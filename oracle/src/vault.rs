//! Fetching models from the vault over HTTP(S), checked against the hash the chain records.
//!
//! A vault reference is chosen by the proposer, so it is never trusted as a URL: it is a path
//! under the vault's base URL, or an absolute URL whose origin (scheme, host and port) is one
//! the operator configured. Anything else (another host, a link-local metadata address, a
//! `file:` URL, credentials in the URL) is refused without a request: the candidate's fault, not
//! a request from the validator's network. Origins are HTTPS, except on the loopback interface.
//! The body is read up to the coalition's model size limit within one deadline, then its
//! SHA3-256 must equal the hash on chain. URLs in errors and logs never show a query string
//! (where a token could be). The client is reqwest's, with rustls and the system's roots; it
//! follows no redirect and no proxy: a redirect is the vault's answer, not a new request.
//!
//! With the coalition's members' API as the vault ([`Vault::members_api`]), a reference must be
//! `objects/0x<hash>` naming exactly the candidate's hash, and the oracle signs in as the
//! validator it is (an sr25519 signature of the API's challenge, by the members' API client's
//! one sign-in) to read it: the API serves a candidate only to its proposer and its round's
//! validators.

use std::{sync::Arc, time::Duration};
use tclearn_api_client::client::{http_builder, ApiClient, ClientError};
use tclearn_client::{Keypair, H160};
use tclearn_model::hash::{members_api_ref, model_hash};

/// Why a model could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The reference is not usable (the proposer's choice): not UTF-8, not a vault path, or
    /// an origin the operator did not allow.
    #[error("vault reference: {0}")]
    Reference(String),
    /// The operator's configuration cannot work (no base URL for a path, a plain-HTTP origin
    /// off loopback, credentials in a URL).
    #[error("vault configuration: {0}")]
    Config(String),
    /// The HTTP client could not be set up (TLS roots).
    #[error("HTTP client: {0}")]
    Tls(String),
    /// The request failed (connection, timeout): worth retrying.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The vault answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is over the limit.
    #[error("{url}: more than {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        max: u64,
    },
    /// The bytes are not the model the chain names.
    #[error("{url}: SHA3-256 is 0x{found}, the chain says 0x{expected}")]
    HashMismatch {
        /// The URL.
        url: String,
        /// Hex of the hash on chain.
        expected: String,
        /// Hex of the fetched bytes' hash.
        found: String,
    },
}

impl VaultError {
    /// Whether this is the candidate's fault, a definitive answer about it that every honest
    /// validator gets: bytes that are not the candidate, over the limit, or a reference no vault
    /// serves. Everything else (the network, TLS, any HTTP status including redirects and
    /// 401/403, this validator's configuration) is the validator's side: tried again later,
    /// never a vote.
    pub fn is_candidates_fault(&self) -> bool {
        matches!(self, VaultError::HashMismatch { .. } | VaultError::TooLarge { .. } | VaultError::Reference(_))
    }
}

/// The origin (`scheme://host[:port]`) of an `http(s)` URL, lowercased, and whether it is
/// allowed in plain HTTP (its host is loopback).
fn origin(url: &str) -> Result<(String, bool), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{}: {e}", redact(url)))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("{}: not http or https", redact(url)));
    }
    let authority = uri.authority().ok_or_else(|| format!("{}: no host", redact(url)))?;
    if authority.as_str().contains('@') {
        return Err(format!("{}: credentials in a URL end up in logs; give them another way", redact(url)));
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok((format!("{scheme}://{}:{port}", authority.host().to_ascii_lowercase()), loopback))
}

/// Whether the HTTP client, which parses URLs by other rules (WHATWG's) than [`origin`]
/// (`http::Uri`), reads `url` at the same origin: a reference that one parser reads as another
/// host or port than the other, or that the client cannot read at all, is refused.
fn same_origin_when_sent(url: &str) -> Result<(), VaultError> {
    let refused = |why: &str| VaultError::Reference(format!("{}: {why}", redact(url)));
    let (checked, _) = origin(url).map_err(VaultError::Reference)?;
    let sent = reqwest::Url::parse(url).map_err(|e| refused(&e.to_string()))?;
    let host = sent.host_str().ok_or_else(|| refused("no host"))?.to_ascii_lowercase();
    let port = sent.port_or_known_default().ok_or_else(|| refused("no port"))?;
    if format!("{}://{host}:{port}", sent.scheme()) != checked {
        return Err(refused("its origin reads differently to the HTTP client"));
    }
    Ok(())
}

/// `url` without its query string or credentials, for errors and logs.
pub fn redact(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    match without_query.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|authority| authority.rsplit_once('@')) {
            Some((_, host)) => format!("{scheme}://…@{host}{}", &rest[rest.find('/').unwrap_or(rest.len())..]),
            None => without_query.to_string(),
        },
        None => without_query.to_string(),
    }
}

/// A vault client.
#[derive(Clone)]
pub struct Vault {
    base: Option<String>,
    /// Origins absolute references may name: the base's and the configured ones.
    origins: Vec<String>,
    client: reqwest::Client,
    max_bytes: u64,
    timeout: Duration,
    /// The coalition's members' API, signed in to as the validator.
    api: Option<Arc<ApiClient>>,
}

impl Vault {
    /// A client for references under `base` (if any) and absolute references at `base`'s origin
    /// or one of `origins`, reading at most `max_bytes` per model within `timeout`. Every origin
    /// must be HTTPS, or HTTP on loopback.
    pub fn new(base: Option<&str>, origins: &[String], max_bytes: u64, timeout: Duration) -> Result<Self, VaultError> {
        let mut allowed = Vec::new();
        for url in base.into_iter().chain(origins.iter().map(String::as_str)) {
            let (origin, loopback) = origin(url).map_err(VaultError::Config)?;
            if origin.starts_with("http://") && !loopback {
                return Err(VaultError::Config(format!(
                    "{}: plain HTTP is allowed only on loopback; use https",
                    redact(url)
                )));
            }
            allowed.push(origin);
        }
        // The system's roots, checked at start as they are read at the first handshake: an oracle
        // without them stops here rather than fail every fetch and never vote.
        if rustls_native_certs::load_native_certs().certs.is_empty() {
            return Err(VaultError::Tls("no root certificates found on this system".into()));
        }
        let client = http_builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .http1_only()
            .build()
            .map_err(|e| VaultError::Tls(e.to_string()))?;
        Ok(Self {
            base: base.map(|b| b.trim_end_matches('/').to_string()),
            origins: allowed,
            client,
            max_bytes,
            timeout,
            api: None,
        })
    }

    /// A client for the members' API at `root` of the coalition at `coalition`, signing in with
    /// `key` (only to sign-in messages naming that API and that coalition): references must
    /// name the candidate's own object (`objects/0x<hash>`).
    pub fn members_api(
        root: &str,
        coalition: H160,
        key: Keypair,
        max_bytes: u64,
        timeout: Duration,
    ) -> Result<Self, VaultError> {
        let root = root.trim_end_matches('/').to_string();
        let mut vault = Self::new(Some(&format!("{root}/api/vault")), &[], max_bytes, timeout)?;
        vault.api = Some(Arc::new(ApiClient::new(&root, key, vault.client.clone()).for_coalition(coalition)));
        Ok(vault)
    }

    /// One GET of `url` within `deadline`, with `token` as its bearer: its status, and its whole
    /// body (at most `max_bytes`) if the status is a success (an error's body is never read: its
    /// size says nothing about the candidate).
    async fn get(
        &self,
        url: &str,
        token: Option<String>,
        deadline: tokio::time::Instant,
    ) -> Result<(u16, Vec<u8>), VaultError> {
        let shown = redact(url);
        let transport = |reason: String| VaultError::Transport { url: shown.clone(), reason };
        let late = || transport(format!("the fetch did not finish within {:?}", self.timeout));
        let mut request = self.client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = tokio::time::timeout_at(deadline, request.send())
            .await
            .map_err(|_| late())?
            .map_err(|e| transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Ok((status, Vec::new()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .map_err(|_| late())?
            .map_err(|e| transport(e.without_url().to_string()))?
        {
            if (bytes.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(VaultError::TooLarge { url: shown, max: self.max_bytes });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
    }

    /// A bearer token for the members' API, within `deadline`.
    async fn token(&self, api: &ApiClient, deadline: tokio::time::Instant) -> Result<String, VaultError> {
        let late = || VaultError::Transport {
            url: redact(api.base()),
            reason: format!("signing in did not finish within {:?}", self.timeout),
        };
        match tokio::time::timeout_at(deadline, api.token()).await.map_err(|_| late())? {
            Ok(token) => Ok(token),
            Err(ClientError::Refused { url, status, .. }) => Err(VaultError::Status { url: redact(&url), status }),
            Err(ClientError::Transport { url, reason }) => Err(VaultError::Transport { url: redact(&url), reason }),
            Err(ClientError::Challenge { url, reason }) => {
                Err(VaultError::Transport { url: redact(&url), reason: reason.to_string() })
            }
            Err(ClientError::Receipt { url, reason }) => Err(VaultError::Transport { url: redact(&url), reason }),
            Err(error @ ClientError::DataIds(_)) => {
                Err(VaultError::Transport { url: redact(api.base()), reason: error.to_string() })
            }
        }
    }

    /// The URL of `vault_ref`, as it will be requested: one the HTTP client reads as the same
    /// origin the checks read ([`same_origin_when_sent`]).
    pub fn url(&self, vault_ref: &[u8]) -> Result<String, VaultError> {
        let url = self.resolve(vault_ref)?;
        same_origin_when_sent(&url)?;
        Ok(url)
    }

    fn resolve(&self, vault_ref: &[u8]) -> Result<String, VaultError> {
        let reference = std::str::from_utf8(vault_ref).map_err(|_| VaultError::Reference("not UTF-8".into()))?.trim();
        if reference.contains("://") {
            let (origin, _) = origin(reference).map_err(VaultError::Reference)?;
            if !self.origins.contains(&origin) {
                return Err(VaultError::Reference(format!(
                    "{} is not at a vault origin this validator allows",
                    redact(reference)
                )));
            }
            return Ok(reference.to_string());
        }
        // `%2e` is a dot to the HTTP client, which resolves `%2e%2e` as `..`.
        let bad_part = |part: &str| {
            part == ".." || part == "." || part.contains('\\') || part.to_ascii_lowercase().contains("%2e")
        };
        if reference.is_empty() || reference.contains(['?', '#', '@']) || reference.split('/').any(bad_part) {
            return Err(VaultError::Reference(format!("{reference:?} is neither a URL nor a vault path")));
        }
        let base = self.base.as_ref().ok_or_else(|| {
            VaultError::Config(format!("{reference:?} is a vault path and no vault URL is configured"))
        })?;
        Ok(format!("{base}/{}", reference.trim_start_matches('/')))
    }

    /// Fetch `vault_ref` and check that its SHA3-256 is `expected`.
    pub async fn fetch(&self, vault_ref: &[u8], expected: &[u8; 32]) -> Result<Vec<u8>, VaultError> {
        if self.api.is_some() {
            let reference = std::str::from_utf8(vault_ref).unwrap_or_default().trim();
            let own = members_api_ref(expected);
            if reference != own && reference != own.replace("/0x", "/") {
                return Err(VaultError::Reference(format!(
                    "{reference:?} does not name the candidate's object in the coalition's vault ({own})"
                )));
            }
        }
        let full_url = self.url(vault_ref)?;
        full_url.parse::<http::Uri>().map_err(|e| VaultError::Reference(format!("{}: {e}", redact(&full_url))))?;
        let url = redact(&full_url);
        // One deadline for the whole fetch, sign-in included: a body trickling a byte at a time
        // is cut off too.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut signed_in_again = false;
        let bytes = loop {
            let token = match &self.api {
                Some(api) => Some(self.token(api, deadline).await?),
                None => None,
            };
            let (status, bytes) = self.get(&full_url, token, deadline).await?;
            match (status, &self.api) {
                (200..=299, _) => break bytes,
                // The token expired or the API restarted: sign in once more.
                (401, Some(api)) if !signed_in_again => {
                    api.forget_token().await;
                    signed_in_again = true;
                }
                (status, _) => return Err(VaultError::Status { url, status }),
            }
        };
        let found = model_hash(&bytes);
        if &found != expected {
            return Err(VaultError::HashMismatch { url, expected: hex::encode(expected), found: hex::encode(found) });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serve `body` with `status` to every request, on a loopback port.
    async fn serve(status: &'static str, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(&[head.as_bytes(), &body].concat()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn fetches_are_checked_against_the_hash_and_the_size_limit() {
        let model = b"model bytes".to_vec();
        let hash = model_hash(&model);
        let url = serve("200 OK", model.clone()).await;
        let vault = Vault::new(Some(&url), &[], 1024, Duration::from_secs(5)).unwrap();
        assert_eq!(vault.fetch(b"models/a.onnx", &hash).await.unwrap(), model);
        assert_eq!(
            vault.fetch(format!("{url}/x").as_bytes(), &hash).await.unwrap(),
            model,
            "absolute URLs at the vault too"
        );

        let wrong = vault.fetch(b"a.onnx", &[0; 32]).await.unwrap_err();
        assert!(matches!(wrong, VaultError::HashMismatch { .. }) && wrong.is_candidates_fault(), "{wrong}");
        let small = Vault::new(Some(&url), &[], 4, Duration::from_secs(5)).unwrap();
        let too_large = small.fetch(b"a.onnx", &hash).await.unwrap_err();
        assert!(
            matches!(too_large, VaultError::TooLarge { max: 4, .. }) && too_large.is_candidates_fault(),
            "{too_large}"
        );

        // The vault's answers about itself are the validator's side: tried again, never a vote.
        for status in ["404 Not Found", "302 Found", "401 Unauthorized", "403 Forbidden", "500 Internal Server Error"] {
            let vault = Vault::new(Some(&serve(status, Vec::new()).await), &[], 1024, Duration::from_secs(5)).unwrap();
            let error = vault.fetch(b"a.onnx", &hash).await.unwrap_err();
            assert!(matches!(error, VaultError::Status { .. }) && !error.is_candidates_fault(), "{status}: {error}");
        }
        let closed = Vault::new(Some("http://127.0.0.1:9"), &[], 1024, Duration::from_secs(5)).unwrap();
        assert!(!closed.fetch(b"a.onnx", &hash).await.unwrap_err().is_candidates_fault());
    }

    #[tokio::test]
    async fn a_body_that_trickles_is_cut_off_at_the_deadline() {
        // 40 bytes, one every 100 ms: each frame arrives well within the 1 s timeout, the whole
        // body does not.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request).await;
                    let _ =
                        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n").await;
                    for _ in 0..40 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if stream.write_all(b"x").await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let vault = Vault::new(Some(&url), &[], 1024, Duration::from_secs(1)).unwrap();
        let started = std::time::Instant::now();
        let error = vault.fetch(b"slow.onnx", &[0; 32]).await.unwrap_err();
        assert!(error.to_string().contains("did not finish within 1s"), "{error}");
        assert!(started.elapsed() < Duration::from_millis(2_500), "{:?}", started.elapsed());
        assert!(!error.is_candidates_fault());
    }

    #[test]
    fn references_resolve_under_the_base_or_at_an_allowed_origin_and_nowhere_else() {
        let mirror = vec!["https://mirror.example:8443".to_string()];
        let vault = Vault::new(Some("https://vault.example/models/"), &mirror, 1, Duration::from_secs(1)).unwrap();
        assert_eq!(
            vault.url(b"round-1/candidate.onnx").unwrap(),
            "https://vault.example/models/round-1/candidate.onnx"
        );
        assert_eq!(
            vault.url(b"https://vault.example/elsewhere/m.onnx").unwrap(),
            "https://vault.example/elsewhere/m.onnx"
        );
        assert_eq!(vault.url(b"https://MIRROR.example:8443/m.onnx").unwrap(), "https://MIRROR.example:8443/m.onnx");
        // A proposer's reference aimed at the validator's network, or at anything but the vault.
        for bad in [
            &b"http://169.254.169.254/latest/meta-data/"[..],
            b"http://127.0.0.1:9944/",
            b"https://other.example/m.onnx",
            b"https://mirror.example/m.onnx",
            b"https://vault.example:444/m.onnx",
            b"http://vault.example/models/m.onnx",
            b"https://user:secret@vault.example/m.onnx",
            b"file:///etc/passwd",
            b"ftp://x/y",
            b"../keys",
            b"a/../../b",
            b"a/./b",
            b"a?redirect=http://x",
            b"a/%2e%2e/%2E%2E/keys",
            b"https://vault.example:99999/m.onnx",
            b"https://vault.example:+443/m.onnx",
            b"",
            &[0xff, 0xfe],
        ] {
            let error = vault.url(bad).unwrap_err();
            assert!(matches!(error, VaultError::Reference(_)) && error.is_candidates_fault(), "{bad:?}: {error}");
            assert!(!error.to_string().contains("secret@"), "credentials stay out of errors: {error}");
        }
        let no_base = Vault::new(None, &[], 1, Duration::from_secs(1)).unwrap();
        let error = no_base.url(b"a.onnx").unwrap_err();
        assert!(error.to_string().contains("no vault URL") && !error.is_candidates_fault(), "{error}");
    }

    #[tokio::test]
    async fn through_the_members_api_a_reference_names_the_candidates_own_object_and_nothing_else() {
        let key = Keypair::dev("Bob").unwrap();
        // Port 9 (discard) on loopback: a request would fail as transport, not as a reference.
        let vault = Vault::members_api("http://127.0.0.1:9/", H160::zero(), key, 1024, Duration::from_secs(2)).unwrap();
        let expected = [0xAB; 32];
        assert_eq!(
            vault.url(members_api_ref(&expected).as_bytes()).unwrap(),
            format!("http://127.0.0.1:9/api/vault/objects/0x{}", "ab".repeat(32))
        );
        for other in [
            members_api_ref(&[0xCD; 32]),
            format!("http://127.0.0.1:9/api/vault/objects/0x{}", "ab".repeat(32)),
            "good.onnx".into(),
            format!("objects/0x{}/../x", "ab".repeat(32)),
        ] {
            let error = vault.fetch(other.as_bytes(), &expected).await.unwrap_err();
            assert!(matches!(error, VaultError::Reference(_)) && error.is_candidates_fault(), "{other}: {error}");
        }
        let unreachable = vault.fetch(members_api_ref(&expected).as_bytes(), &expected).await.unwrap_err();
        assert!(!unreachable.is_candidates_fault(), "{unreachable}");
        let without_prefix =
            vault.fetch(format!("objects/{}", "ab".repeat(32)).as_bytes(), &expected).await.unwrap_err();
        assert!(!without_prefix.is_candidates_fault(), "the hash without 0x names it too: {without_prefix}");
    }

    #[test]
    fn origins_are_https_except_on_loopback_and_carry_no_credentials() {
        let new = |base: &str| Vault::new(Some(base), &[], 1, Duration::from_secs(1));
        assert!(new("https://vault.example").is_ok());
        assert!(new("http://127.0.0.1:8080/v").is_ok());
        assert!(new("http://localhost:8080").is_ok());
        assert!(new("http://[::1]:8080").is_ok());
        let plain = new("http://vault.example").err().unwrap().to_string();
        assert!(plain.contains("plain HTTP is allowed only on loopback"), "{plain}");
        let secret = new("https://bob:hunter2@vault.example").err().unwrap().to_string();
        assert!(secret.contains("credentials") && !secret.contains("hunter2"), "{secret}");
        assert!(Vault::new(None, &["http://10.0.0.5".into()], 1, Duration::from_secs(1)).is_err());
        assert_eq!(redact("https://vault.example/m.onnx?token=abc#x"), "https://vault.example/m.onnx");
        assert_eq!(redact("https://bob:pw@vault.example/m.onnx"), "https://…@vault.example/m.onnx");
    }
}

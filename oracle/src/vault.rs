//! Fetching models from the vault over HTTP(S), checked against the hash the chain records.
//!
//! A vault reference is UTF-8: an absolute `http://` or `https://` URL, or a path under the
//! vault's base URL. The body is read up to the coalition's model size limit, then its SHA3-256
//! must equal the hash on chain. The client is hyper's, with rustls and the system's roots.

use crate::evaluate::model_hash;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use std::time::Duration;

/// Why a model could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The reference is not usable.
    #[error("vault reference: {0}")]
    Reference(String),
    /// The TLS setup failed.
    #[error("TLS roots: {0}")]
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
    /// Whether trying again later may succeed (the vault or the network), as opposed to a
    /// definitive answer about the candidate.
    pub fn is_transient(&self) -> bool {
        match self {
            VaultError::Transport { .. } | VaultError::Tls(_) => true,
            VaultError::Status { status, .. } => *status >= 500 || *status == 404 || *status == 429,
            _ => false,
        }
    }
}

/// A vault client.
#[derive(Clone)]
pub struct Vault {
    base: Option<String>,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    max_bytes: u64,
    timeout: Duration,
}

impl Vault {
    /// A client for references under `base` (if any), reading at most `max_bytes` per model.
    pub fn new(base: Option<&str>, max_bytes: u64, timeout: Duration) -> Result<Self, VaultError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| VaultError::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { base: base.map(|b| b.trim_end_matches('/').to_string()), client, max_bytes, timeout })
    }

    /// The URL of `vault_ref`.
    pub fn url(&self, vault_ref: &[u8]) -> Result<String, VaultError> {
        let reference =
            std::str::from_utf8(vault_ref).map_err(|_| VaultError::Reference("not UTF-8".into()))?.trim();
        if reference.starts_with("http://") || reference.starts_with("https://") {
            return Ok(reference.to_string());
        }
        if reference.is_empty() || reference.contains("://") || reference.split('/').any(|part| part == "..") {
            return Err(VaultError::Reference(format!("{reference:?} is neither a URL nor a vault path")));
        }
        let base = self.base.as_ref().ok_or_else(|| {
            VaultError::Reference(format!("{reference:?} is a vault path and no vault URL is configured"))
        })?;
        Ok(format!("{base}/{}", reference.trim_start_matches('/')))
    }

    /// Fetch `vault_ref` and check that its SHA3-256 is `expected`.
    pub async fn fetch(&self, vault_ref: &[u8], expected: &[u8; 32]) -> Result<Vec<u8>, VaultError> {
        let url = self.url(vault_ref)?;
        let transport = |reason: String| VaultError::Transport { url: url.clone(), reason };
        let uri: hyper::Uri = url.parse().map_err(|e| VaultError::Reference(format!("{url}: {e}")))?;
        // One deadline for the whole fetch: a body trickling a byte at a time is cut off too.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let late = || transport(format!("the fetch did not finish within {:?}", self.timeout));
        let response = tokio::time::timeout_at(deadline, self.client.get(uri))
            .await
            .map_err(|_| late())?
            .map_err(|e| transport(e.to_string()))?;
        if !response.status().is_success() {
            return Err(VaultError::Status { url, status: response.status().as_u16() });
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        loop {
            let frame = tokio::time::timeout_at(deadline, body.frame()).await.map_err(|_| late())?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| transport(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if (bytes.len() + data.len()) as u64 > self.max_bytes {
                    return Err(VaultError::TooLarge { url, max: self.max_bytes });
                }
                bytes.extend_from_slice(&data);
            }
        }
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
        let vault = Vault::new(Some(&url), 1024, Duration::from_secs(5)).unwrap();
        assert_eq!(vault.fetch(b"models/a.onnx", &hash).await.unwrap(), model);
        assert_eq!(vault.fetch(format!("{url}/x").as_bytes(), &hash).await.unwrap(), model, "absolute URLs too");

        let wrong = vault.fetch(b"a.onnx", &[0; 32]).await.unwrap_err();
        assert!(matches!(wrong, VaultError::HashMismatch { .. }) && !wrong.is_transient(), "{wrong}");
        let small = Vault::new(Some(&url), 4, Duration::from_secs(5)).unwrap();
        let too_large = small.fetch(b"a.onnx", &hash).await.unwrap_err();
        assert!(matches!(too_large, VaultError::TooLarge { max: 4, .. }), "{too_large}");

        let missing = Vault::new(Some(&serve("404 Not Found", Vec::new()).await), 1024, Duration::from_secs(5)).unwrap();
        let error = missing.fetch(b"a.onnx", &hash).await.unwrap_err();
        assert!(matches!(error, VaultError::Status { status: 404, .. }) && error.is_transient(), "{error}");
        let closed = Vault::new(Some("http://127.0.0.1:9"), 1024, Duration::from_secs(5)).unwrap();
        assert!(closed.fetch(b"a.onnx", &hash).await.unwrap_err().is_transient());
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
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n").await;
                    for _ in 0..40 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if stream.write_all(b"x").await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let vault = Vault::new(Some(&url), 1024, Duration::from_secs(1)).unwrap();
        let started = std::time::Instant::now();
        let error = vault.fetch(b"slow.onnx", &[0; 32]).await.unwrap_err();
        assert!(error.to_string().contains("did not finish within 1s"), "{error}");
        assert!(started.elapsed() < Duration::from_millis(2_500), "{:?}", started.elapsed());
        assert!(error.is_transient());
    }

    #[test]
    fn references_resolve_under_the_base_or_are_refused() {
        let vault = Vault::new(Some("https://vault.example/models/"), 1, Duration::from_secs(1)).unwrap();
        assert_eq!(vault.url(b"round-1/candidate.onnx").unwrap(), "https://vault.example/models/round-1/candidate.onnx");
        assert_eq!(vault.url(b"https://other.example/m.onnx").unwrap(), "https://other.example/m.onnx");
        for bad in [&b"../secrets"[..], b"a/../../b", b"ftp://x/y", b"", &[0xff, 0xfe]] {
            assert!(matches!(vault.url(bad), Err(VaultError::Reference(_))), "{bad:?}");
        }
        let no_base = Vault::new(None, 1, Duration::from_secs(1)).unwrap();
        assert!(no_base.url(b"a.onnx").unwrap_err().to_string().contains("no vault URL"));
    }
}

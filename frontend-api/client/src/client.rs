//! A Rust client of the members' API: sign in with an sr25519 key, upload, download. The one
//! sign-in of every TCLearn program: `tclearn-api upload`, the member's command line, and the
//! oracle reading candidates from the vault.
//!
//! Sign-in answers the API's challenge with an sr25519 signature and gets a bearer token, which
//! [`ApiClient::token`] keeps until it nears its expiry and renews after.

use crate::views::{AnchorView, ChallengeResponse, DataIdKeyView, StoredObject, TokenResponse};
use tclearn_client::Keypair;
use tokio::sync::Mutex;

/// A token this close to its expiry (ms) is renewed rather than sent.
const RENEW_BEFORE_MS: u64 = 10_000;
/// Most bytes read of a JSON answer: a members' API that streams more is refused, not held in
/// memory (an oracle signs in on every tick).
pub const MAX_JSON_BYTES: usize = 16 << 20;
/// Most bytes read of an error's body, for its message.
const MAX_ERROR_BYTES: usize = 64 << 10;

/// Why a call to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request did not complete.
    #[error("{url}: {reason}")]
    Transport {
        /// What was asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The API refused, with its message.
    #[error("{url}: HTTP {status}: {message}")]
    Refused {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
        /// The API's `error` message.
        message: String,
    },
}

/// A session with the API at `base`, signed in as `key` when a call needs it.
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    key: Keypair,
    /// The current bearer token and when it expires (ms since the Unix epoch).
    token: Mutex<Option<(String, u64)>>,
}

/// A reqwest client builder for the API's clients: rustls on ring, which it installs as the
/// process's provider first.
pub fn http_builder() -> reqwest::ClientBuilder {
    crate::install_crypto_provider();
    reqwest::Client::builder()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn answer(
    url: &str,
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, ClientError> {
    let response =
        response.map_err(|e| ClientError::Transport { url: url.into(), reason: e.without_url().to_string() })?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = bounded(url, response, MAX_ERROR_BYTES).await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = body["error"].as_str().unwrap_or("no message").to_string();
    Err(ClientError::Refused { url: url.into(), status, message })
}

/// The body of `response`, read chunk by chunk up to `max` bytes: more is an error, and never
/// in memory.
async fn bounded(url: &str, mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ClientError> {
    let transport = |reason: String| ClientError::Transport { url: url.into(), reason };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(e.without_url().to_string()))? {
        if body.len() + chunk.len() > max {
            return Err(transport(format!("an answer of more than {max} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn json<T: serde::de::DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T, ClientError> {
    let body = bounded(url, response, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&body)
        .map_err(|e| ClientError::Transport { url: url.into(), reason: format!("not JSON: {e}") })
}

/// A read of one of the API's public routes (`/api/coalition`, `/api/members`, ...) at `base`.
pub async fn read<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> Result<T, ClientError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let http =
        http_builder().build().map_err(|e| ClientError::Transport { url: url.clone(), reason: e.to_string() })?;
    let response = answer(&url, http.get(&url).send().await).await?;
    json(&url, response).await
}

impl ApiClient {
    /// A session with the API at `base` as `key` over `http`, not signed in yet.
    pub fn new(base: &str, key: Keypair, http: reqwest::Client) -> Self {
        Self { base: base.trim_end_matches('/').to_string(), http, key, token: Mutex::new(None) }
    }

    /// Sign in to the API at `base` as `key`.
    pub async fn sign_in(base: &str, key: &Keypair) -> Result<Self, ClientError> {
        let http =
            http_builder().build().map_err(|e| ClientError::Transport { url: base.into(), reason: e.to_string() })?;
        let session = Self::new(base, key.clone(), http);
        session.token().await?;
        Ok(session)
    }

    /// The API's root URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A live bearer token: the current one, or a new sign-in when there is none or it expires
    /// within ten seconds.
    pub async fn token(&self) -> Result<String, ClientError> {
        let mut token = self.token.lock().await;
        if let Some((value, _)) = token.as_ref().filter(|(_, expires)| *expires > now_ms() + RENEW_BEFORE_MS) {
            return Ok(value.clone());
        }
        let account = self.key.account_id().to_string();
        let url = format!("{}/api/auth/challenge", self.base);
        let response =
            answer(&url, self.http.post(&url).json(&serde_json::json!({ "account": account })).send().await).await?;
        let ChallengeResponse { challenge } = json(&url, response).await?;
        let signature = format!("0x{}", hex::encode(self.key.sign(challenge.as_bytes())));
        let url = format!("{}/api/auth/token", self.base);
        let request = serde_json::json!({ "account": account, "challenge": challenge, "signature": signature });
        let response = answer(&url, self.http.post(&url).json(&request).send().await).await?;
        let TokenResponse { token: value, expires_at } = json(&url, response).await?;
        *token = Some((value.clone(), expires_at));
        Ok(value)
    }

    /// Forget the token (the API refused it: it restarted, or the token was revoked); the next
    /// call signs in again.
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Upload a candidate model.
    pub async fn upload_candidate(&self, model: Vec<u8>) -> Result<StoredObject, ClientError> {
        let url = format!("{}/api/vault/candidates", self.base);
        let response =
            answer(&url, self.http.post(&url).bearer_auth(self.token().await?).body(model).send().await).await?;
        json(&url, response).await
    }

    /// The coalition's secret that keys the anonymised data IDs, hex (members only).
    pub async fn data_id_key(&self) -> Result<String, ClientError> {
        let url = format!("{}/api/vault/data-id-key", self.base);
        let response = answer(&url, self.http.get(&url).bearer_auth(self.token().await?).send().await).await?;
        let DataIdKeyView { key } = json(&url, response).await?;
        Ok(key)
    }

    /// Upload a delta (a file of weight changes) to merge onto block `parent`'s model; the
    /// stored object is the merged model.
    pub async fn upload_delta(&self, parent: u32, delta: Vec<u8>) -> Result<StoredObject, ClientError> {
        let url = format!("{}/api/vault/deltas?parent={parent}", self.base);
        let response =
            answer(&url, self.http.post(&url).bearer_auth(self.token().await?).body(delta).send().await).await?;
        json(&url, response).await
    }

    /// Ask the API to anchor its audit log on chain now.
    pub async fn anchor(&self) -> Result<AnchorView, ClientError> {
        let url = format!("{}/api/audit/anchor", self.base);
        let response = answer(&url, self.http.post(&url).bearer_auth(self.token().await?).send().await).await?;
        json(&url, response).await
    }

    /// Download object `hash` (hex).
    pub async fn download(&self, hash: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/api/vault/objects/{hash}", self.base);
        let response = answer(&url, self.http.get(&url).bearer_auth(self.token().await?).send().await).await?;
        let bytes =
            response.bytes().await.map_err(|e| ClientError::Transport { url, reason: e.without_url().to_string() })?;
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An API that answers every request with `status` and a body of `size` bytes of `{`-less
    /// filler, streamed: what a hostile operator serves to exhaust its clients' memory.
    async fn flooding(status: &'static str, size: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 1 << 16];
                    let mut sent = 0;
                    while sent < size {
                        let n = chunk.len().min(size - sent);
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn an_api_that_floods_its_answers_is_refused_before_they_fill_memory() {
        let key = Keypair::dev("Bob").unwrap();
        // A challenge of 64 MiB: the old oracle read at most its model limit, the old CLI all of it.
        let url = flooding("200 OK", 64 << 20).await;
        let client = ApiClient::new(&url, key.clone(), http_builder().build().unwrap());
        let error = client.token().await.unwrap_err();
        assert!(error.to_string().contains("more than 16777216 bytes"), "{error}");
        // An error whose body never ends: the status, without its message.
        let url = flooding("401 Unauthorized", 64 << 20).await;
        let client = ApiClient::new(&url, key, http_builder().build().unwrap());
        let error = client.token().await.unwrap_err();
        assert!(matches!(error, ClientError::Refused { status: 401, .. }), "{error}");
    }
}

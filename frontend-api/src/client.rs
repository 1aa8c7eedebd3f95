//! A Rust client of the members' API: sign in with an sr25519 key, upload, download. What
//! `tclearn-api upload` uses, and what the members' CLI builds on.

use crate::views::{AnchorView, ChallengeResponse, DataIdKeyView, StoredObject, TokenResponse};
use tclearn_client::Keypair;

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

/// A signed-in session with the API at `base`.
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    token: String,
}

async fn answer(url: &str, response: Result<reqwest::Response, reqwest::Error>) -> Result<reqwest::Response, ClientError> {
    let response = response.map_err(|e| ClientError::Transport { url: url.into(), reason: e.to_string() })?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["error"].as_str().unwrap_or("no message").to_string();
    Err(ClientError::Refused { url: url.into(), status, message })
}

async fn json<T: serde::de::DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T, ClientError> {
    response.json().await.map_err(|e| ClientError::Transport { url: url.into(), reason: e.to_string() })
}

/// A read of one of the API's public routes (`/api/coalition`, `/api/members`, ...) at `base`.
pub async fn read<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> Result<T, ClientError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let response = answer(&url, reqwest::Client::new().get(&url).send().await).await?;
    json(&url, response).await
}

impl ApiClient {
    /// Sign in to the API at `base` as `key`.
    pub async fn sign_in(base: &str, key: &Keypair) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        let http = reqwest::Client::new();
        let account = key.account_id().to_string();
        let url = format!("{base}/api/auth/challenge");
        let response = answer(&url, http.post(&url).json(&serde_json::json!({ "account": account })).send().await).await?;
        let ChallengeResponse { challenge } = json(&url, response).await?;
        let signature = format!("0x{}", hex::encode(key.sign(challenge.as_bytes())));
        let url = format!("{base}/api/auth/token");
        let request = serde_json::json!({ "account": account, "challenge": challenge, "signature": signature });
        let response = answer(&url, http.post(&url).json(&request).send().await).await?;
        let TokenResponse { token, .. } = json(&url, response).await?;
        Ok(Self { base, http, token })
    }

    /// Upload a candidate model.
    pub async fn upload_candidate(&self, model: Vec<u8>) -> Result<StoredObject, ClientError> {
        let url = format!("{}/api/vault/candidates", self.base);
        let response = answer(&url, self.http.post(&url).bearer_auth(&self.token).body(model).send().await).await?;
        json(&url, response).await
    }

    /// The coalition's secret that keys the anonymised data IDs, hex (members only).
    pub async fn data_id_key(&self) -> Result<String, ClientError> {
        let url = format!("{}/api/vault/data-id-key", self.base);
        let response = answer(&url, self.http.get(&url).bearer_auth(&self.token).send().await).await?;
        let DataIdKeyView { key } = json(&url, response).await?;
        Ok(key)
    }

    /// Upload a delta (a file of weight changes) to merge onto block `parent`'s model; the
    /// stored object is the merged model.
    pub async fn upload_delta(&self, parent: u32, delta: Vec<u8>) -> Result<StoredObject, ClientError> {
        let url = format!("{}/api/vault/deltas?parent={parent}", self.base);
        let response = answer(&url, self.http.post(&url).bearer_auth(&self.token).body(delta).send().await).await?;
        json(&url, response).await
    }

    /// Ask the API to anchor its audit log on chain now.
    pub async fn anchor(&self) -> Result<AnchorView, ClientError> {
        let url = format!("{}/api/audit/anchor", self.base);
        let response = answer(&url, self.http.post(&url).bearer_auth(&self.token).send().await).await?;
        json(&url, response).await
    }

    /// Download object `hash` (hex).
    pub async fn download(&self, hash: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/api/vault/objects/{hash}", self.base);
        let response = answer(&url, self.http.get(&url).bearer_auth(&self.token).send().await).await?;
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport { url, reason: e.to_string() })?;
        Ok(bytes.to_vec())
    }
}

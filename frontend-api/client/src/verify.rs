//! The audit verifier: fetch a served log and check it against the anchors on chain
//! ([`crate::audit::verify`] does the checking; this is the fetching).

use crate::{
    audit::{self, Checkpoint, Tampering, Verified, MAX_PAGE},
    views::{CheckpointView, EntriesView},
};
use tclearn_client::{anchors::AuditAnchors, AccountId32};

/// Why a verification could not conclude, or what it found.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The API did not answer as expected.
    #[error("the API at {url}: {reason}")]
    Api {
        /// What was asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The chain did not answer.
    #[error("the chain: {0}")]
    Chain(#[from] tclearn_client::Error),
    /// The log was tampered with.
    #[error("the audit log was tampered with: {0}")]
    Tampered(#[from] Tampering),
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: String) -> Result<T, VerifyError> {
    let api = |reason: String| VerifyError::Api { url: url.clone(), reason };
    let response = http.get(&url).send().await.map_err(|e| api(e.to_string()))?;
    if !response.status().is_success() {
        return Err(api(format!("status {}", response.status())));
    }
    response.json().await.map_err(|e| api(e.to_string()))
}

/// The checkpoint the API at `base` serves, and exactly the entries it covers.
pub async fn fetch_log(http: &reqwest::Client, base: &str) -> Result<(Checkpoint, Vec<Vec<u8>>), VerifyError> {
    let base = base.trim_end_matches('/');
    let view: CheckpointView = get_json(http, format!("{base}/api/audit/checkpoint")).await?;
    let root = tclearn_client::parse::hash(&view.root).map_err(|_| VerifyError::Api {
        url: base.into(),
        reason: "a checkpoint root that is not 32 bytes of hex".into(),
    })?;
    let mut leaves = Vec::with_capacity(view.size.min(1 << 20) as usize);
    while (leaves.len() as u64) < view.size {
        let start = leaves.len() as u64;
        let count = (view.size - start).min(MAX_PAGE);
        let page: EntriesView = get_json(http, format!("{base}/api/audit/entries?start={start}&count={count}")).await?;
        if page.entries.is_empty() {
            // Fewer entries than the checkpoint counts: what is served does not match it.
            break;
        }
        leaves.extend(page.entries.into_iter().map(String::into_bytes));
    }
    Ok((Checkpoint { size: view.size, root }, leaves))
}

/// Check the log the API at `base` serves against every anchor of `anchors`.
pub async fn verify_served(
    http: &reqwest::Client,
    base: &str,
    anchors: &AuditAnchors,
    origin: &AccountId32,
) -> Result<Verified, VerifyError> {
    let on_chain = anchors.all(origin).await?;
    let (checkpoint, leaves) = fetch_log(http, base).await?;
    let anchors: Vec<(u64, [u8; 32])> = on_chain.iter().map(|a| (a.log_length, a.root.0)).collect();
    Ok(audit::verify(&leaves, &checkpoint, &anchors)?)
}

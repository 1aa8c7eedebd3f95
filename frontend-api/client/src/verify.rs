//! The audit verifier: fetch a served log and check it against the anchors on chain and the
//! member's receipts ([`crate::audit::verify`] and [`crate::receipt::check_receipts`] do the
//! checking; this is the fetching).

use crate::{
    audit::{self, Checkpoint, Tampering, Verified, MAX_PAGE},
    client::{ApiClient, ClientError},
    receipt::{check_receipts, Receipt},
    views::{CheckpointView, EntriesView},
};
use tclearn_client::{account_to_address, anchors::AuditAnchors, AccountId32, H160};

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
    /// A receipt that proves nothing against this log's operator.
    #[error("{0}")]
    Receipt(String),
}

/// The checkpoint the API serves, and exactly the entries it covers (entries are read as the
/// signed-in member `session`).
pub async fn fetch_log(session: &ApiClient) -> Result<(Checkpoint, Vec<Vec<u8>>), VerifyError> {
    let api = |e: ClientError| VerifyError::Api { url: session.base().into(), reason: e.to_string() };
    let view: CheckpointView = session.get_json("/api/audit/checkpoint").await.map_err(api)?;
    let root = tclearn_client::parse::hash(&view.root).map_err(|_| VerifyError::Api {
        url: session.base().into(),
        reason: "a checkpoint root that is not 32 bytes of hex".into(),
    })?;
    let mut leaves = Vec::with_capacity(view.size.min(1 << 20) as usize);
    while (leaves.len() as u64) < view.size {
        let start = leaves.len() as u64;
        let count = (view.size - start).min(MAX_PAGE);
        let page: EntriesView =
            session.get_json(&format!("/api/audit/entries?start={start}&count={count}")).await.map_err(api)?;
        if page.entries.is_empty() {
            // Fewer entries than the checkpoint counts: what is served does not match it.
            break;
        }
        leaves.extend(page.entries.into_iter().map(String::into_bytes));
    }
    Ok((Checkpoint { size: view.size, root }, leaves))
}

/// Check the log the API serves to `session` against every anchor of `anchors` and every
/// receipt in `receipts`: each must hold for `coalition` (the caller's, from the chain or the
/// member's own pin, never the API's word) and be signed by the anchors' operator, the account
/// that anchors the log (an operator changed since makes the check fail, loudly: the receipts
/// then name a signer the chain no longer does).
pub async fn verify_served(
    session: &ApiClient,
    anchors: &AuditAnchors,
    origin: &AccountId32,
    coalition: &H160,
    receipts: &[Receipt],
) -> Result<Verified, VerifyError> {
    let on_chain = anchors.all(origin).await?;
    let operator = anchors.operator(origin).await?;
    // Every receipt given must hold for this coalition: one that does not would otherwise
    // drop out of the check unseen (say, signed over another coalition an API named at sign-in).
    for receipt in receipts {
        receipt.verify(coalition).map_err(|e| {
            VerifyError::Receipt(format!(
                "the receipt of entry {} does not hold for coalition {coalition:?}: {e}",
                receipt.index
            ))
        })?;
    }
    let ours = receipts;
    if let Some(foreign) = ours.iter().find(|r| r.signer().map(|s| account_to_address(&s)).ok() != Some(operator)) {
        return Err(VerifyError::Receipt(format!(
            "the receipt of entry {} is signed by {}, not by the anchors' operator {operator:?}",
            foreign.index, foreign.signer
        )));
    }
    let (checkpoint, leaves) = fetch_log(session).await?;
    let anchors: Vec<(u64, [u8; 32])> = on_chain.iter().map(|a| (a.log_length, a.root.0)).collect();
    let mut verified = audit::verify(&leaves, &checkpoint, &anchors)?;
    verified.receipts = check_receipts(&leaves, ours)?;
    Ok(verified)
}

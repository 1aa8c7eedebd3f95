//! Signed receipts of audit entries.
//!
//! Each access a member makes (an upload, a download, the data-ID secret, a call built) is
//! answered with a receipt in the `tclearn-audit-receipt` header: the entry exactly as logged,
//! its index, the log's checkpoint right after it (size and root), the entry's RFC 6962
//! inclusion proof in that checkpoint, and the API account's sr25519 signature of the
//! checkpoint (as Certificate Transparency logs sign a timestamp for each certificate, and
//! Rekor signs an entry's timestamp and a checkpoint). The signer is the account that anchors
//! the log on chain (the anchors contract's operator).
//!
//! A receipt binds the operator, before the next anchor: a log it serves later must hold the
//! entry at its index, and its first `size` entries must hash to the receipt's root. Cutting
//! or editing the tail after the last anchor contradicts every receipt that covers it, and a
//! member holding one proves it with the operator's own signature ([`check_receipts`]).

use crate::audit::{verify_inclusion, Checkpoint, Tampering};
use base64::Engine as _;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tclearn_client::{AccountId32, Keypair, H160};

/// The response header that carries a receipt (base64url of its JSON, unpadded).
pub const HEADER: &str = "tclearn-audit-receipt";

/// The request header in which a member names its access: 16 random bytes (32 lowercase hex
/// digits) that the API copies into the access's audit entry (`nonce`), and that the receipt's
/// entry must name ([`Receipt::verify_access`]). An API that answers an access with an earlier
/// receipt (of the same account, action and object), and leaves the access itself out of its
/// log, is caught at once, whatever the member's clock and whether it keeps its receipts.
pub const NONCE_HEADER: &str = "tclearn-access-nonce";

/// A new access nonce ([`NONCE_HEADER`]).
///
/// # Panics
/// The OS's random source fails.
pub fn new_nonce() -> String {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce).expect("the OS's random source");
    hex::encode(nonce)
}

/// The nonce a request's [`NONCE_HEADER`] value names, if it is one (exactly 32 lowercase hex
/// digits): anything else is no nonce, and its text is never logged.
pub fn parse_nonce(value: &str) -> Option<&str> {
    (value.len() == 32 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))).then_some(value)
}

/// Most bytes of a receipt's header value: an entry (a few hundred bytes), a proof of up to 64
/// hashes, a signature.
pub const MAX_HEADER_BYTES: usize = 8 << 10;

/// A signed receipt of one audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The entry, exactly as logged (the leaf's bytes).
    pub entry: String,
    /// Its index in the log.
    pub index: u64,
    /// Entries in the log right after it was appended.
    pub size: u64,
    /// The log's RFC 6962 root at `size` (`0x` and 64 hex digits).
    pub root: String,
    /// The entry's inclusion proof at `size` (hex).
    pub proof: String,
    /// The coalition whose log it is (`0x` and 40 hex digits).
    pub coalition: String,
    /// The account that signed it (SS58): the API's, which anchors the log.
    pub signer: String,
    /// `signer`'s sr25519 signature of [`checkpoint_text`], wrapped in `<Bytes>…</Bytes>`
    /// (`0x` and 128 hex digits).
    pub signature: String,
}

/// Why a receipt is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not a receipt at all.
    #[error("not an audit receipt: {0}")]
    Malformed(String),
    /// The signature is not the signer's over this checkpoint.
    #[error("the receipt's signature is not its signer's over its checkpoint")]
    BadSignature,
    /// The inclusion proof does not put the entry in the checkpoint.
    #[error("the receipt's entry is not in its checkpoint")]
    NotIncluded,
    /// Another coalition's log.
    #[error("the receipt is coalition {0}'s, not this one's")]
    OtherCoalition(String),
    /// The entry is not the access this member made.
    #[error("the receipt's entry is not this access: {0}")]
    NotThisAccess(String),
    /// Not the receipt of an access just made: an earlier receipt given again would stand for
    /// an access the log left out.
    #[error("the receipt is not of an access just made: {0}")]
    Stale(String),
}

/// How far a just-received receipt's entry time may be from the member's clock.
pub const RECEIPT_SKEW_MS: u64 = 15 * 60 * 1000;

/// Check that `receipt`, just received for an access, is new: its entry is none of those the
/// receipts the member holds of the same coalition name (`held`), and was logged within
/// [`RECEIPT_SKEW_MS`] of `now_ms`. Otherwise the API could answer an access with an earlier
/// receipt of the same account, action and object, and leave the access itself out of its
/// log. (Receipts of accesses made at once may arrive in any order: entries are not required
/// to come after those held.)
///
/// # Errors
/// [`ReceiptError::Stale`], or [`ReceiptError::Malformed`] when the entry has no time.
pub fn ensure_fresh(receipt: &Receipt, held: &[Receipt], now_ms: u64) -> Result<(), ReceiptError> {
    let entry: serde_json::Value =
        serde_json::from_str(&receipt.entry).map_err(|_| malformed("an entry that is not JSON"))?;
    let time = entry["time_ms"].as_u64().ok_or_else(|| malformed("an entry without a time"))?;
    if time.abs_diff(now_ms) > RECEIPT_SKEW_MS {
        return Err(ReceiptError::Stale(format!(
            "its entry was logged at {time} ms, and it is now {now_ms} ms here (more than {} minutes apart)",
            RECEIPT_SKEW_MS / 60_000
        )));
    }
    if held.iter().any(|h| h.index == receipt.index && h.coalition.eq_ignore_ascii_case(&receipt.coalition)) {
        return Err(ReceiptError::Stale(format!("entry {} is named by a receipt already held", receipt.index)));
    }
    Ok(())
}

/// The text the API's account signs for a checkpoint of `coalition`'s log.
pub fn checkpoint_text(coalition: &H160, size: u64, root: &[u8; 32]) -> String {
    format!(
        "tclearn audit checkpoint: coalition 0x{}, size {size}, root 0x{}",
        hex::encode(coalition.0),
        hex::encode(root)
    )
}

fn malformed(what: &str) -> ReceiptError {
    ReceiptError::Malformed(what.into())
}

impl Receipt {
    /// The receipt of `entry` (the leaf) at `index`, in `checkpoint` by `proof`, signed by `key`.
    pub fn sign(
        key: &Keypair,
        coalition: &H160,
        entry: String,
        index: u64,
        checkpoint: &Checkpoint,
        proof: &[u8],
    ) -> Self {
        let text = checkpoint_text(coalition, checkpoint.size, &checkpoint.root);
        let signature = key.sign(&crate::sign_in::signed_bytes(&text));
        Self {
            entry,
            index,
            size: checkpoint.size,
            root: format!("0x{}", hex::encode(checkpoint.root)),
            proof: hex::encode(proof),
            coalition: format!("0x{}", hex::encode(coalition.0)),
            signer: key.account_id().to_string(),
            signature: format!("0x{}", hex::encode(signature)),
        }
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        let json = serde_json::to_vec(self).expect("a receipt serializes");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// A receipt from its header value.
    ///
    /// # Errors
    /// [`ReceiptError::Malformed`].
    pub fn from_header(value: &str) -> Result<Self, ReceiptError> {
        if value.len() > MAX_HEADER_BYTES {
            return Err(malformed("longer than a receipt"));
        }
        let json =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).map_err(|_| malformed("not base64url"))?;
        serde_json::from_slice(&json).map_err(|e| ReceiptError::Malformed(e.to_string()))
    }

    /// The checkpoint it signs.
    ///
    /// # Errors
    /// [`ReceiptError::Malformed`].
    pub fn checkpoint(&self) -> Result<Checkpoint, ReceiptError> {
        let root = tclearn_client::parse::hash(&self.root).map_err(|_| malformed("a root that is not 32 bytes"))?;
        Ok(Checkpoint { size: self.size, root })
    }

    /// The account that signed it.
    ///
    /// # Errors
    /// [`ReceiptError::Malformed`].
    pub fn signer(&self) -> Result<AccountId32, ReceiptError> {
        self.signer.parse().map_err(|_| malformed("a signer that is not an SS58 account"))
    }

    /// Check that it is `coalition`'s, that its signer signed its checkpoint, and that its entry
    /// is in that checkpoint at its index. Who the signer should be (the anchors' operator) is
    /// the caller's to check, against the chain.
    ///
    /// # Errors
    /// What fails, as a [`ReceiptError`].
    pub fn verify(&self, coalition: &H160) -> Result<Checkpoint, ReceiptError> {
        let named = format!("0x{}", hex::encode(coalition.0));
        if !self.coalition.eq_ignore_ascii_case(&named) {
            return Err(ReceiptError::OtherCoalition(self.coalition.clone()));
        }
        let checkpoint = self.checkpoint()?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(self.signature.trim_start_matches("0x"), &mut signature)
            .map_err(|_| malformed("a signature that is not 64 bytes"))?;
        let text = checkpoint_text(coalition, checkpoint.size, &checkpoint.root);
        if !tclearn_client::verify(&self.signer()?, &crate::sign_in::signed_bytes(&text), &signature) {
            return Err(ReceiptError::BadSignature);
        }
        let proof = hex::decode(&self.proof).map_err(|_| malformed("a proof that is not hex"))?;
        if self.index >= checkpoint.size || !verify_inclusion(&checkpoint, self.entry.as_bytes(), self.index, &proof) {
            return Err(ReceiptError::NotIncluded);
        }
        Ok(checkpoint)
    }

    /// [`Receipt::verify`], and check that the entry records this access: by `account`, `action`,
    /// on `object` when there is one, `ok`, and naming the access's `nonce` ([`NONCE_HEADER`]).
    ///
    /// # Errors
    /// What fails, as a [`ReceiptError`].
    pub fn verify_access(
        &self,
        coalition: &H160,
        account: &AccountId32,
        action: &str,
        object: Option<&[u8; 32]>,
        nonce: &str,
    ) -> Result<Checkpoint, ReceiptError> {
        let checkpoint = self.verify(coalition)?;
        let entry: serde_json::Value =
            serde_json::from_str(&self.entry).map_err(|_| malformed("an entry that is not JSON"))?;
        let not_this = |what: &str| ReceiptError::NotThisAccess(what.into());
        if entry["index"].as_u64() != Some(self.index) {
            return Err(not_this("another index"));
        }
        if entry["account"].as_str() != Some(account.to_string().as_str()) {
            return Err(not_this("another account"));
        }
        // An access that went through: `ok`, or for data IDs `ok N` with its count (which the
        // client checks against what it asked: `ApiClient::data_ids`).
        let ok = entry["outcome"]
            .as_str()
            .is_some_and(|o| o == "ok" || (action == crate::data_ids::ACTION && o.starts_with("ok ")));
        if entry["action"].as_str() != Some(action) || !ok {
            return Err(not_this("another action"));
        }
        if let Some(object) = object {
            if entry["object"].as_str() != Some(format!("0x{}", hex::encode(object)).as_str()) {
                return Err(not_this("another object"));
            }
        }
        if entry["nonce"].as_str() != Some(nonce) {
            return Err(not_this("another access's nonce (an earlier receipt given again?)"));
        }
        Ok(checkpoint)
    }
}

/// Check `receipts` (verified when received) against `leaves`, the log an API serves now:
/// each receipt's entry is at its index, and the first `size` entries hash to its root.
/// Returns how many receipts were checked.
///
/// # Errors
/// [`Tampering::CutBehindReceipt`] when the log is shorter than a receipt's checkpoint,
/// [`Tampering::ContradictsReceipt`] when its prefix does not hash to a receipt's root.
pub fn check_receipts(leaves: &[Vec<u8>], receipts: &[Receipt]) -> Result<u64, Tampering> {
    let mut sorted: Vec<&Receipt> = receipts.iter().collect();
    sorted.sort_by_key(|r| r.size);
    let mut tree = MemoryBackedTree::<Sha256, &[u8]>::new();
    for receipt in sorted {
        let (index, size) = (receipt.index, receipt.size);
        if size > leaves.len() as u64 {
            return Err(Tampering::CutBehindReceipt { index, size, served: leaves.len() as u64 });
        }
        while tree.len() < size {
            tree.push(&leaves[tree.len() as usize]);
        }
        let root = receipt.checkpoint().map(|c| c.root).ok();
        let entry_served = leaves.get(index as usize).is_some_and(|leaf| leaf == receipt.entry.as_bytes());
        if root.is_none_or(|root| tree.root().as_bytes().as_slice() != root) || !entry_served {
            return Err(Tampering::ContradictsReceipt { index, size });
        }
    }
    Ok(receipts.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                format!("{{\"index\":{i},\"account\":\"x\",\"action\":\"download\",\"outcome\":\"ok\"}}").into_bytes()
            })
            .collect()
    }

    /// The receipt an honest API gives for entry `index` of `leaves[..size]`.
    fn receipt(key: &Keypair, coalition: &H160, leaves: &[Vec<u8>], index: usize, size: usize) -> Receipt {
        let mut tree = MemoryBackedTree::<Sha256, Vec<u8>>::new();
        for leaf in &leaves[..size] {
            tree.push(leaf.clone());
        }
        let mut root = [0u8; 32];
        root.copy_from_slice(tree.root().as_bytes());
        let proof = tree.prove_inclusion(index).as_bytes().to_vec();
        let entry = String::from_utf8(leaves[index].clone()).unwrap();
        Receipt::sign(key, coalition, entry, index as u64, &Checkpoint { size: size as u64, root }, &proof)
    }

    #[test]
    fn a_receipt_given_again_or_logged_long_ago_is_not_of_this_access() {
        let (api, coalition) = (Keypair::dev("Alice").unwrap(), H160([5; 20]));
        let leaves: Vec<Vec<u8>> = (0..6)
            .map(|i| format!("{{\"index\":{i},\"time_ms\":{},\"action\":\"download\"}}", 1_000_000 + i).into_bytes())
            .collect();
        let now = 1_000_000 + RECEIPT_SKEW_MS;
        let (first, second) = (receipt(&api, &coalition, &leaves, 2, 3), receipt(&api, &coalition, &leaves, 4, 6));
        ensure_fresh(&first, &[], now).unwrap();
        ensure_fresh(&second, std::slice::from_ref(&first), now).unwrap();
        // Two accesses at once: their receipts arrive in either order.
        ensure_fresh(&first, std::slice::from_ref(&second), now).unwrap();
        // The same receipt again, or its entry under a later checkpoint, for a later access of
        // the same object.
        let resigned = receipt(&api, &coalition, &leaves, 2, 6);
        for (again, held) in [(&first, vec![first.clone()]), (&resigned, vec![first.clone(), second.clone()])] {
            assert!(matches!(ensure_fresh(again, &held, now), Err(ReceiptError::Stale(_))));
        }
        // Another coalition's receipts do not order this one's.
        let mut elsewhere = second.clone();
        elsewhere.coalition = format!("0x{}", "07".repeat(20));
        ensure_fresh(&first, &[elsewhere], now).unwrap();
        // Logged long before (or after) the member's clock.
        assert!(matches!(ensure_fresh(&first, &[], now + 3), Err(ReceiptError::Stale(_))));
        assert!(matches!(ensure_fresh(&first, &[], 1_000_002 - RECEIPT_SKEW_MS - 1), Err(ReceiptError::Stale(_))));
        let timeless = receipt(&api, &coalition, &log(3), 1, 3);
        assert!(matches!(ensure_fresh(&timeless, &[], now), Err(ReceiptError::Malformed(_))));
    }

    #[test]
    fn a_receipt_verifies_only_as_signed_for_its_coalition_and_entry() {
        let (api, coalition) = (Keypair::dev("Alice").unwrap(), H160([5; 20]));
        let leaves = log(7);
        let good = receipt(&api, &coalition, &leaves, 3, 5);
        assert_eq!(Receipt::from_header(&good.to_header()).unwrap(), good);
        assert_eq!(good.verify(&coalition).unwrap().size, 5);
        assert_eq!(good.signer().unwrap(), api.account_id());
        assert!(matches!(good.verify(&H160([6; 20])), Err(ReceiptError::OtherCoalition(_))));
        // Any field changed after signing.
        let mut forged = good.clone();
        forged.size = 6;
        assert_eq!(forged.verify(&coalition), Err(ReceiptError::BadSignature));
        let mut forged = good.clone();
        forged.signer = Keypair::dev("Bob").unwrap().account_id().to_string();
        assert_eq!(forged.verify(&coalition), Err(ReceiptError::BadSignature));
        let mut forged = good.clone();
        forged.entry = String::from_utf8(leaves[4].clone()).unwrap();
        assert_eq!(forged.verify(&coalition), Err(ReceiptError::NotIncluded));
        let mut forged = good.clone();
        forged.index = 2;
        assert_eq!(forged.verify(&coalition), Err(ReceiptError::NotIncluded));
        // A checkpoint signed raw (as an extrinsic would be) is not a receipt's signature.
        let mut raw = good.clone();
        let text = checkpoint_text(&coalition, 5, &good.checkpoint().unwrap().root);
        raw.signature = format!("0x{}", hex::encode(api.sign(text.as_bytes())));
        assert_eq!(raw.verify(&coalition), Err(ReceiptError::BadSignature));
        for bad in ["", "!!", &"A".repeat(MAX_HEADER_BYTES + 1)] {
            assert!(matches!(Receipt::from_header(bad), Err(ReceiptError::Malformed(_))));
        }
    }

    #[test]
    fn a_receipt_names_the_access_it_records() {
        let (api, coalition) = (Keypair::dev("Alice").unwrap(), H160([5; 20]));
        let bob = Keypair::dev("Bob").unwrap().account_id();
        let object = [9u8; 32];
        let nonce = new_nonce();
        let entry = format!(
            "{{\"index\":0,\"time_ms\":1,\"account\":\"{bob}\",\"action\":\"download\",\"object\":\"0x{}\",\"outcome\":\"ok\",\"nonce\":\"{nonce}\"}}",
            hex::encode(object)
        );
        let leaves = vec![entry.into_bytes()];
        let receipt = receipt(&api, &coalition, &leaves, 0, 1);
        receipt.verify_access(&coalition, &bob, "download", Some(&object), &nonce).unwrap();
        let charlie = Keypair::dev("Charlie").unwrap().account_id();
        // Another account, action or object; and the same access's receipt given again for a
        // later access of Bob's (its nonce is the earlier one's), however recent.
        let later = new_nonce();
        assert_ne!(later, nonce);
        for (account, action, object, nonce) in [
            (&charlie, "download", Some(&object), &nonce),
            (&bob, "upload-candidate", Some(&object), &nonce),
            (&bob, "download", Some(&[8; 32]), &nonce),
            (&bob, "download", Some(&object), &later),
        ] {
            assert!(matches!(
                receipt.verify_access(&coalition, account, action, object, nonce),
                Err(ReceiptError::NotThisAccess(_))
            ));
        }
        // A nonce is 32 lowercase hex digits, nothing else.
        assert_eq!(parse_nonce(&nonce), Some(nonce.as_str()));
        for bad in ["", "00", &nonce.to_uppercase(), &format!("{nonce}0"), &"g".repeat(32), &"é".repeat(16)] {
            assert_eq!(parse_nonce(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_log_cut_or_rewritten_behind_a_receipt_is_caught_by_it() {
        let (api, coalition) = (Keypair::dev("Alice").unwrap(), H160([5; 20]));
        let leaves = log(10);
        // Members hold receipts for entries 2 (log of 3), 6 (of 7) and 8 (of 9).
        let held = [
            receipt(&api, &coalition, &leaves, 2, 3),
            receipt(&api, &coalition, &leaves, 6, 7),
            receipt(&api, &coalition, &leaves, 8, 9),
        ];
        assert_eq!(check_receipts(&leaves, &held), Ok(3));
        // The tail after the last anchor cut, whatever the anchors say.
        assert_eq!(
            check_receipts(&leaves[..8], &held),
            Err(Tampering::CutBehindReceipt { index: 8, size: 9, served: 8 })
        );
        // An entry before a receipt's checkpoint rewritten (not the receipt's own).
        let mut edited = leaves.clone();
        edited[5] = b"{\"index\":5,\"action\":\"nothing happened\"}".to_vec();
        assert_eq!(check_receipts(&edited, &held), Err(Tampering::ContradictsReceipt { index: 6, size: 7 }));
        // The receipt's own entry removed and the rest shifted up.
        let mut removed = leaves.clone();
        removed.remove(2);
        assert_eq!(check_receipts(&removed, &held[..1]), Err(Tampering::ContradictsReceipt { index: 2, size: 3 }));
        // Entries after every receipt may still be appended.
        let mut grown = leaves.clone();
        grown.extend(log(12).split_off(10));
        assert_eq!(check_receipts(&grown, &held), Ok(3));
    }
}

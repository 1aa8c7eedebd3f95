//! Oblivious data IDs: a sample's ID is an oblivious pseudorandom function of its identifier
//! (RFC 9497's VOPRF, suite ristretto255-SHA512), under a key that only the vault holds.
//!
//! A proposal lists its samples' data IDs so that the contract never counts a patient twice, at
//! one hospital or at two. The IDs are public on chain, and identifiers (record numbers,
//! national IDs) have little entropy: whoever can compute the function offline can test any
//! guess of an identifier against them. So nobody outside the vault can:
//!
//! - **The member** blinds each identifier with a fresh random scalar ([`Blinded`]) and sends
//!   only the blinded points. The vault sees random group elements, never an identifier.
//! - **The vault** multiplies them by its key ([`VaultKey::evaluate`]) and proves, with one DLEQ
//!   proof for the batch, that it used the key whose public half it names. The member never
//!   sees the key.
//! - **The member** unblinds, checks the proof, and hashes (RFC 9497's `Finalize`): the first 32
//!   bytes of that hash are the data ID. The same identifier gives the same ID at every
//!   hospital, so cross-hospital duplicates are still caught.
//!
//! Every evaluation is an online query: signed in, audited (a count per member) and held to a
//! daily quota by the API, so a dictionary sweep is slow and visible. An ex-member is no longer
//! signed in, and so evaluates nothing. The vault's operator holds the key and can test guesses
//! offline: the trust the vault's operator already has (it holds the models too).
//!
//! Identifiers are trimmed of surrounding white space first, so `" 1234 "` and `"1234"` are one
//! patient. Every encoded element is checked for its exact length: the crate's own decoders
//! ignore trailing bytes.

use crate::views::{DataIdsAnswer, DataIdsRequest};
use rand_core::OsRng;
use voprf::{BlindedElement, EvaluationElement, Group, Proof, Ristretto255, VoprfClient, VoprfServer};

/// The audit log's action for a data-ID request; its outcome counts the identifiers (`ok N`).
pub const ACTION: &str = "data-ids";

/// Most identifiers one request may carry: one batch proof covers them, the vault's work per
/// request stays bounded (RFC 9497 allows up to 65,535), and the request's JSON (about 67 bytes
/// an element) stays within the API's default body limit of 64 KiB.
pub const MAX_BATCH: usize = 500;

/// The `info` of RFC 9497's `DeriveKeyPair`: it binds the vault's key to this one use.
const KEY_INFO: &[u8] = b"tclearn data IDs v1";

/// Bytes of an encoded ristretto255 element (blinded, evaluated, public key).
const ELEMENT: usize = 32;

/// Bytes of an encoded proof (two scalars).
const PROOF: usize = 64;

/// Why data IDs could not be computed or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataIdError {
    /// An identifier that is empty (after trimming) or longer than RFC 9497 allows.
    #[error("an identifier is empty or longer than 65,535 bytes (row {0})")]
    Identifier(usize),
    /// No identifier, or more than [`MAX_BATCH`], in one request.
    #[error("a request carries 1 to {MAX_BATCH} blinded identifiers; got {0}")]
    Batch(usize),
    /// An element, proof or key that is not the exact bytes of one.
    #[error("a malformed {0}")]
    Malformed(&'static str),
    /// An answer whose proof does not hold for its elements and key, or that answers another
    /// number of elements than asked.
    #[error("the vault's answer is not proven to come from the data-ID key it names")]
    Proof,
    /// Two answers of one run under two keys: the vault would split the coalition's IDs.
    #[error("the vault answered under two different data-ID keys")]
    KeyChanged,
}

/// One identifier's bytes, trimmed.
fn identifier_bytes(identifier: &str) -> &[u8] {
    identifier.trim().as_bytes()
}

/// Decode exactly `len` bytes of hex.
fn exact(text: &str, len: usize, what: &'static str) -> Result<Vec<u8>, DataIdError> {
    let bytes = hex::decode(text.trim_start_matches("0x")).map_err(|_| DataIdError::Malformed(what))?;
    if bytes.len() == len {
        Ok(bytes)
    } else {
        Err(DataIdError::Malformed(what))
    }
}

/// A data ID from RFC 9497's output (64 bytes of SHA-512): its first 32.
fn data_id_of(output: &[u8]) -> [u8; 32] {
    let mut id = [0u8; 32];
    id.copy_from_slice(&output[..32]);
    id
}

/// The member's side of one request: the identifiers, their blinds, and what to send.
pub struct Blinded {
    identifiers: Vec<String>,
    states: Vec<VoprfClient<Ristretto255>>,
    /// What to send the vault: the blinded identifiers.
    pub request: DataIdsRequest,
}

impl Blinded {
    /// Blind `identifiers` (1 to [`MAX_BATCH`]), each with a fresh scalar from the OS.
    ///
    /// # Errors
    /// [`DataIdError::Batch`], or [`DataIdError::Identifier`] for an empty one.
    pub fn new(identifiers: &[String]) -> Result<Self, DataIdError> {
        if identifiers.is_empty() || identifiers.len() > MAX_BATCH {
            return Err(DataIdError::Batch(identifiers.len()));
        }
        let mut states = Vec::with_capacity(identifiers.len());
        let mut blinded = Vec::with_capacity(identifiers.len());
        for (row, identifier) in identifiers.iter().enumerate() {
            let input = identifier_bytes(identifier);
            if input.is_empty() {
                return Err(DataIdError::Identifier(row));
            }
            let result =
                VoprfClient::<Ristretto255>::blind(input, &mut OsRng).map_err(|_| DataIdError::Identifier(row))?;
            blinded.push(hex::encode(result.message.serialize()));
            states.push(result.state);
        }
        Ok(Self { identifiers: identifiers.to_vec(), states, request: DataIdsRequest { blinded } })
    }

    /// The data IDs, in the identifiers' order, from the vault's `answer`: each evaluated
    /// element unblinded, the batch's proof checked against the key the answer names.
    ///
    /// # Errors
    /// [`DataIdError::Malformed`] or [`DataIdError::Proof`].
    pub fn finalize(self, answer: &DataIdsAnswer) -> Result<Vec<[u8; 32]>, DataIdError> {
        if answer.evaluated.len() != self.states.len() {
            return Err(DataIdError::Proof);
        }
        let evaluated = answer
            .evaluated
            .iter()
            .map(|e| {
                EvaluationElement::<Ristretto255>::deserialize(&exact(e, ELEMENT, "evaluated element")?)
                    .map_err(|_| DataIdError::Malformed("evaluated element"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let proof = Proof::<Ristretto255>::deserialize(&exact(&answer.proof, PROOF, "proof")?)
            .map_err(|_| DataIdError::Malformed("proof"))?;
        let key = public_key(&answer.public_key)?;
        let inputs: Vec<&[u8]> = self.identifiers.iter().map(|i| identifier_bytes(i)).collect();
        let outputs = VoprfClient::batch_finalize(&inputs, &self.states, &evaluated, &proof, key)
            .map_err(|_| DataIdError::Proof)?;
        outputs.map(|output| output.map(|o| data_id_of(&o)).map_err(|_| DataIdError::Proof)).collect()
    }
}

/// A vault's public key from its hex.
fn public_key(text: &str) -> Result<<Ristretto255 as Group>::Elem, DataIdError> {
    <Ristretto255 as Group>::deserialize_elem(&exact(text, ELEMENT, "public key")?)
        .map_err(|_| DataIdError::Malformed("public key"))
}

/// The vault's data-ID key: RFC 9497's `DeriveKeyPair` of the coalition's data-ID secret.
#[derive(Clone)]
pub struct VaultKey(VoprfServer<Ristretto255>);

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaultKey({})", self.public_key())
    }
}

impl VaultKey {
    /// The key derived from the vault's 32-byte secret.
    pub fn derive(secret: &[u8; 32]) -> Self {
        // DeriveKeyPair fails only when 256 counters in a row hash to the zero scalar.
        Self(VoprfServer::new_from_seed(secret, KEY_INFO).expect("a ristretto255 key from a 32-byte seed"))
    }

    /// The public half, hex: what every answer names and its proof is checked against.
    pub fn public_key(&self) -> String {
        hex::encode(<Ristretto255 as Group>::serialize_elem(self.0.get_public_key()))
    }

    /// The blinded identifiers of `request`, decoded (cheap: done before a quota is charged).
    ///
    /// # Errors
    /// [`DataIdError::Batch`] or [`DataIdError::Malformed`].
    pub fn parse(request: &DataIdsRequest) -> Result<Vec<BlindedElement<Ristretto255>>, DataIdError> {
        if request.blinded.is_empty() || request.blinded.len() > MAX_BATCH {
            return Err(DataIdError::Batch(request.blinded.len()));
        }
        request
            .blinded
            .iter()
            .map(|b| {
                BlindedElement::deserialize(&exact(b, ELEMENT, "blinded element")?)
                    .map_err(|_| DataIdError::Malformed("blinded element"))
            })
            .collect()
    }

    /// Evaluate blinded identifiers, with one proof for the batch.
    ///
    /// # Errors
    /// [`DataIdError::Batch`] (the crate's own bound).
    pub fn evaluate(&self, blinded: Vec<BlindedElement<Ristretto255>>) -> Result<DataIdsAnswer, DataIdError> {
        let result =
            self.0.batch_blind_evaluate(&mut OsRng, &blinded).map_err(|_| DataIdError::Batch(blinded.len()))?;
        Ok(DataIdsAnswer {
            evaluated: result.messages.iter().map(|m| hex::encode(m.serialize())).collect(),
            proof: hex::encode(result.proof.serialize()),
            public_key: self.public_key(),
        })
    }

    /// The data ID of `identifier`, computed directly: what only the key's holder can do (the
    /// vault, and tests).
    ///
    /// # Errors
    /// [`DataIdError::Identifier`] for an empty one.
    pub fn data_id(&self, identifier: &str) -> Result<[u8; 32], DataIdError> {
        let input = identifier_bytes(identifier);
        if input.is_empty() {
            return Err(DataIdError::Identifier(0));
        }
        self.0.evaluate(input).map(|o| data_id_of(&o)).map_err(|_| DataIdError::Identifier(0))
    }
}

/// Data IDs, with the vault key they are under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIds {
    /// The vault's data-ID public key every answer named (hex).
    pub public_key: String,
    /// The IDs, in the identifiers' order.
    pub ids: Vec<[u8; 32]>,
}

/// Data IDs of many identifiers, request by request: `ask` sends one request and returns the
/// vault's answer. Every answer must name the same key.
///
/// # Errors
/// What [`Blinded`] refuses, what `ask` returns (as `E`), or [`DataIdError::KeyChanged`].
pub async fn data_ids<E: From<DataIdError>, F: std::future::Future<Output = Result<DataIdsAnswer, E>>>(
    identifiers: &[String],
    mut ask: impl FnMut(DataIdsRequest) -> F,
) -> Result<DataIds, E> {
    let mut ids = Vec::with_capacity(identifiers.len());
    let mut key: Option<String> = None;
    for chunk in identifiers.chunks(MAX_BATCH) {
        let blinded = Blinded::new(chunk)?;
        let answer = ask(blinded.request.clone()).await?;
        if key.get_or_insert_with(|| answer.public_key.clone()) != &answer.public_key {
            return Err(DataIdError::KeyChanged.into());
        }
        ids.extend(blinded.finalize(&answer)?);
    }
    Ok(DataIds { public_key: key.unwrap_or_default(), ids })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(identifiers: &[&str]) -> Vec<String> {
        identifiers.iter().map(|s| s.to_string()).collect()
    }

    /// The member gets, through the blinded protocol, what the key's holder computes directly;
    /// the same patient at two hospitals gets one ID; another vault's key gives other IDs.
    #[test]
    fn blinded_queries_give_the_vaults_function_and_link_one_patient_across_hospitals() {
        let vault = VaultKey::derive(&[7; 32]);
        let asked = ids(&["wdbc-1", " wdbc-2\n", "wdbc-1"]);
        let blinded = Blinded::new(&asked).unwrap();
        // The vault sees none of the identifiers: the same one blinded twice looks unrelated.
        assert_ne!(blinded.request.blinded[0], blinded.request.blinded[2]);
        assert!(!blinded.request.blinded.iter().any(|b| b.contains(&hex::encode("wdbc"))));
        let answer = vault.evaluate(VaultKey::parse(&blinded.request).unwrap()).unwrap();
        let got = blinded.finalize(&answer).unwrap();
        assert_eq!(got[0], vault.data_id("wdbc-1").unwrap());
        assert_eq!(got[1], vault.data_id("wdbc-2").unwrap());
        assert_eq!(got[0], got[2], "one patient, one ID");
        assert_ne!(VaultKey::derive(&[8; 32]).data_id("wdbc-1").unwrap(), got[0]);
        assert_eq!(VaultKey::derive(&[7; 32]).public_key(), vault.public_key(), "the key is the secret's");
    }

    /// A vault that answers with another key than it names, swaps two answers, drops one or
    /// changes a byte of the proof is caught: the member keeps no ID from it.
    #[test]
    fn an_answer_the_proof_does_not_cover_is_refused() {
        let vault = VaultKey::derive(&[7; 32]);
        let other = VaultKey::derive(&[9; 32]);
        let asked = ids(&["a", "b"]);
        let answer =
            |key: &VaultKey, blinded: &Blinded| key.evaluate(VaultKey::parse(&blinded.request).unwrap()).unwrap();

        let blinded = Blinded::new(&asked).unwrap();
        let mut lying = answer(&other, &blinded);
        lying.public_key = vault.public_key();
        assert_eq!(blinded.finalize(&lying).err(), Some(DataIdError::Proof), "another key under ours");

        let blinded = Blinded::new(&asked).unwrap();
        let mut swapped = answer(&vault, &blinded);
        swapped.evaluated.swap(0, 1);
        assert_eq!(blinded.finalize(&swapped).err(), Some(DataIdError::Proof), "answers swapped");

        let blinded = Blinded::new(&asked).unwrap();
        let mut short = answer(&vault, &blinded);
        short.evaluated.pop();
        assert_eq!(blinded.finalize(&short).err(), Some(DataIdError::Proof), "one answer dropped");

        let blinded = Blinded::new(&asked).unwrap();
        let mut forged = answer(&vault, &blinded);
        forged.proof.replace_range(0..2, if forged.proof.starts_with("00") { "01" } else { "00" });
        assert!(blinded.finalize(&forged).is_err(), "a proof changed");

        let blinded = Blinded::new(&asked).unwrap();
        let mut longer = answer(&vault, &blinded);
        longer.public_key.push_str("00");
        assert_eq!(blinded.finalize(&longer).err(), Some(DataIdError::Malformed("public key")), "trailing bytes");
    }

    #[test]
    fn bad_requests_are_refused_with_their_reason() {
        assert_eq!(Blinded::new(&[]).err(), Some(DataIdError::Batch(0)));
        assert_eq!(Blinded::new(&vec!["x".to_string(); MAX_BATCH + 1]).err(), Some(DataIdError::Batch(MAX_BATCH + 1)));
        assert_eq!(Blinded::new(&ids(&["a", "  "])).err(), Some(DataIdError::Identifier(1)));
        let request = |blinded: Vec<String>| DataIdsRequest { blinded };
        assert_eq!(
            VaultKey::parse(&request(vec!["00".repeat(31)])).err(),
            Some(DataIdError::Malformed("blinded element"))
        );
        assert_eq!(
            VaultKey::parse(&request(vec!["zz".repeat(32)])).err(),
            Some(DataIdError::Malformed("blinded element"))
        );
        // The identity point is not a valid blinded element.
        assert_eq!(
            VaultKey::parse(&request(vec!["00".repeat(32)])).err(),
            Some(DataIdError::Malformed("blinded element"))
        );
        assert_eq!(VaultKey::parse(&request(vec![])).err(), Some(DataIdError::Batch(0)));
        assert_eq!(
            format!("{:?}", VaultKey::derive(&[7; 32])).len(),
            "VaultKey()".len() + 64,
            "the secret is never printed"
        );
    }

    /// Many identifiers go in requests of at most [`MAX_BATCH`]; answers under two keys are
    /// refused.
    #[tokio::test]
    async fn many_identifiers_go_in_bounded_requests_under_one_key() {
        let vault = VaultKey::derive(&[7; 32]);
        let asked: Vec<String> = (0..MAX_BATCH + 5).map(|i| format!("patient-{i}")).collect();
        let mut sizes = Vec::new();
        let got = data_ids::<DataIdError, _>(&asked, |request| {
            sizes.push(request.blinded.len());
            let answer = VaultKey::parse(&request).and_then(|b| vault.evaluate(b));
            async move { answer }
        })
        .await
        .unwrap();
        assert_eq!(sizes, vec![MAX_BATCH, 5]);
        assert_eq!(got.public_key, vault.public_key());
        assert_eq!(got.ids[MAX_BATCH + 4], vault.data_id(&format!("patient-{}", MAX_BATCH + 4)).unwrap());

        let mut calls = 0;
        let two_keys = data_ids::<DataIdError, _>(&asked, |request| {
            calls += 1;
            let key = VaultKey::derive(&[calls as u8; 32]);
            let answer = VaultKey::parse(&request).and_then(|b| key.evaluate(b));
            async move { answer }
        })
        .await;
        assert_eq!(two_keys.err(), Some(DataIdError::KeyChanged));
    }
}

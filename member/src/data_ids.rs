//! Anonymised data IDs: what a proposal lists so that no sample is counted twice, without
//! saying which patient it is.
//!
//! A sample's ID is `HMAC-SHA-256(coalition secret, sample identifier)`. Every member holds the
//! same secret (from the coalition's vault), so the same patient at two hospitals gets the same
//! ID and the contract refuses to count it twice; anyone without the secret cannot test a guess
//! of an identifier against the IDs on chain. Identifiers are trimmed of surrounding white space
//! before hashing, so `" 1234 "` and `"1234"` are one patient.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The coalition's secret key for data IDs.
#[derive(Clone)]
pub struct DataIdKey([u8; 32]);

impl std::fmt::Debug for DataIdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataIdKey(..)")
    }
}

/// A key that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a data-ID key is 64 hex digits (32 bytes)")]
pub struct BadKey;

impl DataIdKey {
    /// The key from 64 hex digits (`0x` optional).
    pub fn from_hex(text: &str) -> Result<Self, BadKey> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim().trim_start_matches("0x"), &mut key).map_err(|_| BadKey)?;
        Ok(Self(key))
    }

    /// The anonymised ID of the sample named `identifier`.
    pub fn data_id(&self, identifier: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(identifier.trim().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_patient_gets_the_same_id_under_one_secret_only() {
        let secret = DataIdKey::from_hex(&"11".repeat(32)).unwrap();
        let hospital_a = secret.clone();
        assert_eq!(hospital_a.data_id("patient-1234"), secret.data_id(" patient-1234\n"));
        assert_ne!(secret.data_id("patient-1234"), secret.data_id("patient-1235"));
        let other = DataIdKey::from_hex(&format!("0x{}", "22".repeat(32))).unwrap();
        assert_ne!(
            other.data_id("patient-1234"),
            secret.data_id("patient-1234"),
            "another coalition's IDs do not link"
        );
        // RFC 4231 test case 2 (key "Jefe"), through the same HMAC: the construction is the standard one.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(DataIdKey::from_hex("abcd").err(), Some(BadKey));
        assert_eq!(format!("{secret:?}"), "DataIdKey(..)", "the key is never printed");
    }
}

//! Signing keys (sr25519, from sp-core) and the account ↔ contract-address mapping.

use crate::{Error, Result, H160};
use sp_core::{crypto::Pair as _, sr25519};
use subxt::{
    utils::{AccountId32, MultiSignature},
    PolkadotConfig,
};

/// A secret (a secret URI, a vault key) read from a flag or the environment: its `Debug` never
/// prints it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An sr25519 key pair that signs extrinsics.
///
/// `Debug` prints the public account only: the secret never reaches a log.
#[derive(Clone)]
pub struct Keypair {
    pair: sr25519::Pair,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair").field("account", &self.account_id()).finish_non_exhaustive()
    }
}

impl Keypair {
    /// A key from a secret URI: a mnemonic, a hex seed, or a dev derivation such as `//Alice`,
    /// each optionally followed by `///password`.
    pub fn from_uri(suri: &str) -> Result<Self> {
        sr25519::Pair::from_string(suri, None)
            .map(|pair| Self { pair })
            // The URI itself is secret: say only what kind of failure it was.
            .map_err(|e| Error::Key(format!("invalid secret URI: {e:?}")))
    }

    /// One of the well-known dev accounts: `Alice`, `Bob`, ... (`//Alice` etc.).
    pub fn dev(name: &str) -> Result<Self> {
        Self::from_uri(&format!("//{name}"))
    }

    /// The account the key signs for.
    pub fn account_id(&self) -> AccountId32 {
        AccountId32(self.pair.public().0)
    }

    /// The H160 address pallet-revive knows this account by.
    pub fn address(&self) -> H160 {
        account_to_address(&self.account_id())
    }

    /// Sign arbitrary bytes (for payloads bound to rounds, reports...).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.pair.sign(message).0
    }

    /// The sp-core pair, for callers that need more than signing extrinsics.
    pub fn pair(&self) -> &sr25519::Pair {
        &self.pair
    }
}

/// Whether `signature` is `account`'s sr25519 signature of `message`.
pub fn verify(account: &AccountId32, message: &[u8], signature: &[u8; 64]) -> bool {
    let public = sr25519::Public::from_raw(account.0);
    sr25519::Pair::verify(&sr25519::Signature::from_raw(*signature), message, &public)
}

impl subxt::tx::Signer<PolkadotConfig> for Keypair {
    fn account_id(&self) -> AccountId32 {
        Keypair::account_id(self)
    }

    fn sign(&self, signer_payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(self.pair.sign(signer_payload).0)
    }
}

/// pallet-revive's `AccountId32Mapper`: an account derived from an Ethereum key (its last 12
/// bytes are `0xEE`) keeps its 20-byte prefix; any other account is known by the last 20 bytes of
/// the keccak-256 hash of its 32 bytes.
pub fn account_to_address(account: &AccountId32) -> H160 {
    let bytes = &account.0;
    if is_eth_derived(account) {
        H160::from_slice(&bytes[..20])
    } else {
        H160::from_slice(&sp_crypto_hashing::keccak_256(bytes)[12..])
    }
}

/// Whether `account` is an Ethereum address padded with `0xEE` (such accounts need no mapping).
pub fn is_eth_derived(account: &AccountId32) -> bool {
    account.0[20..].iter().all(|byte| *byte == 0xEE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_keys_are_the_well_known_ones() {
        // Alice's public key, as every Substrate tool prints it.
        let alice = Keypair::dev("Alice").unwrap();
        assert_eq!(
            hex::encode(alice.account_id().0),
            "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert_ne!(alice.address(), Keypair::dev("Bob").unwrap().address());
    }

    #[test]
    fn addresses_follow_the_revive_mapping() {
        let mut eth = [0xEE; 32];
        eth[..20].copy_from_slice(&[7; 20]);
        assert!(is_eth_derived(&AccountId32(eth)));
        assert_eq!(account_to_address(&AccountId32(eth)), H160::from([7; 20]));

        let plain = AccountId32([1; 32]);
        assert!(!is_eth_derived(&plain));
        let hash = sp_crypto_hashing::keccak_256(&[1; 32]);
        assert_eq!(account_to_address(&plain), H160::from_slice(&hash[12..]));
    }

    #[test]
    fn a_bad_secret_is_refused_without_echoing_it() {
        let error = Keypair::from_uri("not a mnemonic at all //x").unwrap_err().to_string();
        assert!(error.starts_with("key: invalid secret URI"), "{error}");
        assert!(!error.contains("mnemonic at all"), "{error}");
        let alice = Keypair::dev("Alice").unwrap();
        let shown = format!("{alice:?}");
        let secret = hex::encode(&alice.pair().to_raw_vec()[..32]);
        assert!(shown.contains("account") && !shown.to_lowercase().contains(&secret), "{shown}");
    }
}

//! Sign-in: a member proves its on-chain account by signing a challenge with its sr25519 key.
//!
//! 1. `POST /api/auth/challenge {account}`: the API checks that the account is a member and
//!    returns a challenge, the sign-in message of `tclearn_api_client::sign_in`: this API's
//!    origin (one of [`Sessions::origins`], the one the request's `Host` names), the coalition,
//!    the account, a random nonce and an expiry. It is valid once, for
//!    [`Sessions::challenge_ttl`].
//! 2. The member checks every field and signs `<Bytes>` + message + `</Bytes>`, as a wallet's
//!    `signRaw` does (the polkadot.js extension, Talisman, SubWallet). A raw, unwrapped
//!    signature is refused ([`verify_signature`]): the key then signs only domain-separated
//!    text.
//! 3. `POST /api/auth/token {account, challenge, signature}`: the challenge is consumed whatever
//!    the outcome (a replay finds it gone), the signature is checked against the account's public
//!    key, membership is checked again, and a random bearer token valid for
//!    [`Sessions::token_ttl`] comes back.
//!
//! Both stores are bounded ([`MAX_PENDING`]); expired entries are dropped as new ones arrive.

use sp_core::{crypto::Pair as _, sr25519};
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tclearn_api_client::sign_in::{origin, signed_bytes, SignInMessage};
use tclearn_client::{AccountId32, H160};

/// Most outstanding challenges, and most live tokens, the API keeps.
pub const MAX_PENDING: usize = 100_000;

/// Why sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a challenge this API issued, or already used, or issued to another account.
    #[error("unknown or already used challenge")]
    UnknownChallenge,
    /// The challenge's time ran out.
    #[error("the challenge expired")]
    ChallengeExpired,
    /// The signature does not verify against the account's key.
    #[error("the signature does not verify for this account and challenge")]
    BadSignature,
    /// Not 64 bytes of hex.
    #[error("a signature is 64 bytes of hex")]
    MalformedSignature,
    /// The bearer token is unknown or was never issued.
    #[error("unknown token")]
    UnknownToken,
    /// The bearer token's time ran out.
    #[error("the token expired")]
    TokenExpired,
    /// Too many challenges or tokens are outstanding.
    #[error("too many sign-ins in progress; try again shortly")]
    Busy,
    /// The request's `Host` is not one of this API's origins.
    #[error("this API answers at {0}; sign in there")]
    UnknownOrigin(String),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// Whether `signature` is `account`'s sr25519 signature of `message` wrapped in
/// `<Bytes>…</Bytes>`, as browser wallets sign raw data. A signature of the bare message is not.
pub fn verify_signature(account: &AccountId32, message: &str, signature: &[u8; 64]) -> bool {
    let public = sr25519::Public::from_raw(account.0);
    let signature = sr25519::Signature::from_raw(*signature);
    sr25519::Pair::verify(&signature, signed_bytes(message), &public)
}

/// A signature in hex (`0x` optional), as wallets return it.
pub fn parse_signature(text: &str) -> Result<[u8; 64], AuthError> {
    let mut signature = [0u8; 64];
    hex::decode_to_slice(text.trim().trim_start_matches("0x"), &mut signature)
        .map_err(|_| AuthError::MalformedSignature)?;
    Ok(signature)
}

/// 32 random bytes.
fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source");
    bytes
}

/// 32 random bytes in hex.
fn random_hex() -> String {
    hex::encode(random_bytes())
}

/// A bearer token issued to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token itself.
    pub token: String,
    /// When it expires (ms since the epoch).
    pub expires_ms: u64,
}

/// Outstanding challenges and live tokens.
pub struct Sessions {
    coalition: H160,
    /// The origins this API answers at (`http://127.0.0.1:8080`): a challenge names the one the
    /// request's `Host` header names, and no other.
    pub origins: Vec<String>,
    /// How long a challenge stays valid.
    pub challenge_ttl: Duration,
    /// How long a token stays valid.
    pub token_ttl: Duration,
    challenges: Mutex<HashMap<String, (AccountId32, u64)>>,
    tokens: Mutex<HashMap<String, (AccountId32, u64)>>,
}

/// Drop expired entries; refuse a new one if the store is still full.
fn make_room(store: &mut HashMap<String, (AccountId32, u64)>, now: u64) -> Result<(), AuthError> {
    if store.len() >= MAX_PENDING {
        store.retain(|_, (_, expires)| *expires > now);
    }
    if store.len() >= MAX_PENDING {
        return Err(AuthError::Busy);
    }
    Ok(())
}

impl Sessions {
    /// Sessions for the coalition at `coalition` (named in every challenge), served at
    /// `origins`.
    pub fn new(coalition: H160, origins: Vec<String>, challenge_ttl: Duration, token_ttl: Duration) -> Self {
        Self { coalition, origins, challenge_ttl, token_ttl, challenges: Mutex::default(), tokens: Mutex::default() }
    }

    /// The origin of ours that a request's `Host` header (`127.0.0.1:8080`, `api.example`)
    /// names, compared as origins (case, default ports).
    pub fn origin_for(&self, host: Option<&str>) -> Result<&str, AuthError> {
        let unknown = || AuthError::UnknownOrigin(self.origins.join(" or "));
        let host = host.filter(|h| !h.is_empty() && !h.contains(['@', '/', '\\', '?', '#'])).ok_or_else(unknown)?;
        self.origins
            .iter()
            .find(|ours| {
                let scheme = ours.split_once("://").map_or("", |(scheme, _)| scheme);
                origin(&format!("{scheme}://{host}")).is_ok_and(|named| named == **ours)
            })
            .map(String::as_str)
            .ok_or_else(unknown)
    }

    /// A new challenge for `account`, naming this API as `api` (one of [`Sessions::origins`]).
    pub fn challenge(&self, account: &AccountId32, api: &str) -> Result<String, AuthError> {
        let now = now_ms();
        let expires = now + self.challenge_ttl.as_millis() as u64;
        let text = SignInMessage {
            api: api.to_string(),
            coalition: self.coalition,
            account: *account,
            nonce: random_bytes(),
            expires_ms: expires,
        }
        .text();
        let mut challenges = self.challenges.lock().expect("sessions lock");
        make_room(&mut challenges, now)?;
        challenges.insert(text.clone(), (*account, expires));
        Ok(text)
    }

    /// Consume `challenge` and check `signature`: the account it was issued to, if both hold.
    /// The challenge is gone afterwards whatever the outcome.
    pub fn redeem(&self, account: &AccountId32, challenge: &str, signature: &[u8; 64]) -> Result<(), AuthError> {
        let entry = self.challenges.lock().expect("sessions lock").remove(challenge);
        let Some((issued_to, expires)) = entry else { return Err(AuthError::UnknownChallenge) };
        if &issued_to != account {
            return Err(AuthError::UnknownChallenge);
        }
        if expires <= now_ms() {
            return Err(AuthError::ChallengeExpired);
        }
        if !verify_signature(account, challenge, signature) {
            return Err(AuthError::BadSignature);
        }
        Ok(())
    }

    /// A new token for `account` (already proven).
    pub fn issue(&self, account: &AccountId32) -> Result<Token, AuthError> {
        let now = now_ms();
        let expires_ms = now + self.token_ttl.as_millis() as u64;
        let token = random_hex();
        let mut tokens = self.tokens.lock().expect("sessions lock");
        make_room(&mut tokens, now)?;
        tokens.insert(token.clone(), (*account, expires_ms));
        Ok(Token { token, expires_ms })
    }

    /// Forget every token of `account`: it is no longer a member.
    pub fn revoke_account(&self, account: &AccountId32) {
        self.tokens.lock().expect("sessions lock").retain(|_, (holder, _)| holder != account);
    }

    /// The account `token` was issued to, if it is live.
    pub fn account_of(&self, token: &str) -> Result<AccountId32, AuthError> {
        let mut tokens = self.tokens.lock().expect("sessions lock");
        let (account, expires) = tokens.get(token).cloned().ok_or(AuthError::UnknownToken)?;
        if expires <= now_ms() {
            tokens.remove(token);
            return Err(AuthError::TokenExpired);
        }
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tclearn_client::Keypair;

    const API: &str = "http://127.0.0.1:8080";

    fn sessions(challenge_ttl: Duration, token_ttl: Duration) -> Sessions {
        Sessions::new(H160::repeat_byte(0xc0), vec![API.into()], challenge_ttl, token_ttl)
    }

    fn sign(key: &Keypair, challenge: &str) -> [u8; 64] {
        key.sign(&signed_bytes(challenge))
    }

    #[test]
    fn signatures_verify_wrapped_and_nothing_else() {
        let alice = Keypair::dev("Alice").unwrap();
        let bob = Keypair::dev("Bob").unwrap();
        let message = "tclearn sign-in: api x";
        let wrapped = sign(&alice, message);
        assert!(verify_signature(&alice.account_id(), message, &wrapped), "the extension's <Bytes> wrapping");
        let raw = alice.sign(message.as_bytes());
        assert!(!verify_signature(&alice.account_id(), message, &raw), "a raw signature: refused");
        assert!(!verify_signature(&bob.account_id(), message, &wrapped), "another account's key");
        assert!(!verify_signature(&alice.account_id(), "tclearn sign-in: api y", &wrapped), "another message");
        let mut forged = wrapped;
        forged[10] ^= 1;
        assert!(!verify_signature(&alice.account_id(), message, &forged));
        assert_eq!(parse_signature("0x12"), Err(AuthError::MalformedSignature));
        assert_eq!(parse_signature(&format!("0x{}", hex::encode(raw))), Ok(raw));
    }

    #[test]
    fn a_challenge_names_the_origin_its_request_reached_and_only_ours() {
        let sessions = Sessions::new(
            H160::repeat_byte(0xc0),
            vec![API.into(), "http://localhost:8080".into()],
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        assert_eq!(sessions.origin_for(Some("LOCALHOST:8080")), Ok("http://localhost:8080"));
        assert_eq!(sessions.origin_for(Some("127.0.0.1:8080")), Ok(API));
        let tls = Sessions::new(H160::zero(), vec!["https://api.example".into()], Duration::ZERO, Duration::ZERO);
        assert_eq!(tls.origin_for(Some("api.example:443")), Ok("https://api.example"), "an explicit default port");
        assert_eq!(tls.origin_for(Some("API.example")), Ok("https://api.example"));
        for host in [
            Some("evil.example"),
            Some("127.0.0.1:8081"),
            Some("evil@127.0.0.1:8080"),
            Some("127.0.0.1:8080/x"),
            Some(""),
            None,
        ] {
            assert!(matches!(sessions.origin_for(host), Err(AuthError::UnknownOrigin(_))), "{host:?}");
        }
        let alice = Keypair::dev("Alice").unwrap();
        let text = sessions.challenge(&alice.account_id(), API).unwrap();
        let message =
            SignInMessage::check(&text, API, &alice.account_id(), Some(&H160::repeat_byte(0xc0)), now_ms()).unwrap();
        assert_eq!(message.api, API);
    }

    #[test]
    fn a_challenge_is_redeemed_once_by_its_account_before_it_expires() {
        let alice = Keypair::dev("Alice").unwrap();
        let bob = Keypair::dev("Bob").unwrap();
        let sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let challenge = sessions.challenge(&alice.account_id(), API).unwrap();
        assert!(challenge.contains(&alice.account_id().to_string()) && challenge.contains("0xc0c0"));
        let signature = sign(&alice, &challenge);
        assert_eq!(sessions.redeem(&alice.account_id(), &challenge, &signature), Ok(()));
        assert_eq!(
            sessions.redeem(&alice.account_id(), &challenge, &signature),
            Err(AuthError::UnknownChallenge),
            "replay"
        );

        // Bob cannot redeem Alice's challenge, even with his own signature; and it is gone after.
        let challenge = sessions.challenge(&alice.account_id(), API).unwrap();
        let by_bob = sign(&bob, &challenge);
        assert_eq!(sessions.redeem(&bob.account_id(), &challenge, &by_bob), Err(AuthError::UnknownChallenge));
        assert_eq!(
            sessions.redeem(&alice.account_id(), &challenge, &sign(&alice, &challenge)),
            Err(AuthError::UnknownChallenge)
        );

        // A forged signature consumes the challenge too.
        let challenge = sessions.challenge(&alice.account_id(), API).unwrap();
        assert_eq!(sessions.redeem(&alice.account_id(), &challenge, &by_bob), Err(AuthError::BadSignature));
        assert_eq!(
            sessions.redeem(&alice.account_id(), &challenge, &sign(&alice, &challenge)),
            Err(AuthError::UnknownChallenge)
        );

        let expiring = sessions_with_zero_ttl();
        let challenge = expiring.challenge(&alice.account_id(), API).unwrap();
        assert_eq!(
            expiring.redeem(&alice.account_id(), &challenge, &sign(&alice, &challenge)),
            Err(AuthError::ChallengeExpired)
        );
    }

    fn sessions_with_zero_ttl() -> Sessions {
        sessions(Duration::ZERO, Duration::ZERO)
    }

    #[test]
    fn tokens_name_their_account_until_they_expire() {
        let alice = Keypair::dev("Alice").unwrap();
        let sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let token = sessions.issue(&alice.account_id()).unwrap();
        assert_eq!(token.token.len(), 64);
        assert_eq!(sessions.account_of(&token.token), Ok(alice.account_id()));
        assert_eq!(sessions.account_of("feed"), Err(AuthError::UnknownToken));
        let expired = sessions_with_zero_ttl().issue(&alice.account_id()).unwrap();
        assert_eq!(sessions.account_of(&expired.token), Err(AuthError::UnknownToken), "tokens belong to their API");
        let zero = sessions_with_zero_ttl();
        let token = zero.issue(&alice.account_id()).unwrap();
        assert_eq!(zero.account_of(&token.token), Err(AuthError::TokenExpired));
    }
}

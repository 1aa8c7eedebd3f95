//! Sign-in: a member proves its on-chain account by signing a challenge with its sr25519 key.
//!
//! 1. `POST /api/auth/challenge {account}`: the API checks that the account is a member and
//!    returns a challenge, the sign-in message of `tclearn_api_client::sign_in`: this API's
//!    origin (one of [`Sessions::origins`], the one the request's `Host` names), the coalition,
//!    the account, a nonce and an expiry. It is valid once, for [`Sessions::challenge_ttl`].
//!    The API keeps nothing per challenge: the nonce is 16 random bytes and an HMAC-SHA-256 tag
//!    (16 bytes) of the message's fields under a key drawn at start, so only challenges this API
//!    issued redeem, and no flood of challenges (for any account, alias or not) fills a table.
//! 2. The member checks every field and signs `<Bytes>` + message + `</Bytes>`, as a wallet's
//!    `signRaw` does (the polkadot.js extension, Talisman, SubWallet). A raw, unwrapped
//!    signature is refused ([`verify_signature`]): the key then signs only domain-separated
//!    text.
//! 3. `POST /api/auth/token {account, challenge, signature}`: the tag, the account and the
//!    expiry are checked, then the signature against the account's public key; only then is the
//!    nonce recorded as used (a replay finds it), membership checked again, and a random bearer
//!    token valid for [`Sessions::token_ttl`] comes back.
//!
//! What the API does keep grows only with sign-ins signed by members' own keys, and is bounded
//! per account: at most [`MAX_SIGN_INS_PER_ACCOUNT`] redeemed nonces within one challenge
//! lifetime, and [`MAX_TOKENS_PER_ACCOUNT`] live tokens (a new one drops the account's oldest),
//! under an overall bound ([`MAX_PENDING`]). A member can exhaust its own sign-ins, no one else's.

use hmac::{Hmac, Mac};
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tclearn_api_client::sign_in::{origin, signed_bytes, SignInMessage};
use tclearn_client::{AccountId32, H160};

/// Most redeemed nonces, and most live tokens, the API keeps in all.
pub const MAX_PENDING: usize = 100_000;
/// Most sign-ins one account completes within one challenge lifetime.
pub const MAX_SIGN_INS_PER_ACCOUNT: usize = 32;
/// Most live tokens of one account; a new one replaces its oldest.
pub const MAX_TOKENS_PER_ACCOUNT: usize = 64;
/// Bytes of a nonce that are random; the rest is the tag.
const NONCE_RANDOM: usize = 16;
/// Domain of the challenges' tag.
const CHALLENGE_TAG: &[u8] = b"tclearn-api challenge v1";

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
    /// Too many sign-ins, by this account or in all.
    #[error("too many sign-ins; try again shortly")]
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
    tclearn_client::verify(account, &signed_bytes(message), signature)
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

/// A redeemed nonce and its challenge's expiry.
type Redeemed = ([u8; 32], u64);

/// The challenges' key, redeemed nonces and live tokens.
pub struct Sessions {
    coalition: H160,
    /// The origins this API answers at (`http://127.0.0.1:8080`): a challenge names the one the
    /// request's `Host` header names, and no other.
    pub origins: Vec<String>,
    /// How long a challenge stays valid.
    pub challenge_ttl: Duration,
    /// How long a token stays valid.
    pub token_ttl: Duration,
    /// The key of the challenges' tags (drawn at start: a restart voids outstanding challenges).
    key: [u8; 32],
    /// Per account, the nonces it redeemed and their challenges' expiry.
    redeemed: Mutex<HashMap<[u8; 32], Vec<Redeemed>>>,
    /// Live tokens: the account, the expiry, and the order of issue.
    tokens: Mutex<HashMap<String, (AccountId32, u64, u64)>>,
    /// Tokens issued so far.
    issued: std::sync::atomic::AtomicU64,
    /// The wall clock when these sessions began, ms since the epoch, and the monotonic clock
    /// then ([`Sessions::now`]).
    epoch_ms: u64,
    started: std::time::Instant,
}

/// Make room in `tokens` for one of `account`'s: drop its oldest past
/// [`MAX_TOKENS_PER_ACCOUNT`], and expired ones when the store is full; refuse if it still is.
fn make_room(
    tokens: &mut HashMap<String, (AccountId32, u64, u64)>,
    account: &AccountId32,
    now: u64,
) -> Result<(), AuthError> {
    let mut own: Vec<(u64, &String)> =
        tokens.iter().filter(|(_, (holder, _, _))| holder == account).map(|(t, (_, _, order))| (*order, t)).collect();
    if own.len() >= MAX_TOKENS_PER_ACCOUNT {
        own.sort_unstable();
        let oldest: Vec<String> =
            own.iter().take(own.len() + 1 - MAX_TOKENS_PER_ACCOUNT).map(|(_, t)| (*t).clone()).collect();
        for token in oldest {
            tokens.remove(&token);
        }
    }
    if tokens.len() >= MAX_PENDING {
        tokens.retain(|_, (_, expires, _)| *expires > now);
    }
    if tokens.len() >= MAX_PENDING {
        return Err(AuthError::Busy);
    }
    Ok(())
}

impl Sessions {
    /// Sessions for the coalition at `coalition` (named in every challenge), served at
    /// `origins`.
    pub fn new(coalition: H160, origins: Vec<String>, challenge_ttl: Duration, token_ttl: Duration) -> Self {
        Self {
            coalition,
            origins,
            challenge_ttl,
            token_ttl,
            key: random_bytes(),
            redeemed: Mutex::default(),
            tokens: Mutex::default(),
            issued: std::sync::atomic::AtomicU64::new(0),
            epoch_ms: now_ms(),
            started: std::time::Instant::now(),
        }
    }

    /// Milliseconds since the epoch by a clock that the system clock's steps do not move: the
    /// wall clock at start plus the monotonic time since. A redeemed challenge's record is
    /// forgotten once it expires; were this clock set back, the challenge would look unexpired
    /// again and could be replayed (and set forward, tokens would expire early).
    fn now(&self) -> u64 {
        self.epoch_ms.saturating_add(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The tag of a challenge's fields (the nonce's random part among them).
    fn tag(&self, message: &SignInMessage) -> Hmac<sha2_10::Sha256> {
        let mut mac = <Hmac<sha2_10::Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key");
        for field in [
            CHALLENGE_TAG,
            message.api.as_bytes(),
            message.coalition.as_bytes(),
            &message.account.0,
            &message.expires_ms.to_le_bytes(),
            message.nonce.get(..NONCE_RANDOM).unwrap_or_default(),
        ] {
            mac.update(&(field.len() as u64).to_le_bytes());
            mac.update(field);
        }
        mac
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
    /// Nothing is kept.
    pub fn challenge(&self, account: &AccountId32, api: &str) -> String {
        self.challenge_issued_at(account, api, self.now())
    }

    /// A new challenge as issued when the clock read `now` (ms since the epoch).
    fn challenge_issued_at(&self, account: &AccountId32, api: &str, now: u64) -> String {
        let mut message = SignInMessage {
            api: api.to_string(),
            coalition: self.coalition,
            account: *account,
            nonce: random_bytes(),
            expires_ms: now + self.challenge_ttl.as_millis() as u64,
        };
        let tag = self.tag(&message).finalize().into_bytes();
        if let (Some(nonce_tag), Some(tag)) = (message.nonce.get_mut(NONCE_RANDOM..), tag.get(..32 - NONCE_RANDOM)) {
            nonce_tag.copy_from_slice(tag);
        }
        message.text()
    }

    /// Check that `challenge` is one this API issued to `account`, unexpired and unused, and
    /// that `signature` is the account's; then record it as used.
    pub fn redeem(&self, account: &AccountId32, challenge: &str, signature: &[u8; 64]) -> Result<(), AuthError> {
        let message = SignInMessage::parse(challenge).map_err(|_| AuthError::UnknownChallenge)?;
        let tag = message.nonce.get(NONCE_RANDOM..).unwrap_or_default();
        if &message.account != account || self.tag(&message).verify_truncated_left(tag).is_err() {
            return Err(AuthError::UnknownChallenge);
        }
        let now = self.now();
        // Valid from issue to expiry, by this clock: a challenge that expires later than one
        // issued now was issued before the clock went back, and its redemption's record may be
        // forgotten already (records are kept until expiry), so it could be replayed.
        if message.expires_ms <= now || message.expires_ms > now.saturating_add(self.challenge_ttl.as_millis() as u64) {
            return Err(AuthError::ChallengeExpired);
        }
        if !verify_signature(account, challenge, signature) {
            return Err(AuthError::BadSignature);
        }
        let mut redeemed = self.redeemed.lock().expect("sessions lock");
        if redeemed.len() >= MAX_PENDING {
            redeemed.retain(|_, nonces| {
                nonces.retain(|(_, expires)| *expires > now);
                !nonces.is_empty()
            });
        }
        let full = redeemed.len() >= MAX_PENDING && !redeemed.contains_key(&account.0);
        let nonces = redeemed.entry(account.0).or_default();
        nonces.retain(|(_, expires)| *expires > now);
        if nonces.iter().any(|(nonce, _)| *nonce == message.nonce) {
            return Err(AuthError::UnknownChallenge);
        }
        if full || nonces.len() >= MAX_SIGN_INS_PER_ACCOUNT {
            return Err(AuthError::Busy);
        }
        nonces.push((message.nonce, message.expires_ms));
        Ok(())
    }

    /// A new token for `account` (already proven).
    pub fn issue(&self, account: &AccountId32) -> Result<Token, AuthError> {
        let now = self.now();
        let expires_ms = now + self.token_ttl.as_millis() as u64;
        let token = random_hex();
        let mut tokens = self.tokens.lock().expect("sessions lock");
        make_room(&mut tokens, account, now)?;
        let order = self.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokens.insert(token.clone(), (*account, expires_ms, order));
        Ok(Token { token, expires_ms })
    }

    /// Forget every token of `account`: it is no longer a member.
    pub fn revoke_account(&self, account: &AccountId32) {
        self.tokens.lock().expect("sessions lock").retain(|_, (holder, _, _)| holder != account);
    }

    /// The account `token` was issued to, if it is live.
    pub fn account_of(&self, token: &str) -> Result<AccountId32, AuthError> {
        let mut tokens = self.tokens.lock().expect("sessions lock");
        let (account, expires, _) = tokens.get(token).cloned().ok_or(AuthError::UnknownToken)?;
        if expires <= self.now() {
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
        let text = sessions.challenge(&alice.account_id(), API);
        let message =
            SignInMessage::check(&text, API, &alice.account_id(), Some(&H160::repeat_byte(0xc0)), now_ms()).unwrap();
        assert_eq!(message.api, API);
    }

    #[test]
    fn a_challenge_is_redeemed_once_by_its_account_before_it_expires() {
        let alice = Keypair::dev("Alice").unwrap();
        let bob = Keypair::dev("Bob").unwrap();
        let sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let challenge = sessions.challenge(&alice.account_id(), API);
        assert!(challenge.contains(&alice.account_id().to_string()) && challenge.contains("0xc0c0"));
        let signature = sign(&alice, &challenge);
        assert_eq!(sessions.redeem(&alice.account_id(), &challenge, &signature), Ok(()));
        assert_eq!(
            sessions.redeem(&alice.account_id(), &challenge, &signature),
            Err(AuthError::UnknownChallenge),
            "replay"
        );

        // Bob cannot redeem Alice's challenge, even with his own signature, nor forge Alice's:
        // neither uses it up for her.
        let challenge = sessions.challenge(&alice.account_id(), API);
        let by_bob = sign(&bob, &challenge);
        assert_eq!(sessions.redeem(&bob.account_id(), &challenge, &by_bob), Err(AuthError::UnknownChallenge));
        assert_eq!(sessions.redeem(&alice.account_id(), &challenge, &by_bob), Err(AuthError::BadSignature));
        assert_eq!(sessions.redeem(&alice.account_id(), &challenge, &sign(&alice, &challenge)), Ok(()));

        let expiring = sessions_with_zero_ttl();
        let challenge = expiring.challenge(&alice.account_id(), API);
        assert_eq!(
            expiring.redeem(&alice.account_id(), &challenge, &sign(&alice, &challenge)),
            Err(AuthError::ChallengeExpired)
        );
    }

    #[test]
    fn a_challenge_from_before_the_clock_went_back_is_not_redeemed() {
        // Issued an hour "later" than now: as if the clock had been set back an hour since,
        // after its redemption's record was forgotten at its expiry.
        let alice = Keypair::dev("Alice").unwrap();
        let sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let before = sessions.challenge_issued_at(&alice.account_id(), API, now_ms() + 3_600_000);
        assert_eq!(
            sessions.redeem(&alice.account_id(), &before, &sign(&alice, &before)),
            Err(AuthError::ChallengeExpired)
        );
        let now = sessions.challenge(&alice.account_id(), API);
        assert_eq!(sessions.redeem(&alice.account_id(), &now, &sign(&alice, &now)), Ok(()));
    }

    #[test]
    fn a_redeemed_challenge_stays_spent_when_the_clock_is_set_back_less_than_its_lifetime() {
        let alice = Keypair::dev("Alice").unwrap();
        let mut sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let spent = sessions.challenge(&alice.account_id(), API);
        let signature = sign(&alice, &spent);
        assert_eq!(sessions.redeem(&alice.account_id(), &spent, &signature), Ok(()));
        // Time passes its expiry (the API's clock reads 61 s later), and Alice's next sign-in
        // prunes the record of the spent one.
        let expiry = SignInMessage::parse(&spent).unwrap().expires_ms;
        sessions.epoch_ms += 61_000;
        let next = sessions.challenge(&alice.account_id(), API);
        assert_eq!(sessions.redeem(&alice.account_id(), &next, &sign(&alice, &next)), Ok(()));
        // The system clock reads before that expiry (it does, here: as if set back 61 s), and
        // the spent challenge is replayed: still expired, by the API's own clock.
        assert!(now_ms() < expiry);
        assert_eq!(sessions.redeem(&alice.account_id(), &spent, &signature), Err(AuthError::ChallengeExpired));
    }

    #[test]
    fn only_challenges_this_api_issued_redeem() {
        let alice = Keypair::dev("Alice").unwrap();
        let sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let issued = sessions.challenge(&alice.account_id(), API);
        let message = SignInMessage::parse(&issued).unwrap();
        // Another API's challenge (another key), and ours with any field changed: the expiry
        // pushed out, the nonce's random part or its tag altered.
        let foreign = sessions_with_zero_ttl().challenge(&alice.account_id(), API);
        let later = SignInMessage { expires_ms: message.expires_ms + 3_600_000, ..message.clone() }.text();
        let mut nonce = message.nonce;
        nonce[0] ^= 1;
        let other_random = SignInMessage { nonce, ..message.clone() }.text();
        let mut nonce = message.nonce;
        nonce[31] ^= 1;
        let other_tag = SignInMessage { nonce, ..message.clone() }.text();
        for forged in [foreign, later, other_random, other_tag, "not a sign-in message".to_string()] {
            let signature = sign(&alice, &forged);
            assert_eq!(sessions.redeem(&alice.account_id(), &forged, &signature), Err(AuthError::UnknownChallenge));
        }
        assert_eq!(sessions.redeem(&alice.account_id(), &issued, &sign(&alice, &issued)), Ok(()));
    }

    #[test]
    fn a_flood_of_challenges_locks_no_one_out() {
        // The old API kept every challenge until it expired: 100,000 of them for one public
        // member address, requested by anyone, and every sign-in got 503.
        let alice = Keypair::dev("Alice").unwrap();
        let bob = Keypair::dev("Bob").unwrap();
        let sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let first = sessions.challenge(&alice.account_id(), API);
        for _ in 0..MAX_PENDING + 10 {
            sessions.challenge(&alice.account_id(), API);
        }
        assert_eq!(sessions.redeem(&alice.account_id(), &first, &sign(&alice, &first)), Ok(()));
        let challenge = sessions.challenge(&bob.account_id(), API);
        assert_eq!(sessions.redeem(&bob.account_id(), &challenge, &sign(&bob, &challenge)), Ok(()));
        assert_eq!(sessions.issue(&bob.account_id()).map(|t| t.token.len()), Ok(64));
    }

    #[test]
    fn a_member_exhausts_its_own_sign_ins_and_tokens_only() {
        let alice = Keypair::dev("Alice").unwrap();
        let bob = Keypair::dev("Bob").unwrap();
        let sessions = sessions(Duration::from_secs(60), Duration::from_secs(60));
        let sign_in = |key: &Keypair| {
            let challenge = sessions.challenge(&key.account_id(), API);
            sessions.redeem(&key.account_id(), &challenge, &sign(key, &challenge))
        };
        for _ in 0..MAX_SIGN_INS_PER_ACCOUNT {
            assert_eq!(sign_in(&alice), Ok(()));
        }
        assert_eq!(sign_in(&alice), Err(AuthError::Busy), "Alice, within one challenge lifetime");
        assert_eq!(sign_in(&bob), Ok(()), "Bob signs in");
        let tokens: Vec<Token> =
            (0..MAX_TOKENS_PER_ACCOUNT + 3).map(|_| sessions.issue(&alice.account_id()).unwrap()).collect();
        assert_eq!(sessions.account_of(&tokens[0].token), Err(AuthError::UnknownToken), "her oldest token made room");
        assert!(tokens[3..].iter().all(|t| sessions.account_of(&t.token) == Ok(alice.account_id())));
        let bobs = sessions.issue(&bob.account_id()).unwrap();
        assert_eq!(sessions.account_of(&bobs.token), Ok(bob.account_id()));
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

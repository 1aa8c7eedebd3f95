//! The sign-in message: the one text a member's key signs to sign in to a members' API.
//!
//! ```text
//! <Bytes>tclearn sign-in: api <origin>, coalition <address>, account <account>, nonce <n>, expires <t></Bytes>
//! ```
//!
//! The API issues the inner text ([`SignInMessage::text`]); the member checks every field before
//! signing ([`SignInMessage::check`]) and signs it wrapped in `<Bytes>…</Bytes>`
//! ([`signed_bytes`]), as the polkadot.js extension, Talisman and SubWallet do for raw data.
//!
//! Why: a key that signs whatever a server sends can be made to sign anything, an extrinsic
//! included, by a malicious API or by a man in the middle of plain HTTP. Here the signed bytes
//! are domain-separated (the wrapping, which no extrinsic payload starts with, and the fixed
//! prefix), and bound to one API origin (a relaying API cannot reuse them), one coalition, one
//! account, one nonce and a short expiry. The API accepts only the wrapped form.

use reqwest::Url;
use tclearn_client::{parse, AccountId32, H160};

/// The fixed start of the signed text.
pub const PREFIX: &str = "tclearn sign-in: ";

/// What browser wallets wrap raw data in before signing it.
pub const WRAP_OPEN: &str = "<Bytes>";
/// The end of the wrapping.
pub const WRAP_CLOSE: &str = "</Bytes>";

/// Latest expiry a member accepts, from now: a challenge lives for minutes, not days.
pub const MAX_LIFETIME_MS: u64 = 10 * 60 * 1000;

/// A sign-in message, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInMessage {
    /// The API's origin (`https://api.example:8443`), as [`origin`] writes it.
    pub api: String,
    /// The coalition contract.
    pub coalition: H160,
    /// The member's account.
    pub account: AccountId32,
    /// 32 random bytes.
    pub nonce: [u8; 32],
    /// When the challenge expires, milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// Why a member refuses to sign, or why a text is not a sign-in message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// Not of the form `tclearn sign-in: api …, coalition …, account …, nonce …, expires …`.
    #[error("not a TCLearn sign-in message: {0}")]
    Malformed(&'static str),
    /// Issued for another API than the one asked.
    #[error("the challenge names the API {found}, not {expected}: refusing to sign")]
    WrongApi {
        /// The API the member connected to.
        expected: String,
        /// The one the challenge names.
        found: String,
    },
    /// Issued for another coalition.
    #[error("the challenge names the coalition {found:#x}, not {expected:#x}: refusing to sign")]
    WrongCoalition {
        /// The member's coalition.
        expected: H160,
        /// The one the challenge names.
        found: H160,
    },
    /// Issued for another account.
    #[error("the challenge names another account: refusing to sign")]
    WrongAccount,
    /// Already expired, or expiring further ahead than [`MAX_LIFETIME_MS`].
    #[error("the challenge's expiry is not within the next ten minutes: refusing to sign")]
    BadExpiry,
    /// Not a URL with a scheme and a host.
    #[error("{0:?} is not an http(s) URL")]
    BadUrl(String),
}

/// The origin (`scheme://host[:port]`, lowercase, default port left out) of an API's URL.
///
/// # Errors
/// [`SignInError::BadUrl`] for a text that is not an http(s) URL with a host.
pub fn origin(url: &str) -> Result<String, SignInError> {
    let parsed = Url::parse(url).map_err(|_| SignInError::BadUrl(url.into()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(SignInError::BadUrl(url.into()));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// The bytes a member's key signs for `text`: `<Bytes>` + text + `</Bytes>`.
pub fn signed_bytes(text: &str) -> Vec<u8> {
    [WRAP_OPEN, text, WRAP_CLOSE].concat().into_bytes()
}

/// The value of `name value`, non-empty.
fn field(text: &str, name: &'static str) -> Result<String, SignInError> {
    text.strip_prefix(name)
        .and_then(|v| v.strip_prefix(' '))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or(SignInError::Malformed(name))
}

impl SignInMessage {
    /// The text the API issues and the member signs (wrapped).
    pub fn text(&self) -> String {
        format!(
            "{PREFIX}api {}, coalition {:#x}, account {}, nonce {}, expires {}",
            self.api,
            self.coalition,
            self.account,
            hex::encode(self.nonce),
            self.expires_ms
        )
    }

    /// Read `text` back, field by field: only a text [`SignInMessage::text`] writes parses.
    ///
    /// # Errors
    /// [`SignInError::Malformed`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, SignInError> {
        let rest = text.strip_prefix(PREFIX).ok_or(SignInError::Malformed("it does not start with the prefix"))?;
        let fields: Vec<&str> = rest.split(", ").collect();
        let [api, coalition, account, nonce_text, expires] = fields.as_slice() else {
            return Err(SignInError::Malformed("it does not have exactly five fields"));
        };
        let api = field(api, "api")?;
        if origin(&api).ok().as_deref() != Some(api.as_str()) {
            return Err(SignInError::Malformed("api is not an origin"));
        }
        let coalition =
            parse::address(&field(coalition, "coalition")?).map_err(|_| SignInError::Malformed("coalition"))?;
        let account = parse::account(&field(account, "account")?).map_err(|_| SignInError::Malformed("account"))?;
        let mut nonce = [0u8; 32];
        hex::decode_to_slice(field(nonce_text, "nonce")?, &mut nonce).map_err(|_| SignInError::Malformed("nonce"))?;
        let expires_ms = field(expires, "expires")?.parse().map_err(|_| SignInError::Malformed("expires"))?;
        let message = Self { api, coalition, account, nonce, expires_ms };
        // One text per message: no leading zeros, no other spelling of a field.
        if message.text() != text {
            return Err(SignInError::Malformed("it is not written canonically"));
        }
        Ok(message)
    }

    /// What a member checks before signing `text`: that it is a sign-in message for the API at
    /// `api_url`, the member's `account`, the member's `coalition` (when the member knows it
    /// from elsewhere than this API), expiring within [`MAX_LIFETIME_MS`] of `now_ms`.
    ///
    /// # Errors
    /// The first field that is wrong.
    pub fn check(
        text: &str,
        api_url: &str,
        account: &AccountId32,
        coalition: Option<&H160>,
        now_ms: u64,
    ) -> Result<Self, SignInError> {
        let message = Self::parse(text)?;
        let expected = origin(api_url)?;
        if message.api != expected {
            return Err(SignInError::WrongApi { expected, found: message.api });
        }
        if let Some(expected) = coalition.filter(|c| **c != message.coalition) {
            return Err(SignInError::WrongCoalition { expected: *expected, found: message.coalition });
        }
        if &message.account != account {
            return Err(SignInError::WrongAccount);
        }
        if message.expires_ms <= now_ms || message.expires_ms > now_ms.saturating_add(MAX_LIFETIME_MS) {
            return Err(SignInError::BadExpiry);
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tclearn_client::Keypair;

    const NOW: u64 = 1_800_000_000_000;

    fn message() -> SignInMessage {
        SignInMessage {
            api: "http://127.0.0.1:8080".into(),
            coalition: H160::repeat_byte(0xc0),
            account: Keypair::dev("Bob").unwrap().account_id(),
            nonce: [7; 32],
            expires_ms: NOW + 120_000,
        }
    }

    #[test]
    fn a_message_reads_back_and_only_its_own_spelling_parses() {
        let text = message().text();
        assert!(text.starts_with("tclearn sign-in: api http://127.0.0.1:8080, coalition 0xc0c0"), "{text}");
        assert_eq!(SignInMessage::parse(&text), Ok(message()));
        let bob = message().account.to_string();
        let hex_account = format!("0x{}", hex::encode(message().account.0));
        for forged in [
            text.replace("tclearn sign-in", "TCLearn sign-in"),
            text.replace(", expires", ",  expires"),
            text.replace("expires 1", "expires 01"),
            text.replace(&bob, &hex_account),
            format!("{text}, extra x"),
            format!("{text}\nSend 100 units"),
            text.replace("api http://127.0.0.1:8080", "api http://127.0.0.1:8080/path"),
            text.replace("nonce 07", "nonce 7"),
            String::new(),
        ] {
            assert!(SignInMessage::parse(&forged).is_err(), "{forged:?}");
        }
    }

    #[test]
    fn a_member_signs_only_for_the_api_it_asked_its_account_its_coalition_and_soon() {
        let (text, bob) = (message().text(), message().account);
        let coalition = message().coalition;
        let check = |api: &str, account: &AccountId32, coalition: Option<&H160>, now: u64| {
            SignInMessage::check(&text, api, account, coalition, now)
        };
        assert_eq!(check("http://127.0.0.1:8080/", &bob, Some(&coalition), NOW), Ok(message()));
        assert_eq!(check("HTTP://127.0.0.1:8080", &bob, None, NOW), Ok(message()), "origins compare normalised");
        assert!(matches!(check("http://127.0.0.1:8081", &bob, None, NOW), Err(SignInError::WrongApi { .. })));
        assert!(matches!(check("https://127.0.0.1:8080", &bob, None, NOW), Err(SignInError::WrongApi { .. })));
        let other = H160::repeat_byte(1);
        assert!(matches!(
            check("http://127.0.0.1:8080", &bob, Some(&other), NOW),
            Err(SignInError::WrongCoalition { .. })
        ));
        let alice = Keypair::dev("Alice").unwrap().account_id();
        assert_eq!(check("http://127.0.0.1:8080", &alice, None, NOW), Err(SignInError::WrongAccount));
        assert_eq!(check("http://127.0.0.1:8080", &bob, None, NOW + 120_000), Err(SignInError::BadExpiry), "expired");
        assert_eq!(
            check("http://127.0.0.1:8080", &bob, None, NOW - MAX_LIFETIME_MS),
            Err(SignInError::BadExpiry),
            "too far ahead"
        );
        assert!(matches!(check("ftp://127.0.0.1", &bob, None, NOW), Err(SignInError::BadUrl(_))));
    }

    #[test]
    fn origins_drop_paths_and_default_ports() {
        assert_eq!(origin("https://API.example:443/x?y").unwrap(), "https://api.example");
        assert_eq!(origin("http://127.0.0.1:9/").unwrap(), "http://127.0.0.1:9");
        assert!(origin("not a url").is_err());
        assert_eq!(signed_bytes("x"), b"<Bytes>x</Bytes>".to_vec());
    }
}

//! A Rust client of the members' API: sign in with an sr25519 key, upload, download. The one
//! sign-in of every TCLearn program: `tclearn-api upload`, the member's command line, and the
//! oracle reading candidates from the vault.
//!
//! Sign-in checks the API's challenge ([`crate::sign_in`]), answers it with an sr25519 signature of
//! it wrapped in `<Bytes>…</Bytes>`, and gets a bearer token, which
//! [`ApiClient::token`] keeps until it nears its expiry and renews after.

use crate::{
    receipt::{self, Receipt},
    sign_in::{signed_bytes, SignInError, SignInMessage},
    views::{AnchorView, ChallengeResponse, DataIdsAnswer, StoredObject, TokenResponse},
};
use tclearn_client::{Keypair, H160};
use tokio::sync::Mutex;

/// A token this close to its expiry (ms) is renewed rather than sent.
const RENEW_BEFORE_MS: u64 = 10_000;
/// Most bytes read of a JSON answer: a members' API that streams more is refused, not held in
/// memory (an oracle signs in on every tick).
pub const MAX_JSON_BYTES: usize = 16 << 20;
/// Most bytes read of an error's body, for its message.
const MAX_ERROR_BYTES: usize = 64 << 10;

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
    /// The API's receipt of an access is missing or does not check.
    #[error("{url}: the API's audit receipt: {reason}")]
    Receipt {
        /// What was asked.
        url: String,
        /// What is wrong.
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
    /// The API's challenge is not one this member signs (another API's, account's or
    /// coalition's, or not a sign-in message at all).
    #[error("{url}: {reason}")]
    Challenge {
        /// What was asked.
        url: String,
        /// Which field is wrong.
        reason: SignInError,
    },
    /// The vault's data-ID answers do not check ([`crate::data_ids`]).
    #[error("data IDs: {0}")]
    DataIds(#[from] crate::data_ids::DataIdError),
}

/// A session with the API at `base`, signed in as `key` when a call needs it.
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    key: Keypair,
    /// The coalition the member belongs to, when known from elsewhere than this API: a
    /// challenge naming another is not signed.
    coalition: Option<H160>,
    /// The current bearer token and when it expires (ms since the Unix epoch).
    token: Mutex<Option<(String, u64)>>,
    /// The coalition the API's last sign-in message named (checked against `coalition` when
    /// that is set): the log the receipts are of.
    signed_in_to: std::sync::Mutex<Option<H160>>,
    /// The receipts of this session's accesses, each checked when received.
    receipts: std::sync::Mutex<Vec<Receipt>>,
    /// A file each receipt is appended to (JSON lines), when the member keeps them.
    receipts_file: Option<std::path::PathBuf>,
}

/// A reqwest client builder for the API's clients: rustls on ring, which it installs as the
/// process's provider first.
pub fn http_builder() -> reqwest::ClientBuilder {
    crate::install_crypto_provider();
    reqwest::Client::builder()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn answer(
    url: &str,
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, ClientError> {
    let response =
        response.map_err(|e| ClientError::Transport { url: url.into(), reason: e.without_url().to_string() })?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = bounded(url, response, MAX_ERROR_BYTES).await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let message = body["error"].as_str().unwrap_or("no message").to_string();
    Err(ClientError::Refused { url: url.into(), status, message })
}

/// The body of `response`, read chunk by chunk up to `max` bytes: more is an error, and never
/// in memory.
async fn bounded(url: &str, mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ClientError> {
    let transport = |reason: String| ClientError::Transport { url: url.into(), reason };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(e.without_url().to_string()))? {
        if body.len() + chunk.len() > max {
            return Err(transport(format!("an answer of more than {max} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn json<T: serde::de::DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T, ClientError> {
    let body = bounded(url, response, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&body)
        .map_err(|e| ClientError::Transport { url: url.into(), reason: format!("not JSON: {e}") })
}

/// Append `receipt` to the file at `path` as one JSON line, and sync it. A last line cut short
/// (a process stopped while it wrote) is cut off first, as [`read_receipts`] passes it over; a
/// last line whole but for its newline is ended.
fn append_receipt(path: &std::path::Path, receipt: &Receipt) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut text)?;
    let torn = text.iter().rposition(|b| *b == b'\n').map_or(&text[..], |end| &text[end + 1..]);
    let mut line = Vec::new();
    if serde_json::from_slice::<Receipt>(torn).is_ok() {
        line.push(b'\n');
    } else if !torn.is_empty() {
        file.set_len((text.len() - torn.len()) as u64)?;
    }
    line.extend(serde_json::to_vec(receipt).map_err(std::io::Error::other)?);
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()
}

/// The receipt an answer from `url` carries ([`receipt::HEADER`]).
fn receipt_in(url: &str, response: &reqwest::Response) -> Result<Receipt, ClientError> {
    let refused = |reason: String| ClientError::Receipt { url: url.into(), reason };
    let value = response.headers().get(receipt::HEADER).ok_or_else(|| refused("none was given".into()))?;
    Receipt::from_header(value.to_str().map_err(|_| refused("not text".into()))?).map_err(|e| refused(e.to_string()))
}

/// The receipts kept in the file at `path` ([`ApiClient::keeping_receipts_in`]); none when it
/// does not exist. A last line cut short (no newline: a process stopped while it appended) is
/// passed over: that receipt was never kept.
///
/// # Errors
/// The file cannot be read, or a whole line is not a receipt (with its number).
pub fn read_receipts(path: &std::path::Path) -> Result<Vec<Receipt>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let torn = text.rsplit_once('\n').map_or(text.as_str(), |(_, last)| last);
    let whole = &text[..text.len() - torn.len()];
    let mut receipts = Vec::new();
    for (n, line) in whole.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        receipts.push(
            serde_json::from_str(line)
                .map_err(|e| format!("{}, line {}: not a receipt: {e}", path.display(), n + 1))?,
        );
    }
    if let Ok(last) = serde_json::from_str(torn) {
        receipts.push(last);
    }
    Ok(receipts)
}

/// A read of one of the API's public routes (`/api/coalition`, `/api/members`, ...) at `base`.
pub async fn read<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> Result<T, ClientError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let http =
        http_builder().build().map_err(|e| ClientError::Transport { url: url.clone(), reason: e.to_string() })?;
    let response = answer(&url, http.get(&url).send().await).await?;
    json(&url, response).await
}

impl ApiClient {
    /// A session with the API at `base` as `key` over `http`, not signed in yet.
    pub fn new(base: &str, key: Keypair, http: reqwest::Client) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            key,
            coalition: None,
            token: Mutex::new(None),
            signed_in_to: std::sync::Mutex::new(None),
            receipts: std::sync::Mutex::new(Vec::new()),
            receipts_file: None,
        }
    }

    /// Sign only challenges that name `coalition` (the member knows it from its own
    /// configuration, not from this API).
    pub fn for_coalition(mut self, coalition: H160) -> Self {
        self.coalition = Some(coalition);
        self
    }

    /// Append every receipt this session gets to `path` (JSON lines, made if missing), where
    /// [`read_receipts`] reads them back.
    pub fn keeping_receipts_in(mut self, path: std::path::PathBuf) -> Self {
        self.receipts_file = Some(path);
        self
    }

    /// Sign in to the API at `base` as `key`.
    pub async fn sign_in(base: &str, key: &Keypair) -> Result<Self, ClientError> {
        let http =
            http_builder().build().map_err(|e| ClientError::Transport { url: base.into(), reason: e.to_string() })?;
        let session = Self::new(base, key.clone(), http);
        session.token().await?;
        Ok(session)
    }

    /// The API's root URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The coalition the API's sign-in message named (none before signing in).
    pub fn signed_in_to(&self) -> Option<H160> {
        *self.signed_in_to.lock().expect("receipts lock")
    }

    /// A GET of `path` as this member, read as JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = answer(&url, self.http.get(&url).bearer_auth(self.token().await?).send().await).await?;
        json(&url, response).await
    }

    /// A live bearer token: the current one, or a new sign-in when there is none or it expires
    /// within ten seconds.
    pub async fn token(&self) -> Result<String, ClientError> {
        let mut token = self.token.lock().await;
        if let Some((value, _)) = token.as_ref().filter(|(_, expires)| *expires > now_ms() + RENEW_BEFORE_MS) {
            return Ok(value.clone());
        }
        let account = self.key.account_id().to_string();
        let url = format!("{}/api/auth/challenge", self.base);
        let response =
            answer(&url, self.http.post(&url).json(&serde_json::json!({ "account": account })).send().await).await?;
        let ChallengeResponse { challenge } = json(&url, response).await?;
        let message =
            SignInMessage::check(&challenge, &self.base, &self.key.account_id(), self.coalition.as_ref(), now_ms())
                .map_err(|reason| ClientError::Challenge { url: url.clone(), reason })?;
        *self.signed_in_to.lock().expect("receipts lock") = Some(message.coalition);
        let signature = format!("0x{}", hex::encode(self.key.sign(&signed_bytes(&challenge))));
        let url = format!("{}/api/auth/token", self.base);
        let request = serde_json::json!({ "account": account, "challenge": challenge, "signature": signature });
        let response = answer(&url, self.http.post(&url).json(&request).send().await).await?;
        let TokenResponse { token: value, expires_at } = json(&url, response).await?;
        *token = Some((value.clone(), expires_at));
        Ok(value)
    }

    /// Forget the token (the API refused it: it restarted, or the token was revoked); the next
    /// call signs in again.
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// The receipts of this session's accesses so far, each checked when received
    /// ([`Receipt::verify_access`]): keep them, and check the API's log against them later
    /// ([`crate::verify::verify_served`]).
    pub fn receipts(&self) -> Vec<Receipt> {
        self.receipts.lock().expect("receipts lock").clone()
    }

    /// Check the receipt `response` carries for this member's `action` (on `object`), named by
    /// `nonce`, and keep it.
    fn keep_receipt(
        &self,
        url: &str,
        response: &reqwest::Response,
        action: &str,
        object: Option<&[u8; 32]>,
        nonce: &str,
    ) -> Result<(), ClientError> {
        let receipt = receipt_in(url, response)?;
        self.keep(url, receipt, (action, object), nonce)
    }

    /// Check that `receipt` records this member's `action` (on `object`) in this coalition's
    /// log, naming the access's `nonce`, and is new (an entry no receipt held names, logged about
    /// now: [`receipt::ensure_fresh`]), and keep it. Accesses made at once are checked and kept
    /// one at a time.
    fn keep(
        &self,
        url: &str,
        receipt: Receipt,
        (action, object): (&str, Option<&[u8; 32]>),
        nonce: &str,
    ) -> Result<(), ClientError> {
        let refused = |reason: String| ClientError::Receipt { url: url.into(), reason };
        let coalition = (*self.signed_in_to.lock().expect("receipts lock"))
            .ok_or_else(|| refused("no sign-in named the coalition".into()))?;
        receipt
            .verify_access(&coalition, &self.key.account_id(), action, object, nonce)
            .map_err(|e| refused(e.to_string()))?;
        let mut kept = self.receipts.lock().expect("receipts lock");
        let mut held = kept.clone();
        if let Some(path) = &self.receipts_file {
            held.extend(read_receipts(path).map_err(refused)?);
        }
        receipt::ensure_fresh(&receipt, &held, now_ms()).map_err(|e| refused(e.to_string()))?;
        if let Some(path) = &self.receipts_file {
            append_receipt(path, &receipt).map_err(|e| refused(format!("keeping it in {}: {e}", path.display())))?;
        }
        kept.push(receipt);
        Ok(())
    }

    /// Upload a candidate model.
    pub async fn upload_candidate(&self, model: Vec<u8>) -> Result<StoredObject, ClientError> {
        let url = format!("{}/api/vault/candidates", self.base);
        let hash = tclearn_model::hash::model_hash(&model);
        let nonce = receipt::new_nonce();
        let request = self.http.post(&url).bearer_auth(self.token().await?).header(receipt::NONCE_HEADER, &nonce);
        let response = answer(&url, request.body(model).send().await).await?;
        self.keep_receipt(&url, &response, "upload-candidate", Some(&hash), &nonce)?;
        json(&url, response).await
    }

    /// The data IDs of `identifiers` (members only): blinded queries to the vault, each audited
    /// and counted against the member's daily quota, each answer's proof checked
    /// ([`crate::data_ids`]). The API never sees an identifier, and this member never the key.
    pub async fn data_ids(&self, identifiers: &[String]) -> Result<crate::data_ids::DataIds, ClientError> {
        let url = format!("{}/api/vault/data-ids", self.base);
        crate::data_ids::data_ids(identifiers, |request| {
            let (url, asked) = (url.clone(), request.blinded.len());
            async move {
                let nonce = receipt::new_nonce();
                let request = self
                    .http
                    .post(&url)
                    .bearer_auth(self.token().await?)
                    .header(receipt::NONCE_HEADER, &nonce)
                    .json(&request);
                let response = answer(&url, request.send().await).await?;
                // The entry must count what was asked: the count is what shows a sweep.
                let counted = receipt_in(&url, &response)?.entry;
                let counted = serde_json::from_str::<serde_json::Value>(&counted).unwrap_or_default();
                if counted["outcome"].as_str() != Some(format!("ok {asked}").as_str()) {
                    let reason =
                        format!("the entry does not count the {asked} identifiers asked: {}", counted["outcome"]);
                    return Err(ClientError::Receipt { url, reason });
                }
                self.keep_receipt(&url, &response, crate::data_ids::ACTION, None, &nonce)?;
                json::<DataIdsAnswer>(&url, response).await
            }
        })
        .await
    }

    /// Upload a delta (a file of weight changes) to merge onto block `parent`'s model; the
    /// stored object is the merged model, which must be `merged` (its hash, as the member
    /// computed it from the parent the chain names and its own delta): the answer and the
    /// receipt must both name it, so an API cannot store and have the member propose another
    /// model than its own.
    pub async fn upload_delta(
        &self,
        parent: u32,
        delta: Vec<u8>,
        merged: &[u8; 32],
    ) -> Result<StoredObject, ClientError> {
        let url = format!("{}/api/vault/deltas?parent={parent}", self.base);
        let nonce = receipt::new_nonce();
        let request = self.http.post(&url).bearer_auth(self.token().await?).header(receipt::NONCE_HEADER, &nonce);
        let response = answer(&url, request.body(delta).send().await).await?;
        let receipt = receipt_in(&url, &response)?;
        let stored: StoredObject = json(&url, response).await?;
        let hash = tclearn_client::parse::hash(&stored.hash).map_err(|_| ClientError::Receipt {
            url: url.clone(),
            reason: "the stored object's hash is not 32 bytes".into(),
        })?;
        // The receipt names what the API says it stored: kept, as the operator's signed word,
        // even when that is not this member's model.
        self.keep(&url, receipt, ("upload-delta", Some(&hash)), &nonce)?;
        if hash != *merged {
            return Err(ClientError::Receipt {
                url,
                reason: format!(
                    "it stored {}, not the merge of this delta onto block {parent}'s model (0x{}); its receipt is kept",
                    stored.hash,
                    hex::encode(merged)
                ),
            });
        }
        Ok(stored)
    }

    /// Ask the API to anchor its audit log on chain now.
    pub async fn anchor(&self) -> Result<AnchorView, ClientError> {
        let url = format!("{}/api/audit/anchor", self.base);
        let response = answer(&url, self.http.post(&url).bearer_auth(self.token().await?).send().await).await?;
        json(&url, response).await
    }

    /// Download object `hash` (hex), checked against it.
    pub async fn download(&self, hash: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/api/vault/objects/{hash}", self.base);
        let object = tclearn_client::parse::hash(hash)
            .map_err(|_| ClientError::Transport { url: url.clone(), reason: "not a 32-byte hex hash".into() })?;
        let nonce = receipt::new_nonce();
        let request = self.http.get(&url).bearer_auth(self.token().await?).header(receipt::NONCE_HEADER, &nonce);
        let response = answer(&url, request.send().await).await?;
        self.keep_receipt(&url, &response, "download", Some(&object), &nonce)?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Transport { url: url.clone(), reason: e.without_url().to_string() })?;
        if tclearn_model::hash::model_hash(&bytes) != object {
            return Err(ClientError::Transport { url, reason: format!("what it sent does not hash to {hash}") });
        }
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An API that answers every request with `status` and a body of `size` bytes of `{`-less
    /// filler, streamed: what a hostile operator serves to exhaust its clients' memory.
    async fn flooding(status: &'static str, size: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 1 << 16];
                    let mut sent = 0;
                    while sent < size {
                        let n = chunk.len().min(size - sent);
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                });
            }
        });
        url
    }

    /// An API that answers every request with the challenge `challenge(its own URL)`, and
    /// counts the requests it gets.
    async fn serving_challenge(challenge: impl FnOnce(&str) -> String) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let body = serde_json::json!({ "challenge": challenge(&url), "token": "t", "expires_at": 0 }).to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (counted, body) = (counted.clone(), body.clone());
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    counted.fetch_add(1, Ordering::SeqCst);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
                });
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn a_member_signs_nothing_but_a_sign_in_message_for_the_api_it_asked() {
        let key = Keypair::dev("Bob").unwrap();
        let coalition = H160::repeat_byte(0xc0);
        let message = |api: &str, account, coalition| SignInMessage {
            api: api.into(),
            coalition,
            account,
            nonce: [1; 32],
            expires_ms: now_ms() + 60_000,
        };
        let bob = key.account_id();
        let alice = Keypair::dev("Alice").unwrap().account_id();
        // What a hostile API or a man in the middle would have the key sign: an extrinsic's
        // payload, a challenge relayed from another API, another account's or coalition's.
        type Forge = Box<dyn FnOnce(&str) -> String>;
        let forgeries: Vec<(Forge, &str)> = vec![
            (
                Box::new(|_| "0x0a0000d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a".into()),
                "not a TCLearn sign-in",
            ),
            (
                Box::new(move |_| message("http://127.0.0.1:1", bob, coalition).text()),
                "names the API http://127.0.0.1:1",
            ),
            (Box::new(move |url| message(url, alice, coalition).text()), "another account"),
            (Box::new(move |url| message(url, bob, H160::repeat_byte(1)).text()), "names the coalition 0x0101"),
        ];
        for (forge, refusal) in forgeries {
            let (url, requests) = serving_challenge(forge).await;
            let client = ApiClient::new(&url, key.clone(), http_builder().build().unwrap()).for_coalition(coalition);
            let error = client.token().await.unwrap_err();
            assert!(error.to_string().contains(refusal), "{error}");
            assert_eq!(requests.load(Ordering::SeqCst), 1, "the challenge only: nothing signed was sent");
        }
        // The genuine message is signed, wrapped, and sent.
        let (url, requests) = serving_challenge(|url| message(url, bob, coalition).text()).await;
        let client = ApiClient::new(&url, key.clone(), http_builder().build().unwrap()).for_coalition(coalition);
        client.token().await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_receipt_cut_short_at_the_end_of_its_file_was_never_kept_and_a_bad_line_before_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipts.jsonl");
        assert_eq!(read_receipts(&path).unwrap(), Vec::new(), "no file: none kept");
        let receipt = |index| Receipt {
            entry: "{}".into(),
            index,
            size: index + 1,
            root: format!("0x{}", "00".repeat(32)),
            proof: String::new(),
            coalition: format!("0x{}", "05".repeat(20)),
            signer: "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".into(),
            signature: format!("0x{}", "00".repeat(64)),
        };
        for index in [0, 1] {
            append_receipt(&path, &receipt(index)).unwrap();
        }
        // A process stopped half-way through appending the third.
        let third = serde_json::to_string(&receipt(2)).unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, &third.as_bytes()[..third.len() / 2]).unwrap();
        assert_eq!(read_receipts(&path).unwrap(), vec![receipt(0), receipt(1)]);
        // The next receipt kept starts a line of its own: the file still reads, the torn one
        // passed over.
        append_receipt(&path, &receipt(3)).unwrap();
        assert_eq!(read_receipts(&path).unwrap(), vec![receipt(0), receipt(1), receipt(3)]);
        // Whole but for its newline: kept, and so is the next.
        let fifth = serde_json::to_string(&receipt(4)).unwrap();
        std::io::Write::write_all(&mut file, fifth.as_bytes()).unwrap();
        assert_eq!(read_receipts(&path).unwrap(), vec![receipt(0), receipt(1), receipt(3), receipt(4)]);
        append_receipt(&path, &receipt(5)).unwrap();
        assert_eq!(read_receipts(&path).unwrap().len(), 5);
        // A whole line that is not a receipt is refused, with its number.
        std::fs::write(&path, format!("{third}\nnot a receipt\n{third}\n")).unwrap();
        let refused = read_receipts(&path).unwrap_err();
        assert!(refused.contains("line 2: not a receipt"), "{refused}");
    }

    #[tokio::test]
    async fn an_api_that_floods_its_answers_is_refused_before_they_fill_memory() {
        let key = Keypair::dev("Bob").unwrap();
        // A challenge of 64 MiB: the old oracle read at most its model limit, the old CLI all of it.
        let url = flooding("200 OK", 64 << 20).await;
        let client = ApiClient::new(&url, key.clone(), http_builder().build().unwrap());
        let error = client.token().await.unwrap_err();
        assert!(error.to_string().contains("more than 16777216 bytes"), "{error}");
        // An error whose body never ends: the status, without its message.
        let url = flooding("401 Unauthorized", 64 << 20).await;
        let client = ApiClient::new(&url, key, http_builder().build().unwrap());
        let error = client.token().await.unwrap_err();
        assert!(matches!(error, ClientError::Refused { status: 401, .. }), "{error}");
    }
}

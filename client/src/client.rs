//! The client: dry-run, then submit with the limits the dry run reported, then wait and decode.

use crate::{
    contract::decode_return,
    keys::{account_to_address, Keypair},
    Error, Result, H160, H256,
};
use codec::{Decode, Encode};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};
use subxt::config::PolkadotExtrinsicParamsBuilder;
use subxt::{
    config::RpcConfigFor,
    dynamic,
    rpcs::{methods::LegacyRpcMethods, RpcClient},
    tx::TransactionStatus,
    utils::{AccountId32, Static},
    OnlineClient, PolkadotConfig,
};

type Api = OnlineClient<PolkadotConfig>;
type Rpc = LegacyRpcMethods<RpcConfigFor<PolkadotConfig>>;

/// When a submitted transaction counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitFor {
    /// Included in the best block: fast, but the block may still be replaced.
    InBlock,
    /// Included in a finalized block (GRANDPA, or instantly on a sealing dev node).
    #[default]
    Finalized,
}

impl WaitFor {
    fn describe(self) -> &'static str {
        match self {
            WaitFor::InBlock => "in a block",
            WaitFor::Finalized => "finalized",
        }
    }
}

/// Execution weight: computation (`ref_time`, picoseconds) and state proof size (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode)]
pub struct Weight {
    /// Computation time, in picoseconds.
    #[codec(compact)]
    pub ref_time: u64,
    /// Proof size, in bytes.
    #[codec(compact)]
    pub proof_size: u64,
}

/// Storage deposit of a call: charged to the caller, or refunded to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum StorageDeposit {
    /// Returned to the caller (storage was freed).
    Refund(u128),
    /// Taken from the caller (storage was used).
    Charge(u128),
}

impl StorageDeposit {
    /// The amount charged; zero for a refund.
    pub fn charge(&self) -> u128 {
        match self {
            Self::Charge(amount) => *amount,
            Self::Refund(_) => 0,
        }
    }
}

/// What a dry run of a call or instantiation reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// Weight actually consumed.
    pub weight_consumed: Weight,
    /// Weight a real call needs as its limit (at least `weight_consumed`).
    pub weight_required: Weight,
    /// Net storage deposit of the call.
    pub storage_deposit: StorageDeposit,
    /// The largest deposit reached during execution: the limit a real call needs.
    pub max_storage_deposit: StorageDeposit,
    /// What the contract returned (SCALE).
    pub data: Vec<u8>,
    /// The new contract's address, for an instantiation.
    pub address: Option<H160>,
}

/// An event a contract emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractEvent {
    /// The contract that emitted it.
    pub contract: H160,
    /// Its topics: for ink! events the first is the event's signature topic.
    pub topics: Vec<H256>,
    /// Its SCALE-encoded fields.
    pub data: Vec<u8>,
}

impl ContractEvent {
    /// Decode the fields as `T` if the signature topic matches.
    pub fn decode_if<T: Decode>(&self, signature_topic: &H256) -> Option<Result<T>> {
        (self.topics.first() == Some(signature_topic))
            .then(|| T::decode(&mut &self.data[..]).map_err(|e| Error::decode("contract event", e)))
    }
}

/// A transaction included in a block.
#[derive(Debug, Clone)]
pub struct Included {
    /// The block it is in.
    pub block_hash: H256,
    /// Contract events it caused, in order.
    pub contract_events: Vec<ContractEvent>,
    /// The weight limit it was submitted with.
    pub weight_limit: Weight,
    /// The storage deposit limit it was submitted with.
    pub storage_deposit_limit: u128,
}

/// A contract deployed by [`Client::deploy`].
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Its address.
    pub address: H160,
    /// The dry run that sized the transaction.
    pub dry_run: DryRun,
    /// The transaction.
    pub included: Included,
}

/// A message call made by [`Client::call`].
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The dry run that sized the transaction; its `data` is what the message returned.
    pub dry_run: DryRun,
    /// The transaction.
    pub included: Included,
}

impl CallOutcome {
    /// Decode what the message returned **in its dry run** (`Result<T, LangError>` unwrapped).
    ///
    /// pallet-revive does not report a transaction's return value, so this is a prediction made
    /// at the best block before submission: exact for results that do not depend on the block
    /// (block number, timestamp, other transactions in between). Take anything else from the
    /// transaction's events (`included.contract_events`).
    pub fn decode<T: Decode>(&self) -> Result<T> {
        decode_return(&self.dry_run.data)
    }
}

/// Default headroom on the limits a dry run reports, in percent.
///
/// A contract whose path depends on the block (timestamps, block hashes as randomness) can need
/// a little more in its real block than in the dry run one block earlier; unused weight is
/// refunded and an unused deposit limit is never charged, so headroom costs nothing.
pub const DEFAULT_LIMIT_MARGIN_PERCENT: u64 = 20;

/// A connection to a node, for contract work on pallet-revive.
#[derive(Clone)]
pub struct Client {
    api: Api,
    rpc: Rpc,
    wait_for: WaitFor,
    /// How long a submitted transaction may take to reach the block `wait_for` names.
    submit_timeout: Option<std::time::Duration>,
    margin_percent: u64,
    /// Accounts known to be mapped: a mapping is never undone by this client, so once seen it
    /// needs no further storage read.
    mapped: Arc<Mutex<HashSet<[u8; 32]>>>,
}

impl Client {
    /// Connect to a node's RPC endpoint (`ws://127.0.0.1:9944`).
    pub async fn connect(url: &str) -> Result<Self> {
        let rpc_client = RpcClient::from_insecure_url(url).await.map_err(Error::rpc)?;
        let api = Api::from_rpc_client(rpc_client.clone()).await.map_err(Error::rpc)?;
        Ok(Self {
            api,
            rpc: Rpc::new(rpc_client),
            wait_for: WaitFor::default(),
            submit_timeout: None,
            margin_percent: DEFAULT_LIMIT_MARGIN_PERCENT,
            mapped: Arc::default(),
        })
    }

    /// Submit with `percent` headroom on the dry run's weight and deposit (0 for exact limits).
    pub fn with_limit_margin(mut self, percent: u64) -> Self {
        self.margin_percent = percent;
        self
    }

    /// The weight and storage deposit limits to submit a transaction with after `dry_run`.
    pub fn limits_for(&self, dry_run: &DryRun) -> (Weight, u128) {
        let grow = |value: u64| value.saturating_add(value.saturating_mul(self.margin_percent) / 100);
        let weight = Weight {
            ref_time: grow(dry_run.weight_required.ref_time),
            proof_size: grow(dry_run.weight_required.proof_size),
        };
        let deposit = dry_run.max_storage_deposit.charge();
        let deposit = deposit.saturating_add(deposit.saturating_mul(u128::from(self.margin_percent)) / 100);
        (weight, deposit)
    }

    /// Wait for transactions as `wait_for` says from now on.
    pub fn with_wait_for(mut self, wait_for: WaitFor) -> Self {
        self.wait_for = wait_for;
        self
    }

    /// Give up waiting for a submitted transaction after `timeout` (an [`Error::Timeout`]): the
    /// transaction may still be included later, so a caller that retries must check the chain
    /// first. Without it, a stalled chain (no finality, no blocks) keeps the caller waiting.
    pub fn with_submit_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.submit_timeout = Some(timeout);
        self
    }

    /// The chain's genesis block hash: which chain this is.
    pub fn genesis_hash(&self) -> H256 {
        self.api.genesis_hash()
    }

    /// The subxt client, for what this one does not cover.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Number of the best block.
    pub async fn best_number(&self) -> Result<u64> {
        let header = self.rpc.chain_get_header(None).await.map_err(Error::rpc)?;
        header.map(|h| h.number).ok_or_else(|| Error::Rpc("no best header".into()))
    }

    /// Number of the latest finalized block.
    pub async fn finalized_number(&self) -> Result<u64> {
        let hash = self.rpc.chain_get_finalized_head().await.map_err(Error::rpc)?;
        let header = self.rpc.chain_get_header(Some(hash)).await.map_err(Error::rpc)?;
        header.map(|h| h.number).ok_or_else(|| Error::Rpc("no finalized header".into()))
    }

    /// Hash of the block at `number` on the best chain.
    pub async fn block_hash(&self, number: u64) -> Result<H256> {
        let hash = self.rpc.chain_get_block_hash(Some(number.into())).await.map_err(Error::rpc)?;
        hash.ok_or_else(|| Error::Rpc(format!("no block at height {number}")))
    }

    /// BABE's VRF randomness of block `number` as the runtime keeps it for the coalition's draws
    /// (its `Randomness` pallet, the last `RANDOMNESS_HISTORY` blocks), read from the best block's
    /// state: what anyone needs to recompute a round's seed.
    pub async fn block_randomness(&self, number: u32) -> Result<Option<[u8; 32]>> {
        let mut key = sp_crypto_hashing::twox_128(b"Randomness").to_vec();
        key.extend_from_slice(&sp_crypto_hashing::twox_128(b"Outputs"));
        // `Twox64Concat` of the block number.
        key.extend_from_slice(&sp_crypto_hashing::twox_64(&number.encode()));
        key.extend_from_slice(&number.encode());
        let data = self.rpc.state_get_storage(&key, None).await.map_err(Error::rpc)?;
        data.map(|bytes| <[u8; 32]>::decode(&mut &bytes[..]).map_err(|e| Error::Rpc(format!("block randomness: {e}"))))
            .transpose()
    }

    /// The contract events of the block at `number` on the best chain, and that block's hash.
    pub async fn block_contract_events(&self, number: u64) -> Result<(H256, Vec<ContractEvent>)> {
        let hash = self.block_hash(number).await?;
        let at = self.api.at_block(hash).await.map_err(Error::rpc)?;
        let events = at.events().fetch().await.map_err(Error::rpc)?;
        Ok((hash, contract_events(events.iter())?))
    }

    /// The best block's hash.
    pub async fn best_hash(&self) -> Result<H256> {
        let best = self.rpc.chain_get_block_hash(None).await.map_err(Error::rpc)?;
        best.ok_or_else(|| Error::Rpc("no best block".into()))
    }

    async fn at_best(
        &self,
    ) -> Result<subxt::client::ClientAtBlock<PolkadotConfig, subxt::client::OnlineClientAtBlockImpl<PolkadotConfig>>>
    {
        let best = self.rpc.chain_get_block_hash(None).await.map_err(Error::rpc)?;
        let best = best.ok_or_else(|| Error::Rpc("no best block".into()))?;
        self.api.at_block(best).await.map_err(Error::rpc)
    }

    /// Whether `account` has its H160 mapping (needed before it can call contracts).
    pub async fn is_mapped(&self, account: &AccountId32) -> Result<bool> {
        let eth_derived = crate::keys::is_eth_derived(account);
        if eth_derived {
            return Ok(true);
        }
        let address = account_to_address(account);
        let entry = dynamic::storage::<(Static<H160>,), dynamic::Value>("Revive", "OriginalAccount");
        let at = self.at_best().await?;
        match at.storage().try_fetch(entry, (Static(address),)).await.map_err(Error::rpc)? {
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// The free balance of `account`, in planck (0 for an account that does not exist).
    pub async fn free_balance(&self, account: &AccountId32) -> Result<u128> {
        Ok(self.account_info(account, None).await?.map_or(0, |info| info.free))
    }

    /// `account`'s nonce in the state of block `at`: how many of its transactions that chain holds.
    async fn nonce_at(&self, account: &AccountId32, at: H256) -> Result<u64> {
        Ok(self.account_info(account, Some(at)).await?.map_or(0, |info| u64::from(info.nonce)))
    }

    /// `account`'s `System::Account` entry at block `at` (the best block if `None`).
    async fn account_info(&self, account: &AccountId32, at: Option<H256>) -> Result<Option<AccountInfo>> {
        let entry = dynamic::storage::<(Static<AccountId32>,), Static<AccountInfo>>("System", "Account");
        let at = match at {
            Some(hash) => self.api.at_block(hash).await.map_err(Error::rpc)?,
            None => self.at_best().await?,
        };
        let info = at.storage().try_fetch(entry, (Static(*account),)).await.map_err(Error::rpc)?;
        info.map(|value| {
            value
                .decode()
                .map(|info| info.0)
                .map_err(|e| Error::Decode { what: "System::Account", reason: e.to_string() })
        })
        .transpose()
    }

    /// Whether the node says it is syncing (its best block may be far behind the chain's).
    pub async fn is_syncing(&self) -> Result<bool> {
        Ok(self.rpc.system_health().await.map_err(Error::rpc)?.is_syncing)
    }

    /// Map `signer`'s account to its H160 if it is not mapped yet. Returns whether it mapped now.
    pub async fn ensure_mapped(&self, signer: &Keypair) -> Result<bool> {
        let account = signer.account_id();
        if self.mapped.lock().is_ok_and(|set| set.contains(&account.0)) {
            return Ok(false);
        }
        let mapped_now = if self.is_mapped(&account).await? {
            false
        } else {
            let payload = dynamic::transaction("Revive", "map_account", ());
            self.submit(&payload, signer).await?;
            true
        };
        if let Ok(mut set) = self.mapped.lock() {
            set.insert(account.0);
        }
        Ok(mapped_now)
    }

    /// Transfer `amount` of the native token from `signer` to `to` (keeping `signer` alive).
    pub async fn transfer(&self, signer: &Keypair, to: &AccountId32, amount: u128) -> Result<Included> {
        let dest = subxt::utils::MultiAddress::<AccountId32, ()>::Id(*to);
        let payload = dynamic::transaction("Balances", "transfer_keep_alive", (dest, amount));
        self.submit(&payload, signer).await
    }

    /// Dry-run instantiating `code` with constructor call data `data`.
    pub async fn dry_run_instantiate(
        &self,
        origin: &AccountId32,
        code: &[u8],
        data: &[u8],
        value: u128,
        salt: Option<[u8; 32]>,
    ) -> Result<DryRun> {
        /// pallet-revive's `Code`: new code to upload, or a hash of code on chain.
        #[derive(Encode)]
        enum Code<'a> {
            Upload(&'a [u8]),
        }
        let args = (origin.0, value, None::<Weight>, None::<u128>, Code::Upload(code), data, salt);
        let (bytes, metadata) = self.call_runtime_api("ReviveApi_instantiate", &args.encode()).await?;
        let mut input = &bytes[..];
        let head = ResultHead::decode(&mut input).map_err(|e| Error::decode("dry run", e))?;
        let outcome = decode_outcome(input, true, metadata)?;
        head.finish(outcome)
    }

    /// Dry-run a message call.
    pub async fn dry_run_call(&self, origin: &AccountId32, contract: H160, data: &[u8], value: u128) -> Result<DryRun> {
        let args = (origin.0, contract, value, None::<Weight>, None::<u128>, data);
        let (bytes, metadata) = self.call_runtime_api("ReviveApi_call", &args.encode()).await?;
        let mut input = &bytes[..];
        let head = ResultHead::decode(&mut input).map_err(|e| Error::decode("dry run", e))?;
        let mut outcome = decode_outcome(input, false, metadata)?;
        outcome.address = Some(contract);
        let mut dry_run = head.finish(outcome)?;
        dry_run.address = None;
        if dry_run.data.is_empty() {
            return Err(Error::decode("dry run", "empty return data from an ink! message"));
        }
        Ok(dry_run)
    }

    /// Call a message without a transaction and decode what it returns: for reading state.
    pub async fn read<T: Decode>(&self, origin: &AccountId32, contract: H160, data: impl Into<Vec<u8>>) -> Result<T> {
        let dry_run = self.dry_run_call(origin, contract, &data.into(), 0).await?;
        decode_return(&dry_run.data)
    }

    /// Upload `code` and instantiate it with constructor call data `data`.
    pub async fn deploy(
        &self,
        signer: &Keypair,
        code: &[u8],
        data: impl Into<Vec<u8>>,
        value: u128,
        salt: Option<[u8; 32]>,
    ) -> Result<Deployment> {
        let data = data.into();
        self.ensure_mapped(signer).await?;
        let dry_run = self.dry_run_instantiate(&signer.account_id(), code, &data, value, salt).await?;
        let address = dry_run.address.ok_or_else(|| Error::decode("dry run", "no address"))?;
        let (weight_limit, storage_deposit_limit) = self.limits_for(&dry_run);
        let payload = dynamic::transaction(
            "Revive",
            "instantiate_with_code",
            (value, Static(weight_limit), storage_deposit_limit, code.to_vec(), data, salt),
        );
        let included = self.submit(&payload, signer).await?;
        Ok(Deployment { address, dry_run, included: Included { weight_limit, storage_deposit_limit, ..included } })
    }

    /// Call a message in a transaction, with the weight and deposit limits its dry run needed
    /// (plus the margin, see [`DEFAULT_LIMIT_MARGIN_PERCENT`]).
    /// A message that would revert is refused before anything is submitted.
    pub async fn call(
        &self,
        signer: &Keypair,
        contract: H160,
        data: impl Into<Vec<u8>>,
        value: u128,
    ) -> Result<CallOutcome> {
        let data: Vec<u8> = data.into();
        self.ensure_mapped(signer).await?;
        let dry_run = self.dry_run_call(&signer.account_id(), contract, &data, value).await?;
        let (weight_limit, storage_deposit_limit) = self.limits_for(&dry_run);
        let payload = dynamic::transaction(
            "Revive",
            "call",
            (Static(contract), value, Static(weight_limit), storage_deposit_limit, data),
        );
        let included = self.submit(&payload, signer).await?;
        Ok(CallOutcome { dry_run, included: Included { weight_limit, storage_deposit_limit, ..included } })
    }

    /// Call a runtime API at the best block; also returns that block's metadata.
    async fn call_runtime_api(&self, function: &str, args: &[u8]) -> Result<(Vec<u8>, subxt::ArcMetadata)> {
        let at = self.at_best().await?;
        let bytes = at.runtime_apis().call_raw(function, Some(args)).await.map_err(Error::rpc)?;
        Ok((bytes, at.metadata()))
    }

    /// Sign, submit and wait for `payload`; any failure comes back as a typed error.
    async fn submit<Call: subxt::tx::Payload>(&self, payload: &Call, signer: &Keypair) -> Result<Included> {
        match self.submit_timeout {
            Some(timeout) => {
                tokio::time::timeout(timeout, self.submit_and_wait(payload, signer)).await.map_err(|_| {
                    Error::Timeout(format!("the transaction was not {} within {timeout:?}", self.wait_for.describe()))
                })?
            }
            None => self.submit_and_wait(payload, signer).await,
        }
    }

    /// Submit `payload` and wait for it; a nonce another program of the same key took first (the
    /// node's pool holds its transaction), or a transaction the finalized chain proves will never
    /// be included ([`Client::settle`]), is signed again with the pool's next nonce, up to
    /// [`NONCE_ATTEMPTS`] times in all.
    async fn submit_and_wait<Call: subxt::tx::Payload>(&self, payload: &Call, signer: &Keypair) -> Result<Included> {
        let mut attempt = 1;
        loop {
            match self.submit_once(payload, signer).await {
                Err(Error::Transaction(message)) if signed_again(&message) && attempt < NONCE_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Sign `payload` with the signer's next nonce as the node's pool counts it (subxt's default
    /// reads the nonce at the best block, which ignores transactions still in the pool), mortal
    /// for [`MORTAL_BLOCKS`] blocks, submit it and wait for the block [`WaitFor`] asks.
    ///
    /// A node's pool may call a transaction it had accepted invalid, or drop it, while blocks
    /// fork (BABE lets two authors fill one slot): the transaction may still be, or be about to
    /// be, in a block of the fork that wins. Such a verdict is not taken as final: the
    /// transaction's fate is settled on the finalized chain ([`Client::settle`]).
    async fn submit_once<Call: subxt::tx::Payload>(&self, payload: &Call, signer: &Keypair) -> Result<Included> {
        let account = signer.account_id();
        let nonce = self.rpc.system_account_next_index(&account).await.map_err(Error::rpc)?;
        let params = PolkadotExtrinsicParamsBuilder::new().nonce(nonce).mortal(MORTAL_BLOCKS).build();
        let at = self.at_best().await?;
        let (signed_at, birth) = (at.block_number(), at.block_hash());
        let mut progress = at
            .transactions()
            .sign_and_submit_then_watch(payload, signer, params)
            .await
            .map_err(|e| Error::Transaction(e.to_string()))?;
        let sent = Sent { hash: progress.extrinsic_hash(), account, nonce, signed_at, birth };
        let mut accepted = false;
        while let Some(status) = progress.next().await {
            let status = match status {
                Ok(status) => status,
                Err(e) if accepted => return self.settle(&sent, e.to_string()).await,
                Err(e) => return Err(Error::Transaction(e.to_string())),
            };
            let in_block = match status {
                TransactionStatus::InBestBlock(block) if self.wait_for == WaitFor::InBlock => block,
                TransactionStatus::InFinalizedBlock(block) => block,
                TransactionStatus::Invalid { message }
                | TransactionStatus::Dropped { message }
                | TransactionStatus::Error { message }
                    if accepted =>
                {
                    return self.settle(&sent, message).await;
                }
                TransactionStatus::Error { message }
                | TransactionStatus::Invalid { message }
                | TransactionStatus::Dropped { message } => return Err(Error::Transaction(message)),
                _ => {
                    accepted = true;
                    continue;
                }
            };
            return self.included_at(in_block.block_hash(), sent.hash).await;
        }
        if accepted {
            return self.settle(&sent, "the node stopped reporting the transaction's status".into()).await;
        }
        Err(Error::Transaction("the node stopped reporting the transaction's status".into()))
    }

    /// Settle the fate of `sent`, which the pool accepted and then called invalid or dropped
    /// (`verdict`): a pool's verdict is not final where blocks fork.
    ///
    /// - Found in a block of the chain [`WaitFor`] names (finalized, or best for
    ///   [`WaitFor::InBlock`]), it is included (or failed, as that block's events say).
    /// - Proven never to be included by the finalized chain, it is the error
    ///   [`NEVER_INCLUDED`]` verdict`, which [`Client::submit_and_wait`] signs again: the block it
    ///   was signed at is not the finalized one of that height (a fork that lost), or the
    ///   finalized chain has passed its last block without it, or holds another transaction of
    ///   its nonce.
    /// - Waiting for best blocks only, it is the error [`NOT_SEEN`]` verdict` once
    ///   [`SETTLE_GRACE_BLOCKS`] more best blocks have come without it: never signed again here,
    ///   since a fork may still include it (the caller checks the chain before it acts again).
    ///
    /// Until then this waits; a client's submit timeout bounds the wait.
    async fn settle(&self, sent: &Sent, verdict: String) -> Result<Included> {
        let in_best = self.wait_for == WaitFor::InBlock;
        let best_at_verdict = self.best_number().await?;
        let mut holds: HashMap<H256, bool> = HashMap::new();
        let mut last_look = None;
        loop {
            let finalized = self.rpc.chain_get_finalized_head().await.map_err(Error::rpc)?;
            let header = self.rpc.chain_get_header(Some(finalized)).await.map_err(Error::rpc)?;
            let final_number = header.map(|h| h.number).ok_or_else(|| Error::Rpc("no finalized header".into()))?;
            let (tip, best) = if in_best {
                let best = self.best_hash().await?;
                let header = self.rpc.chain_get_header(Some(best)).await.map_err(Error::rpc)?;
                (header.map(|h| h.number).ok_or_else(|| Error::Rpc("no best header".into()))?, best)
            } else {
                (final_number, finalized)
            };
            if last_look == Some((best, finalized)) {
                tokio::time::sleep(SETTLE_POLL).await;
                continue;
            }
            last_look = Some((best, finalized));
            for number in sent.signed_at.saturating_add(1)..=tip.min(sent.last_block()) {
                // A reorganisation to a shorter best chain may leave no block at `number`: look
                // again at the next poll.
                let Ok(hash) = self.block_hash(number).await else { break };
                let found = match holds.get(&hash) {
                    Some(found) => *found,
                    None => {
                        let found = self.extrinsic_index(hash, sent.hash).await?.is_some();
                        holds.insert(hash, found);
                        found
                    }
                };
                if found {
                    return self.included_at(hash, sent.hash).await;
                }
            }
            let birth_final = final_number >= sent.signed_at;
            let birth_lost = birth_final && self.block_hash(sent.signed_at).await? != sent.birth;
            let final_nonce = self.nonce_at(&sent.account, finalized).await?;
            if birth_lost || sent.never_included(final_number, final_nonce) {
                return Err(Error::Transaction(format!("{NEVER_INCLUDED}{verdict}")));
            }
            if in_best && tip >= best_at_verdict.saturating_add(SETTLE_GRACE_BLOCKS) {
                return Err(Error::Transaction(format!("{NOT_SEEN}{verdict}")));
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// The index of the extrinsic whose hash is `extrinsic` in block `block`, if it is there.
    async fn extrinsic_index(&self, block: H256, extrinsic: H256) -> Result<Option<u32>> {
        let details = self.rpc.chain_get_block(Some(block)).await.map_err(Error::rpc)?;
        let details = details.ok_or_else(|| Error::Rpc(format!("no block {block:?}")))?;
        let index = details
            .block
            .extrinsics
            .iter()
            .position(|bytes| H256(sp_crypto_hashing::blake2_256(&bytes.0)) == extrinsic);
        Ok(index.and_then(|i| u32::try_from(i).ok()))
    }

    /// What the extrinsic `extrinsic` did in block `block`: its contract events, or its dispatch
    /// error.
    async fn included_at(&self, block: H256, extrinsic: H256) -> Result<Included> {
        let index = self
            .extrinsic_index(block, extrinsic)
            .await?
            .ok_or_else(|| Error::Transaction(format!("the transaction is not in block {block:?}")))?;
        let at = self.api.at_block(block).await.map_err(Error::rpc)?;
        let events = at.events().fetch().await.map_err(Error::rpc)?;
        let mut mine = Vec::new();
        for event in events.iter() {
            let event = event.map_err(|e| Error::decode("event", e))?;
            if event.phase() != subxt::events::Phase::ApplyExtrinsic(index) {
                continue;
            }
            if event.pallet_name() == "System" && event.event_name() == "ExtrinsicFailed" {
                let error = subxt::error::DispatchError::decode_from(event.field_bytes(), at.metadata())
                    .map_err(|e| Error::decode("dispatch error", e))?;
                return Err(Error::from_dispatch(error));
            }
            mine.push(Ok::<_, Error>(event));
        }
        Ok(Included {
            block_hash: block,
            contract_events: contract_events(mine.into_iter())?,
            weight_limit: Weight::default(),
            storage_deposit_limit: 0,
        })
    }
}

/// For how many blocks after the best block it was signed at a transaction may be included.
const MORTAL_BLOCKS: u64 = 32;

/// How often [`Client::settle`] looks at the chain.
const SETTLE_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Best blocks [`Client::settle`] waits for a transaction, when waiting for best blocks only.
const SETTLE_GRACE_BLOCKS: u64 = 4;

/// How the error of a transaction the finalized chain proves will never be included begins.
pub const NEVER_INCLUDED: &str = "never included: ";

/// How the error of a transaction the best chain did not show, but a fork still may, begins.
pub const NOT_SEEN: &str = "not seen in 4 best blocks: ";

/// A transaction this client submitted.
struct Sent {
    hash: H256,
    account: AccountId32,
    nonce: u64,
    /// The number of the block it was signed at: its mortality starts there.
    signed_at: u64,
    /// That block's hash: on a fork that loses, the transaction is valid nowhere.
    birth: H256,
}

impl Sent {
    /// The last block number that can include it (`Era::mortal`: the block it was signed at
    /// cannot, the [`MORTAL_BLOCKS`] - 1 after it can).
    fn last_block(&self) -> u64 {
        self.signed_at.saturating_add(MORTAL_BLOCKS - 1)
    }

    /// Whether it can never be included, given that the finalized chain up to block
    /// `final_number` does not hold it and `final_nonce` is the account's nonce there: that chain
    /// has passed its last block, or holds another transaction of its nonce.
    fn never_included(&self, final_number: u64, final_nonce: u64) -> bool {
        final_number >= self.last_block() || final_nonce > self.nonce
    }
}

/// `frame_system::AccountInfo` with `pallet_balances::AccountData`, as stored.
#[derive(Decode)]
struct AccountInfo {
    nonce: u32,
    _consumers: u32,
    _providers: u32,
    _sufficients: u32,
    free: u128,
    _reserved: u128,
    _frozen: u128,
    _flags: u128,
}

/// How many times a transaction is signed and submitted when its nonce was taken meanwhile.
const NONCE_ATTEMPTS: u32 = 4;

/// Whether the node refused a transaction because another of the same account and nonce came
/// first: the pool holds one already (its priority is not higher), or a block included one.
/// These are the texts of the node's `transactionWatch` (sc-rpc-spec-v2) for those refusals.
fn nonce_taken(message: &str) -> bool {
    message.starts_with("The priority of the transaction is too low")
        || message == "Invalid transaction: Transaction is outdated"
}

/// Whether a transaction refused with `message` is signed again with a fresh nonce: only when it
/// can never run (its nonce taken by another, or [`NEVER_INCLUDED`] by the finalized chain's
/// proof), so the call cannot run twice.
fn signed_again(message: &str) -> bool {
    nonce_taken(message) || message.starts_with(NEVER_INCLUDED)
}

/// The `Revive::ContractEmitted` events among `events`, in order.
fn contract_events<'a, E: std::fmt::Display>(
    events: impl Iterator<Item = std::result::Result<subxt::events::Event<'a, PolkadotConfig>, E>>,
) -> Result<Vec<ContractEvent>> {
    let mut contract_events = Vec::new();
    for event in events {
        let event = event.map_err(|e| Error::decode("event", e))?;
        if event.pallet_name() == "Revive" && event.event_name() == "ContractEmitted" {
            let (contract, data, topics) = <(H160, Vec<u8>, Vec<H256>)>::decode(&mut event.field_bytes())
                .map_err(|e| Error::decode("ContractEmitted", e))?;
            contract_events.push(ContractEvent { contract, topics, data });
        }
    }
    Ok(contract_events)
}

/// Decode `Result<R, DispatchError>` (the last field of a dry run's result).
fn decode_outcome(mut input: &[u8], instantiate: bool, metadata: subxt::ArcMetadata) -> Result<ExecOutcome> {
    match u8::decode(&mut input).map_err(|e| Error::decode("dry run result", e))? {
        0 => {
            let flags = u32::decode(&mut input).map_err(|e| Error::decode("return flags", e))?;
            let data = Vec::<u8>::decode(&mut input).map_err(|e| Error::decode("return data", e))?;
            let address = if instantiate {
                Some(H160::decode(&mut input).map_err(|e| Error::decode("new address", e))?)
            } else {
                None
            };
            Ok(ExecOutcome { reverted: flags & REVERT != 0, data, address })
        }
        1 => {
            let error = subxt::error::DispatchError::decode_from(input, metadata)
                .map_err(|e| Error::decode("dispatch error", e))?;
            Err(Error::from_dispatch(error))
        }
        other => Err(Error::decode("dry run result", format!("bad Result tag {other}"))),
    }
}

/// `ReturnFlags::REVERT`.
const REVERT: u32 = 1;

/// The fields of a dry run's result that precede its `result`.
#[derive(Decode)]
struct ResultHead {
    weight_consumed: Weight,
    weight_required: Weight,
    storage_deposit: StorageDeposit,
    max_storage_deposit: StorageDeposit,
    _gas_consumed: u128,
}

struct ExecOutcome {
    reverted: bool,
    data: Vec<u8>,
    address: Option<H160>,
}

impl ResultHead {
    fn finish(self, outcome: ExecOutcome) -> Result<DryRun> {
        if outcome.reverted {
            return Err(Error::Reverted { contract: outcome.address, data: outcome.data });
        }
        Ok(DryRun {
            weight_consumed: self.weight_consumed,
            weight_required: self.weight_required,
            storage_deposit: self.storage_deposit,
            max_storage_deposit: self.max_storage_deposit,
            data: outcome.data,
            address: outcome.address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{nonce_taken, signed_again, Sent, MORTAL_BLOCKS, NEVER_INCLUDED, NOT_SEEN};
    use crate::H256;
    use subxt::utils::AccountId32;

    #[test]
    fn a_transaction_the_pool_gave_up_is_settled_only_by_the_finalized_chain() {
        let sent =
            Sent { hash: H256::zero(), account: AccountId32([1; 32]), nonce: 7, signed_at: 100, birth: H256::zero() };
        // The pool called it invalid during a reorg: while the finalized chain is short of its
        // last block and has not used its nonce, another fork may still include it.
        assert!(!sent.never_included(100, 7));
        assert!(!sent.never_included(100 + MORTAL_BLOCKS - 2, 7));
        // A smaller nonce there only means the account's earlier transactions are not final yet.
        assert!(!sent.never_included(120, 5));
        // At its last block, or its nonce used by another transaction (the caller searched the
        // finalized blocks for this one first): it never will be.
        assert!(sent.never_included(100 + MORTAL_BLOCKS - 1, 7));
        assert!(sent.never_included(101, 8));
        // Near the end of the chain's numbers, no overflow: it never dies early.
        let late = Sent { signed_at: u64::MAX - 1, ..sent };
        assert!(!late.never_included(u64::MAX - 1, 7));
    }

    #[test]
    fn a_taken_nonce_is_told_from_other_refusals() {
        // The texts the node sent when two programs of one key submitted at once.
        assert!(nonce_taken("The priority of the transaction is too low (pool 3068 > current 3068)"));
        assert!(nonce_taken("Invalid transaction: Transaction is outdated"));
        // Refusals a retry would not cure: they come back to the caller at once.
        assert!(!nonce_taken("Invalid transaction: Inability to pay some fees (e.g. account balance too low)"));
        assert!(!nonce_taken("Invalid transaction: Transaction has a bad signature"));
        assert!(!nonce_taken("Invalid transaction: Transaction will be valid in the future"));
        assert!(!nonce_taken(""));
    }

    #[test]
    fn only_a_transaction_that_can_never_run_is_signed_again() {
        let outdated = "Invalid transaction: Transaction is outdated";
        assert!(signed_again(outdated));
        assert!(signed_again(&format!("{NEVER_INCLUDED}Extrinsic marked as invalid")));
        // Not seen in best blocks: a fork may still include it, so signing it again could run
        // the call twice.
        assert!(!signed_again(&format!("{NOT_SEEN}{outdated}")));
        assert!(!signed_again("Extrinsic marked as invalid"));
    }
}

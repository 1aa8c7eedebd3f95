//! The client: dry-run, then submit with the limits the dry run reported, then wait and decode.

use crate::{
    contract::decode_return,
    keys::{account_to_address, Keypair},
    Error, Result, H160, H256,
};
use codec::{Decode, Encode};
use std::{
    collections::HashSet,
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
        /// `frame_system::AccountInfo` with `pallet_balances::AccountData`, as stored.
        #[derive(Decode)]
        struct AccountInfo {
            _nonce: u32,
            _consumers: u32,
            _providers: u32,
            _sufficients: u32,
            free: u128,
            _reserved: u128,
            _frozen: u128,
            _flags: u128,
        }
        let entry = dynamic::storage::<(Static<AccountId32>,), Static<AccountInfo>>("System", "Account");
        let at = self.at_best().await?;
        let info = at.storage().try_fetch(entry, (Static(*account),)).await.map_err(Error::rpc)?;
        match info {
            None => Ok(0),
            Some(value) => {
                Ok(value.decode().map_err(|e| Error::Decode { what: "System::Account", reason: e.to_string() })?.0.free)
            }
        }
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
    /// node's pool holds its transaction) is retried with the pool's next nonce, up to
    /// [`NONCE_ATTEMPTS`] times.
    async fn submit_and_wait<Call: subxt::tx::Payload>(&self, payload: &Call, signer: &Keypair) -> Result<Included> {
        let mut attempt = 1;
        loop {
            match self.submit_once(payload, signer).await {
                Err(Error::Transaction(message)) if nonce_taken(&message) && attempt < NONCE_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Sign `payload` with the signer's next nonce as the node's pool counts it (subxt's default
    /// reads the nonce at the best block, which ignores transactions still in the pool), submit
    /// it and wait for the block [`WaitFor`] asks.
    async fn submit_once<Call: subxt::tx::Payload>(&self, payload: &Call, signer: &Keypair) -> Result<Included> {
        let nonce = self.rpc.system_account_next_index(&signer.account_id()).await.map_err(Error::rpc)?;
        let params = PolkadotExtrinsicParamsBuilder::new().nonce(nonce).build();
        let at = self.at_best().await?;
        let mut progress = at
            .transactions()
            .sign_and_submit_then_watch(payload, signer, params)
            .await
            .map_err(|e| Error::Transaction(e.to_string()))?;
        while let Some(status) = progress.next().await {
            let status = status.map_err(|e| Error::Transaction(e.to_string()))?;
            let in_block = match status {
                TransactionStatus::InBestBlock(block) if self.wait_for == WaitFor::InBlock => block,
                TransactionStatus::InFinalizedBlock(block) => block,
                TransactionStatus::Error { message }
                | TransactionStatus::Invalid { message }
                | TransactionStatus::Dropped { message } => return Err(Error::Transaction(message)),
                _ => continue,
            };
            let events = in_block.wait_for_success().await.map_err(|e| match e {
                subxt::error::TransactionEventsError::ExtrinsicFailed(error) => Error::from_dispatch(error),
                other => Error::Transaction(other.to_string()),
            })?;
            let contract_events = contract_events(events.iter())?;
            return Ok(Included {
                block_hash: in_block.block_hash(),
                contract_events,
                weight_limit: Weight::default(),
                storage_deposit_limit: 0,
            });
        }
        Err(Error::Transaction("the node stopped reporting the transaction's status".into()))
    }
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
    use super::nonce_taken;

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
}

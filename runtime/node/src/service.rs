//! The node service: a full client with either BABE + GRANDPA, or local sealing for the dev chain.
//! Both put a BABE pre-digest with the author's VRF output in every block: the runtime keeps
//! those outputs for the coalition contract's draws.

use crate::cli::Sealing;
use futures::{channel::mpsc, FutureExt, StreamExt};
use polkadot_sdk::{
    sc_basic_authorship,
    sc_client_api::Backend as _,
    sc_consensus, sc_consensus_babe, sc_consensus_grandpa, sc_consensus_manual_seal as manual_seal,
    sc_consensus_slots::SlotProportion,
    sc_executor, sc_network, sc_offchain, sc_service,
    sc_service::{error::Error as ServiceError, Configuration, TaskManager, WarpSyncConfig},
    sc_telemetry::{Telemetry, TelemetryWorker},
    sc_transaction_pool,
    sc_transaction_pool_api::OffchainTransactionPoolFactory,
    sp_api::StorageProof,
    sp_consensus_babe::{self, inherents::InherentDataProvider as SlotProvider, Slot, SlotDuration},
    sp_inherents::InherentData,
    sp_io,
    sp_runtime::{traits::Block as BlockT, Digest},
    sp_timestamp::{self, TimestampInherentData},
};
use std::{sync::Arc, time::Duration};
use tclearn_runtime::{opaque::Block, Hash, RuntimeApi, SLOT_DURATION};

/// The client: runtime calls always go through the wasm runtime.
pub type FullClient =
    sc_service::TFullClient<Block, RuntimeApi, sc_executor::WasmExecutor<sp_io::SubstrateHostFunctions>>;
type FullBackend = sc_service::TFullBackend<Block>;
type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;
type GrandpaBlockImport = sc_consensus_grandpa::GrandpaBlockImport<FullBackend, Block, FullClient, FullSelectChain>;
type TransactionPool = sc_transaction_pool::TransactionPoolHandle<Block, FullClient>;
/// The inherents a block's import checks: the slot and the timestamp from the wall clock.
type InherentProviders = (SlotProvider, sp_timestamp::InherentDataProvider);
type InherentsResult = Result<InherentProviders, Box<dyn std::error::Error + Send + Sync>>;
/// A named (fn pointer) inherent-data factory, so that the BABE block import's type can be named.
type CreateInherents = fn(Hash, ()) -> futures::future::Ready<InherentsResult>;
/// BABE's block import around `Inner` (GRANDPA's, or the client itself when sealing locally).
type BabeImport<Inner> = sc_consensus_babe::BabeBlockImport<Block, FullClient, Inner, CreateInherents, FullSelectChain>;

/// Blocks between two GRANDPA justifications kept in the database.
const GRANDPA_JUSTIFICATION_PERIOD: u32 = 512;

/// The slot and timestamp inherents of a block made now.
fn wall_clock_inherents(_parent: Hash, _: ()) -> futures::future::Ready<InherentsResult> {
    let timestamp = sp_timestamp::InherentDataProvider::from_system_time();
    let slot = SlotProvider::from_timestamp_and_slot_duration(*timestamp, SlotDuration::from_millis(SLOT_DURATION));
    futures::future::ready(Ok((slot, timestamp)))
}

/// The inherents a locally sealed block's import checks against: a wall clock that never finds
/// the block early. Local sealing stamps each block one slot after its parent's, since BABE needs
/// a new slot for every block, so a burst of transactions runs the chain's clock ahead of the
/// wall clock; the dev chain's one sealing node vouches for its own timestamps. (A slot this far
/// ahead also leaves out BABE's equivocation bookkeeping, which has one author to watch here.)
fn local_sealing_inherents(_parent: Hash, _: ()) -> futures::future::Ready<InherentsResult> {
    let timestamp = sp_timestamp::InherentDataProvider::new(sp_timestamp::Timestamp::new(u64::MAX / 2));
    let slot = SlotProvider::from_timestamp_and_slot_duration(*timestamp, SlotDuration::from_millis(SLOT_DURATION));
    futures::future::ready(Ok((slot, timestamp)))
}

/// What `new_partial` prepared for block production.
// One value, made once when the node starts: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Consensus {
    /// BABE authoring, GRANDPA finality.
    Babe {
        block_import: BabeImport<GrandpaBlockImport>,
        babe_link: sc_consensus_babe::BabeLink<Block>,
        grandpa_link: sc_consensus_grandpa::LinkHalf<Block, FullClient, FullSelectChain>,
    },
    /// Local sealing: BABE's block import around the client, for BABE's epoch bookkeeping.
    Local { block_import: BabeImport<Arc<FullClient>>, babe_link: sc_consensus_babe::BabeLink<Block> },
}

/// The parts of the service that the subcommands need too.
pub type Service = sc_service::PartialComponents<
    FullClient,
    FullBackend,
    FullSelectChain,
    sc_consensus::DefaultImportQueue<Block>,
    TransactionPool,
    (Consensus, Option<Telemetry>),
>;

/// Client, database, transaction pool and the import queue that matches `sealing`.
pub fn new_partial(config: &Configuration, sealing: Sealing) -> Result<Service, ServiceError> {
    let telemetry = config
        .telemetry_endpoints
        .clone()
        .filter(|endpoints| !endpoints.is_empty())
        .map(|endpoints| -> Result<_, polkadot_sdk::sc_telemetry::Error> {
            let worker = TelemetryWorker::new(16)?;
            let telemetry = worker.handle().new_telemetry(endpoints);
            Ok((worker, telemetry))
        })
        .transpose()?;

    let executor = sc_service::new_wasm_executor::<sp_io::SubstrateHostFunctions>(&config.executor);
    let (client, backend, keystore_container, task_manager) = sc_service::new_full_parts::<Block, RuntimeApi, _>(
        config,
        telemetry.as_ref().map(|(_, telemetry)| telemetry.handle()),
        executor,
        Vec::new(),
    )?;
    let client = Arc::new(client);

    let telemetry = telemetry.map(|(worker, telemetry)| {
        task_manager.spawn_handle().spawn("telemetry", None, worker.run());
        telemetry
    });

    let select_chain = sc_consensus::LongestChain::new(backend.clone());

    let transaction_pool = Arc::from(
        sc_transaction_pool::Builder::new(
            task_manager.spawn_essential_handle(),
            client.clone(),
            config.role.is_authority().into(),
        )
        .with_options(config.transaction_pool.clone())
        .with_prometheus(config.prometheus_registry())
        .build(),
    );

    let babe_config = sc_consensus_babe::configuration(&*client)?;
    let offchain_pool = OffchainTransactionPoolFactory::new(transaction_pool.clone());
    let (import_queue, consensus) = if sealing == Sealing::Babe {
        let inherents: CreateInherents = wall_clock_inherents;
        let (grandpa_import, grandpa_link) = sc_consensus_grandpa::block_import(
            client.clone(),
            GRANDPA_JUSTIFICATION_PERIOD,
            &client,
            select_chain.clone(),
            telemetry.as_ref().map(|x| x.handle()),
        )?;
        let (block_import, babe_link) = sc_consensus_babe::block_import(
            babe_config,
            grandpa_import.clone(),
            client.clone(),
            inherents,
            select_chain.clone(),
            offchain_pool,
        )?;
        let (import_queue, babe_worker) = sc_consensus_babe::import_queue(sc_consensus_babe::ImportQueueParams {
            link: babe_link.clone(),
            block_import: block_import.clone(),
            justification_import: Some(Box::new(grandpa_import)),
            client: client.clone(),
            slot_duration: babe_link.config().slot_duration(),
            spawner: &task_manager.spawn_essential_handle(),
            registry: config.prometheus_registry(),
            telemetry: telemetry.as_ref().map(|x| x.handle()),
        })?;
        // BABE's worker answers epoch queries for as long as a handle to it lives, and is an
        // essential task: the handle lives as long as the node's tasks.
        task_manager.spawn_handle().spawn("babe-worker-handle", None, async move {
            let _worker = babe_worker;
            futures::future::pending::<()>().await
        });
        (import_queue, Consensus::Babe { block_import, babe_link, grandpa_link })
    } else {
        let inherents: CreateInherents = local_sealing_inherents;
        let (block_import, babe_link) = sc_consensus_babe::block_import(
            babe_config,
            client.clone(),
            client.clone(),
            inherents,
            select_chain.clone(),
            offchain_pool,
        )?;
        // A single dev node imports no one else's blocks.
        let import_queue = manual_seal::import_queue(
            Box::new(client.clone()),
            &task_manager.spawn_essential_handle(),
            config.prometheus_registry(),
        );
        (import_queue, Consensus::Local { block_import, babe_link })
    };

    Ok(sc_service::PartialComponents {
        client,
        backend,
        task_manager,
        import_queue,
        keystore_container,
        select_chain,
        transaction_pool,
        other: (consensus, telemetry),
    })
}

/// Build and start the full node.
pub fn new_full<N: sc_network::NetworkBackend<Block, Hash>>(
    config: Configuration,
    sealing: Sealing,
) -> Result<TaskManager, ServiceError> {
    let sc_service::PartialComponents {
        client,
        backend,
        mut task_manager,
        import_queue,
        keystore_container,
        select_chain,
        transaction_pool,
        other: (consensus, mut telemetry),
    } = new_partial(&config, sealing)?;

    let mut net_config = sc_network::config::FullNetworkConfiguration::<Block, Hash, N>::new(
        &config.network,
        config.prometheus_registry().cloned(),
    );
    let metrics = N::register_notification_metrics(config.prometheus_registry());

    // GRANDPA gossips on a notification protocol of its own, named after the genesis hash.
    let grandpa_network = match &consensus {
        Consensus::Babe { grandpa_link, .. } => {
            let genesis_hash = client.chain_info().genesis_hash;
            let protocol_name = sc_consensus_grandpa::protocol_standard_name(&genesis_hash, &config.chain_spec);
            let (protocol_config, notification_service) = sc_consensus_grandpa::grandpa_peers_set_config::<_, N>(
                protocol_name.clone(),
                metrics.clone(),
                net_config.peer_store_handle(),
            );
            net_config.add_notification_protocol(protocol_config);
            let warp_sync = Arc::new(sc_consensus_grandpa::warp_proof::NetworkProvider::new(
                backend.clone(),
                grandpa_link.shared_authority_set().clone(),
                Vec::new(),
            ));
            Some((protocol_name, notification_service, warp_sync))
        }
        Consensus::Local { .. } => None,
    };

    let (network, system_rpc_tx, tx_handler_controller, sync_service, _bitswap) =
        sc_service::build_network(sc_service::BuildNetworkParams {
            config: &config,
            net_config,
            client: client.clone(),
            transaction_pool: transaction_pool.clone(),
            spawn_handle: task_manager.spawn_handle(),
            spawn_essential_handle: task_manager.spawn_essential_handle(),
            import_queue,
            block_announce_validator_builder: None,
            warp_sync_config: grandpa_network
                .as_ref()
                .map(|(_, _, provider)| WarpSyncConfig::WithProvider(provider.clone())),
            block_relay: None,
            metrics,
            gap_sync_body_policy: None,
        })?;

    if config.offchain_worker.enabled {
        let offchain_workers = sc_offchain::OffchainWorkers::new(sc_offchain::OffchainWorkerOptions {
            runtime_api_provider: client.clone(),
            is_validator: config.role.is_authority(),
            keystore: Some(keystore_container.keystore()),
            offchain_db: backend.offchain_storage(),
            transaction_pool: Some(OffchainTransactionPoolFactory::new(transaction_pool.clone())),
            network_provider: Arc::new(network.clone()),
            enable_http_requests: false,
            custom_extensions: |_| vec![],
        })?;
        task_manager.spawn_handle().spawn(
            "offchain-workers-runner",
            "offchain-worker",
            offchain_workers.run(client.clone(), task_manager.spawn_handle()).boxed(),
        );
    }

    // Manual and interval sealing take commands, from the `engine_*` RPCs and from a timer.
    let (seal_commands_tx, seal_commands_rx) = match sealing {
        Sealing::Manual | Sealing::Interval(_) => {
            let (tx, rx) = mpsc::channel(1024);
            (Some(tx), Some(rx))
        }
        Sealing::Babe | Sealing::Instant => (None, None),
    };

    let role = config.role;
    let force_authoring = config.force_authoring;
    let name = config.network.node_name.clone();
    let enable_grandpa = !config.disable_grandpa;
    let prometheus_registry = config.prometheus_registry().cloned();

    let rpc_builder = {
        let client = client.clone();
        let pool = transaction_pool.clone();
        let seal_commands = seal_commands_tx.clone();
        Box::new(move |_| {
            let deps = crate::rpc::FullDeps {
                client: client.clone(),
                pool: pool.clone(),
                seal_commands: seal_commands.clone(),
            };
            crate::rpc::create_full(deps).map_err(Into::into)
        })
    };

    sc_service::spawn_tasks(sc_service::SpawnTasksParams {
        network: network.clone(),
        client: client.clone(),
        keystore: keystore_container.keystore(),
        task_manager: &mut task_manager,
        transaction_pool: transaction_pool.clone(),
        rpc_builder,
        backend,
        system_rpc_tx,
        tx_handler_controller,
        sync_service: sync_service.clone(),
        config,
        telemetry: telemetry.as_mut(),
        tracing_execute_block: None,
    })?;

    if !role.is_authority() {
        return Ok(task_manager);
    }

    let proposer_factory = sc_basic_authorship::ProposerFactory::new(
        task_manager.spawn_handle(),
        client.clone(),
        transaction_pool.clone(),
        prometheus_registry.as_ref(),
        telemetry.as_ref().map(|x| x.handle()),
    );

    let (block_import, babe_link, grandpa_link) = match consensus {
        Consensus::Babe { block_import, babe_link, grandpa_link } => (block_import, babe_link, grandpa_link),
        Consensus::Local { block_import, babe_link } => {
            let authorship = local_sealing(LocalSealing {
                sealing,
                commands: seal_commands_rx,
                client,
                keystore: keystore_container.keystore(),
                block_import,
                babe_link,
                proposer_factory,
                pool: transaction_pool,
                select_chain,
            })?;
            task_manager.spawn_essential_handle().spawn_blocking("manual-seal", Some("block-authoring"), authorship);
            return Ok(task_manager);
        }
    };
    let Some((protocol_name, notification_service, _)) = grandpa_network else {
        return Err(ServiceError::Other("BABE without GRANDPA's network protocol".into()));
    };

    let babe = sc_consensus_babe::start_babe(sc_consensus_babe::BabeParams {
        keystore: keystore_container.keystore(),
        client,
        select_chain,
        env: proposer_factory,
        block_import,
        sync_oracle: sync_service.clone(),
        justification_sync_link: sync_service.clone(),
        create_inherent_data_providers: |parent, ()| wall_clock_inherents(parent, ()),
        force_authoring,
        backoff_authoring_blocks: Option::<()>::None,
        babe_link,
        block_proposal_slot_portion: SlotProportion::new(2f32 / 3f32),
        max_block_proposal_slot_portion: None,
        telemetry: telemetry.as_ref().map(|x| x.handle()),
    })?;
    task_manager.spawn_essential_handle().spawn_blocking("babe-proposer", Some("block-authoring"), babe);

    if enable_grandpa {
        let grandpa_params = sc_consensus_grandpa::GrandpaParams {
            config: sc_consensus_grandpa::Config {
                gossip_duration: Duration::from_millis(333),
                justification_generation_period: GRANDPA_JUSTIFICATION_PERIOD,
                name: Some(name),
                observer_enabled: false,
                keystore: Some(keystore_container.keystore()),
                local_role: role,
                telemetry: telemetry.as_ref().map(|x| x.handle()),
                protocol_name,
            },
            link: grandpa_link,
            network,
            sync: sync_service,
            notification_service,
            voting_rule: sc_consensus_grandpa::VotingRulesBuilder::default().build(),
            prometheus_registry,
            shared_voter_state: sc_consensus_grandpa::SharedVoterState::empty(),
            telemetry: telemetry.as_ref().map(|x| x.handle()),
            offchain_tx_pool_factory: OffchainTransactionPoolFactory::new(transaction_pool),
        };
        task_manager.spawn_essential_handle().spawn_blocking(
            "grandpa-voter",
            None,
            sc_consensus_grandpa::run_grandpa_voter(grandpa_params)?,
        );
    }

    Ok(task_manager)
}

/// What local sealing needs.
struct LocalSealing {
    sealing: Sealing,
    commands: Option<mpsc::Receiver<manual_seal::EngineCommand<Hash>>>,
    client: Arc<FullClient>,
    keystore: polkadot_sdk::sp_keystore::KeystorePtr,
    block_import: BabeImport<Arc<FullClient>>,
    babe_link: sc_consensus_babe::BabeLink<Block>,
    proposer_factory: sc_basic_authorship::ProposerFactory<TransactionPool, FullClient>,
    pool: Arc<TransactionPool>,
    select_chain: FullSelectChain,
}

/// The local sealing task: every block carries a BABE pre-digest claimed with the dev
/// validator's key (so a VRF output, as under BABE) and a timestamp one slot after its parent's.
fn local_sealing(parts: LocalSealing) -> Result<futures::future::BoxFuture<'static, ()>, ServiceError> {
    let LocalSealing {
        sealing,
        commands,
        client,
        keystore,
        block_import,
        babe_link,
        proposer_factory,
        pool,
        select_chain,
    } = parts;
    let authorities = babe_link.config().authorities.clone();
    let babe = manual_seal::consensus::babe::BabeConsensusDataProvider::new(
        client.clone(),
        keystore,
        babe_link.epoch_changes().clone(),
        authorities,
    )
    .map_err(|e| ServiceError::Other(format!("BABE for local sealing: {e}")))?;
    let slot_duration = babe_link.config().slot_duration();
    let consensus_data_provider: Option<Box<dyn manual_seal::ConsensusDataProvider<Block>>> =
        Some(Box::new(SlotFromTimestamp { babe, slot_duration }));
    // The timestamp only: see `SlotFromTimestamp` for the slot.
    let sealing_client = client.clone();
    let create_inherent_data_providers = move |_, ()| {
        let client = sealing_client.clone();
        async move {
            manual_seal::consensus::timestamp::SlotTimestampProvider::new_babe(client).map_err(
                |e| -> Box<dyn std::error::Error + Send + Sync> { format!("timestamp for the next block: {e}").into() },
            )
        }
    };
    Ok(match (sealing, commands) {
        (Sealing::Instant, _) => manual_seal::run_instant_seal_and_finalize(manual_seal::InstantSealParams {
            block_import,
            env: proposer_factory,
            client,
            pool,
            select_chain,
            consensus_data_provider,
            create_inherent_data_providers,
        })
        .boxed(),
        (_, Some(rpc_commands)) => {
            let timer = match sealing {
                Sealing::Interval(millis) => seal_every(Duration::from_millis(millis)).boxed(),
                _ => futures::stream::pending().boxed(),
            };
            manual_seal::run_manual_seal(manual_seal::ManualSealParams {
                block_import,
                env: proposer_factory,
                client,
                pool,
                commands_stream: futures::stream::select(rpc_commands, timer),
                select_chain,
                consensus_data_provider,
                create_inherent_data_providers,
            })
            .boxed()
        }
        (_, None) => return Err(ServiceError::Other("sealing mode without a command stream".into())),
    })
}

/// BABE's pre-digest for a locally sealed block, its slot read off the block's timestamp.
///
/// Manual sealing takes a block with as many extrinsics as it has inherent data entries for an
/// empty one. The runtime makes no extrinsic of BABE's slot data, so with the slot as inherent
/// data every block of one transaction would look empty and be dropped: the slot is added here
/// instead, from the timestamp, as BABE itself derives it.
struct SlotFromTimestamp {
    babe: manual_seal::consensus::babe::BabeConsensusDataProvider<Block, FullClient>,
    slot_duration: SlotDuration,
}

impl SlotFromTimestamp {
    /// `inherents` with the slot of their timestamp.
    fn with_slot(&self, inherents: &InherentData) -> Result<InherentData, manual_seal::Error> {
        let timestamp = inherents
            .timestamp_inherent_data()
            .ok()
            .flatten()
            .ok_or_else(|| manual_seal::Error::StringError("a locally sealed block without a timestamp".into()))?;
        let slot = Slot::from_timestamp(timestamp, self.slot_duration);
        let mut with_slot = inherents.clone();
        with_slot
            .put_data(sp_consensus_babe::inherents::INHERENT_IDENTIFIER, &slot)
            .map_err(|e| manual_seal::Error::StringError(format!("the slot of a locally sealed block: {e}")))?;
        Ok(with_slot)
    }
}

impl manual_seal::ConsensusDataProvider<Block> for SlotFromTimestamp {
    fn create_digest(
        &self,
        parent: &<Block as BlockT>::Header,
        inherents: &InherentData,
    ) -> Result<Digest, manual_seal::Error> {
        self.babe.create_digest(parent, &self.with_slot(inherents)?)
    }

    fn append_block_import(
        &self,
        parent: &<Block as BlockT>::Header,
        params: &mut sc_consensus::BlockImportParams<Block>,
        inherents: &InherentData,
        proof: StorageProof,
    ) -> Result<(), manual_seal::Error> {
        self.babe.append_block_import(parent, params, &self.with_slot(inherents)?, proof)
    }
}

/// A command to seal one block, finalized, on every tick of `interval`.
fn seal_every(interval: Duration) -> impl futures::Stream<Item = manual_seal::EngineCommand<Hash>> {
    futures::stream::unfold((), move |()| async move {
        futures_timer::Delay::new(interval).await;
        let command = manual_seal::EngineCommand::SealNewBlock {
            create_empty: true,
            finalize: true,
            parent_hash: None,
            sender: None,
        };
        Some((command, ()))
    })
}

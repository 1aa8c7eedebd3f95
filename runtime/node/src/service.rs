//! The node service: a full client with either Aura + GRANDPA, or local sealing for the dev chain.

use crate::cli::Sealing;
use futures::{channel::mpsc, FutureExt, StreamExt};
use polkadot_sdk::{
    sc_basic_authorship,
    sc_client_api::Backend as _,
    sc_consensus, sc_consensus_aura, sc_consensus_grandpa, sc_consensus_manual_seal as manual_seal, sc_executor,
    sc_network, sc_offchain, sc_service,
    sc_service::{error::Error as ServiceError, Configuration, TaskManager, WarpSyncConfig},
    sc_telemetry::{Telemetry, TelemetryWorker},
    sc_transaction_pool,
    sc_transaction_pool_api::OffchainTransactionPoolFactory,
    sp_consensus_aura::sr25519::{AuthorityId as AuraId, AuthorityPair as AuraPair},
    sp_io, sp_timestamp,
};
use std::{sync::Arc, time::Duration};
use tclearn_runtime::{opaque::Block, Hash, RuntimeApi};

/// The client: runtime calls always go through the wasm runtime.
pub type FullClient =
    sc_service::TFullClient<Block, RuntimeApi, sc_executor::WasmExecutor<sp_io::SubstrateHostFunctions>>;
type FullBackend = sc_service::TFullBackend<Block>;
type FullSelectChain = sc_consensus::LongestChain<FullBackend, Block>;
type GrandpaBlockImport = sc_consensus_grandpa::GrandpaBlockImport<FullBackend, Block, FullClient, FullSelectChain>;
type TransactionPool = sc_transaction_pool::TransactionPoolHandle<Block, FullClient>;

/// Blocks between two GRANDPA justifications kept in the database.
const GRANDPA_JUSTIFICATION_PERIOD: u32 = 512;

/// What `new_partial` prepared for GRANDPA when the node runs Aura.
pub struct GrandpaParts {
    block_import: GrandpaBlockImport,
    link: sc_consensus_grandpa::LinkHalf<Block, FullClient, FullSelectChain>,
}

/// The parts of the service that the subcommands need too.
pub type Service = sc_service::PartialComponents<
    FullClient,
    FullBackend,
    FullSelectChain,
    sc_consensus::DefaultImportQueue<Block>,
    TransactionPool,
    (Option<GrandpaParts>, Option<Telemetry>),
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

    let (import_queue, grandpa) = if sealing == Sealing::Aura {
        let (block_import, link) = sc_consensus_grandpa::block_import(
            client.clone(),
            GRANDPA_JUSTIFICATION_PERIOD,
            &client,
            select_chain.clone(),
            telemetry.as_ref().map(|x| x.handle()),
        )?;
        let cidp_client = client.clone();
        let import_queue = sc_consensus_aura::import_queue::<AuraPair, _, _, _, _, _>(
            sc_consensus_aura::ImportQueueParams {
                block_import: block_import.clone(),
                justification_import: Some(Box::new(block_import.clone())),
                client: client.clone(),
                create_inherent_data_providers: move |parent_hash, _| {
                    let cidp_client = cidp_client.clone();
                    async move {
                        let slot_duration =
                            sc_consensus_aura::standalone::slot_duration_at(&*cidp_client, parent_hash)?;
                        let timestamp = sp_timestamp::InherentDataProvider::from_system_time();
                        let slot = polkadot_sdk::sp_consensus_aura::inherents::InherentDataProvider::from_timestamp_and_slot_duration(
                            *timestamp,
                            slot_duration,
                        );
                        Ok((slot, timestamp))
                    }
                },
                spawner: &task_manager.spawn_essential_handle(),
                registry: config.prometheus_registry(),
                check_for_equivocation: Default::default(),
                telemetry: telemetry.as_ref().map(|x| x.handle()),
                compatibility_mode: Default::default(),
            },
        )?;
        (import_queue, Some(GrandpaParts { block_import, link }))
    } else {
        let import_queue = manual_seal::import_queue(
            Box::new(client.clone()),
            &task_manager.spawn_essential_handle(),
            config.prometheus_registry(),
        );
        (import_queue, None)
    };

    Ok(sc_service::PartialComponents {
        client,
        backend,
        task_manager,
        import_queue,
        keystore_container,
        select_chain,
        transaction_pool,
        other: (grandpa, telemetry),
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
        other: (grandpa, mut telemetry),
    } = new_partial(&config, sealing)?;

    let mut net_config = sc_network::config::FullNetworkConfiguration::<Block, Hash, N>::new(
        &config.network,
        config.prometheus_registry().cloned(),
    );
    let metrics = N::register_notification_metrics(config.prometheus_registry());

    // GRANDPA gossips on a notification protocol of its own, named after the genesis hash.
    let grandpa_network = match &grandpa {
        Some(parts) => {
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
                parts.link.shared_authority_set().clone(),
                Vec::new(),
            ));
            Some((protocol_name, notification_service, warp_sync))
        }
        None => None,
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
        Sealing::Aura | Sealing::Instant => (None, None),
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

    let (Some(GrandpaParts { block_import, link }), Some((protocol_name, notification_service, _))) =
        (grandpa, grandpa_network)
    else {
        // Local sealing: every block carries an Aura pre-digest and a timestamp one slot after
        // its parent's, so the runtime sees the same chain shape as under Aura.
        let sealing_client = client.clone();
        let create_inherent_data_providers = move |_, ()| {
            let client = sealing_client.clone();
            async move {
                manual_seal::consensus::timestamp::SlotTimestampProvider::new_aura(client).map_err(
                    |e| -> Box<dyn std::error::Error + Send + Sync> {
                        format!("timestamp for the next block: {e}").into()
                    },
                )
            }
        };
        let consensus_data_provider: Option<Box<dyn manual_seal::ConsensusDataProvider<Block>>> =
            Some(Box::new(manual_seal::consensus::aura::AuraConsensusDataProvider::new(client.clone())));
        let authorship = match (sealing, seal_commands_rx) {
            (Sealing::Instant, _) => manual_seal::run_instant_seal_and_finalize(manual_seal::InstantSealParams {
                block_import: client.clone(),
                env: proposer_factory,
                client: client.clone(),
                pool: transaction_pool,
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
                    block_import: client.clone(),
                    env: proposer_factory,
                    client: client.clone(),
                    pool: transaction_pool,
                    commands_stream: futures::stream::select(rpc_commands, timer),
                    select_chain,
                    consensus_data_provider,
                    create_inherent_data_providers,
                })
                .boxed()
            }
            (_, None) => return Err(ServiceError::Other("sealing mode without a command stream".into())),
        };
        task_manager.spawn_essential_handle().spawn_blocking("manual-seal", Some("block-authoring"), authorship);
        return Ok(task_manager);
    };

    let slot_duration = sc_consensus_aura::slot_duration::<AuraId, _, _>(&*client)?;
    let aura =
        sc_consensus_aura::start_aura::<AuraPair, _, _, _, _, _, _, _, _, _, _>(sc_consensus_aura::StartAuraParams {
            slot_duration,
            client,
            select_chain,
            block_import,
            proposer_factory,
            create_inherent_data_providers: move |_, ()| async move {
                let timestamp = sp_timestamp::InherentDataProvider::from_system_time();
                let slot =
                    polkadot_sdk::sp_consensus_aura::inherents::InherentDataProvider::from_timestamp_and_slot_duration(
                        *timestamp,
                        slot_duration,
                    );
                Ok((slot, timestamp))
            },
            force_authoring,
            backoff_authoring_blocks: Option::<()>::None,
            keystore: keystore_container.keystore(),
            sync_oracle: sync_service.clone(),
            justification_sync_link: sync_service.clone(),
            block_proposal_slot_portion: sc_consensus_aura::SlotProportion::new(2f32 / 3f32),
            max_block_proposal_slot_portion: None,
            telemetry: telemetry.as_ref().map(|x| x.handle()),
            compatibility_mode: Default::default(),
        })?;
    task_manager.spawn_essential_handle().spawn_blocking("aura", Some("block-authoring"), aura);

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
            link,
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

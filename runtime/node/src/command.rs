//! Dispatch of the command line to the service and to Substrate's standard subcommands.

use crate::{
    chain_spec,
    cli::{Cli, Sealing, Subcommand},
    service,
};
use polkadot_sdk::{
    sc_cli::{self, SubstrateCli},
    sc_network, sc_service,
};

impl SubstrateCli for Cli {
    fn impl_name() -> String {
        "TCLearn Node".into()
    }

    fn impl_version() -> String {
        env!("SUBSTRATE_CLI_IMPL_VERSION").into()
    }

    fn description() -> String {
        env!("CARGO_PKG_DESCRIPTION").into()
    }

    fn author() -> String {
        "TCLearn".into()
    }

    fn support_url() -> String {
        "https://example.invalid/tclearn/issues".into()
    }

    fn copyright_start_year() -> i32 {
        2026
    }

    fn load_spec(&self, id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
        Ok(match id {
            "dev" => Box::new(chain_spec::development()?),
            "" | "local" => Box::new(chain_spec::local_testnet()?),
            path => Box::new(chain_spec::ChainSpec::from_json_file(std::path::PathBuf::from(path))?),
        })
    }
}

/// Parse the command line and run what it asks for.
pub fn run() -> sc_cli::Result<()> {
    let cli = Cli::from_args();

    macro_rules! with_partial {
        ($cmd:expr, |$components:ident, $config:ident| $body:expr) => {{
            let runner = cli.create_runner($cmd)?;
            runner.async_run(|$config| {
                let $components = service::new_partial(&$config, Sealing::Babe)?;
                let task_manager = $components.task_manager;
                Ok(($body, task_manager))
            })
        }};
    }

    match &cli.subcommand {
        Some(Subcommand::Key(cmd)) => cmd.run(&cli),
        Some(Subcommand::BuildSpec(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.sync_run(|config| cmd.run(config.chain_spec, config.network))
        }
        Some(Subcommand::CheckBlock(cmd)) => {
            with_partial!(cmd, |parts, config| cmd.run(parts.client, parts.import_queue))
        }
        Some(Subcommand::ExportBlocks(cmd)) => {
            with_partial!(cmd, |parts, config| cmd.run(parts.client, config.database))
        }
        Some(Subcommand::ExportState(cmd)) => {
            with_partial!(cmd, |parts, config| cmd.run(parts.client, config.chain_spec))
        }
        Some(Subcommand::ImportBlocks(cmd)) => {
            with_partial!(cmd, |parts, config| cmd.run(parts.client, parts.import_queue))
        }
        Some(Subcommand::PurgeChain(cmd)) => {
            let runner = cli.create_runner(cmd)?;
            runner.sync_run(|config| cmd.run(config.database))
        }
        Some(Subcommand::Revert(cmd)) => with_partial!(cmd, |parts, config| {
            let aux_revert = Box::new(|client: std::sync::Arc<service::FullClient>, backend, blocks| {
                polkadot_sdk::sc_consensus_babe::revert(client.clone(), backend, blocks)?;
                polkadot_sdk::sc_consensus_grandpa::revert(client, blocks)?;
                Ok(())
            });
            cmd.run(parts.client, parts.backend, Some(aux_revert))
        }),
        None => {
            let runner = cli.create_runner(&cli.run)?;
            let sealing = cli.sealing;
            runner.run_node_until_exit(|config| async move {
                if sealing != Sealing::Babe && config.chain_spec.id() != "tclearn_dev" {
                    return Err(sc_cli::Error::Input(
                        "--sealing other than `babe` runs only on the dev chain (--dev)".into(),
                    ));
                }
                service::new_full::<sc_network::NetworkWorker<_, _>>(config, sealing).map_err(sc_cli::Error::Service)
            })
        }
    }
}

//! Command line of `tclearn-node`: Substrate's standard commands plus `--sealing`.

use polkadot_sdk::sc_cli;
use std::str::FromStr;

/// How blocks are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sealing {
    /// BABE slots and GRANDPA finality: what a real coalition runs.
    #[default]
    Babe,
    /// One block for each transaction as it arrives, finalized at once (dev chain only).
    Instant,
    /// A block every N milliseconds, finalized at once (dev chain only).
    Interval(u64),
    /// Blocks only on `engine_createBlock` RPC calls, finalized at once (dev chain only).
    Manual,
}

impl FromStr for Sealing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "babe" => Self::Babe,
            "instant" => Self::Instant,
            "manual" => Self::Manual,
            millis => match millis.parse::<u64>() {
                Ok(0) | Err(_) => {
                    return Err(format!(
                        "`{s}`: expected `babe`, `instant`, `manual` or a block interval in \
                         milliseconds (> 0)"
                    ))
                }
                Ok(ms) => Self::Interval(ms),
            },
        })
    }
}

/// The node's command line.
#[derive(Debug, clap::Parser)]
pub struct Cli {
    /// A subcommand; without one the node runs.
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,

    /// Running the node.
    #[clap(flatten)]
    pub run: sc_cli::RunCmd,

    /// Block production: `babe` (default), `instant`, `manual`, or an interval in milliseconds.
    /// Anything but `babe` is for a single dev node: blocks are sealed locally and finalized at
    /// once; each block still advances the on-chain clock by one BABE slot (3 s) and carries the
    /// dev validator's BABE VRF output, as under BABE.
    #[arg(long, default_value = "babe", env = "TCLEARN_SEALING")]
    pub sealing: Sealing,
}

/// Substrate's standard subcommands that make sense for this node.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
    /// Key management.
    #[command(subcommand)]
    Key(sc_cli::KeySubcommand),
    /// Build a chain specification.
    BuildSpec(sc_cli::BuildSpecCmd),
    /// Validate blocks.
    CheckBlock(sc_cli::CheckBlockCmd),
    /// Export blocks.
    ExportBlocks(sc_cli::ExportBlocksCmd),
    /// Export the state of a given block into a chain spec.
    ExportState(sc_cli::ExportStateCmd),
    /// Import blocks.
    ImportBlocks(sc_cli::ImportBlocksCmd),
    /// Remove the whole chain.
    PurgeChain(sc_cli::PurgeChainCmd),
    /// Revert the chain to a previous state.
    Revert(sc_cli::RevertCmd),
}

#[cfg(test)]
mod tests {
    use super::Sealing;

    #[test]
    fn sealing_parses_every_mode_and_refuses_the_rest() {
        assert_eq!("babe".parse(), Ok(Sealing::Babe));
        assert_eq!("instant".parse(), Ok(Sealing::Instant));
        assert_eq!("manual".parse(), Ok(Sealing::Manual));
        assert_eq!("250".parse(), Ok(Sealing::Interval(250)));
        assert!("0".parse::<Sealing>().is_err());
        assert!("fast".parse::<Sealing>().unwrap_err().contains("`fast`"));
    }
}

//! What every TCLearn program needs to reach the chain, as one set of flags: each program
//! flattens these into its own `clap` configuration, so that `--rpc` (`TCLEARN_RPC`), the
//! coalition and its metadata are read the same way by the oracle, the members' API and the
//! member's command line.

use crate::H160;
use std::path::PathBuf;

/// The node a program talks to.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// The node's RPC endpoint.
    #[arg(long, visible_alias = "node", global = true, env = "TCLEARN_RPC", default_value = "ws://127.0.0.1:9944")]
    pub rpc: String,
}

/// The coalition contract on the chain, and how to read it.
#[derive(Debug, Clone, clap::Args)]
pub struct CoalitionArgs {
    /// The node.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The coalition contract's address (0x-prefixed hex).
    #[arg(long, env = "TCLEARN_COALITION")]
    pub coalition: H160,
    /// The coalition contract's metadata (`coalition.json` from cargo-contract).
    #[arg(long, env = "TCLEARN_COALITION_METADATA")]
    pub metadata: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Program {
        #[command(flatten)]
        coalition: CoalitionArgs,
    }

    #[test]
    fn every_program_reads_the_chain_from_the_same_flags() {
        let address = format!("0x{}", "11".repeat(20));
        let program =
            Program::try_parse_from(["p", "--rpc", "ws://node:9944", "--coalition", &address, "--metadata", "c.json"])
                .unwrap();
        assert_eq!(program.coalition.chain.rpc, "ws://node:9944");
        assert_eq!(program.coalition.coalition, H160([0x11; 20]));
        assert_eq!(program.coalition.metadata, PathBuf::from("c.json"));
        let program = Program::try_parse_from([
            "p",
            "--node",
            "ws://other:9944",
            "--coalition",
            &address,
            "--metadata",
            "c.json",
        ])
        .unwrap();
        assert_eq!(program.coalition.chain.rpc, "ws://other:9944", "--node is the command line's older name");
        assert!(Program::try_parse_from(["p", "--coalition", "0x11", "--metadata", "c.json"]).is_err());
    }
}

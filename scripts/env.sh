# Shared settings for TCLearn's scripts; source it, don't run it.
#
# Build output lives in one machine-wide cache outside the clone, so that later sessions and CI
# (a fresh clone on the same machine) reuse it:
#   $TCLEARN_CACHE/target            the root workspace: everything off-chain (client, model,
#                                    oracle, members' API, member CLI, end-to-end tests)
#   $TCLEARN_CACHE/node-target       the node workspace (runtime/: node and runtime)
#   $TCLEARN_CACHE/contracts-target  the contracts workspace
#   $TCLEARN_CACHE/artifacts         built contracts: <name>.contract / .polkavm / .json
#   $TCLEARN_CACHE/tools             pinned tools (cargo-contract)
#   $TCLEARN_CACHE/onnxruntime       the ONNX Runtime library from the PyPI wheel
#   $TCLEARN_CACHE/moto-venv         moto's local S3 endpoint (moto_server), for the vault's tests
#   $TCLEARN_CACHE/schemathesis-venv Schemathesis, which fuzzes the members' API in its tests
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
export TCLEARN_CACHE="${TCLEARN_CACHE:-$HOME/.cache/tclearn}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TCLEARN_CACHE/target}"
export TCLEARN_CONTRACTS_TARGET="${TCLEARN_CONTRACTS_TARGET:-$TCLEARN_CACHE/contracts-target}"
export TCLEARN_ARTIFACTS="${TCLEARN_ARTIFACTS:-$TCLEARN_CACHE/artifacts}"
export TCLEARN_TOOLS="$TCLEARN_CACHE/tools"
export TCLEARN_NODE_TARGET="${TCLEARN_NODE_TARGET:-$TCLEARN_CACHE/node-target}"
export TCLEARN_NODE="${TCLEARN_NODE:-$TCLEARN_NODE_TARGET/release/tclearn-node}"
# The off-chain programs, as the demo and the end-to-end tests run them (release builds of the
# root workspace).
export TCLEARN_BIN="${TCLEARN_BIN:-$CARGO_TARGET_DIR/release/tclearn}"
export TCLEARN_API_BIN="${TCLEARN_API_BIN:-$CARGO_TARGET_DIR/release/tclearn-api}"
export TCLEARN_ORACLE_BIN="${TCLEARN_ORACLE_BIN:-$CARGO_TARGET_DIR/release/oracle}"
# The features the tests, the demo and the benchmarks build the root workspace with: the malicious
# member's training (`tclearn train --attack`) and the oracle's fault injection (`--abort-after`),
# both left out of a plain `cargo build` or `cargo install`.
export TCLEARN_TEST_FEATURES="tclearn-member/attack,tclearn-oracle/fault-injection"
export TCLEARN_MOTO_SERVER="${TCLEARN_MOTO_SERVER:-$TCLEARN_CACHE/moto-venv/bin/moto_server}"
export TCLEARN_SCHEMATHESIS="${TCLEARN_SCHEMATHESIS:-$TCLEARN_CACHE/schemathesis-venv/bin/schemathesis}"
# The runtime's wasm is built as a project of its own under the node's target directory; it finds
# the node workspace's Cargo.lock (and so the same pinned versions) only through this hint, since
# the target dir is outside the clone.
export WASM_BUILD_WORKSPACE_HINT="$REPO_ROOT/runtime"
export PATH="$TCLEARN_TOOLS/bin:$HOME/.cargo/bin:$PATH"
# cargo-contract passes a JSON target spec for PolkaVM, which Rust 1.95 gates behind this flag.
export CARGO_UNSTABLE_JSON_TARGET_SPEC=true

# Pinned versions (see README, "Stack").
export CARGO_CONTRACT_VERSION="6.0.0-beta.2"
export ONNXRUNTIME_VERSION="1.31.1"
export MOTO_VERSION="5.2.5"
export SCHEMATHESIS_VERSION="4.32.5"

log() { printf '\033[1m[%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*" >&2; }

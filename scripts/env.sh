# Shared settings for TCLearn's scripts; source it, don't run it.
#
# Build output lives in one machine-wide cache outside the clone, so that later sessions and CI
# (a fresh clone on the same machine) reuse it:
#   $TCLEARN_CACHE/target            the root workspace (node, runtime, client, tests)
#   $TCLEARN_CACHE/contracts-target  the contracts workspace
#   $TCLEARN_CACHE/api-target        the members' API workspace (frontend-api), and the member's
#                                    (member: CLI, trainer, accountant), which builds on the API's
#                                    client and so shares its built dependencies
#   $TCLEARN_CACHE/artifacts         built contracts: <name>.contract / .polkavm / .json
#   $TCLEARN_CACHE/tools             pinned tools (cargo-contract)
#   $TCLEARN_CACHE/onnxruntime       the ONNX Runtime library from the PyPI wheel
#   $TCLEARN_CACHE/moto-venv         moto's local S3 endpoint (moto_server), for the vault's tests
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
export TCLEARN_CACHE="${TCLEARN_CACHE:-$HOME/.cache/tclearn}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TCLEARN_CACHE/target}"
export TCLEARN_CONTRACTS_TARGET="${TCLEARN_CONTRACTS_TARGET:-$TCLEARN_CACHE/contracts-target}"
export TCLEARN_ARTIFACTS="${TCLEARN_ARTIFACTS:-$TCLEARN_CACHE/artifacts}"
export TCLEARN_TOOLS="$TCLEARN_CACHE/tools"
export TCLEARN_NODE="${TCLEARN_NODE:-$CARGO_TARGET_DIR/release/tclearn-node}"
export TCLEARN_API_TARGET="${TCLEARN_API_TARGET:-$TCLEARN_CACHE/api-target}"
export TCLEARN_MEMBER_TARGET="${TCLEARN_MEMBER_TARGET:-$TCLEARN_API_TARGET}"
# The member's command line, as the demo and the end-to-end tests run it.
export TCLEARN_BIN="${TCLEARN_BIN:-$TCLEARN_MEMBER_TARGET/debug/tclearn}"
# The members' API (frontend-api, a workspace of its own), as the end-to-end tests start it.
export TCLEARN_API_BIN="${TCLEARN_API_BIN:-$TCLEARN_API_TARGET/debug/tclearn-api}"
export TCLEARN_MOTO_SERVER="${TCLEARN_MOTO_SERVER:-$TCLEARN_CACHE/moto-venv/bin/moto_server}"
# The runtime's wasm is built as a project of its own under $CARGO_TARGET_DIR; it finds the
# workspace's Cargo.lock (and so the same pinned versions) only through this hint, since the
# target dir is outside the clone.
export WASM_BUILD_WORKSPACE_HINT="$REPO_ROOT"
export PATH="$TCLEARN_TOOLS/bin:$HOME/.cargo/bin:$PATH"
# cargo-contract passes a JSON target spec for PolkaVM, which Rust 1.95 gates behind this flag.
export CARGO_UNSTABLE_JSON_TARGET_SPEC=true

# Pinned versions (see README, "Stack").
export CARGO_CONTRACT_VERSION="6.0.0-beta.2"
export ONNXRUNTIME_VERSION="1.31.1"
export MOTO_VERSION="5.2.5"

log() { printf '\033[1m[%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*" >&2; }

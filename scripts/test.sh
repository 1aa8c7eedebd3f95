#!/usr/bin/env bash
# The test command. First the gates, which fail fast: formatting, then clippy with warnings as
# errors, for each of the three workspaces. Then set up (idempotent: Debian packages, tools, the
# node, the contracts) and run every test: the contracts' unit tests, the node workspace's, every
# off-chain test of the root workspace (unit and end to end, against real tclearn-node processes,
# the members' API, the oracles and the four-validator network), and the demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
command -v rustup >/dev/null || { echo "rustup is required: https://rustup.rs" >&2; exit 1; }
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install

log "gate: cargo fmt --check (root, runtime/, contracts/)"
cargo fmt --all --check
cargo fmt --all --check --manifest-path runtime/Cargo.toml
cargo fmt --all --check --manifest-path contracts/Cargo.toml

"$REPO_ROOT/scripts/setup.sh"

log "gate: cargo clippy -D warnings (root, runtime/, contracts/)"
cargo clippy --locked --workspace --all-targets --release --features "$TCLEARN_TEST_FEATURES" -- -D warnings
# And the programs as a hospital builds them: without the tests' features.
cargo clippy --locked --workspace --lib --bins --release -- -D warnings
# The runtime's wasm is not what clippy reads: it checks the native build, without building the
# wasm blob again (the node build above made it).
SKIP_WASM_BUILD=1 CARGO_TARGET_DIR="$TCLEARN_NODE_TARGET" \
    cargo clippy --locked --workspace --all-targets --manifest-path runtime/Cargo.toml -- -D warnings
CARGO_TARGET_DIR="$TCLEARN_CONTRACTS_TARGET" \
    cargo clippy --locked --workspace --all-targets --manifest-path contracts/Cargo.toml -- -D warnings

log "contract unit tests"
CARGO_TARGET_DIR="$TCLEARN_CONTRACTS_TARGET" cargo test --locked --manifest-path contracts/Cargo.toml
log "node workspace tests (runtime/)"
CARGO_TARGET_DIR="$TCLEARN_NODE_TARGET" cargo test --release --locked --workspace --manifest-path runtime/Cargo.toml
log "off-chain tests (the root workspace: unit, end to end, and the network tier)"
cargo test --release --locked --workspace --features "$TCLEARN_TEST_FEATURES"
log "the demo (scripts/demo.sh): it fails unless the coalition keeps its promises"
demo_out="$(mktemp -d)"
"$REPO_ROOT/scripts/demo.sh" --out "$demo_out"
rm -rf "$demo_out"
log "all tests passed"

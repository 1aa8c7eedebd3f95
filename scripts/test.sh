#!/usr/bin/env bash
# The test command. First the gates, which fail fast: formatting, then clippy with warnings as
# errors, for each of the three workspaces. Then set up (idempotent: Debian packages, tools, the
# node, the contracts) and run every test: the contracts' unit tests, the node workspace's, every
# off-chain test of the root workspace (unit and end to end, against real tclearn-node processes,
# the members' API, the oracles and the four-validator network), and the demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
# Each phase's wall time, printed at the end (docs/build.md keeps the measurements).
declare -a PHASES=()
phase_start=$SECONDS
phase() {
    local now=$SECONDS
    [ -n "${phase_name:-}" ] && PHASES+=("$(printf '%6d s  %s' $((now - phase_start)) "$phase_name")")
    phase_name=$1 phase_start=$now
    log "$1"
}
command -v rustup >/dev/null || { echo "rustup is required: https://rustup.rs" >&2; exit 1; }
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install

phase "gate: cargo fmt --check (root, runtime/, contracts/)"
cargo fmt --all --check
cargo fmt --all --check --manifest-path runtime/Cargo.toml
cargo fmt --all --check --manifest-path contracts/Cargo.toml

phase "setup (scripts/setup.sh: packages, tools, the node, the contracts)"
"$REPO_ROOT/scripts/setup.sh"

phase "gate: cargo clippy -D warnings (root, runtime/, contracts/)"
cargo clippy --locked --workspace --all-targets --release --features "$TCLEARN_TEST_FEATURES" -- -D warnings
# And the programs as a hospital builds them: without the tests' features.
cargo clippy --locked --workspace --lib --bins --release -- -D warnings
# In release, as the node is built: clippy then shares its build scripts' outputs (the runtime's
# wasm among them, already built) and proc macros, and checks only the node's own crates anew.
CARGO_TARGET_DIR="$TCLEARN_NODE_TARGET" \
    cargo clippy --locked --workspace --all-targets --release --manifest-path runtime/Cargo.toml -- -D warnings
CARGO_TARGET_DIR="$TCLEARN_CONTRACTS_TARGET" \
    cargo clippy --locked --workspace --all-targets --manifest-path contracts/Cargo.toml -- -D warnings

phase "contract unit tests"
CARGO_TARGET_DIR="$TCLEARN_CONTRACTS_TARGET" cargo test --locked --manifest-path contracts/Cargo.toml
phase "node workspace tests (runtime/)"
CARGO_TARGET_DIR="$TCLEARN_NODE_TARGET" cargo test --release --locked --workspace --manifest-path runtime/Cargo.toml
phase "off-chain tests (the root workspace: unit, end to end, and the network tier)"
cargo test --release --locked --workspace --features "$TCLEARN_TEST_FEATURES"
phase "the demo (scripts/demo.sh): it fails unless the coalition keeps its promises"
demo_out="$(mktemp -d)"
"$REPO_ROOT/scripts/demo.sh" --out "$demo_out"
rm -rf "$demo_out"
phase "done"
printf '%s\n' "${PHASES[@]}" >&2
log "all tests passed"

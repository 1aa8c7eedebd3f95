#!/usr/bin/env bash
# The test command: set up (idempotent), then every test: the contracts' unit tests, the members'
# API's and the member's tests, the root workspace's unit tests and end-to-end tests against real
# tclearn-node processes, and the demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"
log "contract unit tests"
CARGO_TARGET_DIR="$TCLEARN_CONTRACTS_TARGET" cargo test --locked --manifest-path contracts/Cargo.toml
log "members' API tests (frontend-api, a workspace of its own; it also builds the tclearn-api the end-to-end tests start)"
CARGO_TARGET_DIR="$TCLEARN_API_TARGET" cargo test --locked --manifest-path frontend-api/Cargo.toml
log "member tests (member, a workspace of its own)"
CARGO_TARGET_DIR="$TCLEARN_MEMBER_TARGET" cargo test --locked --manifest-path member/Cargo.toml
log "workspace tests (unit and end-to-end)"
cargo test --release --locked --workspace
log "the demo (scripts/demo.sh): it fails unless the coalition keeps its promises"
demo_out="$(mktemp -d)"
"$REPO_ROOT/scripts/demo.sh" --out "$demo_out"
rm -rf "$demo_out"
log "all tests passed"

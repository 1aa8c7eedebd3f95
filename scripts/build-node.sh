#!/usr/bin/env bash
# Build tclearn-node (and the rest of the root workspace) in release mode into the shared cache.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
log "building the workspace (tclearn-node) into $CARGO_TARGET_DIR"
cargo build --release --locked --workspace
test -x "$TCLEARN_NODE"

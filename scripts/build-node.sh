#!/usr/bin/env bash
# Build tclearn-node (the node workspace, runtime/) in release mode into the shared cache.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT/runtime"
log "building the node workspace (tclearn-node) into $TCLEARN_NODE_TARGET"
CARGO_TARGET_DIR="$TCLEARN_NODE_TARGET" cargo build --release --locked --workspace
# The path this build writes, whatever $TCLEARN_NODE a shell may still hold from an older layout.
test -x "$TCLEARN_NODE_TARGET/release/tclearn-node"

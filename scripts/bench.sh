#!/usr/bin/env bash
# Benchmarks against the real node: the coalition messages' weights and storage deposits for
# k = 4 and k = 16 validators (a markdown table on stdout).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"
cargo bench --locked -p tclearn-e2e --bench coalition_weights

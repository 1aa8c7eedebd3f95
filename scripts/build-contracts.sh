#!/usr/bin/env bash
# Build every contract under contracts/ to PolkaVM with the pinned cargo-contract, and copy the
# bundle (.contract), program (.polkavm) and metadata (.json) into $TCLEARN_ARTIFACTS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT/contracts"
mkdir -p "$TCLEARN_ARTIFACTS"
for manifest in */Cargo.toml; do
    crate="$(dirname "$manifest")"
    # Contracts depend on ink!; other crates here (coalition-types) are libraries they share.
    grep -q '^ink = ' "$manifest" || continue
    name="${crate//-/_}"
    log "building contract $crate"
    CARGO_TARGET_DIR="$TCLEARN_CONTRACTS_TARGET" \
        cargo contract build --release --quiet --manifest-path "$manifest"
    for ext in contract polkavm json; do
        cp "$TCLEARN_CONTRACTS_TARGET/ink/$name/$name.$ext" "$TCLEARN_ARTIFACTS/"
    done
    printf '%s: %s bytes of PolkaVM code\n' "$name" "$(stat -c %s "$TCLEARN_ARTIFACTS/$name.polkavm")"
done

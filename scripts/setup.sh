#!/usr/bin/env bash
# Install everything TCLearn needs, idempotently: Debian packages, the Rust toolchain and its
# components, cargo-contract, the ONNX Runtime library; then build the node and the contracts.
# A second run on a set-up machine only checks, and rebuilds what changed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

# 1. Debian packages the node build needs, Chromium for the dashboard's browser test, and
#    nftables for the network tier's partition (member/tests/network.rs).
packages=(protobuf-compiler clang libclang-dev curl unzip chromium nftables)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. The toolchain of rust-toolchain.toml, with rust-src and the wasm targets.
command -v rustup >/dev/null || { echo "rustup is required: https://rustup.rs" >&2; exit 1; }
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup component add rust-src >/dev/null 2>&1
rustup target add wasm32v1-none wasm32-unknown-unknown >/dev/null 2>&1

# 3. cargo-contract, pinned (about 20 CPU-minutes the first time).
if [ "$(cargo-contract --version 2>/dev/null | awk '{print $2}' | cut -d- -f1-2)" != "$CARGO_CONTRACT_VERSION" ]; then
    log "installing cargo-contract $CARGO_CONTRACT_VERSION"
    cargo install --locked --quiet cargo-contract --version "$CARGO_CONTRACT_VERSION" --root "$TCLEARN_TOOLS"
fi

# 4. ONNX Runtime, from the onnxruntime wheel on PyPI; the repo's .ort/ links to it and
#    .cargo/config.toml points ORT_DYLIB_PATH there.
ort_dir="$TCLEARN_CACHE/onnxruntime/$ONNXRUNTIME_VERSION"
if ! ls "$ort_dir"/libonnxruntime.so.* >/dev/null 2>&1; then
    log "fetching the onnxruntime $ONNXRUNTIME_VERSION wheel"
    wheel_dir="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheel_dir" "onnxruntime==$ONNXRUNTIME_VERSION"
    mkdir -p "$ort_dir"
    unzip -q -j -o "$wheel_dir"/onnxruntime-*.whl 'onnxruntime/capi/libonnxruntime.so.*' -d "$ort_dir"
    rm -rf "$wheel_dir"
fi
mkdir -p "$REPO_ROOT/.ort"
ln -sf "$(ls "$ort_dir"/libonnxruntime.so.* | head -n 1)" "$REPO_ROOT/.ort/libonnxruntime.so"

# 5. moto's local S3 endpoint, for the vault's S3 tests (a virtual environment in the cache).
moto_venv="$TCLEARN_CACHE/moto-venv"
if [ "$("$moto_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" != "$MOTO_VERSION" ]; then
    log "installing moto $MOTO_VERSION (a local S3 endpoint for the tests)"
    python3 -m venv "$moto_venv"
    "$moto_venv/bin/pip" install --quiet "moto[server]==$MOTO_VERSION"
fi

# 5b. Schemathesis, which fuzzes the members' API from its OpenAPI document in the tests
#     (frontend-api/tests/fuzz.rs), in a virtual environment of the cache.
schemathesis_venv="$TCLEARN_CACHE/schemathesis-venv"
if [ "$("$schemathesis_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]; then
    log "installing Schemathesis $SCHEMATHESIS_VERSION (fuzzes the members' API in the tests)"
    python3 -m venv "$schemathesis_venv"
    "$schemathesis_venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

# 6. The dashboard: its npm dependencies from the lockfile, bundled (frontend-api/web/dist).
command -v npm >/dev/null || { echo "Node.js and npm are required for the dashboard: https://nodejs.org" >&2; exit 1; }
log "bundling the dashboard (npm ci, esbuild)"
(cd "$REPO_ROOT/frontend-api/web" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build >/dev/null)

# 6b. zombienet's CLI (npm, pinned in zombienet/package-lock.json), for scripts/network.sh. Its
# lock replaces @zombienet/utils' GitHub dependency `toml` with the registry's toml 3.0.0
# (package.json "overrides"): GitHub is out of reach here, npm's registry is not.
zombienet_lock="$(sha256sum "$REPO_ROOT/zombienet/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$REPO_ROOT/zombienet/node_modules/.tclearn-lock" 2>/dev/null)" != "$zombienet_lock" ]; then
    log "installing zombienet's CLI (npm ci)"
    (cd "$REPO_ROOT/zombienet" && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts >/dev/null)
    echo "$zombienet_lock" >"$REPO_ROOT/zombienet/node_modules/.tclearn-lock"
fi

# 7. The node and the contracts.
"$REPO_ROOT/scripts/build-node.sh"
"$REPO_ROOT/scripts/build-contracts.sh"
log "setup done"

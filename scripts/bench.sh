#!/usr/bin/env bash
# Benchmarks (markdown tables on stdout):
# - coalition_weights: the coalition messages' weights and storage deposits for k = 4 and
#   k = 16 validators, against the real node;
# - evaluation: the oracle's evaluation throughput against Python onnxruntime (same version,
#   model, data, threads and batch) and against a bare inference loop;
# - members_api: the vault's throughput on a 100 MB model against a file copy, the members'
#   API's latency under a bounded load (wrk, from Debian's packages), a member's sign-in and
#   download latency under an anonymous flood, and the peak memory of 32 concurrent uploads;
# - trainer: the member's DP-SGD trainer (burn) in per-example gradients per second, against the
#   same run in NumPy;
# - round_latency: seconds and blocks from `tclearn propose` to the appended block on the
#   four-validator network (zombienet), by phase (submit, draw, commit, reveal, seal, attest),
#   and the oracles' evaluation time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"

# Python onnxruntime for the comparison, the same version as the library the oracle loads.
venv="$TCLEARN_CACHE/bench-venv"
if ! "$venv/bin/python" -c "import onnxruntime, numpy, PIL; assert onnxruntime.__version__ == '$ONNXRUNTIME_VERSION'" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "onnxruntime==$ONNXRUNTIME_VERSION" numpy pillow
fi
export TCLEARN_BENCH_PYTHON="$venv/bin/python"

# wrk, the load generator of the members' API benchmark.
if ! command -v wrk >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

# --workspace and the tests' features keep the build the same as the tests'. The programs the
# benchmarks start (oracle, tclearn-api, tclearn) are built first: a bench builds only its own
# package's binaries.
cargo build --release --locked --workspace --features "$TCLEARN_TEST_FEATURES"
for bench in coalition_weights evaluation members_api trainer round_latency; do
    cargo bench --locked --workspace --features "$TCLEARN_TEST_FEATURES" --bench "$bench"
done

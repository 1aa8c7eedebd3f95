#!/usr/bin/env bash
# Benchmarks (markdown tables on stdout):
# - coalition_weights: the coalition messages' weights and storage deposits for k = 4 and
#   k = 16 validators, against the real node;
# - evaluation: the oracle's evaluation throughput against Python onnxruntime (same version,
#   model, data, threads and batch) and against a bare inference loop.
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

# --workspace keeps the features (and so the build) the same as the tests'.
cargo bench --locked --workspace --bench coalition_weights
cargo bench --locked --workspace --bench evaluation

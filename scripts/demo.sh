#!/usr/bin/env bash
# The demo: four hospitals hold shards of the Breast Cancer Wisconsin data (datasets/breast-cancer)
# and train one model together without sharing a row. One of them, Dave's, is malicious: it
# proposes increments trained on flipped labels, scaled, or drowned in noise.
#
# It starts its own dev node, founds the coalition (the genesis model, G, a privacy budget),
# starts the members' API with its vault and one oracle per member (each with its own local test
# set L), then plays rounds through the `tclearn` CLI: each member trains with DP-SGD on patients
# not yet in a block, proposes, and the round is followed to its verdict. It ends with the model
# chain, strengths, contributions and privacy spent, and writes `summary.json` and a chart of the
# metric per block (`metric.svg`) to --out (default demo-out/), with every process's log.
#
#   scripts/demo.sh [--out DIR]
#
# It sets up what is missing first (scripts/setup.sh). Its processes stop on exit and on Ctrl-C.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/coalition.sh"

OUT="$REPO_ROOT/demo-out"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (scripts/demo.sh [--out DIR])" >&2; exit 2 ;;
    esac
done
started=$(date +%s.%N)

# ---- What is missing: the toolchain, ONNX Runtime, the node and contracts, the API and the CLI.
build_programs

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -rf "$OUT/logs" "$OUT/summary.json" "$OUT/metric.svg"
mkdir -p "$OUT/logs"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'echo; log "interrupted"; exit 130' INT TERM


# ---- The data: G is every 5th row, hospital h holds the rows r with r mod 5 = h + 1. Each row's
# identifier is its row number, as a hospital's record number would be.
HOSPITALS=(Alice Bob Charlie Dave)
MALICIOUS=Dave
shard_breast_cancer "$WORK"

# Each member has its key and keeps the API's signed receipts of its accesses to the vault.
tclearn_as() { local who=$1; shift; TCLEARN_KEY_FILE="$WORK/$who.key" TCLEARN_RECEIPTS="$WORK/$who.receipts" "$TCLEARN" "$@"; }
declare -A ADDRESS
for h in "${!HOSPITALS[@]}"; do
    name=${HOSPITALS[$h]}
    echo "//$name" | tclearn_as "$name" key import >/dev/null
    ADDRESS[$name]=$(tclearn_as "$name" key show --json | sed -E 's/.*"address":"(0x[0-9a-f]+)".*/\1/')
    # Each hospital keeps 20% of its rows as its local test set L, for its oracle.
    tclearn_as "$name" split --data "$WORK/hospital-$h.csv" --local-share 0.2 --seed 1 \
        --train "$WORK/$name-train.csv" --local "$WORK/$name-local.csv" >/dev/null
done
# tclearn's address book: members by name in its tables.
TCLEARN_NAMES=$(for name in "${HOSPITALS[@]}"; do printf '%s=%s,' "${ADDRESS[$name]}" "$name"; done)
export TCLEARN_NAMES="${TCLEARN_NAMES%,}"

# ---- The chain.
RPC_PORT=$(free_port)
log "starting a dev node (a block every 500 ms)"
"$TCLEARN_NODE" --dev --sealing 500 --base-path "$WORK/node" --rpc-port "$RPC_PORT" \
    --listen-addr "/ip4/127.0.0.1/tcp/$(free_port "$RPC_PORT")" --no-prometheus --no-telemetry --no-mdns \
    >"$OUT/logs/node.log" 2>&1 &
PIDS+=($!)
wait_port "$RPC_PORT" "the node" "${PIDS[-1]}"
export TCLEARN_RPC="ws://127.0.0.1:$RPC_PORT"

# ---- Founding: Alice's genesis model (its inputs standardised by the public ranges that the
# data set's description lists, declared in the genesis; weights at random), G, a privacy budget
# of epsilon 50 per member.
RANGES="$REPO_ROOT/datasets/breast-cancer/standardisation.json"
LAMBDA=0.95
tclearn_as Alice model init --standardisation "$RANGES" --hidden 16 --seed 7 --out "$WORK/genesis.onnx" >/dev/null
log "founding the coalition"
founded=$(tclearn_as Alice found --json --model "$WORK/genesis.onnx" --test-set "$WORK/g.csv" \
    --founders "${ADDRESS[Bob]},${ADDRESS[Charlie]},${ADDRESS[Dave]}" --validators-per-round 3 --lambda "$LAMBDA" \
    --phase-blocks 40 --min-batch-size 10 --learning-rate 0.3 --epochs 5 --batch-size 16 \
    --privacy-budget 50,1e-4 --declaration "$WORK/genesis.json" --standardisation "$RANGES" --seed 7)
COALITION=$(echo "$founded" | sed -E 's/.*"coalition":"(0x[0-9a-f]+)".*/\1/')
# Every member's tclearn from here on pins it: an API that serves another coalition is refused.
export TCLEARN_COALITION="$COALITION"

log "starting the members' API and its vault"
start_api "$OUT/logs/api.log"
tclearn_as Alice upload "$WORK/genesis.onnx" >/dev/null

log "starting one oracle per member"
for name in "${HOSPITALS[@]}"; do
    TCLEARN_POLL_MS=250 start_oracle "$name" "$OUT/logs/oracle-$name.log"
done

echo
echo "Coalition $COALITION: ${HOSPITALS[*]}; $MALICIOUS is malicious."
echo "Dashboard: $TCLEARN_API_URL/"
echo

# ---- The rounds: who proposes, and how a malicious increment is spoiled.
SCHEDULE=(Alice Dave:flip-labels Bob Charlie Dave:scale:-10 Alice Dave:noise:3 Bob)
round=0
for entry in "${SCHEDULE[@]}"; do
    name=${entry%%:*}
    attack=""
    [ "$entry" != "$name" ] && attack=${entry#*:}
    round=$((round + 1))
    if [ -n "$attack" ]; then
        echo "━━ $name proposes (malicious: $attack)"
        extra=(--attack "$attack")
    else
        echo "━━ $name proposes"
        extra=()
    fi
    tclearn_as "$name" train --data "$WORK/$name-train.csv" --out "$WORK/candidate-$round" --max-samples 30 \
        --target-epsilon 12.5 --clip-norm 1.0 "${extra[@]}"
    set +e
    # Charlie sends his increment as a delta (the weight changes), the others their whole model.
    delta=()
    [ "$name" = Charlie ] && delta=(--delta)
    tclearn_as "$name" propose --candidate "$WORK/candidate-$round" --wait-secs 300 "${delta[@]}"
    verdict=$?
    set -e
    [ $verdict -le 2 ] || exit $verdict
    echo
done

# ---- The audit log, anchored and verified; the chain; the report.
tclearn_as Bob audit anchor >/dev/null
tclearn_as Bob audit verify
# Every block's model evaluated again on G against the performance the chain records and each
# validator's revealed G metric: exits 3 on a forged report.
tclearn_as Bob audit blocks --test-set "$WORK/g.csv" --declaration "$WORK/genesis.json"
echo
tclearn_as Alice status
wall=$(python3 -c "import time; print(round(time.time() - $started, 1))")
tclearn_as Alice report --out "$OUT" --malicious "${ADDRESS[$MALICIOUS]}" --wall-seconds "$wall"

# ---- The promise, round by round (SCHEDULE's order): each verdict follows the lambda rule
# against the lineage's best performance before it. An honest increment is appended, or
# rejected as degrading only where its performance fell below lambda times that best (DP-SGD's
# noise can make an honest step that bad); flipped labels and noise are rejected as degrading;
# the scale attack is rejected, or appended only where it kept lambda of that best (it reverses
# a DP-noised step, whose harm varies); and the final model is better on G than the genesis
# model. The performances are the validators' reports, which `audit blocks` above evaluated
# again.
python3 - "$OUT/summary.json" "$LAMBDA" "${SCHEDULE[@]}" <<'PY'
import json, sys
summary, lam, schedule = json.load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3:]
performance = {b["block"]: b["metric"] for b in summary["blocks"]}
rounds = summary["rounds"]
# The lineage's best before each round (the demo reverts nothing: the best of the blocks so far).
best, best_before = performance.get(0), {}
for r in rounds:
    best_before[r["round"]] = best
    if r["verdict"] == "appended" and None not in (best, r["metric"]):
        best = max(best, r["metric"])
def kept(r):
    return None not in (best_before[r["round"]], r["metric"]) and r["metric"] >= lam * best_before[r["round"]]
def fine(r, entry):
    attack = entry.split(":", 1)[1] if ":" in entry else None
    if r["verdict"] == "appended":
        return (attack is None or attack.startswith("scale:")) and kept(r)
    if attack is None:
        return r["verdict"] == "rejected" and r["reason"] == "Degrades" and r["metric"] is not None and not kept(r)
    return r["verdict"] == "rejected" and r["reason"] in ("Degrades", "Refused")
bad = [] if len(rounds) == len(schedule) else [f"{len(rounds)} rounds for a schedule of {len(schedule)}"]
for r, entry in zip(rounds, schedule):
    if not fine(r, entry):
        bad.append(f"round {r['round']} by {r['proposer_name']} ({entry}): {r['verdict']} {r['reason'] or ''}")
    elif r["malicious"] and r["verdict"] == "appended":
        print(f"round {r['round']} by {r['proposer_name']} ({entry}) appended: {r['metric']:.4f} on G keeps "
              f"{lam} of the best before it, {best_before[r['round']]:.4f}, as the rule allows")
    elif not r["malicious"] and r["verdict"] != "appended":
        print(f"round {r['round']} by {r['proposer_name']} (honest) rejected: {r['metric']:.4f} on G is below "
              f"{lam} of the best before it, {best_before[r['round']]:.4f} (DP-SGD's noise), as the rule requires")
for line in bad:
    print(line)
print(f"{summary['metric']} on G: genesis {summary['genesis_metric']:.4f}, final model {summary['final_g_metric']:.4f}; "
      f"{len(rounds)} rounds in {summary['wall_seconds']} s")
if bad or summary["final_g_metric"] <= summary["genesis_metric"]:
    sys.exit("the demo did not go as the coalition promises")
PY
log "done: $OUT/summary.json, $OUT/metric.svg, logs in $OUT/logs"

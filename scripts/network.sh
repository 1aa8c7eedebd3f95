#!/usr/bin/env bash
# A TCLearn network for a person: four validators (alice, bob, charlie, dave) of tclearn-node on
# the `local` chain (BABE + GRANDPA), spawned by zombienet's native provider from
# zombienet/local.toml; the coalition founded by Alice with the four as members; the members' API
# and its vault; and one oracle per validator, each with its own key and local test set and
# connected to its own validator's node.
#
#   scripts/network.sh [--dir DIR]
#
# Everything it writes (zombienet's files, the nodes' logs, keys, data, the API's vault) goes to
# DIR (default: a temporary folder, removed at the end). It runs until Ctrl-C, then stops every
# process it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/coalition.sh"

WORK=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) WORK="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (scripts/network.sh [--dir DIR])" >&2; exit 2 ;;
    esac
done

build_programs
ZOMBIENET="$REPO_ROOT/zombienet/node_modules/.bin/zombienet"

KEEP=1
if [ -z "$WORK" ]; then WORK="$(mktemp -d)"; KEEP=0; fi
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    # zombienet's native provider starts the nodes as its own children.
    pkill -f "$WORK/zombie" 2>/dev/null || true
    [ "$KEEP" = 1 ] || rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'echo; log "stopping"; exit 130' INT TERM


# ---- The chain: zombienet finds tclearn-node on PATH.
mkdir -p "$WORK/bin"
ln -sf "$TCLEARN_NODE" "$WORK/bin/tclearn-node"
log "spawning four validators with zombienet (native provider)"
PATH="$WORK/bin:$PATH" "$ZOMBIENET" -p native -l text -d "$WORK/zombie" -f spawn "$REPO_ROOT/zombienet/local.toml" \
    >"$WORK/zombienet.log" 2>&1 &
PIDS+=($!)
VALIDATORS=(alice bob charlie dave)
declare -A RPC=([alice]=9944 [bob]=9945 [charlie]=9946 [dave]=9947)
for name in "${VALIDATORS[@]}"; do wait_port "${RPC[$name]}" "$name's node"; done
export TCLEARN_RPC="ws://127.0.0.1:${RPC[alice]}"

# ---- Members: the four validators' dev accounts; their data, the breast-cancer shards of the demo.
shard_breast_cancer "$WORK"
tclearn_as() { local who=$1; shift; TCLEARN_KEY_FILE="$WORK/$who.key" "$TCLEARN" "$@"; }
declare -A ADDRESS
names=()
for h in "${!VALIDATORS[@]}"; do
    name=${VALIDATORS[$h]}
    Name="${name^}"
    echo "//$Name" | tclearn_as "$name" key import >/dev/null
    ADDRESS[$name]=$(tclearn_as "$name" key show --json | sed -E 's/.*"address":"(0x[0-9a-f]+)".*/\1/')
    tclearn_as "$name" split --data "$WORK/hospital-$h.csv" --local-share 0.2 --seed 1 \
        --train "$WORK/$name-train.csv" --local "$WORK/$name-local.csv" >/dev/null
    names+=("${ADDRESS[$name]}=$Name")
done
TCLEARN_NAMES="$(IFS=,; echo "${names[*]}")"
export TCLEARN_NAMES

log "founding the coalition"
tclearn_as alice model init --standardisation "$REPO_ROOT/datasets/breast-cancer/standardisation.json" --hidden 16 --seed 7 --out "$WORK/genesis.onnx" >/dev/null
founded=$(tclearn_as alice found --json --model "$WORK/genesis.onnx" --test-set "$WORK/g.csv" \
    --founders "${ADDRESS[bob]},${ADDRESS[charlie]},${ADDRESS[dave]}" --validators-per-round 3 \
    --phase-blocks 20 --min-batch-size 10 --learning-rate 0.3 --privacy-budget 50,1e-4 --declaration "$WORK/genesis.json" \
    --standardisation "$REPO_ROOT/datasets/breast-cancer/standardisation.json" --seed 7)
COALITION=$(echo "$founded" | sed -E 's/.*"coalition":"(0x[0-9a-f]+)".*/\1/')
# Every member's tclearn from here on pins it: an API that serves another coalition is refused.
export TCLEARN_COALITION="$COALITION"

log "starting the members' API"
start_api "$WORK/api.log"
tclearn_as alice upload "$WORK/genesis.onnx" >/dev/null

log "starting one oracle per validator, each on its own node"
for name in "${VALIDATORS[@]}"; do
    TCLEARN_RPC="ws://127.0.0.1:${RPC[$name]}" start_oracle "$name" "$WORK/oracle-$name.log"
done

cat <<EOF

The network is up ($WORK):
  nodes (RPC)       alice ws://127.0.0.1:9944, bob :9945, charlie :9946, dave :9947
  coalition         $COALITION
  members' API      $TCLEARN_API_URL (dashboard at /)
  logs              $WORK/zombie/*.log, $WORK/oracle-*.log, $WORK/api.log

A member proposes from another shell, for example Bob:
  export TCLEARN_RPC=$TCLEARN_RPC TCLEARN_API_URL=$TCLEARN_API_URL TCLEARN_ARTIFACTS=$TCLEARN_ARTIFACTS TCLEARN_NAMES='$TCLEARN_NAMES'
  export TCLEARN_KEY_FILE=$WORK/bob.key
  $TCLEARN train --data $WORK/bob-train.csv --out $WORK/bob-candidate --max-samples 30 --noise-multiplier 1.0
  $TCLEARN propose --candidate $WORK/bob-candidate

Ctrl-C stops everything.
EOF
wait "${PIDS[0]}"

# Shared by scripts/demo.sh and scripts/network.sh; source it after env.sh, don't run it.
# The functions that start processes add their pids to the caller's PIDS array.

# A free TCP port on 127.0.0.1, other than the ports given as arguments, for a process of ours to
# bind. It comes from outside the kernel's ephemeral range, where every outgoing connection and
# every bind to port 0 take theirs, so that no other socket can take it before our process binds it
# (as tests/src/lib.rs's free_port does).
free_port() {
    python3 - "$@" <<'EOF'
import random, socket, sys
try:
    low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except (OSError, ValueError):
    low, high = 32768, 60999
ports = max(range(1024, low), range(max(high + 1, 1024), 65536), key=len)
taken = {int(port) for port in sys.argv[1:]}
for port in random.sample(ports, len(ports)):
    if port in taken:
        continue
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    sys.exit(0)
sys.exit(f"no free loopback port in {ports.start}-{ports.stop - 1}")
EOF
}

# Wait until `what` listens on `port` (120 s), failing early if process `pid` (optional) exits.
wait_port() {
    local port=$1 what=$2 pid=${3:-}
    for _ in $(seq 1 1200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then echo "$what exited; see its log" >&2; exit 1; fi
        sleep 0.1
    done
    echo "$what did not listen on port $port within 120 s" >&2
    exit 1
}

# The breast-cancer data in `dir`: G (`g.csv`, as the oracles read a test set) is every 5th row;
# hospital h (`hospital-<h>.csv`, `identifier,features,label` after a header) holds the rows r
# with r mod 5 = h + 1, each identified by its row number, as a hospital's record number would be.
shard_breast_cancer() {
    awk -F, -v work="$1" '
        NR == 1 { next }
        {
            r = NR - 2
            if (r % 5 == 0) { print > (work "/g.csv"); next }
            h = r % 5 - 1
            file = work "/hospital-" h ".csv"
            if (!(file in started)) {
                header = "id"; for (j = 0; j < NF - 1; j++) header = header ",x" j
                print header ",label" > file; started[file] = 1
            }
            print "wdbc-" r "," $0 > file
        }' "$REPO_ROOT/datasets/breast-cancer/breast_cancer.csv"
}

# Set up what is missing and build the off-chain programs (the root workspace, with the features
# the tests build: the malicious member's training is the demo's); TCLEARN and ORACLE then name the
# member's command line and the oracle.
build_programs() {
    "$REPO_ROOT/scripts/setup.sh"
    log "building the off-chain programs (oracle, tclearn-api, tclearn)"
    (cd "$REPO_ROOT" && cargo build --release --locked --quiet --workspace --features "$TCLEARN_TEST_FEATURES")
    TCLEARN="$TCLEARN_BIN"
    ORACLE="$TCLEARN_ORACLE_BIN"
}

# Start the members' API for $COALITION on $TCLEARN_RPC (genesis declaration and vault in
# $WORK), logging to file $1, and wait until it listens; exports TCLEARN_API_URL, and its pid
# joins PIDS.
start_api() {
    local port
    port=$(free_port)
    export TCLEARN_API_URL="http://127.0.0.1:$port"
    TCLEARN_API_LISTEN="127.0.0.1:$port" TCLEARN_COALITION="$COALITION" \
        TCLEARN_COALITION_METADATA="$TCLEARN_ARTIFACTS/coalition.json" \
        TCLEARN_ANCHORS_METADATA="$TCLEARN_ARTIFACTS/audit_anchors.json" \
        TCLEARN_API_SURI="//Alice" TCLEARN_GENESIS="$WORK/genesis.json" TCLEARN_API_DATA_DIR="$WORK/api" \
        "$TCLEARN_API_BIN" serve >"$1" 2>&1 &
    PIDS+=($!)
    wait_port "$port" "the members' API" "${PIDS[-1]}"
}

# Start member $1's oracle on $TCLEARN_RPC (its key $WORK/$1.key, its local test set
# $WORK/$1-local.csv, its journal in $WORK), logging to file $2; its pid joins PIDS.
start_oracle() {
    TCLEARN_COALITION="$COALITION" TCLEARN_COALITION_METADATA="$TCLEARN_ARTIFACTS/coalition.json" \
        TCLEARN_GENESIS="$WORK/genesis.json" TCLEARN_GLOBAL_TEST_SET="$WORK/g.csv" \
        TCLEARN_LOCAL_TEST_SET="$WORK/$1-local.csv" TCLEARN_VAULT_API="$TCLEARN_API_URL" \
        TCLEARN_KEY_FILE="$WORK/$1.key" TCLEARN_JOURNAL="$WORK/$1-oracle.redb" \
        "$ORACLE" run >"$2" 2>&1 &
    PIDS+=($!)
}

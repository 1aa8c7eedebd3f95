# Shared by scripts/demo.sh and scripts/network.sh; source it after env.sh, don't run it.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

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

#!/usr/bin/env bash
# Run the four-validator `local` chain on this machine: Alice, Bob, Charlie and Dave, RPC on
# ports 9944..9947, p2p on 30333..30336, data and logs under $TCLEARN_CACHE/local-testnet.
#
#   scripts/local-testnet.sh start   start the four nodes in the background
#   scripts/local-testnet.sh check   wait until every node's finalized height is >= 3 and grows
#   scripts/local-testnet.sh stop    stop them
#   scripts/local-testnet.sh         start, check, stop
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
dir="$TCLEARN_CACHE/local-testnet"
names=(alice bob charlie dave)

rpc() { # port method [params]
    curl -s -H 'Content-Type: application/json' \
        -d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":[${3:-}]}" "http://127.0.0.1:$1"
}
finalized_height() { # port
    local hash header
    hash="$(rpc "$1" chain_getFinalizedHead | sed -n 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/p')"
    [ -n "$hash" ] || { echo -1; return; }
    header="$(rpc "$1" chain_getHeader "\"$hash\"")"
    printf '%d\n' "$(echo "$header" | sed -n 's/.*"number":"\(0x[0-9a-f]*\)".*/\1/p')"
}

start() {
    test -x "$TCLEARN_NODE" || { echo "no $TCLEARN_NODE: run scripts/build-node.sh" >&2; exit 1; }
    mkdir -p "$dir"
    local bootnode=""
    for i in "${!names[@]}"; do
        local name="${names[$i]}" key
        key="$(printf '%064x' $((i + 1)))"
        rm -rf "${dir:?}/$name"
        "$TCLEARN_NODE" --chain local --"$name" --validator --base-path "$dir/$name" \
            --node-key "$key" --rpc-port $((9944 + i)) \
            --listen-addr "/ip4/127.0.0.1/tcp/$((30333 + i))" --no-mdns --no-prometheus \
            --no-telemetry ${bootnode:+--bootnodes "$bootnode"} >"$dir/$name.log" 2>&1 &
        echo $! >"$dir/$name.pid"
        if [ -z "$bootnode" ]; then
            for _ in $(seq 1 60); do
                peer="$(sed -n 's/.*Local node identity is: \([0-9A-Za-z]*\).*/\1/p' "$dir/$name.log" | head -n 1)"
                [ -n "$peer" ] && break
                kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || break
                sleep 0.5
            done
            [ -n "$peer" ] || { echo "alice did not start; see $dir/alice.log" >&2; exit 1; }
            bootnode="/ip4/127.0.0.1/tcp/30333/p2p/$peer"
        fi
        log "$name: rpc ws://127.0.0.1:$((9944 + i)), log $dir/$name.log"
    done
}

check() {
    local first=() deadline=$((SECONDS + 240))
    log "waiting for finalized height >= 3 on all four nodes"
    while :; do
        local lowest=999999999
        for i in "${!names[@]}"; do
            h="$(finalized_height $((9944 + i)))"
            ((h < lowest)) && lowest=$h
        done
        ((lowest >= 3)) && break
        ((SECONDS < deadline)) || { echo "finality did not reach 3 (lowest $lowest)" >&2; exit 1; }
        sleep 2
    done
    for i in "${!names[@]}"; do first[$i]="$(finalized_height $((9944 + i)))"; done
    log "finalized: ${first[*]}; waiting for it to grow"
    while :; do
        local grown=1 now=()
        for i in "${!names[@]}"; do
            now[$i]="$(finalized_height $((9944 + i)))"
            ((now[i] > first[i])) || grown=0
        done
        ((grown)) && { log "finalized: ${now[*]}: growing on all four"; return 0; }
        ((SECONDS < deadline)) || { echo "finality stalled at ${now[*]}" >&2; exit 1; }
        sleep 2
    done
}

stop() {
    local pids=()
    for name in "${names[@]}"; do
        [ -f "$dir/$name.pid" ] && pids+=("$(cat "$dir/$name.pid")")
        rm -f "$dir/$name.pid"
    done
    ((${#pids[@]})) || return 0
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "${pids[@]}" 2>/dev/null || return 0
        sleep 0.25
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
}

case "${1:-all}" in
    start) start ;;
    check) check ;;
    stop) stop ;;
    all) trap stop EXIT; start; check ;;
    *) echo "usage: $0 [start|check|stop]" >&2; exit 2 ;;
esac

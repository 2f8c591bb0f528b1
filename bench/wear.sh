#!/usr/bin/env bash
# SD-card wear of the light validator: bytes the node writes per hour with a [chain].
#
#   bench/wear.sh [MINUTES]          (default 5)
#
# Runs the release node (SUTANTRA_BIN, else target/release/sutantra) with the test pattern, a
# [chain] and attestations, against the fake CometBFT server of the e2e tests
# (tests/e2e/fake_cometbft.py, from the venv at .venv), which this script grows by one block every
# WEAR_BLOCK_S seconds (default 5, a CometBFT chain's pace) with WEAR_VALIDATORS validators per set
# (default 150: a light block of roughly 100 KB). After the node has bootstrapped (the warm-up is
# not measured) it reads /proc/<pid>/io before and after MINUTES minutes and prints, extrapolated
# to one hour:
#   write_bytes  bytes the node caused to be sent to the block device (the SD-card wear);
#   wchar        bytes the node passed to write(2) and friends, any file or socket (RPC requests
#                included; logs go to a pipe, so they count here, not in write_bytes);
# and the store file's size (node.redb) at the end, while running and after a clean stop.
#
# The data dir is WEAR_DIR (default target/wear/data, on the repository's disk): write_bytes
# counts 0 on tmpfs and on some overlays, so keep it on a real disk. Needs curl and python3.
set -euo pipefail

MINUTES=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SUTANTRA_BIN:-$ROOT/target/release/sutantra}
PY=${PYTHON:-$ROOT/.venv/bin/python3}
WORK=${WEAR_DIR:-$ROOT/target/wear}
VALIDATORS=${WEAR_VALIDATORS:-150}
BLOCK_S=${WEAR_BLOCK_S:-5}
VECTORS=${COMETBFT_VECTORS:-$ROOT/tests/data/cometbft}

[[ "$MINUTES" =~ ^[0-9]+$ && "$MINUTES" -ge 1 ]] || {
    echo "usage: $0 [MINUTES]  (a whole number >= 1)" >&2
    exit 2
}
[ -x "$BIN" ] || {
    echo "$BIN: not built; run \`cargo build --release -p sutantra\` or set SUTANTRA_BIN" >&2
    exit 2
}
[ -x "$PY" ] || {
    echo "$PY: missing; run scripts/setup.sh (the venv with aiohttp) or set PYTHON" >&2
    exit 2
}

rm -rf "$WORK"
mkdir -p "$WORK/data"
RPC_PID=""
NODE_PID=""
cleanup() {
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null || true
    [ -n "$RPC_PID" ] && kill "$RPC_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

# --- the chain ---------------------------------------------------------------------------------
GENESIS=$(($(date +%s) - 7200))
"$PY" "$ROOT/tests/e2e/fake_cometbft.py" --vectors "$VECTORS" --generate 3 \
    --validators "$VALIDATORS" --genesis-time "$GENESIS" >"$WORK/rpc.out" 2>"$WORK/rpc.err" &
RPC_PID=$!
for _ in $(seq 1 600); do
    grep -q '^control on' "$WORK/rpc.out" 2>/dev/null && break
    kill -0 "$RPC_PID" 2>/dev/null || {
        echo "fake_cometbft.py stopped:" >&2
        cat "$WORK/rpc.err" >&2
        exit 1
    }
    sleep 0.1
done
RPC_PORT=$(sed -n 's/^listening on //p' "$WORK/rpc.out")
CTL="http://127.0.0.1:$(sed -n 's/^control on //p' "$WORK/rpc.out")/_control"
INFO=$(curl -fsS "$CTL/info")
CHAIN_ID=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["chain_id"])' <<<"$INFO")
HASH1=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["hashes"]["1"])' <<<"$INFO")

# --- the node ----------------------------------------------------------------------------------
HTTP_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/sutantra.toml" <<EOF
[chain]
chain_id = "$CHAIN_ID"
rpc = ["http://127.0.0.1:$RPC_PORT"]
trust_height = 1
trust_hash = "$HASH1"
poll_interval_ms = 5000

[attest]
segment_ms = 10000
EOF
# Logs go through a pipe to tail (kept in memory, written at the end): they are not store wear.
"$BIN" run --config "$WORK/sutantra.toml" --data-dir "$WORK/data" \
    --listen "127.0.0.1:$HTTP_PORT" --source test-pattern --width 320 --height 240 --fps 15 \
    > >(tail -n 300 >"$WORK/node.log") 2>&1 &
NODE_PID=$!

metric() {
    curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null |
        awk -v m="$1" '$1 == m { print $2 }'
}
io() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$NODE_PID/io"; }

# Grow the chain at a steady pace in the background.
(
    while kill -0 "$NODE_PID" 2>/dev/null; do
        sleep "$BLOCK_S"
        curl -fsS "$CTL/grow?n=1" >/dev/null 2>&1 || true
    done
) &

# Warm-up: bootstrapped and attesting.
for _ in $(seq 1 120); do
    a=$(metric sutantra_attestations_total || true)
    [ -n "${a:-}" ] && [ "${a%.*}" -ge 1 ] && break
    kill -0 "$NODE_PID" 2>/dev/null || {
        echo "the node stopped:" >&2
        cat "$WORK/node.log" >&2
        exit 1
    }
    sleep 1
done
H0=$(metric sutantra_chain_trusted_height)
A0=$(metric sutantra_attestations_total)
W0=$(io write_bytes)
C0=$(io wchar)
T0=$(date +%s.%N)
echo "measuring $MINUTES min: $(basename "$BIN") $("$BIN" --version 2>/dev/null | head -n1), $VALIDATORS validators, a block every ${BLOCK_S}s, data in $WORK/data"
sleep $((MINUTES * 60))
W1=$(io write_bytes)
C1=$(io wchar)
T1=$(date +%s.%N)
H1=$(metric sutantra_chain_trusted_height)
A1=$(metric sutantra_attestations_total)
STORE_RUNNING=$(stat -c %s "$WORK/data/node.redb")
kill -TERM "$NODE_PID"
for _ in $(seq 1 150); do
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.1
done
NODE_PID=""
STORE_STOPPED=$(stat -c %s "$WORK/data/node.redb")

"$PY" - "$T0" "$T1" "$W0" "$W1" "$C0" "$C1" "$H0" "$H1" "$A0" "$A1" "$STORE_RUNNING" "$STORE_STOPPED" <<'EOF'
import sys
t0, t1, w0, w1, c0, c1, h0, h1, a0, a1, s_run, s_stop = map(float, sys.argv[1:])
secs = t1 - t0
per_h = 3600.0 / secs
mib = 1024 * 1024
print(f"measured {secs:.0f} s; per hour EXTRAPOLATED from it (x{per_h:.1f}):")
print(f"  write_bytes  {(w1 - w0) * per_h / mib:10.2f} MiB/h   ({int(w1 - w0)} bytes measured)")
print(f"  wchar        {(c1 - c0) * per_h / mib:10.2f} MiB/h   ({int(c1 - c0)} bytes measured)")
print(f"  heights verified {int(h1 - h0)} ({int(h0)} -> {int(h1)}), attestations {int(a1 - a0)}")
print(f"  store node.redb  {int(s_run)} bytes running, {int(s_stop)} bytes after a clean stop")
EOF

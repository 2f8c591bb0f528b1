#!/usr/bin/env bash
# The long soak: the release node for an hour (default) under a steady viewer, churning viewers
# (a third vanish without DELETE), WHIP publishing and a growing chain; fails on growth of RSS,
# descriptors or threads, or a steady viewer below 29.5 fps. Samples every minute.
#
#   scripts/soak.sh                 60 minutes, results in bench/results/soak-<UTC date>/
#   scripts/soak.sh 90              90 minutes
#   SOAK_ARGS="--width 320 --height 240" scripts/soak.sh 30
#
# Run it alone on the machine (the steady viewer's rate is judged). CI runs the 3-minute version
# (tests/tests/e2e/soak.rs). Needs scripts/setup.sh and a release build (built here if missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MINUTES=${1:-60}
[[ $MINUTES =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "soak: MINUTES must be a number, not '$MINUTES'" >&2; exit 2; }
BIN=${SUTANTRA_BIN:-${CARGO_TARGET_DIR:-target}/release/sutantra}
if [[ ! -x $BIN ]]; then
  cargo build --release -p sutantra
fi
[[ -x .venv/bin/python3 ]] || { echo "soak: no .venv: run scripts/setup.sh (as root) first" >&2; exit 2; }
OUT=bench/results/soak-$(date -u +%Y%m%dT%H%MZ)
echo "soak: $MINUTES minutes, binary $BIN, results in $OUT"
# shellcheck disable=SC2086 # SOAK_ARGS is a list of extra flags
exec .venv/bin/python3 tests/e2e/soak.py --minutes "$MINUTES" --bin "$BIN" --out "$OUT" ${SOAK_ARGS:-}

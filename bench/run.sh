#!/usr/bin/env bash
# The benchmark suite of issue 7: whole-process figures of the node against its peers (ffmpeg's
# libvpx, an aiortc sender) measured in the same run, plus the in-process cargo benches.
#
#   bench/run.sh                 full run (about 14 minutes on 2 cores, plus the browser phase,
#                                452 s, and churn + whip + still, 460 s): prints the table, keeps raw
#                                samples in bench/results/<date>/, rewrites the generated part of
#                                BENCHMARKS.md
#   bench/run.sh --quick         short windows (about 4-5 minutes), results in target/bench/, BENCHMARKS.md
#                                untouched: to check the suite works, not for figures
#   bench/run.sh --only encode,latency,browser,pacing,capacity,churn,whip,still,verify,media,speed,size
#                                some phases
#   bench/run.sh --no-build      use target/release/sutantra as it is
#
# Durations can be overridden with BENCH_<NAME>=value (names in bench/suite.py FULL, e.g.
# BENCH_CPU_S=60 BENCH_SOAK_S=600). Run it alone on the machine: other load skews the figures
# (the ratios to the peers, measured in the same run, less so). Needs only loopback.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
BUILD=1
ARGS=()
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    -h | --help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) ARGS+=("$a") ;;
  esac
done

die() {
  printf 'bench: error: %s\n' "$*" >&2
  exit 1
}

# Tools: fail loudly, scripts/setup.sh installs them all.
for t in ffmpeg stress-ng taskset pkg-config cargo; do
  command -v "$t" >/dev/null || die "'$t' is missing: run scripts/setup.sh (as root) first"
done
PY=$ROOT/.venv/bin/python3
"$PY" -c 'import aiortc, aiohttp, numpy, av' 2>/dev/null ||
  die ".venv with aiortc/aiohttp/numpy is missing: run scripts/setup.sh first"
[[ $(nproc) -ge 2 ]] || die "the capacity and pacing figures need 2 CPUs (node and load on separate cores)"

if ((BUILD)); then
  printf 'bench: cargo build --release -p sutantra\n' >&2
  cargo build --release -q -p sutantra || die "release build failed"
fi
BIN=$ROOT/target/release/sutantra
[[ -x $BIN ]] || die "$BIN is missing (drop --no-build)"

# The suite kills its own children on exit; this trap covers the suite itself.
child=
trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; wait 2>/dev/null' INT TERM
"$PY" "$ROOT/bench/suite.py" --binary "$BIN" --command "bench/run.sh $*" "${ARGS[@]}" &
child=$!
wait "$child"

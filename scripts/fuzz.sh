#!/usr/bin/env bash
# Fuzzes the node's parsers (cargo-fuzz / libFuzzer, nightly; the targets are in fuzz/).
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [TARGET...]  each target (default: all) N s (default 60)
#   scripts/fuzz.sh --smoke                                CI: whep_offer, control_request 60 s, the rest 5 s
#
# Builds every target once (`cargo +nightly fuzz build`), then runs each on a copy of its corpus in
# a scratch directory (the committed fuzz/corpus/ does not grow), with J libFuzzer processes
# (-fork) and an RSS limit, and prints target, seconds, executions, exec/s, corpus size and the
# crashes found. A crash input is written to fuzz/artifacts/<target>/ (commit it with the fix:
# `cargo test -p sutantra-fuzz` replays it); the run's log is in <target dir>/fuzz-logs/.
# Exit 1 if any target crashed. Without a nightly toolchain or cargo-fuzz it says why and exits 0.
# Environment: CARGO_TARGET_DIR (default target/fuzz, apart from the stable builds), RSS_LIMIT_MB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

say() { printf 'fuzz: %s\n' "$*"; }
die() {
  printf 'fuzz: error: %s\n' "$*" >&2
  exit 2
}

SECS=60
JOBS=1
SMOKE=0
TARGETS=()
while (($#)); do
  case "$1" in
    --seconds)
      [[ ${2:-} =~ ^[0-9]+$ ]] && (($2 > 0)) || die "--seconds takes a positive number"
      SECS=$2
      shift
      ;;
    --jobs)
      [[ ${2:-} =~ ^[0-9]+$ ]] && (($2 > 0)) || die "--jobs takes a positive number"
      JOBS=$2
      shift
      ;;
    --smoke) SMOKE=1 ;;
    -h | --help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) TARGETS+=("$1") ;;
  esac
  shift
done

command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rustup >/dev/null || ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  say "skipped: no nightly Rust toolchain (libFuzzer needs one: rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  say "skipped: cargo-fuzz is not installed (scripts/setup.sh installs it when nightly is present)"
  exit 0
fi

mapfile -t ALL < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -vx 'sutantra-fuzz')
((${#ALL[@]})) || die "no [[bin]] targets in fuzz/Cargo.toml"
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  printf '%s\n' "${ALL[@]}" | grep -qx "$t" || die "no target '$t' (targets: ${ALL[*]})"
done

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/fuzz}
# The smoke (CI) builds cheaper: no address sanitizer (a panic is what it looks for; the crates
# with unsafe code are few and C libraries are not instrumented anyway) and opt-level 1, in a
# directory of its own so the two kinds of build do not rebuild each other.
SANITIZER=address
OPT=3
if ((SMOKE)); then
  SANITIZER=none
  OPT=1
  TARGET_DIR=$TARGET_DIR/smoke
fi
TRIPLE=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN_DIR=$TARGET_DIR/$TRIPLE/release
LOGS=$TARGET_DIR/fuzz-logs
mkdir -p "$LOGS"

say "building ${#ALL[@]} targets (nightly, sanitizer: $SANITIZER, opt-level $OPT) in $TARGET_DIR"
build_start=$(date +%s)
# cargo fuzz builds with the release profile, which ships fat LTO, opt-level "z" and stripped
# symbols: fourteen fat-LTO links take many minutes, "z" halves the executions per second and a
# stripped binary gives crash reports without function names. Fuzz builds get their own settings.
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=$OPT CARGO_PROFILE_RELEASE_STRIP=none \
  cargo +nightly fuzz build --fuzz-dir fuzz --features libfuzzer --target-dir "$TARGET_DIR" \
  --codegen-units 16 --sanitizer "$SANITIZER"
say "built in $(($(date +%s) - build_start)) s"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/sutantra-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH/tmp"

seconds_for() {
  if ((SMOKE)); then
    case "$1" in
      whep_offer | control_request) echo 60 ;;
      *) echo 5 ;;
    esac
  else
    echo "$SECS"
  fi
}

rows=()
crashed=0
for t in "${TARGETS[@]}"; do
  secs=$(seconds_for "$t")
  corpus=$SCRATCH/corpus/$t
  artifacts=$ROOT/fuzz/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  cp -R "fuzz/corpus/$t/." "$corpus/" 2>/dev/null || true
  before=$(find "$artifacts" -type f ! -name '.*' | wc -l)
  log=$LOGS/$t.log
  say "$t: ${secs} s"
  args=(-max_total_time="$secs" -rss_limit_mb="${RSS_LIMIT_MB:-2048}" -timeout=25
    -artifact_prefix="$artifacts/" -print_final_stats=1)
  ((JOBS > 1)) && args+=(-fork="$JOBS")
  start=$(date +%s)
  status=0
  # The harnesses' scratch files go under the run's own TMPDIR.
  TMPDIR=$SCRATCH/tmp LSAN_OPTIONS="suppressions=$ROOT/fuzz/lsan.supp:${LSAN_OPTIONS:-}" \
    "$BIN_DIR/$t" "${args[@]}" "$corpus" "$artifacts" >"$log" 2>&1 || status=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  [[ -n $execs ]] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n1)
  [[ -n $execs ]] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n1)
  execs=${execs:-0}
  per_s=$((execs / (took > 0 ? took : 1)))
  size=$(find "$corpus" -type f | wc -l)
  found=$(($(find "$artifacts" -type f ! -name '.*' | wc -l) - before))
  if ((found > 0 || status != 0)); then
    crashed=1
    ((found > 0)) || found="exit $status"
    say "$t crashed ($log):"
    grep -m1 -A1 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)' "$log" | sed 's/^/    /' || true
    grep -E 'Test unit written|^SUMMARY' "$log" | sed 's/^/    /' || true
  fi
  rows+=("$(printf '%-16s %8s %12s %8s %8s %8s' "$t" "$took" "$execs" "$per_s" "$size" "$found")")
done

printf '\n%-16s %8s %12s %8s %8s %8s\n' target seconds executions exec/s corpus crashes
printf '%s\n' "${rows[@]}"
if ((crashed)); then
  say "crash inputs are in fuzz/artifacts/<target>/: fix the cause, keep the input (it is replayed by cargo test)"
  exit 1
fi

#!/usr/bin/env bash
# THE test command: installs what is missing, then lint, build and every test, with a summary.
#   sudo ./scripts/test.sh            (or as root: ./scripts/test.sh)
#   ./scripts/test.sh FILTER          only tests whose name contains FILTER (e.g. whep::)
# Exit status is non-zero if any step failed. The end-to-end tests run the release binary
# (SUTANTRA_BIN, default target/release/sutantra) against aiortc and headless Chromium.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export SUTANTRA_BIN=${SUTANTRA_BIN:-$TARGET_DIR/release/sutantra}
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
# One build of everything, so no incremental state (it doubled the debug and dev-release dirs).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# Below this much free disk (GiB), the build dirs a later step no longer needs are removed
# after their step (a fresh CI machine ran out of disk in cargo-test once). A second run then
# rebuilds them: about 5 minutes per board target.
MIN_FREE_GIB=${SUTANTRA_MIN_FREE_GIB:-25}

free_gib() { df -Pk "$ROOT" | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }'; }
make_room() { # make_room DIR...: remove the DIRs if free disk is below MIN_FREE_GIB
  local free
  free=$(free_gib)
  if awk -v f="$free" -v m="$MIN_FREE_GIB" 'BEGIN { exit !(f < m) }'; then
    echo "test.sh: ${free} GiB free (< ${MIN_FREE_GIB}): removing $*"
    rm -rf "$@"
    echo "test.sh: $(free_gib) GiB free"
  fi
}

results=()
failed=()
step() { # step NAME COMMAND...: run, time and record one step; keep going on failure
  local name=$1 start=$SECONDS rc=0
  shift
  printf '\n=== %s: %s\n' "$name" "$*"
  "$@" || rc=$?
  local took=$((SECONDS - start))
  if ((rc == 0)); then
    results+=("ok    $name (${took}s, $(free_gib) GiB free)")
  else
    results+=("FAIL  $name (${took}s, exit $rc, $(free_gib) GiB free)")
    failed+=("$name")
  fi
  return 0
}

step setup ./scripts/setup.sh
if ((${#failed[@]})); then
  echo "test.sh: setup failed; nothing else can run" >&2
  exit 1
fi

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step build-release cargo build --release -p sutantra
step harness-self-check bash -c '
  set -e
  bash -n scripts/setup.sh scripts/test.sh .ci/run
  node --check tests/e2e/browser_view.mjs
  .venv/bin/python3 -m unittest discover -s tests/e2e -p "test_*.py"'
# The boards: the aarch64 build and its unit tests under qemu-user, armv7 and armv6 builds
# (container-free cross path, cross/README.md). Skipped when a test-name filter is given.
if (($# == 0)); then
  a64=$TARGET_DIR/aarch64-unknown-linux-gnu
  step cross-aarch64 ./cross/build.sh aarch64-unknown-linux-gnu --test
  # The emulated aarch64 board (cargo-test) runs this build; kept apart from its build dir.
  if [[ -x $a64/release/sutantra && -z ${SUTANTRA_AARCH64_BIN:-} ]]; then
    mkdir -p "$TARGET_DIR/e2e"
    cp "$a64/release/sutantra" "$TARGET_DIR/e2e/sutantra-aarch64"
    export SUTANTRA_AARCH64_BIN=$TARGET_DIR/e2e/sutantra-aarch64
  fi
  make_room "$a64"
  # armv7 and armv6 without fat LTO: they check that the node compiles and links for the
  # 32-bit boards; the aarch64 build above is the full release build (packages: package-deb.sh).
  step cross-armv7 ./cross/build.sh armv7-unknown-linux-gnueabihf --profile dev-release
  make_room "$TARGET_DIR/armv7-unknown-linux-gnueabihf"
  step cross-armv6 ./cross/build.sh arm-unknown-linux-gnueabihf --profile dev-release
  make_room "$TARGET_DIR/arm-unknown-linux-gnueabihf"
fi
# Unit, integration and end-to-end tests; --show-output prints the measured figures (fps, latency).
# The output is also kept in a log: with --show-output a failure's message sits in the middle of
# a long report, so the summary below repeats every failure's panic message at the end.
TEST_LOG=$TARGET_DIR/test-output.log
mkdir -p "$(dirname "$TEST_LOG")"
step cargo-test bash -c 'set -o pipefail; log=$1; shift
  cargo test --workspace --no-fail-fast -- --show-output "$@" 2>&1 | tee "$log"' _ "$TEST_LOG" "$@"
# The fuzz targets under libFuzzer for a few seconds each (60 s for the WHEP offer and the
# control request), where a nightly toolchain is present (scripts/fuzz.sh says why it skips
# otherwise). Every corpus also replays on stable in cargo-test (`sutantra-fuzz`).
if (($# == 0)); then
  make_room "$TARGET_DIR/debug" "$TARGET_DIR/qemu-cache"
  step fuzz-smoke ./scripts/fuzz.sh --smoke
fi

printf '\n=== summary (SUTANTRA_BIN=%s)\n' "$SUTANTRA_BIN"
printf '  %s\n' "${results[@]}"
if [[ " ${failed[*]} " == *" cargo-test "* && -f $TEST_LOG ]]; then
  printf '\n=== why the failing tests failed (from %s)\n' "$TEST_LOG"
  # Only the failures' sections (between a test binary's two "failures:" lines): passing tests
  # that panic on purpose print "panicked at" too.
  awk '/^failures:$/ { inside = !inside; next } inside' "$TEST_LOG" |
    grep -a -A14 -E "^---- .* stdout ----$|panicked at" |
    grep -a -v -E "^(note: run with|stack backtrace:)" | awk '/^---- .* stdout ----$/ { hdr = $0; next }
      /panicked at/ { if (hdr != "") print hdr; hdr = ""; n = 14 } n > 0 { print; n-- }' | tail -n 150 || true
fi
if ((${#failed[@]})); then
  echo "test.sh: FAILED steps: ${failed[*]}"
  exit 1
fi
echo "test.sh: all ${#results[@]} steps ok"

#!/usr/bin/env bash
# Container-free cross build (what CI runs): installs the target's toolchain and libvpx, then
#   cross/build.sh TARGET            release build of the `sutantra` binary for TARGET
#   cross/build.sh TARGET --test     also run the unit tests under qemu-user
set -euo pipefail
target=${1:?usage: cross/build.sh TARGET [--test]}
cd "$(dirname "$0")/.."
./cross/setup.sh "$target"
. cross/env.sh "$target"
cargo build --release --target "$target" -p sutantra
ls -l "target/$target/release/sutantra"
if [[ ${2:-} == --test ]]; then
  # The unit tests of the crates below the binary, run by qemu-user (CARGO_TARGET_*_RUNNER).
  cargo test --target "$target" -p sutantra-hal -p sutantra-core -p sutantra-boards -p sutantra
fi

#!/usr/bin/env bash
# Container-free cross build (what CI runs): installs the target's toolchain and libvpx, then
#   cross/build.sh TARGET            release build of the `sutantra` binary for TARGET
#   cross/build.sh TARGET --test     also run the unit tests under qemu-user
#   cross/build.sh TARGET --profile P  build with cargo profile P instead of release (the test
#                                    suite checks armv7/armv6 with dev-release: the same code
#                                    and target, without fat LTO's minutes; packages use release)
set -euo pipefail
target=${1:?usage: cross/build.sh TARGET [--test] [--profile NAME]}
shift
run_tests=0 profile=release
while (($#)); do
  case $1 in
    --test) run_tests=1 ;;
    --profile)
      profile=${2:?--profile takes a cargo profile name}
      shift
      ;;
    *)
      echo "cross/build.sh: unknown option '$1' (use --test or --profile NAME)" >&2
      exit 2
      ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
./cross/setup.sh "$target"
. cross/env.sh "$target"
build_std=()
if ! rustup target list --installed | grep -qx "$target"; then
  # No prebuilt std for this target (see setup.sh): build it from rust-src. -Zbuild-std is an
  # unstable cargo flag; RUSTC_BOOTSTRAP lets the pinned stable toolchain use it.
  export RUSTC_BOOTSTRAP=1
  build_std=(-Zbuild-std=std,panic_abort)
fi
# The boards' targets get the status LED and the button (GPIO through rppal).
features=() hal_features=()
case $target in
  arm* | aarch64*) features=(--features rpi) hal_features=(--features sutantra-hal/rpi) ;;
esac
cargo build "${build_std[@]}" --profile "$profile" --target "$target" -p sutantra "${features[@]}"
ls -l "${CARGO_TARGET_DIR:-target}/$target/$profile/sutantra"
if ((run_tests)); then
  # The unit and integration tests of the library crates (camera conversions, libvpx, RTP,
  # pacer, chain verification, attestations), run by qemu-user (CARGO_TARGET_*_RUNNER). The
  # firmware's own tests run natively.
  cargo test "${build_std[@]}" --target "$target" -p sutantra-hal -p sutantra-core -p sutantra-chain -p sutantra-boards \
    "${hal_features[@]}"
fi

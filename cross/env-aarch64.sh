# shellcheck shell=bash
# Environment for the container-free aarch64 cross build of the node (cross/README.md,
# "Without a container engine"). Source it, then build:
#
#   . cross/env-aarch64.sh && cargo build --release --target aarch64-unknown-linux-gnu -p sutantra --features rpi
#
# It is `cross/env.sh aarch64-unknown-linux-gnu` when that file is there (the same variables with
# the same values, so builds from either share target/ without rebuilding), else the same
# settings written out. Needs (scripts/setup.sh installs them): gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, libvpx-dev:arm64 (multiarch: `dpkg --add-architecture arm64`),
# qemu-user-static for the test runner, and `rustup target add aarch64-unknown-linux-gnu`.
_sutantra_cross_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f $_sutantra_cross_dir/env.sh ]]; then
  # shellcheck source=env.sh
  . "$_sutantra_cross_dir/env.sh" aarch64-unknown-linux-gnu
else
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  # binfmt_misc is not set up on these machines: the runner calls qemu-user explicitly.
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  export PKG_CONFIG_ALLOW_CROSS=1
  export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
  export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="-I/usr/aarch64-linux-gnu/include --target=aarch64-linux-gnu"
  # Thin LTO: fat LTO at opt-level "z" hits an LLVM bug on aarch64 (see cross/env.sh).
  export CARGO_PROFILE_RELEASE_LTO=thin
fi
unset _sutantra_cross_dir

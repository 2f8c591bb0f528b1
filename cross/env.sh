# shellcheck shell=bash
# Source with a target triple to get the environment for a container-free cross build:
#   . cross/env.sh aarch64-unknown-linux-gnu
# Sets the linker, C compiler, pkg-config (multiarch libvpx) and bindgen include paths, and a
# qemu-user runner so `cargo test --target T` runs the tests under emulation.
sutantra_cross_env() {
  local target=$1 gnu deb qemu
  case "$target" in
    aarch64-unknown-linux-gnu) gnu=aarch64-linux-gnu deb=arm64 qemu=qemu-aarch64-static ;;
    armv7-unknown-linux-gnueabihf | arm-unknown-linux-gnueabihf)
      gnu=arm-linux-gnueabihf deb=armhf qemu=qemu-arm-static ;;
    *) echo "cross/env.sh: unknown target $target" >&2; return 2 ;;
  esac
  local T=${target//-/_}
  local TU=${T^^}
  export "CARGO_TARGET_${TU}_LINKER=${gnu}-gcc"
  # The multiarch libc (pulled in by libvpx-dev:ARCH) is what the binary links against: load
  # that one (-L /). The cross libc under /usr/${gnu} deadlocked threaded test binaries.
  export "CARGO_TARGET_${TU}_RUNNER=${qemu} -L /"
  export "CC_${T}=${gnu}-gcc"
  export "AR_${T}=${gnu}-ar"
  export PKG_CONFIG_ALLOW_CROSS=1
  export "PKG_CONFIG_LIBDIR_${T}=/usr/lib/${gnu}/pkgconfig:/usr/share/pkgconfig"
  export "BINDGEN_EXTRA_CLANG_ARGS_${T}=-I/usr/${gnu}/include --target=${gnu}"
  SUTANTRA_DEB_ARCH=$deb
  SUTANTRA_GNU=$gnu
  export SUTANTRA_DEB_ARCH SUTANTRA_GNU
}
sutantra_cross_env "$@"

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
  if [[ $target == aarch64-unknown-linux-gnu ]]; then
    # Thin LTO for aarch64: rustc 1.95's LLVM fails this crate graph at opt-level "z" with fat
    # LTO ("Undefined temporary symbol .LJTI..."): first without `--features rpi` (issue 13),
    # then with it once the release build unwound on panic. Thin LTO builds (9.6 MB, unwinding;
    # the limit is 12 MiB). The other targets keep fat LTO.
    export CARGO_PROFILE_RELEASE_LTO=thin
  fi
  SUTANTRA_DEB_ARCH=$deb
  SUTANTRA_GNU=$gnu
  export SUTANTRA_DEB_ARCH SUTANTRA_GNU
}
sutantra_cross_env "$@"

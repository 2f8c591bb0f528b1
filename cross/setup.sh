#!/usr/bin/env bash
# Installs what a container-free cross build for TARGET needs on Debian 12 (as root): the cross
# gcc, the target's libvpx through multiarch, qemu-user for running tests, and the Rust target.
#   cross/setup.sh aarch64-unknown-linux-gnu
set -euo pipefail
target=${1:?usage: cross/setup.sh TARGET}
cd "$(dirname "$0")/.."
. cross/env.sh "$target"
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 "$@" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=900 \
      -o Dir::Cache::archives=/tmp/apt-archives "$@"
}
need=()
dpkg --print-foreign-architectures | grep -qx "$SUTANTRA_DEB_ARCH" || {
  dpkg --add-architecture "$SUTANTRA_DEB_ARCH"
  need+=(update)
}
for p in "gcc-${SUTANTRA_GNU}" "libc6-dev-${SUTANTRA_DEB_ARCH}-cross" "libvpx-dev:${SUTANTRA_DEB_ARCH}" qemu-user-static; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  # A mirror caught mid-sync fails one index now and then: retry, then go on with what we have
  # (the install below fails clearly if a package is really missing).
  apt-get update -q -o DPkg::Lock::Timeout=900 || {
    sleep 10
    apt-get update -q -o DPkg::Lock::Timeout=900 || echo "cross/setup.sh: apt-get update had errors; continuing" >&2
  }
  pkgs=()
  for p in "${need[@]}"; do [[ $p == update ]] || pkgs+=("$p"); done
  ((${#pkgs[@]} == 0)) || apt_install "${pkgs[@]}"
fi
if ! rustup target list --installed | grep -qx "$target"; then
  # Some targets' prebuilt std is not on every mirror (arm-unknown-linux-gnueabihf answered 404
  # here): then build std from source (`cross/build.sh` switches to -Zbuild-std).
  rustup target add "$target" || {
    echo "cross/setup.sh: no prebuilt std for $target; std will be built from rust-src" >&2
    rustup component add rust-src
  }
fi
echo "cross/setup.sh: ready for $target"

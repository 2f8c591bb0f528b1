#!/usr/bin/env bash
# Boots the emulated board built by build-guest.sh under QEMU's software emulation (TCG), with
# the serial console on stdin/stdout and, on the host's loopback only, HTTP and the WebRTC port
# forwarded into the guest:
#
#   tests/qemu/run-guest.sh ARCH HOSTPORT UDPPORT [GUESTDIR]
#
#   127.0.0.1:HOSTPORT/tcp -> guest 10.0.2.15:8080 (the node's HTTP: /healthz, /whep, ...)
#   127.0.0.1:UDPPORT/udp  -> guest 10.0.2.15:UDPPORT (the node's one WebRTC port; the node
#                             advertises 127.0.0.1:UDPPORT as a host candidate)
#
# GUESTDIR defaults to <target dir>/qemu-cache/guest-ARCH. Extra kernel command line words
# (e.g. `sutantra.width=320 sutantra.height=180 sutantra.fps=15`, see tests/qemu/init) come from
# SUTANTRA_GUEST_APPEND. The script execs QEMU, so its PID is QEMU's; stop it with SIGTERM/KILL.
set -euo pipefail

ARCH=${1:-}
HOSTPORT=${2:-}
UDPPORT=${3:-}
if [[ -z $ARCH || -z $HOSTPORT || -z $UDPPORT ]]; then
  echo "usage: $0 x86_64|aarch64 HOSTPORT UDPPORT [GUESTDIR]" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
GUEST=${4:-$TARGET_DIR/qemu-cache/guest-$ARCH}
for f in vmlinuz initrd.cpio; do
  [[ -f $GUEST/$f ]] || {
    echo "run-guest: $GUEST/$f is missing: run tests/qemu/build-guest.sh $ARCH" >&2
    exit 1
  }
done

# restrict=off (QEMU's default) is needed: with restrict=on the guest's replies to the WebRTC
# client's checks (which reach it from 10.0.2.2, QEMU's alias of the host's loopback) are dropped
# and ICE never connects. The guest still talks to nothing but the host's loopback: the node has
# no STUN servers (ice_servers = []) and answers only the forwarded ports.
APPEND="panic=-1 quiet sutantra.udp=$UDPPORT ${SUTANTRA_GUEST_APPEND:-}"
# shellcheck disable=SC2054 # commas belong to QEMU option values
NET=(-netdev "user,id=n0,restrict=off,hostfwd=tcp:127.0.0.1:$HOSTPORT-:8080,hostfwd=udp:127.0.0.1:$UDPPORT-:$UDPPORT"
  -device virtio-net-pci,netdev=n0,romfile=)
# shellcheck disable=SC2054
COMMON=(-accel tcg,thread=multi -smp 2 -m 1024 -nodefaults -display none -serial stdio
  -no-reboot -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.cpio")

case "$ARCH" in
  x86_64)
    exec qemu-system-x86_64 -machine pc -cpu "${SUTANTRA_GUEST_CPU:-max}" "${COMMON[@]}" "${NET[@]}" \
      -append "console=ttyS0 $APPEND"
    ;;
  aarch64)
    # `virt` with the Pi 4's core; its PCIe host bridge is built into Debian's arm64 kernel.
    exec qemu-system-aarch64 -machine virt -cpu cortex-a72 "${COMMON[@]}" "${NET[@]}" \
      -append "console=ttyAMA0 $APPEND"
    ;;
  *)
    echo "run-guest: unknown ARCH '$ARCH' (x86_64 or aarch64)" >&2
    exit 2
    ;;
esac

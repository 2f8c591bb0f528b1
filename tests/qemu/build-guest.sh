#!/usr/bin/env bash
# Builds the emulated board for QEMU: Debian's stock kernel and an initramfs with busybox, the
# vivid V4L2 test driver (and virtio-net), tests/qemu/init and the `sutantra` node built for the
# guest's architecture with the shared libraries it needs.
#
#   tests/qemu/build-guest.sh x86_64|aarch64
#
# Prints the output directory on the last line of stdout; it holds `vmlinuz`, `initrd.cpio`,
# `kver` and `stamp`. Everything is cached under <target dir>/qemu-cache/ (downloads, the
# extracted kernel, the guest); a rerun with the same inputs only checks the stamp.
#
# Environment:
#   SUTANTRA_GUEST_BIN  the node binary to put in the guest (must be built for ARCH). Default:
#                       x86_64 builds `cargo build --release -p sutantra`; aarch64 cross-builds
#                       `cargo build --release --target aarch64-unknown-linux-gnu -p sutantra
#                       --features rpi`
#                       with cross/env-aarch64.sh.
#   CARGO_TARGET_DIR    as for cargo (default <repo>/target).
#
# Needs (scripts/setup.sh --qemu installs them): apt-get with an up-to-date index (the arm64
# architecture enabled for aarch64), dpkg, busybox (for depmod), cpio, binutils' readelf.
set -euo pipefail

ARCH=${1:-}
case "$ARCH" in
  x86_64) DEBARCH=amd64 TRIPLET=x86_64-linux-gnu RUST_TARGET= ;;
  aarch64) DEBARCH=arm64 TRIPLET=aarch64-linux-gnu RUST_TARGET=aarch64-unknown-linux-gnu ;;
  *)
    echo "usage: $0 x86_64|aarch64" >&2
    exit 2
    ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
CACHE=$TARGET_DIR/qemu-cache
OUT=$CACHE/guest-$ARCH
DEBS=$CACHE/debs

log() { printf 'build-guest(%s): %s\n' "$ARCH" "$*" >&2; }
die() {
  printf 'build-guest(%s): error: %s\n' "$ARCH" "$*" >&2
  exit 1
}
for tool in apt-get apt-cache dpkg-deb busybox cpio readelf sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh --qemu (as root)"
done

mkdir -p "$CACHE" "$DEBS"
# One build per architecture at a time (tests and people may start it at once).
exec 9>"$CACHE/.lock-$ARCH"
flock 9

# --- Debian packages: the kernel of the current version in the apt index, and busybox ---------
# `apt-get download NAME:ARCH` into the cache unless a .deb of that exact version is there.
# Sets FETCHED to the .deb's path (no subshell: it may restart the script).
fetch() { # fetch PACKAGE
  local pkg=$1 ver file
  ver=$(apt-cache policy "$pkg:$DEBARCH" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [[ -z $ver || $ver == "(none)" ]]; then
    # No index entry: fall back to a cached .deb of any version.
    file=$(ls -1 "$DEBS/${pkg}_"*"_$DEBARCH.deb" 2>/dev/null | sort -V | tail -n1 || true)
    [[ -n $file ]] || die "apt knows no $pkg:$DEBARCH (run 'apt-get update'; for arm64 also
       'dpkg --add-architecture arm64': scripts/setup.sh --qemu does both)"
    log "apt has no $pkg:$DEBARCH; using cached $(basename "$file")"
    FETCHED=$file
    return
  fi
  file=$DEBS/${pkg}_${ver#*:}_$DEBARCH.deb
  if [[ ! -s $file ]]; then
    log "apt-get download $pkg:$DEBARCH ($ver)"
    local tmp
    tmp=$(mktemp -d "$DEBS/.dl.XXXXXX")
    # As root, apt fetches as its own `_apt` user, which must be able to write there.
    if [[ $(id -u) -eq 0 ]] && id -u _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
    (cd "$tmp" && apt-get download -q "$pkg:$DEBARCH=$ver" >&2) || {
      rm -rf "$tmp"
      # A stale index names versions the mirror no longer has: as root, update it once and
      # start over (releasing the lock first).
      if [[ $(id -u) -eq 0 && -z ${SUTANTRA_GUEST_APT_UPDATED:-} ]]; then
        log "apt-get download failed; running apt-get update and starting over"
        apt-get -o DPkg::Lock::Timeout=900 update -q >&2 || true
        export SUTANTRA_GUEST_APT_UPDATED=1
        exec 9>&-
        exec "$HERE/build-guest.sh" "$ARCH"
      fi
      die "apt-get download $pkg:$DEBARCH=$ver failed (try 'apt-get update')"
    }
    mv "$tmp"/*.deb "$file"
    rm -rf "$tmp"
    # Older versions of the same package are no longer needed.
    find "$DEBS" -maxdepth 1 -name "${pkg}_*_$DEBARCH.deb" ! -path "$file" -delete
  fi
  FETCHED=$file
}

# The stock kernel: `linux-image-$DEBARCH` depends on the current linux-image-<abi>-$DEBARCH.
KPKG=$(apt-cache depends "linux-image-$DEBARCH:$DEBARCH" 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ {sub(/:.*$/, "", $2); print $2; exit}')
if [[ -z $KPKG ]]; then
  KPKG=$(apt-cache search --names-only "^linux-image-[0-9.]+-[0-9]+-$DEBARCH\$" 2>/dev/null |
    awk '{print $1}' | sort -V | tail -n1)
fi
if [[ -z $KPKG ]]; then
  cached=$(ls -1 "$DEBS"/linux-image-*_"$DEBARCH".deb 2>/dev/null | sort -V | tail -n1 || true)
  [[ -n $cached ]] || die "cannot find Debian's linux-image package for $DEBARCH in the apt index"
  KPKG=$(basename "$cached" | cut -d_ -f1)
fi
KVER=${KPKG#linux-image-}
fetch "$KPKG"
KDEB=$FETCHED
fetch busybox-static
BBDEB=$FETCHED

KDIR=$CACHE/kernel-$KVER
if [[ ! -f $KDIR/.done || $KDIR/.done -ot $KDEB ]]; then
  log "extracting $(basename "$KDEB")"
  # Kernels of older versions for this architecture are no longer needed.
  find "$CACHE" -maxdepth 1 -name "kernel-*-$DEBARCH" ! -path "$KDIR" -exec rm -rf {} +
  rm -rf "$KDIR"
  mkdir -p "$KDIR"
  dpkg-deb -x "$KDEB" "$KDIR"
  # The .deb ships no modules.dep (the postinst runs depmod): generate it.
  busybox depmod -b "$KDIR" "$KVER"
  touch "$KDIR/.done"
fi
MODDIR=$KDIR/lib/modules/$KVER
[[ -f $MODDIR/modules.dep ]] || die "no modules.dep in $MODDIR"
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
[[ -f $VMLINUZ ]] || die "no $VMLINUZ in $(basename "$KDEB")"

BBDIR=$CACHE/busybox-$DEBARCH
if [[ ! -f $BBDIR/.done || $BBDIR/.done -ot $BBDEB ]]; then
  rm -rf "$BBDIR"
  mkdir -p "$BBDIR"
  dpkg-deb -x "$BBDEB" "$BBDIR"
  touch "$BBDIR/.done"
fi
BUSYBOX=$BBDIR/bin/busybox
[[ -x $BUSYBOX ]] || die "no bin/busybox in $(basename "$BBDEB")"

# --- The node for the guest -----------------------------------------------------------------
if [[ -n ${SUTANTRA_GUEST_BIN:-} ]]; then
  BIN=$SUTANTRA_GUEST_BIN
else
  if [[ -z $RUST_TARGET ]]; then
    log "cargo build --release -p sutantra"
    (cd "$ROOT" && cargo build --release -p sutantra >&2)
    BIN=$TARGET_DIR/release/sutantra
  else
    log "cross build: cargo build --release --target $RUST_TARGET -p sutantra"
    # shellcheck source=../../cross/env-aarch64.sh
    # With the boards' features, as cross/build.sh builds it: the same artifacts (no second
    # build), and the build that is shipped. (Without `rpi`, rustc 1.95's LLVM fails this crate
    # graph at opt-level "z" + fat LTO with "Undefined temporary symbol .LJTI...".)
    (cd "$ROOT" && . cross/env-aarch64.sh && cargo build --release --target "$RUST_TARGET" -p sutantra --features rpi >&2)
    BIN=$TARGET_DIR/$RUST_TARGET/release/sutantra
  fi
fi
[[ -x $BIN ]] || die "node binary $BIN not found"
machine=$(readelf -h "$BIN" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
case "$ARCH:$machine" in
  x86_64:*X86-64* | aarch64:*AArch64*) ;;
  *) die "$BIN is built for '$machine', not $ARCH" ;;
esac

# Where the guest's shared libraries come from: the host's own (x86_64) or the multiarch arm64
# packages (libvpx-dev:arm64 brings libvpx7:arm64 and libc6:arm64), then the cross toolchain's.
LIBDIRS=("/lib/$TRIPLET" "/usr/lib/$TRIPLET" "/usr/$TRIPLET/lib")
[[ $ARCH == x86_64 ]] && LIBDIRS+=(/lib64)
find_lib() {
  local d
  for d in "${LIBDIRS[@]}"; do
    [[ -e $d/$1 ]] && {
      echo "$d/$1"
      return 0
    }
  done
  return 1
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# --- Inputs stamp: rebuild only when something changed ------------------------------------------
mods=(vivid virtio_net virtio_pci)
stamp=$(
  {
    echo "kernel $KPKG $(basename "$KDEB") busybox $(basename "$BBDEB") mods ${mods[*]}"
    sha256sum "$BIN" "$HERE/init" "$HERE/build-guest.sh"
    for l in $(needed "$BIN"); do f=$(find_lib "$l") && sha256sum "$(readlink -f "$f")"; done
  } | sha256sum | cut -d' ' -f1
)
if [[ -f $OUT/initrd.cpio && -f $OUT/vmlinuz && $(cat "$OUT/stamp" 2>/dev/null) == "$stamp" ]]; then
  log "up to date ($KVER, $(du -h "$OUT/initrd.cpio" | cut -f1) initramfs)"
  echo "$OUT"
  exit 0
fi

log "building the initramfs (kernel $KVER, node $(du -h "$BIN" | cut -f1))"
STAGE=$CACHE/stage-$ARCH
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,var/lib/sutantra}
install -m 0755 "$BUSYBOX" "$STAGE/bin/busybox"
install -m 0755 "$HERE/init" "$STAGE/init"

# Kernel modules: the closure of what we load, from modules.dep (built-ins need nothing).
declare -A want=()
add_mod() { # add_mod NAME: the module file and its dependencies
  local name=$1 line path dep
  line=$(grep -E "(^|/)${name//_/[_-]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" || true)
  if [[ -z $line ]]; then
    if grep -qE "(^|/)${name//_/[_-]}\.ko" "$MODDIR/modules.builtin" 2>/dev/null; then
      return 0
    fi
    die "module $name is neither in modules.dep nor built in ($KVER)"
  fi
  path=${line%%:*}
  want[$path]=1
  for dep in ${line#*:}; do want[$dep]=1; done
}
for m in "${mods[@]}"; do add_mod "$m"; done
for path in "${!want[@]}"; do
  mkdir -p "$STAGE/lib/modules/$KVER/$(dirname "$path")"
  cp "$MODDIR/$path" "$STAGE/lib/modules/$KVER/$path"
done
cp "$MODDIR"/modules.builtin* "$MODDIR/modules.order" "$STAGE/lib/modules/$KVER/" 2>/dev/null || true
busybox depmod -b "$STAGE" "$KVER"
log "modules: ${#want[@]} files ($(for p in "${!want[@]}"; do basename "$p" .ko; done | sort | tr '\n' ' '))"

# The node and its libraries (NEEDED, recursively) and the dynamic loader it asks for.
install -m 0755 "$BIN" "$STAGE/usr/bin/sutantra"
mkdir -p "$STAGE/lib/$TRIPLET"
echo "/lib/$TRIPLET" >"$STAGE/etc/sutantra-libdir"
declare -A seen=()
queue=("$BIN")
while ((${#queue[@]})); do
  elf=${queue[0]}
  queue=("${queue[@]:1}")
  for lib in $(needed "$elf"); do
    [[ -n ${seen[$lib]:-} ]] && continue
    seen[$lib]=1
    src=$(find_lib "$lib") || die "library $lib (needed by $(basename "$elf")) not found in ${LIBDIRS[*]}"
    cp -L "$src" "$STAGE/lib/$TRIPLET/$lib"
    queue+=("$(readlink -f "$src")")
  done
done
interp=$(readelf -l "$BIN" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
if [[ -n $interp ]]; then # (a static binary has none)
  src=$interp
  [[ -e $src ]] || src=$(find_lib "$(basename "$interp")") || die "dynamic loader $interp not found"
  mkdir -p "$STAGE/$(dirname "$interp")"
  cp -L "$src" "$STAGE$interp"
fi
log "libraries: ${!seen[*]}; loader ${interp:-none}"

# A plain (uncompressed) cpio: the emulated CPU then has nothing to unpack at boot.
mkdir -p "$OUT"
(cd "$STAGE" && find . -print0 | sort -z | cpio --null -o -H newc --owner 0:0 --quiet) >"$OUT/initrd.cpio.tmp"
mv "$OUT/initrd.cpio.tmp" "$OUT/initrd.cpio"
cp "$VMLINUZ" "$OUT/vmlinuz"
echo "$KVER" >"$OUT/kver"
echo "$stamp" >"$OUT/stamp"
rm -rf "$STAGE"
log "done: $OUT ($(du -h "$OUT/initrd.cpio" | cut -f1) initramfs, kernel $KVER)"
echo "$OUT"

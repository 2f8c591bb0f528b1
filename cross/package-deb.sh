#!/usr/bin/env bash
# Builds the Debian package of the node for a target (dpkg-deb, no extra tool needed):
#   cross/package-deb.sh aarch64-unknown-linux-gnu     -> target/deb/sutantra_VERSION_arm64.deb
# Contents: /usr/bin/sutantra, the hardened systemd unit, the commented configuration template
# /usr/share/sutantra/config.toml, maintainer scripts that create the `sutantra` user (video, gpio),
# make /etc/sutantra/config.toml from the template with a random viewer token on the first install
# (not a conffile: postinst writes it once, upgrades never touch it, purge removes it), and keep
# /var/lib/sutantra (key, chain state, outbox) on removal.
# Also the bash completion (/usr/share/bash-completion/completions/sutantra).
# Set SUTANTRA_PREBUILT=1 to package an already built binary without rebuilding.
set -euo pipefail
target=${1:?usage: cross/package-deb.sh TARGET}
cd "$(dirname "$0")/.."
case "$target" in
  x86_64-unknown-linux-gnu) arch=amd64 ;;
  aarch64-unknown-linux-gnu) arch=arm64 ;;
  armv7-unknown-linux-gnueabihf | arm-unknown-linux-gnueabihf) arch=armhf ;;
  *) echo "package-deb: unknown target $target" >&2; exit 2 ;;
esac
tdir=${CARGO_TARGET_DIR:-target}
bin="$tdir/$target/release/sutantra"
# The host's own build is in target/release.
if [[ $target == x86_64-unknown-linux-gnu && $(uname -m) == x86_64 && ! -x $bin ]]; then
  bin="$tdir/release/sutantra"
fi
if [[ ${SUTANTRA_PREBUILT:-0} != 1 || ! -x $bin ]]; then
  if [[ $target == x86_64-unknown-linux-gnu ]]; then
    cargo build --release -p sutantra
    bin="$tdir/release/sutantra"
  else
    ./cross/build.sh "$target"
  fi
fi
version=${SUTANTRA_DEB_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
install -D -m 0755 "$bin" "$stage/usr/bin/sutantra"
install -D -m 0644 firmware/debian/sutantra.service "$stage/lib/systemd/system/sutantra.service"
# The template postinst makes /etc/sutantra/config.toml from (with the token filled in).
install -D -m 0644 firmware/debian/config.toml "$stage/usr/share/sutantra/config.toml"
install -D -m 0644 README.md "$stage/usr/share/doc/sutantra/README.md"
# The README is the quick start; the reference it links to (docs/, ARCHITECTURE.md) goes along.
install -D -m 0644 ARCHITECTURE.md "$stage/usr/share/doc/sutantra/ARCHITECTURE.md"
install -D -m 0644 -t "$stage/usr/share/doc/sutantra/docs" docs/*.md
# Bash completion: checked in, since a cross build cannot run the target binary to generate it
# (a unit test in firmware/src/cli/completions.rs keeps it equal to `sutantra completions bash`).
install -D -m 0644 firmware/debian/sutantra.bash-completion \
  "$stage/usr/share/bash-completion/completions/sutantra"
install -d -m 0755 "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: sutantra
Version: $version
Architecture: $arch
Maintainer: Sutantra <dev@sutantra.invalid>
Depends: libvpx7, libc6, adduser, systemd
Recommends: rpicam-apps-lite | rpicam-apps | libcamera-apps
Section: video
Priority: optional
Description: Sutantra edge node: camera broadcaster over WebRTC and chain light validator
 Captures a Raspberry Pi camera module (through rpicam-vid) or a V4L2 camera, encodes VP8 with libvpx, serves viewers over WebRTC (WHEP) and
 publishes to relays (WHIP); verifies CometBFT light blocks and signs attestations of what it
 broadcast. Runs as a hardened systemd service with a watchdog.
CONTROL
# No conffiles: /etc/sutantra/config.toml belongs to postinst (a conffile holding a generated
# token would make dpkg ask about it on every upgrade).
# postinst: the user, state dir and configuration, then enable and (re)start the service (not
# for a chrootless install into another root: DPKG_ROOT set).
{
  sed '/^#DEBHELPER#$/,$d' firmware/debian/postinst
  cat <<'SNIPPET'
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ]; then
    if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        deb-systemd-helper enable sutantra.service >/dev/null 2>&1 || systemctl enable sutantra.service >/dev/null || true
        deb-systemd-invoke restart sutantra.service >/dev/null 2>&1 || systemctl restart sutantra.service || true
    fi
fi
exit 0
SNIPPET
} >"$stage/DEBIAN/postinst"
cat >"$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
    deb-systemd-invoke stop sutantra.service >/dev/null 2>&1 || systemctl stop sutantra.service || true
fi
exit 0
PRERM
{
  sed '/^#DEBHELPER#$/d' firmware/debian/postrm
} >"$stage/DEBIAN/postrm"
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
mkdir -p "$tdir/deb"
out="$tdir/deb/sutantra_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "$out"

#!/usr/bin/env bash
# Installs what building and testing the Sutantra node needs on Debian 12 (run as root).
# Idempotent: every step checks first and does nothing when its work is already done.
#
#   scripts/setup.sh                 build deps + test deps (Python venv, Playwright, Chromium, ffmpeg)
#   scripts/setup.sh --runtime-only  only what `cargo build` / `sutantra run` needs
#   scripts/setup.sh --qemu          only the emulated-board part (QEMU, busybox, aarch64 cross)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

MODE=full
for arg in "$@"; do
  case "$arg" in
    --runtime-only) MODE=runtime ;;
    --qemu) MODE=qemu ;;
    -h | --help)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup.sh: unknown option '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

say() { printf 'setup: %s\n' "$*"; }
die() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}

# === Emulated board (tests/qemu, tests/tests/e2e/board.rs) ======================================
# QEMU (software emulation), Debian's static busybox, cpio, and the container-free aarch64 cross
# build of the node (cross gcc, multiarch libvpx-dev:arm64, the Rust target). The guest kernels
# and the arm64 busybox are fetched by tests/qemu/build-guest.sh into target/qemu-cache/.
# Runs in the full setup and alone with --qemu.
# The archive URI of the machine's own bookworm entry, as apt itself reads its sources (deb822 or
# one-line, a local mirror, a proxy or a snapshot), so this script never brings an archive host
# of its own. Empty when there is no bookworm entry.
bookworm_uri() {
  apt-get indextargets --no-release-info --format '$(REPO_URI)' 'Release: bookworm' \
    'Created-By: Packages' 2>/dev/null | head -n1
}

qemu_setup() {
  local qemu_pkgs=(qemu-system-x86 qemu-system-arm)
  local pkgs=(busybox-static cpio xz-utils gzip gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    qemu-user-static)
  local apt=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
  local need=() need_qemu=() from=() p status
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [[ $(id -u) -eq 0 ]] || die "the arm64 architecture is not enabled; run as root: sudo $0 --qemu"
    say "qemu: dpkg --add-architecture arm64 (for libvpx-dev:arm64)"
    dpkg --add-architecture arm64
  fi
  pkgs+=(libvpx-dev:arm64)
  # Some machine images ship qemu-utils from bookworm-backports, which Breaks bookworm's
  # qemu-system-common 7.2: then take the QEMU system emulators from backports too.
  if [[ $(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true) == *bpo12* ]]; then
    from=(-t bookworm-backports)
    local bpo=/etc/apt/sources.list.d/sutantra-bookworm-backports.sources
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      [[ $(id -u) -eq 0 ]] || die "bookworm-backports is not in apt's sources; run as root: sudo $0 --qemu"
      local uri
      uri=$(bookworm_uri)
      [[ -n $uri ]] || die "no bookworm entry in apt's sources to take the archive URI from; add bookworm-backports to apt's sources yourself, with the URI of your bookworm entry, and run again"
      say "qemu: adding bookworm-backports to apt's sources (qemu-utils came from there), from $uri"
      printf '%s\n' 'Types: deb' "URIs: $uri" 'Suites: bookworm-backports' 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$bpo"
    fi
  fi
  for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $status == installed ]] || need+=("$p")
  done
  for p in "${qemu_pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $status == installed ]] || need_qemu+=("$p")
  done
  if ((${#need[@]} + ${#need_qemu[@]})); then
    [[ $(id -u) -eq 0 ]] || die "packages missing (${need[*]} ${need_qemu[*]}); run as root: sudo $0 --qemu"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh index: it must list the arm64 packages (and backports) added above.
    "${apt[@]}" update >/dev/null || { sleep 10; "${apt[@]}" update >/dev/null || say "apt-get update had errors (a mirror mid-sync?); continuing"; }
    local set
    for set in need_qemu need; do
      local -n list=$set
      ((${#list[@]})) || continue
      local opts=()
      [[ $set == need_qemu ]] && opts=("${from[@]}")
      say "qemu: apt: installing ${list[*]} ${opts[*]}"
      if ! "${apt[@]}" "${opts[@]}" install "${list[@]}"; then
        say "apt install failed; retrying once with a private archive cache"
        mkdir -p /tmp/apt-archives/partial
        "${apt[@]}" "${opts[@]}" -o Dir::Cache::archives=/tmp/apt-archives install "${list[@]}"
      fi
      unset -n list
    done
  else
    say "qemu: all $((${#pkgs[@]} + ${#qemu_pkgs[@]})) packages present"
  fi
  command -v rustup >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
  if command -v rustup >/dev/null; then
    if rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
      say "qemu: rust target aarch64-unknown-linux-gnu present"
    else
      say "qemu: rustup target add aarch64-unknown-linux-gnu"
      rustup target add aarch64-unknown-linux-gnu
    fi
  else
    die "rustup not found: the aarch64 guest needs 'rustup target add aarch64-unknown-linux-gnu'"
  fi
}
if [[ $MODE == qemu ]]; then
  qemu_setup
  say "done (qemu)"
  exit 0
fi
# === end of the emulated-board block =============================================================

# --- Debian packages --------------------------------------------------------------------------
BUILD_PKGS=(build-essential pkg-config libvpx-dev libclang-dev clang curl ca-certificates)
TEST_PKGS=(chromium ffmpeg python3-venv stress-ng openssl faketime janus) # stress-ng: bench/run.sh loads the other core; openssl: the WHIP TLS test's certificates; faketime: the wall-clock step test; janus: the real SFU the node publishes into (tests/tests/e2e/janus.rs)
PKGS=("${BUILD_PKGS[@]}")
[[ $MODE == full ]] && PKGS+=("${TEST_PKGS[@]}")
# Node.js runs the Playwright browser check; the machine image may already ship a newer one.
if [[ $MODE == full ]] && ! command -v npm >/dev/null; then PKGS+=(nodejs npm); fi

missing=()
for p in "${PKGS[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "packages missing (${missing[*]}); run as root: sudo $0 $*"
  export DEBIAN_FRONTEND=noninteractive
  APT=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
  say "apt: installing ${missing[*]}"
  "${APT[@]}" update >/dev/null || { sleep 10; "${APT[@]}" update >/dev/null || say "apt-get update had errors (a mirror mid-sync?); continuing"; }
  if ! "${APT[@]}" install "${missing[@]}"; then
    # Another apt run may have cleaned the shared archive cache under us ("archive not found").
    say "apt install failed; retrying once with a private archive cache"
    mkdir -p /tmp/apt-archives/partial
    "${APT[@]}" -o Dir::Cache::archives=/tmp/apt-archives install "${missing[@]}"
  fi
  # The janus package enables its service with the demo configuration (HTTP API on every
  # interface, demo rooms); the test starts its own Janus on loopback ports, so the service
  # stays off.
  if [[ " ${missing[*]} " == *" janus "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now janus.service >/dev/null 2>&1 || say "could not disable janus.service; stop it if you do not use it"
  fi
else
  say "apt: all ${#PKGS[@]} packages present"
fi

# --- Rust -------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null; then
  [[ -x $HOME/.cargo/bin/cargo ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  die "no Rust toolchain found. Install rustup (Debian 13+: 'apt-get install rustup'; otherwise the
       official rustup installer, see the Rust website), then re-run this script. The repository's
       rust-toolchain.toml selects Rust 1.95.0 with rustfmt and clippy; rustup installs it on first use."
fi
# With rustup, the first cargo call installs the pinned toolchain (rust-toolchain.toml) if needed.
cargo_version=$(cargo --version) || die "cargo is installed but does not run (see the message above)"
minor=$(sed -E 's/^cargo 1\.([0-9]+).*/\1/' <<<"$cargo_version")
if [[ $minor =~ ^[0-9]+$ ]] && ((minor < 85)); then
  die "$cargo_version is too old (edition 2024 needs 1.85+; the repo pins 1.95.0). Use rustup, not Debian's cargo."
fi
say "rust: $cargo_version"

[[ $MODE == runtime ]] && {
  say "done (runtime only)"
  exit 0
}

# --- cargo-fuzz (scripts/fuzz.sh), only where a nightly toolchain is installed ----------------
# libFuzzer needs nightly; without it scripts/fuzz.sh says so and skips, and nothing is installed.
if command -v rustup >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  if fuzz_version=$(cargo +nightly fuzz --version 2>/dev/null); then
    say "fuzz: $fuzz_version"
  else
    say "fuzz: cargo install cargo-fuzz --locked (a nightly toolchain is present)"
    cargo install cargo-fuzz --locked
  fi
else
  say "fuzz: no nightly toolchain, no cargo-fuzz (scripts/fuzz.sh skips; 'rustup toolchain install nightly' to fuzz)"
fi

# --- Python venv with aiortc (the independent WHEP viewer) --------------------------------------
REQ=tests/e2e/requirements.txt
VENV=$ROOT/.venv
PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3 # Debian's, which python3-venv completes
want=$(sha256sum "$REQ" | cut -d' ' -f1)
have=$(cat "$VENV/.sutantra-requirements" 2>/dev/null || true)
if [[ $want == "$have" ]] && "$VENV/bin/python3" -c 'import aiortc, aiohttp, numpy' 2>/dev/null; then
  say "python: .venv up to date"
else
  if ! "$VENV/bin/python3" -c '' 2>/dev/null; then
    say "python: creating .venv with $($PY --version)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
  fi
  say "python: pip install -r $REQ"
  "$VENV/bin/python3" -m pip install --disable-pip-version-check --no-input -q -r "$REQ"
  echo "$want" >"$VENV/.sutantra-requirements"
fi

# --- Playwright (playwright-core only: it drives Debian's /usr/bin/chromium, never downloads one) -
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
((node_major >= 20)) || say "warning: Node.js $(node --version 2>/dev/null || echo missing) found; playwright-core wants 20+"
pin=$(node -p 'require("./tests/e2e/package.json").dependencies["playwright-core"]')
have=$(node -p 'require("./tests/e2e/node_modules/playwright-core/package.json").version' 2>/dev/null || true)
if [[ $have == "$pin" ]]; then
  say "node: playwright-core $pin present"
else
  say "node: npm ci (playwright-core $pin) in tests/e2e"
  (cd tests/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is missing after apt install"
qemu_setup # the emulated-board block above
say "done"

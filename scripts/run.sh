#!/usr/bin/env bash
# Starts the node on the embedded default (test pattern, 640x480 at 30 FPS, http://127.0.0.1:8080/).
# Installs the build dependencies first (Debian 12, as root), builds a release binary, and passes
# any arguments on to `sutantra run` (e.g. ./scripts/run.sh --source v4l2:/dev/video0).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --runtime-only
cargo build --release -p sutantra
exec ./target/release/sutantra run "$@"

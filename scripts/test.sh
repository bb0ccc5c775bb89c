#!/usr/bin/env bash
# Every check and test: formatting, lints, UI unit tests, engine and pipeline tests (real
# Mosquitto), and the end-to-end test of the real window under Xvfb. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== UI: type check, unit tests, build"
(cd ui && npm run check --silent && npm test --silent && npm run build --silent)

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (under Xvfb and a private D-Bus session)"
xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" \
  dbus-run-session -- cargo test --workspace --locked

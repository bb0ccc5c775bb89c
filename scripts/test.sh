#!/usr/bin/env bash
# Every check and test: formatting, lints, UI unit tests, engine and pipeline tests (real
# Mosquitto), and the end-to-end test of the real window under Xvfb. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# One build from clean: incremental state (1.6 GB) would only fill the disk. The build needs
# about 6 GB of free disk; say how much there is, so a full disk is plain in the log.
export CARGO_INCREMENTAL=0
echo "== disk: $(df -h --output=avail . | tail -n 1 | tr -d ' ') free here before the build"

echo "== UI: type check, lint (ESLint, Stylelint), unit tests, build"
(cd ui && npm run check --silent && npm run lint --silent && npm test --silent && npm run build --silent)

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (under Xvfb, a private D-Bus session and a PulseAudio null sink)"
# The station plays its alarm tones itself: CI has no sound card, so a private PulseAudio
# server with a null sink takes them (ALSA's default goes to PulseAudio while it runs), and
# the tests count what the player played. Without it the station raises NO ALARM SOUND.
scripts/audio-sink.sh start
trap 'scripts/audio-sink.sh stop' EXIT
export XDG_RUNTIME_DIR PULSE_SERVER
XDG_RUNTIME_DIR="$(scripts/audio-sink.sh dir)"
PULSE_SERVER="unix:$XDG_RUNTIME_DIR/pulse/native"
xvfb-run -a -s "-screen 0 1920x1080x24 -nolisten tcp" \
  dbus-run-session -- cargo test --workspace --locked
echo "== disk: target/ holds $(du -sh "${CARGO_TARGET_DIR:-target}" | cut -f1)"

#!/usr/bin/env bash
# Install what Vigil needs to build, run and test on Debian 12 / Ubuntu 22.04+ (idempotent).
# Usage: scripts/setup.sh          (system packages, tauri-driver, UI dependencies)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Tauri 2 build dependencies, then the runtime/test tools: X server, WebDriver, screenshots,
# the Mosquitto broker used by the tests, D-Bus and a notification daemon, fonts.
PACKAGES=(
  build-essential pkg-config curl wget file libssl-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev
  xvfb xauth webkit2gtk-driver imagemagick x11-utils xdotool
  mosquitto mosquitto-clients dbus-x11 dunst libnotify-bin fonts-dejavu-core
  # The OS keyring (Secret Service) the station key may live in; its test runs GNOME Keyring.
  gnome-keyring
  # Alarm sound played by the station (cpal over ALSA); the tests give it a PulseAudio null sink.
  libasound2-dev libasound2-plugins pulseaudio pulseaudio-utils
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tauri-driver (WebDriver proxy for the end-to-end tests), pinned to 2.x.
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "setup: installing tauri-driver 2.x"
  cargo install tauri-driver --version '^2' --locked --quiet
fi

# The web UI's dependencies, exactly as locked.
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  echo "setup: installing UI dependencies"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi

#!/usr/bin/env bash
# A private PulseAudio server with one null sink, for running the station where there is no
# sound card (CI, a headless test machine). Usage: scripts/audio-sink.sh start|stop|dir
# It lives in target/audio-sink (its own XDG_RUNTIME_DIR); `stop` ends only that server.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/audio-sink"
case "${1:-}" in
  dir) echo "$dir" ;;
  start)
    mkdir -p "$dir" && chmod 700 "$dir"
    if XDG_RUNTIME_DIR="$dir" pactl info >/dev/null 2>&1; then exit 0; fi
    XDG_RUNTIME_DIR="$dir" pulseaudio -n --daemonize=yes --exit-idle-time=-1 --disallow-exit \
      --use-pid-file=yes --log-target=file:"$dir/pulseaudio.log" \
      -L "module-null-sink sink_name=vigil_null sink_properties=device.description=Null" \
      -L "module-native-protocol-unix" 2>/dev/null
    for _ in $(seq 1 50); do
      XDG_RUNTIME_DIR="$dir" pactl info >/dev/null 2>&1 && exit 0
      sleep 0.1
    done
    echo "audio-sink: PulseAudio did not start (see $dir/pulseaudio.log)" >&2
    exit 1
    ;;
  stop)
    XDG_RUNTIME_DIR="$dir" pulseaudio --kill 2>/dev/null || true
    ;;
  *) echo "usage: $0 start|stop|dir" >&2; exit 2 ;;
esac

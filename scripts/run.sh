#!/usr/bin/env bash
# Build and open Vigil. With no configuration it starts the embedded broker and a simulated
# ward of 8 beds; with [broker] url in vigil.toml (or $VIGIL_CONFIG) it connects there instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd ui && npm run build --silent)
exec cargo run --bin vigil -- "$@"

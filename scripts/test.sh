#!/usr/bin/env bash
# The test command of the README: unit and integration tests (ctest), then each libFuzzer
# target for a short bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${PRESET:-release}"
cmake --build --preset "$PRESET" -j "$(nproc)"
ctest --preset "$PRESET" -j "$(nproc)"
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi

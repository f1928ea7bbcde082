#!/usr/bin/env bash
# The test command of the README: each libFuzzer target for a short bounded time, then the
# unit and command-line tests (ctest), whose summary closes the output.
#   FUZZ_SECONDS=N (default 30), SKIP_FUZZ=1, PRESET=cpu for a CPU-only build
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${PRESET:-release}"
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
cmake --build --preset "$PRESET" -j "$(nproc)"
ctest --preset "$PRESET" -j "$(nproc)"

#!/usr/bin/env bash
# Installs what ditrun needs to build and test (Debian packages), then configures and builds.
# Idempotent: packages already present are skipped, and the build is incremental.
#   scripts/setup.sh            install (when root) + configure + build (preset: release)
#   PRESET=cpu scripts/setup.sh  a CPU-only build
#   SKIP_BUILD=1 scripts/setup.sh  install only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libopenmpi-dev openmpi-bin
  libspdlog-dev libfmt-dev
  libboost-dev libboost-system-dev
  nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev
  libopenblas-dev
  libpng-dev
  libsentencepiece-dev libicu-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg
  clang libclang-rt-14-dev
  python3 curl
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nvcc lives outside PATH on most CUDA installs; let CMake's auto-detection find it.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi

[ "${SKIP_BUILD:-0}" = 1 ] && exit 0
PRESET="${PRESET:-release}"
cmake --preset "$PRESET" >/dev/null
cmake --build --preset "$PRESET" -j "$(nproc)"

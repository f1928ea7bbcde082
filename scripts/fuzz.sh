#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan + UBSan) and runs each for
# SECONDS seconds on a seed corpus: the small files of ../shared/testdata plus checkpoints
# written by ditrun's own writers (fuzz_make_seeds). Exits non-zero when clang or libFuzzer
# is missing, or when any target finds a crash, leak, timeout or sanitizer report.
#   scripts/fuzz.sh [SECONDS]     (default 30; JOBS=N limits the build's parallelism)
# Crash inputs land in build-fuzz/artifacts/; reproduce with build-fuzz/tests/fuzz/<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-30}"
JOBS="${JOBS:-$(nproc)}"
BUILD=build-fuzz
SHARED=../shared/testdata
TARGETS=(fuzz_safetensors fuzz_gguf fuzz_checkpoint_weights fuzz_tensor_message fuzz_http_request)

# libFuzzer ships with clang's compiler-rt (Debian: clang + libclang-rt-14-dev).
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe_dir/probe.cpp"
if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: clang++ not found; install clang and libclang-rt-14-dev (scripts/setup.sh as root)" >&2
  exit 3
fi
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cpp" -o "$probe_dir/probe" 2>"$probe_dir/err"; then
  echo "fuzz.sh: clang++ cannot link a libFuzzer target (is libclang-rt-14-dev installed?):" >&2
  sed 's/^/  /' "$probe_dir/err" >&2
  exit 3
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$JOBS"

# Seed corpus, one folder per target; libFuzzer adds what it finds to the same folder.
seeds="$BUILD/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
"$BUILD/tests/fuzz/fuzz_make_seeds" "$seeds"
add_seeds() {  # target, extension...
  local target="$1"
  shift
  local dir="$BUILD/corpus/$target"
  mkdir -p "$dir"
  for ext in "$@"; do
    find "$SHARED" "$seeds" -type f -name "*.$ext" -size -1024k -exec cp -f {} "$dir/" \; 2>/dev/null || true
  done
}
add_seeds fuzz_safetensors safetensors
add_seeds fuzz_gguf gguf
add_seeds fuzz_checkpoint_weights safetensors gguf
add_seeds fuzz_tensor_message dtms
mkdir -p "$BUILD/corpus/fuzz_http_request" && cp -f tests/fuzz/http_requests/*.http "$BUILD/corpus/fuzz_http_request/"

mkdir -p "$BUILD/artifacts" "$BUILD/logs"
failed=()
for target in "${TARGETS[@]}"; do
  case "$target" in
    fuzz_gguf) dict=tests/fuzz/gguf.dict ;;
    fuzz_safetensors) dict=tests/fuzz/safetensors.dict ;;
    fuzz_tensor_message) dict=tests/fuzz/tensor_message.dict ;;
    fuzz_http_request) dict=tests/fuzz/http_request.dict ;;
    *) dict=tests/fuzz/checkpoint_weights.dict ;;
  esac
  log="$BUILD/logs/$target.log"
  echo "fuzz.sh: $target for ${DURATION}s (corpus $BUILD/corpus/$target, log $log)"
  if "$BUILD/tests/fuzz/$target" "$BUILD/corpus/$target" \
      -max_total_time="$DURATION" -rss_limit_mb=2048 -max_len=1048576 -timeout=30 \
      -dict="$dict" -artifact_prefix="$BUILD/artifacts/$target-" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done ' "$log" | sed 's/^/  /' || true
  else
    echo "fuzz.sh: $target FAILED; the end of its log:" >&2
    tail -n 40 "$log" >&2
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]} (inputs in $BUILD/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"

#!/usr/bin/env bash
# The GPU check: ditrun's GPU tests, a smoke run, compute-sanitizer and the GPU benchmarks on a
# borrowed GPU machine that can run binaries but cannot build ditrun (it has the NVIDIA
# libraries, not the Debian packages). So the binaries are built here and travel in a bundle
# with every non-CUDA shared library they load and the reference data the GPU tests open.
#
#   bash scripts/gpu_check.sh --bundle [--no-build]   # here: make gpu-bundle.tar.xz (<= 64 MiB)
#   bash scripts/gpu_check.sh --dry-run               # here, no GPU: bundle + simulated run (< 5 min)
#   bash scripts/gpu_check.sh [--only PARTS] [--seconds N] [--budget S]   # on the GPU machine
#
# The device command line (the GPU tool runs it in the repository root; carry the ignored
# file gpu-bundle.tar.xz; timeout_s 300 leaves room over the 230 s default budget):
#
#   bash scripts/gpu_check.sh
#
# It writes summary.md, gpu_tests.{log,xml}, bench.log, benchmarks.md, bench.json,
# devices.txt, smoke.log, sanitizer.log and env.txt under $OUT; the summary table closes the
# output and the exit code is non-zero if any part failed.
#
# Parts of the on-GPU run, in order (--only takes a comma list of them):
#   smoke      `ditrun devices` (a GPU must be listed) and the built-in tiny Flux on --backend cuda
#   tests      ditrun_gpu_tests; a skipped test counts as a failure (it means no GPU was seen)
#   bench      ditrun_bench_gpu --markdown $OUT/benchmarks.md --json $OUT/bench.json
#   sanitizer  compute-sanitizer memcheck over a short test filter, if installed and time allows
# Other options: --filter GTEST_FILTER (tests part), --bench-only LIST (the bench's --only),
# --bench-args 'ARGS' (more bench options, e.g. '--quick' or '--step-weights bf16,q4_K'),
# --bundle-file F (default: gpu-bundle.tar.xz at the repository root), BUILD_DIR=build.
set -Eeuo pipefail  # -E: the on-GPU run's ERR trap (a summary of what ran) fires in functions too

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$REPO/build}"
TESTDATA_SRC="${TESTDATA_SRC:-$REPO/../shared/testdata}"
BUNDLE_FILE="$REPO/gpu-bundle.tar.xz"
BUNDLE_LIMIT=$((64 * 1024 * 1024))  # the GPU tool carries at most 64 MiB of ignored files
SANITIZER_FILTER='*BackendOps*:*DeviceDecode*'
# gtest's progress lines, left out of the console copy of the logs (the logs keep them).
TEST_PROGRESS='^\[ RUN      \]|^\[       OK \]|^\[----------\]|^$'

# The binaries the bundle carries: name and path in the build tree. A binary listed in
# OPTIONAL_BINARIES may be missing from a build (a loud warning; its part reports it missing).
BINARIES=(ditrun ditrun_gpu_tests ditrun_bench_gpu)
declare -A BINARY_PATH=(
  [ditrun]=launcher/ditrun
  [ditrun_gpu_tests]=tests/gpu/ditrun_gpu_tests
  [ditrun_bench_gpu]=bench/ditrun_bench_gpu
)
OPTIONAL_BINARIES=" "

# Libraries every GPU machine has (glibc and the GCC runtime): never bundled. libstdc++ and
# libgcc_s are also carried in lib/compat, used only if the machine's copy is too old.
BASE_LIBS='^(linux-vdso\.so\.1|ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libutil\.so\.1|libresolv\.so\.2|libanl\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1)$'
COMPAT_LIBS='^(libstdc\+\+\.so\.6|libgcc_s\.so\.1)$'
# CUDA libraries: the GPU machine has them (PyTorch's nvidia-* wheels, the toolkit, the
# driver); bundling them would blow the size limit and could mismatch the driver.
CUDA_LIBS='^lib(cuda|cudart|cublas|cublasLt|cudnn[A-Za-z_]*|nccl|nvrtc[A-Za-z_.-]*|nvJitLink|cufft|cufftw|curand|cusparse|cusolver[A-Za-z]*|nvToolsExt|nvtx3interop|cupti|nvidia-[A-Za-z_-]+)\.so'
# Loaded only by tools around the binaries (stdbuf), never by ditrun itself.
TOOL_LIBS='^libstdbuf\.so$'

say() { printf '%s\n' "$*"; }
warn() { printf 'gpu_check: WARNING: %s\n' "$*" >&2; }
die() { printf 'gpu_check: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }
# Temporary directories, removed however the script ends.
TEMPS=()
new_temp() { local d; d=$(mktemp -d); TEMPS+=("$d"); printf -v "$1" '%s' "$d"; }  # VAR
cleanup() { local d; for d in "${TEMPS[@]}"; do rm -rf "$d"; done; }
human() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || echo "$1 bytes"; }

# ---------------------------------------------------------------------------------------
# Shared helpers: dependencies, test data, source hash
# ---------------------------------------------------------------------------------------

# `ldd`, or the dynamic loader's --list where ldd itself is absent (it is a script of libc-bin).
ldd_cmd() {
  if command -v ldd >/dev/null 2>&1; then ldd "$1"
  else /lib64/ld-linux-x86-64.so.2 --list "$1"; fi
}

# Every dependency of an ELF file, one "NAME PATH" line each (PATH "not-found" when unresolved),
# and "VERSION <message>" for each symbol version the loader could not satisfy.
resolve_deps() {
  ldd_cmd "$1" 2>&1 | awk '
    /version `[^'"'"']*'"'"' not found/ { print "VERSION " $0; next }
    / => not found/ { print $1, "not-found"; next }
    / => \// { print $1, $3; next }
    /^[ \t]+\// { n = $1; sub(".*/", "", n); print n, $1; next }
    /^[ \t]+linux-vdso/ { next }' || true
}

# The source files that decide what the GPU run needs: the GPU tests, the helpers they share
# with the unit tests, and the GPU bench.
gpu_sources() {
  local f
  for f in "$1"/tests/gpu/*.cpp "$1"/tests/gpu/*.h "$1"/tests/gpu/*.cu "$1"/tests/gpu/CMakeLists.txt \
    "$1"/tests/unit/reference_case.* "$1"/tests/unit/test_paths.* "$1"/bench/*gpu*; do
    [ -f "$f" ] && printf '%s\n' "$f"
  done
  return 0
}

# One hash of those sources: a bundle made from other sources is stale.
sources_hash() {
  local root=$1
  gpu_sources "$root" | sort | while read -r f; do printf '%s\n' "${f#"$root"/}"; cat "$f"; done | sha256sum | cut -c1-16
}

# The files under testdata/ that the GPU tests open, read from their sources: literal
# testdata("...") paths; (case, GGUF variant) pairs written together, as in
# {"flux-tiny-dev", "Q8_0"}, whether or not the files exist (so a bundle that lacks one is
# caught even when checked against itself); and every reference case whose name appears as
# a string, with reference_case.cpp's layout: CASE.safetensors, CASE.config.json,
# CASE.io.safetensors, and CASE-VARIANT.gguf + CASE-VARIANT.io.safetensors for each variant
# string that exists.
gpu_test_data() {
  local root=$1 td=$2 s v
  local -a srcs strings
  mapfile -t srcs < <(gpu_sources "$root")
  [ "${#srcs[@]}" -gt 0 ] || die "no GPU test sources under $root/tests/gpu"
  grep -ohE 'testdata\("[^"]+"\)' "${srcs[@]}" | sed -E 's/^testdata\("(.*)"\)$/\1/' || true
  grep -ohE '"[a-z0-9]+(-[a-z0-9]+)+", *"I?Q[0-9]+_[A-Z0-9_]+"' "${srcs[@]}" | tr -d '" ' |
    while IFS=, read -r s v; do
      printf 'reference/%s\n' "$s.config.json" "$s-$v.gguf" "$s-$v.io.safetensors"
    done || true
  mapfile -t strings < <(grep -ohE '"[A-Za-z0-9_.-]+"' "${srcs[@]}" | tr -d '"' | sort -u || true)
  for s in "${strings[@]}"; do
    [ -f "$td/reference/$s.config.json" ] || continue
    for v in safetensors config.json io.safetensors; do
      [ -f "$td/reference/$s.$v" ] && echo "reference/$s.$v"
    done
    for v in "${strings[@]}"; do
      if [ -f "$td/reference/$s-$v.gguf" ]; then
        echo "reference/$s-$v.gguf"
        [ -f "$td/reference/$s-$v.io.safetensors" ] && echo "reference/$s-$v.io.safetensors"
      fi
    done
  done
  return 0
}

# ---------------------------------------------------------------------------------------
# --bundle: binaries + non-CUDA libraries + test data -> gpu-bundle.tar.xz
# ---------------------------------------------------------------------------------------

binary_src() { echo "$BUILD_DIR/${BINARY_PATH[$1]}"; }

build_binaries() {
  [ -f "$BUILD_DIR/build.ninja" ] || [ -f "$BUILD_DIR/Makefile" ] ||
    die "$BUILD_DIR is not a configured build tree (run scripts/setup.sh first)"
  local -a targets=(ditrun ditrun_gpu_tests)
  # The bench target exists only once its CMake code is in; asking for an unknown target fails.
  if grep -qE '^build ditrun_bench_gpu: phony' "$BUILD_DIR/build.ninja" 2>/dev/null ||
    grep -qE '^ditrun_bench_gpu:' "$BUILD_DIR/Makefile" 2>/dev/null; then
    targets+=(ditrun_bench_gpu)
  else
    warn "the build tree has no ditrun_bench_gpu target yet: building without it"
  fi
  say "== cmake --build $BUILD_DIR --target ${targets[*]} (incremental)"
  cmake --build "$BUILD_DIR" --target "${targets[@]}" || die "the build failed (see above)"
}

make_bundle() {
  local no_build=$1
  [ "$no_build" = 1 ] || build_binaries
  [ -d "$TESTDATA_SRC" ] || die "no test data at $TESTDATA_SRC (../shared/testdata)"
  local tmp stage name src dep path
  new_temp tmp
  stage="$tmp/gpu-bundle"
  mkdir -p "$stage/bin" "$stage/lib/compat" "$stage/testdata"

  local -A libs=() cuda=()
  local -a missing_bins=()
  say "== binaries (debug sections stripped; symbols kept so sanitizer backtraces name functions)"
  for name in "${BINARIES[@]}"; do
    src=$(binary_src "$name")
    if [ ! -f "$src" ]; then
      if [[ "$OPTIONAL_BINARIES" == *" $name "* ]]; then
        missing_bins+=("$name")
        warn "************************************************************************"
        warn "$name is MISSING ($src): the bundle goes without it and the bench part"
        warn "of the GPU run will report it missing. Build it and re-run --bundle."
        warn "************************************************************************"
        continue
      fi
      die "$name is missing ($src): build it first (or drop --no-build)"
    fi
    readelf -h "$src" >/dev/null 2>&1 || die "$src is not a complete ELF file (a link still running?)"
    strip --strip-debug -o "$stage/bin/$name" "$src"
    say "  $name  $(human "$(stat -c %s "$stage/bin/$name")")"
    while read -r dep path; do
      [ "$dep" = VERSION ] && die "$name: $path"
      [ "$path" = not-found ] && die "$name needs $dep, which this machine does not resolve either"
      if [[ "$dep" =~ $CUDA_LIBS ]] || [[ "$path" == /usr/local/cuda* ]]; then cuda[$dep]=$path; continue; fi
      if [[ "$dep" =~ $COMPAT_LIBS ]]; then
        cp -L "$path" "$stage/lib/compat/$dep"
        continue
      fi
      [[ "$dep" =~ $BASE_LIBS ]] && continue
      libs[$dep]=$path
    done < <(resolve_deps "$src")
  done

  say "== libraries carried in lib/ (CUDA ones are found on the GPU machine)"
  for dep in $(printf '%s\n' "${!libs[@]}" | sort); do
    cp -L "${libs[$dep]}" "$stage/lib/$dep"
    chmod u+w "$stage/lib/$dep"
    say "  $dep  <- $(readlink -f "${libs[$dep]}")  $(human "$(stat -c %s "$stage/lib/$dep")")"
  done
  say "  left out (CUDA): $(printf '%s\n' "${!cuda[@]}" | sort | tr '\n' ' ')"
  say "  lib/compat (used only if the machine's libstdc++ is older): $(ls "$stage/lib/compat" | tr '\n' ' ')"

  say "== test data the GPU tests open (from tests/gpu sources)"
  local rel n=0
  while read -r rel; do
    [ -f "$TESTDATA_SRC/$rel" ] || die "the GPU tests open testdata/$rel, which $TESTDATA_SRC lacks"
    mkdir -p "$stage/testdata/$(dirname "$rel")"
    cp "$TESTDATA_SRC/$rel" "$stage/testdata/$rel"
    echo "$rel" >>"$stage/data.list"
    n=$((n + 1))
  done < <(gpu_test_data "$REPO" "$TESTDATA_SRC" | sort -u)
  [ "$n" -gt 0 ] || die "found no test data in the GPU test sources"
  say "  $n files, $(human "$(du -sb "$stage/testdata" | cut -f1)")"

  write_manifest "$stage" "${missing_bins[*]:-}"

  say "== compressing (xz -9)"
  local out="$BUNDLE_FILE"
  tar -C "$tmp" --owner=0 --group=0 -cf - gpu-bundle | xz -9 -T2 >"$out.tmp.$$"
  mv "$out.tmp.$$" "$out"
  local size
  size=$(stat -c %s "$out")
  say "  uncompressed $(human "$(du -sb "$stage" | cut -f1)"); biggest members:"
  (cd "$stage" && find . -type f -printf '%s %P\n' | sort -rn | head -8 |
    while read -r b p; do printf '    %10s  %s\n' "$(human "$b")" "$p"; done)
  if [ "$size" -gt "$BUNDLE_LIMIT" ]; then
    rm -f "$out"
    die "the bundle is $(human "$size"), over the 64 MiB the GPU tool carries (biggest members above)"
  fi
  say "== $out: $(human "$size") ($size bytes, limit $BUNDLE_LIMIT)"
}

write_manifest() {
  local stage=$1 missing=$2 name
  {
    echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
    echo "commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
      "($(git -C "$REPO" --no-optional-locks status --porcelain 2>/dev/null | wc -l) files changed in the working tree)"
    echo "sources: $(sources_hash "$REPO")"
    echo "glibc: $(ldd --version 2>/dev/null | head -1)"
    for name in "${BINARIES[@]}"; do
      if [ -f "$stage/bin/$name" ]; then
        echo "binary: $name built $(date -u -r "$(binary_src "$name")" +%Y-%m-%dT%H:%M:%SZ)" \
          "sha256 $(sha256sum "$stage/bin/$name" | cut -c1-16)"
      fi
    done
    [ -z "$missing" ] || echo "missing: $missing"
  } >"$stage/MANIFEST"
}

# ---------------------------------------------------------------------------------------
# The on-GPU run (also the simulated run of --dry-run, with EXPECT_NO_GPU=1)
# ---------------------------------------------------------------------------------------

ROWS=()         # summary rows: part|result|seconds|note
FAILED=0
RUN_START=$(now)
BUDGET=230
EXPECT_NO_GPU=0

row() {  # part result seconds note
  ROWS+=("$1|$2|$3|$4")
  case "$2" in FAIL*) FAILED=1 ;; esac
  say "-- $1: $2${4:+ ($4)}"
}
left() { echo $((BUDGET - ($(now) - RUN_START))); }

# Seconds a part may run: its cap, or what is left of the budget less a margin for the
# summary; empty when less than the part's minimum is left (the part is then skipped).
part_time() {  # cap min
  local l=$(($(left) - 15))  # the summary, and timeout's 10 s grace before a kill
  [ "$l" -ge "$2" ] || return 1
  echo $((l < $1 ? l : $1))
}
skip_for_budget() { row "$1" "SKIP" 0 "budget spent: $(($(left) - 15)) s usable of $BUDGET s, it needs at least $2 s"; }

# Run a command under a timeout, its stdout+stderr tee'd to a log; returns the command's
# status (124/137: timed out). Line-buffered so a killed run keeps everything it printed.
# CONSOLE_DROP (a regex) keeps matching lines out of the console copy only: the GPU tool
# returns just the last 12,000 characters, and the summary must be among them.
logged() {  # seconds log cmd...
  local t=$1 log=$2 rc
  shift 2
  local -a buf=()
  command -v stdbuf >/dev/null 2>&1 && buf=(stdbuf -oL -eL)
  set +e
  if [ -n "${CONSOLE_DROP:-}" ]; then
    timeout -k 10 "$t" "${buf[@]}" "$@" 2>&1 | tee "$log" | grep --line-buffered -vE "$CONSOLE_DROP"
  else
    timeout -k 10 "$t" "${buf[@]}" "$@" 2>&1 | tee "$log"
  fi
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

# The directories the GPU machine finds CUDA libraries in: the nvidia-* wheels of the
# python3 on PATH (PyTorch's cuDNN, cuBLAS, NCCL, runtime), then the toolkit. Never the
# toolkit's stubs/ (a stub libcuda would hide the driver) nor compat/.
nvidia_wheel_dirs() {
  command -v python3 >/dev/null 2>&1 || return 0
  python3 - <<'EOF' 2>/dev/null || true
import glob, os, site
roots = []
for get in (site.getsitepackages, site.getusersitepackages):
    try:
        r = get()
        roots += [r] if isinstance(r, str) else list(r)
    except Exception:
        pass
try:
    import nvidia
    roots += [os.path.dirname(p) for p in nvidia.__path__]
except Exception:
    pass
seen = []
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib")) + glob.glob(os.path.join(r, "nvidia", "*", "lib64"))):
        d = os.path.realpath(d)
        if os.path.isdir(d) and d not in seen:
            seen.append(d)
            print(d)
EOF
}
cuda_toolkit_dirs() {
  local d seen=" "
  for d in ${CUDA_HOME:+"$CUDA_HOME"/lib64 "$CUDA_HOME"/lib "$CUDA_HOME"/targets/x86_64-linux/lib} \
    /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
    /usr/local/cuda-*/lib64 /usr/local/cuda-*/targets/x86_64-linux/lib; do
    [ -d "$d" ] || continue
    d=$(readlink -f "$d")
    [[ "$seen" == *" $d "* ]] && continue
    seen+="$d "
    echo "$d"
  done
}

# Every resolved dependency must come from the bundle, a CUDA directory, or the base system
# (or be the driver's libcuda, wherever it is). The GPU machine has none of this machine's
# Debian packages, so in the dry run a library found elsewhere would be missing there.
check_origin() {  # name path -> prints a problem line, or nothing
  local name=$1 path=$2 dir d
  [[ "$name" =~ $BASE_LIBS ]] && return 0
  [[ "$name" =~ $TOOL_LIBS ]] && return 0
  [[ "$name" =~ ^(libcuda\.so|libnvidia-) ]] && return 0
  dir=$(dirname "$path")
  for d in "$BUNDLE_LIB" "$BUNDLE_LIB/compat" "${CUDA_DIRS[@]}"; do
    [ "$dir" = "$d" ] || [ "$(readlink -f "$dir")" = "$(readlink -f "$d")" ] && return 0
  done
  echo "$name (found here at $path, outside the bundle and the CUDA directories)"
}

# ldd over every bundled binary and library: stops the run if anything is missing.
check_libraries() {
  local t0 f dep path problems="" versions="" origins="" n=0
  t0=$(now)
  for f in "$B"/bin/* "$BUNDLE_LIB"/*.so*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    while read -r dep path; do
      if [ "$dep" = VERSION ]; then versions+="  $path"$'\n'; continue; fi
      if [ "$path" = not-found ]; then problems+="  $dep (needed by ${f#"$B"/})"$'\n'; continue; fi
      if [ "$EXPECT_NO_GPU" = 1 ]; then
        local o
        o=$(check_origin "$dep" "$path")
        [ -z "$o" ] || origins+="  $o (needed by ${f#"$B"/})"$'\n'
      fi
    done < <(resolve_deps "$f")
  done
  {
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    for f in "$B"/bin/*; do echo "== ldd ${f#"$B"/}"; ldd_cmd "$f" 2>&1 || true; done
  } >"$OUT/env.txt"
  if [ -n "$problems$versions$origins" ]; then
    [ -z "$problems" ] || say "missing libraries:"$'\n'"${problems%$'\n'}"
    [ -z "$versions" ] || say "symbol versions this machine lacks (built against a newer glibc?):"$'\n'"${versions%$'\n'}"
    [ -z "$origins" ] || say "libraries the GPU machine would not have:"$'\n'"${origins%$'\n'}"
    say "searched: $LD_LIBRARY_PATH"
    row libraries FAIL $(($(now) - t0)) "unresolved dependencies (listed above)"
    return 1
  fi
  row libraries PASS $(($(now) - t0)) "$n files, every dependency resolved"
}

# A binary's --help or listing must run: it proves the loader found everything it needs at
# start-up, not only what ldd sees. In the dry run, LD_DEBUG lists every object actually
# loaded (dlopen'ed ones too), each checked like check_origin.
starts() {  # label cmd...
  local label=$1 dbg rc=0 bad=""
  shift
  if [ "$EXPECT_NO_GPU" = 1 ]; then
    dbg=$(mktemp -d)
    LD_DEBUG=libs LD_DEBUG_OUTPUT="$dbg/ld" "$@" >"$dbg/out" 2>&1 || rc=$?
    local path o
    while read -r path; do
      o=$(check_origin "$(basename "$path")" "$path")
      [ -z "$o" ] || bad+="$o; "
    done < <(sed -n 's/.*calling init: //p' "$dbg"/ld.* 2>/dev/null | sort -u)
    rm -rf "$dbg"
    [ -z "$bad" ] || { say "  $label loaded: $bad"; return 1; }
  else
    "$@" >/dev/null 2>&1 || rc=$?
  fi
  return "$rc"
}

part_startup() {
  local t0 bad=""
  t0=$(now)
  starts "ditrun --help" "$B/bin/ditrun" --help || bad+="ditrun --help; "
  starts "ditrun_gpu_tests --gtest_list_tests" "$B/bin/ditrun_gpu_tests" --gtest_list_tests || bad+="ditrun_gpu_tests --gtest_list_tests; "
  if [ -f "$B/bin/ditrun_bench_gpu" ]; then
    starts "ditrun_bench_gpu --help" "$B/bin/ditrun_bench_gpu" --help || bad+="ditrun_bench_gpu --help; "
  fi
  if [ -n "$bad" ]; then row startup FAIL $(($(now) - t0)) "did not start: $bad"; return 1; fi
  row startup PASS $(($(now) - t0)) "every bundled binary starts"
}

# Every test data file the current sources need is in the bundle, and the bundle was made
# from these sources (else its binaries are stale: a warning, the run goes on).
part_data() {
  local t0 rel missing="" n=0 expect
  t0=$(now)
  expect=$(cat "$B/data.list")
  # The outer dry run derives the list afresh from ../shared and passes it in.
  [ -z "${GPU_CHECK_EXPECT_DATA:-}" ] || expect+=$'\n'"$(cat "$GPU_CHECK_EXPECT_DATA")"
  while read -r rel; do
    [ -n "$rel" ] || continue
    n=$((n + 1))
    [ -f "$B/testdata/$rel" ] || missing+="$rel "
  done < <(printf '%s\n' "$expect" "$(gpu_test_data "$REPO" "$B/testdata")" | sort -u)
  local note="$n files present"
  local made now_hash
  made=$(sed -n 's/^sources: //p' "$B/MANIFEST")
  now_hash=$(sources_hash "$REPO")
  if [ "$made" != "$now_hash" ]; then
    warn "the GPU test/bench sources changed since the bundle was made (bundle $made, tree $now_hash): its binaries may be stale"
    note+="; bundle made from other sources (stale?)"
  fi
  if [ -n "$missing" ]; then row testdata FAIL $(($(now) - t0)) "missing from the bundle: $missing"; return 1; fi
  row testdata PASS $(($(now) - t0)) "$note"
}

part_smoke() {
  local t0 t rc=0 d
  t=$(part_time 60 20) || { skip_for_budget smoke 20; return 0; }
  t0=$(now)
  say "== ditrun devices"
  logged 20 "$OUT/devices.txt" "$B/bin/ditrun" devices || rc=$?
  if [ "$rc" -ne 0 ]; then row devices FAIL $(($(now) - t0)) "ditrun devices exited $rc"
  elif [ "$EXPECT_NO_GPU" = 1 ]; then row devices PASS $(($(now) - t0)) "runs; no GPU here, as expected"
  elif grep -qE '^gpus +none' "$OUT/devices.txt"; then row devices FAIL $(($(now) - t0)) "ditrun sees no GPU: $(grep -E '^gpus' "$OUT/devices.txt")"
  else row devices PASS $(($(now) - t0)) "$(grep -m1 '^cuda:0' "$OUT/devices.txt" | tr -s ' ' | cut -c1-100)"
  fi

  t0=$(now)
  d=$(mktemp -d)
  # From a prompt: the built-in T5 and CLIP are placed on the GPU too (resident on cuda:0).
  local -a cmd=("$B/bin/ditrun" run --backend cuda --out "$d" --width 256 --height 256 --steps 4 --prompt "a red fox")
  say "== ${cmd[*]#"$B/"}"
  rc=0
  logged "$((t - 20 > 20 ? t - 20 : 20))" "$OUT/smoke.log" "${cmd[@]}" || rc=$?
  if [ "$EXPECT_NO_GPU" = 1 ]; then
    # Here the CUDA backend must refuse cleanly (exit 2, one line), and the CPU backend must
    # render: the whole run path loads and works with the bundled libraries.
    if [ "$rc" -ne 2 ] || ! grep -q 'no usable GPU' "$OUT/smoke.log"; then
      row smoke FAIL $(($(now) - t0)) "--backend cuda without a GPU: exit $rc, expected 2 with 'no usable GPU'"
    else
      rc=0
      logged 60 "$OUT/smoke-cpu.log" "$B/bin/ditrun" run --backend cpu --out "$d" --width 256 --height 256 --steps 4 \
        --prompt "a red fox" || rc=$?
      if [ "$rc" -eq 0 ] && [ -s "$d/image.png" ]; then
        row smoke PASS $(($(now) - t0)) "cuda refused cleanly (no GPU); the cpu backend rendered image.png"
      else
        row smoke FAIL $(($(now) - t0)) "--backend cpu exited $rc"
      fi
    fi
  elif [ "$rc" -eq 0 ] && [ -s "$d/image.png" ]; then
    cp "$d/image.png" "$OUT/smoke.png"
    row smoke PASS $(($(now) - t0)) "built-in tiny Flux from a prompt (encoders: $(grep -o 'text encoder t5: [a-z]* on [a-z0-9:]*' "$OUT/smoke.log" | head -1)), 256x256, 4 steps on cuda"
  else
    row smoke FAIL $(($(now) - t0)) "$( [ "$rc" -ge 124 ] && echo "timed out after ${t}s" || echo "exit $rc")"
  fi
  rm -rf "$d"
}

# gtest's per-test result lines end in "(N ms)"; counting them works on a log cut short.
count_results() { grep -cE "^\[ *$1 *\] .*\([0-9]+ ms\)\$" "$2" || true; }

part_tests() {
  local t t0 rc=0 log="$OUT/gpu_tests.log" filter=${TEST_FILTER:-}
  t=$(part_time 90 30) || { skip_for_budget tests 30; return 0; }
  t0=$(now)
  local -a cmd=("$B/bin/ditrun_gpu_tests" "--gtest_output=xml:$OUT/gpu_tests.xml")
  [ -z "$filter" ] || cmd+=("--gtest_filter=$filter")
  say "== ${cmd[*]#"$B/"} (timeout ${t}s)"
  # The console copy leaves out per-test progress (and, in the dry run, the expected skips).
  local drop=$TEST_PROGRESS
  [ "$EXPECT_NO_GPU" = 0 ] || drop+='|: Skipped$|^needs a CUDA GPU: |^\[  SKIPPED \]'
  DITRUN_TESTDATA_DIR="$B/testdata" DITRUN_BINARY="$B/bin/ditrun" CONSOLE_DROP="$drop" \
    logged "$t" "$log" "${cmd[@]}" || rc=$?
  local pass fail skip total nogpu
  pass=$(count_results OK "$log")
  fail=$(count_results FAILED "$log")
  skip=$(count_results SKIPPED "$log")
  total=$(sed -nE 's/^\[==========\] Running ([0-9]+) tests? .*/\1/p' "$log" | head -1)
  nogpu=$(grep -c 'needs a CUDA GPU:' "$log" || true)
  local counts="$pass passed, $fail failed, $skip skipped of ${total:-?}"
  local secs=$(($(now) - t0))
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    row tests FAIL "$secs" "timed out after ${t}s in $(grep '^\[ RUN ' "$log" | tail -1 | cut -c14-): $counts"
  elif [ "$EXPECT_NO_GPU" = 1 ]; then
    if [ "$fail" -eq 0 ] && [ "$skip" -gt 0 ] && [ "$nogpu" -ge "$skip" ] && [ "$rc" -eq 0 ]; then
      row tests PASS "$secs" "$counts; every skip says 'needs a CUDA GPU', as expected here"
    else
      row tests FAIL "$secs" "exit $rc, $counts ($nogpu skipped for want of a GPU)"
    fi
  elif [ "$rc" -ne 0 ] || [ "$fail" -gt 0 ] || [ "$skip" -gt 0 ] || [ "$pass" -eq 0 ] ||
    [ "$((pass + fail + skip))" != "${total:-x}" ]; then
    # A skip on the GPU machine means a test did not see the GPU (or a capability): a failure.
    [ "$skip" -eq 0 ] || say "skip reasons: $(grep -A1 -m3 ': Skipped$' "$log" | grep -v -e '^--$' -e ': Skipped$' | sort -u | tr '\n' ';')"
    [ "$fail" -eq 0 ] || grep -E '^\[  FAILED  \] .*\([0-9]+ ms\)$' "$log" | head -20
    row tests FAIL "$secs" "exit $rc, $counts"
  else
    row tests PASS "$secs" "$counts"
  fi
}

part_bench() {
  local t t0 rc=0
  if [ ! -x "$B/bin/ditrun_bench_gpu" ]; then
    if [ "$EXPECT_NO_GPU" = 1 ]; then row bench WARN 0 "ditrun_bench_gpu is not in the bundle (not built yet)"
    else row bench FAIL 0 "ditrun_bench_gpu is not in the bundle: rebuild it with --bundle"; fi
    return 0
  fi
  local -a cmd=("$B/bin/ditrun_bench_gpu" --markdown "$OUT/benchmarks.md" --json "$OUT/bench.json")
  [ -z "${BENCH_SECONDS:-}" ] || cmd+=(--seconds "$BENCH_SECONDS")
  [ -z "${BENCH_ONLY:-}" ] || cmd+=(--only "$BENCH_ONLY")
  # shellcheck disable=SC2206  # word splitting wanted: extra bench options, e.g. "--quick"
  [ -z "${BENCH_ARGS:-}" ] || cmd+=($BENCH_ARGS)
  if [ "$EXPECT_NO_GPU" = 1 ]; then
    say "a real run would: ${cmd[*]#"$B/"}"
    t0=$(now)
    "$B/bin/ditrun_bench_gpu" --help >"$OUT/bench.log" 2>&1 || rc=$?
    # Without a GPU the bench must refuse with one line (its whole start-up path loads).
    local rc2=0
    "${cmd[@]}" --quick >>"$OUT/bench.log" 2>&1 || rc2=$?
    if [ "$rc" -eq 0 ] && [ "$rc2" -ne 0 ] && grep -q 'no usable GPU' "$OUT/bench.log"; then
      row bench PASS $(($(now) - t0)) "--help runs; without a GPU it refuses cleanly (exit $rc2)"
    else
      row bench FAIL $(($(now) - t0)) "--help exited $rc; --quick without a GPU exited $rc2 (see bench.log)"
    fi
    return 0
  fi
  t=$(part_time 130 30) || { skip_for_budget bench 30; return 0; }
  t0=$(now)
  say "== ${cmd[*]#"$B/"} (timeout ${t}s)"
  DITRUN_TESTDATA_DIR="$B/testdata" logged "$t" "$OUT/bench.log" "${cmd[@]}" || rc=$?
  if [ "$rc" -eq 0 ] && [ -s "$OUT/benchmarks.md" ]; then
    row bench PASS $(($(now) - t0)) "$(grep -c '^|' "$OUT/benchmarks.md" || true) table lines in benchmarks.md"
  else
    row bench FAIL $(($(now) - t0)) "$( [ "$rc" -ge 124 ] && echo "timed out after ${t}s" || echo "exit $rc")$( [ -s "$OUT/benchmarks.md" ] || echo ', no benchmarks.md')"
  fi
}

find_sanitizer() {
  command -v compute-sanitizer 2>/dev/null && return 0
  local f
  for f in ${CUDA_HOME:+"$CUDA_HOME"/bin/compute-sanitizer} /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda/compute-sanitizer/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer; do
    [ -x "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

part_sanitizer() {
  local cs t t0 rc=0 log="$OUT/sanitizer.log"
  local -a args=(--tool memcheck --error-exitcode 99 --print-limit 30 "$B/bin/ditrun_gpu_tests"
    "--gtest_filter=$SANITIZER_FILTER" "--gtest_output=xml:$OUT/sanitizer_tests.xml")
  if ! cs=$(find_sanitizer); then
    row sanitizer SKIP 0 "compute-sanitizer not found"
    [ "$EXPECT_NO_GPU" = 0 ] || say "a real run would: compute-sanitizer ${args[*]#"$B/"}"
    return 0
  fi
  if [ "$EXPECT_NO_GPU" = 1 ]; then
    say "a real run would: $cs ${args[*]#"$B/"}"
    row sanitizer SKIP 0 "no GPU here"
    return 0
  fi
  t=$(part_time 90 40) || { skip_for_budget sanitizer 40; return 0; }
  t0=$(now)
  say "== compute-sanitizer ${args[*]#"$B/"} (timeout ${t}s)"
  DITRUN_TESTDATA_DIR="$B/testdata" DITRUN_BINARY="$B/bin/ditrun" CONSOLE_DROP=$TEST_PROGRESS \
    logged "$t" "$log" "$cs" "${args[@]}" || rc=$?
  local summary skip pass
  summary=$(grep -m1 -E 'ERROR SUMMARY: [0-9]+ error' "$log" || true)
  skip=$(count_results SKIPPED "$log")
  pass=$(count_results OK "$log")
  if [ "$rc" -eq 0 ] && [[ "$summary" == *"ERROR SUMMARY: 0 errors"* ]] && [ "$skip" -eq 0 ] && [ "$pass" -gt 0 ]; then
    row sanitizer PASS $(($(now) - t0)) "memcheck, $pass tests, 0 errors"
  else
    row sanitizer FAIL $(($(now) - t0)) "exit $rc; ${summary:-no error summary}; $pass passed, $skip skipped"
  fi
}

write_summary() {
  local r part result secs note
  {
    echo "## GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    local device=${DEVICE_LINE:-$(grep -m1 '^cuda:0' "$OUT/devices.txt" 2>/dev/null || echo 'no GPU seen')}
    echo "Device: $device. Bundle: $(sed -n 's/^commit: //p' "$B/MANIFEST" 2>/dev/null || echo '?')." \
      "Total $(($(now) - RUN_START)) s of a $BUDGET s budget.$( [ "$EXPECT_NO_GPU" = 1 ] && echo ' DRY RUN (no GPU; GPU tests expected to skip).')"
    echo
    echo "| part | result | seconds | note |"
    echo "|---|---|---:|---|"
    for r in "${ROWS[@]}"; do
      IFS='|' read -r part result secs note <<<"$r"
      echo "| $part | $result | $secs | ${note//|/\\|} |"
    done
    echo
    echo "Overall: $( [ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
  } >"$OUT/summary.md"
  say ""
  cat "$OUT/summary.md"
}

# The GPU machine may lack xz-utils (it has no Debian packages beyond the base image); its
# Python has lzma.
unxz_to_stdout() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
}

gpu_run() {
  local only=$1
  RUN_START=$(now)
  OUT=${OUT:-$REPO/gpu-check-out}
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  [ -f "$BUNDLE_FILE" ] || die "no bundle at $BUNDLE_FILE: make it with --bundle and carry it to the GPU machine"

  local work
  new_temp work
  trap 'say "gpu_check: aborted at line $LINENO"; row script FAIL 0 "aborted at line $LINENO"; write_summary; exit 1' ERR
  B="$work/gpu-bundle"
  BUNDLE_LIB="$B/lib"
  local t0
  t0=$(now)
  unxz_to_stdout "$BUNDLE_FILE" | tar -C "$work" -xf - || die "could not extract $BUNDLE_FILE"
  row extract PASS $(($(now) - t0)) "$(human "$(stat -L -c %s "$BUNDLE_FILE")") bundle"
  say "== bundle"
  sed 's/^/  /' "$B/MANIFEST"
  if grep -q '^missing:' "$B/MANIFEST"; then warn "the bundle lacks: $(sed -n 's/^missing: //p' "$B/MANIFEST")"; fi

  # The library path the binaries run with: bundle, [compat], nvidia wheels, toolkit, and on
  # the GPU machine whatever it already had (driver directories). The dry run drops the
  # inherited path so nothing of this machine's but the base system can be found.
  mapfile -t CUDA_DIRS < <(nvidia_wheel_dirs; cuda_toolkit_dirs)
  local base_path="" d
  for d in "${CUDA_DIRS[@]}"; do base_path+=":$d"; done
  local inherited=""
  [ "$EXPECT_NO_GPU" = 1 ] || inherited=${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH="$BUNDLE_LIB$base_path$inherited"
  # libstdc++/libgcc_s from the bundle only where the machine's copy lacks symbol versions.
  if ldd_cmd "$B/bin/ditrun" 2>&1 | grep -qE "version .(GLIBCXX|CXXABI|GCC)_[0-9.]+' not found"; then
    say "the machine's libstdc++ is older than the build's: using the bundle's lib/compat"
    export LD_LIBRARY_PATH="$BUNDLE_LIB:$BUNDLE_LIB/compat$base_path$inherited"
  fi
  say "== library path"
  tr ':' '\n' <<<"$LD_LIBRARY_PATH" | sed 's/^/  /'
  [ "${#CUDA_DIRS[@]}" -gt 0 ] || warn "no nvidia-* wheel or CUDA toolkit library directory found"

  say "== device"
  if command -v nvidia-smi >/dev/null 2>&1; then
    timeout 20 nvidia-smi 2>&1 | tee -a "$OUT/env.txt" || true
    DEVICE_LINE=$(timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1 || true)
  else
    say "nvidia-smi: not installed"
  fi
  say "device: ${DEVICE_LINE:-none seen by nvidia-smi}"

  # Nothing later can work if a library is missing: stop here with the list.
  if ! check_libraries; then
    write_summary
    exit 1
  fi
  part_startup || true
  part_data || true
  [[ ",$only," == *,smoke,* ]] && part_smoke
  [[ ",$only," == *,tests,* ]] && part_tests
  [[ ",$only," == *,bench,* ]] && part_bench
  [[ ",$only," == *,sanitizer,* ]] && part_sanitizer
  trap - ERR
  write_summary
  [ "$FAILED" = 0 ]
}

# ---------------------------------------------------------------------------------------
# --dry-run: the bundle, then the on-GPU run against it in a scratch copy, no GPU expected
# ---------------------------------------------------------------------------------------

dry_run() {
  local fresh=1 name src
  if [ -f "$BUNDLE_FILE" ]; then
    for name in "${BINARIES[@]}"; do
      src=$(binary_src "$name")
      [ ! -f "$src" ] || [ "$BUNDLE_FILE" -nt "$src" ] || fresh=0
    done
    [ "$BUNDLE_FILE" -nt "${BASH_SOURCE[0]}" ] || fresh=0
  else
    fresh=0
  fi
  if [ "$fresh" = 1 ]; then
    say "== reusing $BUNDLE_FILE (newer than the binaries and this script)"
    [ -f "$(binary_src ditrun_bench_gpu)" ] || warn "ditrun_bench_gpu is MISSING from the build: the bench part cannot be checked"
  else
    make_bundle 1
  fi
  local size
  size=$(stat -c %s "$BUNDLE_FILE")
  [ "$size" -le "$BUNDLE_LIMIT" ] || die "the bundle is $(human "$size"), over 64 MiB"

  # A scratch tree like the GPU machine's copy: the script, the sources it reads, the bundle.
  # No build/, no ../shared: a run that still found them would prove nothing.
  local s
  s=$(mktemp -d)  # kept: its out/ holds the simulated run's outputs
  mkdir -p "$s/repo/scripts" "$s/repo/tests" "$s/repo/bench" "$s/out"
  cp "${BASH_SOURCE[0]}" "$s/repo/scripts/gpu_check.sh"
  cp -r "$REPO/tests/gpu" "$s/repo/tests/gpu"
  mkdir -p "$s/repo/tests/unit"
  cp "$REPO"/tests/unit/reference_case.* "$REPO"/tests/unit/test_paths.* "$s/repo/tests/unit/"
  cp "$REPO"/bench/*gpu* "$s/repo/bench/" 2>/dev/null || true
  ln -s "$BUNDLE_FILE" "$s/repo/gpu-bundle.tar.xz"
  gpu_test_data "$REPO" "$TESTDATA_SRC" | sort -u >"$s/expected-data.list"

  say ""
  say "== simulated GPU run in $s/repo (OUT=$s/out)"
  local rc=0
  (cd "$s/repo" && env -u LD_LIBRARY_PATH OUT="$s/out" GPU_CHECK_EXPECT_DATA="$s/expected-data.list" \
    bash scripts/gpu_check.sh --expect-no-gpu "${PASS_ARGS[@]}") || rc=$?
  say ""
  say "dry run: bundle $(human "$size") of 64 MiB; outputs in $s/out: $(ls "$s/out" | tr '\n' ' ')"
  say "a real run: carry gpu-bundle.tar.xz and run 'bash scripts/gpu_check.sh' on the GPU machine"
  rm -rf "$s/repo"
  if [ "$rc" = 0 ]; then say "dry run: PASS"; else say "dry run: FAIL (see the summary above)"; fi
  return "$rc"
}

usage() { sed -n '2,/^set -E/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

main() {
  trap cleanup EXIT
  local mode=gpu no_build=0 only=smoke,tests,bench,sanitizer
  PASS_ARGS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --bundle) mode=bundle ;;
      --dry-run) mode=dry ;;
      --no-build) no_build=1 ;;
      --expect-no-gpu) EXPECT_NO_GPU=1 ;;
      --only) only=${2:?--only needs a list}; PASS_ARGS+=("$1" "$2"); shift ;;
      --seconds) BENCH_SECONDS=${2:?--seconds needs a number}; PASS_ARGS+=("$1" "$2"); shift ;;
      --bench-only) BENCH_ONLY=${2:?--bench-only needs a list}; PASS_ARGS+=("$1" "$2"); shift ;;
      --bench-args) BENCH_ARGS=${2?--bench-args needs a string}; PASS_ARGS+=("$1" "$2"); shift ;;
      --filter) TEST_FILTER=${2:?--filter needs a gtest filter}; PASS_ARGS+=("$1" "$2"); shift ;;
      --budget) BUDGET=${2:?--budget needs seconds}; PASS_ARGS+=("$1" "$2"); shift ;;
      --bundle-file) BUNDLE_FILE=$(readlink -f "${2:?--bundle-file needs a path}"); PASS_ARGS+=("$1" "$BUNDLE_FILE"); shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option $1 (see --help)" ;;
    esac
    shift
  done
  [[ "$BUDGET" =~ ^[0-9]+$ ]] || die "--budget takes whole seconds, not '$BUDGET'"
  local p
  for p in ${only//,/ }; do
    [[ " smoke tests bench sanitizer " == *" $p "* ]] || die "--only: unknown part '$p' (smoke, tests, bench, sanitizer)"
  done
  case "$mode" in
    bundle) make_bundle "$no_build" ;;
    dry) dry_run ;;
    gpu) gpu_run "$only" ;;
  esac
}

main "$@"

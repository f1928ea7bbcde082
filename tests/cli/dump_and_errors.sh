#!/usr/bin/env bash
# `ditrun dump` writes ggml's own dequantization of the test vectors (within 1 ulp), and bad
# input of every kind ends with one line naming the file and exit code 2, leaving no output.
set -euo pipefail
BIN=$1 DATA=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
V=$DATA/gguf/ggml-vectors.gguf
for type in q4_K q6_K q3_K q5_0 iq4_xs iq2_xxs iq1_m bf16; do
  "$BIN" dump "$V" "$type.weight" --out "$tmp/got.f32" > "$tmp/msg"
  grep -q "\[6, 512\]" "$tmp/msg"
  "$BIN" dump "$V" "$type.weight.expected" --out "$tmp/want.f32" > /dev/null
  python3 - "$tmp/got.f32" "$tmp/want.f32" "$type" <<'PY'
import struct, sys
def ints(path):
    data = open(path, "rb").read()
    return struct.unpack("<%di" % (len(data) // 4), data)
a, b = ints(sys.argv[1]), ints(sys.argv[2])
assert len(a) == len(b) == 6 * 512
worst = max(abs(x - y) for x, y in zip(a, b))   # same-sign floats: int distance = ulps
assert worst <= 1, (sys.argv[3], worst)
PY
done

expect_error() {  # expect_error PATTERN COMMAND...: exit 2, one stderr line matching PATTERN
  local pattern=$1; shift
  set +e; "$@" > /dev/null 2> "$tmp/err"; local rc=$?; set -e
  [ "$rc" = 2 ] || { echo "expected exit 2, got $rc: $*"; cat "$tmp/err"; exit 1; }
  [ "$(wc -l < "$tmp/err")" = 1 ] || { echo "expected one line: $*"; cat "$tmp/err"; exit 1; }
  grep -q -- "$pattern" "$tmp/err" || { echo "expected '$pattern' in:"; cat "$tmp/err"; exit 1; }
}
head -c 1000 "$DATA/reference/flux-tiny-dev-Q8_0.gguf" > "$tmp/truncated.gguf"
expect_error "truncated.gguf" "$BIN" inspect "$tmp/truncated.gguf"
head -c 20000 "$DATA/reference/flux-tiny-dev.safetensors" > "$tmp/cut.safetensors"
expect_error "cut.safetensors" "$BIN" inspect "$tmp/cut.safetensors"
expect_error "no tensor named 'nope'" "$BIN" dump "$V" nope --out "$tmp/x.f32"
[ ! -e "$tmp/x.f32" ] || { echo "a failed dump left an output file"; exit 1; }
expect_error "cannot open" "$BIN" inspect "$tmp/missing.gguf"
expect_error "unknown weight encoding 'q9_9'" "$BIN" synth --arch flux --preset tiny --weights q9_9 --out "$tmp/a.gguf"
expect_error "GGUF cannot hold" "$BIN" synth --arch flux --preset tiny --weights fp8 --out "$tmp/a.gguf"
[ -z "$(ls "$tmp" | grep -E '^a\.gguf')" ] || { echo "a failed synth left output"; exit 1; }
echo "dump_and_errors: ok"

#!/usr/bin/env bash
# Wan's official solvers through `ditrun run` (the executor's step loop): the wan21-tiny-t2v
# model from the official loops' noise and prompt embeddings, `--sampler unipc` and `dpm++`
# with 6 steps, shift 5, cfg 5, reproduce the official final latent within 1e-3; a 2-stage
# mpirun pipeline gives the same bits as one process. An unknown sampler fails the job in one
# line naming it.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
LIB=$(cd "$(dirname "$0")/lib" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
PYTHONPATH="$LIB" python3 - "$R" <<'PY'
import sys
from safetensors_io import raw_tensors, write_f32
ref = sys.argv[1]
for case in ["unipc", "dpmpp"]:
    io = raw_tensors(f"{ref}/wan21-tiny-{case}.io.safetensors")
    def item(name):  # batch item 0: the shape without the batch dim, the same bytes
        _, shape, raw = io[name]
        return shape[1:], raw
    write_f32(f"noise-{case}.safetensors", {"noise": item("sample.noise")})
    write_f32(f"cond-{case}.safetensors", {"context": item("in.context"), "context_neg": item("in.context_neg")})
    write_f32(f"want-{case}.safetensors", {"latent": item("sample.latent")})
PY
compare() {
  PYTHONPATH="$LIB" python3 - "$1" "$2" "$3" <<'PY'
import sys
from safetensors_io import read
def latent(path):
    return read(path)["latent"][1]
a, b, tol = latent(sys.argv[1]), latent(sys.argv[2]), float(sys.argv[3])
worst = max(abs(x - y) for x, y in zip(a, b))
assert len(a) == len(b) and worst <= tol, f"{sys.argv[1]} vs {sys.argv[2]}: max |diff| {worst}"
print(f"{sys.argv[1]}: max |diff| {worst:.2e}")
PY
}
for case in unipc dpmpp; do
  sampler=$([ $case = unipc ] && echo unipc || echo "dpm++")
  args=("$R/wan21-tiny-t2v.safetensors" --config "$R/wan21-tiny-t2v.config.json" --noise "noise-$case.safetensors"
        --cond "cond-$case.safetensors" --sampler "$sampler" --steps 6 --shift 5 --cfg 5 --id "$case")
  "$BIN" --log-level warn run "${args[@]}" --out one || fail "$sampler run"
  compare "one/$case.safetensors" "want-$case.safetensors" 1e-3
  if command -v mpirun >/dev/null; then
    mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2 \
      "$BIN" --log-level warn run "${args[@]}" --mode pipeline --out two || fail "$sampler pipeline"
    compare "one/$case.safetensors" "two/$case.safetensors" 0
  fi
done
if "$BIN" run "$R/wan21-tiny-t2v.safetensors" --config "$R/wan21-tiny-t2v.config.json" --noise noise-unipc.safetensors \
     --cond cond-unipc.safetensors --sampler heun --out bad 2> bad.txt; then fail "an unknown sampler"; fi
grep -q "sampler: 'heun' is not available (available: euler, unipc, dpm++)" bad.txt || { cat bad.txt; fail "message"; }
echo OK

#!/usr/bin/env bash
# Wan's official solvers through `ditrun run` (the executor's step loop): the wan21-tiny-t2v
# model from the official loops' noise and prompt embeddings, `--sampler unipc` and `dpm++`
# with 6 steps, shift 5, cfg 5, reproduce the official final latent within 1e-3; a 2-stage
# mpirun pipeline gives the same bits as one process. An unknown sampler or scheduler fails the
# job in one line naming it. ComfyUI's samplers and schedulers (checked against ComfyUI in
# comfy_samplers_test.cpp) run through the executor, a pipeline bit-identical to one process.
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
compare() { PYTHONPATH="$LIB" python3 "$LIB/compare_latents.py" "$@"; }
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
grep -q "sampler: 'heun' is not available (available: euler, unipc, dpm++, dpmpp_2m, uni_pc, uni_pc_bh2)" bad.txt || { cat bad.txt; fail "message"; }
if "$BIN" run "$R/wan21-tiny-t2v.safetensors" --config "$R/wan21-tiny-t2v.config.json" --noise noise-unipc.safetensors \
     --cond cond-unipc.safetensors --scheduler karras --out bad 2> bad.txt; then fail "an unknown scheduler"; fi
grep -q "scheduler: 'karras' is not available (available: model, simple, normal, beta, sgm_uniform)" bad.txt || { cat bad.txt; fail "scheduler message"; }

# ComfyUI's samplers and schedulers through the executor: a job file mixing them, in one
# process and in a 2-stage pipeline, bit-identical.
cat > comfy.jsonl <<'EOF'
{"id": "uni_pc-beta", "cond": "cond-unipc.safetensors", "noise": "noise-unipc.safetensors", "sampler": "uni_pc", "scheduler": "beta", "steps": 5, "shift": 5, "cfg": 5}
{"id": "dpmpp_2m-normal", "cond": "cond-unipc.safetensors", "noise": "noise-unipc.safetensors", "sampler": "dpmpp_2m", "scheduler": "normal", "steps": 5, "shift": 5, "cfg": 5}
{"id": "euler-sgm", "cond": "cond-unipc.safetensors", "noise": "noise-unipc.safetensors", "sampler": "euler", "scheduler": "sgm_uniform", "steps": 5, "shift": 5, "cfg": 5}
EOF
"$BIN" --log-level warn run "$R/wan21-tiny-t2v.safetensors" --config "$R/wan21-tiny-t2v.config.json" --jobs comfy.jsonl --out comfy-one || fail "comfy samplers"
if command -v mpirun >/dev/null; then
  mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2 \
    "$BIN" --log-level warn run "$R/wan21-tiny-t2v.safetensors" --config "$R/wan21-tiny-t2v.config.json" --jobs comfy.jsonl \
    --mode pipeline --out comfy-two || fail "comfy samplers pipeline"
  for id in uni_pc-beta dpmpp_2m-normal euler-sgm; do compare "comfy-one/$id.safetensors" "comfy-two/$id.safetensors" 0; done
fi
echo OK

#!/usr/bin/env bash
# synth → quantize → inspect round trips through both containers and every family of
# encoding; quantize of a real reference checkpoint keeps its architecture and shapes.
set -euo pipefail
BIN=$1 DATA=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$BIN" synth --arch wan --preset tiny --weights bf16 --seed 3 --out "$tmp/wan.safetensors" 2> /dev/null
for to in q8_0 q4_K q5_0 f16; do
  "$BIN" quantize "$tmp/wan.safetensors" "$tmp/wan-$to.gguf" --to "$to" 2> /dev/null
  "$BIN" inspect "$tmp/wan-$to.gguf" --json > "$tmp/$to.json"
done
for to in fp8 fp8-scaled fp8-block64 bf16; do
  "$BIN" quantize "$tmp/wan.safetensors" "$tmp/wan-$to.safetensors" --to "$to" 2> /dev/null
  "$BIN" inspect "$tmp/wan-$to.safetensors" --json > "$tmp/$to.json"
done
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def load(n):
    j = json.load(open(f"{d}/{n}.json")); return j, {t["name"]: t for t in j["tensors"]}
ref, rt = load("bf16")
for n in ["q8_0", "q4_K", "q5_0", "f16", "fp8", "fp8-scaled", "fp8-block64"]:
    j, t = load(n)
    assert j["architecture"] == "wan" and j["config"]["params"] == ref["config"]["params"], n
    assert set(t) == set(rt), n   # scale tensors fold into their weights
    for k in rt: assert t[k]["shape"] == rt[k]["shape"], (n, k)
_, t = load("q5_0"); assert t["blocks.0.ffn.0.weight"]["type"] == "q5_0" and t["blocks.0.modulation"]["type"] == "f32"
_, t = load("q4_K"); assert t["blocks.0.ffn.0.weight"]["type"] == "f16"   # 96-wide rows: K-quant fallback
_, t = load("fp8-scaled"); assert t["blocks.0.self_attn.q.weight"]["encoding"] == "scaled_fp8"
_, t = load("fp8-block64"); w = t["blocks.0.ffn.2.weight"]   # [96, 160]: 160 % 64 != 0 -> per-row scales
assert w["encoding"] == "block_fp8" and w["scale_count"] == 96, w
_, t = load("fp8"); assert t["blocks.0.self_attn.q.weight"]["type"] == "f8_e4m3fn" and t["head.head.weight"]["type"] == "bf16"
PY
# A real reference checkpoint converts with its architecture and shapes intact.
"$BIN" quantize "$DATA/reference/flux-tiny-dev.safetensors" "$tmp/flux-q8.gguf" --to q8_0 \
  --config "$DATA/reference/flux-tiny-dev.config.json" 2> /dev/null
"$BIN" inspect "$tmp/flux-q8.gguf" --json > "$tmp/fq.json"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1])); t = {x["name"]: x for x in j["tensors"]}
assert j["architecture"] == "flux" and j["config"]["params"]["axes_dim"] == [4, 14, 14]
assert t["double_blocks.0.img_mlp.0.weight"]["type"] == "q8_0" and t["img_in.weight"]["type"] == "bf16"' "$tmp/fq.json"
echo "synth_quantize: ok"

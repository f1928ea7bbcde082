#!/usr/bin/env bash
# `ditrun inspect` on the shared reference models names the right architecture, tensors,
# shapes and storage types, for safetensors and GGUF alike.
set -euo pipefail
BIN=$1 DATA=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() {  # check FILE PYTHON-ASSERTIONS (j = the --json document, t = tensors by name)
  "$BIN" inspect "$1" --json > "$tmp/out.json"
  python3 - "$tmp/out.json" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); t = {x["name"]: x for x in j["tensors"]}
exec(sys.argv[2])
PY
  "$BIN" inspect "$1" > /dev/null  # the table form runs too
}
R=$DATA/reference
check "$R/flux-tiny-dev.safetensors" '
assert j["architecture"] == "flux" and j["format"] == "safetensors"
assert j["config"]["params"]["guidance_embed"] is True and j["config"]["params"]["depth"] == 2
assert t["double_blocks.0.img_attn.qkv.weight"]["shape"] == [384, 128] and t["double_blocks.0.img_attn.qkv.weight"]["type"] == "bf16"
assert [u["name"] for u in j["units"]] == ["prologue", "double_blocks.0", "double_blocks.1", "single_blocks.0", "single_blocks.1", "epilogue"]
assert sum(u["bytes"] for u in j["units"]) == j["total_bytes"]'
check "$R/flux-tiny-schnell.safetensors" '
assert j["architecture"] == "flux" and j["config"]["params"]["guidance_embed"] is False
assert j["config"]["params"]["depth"] == 1 and j["config"]["params"]["depth_single_blocks"] == 3'
check "$R/flux-tiny-dev-Q4_K.gguf" '
assert j["architecture"] == "flux" and j["format"] == "gguf"
assert t["double_blocks.0.img_mlp.2.weight"]["type"] == "q4_K" and t["double_blocks.0.img_mlp.2.weight"]["shape"] == [128, 512]
assert t["double_blocks.0.img_mlp.0.weight"]["type"] == "f16"   # rows of 128: K-quant fallback
assert t["img_in.weight"]["type"] == "bf16" and t["img_in.bias"]["type"] == "f32"'
check "$R/flux-tiny-dev-Q8_0.gguf" '
assert t["double_blocks.1.txt_mlp.0.weight"]["type"] == "q8_0" and t["double_blocks.1.txt_mlp.0.weight"]["encoding"] == "gguf"'
check "$R/wan21-tiny-t2v.safetensors" '
assert j["architecture"] == "wan" and j["config"]["params"]["dim"] == 96 and j["config"]["params"]["num_layers"] == 2
assert t["patch_embedding.weight"]["shape"] == [96, 16, 1, 2, 2] and t["blocks.0.modulation"]["shape"] == [1, 6, 96]'
check "$R/wan21-tiny-t2v-Q5_0.gguf" '
assert j["architecture"] == "wan" and j["config"]["params"]["ffn_dim"] == 160
assert t["patch_embedding.weight"]["type"] == "f32" and t["patch_embedding.weight"]["shape"] == [96, 16, 1, 2, 2]
assert t["blocks.1.ffn.0.weight"]["type"] == "q5_0" and t["blocks.1.ffn.0.weight"]["shape"] == [160, 96]
assert t["blocks.0.modulation"]["type"] == "f32" and t["blocks.0.modulation"]["shape"] == [1, 6, 96]'
# A sidecar overrides what shapes cannot tell (heads, text length).
"$BIN" inspect "$R/wan21-tiny-t2v-Q5_0.gguf" --json --config "$R/wan21-tiny-t2v.config.json" > "$tmp/s.json"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["config"]["params"]; assert p["text_len"]==12 and p["num_heads"]==2, p' "$tmp/s.json"
echo "inspect_reference: ok"

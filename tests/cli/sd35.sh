#!/usr/bin/env bash
# SD3.5 (MMDiT-X) through `ditrun run`, against Stability-AI sd3.5's own sampling run
# (sd3_impls.sample_euler with CFGDenoiser, sd3_infer's schedule: 3 steps, shift 3, cfg 4.5):
# for sd35-tiny (Large style) and sd35-medium-tiny (Medium's extra self-attention), each batch
# item's conditioning and noise reproduce its `sample.latent` within 1e-3, the architecture
# detected from the tensors as the official loader does; a 2-stage pipeline and 2 replicas under
# mpirun give the one-process bits, sequence parallelism (Medium's attn2 included) and CFG
# parallelism agree within 1e-5; GGUF and fp8 conversions give the official code's outputs on their
# dequantized weights (tests/data/mmdit-quantized); the released
# single-file layout (model.diffusion_model. beside the encoders and VAE) runs as the bare model;
# a VAE of the Flux AE's design decodes with SD3.5's latent constants;
# a file missing a joint block and a negative context of another length fail in one line;
# prompts through CLIP-L, CLIP-G and T5 render as their encoded conditioning.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
LIB=$(cd "$(dirname "$0")/lib" && pwd)
QUANTIZED=$(cd "$(dirname "$0")/../data/mmdit-quantized" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
compare() { PYTHONPATH="$LIB" python3 "$LIB/compare_latents.py" "$@"; }
for case in sd35-tiny sd35-medium-tiny; do
  PYTHONPATH="$LIB" python3 - "$R/$case.io.safetensors" "$case" <<'PY'
import sys
from safetensors_io import raw_tensors, write_f32
io, case = raw_tensors(sys.argv[1]), sys.argv[2]
def item(name, b):  # batch item b: the shape without the batch dim, its bytes
    _, shape, raw = io[name]
    n = len(raw) // shape[0]
    return shape[1:], raw[b * n:(b + 1) * n]
for b in range(2):
    write_f32(f"{case}-noise{b}.safetensors", {"noise": item("sample.noise", b)})
    write_f32(f"{case}-cond{b}.safetensors", {"context": item("in.context", b), "y": item("in.y", b),
                                                "context_neg": item("in.context_neg", b), "y_neg": item("in.y_neg", b)})
    write_f32(f"{case}-want{b}.safetensors", {"latent": item("sample.latent", b)})
PY
  # Item 0 from flags; item 1 with the reference sidecar's own sampling settings.
  "$BIN" --log-level warn run "$R/$case.safetensors" --noise "$case-noise0.safetensors" --cond "$case-cond0.safetensors" \
    --steps 3 --shift 3 --cfg 4.5 --id "$case-0" --out one || fail "$case item 0"
  "$BIN" --log-level error run "$R/$case.safetensors" --config "$R/$case.config.json" --noise "$case-noise1.safetensors" \
    --cond "$case-cond1.safetensors" --id "$case-1" --out one || fail "$case item 1"
  for b in 0 1; do compare "one/$case-$b.safetensors" "$case-want$b.safetensors" 1e-3; done
done
if command -v mpirun >/dev/null; then
  mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2 \
    "$BIN" --log-level warn run "$R/sd35-tiny.safetensors" --noise sd35-tiny-noise0.safetensors \
    --cond sd35-tiny-cond0.safetensors --steps 3 --shift 3 --cfg 4.5 --id sd35-tiny-0 --mode pipeline --out two ||
    fail "pipeline"
  compare one/sd35-tiny-0.safetensors two/sd35-tiny-0.safetensors 0
  printf '{"id": "a", "cond": "sd35-tiny-cond0.safetensors", "noise": "sd35-tiny-noise0.safetensors", "steps": 3, "shift": 3, "cfg": 4.5}\n{"id": "b", "cond": "sd35-tiny-cond1.safetensors", "noise": "sd35-tiny-noise1.safetensors", "steps": 3, "shift": 3, "cfg": 4.5}\n' > two.jsonl
  mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2 \
    "$BIN" --log-level warn run "$R/sd35-tiny.safetensors" --jobs two.jsonl --mode replicas --out replicas || fail "replicas"
  compare one/sd35-tiny-0.safetensors replicas/a.safetensors 0
  compare one/sd35-tiny-1.safetensors replicas/b.safetensors 0
  # One job over two ranks: Large's joint attention and Medium's image-only attn2 split.
  for case in sd35-tiny sd35-medium-tiny; do
    for share in "--sp 2" "--cfg-parallel"; do
      mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2 \
        "$BIN" --log-level warn run "$R/$case.safetensors" --noise "$case-noise0.safetensors" --cond "$case-cond0.safetensors" \
        --steps 3 --shift 3 --cfg 4.5 --id "$case-0" $share --out "shared-${share//[ -]/}" || fail "$case $share"
      compare "one/$case-0.safetensors" "shared-${share//[ -]/}/$case-0.safetensors" 1e-5
    done
  done
fi
# GGUF Q8_0 and scaled fp8 made by `ditrun quantize`, against Stability's code run on the same
# weights dequantized (tests/data/mmdit-quantized): the forward within 1e-4, the sampled
# latent of item 0 within 1e-3.
for case in sd35-tiny sd35-medium-tiny; do
  for variant in Q8_0 fp8-scaled; do
    file=$([ "$variant" = Q8_0 ] && echo "$case-Q8_0.gguf" || echo "$case-fp8-scaled.safetensors")
    WANT=$QUANTIZED/$case-$variant.io.safetensors
    "$BIN" --log-level warn quantize "$R/$case.safetensors" "$file" --to "$(echo "$variant" | tr Q q)" > /dev/null ||
      fail "quantize $case $variant"
    "$BIN" --log-level warn forward "$file" --inputs "$R/$case.io.safetensors" --out "fwd-$case-$variant.safetensors" \
      > /dev/null || fail "forward $case $variant"
    PYTHONPATH="$LIB" python3 "$LIB/compare_outputs.py" "fwd-$case-$variant.safetensors" "$WANT" 1e-4
    PYTHONPATH="$LIB" python3 - "$WANT" "want-$case-$variant.safetensors" <<'PY'
import sys
from safetensors_io import raw_tensors, write_f32
_, shape, raw = raw_tensors(sys.argv[1])["sample.latent"]
write_f32(sys.argv[2], {"latent": (shape[1:], raw[:len(raw) // shape[0]])})
PY
    "$BIN" --log-level warn run "$file" --noise "$case-noise0.safetensors" --cond "$case-cond0.safetensors" --steps 3 \
      --shift 3 --cfg 4.5 --id "$case-$variant" --out quantized || fail "run $case $variant"
    compare "quantized/$case-$variant.safetensors" "want-$case-$variant.safetensors" 1e-3
  done
done
# The released single-file layout: the model behind `model.diffusion_model.`, beside text
# encoder and VAE tensors, runs as the bare model does; a file without its last joint block
# fails naming the missing block.
PYTHONPATH="$LIB" python3 - "$R/sd35-tiny.safetensors" <<'PY'
import json, struct, sys
from safetensors_io import raw_tensors
src = raw_tensors(sys.argv[1])
def write(path, items):
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in items:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
other = [("text_encoders.clip_l.transformer.text_model.final_layer_norm.weight", ("BF16", [4], bytes(8))),
         ("first_stage_model.decoder.conv_in.bias", ("BF16", [4], bytes(8)))]
write("single-file.safetensors", [("model.diffusion_model." + n, t) for n, t in src.items()] + other)
write("no-last-block.safetensors", [(n, t) for n, t in src.items() if not n.startswith("joint_blocks.1.")])
PY
"$BIN" --log-level warn run single-file.safetensors --noise sd35-tiny-noise0.safetensors --cond sd35-tiny-cond0.safetensors \
  --steps 3 --shift 3 --cfg 4.5 --id sd35-tiny-0 --out single || fail "single file"
compare one/sd35-tiny-0.safetensors single/sd35-tiny-0.safetensors 0
if "$BIN" run no-last-block.safetensors --noise sd35-tiny-noise0.safetensors --cond sd35-tiny-cond0.safetensors \
     --out bad 2> missing.log; then fail "a file without its last joint block"; fi
grep -q "no-last-block.safetensors: .*joint_blocks.1 is missing (a partial file?)" missing.log ||
  { cat missing.log; fail "missing block message"; }
# With a VAE of the Flux AE's design found from its tensors (flux-ae-tiny), SD3 latents
# decode with SD3.5's latent scale and shift (1.5305, 0.0609: SD3LatentFormat.process_out):
# the picture is the `decode` of the job's latent by the same VAE under those constants.
"$BIN" run "$R/sd35-tiny.safetensors" --noise sd35-tiny-noise0.safetensors --cond sd35-tiny-cond0.safetensors --steps 3 \
  --shift 3 --cfg 4.5 --id sd35-tiny-0 --vae "$R/flux-ae-tiny.safetensors" --out decoded 2> vae.log || { cat vae.log; fail "vae"; }
grep -q "SD3.5's latent scale 1.5305 and shift 0.0609" vae.log || { cat vae.log; fail "SD3.5's VAE constants"; }
python3 - "$R/flux-ae-tiny.config.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["params"].update(scale_factor=1.5305, shift_factor=0.0609)
json.dump(config, open("sd35-vae.json", "w"))
PY
"$BIN" --log-level warn decode "$R/flux-ae-tiny.safetensors" one/sd35-tiny-0.safetensors --vae-config sd35-vae.json \
  --out sd35-decoded.png > /dev/null || fail "decode"
python3 "$LIB/png_pixels.py" decoded/sd35-tiny-0.png sd35-decoded.png 12 16  # the tiny AE upsamples 2x
PYTHONPATH="$LIB" python3 - <<'PY'
from safetensors_io import read, write_f32
import struct
cond = read("sd35-tiny-cond0.safetensors")
def raw(name, keep=None):
    shape, values = cond[name]
    if keep is not None:
        shape, values = [keep] + shape[1:], values[:keep * shape[1]]
    return shape, struct.pack(f"<{len(values)}f", *values)
write_f32("short.safetensors", {"context": raw("context"), "y": raw("y"), "context_neg": raw("context_neg", 3),
                                "y_neg": raw("y_neg")})
PY
if "$BIN" run "$R/sd35-tiny.safetensors" --noise sd35-tiny-noise0.safetensors --cond short.safetensors --cfg 4.5 \
     --out bad 2> bad.log; then fail "contexts of two lengths"; fi
grep -q "'context_neg' has 3 tokens and 'context' 7: SD3 runs both as one batch" bad.log || { cat bad.log; fail "message"; }
# Prompts: CLIP-L, CLIP-G and T5 (synthetic tiny ones with their tokenizers, on a tiny SD3 whose
# widths fit them: pooled 32 + 32, context 64) assembled as sd3_infer does (the assembly is
# checked against the official code in sd3_conditioning_test). A job's prompt renders as the
# conditioning `ditrun encode` writes for it (negative: the empty prompt); CLIP-G is required.
"$BIN" --log-level warn synth --arch t5 --preset t5-builtin --out t5.safetensors > /dev/null
"$BIN" --log-level warn synth --arch clip --preset clip-builtin --out clip.safetensors > /dev/null
cat > sd3-prompted.json <<'JSON'
{"architecture": "sd3", "params": {"depth": 2, "hidden_size": 128, "num_heads": 2, "pos_embed_max_size": 8,
 "adm_in_channels": 64, "context_in_dim": 64, "qk_norm": "rms"}}
JSON
"$BIN" --log-level warn synth --arch sd3 --preset sd3-prompted.json --out sd3-prompted.safetensors > /dev/null
encoders=(--t5 t5.safetensors --clip clip.safetensors --clip-g clip.safetensors)
"$BIN" --log-level warn run sd3-prompted.safetensors --prompt "a red fox in fresh snow" "${encoders[@]}" --width 64 \
  --height 64 --steps 2 --seed 3 --id fox --out prompted || fail "prompt"
"$BIN" --log-level warn encode sd3-prompted.safetensors --prompt "a red fox in fresh snow" "${encoders[@]}" \
  --out fox-cond.safetensors > encode.log || fail "encode"
grep -q "context \[154, 64\], context_neg \[154, 64\], y_neg \[64\]" encode.log || { cat encode.log; fail "encode's tensors"; }
"$BIN" --log-level warn run sd3-prompted.safetensors --cond fox-cond.safetensors --width 64 --height 64 --steps 2 --seed 3 \
  --id fox --out from-cond || fail "cond"
compare prompted/fox.safetensors from-cond/fox.safetensors 0
# A prompt longer than T5's 77 tokens: the empty negative prompt's T5 part is padded to its
# length, so the guided batch of two holds one length.
long="a red fox walks through fresh deep snow under tall dark pine trees at dawn while soft golden light falls across"
long+=" the frozen quiet valley and distant mountains glow faintly pink above the drifting mist of early winter morning"
"$BIN" --log-level error encode sd3-prompted.safetensors --prompt "$long" "${encoders[@]}" --out long.safetensors > long.log ||
  fail "encode a long prompt"
python3 - <<'PY'
import re
shapes = dict(re.findall(r"(context(?:_neg)?) \[(\d+), 64\]", open("long.log").read()))
assert shapes["context"] == shapes["context_neg"] and int(shapes["context"]) > 154, shapes
PY
"$BIN" --log-level error run sd3-prompted.safetensors --prompt "$long" "${encoders[@]}" --width 64 --height 64 --steps 2 \
  --out long || fail "a long prompt"
if "$BIN" run sd3-prompted.safetensors --prompt "a fox" --t5 t5.safetensors --clip clip.safetensors --width 64 --height 64 \
     --out bad 2> no-clip-g.log; then fail "a prompt without CLIP-G"; fi
grep -q "SD3.5 prompts need CLIP-L (--clip FILE) and CLIP-G (--clip-g FILE)" no-clip-g.log || { cat no-clip-g.log; fail "message"; }
echo OK

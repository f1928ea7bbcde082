#!/usr/bin/env bash
# SD3.5 (MMDiT-X) through `ditrun run`, against Stability-AI sd3.5's own sampling run
# (sd3_impls.sample_euler with CFGDenoiser, sd3_infer's schedule: 3 steps, shift 3, cfg 4.5):
# for sd35-tiny (Large style) and sd35-medium-tiny (Medium's extra self-attention), each batch
# item's conditioning and noise reproduce its `sample.latent` within 1e-3, the architecture
# detected from the tensors as the official loader does; a 2-stage mpirun pipeline gives the
# one-process bits; GGUF and fp8 conversions run as their dequantized weights do; the released
# single-file layout (model.diffusion_model. beside the encoders and VAE) runs as the bare model;
# a VAE of the Flux AE's design decodes with SD3.5's latent constants;
# a file missing a joint block and a negative context of another length fail in one line.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
LIB=$(cd "$(dirname "$0")/lib" && pwd)
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
fi
# GGUF Q8_0 and scaled-fp8 conversions by `ditrun quantize` give the latents of the same run
# on their weights dequantized to f32 (`quantize --to f32`), whose path is the one checked
# against Stability's code above.
for case in sd35-tiny sd35-medium-tiny; do
  for to in q8_0 fp8-scaled; do
    ext=$([ "$to" = q8_0 ] && echo gguf || echo safetensors)
    "$BIN" --log-level warn quantize "$R/$case.safetensors" "$case-$to.$ext" --to "$to" > /dev/null || fail "quantize $case $to"
    "$BIN" --log-level warn quantize "$case-$to.$ext" "$case-$to-f32.safetensors" --to f32 > /dev/null || fail "dequantize $case $to"
    for file in "$case-$to.$ext" "$case-$to-f32.safetensors"; do
      "$BIN" --log-level warn run "$file" --noise "$case-noise0.safetensors" --cond "$case-cond0.safetensors" --steps 3 \
        --shift 3 --cfg 4.5 --id "${file%.*}" --out quantized || fail "run $file"
    done
    compare "quantized/$case-$to.safetensors" "quantized/$case-$to-f32.safetensors" 1e-5
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
echo OK

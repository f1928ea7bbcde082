#!/usr/bin/env bash
# Qwen-Image through `ditrun forward` and `ditrun run`, against diffusers' own code on
# qwen-image-tiny (QwenImageTransformer2DModel; QwenImagePipeline's 3-step run with true CFG 4,
# the released scheduler config):
#  - `forward` on the io file (its text mask included) gives `out` within 1e-4;
#  - each batch item's conditioning (its prompt at its own length, the negative prompt at
#    another) and noise reproduce its `sample.latent` within 1e-3;
#  - a 2-stage pipeline and 2 replicas under mpirun give the one-process bits, a 2-rank
#    sequence-parallel team and a CFG-parallel pair agree within 1e-5;
#  - GGUF Q8_0 and scaled-fp8 conversions made by `ditrun quantize` give the official code's
#    outputs on their dequantized weights (tests/data/mmdit-quantized): forward within 1e-4,
#    sampled latents within 1e-3;
#  - with Wan 2.1's VAE (Qwen-Image's design) a job ends in the PNG of its latent's one frame,
#    and a job's image starts image-to-image from its one-frame encoding;
#    a VAE of another design is refused naming the file;
#  - a prompt of another width than joint_attention_dim and a size that is not whole patches
#    fail in one line naming the job and what is wrong.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
LIB=$(cd "$(dirname "$0")/lib" && pwd)
QUANTIZED=$(cd "$(dirname "$0")/../data/mmdit-quantized" && pwd)
tmp=$(mktemp -d); trap 'kill -9 ${server_pid:-0} 2>/dev/null || true; rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
compare() { PYTHONPATH="$LIB" python3 "$LIB/compare_latents.py" "$@"; }
MODEL=$R/qwen-image-tiny.safetensors CFG=$R/qwen-image-tiny.config.json

"$BIN" --log-level warn forward "$MODEL" --config "$CFG" --inputs "$R/qwen-image-tiny.io.safetensors" --out fwd.safetensors \
  > /dev/null || fail "forward"
PYTHONPATH="$LIB" python3 - "$R/qwen-image-tiny.io.safetensors" <<'PY'
import struct, sys
from safetensors_io import raw_tensors, read, write_f32
got, want = read("fwd.safetensors")["out"][1], read(sys.argv[1])["out"][1]
diff = max(abs(a - b) for a, b in zip(got, want))
print(f"forward out: max |diff| {diff:.2e}")
assert diff < 1e-4, diff
io = raw_tensors(sys.argv[1])
def item(name, b, rows=None):  # batch item b without the batch dim; its first `rows` rows
    _, shape, raw = io[name]
    part, shape = raw[b * len(raw) // shape[0]:(b + 1) * len(raw) // shape[0]], shape[1:]
    if rows is not None:
        part, shape = part[:rows * len(part) // shape[0]], [rows] + shape[1:]
    return shape, part
_, mshape, mraw = io["in.txt_mask"]
mask = struct.unpack(f"<{len(mraw) // 8}q", mraw)
for b in range(2):
    real = sum(mask[b * mshape[1]:(b + 1) * mshape[1]])  # the pipeline padded item 1's prompt
    write_f32(f"noise{b}.safetensors", {"noise": item("sample.noise", b)})
    write_f32(f"cond{b}.safetensors", {"txt": item("in.txt", b, real), "txt_neg": item("in.txt_neg", b)})
    write_f32(f"want{b}.safetensors", {"latent": item("sample.latent", b)})
shape, raw = item("in.txt", 0)
write_f32("narrow.safetensors", {"txt": (shape[:1] + [40], raw[:shape[0] * 40 * 4]), "txt_neg": item("in.txt_neg", 0)})
PY

# Item 0 with the settings as flags, item 1 with the reference sidecar's sampling settings.
"$BIN" --log-level warn run "$MODEL" --config "$CFG" --noise noise0.safetensors --cond cond0.safetensors --steps 3 \
  --cfg 4 --shift qwen-dynamic --id q0 --out one || fail "item 0"
"$BIN" --log-level error run "$MODEL" --config "$CFG" --noise noise1.safetensors --cond cond1.safetensors --id q1 \
  --out one || fail "item 1"
for b in 0 1; do compare "one/q$b.safetensors" "want$b.safetensors" 1e-3; done

if command -v mpirun >/dev/null; then
  mpi=(mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2)
  job=(--noise noise1.safetensors --cond cond1.safetensors --id q1)
  "${mpi[@]}" "$BIN" --log-level warn run "$MODEL" --config "$CFG" "${job[@]}" --mode pipeline --out pipeline ||
    fail "pipeline"
  compare one/q1.safetensors pipeline/q1.safetensors 0
  printf '{"id": "a", "cond": "cond1.safetensors", "noise": "noise1.safetensors"}\n{"id": "b", "cond": "cond0.safetensors", "noise": "noise0.safetensors"}\n' > two.jsonl
  "${mpi[@]}" "$BIN" --log-level warn run "$MODEL" --config "$CFG" --jobs two.jsonl --mode replicas --out replicas ||
    fail "replicas"
  compare one/q1.safetensors replicas/a.safetensors 0
  compare one/q0.safetensors replicas/b.safetensors 0
  "${mpi[@]}" "$BIN" --log-level warn run "$MODEL" --config "$CFG" "${job[@]}" --sp 2 --out sp || fail "sequence parallel"
  compare one/q1.safetensors sp/q1.safetensors 1e-5
  "${mpi[@]}" "$BIN" --log-level warn run "$MODEL" --config "$CFG" "${job[@]}" --cfg-parallel --out cfgp ||
    fail "CFG parallel"
  compare one/q1.safetensors cfgp/q1.safetensors 1e-5
fi

# Qwen-Image's VAE is Wan 2.1's design with Wan 2.1's latent mean and std (diffusers
# AutoencoderKLQwenImage), run on one frame: the picture is the `decode` of the job's latent
# as a one-frame video by the same VAE.
"$BIN" --log-level warn run "$MODEL" --config "$CFG" --noise noise0.safetensors --cond cond0.safetensors --id q0 \
  --vae "$R/wan21-vae-tiny.safetensors" --vae-config "$R/wan21-vae-tiny.config.json" --out decoded || fail "vae"
PYTHONPATH="$LIB" python3 - <<'PY'
from safetensors_io import raw_tensors, write_f32
_, shape, raw = raw_tensors("one/q0.safetensors")["latent"]
write_f32("q0-frame.safetensors", {"latent": ([shape[0], 1] + shape[1:], raw)})
PY
"$BIN" --log-level warn decode "$R/wan21-vae-tiny.safetensors" q0-frame.safetensors \
  --vae-config "$R/wan21-vae-tiny.config.json" --out q0-decoded.png > /dev/null || fail "decode"
python3 "$LIB/png_pixels.py" decoded/q0.png q0-decoded.png 64 48
# Image to image: the picture encoded as one frame, its latent the job's start at denoise 0.5.
printf '{"id": "i2i", "cond": "cond0.safetensors", "image": "decoded/q0.png", "denoise": 0.5, "seed": 2, "steps": 3}\n' \
  > i2i.jsonl
"$BIN" --log-level warn run "$MODEL" --config "$CFG" --jobs i2i.jsonl --vae "$R/wan21-vae-tiny.safetensors" \
  --vae-config "$R/wan21-vae-tiny.config.json" --out i2i || fail "image to image"
python3 "$LIB/png_pixels.py" i2i/i2i.png i2i/i2i.png 64 48
PYTHONPATH="$LIB" python3 -c "
from safetensors_io import read
shape = read('i2i/i2i.safetensors')['latent'][0]
assert shape == [16, 6, 8], shape"
if "$BIN" run "$MODEL" --config "$CFG" --noise noise0.safetensors --cond cond0.safetensors --id q0 \
     --vae "$R/flux-ae-tiny.safetensors" --out bad 2> wrong-vae.log; then fail "the Flux AE for Qwen-Image"; fi
grep -q "is not Qwen-Image's (Wan 2.1's 16-channel design: wan21-vae)" wrong-vae.log || { cat wrong-vae.log; fail "VAE message"; }

# GGUF Q8_0 and scaled fp8 made by `ditrun quantize`, against diffusers' code run on the same
# weights dequantized (tests/data/mmdit-quantized): the forward within 1e-4, each item's
# sampled latent within 1e-3.
# The inputs without in.txt_mask (the released code's unmasked forward: out.nomask), as F32.
PYTHONPATH="$LIB" python3 - "$R/qwen-image-tiny.io.safetensors" <<'PY'
import struct, sys
from safetensors_io import raw_tensors, values, write_f32
inputs = {name: (shape, struct.pack(f"<{len(values(raw, dtype))}f", *values(raw, dtype)))
          for name, (dtype, shape, raw) in raw_tensors(sys.argv[1]).items()
          if name.startswith("in.") and name != "in.txt_mask"}
write_f32("nomask-inputs.safetensors", inputs)
PY
for variant in Q8_0 fp8-scaled; do
  file=$([ "$variant" = Q8_0 ] && echo tiny-Q8_0.gguf || echo tiny-fp8-scaled.safetensors)
  WANT=$QUANTIZED/qwen-image-tiny-$variant.io.safetensors
  "$BIN" --log-level warn quantize "$MODEL" "$file" --to "$(echo "$variant" | tr Q q)" --config "$CFG" > /dev/null ||
    fail "quantize $variant"
  "$BIN" --log-level warn forward "$file" --config "$CFG" --inputs "$R/qwen-image-tiny.io.safetensors" \
    --out "fwd-$variant.safetensors" > /dev/null || fail "forward $variant"
  "$BIN" --log-level warn forward "$file" --config "$CFG" --inputs nomask-inputs.safetensors \
    --out "fwd-nomask-$variant.safetensors" > /dev/null || fail "forward $variant without the mask"
  PYTHONPATH="$LIB" python3 - "fwd-$variant.safetensors" "fwd-nomask-$variant.safetensors" <<'PY'
import sys
from safetensors_io import raw_tensors, write_f32
masked, unmasked = raw_tensors(sys.argv[1]), raw_tensors(sys.argv[2])
tensors = {name: (shape, raw) for name, (_, shape, raw) in masked.items()}
tensors["out.nomask"] = unmasked["out"][1:]
write_f32(sys.argv[1], tensors)
PY
  PYTHONPATH="$LIB" python3 "$LIB/compare_outputs.py" "fwd-$variant.safetensors" "$WANT" 1e-4 "$R/qwen-image-tiny.io.safetensors"
  PYTHONPATH="$LIB" python3 - "$WANT" "$variant" <<'PY'
import sys
from safetensors_io import raw_tensors, write_f32
_, shape, raw = raw_tensors(sys.argv[1])["sample.latent"]
for b in range(2):
    write_f32(f"want-{sys.argv[2]}-{b}.safetensors", {"latent": (shape[1:], raw[b * len(raw) // 2:(b + 1) * len(raw) // 2])})
PY
  for b in 0 1; do
    "$BIN" --log-level warn run "$file" --config "$CFG" --noise "noise$b.safetensors" --cond "cond$b.safetensors" \
      --id "q$b" --out "$variant" || fail "run $variant item $b"
    compare "$variant/q$b.safetensors" "want-$variant-$b.safetensors" 1e-3
  done
done

if "$BIN" run "$MODEL" --config "$CFG" --noise noise0.safetensors --cond narrow.safetensors --id narrow --out bad \
     2> narrow.log; then fail "a prompt of width 40"; fi
grep -q "job 'narrow': narrow.safetensors: conditioning tensor 'txt' has shape \[7, 40\], the model needs \[L, 48\] (joint_attention_dim)$" narrow.log ||
  { cat narrow.log; fail "width message"; }
if "$BIN" run "$MODEL" --config "$CFG" --cond cond0.safetensors --width 100 --height 64 --id odd --out bad 2> odd.log; then
  fail "width 100"
fi
grep -q "Qwen-Image renders sizes that are multiples of 16 pixels" odd.log || { cat odd.log; fail "size message"; }
[ ! -e bad/narrow.safetensors ] && [ ! -e bad/odd.safetensors ] || fail "a failed job left an output"
# `ditrun serve` with the model loaded renders a job by its server-side files as `run` does.
ditrun=$BIN
source "$LIB/serve_helpers.sh"
start_server "$tmp/served" "$MODEL" --config "$CFG" --allow-root "$tmp"
expect_status 201 "$(http POST /v1/jobs -d '{"id": "q1", "cond": "cond1.safetensors", "noise": "noise1.safetensors"}')"
wait_job q1 done
curl -sf "$base/v1/jobs/q1/latent" -o served-q1.safetensors
compare one/q1.safetensors served-q1.safetensors 0
stop_server
echo OK

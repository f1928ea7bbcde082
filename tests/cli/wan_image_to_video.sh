#!/usr/bin/env bash
# Wan image-to-video through `ditrun run`, against the official loops:
#  - Wan 2.2 I2V-A14B (tests/data/wan22-tiny-i2v-a14b, made by running Wan2.2's
#    WanI2V.generate): two experts, a job whose `image` holds the conditioning y (mask and
#    image latent) reproduces the official final latent within 1e-3, in one process and in a
#    2-stage mpirun pipeline (bit-identical); a job without `image` fails naming the field;
#  - Wan 2.1 I2V (tests/data/wan21-tiny-i2v, made by running Wan2.1's WanI2V.generate): the
#    image's CLIP features in the job's cond file and y as its `image` reproduce the official
#    final latent within 1e-3;
#  - Wan 2.2 TI2V-5B (../shared/testdata wan22-tiny-ti2v, WanTI2V.generate): a job whose
#    `image` holds the first frame's latent (held fixed at t = 0) reproduces the official
#    final latent within 1e-3, and with --sp 2 within 1e-5 of one process.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
LIB=$(cd "$(dirname "$0")/lib" && pwd)
I2V=$(cd "$(dirname "$0")/../data/wan22-tiny-i2v-a14b" && pwd)
I2V21=$(cd "$(dirname "$0")/../data/wan21-tiny-i2v" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
compare() { PYTHONPATH="$LIB" python3 "$LIB/compare_latents.py" "$@"; }
# The official run's inputs as job files: batch item 0 of each io tensor.
PYTHONPATH="$LIB" python3 - "$I2V/io.safetensors" "$R/wan22-tiny-ti2v.io.safetensors" "$I2V21/io.safetensors" <<'PY'
import sys
from safetensors_io import raw_tensors, write_f32
for prefix, path, image in [("i2v", sys.argv[1], ("y", "in.y")), ("ti2v", sys.argv[2], ("image_latent", "in.image_latent")),
                            ("i2v21", sys.argv[3], ("y", "in.y"))]:
    io = raw_tensors(path)
    def item(name):
        _, shape, raw = io[name]
        return shape[1:], raw
    write_f32(f"{prefix}-noise.safetensors", {"noise": item("sample.noise")})
    cond = {"context": item("in.context"), "context_neg": item("in.context_neg")}
    if "in.clip_fea" in io:
        cond["clip_fea"] = item("in.clip_fea")
    write_f32(f"{prefix}-cond.safetensors", cond)
    write_f32(f"{prefix}-image.safetensors", {image[0]: item(image[1])})
    write_f32(f"{prefix}-want.safetensors", {"latent": item("sample.latent")})
PY
mpi=()
command -v mpirun >/dev/null && mpi=(mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2)

# Wan 2.2 I2V-A14B.
cat > i2v.jsonl <<'EOF'
{"id": "i2v", "cond": "i2v-cond.safetensors", "noise": "i2v-noise.safetensors", "image": "i2v-image.safetensors"}
{"id": "no-image", "cond": "i2v-cond.safetensors", "noise": "i2v-noise.safetensors"}
EOF
if "$BIN" --log-level warn run "$I2V/high.safetensors" --config "$I2V/config.json" --jobs i2v.jsonl --out i2v 2> i2v.log; then
  fail "an image-to-video job without an image"
fi
grep -q "i2v.jsonl:2: job 'no-image': image: .* is an image-to-video model: the job needs .image." i2v.log || { cat i2v.log; fail "no-image message"; }
compare i2v/i2v.safetensors i2v-want.safetensors 1e-3
if [ ${#mpi[@]} -gt 0 ]; then
  head -1 i2v.jsonl > i2v-one.jsonl
  "${mpi[@]}" "$BIN" --log-level warn run "$I2V/high.safetensors" --config "$I2V/config.json" --jobs i2v-one.jsonl \
    --mode pipeline --out i2v-pipeline || fail "i2v pipeline"
  compare i2v/i2v.safetensors i2v-pipeline/i2v.safetensors 0
fi

# Wan 2.1 I2V: 5 steps, shift 5, cfg 5 (the config's).
echo '{"id": "i2v21", "cond": "i2v21-cond.safetensors", "noise": "i2v21-noise.safetensors", "image": "i2v21-image.safetensors"}' > i2v21.jsonl
"$BIN" --log-level warn run "$I2V21/model.safetensors" --config "$I2V21/config.json" --jobs i2v21.jsonl --out i2v21 || fail "wan 2.1 i2v"
compare i2v21/i2v21.safetensors i2v21-want.safetensors 1e-3

# Wan 2.2 TI2V-5B: 4 steps, shift 5, cfg 5 as the official run.
ti2v=("$R/wan22-tiny-ti2v.safetensors" --config "$R/wan22-tiny-ti2v.config.json" --jobs ti2v.jsonl)
echo '{"id": "ti2v", "cond": "ti2v-cond.safetensors", "noise": "ti2v-noise.safetensors", "image": "ti2v-image.safetensors", "steps": 4, "shift": 5, "cfg": 5}' > ti2v.jsonl
"$BIN" --log-level warn run "${ti2v[@]}" --out ti2v || fail "ti2v"
compare ti2v/ti2v.safetensors ti2v-want.safetensors 1e-3
if [ ${#mpi[@]} -gt 0 ]; then
  "${mpi[@]}" "$BIN" --log-level warn run "${ti2v[@]}" --sp 2 --out ti2v-sp || fail "ti2v --sp 2"
  compare ti2v/ti2v.safetensors ti2v-sp/ti2v.safetensors 1e-5
fi
echo OK

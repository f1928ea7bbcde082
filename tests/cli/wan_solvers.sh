#!/usr/bin/env bash
# Wan's official solvers through `ditrun run` (the executor's step loop): the wan21-tiny-t2v
# model from the official loops' noise and prompt embeddings, `--sampler unipc` and `dpm++`
# with 6 steps, shift 5, cfg 5, reproduce the official final latent within 1e-3; a 2-stage
# mpirun pipeline gives the same bits as one process. An unknown sampler fails the job in one
# line naming it.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
python3 - "$R" <<'PY'
import json, struct, sys
ref = sys.argv[1]
def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__": continue
        s, e = t["data_offsets"]
        out[name] = (t["shape"], data[8 + n + s:8 + n + e])
    return out
def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (shape, raw) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw); offset += len(raw)
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
for case in ["unipc", "dpmpp"]:
    io = read(f"{ref}/wan21-tiny-{case}.io.safetensors")
    write(f"noise-{case}.safetensors", {"noise": (io["sample.noise"][0][1:], io["sample.noise"][1])})
    write(f"cond-{case}.safetensors", {"context": (io["in.context"][0][1:], io["in.context"][1]),
                                       "context_neg": (io["in.context_neg"][0][1:], io["in.context_neg"][1])})
    write(f"want-{case}.safetensors", {"latent": (io["sample.latent"][0][1:], io["sample.latent"][1])})
PY
compare() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, struct, sys
def latent(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    h = json.loads(data[8:8 + n])["latent"]
    s, e = h["data_offsets"]
    raw = data[8 + n + s:8 + n + e]
    return struct.unpack("<%df" % (len(raw) // 4), raw)
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

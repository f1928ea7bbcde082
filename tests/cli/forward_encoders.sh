#!/usr/bin/env bash
# `ditrun forward` on the reference VAEs and text encoders (T5, umT5, CLIP) writes every output their io files
# hold, under the same names, within 1e-4 of the official code (T5 with a mask: rows at padded
# positions are not compared; without one every row counts), with the sidecar and detected.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for c in flux-ae-tiny wan21-vae-tiny wan22-vae-tiny t5-tiny umt5-tiny clip-l-tiny; do
  "$BIN" --log-level warn forward "$R/$c.safetensors" --config "$R/$c.config.json" --inputs "$R/$c.io.safetensors" \
    --out "$tmp/$c.sidecar.safetensors" > /dev/null
  # CLIP's head count is not in its shapes (detection takes the released 64-wide heads; the
  # tiny model has 16-wide ones): it runs from its sidecar only.
  [ "$c" = clip-l-tiny ] && continue
  "$BIN" --log-level warn forward "$R/$c.safetensors" --inputs "$R/$c.io.safetensors" --out "$tmp/$c.detected.safetensors" \
    > /dev/null
done
PYTHONPATH="$(dirname "$0")/lib" python3 - "$R" "$tmp" <<'PY'
import sys
from safetensors_io import read
ref_dir, out_dir = sys.argv[1], sys.argv[2]
for case in ["flux-ae-tiny", "wan21-vae-tiny", "wan22-vae-tiny", "t5-tiny", "umt5-tiny", "clip-l-tiny"]:
    ref = read(f"{ref_dir}/{case}.io.safetensors")
    lengths = None
    if "in.mask" in ref:
        (b, l), mask = ref["in.mask"]
        lengths = [sum(mask[i * l:(i + 1) * l]) for i in range(b)]
    for kind in ["sidecar"] if case == "clip-l-tiny" else ["sidecar", "detected"]:
        got = read(f"{out_dir}/{case}.{kind}.safetensors")
        names = [n for n in ref if not n.startswith("in.") and not n.startswith("relpos.")]
        assert names and all(n in got for n in names), (case, kind, [n for n in names if n not in got])
        worst = 0.0
        for n in names:
            shape, want = ref[n]
            gshape, have = got[n]
            assert shape == gshape, (case, n, shape, gshape)
            if lengths is not None and not n.endswith(".nomask"):  # masked T5 output: real rows only
                b, l, c = shape
                idx = [(i * l + r) * c + j for i in range(b) for r in range(int(lengths[i])) for j in range(c)]
            else:
                idx = range(len(want))
            worst = max(worst, max(abs(have[i] - want[i]) for i in idx))
        assert worst < 1e-4, (case, kind, worst)
        print(f"{case} ({kind}): {len(names)} outputs, max |diff| {worst:.2e}")
PY

#!/usr/bin/env bash
# The README's first command after set-up: writes the built-in tiny Flux model (deterministic
# random weights) in two encodings and inspects it. `ditrun run` takes over this role once
# the execution engine lands.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/launcher/ditrun
OUT="${OUT:-/tmp/ditrun-demo}"
mkdir -p "$OUT"
"$BIN" synth --arch flux --preset tiny --weights bf16 --seed 0 --out "$OUT/flux-tiny.safetensors"
"$BIN" quantize "$OUT/flux-tiny.safetensors" "$OUT/flux-tiny-Q4_K.gguf" --to q4_K
"$BIN" inspect "$OUT/flux-tiny-Q4_K.gguf"

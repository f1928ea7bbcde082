#!/usr/bin/env bash
# The README's first command after set-up: renders a prompt with the built-in tiny Flux model,
# its tiny T5 and CLIP encoders and its tiny VAE (deterministic weights made on the fly, no
# downloads), then shows what was written: the latent, the decoded PNG and the ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/launcher/ditrun
OUT="${OUT:-/tmp/ditrun-demo}"
"$BIN" run --out "$OUT" --id demo --prompt "a red fox in fresh snow at dawn" --width 512 --height 512 --seed 42
ls -l "$OUT"
tail -n 1 "$OUT/ledger.jsonl"; echo

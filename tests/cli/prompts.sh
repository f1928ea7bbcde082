#!/usr/bin/env bash
# Jobs with prompts, end to end on the built-in tiny Flux and its tiny encoders, and on a
# synth wan-tiny with a synth umT5:
# - 30 jobs over 10 prompts encode 10 times; --resume (and later runs into the folder) reuse
#   the cached encodings; the pictures record their prompt;
# - `ditrun encode` writes the cond a job takes, and that job renders the prompt job's latent;
# - an over-long prompt is cut with a warning naming the job; a tokenizer that does not parse
#   and an encoder of the wrong width fail the prompt jobs with one line naming job and field,
#   while a job with a cond file still runs.
set -euo pipefail
BIN=$1
LIB=$(cd "$(dirname "$0")/lib" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 -c "
import json
for i in range(30):
    print(json.dumps({'id': f'j{i:03d}', 'prompt': f'prompt number {i % 10}', 'seed': i, 'width': 64, 'height': 64, 'steps': 1}))
" > jobs.jsonl
"$BIN" run --jobs jobs.jsonl --out out 2> log1.txt || { cat log1.txt; fail "the prompt run failed"; }
grep -q "prompts: 10 encoded, 20 from the prompt cache" log1.txt || { cat log1.txt; fail "30 jobs over 10 prompts"; }
[ "$(ls out/prompt-cache | wc -l)" = 10 ] || fail "10 cached encodings"
grep -aq "prompt number 3" out/j003.png || fail "the picture records its prompt"

echo '{"id": "j100", "prompt": "prompt number 4", "seed": 100, "width": 64, "height": 64, "steps": 1}' >> jobs.jsonl
"$BIN" run --jobs jobs.jsonl --out out --resume 2> log2.txt || { cat log2.txt; fail "resume"; }
grep -q "prompts: 0 encoded, 1 from the prompt cache" log2.txt || { cat log2.txt; fail "--resume reuses the cache"; }

# `encode` with the same (seed 0) encoders the built-in model makes, then a cond job.
"$BIN" --log-level warn synth --arch t5 --preset tiny --out t5.safetensors
"$BIN" --log-level warn synth --arch clip --preset tiny --out clip.safetensors
"$BIN" --log-level warn synth --arch umt5 --preset tiny --out umt5.safetensors
"$BIN" encode flux-tiny --t5 t5.safetensors --clip clip.safetensors --prompt "prompt number 3" --out c3.safetensors \
  > encode.txt
grep -q "txt \[512, 64\], y \[32\]" encode.txt || { cat encode.txt; fail "encode's tensors"; }
echo '{"id": "c3", "cond": "c3.safetensors", "seed": 3, "width": 64, "height": 64, "steps": 1}' > cond.jsonl
"$BIN" --log-level warn run --jobs cond.jsonl --out out
PYTHONPATH="$LIB" python3 - out/j003.safetensors out/c3.safetensors <<'PY'
import sys
from safetensors_io import raw_tensors
def latent(path):
    return raw_tensors(path)["latent"][2]
assert latent(sys.argv[1]) == latent(sys.argv[2]), "the cond from `encode` renders the prompt job's latent"
PY

# Bad input: an over-long prompt, a tokenizer that does not parse, an encoder of the wrong width.
long=$(python3 -c "print(' '.join(['word'] * 600))")
printf '{"id": "long", "prompt": "%s", "seed": 1, "width": 64, "height": 64, "steps": 1}\n' "$long" > long.jsonl
"$BIN" run --jobs long.jsonl --out out-long 2> log3.txt || { cat log3.txt; fail "an over-long prompt still renders"; }
grep -q "job 'long': prompt has .* t5 tokens, the model takes 512" log3.txt || { cat log3.txt; fail "truncation warning"; }
grep -q "job 'long': prompt has .* clip-text tokens, the model takes 77" log3.txt || { cat log3.txt; fail "CLIP truncation warning"; }

printf '{"id": "p", "prompt": "a fox", "seed": 1, "width": 64, "height": 64, "steps": 1}\n{"id": "c", "cond": "../c3.safetensors", "seed": 1, "width": 64, "height": 64, "steps": 1}\n' > mixed.jsonl
mkdir -p sub && cp mixed.jsonl sub/
echo "{ not json" > bad-tokenizer.json
if "$BIN" run --jobs sub/mixed.jsonl --out out-bad --t5 t5.safetensors --clip clip.safetensors \
     --t5-tokenizer bad-tokenizer.json 2> log4.txt; then fail "a bad tokenizer must fail the prompt job"; fi
grep -q "job 'p': prompt: --t5 t5.safetensors: .*bad-tokenizer.json" log4.txt || { cat log4.txt; fail "bad tokenizer message"; }
grep -q '"id":"c".*"status":"done"' out-bad/ledger.jsonl || fail "the cond job still runs"
if "$BIN" run --jobs sub/mixed.jsonl --out out-width --t5 umt5.safetensors --clip clip.safetensors 2> log5.txt; then
  fail "an encoder of the wrong width must fail the prompt job"
fi
grep -q "job 'p': prompt: --t5 umt5.safetensors: a umt5 encoder" log5.txt || { cat log5.txt; fail "wrong encoder message"; }
grep -q '"id":"c".*"status":"done"' out-width/ledger.jsonl || fail "the cond job still runs"

# Wan: umT5 with the release's default negative prompt for a guided job.
"$BIN" --log-level warn synth --arch wan --preset tiny --out wan.safetensors
"$BIN" run wan.safetensors --text-encoder umt5.safetensors --prompt "a fox" --width 64 --height 64 --frames 5 \
  --steps 1 --out out-wan 2> log6.txt || { cat log6.txt; fail "Wan prompt run"; }
grep -q '"status":"done"' out-wan/ledger.jsonl || fail "Wan prompt job"
"$BIN" encode wan-tiny --text-encoder umt5.safetensors --prompt "a fox" --out wan-cond.safetensors > encode-wan.txt
grep -q "context \[.*, 32\], context_neg \[12, 32\]" encode-wan.txt || { cat encode-wan.txt; fail "Wan encode"; }
# A ComfyUI models/ tree: the model by file name, the encoder and the VAE by what they hold.
mkdir -p models/diffusion_models models/text_encoders models/clip models/vae
cp wan.safetensors models/diffusion_models/
cp -r t5.safetensors t5.tokenizer models/text_encoders/   # a T5 where Wan needs umT5: passed over
cp -r umt5.safetensors umt5.tokenizer models/text_encoders/
"$BIN" --log-level warn synth --arch wan21-vae --preset tiny --out models/vae/wan_vae.safetensors
"$BIN" run wan.safetensors --models models --prompt "a fox" --width 64 --height 64 --frames 5 --steps 1 \
  --out out-models 2> log7.txt || { cat log7.txt; fail "--models run"; }
grep -q -- "--models models: --text-encoder models/text_encoders/umt5.safetensors for umt5" log7.txt || { cat log7.txt; fail "picked umT5"; }
grep -q -- "--models models: VAE models/vae/wan_vae.safetensors" log7.txt || { cat log7.txt; fail "picked the VAE"; }
[ -s out-models/image.mp4 ] || fail "the clip from a prompt"

# The planner places the encoders beside the DiT's plan.
"$BIN" plan flux-tiny --t5 t5.safetensors --clip clip.safetensors --devices "1x 1gb, host=8gb" > plan.txt
grep -q "encoder  t5: resident on cuda:0" plan.txt || { cat plan.txt; fail "plan: T5 resident"; }
"$BIN" plan flux-tiny --t5 t5.safetensors --clip clip.safetensors --devices "1x 1gb, host=8gb" --encoders-on cpu > plan2.txt
grep -q "encoder  clip: cpu on cpu" plan2.txt || { cat plan2.txt; fail "plan: --encoders-on cpu"; }
echo OK

#!/usr/bin/env bash
# Wan 2.2 A14B's two experts through `ditrun run`, `serve` and mpirun, on wan22-tiny-a14b
# (two tiny experts and the official Wan 2.2 two-expert loop: UniPC, 8 steps, shift 12,
# boundary 0.875, guide [3, 4]; its io file holds the official final latent):
#  - `run HIGH --config CFG` (the sidecar's `experts` names the low-noise file) reproduces the
#    official latent within 1e-3; `--low-noise LOW` gives the same bits;
#  - a 2-stage pipeline, 2 replicas and a 2-rank sequence-parallel team under mpirun give the
#    one-process bits (replicas, pipeline) or within 1e-5 (sequence parallelism);
#  - the swap strategy (plan_model: one expert's weights at a time) gives the same bits in one
#    process and a 2-stage pipeline, loading the low-noise expert once per job and rank; so do
#    experts in phases (each on its own rank, jobs handed from one to the other) under mpirun,
#    which one process refuses, and behind `serve` under mpirun;
#  - `serve` renders the same job to the same bits;
#  - a job file mixing good jobs with a bad boundary and a cfg_low run on one expert: the bad
#    ones fail in one line naming the job and the field, the good ones run.
# Image-to-video A14B is in wan_image_to_video.sh.
set -euo pipefail
BIN=$1 DATA=$2
R=$DATA/reference
LIB=$(cd "$(dirname "$0")/lib" && pwd)
ditrun=$BIN
tmp=$(mktemp -d); trap 'kill -9 ${server_pid:-0} 2>/dev/null || true; rm -rf "$tmp"' EXIT
source "$LIB/serve_helpers.sh"
cd "$tmp"
fail() { echo "FAIL: $*" >&2; exit 1; }
PYTHONPATH="$LIB" python3 - "$R" <<'PY'
import sys
from safetensors_io import raw_tensors, write_f32
io = raw_tensors(f"{sys.argv[1]}/wan22-tiny-a14b.io.safetensors")
def item(name):  # batch item 0: the shape without the batch dim, the same bytes
    _, shape, raw = io[name]
    return shape[1:], raw
write_f32("noise.safetensors", {"noise": item("sample.noise")})
write_f32("cond.safetensors", {"context": item("in.context"), "context_neg": item("in.context_neg")})
write_f32("want.safetensors", {"latent": item("sample.latent")})
PY
compare() { PYTHONPATH="$LIB" python3 "$LIB/compare_latents.py" "$@"; }
HIGH=$R/wan22-tiny-a14b-high.safetensors LOW=$R/wan22-tiny-a14b-low.safetensors CFG=$R/wan22-tiny-a14b.config.json
job=(--noise noise.safetensors --cond cond.safetensors --id a14b)

"$BIN" run "$HIGH" --config "$CFG" "${job[@]}" --out one 2> one.log || { cat one.log; fail "run"; }
grep -q "with low-noise expert .*wan22-tiny-a14b-low.safetensors" one.log || { cat one.log; fail "the low-noise expert is not named"; }
compare one/a14b.safetensors want.safetensors 1e-3
"$BIN" --log-level warn run "$HIGH" --low-noise "$LOW" --config "$CFG" "${job[@]}" --out flag || fail "--low-noise"
compare one/a14b.safetensors flag/a14b.safetensors 0

if command -v mpirun >/dev/null; then
  mpi=(mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe --bind-to none -np 2)
  "${mpi[@]}" "$BIN" --log-level warn run "$HIGH" --config "$CFG" "${job[@]}" --mode pipeline --out pipeline || fail "pipeline"
  compare one/a14b.safetensors pipeline/a14b.safetensors 0
  printf '{"id": "a", "cond": "cond.safetensors", "noise": "noise.safetensors"}\n{"id": "b", "cond": "cond.safetensors", "noise": "noise.safetensors"}\n' > two.jsonl
  "${mpi[@]}" "$BIN" --log-level warn run "$HIGH" --config "$CFG" --jobs two.jsonl --mode replicas --out replicas || fail "replicas"
  compare one/a14b.safetensors replicas/a.safetensors 0
  compare one/a14b.safetensors replicas/b.safetensors 0
  "${mpi[@]}" "$BIN" --log-level warn run "$HIGH" --config "$CFG" "${job[@]}" --sp 2 --out sp || fail "sequence parallel"
  compare one/a14b.safetensors sp/a14b.safetensors 1e-5
fi

# The swap strategy (one expert's weights at a time, the other's loaded at the switch): the
# planner's plan with its strategy set to swap, in one process and as a 2-stage pipeline, gives
# the same bits; each rank loads the low-noise expert once per job.
"$BIN" --log-level warn plan "$HIGH" --config "$CFG" --width 96 --height 64 --frames 9 --out both.json > /dev/null || fail "plan"
"$BIN" --log-level warn plan "$HIGH" --config "$CFG" --width 96 --height 64 --frames 9 --cpu-ranks 2 --mode pipeline \
  --out both-pipeline.json > /dev/null || fail "plan pipeline"
python3 - <<'PY'
import json
for name in ["both", "both-pipeline"]:
    plan = json.load(open(f"{name}.json"))
    assert plan["experts"]["strategy"] in ("both", "swap") and plan["experts"]["high_steps"] == 6, plan["experts"]
    plan["experts"]["strategy"] = "swap"
    json.dump(plan, open(name.replace("both", "swap") + ".json", "w"))
PY
printf '{"id": "a", "cond": "cond.safetensors", "noise": "noise.safetensors"}\n{"id": "b", "cond": "cond.safetensors", "noise": "noise.safetensors"}\n' > swap.jsonl
"$BIN" run "$HIGH" --config "$CFG" --jobs swap.jsonl --plan swap.json --out swap 2> swap.log || { cat swap.log; fail "swap"; }
[ "$(grep -c "the low_noise expert's weights loaded" swap.log)" = 2 ] || { cat swap.log; fail "one low-noise load per job"; }
for id in a b; do compare one/a14b.safetensors "swap/$id.safetensors" 0; done
if command -v mpirun >/dev/null; then
  "${mpi[@]}" "$BIN" run "$HIGH" --config "$CFG" --jobs swap.jsonl --plan swap-pipeline.json --out swap-pipeline 2> swap-pipeline.log ||
    { cat swap-pipeline.log; fail "swap pipeline"; }
  [ "$(grep -c "the low_noise expert's weights loaded" swap-pipeline.log)" = 4 ] || { cat swap-pipeline.log; fail "loads per rank"; }
  for id in a b; do compare one/a14b.safetensors "swap-pipeline/$id.safetensors" 0; done
  # Experts in phases: rank 0 the high-noise group, rank 1 the low-noise one; every job moves
  # from the one to the other at the switch with its latent and sampler history.
  "$BIN" --log-level warn plan "$HIGH" --config "$CFG" --width 96 --height 64 --frames 9 --cpu-ranks 2 --mode replicas \
    --out both-replicas.json > /dev/null || fail "plan replicas"
  python3 - <<'PY'
import json
plan = json.load(open("both-replicas.json"))
plan["experts"]["strategy"] = "phases"
plan["ranks"][0]["expert"], plan["ranks"][1]["expert"] = "high_noise", "low_noise"
json.dump(plan, open("phases.json", "w"))
PY
  # A job with no high-noise step (boundary above every timestep) goes straight to the
  # low-noise rank.
  cp swap.jsonl phases.jsonl
  printf '{"id": "c", "cond": "cond.safetensors", "noise": "noise.safetensors"}\n' >> phases.jsonl
  printf '{"id": "all-low", "cond": "cond.safetensors", "noise": "noise.safetensors", "boundary": 0.9999}\n' >> phases.jsonl
  "${mpi[@]}" "$BIN" run "$HIGH" --config "$CFG" --jobs phases.jsonl --plan phases.json --out phases 2> phases.log ||
    { cat phases.log; fail "phases"; }
  for id in a b c; do compare one/a14b.safetensors "phases/$id.safetensors" 0; done
  tail -1 phases.jsonl > all-low.jsonl
  "$BIN" --log-level warn run "$HIGH" --config "$CFG" --jobs all-low.jsonl --out all-low || fail "all-low"
  compare all-low/all-low.safetensors phases/all-low.safetensors 0
  if "$BIN" run "$HIGH" --config "$CFG" --jobs phases.jsonl --plan phases.json --out phases-one 2> phases-one.log; then
    fail "a plan in phases in one process"
  fi
  grep -q "runs the two experts on different ranks (2 in all): run it under mpirun with -np 2" phases-one.log ||
    { cat phases-one.log; fail "phases message"; }
  # The same plan behind `serve` under mpirun (a live source: low-noise leaders wait for
  # handovers until the server drains).
  launch=("${mpi[@]}")
  start_server served-phases "$HIGH" --config "$CFG" --allow-root "$tmp" --plan phases.json
  rank0_pid=$(sed -n 's/.*rank 0 of 2 on .* (pid \([0-9]*\)).*/\1/p' served-phases.log | head -1)
  expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"p1\", \"cond\": \"$tmp/cond.safetensors\", \"noise\": \"$tmp/noise.safetensors\"}")"
  expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"p2\", \"cond\": \"$tmp/cond.safetensors\", \"noise\": \"$tmp/noise.safetensors\"}")"
  wait_job p1 done
  wait_job p2 done
  stop_server
  unset launch rank0_pid
  for id in p1 p2; do compare one/a14b.safetensors "served-phases/$id.safetensors" 0; done
fi

start_server served "$HIGH" --config "$CFG" --allow-root "$tmp" --threads 1
expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"a14b\", \"cond\": \"$tmp/cond.safetensors\", \"noise\": \"$tmp/noise.safetensors\"}")"
expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"low1\", \"cond\": \"$tmp/cond.safetensors\", \"noise\": \"$tmp/noise.safetensors\", \"cfg_low\": 1}")"
expect_status 422 "$(http POST /v1/jobs -d "{\"id\": \"far\", \"cond\": \"$tmp/cond.safetensors\", \"seed\": 1, \"width\": 96, \"height\": 64, \"boundary\": 1}")" "boundary: must be in (0, 1)"
wait_job a14b done
wait_job low1 done
stop_server
compare one/a14b.safetensors served/a14b.safetensors 0
# cfg_low 1 changes the two low-noise steps only.
if cmp -s one/a14b.safetensors served/low1.safetensors; then fail "cfg_low had no effect"; fi

cat > mixed.jsonl <<'EOF'
{"id": "good", "cond": "cond.safetensors", "noise": "noise.safetensors", "cfg_high": 4, "cfg_low": 3, "boundary": 0.875}
{"id": "far", "cond": "cond.safetensors", "noise": "noise.safetensors", "boundary": 1.5}
{"id": "late", "cond": "cond.safetensors", "noise": "noise.safetensors", "boundary": 0.5}
EOF
if "$BIN" --log-level warn run "$HIGH" --config "$CFG" --jobs mixed.jsonl --out mixed 2> mixed.log; then fail "a bad boundary"; fi
grep -q "mixed.jsonl:2: job 'far': boundary: must be in (0, 1)" mixed.log || { cat mixed.log; fail "boundary message"; }
compare one/a14b.safetensors mixed/good.safetensors 0  # the release's values, given explicitly
[ -f mixed/late.safetensors ] || fail "the job after the bad one did not run"
if cmp -s one/a14b.safetensors mixed/late.safetensors; then fail "boundary 0.5 had no effect"; fi

printf '{"id": "solo", "cond": "cond.safetensors", "noise": "noise.safetensors", "cfg_low": 3}\n' > solo.jsonl
if "$BIN" run "$R/wan21-tiny-t2v.safetensors" --config "$R/wan21-tiny-t2v.config.json" --jobs solo.jsonl --out solo 2> solo.log; then
  fail "cfg_low on one expert"
fi
grep -q "job 'solo': cfg_low: .* has one expert" solo.log || { cat solo.log; fail "one-expert message"; }
echo OK

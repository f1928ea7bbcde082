#!/usr/bin/env bash
# `mpirun -np 3 ditrun serve`: rank 0 answers HTTP while all three ranks render (a replica
# per rank, or a pipeline with --mode pipeline); every latent equals the single-process
# `ditrun run` of the same job, and SIGINT to rank 0 drains and ends every rank.
# Usage: serve_mpirun.sh DITRUN_BINARY TESTDATA_DIR
set -euo pipefail
ditrun=$1
tmp=$(mktemp -d); trap 'kill -9 ${server_pid:-0} 2>/dev/null || true; rm -rf "$tmp"' EXIT
source "$(dirname "$0")/lib/serve_helpers.sh"
command -v mpirun >/dev/null || { echo "mpirun not found"; exit 1; }
launch=(mpirun --oversubscribe --bind-to none -np 3)
[ "$(id -u)" = 0 ] && launch+=(--allow-run-as-root)

for mode in replicas pipeline; do
  out="$tmp/$mode"
  start_server "$out" --mode "$mode" --threads 1
  rank0_pid=$(sed -n 's/.*rank 0 of 3 on .* (pid \([0-9]*\)).*/\1/p' "$out.log" | head -1)
  [ -n "$rank0_pid" ] || { cat "$out.log"; echo "FAIL: no rank 0 pid in the log"; exit 1; }
  expect_status 200 "$(http GET /v1/health)" '"ranks":3'
  for i in 1 2 3 4 5 6; do
    expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"j$i\", \"seed\": $i, \"width\": 128, \"height\": 128, \"steps\": 3}")"
  done
  for i in 1 2 3 4 5 6; do wait_job "j$i" done; done
  metrics=$(curl -s "$base/metrics")
  for r in 0 1 2; do
    [[ "$metrics" == *"ditrun_device_memory_bytes{rank=\"$r\""* ]] || { echo "FAIL: no memory of rank $r"; echo "$metrics"; exit 1; }
  done
  stop_server
  unset rank0_pid
  for i in 1 2 3 4 5 6; do
    "$ditrun" run --id "j$i" --seed "$i" --width 128 --height 128 --steps 3 --threads 1 --out "$tmp/ref" >/dev/null 2>&1
    cmp "$out/j$i.safetensors" "$tmp/ref/j$i.safetensors"
  done
done
echo "serve_mpirun: ok"

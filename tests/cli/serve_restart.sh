#!/usr/bin/env bash
# A restarted `ditrun serve` resumes its queue from the ledger: after a drain (SIGINT) the
# queued jobs run at the next start; after a kill -9 the job that was running runs again.
# Every job ends done exactly once, and ids stay taken across restarts.
# Usage: serve_restart.sh DITRUN_BINARY TESTDATA_DIR
set -euo pipefail
ditrun=$1
tmp=$(mktemp -d); trap 'kill -9 ${server_pid:-0} 2>/dev/null || true; rm -rf "$tmp"' EXIT
source "$(dirname "$0")/lib/serve_helpers.sh"
size='"width": 128, "height": 128'

wait_running() {
  for _ in $(seq 400); do
    [[ "$(http GET "/v1/jobs/$1")" == *'"status":"running"'* ]] && return 0
    sleep 0.05
  done
  echo "FAIL: $1 never ran"; exit 1
}

# 1. Drain: the running job finishes, the queued ones wait in the ledger.
start_server "$tmp/out"
expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"long\", \"seed\": 1, \"width\": 256, \"height\": 256, \"steps\": 300}")"
wait_running long
for i in 1 2 3 4 5; do expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"q$i\", \"seed\": $i, $size, \"steps\": 3}")"; done
stop_server
[ -e "$tmp/out/long.safetensors" ] || { cat "$tmp/out.log"; echo "FAIL: the running job did not finish in the drain"; exit 1; }
[ ! -e "$tmp/out/q1.safetensors" ] || { echo "FAIL: a queued job started while draining"; exit 1; }
grep -q '5 queued stay' "$tmp/out.log" || { cat "$tmp/out.log"; echo "FAIL: no drain summary"; exit 1; }

# 2. The next start resumes them, in order, and remembers what was done.
start_server "$tmp/out"
grep -q 'resumed 5 queued job' "$tmp/out.log" || { cat "$tmp/out.log"; echo "FAIL: nothing resumed"; exit 1; }
for i in 1 2 3 4 5; do wait_job "q$i" done; done
expect_status 200 "$(http GET /v1/jobs/long)" '"status":"done"'
expect_status 409 "$(http POST /v1/jobs -d "{\"id\": \"q1\", \"seed\": 1, $size}")" 'taken'

# 3. kill -9 while a job runs and one waits: both run after the restart.
expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"killed\", \"seed\": 7, \"width\": 256, \"height\": 256, \"steps\": 300}")"
wait_running killed
expect_status 201 "$(http POST /v1/jobs -d "{\"id\": \"behind\", \"seed\": 8, $size, \"steps\": 3}")"
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true
start_server "$tmp/out"
grep -q 'resumed 2 queued job' "$tmp/out.log" || { cat "$tmp/out.log"; echo "FAIL: the killed jobs were not resumed"; exit 1; }
wait_job killed done
wait_job behind done
stop_server

# Each job: queued once, done once.
python3 - "$tmp/out" <<'PY'
import collections, json, os, sys
lines = [json.loads(l) for l in open(os.path.join(sys.argv[1], "ledger.jsonl")) if l.strip()]
count = collections.Counter((l["id"], l["status"]) for l in lines)
ids = ["long", "q1", "q2", "q3", "q4", "q5", "killed", "behind"]
for i in ids:
    assert count[(i, "queued")] == 1 and count[(i, "done")] == 1, f"{i}: {count[(i, 'queued')]} queued, {count[(i, 'done')]} done"
assert sum(count.values()) == 2 * len(ids), count
PY
# The same bits as one uninterrupted `ditrun run`.
"$ditrun" run --id killed --seed 7 --width 256 --height 256 --steps 300 --out "$tmp/ref" >/dev/null 2>&1
cmp "$tmp/out/killed.safetensors" "$tmp/ref/killed.safetensors"
echo "serve_restart: ok"

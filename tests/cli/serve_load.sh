#!/usr/bin/env bash
# A bounded load test of `ditrun serve` on loopback: 8 concurrent submitters send 25 jobs each
# into a queue of 16, retrying on 429, while readers poll status and metrics. Every job must
# be accepted once, rendered once and recorded once: no job lost, none duplicated.
# Usage: serve_load.sh DITRUN_BINARY TESTDATA_DIR
set -euo pipefail
ditrun=$1
tmp=$(mktemp -d); trap 'kill -9 ${server_pid:-0} 2>/dev/null || true; rm -rf "$tmp"' EXIT
source "$(dirname "$0")/lib/serve_helpers.sh"

submitters=8 per_submitter=25 total=$((8 * 25))
start_server "$tmp/out" --max-queue 16

submit_all() {  # submitter k: its jobs in order, each until accepted; then one duplicate
  local k=$1 i code
  for i in $(seq "$per_submitter"); do
    while true; do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/v1/jobs" \
        -d "{\"id\": \"s$k-$i\", \"seed\": $((k * 1000 + i)), \"width\": 128, \"height\": 128, \"steps\": 8}")
      case "$code" in
        201) echo "s$k-$i" >>"$tmp/accepted.$k"; break ;;
        429) echo x >>"$tmp/full.$k"; sleep 0.05 ;;
        *) echo "FAIL: submitter $k job $i got $code" >>"$tmp/errors"; return ;;
      esac
    done
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/v1/jobs" -d "{\"id\": \"s$k-1\", \"seed\": 1, \"width\": 128, \"height\": 128}")
  [ "$code" = 409 ] || echo "FAIL: duplicate s$k-1 got $code" >>"$tmp/errors"
}
poll() {  # a reader, while the submitters run
  while [ ! -e "$tmp/submitted" ]; do
    curl -s -o /dev/null "$base/v1/jobs?limit=50"
    curl -s -o /dev/null "$base/metrics"
    curl -s -o /dev/null "$base/v1/jobs/s1-1"
  done
}

poll & poller=$!
pids=()
for k in $(seq "$submitters"); do submit_all "$k" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
touch "$tmp/submitted"; wait "$poller"
[ ! -e "$tmp/errors" ] || { cat "$tmp/errors"; exit 1; }
accepted=$(cat "$tmp"/accepted.* | sort | uniq | wc -l)
[ "$accepted" = "$total" ] || { echo "FAIL: $accepted of $total jobs accepted"; exit 1; }
full=$(cat "$tmp"/full.* 2>/dev/null | wc -l)
[ "$full" -gt 0 ] || { echo "FAIL: the queue of 16 never filled (no 429), so the bound went untested"; exit 1; }

# Wait until everything is rendered.
for _ in $(seq 1200); do
  done_count=$(curl -s "$base/metrics" | awk '$1 == "ditrun_jobs_finished_total{status=\"done\"}" {print $2}')
  [ "${done_count:-0}" = "$total" ] && break
  sleep 0.1
done
[ "${done_count:-0}" = "$total" ] || { echo "FAIL: $done_count of $total jobs done"; exit 1; }
stop_server

# The ledger: each job queued once and done once, with its outputs on disk.
python3 - "$tmp/out" "$total" <<'PY'
import collections, json, os, sys
out, total = sys.argv[1], int(sys.argv[2])
lines = [json.loads(l) for l in open(os.path.join(out, "ledger.jsonl")) if l.strip()]
by_status = collections.defaultdict(collections.Counter)
for l in lines:
    by_status[l["status"]][l["id"]] += 1
queued, done = by_status["queued"], by_status["done"]
assert set(by_status) == {"queued", "done"}, f"unexpected statuses: {set(by_status)}"
assert len(queued) == total and all(n == 1 for n in queued.values()), "a job was queued twice or lost"
assert len(done) == total and all(n == 1 for n in done.values()), "a job was rendered twice or lost"
assert set(queued) == set(done)
for job in done:
    for f in (job + ".safetensors", job + ".png"):
        assert os.path.exists(os.path.join(out, f)), f"missing {f}"
print(f"ledger: {total} jobs queued once, done once, outputs present")
PY
echo "serve_load: ok ($total jobs, $full answers 429 on the way)"

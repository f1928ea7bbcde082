#!/usr/bin/env bash
# What `ditrun serve` costs on top of rendering: the same J jobs through `ditrun run --jobs`
# (the simplest alternative, and the render-only limit: the sum of its jobs' seconds) and
# through `ditrun serve` (submitted concurrently over HTTP, from the first POST until the
# last job is done), on the built-in tiny Flux. Then the HTTP layer alone: status requests
# per second on keep-alive connections, with latency percentiles.
#
# Usage: bench/serve_bench.sh [JOBS] [SIZE] [STEPS] [CONNECTIONS]   (defaults 100 256 4 4)
#   DITRUN=/path/to/ditrun (default: build/launcher/ditrun next to this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ditrun=${DITRUN:-$here/../build/launcher/ditrun}
jobs=${1:-100} size=${2:-256} steps=${3:-4} connections=${4:-4}
work=$(mktemp -d); trap 'kill -9 ${pid:-0} 2>/dev/null || true; rm -rf "$work"' EXIT

for i in $(seq "$jobs"); do
  echo "{\"id\": \"j$i\", \"seed\": $i, \"width\": $size, \"height\": $size, \"steps\": $steps, \"cond\": \"COND\"}"
done >"$work/jobs.template"

# 1. ditrun run: the built-in model's conditioning is made on the fly, so jobs name none
#    there; the single-job path fills it in. A jobs file needs a path: write one in Python.
python3 - "$work/cond.safetensors" <<'PY'
import json, random, struct, sys
rng = random.Random(7); header, offset, data = {}, 0, b""
for name, shape in {"txt": [16, 64], "y": [32]}.items():
    n = 1
    for d in shape: n *= d
    v = struct.pack("<%df" % n, *[rng.gauss(0, 1) for _ in range(n)])
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(v)]}
    offset += len(v); data += v
t = json.dumps(header).encode(); t += b" " * (-len(t) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(t)) + t + data)
PY
sed "s|COND|$work/cond.safetensors|" "$work/jobs.template" >"$work/jobs.jsonl"
start=$(date +%s.%N)
"$ditrun" run --jobs "$work/jobs.jsonl" --out "$work/run" >"$work/run.log" 2>&1
run_wall=$(python3 -c "import time; print(time.time() - $start)")

# 2. ditrun serve: the same jobs, inline-free (the cond path under an allowed root).
"$ditrun" serve --out "$work/serve" --listen 127.0.0.1:0 --port-file "$work/port" --allow-root "$work" \
  --max-queue "$jobs" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 400); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
python3 - "$port" "$work" "$jobs" "$connections" "$run_wall" <<'PY'
import http.client, json, os, statistics, sys, threading, time
port, work, jobs, connections, run_wall = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

c = conn()
while True:
    c.request("GET", "/v1/health"); r = c.getresponse(); r.read()
    if r.status == 200: break
    time.sleep(0.05)

lines = [json.loads(l) for l in open(os.path.join(work, "jobs.jsonl"))]
start = time.time()
def submit(part):
    h = conn()
    for job in part:
        h.request("POST", "/v1/jobs", body=json.dumps(job)); r = h.getresponse(); r.read()
        assert r.status == 201, (r.status, job["id"])
threads = [threading.Thread(target=submit, args=(lines[k::connections],)) for k in range(connections)]
for t in threads: t.start()
for t in threads: t.join()
submitted = time.time() - start
while True:
    c.request("GET", "/metrics"); r = c.getresponse(); text = r.read().decode()
    done = [l for l in text.splitlines() if l.startswith('ditrun_jobs_finished_total{status="done"}')]
    if done and int(float(done[0].split()[1])) == jobs: break
    time.sleep(0.01)
serve_window = time.time() - start

def ledger_seconds(d):
    return sum(json.loads(l)["seconds"] for l in open(os.path.join(work, d, "ledger.jsonl"))
               if json.loads(l)["status"] == "done")
run_render, serve_render = ledger_seconds("run"), ledger_seconds("serve")

# The HTTP layer alone: status requests on keep-alive connections.
latencies, lock = [], threading.Lock()
def hammer(n):
    h, mine = conn(), []
    for i in range(n):
        t = time.perf_counter()
        h.request("GET", f"/v1/jobs/j{1 + i % jobs}"); r = h.getresponse(); r.read()
        mine.append(time.perf_counter() - t)
    with lock: latencies.extend(mine)
per = 500
t0 = time.time()
threads = [threading.Thread(target=hammer, args=(per,)) for _ in range(connections)]
for t in threads: t.start()
for t in threads: t.join()
http_window = time.time() - t0
latencies.sort()

print(f"{jobs} jobs of the built-in tiny Flux, {lines[0]['width']}x{lines[0]['height']}, {lines[0]['steps']} steps; {connections} connections")
print(f"  ditrun run --jobs : render {run_render:7.2f} s (sum of job seconds)  wall {run_wall:7.2f} s (with start-up)  {jobs / run_render * 3600:9.0f} jobs/h")
print(f"  ditrun serve      : window {serve_window:7.2f} s (first POST to last done; submitting took {submitted:.2f} s)  {jobs / serve_window * 3600:9.0f} jobs/h")
print(f"                      render {serve_render:7.2f} s (sum of job seconds inside serve)")
print(f"  serve / render-only limit (run's job seconds): {run_render / serve_window:.2f} of the rate")
print(f"  serve overhead per job: {(serve_window - run_render) / jobs * 1000:.1f} ms")
print(f"  HTTP GET /v1/jobs/ID: {len(latencies) / http_window:8.0f} requests/s; latency p50 {statistics.median(latencies) * 1e3:.2f} ms, p99 {latencies[int(0.99 * len(latencies))] * 1e3:.2f} ms")
PY
kill -INT "$pid"; wait "$pid"

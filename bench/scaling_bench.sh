#!/usr/bin/env bash
# Scaling benchmark of `mpirun ... ditrun run` on the CPU backend: replicas, pipelines and
# sequence-parallel teams (--sp N: one job's step over N ranks) of 1..NMAX ranks, measured
# against the planner's prediction for the same layout.
#
# Usage:
#   bench/scaling_bench.sh [--nmax N] [--jobs J] [--size PX] [--steps S] [--text-tokens L]
#                          [--repeats R] [--threads-per-rank T] [--quiet-wait SECONDS]
#                          [--work DIR] [--keep]
#   defaults: --nmax = this machine's cores, 6 jobs of 512x512, 4 steps, 64 prompt tokens,
#   3 repeats, threads per rank = cores / ranks; --keep keeps the work folder (logs, plans)
#   DITRUN=/path/to/ditrun   the binary (default: build/launcher/ditrun next to this script)
#   MPIRUN_FLAGS="..."       replaces the default mpirun flags (see below)
#
# What it does:
#   1. `ditrun synth` writes a Flux-shaped checkpoint big enough that a step is compute-bound
#      (hidden 512, 4 heads of 128, 4 double + 8 single blocks, bf16, 136 MiB), a
#      conditioning file (txt [L, 512], y [256]; written here in Python) and J jobs of
#      PX x PX pixels and S steps (default 6 jobs, 512x512, 64 prompt tokens, 4 steps).
#   2. For every thread count a layout uses, `ditrun bench --calibrate --threads T` measures
#      this machine at the model's shape (tokens, hidden, heads), so predictions use one
#      rank's real rates at that thread count.
#   3. Runs `mpirun -np N ditrun run --mode replicas` and `--mode pipeline` for N = 1..NMAX
#      with T = cores / N threads per rank (or --threads-per-rank), plus a 1-rank baseline at
#      every T, each R times (medians reported), and `ditrun plan --cpu-ranks N --mode ...
#      --objective throughput --json` with the calibrated profile for the prediction.
#   4. Prints one table per mode. The sequence-parallel table compares one job's seconds per
#      step on a team of N ranks with one rank of the same threads (speedup) and with the
#      planner's prediction (`ditrun plan --cpu-ranks N --sp N`, latency objective).
#
# Reading the tables:
#   - render s: from the first job handed out to the last result (rank 0's log and ledger);
#     startup and model loading are not in it (wall s, the whole mpirun, includes them).
#   - jobs/h, s/step/job, amortized s/step: measured from the render window and the ledger.
#     amortized = render window / all steps of all jobs: what a queue of jobs costs per step.
#   - m/p: measured time / predicted time (> 1: slower than predicted).
#   - eff: (throughput with N ranks of T threads) / (N x throughput of 1 rank of T threads),
#     both measured in this run. The baseline has the same threads per rank, as a GPU cluster
#     has one GPU per rank: eff says whether the ranks get in each other's way (shared memory
#     bandwidth and caches, rank 0 also coordinating, messages), not whether threads scale.
#     pred eff is the planner's view of the same ratio.
#   - vs 1x all: throughput relative to one rank using every core (--threads = cores): the
#     practical question on one machine, ranks or threads.
#   - others %: CPU time used by other processes during the run, as a share of all cores
#     (from /proc/stat minus this run's own CPU time), the worst of the runs reported. Medians
#     use only the runs under 5%; '!' marks a layout where every run was above (rerun on a
#     quiet machine). Before every calibration and run the script waits (up to --quiet-wait
#     seconds, default 300) until the CPUs are under 10% busy for 2 s.
#   - "oversubscribed": ranks x threads exceed the cores; efficiency then measures the
#     operating system's time slicing, not ditrun.
#
# mpirun flags: --oversubscribe --bind-to none (+ --allow-run-as-root as root). Without
# --bind-to none Open MPI binds each rank to one core when there are at most 2 ranks, and a
# rank's T > 1 threads would then share that one core.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ditrun=${DITRUN:-$here/../build/launcher/ditrun}
cores=$(nproc)
nmax=$cores jobs=6 size=512 steps=4 text_tokens=64 repeats=3 threads_per_rank=0 quiet_wait=300 work="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nmax) nmax=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --text-tokens) text_tokens=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --threads-per-rank) threads_per_rank=$2; shift 2 ;;
    --quiet-wait) quiet_wait=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "scaling_bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$ditrun" ] || { echo "scaling_bench.sh: no ditrun binary at $ditrun (set DITRUN)" >&2; exit 2; }
command -v mpirun > /dev/null || { echo "scaling_bench.sh: mpirun not found" >&2; exit 2; }
if [ -z "$work" ]; then
  work=$(mktemp -d -t ditrun-scaling-XXXXXX)
  [ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
else
  mkdir -p "$work"
fi
if [ -n "${MPIRUN_FLAGS:-}" ]; then
  read -r -a mpirun_flags <<< "$MPIRUN_FLAGS"
else
  mpirun_flags=(--oversubscribe --bind-to none)
  if [ "$(id -u)" = 0 ]; then mpirun_flags+=(--allow-run-as-root); fi
fi

# --- helper: runs a command and measures it; reads ledgers; prints the tables -------------
helper=$work/scaling_helper.py
cat > "$helper" <<'PY'
import json, os, re, resource, statistics, subprocess, sys, time

def cpu_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v[:8]) - idle

def quiet(argv):
    """quiet MAX_WAIT: waits (up to MAX_WAIT seconds) until the CPUs are under 10% busy for 2 s"""
    start = time.monotonic()
    hz, cores = os.sysconf("SC_CLK_TCK"), os.cpu_count()
    while True:
        j0 = cpu_jiffies(); time.sleep(2); busy = (cpu_jiffies() - j0) / hz / (2 * cores)
        waited = time.monotonic() - start
        if busy < 0.10 or waited > float(argv[0]):
            break
        time.sleep(8)
    if waited > 3:
        print(f"  (waited {waited:.0f} s for the CPUs to be quiet; {100 * busy:.0f}% busy now)", file=sys.stderr)

def run(argv):
    """run LOG OUT MODE RANKS THREADS -- CMD...: runs CMD (stdout+stderr to LOG), prints one JSON line."""
    log, out, mode, ranks, threads = argv[:5]
    cmd = argv[6:]
    hz, cores = os.sysconf("SC_CLK_TCK"), os.cpu_count()
    ru0, j0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_jiffies(), time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - t0
    ru1, j1 = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_jiffies()
    ours = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    others = max(0.0, (j1 - j0) / hz - ours) / (wall * cores)
    r = {"mode": mode, "ranks": int(ranks), "threads": int(threads), "rc": rc, "wall": wall, "others": others}
    r.update(measure(out, log))
    print(json.dumps(r))

def measure(out, log):
    """Render window and steps from rank 0's ledger and log ('[hh:mm:ss.mmm] ... job 'ID' done in')."""
    ledger = {}
    path = os.path.join(out, "ledger.jsonl")
    if os.path.exists(path):
        for line in open(path):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            ledger[e["id"]] = e
    done = {k: e for k, e in ledger.items() if e.get("status") == "done"}
    finish = {}
    pat = re.compile(r"^\[(\d+):(\d+):(\d+)\.(\d+)\].*job '([^']+)' done in")
    day, last = 0.0, None
    for line in open(log, errors="replace"):
        m = pat.match(line)
        if not m:
            continue
        t = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + int(m[4]) / 1000 + day
        if last is not None and t < last:  # past midnight
            day += 86400; t += 86400
        last = t
        finish[m[5]] = t
    r = {"jobs": len(done), "failed": len(ledger) - len(done), "steps": sum(e["steps"] for e in done.values())}
    if done and all(k in finish for k in done):
        start = min(finish[k] - done[k]["seconds"] for k in done)
        r["render"] = max(finish[k] for k in done) - start
        r["job_sps"] = statistics.mean(e["seconds_per_step"] for e in done.values())
    return r

def load(path):
    return [json.loads(l) for l in open(path) if l.strip()]

def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)

def table(title, header, rows):
    print(f"\n{title}")
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))

def report(argv):
    """report RESULTS.jsonl PREDICTIONS.jsonl CORES T1: T1 = threads of the 1-rank row of the pipeline table"""
    results, preds, cores, t1 = load(argv[0]), load(argv[1]), int(argv[2]), int(argv[3])
    disturbed = set()
    def runs(mode, n, t):
        mode = "replicas" if n == 1 else mode  # one rank: the same run for both modes
        rs = [r for r in results if r["mode"] == mode and r["ranks"] == n and r["threads"] == t and r.get("render")]
        clean = [r for r in rs if r["others"] <= 0.05]
        if rs and not clean:
            disturbed.add((n, t))
        return clean or rs
    def med(rs, key):
        return statistics.median(r[key] for r in rs) if rs else None
    def spread(rs):
        v = [r["render"] for r in rs]
        return f"{min(v):.2f}-{max(v):.2f}" if len(v) > 1 else "-"
    def pred(mode, n, t):
        mode = "replicas" if n == 1 else mode
        return next((p for p in preds if p["mode"] == mode and p["ranks"] == n and p["threads"] == t), None)
    def jph(rs):
        return 3600 * med(rs, "jobs") / med(rs, "render") if rs else None
    all_jph = jph(runs("replicas", 1, cores))
    for mode in ("replicas", "pipeline"):
        layouts = sorted({(r["ranks"], r["threads"]) for r in results if r["mode"] == mode})
        if mode == "pipeline":
            layouts = [(1, t1)] + layouts
        rows = []
        for n, t in layouts:
            rs, p, b, pb = runs(mode, n, t), pred(mode, n, t), runs(mode, 1, t), pred(mode, 1, t)
            if not rs:
                continue
            m_jph, b_jph = jph(rs), jph(b)
            eff = m_jph / (n * b_jph) if b_jph else None
            vs_all = m_jph / all_jph if all_jph else None
            others = f"{100 * max(r['others'] for r in rs):.0f}" + ("!" if (n, t) in disturbed else "")
            flag = "oversubscribed" if n * t > cores else ""
            every = [r for r in results if r["ranks"] == n and r["threads"] == t and r.get("render")
                     and r["mode"] == ("replicas" if n == 1 else mode)]
            head = [n, t, f"{med(rs, 'wall'):.2f}", f"{med(rs, 'render'):.2f}", spread(every)]
            tail = [fmt(eff, ".2f"), None, fmt(vs_all, ".2f"), others, p["plan_mode"] if p else "-", flag]
            if mode == "replicas":
                p_jph = 3600 / p["seconds_per_job"] if p else None
                tail[1] = fmt(p_jph / (n * 3600 / pb["seconds_per_job"]) if p and pb else None, ".2f")
                rows.append(head + [f"{m_jph:.0f}", fmt(p_jph, ".0f"), fmt(p_jph / m_jph if p_jph else None)] + tail)
            else:
                amort = med(rs, "render") / med(rs, "steps")
                job_sps = med(rs, "job_sps")
                ps, pts = (p["step_seconds"], p["throughput_step_seconds"]) if p else (None, None)
                tail[1] = fmt(pb["throughput_step_seconds"] / (n * pts) if p and pb else None, ".2f")
                rows.append(head + [fmt(job_sps), fmt(ps), fmt(job_sps / ps if ps else None), fmt(amort), fmt(pts),
                                    fmt(amort / pts if pts else None)] + tail)
        if mode == "replicas":
            table("replicas: mpirun -np N ditrun run --mode replicas --threads thr (jobs handed out one at a time)",
                  ["N", "thr", "wall s", "render s", "range", "jobs/h", "pred jobs/h", "m/p", "eff", "pred eff",
                   "vs 1x all", "others %", "plan", ""], rows)
        else:
            table("pipeline: mpirun -np S ditrun run --mode pipeline --threads thr (S jobs in flight)",
                  ["S", "thr", "wall s", "render s", "range", "s/step/job", "pred step", "m/p", "amortized",
                   "pred amort", "m/p", "eff", "pred eff", "vs 1x all", "others %", "plan", ""], rows)
    rows = []
    for n, t in sorted({(r["ranks"], r["threads"]) for r in results if r["mode"] == "sp"}):
        rs, base, p, pb = runs("sp", n, t), runs("replicas", 1, t), pred("sp", n, t), pred("replicas", 1, t)
        if not rs or not base:
            continue
        sps, base_sps = med(rs, "job_sps"), med(base, "job_sps")
        ps = p["step_seconds"] if p else None
        p_speedup = pb["step_seconds"] / ps if p and pb else None
        others = f"{100 * max(r['others'] for r in rs):.0f}" + ("!" if (n, t) in disturbed else "")
        rows.append([n, t, f"{med(rs, 'render'):.2f}", fmt(base_sps), fmt(sps), fmt(ps), fmt(sps / ps if ps else None),
                     f"{base_sps / sps:.2f}x", fmt(p_speedup, ".2f") + ("x" if p_speedup else ""), others,
                     "oversubscribed" if n * t > cores else ""])
    if rows:
        table("sequence parallel: mpirun -np N ditrun run --sp N --threads thr (one job's step over N ranks)",
              ["N", "thr", "render s", "1-rank s/step", "s/step/job", "pred step", "m/p", "speedup", "pred speedup",
               "others %", ""], rows)
    print("\nmedians over the runs that other processes disturbed by 5% of the CPUs or less (range: all runs)")
    print("m/p: measured time / predicted time (jobs/h: the inverse ratio, predicted / measured jobs/h)")
    bad = [r for r in results if r["rc"] != 0 or r.get("failed") or "render" not in r]
    if bad:
        print(f"warning: {len(bad)} run(s) exited non-zero or failed jobs; see the logs in the work folder")
    if disturbed:
        print("warning: '!': every run of that layout was disturbed (other processes used over 5% of the CPUs);"
              " rerun on a quiet machine")

def plan(argv):
    """plan JSON MODE RANKS THREADS: one prediction line from `ditrun plan --json` output"""
    d = json.load(open(argv[0]))
    p = d["predicted"]
    print(json.dumps({"mode": argv[1], "ranks": int(argv[2]), "threads": int(argv[3]), "plan_mode": d["mode"],
                      "step_seconds": p["step_seconds"], "throughput_step_seconds": p["throughput_step_seconds"],
                      "seconds_per_job": p["seconds_per_job"],
                      "stages": [r["predicted"]["stage_seconds"] for r in d["ranks"]]}))

def cond(argv):
    """cond PATH L CTX VEC: Flux conditioning, txt [L, CTX] and y [VEC], f32 unit normals (seed 1)"""
    import random, struct
    path, L, ctx, vec = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    rng = random.Random(1)
    tensors = {"txt": ([L, ctx], [rng.gauss(0, 1) for _ in range(L * ctx)]),
               "y": ([vec], [rng.gauss(0, 1) for _ in range(vec)])}
    header, blobs, off = {}, [], 0
    for name, (shape, vals) in tensors.items():
        b = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # safetensors: the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

{"quiet": quiet, "run": run, "report": report, "plan": plan, "cond": cond}[sys.argv[1]](sys.argv[2:])
PY
py() { python3 "$helper" "$@"; }

# --- the model, its conditioning and the jobs ----------------------------------------------
hidden=512 heads=4 ctx=512 vec=256
cat > "$work/config.json" <<EOF
{"architecture": "flux",
 "params": {"in_channels": 64, "out_channels": 64, "theta": 10000, "qkv_bias": true, "mlp_ratio": 4.0,
            "vec_in_dim": $vec, "context_in_dim": $ctx, "hidden_size": $hidden, "num_heads": $heads,
            "depth": 4, "depth_single_blocks": 8, "axes_dim": [16, 56, 56], "guidance_embed": true},
 "sampling": {"steps": "$steps", "guidance": "3.5", "shift": "flux-dynamic"}}
EOF
model=$work/model.safetensors
[ -f "$model" ] || "$ditrun" --log-level warn synth --arch flux --preset "$work/config.json" --weights bf16 --seed 0 --out "$model"
py cond "$work/cond.safetensors" "$text_tokens" "$ctx" "$vec"
: > "$work/jobs.jsonl"
for ((j = 0; j < jobs; ++j)); do
  echo "{\"id\": \"job$j\", \"cond\": \"cond.safetensors\", \"seed\": $j, \"width\": $size, \"height\": $size, \"steps\": $steps}" >> "$work/jobs.jsonl"
done
tokens=$(( ((size + 15) / 16) * ((size + 15) / 16) + text_tokens ))

threads_for() {  # threads per rank for N ranks
  if [ "$threads_per_rank" -gt 0 ]; then echo "$threads_per_rank"; else local t=$((cores / $1)); echo $((t < 1 ? 1 : t)); fi
}

# --- calibrations (one per thread count), predictions ---------------------------------------
results=$work/results.jsonl preds=$work/predictions.jsonl
: > "$results"; : > "$preds"
declare -A profile
calibrate() {
  local t=$1
  [ -n "${profile[$t]:-}" ] && return
  profile[$t]=$work/cpu-t$t.json
  "$ditrun" --log-level warn bench --calibrate --out "${profile[$t]}" --threads "$t" --tokens "$tokens" \
    --hidden "$hidden" --inner "$hidden" --attention-tokens "$tokens" --heads "$heads" --head-dim $((hidden / heads)) \
    --stream-mib 64 --seconds 0.5 > "$work/calibrate-t$t.txt"
}
layout_flags() {  # MODE N: how run and plan are told the layout (sp: a team of N ranks, one job at a time)
  if [ "$1" = sp ]; then echo "--sp $2 --objective latency"; else echo "--mode $1 --objective throughput"; fi
}
predict() {  # MODE N T
  local mode=$1 n=$2 t=$3 out=$work/plan-$1-$2x$3.json
  # shellcheck disable=SC2046
  "$ditrun" --log-level warn plan "$model" --devices "${profile[$t]}" --cpu-ranks "$n" $(layout_flags "$mode" "$n") \
    --width "$size" --height "$size" --text-tokens "$text_tokens" --steps "$steps" --json > "$out"
  py plan "$out" "$mode" "$n" "$t" >> "$preds"
}
measure() {  # MODE N T REP
  local mode=$1 n=$2 t=$3 rep=$4 out=$work/out-$1-$2x$3-$4
  rm -rf "$out"
  py quiet "$quiet_wait"
  # shellcheck disable=SC2046
  py run "$out.log" "$out" "$mode" "$n" "$t" -- mpirun "${mpirun_flags[@]}" -np "$n" \
    "$ditrun" run "$model" --jobs "$work/jobs.jsonl" --out "$out" $(layout_flags "$mode" "$n") --threads "$t" >> "$results"
  tail -n 1 "$results" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("  %-8s N=%d T=%d: render %s s, wall %.2f s, %d jobs, others %.0f%%" % (r["mode"], r["ranks"], r["threads"], "%.2f" % r["render"] if "render" in r else "-", r["wall"], r["jobs"], 100 * r["others"]))'
}

echo "scaling_bench: $cores cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(nproc --all) online"
echo "model: Flux hidden $hidden, 4 double + 8 single blocks, bf16 ($(du -h "$model" | cut -f1)); $jobs jobs of ${size}x$size, $text_tokens prompt tokens ($tokens tokens), $steps steps"
echo "mpirun ${mpirun_flags[*]}; work folder $work; $repeats repeat(s), medians reported"
layouts=()  # "MODE N T"
for ((n = 1; n <= nmax; ++n)); do
  t=$(threads_for "$n")
  if [ "$n" = 1 ]; then layouts+=("replicas 1 $t"); else layouts+=("replicas $n $t" "pipeline $n $t" "sp $n $t"); fi
  layouts+=("replicas 1 $t")  # the same threads on one rank: the efficiency baseline
done
[ "$threads_per_rank" -gt 0 ] || layouts+=("replicas 1 $cores")  # one rank with every core
mapfile -t layouts < <(printf '%s\n' "${layouts[@]}" | awk '!seen[$0]++')
for l in "${layouts[@]}"; do
  read -r mode n t <<< "$l"
  py quiet "$quiet_wait"
  calibrate "$t"
  predict "$mode" "$n" "$t"
done
for ((rep = 1; rep <= repeats; ++rep)); do
  echo "repeat $rep of $repeats"
  for l in "${layouts[@]}"; do
    read -r mode n t <<< "$l"
    measure "$mode" "$n" "$t" "$rep"
  done
done
for t in "${!profile[@]}"; do
  echo "calibration at $t thread(s): $(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print("gemm bf16 %.1f GFLOP/s, attention %.1f GFLOP/s, memory %.1f GB/s" % (1e3*p["gemm_tflops"]["bf16"], 1e3*p["attention_tflops"], p["memory_gb_per_s"]))' "${profile[$t]}")"
done
py report "$results" "$preds" "$cores" "$(threads_for 1)"

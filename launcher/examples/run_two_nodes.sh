#!/usr/bin/env bash
# `ditrun run` on two nodes with mpirun and a hostfile (Open MPI), CPU backend.
#
#   HOSTFILE=hostfile MODEL=/shared/models/flux1-dev-Q8_0.gguf JOBS=/shared/queue/jobs.jsonl \
#   OUT=/shared/renders/run1 RANKS_PER_NODE=4 THREADS=8 launcher/examples/run_two_nodes.sh
#
# Run it on the first node of the hostfile: rank 0 starts there (it plans, reads the
# conditioning files, coordinates and writes OUT). What must be where:
#   every node:   the ditrun binary, the model and the jobs file, at the same paths
#   rank 0 only:  conditioning / noise files of the jobs, and OUT (rank 0 sends each job's
#                 inputs to the rank that renders it, and receives the result)
# Today every rank computes on the CPU backend (no CUDA backend yet): RANKS_PER_NODE x
# THREADS should match the cores of a node. docs/cluster.md has the details; this script has
# been run on one machine only (the project has no second node to test on).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DITRUN=${DITRUN:-$(command -v ditrun || echo "$here/../../build/launcher/ditrun")}
HOSTFILE=${HOSTFILE:-$here/hostfile}
MODEL=${MODEL:?set MODEL to a checkpoint readable on every node}
JOBS=${JOBS:?set JOBS to a jobs.jsonl readable on every node}
OUT=${OUT:?set OUT to rank 0s output folder}
NODES=${NODES:-2}
RANKS_PER_NODE=${RANKS_PER_NODE:-4}   # at most the node's slots in the hostfile
THREADS=${THREADS:-1}                 # cores per rank: a node's cores / RANKS_PER_NODE
MODE=${MODE:-replicas}                # replicas or pipeline (see docs/cluster.md)
STAGES=${STAGES:-1}                   # replicas only: ranks per pipeline group
WIDTH=${WIDTH:-1024} HEIGHT=${HEIGHT:-1024} STEPS=${STEPS:-28}   # the queue's largest job
ranks=$((NODES * RANKS_PER_NODE))
plan=$OUT/plan.json

mkdir -p "$OUT"
# The plan, made here for exactly $ranks ranks (run refuses a plan for another count), with
# this node's rates measured at the threads a rank will use. Kept in OUT and reused by a rerun.
if [ ! -f "$plan" ]; then
  "$DITRUN" bench --calibrate --threads "$THREADS" --out "$OUT/cpu-node.json"
  stages=()
  if [ "$MODE" = replicas ]; then stages=(--stages "$STAGES"); fi
  "$DITRUN" plan "$MODEL" --devices "$OUT/cpu-node.json" --cpu-ranks "$ranks" --mode "$MODE" "${stages[@]}" \
    --objective throughput --width "$WIDTH" --height "$HEIGHT" --steps "$STEPS" --out "$plan"
fi

env_flags=(-x PATH)                                 # the same PATH on the remote nodes
if [ -n "${LD_LIBRARY_PATH:-}" ]; then env_flags+=(-x LD_LIBRARY_PATH); fi   # only if set (mpirun warns otherwise)
env_flags+=(-x OPENBLAS_NUM_THREADS=1)              # ditrun runs OpenBLAS single-threaded (its own threads split the work): no idle BLAS pool per rank

# --hostfile: the nodes and their slots.
# --map-by ppr:K:node:PE=T: K ranks per node, each given T cores (processing elements).
# --rank-by slot: ranks fill the first node, then the next, so consecutive ranks (the stages
#   of one pipeline group) share a node whenever STAGES divides RANKS_PER_NODE; only the
#   groups' traffic with rank 0 (jobs out, results back) crosses nodes.
# --bind-to core: each rank stays on its T cores. Do not leave Open MPI's default binding
#   with THREADS > 1 and no PE=: with 2 ranks or fewer it binds each rank to one core, and
#   the rank's threads then share that core (measured: 34.9 s instead of 18.5 s for the same
#   6 jobs with 2 threads; docs/cluster.md).
# --report-bindings: prints where each rank landed, to check the layout.
# --resume: skip the jobs the ledger in OUT records as done; a rerun renders the rest.
# As root (containers), Open MPI also wants OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment (or --allow-run-as-root).
exec mpirun --hostfile "$HOSTFILE" -np "$ranks" \
  --map-by "ppr:$RANKS_PER_NODE:node:PE=$THREADS" --rank-by slot --bind-to core --report-bindings \
  "${env_flags[@]}" \
  "$DITRUN" run "$MODEL" --jobs "$JOBS" --out "$OUT" --plan "$plan" --threads "$THREADS" --resume

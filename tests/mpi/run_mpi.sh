#!/usr/bin/env bash
# Runs a program under mpirun for ctest:
#   run_mpi.sh MPIEXEC NUMPROC_FLAG RANKS PROGRAM [ARGS...]
# --oversubscribe: CI machines have fewer cores than some tests have ranks.
# --bind-to none: ranks pinned to one core each would crowd onto the same cores when
#   oversubscribed (and GPU ranks run helper threads).
# --allow-run-as-root: OpenMPI refuses to start as root (CI containers) without it.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: run_mpi.sh MPIEXEC NUMPROC_FLAG RANKS PROGRAM [ARGS...]" >&2
  exit 2
fi
mpiexec="$1" numproc_flag="$2" ranks="$3"
shift 3
flags=(--oversubscribe --bind-to none)
if [ "$(id -u)" = 0 ]; then
  flags+=(--allow-run-as-root)
fi
exec "$mpiexec" "${flags[@]}" "$numproc_flag" "$ranks" "$@"

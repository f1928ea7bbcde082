# Helpers for the `ditrun serve` tests: start a server on a free loopback port, wait until it
# is ready, talk to it with curl, stop it. Sourced by tests/cli/serve_*.sh after they set
# $ditrun and $tmp.

# start_server DIR ARGS...: starts `ditrun serve --out DIR ARGS...` in the background (under
# the command in the array $launch when set, e.g. mpirun); sets $server_pid and $base
# (http://127.0.0.1:PORT); the log goes to DIR.log.
start_server() {
  local dir=$1; shift
  rm -f "$dir.port"
  ${launch[@]+"${launch[@]}"} "$ditrun" serve --out "$dir" --listen 127.0.0.1:0 --port-file "$dir.port" "$@" >"$dir.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    [ -s "$dir.port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$dir.log"; echo "FAIL: the server exited before listening"; exit 1; }
    sleep 0.05
  done
  [ -s "$dir.port" ] || { cat "$dir.log"; echo "FAIL: no port file"; exit 1; }
  base="http://127.0.0.1:$(cat "$dir.port")"
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/health")" = 200 ] && return 0
    sleep 0.05
  done
  cat "$dir.log"; echo "FAIL: the server never became ready"; exit 1
}

# stop_server: SIGINT (drain) to the server, or to $rank0_pid when set (under mpirun), then
# waits for the exit; fails if it does not exit in time or exits non-zero.
stop_server() {
  kill -INT "${rank0_pid:-$server_pid}"
  for _ in $(seq 600); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$server_pid" 2>/dev/null; then kill -9 "$server_pid"; echo "FAIL: the server did not stop on SIGINT"; exit 1; fi
  wait "$server_pid" || { echo "FAIL: the server exited with $?"; exit 1; }
}

# http METHOD PATH [curl args...]: prints "STATUS BODY" on one line.
http() {
  local method=$1 path=$2; shift 2
  local body status
  body=$(curl -s -X "$method" -w '\n%{http_code}' "$@" "$base$path")
  status=${body##*$'\n'}
  printf '%s %s\n' "$status" "${body%$'\n'*}"
}

# expect_status WANT "STATUS BODY" [substring]: checks an http() result.
expect_status() {
  local want=$1 got=$2 needle=${3:-}
  [ "${got%% *}" = "$want" ] || { echo "FAIL: expected $want, got: $got"; exit 1; }
  if [ -n "$needle" ] && [[ "$got" != *"$needle"* ]]; then echo "FAIL: expected '$needle' in: $got"; exit 1; fi
}

# wait_job ID STATE: polls until the job reaches STATE (done/failed/cancelled) or times out.
# Sends the headers in the array $auth, when the test set one.
wait_job() {
  local id=$1 want=$2 got=""
  for _ in $(seq 1200); do
    got=$(curl -s ${auth[@]+"${auth[@]}"} "$base/v1/jobs/$id" |
      python3 -c 'import json,sys; print(json.load(sys.stdin).get("status", "?"))')
    [ "$got" = "$want" ] && return 0
    case "$got" in done|failed|cancelled) break ;; esac
    sleep 0.05
  done
  echo "FAIL: job $id is '$got', expected '$want'"; curl -s ${auth[@]+"${auth[@]}"} "$base/v1/jobs/$id"; exit 1
}

# write_cond FILE SEED: a conditioning safetensors for the built-in tiny Flux (txt [16, 64],
# y [32], f32), values from SEED.
write_cond() {
  python3 - "$1" "$2" <<'PY'
import json, random, struct, sys
path, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
tensors = {"txt": [16, 64], "y": [32]}
header, offset, data = {}, 0, b""
for name, shape in tensors.items():
    n = 1
    for d in shape: n *= d
    values = struct.pack("<%df" % n, *[rng.gauss(0, 1) for _ in range(n)])
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(values)]}
    offset += len(values); data += values
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + data)
PY
}

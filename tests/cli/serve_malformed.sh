#!/usr/bin/env bash
# `ditrun serve` against bad clients: malformed HTTP, bad JSON and jobs, oversized headers and
# bodies, invalid uploads, unknown endpoints and methods, slow and dropped connections. Each
# gets a 4xx JSON error (or the connection closed), and the server keeps serving throughout.
# Also: the refusals at start (a non-loopback address without a token, a bad --listen).
# Usage: serve_malformed.sh DITRUN_BINARY TESTDATA_DIR
set -euo pipefail
ditrun=$1
tmp=$(mktemp -d); trap 'kill -9 ${server_pid:-0} 2>/dev/null || true; rm -rf "$tmp"' EXIT
source "$(dirname "$0")/lib/serve_helpers.sh"

# Refused at start, with one line and exit 2.
set +e
"$ditrun" serve --out "$tmp/x" --listen 0.0.0.0:0 >"$tmp/refused.log" 2>&1; code=$?
set -e
[ $code = 2 ] && grep -q 'without a token' "$tmp/refused.log" || { cat "$tmp/refused.log"; echo "FAIL: open listen accepted"; exit 1; }
set +e
"$ditrun" serve --out "$tmp/x" --listen nonsense >"$tmp/refused.log" 2>&1; code=$?
set -e
[ $code = 2 ] && grep -q "listen 'nonsense'" "$tmp/refused.log" || { cat "$tmp/refused.log"; echo "FAIL: bad --listen"; exit 1; }

start_server "$tmp/out" --max-body 64kb --request-timeout 1 --idle-timeout 1
port=${base##*:}
json=(-H 'Content-Type: application/json')

# raw BYTES: sends exact bytes on a new connection, prints the status line's code ("" if none).
raw() {
  python3 - "$port" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
        if b"\r\n\r\n" in data and b"Content-Length: " in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            if len(body) >= length: break
except socket.timeout:
    pass
line = data.split(b"\r\n")[0].decode("latin-1")
print(line.split(" ")[1] if line.startswith("HTTP/") else "")
PY
}

# Bad JSON and bad jobs: 400 for what is not a JSON object, 422 for a job that breaks a rule.
expect_status 400 "$(http POST /v1/jobs "${json[@]}" -d '{"id": "a", ')" 'not valid JSON'
expect_status 400 "$(http POST /v1/jobs -d '[1, 2]')" 'JSON object'
expect_status 400 "$(http POST /v1/jobs -d '')"
expect_status 400 "$(http POST /v1/jobs -d '{"id": "a", "id": "b", "seed": 1}')" 'given twice'
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 256, "height": 256, "stpes": 3}')" "unknown key 'stpes'"
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": -1, "width": 256, "height": 256}')" 'seed'
expect_status 422 "$(http POST /v1/jobs -d '{"id": "../../etc", "seed": 1, "width": 256, "height": 256}')" 'id'
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 100000, "height": 256}')" 'width'
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 256, "height": 256, "frames": 5}')" "frames must be 1"
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 256, "height": 256, "config": "x.json"}')" 'config'
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 256, "height": 256, "cond_b64": "***"}')" 'base64'
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 256, "height": 256, "cond_b64": "aGVsbG8="}')" "job 'a': the uploaded cond"
expect_status 422 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 256, "height": 256, "cond_b64": 5}')" 'base64'
expect_status 403 "$(http POST /v1/jobs -d '{"id": "a", "seed": 1, "width": 256, "height": 256, "cond": "/etc/passwd"}')" 'no server-side paths'
[ -z "$(ls "$tmp/out/uploads")" ] || { echo "FAIL: a refused upload was kept: $(ls "$tmp/out/uploads")"; exit 1; }

# Sizes: a body over --max-body is refused before it is read; so is a huge header.
head -c 100000 /dev/zero | tr '\0' 'a' >"$tmp/big"
expect_status 413 "$(http POST /v1/jobs --data-binary @"$tmp/big")"
expect_status 431 "$(http GET /v1/health -H "X-Filler: $(head -c 20000 /dev/zero | tr '\0' 'b')")"

# Endpoints and methods.
expect_status 404 "$(http GET /v2/jobs)"
expect_status 404 "$(http GET /v1/jobs/nosuch)"
expect_status 404 "$(http GET '/v1/jobs/%2e%2e%2fledger.jsonl')"
expect_status 404 "$(http GET /v1/jobs/nosuch/latent)"
expect_status 405 "$(http PUT /v1/jobs -d '{}')"
expect_status 405 "$(http DELETE /metrics)"

# Malformed HTTP on raw connections.
[ "$(raw 'GARBAGE\r\n\r\n')" = 400 ] || { echo "FAIL: garbage request line"; exit 1; }
[ "$(raw 'GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n')" = 505 ] || { echo "FAIL: HTTP/9.9"; exit 1; }
[ "$(raw 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')" = 400 ] || { echo "FAIL: bad length"; exit 1; }
[ "$(raw 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n')" = 400 ] || { echo "FAIL: bad chunk"; exit 1; }
# A client that stops halfway through its request is answered 408 after --request-timeout.
[ "$(raw 'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"id"')" = 408 ] || { echo "FAIL: slow body"; exit 1; }
# Connections dropped mid-request.
for _ in 1 2 3; do
  python3 -c "import socket; s = socket.create_connection(('127.0.0.1', $port)); s.sendall(b'POST /v1/jobs HTTP/1.1\r\nContent-Length: 50\r\n\r\n{'); s.close()"
done

# Still serving, and nothing was queued by any of it.
expect_status 200 "$(http GET /v1/health)" '"queued":0'
expect_status 201 "$(http POST /v1/jobs -d '{"id": "fine", "seed": 1, "width": 256, "height": 256, "steps": 2}')"
wait_job fine done
metrics=$(curl -s "$base/metrics")
[[ "$metrics" == *'ditrun_jobs_submitted_total 1'* ]] || { echo "FAIL: $metrics"; exit 1; }
stop_server
echo "serve_malformed: ok"

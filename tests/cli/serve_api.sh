#!/usr/bin/env bash
# `ditrun serve` through a real HTTP client (curl): a job by default conditioning, by inline
# upload, by server-side path and by prompt (the built-in tiny encoders) renders
# bit-identically to `ditrun run`; status, latent,
# decoded image (the built-in tiny VAE), preview, listing, cancel, metrics, the bearer token, and a clean drain on SIGINT.
# Usage: serve_api.sh DITRUN_BINARY TESTDATA_DIR
set -euo pipefail
ditrun=$1
tmp=$(mktemp -d); trap 'kill -9 ${server_pid:-0} 2>/dev/null || true; rm -rf "$tmp"' EXIT
source "$(dirname "$0")/lib/serve_helpers.sh"

mkdir -p "$tmp/inputs"
write_cond "$tmp/inputs/cond.safetensors" 7
ln -s /etc "$tmp/inputs/etc-link"
start_server "$tmp/out" --token s3cret --allow-root "$tmp/inputs"
auth=(-H "Authorization: Bearer s3cret")
size='"width": 256, "height": 256, "steps": 4'

# The token: health is open, everything else needs it.
expect_status 200 "$(http GET /v1/health)" '"status":"ready"'
expect_status 401 "$(http GET /v1/jobs)" 'token'
expect_status 401 "$(http GET /metrics -H 'Authorization: Bearer wrong')"
expect_status 401 "$(http POST /v1/jobs -d "{\"id\": \"x\", \"seed\": 1, $size}")"

# Four ways to give the conditioning; each output equals `ditrun run` of the same job.
expect_status 201 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"builtin\", \"seed\": 1, $size}")" '"position"'
cond_b64=$(base64 -w0 "$tmp/inputs/cond.safetensors")
printf '{"id": "upload", "seed": 2, "cond_b64": "%s", %s}' "$cond_b64" "$size" >"$tmp/upload.json"
expect_status 201 "$(http POST /v1/jobs "${auth[@]}" --data-binary @"$tmp/upload.json")"
expect_status 201 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"path\", \"seed\": 3, \"cond\": \"cond.safetensors\", $size}")"
expect_status 201 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"prompt\", \"seed\": 6, \"prompt\": \"a red fox\", $size}")"
for id in builtin upload path prompt; do wait_job "$id" done; done
curl -sf "${auth[@]}" "$base/v1/jobs/prompt/latent" -o "$tmp/prompt.safetensors"
"$ditrun" run --id prompt --seed 6 --width 256 --height 256 --steps 4 --prompt "a red fox" --out "$tmp/ref" >/dev/null 2>&1
cmp "$tmp/prompt.safetensors" "$tmp/ref/prompt.safetensors"
curl -sf "${auth[@]}" "$base/v1/jobs/builtin/latent" -o "$tmp/builtin.safetensors"
curl -sf "${auth[@]}" "$base/v1/jobs/upload/latent" -o "$tmp/upload.safetensors"
curl -sf "${auth[@]}" "$base/v1/jobs/path/image" -o "$tmp/path.png"
curl -sf "${auth[@]}" "$base/v1/jobs/path/preview.png" -o "$tmp/path.preview.png"
"$ditrun" run --id builtin --seed 1 --width 256 --height 256 --steps 4 --out "$tmp/ref" >/dev/null 2>&1
"$ditrun" run --id upload --seed 2 --width 256 --height 256 --steps 4 --cond "$tmp/inputs/cond.safetensors" \
  --out "$tmp/ref" >/dev/null 2>&1
"$ditrun" run --id path --seed 3 --width 256 --height 256 --steps 4 --cond "$tmp/inputs/cond.safetensors" \
  --preview --out "$tmp/ref" >/dev/null 2>&1
cmp "$tmp/builtin.safetensors" "$tmp/ref/builtin.safetensors"
cmp "$tmp/upload.safetensors" "$tmp/ref/upload.safetensors"
cmp "$tmp/path.png" "$tmp/ref/path.png"
cmp "$tmp/path.preview.png" "$tmp/ref/path.preview.png"
[ -z "$(ls "$tmp/out/uploads")" ] || { echo "FAIL: uploads left behind: $(ls "$tmp/out/uploads")"; exit 1; }

status=$(http GET /v1/jobs/upload "${auth[@]}")
expect_status 200 "$status" '"status":"done"'
for field in '"steps":4' '"seconds_per_step"' '"started_at"' '"finished_at"' '"where":"rank 0"' '"latent":"/v1/jobs/upload/latent"'; do
  [[ "$status" == *"$field"* ]] || { echo "FAIL: no $field in $status"; exit 1; }
done
expect_status 200 "$(http GET '/v1/jobs?state=done&limit=2' "${auth[@]}")" '"id":"path"'
expect_status 400 "$(http GET '/v1/jobs?state=sleeping' "${auth[@]}")"

# Paths cannot leave the allowed root.
expect_status 403 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"p1\", \"seed\": 1, \"cond\": \"../out/ledger.jsonl\", $size}")" 'outside'
expect_status 403 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"p2\", \"seed\": 1, \"cond\": \"/etc/passwd\", $size}")" 'outside'
expect_status 403 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"p3\", \"seed\": 1, \"cond\": \"etc-link/passwd\", $size}")" 'outside'
# Nor can an image's path (an image-to-video job's is read when the job is checked).
expect_status 403 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"p4\", \"seed\": 1, \"image\": \"/etc/passwd\", $size}")" 'outside'

# Cancel: a long job runs, a second waits behind it and is cancelled; the running one cannot be.
expect_status 201 "$(http POST /v1/jobs "${auth[@]}" -d '{"id": "long", "seed": 4, "width": 256, "height": 256, "steps": 400}')"
for _ in $(seq 200); do
  [[ "$(http GET /v1/jobs/long "${auth[@]}")" == *'"status":"running"'* ]] && break
  sleep 0.05
done
expect_status 201 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"waiting\", \"seed\": 5, $size}")" '"position":1'
expect_status 200 "$(http GET /v1/jobs/waiting "${auth[@]}")" '"status":"queued"'
expect_status 409 "$(http DELETE /v1/jobs/long "${auth[@]}")" 'running'
expect_status 200 "$(http DELETE /v1/jobs/waiting "${auth[@]}")" '"cancelled"'
expect_status 409 "$(http DELETE /v1/jobs/waiting "${auth[@]}")" 'cancelled'
expect_status 409 "$(http GET /v1/jobs/long/latent "${auth[@]}")" 'running'
expect_status 404 "$(http DELETE /v1/jobs/nosuch "${auth[@]}")"
wait_job long done
expect_status 200 "$(http GET /v1/jobs/waiting "${auth[@]}")" '"status":"cancelled"'
[ ! -e "$tmp/out/waiting.safetensors" ] || { echo "FAIL: a cancelled job ran"; exit 1; }

# Ids are unique for the life of the output folder.
expect_status 409 "$(http POST /v1/jobs "${auth[@]}" -d "{\"id\": \"builtin\", \"seed\": 1, $size}")" 'taken'
# Without an id, the server makes one.
made=$(http POST /v1/jobs "${auth[@]}" -d "{\"seed\": 9, $size}")
expect_status 201 "$made" '"id":"job-'

metrics=$(curl -s "${auth[@]}" "$base/metrics")
for line in 'ditrun_ready 1' 'ditrun_jobs_finished_total{status="cancelled"} 1' 'ditrun_step_seconds_count' \
  'ditrun_device_memory_bytes{rank="0"' 'ditrun_queue_depth' 'ditrun_http_errors_total{class="4xx"}'; do
  [[ "$metrics" == *"$line"* ]] || { echo "FAIL: /metrics lacks '$line'"; echo "$metrics"; exit 1; }
done

stop_server
grep -q 'draining' "$tmp/out.log" || { cat "$tmp/out.log"; echo "FAIL: no drain message"; exit 1; }
echo "serve_api: ok"

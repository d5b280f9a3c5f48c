#!/usr/bin/env bash
# Every endpoint of the forwarder with a real request and the answer to expect.
#
#   FORWARDER_URL=http://127.0.0.1:8080 WRITE_KEY=dev_... ./examples/curl/requests.sh
#
# WRITE_KEY is a server source's key (zero-config: the "development write key" that
# `forwarder serve` prints). Each step prints what it sent, the status and body it got, and
# stops with exit 1 when the answer is not the documented one. A test runs this script
# against a real `forwarder serve` (tests/examples/test_curl.py), so the answers below are true.
set -euo pipefail

URL="${FORWARDER_URL:-http://127.0.0.1:8080}"
KEY="${WRITE_KEY:?set WRITE_KEY to the write key of a server source}"
RUN="${RUN_ID:-$(date +%s)}"   # makes messageIds unique per run, so re-runs are not duplicates
JSON=(-H 'Content-Type: application/json')

STATUS=""
BODY=""
# call METHOD PATH [curl args...]: sets STATUS and BODY
call() {
  local method=$1 path=$2
  shift 2
  local out
  out=$(curl -sS -X "$method" -w '\n%{http_code}' "$@" "$URL$path")
  STATUS=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
# expect NAME STATUS [TEXT...]: the last answer has this status and contains every TEXT
expect() {
  local name=$1 status=$2
  shift 2
  if [ "$STATUS" != "$status" ]; then
    echo "FAIL $name: expected $status, got $STATUS: $BODY" >&2
    exit 1
  fi
  for text in "$@"; do
    if [[ "$BODY" != *"$text"* ]]; then
      echo "FAIL $name: expected the body to contain $text, got: $BODY" >&2
      exit 1
    fi
  done
  local shown=${BODY//$'\n'/ }
  echo "ok $name -> $STATUS ${shown:0:160}"
}

# --- Health -----------------------------------------------------------------------------------
# Liveness: the process answers.
call GET /healthz
expect healthz 200 '{"status":"ok"}'

# Readiness: storage writable now. 200 "ready"; 200 "degraded" with the paused destinations when
# HubSpot refused a token or scope (events stay queued); 503 "unavailable" when storage is down.
call GET /readyz
expect readyz 200 '"status":"'

# --- The Segment calls (HTTP Basic auth: the write key is the user name, no password) ----------
# identify first: it links user-42 to an email, which is what HubSpot matches a conversion on.
call POST /v1/identify -u "$KEY:" "${JSON[@]}" -d '{
  "userId": "user-42", "messageId": "curl-'"$RUN"'-identify",
  "traits": {"email": "ada@example.com", "firstName": "Ada"}}'
expect identify 200 '{"success":true,"accepted":1,"duplicates":0,"rejected":[]}'

call POST /v1/track -u "$KEY:" "${JSON[@]}" -d '{
  "userId": "user-42", "event": "Order Completed", "messageId": "curl-'"$RUN"'-track",
  "properties": {"revenue": 49.9, "currency": "EUR"}}'
expect track 200 '{"success":true,"accepted":1,"duplicates":0,"rejected":[]}'

call POST /v1/page -u "$KEY:" "${JSON[@]}" -d '{
  "userId": "user-42", "name": "Pricing", "messageId": "curl-'"$RUN"'-page",
  "properties": {"url": "https://www.example.com/pricing"}}'
expect page 200 '"accepted":1'

call POST /v1/screen -u "$KEY:" "${JSON[@]}" -d '{
  "userId": "user-42", "name": "Checkout", "messageId": "curl-'"$RUN"'-screen"}'
expect screen 200 '"accepted":1'

call POST /v1/group -u "$KEY:" "${JSON[@]}" -d '{
  "userId": "user-42", "groupId": "acme", "messageId": "curl-'"$RUN"'-group",
  "traits": {"name": "Acme Inc."}}'
expect group 200 '"accepted":1'

# alias: the anonymous visitor anon-7 and user-42 are the same person.
call POST /v1/alias -u "$KEY:" "${JSON[@]}" -d '{
  "previousId": "anon-7", "userId": "user-42", "messageId": "curl-'"$RUN"'-alias"}'
expect alias 200 '"accepted":1'

# batch: several calls in one request (what the SDKs send).
call POST /v1/batch -u "$KEY:" "${JSON[@]}" -d '{"batch": [
  {"type": "track", "userId": "user-42", "event": "Trial Started", "messageId": "curl-'"$RUN"'-b1"},
  {"type": "page", "userId": "user-42", "name": "Docs", "messageId": "curl-'"$RUN"'-b2"}]}'
expect batch 200 '{"success":true,"accepted":2,"duplicates":0,"rejected":[]}'

# --- Other ways in ----------------------------------------------------------------------------
# analytics.js's short forms /v1/t /v1/i /v1/p /v1/s /v1/g /v1/a, with text/plain (no CORS
# preflight) and the write key in the body.
call POST /v1/t -H 'Content-Type: text/plain' -d '{
  "writeKey": "'"$KEY"'", "userId": "user-42", "event": "Demo Requested",
  "messageId": "curl-'"$RUN"'-short"}'
expect short-form 200 '"accepted":1'

# Authorization: Bearer works as well as Basic.
call POST /v1/i -H "Authorization: Bearer $KEY" "${JSON[@]}" -d '{
  "userId": "user-42", "traits": {"plan": "pro"}, "messageId": "curl-'"$RUN"'-bearer"}'
expect bearer 200 '"accepted":1'

# gzip-compressed bodies (the SDKs gzip); the size limit applies after decompression.
printf '%s' '{"userId": "user-42", "event": "Invoice Paid", "messageId": "curl-'"$RUN"'-gzip"}' \
  | gzip -c > "${TMPDIR:-/tmp}/forwarder-curl-$RUN.gz"
call POST /v1/track -u "$KEY:" "${JSON[@]}" -H 'Content-Encoding: gzip' \
  --data-binary "@${TMPDIR:-/tmp}/forwarder-curl-$RUN.gz"
rm -f "${TMPDIR:-/tmp}/forwarder-curl-$RUN.gz"
expect gzip 200 '"accepted":1'

# --- Answers that are not a plain yes ---------------------------------------------------------
# The same messageId again: 200, counted as a duplicate, stored once (dedup.window_s).
call POST /v1/track -u "$KEY:" "${JSON[@]}" -d '{
  "userId": "user-42", "event": "Order Completed", "messageId": "curl-'"$RUN"'-track"}'
expect duplicate 200 '{"success":true,"accepted":0,"duplicates":1,"rejected":[]}'

# A rejected event: no userId or anonymousId. Every event bad -> 400 with index, path, reason.
call POST /v1/track -u "$KEY:" "${JSON[@]}" -d '{"event": "Order Completed"}'
expect rejected 400 '"success":false' \
  '"rejected":[{"index":0,"path":"$.userId","reason":"userId or anonymousId is required"}]'

# Some events bad in a batch -> 200; the good ones are stored, the bad ones listed by index.
call POST /v1/batch -u "$KEY:" "${JSON[@]}" -d '{"batch": [
  {"type": "track", "userId": "user-42", "event": "Plan Upgraded", "messageId": "curl-'"$RUN"'-p1"},
  {"type": "track", "userId": "user-42"}]}'
expect partly-rejected 200 '"accepted":1' '"rejected":[{"index":1,"path":"$.event"'

# An unknown write key -> 401 (the answer does not say whether a key exists).
call POST /v1/track -u "not-a-real-key:" "${JSON[@]}" -d '{"userId": "u", "event": "X"}'
expect unknown-key 401 '"error":"invalid write key"'

# --- Metrics ----------------------------------------------------------------------------------
# Prometheus text; conservation drift must stay 0 (accepted = delivered + failed + pending).
call GET /metrics
expect metrics 200 'forwarder_accepted_events_total' 'forwarder_conservation_drift 0.0'

# --- Where the events went ---------------------------------------------------------------------
# With a portal on the built-in sandbox (zero-config, or base_url = "sandbox"), the simulated
# HubSpot shows what it received. Delivery waits up to max_delay_s (1 s) to fill a batch.
call GET /sandbox/_sandbox
if [ "$STATUS" = 200 ]; then
  for _ in $(seq 50); do
    call GET '/sandbox/_sandbox/events'
    [[ "$BODY" == *'_order_completed'* ]] && break
    sleep 0.2
  done
  expect delivered-to-sandbox 200 '_order_completed' '"email":"ada@example.com"'
fi

echo "all answers as documented"

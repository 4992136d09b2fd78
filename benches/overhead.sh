#!/usr/bin/env bash
# Server overhead: 1-token completions at concurrency 64 with wrk, against
# the dummy `tiny` preset (where the model costs almost nothing, so what is
# measured is HTTP, JSON, tokenizing, queueing and the engine hand-off) and
# against the default model beside it. Talks only to 127.0.0.1.
#
#   bash benches/overhead.sh [SECONDS]        (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
BIN=target/release/switchyard
[ -x "$BIN" ] || cargo build --release
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)"; exit 1; }
PORT=18181

run() {
  local label=$1; shift
  "$BIN" serve --port $PORT --served-model-name bench --max-queue 4096 "$@" >/tmp/switchyard-overhead.log 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    curl -sf "127.0.0.1:$PORT/ready" >/dev/null && break
    sleep 0.1
  done
  echo "== $label"
  wrk -t2 -c64 -d"${SECONDS_EACH}s" --latency -s benches/overhead.lua \
    "http://127.0.0.1:$PORT/v1/completions" | grep -E "Requests/sec| +50%| +99%|Non-2xx|Socket errors"
  kill $pid; wait $pid 2>/dev/null || true
  trap - EXIT
}

run "dummy tiny preset" --load-format dummy --model tiny
run "default model (smollm2-135m-instruct Q4_1)"

#!/usr/bin/env bash
# Batched serving throughput and latency, switchyard beside llama.cpp's
# llama-server on the same GGUF and thread count, in one run: streamed
# /v1/completions of PROMPT synthetic prompt tokens and GEN generated tokens
# (ignore_eos) at each concurrency level, measured by switchyard-loadtest.
# Prints both tables and the ratios. Not a test: speeds vary with the
# machine. Talks only to 127.0.0.1.
#
#   bash benches/batching.sh [LEVELS] [REQUESTS]   (default 1,4,16,64 and 32)
#
# LLAMA_SERVER overrides the peer build (e.g. one built without AMX).
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS=${1:-1,4,16,64}
REQUESTS=${2:-32}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-64}
GEN=${GEN:-64}
PARALLEL=${PARALLEL:-16}
cargo build --release --quiet --workspace --bins
MODEL=${MODEL:-$(./target/release/switchyard models pull smollm2-135m-instruct 2>/dev/null | tail -n1)}
LLAMA_SERVER=${LLAMA_SERVER:-$(bash ../shared/peers/llama-server.sh)}
OUT=${OUT:-target/bench}
mkdir -p "$OUT"
PORT=18182

wait_ready() {
  for _ in $(seq 1200); do
    curl -sf "127.0.0.1:$PORT/$1" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not come up" >&2
  return 1
}

measure() {
  local label=$1; shift
  "$@" >"$OUT/$label.log" 2>&1 &
  local pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  wait_ready "${READY_PATH:-health}"
  ./target/release/switchyard-loadtest --url "http://127.0.0.1:$PORT" --model bench \
    --concurrency "$LEVELS" --requests "$REQUESTS" --warmup 2 \
    --prompt-tokens "$PROMPT" --max-tokens "$GEN" --label "$label" --out "$OUT/$label.json"
  kill $pid; wait $pid 2>/dev/null || true
  trap - EXIT
}

READY_PATH=ready measure switchyard ./target/release/switchyard serve --model "$MODEL" \
  --port $PORT --served-model-name bench --threads "$THREADS" ${SWITCHYARD_ARGS:-}
# One slot per concurrent stream up to PARALLEL, each with room for its
# prompt and generation.
READY_PATH=health measure llama-server "$LLAMA_SERVER" -m "$MODEL" --port $PORT -t "$THREADS" \
  --parallel "$PARALLEL" -c $((PARALLEL * (PROMPT + GEN + 64))) --no-warmup

./target/release/switchyard-loadtest --no-run --compare "$OUT/switchyard.json" \
  --compare "$OUT/llama-server.json" --chart "$OUT/batching.svg"
echo "chart: $OUT/batching.svg"
python3 - "$OUT/switchyard.json" "$OUT/llama-server.json" <<'PY'
import json, sys
ours, theirs = (json.load(open(p))["levels"] for p in sys.argv[1:3])
print(f"{'level':>6} {'tok/s ratio':>12} {'ttft p50 ratio':>15} {'itl p50 ratio':>14}   (switchyard / llama-server; ttft and itl: lower is better)")
for a, b in zip(ours, theirs):
    r = lambda x, y: x / y if y else float("nan")
    print(f"{'c=' + str(a['concurrency']):>6} {r(a['output_tokens_per_s'], b['output_tokens_per_s']):>12.2f} "
          f"{r(a['ttft_ms']['p50'], b['ttft_ms']['p50']):>15.2f} {r(a['itl_ms']['p50'], b['itl_ms']['p50']):>14.2f}")
PY

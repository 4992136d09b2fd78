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
source "$(dirname "$0")/common.sh"
LEVELS=${1:-1,4,16,64}
REQUESTS=${2:-32}
THREADS=${THREADS:-2}
PROMPT=${PROMPT:-64}
GEN=${GEN:-64}
PARALLEL=${PARALLEL:-16}
LLAMA_SERVER=$(llama_server)
PORT=18182

# measure LABEL READY_PATH COMMAND...: one server, every level.
measure() {
  local label=$1 ready=$2; shift 2
  start_server "$OUT/$label.log" "$ready" "$@"
  ./target/release/switchyard-loadtest --url "http://127.0.0.1:$PORT" --model bench \
    --concurrency "$LEVELS" --requests "$REQUESTS" --warmup 2 \
    --prompt-tokens "$PROMPT" --max-tokens "$GEN" --label "$label" --out "$OUT/$label.json"
  stop_server
}

measure switchyard ready ./target/release/switchyard serve --model "$MODEL" \
  --port $PORT --served-model-name bench --threads "$THREADS" ${SWITCHYARD_ARGS:-}
# One slot per concurrent stream up to PARALLEL, each with room for its
# prompt and generation.
measure llama-server health "$LLAMA_SERVER" -m "$MODEL" --port $PORT -t "$THREADS" \
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

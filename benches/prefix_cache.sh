#!/usr/bin/env bash
# Prefix caching: REQUESTS requests whose prompts share a SHARED-token
# system prompt (plus UNIQUE tokens of their own), at concurrency 4, each
# from a cold start of the server, with the prefix cache on and off.
# Prints TTFT p50 of both and their ratio. Not a test. 127.0.0.1 only.
#
#   bash benches/prefix_cache.sh
source "$(dirname "$0")/common.sh"
REQUESTS=${REQUESTS:-32}
SHARED=${SHARED:-512}
UNIQUE=${UNIQUE:-32}
GEN=${GEN:-16}
PORT=18183

run() {
  local label=$1; shift
  start_server "$OUT/prefix-$label.log" ready ./target/release/switchyard serve --model "$MODEL" \
    --port $PORT --served-model-name bench "$@"
  ./target/release/switchyard-loadtest --url "http://127.0.0.1:$PORT" --model bench \
    --concurrency 4 --requests "$REQUESTS" --prompt-tokens $((SHARED + UNIQUE)) \
    --shared-prefix-tokens "$SHARED" --max-tokens "$GEN" --label "$label" --out "$OUT/prefix-$label.json"
  curl -s "127.0.0.1:$PORT/metrics" | grep -E "^switchyard_prefix_cache_(queries|hits)_total" || true
  stop_server
}

run cache-on
run cache-off --no-enable-prefix-caching
python3 - "$OUT/prefix-cache-on.json" "$OUT/prefix-cache-off.json" <<'PY'
import json, sys
on, off = (json.load(open(p))["levels"][0]["ttft_ms"]["p50"] for p in sys.argv[1:3])
print(f"TTFT p50: cache on {on:.1f} ms, off {off:.1f} ms: {off / on:.1f}x lower with the cache")
PY

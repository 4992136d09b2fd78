#!/usr/bin/env bash
# A burst of BURST streamed requests at once against a queue of QUEUE
# places: the overflow must be answered 429 at once, the rest served, and
# the server's memory must stay bounded. Prints the outcome counts and the
# peak resident memory (VmHWM) before and after. Not a test. 127.0.0.1 only.
#
#   bash benches/burst.sh
source "$(dirname "$0")/common.sh"
BURST=${BURST:-1000}
QUEUE=${QUEUE:-256}
PORT=18184
start_server "$OUT/burst.log" ready ./target/release/switchyard serve --model "$MODEL" \
  --port $PORT --served-model-name bench --max-queue "$QUEUE"
rss() { awk -v k="$1:" '$1 == k {print $2 / 1024 " MiB"}' "/proc/$SERVER_PID/status"; }
echo "ready: resident $(rss VmRSS), peak $(rss VmHWM)"
ulimit -n 4096 2>/dev/null || true
./target/release/switchyard-loadtest --url "http://127.0.0.1:$PORT" --model bench \
  --concurrency "$BURST" --requests "$BURST" --prompt-tokens 32 --max-tokens 16 \
  --duration 600 --label burst --out "$OUT/burst.json"
python3 - "$OUT/burst.json" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))["levels"][0]
print(f"served {l['requests_ok']}, refused {l['errors']}")
PY
echo "after: resident $(rss VmRSS), peak $(rss VmHWM)"

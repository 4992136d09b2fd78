#!/usr/bin/env bash
# The cost and quality of each weight format, side by side in one run:
# the default model written by `switchyard quantize` in each format
# (perplexity on a public-domain text; resident memory once loaded and
# streamed output tokens/s at concurrency 1 and 16, for switchyard and for
# llama.cpp's llama-server on the same file, through the same load
# generator), then a dummy qwen2.5-0.5b quantized at load (memory and
# speed only: its weights are random). Prints Markdown tables.
# Not a test: speeds vary with the machine. Talks only to 127.0.0.1.
#
#   bash benches/quantized.sh [FORMATS] [QWEN_FORMATS]
#     default: "f16 q8_0 q6_k q4_k q4_0" and "bf16 q8_0 q4_k q4_0"
#
# TEXT: the perplexity text (default: The Tempest, scripts/fetch-eval-text.sh).
source "$(dirname "$0")/common.sh"
FORMATS=${1:-f16 q8_0 q6_k q4_k q4_0}
QWEN_FORMATS=${2:-bf16 q8_0 q4_k q4_0}
THREADS=${THREADS:-2}
PORT=18183
TEXT=${TEXT:-$OUT/tempest.txt}
[[ -s $TEXT ]] || bash scripts/fetch-eval-text.sh "$TEXT" >&2
SY=./target/release/switchyard

PROMPT=16
GEN=128
PARALLEL=16

# measure LABEL READY_PATH COMMAND...: one server; prints "rss_mib c1 c16".
measure() {
  local label=$1 ready=$2; shift 2
  start_server "$OUT/q-$label.log" "$ready" "$@"
  local rss
  rss=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status")
  ./target/release/switchyard-loadtest --url "http://127.0.0.1:$PORT" --model bench \
    --concurrency 1,16 --requests "${REQUESTS:-24}" --warmup 2 --prompt-tokens $PROMPT \
    --max-tokens $GEN --label "$label" --out "$OUT/q-$label.json" >/dev/null
  stop_server
  python3 - "$OUT/q-$label.json" "$rss" <<'PY'
import json, sys
levels = json.load(open(sys.argv[1]))["levels"]
print(sys.argv[2], *(f"{l['output_tokens_per_s']:.1f}" for l in levels))
PY
}

serve_and_measure() {
  local label=$1; shift
  measure "$label" ready "$SY" serve --port $PORT --served-model-name bench --threads "$THREADS" "$@"
}

# llama-server with a slot per concurrent stream, each with room for its
# prompt and generation.
llama_measure() {
  measure "llama-$1" health "$(llama_server)" -m "$2" --port $PORT -t "$THREADS" \
    --parallel $PARALLEL -c $((PARALLEL * (PROMPT + GEN + 64))) --no-warmup
}

ppl() {
  "$SY" eval perplexity --model "$1" --text "$TEXT" --ctx 256 --chunks 16 --threads "$THREADS" --json \
    | python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)["ppl"])'
}

echo "| default model | file MiB | perplexity | RSS MiB (llama-server) | tok/s c=1 (llama-server) | tok/s c=16 (llama-server) |"
echo "|---|---|---|---|---|---|"
for f in source $FORMATS; do
  if [[ $f == source ]]; then
    file=$MODEL
  else
    file=$OUT/smollm2-$f.gguf
    "$SY" quantize --model "$MODEL" --to "$f" --out "$file" >/dev/null
  fi
  read -r rss c1 c16 < <(serve_and_measure "smollm2-$f" --model "$file")
  read -r lrss lc1 lc16 < <(llama_measure "smollm2-$f" "$file")
  mib=$(du -m "$file" | cut -f1)
  echo "| ${f/source/q4_1 (source)} | $mib | $(ppl "$file") | $rss ($lrss) | $c1 ($lc1) | $c16 ($lc16) |"
done

echo
echo "| dummy qwen2.5-0.5b | RSS MiB | tok/s c=1 | tok/s c=16 |"
echo "|---|---|---|---|"
for f in $QWEN_FORMATS; do
  read -r rss c1 c16 < <(serve_and_measure "qwen-$f" --load-format dummy --model qwen2.5-0.5b --quantize "$f")
  echo "| $f | $rss | $c1 | $c16 |"
done

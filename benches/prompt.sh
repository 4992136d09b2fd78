#!/usr/bin/env bash
# Prompt processing speed (prefill tokens/s of a 512-token prompt),
# switchyard beside llama.cpp's llama-bench pp512, on the same GGUF and
# thread count, in one run. Prints each run and the medians and their
# ratio. Not a test: speeds vary with the machine.
#
# switchyard's figure is prompt tokens over the time to the first token,
# which also holds one sampling step; llama-bench times the prompt alone.
#
# usage: benches/prompt.sh [RUNS]     (default 5)
source "$(dirname "$0")/common.sh"
RUNS=${1:-5}
THREADS=${THREADS:-2}
TOKENS=${TOKENS:-512}
LLAMA_BENCH=$(llama_bench)

ours=()
theirs=()
for i in $(seq "$RUNS"); do
  s=$(./target/release/switchyard generate --model "$MODEL" --threads "$THREADS" --max-tokens 1 \
        --ignore-eos --prompt-tokens "$TOKENS" "Once upon a time, in a land far away, there lived" 2>&1 >/dev/null \
        | sed -n 's/^\[prefill: .* \([0-9.]*\) tokens\/s\]$/\1/p')
  l=$("$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p "$TOKENS" -n 0 -r 1 -o csv 2>/dev/null | tail -n1 | awk -F, '{gsub(/"/,"",$(NF-1)); print $(NF-1)}')
  echo "run $i: switchyard $s tok/s, llama.cpp $l tok/s"
  ours+=("$s")
  theirs+=("$l")
done
mo=$(printf '%s\n' "${ours[@]}" | median)
mt=$(printf '%s\n' "${theirs[@]}" | median)
echo "median prompt tok/s ($THREADS threads, pp$TOKENS): switchyard $mo, llama.cpp $mt, ratio $(awk -v a="$mo" -v b="$mt" 'BEGIN {printf "%.2f", a/b}')"

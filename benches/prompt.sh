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

ours() {
  ./target/release/switchyard generate --model "$MODEL" --threads "$THREADS" --max-tokens 1 \
    --ignore-eos --prompt-tokens "$TOKENS" "Once upon a time, in a land far away, there lived" 2>&1 >/dev/null \
    | sed -n 's/^\[prefill: .* \([0-9.]*\) tokens\/s\]$/\1/p'
}
side_by_side "$RUNS" "prompt tok/s ($THREADS threads, pp$TOKENS)" ours "llama_bench_tps -p $TOKENS -n 0"

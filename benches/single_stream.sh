#!/usr/bin/env bash
# Single-stream decode speed, switchyard beside llama.cpp's llama-bench, on
# the same GGUF and thread count, in one run. Prints each run and the
# medians and their ratio. Not a test: speeds vary with the machine.
#
# usage: benches/single_stream.sh [RUNS]     (default 5)
source "$(dirname "$0")/common.sh"
RUNS=${1:-5}
THREADS=${THREADS:-2}
TOKENS=64

ours() {
  ./target/release/switchyard generate --model "$MODEL" --threads "$THREADS" --max-tokens $TOKENS \
    --ignore-eos "Once upon a time" 2>&1 >/dev/null | sed -n 's/.* \([0-9.]*\) tokens\/s after it.*/\1/p'
}
side_by_side "$RUNS" "decode tok/s ($THREADS threads, $TOKENS tokens)" ours "llama_bench_tps -p 0 -n $TOKENS"

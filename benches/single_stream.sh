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
LLAMA_BENCH=$(llama_bench)

ours=()
theirs=()
for i in $(seq "$RUNS"); do
  s=$(./target/release/switchyard generate --model "$MODEL" --threads "$THREADS" --max-tokens $TOKENS \
        --ignore-eos "Once upon a time" 2>&1 >/dev/null | sed -n 's/.* \([0-9.]*\) tokens\/s after it.*/\1/p')
  l=$("$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p 0 -n $TOKENS -r 1 -o csv 2>/dev/null | tail -n1 | awk -F, '{gsub(/"/,"",$(NF-1)); print $(NF-1)}')
  echo "run $i: switchyard $s tok/s, llama.cpp $l tok/s"
  ours+=("$s")
  theirs+=("$l")
done
mo=$(printf '%s\n' "${ours[@]}" | median)
mt=$(printf '%s\n' "${theirs[@]}" | median)
echo "median decode tok/s ($THREADS threads, $TOKENS tokens): switchyard $mo, llama.cpp $mt, ratio $(awk -v a="$mo" -v b="$mt" 'BEGIN {printf "%.2f", a/b}')"

# Sourced by the benchmark scripts: one release build, the default model,
# the peer's binaries, a median, and servers started and stopped on
# 127.0.0.1. Callers set PORT before start_server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet --workspace --bins
MODEL=${MODEL:-$(./target/release/switchyard models pull smollm2-135m-instruct 2>/dev/null | tail -n1)}
OUT=${OUT:-target/bench}
mkdir -p "$OUT"

# llama.cpp's binaries from the peer build. LLAMA_BENCH / LLAMA_SERVER
# override it, e.g. with a build without AMX on machines whose hypervisor
# does not enable it.
llama_bench() { echo "${LLAMA_BENCH:-$(dirname "$(bash ../shared/peers/llama-server.sh)")/llama-bench}"; }
llama_server() { echo "${LLAMA_SERVER:-$(bash ../shared/peers/llama-server.sh)}"; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# llama_bench_tps ARGS...: one llama-bench run on MODEL with THREADS
# threads; prints its tokens/s.
llama_bench_tps() {
  "$(llama_bench)" -m "$MODEL" -t "$THREADS" -r 1 -o csv "$@" 2>/dev/null | tail -n1 \
    | awk -F, '{gsub(/"/,"",$(NF-1)); print $(NF-1)}'
}

# side_by_side RUNS WHAT OURS THEIRS: runs the two commands RUNS times in
# turn, each printing one tokens/s figure; prints each run, then the
# medians and their ratio, labelled WHAT.
side_by_side() {
  local runs=$1 what=$2 ours=$3 theirs=$4 s l mo mt
  local -a os=() ts=()
  for i in $(seq "$runs"); do
    s=$(eval "$ours")
    l=$(eval "$theirs")
    echo "run $i: switchyard $s tok/s, llama.cpp $l tok/s"
    os+=("$s")
    ts+=("$l")
  done
  mo=$(printf '%s\n' "${os[@]}" | median)
  mt=$(printf '%s\n' "${ts[@]}" | median)
  echo "median $what: switchyard $mo, llama.cpp $mt, ratio $(awk -v a="$mo" -v b="$mt" 'BEGIN {printf "%.2f", a/b}')"
}

# start_server LOG READY_PATH COMMAND...: runs COMMAND in the background,
# logging to LOG, until GET READY_PATH answers; sets SERVER_PID.
start_server() {
  local log=$1 ready=$2; shift 2
  "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1200); do
    curl -sf "127.0.0.1:$PORT/$ready" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not come up; see $log" >&2
  return 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  trap - EXIT
}

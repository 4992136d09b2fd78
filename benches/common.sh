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

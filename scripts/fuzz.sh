#!/usr/bin/env bash
# Runs every fuzz target for a bounded time on the stable toolchain
# (`cargo fuzz run -s none`), from the seeds in fuzz/corpus plus a GGUF
# file written from a test fixture. Installs cargo-fuzz under CACHE and
# keeps the instrumented build there, so that later runs rebuild little.
#
#   bash scripts/fuzz.sh CACHE [SECONDS-PER-TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${1:?usage: scripts/fuzz.sh CACHE [SECONDS]}
seconds=${2:-20}
version=0.13.2

if [[ ! -x $cache/cargo-fuzz/bin/cargo-fuzz ]] || ! "$cache/cargo-fuzz/bin/cargo-fuzz" --version | grep -q "$version"; then
  cargo install --quiet --locked cargo-fuzz --version "$version" --root "$cache/cargo-fuzz"
fi
export PATH=$cache/cargo-fuzz/bin:$PATH
export CARGO_TARGET_DIR=$cache/fuzz-target

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in request_parser gguf_parser tokenizer; do
  mkdir -p "$work/$target"
  cp fuzz/corpus/$target/* "$work/$target/" 2>/dev/null || true
done
./target/release/switchyard quantize --model tests/data/hf/qwen3-bf16 --to q8_0 \
  --out "$work/gguf_parser/qwen3.gguf" >/dev/null

cargo fuzz build -s none
for target in request_parser gguf_parser tokenizer; do
  echo "--- $target: ${seconds}s"
  # A crash makes libFuzzer exit non-zero, with the input under
  # fuzz/artifacts/$target/ to reproduce it: cargo fuzz run -s none $target FILE
  rc=0
  cargo fuzz run -s none "$target" "$work/$target" -- \
    -max_total_time="$seconds" -seed=1 >"$work/$target.log" 2>&1 || rc=$?
  grep -E "^Done|ERROR|panicked|SUMMARY" "$work/$target.log" || true
  if [[ $rc != 0 ]]; then
    tail -n 40 "$work/$target.log"
    exit "$rc"
  fi
done

#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one:
#   1. a Python venv with the end-to-end test dependencies (cached),
#   2. llama.cpp's llama-perplexity and libllama.so, which the end-to-end
#      tests compare against, and its Python bindings in the venv (cached),
#   3. one release build, reused by every stage, and its CUDA kernels
#      compiled for sm_80 and sm_90 by NVRTC (no GPU needed),
#   4. the default model and llama.cpp's tokenizer test vectors (cached),
#   5. cargo's unit and integration tests, each fuzz target for 20 s,
#   6. the end-to-end tests: the official openai client and the CLI
#      against the real binary.
# Each stage prints its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${SWITCHYARD_TEST_CACHE:-$HOME/.cache/switchyard-test}
mkdir -p "$CACHE"
# llama.cpp's sources come from one download of the llama-cpp-python source
# package, kept here and shared by the stages that need it.
export SWITCHYARD_LLAMA_SDIST=${SWITCHYARD_LLAMA_SDIST:-$CACHE/llama_cpp_python-0.3.36.tar.gz}

stage_start=$SECONDS
stage() {
  local now=$SECONDS
  [[ -n ${stage_name:-} ]] && printf '=== %s: %ds\n' "$stage_name" $((now - stage_start))
  stage_name=$1
  stage_start=$now
  [[ -n $1 ]] && printf '=== %s\n' "$1"
  return 0
}

stage "system tools"
# curl drives part of the conformance suite, as users of the API do;
# openssl makes the TLS tests' certificates;
# Prometheus (and its promtool) checks the alert rules and scrapes a live
# server; cmake, ninja and g++ build llama.cpp's tools (g++ also builds the
# CUDA kernels for the host emulator of the unit tests).
need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null && return 0
  if [[ $(id -u) == 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >/dev/null; }
  else
    echo "$cmd is missing: install it (apt-get install $pkg)" >&2
    exit 1
  fi
}
need curl curl
need openssl openssl
need promtool prometheus
need cmake cmake
need ninja ninja-build
need g++ g++

stage "python venv"
VENV=$CACHE/venv
stamp=$VENV/.requirements-$(sha256sum tests/e2e/requirements.txt | cut -c1-16)
if [[ ! -f $stamp ]]; then
  # From scratch: nothing left over from other requirements (nor their stamps).
  python3 -m venv --clear "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
  touch "$stamp"
fi

stage "llama.cpp tools"
# Installs llama-cpp-python into the venv too, so it comes after it; exports
# LLAMA_PERPLEXITY and LLAMA_CPP_LIB_PATH for the stages below.
PYTHON=$VENV/bin/python bash scripts/llama-tools.sh "$CACHE/llama-tools"
source "$CACHE/llama-tools/env.sh"

stage "release build"
cargo build --release --locked --workspace --all-targets

stage "CUDA kernels (NVRTC)"
PIP=$VENV/bin/pip bash scripts/nvrtc-check.sh "$CACHE/nvrtc"

stage "default model"
./target/release/switchyard models pull smollm2-135m-instruct >"$CACHE/model-path"
export SWITCHYARD_TEST_MODEL
SWITCHYARD_TEST_MODEL=$(tail -n1 "$CACHE/model-path")

stage "tokenizer test vectors"
PYTHON=$VENV/bin/python bash scripts/fetch-vocab-tests.sh "$CACHE/vocab"
export SWITCHYARD_VOCAB_DIR=$CACHE/vocab

stage "evaluation text"
PYTHON=$VENV/bin/python bash scripts/fetch-eval-text.sh "$CACHE/tempest.txt"
export SWITCHYARD_TEST_TEXT=$CACHE/tempest.txt

stage "cargo test"
cargo test --release --locked --workspace

stage "fuzz"
bash scripts/fuzz.sh "$CACHE" 20

stage "end-to-end tests"
SWITCHYARD_BIN=$PWD/target/release/switchyard "$VENV/bin/python" -m pytest -q tests/e2e

stage ""

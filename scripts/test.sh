#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one:
#   1. a Python venv with the end-to-end test dependencies (cached),
#   2. one release build, reused by every stage,
#   3. the default model and llama.cpp's tokenizer test vectors (cached),
#   4. cargo's unit and integration tests,
#   5. the end-to-end tests: the official openai client and the CLI
#      against the real binary.
# Each stage prints its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${SWITCHYARD_TEST_CACHE:-$HOME/.cache/switchyard-test}
mkdir -p "$CACHE"

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
# Prometheus (and its promtool) checks the alert rules and scrapes a live
# server.
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
need promtool prometheus

stage "python venv"
VENV=$CACHE/venv
stamp=$VENV/.requirements-$(sha256sum tests/e2e/requirements.txt | cut -c1-16)
if [[ ! -f $stamp ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
  touch "$stamp"
fi

stage "release build"
cargo build --release --locked --workspace --all-targets

stage "default model"
./target/release/switchyard models pull smollm2-135m-instruct >"$CACHE/model-path"
export SWITCHYARD_TEST_MODEL
SWITCHYARD_TEST_MODEL=$(tail -n1 "$CACHE/model-path")

stage "tokenizer test vectors"
PYTHON=$VENV/bin/python bash scripts/fetch-vocab-tests.sh "$CACHE/vocab"
export SWITCHYARD_VOCAB_DIR=$CACHE/vocab

stage "cargo test"
cargo test --release --locked --workspace

stage "end-to-end tests"
SWITCHYARD_BIN=$PWD/target/release/switchyard "$VENV/bin/python" -m pytest -q tests/e2e

stage ""

#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer test vocabularies (models/ggml-vocab-*.gguf
# and their .inp/.out vectors) into DEST, for the tokenizer tests:
#
#   scripts/fetch-vocab-tests.sh DEST
#   SWITCHYARD_VOCAB_DIR=DEST cargo test --lib tokenizer
#
# They come from the llama-cpp-python source package on PyPI, which vendors
# llama.cpp. Does nothing when DEST already holds every file. Set
# SWITCHYARD_LLAMA_SDIST to a local copy of the tarball to skip the download
# (when that file does not exist yet, the tarball is downloaded there and
# kept: see scripts/llama-sdist.sh), and PYTHON to an interpreter whose
# environment has scikit-build-core.
set -euo pipefail

VERSION=0.3.36
VOCABS="llama-bpe llama-spm qwen2 gpt-2 starcoder phi-3 falcon mpt refact command-r qwen35"

if [ $# -ne 1 ]; then
    echo "usage: $0 DEST" >&2
    exit 2
fi
DEST=$1

wanted() {
    for v in $VOCABS; do
        for ext in gguf gguf.inp gguf.out; do
            echo "ggml-vocab-$v.$ext"
        done
    done
}

missing=0
for f in $(wanted); do
    [ -s "$DEST/$f" ] || missing=1
done
if [ $missing -eq 0 ]; then
    echo "vocabulary tests already in $DEST"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Without SWITCHYARD_LLAMA_SDIST, downloaded into $tmp and dropped afterwards.
sdist=$(bash "$(dirname "$0")/llama-sdist.sh" "$tmp")

prefix="llama_cpp_python-$VERSION/vendor/llama.cpp/models"
members=()
for f in $(wanted); do
    members+=("$prefix/$f")
done
tar -xzf "$sdist" -C "$tmp" "${members[@]}"
mkdir -p "$DEST"
for f in $(wanted); do
    mv "$tmp/$prefix/$f" "$DEST/$f"
done
echo "vocabulary tests written to $DEST"

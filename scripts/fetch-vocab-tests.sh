#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer test vocabularies (models/ggml-vocab-*.gguf
# and their .inp/.out vectors) into DEST, for the tokenizer tests:
#
#   scripts/fetch-vocab-tests.sh DEST
#   SWITCHYARD_VOCAB_DIR=DEST cargo test --lib tokenizer
#
# They come from the llama-cpp-python source package on PyPI, which vendors
# llama.cpp. Does nothing when DEST already holds every file. Set
# SWITCHYARD_LLAMA_SDIST to a local copy of the tarball to skip the download.
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

sdist=${SWITCHYARD_LLAMA_SDIST:-}
if [ -z "$sdist" ]; then
    sdist="$tmp/llama_cpp_python-$VERSION.tar.gz"
    echo "downloading llama-cpp-python $VERSION (source package, about 75 MB) from PyPI"
    # PyPI's simple index (PEP 691, the API pip uses) names the file and
    # its SHA-256.
    python3 - "$VERSION" "$sdist" <<'EOF'
import hashlib, json, sys, urllib.request
version, dest = sys.argv[1], sys.argv[2]
name = f"llama_cpp_python-{version}.tar.gz"
req = urllib.request.Request(
    "https://pypi.org/simple/llama-cpp-python/",
    headers={"Accept": "application/vnd.pypi.simple.v1+json"},
)
with urllib.request.urlopen(req, timeout=60) as r:
    files = [f for f in json.load(r)["files"] if f["filename"] == name]
if not files:
    sys.exit(f"PyPI lists no {name}")
url, digest = files[0]["url"], files[0]["hashes"]["sha256"]
h = hashlib.sha256()
with urllib.request.urlopen(url, timeout=600) as r, open(dest, "wb") as out:
    while chunk := r.read(1 << 20):
        h.update(chunk)
        out.write(chunk)
if h.hexdigest() != digest:
    sys.exit(f"{url}: SHA-256 {h.hexdigest()} differs from PyPI's {digest}")
EOF
fi

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

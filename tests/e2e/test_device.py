"""--device and `switchyard doctor` on a machine without a GPU (CI's): auto
falls back to the CPU and says why, cuda refuses to start with the reason,
and doctor reports the machine and exits 0."""

import json
import subprocess

from conftest import free_port


def run(bin_path, *args, timeout=300):
    return subprocess.run([bin_path, *args], capture_output=True, text=True, timeout=timeout)


def test_auto_falls_back_to_the_cpu_with_a_log_line(bin_path):
    r = run(bin_path, "generate", "--load-format", "dummy", "--model", "tiny",
            "--max-tokens", "4", "--ignore-eos", "--device", "auto", "hello")
    assert r.returncode == 0, r.stderr
    assert "computing on the CPU: no usable CUDA device" in r.stderr
    assert "4 generated" in r.stderr


def test_cuda_without_a_gpu_refuses_to_serve_and_says_why(bin_path):
    r = run(bin_path, "serve", "--load-format", "dummy", "--model", "tiny",
            "--port", str(free_port()), "--device", "cuda:0", timeout=60)
    assert r.returncode != 0
    assert "--device cuda:0:" in r.stderr and "CUDA" in r.stderr, r.stderr
    assert "panicked" not in r.stderr


def test_an_unknown_device_is_a_usage_error(bin_path):
    r = run(bin_path, "serve", "--device", "gpu")
    assert r.returncode == 2
    assert "`gpu` is not a device (auto, cpu, cuda or cuda:N)" in r.stderr


def test_doctor_reports_the_machine_as_json(bin_path):
    r = run(bin_path, "doctor", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["cpu"]["threads"] >= 1 and report["cpu"]["isa"]
    # No driver here: the reason is given, and nothing GPU-side ran.
    assert "CUDA" in report["cuda"]["driver"] or "device" in report["cuda"]["driver"]
    assert report["device"] is None and report["checks"] == [] and report["failures"] == []


def test_doctor_fails_when_told_to_use_a_missing_gpu(bin_path):
    r = run(bin_path, "doctor", "--device", "cuda", "--json")
    assert r.returncode != 0
    report = json.loads(r.stdout)
    assert any(f.startswith("--device cuda:0:") for f in report["failures"])

"""The command line: pull, tokenize, generate."""

import json
import os
import subprocess
from pathlib import Path

from conftest import MODEL, ROOT

REFS = ROOT / "tests" / "data" / "accuracy" / "smollm2-135m-instruct-q4_1.json"


def run(bin_path, *args, **kw):
    return subprocess.run([bin_path, *args], capture_output=True, text=True, timeout=600, **kw)


def test_second_pull_does_nothing_and_prints_the_path_last(bin_path):
    r = run(bin_path, "models", "pull", "smollm2-135m-instruct")
    assert r.returncode == 0, r.stderr
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.exists()
    again = run(bin_path, "models", "pull", "smollm2-135m-instruct")
    assert again.returncode == 0
    assert "already present" in again.stderr and "downloading" not in again.stderr
    assert again.stdout.strip().splitlines()[-1] == str(path)


def test_pull_of_an_unknown_model_fails_clearly(bin_path):
    r = run(bin_path, "models", "pull", "no-such-model")
    assert r.returncode != 0
    assert "unknown model `no-such-model`" in r.stderr


def test_tokenize_matches_llama_cpp_token_ids(bin_path):
    cases = json.loads(REFS.read_text())["cases"]
    for case in cases[:6]:
        r = run(bin_path, "tokenize", "--model", MODEL, case["text"])
        assert r.returncode == 0, r.stderr
        assert [int(t) for t in r.stdout.split()] == case["prompt_tokens"], case["name"]


def test_generate_streams_greedy_text(bin_path):
    r = run(bin_path, "generate", "--model", MODEL, "--max-tokens", "12", "The capital of France is")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    assert "12 generated" in r.stderr


def test_a_missing_model_file_is_a_clear_error(bin_path, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00")
    r = run(bin_path, "generate", "--model", str(bad), "hi")
    assert r.returncode != 0
    assert "broken.gguf" in r.stderr and "panicked" not in r.stderr

"""`switchyard quantize`: files that the `gguf` package and llama.cpp read,
holding exactly the values switchyard computes with, and perplexity
computed as llama.cpp's llama-perplexity computes it."""

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path

import gguf
import httpx
import numpy as np
import pytest
from gguf import quants

from conftest import MODEL, serve_until_done

# The requested type → (type of a 576-wide matrix, of the 1536-wide
# ffn_down, of the tied embedding). K-quants need rows of whole 256-value
# super-blocks and fall back as llama.cpp does; the output projection (here
# the tied embedding) keeps at least Q6_K, which falls back to Q8_0.
EXPECTED_TYPES = {
    "q8_0": ("Q8_0", "Q8_0", "Q8_0"),
    "q4_0": ("Q4_0", "Q4_0", "Q8_0"),
    "q4_1": ("Q4_1", "Q4_1", "Q8_0"),
    "q5_0": ("Q5_0", "Q5_0", "Q8_0"),
    "q5_1": ("Q5_1", "Q5_1", "Q8_0"),
    "q4_k": ("Q5_0", "Q4_K", "Q8_0"),
    "q5_k": ("Q5_1", "Q5_K", "Q8_0"),
    "q6_k": ("Q8_0", "Q6_K", "Q8_0"),
}


def run(*args, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, f"{args}: {r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def source(bin_path) -> Path:
    if Path(MODEL).exists():
        return Path(MODEL)
    return Path(run(bin_path, "models", "pull", MODEL).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def quantized(bin_path, source, tmp_path_factory):
    """The default model written in a format, once per module and format."""
    out_dir = tmp_path_factory.mktemp("quantized")
    made = {}

    def get(ty: str) -> Path:
        if ty not in made:
            out = out_dir / f"smollm2-{ty}.gguf"
            run(bin_path, "quantize", "--model", str(source), "--to", ty, "--out", str(out))
            made[ty] = out
        return made[ty]

    return get


@pytest.mark.parametrize("ty", list(EXPECTED_TYPES))
def test_every_tensor_dequantizes_exactly_as_the_gguf_package_does(bin_path, quantized, ty, tmp_path):
    path = quantized(ty)
    dump = tmp_path / "values.f32"
    run(bin_path, "inspect", str(path), "--dequantize-to", str(dump))
    ours = np.fromfile(dump, dtype=np.float32)
    dump.unlink()  # about 540 MB
    reader = gguf.GGUFReader(path)
    at = 0
    for t in reader.tensors:
        n = int(t.n_elements)
        want = quants.dequantize(t.data, t.tensor_type).reshape(-1).astype(np.float32)
        got = ours[at : at + n]
        assert np.array_equal(got, want), f"{ty}: {t.name} ({t.tensor_type.name}) differs"
        at += n
    assert at == ours.size
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    narrow, wide, embedding = EXPECTED_TYPES[ty]
    assert types["blk.0.attn_q.weight"] == narrow
    assert types["blk.0.ffn_down.weight"] == wide
    assert types["token_embd.weight"] == embedding
    assert types["blk.0.attn_norm.weight"] == "F32"
    meta = reader.get_field("general.quantization_version")
    assert meta is not None and int(meta.contents()) == 2


@contextlib.contextmanager
def serving(bin_path, path: Path, tmp_path: Path, *model_args: str):
    """A server for `path` (with `model_args` such as `--quantize q8_0`),
    its model served as `q`."""
    gen = serve_until_done(bin_path, tmp_path / "server.log", ["--model", str(path), *model_args], "--served-model-name", "q")
    base = next(gen)
    try:
        yield base
    finally:
        gen.close()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    m = logits.max()
    return logits - m - np.log(np.exp(logits - m).sum())


PROMPTS = [
    "The history of the printing press begins",
    "Once upon a time, in a small village",
    "def fibonacci(n):",
    "The capital of France is",
    "Photosynthesis is the process by which",
]


def greedy_with_logprobs(base: str, prompt: str, n: int):
    """Switchyard's greedy continuation: prompt ids, output ids, logprobs."""
    prompt_ids = httpx.post(f"{base}/tokenize", json={"prompt": prompt}).json()["tokens"]
    r = httpx.post(
        f"{base}/v1/completions",
        json={
            "model": "q",
            "prompt": prompt,
            "max_tokens": n,
            "temperature": 0,
            "logprobs": 1,
            "return_tokens_as_token_ids": True,
            "ignore_eos": True,
        },
        timeout=120,
    ).json()
    lp = r["choices"][0]["logprobs"]
    out_ids = [int(t.removeprefix("token_id:")) for t in lp["tokens"]]
    assert len(out_ids) == n
    return prompt_ids, out_ids, np.array(lp["token_logprobs"])


def teacher_forced(llm, prompt_ids, out_ids) -> np.ndarray:
    """llama.cpp's logprob of each output token given everything before it."""
    llm.reset()
    ids = prompt_ids + out_ids
    llm.eval(ids)
    scores = np.array(llm.scores[: len(ids)])
    return np.array([log_softmax(scores[len(prompt_ids) + k - 1])[t] for k, t in enumerate(out_ids)])


# The largest logprob difference allowed at any step. 0.3 where the
# file's formats allow it; the 5-bit files round weights more coarsely and
# this 135M-parameter model amplifies the 8-bit rounding of activations
# (llama.cpp per 256 values for K-quant weights, switchyard per 32) at a
# few uncertain steps: on the q4_k file llama.cpp's own batched and
# token-by-token evaluations of the same tokens differ by up to 0.47.
MAX_LOGPROB_DIFFERENCE = {"q8_0": 0.3, "q6_k": 0.3, "q4_k": 0.4, "q5_k": 0.4}


@pytest.mark.parametrize("ty", list(MAX_LOGPROB_DIFFERENCE))
def test_llama_cpp_reads_the_file_and_agrees_on_logprobs(bin_path, quantized, ty, tmp_path):
    """llama.cpp loads the file, and its teacher-forced logprobs on
    switchyard's greedy output (5 prompts, 32 tokens each) stay close to
    switchyard's: a misread file would be off by whole nats everywhere."""
    from llama_cpp import Llama

    path = quantized(ty)
    with serving(bin_path, path, tmp_path) as base:
        runs = [greedy_with_logprobs(base, p, 32) for p in PROMPTS]
    batched = Llama(model_path=str(path), n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    stepwise = Llama(
        model_path=str(path), n_ctx=256, n_batch=1, n_ubatch=1, logits_all=True, verbose=False, n_threads=2
    )
    diffs, own = [], []
    for prompt_ids, out_ids, ours in runs:
        theirs = teacher_forced(batched, prompt_ids, out_ids)
        diffs.extend(np.abs(ours - theirs))
        own.extend(np.abs(theirs - teacher_forced(stepwise, prompt_ids, out_ids)))
    diffs = np.array(diffs)
    print(f"{ty}: largest difference {diffs.max():.3f}, mean {diffs.mean():.3f}; llama.cpp against itself {max(own):.3f}")
    assert diffs.max() <= MAX_LOGPROB_DIFFERENCE[ty], f"{ty}: largest difference {diffs.max():.3f}"
    assert diffs.mean() <= 0.1, f"{ty}: mean difference {diffs.mean():.3f}"


def llama_perplexity(path: Path, text: Path, ctx: int, chunks: int) -> float:
    tool = os.environ.get("LLAMA_PERPLEXITY")
    assert tool, "LLAMA_PERPLEXITY is not set: scripts/llama-tools.sh builds it (scripts/test.sh does)"
    r = run(tool, "-m", str(path), "-f", str(text), "-c", str(ctx), "--chunks", str(chunks), "-t", "2")
    found = re.search(r"Final estimate: PPL = ([0-9.]+)", r.stdout + r.stderr)
    assert found, r.stderr[-2000:]
    return float(found.group(1))


@pytest.mark.parametrize("ty", ["source", "q4_k", "q6_k"])
def test_perplexity_agrees_with_llama_perplexity(bin_path, source, quantized, ty):
    text = os.environ.get("SWITCHYARD_TEST_TEXT")
    assert text, "SWITCHYARD_TEST_TEXT is not set: scripts/test.sh fetches a public-domain text"
    path = source if ty == "source" else quantized(ty)
    ctx, chunks = 256, 8
    r = run(bin_path, "eval", "perplexity", "--model", str(path), "--text", text,
            "--ctx", str(ctx), "--chunks", str(chunks), "--json")
    ours = json.loads(r.stdout)["ppl"]
    theirs = llama_perplexity(path, Path(text), ctx, chunks)
    assert abs(ours / theirs - 1) <= 0.01, f"{ty}: switchyard {ours:.4f}, llama-perplexity {theirs:.4f}"


@pytest.mark.parametrize("ty", ["q4_k", "q6_k"])
def test_quantizing_at_load_gives_the_weights_of_the_file(bin_path, source, quantized, ty, tmp_path):
    """`serve --quantize TYPE` on the source and `serve` on the file that
    `switchyard quantize --to TYPE` wrote compute with the same weights:
    the same greedy tokens with the same logprobs, bit for bit."""
    path = quantized(ty)
    results = []
    for model_args in (["--model", str(path)], ["--model", str(source), "--quantize", ty]):
        gen = serve_until_done(bin_path, tmp_path / f"{len(results)}.log", model_args, "--served-model-name", "q")
        base = next(gen)
        try:
            results.append([greedy_with_logprobs(base, p, 16) for p in PROMPTS[:2]])
        finally:
            gen.close()
    for (p1, o1, l1), (p2, o2, l2) in zip(*results):
        assert (p1, o1) == (p2, o2)
        assert np.array_equal(l1, l2)

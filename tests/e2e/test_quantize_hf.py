"""`switchyard quantize` on Hugging Face checkpoints: llama.cpp reads the
GGUF file written from each architecture's fixture, tokenizes as the
checkpoint's tokenizer.json does, and computes the logprobs switchyard
computes from the safetensors."""

from pathlib import Path

import gguf
import httpx
import numpy as np
import pytest

from test_quantize import greedy_with_logprobs, run, serving, teacher_forced

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "hf"

# Texts for the tokenizers. The Mistral fixture's SentencePiece-style
# tokenizer is given none that start with a space or hold special tokens:
# there llama.cpp adds a `▁` that Hugging Face's Metaspace does not, which
# GGUF cannot express.
TEXTS = [
    "Hello world, 12345 the fox jumped.",
    "def f(x):\n    return x + 1\n",
    "naïve café, 日本語 and 🎉 emoji!",
    "They'll say it's DONE -- isn't it?",
]
SPECIAL_TEXTS = {
    "llama": "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "qwen2": "<|im_start|>user\nhi<|im_end|>\n",
    "qwen3": "<|im_start|>user\nhi<|im_end|>\n",
}


@pytest.mark.parametrize("name", ["llama-f32", "mistral-f32", "qwen2-f32", "qwen3-bf16"])
def test_llama_cpp_reads_a_checkpoint_written_as_gguf(bin_path, name, tmp_path):
    from llama_cpp import Llama

    out = tmp_path / f"{name}.gguf"
    run(bin_path, "quantize", "--model", str(FIXTURES / name), "--to", "f32", "--out", str(out))
    reader = gguf.GGUFReader(out)
    arch = str(reader.get_field("general.architecture").contents())
    assert arch == {"mistral-f32": "llama"}.get(name, name.split("-")[0])
    assert all(t.tensor_type.name == "F32" for t in reader.tensors)

    # f32 KV cache, so that llama.cpp rounds nothing that switchyard keeps.
    llm = Llama(model_path=str(out), n_ctx=128, logits_all=True, verbose=False, n_threads=2, type_k=0, type_v=0)
    texts = TEXTS + [SPECIAL_TEXTS[arch]] if arch in SPECIAL_TEXTS and name != "mistral-f32" else TEXTS
    with serving(bin_path, FIXTURES / name, tmp_path) as base:
        for text in texts:
            ours = httpx.post(f"{base}/tokenize", json={"prompt": text, "add_special_tokens": False}).json()["tokens"]
            theirs = llm.tokenize(text.encode(), add_bos=False, special=True)
            assert ours == theirs, f"{name}: {text!r}"
        runs = [greedy_with_logprobs(base, p, 16) for p in TEXTS[:2]]
    diffs = np.concatenate([np.abs(ours - teacher_forced(llm, p, o)) for p, o, ours in runs])
    print(f"{name}: largest logprob difference {diffs.max():.2e}")
    assert diffs.max() < 1e-3, f"{name}: largest logprob difference {diffs.max():.2e}"


def test_a_checkpoint_quantized_to_a_file_equals_the_checkpoint_quantized_at_load(bin_path, tmp_path):
    """The file of `quantize --to q8_0` on a checkpoint and `serve
    --quantize q8_0` on the same checkpoint compute with the same weights."""
    src = FIXTURES / "qwen2-f32"
    out = tmp_path / "qwen2-q8_0.gguf"
    run(bin_path, "quantize", "--model", str(src), "--to", "q8_0", "--out", str(out))
    results = []
    for path, model_args in ((out, ()), (src, ("--quantize", "q8_0"))):
        with serving(bin_path, path, tmp_path, *model_args) as base:
            results.append(greedy_with_logprobs(base, TEXTS[0], 16))
    (p1, o1, l1), (p2, o2, l2) = results
    assert (p1, o1) == (p2, o2)
    assert np.array_equal(l1, l2)

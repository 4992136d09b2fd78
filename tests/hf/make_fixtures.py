#!/usr/bin/env python3
"""Generate tiny random Hugging Face checkpoints and what transformers computes on them.

Why
---
A loader for Hugging Face model directories has many details that only a real
directory exercises: config.json as transformers writes it (rope parameters,
dtype, head_dim, tied embeddings), sharded safetensors with an index, q/k/v
biases, q_norm/k_norm, bf16 weights, generation_config.json with one or
several EOS ids, tokenizer.json pipelines (byte-level BPE with a regex split,
SentencePiece-style BPE with byte fallback) and Jinja chat templates in
tokenizer_config.json.  Real checkpoints are gigabytes; these are ~100K
parameters each, small enough to live in the repository, yet each directory is
a complete, self-contained model that ``AutoModelForCausalLM`` and
``AutoTokenizer`` load as they would a downloaded one.

For every directory ``expected.json`` records the truth an engine is tested
against: transformers' own tokenization of a few prompts, the log-probabilities
of each prompt's next tokens (teacher forced), and 16 greedy steps with the
top-5 log-probabilities and the top-1 minus top-2 margin at each step.

What is built
-------------
Four architectures x two weight dtypes = 8 directories ``<arch>-<dtype>``:

* ``llama``   LlamaForCausalLM, Llama-3 style: rope_theta 500000, "llama3"
  rope scaling (factor 8, original context 64 < max_position_embeddings 512,
  so at head_dim 16 one frequency is kept, one is interpolated and six are
  divided by 8), untied embeddings, eos a list of two ids in
  generation_config.json, Llama-3 byte-level BPE tokenizer with BOS.
  ``llama-f32`` is sharded (several safetensors files + index).
* ``mistral`` MistralForCausalLM, no sliding window, rope_theta 1e6, untied;
  SentencePiece-style BPE with byte fallback (``<0x00>``..``<0xFF>``) and BOS.
* ``qwen2``   Qwen2ForCausalLM, q/k/v biases, tied embeddings (no lm_head in
  the safetensors); Qwen2 byte-level BPE, no BOS.
* ``qwen3``   Qwen3ForCausalLM, q_norm/k_norm, head_dim 32 with hidden 64 and
  4 heads (q width 128 != hidden), untied, rope_theta 1e6; Qwen tokenizer.

Geometry: hidden 64, 2 layers, 4 attention heads, 2 KV heads, head_dim 16
(qwen3: 32), intermediate 128, vocabulary 384 (= the tokenizer's size).

Weights are drawn from a seeded ``torch.Generator`` in sorted parameter-name
order (independent of transformers' own initialisation): matrices and
embeddings ~ N(0, 0.25^2), the LM head (the embedding when tied) ~
N(0, 0.5^2), far larger than a trained model's, so that the top-1 token is
usually well separated from the top-2 (greedy decoding is then well defined
for an engine computing in a lower precision); every RMSNorm weight
(including q_norm/k_norm) is 1 + 0.2 N(0,1) and every bias 0.1 N(0,1),
because transformers initialises those to constants (ones / zeros), which
would hide a missing norm weight or bias.  The bf16 directory holds the f32
weights rounded to bf16 (round to nearest even).  The seed of each
architecture is the first of a handful tried (1..16) for which no greedy
step of either dtype has a top-1/top-2 margin below 0.02; with these
scales about one step in a hundred otherwise falls below 0.01.

Tokenizers are built with the ``tokenizers`` library from a vocabulary and
merges learned here, by a small deterministic BPE trainer (ties broken by the
pair itself), on the English text embedded below.  (The library's own trainer
breaks count ties in an order that depends on hash-map iteration, which could
make reruns differ.)  Every prompt's ids from ``AutoTokenizer`` are checked to
equal those of the raw ``tokenizer.json`` (``tokenizers.Tokenizer``), which is
what a non-Python engine reads.

What the truth is
-----------------
Each saved directory is loaded back with
``AutoModelForCausalLM.from_pretrained(dir, dtype=torch.float32,
attn_implementation="eager")`` (bf16 weights are upcast exactly to float32)
after checking that every loaded tensor equals the tensor that was saved.
Greedy decoding is a plain loop: one full forward pass over the whole sequence
per step (no KV cache), the next token is the argmax of the float32 logits at
the last position, no logits processors, EOS is not special (always 16 steps).
Log-probabilities are ``log_softmax`` in float64 of those float32 logits.
Computation runs on CPU with one thread.  Numbers are rounded to 7
significant digits.

How to rerun
------------
    python3 -m venv /work/venv-ref            # outside the repository
    /work/venv-ref/bin/pip install -r tests/hf/requirements.txt
    /work/venv-ref/bin/python tests/hf/make_fixtures.py --out tests/data/hf

It takes well under a minute, and reruns give byte-identical files.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shutil
import sys
from collections import Counter
from pathlib import Path

# The JSON layout of reference files, shared with scripts/reference/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "reference"))
from compact_json import compact_json  # noqa: E402

SCHEMA_VERSION = 1
N_STEPS = 16
TOP_K = 5
VOCAB_SIZE = 384
INIT_STD = 0.25
LM_HEAD_STD = 0.5
NORM_STD = 0.2
BIAS_STD = 0.1
SHARDED = "llama-f32"
SHARD_SIZE = "200KB"
DTYPES = {"f32": "float32", "bf16": "bfloat16"}

# Training text for the tokenizers (vocabulary and merges come from here).
CORPUS = """\
The morning train left the station at seven o'clock, carrying farmers, \
students and a few tired travellers toward the city. Outside the windows the \
fields were still grey with frost, and the river ran slowly under the old \
stone bridge.

Once upon a time, in a small village at the edge of a dark forest, there \
lived an old clockmaker who repaired every clock in the town. People said \
that he could hear when a clock was about to stop, and that he never slept \
more than four hours a night.

A good recipe for bread needs only four things: flour, water, salt and time. \
Mix the flour with the water, let it rest for an hour, then add the salt and \
fold the dough every thirty minutes. Bake it in a very hot oven until the \
crust is dark and the loaf sounds hollow when you knock on it.

The committee met on Tuesday to discuss the budget for the next year. Most of \
the members agreed that the library should stay open in the evening, but \
there was a long debate about the cost of new computers for the school.

What is the capital of France? The capital of France is Paris, a city known \
for its museums, its cafes and the long walks along the river Seine. Many \
visitors come in the spring, when the parks are full of flowers.

She opened the letter, read the first line twice, and then laughed. "You \
will never guess who wrote to me," she said. "It is my teacher from the \
first school, and she wants to know if I still play the piano."

Numbers are simple: one, two, three, four, five, six, seven, eight, nine and \
ten. In 2024 the team scored 31 points in the first game and 17 in the second.
"""

PROMPTS = [
    ("short", "The cat sat on the mat."),
    ("story",
     "Once upon a time, in a small village at the edge of a dark forest, "
     "there lived an old clockmaker who"),
    ("non_ascii", "I ordered a café ☕ au lait and a croissant, naïvely."),
    ("list_digits", "Shopping list:\n1. apples\n2. bread\n3."),
    ("one_word", "Hello"),
]

CHAT_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]

LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Chat templates in the style of each family (shortened, but real Jinja).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != "
    "'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>"
    "\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
QWEN3_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + "
    "message.content | trim + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}")
MISTRAL_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{%- endif %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.first and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + "
    "' [/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content'] + eos_token }}"
    "{%- else %}{{- raise_exception('Only user and assistant roles are "
    "supported, with the exception of an initial optional system message!') }}"
    "{%- endif %}{%- endfor %}")

ARCHS = {
    "llama": {
        "class": "LlamaForCausalLM", "seed": 6, "tokenizer": "llama3",
        "config": dict(rms_norm_eps=1e-5, tie_word_embeddings=False,
                       max_position_embeddings=512,
                       rope_parameters={
                           "rope_type": "llama3", "rope_theta": 500000.0,
                           "factor": 8.0, "low_freq_factor": 1.0,
                           "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 64}),
    },
    "mistral": {
        "class": "MistralForCausalLM", "seed": 1, "tokenizer": "spm",
        "config": dict(rms_norm_eps=1e-6, tie_word_embeddings=False,
                       max_position_embeddings=512, sliding_window=None,
                       rope_parameters={"rope_type": "default",
                                        "rope_theta": 1000000.0}),
    },
    "qwen2": {
        "class": "Qwen2ForCausalLM", "seed": 16, "tokenizer": "qwen2",
        "config": dict(rms_norm_eps=1e-6, tie_word_embeddings=True,
                       max_position_embeddings=512, use_sliding_window=False,
                       rope_parameters={"rope_type": "default",
                                        "rope_theta": 1000000.0}),
    },
    "qwen3": {
        "class": "Qwen3ForCausalLM", "seed": 5, "tokenizer": "qwen3",
        "config": dict(rms_norm_eps=1e-6, tie_word_embeddings=False,
                       max_position_embeddings=512, use_sliding_window=False,
                       head_dim=32, attention_bias=False,
                       rope_parameters={"rope_type": "default",
                                        "rope_theta": 1000000.0}),
    },
}
GEOMETRY = dict(vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, hidden_act="silu",
                initializer_range=INIT_STD)


# ----------------------------------------------------------------------------
# Tokenizers


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (as ByteLevel uses it)."""
    bs = (list(range(ord("!"), ord("~") + 1))
          + list(range(ord("\u00a1"), ord("\u00ac") + 1))
          + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_bpe(words: Counter, alphabet: list[str], n_tokens: int):
    """Deterministic BPE: merge the most frequent adjacent pair (ties: the
    smallest pair) until the vocabulary has n_tokens entries.

    Returns (vocabulary list in id order, merges list)."""
    vocab = list(alphabet)
    known = set(vocab)
    splits = {w: [c for c in w] for w in sorted(words)}
    for w, s in splits.items():
        missing = set(s) - known
        if missing:
            raise SystemExit(f"training word {w!r} has symbols {missing} "
                             "outside the alphabet")
    merges = []
    while len(vocab) < n_tokens:
        pairs = Counter()
        for w, s in splits.items():
            c = words[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += c
        if not pairs:
            raise SystemExit("training text too small for the vocabulary")
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merged = a + b
        merges.append((a, b))
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        for w, s in splits.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    return vocab, merges


def corpus_paragraphs() -> list[str]:
    return [p.strip() for p in CORPUS.split("\n\n") if p.strip()]


def byte_level_tokenizer(kind: str):
    """Llama-3 or Qwen2 style byte-level BPE (tokenizer, specials, extras)."""
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models,
                            normalizers, pre_tokenizers, processors)

    if kind == "llama3":
        regex = LLAMA3_REGEX
        specials = ["<|begin_of_text|>", "<|end_of_text|>",
                    "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    else:
        regex = QWEN2_REGEX
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False,
                                 trim_offsets=kind == "llama3",
                                 use_regex=False),
    ])
    words = Counter()
    for para in corpus_paragraphs():
        for piece, _ in pre.pre_tokenize_str(para):
            words[piece] += 1
    b2u = bytes_to_unicode()
    alphabet = [b2u[b] for b in sorted(b2u, key=lambda b: ord(b2u[b]))]
    vocab, merges = train_bpe(words, alphabet, VOCAB_SIZE - len(specials))
    bpe = models.BPE(vocab={t: i for i, t in enumerate(vocab)}, merges=merges,
                     dropout=None, unk_token=None, fuse_unk=False,
                     byte_fallback=False, ignore_merges=kind == "llama3")
    tok = Tokenizer(bpe)
    if kind != "llama3":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False)
                            for s in specials])
    if kind == "llama3":
        bos = specials[0]
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False,
                                 use_regex=True),
            processors.TemplateProcessing(
                single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                special_tokens=[(bos, tok.token_to_id(bos))]),
        ])
    else:
        tok.post_processor = processors.ByteLevel(
            add_prefix_space=False, trim_offsets=False, use_regex=False)
    return tok


def spm_tokenizer():
    """Mistral style: SentencePiece-like BPE over '▁'-marked words with byte
    fallback; <unk> <s> </s> = 0 1 2, <0x00>..<0xFF> = 3..258."""
    from tokenizers import (AddedToken, Tokenizer, decoders, models,
                            pre_tokenizers, processors)

    specials = ["<unk>", "<s>", "</s>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    train_pre = pre_tokenizers.Metaspace(replacement="\u2581",
                                         prepend_scheme="always", split=True)
    words = Counter()
    for para in corpus_paragraphs():
        for piece, _ in train_pre.pre_tokenize_str(para):
            words[piece] += 1
    alphabet = sorted({c for w in words for c in w})
    base = len(specials) + len(byte_tokens)
    learned, merges = train_bpe(words, alphabet, VOCAB_SIZE - base)
    vocab = specials + byte_tokens + learned
    bpe = models.BPE(vocab={t: i for i, t in enumerate(vocab)}, merges=merges,
                     dropout=None, unk_token="<unk>", fuse_unk=True,
                     byte_fallback=True)
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([
        decoders.Replace("\u2581", " "), decoders.ByteFallback(),
        decoders.Fuse(), decoders.Strip(content=" ", left=1, right=0)])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False)
                            for s in specials])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1",
        special_tokens=[("<s>", 1)])
    return tok


def added_tokens_decoder(tok) -> dict:
    out = {}
    for tid, at in sorted(tok.get_added_tokens_decoder().items()):
        out[str(tid)] = {"content": at.content, "lstrip": at.lstrip,
                         "normalized": at.normalized, "rstrip": at.rstrip,
                         "single_word": at.single_word, "special": at.special}
    return out


def write_tokenizer(arch: str, out: Path) -> dict:
    """Write tokenizer.json + tokenizer_config.json; return the special ids."""
    kind = ARCHS[arch]["tokenizer"]
    if kind == "spm":
        tok = spm_tokenizer()
        cfg = {"add_bos_token": True, "add_eos_token": False,
               "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
               "pad_token": None, "legacy": False,
               "chat_template": MISTRAL_TEMPLATE,
               "clean_up_tokenization_spaces": False,
               "model_max_length": 512, "tokenizer_class": "LlamaTokenizer"}
        ids = {"bos": tok.token_to_id("<s>"), "eos": tok.token_to_id("</s>")}
    elif kind == "llama3":
        tok = byte_level_tokenizer("llama3")
        cfg = {"add_bos_token": True, "add_eos_token": False,
               "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
               "chat_template": LLAMA3_TEMPLATE,
               "clean_up_tokenization_spaces": False,
               "model_input_names": ["input_ids", "attention_mask"],
               "model_max_length": 512,
               "tokenizer_class": "PreTrainedTokenizerFast"}
        ids = {"bos": tok.token_to_id("<|begin_of_text|>"),
               "end_of_text": tok.token_to_id("<|end_of_text|>"),
               "eos": tok.token_to_id("<|eot_id|>")}
    else:
        tok = byte_level_tokenizer(kind)
        cfg = {"add_prefix_space": False, "bos_token": None,
               "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
               "errors": "replace", "split_special_tokens": False,
               "chat_template": QWEN3_TEMPLATE if kind == "qwen3"
               else QWEN2_TEMPLATE,
               "clean_up_tokenization_spaces": False,
               "model_max_length": 512, "tokenizer_class": "Qwen2Tokenizer"}
        ids = {"bos": tok.token_to_id("<|endoftext|>"),
               "eos": tok.token_to_id("<|im_end|>"),
               "pad": tok.token_to_id("<|endoftext|>")}
    if tok.get_vocab_size(with_added_tokens=True) != VOCAB_SIZE:
        raise SystemExit(f"{arch}: tokenizer has "
                         f"{tok.get_vocab_size(with_added_tokens=True)} tokens")
    tok.save(str(out / "tokenizer.json"), pretty=True)
    cfg = {"added_tokens_decoder": added_tokens_decoder(tok), **cfg}
    write_json(out / "tokenizer_config.json", cfg)
    return ids


# ----------------------------------------------------------------------------
# Models


def build_model(arch: str, ids: dict):
    import torch
    import transformers
    from transformers import GenerationConfig

    spec = ARCHS[arch]
    cls = getattr(transformers, spec["class"])
    config_cls = cls.config_class
    config = config_cls(
        **GEOMETRY, **copy.deepcopy(spec["config"]),
        bos_token_id=ids["bos"], eos_token_id=ids["eos"],
        pad_token_id=ids.get("pad"))
    torch.manual_seed(spec["seed"])
    model = cls(config).to(torch.float32).eval()

    g = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            owner = name.split(".")[-2]
            if name.endswith(".bias"):
                p.copy_(BIAS_STD * noise)
            elif p is model.get_output_embeddings().weight:
                p.copy_(LM_HEAD_STD * noise)
            elif "norm" in owner:
                p.copy_(1.0 + NORM_STD * noise)
            else:
                p.copy_(INIT_STD * noise)

    if arch == "llama":
        gen = GenerationConfig(bos_token_id=ids["bos"],
                               eos_token_id=[ids["end_of_text"], ids["eos"]],
                               do_sample=True, temperature=0.6, top_p=0.9)
    else:
        gen = GenerationConfig(bos_token_id=ids["bos"],
                               eos_token_id=ids["eos"],
                               pad_token_id=ids.get("pad"))
    model.generation_config = gen
    return model


def rope_report(model) -> tuple[list[float], list[float]]:
    """inv_freq without and with the configured rope scaling."""
    import torch

    cfg = model.config
    theta = cfg.rope_parameters["rope_theta"]
    dim = cfg.head_dim
    plain = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64)
                             .float() / dim))
    used = model.model.rotary_emb.inv_freq.detach().float()
    return plain.tolist(), used.tolist()


def save_model(model, out: Path, dtype: str, sharded: bool):
    import torch

    m = model if dtype == "float32" else copy.deepcopy(model).to(
        getattr(torch, dtype))
    kwargs = {"max_shard_size": SHARD_SIZE} if sharded else {}
    m.save_pretrained(str(out), **kwargs)
    for f in out.glob("*.safetensors"):
        f.chmod(0o644)  # safetensors writes 0600
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


# ----------------------------------------------------------------------------
# Truth


def sig7(x: float) -> float:
    return float(f"{float(x):.7g}")


def check_tokenizer(out: Path, hf_tok, raw_tok, text: str,
                    add_special: bool) -> list[int]:
    hf_ids = list(hf_tok(text, add_special_tokens=add_special)["input_ids"])
    raw_ids = raw_tok.encode(text, add_special_tokens=add_special).ids
    if hf_ids != raw_ids:
        raise SystemExit(f"{out.name}: AutoTokenizer and tokenizer.json "
                         f"disagree on {text!r}: {hf_ids} vs {raw_ids}")
    return hf_ids


def greedy_case(model, hf_tok, prompt_ids: list[int]) -> dict:
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt_ids]),
                       use_cache=False).logits[0]
        lsm = torch.log_softmax(logits.double(), dim=-1)
        prompt_lp = [sig7(lsm[i, prompt_ids[i + 1]])
                     for i in range(len(prompt_ids) - 1)]
        ids = list(prompt_ids)
        steps, gen = [], []
        for _ in range(N_STEPS):
            logits = model(input_ids=torch.tensor([ids]),
                           use_cache=False).logits[0, -1]
            assert logits.dtype == torch.float32
            tok = int(torch.argmax(logits))
            lsm = torch.log_softmax(logits.double(), dim=-1)
            top = torch.topk(lsm, TOP_K)
            top_ids = [int(t) for t in top.indices]
            if top_ids[0] != tok:
                raise SystemExit("argmax tie between top-1 candidates")
            vals = [float(v) for v in top.values]
            steps.append({
                "token_id": tok,
                "logprob": sig7(vals[0]),
                "top": [[t, sig7(v)] for t, v in zip(top_ids, vals)],
                "margin": sig7(vals[0] - vals[1]),
            })
            gen.append(tok)
            ids.append(tok)
    return {
        "prompt_logprobs": prompt_lp,
        "generated_token_ids": gen,
        "generated_text": hf_tok.decode(gen),
        "min_margin": min(s["margin"] for s in steps),
        "steps": steps,
    }


def make_truth(out: Path, arch: str, dtype: str, saved: dict, seed: int,
               versions: dict) -> dict:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, info = AutoModelForCausalLM.from_pretrained(
        str(out), dtype=torch.float32, attn_implementation="eager",
        output_loading_info=True)
    model.eval()
    problems = {k: v for k, v in info.items() if v}
    if problems:
        raise SystemExit(f"{out.name}: loading problems {problems}")
    loaded = model.state_dict()
    for name, t in saved.items():
        if not torch.equal(loaded[name], t.float()):
            raise SystemExit(f"{out.name}: {name} differs after reload")
    if type(model).__name__ != ARCHS[arch]["class"]:
        raise SystemExit(f"{out.name}: loaded as {type(model).__name__}")

    hf_tok = AutoTokenizer.from_pretrained(str(out))
    raw_tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    if len(hf_tok) != VOCAB_SIZE:
        raise SystemExit(f"{out.name}: len(tokenizer) = {len(hf_tok)}")

    cases = []
    for name, text in PROMPTS:
        ids = check_tokenizer(out, hf_tok, raw_tok, text, True)
        decoded = hf_tok.decode(ids, skip_special_tokens=True)
        if decoded != text:
            raise SystemExit(f"{out.name}: round trip {text!r} -> {decoded!r}")
        cases.append({"name": name, "kind": "text", "text": text,
                      "add_special_tokens": True, "prompt_token_ids": ids,
                      **greedy_case(model, hf_tok, ids)})

    chat_text = hf_tok.apply_chat_template(
        CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
    chat_ids = hf_tok.apply_chat_template(
        CHAT_MESSAGES, tokenize=True, add_generation_prompt=True)
    if not isinstance(chat_ids, list):
        chat_ids = chat_ids["input_ids"]
    chat_ids = [int(i) for i in chat_ids]
    if chat_ids != check_tokenizer(out, hf_tok, raw_tok, chat_text, False):
        raise SystemExit(f"{out.name}: chat ids differ from encoding the "
                         "rendered text without special tokens")
    cases.append({"name": "chat", "kind": "chat", "messages": CHAT_MESSAGES,
                  "text": chat_text, "add_special_tokens": False,
                  "prompt_token_ids": chat_ids,
                  **greedy_case(model, hf_tok, chat_ids)})

    cfg = model.config
    return {
        "schema_version": SCHEMA_VERSION,
        "description": (
            "Tiny random checkpoint; greedy decoding and log-probabilities "
            "computed by HF transformers in float32 (eager attention, full "
            "forward pass per step, no logits processors, EOS not special). "
            "See tests/hf/README.md."),
        "fixture": out.name,
        "architecture": ARCHS[arch]["class"],
        "model_type": cfg.model_type,
        "weights_dtype": dtype,
        "seed": seed,
        "vocab_size": VOCAB_SIZE,
        "tools": versions,
        "settings": {
            "compute_dtype": "float32",
            "attn_implementation": "eager",
            "n_steps": N_STEPS,
            "top_k": TOP_K,
            "greedy": "argmax of the float32 logits at the last position; "
                      "one full forward pass over the sequence per step",
            "logprobs": "log_softmax in float64 of the float32 logits",
            "prompt_logprobs": "entry i = logprob of prompt_token_ids[i+1] "
                               "at position i (teacher forced)",
            "margin": "top-1 minus top-2 logprob",
            "float_digits": 7,
            "threads": 1,
        },
        "min_margin": min(c["min_margin"] for c in cases),
        "cases": cases,
    }


# ----------------------------------------------------------------------------
# Output helpers


def write_json(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def tool_versions() -> dict:
    import numpy
    import safetensors
    import tokenizers
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": numpy.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("tests/data/hf"),
                    help="output root (one sub-directory per fixture)")
    ap.add_argument("--arch", action="append", choices=sorted(ARCHS),
                    help="only these architectures (repeatable)")
    args = ap.parse_args()

    import torch
    import transformers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    versions = tool_versions()
    args.out.mkdir(parents=True, exist_ok=True)

    for arch in args.arch or list(ARCHS):
        seed = ARCHS[arch]["seed"]
        model = None
        for short, dtype in DTYPES.items():
            name = f"{arch}-{short}"
            out = args.out / name
            if out.exists():
                shutil.rmtree(out)
            out.mkdir()
            ids = write_tokenizer(arch, out)
            if model is None:
                model = build_model(arch, ids)
                if arch == "llama":
                    plain, used = rope_report(model)
                    print("llama3 rope inv_freq plain :",
                          " ".join(f"{x:.4g}" for x in plain), file=sys.stderr)
                    print("llama3 rope inv_freq scaled:",
                          " ".join(f"{x:.4g}" for x in used), file=sys.stderr)
                    changed = sum(abs(a - b) > 1e-12 * abs(a)
                                  for a, b in zip(plain, used))
                    if not 0 < changed < len(plain):
                        raise SystemExit("llama3 scaling should change some, "
                                         f"not {changed}, frequencies")
            saved = save_model(model, out, dtype, name == SHARDED)
            truth = make_truth(out, arch, dtype, saved, seed, versions)
            with open(out / "expected.json", "w", encoding="utf-8") as f:
                f.write(compact_json(truth, width=200) + "\n")
            margins = sorted(s["margin"] for c in truth["cases"]
                             for s in c["steps"])
            small = sum(m < 1e-2 for m in margins)
            print(f"{name:13s} min margin {margins[0]:.4g}  "
                  f"<1e-2: {small}/{len(margins)}  "
                  f"median {margins[len(margins) // 2]:.3g}", file=sys.stderr)


if __name__ == "__main__":
    main()

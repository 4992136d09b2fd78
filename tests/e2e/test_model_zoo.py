"""Models beyond the default GGUF: the tiny dummy preset, served with no
file at all, and a Hugging Face directory (tests/data/hf/), through the
official openai client."""

import json
import subprocess

import httpx
import pytest
from openai import OpenAI

from conftest import ROOT, serve_until_done

HF_FIXTURE = ROOT / "tests" / "data" / "hf" / "llama-f32"


@pytest.fixture(scope="module")
def tiny(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("tiny") / "server.log"
    yield from serve_until_done(bin_path, log, ["--load-format", "dummy", "--model", "tiny"])


@pytest.fixture(scope="module")
def tiny_client(tiny):
    return OpenAI(base_url=f"{tiny}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def hf(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("hf") / "server.log"
    yield from serve_until_done(
        bin_path, log, ["--model", str(HF_FIXTURE)], "--served-model-name", "tiny-llama"
    )


def token_ids(choice):
    return [int(t.removeprefix("token_id:")) for t in choice.logprobs.tokens]


def complete(client, **kw):
    extra = kw.pop("extra_body", {})
    return client.completions.create(
        model=kw.pop("model", "dummy-tiny"),
        prompt=kw.pop("prompt", "Once upon a time"),
        logprobs=1,
        extra_body={"return_tokens_as_token_ids": True, **extra},
        **kw,
    )


def test_tiny_preset_serves_without_any_file(tiny, tiny_client):
    models = [m.id for m in tiny_client.models.list().data]
    assert models == ["dummy-tiny"]
    r = complete(tiny_client, max_tokens=8, temperature=0)
    assert r.usage.completion_tokens == 8
    assert r.usage.prompt_tokens == len("Once upon a time")  # one token per byte
    assert r.choices[0].finish_reason == "length"
    chat = tiny_client.chat.completions.create(
        model="dummy-tiny",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=4,
    )
    assert chat.usage.completion_tokens == 4
    assert chat.choices[0].message.role == "assistant"


def test_top_k_one_is_greedy_and_a_seed_repeats(tiny_client):
    greedy = token_ids(complete(tiny_client, max_tokens=24, temperature=0).choices[0])
    top1 = complete(tiny_client, max_tokens=24, temperature=1.0, extra_body={"top_k": 1})
    assert token_ids(top1.choices[0]) == greedy

    a = token_ids(complete(tiny_client, max_tokens=24, temperature=1.0, seed=11).choices[0])
    b = token_ids(complete(tiny_client, max_tokens=24, temperature=1.0, seed=11).choices[0])
    assert a == b
    others = [
        token_ids(complete(tiny_client, max_tokens=24, temperature=1.0, seed=s).choices[0])
        for s in range(12, 16)
    ]
    assert any(o != a for o in others), "different seeds never changed the sample"


def test_a_hugging_face_directory_serves_transformers_greedy_tokens(hf):
    expected = json.loads((HF_FIXTURE / "expected.json").read_text())
    client = OpenAI(base_url=f"{hf}/v1", api_key="unused", max_retries=0, timeout=60)
    for case in expected["cases"]:
        if case["kind"] != "text":
            continue
        r = complete(
            client,
            model="tiny-llama",
            prompt=case["text"],
            max_tokens=len(case["generated_token_ids"]),
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        assert r.usage.prompt_tokens == len(case["prompt_token_ids"]), case["name"]
        assert token_ids(r.choices[0]) == case["generated_token_ids"], case["name"]


def test_a_hugging_face_directory_renders_its_chat_template(hf):
    expected = json.loads((HF_FIXTURE / "expected.json").read_text())
    chat = next(c for c in expected["cases"] if c["kind"] == "chat")
    r = httpx.post(
        f"{hf}/v1/chat/completions",
        json={
            "model": "tiny-llama",
            "messages": chat["messages"],
            "max_tokens": 1,
            "temperature": 0,
        },
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] == len(chat["prompt_token_ids"])


def test_tokenize_reads_tokenizer_json(bin_path):
    fixture = ROOT / "tests" / "data" / "hf" / "mistral-f32"
    expected = json.loads((fixture / "expected.json").read_text())
    case = next(c for c in expected["cases"] if c["name"] == "non_ascii")
    out = subprocess.run(
        [bin_path, "tokenize", "--model", str(fixture), "--add-special", case["text"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [int(t) for t in out.stdout.split()] == case["prompt_token_ids"]


def test_dummy_needs_a_preset_or_config(bin_path):
    out = subprocess.run(
        [bin_path, "generate", "--load-format", "dummy", "--model", "nope", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "tiny" in out.stderr and "config.json" in out.stderr

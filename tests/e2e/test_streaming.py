"""Server-sent events through the official client: the streamed text is
the non-streamed text, chunk by chunk, and a client that leaves cancels
its request."""

import time

import httpx

from conftest import SERVED_NAME

PROMPT = "Write a short list of fruits:"


def test_streamed_completion_equals_the_whole_one(client):
    args = dict(model=SERVED_NAME, prompt=PROMPT, max_tokens=24, temperature=0)
    whole = client.completions.create(**args)
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True}, **args))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 24
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_streamed_completion_logprobs_and_stop(client):
    args = dict(model=SERVED_NAME, prompt=PROMPT, max_tokens=24, temperature=0, stop=["\n\n"], logprobs=2)
    whole = client.completions.create(**args)
    chunks = list(client.completions.create(stream=True, **args))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    streamed = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    assert streamed == whole.choices[0].logprobs.tokens
    offsets = [o for c in chunks if c.choices[0].logprobs for o in c.choices[0].logprobs.text_offset]
    assert offsets == whole.choices[0].logprobs.text_offset


def test_streamed_chat_equals_the_whole_one(client):
    args = dict(model=SERVED_NAME, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=16, temperature=0)
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, logprobs=True, **args))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens
    entries = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert len(entries) == whole.usage.completion_tokens


def test_a_client_that_leaves_cancels_its_request(server, client):
    # A request that would run for thousands of tokens, abandoned after two
    # chunks; the next request must not wait for it to finish.
    body = {"model": SERVED_NAME, "prompt": PROMPT, "max_tokens": 4000, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", f"{server}/v1/completions", json=body, timeout=60) as r:
        assert r.headers["content-type"] == "text/event-stream"
        lines = r.iter_lines()
        got = 0
        for line in lines:
            if line.startswith("data: "):
                got += 1
                if got == 2:
                    break
    start = time.monotonic()
    r = client.completions.create(model=SERVED_NAME, prompt="Hi", max_tokens=1, temperature=0)
    assert r.usage.completion_tokens == 1
    # 4000 tokens take far longer than this on any machine we run.
    assert time.monotonic() - start < 15

"""The API as curl sees it: exact wire formats, no client library
smoothing anything over."""

import json
import subprocess


def curl(*args):
    out = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "120", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    head, _, body = out.stdout.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split("\n")[0].split()[1])
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in head.split("\n")[1:])
    }
    return status, headers, body


def post(server, path, body):
    return curl(
        "-X", "POST", f"{server}{path}", "-H", "Content-Type: application/json", "-d", json.dumps(body)
    )


def test_chat_completion_shape(server):
    status, headers, body = post(
        server,
        "/v1/chat/completions",
        {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    )
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert headers["x-switchyard-model-version"] == "smollm2@boot"
    r = json.loads(body)
    assert r["object"] == "chat.completion" and r["id"].startswith("chatcmpl")
    assert set(r) >= {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
    assert r["choices"][0]["message"]["role"] == "assistant"
    assert r["usage"]["completion_tokens"] <= 3


def test_streaming_is_server_sent_events_ending_in_done(server):
    status, headers, body = post(
        server,
        "/v1/chat/completions",
        {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 4
    assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_errors_carry_openai_envelopes(server):
    cases = [
        (curl("-X", "POST", f"{server}/v1/completions", "-H", "Content-Type: application/json", "-d", "{"), 400),
        (post(server, "/v1/completions", {"model": "nope", "prompt": "x"}), 404),
        (post(server, "/v1/completions", {"model": "smollm2", "prompt": "x", "temperature": 9}), 400),
        (curl(f"{server}/v1/completions"), 405),
        (curl("-X", "POST", f"{server}/v1/completions", "-H", "Content-Type: text/plain", "-d", "x"), 415),
    ]
    for (status, headers, body), want in cases:
        assert status == want, body
        err = json.loads(body)["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"]

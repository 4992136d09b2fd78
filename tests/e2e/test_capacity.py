"""A full queue answers 429 with Retry-After and OpenAI's envelope, before
any stream starts; the place frees once the running request ends. Every
response names the model version that served it."""

import json
import time

import httpx
import pytest

from conftest import MODEL, serve_until_done


@pytest.fixture(scope="module")
def no_queue(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("capacity") / "server.log"
    # One seat and no queue: room for the running request only.
    yield from serve_until_done(
        bin_path, log, ["--model", MODEL], "--served-model-name", "m", "--max-num-seqs", "1", "--max-queue", "0"
    )


def long_stream(base):
    body = {
        "model": "m",
        "prompt": "Count slowly:",
        "max_tokens": 400,
        "ignore_eos": True,
        "stream": True,
    }
    return httpx.stream("POST", f"{base}/v1/completions", json=body, timeout=120)


def test_a_full_queue_is_a_429_with_retry_after(no_queue):
    with long_stream(no_queue) as running:
        assert running.status_code == 200
        lines = running.iter_lines()
        # The first token has arrived: the request holds the engine.
        assert next(l for l in lines if l.startswith("data: ")).startswith("data: {")
        for stream in (False, True):
            r = httpx.post(
                f"{no_queue}/v1/completions",
                json={"model": "m", "prompt": "hi", "max_tokens": 2, "stream": stream},
                timeout=30,
            )
            assert r.status_code == 429, r.text
            assert r.headers["retry-after"] == "1"
            err = r.json()["error"]
            assert err["type"] == "rate_limit_error" and err["code"] == "queue_full"
            assert "capacity" in err["message"]
            assert r.headers["x-switchyard-model-version"] == "m@boot"
    # The client left; the engine drops the request at its next step.
    deadline = time.monotonic() + 60
    while True:
        r = httpx.post(
            f"{no_queue}/v1/completions",
            json={"model": "m", "prompt": "hi", "max_tokens": 2},
            timeout=30,
        )
        if r.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 200, r.text
    assert r.headers["x-switchyard-model-version"] == "m@boot"


def test_every_response_names_the_model_version(no_queue):
    for method, path in [("GET", "/health"), ("GET", "/v1/models"), ("GET", "/nope")]:
        r = httpx.request(method, f"{no_queue}{path}", timeout=10)
        assert r.headers["x-switchyard-model-version"] == "m@boot", path
    r = httpx.post(f"{no_queue}/v1/completions", content=b"{", timeout=10)
    assert r.status_code == 400
    assert r.headers["x-switchyard-model-version"] == "m@boot"
    json.loads(r.text)

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


@pytest.fixture(scope="module")
def small_cache(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("small-cache") / "server.log"
    # 16 MiB of KV cache: a few hundred positions of the default model.
    yield from serve_until_done(
        bin_path, log, ["--model", MODEL], "--served-model-name", "m",
        "--max-num-seqs", "4", "--kv-cache-memory", "16MiB",
    )


def test_a_request_larger_than_the_whole_cache_is_a_clear_400(small_cache):
    r = httpx.post(
        f"{small_cache}/v1/completions",
        json={"model": "m", "prompt": "Once upon a time", "max_tokens": 5000},
        timeout=30,
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "max_tokens"
    assert "whole cache" in err["message"]
    # Without max_tokens the default stops at what the cache holds.
    r = httpx.post(
        f"{small_cache}/v1/completions",
        json={"model": "m", "prompt": "Once upon a time", "max_tokens": 8},
        timeout=60,
    )
    assert r.status_code == 200, r.text


def test_concurrent_requests_that_overflow_the_cache_all_finish(small_cache):
    """Four long generations need more blocks than the cache has: some are
    preempted and recomputed, and every one finishes with its full length."""
    import concurrent.futures

    def one(i):
        return httpx.post(
            f"{small_cache}/v1/completions",
            json={"model": "m", "prompt": f"Story {i}:", "max_tokens": 120,
                  "ignore_eos": True, "temperature": 0},
            timeout=300,
        )

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(4)))
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] == 120
    metrics = httpx.get(f"{small_cache}/metrics", timeout=10).text
    preempted = [l for l in metrics.splitlines() if l.startswith("switchyard_preemptions_total{")]
    assert preempted and float(preempted[0].rsplit(" ", 1)[1]) > 0, metrics


def test_priority_is_an_integer(no_queue):
    r = httpx.post(
        f"{no_queue}/v1/completions",
        json={"model": "m", "prompt": "hi", "max_tokens": 1, "priority": 2**40},
        timeout=30,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "priority", r.text
    r = httpx.post(
        f"{no_queue}/v1/completions",
        json={"model": "m", "prompt": "hi", "max_tokens": 1, "priority": -3},
        timeout=30,
    )
    assert r.status_code == 200, r.text

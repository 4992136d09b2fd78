"""A server of its own: --max-model-len, --default-max-tokens, and a graceful stop on SIGTERM
(/ready answers 503 at once, the request in flight finishes, exit 0)."""

import signal

import httpx
import openai
import pytest
from openai import OpenAI

from conftest import start_server, wait_ready


@pytest.fixture
def own_server(bin_path, tmp_path):
    log = open(tmp_path / "server.log", "w")
    proc, base = start_server(
        bin_path, log, "--max-model-len", "512", "--default-max-tokens", "5", "--shutdown-grace", "5"
    )
    assert wait_ready(proc, base), (tmp_path / "server.log").read_text()[-3000:]
    yield proc, base
    if proc.poll() is None:
        proc.kill()
    log.close()


def test_max_model_len_caps_the_context(own_server):
    _, base = own_server
    client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    card = client.models.list().data[0]
    assert card.model_extra["max_model_len"] == 512
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=card.id, prompt="hi", max_tokens=600)
    assert "512" in e.value.body["message"]


def test_default_max_tokens_applies_when_none_is_named(own_server):
    _, base = own_server
    r = httpx.post(f"{base}/v1/completions", json={"prompt": "Once", "ignore_eos": True}).json()
    assert r["usage"]["completion_tokens"] == 5
    r = httpx.post(f"{base}/v1/completions", json={"prompt": "Once", "ignore_eos": True, "max_tokens": 7}).json()
    assert r["usage"]["completion_tokens"] == 7


def test_sigterm_drains_in_flight_requests_and_exits_zero(own_server):
    proc, base = own_server
    body = {"prompt": "Count:", "max_tokens": 120, "ignore_eos": True, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{base}/v1/completions", json=body, timeout=120) as r:
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert first
        proc.send_signal(signal.SIGTERM)
        # Not ready from the moment the signal lands, while the listener is
        # still open for the grace period.
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 503
        rest = [line for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]", rest[-3:]
    assert proc.wait(timeout=60) == 0

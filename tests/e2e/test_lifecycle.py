"""A server of its own: --max-model-len, and a graceful stop on SIGTERM
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
    proc, base = start_server(bin_path, log, "--max-model-len", "512", "--shutdown-grace", "5")
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

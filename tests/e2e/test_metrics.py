"""The engine's metrics against what clients saw: after N known requests
the counters grew by N, the token counters by the sum of the responses'
usage, the TTFT histogram's count by N, and the running and waiting gauges
are back at zero. Read from a real scrape of /metrics, as deltas (the
warm-up request counts too)."""

import re

import httpx
import pytest
from openai import OpenAI

from conftest import serve_until_done


@pytest.fixture(scope="module")
def server_log(tmp_path_factory):
    return tmp_path_factory.mktemp("metrics") / "server.log"


@pytest.fixture(scope="module")
def tiny(bin_path, server_log):
    yield from serve_until_done(
        bin_path, server_log, ["--load-format", "dummy", "--model", "tiny"], "--served-model-name", "t"
    )


def scrape(base):
    """{(name, frozenset(labels)): value} of every sample."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, missing=None, **labels):
    """The one sample of `name` with these labels; `missing` if there is
    none yet (a series appears with its first event)."""
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= set(ls)]
    if not found and missing is not None:
        return missing
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_counters_and_histograms_match_what_clients_saw(tiny):
    client = OpenAI(base_url=f"{tiny}/v1", api_key="unused", max_retries=0, timeout=60)
    before = scrape(tiny)
    engine = {"model": "t", "version": "boot"}
    prompt_tokens = completion_tokens = 0
    lengths = [1, 3, 8, 5]
    for n in lengths:
        r = client.completions.create(model="t", prompt="metrics " * n, max_tokens=n,
                                      temperature=0, extra_body={"ignore_eos": True})
        prompt_tokens += r.usage.prompt_tokens
        completion_tokens += r.usage.completion_tokens
    stream = client.completions.create(model="t", prompt="streamed", max_tokens=4, temperature=0,
                                       stream=True, stream_options={"include_usage": True},
                                       extra_body={"ignore_eos": True})
    usage = [c.usage for c in stream if c.usage][0]
    prompt_tokens += usage.prompt_tokens
    completion_tokens += usage.completion_tokens
    n_requests = len(lengths) + 1
    after = scrape(tiny)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, missing=0, **labels)

    assert grew("switchyard_requests_total", endpoint="/v1/completions", status="200", **engine) == n_requests
    assert grew("switchyard_prompt_tokens_total", **engine) == prompt_tokens
    assert grew("switchyard_generation_tokens_total", **engine) == completion_tokens
    assert grew("switchyard_time_to_first_token_seconds_count", **engine) == n_requests
    assert grew("switchyard_request_duration_seconds_count", **engine) == n_requests
    assert grew("switchyard_queue_duration_seconds_count", **engine) == n_requests
    # One gap between each pair of successive tokens of a request.
    assert grew("switchyard_inter_token_latency_seconds_count", **engine) == completion_tokens - n_requests
    assert grew("switchyard_generation_tokens_sum", **engine) == completion_tokens
    assert grew("switchyard_batch_size_count", **engine) == grew("switchyard_engine_steps_total", **engine)
    # Every histogram bucket count is cumulative up to +Inf = _count.
    inf = value(after, "switchyard_time_to_first_token_seconds_bucket", le="+Inf", **engine)
    assert inf == value(after, "switchyard_time_to_first_token_seconds_count", **engine)
    # The engine worked between the scrapes, and a share is a share.
    busy = value(after, "switchyard_engine_busy_ratio", **engine)
    assert 0 < busy <= 1, busy
    # At rest nothing runs or waits.
    assert value(after, "switchyard_requests_running", **engine) == 0
    assert value(after, "switchyard_requests_waiting", **engine) == 0


def test_gpu_metrics_come_from_nvml_or_are_absent_with_a_reason(tiny, server_log):
    scraped = httpx.get(f"{tiny}/metrics", timeout=10).text
    gpu_samples = [l for l in scraped.splitlines() if l.startswith("switchyard_gpu_")]
    log = server_log.read_text()
    if "no GPU metrics" in log:
        assert gpu_samples == [], gpu_samples
        assert "NVML" in log
    else:
        # A machine with a GPU: every device reports its memory.
        assert "GPU metrics from NVML" in log, log[-2000:]
        assert any(l.startswith("switchyard_gpu_memory_total_bytes{") for l in gpu_samples)


def test_refusal_counters_exist_at_zero_before_any_refusal(tiny):
    """Dashboards and alerts read these series: a healthy server that has
    refused nobody has every one of them, at 0 (Prometheus' guidance for
    labels known in advance)."""
    samples = scrape(tiny)
    for scope in ("key", "tenant"):
        for limit in ("requests", "tokens", "concurrent"):
            got = value(samples, "switchyard_rate_limited_total", model="t", version="boot",
                        scope=scope, limit=limit)
            assert got == 0, (scope, limit)
    for status in ("401", "403"):
        assert value(samples, "switchyard_auth_failures_total", status=status) == 0

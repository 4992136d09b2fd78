"""Canary releases end to end: the weighted, sticky split; the analysis that
rolls a failing canary back by itself and promotes a healthy one; an idle
canary that is never promoted."""

import concurrent.futures
import re
import threading
import time

import httpx
import pytest

from test_rollout import ARTIFACT, NAME, Server, register

pytestmark = pytest.mark.skipif(
    not ARTIFACT.is_file(), reason="SWITCHYARD_TEST_MODEL must be a GGUF file here"
)


@pytest.fixture
def two_versions(bin_path, tmp_path):
    """v1 stable, v2 registered and loaded beside it, boot unloaded."""
    s = Server(bin_path, tmp_path, "--allow-fault-injection").start()
    register(s, "v1")
    s.cli("deploy", NAME, "v1")
    s.cli("unload", NAME, "boot")
    register(s, "v2")
    yield s
    s.stop()


def version_of(s, user, client):
    r = client.post(f"{s.base}/v1/completions", json={
        "model": NAME, "prompt": "Hi", "max_tokens": 1, "user": user}, timeout=120)
    assert r.status_code == 200, r.text
    return r.headers["x-switchyard-model-version"]


def test_a_ten_percent_split_is_within_bounds_and_sticky(two_versions):
    s = two_versions
    s.cli("canary", NAME, "v2", "--percent", "10")
    users = [f"user-{i}" for i in range(2000)]
    with httpx.Client() as client, concurrent.futures.ThreadPoolExecutor(8) as pool:
        seen = dict(zip(users, pool.map(lambda u: version_of(s, u, client), users)))
        again = dict(zip(users[:200], pool.map(lambda u: version_of(s, u, client), users[:200])))
    on_canary = sum(v == f"{NAME}@v2" for v in seen.values())
    # Binomial(2000, 0.1): mean 200, sd 13.4; 4.5 sd either side.
    assert 140 <= on_canary <= 260, on_canary
    assert set(seen.values()) == {f"{NAME}@v1", f"{NAME}@v2"}
    assert all(again[u] == seen[u] for u in again), "a user changed version"
    # The x-switchyard-user header sticks as the body's `user` does.
    with httpx.Client() as client:
        for u in users[:50]:
            r = client.post(f"{s.base}/v1/completions", headers={"x-switchyard-user": u},
                            json={"model": NAME, "prompt": "Hi", "max_tokens": 1}, timeout=120)
            assert r.headers["x-switchyard-model-version"] == seen[u], u
    metrics = httpx.get(f"{s.base}/metrics", timeout=10).text
    assert gauge(metrics, "switchyard_rollout_traffic_ratio", version="v2") == pytest.approx(0.1)
    assert gauge(metrics, "switchyard_rollout_traffic_ratio", version="v1") == pytest.approx(0.9)


def gauge(metrics, name, **labels):
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


class Traffic:
    """Clients with users of their own, until stopped."""

    def __init__(self, s, workers=4):
        self.s, self.stop, self.statuses = s, threading.Event(), []
        self.threads = [threading.Thread(target=self.run, args=(w,), daemon=True)
                        for w in range(workers)]
        for t in self.threads:
            t.start()

    def run(self, w):
        with httpx.Client() as client:
            i = 0
            while not self.stop.is_set():
                r = client.post(f"{self.s.base}/v1/completions", json={
                    "model": NAME, "prompt": "Hello there", "max_tokens": 2,
                    "user": f"w{w}-{i}"}, timeout=120)
                self.statuses.append(r.status_code)
                i += 1

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
    return condition()


def canary_with_analysis(s, steps, **analysis):
    body = {"version": "v2", "steps": steps,
            "analysis": {"window_s": 2, "min_requests": 5, **analysis}}
    r = s.admin("POST", f"/models/{NAME}/canary", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_failing_canary_is_rolled_back_within_two_windows(two_versions):
    s = two_versions
    traffic = Traffic(s)
    try:
        started = time.monotonic()
        canary_with_analysis(s, [50, 100])
        # Half of the canary's requests fail from now on.
        r = s.admin("POST", f"/models/{NAME}/versions/v2/faults", json={"error_ratio": 0.5})
        assert r.status_code == 200, r.text
        deployment = wait_for(
            lambda: (d := s.cli("show", NAME)["deployment"])["canary"] is None and d, 30)
        took = time.monotonic() - started
    finally:
        traffic.end()
    assert deployment and deployment["stable"] == "v1", deployment
    assert took <= 2 * 2 + 1.5, took  # two windows of 2 s, and slack for the calls
    assert 500 in traffic.statuses  # the fault did reach clients
    [entry] = [e for e in s.cli("history", NAME)["data"] if e["action"] == "auto-rollback"]
    assert entry["actor"] == "rollout-controller" and entry["result"] == "ok"
    assert "error ratio" in entry["detail"], entry
    metrics = httpx.get(f"{s.base}/metrics", timeout=10).text
    assert gauge(metrics, "switchyard_rollout_state", version="v2", state="rolled_back") == 1
    assert gauge(metrics, "switchyard_rollout_traffic_ratio", version="v2") == 0
    # Every request after the rollback goes to stable.
    with httpx.Client() as client:
        assert {version_of(s, f"after-{i}", client) for i in range(20)} == {f"{NAME}@v1"}


def test_a_healthy_canary_steps_up_and_is_promoted(two_versions):
    s = two_versions
    traffic = Traffic(s)
    try:
        # Latency limits wide enough for two copies of one model on a
        # shared machine: this canary must pass on errors and traffic.
        canary_with_analysis(s, [50, 100], max_ttft_p95_ratio=10, max_itl_p95_ratio=10)
        deployment = wait_for(
            lambda: (d := s.cli("show", NAME)["deployment"])["stable"] == "v2" and d, 60)
    finally:
        traffic.end()
    assert deployment and deployment["canary"] is None and deployment["previous"] == "v1"
    actions = [e["action"] for e in s.cli("history", NAME)["data"]
               if e["actor"] == "rollout-controller"]
    assert actions == ["auto-step", "auto-promote"], actions
    assert all(status == 200 for status in traffic.statuses)


def test_an_idle_canary_is_inconclusive_and_never_promoted(two_versions):
    s = two_versions
    canary_with_analysis(s, [100], window_s=1)

    def inconclusive():
        metrics = httpx.get(f"{s.base}/metrics", timeout=10).text
        return gauge(metrics, "switchyard_rollout_state", version="v2", state="inconclusive") == 1

    assert wait_for(inconclusive, 30)
    d = s.cli("show", NAME)["deployment"]
    assert (d["stable"], d["canary"]) == ("v1", "v2")
    assert d["rollout"]["step"] == 0


def test_a_shadow_changes_no_answer_and_no_latency_beyond_noise(two_versions):
    """Every request copied to v2 (100 %): the clients get v1's answers as
    before, as fast as before (medians within noise), while v2 answers the
    copies in the background and counts them in its own metrics."""
    import statistics

    s = two_versions
    prompts = [f"Question {i}: what is {i} plus {i}?" for i in range(12)]

    def answers():
        out, took = [], []
        with httpx.Client() as client:
            for p in prompts:
                started = time.perf_counter()
                r = client.post(f"{s.base}/v1/completions", json={
                    "model": NAME, "prompt": p, "max_tokens": 16, "temperature": 0,
                    "ignore_eos": True}, timeout=120)
                took.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
                out.append((r.headers["x-switchyard-model-version"], r.json()["choices"][0]["text"]))
        return out, statistics.median(took)

    def shadow_answered():
        metrics = httpx.get(f"{s.base}/metrics", timeout=10).text
        return sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
                   if l.startswith("switchyard_requests_total{") and 'version="v2"' in l
                   and 'status="200"' in l)

    before, t_before = answers()
    d = s.cli("shadow", NAME, "v2", "--percent", "100")
    assert (d["shadow"], d["shadow_percent"]) == ("v2", 100.0)
    assert [v["role"] for v in s.cli("show", NAME)["versions"]] == ["stable", "shadow"]
    shadowed, t_shadowed = answers()
    assert wait_for(lambda: shadow_answered() >= len(prompts), 120), shadow_answered()
    d = s.cli("shadow", NAME, "--percent", "0")
    assert d["shadow"] is None
    after, t_after = answers()
    assert before == shadowed == after
    assert {version for version, _ in shadowed} == {f"{NAME}@v1"}
    assert t_shadowed <= 1.5 * max(t_before, t_after), (t_before, t_shadowed, t_after)
    print(f"median latency without shadow {t_before * 1e3:.0f} ms, with {t_shadowed * 1e3:.0f} ms, "
          f"after {t_after * 1e3:.0f} ms")


def test_a_canary_with_a_worse_evaluation_score_is_rolled_back(bin_path, tmp_path):
    s = Server(bin_path, tmp_path).start()
    try:
        register(s, "v1", **{"eval-score": "0.80"})
        s.cli("deploy", NAME, "v1")
        s.cli("unload", NAME, "boot")
        register(s, "v2", **{"eval-score": "0.60"})
        assert s.cli("show", NAME, "v2")["eval_score"] == 0.6
        # No traffic at all: the scores alone decide, at the first window.
        canary_with_analysis(s, [50], max_eval_score_drop=0.05)
        deployment = wait_for(
            lambda: (d := s.cli("show", NAME)["deployment"])["canary"] is None and d, 30)
        assert deployment and deployment["stable"] == "v1", deployment
        [entry] = [e for e in s.cli("history", NAME)["data"] if e["action"] == "auto-rollback"]
        assert "evaluation score 0.6 below stable's 0.8" in entry["detail"], entry
    finally:
        s.stop()

"""Evaluation sets and the promotion gate: `models register --eval-set
--quantize`, `models eval`, and deploy refusing a version whose perplexity
regresses beyond the set's threshold, with the reason in the audit trail."""

import json
import os
import time

import pytest

from test_rollout import NAME, Server, register

# Perplexity of the default model on the text, 4 chunks of 128 tokens:
# its Q4_1 weights re-encoded as q8_0 move it by well under 1 %, as q4_0
# by about 20 % (measured by benches/quantized.sh on a longer run).
MAX_INCREASE = 0.05


def eval_set(tmp_path, **extra):
    text = os.environ.get("SWITCHYARD_TEST_TEXT")
    assert text, "SWITCHYARD_TEST_TEXT is not set: scripts/test.sh fetches a public-domain text"
    body = {
        "prompts": [{"prompt": "The capital of France is", "max_tokens": 4, "expect": "Paris"}],
        "perplexity": {"text": os.path.abspath(text), "ctx": 128, "chunks": 4},
        "max_perplexity_increase": MAX_INCREASE,
        **extra,
    }
    path = tmp_path / f"eval-{len(list(tmp_path.glob('eval-*')))}.json"
    path.write_text(json.dumps(body))
    return str(path)


@pytest.fixture
def server(bin_path, tmp_path):
    s = Server(bin_path, tmp_path, "--kv-cache-memory", "256MiB", "--kv-cache-per-version", "48MiB").start()
    yield s
    s.stop()


def drained(s, version):
    """Waits (polling the state, at most 30 s) until a refused version's
    memory is back; True when it is."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if s.cli("show", NAME, version)["state"] == "registered":
            return True
        time.sleep(0.05)
    return False


def last_entry(s, action):
    """The newest audit entry of `action` (the trail is oldest first)."""
    trail = s.cli("history", NAME, "--limit", "50")["data"]
    return [e for e in trail if e["action"] == action][-1]


def test_a_regression_beyond_the_threshold_is_refused_and_one_within_passes(server, tmp_path):
    s = server
    register(s, "v1", **{"eval-set": eval_set(tmp_path)})
    s.cli("deploy", NAME, "v1")

    report = s.cli("eval", NAME, "v1")
    assert report["prompts_passed"] == report["prompts_total"] == 1
    base = report["perplexity"]
    assert 1 < base < 1000

    # The same weights as q4_0: a perplexity far above the threshold.
    # (Perplexity alone: as q4_0 it also misses the golden prompt.)
    register(s, "v2", quantize="q4_0", **{"eval-set": eval_set(tmp_path, prompts=[])})
    r = s.admin("POST", f"/models/{NAME}/deploy", json={"version": "v2"})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    print(err["message"])
    assert err["code"] == "eval_regression"
    assert "perplexity" in err["message"] and "more than the 5.00 % allowed" in err["message"]
    refused = last_entry(s, "deploy")
    assert refused["result"] != "ok" and refused["version"] == "v2"
    assert "perplexity" in refused["detail"] and "%" in refused["detail"]
    # Nothing changed for clients, and v2's memory went back.
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@v1"
    assert drained(s, "v2")

    # As q8_0: within the threshold, deployed, the figures in the audit.
    register(s, "v3", quantize="q8_0", **{"eval-set": eval_set(tmp_path)})
    s.cli("deploy", NAME, "v3")
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@v3"
    passed = last_entry(s, "deploy")
    assert passed["version"] == "v3" and "evaluation gate passed" in passed["detail"]
    assert "perplexity" in passed["detail"]
    v3 = s.cli("eval", NAME, "v3")["perplexity"]
    assert abs(v3 / base - 1) <= MAX_INCREASE

    # Rolling back is never gated.
    s.cli("rollback", NAME)
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@v1"


def test_a_failed_golden_prompt_is_refused_with_its_answer(server, tmp_path):
    s = server
    register(s, "v1")
    s.cli("deploy", NAME, "v1")
    wrong = {"prompts": [{"prompt": "The capital of France is", "max_tokens": 4, "expect": "Berlin"}]}
    register(s, "v2", **{"eval-set": eval_set(tmp_path, **wrong)})
    r = s.admin("POST", f"/models/{NAME}/deploy", json={"version": "v2"})
    assert r.status_code == 409, r.text
    message = r.json()["error"]["message"]
    assert "failed 1 of 1 golden prompts" in message and "Berlin" in message
    assert drained(s, "v2")
    report = s.cli("eval", NAME, "v2")
    assert report["prompts_passed"] == 0 and "Berlin" in report["failures"][0]


def test_bad_evaluation_sets_are_refused_at_registration(server, tmp_path):
    s = server
    for bad in (
        {},
        {"prompts": [{"prompt": "", "max_tokens": 4}]},
        {"perplexity": {"text": "relative.txt"}},
        {"perplexity": {"text": "/no/such/file.txt"}},
        {"prompts": [{"prompt": "x"}], "max_perplexity_increase": -1},
        {"prompts": [{"prompt": "x"}], "unknown": 1},
    ):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        err = s.cli("register", NAME, "bad", "--artifact", str(s.state.parent / "x"), "--eval-set", str(path), ok=False)
        assert "eval_set" in err or "perplexity" in err or "prompt" in err or "artifact" in err, err
    r = s.admin("POST", f"/models/{NAME}/versions", json={"version": "q", "artifact": "/x", "quantize": "q3_k"})
    assert r.status_code == 400 and "quantize" in r.json()["error"]["message"]

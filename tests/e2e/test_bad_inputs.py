"""The bad-input corpus (data/bad_inputs.json, written by
data/make_bad_inputs.py): every case gets its 4xx with an OpenAI error
body, no key ever comes back in an answer or goes to the log, and the
server stays healthy and answers the next valid request."""

import http.client
import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import MODEL, serve_until_done

CORPUS = json.loads((Path(__file__).parent / "data" / "bad_inputs.json").read_text())
PRIVATE = "a prompt that stays private"
VALID = {"model": "m", "messages": [{"role": "user", "content": PRIVATE}], "max_tokens": 2}


def make_key(bin_path, db, name, *extra) -> str:
    r = subprocess.run([bin_path, "keys", "create", "--name", name, "--role", name.split("-")[0], "--json",
                        "--state-db", str(db), *extra], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["secret"]


@pytest.fixture(scope="module")
def target(bin_path, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-inputs")
    db = d / "state.db"
    keys = {"user": make_key(bin_path, db, "user"), "admin": make_key(bin_path, db, "admin")}
    keys["revoked"] = make_key(bin_path, db, "user-revoked")
    subprocess.run([bin_path, "keys", "revoke", "user-revoked", "--state-db", str(db)], check=True, capture_output=True)
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    keys["expired"] = make_key(bin_path, db, "user-expired", "--expires", soon)
    log = d / "server.log"
    gen = serve_until_done(bin_path, log, ["--model", MODEL], "--state-db", str(db), "--served-model-name", "m")
    base = next(gen)
    # The expiring key is expired once the server says so.
    deadline = time.monotonic() + 15
    while httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {keys['expired']}"}).status_code != 401:
        assert time.monotonic() < deadline, "the expiring key did not expire"
        time.sleep(0.2)
    yield base, keys, log
    gen.close()


def authorization(auth: str, keys: dict):
    if auth == "none":
        return None
    if auth.startswith("raw:"):
        return auth[4:]
    if auth == "user+garbage":
        return f"Bearer {keys['user']}x"
    return f"Bearer {keys[auth]}"


def send(base: str, case: dict, keys: dict):
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    if "body_hex" in case:
        body = bytes.fromhex(case["body_hex"])
    elif "body_fill" in case:
        f = case["body_fill"]
        body = (f["prefix"] + f["fill"] * f["count"] + f["suffix"]).encode()
    elif "body" in case:
        body = case["body"].encode()
    else:
        body = None
    headers = {}
    if body is not None:
        headers["Content-Type"] = case.get("content_type", "application/json")
    auth = authorization(case["auth"], keys)
    if auth is not None:
        headers["Authorization"] = auth
    try:
        conn.request(case["method"], case["path"], body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_the_corpus_holds_at_least_150_cases():
    assert len(CORPUS) >= 150
    assert len({c["name"] for c in CORPUS}) == len(CORPUS), "case names must be unique"


def test_every_bad_input_gets_its_4xx_and_the_server_carries_on(target):
    base, keys, log = target
    wrong = []
    for i, case in enumerate(CORPUS):
        status, raw = send(base, case, keys)
        problem = None
        try:
            err = json.loads(raw)["error"]
            if not isinstance(err.get("message"), str) or not err["message"] or not isinstance(err.get("type"), str):
                problem = f"error body without message or type: {raw[:200]!r}"
        except (ValueError, KeyError, TypeError):
            problem = f"not an OpenAI error body: {raw[:200]!r}"
        if status != case["status"]:
            problem = f"status {status}, expected {case['status']}: {raw[:300]!r}"
        elif not problem and case.get("code") and err.get("code") != case["code"]:
            problem = f"code {err.get('code')}, expected {case['code']}"
        if any(k.encode() in raw for k in keys.values()):
            problem = "a key came back in the answer"
        if problem:
            wrong.append(f"{case['name']}: {problem}")
        if i % 25 == 24:
            assert httpx.get(f"{base}/health").status_code == 200, f"unhealthy after {case['name']}"
    assert not wrong, "\n".join(wrong)
    # Still healthy, and the next valid request is served.
    assert httpx.get(f"{base}/health").status_code == 200
    r = httpx.post(f"{base}/v1/chat/completions", json=VALID, headers={"Authorization": f"Bearer {keys['user']}"}, timeout=120)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0
    # Neither keys nor prompts reached the log (no --log-requests).
    text = log.read_text()
    assert not any(k in text for k in keys.values())
    assert PRIVATE not in text

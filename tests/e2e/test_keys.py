"""API keys, roles, per-key limits and usage, through the real `openai`
client and plain HTTP, against a server whose keys live in its own state
database."""

import concurrent.futures
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import openai
import pytest

from conftest import MODEL, serve_until_done


def keys_cli(bin_path, db, *args) -> str:
    r = subprocess.run([bin_path, "keys", *args, "--state-db", str(db)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def create(bin_path, db, name, role, *extra) -> dict:
    return json.loads(keys_cli(bin_path, db, "create", "--name", name, "--role", role, "--json", *extra))


@pytest.fixture(scope="module")
def keyed(bin_path, tmp_path_factory):
    """A server with keys: (base URL, state db, admin secret)."""
    d = tmp_path_factory.mktemp("keyed")
    db = d / "state.db"
    admin = create(bin_path, db, "root", "admin")["secret"]
    gen = serve_until_done(bin_path, d / "server.log", ["--model", MODEL], "--state-db", str(db), "--served-model-name", "m")
    base = next(gen)
    yield base, db, admin
    gen.close()


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def chat(base, secret, max_tokens=4, **extra):
    return httpx.post(
        f"{base}/v1/chat/completions",
        headers=bearer(secret),
        json={"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens, **extra},
        timeout=120,
    )


def admin_create(base, admin, **spec) -> dict:
    r = httpx.post(f"{base}/admin/v1/keys", headers=bearer(admin), json=spec)
    assert r.status_code == 201, r.text
    return r.json()


def test_requests_without_a_valid_key_are_refused_and_the_openai_client_works_with_one(keyed):
    base, _, admin = keyed
    for headers, message in [
        ({}, "needs an API key"),
        (bearer("sy-" + "0" * 48), "invalid API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"Authorization": "Bearer"}, "Bearer"),
    ]:
        r = httpx.get(f"{base}/v1/models", headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == "Bearer"
        err = r.json()["error"]
        assert message in err["message"] and err["code"] == "invalid_api_key"
        assert "sy-0000" not in r.text
    # Health checks carry no key; /metrics is open to loopback.
    assert httpx.get(f"{base}/health").status_code == 200
    assert httpx.get(f"{base}/metrics").status_code == 200

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=admin, max_retries=0)
    out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert out.usage.completion_tokens > 0
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{base}/v1", api_key="sy-wrong", max_retries=0).models.list()


def test_roles_open_what_they_should_and_nothing_more(keyed):
    base, _, admin = keyed
    user = admin_create(base, admin, name="app", role="user")["secret"]
    operator = admin_create(base, admin, name="sre", role="operator")["secret"]
    assert chat(base, user).status_code == 200
    assert httpx.get(f"{base}/admin/v1/models", headers=bearer(user)).status_code == 403
    assert httpx.get(f"{base}/admin/v1/models", headers=bearer(operator)).status_code == 200
    r = httpx.get(f"{base}/admin/v1/keys", headers=bearer(operator))
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    keys = httpx.get(f"{base}/admin/v1/keys", headers=bearer(admin)).json()
    assert {"root", "app", "sre"} <= {k["name"] for k in keys}
    # Secrets and hashes never leave the server.
    assert not any("secret" in k or "hash" in k for k in keys)
    assert user not in json.dumps(keys)


def test_a_key_made_or_revoked_by_another_process_holds_within_five_seconds(keyed, bin_path):
    base, db, _ = keyed
    made = create(bin_path, db, "late", "user")
    secret = made["secret"]

    def status_within(want, seconds=5.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            if httpx.get(f"{base}/v1/models", headers=bearer(secret)).status_code == want:
                return time.monotonic() - start
            time.sleep(0.1)
        pytest.fail(f"status {want} not seen within {seconds} s")

    status_within(200)
    keys_cli(bin_path, db, "revoke", made["id"])
    status_within(401)
    r = httpx.get(f"{base}/v1/models", headers=bearer(secret))
    assert "revoked" in r.json()["error"]["message"]
    audit = httpx.get(f"{base}/admin/v1/audit?model=(keys)", headers=bearer(keyed[2])).json()["data"]
    actions = [(e["action"], e["after"]["name"]) for e in audit]
    assert ("key.create", "late") in actions and ("key.revoke", "late") in actions


def test_rotation_replaces_the_secret_and_expiry_ends_a_key(keyed):
    base, _, admin = keyed
    old = admin_create(base, admin, name="rotating", role="user")
    new = httpx.post(f"{base}/admin/v1/keys/{old['id']}/rotate", headers=bearer(admin))
    assert new.status_code == 201
    new = new.json()
    assert new["secret"] != old["secret"] and new["replaces"] == old["id"]
    assert httpx.get(f"{base}/v1/models", headers=bearer(new["secret"])).status_code == 200
    assert httpx.get(f"{base}/v1/models", headers=bearer(old["secret"])).status_code == 401

    soon = time.gmtime(time.time() + 3)
    short = admin_create(base, admin, name="short", role="user", expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", soon))
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/v1/models", headers=bearer(short["secret"]))
        seen.append(r.status_code)
        if r.status_code == 401:
            assert "expired" in r.json()["error"]["message"]
            break
        time.sleep(0.2)
    assert seen[0] == 200 and seen[-1] == 401

    for bad in [
        {"name": "x", "role": "root"},
        {"name": "", "role": "user"},
        {"name": "x", "role": "user", "expires": "2001-01-01"},
        {"name": "x", "role": "user", "expires": "soon"},
        {"name": "x", "role": "user", "rpm": 0},
        {"name": "x y", "role": "user"},
        {"name": "x", "role": "user", "extra": 1},
    ]:
        r = httpx.post(f"{base}/admin/v1/keys", headers=bearer(admin), json=bad)
        assert r.status_code == 400, (bad, r.text)


def test_a_key_limited_to_some_models_sees_and_uses_only_those(keyed):
    base, _, admin = keyed
    other = admin_create(base, admin, name="other-model", role="user", models=["not-m"])["secret"]
    r = chat(base, other)
    assert r.status_code == 403 and "may not use the model" in r.json()["error"]["message"]
    assert httpx.get(f"{base}/v1/models", headers=bearer(other)).json()["data"] == []
    allowed = admin_create(base, admin, name="m-only", role="user", models=["m"])["secret"]
    assert [m["id"] for m in httpx.get(f"{base}/v1/models", headers=bearer(allowed)).json()["data"]] == ["m"]


def burst(base, secret, n, **body):
    """n requests at once; their responses."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: chat(base, secret, **body), range(n)))


def test_two_hundred_concurrent_requests_admit_exactly_the_requests_per_minute(keyed):
    base, _, admin = keyed
    secret = admin_create(base, admin, name="rpm50", role="user", rpm=50)["secret"]
    answers = burst(base, secret, 200, max_tokens=1)
    codes = [r.status_code for r in answers]
    assert codes.count(200) == 50, codes
    assert codes.count(429) == 150
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-limit-requests"] == "50"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    ok = next(r for r in answers if r.status_code == 200)
    assert ok.headers["x-ratelimit-limit-requests"] == "50"
    assert int(ok.headers["x-ratelimit-remaining-requests"]) < 50
    # SREs see them apart from the queue's 429s.
    metrics = httpx.get(f"{base}/metrics").text
    counted = [l for l in metrics.splitlines() if l.startswith("switchyard_rate_limited_total{")
               and 'limit="requests"' in l and 'scope="key"' in l]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 150, counted
    assert 'switchyard_auth_failures_total{status="401"}' in metrics


def test_a_tokens_per_minute_budget_is_never_overshot_by_concurrent_requests(keyed):
    base, _, admin = keyed
    # Every request reserves its prompt + 8 and, ignoring EOS, uses exactly
    # that: the budget admits floor(budget / reservation) of them.
    budget = 2000
    secret = admin_create(base, admin, name="tpm", role="user", tpm=budget)["secret"]
    answers = burst(base, secret, 200, max_tokens=8, ignore_eos=True)
    used = [r.json()["usage"]["total_tokens"] for r in answers if r.status_code == 200]
    assert all(r.status_code in (200, 429) for r in answers)
    reservation = used[0]
    assert all(u == reservation for u in used)
    assert budget - reservation < sum(used) <= budget, (len(used), reservation)
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["x-ratelimit-limit-tokens"] == str(budget)
    too_big = chat(base, secret, max_tokens=budget + 1)
    assert too_big.status_code == 429 and "lower max_tokens" in too_big.json()["error"]["message"]


def test_concurrency_and_tenant_limits_refuse_with_the_limit_named(keyed, bin_path):
    base, db, admin = keyed
    r = httpx.put(f"{base}/admin/v1/tenants/acme", headers=bearer(admin), json={"rpm": 3})
    assert r.status_code == 200, r.text
    a = admin_create(base, admin, name="acme-a", role="user", tenant="acme")["secret"]
    b = admin_create(base, admin, name="acme-b", role="user", tenant="acme")["secret"]
    codes = [chat(base, s, max_tokens=1).status_code for s in (a, b, a, b)]
    assert codes == [200, 200, 200, 429]
    assert "tenant `acme`" in chat(base, b, max_tokens=1).json()["error"]["message"]

    one = admin_create(base, admin, name="one-at-a-time", role="user", max_concurrent=1)["secret"]
    answers = burst(base, one, 8, max_tokens=16, ignore_eos=True)
    refused = [r for r in answers if r.status_code == 429]
    assert refused and all("concurrent requests" in r.json()["error"]["message"] for r in refused)
    assert any(r.status_code == 200 for r in answers)


def test_usage_is_counted_per_key_and_tenant_and_read_through_the_api_and_the_cli(keyed, bin_path):
    base, db, admin = keyed
    made = admin_create(base, admin, name="metered", role="user", tenant="billing")
    got = [chat(base, made["secret"], max_tokens=5).json()["usage"] for _ in range(3)]
    r = httpx.get(f"{base}/admin/v1/usage", headers=bearer(admin))
    assert r.status_code == 200
    row = next(k for k in r.json()["keys"] if k["key_id"] == made["id"])
    assert row["requests"] == 3
    assert row["prompt_tokens"] == sum(u["prompt_tokens"] for u in got)
    assert row["completion_tokens"] == sum(u["completion_tokens"] for u in got)
    tenant = next(t for t in r.json()["tenants"] if t["tenant"] == "billing")
    assert tenant["completion_tokens"] == row["completion_tokens"]
    # The API flushed what the server counted: the CLI reads the same rows.
    cli = json.loads(keys_cli(bin_path, db, "usage", "--json"))
    assert next(k for k in cli["keys"] if k["key_id"] == made["id"]) == row
    # Reading usage is an operator's right, not a user's.
    assert httpx.get(f"{base}/admin/v1/usage", headers=bearer(made["secret"])).status_code == 403


def test_a_server_bound_beyond_loopback_refuses_to_start_without_keys(bin_path):
    db = Path(tempfile.mkdtemp()) / "state.db"
    r = subprocess.run(
        [bin_path, "serve", "--host", "0.0.0.0", "--port", "0", "--model", MODEL, "--state-db", str(db)],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0
    assert "without API keys" in r.stderr and "--allow-unauthenticated" in r.stderr


def test_metrics_on_their_own_address_and_request_bodies_only_when_asked(bin_path, tmp_path):
    from conftest import free_port

    db = tmp_path / "state.db"
    key = create(bin_path, db, "app", "user")["secret"]
    metrics_port = free_port()
    log = tmp_path / "server.log"
    gen = serve_until_done(bin_path, log, ["--model", MODEL], "--state-db", str(db), "--served-model-name", "m",
                           "--metrics-addr", f"127.0.0.1:{metrics_port}", "--log-requests")
    base = next(gen)
    try:
        assert chat(base, key, max_tokens=2, user="a-marked-prompt").status_code == 200
        r = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert r.status_code == 200 and "switchyard_" in r.text
        r = httpx.get(f"http://127.0.0.1:{metrics_port}/v1/models")
        assert r.status_code == 404 and "only GET /metrics" in r.json()["error"]["message"]
    finally:
        gen.close()
    text = log.read_text()
    assert "a-marked-prompt" in text and "response body" in text
    assert key not in text


def test_metrics_off_loopback_need_an_operator_key(bin_path, tmp_path):
    from test_rollout import non_loopback_address

    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address off loopback")
    db = tmp_path / "state.db"
    user = create(bin_path, db, "app", "user")["secret"]
    operator = create(bin_path, db, "sre", "operator")["secret"]
    gen = serve_until_done(bin_path, tmp_path / "server.log", ["--model", MODEL], "--state-db", str(db),
                           "--host", "0.0.0.0")
    base = next(gen)
    try:
        far = f"http://{address}:{base.rsplit(':', 1)[1]}/metrics"
        assert httpx.get(far).status_code == 401
        assert httpx.get(far, headers=bearer(user)).status_code == 403
        r = httpx.get(far, headers=bearer(operator))
        assert r.status_code == 200 and "switchyard_" in r.text
        # On loopback it stays open for a local Prometheus.
        assert httpx.get(f"{base}/metrics").status_code == 200
    finally:
        gen.close()

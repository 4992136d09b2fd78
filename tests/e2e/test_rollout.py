"""Model versions and zero-downtime rollout, end to end: the admin API and
the `switchyard models` CLI against a real server with its own SQLite
state file, under load from the real load generator."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import BIN, MODEL, start_server, wait_ready

NAME = "smollm2"
ARTIFACT = Path(MODEL).resolve()
LOADTEST = Path(BIN).with_name("switchyard-loadtest")

pytestmark = pytest.mark.skipif(
    not ARTIFACT.is_file(), reason="SWITCHYARD_TEST_MODEL must be a GGUF file here"
)


class Server:
    """A server with a state file of its own; restartable on that file."""

    def __init__(self, bin_path, tmp_path, *extra):
        self.bin_path, self.tmp_path, self.extra = bin_path, tmp_path, extra
        self.state = tmp_path / "state.db"
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.log_path = self.tmp_path / f"server-{self.starts}.log"
        self.log = open(self.log_path, "w")
        self.proc, self.base = start_server(
            self.bin_path, self.log, "--served-model-name", NAME,
            "--state-db", str(self.state), *self.extra,
            model_args=("--model", str(ARTIFACT)),
        )
        assert wait_ready(self.proc, self.base), self.log_text()
        return self

    def log_text(self):
        return self.log_path.read_text()[-4000:]

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
        self.log.close()

    def cli(self, *args, ok=True):
        """`switchyard models ARGS --server BASE --json`, parsed."""
        r = subprocess.run(
            [self.bin_path, "models", *args, "--server", self.base, "--json"],
            capture_output=True, text=True, timeout=600,
        )
        if ok:
            assert r.returncode == 0, f"{args}: {r.stderr}\n{self.log_text()}"
            return json.loads(r.stdout)
        assert r.returncode != 0, f"{args} should have failed: {r.stdout}"
        return r.stderr

    def admin(self, method, path, **kw):
        return httpx.request(method, f"{self.base}/admin/v1{path}", timeout=600, **kw)

    def complete(self, **body):
        body = {"model": NAME, "prompt": "Hello", "max_tokens": 4, "temperature": 0, **body}
        r = httpx.post(f"{self.base}/v1/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return r

    def rss_bytes(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@pytest.fixture
def server(bin_path, tmp_path):
    s = Server(bin_path, tmp_path).start()
    yield s
    s.stop()


def register(s, version, **extra):
    args = ["register", NAME, version, "--artifact", str(ARTIFACT)]
    for k, v in extra.items():
        args += [f"--{k}", v if isinstance(v, str) else json.dumps(v)]
    return s.cli(*args)


def test_register_deploy_rollback_and_history(server):
    s = server
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
    v1 = register(s, "v1", notes="first")
    assert v1["quantization"] == "q4_1" and len(v1["sha256"]) == 64
    assert v1["created_by"].endswith("@127.0.0.1")
    d = s.cli("deploy", NAME, "v1")
    assert (d["stable"], d["previous"]) == ("v1", "boot")
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@v1"

    # Versions are immutable: the same name again is refused.
    assert "already exists" in s.cli("register", NAME, "v1", "--artifact", str(ARTIFACT), ok=False)

    d = s.cli("rollback", NAME)
    assert (d["stable"], d["previous"]) == ("boot", "v1")
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
    # The stable version cannot be unloaded; a version no route uses can.
    assert "still takes traffic" in s.cli("unload", NAME, "boot", ok=False)
    assert s.cli("unload", NAME, "v1")["outcome"]["state"] == "unloaded"
    # Deploying it again loads it again.
    assert s.cli("deploy", NAME, "v1")["stable"] == "v1"

    shown = s.cli("show", NAME)
    assert shown["deployment"]["stable"] == "v1"
    [rec] = shown["versions"]
    assert (rec["version"], rec["state"], rec["role"]) == ("v1", "ready", "stable")
    assert rec["warmup_check"]["passed"] is True

    history = s.cli("history", NAME)["data"]
    actions = [(e["action"], e["version"], e["result"]) for e in history]
    assert actions == [
        ("register", "v1", "ok"),
        ("deploy", "v1", "ok"),
        ("register", "v1", "error"),
        ("rollback", "boot", "ok"),
        ("unload", "boot", "error"),
        ("unload", "v1", "ok"),
        ("deploy", "v1", "ok"),
    ]
    deploy = history[1]
    assert deploy["before"]["stable"] == "boot" and deploy["after"]["stable"] == "v1"
    assert all(e["at"] > 0 and e["actor"] for e in history)
    # The human summary of the same trail.
    text = subprocess.run(
        [s.bin_path, "models", "history", NAME, "--server", s.base],
        capture_output=True, text=True, timeout=60,
    ).stdout
    assert "rollback" in text and "still takes traffic" in text


def test_canary_splits_by_user_and_promotes(server):
    s = server
    register(s, "v1")
    s.cli("deploy", NAME, "v1")
    # Each version may take half the KV budget: boot makes room first.
    s.cli("unload", NAME, "boot")
    register(s, "v2")
    d = s.cli("canary", NAME, "v2", "--percent", "50")
    assert (d["canary"], d["canary_percent"]) == ("v2", 50.0)
    seen = {}
    for i in range(40):
        user = f"user-{i}"
        first = s.complete(user=user).headers["x-switchyard-model-version"]
        again = s.complete(user=user).headers["x-switchyard-model-version"]
        assert first == again, user  # sticky
        seen[user] = first
    assert set(seen.values()) == {f"{NAME}@v1", f"{NAME}@v2"}
    d = s.cli("promote", NAME)
    assert (d["stable"], d["previous"], d["canary"]) == ("v2", "v1", None)
    assert s.complete(user="user-0").headers["x-switchyard-model-version"] == f"{NAME}@v2"
    assert "no canary" in s.cli("promote", NAME, ok=False)


def test_bad_artifacts_fail_to_register_and_serving_goes_on(server, tmp_path):
    s = server
    data = ARTIFACT.read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a model at all" * 100)
    corrupt = tmp_path / "corrupt.gguf"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(flipped))
    import hashlib

    good_digest = hashlib.sha256(data).hexdigest()
    cases = [
        ({"version": "t", "artifact": str(truncated)}, 422, "truncated"),
        ({"version": "g", "artifact": str(garbage)}, 422, "GGUF"),
        ({"version": "c", "artifact": str(corrupt), "sha256": good_digest}, 422, "sha256"),
        ({"version": "m", "artifact": str(tmp_path / "missing.gguf")}, 422, "does not exist"),
        ({"version": "r", "artifact": "relative.gguf"}, 400, "absolute"),
        ({"version": "../x", "artifact": str(ARTIFACT)}, 400, "version name"),
        ({"version": "boot", "artifact": str(ARTIFACT)}, 400, "reserved"),
        ({"version": "w", "artifact": str(ARTIFACT), "warmup": []}, 400, "warmup"),
        ({"version": "x", "artifact": str(ARTIFACT), "unknown": 1}, 400, "unknown field"),
    ]
    for body, status, words in cases:
        r = s.admin("POST", f"/models/{NAME}/versions", json=body)
        assert r.status_code == status, (body, r.text)
        assert words.lower() in r.json()["error"]["message"].lower(), (body, r.text)
    assert s.cli("show", NAME)["versions"] == []
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
    audit = s.cli("history", NAME)["data"]
    # Refusals that got past name checks are on the audit trail too.
    assert [e["result"] for e in audit] == ["error"] * 6


def test_a_version_that_fails_warmup_cannot_be_deployed(server):
    s = server
    register(s, "bad", warmup=[{"prompt": "Hello", "max_tokens": 4, "expect": "zzz-never"}])
    r = s.admin("POST", f"/models/{NAME}/deploy", json={"version": "bad"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "warmup_failed"
    assert "zzz-never" in r.json()["error"]["message"]
    r = s.admin("POST", f"/models/{NAME}/deploy", json={"version": "bad"})
    assert r.status_code == 409 and "failed its warm-up" in r.text, r.text
    assert s.cli("show", NAME)["deployment"]["stable"] == "boot"
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
    # Its memory went back: nothing but boot is loaded.
    assert [l["version"] for l in s.cli("show", NAME)["loaded"]] == ["boot"]


def test_a_version_that_does_not_fit_is_refused(bin_path, tmp_path):
    # 40 MiB of KV cache, 32 MiB of it for one version: a second version
    # cannot find the few MiB four sequences need.
    s = Server(bin_path, tmp_path, "--max-num-seqs", "4", "--kv-cache-memory", "40MiB",
               "--kv-cache-per-version", "36MiB").start()
    try:
        register(s, "v1")
        r = s.admin("POST", f"/models/{NAME}/deploy", json={"version": "v1"})
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "insufficient_memory" and "MiB" in err["message"], err
        assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
    finally:
        s.stop()


def test_kill_9_during_a_deploy_restarts_on_the_last_completed_one(bin_path, tmp_path):
    s = Server(bin_path, tmp_path).start()
    try:
        register(s, "v1")
        s.cli("deploy", NAME, "v1")
        s.cli("unload", NAME, "boot")
        # A warm-up long enough to be caught in the middle.
        register(s, "v2", warmup=[{"prompt": f"Story {i}:", "max_tokens": 2048} for i in range(4)])
        def deploy_v2():
            with pytest.raises(httpx.TransportError):  # the server dies under it
                s.admin("POST", f"/models/{NAME}/deploy", json={"version": "v2"})

        deploying = threading.Thread(target=deploy_v2, daemon=True)
        deploying.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            loaded = {l["version"]: l["state"] for l in s.cli("show", NAME)["loaded"]}
            if loaded.get("v2") == "loading":
                break
        assert loaded.get("v2") == "loading", loaded
        s.proc.kill()  # SIGKILL, mid-deploy
        s.proc.wait(timeout=30)
        s.log.close()
        deploying.join(timeout=30)

        s.start()
        shown = s.cli("show", NAME)
        assert shown["deployment"]["stable"] == "v1", shown
        assert {l["version"] for l in shown["loaded"]} == {"v1"}
        assert {v["version"]: v["state"] for v in shown["versions"]} == {
            "v1": "ready", "v2": "registered"}
        assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@v1"
        # The restored state is whole: the deploy that completed is audited,
        # the interrupted one never happened.
        deploys = [e for e in s.cli("history", NAME)["data"] if e["action"] == "deploy"]
        assert [(e["version"], e["result"]) for e in deploys] == [("v1", "ok")]
    finally:
        s.stop()


def test_ten_swap_cycles_under_load_lose_nothing(bin_path, tmp_path):
    """16 streaming clients while ten cycles of register v(n+1), deploy it,
    roll back to v(n), deploy v(n+1) again and unload v(n) run: no request
    fails or is cut short, each is answered by a version that was routable
    while it started, and the memory of the retired versions comes back."""
    assert LOADTEST.exists(), f"{LOADTEST} is missing: cargo build --release --workspace"
    # 128 MiB of KV cache per version: the warm traffic below cycles
    # through all of it, so each measurement sees one version's weights
    # and its whole cache resident, not however much traffic it has had.
    s = Server(bin_path, tmp_path, "--kv-cache-memory", "256MiB").start()
    try:
        register(s, "v1")
        s.cli("deploy", NAME, "v1")
        s.cli("unload", NAME, "boot")

        def loadtest(*extra):
            return [str(LOADTEST), "--url", s.base, "--model", NAME, "--concurrency", "16",
                    "--prompt-tokens", "48", "--max-tokens", "24", *extra]

        def warm_then_rss():
            subprocess.run(loadtest("--requests", "64"), check=True, capture_output=True,
                           timeout=600)
            return s.rss_bytes()

        rss_before = warm_then_rss()

        records = tmp_path / "records.jsonl"
        load = subprocess.Popen(
            loadtest("--requests", "1000000", "--duration", "1200", "--records", str(records)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        # When each version may have been stable: from the start of the
        # action that made it stable to the end of the one that replaced it.
        windows = {"v1": [[0.0, None]]}
        stable = "v1"

        def act(*args):
            nonlocal stable
            t0 = time.time() * 1e3
            d = s.cli(*args)
            t1 = time.time() * 1e3
            if "stable" in d and d["stable"] != stable:
                windows[stable][-1][1] = t1
                windows.setdefault(d["stable"], []).append([t0, None])
                stable = d["stable"]
            return d

        for n in range(1, 11):
            old, new = f"v{n}", f"v{n + 1}"
            register(s, new)
            assert act("deploy", NAME, new)["stable"] == new
            assert act("rollback", NAME)["stable"] == old
            assert act("deploy", NAME, new)["stable"] == new
            assert act("unload", NAME, old)["outcome"]["state"] == "unloaded"
        load.send_signal(signal.SIGINT)
        out, _ = load.communicate(timeout=600)
        assert load.returncode == 0, out
        rss_after = warm_then_rss()

        lines = [json.loads(l) for l in records.read_text().splitlines()]
        assert len(lines) >= 100, out
        failed = [l for l in lines if not l["ok"]]
        assert not failed, failed[:5]
        assert all(l["output_tokens"] == 24 for l in lines)
        versions = {l["version"] for l in lines}
        assert len(versions) >= 5, versions  # the traffic did cross the swaps

        def routable(line):
            name, version = line["version"].split("@")
            return name == NAME and any(
                start <= line["headers_ms"] and (end is None or line["start_ms"] <= end)
                for start, end in windows.get(version, [])
            )

        bad = [l for l in lines if not routable(l)]
        assert not bad, (bad[:5], windows)
        shown = s.cli("show", NAME)
        assert [l["version"] for l in shown["loaded"]] == ["v11"]
        assert abs(rss_after - rss_before) <= 0.10 * rss_before, (rss_before, rss_after)
        print(f"requests {len(lines)}, versions {sorted(versions)}, "
              f"rss before {rss_before >> 20} MiB, after {rss_after >> 20} MiB")
    finally:
        s.stop()


def test_several_models_are_served_at_once(server):
    s = server
    s.cli("register", "other", "v1", "--artifact", str(ARTIFACT))
    assert s.cli("deploy", "other", "v1")["stable"] == "v1"
    ids = {m["id"] for m in httpx.get(f"{s.base}/v1/models", timeout=10).json()["data"]}
    assert ids == {NAME, "other"}
    assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
    assert s.complete(model="other").headers["x-switchyard-model-version"] == "other@v1"
    # With two models, a request must say which.
    r = httpx.post(f"{s.base}/v1/completions", json={"prompt": "Hi", "max_tokens": 2}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "model", r.text
    listed = {m["model"] for m in s.cli("list")["data"]}
    assert listed == {NAME, "other"}


def non_loopback_address():
    """This machine's address on its default route, if it has one (a UDP
    connect sends nothing)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        try:
            u.connect(("192.0.2.1", 9))
            address = u.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_admin_api_refuses_peers_off_loopback(bin_path, tmp_path):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no address off loopback")
    s = Server(bin_path, tmp_path, "--host", "0.0.0.0", "--allow-unauthenticated").start()
    try:
        port = s.base.rsplit(":", 1)[1]
        r = httpx.get(f"http://{address}:{port}/admin/v1/models", timeout=10)
        assert r.status_code == 403, r.text
        assert "loopback" in r.json()["error"]["message"]
        # The OpenAI API is served there; the admin API still on loopback.
        assert httpx.get(f"http://{address}:{port}/v1/models", timeout=10).status_code == 200
        assert s.admin("GET", "/models").status_code == 200
    finally:
        s.stop()


def test_admin_api_has_an_openapi_document_and_stays_on_loopback(server):
    s = server
    doc = s.admin("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/models/{model}/deploy" in doc["paths"]
    r = s.admin("DELETE", "/models")
    assert r.status_code == 405
    r = s.admin("GET", "/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["message"]


def test_schemathesis_finds_no_server_error(server):
    """Property-based requests from the OpenAPI document: every answer is a
    documented non-5xx."""
    exe = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "schemathesis"
    exe = exe if exe.exists() else shutil.which("schemathesis")
    if exe is None:
        import sys
        exe = Path(sys.executable).with_name("schemathesis")
    register(server, "v1")
    r = subprocess.run(
        [str(exe), "run", f"{server.base}/admin/v1/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", "40", "--workers", "2",
         "--seed", "1"],
        capture_output=True, text=True, timeout=900,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert s_alive(server)


def s_alive(s):
    return httpx.get(f"{s.base}/health", timeout=10).status_code == 200


def test_a_rollback_to_boot_survives_kill_9(bin_path, tmp_path):
    """Stable is `boot` again after a rollback: a restart with the same
    flags serves the command line's model, ready, as before the kill."""
    s = Server(bin_path, tmp_path).start()
    try:
        register(s, "v1")
        s.cli("deploy", NAME, "v1")
        assert s.cli("rollback", NAME)["stable"] == "boot"
        s.proc.kill()
        s.proc.wait(timeout=30)
        s.log.close()
        s.start()  # waits for /ready
        assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
        shown = s.cli("show", NAME)
        assert (shown["deployment"]["stable"], shown["serving"]) == ("boot", "boot")
        assert shown["restore_error"] is None
        # The deployment carries on from there: v1 is the way forward again.
        assert s.cli("deploy", NAME, "v1")["previous"] == "boot"
    finally:
        s.stop()


def test_a_deployment_that_cannot_come_back_leaves_the_server_ready(bin_path, tmp_path):
    """The stored stable version's artifact is gone at restart: the server
    comes up ready on the command line's model, and says why, in its log
    and on the admin API."""
    artifact = tmp_path / "copy.gguf"
    shutil.copy(ARTIFACT, artifact)
    s = Server(bin_path, tmp_path).start()
    try:
        s.cli("register", NAME, "v1", "--artifact", str(artifact))
        s.cli("deploy", NAME, "v1")
        s.proc.kill()
        s.proc.wait(timeout=30)
        s.log.close()
        artifact.unlink()
        s.start()
        assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
        shown = s.cli("show", NAME)
        assert (shown["deployment"]["stable"], shown["serving"]) == ("v1", "boot")
        assert "copy.gguf" in shown["restore_error"], shown
        assert "could not be restored" in s.log_text()
    finally:
        s.stop()


def warming_up_for_a_while(s, model, version):
    """Registers `version` with a warm-up long enough to act during it."""
    warmup = [{"prompt": f"Story {i}:", "max_tokens": 512} for i in range(4)]
    return s.cli("register", model, version, "--artifact", str(ARTIFACT), "--warmup", json.dumps(warmup))


def deploy_in_the_background(s, model, version):
    """Starts a deploy and returns once the version is loading."""
    answer = {}

    def deploy():
        answer["response"] = s.admin("POST", f"/models/{model}/deploy", json={"version": version})

    thread = threading.Thread(target=deploy, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        loaded = s.admin("GET", f"/models/{model}").json().get("loaded", [])
        if {"version": version, "state": "loading"} in loaded:
            return thread, answer
    raise AssertionError(f"{model}@{version} never started loading")


def test_a_rollback_does_not_wait_behind_a_deploy_that_is_loading(bin_path, tmp_path):
    """A rollback of model A completes in under a second while a deploy of
    A's next version, and then one of another model, is still warming up;
    the deploy completes after it."""
    s = Server(bin_path, tmp_path, "--kv-cache-per-version", "0.2").start()
    try:
        register(s, "v1")
        s.cli("deploy", NAME, "v1")
        warming_up_for_a_while(s, NAME, "v2")
        warming_up_for_a_while(s, "other", "b1")
        for model, version in [(NAME, "v2"), ("other", "b1")]:
            thread, answer = deploy_in_the_background(s, model, version)
            started = time.monotonic()
            r = s.admin("POST", f"/models/{NAME}/rollback", json={})
            took = time.monotonic() - started
            assert r.status_code == 200, r.text
            assert took < 1.0, f"the rollback took {took:.2f} s behind the deploy of {model}@{version}"
            loaded = s.admin("GET", f"/models/{model}").json()["loaded"]
            assert {"version": version, "state": "loading"} in loaded, "the deploy ended first"
            thread.join(timeout=600)
            assert answer["response"].status_code == 200, answer["response"].text
            assert answer["response"].json()["stable"] == version
        # A rolled back to boot, then v2's deploy completed; v2 rolled back
        # to boot again while the other model's deploy loaded.
        deployments = [
            (e["action"], e["version"], e["result"]) for e in s.cli("history", NAME)["data"]
            if e["action"] in ("deploy", "rollback")
        ]
        assert deployments == [
            ("deploy", "v1", "ok"),
            ("rollback", "boot", "ok"),
            ("deploy", "v2", "ok"),
            ("rollback", "boot", "ok"),
        ], deployments
        assert s.complete().headers["x-switchyard-model-version"] == f"{NAME}@boot"
        assert s.complete(model="other").headers["x-switchyard-model-version"] == "other@b1"
    finally:
        s.stop()

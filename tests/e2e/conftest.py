"""Starts one `switchyard serve` for the whole session and hands its base
URL to the tests. The server binary and model come from the environment
that scripts/test.sh prepares:

  SWITCHYARD_BIN         the release binary (default target/release/switchyard)
  SWITCHYARD_TEST_MODEL  a GGUF path or known model name (default: the default model)
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SWITCHYARD_BIN", str(ROOT / "target" / "release" / "switchyard"))
MODEL = os.environ.get("SWITCHYARD_TEST_MODEL", "smollm2-135m-instruct")
SERVED_NAME = "smollm2"
ALIAS = "smollm2-alias"
READY_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bin_path, log, *args, model_args=("--model", MODEL)):
    port = free_port()
    if "--state-db" not in args:
        # A state file of its own: deployments a developer made on this
        # machine must not change what a test serves.
        args = (*args, "--state-db", os.path.join(tempfile.mkdtemp(), "state.db"))
    proc = subprocess.Popen(
        [bin_path, "serve", "--port", str(port), *model_args, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc, base) -> bool:
    """Polls the readiness endpoint: the condition itself, not a fixed sleep."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def bin_path() -> str:
    assert Path(BIN).exists(), f"{BIN} is missing: build it with cargo build --release"
    return BIN


def serve_until_done(bin_path, log_path, model_args, *args):
    """A server for one fixture: started, awaited until ready, stopped."""
    log = open(log_path, "w")
    proc, base = start_server(bin_path, log, *args, model_args=model_args)
    try:
        if not wait_ready(proc, base):
            pytest.fail(f"server did not become ready; log:\n{log_path.read_text()[-4000:]}")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


@pytest.fixture(scope="session")
def server(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    yield from serve_until_done(
        bin_path, log, ["--model", MODEL], "--served-model-name", SERVED_NAME, ALIAS
    )


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=120)

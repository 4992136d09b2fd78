"""HTTPS as users reach it: curl with --cacert (HTTP/2 and HTTP/1.1, TLS 1.3
and 1.2), the `openai` client trusting the test authority, and client
certificates for the admin API."""

import signal
import ssl
import subprocess
import time

import httpx
import openai
import pytest

from conftest import MODEL, READY_TIMEOUT_S, free_port


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def leaf(cwd, ca, name, ext):
    openssl(cwd, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    (cwd / f"{name}.ext").write_text(ext)
    openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "clients"):
        openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leaf(d, "ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    leaf(d, "clients", "ops", "extendedKeyUsage=clientAuth\n")
    return d


@pytest.fixture(scope="module")
def https(bin_path, pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("https")
    port = free_port()
    log = open(d / "server.log", "w")
    proc = subprocess.Popen(
        [bin_path, "serve", "--port", str(port), "--model", MODEL, "--served-model-name", "m",
         "--state-db", str(d / "state.db"), "--tls-cert", str(pki / "server.pem"),
         "--tls-key", str(pki / "server.key"), "--tls-client-ca", str(pki / "clients.pem")],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"https://localhost:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/ready", verify=ssl.create_default_context(cafile=pki / "ca.pem"), timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    else:
        pytest.fail((d / "server.log").read_text()[-3000:])
    yield base
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    log.close()


def curl(*args):
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60)


def test_curl_with_cacert_gets_http2_and_http1_over_tls13_and_tls12(https, pki):
    ca = str(pki / "ca.pem")
    for flags, version in [(["--http2"], "2"), (["--http1.1"], "1.1"), (["--http1.1", "--tlsv1.2", "--tls-max", "1.2"], "1.1")]:
        r = curl("--cacert", ca, *flags, "-o", "/dev/null", "-w", "%{http_code} %{http_version}", f"{https}/v1/models")
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"200 {version}", (flags, r.stdout)
    r = curl("--cacert", ca, "-H", "content-type: application/json", "-d",
             '{"model": "m", "prompt": "Hello", "max_tokens": 3}', f"{https}/v1/completions")
    assert r.returncode == 0 and '"text_completion"' in r.stdout, r.stderr
    # Without the authority the certificate is not trusted.
    r = curl(f"{https}/v1/models")
    assert r.returncode == 60, (r.returncode, r.stderr)


def test_the_openai_client_streams_over_https(https, pki):
    client = openai.OpenAI(
        base_url=f"{https}/v1", api_key="unused", max_retries=0,
        http_client=httpx.Client(verify=ssl.create_default_context(cafile=pki / "ca.pem")),
    )
    out = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert out.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True))
    assert chunks[-1].choices[0].finish_reason is not None


def test_the_admin_api_takes_only_clients_with_a_certificate(https, pki):
    ca = str(pki / "ca.pem")
    r = curl("--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", f"{https}/admin/v1/models")
    assert r.stdout == "403"
    r = curl("--cacert", ca, "--cert", str(pki / "ops.pem"), "--key", str(pki / "ops.key"),
             "-o", "/dev/null", "-w", "%{http_code}", f"{https}/admin/v1/models")
    assert r.stdout == "200", r.stderr


def test_a_certificate_and_key_that_do_not_match_stop_the_server_with_the_reason(bin_path, pki, tmp_path):
    r = subprocess.run(
        [bin_path, "serve", "--port", str(free_port()), "--model", MODEL, "--state-db", str(tmp_path / "s.db"),
         "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "ops.key")],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0
    assert "server.pem" in r.stderr and "ops.key" in r.stderr


def test_the_cli_reaches_the_admin_api_over_https_with_a_client_certificate(https, bin_path, pki):
    import os

    env = {**os.environ, "SWITCHYARD_CA_CERT": str(pki / "ca.pem")}
    run = lambda env: subprocess.run([bin_path, "models", "list", "--server", https, "--json"],
                                     capture_output=True, text=True, timeout=60, env=env)
    r = run(env)
    assert r.returncode != 0 and "403" in r.stderr and "client certificate" in r.stderr
    r = run({**env, "SWITCHYARD_CLIENT_CERT": str(pki / "ops.pem"), "SWITCHYARD_CLIENT_KEY": str(pki / "ops.key")})
    assert r.returncode == 0, r.stderr
    assert "m" in r.stdout
    r = run({k: v for k, v in env.items() if k != "SWITCHYARD_CA_CERT"})
    assert r.returncode != 0 and "SWITCHYARD_CA_CERT" in r.stderr

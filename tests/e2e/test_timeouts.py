"""Slow and idle peers: a request head that trickles in is cut off after
--header-timeout; a connection, HTTP/1 or HTTP/2, with no request in
flight is closed after --idle-timeout, while a request that takes longer
than that keeps its connection."""

import socket
import time

import httpx
import pytest

from conftest import MODEL, serve_until_done


def server(bin_path, d, *args):
    gen = serve_until_done(bin_path, d / "server.log", ["--model", MODEL], "--served-model-name", "m", *args)
    return gen, next(gen)


@pytest.fixture(scope="module")
def impatient(bin_path, tmp_path_factory):
    gen, base = server(bin_path, tmp_path_factory.mktemp("header"), "--header-timeout", "1")
    yield base
    gen.close()


@pytest.fixture(scope="module")
def idle(bin_path, tmp_path_factory):
    gen, base = server(bin_path, tmp_path_factory.mktemp("idle"), "--idle-timeout", "1")
    yield base
    gen.close()


def connect(base):
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def seconds_until_closed(s) -> float:
    """Reads until the server closes the connection; how long that took."""
    start = time.monotonic()
    while s.recv(65536):
        pass
    return time.monotonic() - start


def test_a_request_head_that_never_completes_is_cut_off(impatient):
    s = connect(impatient)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
    took = seconds_until_closed(s)
    assert 0.5 <= took <= 5, took


def test_an_idle_http1_connection_is_closed(idle):
    s = connect(idle)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    took = seconds_until_closed(s)
    assert 0.5 <= took <= 5, took


def test_an_idle_http2_connection_is_closed(idle):
    s = connect(idle)
    # The HTTP/2 preface and an empty SETTINGS frame (prior knowledge).
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    took = seconds_until_closed(s)
    assert 0.5 <= took <= 5, took


def test_a_request_longer_than_the_idle_timeout_keeps_its_connection(idle):
    with httpx.Client(base_url=idle, timeout=120) as client:
        start = time.monotonic()
        r = client.post("/v1/completions", json={"model": "m", "prompt": "Once upon a time", "max_tokens": 600,
                                                  "ignore_eos": True, "temperature": 0})
        took = time.monotonic() - start
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 600
        assert took > 1.5, f"{took:.2f} s: the request must outlast the idle timeout to show anything"

"""The request path keeps heavy work off the async workers and below the
engine: while a client sends 2 MB prompts (refused as too long for the
context by /v1/completions and /v1/chat/completions, tokenized whole by
/tokenize), a stream already running keeps its pace, its gaps between
tokens after each prompt under twice its gaps just before. The
measurement is benches/stall.py's."""

import sys

import pytest

from conftest import MODEL, ROOT, serve_until_done

sys.path.insert(0, str(ROOT / "benches"))
import stall  # noqa: E402


@pytest.fixture(scope="module")
def target(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("request-path") / "server.log"
    yield from serve_until_done(bin_path, log, ["--model", MODEL], "--served-model-name", "m")


def test_a_2mb_prompt_does_not_stall_a_running_stream(target):
    figures = stall.measure(target, "m")
    print(figures)
    expected = {"completions": [400], "chat": [400], "tokenize": [200]}
    for case, statuses in expected.items():
        f = figures[case]
        assert f["statuses"] == statuses, (case, f)
        before, after = f["alone"], f["gaps"]
        assert before["n"] >= 50 and after["n"] >= 50, (case, f)
        for key in ("mean_ms", "p90_ms"):
            assert after[key] < 2 * before[key], (case, key, f)

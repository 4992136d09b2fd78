"""How much a huge prompt slows the streams already running: one client
streams a long completion while another sends 2 MB prompts, one at a
time, ten tokens of the stream apart (to /v1/completions and
/v1/chat/completions, refused as too long for the context, and to
/tokenize, tokenized whole). The stream's
gaps between tokens that overlap those requests are compared with its
gaps before them.

    python benches/stall.py --url http://127.0.0.1:8080 --model M

prints the figures as JSON. tests/e2e/test_request_path.py asserts on the
same measurement."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx

PROMPT_BYTES = 2_000_000
#: The span after each prompt over which the stream's gaps count.
WINDOW_S = 0.25


def huge_prompt(n_bytes=PROMPT_BYTES):
    """Plain English-like text, `n_bytes` long."""
    words = "the quick brown fox jumps over the lazy dog while a river runs by ".split()
    out, size, i = [], 0, 0
    while size < n_bytes:
        w = words[i % len(words)] + str(i % 97)
        out.append(w)
        size += len(w) + 1
        i += 1
    return " ".join(out)[:n_bytes]


class Stream:
    """A streaming completion whose token times are recorded."""

    def __init__(self, base, model, max_tokens):
        self.times = []
        self.enough = threading.Event()
        self.stop = threading.Event()
        self.wanted = 0
        body = {"model": model, "prompt": "Once upon a time", "max_tokens": max_tokens,
                "ignore_eos": True, "temperature": 0, "stream": True}
        self.thread = threading.Thread(target=self.read, args=(base, body), daemon=True)
        self.thread.start()

    def read(self, base, body):
        with httpx.stream("POST", f"{base}/v1/completions", json=body, timeout=300) as r:
            for line in r.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("data: {"):
                    self.times.append(time.monotonic())
                    if len(self.times) >= self.wanted:
                        self.enough.set()

    def wait_until(self, t, timeout=120):
        """Until a token arrives after monotonic time `t`."""
        while not self.times or self.times[-1] <= t:
            self.wait_for(len(self.times) + 1, timeout)

    def wait_for(self, tokens, timeout=120):
        self.wanted = tokens
        self.enough.clear()
        if len(self.times) < tokens:
            assert self.enough.wait(timeout), f"the stream gave {len(self.times)} tokens"

    def gaps_in(self, windows):
        """Gaps (ms) between successive tokens that arrived within one
        of the (start, end) windows."""
        out = []
        for start, end in windows:
            out.extend(self.gaps(start, end))
        return out

    def gaps(self, start, end):
        """Gaps (ms) between tokens that arrived in [start, end]."""
        t = [x for x in self.times if start <= x <= end]
        return [(b - a) * 1e3 for a, b in zip(t, t[1:])]



def summary(gaps):
    if not gaps:
        return {"n": 0}
    ordered = sorted(gaps)
    return {
        "n": len(gaps),
        "mean_ms": round(statistics.fmean(gaps), 2),
        "p50_ms": round(ordered[len(ordered) // 2], 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)], 2),
        "max_ms": round(ordered[-1], 2),
    }


class Sender:
    """The other client: a process of its own at the lowest priority, so
    that on this one machine it stands for a client elsewhere (what the
    stream feels is the server's work, not the sender's, and the sender
    never holds the stream reader's interpreter). It posts a file's bytes
    when told and says when it started and ended."""

    def __init__(self, base):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--send", base],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def post(self, path, body_file):
        """Posts the file once: (start, end, status)."""
        self.proc.stdin.write(f"{path}\t{body_file}\n")
        self.proc.stdin.flush()
        start, end, status = self.proc.stdout.readline().split()
        return float(start), float(end), int(status)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def send_forever(base):
    """The sender's side: one request per line of stdin."""
    os.nice(19)
    with httpx.Client(timeout=300) as client:
        for line in sys.stdin:
            path, body_file = line.rstrip("\n").split("\t")
            with open(body_file, "rb") as f:
                content = f.read()
            start = time.monotonic()
            r = client.post(f"{base}{path}", content=content,
                            headers={"content-type": "application/json"})
            print(start, time.monotonic(), r.status_code, flush=True)


def measure(base, model, repeats=16, prompt_bytes=PROMPT_BYTES):
    """For each endpoint: the stream's gaps before and after each of
    `repeats` 2 MB prompts."""
    text = huge_prompt(prompt_bytes)
    cases = [
        ("completions", "/v1/completions", {"model": model, "prompt": text, "max_tokens": 8}),
        ("chat", "/v1/chat/completions",
         {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 8}),
        ("tokenize", "/tokenize", {"model": model, "prompt": text}),
    ]
    stream = Stream(base, model, max_tokens=8000)
    sender = Sender(base)
    try:
        stream.wait_for(20)  # past the prompt and the first tokens
        out = {"prompt_bytes": len(text)}
        with tempfile.TemporaryDirectory() as tmp:
            for name, path, body in cases:
                body_file = os.path.join(tmp, f"{name}.json")
                with open(body_file, "w") as f:
                    json.dump(body, f)
                statuses, took, before, during = [], [], [], []
                for _ in range(repeats):
                    # A quiet quarter second, then the prompt.
                    stream.wait_until(time.monotonic() + WINDOW_S)
                    quiet_end = stream.times[-1]
                    before.append((quiet_end - WINDOW_S, quiet_end))
                    start, end, status = sender.post(path, body_file)
                    statuses.append(status)
                    took.append(end - start)
                    during.append((start, max(end, start + WINDOW_S)))
                    stream.wait_until(during[-1][1])
                out[name] = {
                    "requests": len(statuses),
                    "statuses": sorted(set(statuses)),
                    "seconds_per_request": round(statistics.fmean(took), 3),
                    "alone": summary(stream.gaps_in(before)),
                    "gaps": summary(stream.gaps_in(during)),
                }
        return out
    finally:
        stream.stop.set()
        sender.close()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--model", default="default")
    p.add_argument("--repeats", type=int, default=16)
    p.add_argument("--send", metavar="URL", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.send:
        return send_forever(a.send)
    print(json.dumps(measure(a.url, a.model, repeats=a.repeats), indent=2))


if __name__ == "__main__":
    main()

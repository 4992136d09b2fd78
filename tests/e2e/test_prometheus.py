"""grafana/ against a real Prometheus: promtool accepts the configuration
and the rules, every alert's unit test fires and resolves, every metric
the rules and dashboards use is defined in telemetry/metrics.rs and (GPU
names aside) present in a live scrape, and every rule and dashboard
expression, variables substituted, evaluates without error in a
Prometheus scraping switchyard under load from the load generator."""

import json
import re
import shutil
import subprocess
import time

import httpx
import pytest

from conftest import ROOT, free_port, serve_until_done

GRAFANA = ROOT / "grafana"
METRICS_RS = (ROOT / "src" / "telemetry" / "metrics.rs").read_text()
LOADTEST = ROOT / "target" / "release" / "switchyard-loadtest"


def promtool(*args):
    r = subprocess.run(["promtool", *args], cwd=GRAFANA, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def rule_expressions():
    """Every `expr:` of alerts.yml (one line each)."""
    return [m.strip() for m in re.findall(r"^\s*expr:\s*(.+)$", (GRAFANA / "alerts.yml").read_text(), re.M)]


def dashboard_expressions():
    """Every panel query of every dashboard, with the dashboard variables
    as Grafana would substitute them (all models, a short rate window)."""
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        assert board["templating"]["list"], path
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$model", ".*").replace("$__rate_interval", "10s")
                assert "$" not in expr, (path.name, panel["title"], expr)
                out.append(expr)
    return out


DEFINED = set(re.findall(r'"(switchyard_[a-z0-9_]+)"', METRICS_RS))


def metric_names(expr):
    """The switchyard metrics an expression reads, histogram suffixes off."""
    out = set()
    for name in re.findall(r"\bswitchyard_[a-z0-9_]+", expr):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        out.add(base if base in DEFINED else name)
    return out


def test_promtool_accepts_the_configuration_and_every_alert_fires_and_resolves():
    promtool("check", "config", "prometheus.yml")
    promtool("check", "rules", "alerts.yml")
    tested = set(re.findall(r"alertname:\s*(\w+)", (GRAFANA / "alerts_test.yml").read_text()))
    alerts = set(re.findall(r"-\s*alert:\s*(\w+)", (GRAFANA / "alerts.yml").read_text()))
    assert alerts and alerts <= tested, alerts - tested
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_every_metric_the_rules_and_dashboards_use_is_defined():
    used = set().union(*(metric_names(e) for e in rule_expressions() + dashboard_expressions()))
    assert len(used) >= 20, used
    assert used <= DEFINED, used - DEFINED


@pytest.fixture(scope="module")
def tiny(bin_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("prometheus-target") / "server.log"
    yield from serve_until_done(
        bin_path, log, ["--load-format", "dummy", "--model", "tiny"], "--served-model-name", "t"
    )


@pytest.fixture(scope="module")
def prometheus(tiny, tmp_path_factory):
    """Prometheus on 127.0.0.1 with grafana/'s rules, scraping `tiny` every second."""
    work = tmp_path_factory.mktemp("prometheus")
    shutil.copy(GRAFANA / "alerts.yml", work / "alerts.yml")
    config = (GRAFANA / "prometheus.yml").read_text()
    config = config.replace("127.0.0.1:8080", tiny.removeprefix("http://"))
    config = re.sub(r"(scrape|evaluation)_interval: \S+", r"\1_interval: 1s", config)
    (work / "prometheus.yml").write_text(config)
    port = free_port()
    log = open(work / "prometheus.log", "w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def query(base, expr):
    r = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def test_the_rules_evaluate_against_a_live_scrape(tiny, prometheus, tmp_path):
    # Load from the load generator (text prompts: the tiny preset's
    # vocabulary is bytes), then wait for a scrape that saw it.
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(f'{{"prompt": "load {i}"}}\n' for i in range(8)))
    done = subprocess.run(
        [str(LOADTEST), "--url", tiny, "--model", "t", "--concurrency", "4", "--requests", "24",
         "--prompts", str(prompts), "--max-tokens", "8", "--out", str(tmp_path / "report.json")],
        check=True, timeout=120, capture_output=True, text=True,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["levels"][0]["requests_ok"] == 24, done.stdout
    deadline = time.monotonic() + 60
    while True:
        try:
            seen = query(prometheus, 'switchyard_time_to_first_token_seconds_count{model="t"}')
        except (httpx.HTTPError, ValueError):
            seen = []
        if seen and float(seen[0]["value"][1]) >= 24:
            break
        assert time.monotonic() < deadline, "Prometheus never scraped the load"
        time.sleep(0.5)
    everything = rule_expressions() + dashboard_expressions()
    for expr in everything:
        query(prometheus, expr)
    # The dashboards' model variable finds the served model.
    models = httpx.get(f"{prometheus}/api/v1/label/model/values",
                       params={"match[]": "switchyard_model_info"}, timeout=10).json()["data"]
    assert models == ["t"], models
    # And the panels that matter most have data.
    assert query(prometheus, dashboard_expressions()[0]), "no requests per second"
    # Every metric used is in the live scrape, but GPU metrics (no GPU
    # here) and the refusals of API keys (this server has none; test_keys
    # checks them).
    scraped = httpx.get(f"{tiny}/metrics", timeout=10).text
    only_with_keys = {"switchyard_rate_limited_total", "switchyard_auth_failures_total"}
    for name in set().union(*(metric_names(e) for e in everything)):
        if name.startswith("switchyard_gpu_") or name in only_with_keys:
            continue
        assert re.search(rf"^{name}(_bucket|_count|_sum)?{{", scraped, re.M), name


def test_the_refusal_panels_and_alerts_have_series_before_any_refusal(tiny, prometheus):
    """A server that refused nobody still has every refusal series, at 0:
    the dashboard panels and the alert on refused keys read zeros, not
    "no data"."""
    refusals = [e for e in rule_expressions() + dashboard_expressions()
                if "rate_limited" in e or "auth_failures" in e]
    assert len(refusals) >= 3, refusals
    deadline = time.monotonic() + 60
    for expr in refusals:
        # `sum(...) > 1` is empty on a healthy server by design: its
        # left side must have a series.
        left = expr.split(" > ")[0]
        while not query(prometheus, left):
            assert time.monotonic() < deadline, f"no series for {left}"
            time.sleep(0.5)
    scraped = httpx.get(f"{tiny}/metrics", timeout=10).text
    for name in ("switchyard_rate_limited_total", "switchyard_auth_failures_total"):
        assert re.search(rf"^{name}{{.*}} 0$", scraped, re.M), name

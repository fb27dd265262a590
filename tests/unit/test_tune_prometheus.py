"""`overspill tune --prometheus-url URL --query Q --since D`: the live arrival-rate history from a range query
(a real HTTP server on loopback answering /api/v1/query_range), and a clear error (exit 2, no traceback) for a bad
URL, a refused query or a window without data."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from overspill.traces import from_arrival_rates
from tests.unit.test_tune import OVERSPILL, POLICY

QUERY = "sum(rate(vllm:request_success_total[1m]))"


class _Prometheus(BaseHTTPRequestHandler):
    asked: list[dict[str, list[str]]] = []  # noqa: RUF012 - shared by the test server's requests

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        _Prometheus.asked.append({"path": [url.path], **params})
        query = params.get("query", [""])[0]
        if url.path != "/api/v1/query_range" or query.startswith("sum(("):
            body, status = b'{"status":"error","errorType":"bad_data","error":"parse error"}', 400
        else:
            start, end, step = (float(params[k][0]) for k in ("start", "end", "step"))
            # 1 request/s for the first half of the window, then 4/s: a burst the primary (1 replica) cannot hold
            values = [
                [start + i * step, "1" if i * step < (end - start) / 2 else "4"]
                for i in range(int((end - start) / step) + 1)
            ]
            result = [] if query == "empty" else [{"metric": {}, "values": values}]
            body, status = (
                json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode(),
                200,
            )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Prometheus.asked.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def tune(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "policy.yaml").write_text(POLICY.replace("MAX", "60").replace("CAP", "40"))
    cmd = [OVERSPILL, "tune", "--policy", str(tmp_path / "policy.yaml"), "--primary-capacity", "1"]
    cmd += ["--tokens-per-second", "1", "--startup", "primary=5s", "--slo-wait", "20s", "--slo-target", "0.9"]
    cmd += ["--budget", "4s", "--workers", "1", "--output", "json", "--progress", "never"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300, check=False)


def test_tune_reads_the_arrival_history_from_prometheus(tmp_path: Path, prometheus: str) -> None:
    r = tune(tmp_path, "--prometheus-url", prometheus, "--query", QUERY, "--since", "10m")
    assert r.returncode in (0, 1), r.stderr  # 1: the 4 s search did not meet the SLO on this machine
    out = json.loads(r.stdout)
    asked = _Prometheus.asked[0]
    assert asked["path"] == ["/api/v1/query_range"] and asked["query"] == [QUERY]
    assert float(asked["end"][0]) - float(asked["start"][0]) == pytest.approx(600, abs=2)
    assert asked["step"] == ["15"]
    # 20 samples of 15 s at 1/s, then 21 at 4/s (the last lasting a step too): 300 + 1,260 requests
    assert out["requests"] == pytest.approx(1560, abs=60)
    assert out["trace"] == f"prometheus:{prometheus}"
    assert out["oracle_replica_hours"] > 0  # the burst needs secondaries: the history reached the oracle too


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--query", "sum((bad"], "refused the query"),
        (["--query", "empty"], "no series"),
        ([], "needs --query"),
    ],
)
def test_a_bad_query_is_a_clear_error(tmp_path: Path, prometheus: str, args: list[str], says: str) -> None:
    r = tune(tmp_path, "--prometheus-url", prometheus, *args)
    assert r.returncode == 2 and says in r.stderr and "fix:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_an_unreachable_prometheus_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = tune(tmp_path, "--prometheus-url", f"http://reader:hunter2@127.0.0.1:{port}", "--query", QUERY)
    assert r.returncode == 2 and "ConnectionError" in r.stderr and "fix:" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr and "Traceback" not in r.stderr


def test_arrival_rates_become_evenly_spaced_requests_and_keep_the_total() -> None:
    log = from_arrival_rates([(100.0, 0.5), (110.0, 0.25), (130.0, 1.0)], work=3.0)
    # 0.5/s over 10 s = 5; 0.25/s over 20 s = 5; the last sample lasts as long as the one before: 20
    assert len(log.requests) == 30
    assert [r.t for r in log.requests[:5]] == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert {r.work for r in log.requests} == {3.0}
    fractional = from_arrival_rates([(0.0, 0.3), (1.0, 0.3), (2.0, 0.3), (3.0, 0.3)], work=1.0)
    assert len(fractional.requests) == 1  # 1.2 expected: the fractions carry over, none is lost or invented

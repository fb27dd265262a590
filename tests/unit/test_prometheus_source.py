"""The Prometheus adapter against a real HTTP server on loopback: allowlist, no credentials, no bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from overspill.adapters.prometheus import MetricError, PrometheusSource, redact_url, url_allowed

CANARY = "body-canary-7f3a"
PASSWORD = "hunter2-canary"  # noqa: S105


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - shared by the test server's requests

    def do_GET(self) -> None:
        _Handler.hits.append(self.path)
        if "per_pod" in self.path:  # two scrape jobs for r-1, a same-name pod elsewhere, a negative sample
            result = [
                {"metric": {"namespace": "ml", "pod": "r-1", "job": "a"}, "value": [0, "1"]},
                {"metric": {"namespace": "ml", "pod": "r-1", "job": "b"}, "value": [0, "0"]},
                {"metric": {"namespace": "other", "pod": "r-1"}, "value": [0, "0"]},
                {"metric": {"namespace": "ml", "pod": "r-2"}, "value": [0, "-1"]},
                {"metric": {"namespace": "ml", "pod": "r-3"}, "value": [0, "0"]},
            ]
            payload = {"status": "success", "data": {"resultType": "vector", "result": result}}
            body = json.dumps(payload).encode()
            self.send_response(200)
        elif "fail" in self.path:  # Prometheus answers a bad query with 400 and the error in the body
            body = f'{{"status":"error","error":"parse error near {CANARY}"}}'.encode()
            self.send_response(400)
        else:
            result = [{"metric": {}, "value": [0, "4"]}]
            payload = {"status": "success", "data": {"resultType": "vector", "result": result}}
            body = json.dumps(payload).encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.hits.clear()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_error_messages_carry_neither_the_body_nor_the_password(server: str) -> None:
    url = server.replace("http://", f"http://reader:{PASSWORD}@")
    with pytest.raises(MetricError) as info:
        PrometheusSource().value(url, "fail_query", 2.0)
    message = str(info.value)
    assert "HTTP 400" in message
    assert CANARY not in message
    assert PASSWORD not in message
    assert "***@127.0.0.1" in message


def test_a_url_outside_the_allowed_prefixes_is_refused_without_a_request(server: str) -> None:
    source = PrometheusSource(allowed_prefixes=["http://prometheus.monitoring:9090"])
    with pytest.raises(MetricError) as info:
        source.value(server, "up", 2.0)
    assert "is not allowed by the operator" in str(info.value)
    assert _Handler.hits == []


def test_an_allowed_url_is_queried(server: str) -> None:
    assert PrometheusSource(allowed_prefixes=[server]).value(server + "/", "up", 2.0) == 4.0


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://prom:9090", True),
        ("http://prom:9090/", True),
        ("http://user:pw@prom:9090", True),
        ("http://prom:9090.evil.example", False),
        ("http://prom:9090@evil.example", False),
        ("http://evil.example/?http://prom:9090", False),
        ("https://prom:9090", False),
        ("http://prom:9091", False),
        ("http://thanos/tenant-a", True),
        ("http://thanos/tenant-a/api", True),
        ("http://thanos/tenant-ab", False),
        ("http://thanos/", False),
        ("http://PROM:9090", True),
        ("not a url", False),
    ],
)
def test_prefix_matching(url: str, allowed: bool) -> None:
    assert url_allowed(url, ["http://prom:9090", "http://thanos/tenant-a/"]) is allowed


def test_redaction() -> None:
    assert redact_url("https://u:p@prom.example:9090/x?y=1") == "https://***@prom.example:9090/x?y=1"
    assert redact_url("http://prom:9090") == "http://prom:9090"


def test_per_pod_levels_are_keyed_by_namespace_and_the_most_busy_series_wins(server: str) -> None:
    levels = PrometheusSource().per_pod(server, "per_pod", 2.0)
    assert levels.of("ml", "r-1") == 1.0  # job a says busy: job b's 0 and the other namespace's 0 must not win
    assert levels.of("other", "r-1") == 0.0
    assert levels.of("ml", "r-2") is None  # a negative level is nonsense: unknown, so busy
    assert levels.of("ml", "r-3") == 0.0
    assert levels.of("ml", "r-4") is None  # no series for it: unknown

"""The pooled instant-query client against a real HTTP server on loopback: what requests gave us for free (auth
from the URL, path prefixes, proxies from the environment) still holds, and the pool is really one connection."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from overspill.adapters.prometheus import MetricError, PrometheusSource
from overspill.adapters.prometheus_http import PrometheusHttp, QueryFailed


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus
    seen: ClassVar[list[tuple[str, str, int]]] = []  # (request line path, Authorization, client port)

    drop_next: ClassVar[int] = 0  # connections to close without an answer (a proxy's idle close racing a request)

    def do_GET(self) -> None:
        if _Handler.drop_next:
            _Handler.drop_next -= 1
            self.close_connection = True
            return
        _Handler.seen.append((self.path, self.headers.get("Authorization", ""), self.client_address[1]))
        if "slow" in self.path:
            time.sleep(1.0)
        if "unavailable" in self.path:
            body, status = b'{"status":"error","error":"overloaded"}', 503
        elif "garbage" in self.path:
            body, status = b"<html>not json</html>", 200
        else:
            result = [{"metric": {}, "value": [0, "7"]}]
            body, status = json.dumps({"status": "success", "data": {"result": result}}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
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
    _Handler.seen.clear()
    _Handler.drop_next = 0
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def _no_proxy_from_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)


def test_queries_share_one_kept_alive_connection(server: str) -> None:
    client = PrometheusHttp()
    for _ in range(5):
        assert client.query(server, "sum(q)", 2.0)[0]["value"][1] == "7"
    assert len(_Handler.seen) == 5
    assert len({port for _, _, port in _Handler.seen}) == 1  # one TCP connection for all five


def test_user_info_goes_as_basic_auth_and_a_path_prefix_is_kept(server: str) -> None:
    url = server.replace("http://", "http://reader:p%40ss@") + "/tenant-a/"
    PrometheusHttp().query(url, 'sum(q{a="b"})', 2.0)
    path, auth, _ = _Handler.seen[0]
    assert path.startswith("/tenant-a/api/v1/query?")
    assert "query=sum%28q%7Ba%3D%22b%22%7D%29" in path and "timeout=2000ms" in path
    assert base64.b64decode(auth.removeprefix("Basic ")) == b"reader:p@ss"


def test_a_server_error_is_one_attempt_with_its_status_only(server: str) -> None:
    with pytest.raises(QueryFailed, match=r"^HTTP 503$"):
        PrometheusHttp().query(server + "/unavailable", "q", 2.0)
    assert len(_Handler.seen) == 1  # no retries inside a tick: the next poll is the retry


def test_a_slow_server_times_out_and_garbage_is_a_bad_response(server: str) -> None:
    with pytest.raises(QueryFailed, match=r"^Timeout$"):
        PrometheusHttp().query(server + "/slow", "q", 0.2)
    assert len(_Handler.seen) == 1  # a slow server is not asked twice within one tick
    with pytest.raises(QueryFailed, match=r"^BadResponse$"):
        PrometheusHttp().query(server + "/garbage", "q", 2.0)


def test_an_unreachable_server_is_a_connection_error_through_the_source() -> None:
    with pytest.raises(MetricError, match="failed: ConnectionError"):
        PrometheusSource().value("http://127.0.0.1:9", "q", 1.0)


def test_the_environments_proxy_is_used_unless_no_proxy_names_the_host(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the test server plays the proxy: a proxied request carries the absolute URL of the real target
    monkeypatch.setenv("HTTP_PROXY", server)
    PrometheusHttp().query("http://prometheus.monitoring:9090", "q", 2.0)
    assert _Handler.seen[-1][0].startswith("http://prometheus.monitoring:9090/api/v1/query?")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    PrometheusHttp().query(server, "q", 2.0)
    assert _Handler.seen[-1][0].startswith("/api/v1/query?")


def test_a_connection_closed_without_an_answer_is_tried_once_more(server: str) -> None:
    _Handler.drop_next = 1
    assert PrometheusHttp().query(server, "q", 2.0)[0]["value"][1] == "7"
    _Handler.drop_next = 2  # twice in a row: the poll fails, the next poll retries
    with pytest.raises(QueryFailed, match=r"^ConnectionError$"):
        PrometheusHttp().query(server, "q", 2.0)

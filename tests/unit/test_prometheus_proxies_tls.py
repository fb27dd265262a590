"""What requests gave the Prometheus client for free and the pooled client must keep: proxies by requests' rules
(credentials, NO_PROXY CIDRs and host:port, ALL_PROXY), the CA bundle as requests chooses it, a deadline on the
whole answer, and a bad proxy setting as a safe metric error. Each test first shows requests doing it (found by
an adversarial review of the first version, where each failed)."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from overspill.adapters.prometheus import MetricError, PrometheusSource
from overspill.adapters.prometheus_http import PrometheusHttp, QueryFailed

OK = json.dumps({"status": "success", "data": {"result": [{"metric": {}, "value": [0, "7"]}]}}).encode()


class _Prom(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Prom.seen.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(308)
            self.send_header("Location", "/api/v1/query?" + self.path.split("?", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/drip"):  # headers at once, then the body a byte at a time
            body = b" " * 40 + OK
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(OK)))
        self.end_headers()
        self.wfile.write(OK)

    def log_message(self, *_: object) -> None:
        pass


class _Proxy(BaseHTTPRequestHandler):
    """A forward proxy: answers absolute-URI GETs itself (as the Prometheus behind it), tunnels CONNECT; with
    `need_auth` set, asks for Proxy-Authorization like a corporate proxy."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str, str]]] = []  # (method, target, Proxy-Authorization)
    need_auth: ClassVar[str | None] = None

    def _authorized(self) -> bool:
        got = self.headers.get("Proxy-Authorization", "")
        _Proxy.seen.append((self.command, self.path, got))
        if _Proxy.need_auth is None or got == _Proxy.need_auth:
            return True
        self.send_response(407)
        self.send_header("Proxy-Authenticate", 'Basic realm="corp"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(OK)))
        self.end_headers()
        self.wfile.write(OK)

    def do_CONNECT(self) -> None:
        if not self._authorized():
            return
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 5)
            if not readable:
                break
            for s in readable:
                data = s.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if s is self.connection else self.connection).sendall(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for localhost, made per run (nothing to expire in the repo)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl")
    d = tmp_path_factory.mktemp("certs")

    def ssl_(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    ssl_(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=overspill-test-ca",
    )
    ssl_("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl_(
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return d


def _serve(handler: type[BaseHTTPRequestHandler], tls: Path | None = None) -> Iterator[tuple[str, int]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls / "srv.pem", tls / "srv.key")
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[:2]
    httpd.shutdown()


@pytest.fixture
def prom() -> Iterator[int]:
    _Prom.seen.clear()
    for _, port in _serve(_Prom):
        yield port


@pytest.fixture
def tls_prom(certs: Path) -> Iterator[int]:
    for _, port in _serve(_Prom, tls=certs):
        yield port


@pytest.fixture
def proxy() -> Iterator[int]:
    _Proxy.seen.clear()
    _Proxy.need_auth = None
    for _, port in _serve(_Proxy):
        yield port


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ):
        monkeypatch.delenv(key, raising=False)
        monkeypatch.delenv(key.lower(), raising=False)


# ---- proxies -------------------------------------------------------------------------------------------------


def test_proxy_credentials_in_the_proxy_url_are_sent_for_an_http_prometheus(
    proxy: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Proxy.need_auth = "Basic " + base64.b64encode(b"corp:pw").decode()
    monkeypatch.setenv("HTTP_PROXY", f"http://corp:pw@127.0.0.1:{proxy}")
    # requests (the old path) sends Proxy-Authorization from the proxy URL's user-info
    assert (
        requests.get("http://prometheus.monitoring:9090/api/v1/query", params={"query": "q"}, timeout=5).status_code
        == 200
    )
    assert PrometheusHttp().query("http://prometheus.monitoring:9090", "q", 2.0)[0]["value"][1] == "7"


def test_proxy_credentials_in_the_proxy_url_are_sent_on_connect_for_https(
    proxy: int, tls_prom: int, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Proxy.need_auth = "Basic " + base64.b64encode(b"corp:pw").decode()
    monkeypatch.setenv("HTTPS_PROXY", f"http://corp:pw@127.0.0.1:{proxy}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs / "ca.pem"))
    url = f"https://localhost:{tls_prom}"
    assert requests.get(url + "/api/v1/query", params={"query": "q"}, timeout=5).status_code == 200
    assert PrometheusHttp().query(url, "q", 2.0)[0]["value"][1] == "7"


def test_no_proxy_cidr_bypasses_the_proxy(prom: int, proxy: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # the usual Kubernetes NO_PROXY: pod and service CIDRs; requests honours CIDRs, urllib.request does not
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy}")
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8,127.0.0.0/8,.svc,.cluster.local")
    url = f"http://127.0.0.1:{prom}"
    assert requests.get(url + "/api/v1/query", params={"query": "q"}, timeout=5).status_code == 200
    assert _Proxy.seen == []  # requests went direct
    PrometheusHttp().query(url, "q", 2.0)
    assert _Proxy.seen == [], "query (with any basic-auth header) went to the corporate proxy"


def test_no_proxy_host_with_port_bypasses_the_proxy(prom: int, proxy: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy}")
    monkeypatch.setenv("NO_PROXY", f"localhost:{prom}")  # requests matches host:port for names (not for IPs)
    url = f"http://localhost:{prom}"
    assert requests.get(url + "/api/v1/query", params={"query": "q"}, timeout=5).status_code == 200
    assert _Proxy.seen == []
    PrometheusHttp().query(url, "q", 2.0)
    assert _Proxy.seen == [], "NO_PROXY host:port ignored: the port is never passed to proxy_bypass"


def test_all_proxy_is_honoured(proxy: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{proxy}")
    assert (
        requests.get("http://prometheus.monitoring:9090/api/v1/query", params={"query": "q"}, timeout=5).status_code
        == 200
    )
    _Proxy.seen.clear()
    with contextlib.suppress(QueryFailed):
        PrometheusHttp().query("http://prometheus.monitoring:9090", "q", 2.0)
    assert _Proxy.seen, "ALL_PROXY ignored: the query went direct"


@pytest.mark.parametrize("proxy_url", ["127.0.0.1:{port}", "socks5://127.0.0.1:{port}"])
def test_an_unusable_proxy_setting_is_a_metric_error_not_an_escaping_exception(
    proxy: int, monkeypatch: pytest.MonkeyPatch, proxy_url: str
) -> None:
    # requests accepts a scheme-less proxy (prepends http://); the old adapter turned everything into MetricError
    monkeypatch.setenv("HTTP_PROXY", proxy_url.format(port=proxy))
    with contextlib.suppress(MetricError):  # a clear, safe message and the metric-unavailable fallback
        PrometheusSource().value("http://prometheus.monitoring:9090", "q", 2.0)


def test_a_bad_proxy_url_never_puts_the_proxy_password_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # what handlers.policy_daemon does with an exception that is not a MetricError: logger.exception(...)
    monkeypatch.setenv("HTTP_PROXY", "http://corp:s3cret@proxy.corp:99999")
    log = logging.getLogger("rev12b")
    try:
        PrometheusSource().value("http://prometheus.monitoring:9090", "q", 2.0)
    except MetricError as err:
        log.warning("metric: %s", err)
    except Exception:
        log.exception("reconcile failed")
    assert "s3cret" not in caplog.text, caplog.text


# ---- TLS -----------------------------------------------------------------------------------------------------


@pytest.fixture
def hashed_ca_dir(tmp_path: Path, certs: Path) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("openssl")
    shutil.copy(certs / "ca.pem", tmp_path / "ca.pem")
    subprocess.run(["openssl", "rehash", str(tmp_path)], check=True, capture_output=True)
    return str(tmp_path)


def test_requests_ca_bundle_naming_a_directory_still_verifies(
    tls_prom: int, hashed_ca_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", hashed_ca_dir)  # requests: a directory goes as ca_cert_dir
    url = f"https://localhost:{tls_prom}"
    assert requests.get(url + "/api/v1/query", params={"query": "q"}, timeout=5).status_code == 200
    assert PrometheusHttp().query(url, "q", 2.0)[0]["value"][1] == "7"


def test_curl_ca_bundle_is_honoured(tls_prom: int, certs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURL_CA_BUNDLE", str(certs / "ca.pem"))
    url = f"https://localhost:{tls_prom}"
    assert requests.get(url + "/api/v1/query", params={"query": "q"}, timeout=5).status_code == 200
    assert PrometheusHttp().query(url, "q", 2.0)[0]["value"][1] == "7"


def test_tls_is_verified_with_the_custom_ca_and_refused_without(
    tls_prom: int, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # control (passes): verification is on; a custom CA via REQUESTS_CA_BUNDLE works
    url = f"https://localhost:{tls_prom}"
    with pytest.raises(QueryFailed, match="SSLError"):
        PrometheusHttp().query(url, "q", 2.0)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs / "ca.pem"))
    assert PrometheusHttp().query(url, "q", 2.0)[0]["value"][1] == "7"


# ---- redirects, timeouts, concurrency ------------------------------------------------------------------------


def test_a_redirect_is_reported_not_followed(prom: int) -> None:
    # a redirect could lead outside the URLs the operator allows (requests followed any, to any host)
    with pytest.raises(QueryFailed, match=r"^HTTP 308$"):
        PrometheusHttp().query(f"http://127.0.0.1:{prom}/redirect", "q", 2.0)


def test_the_timeout_bounds_the_whole_query(prom: int) -> None:
    # a server (or a proxy) that sends its body slowly keeps a worker thread far past the tick's query timeout
    # (each byte arrives well within the read timeout: only a deadline on the whole answer stops it)
    with pytest.raises(QueryFailed, match=r"^Timeout$"):
        PrometheusHttp().query(f"http://127.0.0.1:{prom}/drip", "q", 0.5)


def test_32_threads_share_the_pool_without_errors_or_more_than_32_connections(prom: int) -> None:
    client = PrometheusHttp()
    url = f"http://127.0.0.1:{prom}"
    errors: list[BaseException] = []

    def work() -> None:
        for _ in range(30):
            try:
                client.query(url, "q", 5.0)
            except BaseException as err:
                errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    pool = client._manager(url).connection_from_url(url)
    assert pool.num_connections <= 32


def test_policies_sharing_a_query_get_a_metric_error_not_none_when_the_client_raises_something_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SharedQueries stores only MetricError; ProxySchemeUnknown (a scheme-less HTTPS_PROXY) now escapes
    # PrometheusSource, so the policy that asked first fails its tick with a traceback, and the policies that
    # waited on the same query receive None as the queue depth, with no problem message
    from overspill.adapters.shared_queries import SharedQueries

    monkeypatch.setenv("HTTP_PROXY", "proxy.corp:3128")
    source = PrometheusSource()

    class Slow:
        def value(self, url: str, query: str, timeout: float) -> float:
            time.sleep(0.3)
            return source.value(url, query, timeout)

    shared = SharedQueries(Slow())  # type: ignore[arg-type]
    got: dict[str, object] = {}

    def ask(who: str) -> None:
        try:
            got[who] = shared.value("http://prometheus.monitoring:9090", "sum(q)", 2.0)
        except MetricError as err:
            got[who] = err
        except Exception as err:
            got[who] = f"escaped {type(err).__name__}"

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=ask, args=("second",))
    second.start()
    first.join()
    second.join()
    assert all(isinstance(v, MetricError) for v in got.values()), got

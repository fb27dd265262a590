"""Instant PromQL queries over one pooled HTTP client: the per-policy read of every tick.

Why not prometheus-api-client here: each of its queries goes through a `requests` session, which re-reads the
environment (proxies, netrc, the CA bundle's path) and rebuilds the request on every call. At a thousand policies
that was a third of the operator's steady CPU (py-spy); the same query through urllib3's pool costs about half
(benchmarks: docs/benchmarks.md). The environment is read once per Prometheus origin instead: HTTPS_PROXY /
HTTP_PROXY / NO_PROXY, and the CA bundle from REQUESTS_CA_BUNDLE or SSL_CERT_FILE (else certifi's, as requests
would). One immediate retry when the connection fails (a pooled connection the server or a proxy closed while
idle), none for an answer (a 503 is the next poll's to retry: the tick's budget is not spent waiting). Range
queries (`overspill tune`, run by a person) still use prometheus-api-client.

Errors carry the failure's kind and the HTTP status only: a body can echo the query or the server's internals.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.request
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit, urlunsplit

import certifi
import urllib3
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse


class _RetryDroppedConnection(urllib3.Retry):
    """A failed connection is tried once more at once; a timeout never (the server is slow: asking twice only
    doubles the tick's wait), nor an HTTP status (the answer is the answer)."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, urllib3.exceptions.TimeoutError) and not isinstance(
            error, urllib3.exceptions.NewConnectionError
        ):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


RETRY = _RetryDroppedConnection(total=1, connect=1, read=1, status=0, other=0, redirect=0, raise_on_status=False)


class QueryFailed(Exception):
    """The kind of failure, safe to show: `HTTP 503`, `Timeout`, `ConnectionError`, `SSLError`, `BadResponse`."""


def _kind(err: Exception) -> str:
    if isinstance(err, urllib3.exceptions.MaxRetryError) and err.reason is not None:
        err = err.reason  # the last attempt's own failure
    if isinstance(err, urllib3.exceptions.NewConnectionError):  # a subclass of ConnectTimeoutError, for history
        return "ConnectionError"
    if isinstance(err, urllib3.exceptions.TimeoutError):
        return "Timeout"
    if isinstance(err, urllib3.exceptions.SSLError):
        return "SSLError"
    if isinstance(err, urllib3.exceptions.HTTPError | OSError):
        return "ConnectionError"
    return type(err).__name__


def _ca_bundle() -> str:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or certifi.where()


class PrometheusHttp:
    """Thread-safe: the operator's worker threads share one pool per Prometheus origin."""

    def __init__(self, pool_size: int = 32) -> None:
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._managers: dict[tuple[str, str], urllib3.PoolManager] = {}

    def _manager(self, scheme: str, host: str) -> urllib3.PoolManager:
        key = (scheme, host)
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                options: dict[str, Any] = {"maxsize": self._pool_size, "block": False, "retries": RETRY}
                if scheme == "https":
                    options["ca_certs"] = _ca_bundle()
                proxy = urllib.request.getproxies().get(scheme)
                if proxy and not urllib.request.proxy_bypass(host):
                    manager = urllib3.ProxyManager(proxy, **options)
                else:
                    manager = urllib3.PoolManager(**options)
                self._managers[key] = manager
            return manager

    def query(self, url: str, promql: str, timeout: float) -> list[dict[str, Any]]:
        """The `result` list of an instant query. Credentials in the URL's user-info go as basic auth."""
        parts = urlsplit(url)
        headers = {"Accept": "application/json"}
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, netloc = netloc.rsplit("@", 1)
            user, _, password = userinfo.partition(":")
            token = f"{unquote(user)}:{unquote(password)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        endpoint = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/api/v1/query", "", ""))
        manager = self._manager(parts.scheme.lower(), (parts.hostname or "").lower())
        try:
            response = manager.request(
                "GET",
                endpoint,
                fields={"query": promql, "timeout": f"{int(timeout * 1000)}ms"},
                headers=headers,
                timeout=urllib3.Timeout(total=timeout),
                retries=RETRY,
                redirect=False,
            )
        except Exception as err:  # urllib3's errors and the socket's: all mean "unavailable"
            raise QueryFailed(_kind(err)) from err
        if response.status != 200:
            raise QueryFailed(f"HTTP {response.status}")
        try:
            payload = json.loads(response.data)
            result = payload["data"]["result"] if payload.get("status") == "success" else None
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise QueryFailed("BadResponse") from err
        if not isinstance(result, list):
            raise QueryFailed("BadResponse")
        return result

"""Instant PromQL queries over one pooled HTTP client: the per-policy read of every tick.

Why not prometheus-api-client here: each of its queries goes through a `requests` session, which re-reads the
environment (proxies, netrc, the CA bundle's path) and rebuilds the request on every call. At a thousand policies
that was a third of the operator's steady CPU (py-spy); the same query through urllib3's pool costs about half
(benchmarks: docs/benchmarks.md). The environment is read once per Prometheus origin instead, by requests' own
rules: HTTP(S)_PROXY and ALL_PROXY (credentials in the proxy URL go as Proxy-Authorization), NO_PROXY (names,
host:port, CIDRs); the CA from REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (a file or a hashed directory), else certifi's.
Redirects are not followed: one could lead outside the URLs the operator allows. One immediate retry when the
connection fails (a pooled connection the server or a proxy closed while idle), none after a timeout or for an
answer (a 503 is the next poll's to retry: the tick's budget is not spent waiting). Range queries (`overspill
tune`, run by a person) still use prometheus-api-client.

Errors carry the failure's kind and the HTTP status only: a body can echo the query or the server's internals.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit, urlunsplit

import certifi
import requests.utils
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


MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a per-pod query over thousands of pods is a few MiB; more is a mistake


def _tls_options() -> dict[str, str]:
    """The CA as requests chooses it: REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE (a file, or a hashed directory),
    else certifi's bundle."""
    path = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    return {"ca_cert_dir": path} if os.path.isdir(path) else {"ca_certs": path}


def _proxy_for(url: str) -> str | None:
    """The proxy requests would use for `url` (HTTP(S)_PROXY, ALL_PROXY; NO_PROXY with names, host:port and
    CIDRs), with a scheme-less setting read as http:// as requests does."""
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url, no_proxy=None))
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class PrometheusHttp:
    """Thread-safe: the operator's worker threads share one pool per Prometheus origin."""

    def __init__(self, pool_size: int = 32) -> None:
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._managers: dict[tuple[str, str, int | None], urllib3.PoolManager] = {}

    def _manager(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        key = (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
        found = self._managers.get(key)  # every query: no lock once made
        if found is not None:
            return found
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                options: dict[str, Any] = {"maxsize": self._pool_size, "block": False, "retries": RETRY}
                if key[0] == "https":
                    options.update(_tls_options())
                proxy = _proxy_for(urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], "/", "", "")))
                if proxy:
                    user, password = requests.utils.get_auth_from_url(proxy)
                    bare = urlsplit(proxy)
                    bare = bare._replace(netloc=bare.netloc.rsplit("@", 1)[-1])
                    if user or password:
                        options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}")
                    manager = urllib3.ProxyManager(bare.geturl(), **options)
                else:
                    manager = urllib3.PoolManager(**options)
                self._managers[key] = manager
            return manager

    def query(self, url: str, promql: str, timeout: float) -> list[dict[str, Any]]:
        """The `result` list of an instant query. Credentials in the URL's user-info go as basic auth. The
        timeout bounds the whole answer (a body sent a byte at a time included), not only each read."""
        parts = urlsplit(url)
        headers = {"Accept": "application/json"}
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, netloc = netloc.rsplit("@", 1)
            user, _, password = userinfo.partition(":")
            token = f"{unquote(user)}:{unquote(password)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        endpoint = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/api/v1/query", "", ""))
        deadline = time.monotonic() + timeout
        try:
            manager = self._manager(url)
        except Exception as err:  # an unusable proxy setting (socks5://, a bad port): its text may hold a password
            raise QueryFailed("ProxyError") from err
        try:
            response = manager.request(
                "GET",
                endpoint,
                fields={"query": promql, "timeout": f"{int(timeout * 1000)}ms"},
                headers=headers,
                timeout=urllib3.Timeout(total=timeout),
                retries=RETRY,
                redirect=False,
                preload_content=False,
            )
        except Exception as err:  # urllib3's errors and the socket's: all mean "unavailable"
            raise QueryFailed(_kind(err)) from err
        try:
            if response.status != 200:
                raise QueryFailed(f"HTTP {response.status}")
            body = _read(response, deadline)
        except BaseException:
            response.close()  # a half-read connection never goes back to the pool
            raise
        finally:
            response.release_conn()
        try:
            payload = json.loads(body)
            result = payload["data"]["result"] if payload.get("status") == "success" else None
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise QueryFailed("BadResponse") from err
        if not isinstance(result, list):
            raise QueryFailed("BadResponse")
        return result


def _read(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = response.read1(65536)  # what has arrived: a slow body cannot outlast the deadline
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise QueryFailed("ResponseTooLarge")
            if time.monotonic() > deadline:
                raise QueryFailed("Timeout")
            chunks.append(chunk)
    except QueryFailed:
        raise
    except Exception as err:
        raise QueryFailed(_kind(err)) from err

"""Plain GETs through a kubernetes ApiClient's own connection pool and credentials (client certificates or a
token), with no model deserialization: for /metrics text and for watch streams read line by line."""

from __future__ import annotations

from typing import Any


def get(api: Any, path: str, timeout: float | None = 60) -> Any:
    """The response (kubernetes.client.rest.RESTResponse): `.read()` for the body, `.response` to stream it."""
    headers = {}
    token = api.configuration.api_key.get("authorization") or api.configuration.api_key.get("BearerToken")
    if token:
        prefix = api.configuration.api_key_prefix.get("authorization", "")
        headers["Authorization"] = f"{prefix} {token}".strip()
    response = api.rest_client.request(
        "GET", f"{api.configuration.host}{path}", headers=headers, _request_timeout=timeout
    )
    if response.status != 200:
        raise OSError(f"GET {path}: HTTP {response.status} {response.read()[:300]!r}")
    return response

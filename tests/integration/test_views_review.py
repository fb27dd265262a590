"""Adversarial review of issue 12: the views against a scripted API server over real HTTP. Each test failed on
main at 51f8ea1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from overspill.decide.capacity import shape_of
from overspill.views import cache as cache_module
from overspill.views.accounting import Accounting
from overspill.views.cache import WatchCache
from overspill.views.cluster import ClusterView
from overspill.views.resource import NODES, PODS
from tests.integration.test_watch_cache import api, wait

pytestmark = pytest.mark.integration


def gpu_pod(name: str, rv: str, node: str = "n1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml", "resourceVersion": rv, "labels": {"app": "x"}},
        "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}]},
        "status": {"phase": "Running"},
    }


GPU_NODE = {
    "metadata": {"name": "n1", "resourceVersion": "1"},
    "status": {
        "allocatable": {"nvidia.com/gpu": "4", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


class Server:
    """Answers by path: each kind has its own list and its own queue of watch streams.

    A watch step is a list of events, optionally ending with "stall" (the stream goes silent and the
    connection stays open: a wedged proxy or API server), or an int (an HTTP status to answer with).
    """

    def __init__(self) -> None:
        self.lists: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self.watches: dict[str, list[Any]] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.status: dict[str, int] = {}
        self.list_delays: dict[str, list[float]] = {}  # seconds each successive LIST of a path takes
        self.relists: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # what LISTs after the first answer
        self.release = threading.Event()


@pytest.fixture
def server() -> Iterator[tuple[Server, str]]:
    srv = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            srv.requests.append((url.path, query))
            if url.path in srv.status:
                self.send_response(srv.status[url.path])
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                return
            if query.get("watch") == ["true"]:
                queue = srv.watches.get(url.path) or []
                step = queue.pop(0) if queue else []
                if isinstance(step, int):
                    self.send_response(step)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    return
                # chunked, as a real API server streams a watch: each event arrives as it is written
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                for event in step:
                    if event == "stall":
                        srv.release.wait(5)
                        return
                    data = json.dumps(event).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                time.sleep(0.3)
                self.wfile.write(b"0\r\n\r\n")
                return
            delays = srv.list_delays.get(url.path) or [0.0]
            time.sleep(delays.pop(0) if len(delays) > 1 else delays[0])
            listed = sum(1 for p, q in srv.requests if p == url.path and "watch" not in q)
            source = srv.relists if listed > 1 and url.path in srv.relists else srv.lists
            rv, items = source.get(url.path, ("1", []))
            body = json.dumps({"metadata": {"resourceVersion": rv}, "items": items}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield srv, f"http://127.0.0.1:{httpd.server_address[1]}"
    srv.release.set()
    httpd.shutdown()


def test_review12_a_stalled_watch_resumes_from_the_last_event_not_from_the_list(
    server: tuple[Server, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that goes silent ends in a read timeout: the next watch must resume from the last event seen.

    It resumes from the version of the list instead, so the server replays what the cache already applied;
    the replayed DELETED of a pod already gone is subtracted from the accounting a second time: the node's
    GPUs look free that are not, for good (until some 410 forces a relist).
    """
    srv, url = server
    monkeypatch.setattr(cache_module, "READ_TIMEOUT", 1.0)  # the real one is 65 s; the behaviour is the same
    srv.lists["/api/v1/pods"] = ("10", [gpu_pod("a", "5"), gpu_pod("b", "6")])
    srv.lists["/api/v1/nodes"] = ("10", [GPU_NODE])
    srv.watches["/api/v1/pods"] = [
        [{"type": "DELETED", "object": gpu_pod("a", "11")}, "stall"],
        # the server replays from whatever version it is asked for; 10 means "a" is deleted again
        [{"type": "DELETED", "object": gpu_pod("a", "11")}],
    ]
    pods = WatchCache(api(url), PODS, cluster="t")
    nodes = WatchCache(api(url), NODES, cluster="t")
    acc = Accounting(pods, nodes)
    pods.start()
    nodes.start()
    try:
        wait(lambda: len([r for r in srv.requests if r[0] == "/api/v1/pods" and r[1].get("watch")]) >= 2)
        wait(lambda: pods.synced and nodes.synced)
        time.sleep(0.5)
        versions = [q["resourceVersion"][0] for p, q in srv.requests if p == "/api/v1/pods" and q.get("watch")]
        gpus_free = acc.room(shape_of({"containers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}]}))
        assert gpus_free == 3, f"one pod holds one of 4 GPUs, the accounting says {gpus_free} are free"
        assert versions[1] == "11", f"watches asked for resourceVersion {versions}: the second replays from the list"
    finally:
        pods.stop()
        nodes.stop()


def test_review12_a_forbidden_view_is_reported_at_once_not_after_the_wait(server: tuple[Server, str]) -> None:
    """Every policy's first tick waits in a worker thread for the primary's view (PRIMARY_SYNC_WAIT = 60 s).

    When the view cannot list at all (403: the ClusterRole was not updated for the new watches), the wait
    still lasts the full timeout: 1,000 policies on 32 threads is 1000 * 60 / 32 = 31 minutes in which the
    BurstTarget probes and every status write (asyncio.to_thread too) wait behind them.
    """
    srv, url = server
    srv.status["/api/v1/pods"] = 403
    view = ClusterView("primary", api(url))
    try:
        started = time.monotonic()
        ready = view.wait_ready(3.0)
        took = time.monotonic() - started
        assert not ready
        assert view.problem is not None and "403" in view.problem
        assert took < 1.5, f"wait_ready blocked {took:.1f}s on a view known to be forbidden"
    finally:
        view.close()


def test_review12_a_built_in_kind_answering_404_is_not_in_sync(server: tuple[Server, str]) -> None:
    """404 marks a cache `absent` (meant for a CRD that is not installed) and an absent cache counts as in sync.

    For pods, a 404 after a good list (a proxy in front of a target whose cluster was replaced, a cluster
    gateway that lost its route) leaves the old pods in the store and the view `ready`: stale data served as
    fresh, with the mirror's pods as they were before the failure.
    """
    srv, url = server
    srv.lists["/api/v1/pods"] = ("10", [gpu_pod("a", "5")])
    view = ClusterView("aws", api(url))
    try:
        assert view.wait_ready(5)
        srv.status["/api/v1/pods"] = 404
        srv.release.set()  # end the current watch
        wait(lambda: not view.cache(PODS).synced)
        assert view.cache(PODS).get("ml", "a") is not None  # the old pod is still served
        assert not view.ready, "pods answer 404 and the view still counts as in sync"
    finally:
        view.close()


def test_review12_after_an_outage_the_relist_is_not_served_as_fresh(server: tuple[Server, str]) -> None:
    """The API server was away (the cache went out of sync: right). When it answers again, the watch from the
    old version is accepted (200: the cache marks itself in sync at once) and then expires (410). The relist
    keeps the flag ("the store was current"), so for as long as the relist takes, a store as old as the outage
    is served as fresh: here pod "a", deleted during the outage, while "b" that replaced it is not seen."""
    srv, url = server
    srv.lists["/api/v1/pods"] = ("10", [gpu_pod("a", "5")])
    srv.relists["/api/v1/pods"] = ("90", [gpu_pod("b", "80")])
    srv.list_delays["/api/v1/pods"] = [0.0, 3.0, 0.0]  # the relist of a big cluster takes a while
    srv.watches["/api/v1/pods"] = [503, [{"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}]]
    cache = WatchCache(api(url), PODS, cluster="aws").start()
    try:
        wait(lambda: any(q.get("watch") for p, q in srv.requests if p == "/api/v1/pods"))
        wait(lambda: sum(1 for p, q in srv.requests if p == "/api/v1/pods" and "watch" not in q) == 2)
        time.sleep(0.5)  # the relist is under way
        stale = cache.get("ml", "a") is not None
        assert not (cache.synced and stale), "a store from before the outage is served as in sync during the relist"
    finally:
        cache.stop()

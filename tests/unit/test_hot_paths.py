"""What every tick of every policy reads takes no lock (issue 12). Profiled on the lab at 1,000 policies (py-spy,
during a burst): the 32 tick threads spent 79 % of their time waiting for the primary view's lock and 17 % for the
triggers' lock; each hand-over of a contended lock also waits for the GIL, which capped the burst at about 50
ticks a second. Each test holds the lock in question and asks what a tick asks: it must answer at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from overspill.adapters.shared_queries import SharedQueries
from overspill.api import parse_target_spec
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from overspill.views.cluster import ClusterView
from overspill.views.resource import DEPLOYMENTS, PODS


def answers_while_held(lock: Any, ask: Callable[[], object]) -> bool:
    """True when `ask()` returns while another thread holds `lock`."""
    done = threading.Event()

    def run() -> None:
        ask()
        done.set()

    with lock:
        threading.Thread(target=run, daemon=True).start()
        answered = done.wait(2.0)
    done.wait(5.0)  # let it finish before the next test, whatever happened
    return answered


def test_a_started_cache_is_handed_out_without_the_views_lock() -> None:
    view = ClusterView("primary", api=None)  # type: ignore[arg-type]  # its watches fail: no server
    try:
        deployments = view.cache(DEPLOYMENTS, start=False)
        deployments._thread = threading.current_thread()  # as if its watch thread ran
        assert answers_while_held(view._lock, lambda: view.cache(DEPLOYMENTS))
        assert answers_while_held(view._lock, lambda: view.cache(PODS))
        assert answers_while_held(view._lock, lambda: view.problem)
    finally:
        deployments._thread = None
        view.close()


def test_an_unchanged_pod_selector_is_answered_without_the_triggers_lock() -> None:
    triggers = Triggers()
    triggers.watch_pods("u1", "ml", {"matchLabels": {"app": "vllm"}})
    assert answers_while_held(triggers._lock, lambda: triggers.watch_pods("u1", "ml", {"matchLabels": {"app": "vllm"}}))


def test_a_target_is_looked_up_without_the_registrys_lock() -> None:
    registry = TargetRegistry()
    registry.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "o"}}))
    assert answers_while_held(registry._lock, lambda: registry.get("aws"))


def test_a_fresh_shared_query_is_joined_without_the_lock() -> None:
    class Source:
        def value(self, url: str, query: str, timeout: float) -> float:
            return 1.0

        def per_pod(self, url: str, query: str, timeout: float) -> Any:
            raise NotImplementedError

    shared = SharedQueries(Source(), ttl=60.0)
    assert shared.value("http://prom", "q", 1.0) == 1.0
    assert answers_while_held(shared._lock, lambda: shared.value("http://prom", "q", 1.0))

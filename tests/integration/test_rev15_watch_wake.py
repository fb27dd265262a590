"""Review rev15 of 077ebb1 (WatchCache.retry_now): a wake given while the watch was healthy is kept."""

from __future__ import annotations

import time

import pytest

from overspill.views import cache as cache_module
from overspill.views.cache import WatchCache
from overspill.views.resource import PODS
from tests.integration.test_watch_cache import Script, api, pod, server, wait  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def test_a_wake_given_while_the_watch_was_healthy_does_not_skip_a_later_backoff(
    server: tuple[Script, str],  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe daemon calls retry_now on its first probe (last_state None -> healthy) while every watch of the
    new view is fine: `_wake` stays set. The first failure, any time later, then retries at once against a server
    that just failed, and the wake is spent there."""
    monkeypatch.setattr(cache_module, "BACKOFF_FIRST", 5.0)
    monkeypatch.setattr(cache_module, "WATCH_SECONDS", 1)
    script, url = server
    script.lists = [("10", [pod("a", "5")])]
    script.watches = ["quiet", 503, 503, 503]

    def watches() -> int:
        return len([q for q in script.requests if q.get("watch")])

    cache = WatchCache(api(url), PODS, cluster="target")
    cache.start()
    try:
        wait(lambda: cache.synced)
        cache.retry_now()  # healthy: nothing is waiting (the startup transition of the probe)
        wait(lambda: watches() >= 2)  # the quiet watch ended, the next one failed: a backoff of 5 s starts
        time.sleep(1.0)
        assert watches() == 2, "the failed watch was retried at once: a stale wake skipped its backoff"
    finally:
        cache.stop()

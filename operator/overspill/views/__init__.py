"""Watch-fed views of every cluster (the primary and each BurstTarget), shared by all policies.

`ClusterView` holds one cache per kind (and label selector), each fed by one LIST+WATCH; policies read views and
make no GET or LIST in steady state. See cache.py for the stream, accounting.py for capacity.
"""

from overspill.views.cache import WatchCache
from overspill.views.cluster import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import Resource

__all__ = ["MANAGED_SELECTOR", "ClusterView", "Resource", "WatchCache"]

"""The Pod Security level of the namespaces Overspill created in a target, kept at the BurstTarget's.

A namespace Overspill creates gets the target's level (`spec.podSecurity`) so that a template the primary's admission
would refuse cannot run in the secondary. A level set once is not a promise kept: the administrator may tighten the
BurstTarget later, and anyone with rights in the target may relax the labels by hand. The target's probe therefore
raises the labels of every namespace labelled managed-by=overspill to at least the level (never lowers them), as
drift is corrected for mirrors. Namespaces Overspill did not create (no label) are their owners' and never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubernetes.client import ApiException

from overspill.adapters.kube import TIMEOUT, Cluster
from overspill.adapters.mirror import MANAGED_BY, MANAGER

ALIGN_EVERY = 15.0  # seconds between two checks while the level is unchanged: one LIST of namespaces per target
ALIGN_REFUSED_EVERY = 300.0  # after RBAC refused the LIST: a grant added later is noticed within 5 minutes


@dataclass(frozen=True)
class Alignment:
    corrected: tuple[str, ...] = ()  # namespaces whose labels were put back
    problem: str | None = None  # why the namespaces could not be checked (RBAC), with the fix


_LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}


def _weaker(current: str | None, wanted: str, key: str) -> bool:
    """Whether `current` must be raised to `wanted`: only ever tightened. A stricter level (an administrator's, or
    another installation's or BurstTarget's on the same cluster) is kept, so two levels converge on the strictest
    instead of fighting, and a forged managed-by label can only make a namespace stricter. A pinned version is kept;
    a value Pod Security does not know is left too (it enforces restricted for it)."""
    if key.endswith("-version"):
        return current is None
    if current is None:
        return True
    return current in _LEVELS and _LEVELS[current] < _LEVELS.get(wanted, 0)


def align_pod_security(cluster: Cluster, wanted: Mapping[str, str]) -> Alignment:
    """Raise the Pod Security labels of every namespace Overspill created in the target to at least `wanted`."""
    try:
        items = cluster.core.list_namespace(label_selector=f"{MANAGED_BY}={MANAGER}", _request_timeout=TIMEOUT).items
    except ApiException as err:
        if err.status in (401, 403):
            return Alignment(
                problem=f"cannot list namespaces (HTTP {err.status}): grant namespaces list and patch in the "
                "target (docs/operations.md) so the Pod Security level of the namespaces Overspill created is kept"
            )
        raise
    corrected: list[str] = []
    refused: list[str] = []
    for ns in items:
        meta = ns.metadata
        if meta is None or not meta.name:
            continue
        labels = meta.labels or {}
        if labels.get(MANAGED_BY) != MANAGER:
            continue  # never another's namespace, even from a server that ignored the selector
        differ = {k: v for k, v in wanted.items() if _weaker(labels.get(k), v, k)}
        if not differ:
            continue
        # conditional on what was read: a concurrent change is looked at again at the next check
        body = {"metadata": {"labels": differ, "resourceVersion": meta.resource_version}}
        name = str(meta.name)
        try:
            cluster.core.patch_namespace(name, body, _request_timeout=TIMEOUT)
        except ApiException as err:
            if err.status not in (404, 409):  # gone, or changed since the read: looked at again next time
                refused.append(f"{name} (HTTP {err.status})")
            continue  # one refused namespace (a webhook, a policy) never stops the others
        corrected.append(name)
    problem = (
        f"could not raise the Pod Security labels of namespace {', '.join(refused)}: an admission policy or RBAC "
        "refused the patch (grant namespaces patch in the target, docs/operations.md)"
        if refused
        else None
    )
    return Alignment(tuple(corrected), problem)

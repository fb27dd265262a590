"""What counts as drift of a mirror: anything but the server's defaults and our own scale writes."""

from __future__ import annotations

import copy
from typing import Any

from overspill.adapters.mirror import covers, template_fingerprint

DESIRED: dict[str, Any] = {
    "metadata": {"labels": {"app": "vllm"}},
    "spec": {"containers": [{"name": "s", "image": "vllm:1", "env": [{"name": "A", "value": "1"}]}]},
}


def stored(template: dict[str, Any], replicas: int = 3) -> dict[str, Any]:
    """As an API server keeps it: defaults added, nulls where it writes them."""
    live = copy.deepcopy(template)
    live["metadata"]["creationTimestamp"] = None
    container = live["spec"]["containers"][0]
    container |= {"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"}
    live["spec"] |= {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {}}
    return {"spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "vllm"}}, "template": live}}


def test_defaults_are_not_drift_but_removed_or_changed_fields_are() -> None:
    assert covers(DESIRED, stored(DESIRED)["spec"]["template"])
    edited = stored(DESIRED)
    edited["spec"]["template"]["spec"]["containers"][0]["env"] = []  # someone removed our env var
    assert not covers(DESIRED, edited["spec"]["template"])
    edited = stored(DESIRED)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    assert not covers(DESIRED, edited["spec"]["template"])


def test_the_fingerprint_ignores_replicas_and_nulls_and_sees_any_edit() -> None:
    base = template_fingerprint(stored(DESIRED))
    assert template_fingerprint(stored(DESIRED, replicas=9)) == base  # our own scale writes
    added = stored(DESIRED)
    added["spec"]["template"]["spec"]["hostNetwork"] = True  # an addition `covers` cannot see
    assert template_fingerprint(added) != base


def test_a_pause_or_an_edited_strategy_is_drift() -> None:
    """Outside the pod template, and unseen before: a paused mirror never rolled out an update."""
    from overspill.adapters.mirror import DEFAULT_STRATEGY, rollout_covers

    live = stored(DESIRED)
    live["spec"]["strategy"] = DEFAULT_STRATEGY
    base = template_fingerprint(live)
    paused = copy.deepcopy(live)
    paused["spec"]["paused"] = True
    recreate = copy.deepcopy(live)
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    assert template_fingerprint(paused) != base and template_fingerprint(recreate) != base
    desired = {"spec": {"strategy": DEFAULT_STRATEGY}}
    assert rollout_covers(desired, live)
    assert not rollout_covers(desired, paused) and not rollout_covers(desired, recreate)


def test_the_writer_of_a_fight_is_named_from_managed_fields() -> None:
    from overspill.adapters.mirror import FIELD_MANAGER, drift_writer

    def entry(manager: str, time: str, field: str) -> dict[str, Any]:
        return {"manager": manager, "time": time, "fieldsV1": {"f:spec": {field: {}}}}

    live = stored(DESIRED)
    live["metadata"] = {
        "managedFields": [
            entry(FIELD_MANAGER, "2026-11-29T10:00:05Z", "f:template"),
            entry("kyverno", "2026-11-29T10:00:04Z", "f:template"),
            entry("kube-controller-manager", "2026-11-29T10:00:06Z", "f:replicas"),
        ]
    }
    assert drift_writer(live) == "kyverno"
    assert drift_writer(stored(DESIRED)) is None

"""The Pod Security labels of the namespaces Overspill created in a target, put back to the BurstTarget's level
(adapters/namespaces.py): what is patched, what is never touched, what an RBAC refusal says. The same on real API
servers: tests/e2e/test_pod_security_levels.py."""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client import ApiException

from overspill.adapters.kube import Cluster
from overspill.adapters.namespaces import align_pod_security
from overspill.api import parse_target_spec
from overspill.decide.tenancy import pod_security_labels

ENFORCE = "pod-security.kubernetes.io/enforce"
MANAGED = {"app.kubernetes.io/managed-by": "overspill"}
REF = {"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}}


class Core:
    """The two calls align_pod_security makes, on namespaces held in memory (the server ignores the selector, as
    a careless proxy might: the function must check the label itself)."""

    def __init__(self, namespaces: dict[str, dict[str, str]], refuse: int | None = None) -> None:
        self.namespaces = namespaces
        self.refuse = refuse
        self.patched: list[str] = []
        self.locked: set[str] = set()  # an admission policy refuses their patch

    def list_namespace(self, **_: Any) -> client.V1NamespaceList:
        if self.refuse:
            raise ApiException(status=self.refuse, reason="Forbidden")
        return client.V1NamespaceList(
            items=[
                client.V1Namespace(metadata=client.V1ObjectMeta(name=n, labels=dict(ls), resource_version="7"))
                for n, ls in self.namespaces.items()
            ]
        )

    def patch_namespace(self, name: str, body: dict[str, Any], **_: Any) -> None:
        assert body["metadata"]["resourceVersion"] == "7"  # conditional on what was read
        if name in self.locked:
            raise ApiException(status=403, reason="Forbidden")
        self.patched.append(name)
        self.namespaces[name].update(body["metadata"]["labels"])


def world(refuse: int | None = None) -> tuple[Core, Cluster]:
    baseline = pod_security_labels(parse_target_spec(REF))
    core = Core(
        {
            "ours": {**MANAGED, **baseline},
            "relaxed": {**MANAGED, **baseline, ENFORCE: "privileged"},
            "theirs": {ENFORCE: "privileged"},  # a tenant's own namespace, privileged on purpose: not ours to judge
        },
        refuse,
    )
    cluster = cast(Cluster, type("FakeCluster", (), {"core": core})())
    return core, cluster


def test_a_tightened_level_and_a_relaxed_namespace_are_put_back_and_no_other_is_touched() -> None:
    core, cluster = world()
    restricted = pod_security_labels(parse_target_spec({**REF, "podSecurity": "restricted"}))
    done = align_pod_security(cluster, restricted)
    assert sorted(done.corrected) == ["ours", "relaxed"] and done.problem is None
    assert core.namespaces["ours"][ENFORCE] == core.namespaces["relaxed"][ENFORCE] == "restricted"
    assert core.namespaces["relaxed"]["app.kubernetes.io/managed-by"] == "overspill"
    assert core.namespaces["theirs"] == {ENFORCE: "privileged"}
    assert align_pod_security(cluster, restricted).corrected == ()  # in line now: read, no write
    assert sorted(core.patched) == ["ours", "relaxed"]


def test_a_namespace_relaxed_by_hand_is_put_back_at_the_same_level() -> None:
    core, cluster = world()
    done = align_pod_security(cluster, pod_security_labels(parse_target_spec(REF)))
    assert done.corrected == ("relaxed",)
    assert core.namespaces["relaxed"][ENFORCE] == "baseline"


def test_refused_rbac_is_said_with_the_fix_and_writes_nothing() -> None:
    core, cluster = world(refuse=403)
    done = align_pod_security(cluster, {ENFORCE: "restricted"})
    assert done.corrected == () and done.problem is not None
    assert "HTTP 403" in done.problem and "grant namespaces list and patch" in done.problem
    assert core.patched == []


def test_a_stricter_level_or_a_pinned_version_is_never_lowered() -> None:
    """Only ever raised: an administrator's restricted namespace stays restricted under a baseline target, and two
    BurstTargets (or installations) with different levels on one cluster converge on the strictest, never fight."""
    baseline = pod_security_labels(parse_target_spec(REF))
    restricted = pod_security_labels(parse_target_spec({**REF, "podSecurity": "restricted"}))
    core, cluster = world()
    core.namespaces["ours"]["pod-security.kubernetes.io/enforce-version"] = "v1.33"
    assert align_pod_security(cluster, restricted).corrected == ("ours", "relaxed")
    assert align_pod_security(cluster, baseline).corrected == ()  # the other target: nothing lowered
    assert core.namespaces["ours"][ENFORCE] == "restricted"
    assert core.namespaces["ours"]["pod-security.kubernetes.io/enforce-version"] == "v1.33"
    for _ in range(3):
        assert align_pod_security(cluster, restricted).corrected == ()
        assert align_pod_security(cluster, baseline).corrected == ()


def test_one_namespace_refused_never_stops_the_others() -> None:
    core, cluster = world()
    core.namespaces["a-locked"] = {**MANAGED, ENFORCE: "privileged"}
    core.locked.add("a-locked")
    done = align_pod_security(cluster, {ENFORCE: "restricted"})
    assert set(done.corrected) == {"ours", "relaxed"}
    assert done.problem is not None and "a-locked (HTTP 403)" in done.problem

"""The act step's serving part (overspill.serving) on kmock: plan per target, carry, burst Service and export, route."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from overspill.adapters.kube import Cluster
from overspill.api import parse_policy_spec
from overspill.api.policy import TargetOverrides
from overspill.carry import MANAGED_BY, POLICY_UID
from overspill.decide.weights import Backend, Weights
from overspill.serving import RouteStep, Serving, Side, import_names
from tests.cases.bad_input import valid_spec
from tests.integration.test_carry_kmock import TEMPLATE, api  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
UID = "uid-1"
WORKLOAD = {"spec": {"template": {"metadata": {"labels": {"app": "vllm"}}, "spec": TEMPLATE}}}


def spec(**over: Any) -> Any:
    return parse_policy_spec({**valid_spec(), **over})


def side(cluster: Cluster, **kw: Any) -> Side:
    return Side(name="secondary", namespace="mirror", cluster=cluster, ensure_namespace=lambda ns: None, **kw)


async def test_plan_names_what_is_missing_and_carry_writes_the_rest(api: Any, cluster: Cluster) -> None:  # noqa: F811
    def body() -> None:
        s = side(cluster)
        serving = Serving(cluster, "primary")
        serving.plan(spec(), "ml", UID, WORKLOAD, [s])
        assert {i.ref.name for i in s.plan.blocking} == {"hf", "regcred"}
        report = serving.dependency_report([s], holding={"secondary"})
        assert "Secret mirror/hf" in report.problems["secondary"]
        assert serving.dependency_report([s], holding=set()).problems == {}  # only targets holding replicas count
        written, problem = serving.carry(s)
        assert (written, problem) == (3, None)  # 2 ConfigMaps + the ServiceAccount; no Secret
        assert not any(p.plural == "secrets" and ns == "mirror" for p, ns, _ in api.objects)

    await asyncio.to_thread(body)


async def test_secrets_are_never_read_from_the_primary_unless_opted_in(api: Any, cluster: Cluster) -> None:  # noqa: F811
    def body() -> None:
        Serving(cluster, "primary").plan(spec(), "ml", UID, WORKLOAD, [side(cluster)])
        reads = [r.url.path for r in api if r.method.value == "GET" and "/namespaces/ml/secrets" in r.url.path]
        assert reads == []
        Serving(cluster, "primary").plan(spec(propagation={"secrets": True}), "ml", UID, WORKLOAD, [side(cluster)])
        reads = [r.url.path for r in api if r.method.value == "GET" and "/namespaces/ml/secrets" in r.url.path]
        assert sorted(reads) == ["/api/v1/namespaces/ml/secrets/hf", "/api/v1/namespaces/ml/secrets/regcred"]

    await asyncio.to_thread(body)


async def test_overrides_volumes_replace_a_claim_that_would_block(api: Any, cluster: Cluster) -> None:  # noqa: F811
    def body() -> None:
        wl = {
            "spec": {
                "template": {
                    "spec": {**TEMPLATE, "volumes": [{"name": "m", "persistentVolumeClaim": {"claimName": "models"}}]}
                }
            }
        }
        plain = side(cluster)
        replaced = side(cluster, overrides=TargetOverrides(volumes=[{"name": "m", "emptyDir": {}}]))
        Serving(cluster, "primary").plan(spec(propagation={"secrets": True}), "ml", UID, wl, [plain, replaced])
        assert [i.ref.name for i in plain.plan.blocking] == ["models"]
        assert replaced.plan.ready

    await asyncio.to_thread(body)


PRIMARY_SVC = {
    "metadata": {"name": "vllm", "namespace": "ml"},
    "spec": {"selector": {"app": "vllm"}, "ports": [{"port": 80}]},
}


async def test_traffic_service_export_and_their_state(api: Any, cluster: Cluster) -> None:  # noqa: F811
    def body() -> None:
        api.objects["v1/services", "ml", "vllm"] = PRIMARY_SVC
        s = side(cluster)
        sp = spec(traffic={"serviceRef": {"name": "vllm"}})
        serving = Serving(cluster, "primary")
        writes, report = serving.traffic(sp, "ml", UID, [s], holding=set(), act=True)
        assert writes == 0 and report is not None and report.exports == ()  # no target holds replicas
        writes, report = serving.traffic(sp, "ml", UID, [s], holding={"secondary"}, act=True)
        assert writes == 2 and report is not None
        assert [e.state for e in report.exports] == ["Pending"]
        api.objects["multicluster.x-k8s.io/v1alpha1/serviceexports", "mirror", "vllm-burst-secondary"] = {
            **api.objects["multicluster.x-k8s.io/v1alpha1/serviceexports", "mirror", "vllm-burst-secondary"].raw,
            "status": {"conditions": [{"type": "Valid", "status": "True"}, {"type": "Ready", "status": "True"}]},
        }
        writes, report = serving.traffic(sp, "ml", UID, [s], holding={"secondary"}, act=True)
        assert writes == 0 and report is not None and report.problems == ()
        assert [e.state for e in report.exports] == ["Exported"]
        dry_writes, _ = serving.traffic(sp, "ml", "uid-2", [s], holding={"secondary"}, act=False)
        assert dry_writes == 0

    await asyncio.to_thread(body)


async def test_missing_primary_service_is_reported_not_guessed(api: Any, cluster: Cluster) -> None:  # noqa: F811
    def body() -> None:
        sp = spec(traffic={"serviceRef": {"name": "nope"}})
        _, report = Serving(cluster, "primary").traffic(sp, "ml", UID, [side(cluster)], holding={"secondary"}, act=True)
        assert report is not None and report.problems == (
            "Service ml/nope (spec.traffic.serviceRef) not found in the primary",
        )

    await asyncio.to_thread(body)


async def test_route_weights_and_removal_on_deletion(api: Any, cluster: Cluster) -> None:  # noqa: F811
    def body() -> None:
        api.objects["gateway.networking.k8s.io/v1/httproutes", "ml", "vllm"] = {
            "metadata": {"name": "vllm", "namespace": "ml", "resourceVersion": "1"},
            "spec": {"rules": [{"backendRefs": [{"name": "vllm", "port": 80}]}]},
        }
        traffic = {"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}, "drainSeconds": 0}
        raw = {**valid_spec(), "traffic": traffic}
        serving = Serving(cluster, "primary")
        names = import_names("vllm-burst", ["secondary"])
        backends = [Backend("secondary", names["secondary"], "ml")]

        def step(planned: int) -> RouteStep:
            return serving.route(
                parse_policy_spec(raw),
                "ml",
                "uid-1",
                backends,
                names,
                8,
                {"secondary": 7},
                {"secondary": planned},
                act=True,
                now=100.0,
            )

        first = step(7)
        assert (first.writes, first.problem, first.confirmed) == (1, None, True)
        assert first.before == Weights(1, {}) and first.now == Weights(8, {"secondary": 7})
        second = step(0)
        assert second.writes == 1 and second.before is not None and second.now is not None
        assert (second.before.burst, second.now.burst) == ({"secondary": 7}, {"secondary": 0})
        gone = serving.unroute("ml", "uid-1", ["vllm"], names, "multicluster.x-k8s.io", 0.0, 100.0)
        assert not gone.waiting and gone.routes == []  # already at 0: the backendRef goes at once
        refs = api.objects["gateway.networking.k8s.io/v1/httproutes", "ml", "vllm"]["spec"]["rules"][0]["backendRefs"]
        assert [r["name"] for r in refs] == ["vllm"]

    await asyncio.to_thread(body)


async def test_two_policies_share_a_secret_and_a_configmap_without_a_fight(api: Any, cluster: Cluster) -> None:  # noqa: F811
    """Review break 5: policy 2 (secrets: false) deleted policy 1's permitted Secret copy every poll, policy 1
    wrote it back: the fight never ended. Now each policy only leaves the owners of a copy it is listed in."""

    def body() -> None:
        serving = Serving(cluster, "primary")

        def poll(uid: str, secrets: bool) -> Side:
            s = side(cluster)
            serving.plan(spec(propagation={"secrets": secrets}), "ml", uid, WORKLOAD, [s])
            assert serving.carry(s)[1] is None
            return s

        poll("uid-1", True)
        secret = ("v1/secrets", "mirror", "hf")
        assert not api.objects[secret].deleted
        for _ in range(3):  # before: uid-2 deleted it, uid-1 copied it again, every poll
            s2 = poll("uid-2", False)
            poll("uid-1", True)
        assert not api.objects[secret].deleted
        assert not [r for r in api if r.method.value == "DELETE"]  # never deleted, not even once
        assert "hf" not in {i.ref.name for i in s2.plan.blocking}  # provided to uid-2 by uid-1's copy
        # both need the ConfigMap: both are its owners; the first to go leaves it to the other
        poll("uid-2", False)
        cm = ("v1/configmaps", "mirror", "vllm-config")
        assert api.objects[cm]["metadata"]["annotations"]["overspill.dev/owners"] == "uid-1,uid-2"
        api.objects["apps/v1/deployments", "mirror", "m-uid-2"] = mirror_of("uid-2", TEMPLATE)  # uid-2 uses it
        serving.remove(cluster, "mirror", "uid-1")
        assert not api.objects[cm].deleted
        assert api.objects[cm]["metadata"]["annotations"]["overspill.dev/owners"] == "uid-2"
        serving.remove(cluster, "mirror", "uid-2")
        assert api.objects[cm].deleted

    await asyncio.to_thread(body)


async def test_a_revoked_copy_is_deleted_only_if_it_is_still_the_one_read(api: Any, cluster: Cluster) -> None:  # noqa: F811
    """Review break 7: the delete of a revoked copy names the uid and resourceVersion that were read, so the API
    server refuses it (409) when someone else replaced the object under the same name in the meantime."""

    def body() -> None:
        serving = Serving(cluster, "primary")
        s = side(cluster)
        serving.plan(spec(propagation={"secrets": True}), "ml", UID, WORKLOAD, [s])
        serving.carry(s)
        key = ("v1/secrets", "mirror", "hf")
        raw = api.objects[key].raw
        api.objects[key] = {**raw, "metadata": {**raw["metadata"], "uid": "u-7", "resourceVersion": "70"}}
        s = side(cluster)
        serving.plan(spec(), "ml", UID, WORKLOAD, [s])
        serving.carry(s)
        (delete,) = [r for r in api if r.method.value == "DELETE" and r.url.path.endswith("/secrets/hf")]
        assert delete.data["preconditions"] == {"uid": "u-7", "resourceVersion": "70"}

    await asyncio.to_thread(body)


def mirror_of(uid: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": f"m-{uid}", "namespace": "mirror", "labels": {MANAGED_BY: "overspill", POLICY_UID: uid}}
    return {"metadata": meta, "spec": {"replicas": 1, "template": {"spec": pod_spec}}}


async def test_a_policy_leaving_keeps_a_copy_another_policys_mirror_uses_whatever_the_annotation_says(
    api: Any,  # noqa: F811
    cluster: Cluster,
) -> None:
    """Review break: removal trusted the owners annotation alone. Stripped by hand, the creator's removal deleted
    a ConfigMap copy another policy's mirror mounts; naming a policy released by hand (no mirror anywhere), it
    kept a Secret copy for good. Now the users are read from the mirrors in the namespace."""

    def body() -> None:
        labels = {MANAGED_BY: "overspill", POLICY_UID: "uid-1"}
        cm, secret = ("v1/configmaps", "mirror", "vllm-config"), ("v1/secrets", "mirror", "hf")
        api.objects[cm] = {"metadata": {"name": "vllm-config", "namespace": "mirror", "labels": labels}, "data": {}}
        api.objects[secret] = {
            "metadata": {
                "name": "hf",
                "namespace": "mirror",
                "labels": labels,
                "annotations": {"overspill.dev/owners": "uid-1,uid-gone"},
            },
            "data": {},
        }
        api.objects["apps/v1/deployments", "mirror", "m-uid-2"] = mirror_of(
            "uid-2", {"volumes": [{"name": "c", "configMap": {"name": "vllm-config"}}]}
        )
        Serving(cluster, "primary").remove(cluster, "mirror", "uid-1")
        assert not api.objects[cm].deleted  # uid-2's mirror mounts it
        assert api.objects[cm]["metadata"]["annotations"]["overspill.dev/owners"] == "uid-2"
        assert api.objects[cm]["metadata"]["labels"][POLICY_UID] == "uid-2"
        assert api.objects[secret].deleted  # its last user went; uid-gone has no mirror here

    await asyncio.to_thread(body)

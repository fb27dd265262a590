"""The adapters that carry dependencies and traffic objects, against kmock (real HTTP, real client).

The "primary" is namespace ml, the "target" is namespace mirror of the same in-memory API: what matters here is
which requests the adapters make and what they leave alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from overspill.adapters.dependencies import DependencyWriter, direct_lookup, gather
from overspill.adapters.kube import Cluster
from overspill.adapters.traffic import (
    RouteClient,
    TrafficClient,
    TrafficConflict,
    burst_service,
    export_state,
    service_export,
)
from overspill.api.policy import Propagation
from overspill.carry import MANAGED_BY, POLICY_UID, Kind, Sources, State, plan, references, service_account_references
from overspill.decide.weights import Backend, Weights, route_rules

pytestmark = pytest.mark.integration
UID = "uid-1"

TEMPLATE: dict[str, Any] = {
    "serviceAccountName": "vllm",
    "initContainers": [
        {
            "name": "fetch",
            "image": "x",
            "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}],
        }
    ],
    "containers": [{"name": "server", "image": "x", "envFrom": [{"configMapRef": {"name": "vllm-config"}}]}],
    "volumes": [{"name": "cfg", "projected": {"sources": [{"configMap": {"name": "chat-template"}}]}}],
}


@pytest.fixture
def api(emulator: Any) -> Any:
    for plural, kind in (
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("serviceaccounts", "ServiceAccount"),
        ("services", "Service"),
        ("persistentvolumeclaims", "PersistentVolumeClaim"),
    ):
        emulator.resources[f"v1/{plural}"] = {
            "kind": kind,
            "namespaced": True,
            "verbs": ["get", "list", "create", "update", "patch", "delete"],
        }
    emulator.resources["multicluster.x-k8s.io/v1alpha1/serviceexports"] = {
        "kind": "ServiceExport",
        "namespaced": True,
        "verbs": ["get", "list", "create", "delete"],
    }
    emulator.resources["gateway.networking.k8s.io/v1/httproutes"] = {
        "kind": "HTTPRoute",
        "namespaced": True,
        "verbs": ["get", "patch"],
    }

    def replace(request: Any) -> dict[str, Any]:  # kmock serves PATCH as update; PUT (replace) is ours to serve
        key = (f"v1/{request.resource.plural}", request.namespace, request.name)
        emulator.objects[key] = request.data
        return dict(request.data)

    for plural in ("configmaps", "secrets", "serviceaccounts", "services"):
        emulator["put", emulator.resource(f"v1/{plural}")] << replace
    objs = emulator.objects
    objs["v1/configmaps", "ml", "vllm-config"] = {
        "metadata": {"name": "vllm-config", "namespace": "ml"},
        "data": {"MODEL": "llama"},
    }
    objs["v1/configmaps", "ml", "chat-template"] = {
        "metadata": {"name": "chat-template", "namespace": "ml"},
        "data": {"t": "x"},
    }
    objs["v1/secrets", "ml", "hf"] = {
        "metadata": {"name": "hf", "namespace": "ml"},
        "type": "Opaque",
        "data": {"t": "aGY="},
    }
    objs["v1/secrets", "ml", "regcred"] = {
        "metadata": {"name": "regcred", "namespace": "ml"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "e30="},
    }
    objs["v1/serviceaccounts", "ml", "vllm"] = {
        "metadata": {"name": "vllm", "namespace": "ml"},
        "imagePullSecrets": [{"name": "regcred"}],
    }
    return emulator


def writes(emulator: Any) -> list[str]:
    return [f"{r.method.value} {r.url.path}" for r in emulator if r.method.value != "GET"]


def carry(cluster: Cluster, prop: Propagation) -> Any:
    """One pass as the act step does it: discover, read both sides, plan, write."""
    refs = list(references(TEMPLATE))
    src = direct_lookup(cluster, "ml")
    sa = src(Kind.SERVICE_ACCOUNT, "vllm")
    refs += service_account_references(sa or {})
    found = Sources(primary=gather(refs, src), target=gather(refs, direct_lookup(cluster, "mirror")))
    p = plan(refs, prop, found, namespace="mirror", policy_uid=UID, origin_cluster="primary", origin_namespace="ml")
    DependencyWriter(cluster, lambda ns: None).write_all(p.writes)
    return p


async def test_everything_the_template_names_is_copied_when_allowed(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        p = carry(cluster, Propagation(secrets=True))
        assert p.ready
        for plural, name in (
            ("configmaps", "vllm-config"),
            ("configmaps", "chat-template"),
            ("secrets", "hf"),
            ("secrets", "regcred"),
            ("serviceaccounts", "vllm"),
        ):
            copy = api.objects[f"v1/{plural}", "mirror", name]
            assert copy["metadata"]["labels"][MANAGED_BY] == "overspill"
            assert copy["metadata"]["labels"][POLICY_UID] == UID
        assert api.objects["v1/secrets", "mirror", "regcred"]["type"] == "kubernetes.io/dockerconfigjson"
        # the ServiceAccount is created before the Secrets, ConfigMaps after it: pods never race a missing SA
        created = [w for w in writes(api) if w.startswith("POST")]
        assert created[0].endswith("/serviceaccounts")

    await asyncio.to_thread(body)


async def test_secrets_stay_home_by_default_and_are_named(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        p = carry(cluster, Propagation())
        assert not p.ready
        assert {(i.ref.name, i.state) for i in p.blocking} == {("hf", State.MISSING), ("regcred", State.MISSING)}
        assert all("/secrets" not in w for w in writes(api))

    await asyncio.to_thread(body)


async def test_a_second_pass_writes_nothing_and_a_source_edit_is_copied(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        carry(cluster, Propagation())
        before = len(writes(api))
        carry(cluster, Propagation())
        assert len(writes(api)) == before  # nothing changed, nothing written
        api.objects["v1/configmaps", "ml", "vllm-config"] = {
            "metadata": {"name": "vllm-config", "namespace": "ml"},
            "data": {"MODEL": "mistral"},
        }
        carry(cluster, Propagation())
        assert writes(api)[before:] == ["PUT /api/v1/namespaces/mirror/configmaps/vllm-config"]
        assert api.objects["v1/configmaps", "mirror", "vllm-config"]["data"]["MODEL"] == "mistral"

    await asyncio.to_thread(body)


async def test_an_object_overspill_did_not_create_is_never_written(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        api.objects["v1/configmaps", "mirror", "vllm-config"] = {
            "metadata": {"name": "vllm-config", "namespace": "mirror"},
            "data": {"MODEL": "theirs"},
        }
        p = carry(cluster, Propagation())
        assert [i.ref.name for i in p.blocking if i.state == State.CONFLICT] == ["vllm-config"]
        assert not any("vllm-config" in w for w in writes(api))
        assert api.objects["v1/configmaps", "mirror", "vllm-config"]["data"]["MODEL"] == "theirs"

    await asyncio.to_thread(body)


async def test_removal_finds_copies_by_label_and_leaves_others(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        carry(cluster, Propagation())
        api.objects["v1/configmaps", "mirror", "theirs"] = {
            "metadata": {"name": "theirs", "namespace": "mirror"},
            "data": {},
        }
        removed = DependencyWriter(cluster, lambda ns: None).remove_policy_copies("mirror", UID)
        assert removed == 3  # two ConfigMaps and the ServiceAccount
        left = {(k[0].plural, k[2]) for k in api.objects if k[1] == "mirror" and not api.objects[k].deleted}
        assert left == {("configmaps", "theirs")}

    await asyncio.to_thread(body)


PRIMARY_SVC = {
    "metadata": {"name": "vllm", "namespace": "ml"},
    "spec": {
        "type": "LoadBalancer",
        "selector": {"app": "vllm"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 31000}],
    },
}


async def test_burst_service_and_export_created_then_left_alone(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        tc = TrafficClient(cluster)
        body = burst_service(
            PRIMARY_SVC, name="vllm-burst", namespace="mirror", policy_uid=UID, origin="primary/ml/vllm"
        )
        assert body["spec"] == {
            "type": "ClusterIP",
            "selector": {"app": "vllm"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        }
        assert tc.apply_service(body, tc.read_service("mirror", "vllm-burst"), UID)
        assert not tc.apply_service(body, tc.read_service("mirror", "vllm-burst"), UID)  # up to date: no write
        export = service_export("vllm-burst", "mirror", UID, "primary/ml/vllm", "v1alpha1")
        assert tc.ensure_export(export, tc.read_export("v1alpha1", "mirror", "vllm-burst"), UID)
        assert (
            api.objects["multicluster.x-k8s.io/v1alpha1/serviceexports", "mirror", "vllm-burst"]["metadata"]["labels"][
                POLICY_UID
            ]
            == UID
        )
        assert tc.remove_policy_objects("mirror", UID) >= 1
        assert api.objects["v1/services", "mirror", "vllm-burst"].deleted

    await asyncio.to_thread(body)


async def test_the_burst_service_is_replaced_in_what_overspill_owns_and_kept_in_the_rest(
    api: Any, cluster: Cluster
) -> None:
    """A port moved, a selector key and an annotation dropped: they leave the burst Service (a merge patch would
    keep all three); what the API server filled in and what someone else added stays."""

    def body() -> None:
        tc = TrafficClient(cluster)
        svc = ("v1/services", "mirror", "vllm-burst")
        cilium = {"service.cilium.io/global": "true", "service.cilium.io/affinity": "local"}
        old = dict(PRIMARY_SVC, spec={**PRIMARY_SVC["spec"], "selector": {"app": "vllm", "track": "stable"}})
        first = burst_service(
            old, name="vllm-burst", namespace="mirror", policy_uid=UID, origin="o", annotations=cilium
        )
        assert tc.apply_service(first, None, UID)
        stored = api.objects[svc].raw
        stored["metadata"]["annotations"]["team.example/owner"] = "ml-platform"
        stored["metadata"]["labels"]["team.example/cost-center"] = "42"
        stored["spec"].update(clusterIP="10.0.0.7", clusterIPs=["10.0.0.7"], ipFamilies=["IPv4"])
        api.objects[svc] = stored
        moved = dict(PRIMARY_SVC, spec={**PRIMARY_SVC["spec"], "ports": [{"name": "http", "port": 8080}]})
        want = burst_service(
            moved,
            name="vllm-burst",
            namespace="mirror",
            policy_uid=UID,
            origin="o",
            annotations={"service.cilium.io/global": "true"},
        )
        assert tc.apply_service(want, tc.read_service("mirror", "vllm-burst"), UID)
        got = api.objects[svc].raw
        assert got["spec"]["ports"] == [{"name": "http", "port": 8080}]
        assert got["spec"]["selector"] == {"app": "vllm"}
        assert got["spec"]["clusterIP"] == "10.0.0.7" and got["spec"]["ipFamilies"] == ["IPv4"]
        annotations = got["metadata"]["annotations"]
        assert "service.cilium.io/affinity" not in annotations
        assert annotations["service.cilium.io/global"] == "true"
        assert annotations["team.example/owner"] == "ml-platform"
        assert got["metadata"]["labels"]["team.example/cost-center"] == "42"
        puts = len([w for w in writes(api) if w.startswith("PUT")])
        assert not tc.apply_service(want, tc.read_service("mirror", "vllm-burst"), UID)  # up to date: no write
        assert len([w for w in writes(api) if w.startswith("PUT")]) == puts

    await asyncio.to_thread(body)


async def test_someone_elses_service_is_a_conflict_not_an_update(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        api.objects["v1/services", "mirror", "vllm-burst"] = {
            "metadata": {"name": "vllm-burst", "namespace": "mirror"},
            "spec": {"selector": {"app": "other"}},
        }
        tc = TrafficClient(cluster)
        body = burst_service(PRIMARY_SVC, name="vllm-burst", namespace="mirror", policy_uid=UID, origin="o")
        with pytest.raises(TrafficConflict, match="not created by Overspill"):
            tc.apply_service(body, tc.read_service("mirror", "vllm-burst"), UID)
        assert writes(api) == []
        assert tc.remove_policy_objects("mirror", UID) == 0
        assert not api.objects["v1/services", "mirror", "vllm-burst"].deleted

    await asyncio.to_thread(body)


def test_export_conditions_read_back() -> None:
    assert export_state({}).state == "Pending"
    ok = {"status": {"conditions": [{"type": "Valid", "status": "True"}, {"type": "Ready", "status": "True"}]}}
    assert export_state(ok).state == "Exported"
    clash = {
        "status": {
            "conditions": [
                {"type": "Valid", "status": "True"},
                {"type": "Conflict", "status": "True", "message": "ports differ"},
            ]
        }
    }
    # KEP-1645: a conflict resolved by the oldest export still exports: the replicas keep their weight, shown why
    assert export_state(clash).state == "Exported" and "ports differ" in export_state(clash).message
    stopped = {
        "status": {
            "conditions": [
                {"type": "Valid", "status": "True"},
                {"type": "Ready", "status": "False"},
                {"type": "Conflict", "status": "True", "message": "ports differ"},
            ]
        }
    }
    assert export_state(stopped).state == "Conflict" and export_state(stopped).message == "ports differ"
    bad = {"status": {"conditions": [{"type": "Valid", "status": "False", "reason": "NoService"}]}}
    assert export_state(bad).state == "Invalid"
    gke = {
        "status": {"conditions": [{"type": "Initialized", "status": "True"}, {"type": "Exported", "status": "True"}]}
    }
    assert export_state(gke).state == "Exported"


async def test_route_weights_written_through_the_api(api: Any, cluster: Cluster) -> None:
    def body() -> None:
        api.objects["gateway.networking.k8s.io/v1/httproutes", "ml", "vllm"] = {
            "metadata": {"name": "vllm", "namespace": "ml", "resourceVersion": "5"},
            "spec": {"rules": [{"backendRefs": [{"name": "vllm", "port": 80}]}]},
        }
        rc = RouteClient(cluster)
        route = rc.read("ml", "vllm")
        assert route is not None
        rc.write_rules(
            route,
            route_rules(
                route["spec"]["rules"],
                namespace="ml",
                service="vllm",
                backends=[Backend("aws", "vllm-burst-aws", "ml")],
                names={"aws": "vllm-burst-aws"},
                w=Weights(8, {"aws": 7}),
            ),
        )
        refs = api.objects["gateway.networking.k8s.io/v1/httproutes", "ml", "vllm"]["spec"]["rules"][0]["backendRefs"]
        assert [(r.get("kind", "Service"), r["name"], r["weight"]) for r in refs] == [
            ("Service", "vllm", 8),
            ("ServiceImport", "vllm-burst-aws", 7),
        ]

    await asyncio.to_thread(body)

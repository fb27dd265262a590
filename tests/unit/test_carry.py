"""Reference discovery and the carry plan: every place a pod spec can name a ConfigMap, Secret, ServiceAccount or
PVC, and what a target needs for the mirror's pods to start there."""

from __future__ import annotations

from typing import Any

import pytest

from overspill.api.policy import Propagation
from overspill.carry import (
    MANAGED_BY,
    ORIGIN,
    OWNERS,
    POLICY_UID,
    SOURCE_HASH,
    Kind,
    Observed,
    Reference,
    Sources,
    State,
    copy_of,
    describe,
    observe_users,
    owners,
    plan,
    references,
    service_account_references,
    with_volume_overrides,
)

CM, SEC, SA, PVC = Kind.CONFIG_MAP, Kind.SECRET, Kind.SERVICE_ACCOUNT, Kind.PVC


def c(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "image": "x", **fields}


# (pod spec, the (kind, name) it must reveal) — one row per place a reference can hide
CASES: list[tuple[str, dict[str, Any], set[tuple[Kind, str]]]] = [
    (
        "env configMapKeyRef",
        {"containers": [c(env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}])]},
        {(CM, "cm")},
    ),
    (
        "env secretKeyRef",
        {"containers": [c(env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "k"}}}])]},
        {(SEC, "tok")},
    ),
    (
        "env fieldRef names nothing",
        {"containers": [c(env=[{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])]},
        set(),
    ),
    ("envFrom configMapRef", {"containers": [c(envFrom=[{"configMapRef": {"name": "cm2"}}])]}, {(CM, "cm2")}),
    ("envFrom secretRef", {"containers": [c(envFrom=[{"prefix": "X_", "secretRef": {"name": "s2"}}])]}, {(SEC, "s2")}),
    (
        "init container env",
        {
            "initContainers": [c(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "init-s", "key": "k"}}}])],
            "containers": [c()],
        },
        {(SEC, "init-s")},
    ),
    (
        "ephemeral container envFrom",
        {"containers": [c()], "ephemeralContainers": [c(envFrom=[{"configMapRef": {"name": "dbg"}}])]},
        {(CM, "dbg")},
    ),
    (
        "volume configMap",
        {"containers": [c()], "volumes": [{"name": "v", "configMap": {"name": "vcm"}}]},
        {(CM, "vcm")},
    ),
    ("volume secret", {"containers": [c()], "volumes": [{"name": "v", "secret": {"secretName": "vs"}}]}, {(SEC, "vs")}),
    (
        "projected configMap + secret",
        {
            "containers": [c()],
            "volumes": [
                {
                    "name": "p",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "pc"}},
                            {"secret": {"name": "ps"}},
                            {"serviceAccountToken": {"path": "t"}},
                            {"downwardAPI": {"items": []}},
                        ]
                    },
                }
            ],
        },
        {(CM, "pc"), (SEC, "ps")},
    ),
    (
        "persistentVolumeClaim",
        {"containers": [c()], "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "models"}}]},
        {(PVC, "models")},
    ),
    (
        "csi nodePublishSecretRef",
        {
            "containers": [c()],
            "volumes": [{"name": "d", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-s"}}}],
        },
        {(SEC, "csi-s")},
    ),
    (
        "cephfs secretRef",
        {"containers": [c()], "volumes": [{"name": "d", "cephfs": {"monitors": ["m"], "secretRef": {"name": "ceph"}}}]},
        {(SEC, "ceph")},
    ),
    (
        "azureFile secretName",
        {"containers": [c()], "volumes": [{"name": "d", "azureFile": {"secretName": "az", "shareName": "s"}}]},
        {(SEC, "az")},
    ),
    ("emptyDir names nothing", {"containers": [c()], "volumes": [{"name": "e", "emptyDir": {}}]}, set()),
    (
        "DRA resourceClaims (claim and claim template)",
        {
            "containers": [c()],
            "resourceClaims": [
                {"name": "gpu", "resourceClaimTemplateName": "gpu-t"},
                {"name": "shared", "resourceClaimName": "gpu-c"},
            ],
        },
        {(Kind.RESOURCE_CLAIM_TEMPLATE, "gpu-t"), (Kind.RESOURCE_CLAIM, "gpu-c")},
    ),
    ("serviceAccountName", {"serviceAccountName": "runner", "containers": [c()]}, {(SA, "runner")}),
    ("deprecated serviceAccount", {"serviceAccount": "old", "containers": [c()]}, {(SA, "old")}),
    ("default ServiceAccount exists everywhere", {"serviceAccountName": "default", "containers": [c()]}, set()),
    ("imagePullSecrets", {"imagePullSecrets": [{"name": "regcred"}], "containers": [c()]}, {(SEC, "regcred")}),
]


@pytest.mark.parametrize(("pod", "want"), [(p, w) for _, p, w in CASES], ids=[n for n, _, _ in CASES])
def test_every_place_a_pod_names_an_object(pod: dict[str, Any], want: set[tuple[Kind, str]]) -> None:
    assert {r.key for r in references(pod)} == want


def test_one_entry_per_object_first_place_kept_and_required_wins() -> None:
    pod = {
        "containers": [
            c(env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a", "optional": True}}}]),
            c(envFrom=[{"configMapRef": {"name": "cm"}}]),
        ]
    }
    (ref,) = references(pod)
    assert ref == Reference(CM, "cm", "spec.containers[c].env[A].valueFrom.configMapKeyRef", optional=False)


def test_service_account_pull_secrets_are_carried_not_its_tokens() -> None:
    sa = {"metadata": {"name": "runner"}, "imagePullSecrets": [{"name": "regcred"}], "secrets": [{"name": "tok"}]}
    assert [r.key for r in service_account_references(sa)] == [(SEC, "regcred")]


def test_volume_overrides_replace_by_name_and_add_new_names() -> None:
    pod = {
        "volumes": [
            {"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ]
    }
    out = with_volume_overrides(pod, [{"name": "models", "emptyDir": {}}, {"name": "scratch", "emptyDir": {}}])
    assert out["volumes"] == [
        {"name": "models", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "scratch", "emptyDir": {}},
    ]
    assert {r.kind for r in references(out)} == {CM}
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "models"}  # the input is not changed


def source(kind: Kind, name: str, **content: Any) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "metadata": {"name": name, "namespace": "ml", "uid": "u", "resourceVersion": "9", "labels": {"app": "vllm"}},
        **content,
    }


def run_plan(
    refs: list[Reference],
    prim: dict[Any, Any],
    there: dict[Any, Any],
    prop: Propagation | None = None,
    installation: str | None = None,
) -> Any:
    return plan(
        refs,
        prop or Propagation(),
        Sources(primary=prim, target=there),
        namespace="ml",
        policy_uid="uid-1",
        origin_cluster="primary",
        origin_namespace="ml",
        installation=installation,
    )


def test_copy_carries_content_and_ownership_never_identity() -> None:
    src = source(SEC, "tok", data={"k": "dmFs"}, type="Opaque")
    body = copy_of(SEC, src, namespace="mirror", policy_uid="uid-1", origin="primary/ml/tok")
    assert body["data"] == {"k": "dmFs"} and body["type"] == "Opaque"
    meta = body["metadata"]
    assert meta["namespace"] == "mirror" and "uid" not in meta and "resourceVersion" not in meta
    assert meta["labels"] == {"app": "vllm", MANAGED_BY: "overspill", POLICY_UID: "uid-1"}
    assert meta["annotations"][ORIGIN] == "primary/ml/tok"


def test_plan_defaults_copy_configmaps_and_serviceaccount_but_not_secrets() -> None:
    refs = [Reference(CM, "cm", "w"), Reference(SA, "sa", "w"), Reference(SEC, "tok", "w")]
    prim = {
        (CM, "cm"): source(CM, "cm", data={"a": "1"}),
        (SA, "sa"): source(SA, "sa"),
        (SEC, "tok"): source(SEC, "tok", data={}),
    }
    p = run_plan(refs, prim, {})
    assert {(i.ref.name, i.state) for i in p.items} == {
        ("cm", State.TO_COPY),
        ("sa", State.TO_COPY),
        ("tok", State.MISSING),
    }
    assert not p.ready
    msg = describe("aws", "ml", p.blocking)
    assert "Secret ml/tok" in msg and "spec.propagation.secrets: true" in msg and "dmFs" not in msg


def test_plan_with_secrets_on_copies_them() -> None:
    p = run_plan(
        [Reference(SEC, "tok", "w")], {(SEC, "tok"): source(SEC, "tok", data={"k": "v"})}, {}, Propagation(secrets=True)
    )
    assert p.ready and [i.state for i in p.items] == [State.TO_COPY]


def test_plan_current_copy_is_left_alone_and_a_changed_source_is_updated() -> None:
    src = source(CM, "cm", data={"a": "1"})
    copy_now = copy_of(CM, src, namespace="ml", policy_uid="uid-1", origin="primary/ml/cm")
    assert [i.state for i in run_plan([Reference(CM, "cm", "w")], {(CM, "cm"): src}, {(CM, "cm"): copy_now}).items] == [
        State.CARRIED
    ]
    edited = source(CM, "cm", data={"a": "2"})
    (item,) = run_plan([Reference(CM, "cm", "w")], {(CM, "cm"): edited}, {(CM, "cm"): copy_now}).items
    assert item.state == State.TO_COPY and item.body is not None and item.body["data"] == {"a": "2"}
    assert item.body["metadata"]["annotations"][SOURCE_HASH] != copy_now["metadata"]["annotations"][SOURCE_HASH]
    copy_now["metadata"]["resourceVersion"] = "41"
    (item,) = run_plan([Reference(CM, "cm", "w")], {(CM, "cm"): edited}, {(CM, "cm"): copy_now}).items
    assert item.body is not None and item.body["metadata"]["resourceVersion"] == "41"


def test_plan_never_takes_over_an_object_overspill_did_not_create() -> None:
    theirs = {"kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"team": "x"}}, "data": {"a": "theirs"}}
    p = run_plan([Reference(CM, "cm", "w")], {(CM, "cm"): source(CM, "cm", data={"a": "1"})}, {(CM, "cm"): theirs})
    assert [i.state for i in p.items] == [State.CONFLICT] and p.writes == () and not p.ready
    assert "not created by Overspill" in describe("aws", "ml", p.blocking)


def test_plan_shares_a_copy_made_for_another_policy_from_the_same_source() -> None:
    src = source(CM, "cm", data={"a": "1"})
    # one installation (the copy carries its mark): policies of another one never share, see test_carry_installation
    other = copy_of(CM, src, namespace="ml", policy_uid="uid-2", origin="primary/ml/cm", installation="primary/k1")
    (item,) = run_plan(
        [Reference(CM, "cm", "w")], {(CM, "cm"): src}, {(CM, "cm"): other}, installation="primary/k1"
    ).items
    assert item.state == State.TO_COPY and item.body is not None  # joins the owners once, content unchanged
    assert owners(item.body) == {"uid-1", "uid-2"} and item.body["data"] == other["data"]


def test_plan_pvc_is_missing_unless_provided_in_the_target() -> None:
    ref = Reference(PVC, "models", "spec.volumes[models].persistentVolumeClaim")
    p = run_plan([ref], {}, {})
    assert [i.state for i in p.items] == [State.MISSING]
    assert "overrides.volumes" in describe("aws", "ml", p.blocking)
    assert run_plan([ref], {}, {(PVC, "models"): {"metadata": {"name": "models"}}}).ready


def test_plan_optional_absent_reference_does_not_block_and_missing_source_does() -> None:
    assert run_plan([Reference(CM, "opt", "w", optional=True)], {}, {}).ready
    p = run_plan([Reference(CM, "gone", "w")], {}, {})
    assert [i.state for i in p.items] == [State.NO_SOURCE] and "create it in the primary" in describe(
        "t", "ml", p.blocking
    )


def test_a_copy_outlives_no_consent_turning_propagation_off_revokes_it() -> None:
    src = source(SEC, "tok", data={"k": "v"})
    ours = copy_of(SEC, src, namespace="ml", policy_uid="uid-1", origin="primary/ml/tok")
    p = run_plan([Reference(SEC, "tok", "w")], {(SEC, "tok"): src}, {(SEC, "tok"): ours}, Propagation(secrets=False))
    assert [i.state for i in p.items] == [State.REVOKED] and p.revokes and not p.ready
    assert "removed now that its propagation is off" in describe("aws", "ml", p.blocking)
    theirs = {"metadata": {"name": "tok"}, "data": {"k": "x"}}  # provided by the target's admin: kept, used
    p = run_plan([Reference(SEC, "tok", "w")], {}, {(SEC, "tok"): theirs}, Propagation(secrets=False))
    assert [i.state for i in p.items] == [State.PROVIDED] and p.ready


def test_the_ci_runner_example_registers_in_the_secondary_with_a_distinct_name() -> None:
    from pathlib import Path

    import yaml

    from overspill.api import parse_policy_spec

    root = Path(__file__).resolve().parents[2] / "manifests/examples"
    dep = yaml.safe_load((root / "ci-runner-deployment.yaml").read_text())
    pol = next(
        d for d in yaml.safe_load_all((root / "ci-runner-policy.yaml").read_text()) if d["kind"] == "BurstPolicy"
    )
    spec = parse_policy_spec(pol["spec"])
    pod = dep["spec"]["template"]["spec"]
    refs = list(references(pod))
    assert {r.key for r in refs} == {(SA, "ci-runner"), (SEC, "ci-runner-registration")}
    sources = {r.key: source(r.kind, r.name) for r in refs}
    p = run_plan(refs, sources, {}, spec.propagation)
    assert p.ready and {i.state for i in p.items} == {State.TO_COPY}  # the token and the SA both travel
    prefixes = {t.name: (t.overrides.env or {}).get("RUNNER_NAME_PREFIX") for t in spec.targets if t.overrides}
    assert all(prefixes.values()) and len(set(prefixes.values())) == len(prefixes)
    assert "${RUNNER_NAME_PREFIX}${POD_NAME}" in " ".join(pod["containers"][0]["args"])


def test_a_policy_without_consent_never_revokes_another_policys_copy() -> None:
    """Review break 5: uid-1 (secrets: false) shares the Secret uid-2 copied with consent: it is provided to uid-1,
    never removed by it (before, uid-1 deleted it every poll and uid-2 recreated it: a fight without end)."""
    src = source(SEC, "tok", data={"k": "v"})
    theirs = copy_of(SEC, src, namespace="ml", policy_uid="uid-2", origin="primary/ml/tok")
    p = run_plan([Reference(SEC, "tok", "w")], {}, {(SEC, "tok"): theirs}, Propagation(secrets=False))
    assert [i.state for i in p.items] == [State.PROVIDED] and p.revokes == () and p.ready


def test_a_shared_copy_lists_every_owner_and_the_last_one_removes_it() -> None:
    src = source(SEC, "tok", data={"k": "v"})
    theirs = copy_of(SEC, src, namespace="ml", policy_uid="uid-2", origin="primary/ml/tok", installation="p/k1")
    theirs["metadata"]["resourceVersion"] = "7"
    # uid-1 needs it too: it joins the owners (a write), so uid-2 leaving later does not take it away
    (item,) = run_plan(
        [Reference(SEC, "tok", "w")],
        {(SEC, "tok"): src},
        {(SEC, "tok"): theirs},
        Propagation(secrets=True),
        installation="p/k1",
    ).items
    assert item.state == State.TO_COPY and item.body is not None and item.update
    assert owners(item.body) == {"uid-1", "uid-2"} and item.body["metadata"]["resourceVersion"] == "7"
    assert item.body["metadata"]["labels"][POLICY_UID] == "uid-2"  # the creator's label stays
    shared = item.body
    assert [
        i.state
        for i in run_plan(
            [Reference(SEC, "tok", "w")], {(SEC, "tok"): src}, {(SEC, "tok"): shared}, Propagation(secrets=True)
        ).items
    ] == [State.CARRIED]
    # uid-1 withdraws its consent: it leaves the owners, the copy stays for uid-2
    (item,) = run_plan([Reference(SEC, "tok", "w")], {}, {(SEC, "tok"): shared}, Propagation(secrets=False)).items
    assert item.state == State.LEFT and item.body is not None and owners(item.body) == {"uid-2"}
    # the last owner withdrawing removes it, on the condition that it is still the object that was read
    mine = copy_of(SEC, src, namespace="ml", policy_uid="uid-1", origin="primary/ml/tok")
    mine["metadata"].update(uid="abc", resourceVersion="12")
    (item,) = run_plan([Reference(SEC, "tok", "w")], {}, {(SEC, "tok"): mine}, Propagation(secrets=False)).items
    assert item.state == State.REVOKED and item.precondition == ("abc", "12")


def test_who_shares_a_copy_is_what_the_mirrors_there_use_not_the_annotation_alone() -> None:
    """Review break: the owners annotation alone decided. Stripped by hand (only the creator's label left), the
    creator withdrawing deleted a copy another policy's mirror still used; naming a policy released by hand, it
    kept a Secret copy after its last user had gone. Now the sharers are the policies whose mirrors in the
    namespace use the copy (directly or through their ServiceAccount), or that the annotation lists and that still
    have a mirror there."""
    src = source(SEC, "tok", data={"k": "v"})
    key = (SEC, "tok")
    stripped = copy_of(SEC, src, namespace="ml", policy_uid="uid-1", origin="primary/ml/tok", also_owned_by=["uid-2"])
    del stripped["metadata"]["annotations"][OWNERS]
    used = Observed(users={key: frozenset({"uid-1", "uid-2"})}, present=frozenset({"uid-1", "uid-2"}))

    def revoke(there: dict[str, Any], observed: Observed | None) -> Any:
        (item,) = plan(
            [Reference(SEC, "tok", "w")],
            Propagation(secrets=False),
            Sources(primary={}, target={key: there}, observed=observed),
            namespace="ml",
            policy_uid="uid-1",
            origin_cluster="primary",
            origin_namespace="ml",
        ).items
        return item

    item = revoke(stripped, used)
    assert item.state == State.LEFT and item.body is not None and owners(item.body) == {"uid-2"}
    ghost = copy_of(SEC, src, namespace="ml", policy_uid="uid-1", origin="primary/ml/tok", also_owned_by=["gone"])
    alone = Observed(users={key: frozenset({"uid-1"})}, present=frozenset({"uid-1"}))
    assert revoke(ghost, alone).state == State.REVOKED  # "gone" has no mirror here: nobody else uses it
    assert revoke(ghost, None).state == State.LEFT  # nothing observed (no view in sync): the annotation decides


def test_users_are_found_in_mirror_templates_and_through_their_service_account() -> None:
    mirror = {
        "metadata": {"name": "vllm", "labels": {POLICY_UID: "uid-2"}},
        "spec": {
            "template": {
                "spec": {
                    "serviceAccountName": "runner",
                    "containers": [{"envFrom": [{"configMapRef": {"name": "cfg"}}]}],
                }
            }
        },
    }
    sa = {"metadata": {"name": "runner"}, "imagePullSecrets": [{"name": "regcred"}]}
    seen = observe_users([mirror], lambda name: sa if name == "runner" else None)
    assert seen.users == {
        (CM, "cfg"): {"uid-2"},
        (SA, "runner"): {"uid-2"},
        (SEC, "regcred"): {"uid-2"},
    }
    assert seen.present == {"uid-2"}
    gone = {**mirror, "metadata": {**mirror["metadata"], "deletionTimestamp": "2026-11-29T00:00:00Z"}}
    assert observe_users([gone], lambda _: sa).users == {}

"""A copy the template no longer names (a rename, a volume replaced) is removed: it must not outlive its use."""

from __future__ import annotations

from typing import Any

from overspill import carry
from overspill.api.policy import Propagation
from overspill.carry import Kind, Observed, Reference, State

UID = "uid-a"


def copy_(kind: Kind, name: str, owners: str = UID, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": f"u-{name}",
            "resourceVersion": "3",
            "labels": {carry.MANAGED_BY: carry.MANAGER, carry.POLICY_UID: owners.split(",", maxsplit=1)[0]},
            "annotations": {carry.ORIGIN: f"primary/ml/{name}", carry.OWNERS: owners, carry.SOURCE_HASH: "h"},
        },
        **extra,
    }


def plan(refs: list[Reference], copies: dict[tuple[Kind, str], Any], observed: Observed | None, **prop: bool) -> Any:
    target = {r.key: copies.get(r.key) for r in refs}
    primary = {r.key: {"metadata": {"name": r.name}, "data": {}} for r in refs}
    found = carry.Sources(primary=primary, target=target, observed=observed, copies=copies)
    return carry.plan(
        refs,
        Propagation(**prop),
        found,
        namespace="ml",
        policy_uid=UID,
        origin_cluster="primary",
        origin_namespace="ml",
    )


def states(p: Any) -> dict[str, State]:
    return {i.ref.name: i.state for i in p.items}


def test_a_renamed_configmap_copy_goes_once_the_mirror_no_longer_names_it() -> None:
    refs = [Reference(Kind.CONFIG_MAP, "cfg-v2", "spec.volumes[c].configMap")]
    copies = {(Kind.CONFIG_MAP, "cfg"): copy_(Kind.CONFIG_MAP, "cfg")}
    in_use = Observed({(Kind.CONFIG_MAP, "cfg"): frozenset({UID})}, frozenset({UID}))
    assert "cfg" not in states(plan(refs, copies, in_use))  # the mirror there still mounts it: kept this poll
    assert "cfg" not in states(plan(refs, copies, None))  # who uses it unknown: kept
    p = plan(refs, copies, Observed(present=frozenset({UID})))
    assert states(p)["cfg"] == State.STALE and p.ready
    stale = next(i for i in p.revokes if i.ref.name == "cfg")
    assert stale.precondition == ("u-cfg", "3")


def test_a_renamed_secret_copy_goes_at_once_when_secrets_are_off() -> None:
    refs = [Reference(Kind.SECRET, "hf2", "env")]
    copies = {(Kind.SECRET, "hf"): copy_(Kind.SECRET, "hf"), (Kind.SECRET, "hf2"): copy_(Kind.SECRET, "hf2")}
    in_use = Observed({(Kind.SECRET, "hf"): frozenset({UID})}, frozenset({UID}))
    got = states(plan(refs, copies, in_use, secrets=False))
    assert got == {"hf2": State.REVOKED, "hf": State.STALE}


def test_a_stale_copy_another_policy_uses_only_loses_this_owner() -> None:
    refs: list[Reference] = []
    copies = {(Kind.CONFIG_MAP, "cfg"): copy_(Kind.CONFIG_MAP, "cfg", owners=f"{UID},uid-b")}
    p = plan(refs, copies, Observed({(Kind.CONFIG_MAP, "cfg"): frozenset({"uid-b"})}, frozenset({UID, "uid-b"})))
    (item,) = p.revokes
    assert item.state == State.LEFT and item.body is not None
    assert item.body["metadata"]["annotations"][carry.OWNERS] == "uid-b"


def test_copies_of_others_and_pull_secrets_of_the_carried_service_account_are_not_stale() -> None:
    refs = [Reference(Kind.SERVICE_ACCOUNT, "runner", "spec.serviceAccountName")]
    sa = copy_(Kind.SERVICE_ACCOUNT, "runner", imagePullSecrets=[{"name": "pull"}])
    copies = {
        (Kind.SERVICE_ACCOUNT, "runner"): sa,
        (Kind.SECRET, "pull"): copy_(Kind.SECRET, "pull"),
        (Kind.CONFIG_MAP, "theirs"): copy_(Kind.CONFIG_MAP, "theirs", owners="uid-b"),
    }
    got = states(plan(refs, copies, Observed(present=frozenset({UID})), secrets=True))
    assert "pull" not in got and "theirs" not in got

"""Review 9c (adversarial): a copy another Overspill installation made is overwritten as if it were ours."""

from __future__ import annotations

from overspill import carry
from overspill.api.policy import Propagation
from overspill.carry import Kind, Reference, State


def test_a_copy_made_by_another_overspill_installation_is_a_conflict_not_ours_to_overwrite() -> None:
    """Two regions each run Overspill (clusterName left at its default "primary", undocumented) and burst into one
    shared GPU cluster, namespace ml. Region B's copy of Secret hf (its own token, policy uid-b) is there. Region
    A's policy uid-a, whose template names its own Secret hf, plans an update over it: is_copy_for() accepts any
    managed copy whose origin string "primary/ml/hf" matches. B's pods then run with A's token, and the two
    operators overwrite each other every poll."""
    theirs = {
        "metadata": {
            "name": "hf",
            "namespace": "ml",
            "uid": "x",
            "resourceVersion": "7",
            "labels": {carry.MANAGED_BY: carry.MANAGER, carry.POLICY_UID: "uid-b"},
            "annotations": {carry.ORIGIN: "primary/ml/hf", carry.OWNERS: "uid-b", carry.SOURCE_HASH: "b"},
        },
        "data": {"t": "Qg=="},
    }
    ours = {"metadata": {"name": "hf", "namespace": "ml"}, "data": {"t": "QQ=="}}
    ref = Reference(Kind.SECRET, "hf", "env")
    found = carry.Sources(primary={ref.key: ours}, target={ref.key: theirs}, observed=carry.Observed())
    plan = carry.plan(
        [ref],
        Propagation(secrets=True),
        found,
        namespace="ml",
        policy_uid="uid-a",
        origin_cluster="primary",
        origin_namespace="ml",
    )
    assert plan.items[0].state == State.CONFLICT, plan.items[0]


def test_an_mcs_conflict_that_still_exports_keeps_the_targets_weight() -> None:
    """MCS API (KEP-1645): Conflict=True reports conflicting properties across exporting clusters, resolved by the
    oldest export; the service stays exported (Valid=True, Ready=True). Overspill reads any Conflict=True as not
    Exported, so the target's weight is 0 and its Ready replicas (paid GPUs) serve nobody, with no hint that
    traffic could flow."""
    from overspill.adapters.traffic import export_state

    obj = {
        "status": {
            "conditions": [
                {"type": "Valid", "status": "True"},
                {"type": "Ready", "status": "True"},
                {"type": "Conflict", "status": "True", "reason": "PortConflict", "message": "port 80 name differs"},
            ]
        }
    }
    assert export_state(obj).state == "Exported", export_state(obj)

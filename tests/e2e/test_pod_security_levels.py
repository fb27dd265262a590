"""The Pod Security level of the namespaces Overspill created in a target, kept on real API servers (issue 10:
tenancy). Both tests are review 10d's (branch rev10d), which failed on main when written: the level was set once,
at creation, and never looked at again."""

from __future__ import annotations

import time

from kubernetes import client

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import burst

ENFORCE = "pod-security.kubernetes.io/enforce"
TARGET = "secondary"  # manifests/examples/lab-bursttarget.yaml


def _set_pod_security(lab: Lab, level: str | None) -> None:
    client.CustomObjectsApi(lab.primary).patch_cluster_custom_object(
        "overspill.dev", "v1alpha1", "bursttargets", TARGET, {"spec": {"podSecurity": level}}
    )


def test_a_tightened_pod_security_level_reaches_the_namespaces_overspill_created(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    """The administrator raises the BurstTarget's podSecurity from baseline to restricted. The namespace Overspill
    created in the secondary for the burst keeps enforcing baseline: the mirror's pods (and every replica added
    later, e.g. after a template change) are admitted at baseline, which restricted would refuse. The same holds
    when someone removes the enforce label from that namespace by hand: nothing notices or puts it back."""
    burst(lab, namespace)
    core = client.CoreV1Api(lab.secondary)
    assert core.read_namespace(namespace).metadata.labels[ENFORCE] == "baseline"
    try:
        _set_pod_security(lab, "restricted")
        eventually(
            lambda: core.read_namespace(namespace).metadata.labels.get(ENFORCE) == "restricted",
            30,
            what=f"namespace {namespace} (created by Overspill) enforcing the target's new level, restricted",
        )
    finally:
        _set_pod_security(lab, None)  # back to the default for the other tests
        # the operator reads the target's spec each probe (5 s): a namespace the next test bursts into before that
        # would be created at restricted, and labels are only ever raised
        time.sleep(12)


def test_pod_security_labels_overwritten_on_a_namespace_overspill_created_are_put_back(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    """Someone with rights in the secondary relaxes the namespace Overspill created for the burst
    (pod-security.kubernetes.io/enforce: privileged). Mirrors there are drift-corrected within a poll; the
    namespace's Pod Security labels, the other half of the tenancy promise, are never looked at again: pods the
    BurstTarget's level (baseline) refuses are admitted there from then on."""
    burst(lab, namespace)
    core = client.CoreV1Api(lab.secondary)
    assert core.read_namespace(namespace).metadata.labels[ENFORCE] == "baseline"
    core.patch_namespace(namespace, {"metadata": {"labels": {ENFORCE: "privileged"}}})
    eventually(
        lambda: core.read_namespace(namespace).metadata.labels.get(ENFORCE) == "baseline",
        30,
        what=f"namespace {namespace} (created by Overspill) enforcing the target's level again",
    )

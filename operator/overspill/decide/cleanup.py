"""What to do with a policy's objects that its spec no longer wants (pure).

Objects are found by the policy's labels in every known target, never from the current spec: a target dropped
from the spec, a changed `overrides.namespace` or `workloadRef.name`, or a deleted policy all leave objects the
spec no longer names. Those are drained first (a busy runner is never removed; an inference replica goes only
when the replicas that replace it are Ready), then deleted. What they carry (copied ConfigMaps, Secrets, a
ServiceAccount, Services) goes once no mirror of the policy is left beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MIRROR_KIND = "Deployment"


@dataclass(frozen=True)
class Owned:
    """One object carrying the policy's uid label, as a target's view holds it."""

    target: str
    kind: str
    namespace: str
    name: str
    replicas: int = 0  # mirrors: spec.replicas
    hold: int = 0  # mirrors: pods that must not be removed now (busy, or busy level unknown)

    @property
    def place(self) -> tuple[str, str]:
        return (self.target, self.namespace)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target, self.namespace, self.name)


@dataclass(frozen=True)
class Step:
    owned: Owned
    delete: bool
    replicas: int = 0  # when not deleting: scale the mirror to this


def plan(owned: Iterable[Owned], wanted: set[tuple[str, str, str]], *, release_ready: bool) -> list[Step]:
    """Steps for the unwanted objects. `wanted` holds (target, namespace, name) of the mirrors the spec wants;
    `release_ready`: the replicas the policy wants elsewhere are Ready, so serving ones may go (inference);
    CI runners pass True and rely on `hold`."""
    items = list(owned)
    mirrors = [o for o in items if o.kind == MIRROR_KIND]
    wanted_places = {(t, ns) for t, ns, _ in wanted}
    steps: list[Step] = []
    remaining: set[tuple[str, str]] = set(wanted_places)
    for m in mirrors:
        if m.key in wanted:
            continue
        floor = min(m.replicas, m.hold) if release_ready else m.replicas
        if m.replicas == 0:
            steps.append(Step(m, delete=True))
            continue
        if floor < m.replicas:
            steps.append(Step(m, delete=False, replicas=floor))
        remaining.add(m.place)
    for o in items:
        if o.kind != MIRROR_KIND and o.place not in remaining:
            steps.append(Step(o, delete=True))
    return steps

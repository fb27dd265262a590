"""HTTPRoute weights from Ready replicas per side (pure): the local Service against one ServiceImport per target.

Each target exports its burst Service under its own name (`<exportName>-<target>`), so the route holds one
ServiceImport backendRef per target, in that target's namespace. With one import shared by all targets (MCS merges
the endpoints of every cluster exporting a name), one secondary's weight could not go to 0 alone: removing its
replicas would drop requests the shared import still sends them.

Make-before-break includes traffic: a replica counts for its target only while it is Ready, reachable (its export
is Exported) AND kept by the placement. A target's replicas shrink only in a poll after its weight was lowered to
match (`held`), and never while the route cannot be read or written (the caller holds everything then).

Which backendRefs are the policy's: those the route's record says Overspill wrote for it (an annotation per
policy on the route, written in the same request as the weights), and those the current spec's naming rule
builds. The record survives what the naming rule does not (a changed `exportName` or `importGroup`, a renamed or
removed BurstTarget, a route the spec no longer names), so a backendRef of the policy's the spec no longer wants is
always found, set to 0, and removed once drained. It also holds, per backendRef, since when its weight is 0: the
replicas behind it stay until it has been 0 for the policy's drain time, across operator restarts.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from overspill.api.policy import Traffic

MCS_GROUP = "multicluster.x-k8s.io"
SERVICE_IMPORT = "ServiceImport"
_NAME_MAX = 63  # a Service name is a DNS label
# the least weight the local Service and the burst imports split beside a canary: shares in steps of 2 %
_MIN_SPLIT = 50
WEIGHT_MAX = 1_000_000  # Gateway API: HTTPBackendRef.weight is at most 1,000,000
BACKEND_REFS_MAX = 16  # Gateway API: an HTTPRouteRule holds at most 16 backendRefs (the API server refuses more)


@dataclass(frozen=True)
class Backend:
    """One target's ServiceImport as the route names it."""

    target: str
    name: str
    namespace: str


Key = tuple[str, str, str]  # (group, namespace, name) of a ServiceImport backendRef


@dataclass(frozen=True)
class Recorded:
    """One backendRef Overspill wrote for the policy: for which target, and since when its weight is 0 (None: it
    has weight; 0.0: it never had any since it was added)."""

    target: str
    zero_since: float | None = None
    # the policy's spec.traffic.drainSeconds when it was written: a drain started with it keeps it even when the
    # spec that said so is gone (spec.traffic removed, the policy deleted); None: written before it was recorded
    drain: float | None = None


Record = Mapping[Key, Recorded]
# spec.traffic.drainSeconds' default: for a record written without its drain time (by an older Overspill)
DEFAULT_DRAIN = float(Traffic.model_fields["drain_seconds"].default)


def drain_of(seen: Recorded | None, drain: float | None) -> float:
    """The drain time for one backendRef: the spec's when it has one (`drain`), else the one recorded with it."""
    if drain is not None:
        return drain
    return seen.drain if seen is not None and seen.drain is not None else DEFAULT_DRAIN


def parse_record(text: str | None) -> dict[Key, Recorded]:
    """The record as written by `dump_record`; anything unreadable (edited by hand) counts as no record: the naming
    rule still finds the backendRefs the spec builds."""
    try:
        items = json.loads(text or "[]")
        return {
            (str(i["group"]), str(i["namespace"]), str(i["name"])): Recorded(
                str(i["target"]),
                None if i.get("zeroSince") is None else float(i["zeroSince"]),
                None if i.get("drainSeconds") is None else float(i["drainSeconds"]),
            )
            for i in items
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def dump_record(record: Record) -> str | None:
    """The annotation's text (sorted: the same record always writes the same text); None: no entry left."""
    if not record:
        return None
    items = [
        {"group": k[0], "namespace": k[1], "name": k[2], "target": v.target, "zeroSince": v.zero_since}
        | ({"drainSeconds": v.drain} if v.drain is not None else {})
        for k, v in sorted(record.items())
    ]
    return json.dumps(items, separators=(",", ":"))


@dataclass(frozen=True)
class Weights:
    local: int
    burst: Mapping[str, int] = field(default_factory=dict)  # per target

    @property
    def burst_total(self) -> int:
        return sum(self.burst.values())


def backend_name(base: str, target: str) -> str:
    """The burst Service's (and its export's, and so its ServiceImport's) name in one target: `<base>-<target>`,
    a valid DNS label (dots become dashes; too long: cut, with a hash of the target so names stay distinct)."""
    name = f"{base}-{target}".lower().replace(".", "-")
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(target.encode()).hexdigest()[:8]
    return f"{name[: _NAME_MAX - 9].rstrip('-')}-{digest}"


def kept_ready(ready: Mapping[str, int], planned: Mapping[str, int]) -> dict[str, int]:
    """Ready secondary replicas that the placement keeps: min(Ready now, planned) per target."""
    return {name: min(max(0, n), max(0, planned.get(name, 0))) for name, n in ready.items()}


def weights(primary_ready: int, burst_kept_ready: Mapping[str, int]) -> Weights:
    """Proportional to Ready replicas. With nothing Ready anywhere, all weight stays local: a route whose weights
    are all 0 answers every request with an error, a local weight of 1 at least reaches pods as they come up."""
    local = max(0, primary_ready)
    burst = {t: max(0, n) for t, n in burst_kept_ready.items()}
    if local + sum(burst.values()) == 0:
        return Weights(local=1, burst=dict.fromkeys(burst, 0))
    return Weights(local=local, burst=burst)


def _is_local(ref: Mapping[str, Any], service: str, namespace: str) -> bool:
    return (
        ref.get("group", "") in ("", None)
        and ref.get("kind", "Service") == "Service"
        and ref.get("name") == service
        and ref.get("namespace", namespace) == namespace
    )


def _import(ref: Mapping[str, Any], group: str) -> bool:
    return ref.get("group") == group and ref.get("kind") == SERVICE_IMPORT


def _key(ref: Mapping[str, Any], namespace: str) -> Key:
    return (str(ref.get("group") or ""), str(ref.get("namespace") or namespace), str(ref.get("name") or ""))


def _ours(
    ref: Mapping[str, Any],
    names: Mapping[str, str],
    group: str,
    record: Record | None = None,
    namespace: str = "",
) -> str | None:
    """The target whose ServiceImport this backendRef names: as recorded when Overspill wrote it, else by the
    current naming rule (every known target's name, and the one shared name used before per-target imports,
    keyed ""); None when it is not one of the policy's."""
    if ref.get("kind") != SERVICE_IMPORT:
        return None
    seen = (record or {}).get(_key(ref, namespace))
    if seen is not None:
        return seen.target
    if not _import(ref, group):
        return None
    return next((t for t, n in names.items() if n == ref.get("name")), None)


def _drained(ref: Mapping[str, Any], record: Record | None, namespace: str, now: float, drain: float | None) -> bool:
    """At weight 0 for at least the drain time (`drain_of`; since when, as recorded): the backendRef may leave the
    route, the replicas behind it may go."""
    if _weight(ref) != 0:
        return False
    seen = (record or {}).get(_key(ref, namespace))
    if drain_of(seen, drain) <= 0:
        return True
    return seen is not None and seen.zero_since is not None and now - seen.zero_since >= drain_of(seen, drain)


def _wanted(ref: Mapping[str, Any], backends: Sequence[Backend], namespace: str) -> Backend | None:
    return next(
        (b for b in backends if ref.get("name") == b.name and ref.get("namespace", namespace) == b.namespace), None
    )


def _weight(ref: Mapping[str, Any]) -> int:
    return int(ref.get("weight", 1))


def _apportion(budget: int, raw: Sequence[int]) -> list[int]:
    """`budget` split in proportion to `raw` (largest remainder, ties to the first): the parts sum to `budget`."""
    total = sum(raw)
    if total == 0:
        return [budget, *[0] * (len(raw) - 1)] if raw else []
    parts = [budget * r // total for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(budget * raw[i] % total), i))
    for i in order[: budget - sum(parts)]:
        parts[i] += 1
    return parts


def _keep_foreign_share(
    before: Sequence[Mapping[str, Any]],
    after: list[dict[str, Any]],
    ours: Sequence[dict[str, Any]],
    peer: Callable[[Mapping[str, Any]], bool] = lambda _: False,
) -> None:
    """Other backends in the local rule (a canary) keep the share of the rule's weight they had: the local Service
    and the policy's imports split, in proportion to their Ready replicas, the weight the local Service and the
    imports held together before. Too little weight to split (1 and 1): every weight of the rule is first scaled
    by one factor, which leaves every share as it was. Another policy's backendRefs (`peer`) are no canary: they
    are weighted in Ready replicas by that policy, as these are by this one, and are left out of the split."""
    foreign = [r for r in after if not any(r is o for o in ours) and not peer(r)]
    if not foreign or sum(_weight(r) for r in foreign) == 0:
        return  # nothing else receives requests here: the weights are the Ready replicas themselves
    peers = sum(_weight(r) for r in before if peer(r))
    had = sum(_weight(r) for r in before) - sum(_weight(r) for r in foreign) - peers
    if had <= 0:
        for r in ours:
            r["weight"] = 0  # everything went to the others: it stays so
        return
    raws = [_weight(r) for r in ours]
    need = _MIN_SPLIT
    if any(raws):  # every backend with Ready replicas gets at least 1: a paid-for replica must serve
        need = max(need, -(-sum(raws) // min(x for x in raws if x > 0)))
    scale = -(-need // had) if had < need else 1
    # never past the Gateway API's maximum weight (the route would be refused and every secondary held)
    scale = max(1, min(scale, WEIGHT_MAX // max([_weight(r) for r in foreign] + [had, 1])))
    for r in foreign:
        r["weight"] = _weight(r) * scale
    for r, part in zip(ours, _apportion(had * scale, [_weight(r) for r in ours]), strict=True):
        r["weight"] = part


def _over_limit(size: int, leaving: Sequence[dict[str, Any]], wanted: Sequence[dict[str, Any]]) -> list[Any]:
    """The backendRefs to leave out so that a rule of `size` holds at most BACKEND_REFS_MAX (a longer rule is
    refused whole: no weight would change, every secondary would be held). First the policy's leaving ones (at 0
    anyway; the record keeps their drain time, so the replicas behind them stay for it), then the wanted imports
    with the least weight (added now before those already there). Others' backendRefs and the local Service stay."""
    over = size - BACKEND_REFS_MAX
    if over <= 0:
        return []
    order = sorted(range(len(wanted)), key=lambda i: (_weight(wanted[i]), -i))
    return [*leaving, *(wanted[i] for i in order)][:over]


def left_out(
    rules: Sequence[Mapping[str, Any]], backends: Sequence[Backend], *, namespace: str, group: str = MCS_GROUP
) -> list[str]:
    """Targets holding replicas whose import no rule names (left out by the backendRef limit): they get no
    requests through this route."""
    refs = [r for rule in rules for r in rule.get("backendRefs") or [] if _import(r, group)]
    return sorted(b.target for b in backends if not any(_wanted(r, [b], namespace) for r in refs))


def route_rules(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    service: str,
    backends: Sequence[Backend],
    names: Mapping[str, str],
    w: Weights,
    group: str = MCS_GROUP,
    record: Record | None = None,
    now: float = 0.0,
    drain: float | None = 0.0,
    peers: Collection[Key] = (),
) -> list[dict[str, Any]]:
    """The route's rules with the local and each target's backendRef weighted; a target's ServiceImport
    backendRef is added next to the local one where missing. Backend refs of the policy that no target wants
    (`names`: every known target's import name; a target dropped from the spec, a moved namespace) go to weight 0
    first and are removed at a later write that finds them drained (at 0 for `drain` seconds, as `record` says), in
    every rule (one without the local Service too). Other backends keep their weights, and in the local rule their
    share (see `_keep_foreign_share`), except another policy's (`peers`: the keys its record and its local
    Service have on the route), which that policy weights."""
    out = []
    for rule in rules:
        new = copy.deepcopy(dict(rule))
        refs = new.get("backendRefs") or []
        local = [r for r in refs if _is_local(r, service, namespace)]
        kept: list[dict[str, Any]] = []
        ours: list[dict[str, Any]] = []
        wanted: list[dict[str, Any]] = []  # the policy's imports of targets holding replicas
        leaving: list[dict[str, Any]] = []  # the policy's backendRefs no target wants (draining at 0)
        for r in refs:
            if _is_local(r, service, namespace):
                r["weight"] = w.local
                ours.append(r)
            elif (b := _wanted(r, backends, namespace)) is not None and _import(r, group):
                r["weight"] = w.burst.get(b.target, 0)
                ours.append(r)
                wanted.append(r)
            elif _ours(r, names, group, record, namespace) is not None:
                if _drained(r, record, namespace, now, drain):
                    continue  # drained since an earlier write: it goes now
                r["weight"] = 0
                ours.append(r)
                leaving.append(r)
            kept.append(r)
        if not local:
            new["backendRefs"] = kept
            out.append(new)
            continue
        for b in backends:
            if not any(_import(r, group) and _wanted(r, [b], namespace) for r in kept):
                burst: dict[str, Any] = {"group": group, "kind": SERVICE_IMPORT, "name": b.name}
                if b.namespace != namespace:
                    burst["namespace"] = b.namespace
                if "port" in local[0]:
                    burst["port"] = local[0]["port"]
                burst["weight"] = w.burst.get(b.target, 0)
                kept.append(burst)
                ours.append(burst)
                wanted.append(burst)
        cut = _over_limit(len(kept), leaving, wanted)
        kept = [r for r in kept if not any(r is c for c in cut)]
        ours = [r for r in ours if not any(r is c for c in cut)]
        _keep_foreign_share(
            rule.get("backendRefs") or [],
            kept,
            ours,
            lambda r: _key(r, namespace) in peers and not _is_local(r, service, namespace),
        )
        new["backendRefs"] = kept
        out.append(new)
    return out


def burst_weights(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    names: Mapping[str, str],
    group: str = MCS_GROUP,
    record: Record | None = None,
) -> dict[str, int]:
    """Per target, the highest weight of its backendRefs of the policy's, wanted or not, in any rule."""
    burst: dict[str, int] = {}
    for rule in rules:
        for r in rule.get("backendRefs") or []:
            target = _ours(r, names, group, record, namespace)
            if target is not None:
                burst[target] = max(burst.get(target, 0), _weight(r))
    return burst


def current(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    service: str,
    names: Mapping[str, str],
    group: str = MCS_GROUP,
    record: Record | None = None,
) -> Weights | None:
    """The weights the route holds now: the local Service's (in the first rule that has it), and per target the
    highest of its backendRefs (`burst_weights`); None if no rule has the local Service."""
    local = next(
        (_weight(r) for rule in rules for r in rule.get("backendRefs") or [] if _is_local(r, service, namespace)),
        None,
    )
    if local is None:
        return None
    burst = burst_weights(rules, namespace=namespace, names=names, group=group, record=record)
    return Weights(local=local, burst=burst)


def sends_to_burst(
    rules: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    group: str = MCS_GROUP,
    record: Record | None = None,
    namespace: str = "",
) -> bool:
    """Any backendRef of the policy's, in any rule, with a weight above 0."""
    return any(
        _ours(r, names, group, record, namespace) is not None and _weight(r) > 0
        for rule in rules
        for r in rule.get("backendRefs") or []
    )


def without_burst(
    rules: Sequence[Mapping[str, Any]],
    *,
    names: Mapping[str, str],
    group: str = MCS_GROUP,
    record: Record | None = None,
    namespace: str = "",
    now: float = 0.0,
    drain: float | None = 0.0,
) -> list[dict[str, Any]]:
    """The policy is going (or its route, or its workload): every backendRef of the policy's goes to weight 0, and
    one drained (at 0 for `drain` seconds) is removed. Calls a drain time apart empty the route of them."""
    out = []
    for rule in rules:
        new = copy.deepcopy(dict(rule))
        refs = new.get("backendRefs")
        if refs:
            kept = []
            for r in refs:
                if _ours(r, names, group, record, namespace) is not None:
                    if _drained(r, record, namespace, now, drain):
                        continue
                    r["weight"] = 0
                kept.append(r)
            new["backendRefs"] = kept
        out.append(new)
    return out


def record_after(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    names: Mapping[str, str],
    group: str,
    record: Record | None,
    now: float,
    drain: float | None = None,
) -> dict[Key, Recorded]:
    """The record to write with `after`: every backendRef of the policy's it holds, for its target, with since when
    its weight is 0. One added at 0 never had weight (0.0); one found at 0 that the record does not know (written
    by an older Overspill, or by hand) drains from now. Each keeps the drain time: `drain` (the spec's), or, when
    None (no spec.traffic any more), the one recorded."""
    known = record or {}
    had = {_key(r, namespace) for rule in before for r in rule.get("backendRefs") or []}
    weighed = {_key(r, namespace) for rule in before for r in rule.get("backendRefs") or [] if _weight(r) > 0}
    weight: dict[Key, int] = {}
    target: dict[Key, str] = {}
    for rule in after:
        for r in rule.get("backendRefs") or []:
            t = _ours(r, names, group, known, namespace)
            if t is not None:
                k = _key(r, namespace)
                weight[k], target[k] = max(weight.get(k, 0), _weight(r)), t
    out = {}
    for k, gone in known.items():
        # left the route before its drain time was over (the backendRef limit, another writer): the record keeps
        # it until then, so the replicas behind it stay for the drain time
        zero = now if k in weighed else gone.zero_since
        if k not in weight and zero and now - zero < drain_of(gone, drain):
            out[k] = Recorded(gone.target, zero, drain if drain is not None else gone.drain)
    for k, w in weight.items():
        seen = known.get(k)
        if w > 0:
            since: float | None = None
        elif k in weighed:  # it had weight until this write (ours, or put back by another writer): drains from now
            since = now
        elif seen is not None and seen.zero_since is not None:
            since = seen.zero_since
        else:
            since = now if seen is not None or k in had else 0.0
        out[k] = Recorded(target[k], since, drain if drain is not None else seen.drain if seen is not None else None)
    return out


def draining(record: Record, now: float, drain: float | None) -> dict[str, float]:
    """Targets with a backendRef at 0 for less than the drain time (`drain_of`), and the seconds left: the gateway
    may still send requests there (it takes time to program a route), so nothing behind it is removed yet."""
    out: dict[str, float] = {}
    for seen in record.values():
        if seen.zero_since is not None and now - seen.zero_since < drain_of(seen, drain):
            left = drain_of(seen, drain) - (now - seen.zero_since)
            out[seen.target] = max(out.get(seen.target, 0.0), left)
    return out


def held(before: Weights | None, now: Weights | None, targets: Collection[str]) -> set[str]:
    """Targets whose replicas must not shrink in this poll: their weight was lowered by this poll's write, so
    requests leave a replica before the replica leaves (make-before-break for traffic)."""
    was = before.burst if before is not None else {}
    will = now.burst if now is not None else {}
    return {t for t in targets if will.get(t, 0) < was.get(t, 0)}

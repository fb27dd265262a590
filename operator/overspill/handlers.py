"""Kopf handlers: parse the body once, call the reconciler, write status, post Events. Nothing else.

Run with `kopf run -m overspill.handlers` or `overspill run`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, cast

import kopf
from kubernetes.client import ApiException
from prometheus_client import start_http_server

from overspill import cadence, metrics, runtime
from overspill.adapters.kube import Cluster
from overspill.adapters.kubeconfig import KubeconfigRefused, build_client, remove_stale
from overspill.adapters.namespaces import ALIGN_EVERY, ALIGN_REFUSED_EVERY, align_pod_security
from overspill.api import GROUP, VERSION, SpecError, parse_policy_spec, parse_target_spec
from overspill.api.base import Condition
from overspill.api.policy import BurstPolicySpec, BurstPolicyStatus
from overspill.api.target import BurstTargetSpec, BurstTargetStatus
from overspill.decide.reasons import Reason
from overspill.decide.tenancy import pod_security_labels
from overspill.reconcile import Outcome, PolicyRef
from overspill.serving import SERVING_RESOURCES, raw_route_names
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import DEPLOYMENTS, PODS

_log = logging.getLogger(__name__)

POLICIES = "burstpolicies"
TARGETS = "bursttargets"
Log = logging.Logger | logging.LoggerAdapter[Any]


def rt(memo: Any) -> runtime.Runtime:
    found: runtime.Runtime = memo["runtime"]
    return found


@kopf.on.startup()
async def operator_startup(*, settings: kopf.OperatorSettings, memo: Any, logger: Log, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 32
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32))
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # retries are ours to report
    memo["runtime"] = runtime.build()
    stale = await asyncio.to_thread(remove_stale)
    if stale:
        logger.info("removed %d target credential directories left by operator processes that were killed", stale)
    peering = os.environ.get("OVERSPILL_PEERING")
    if peering:
        await asyncio.to_thread(_ensure_peering, memo["runtime"], peering)
    port = int(os.environ.get("OVERSPILL_METRICS_PORT", "9090"))
    if port:
        start_http_server(port, addr=os.environ.get("OVERSPILL_METRICS_ADDRESS", "0.0.0.0"))  # noqa: S104
    logger.info("Overspill started; metrics on :%s", port)


@kopf.on.cleanup()
async def operator_cleanup(*, memo: Any, **_: Any) -> None:
    writer = rt(memo).status_writer
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(writer.drain(), STATUS_DRAIN_SECONDS)
    await writer.close()


STATUS_DRAIN_SECONDS = 5.0  # the last decisions' statuses, bounded: a stopping operator must stop


def _ensure_peering(rtm: runtime.Runtime, name: str) -> None:
    """Kopf only patches its peering object: create it once, so standby replicas can coordinate."""
    body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
    try:
        rtm.primary.custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)
    except ApiException as err:
        if err.status != 409:
            raise


# ---- BurstTarget ---------------------------------------------------------------------------------------------


def _read_kubeconfig(rtm: runtime.Runtime, spec: BurstTargetSpec) -> tuple[str, str]:
    """(resourceVersion, kubeconfig text) from the Secret the administrator named; the text stays in memory."""
    ref = spec.kubeconfig_secret_ref
    secret = rtm.primary.core.read_namespaced_secret(ref.name, ref.namespace, _request_timeout=(3, 10))
    data = secret.data or {}
    if ref.key not in data:
        raise KeyError(f"Secret {ref.namespace}/{ref.name} has no key {ref.key!r}")
    rv = secret.metadata.resource_version if secret.metadata else ""
    return str(rv), base64.b64decode(data[ref.key]).decode()


def _patch_status(rtm: runtime.Runtime, plural: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
    api = rtm.primary.custom
    body = {"status": status}
    if namespace is None:
        api.patch_cluster_custom_object_status(GROUP, VERSION, plural, name, body, _request_timeout=(3, 10))
    else:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, body, _request_timeout=(3, 10)
        )


# The kubeconfig Secret is read again at most once a minute while the target answers (at once after a failed probe,
# or when the spec names another Secret): a probe every 15 s need not cost a GET of a Secret each time.
KUBECONFIG_REREAD = 60.0


def _probe(
    rtm: runtime.Runtime, name: str, spec: BurstTargetSpec, cache: dict[str, Any]
) -> tuple[bool, str, str | None, float | None]:
    """One probe: (ok, message, kubernetes version, latency ms). Messages never include Secret content."""
    handle = rtm.targets.get(name)
    source = (spec.kubeconfig_secret_ref, spec.allow_exec_auth)
    fresh = time.monotonic() - cache.get("read_at", -KUBECONFIG_REREAD) < KUBECONFIG_REREAD
    if fresh and cache.get("ok") and cache.get("source") == source and handle is not None and handle.view is not None:
        return _version(name, cache)  # a working client from the same Secret, read less than a minute ago
    try:
        rv, text = _read_kubeconfig(rtm, spec)
        cache["read_at"], cache["source"] = time.monotonic(), source
    except ApiException as err:
        return False, f"cannot read the kubeconfig Secret: HTTP {err.status} {err.reason}", None, None
    except (KeyError, UnicodeDecodeError, ValueError) as err:
        return (
            False,
            f"cannot read the kubeconfig Secret: {err.args[0] if err.args else type(err).__name__}",
            None,
            None,
        )
    except Exception as err:  # a timeout of the primary's API server: a failed probe, never a dead daemon
        return False, f"cannot read the kubeconfig Secret: {type(err).__name__}", None, None
    key = (rv, spec.allow_exec_auth)
    # a new kubeconfig, or a view that went with an invalid spec: build the client and its view again
    if cache.get("rv") != key or (handle is not None and handle.view is None):
        try:
            api, credentials = build_client(text, target=name, allow_exec=spec.allow_exec_auth)
        except KubeconfigRefused as err:  # names the field and the fix, never a value
            cache.pop("cluster", None)
            cache.pop("rv", None)
            rtm.targets.set_view(name, None)
            rtm.targets.set_credentials(name, None)
            return False, f"the kubeconfig in the Secret is refused: {err}", None, None
        built = Cluster(api)
        rtm.targets.set_credentials(name, credentials)  # the previous client's key files are removed
        cache["cluster"], cache["rv"] = built, key
        view = ClusterView(name, built.api)
        view.cache(PODS).subscribe(rtm.triggers.on_target_pod)
        view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
        for resource in SERVING_RESOURCES:  # copies and burst Services: in sync before a policy reads them
            view.cache(resource, MANAGED_SELECTOR)
        rtm.targets.set_view(name, view)
    del text
    return _version(name, cache)


def _version(name: str, cache: dict[str, Any]) -> tuple[bool, str, str | None, float | None]:
    cluster: Cluster = cache["cluster"]
    started = time.perf_counter()
    try:
        version = cluster.version(timeout=5.0)
    except Exception as err:  # connection refused, TLS, auth: all mean "unavailable"
        cache["ok"] = False  # the next probe reads the Secret again: a rotated credential is picked up at once
        return False, f"API server of {name} did not answer ({type(err).__name__})", None, None
    cache["ok"] = True
    return True, "probe succeeded", version, round((time.perf_counter() - started) * 1000, 1)


async def _target_status(rtm: runtime.Runtime, name: str, status: dict[str, Any]) -> bool:
    """Write a BurstTarget's status; False when the API server did not take it. Never raises: a probe daemon that
    died would take the target out of the registry with it (its `finally`), and every policy would see the target
    unavailable because the primary's API server was slow."""
    try:
        await asyncio.to_thread(_patch_status, rtm, TARGETS, None, name, status)
    except Exception as err:
        _log.warning("BurstTarget %s: status write failed: %s", name, _error_summary(err))
        return False
    return True


@kopf.daemon(GROUP, VERSION, TARGETS, cancellation_timeout=5)
async def bursttarget_probe(*, name: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Any, **_: Any) -> None:
    rtm = rt(memo)
    registry = rtm.targets
    cache: dict[str, Any] = {}
    status = BurstTargetStatus.model_validate(body.get("status") or {})
    last_state: bool | None = None
    written: dict[str, Any] | None = None
    written_at = 0.0
    levels = _Levels()
    try:
        while not stopped:
            try:
                spec = parse_target_spec(dict(body.get("spec") or {}), name=name)
            except SpecError as err:
                registry.remove(name)  # closes its view: the next valid spec builds a new one
                cache.clear()
                msg = "; ".join(err.messages)
                if last_state is not False:
                    kopf.warn(body, reason=Reason.INVALID_SPEC.value, message=msg)
                last_state = False
                await _target_status(
                    rtm,
                    name,
                    {
                        "conditions": [
                            {"type": "Ready", "status": "False", "reason": Reason.INVALID_SPEC.value, "message": msg}
                        ]
                    },
                )
                await stopped.wait(30)
                continue
            registry.upsert(name, spec, uid=str((body.get("metadata") or {}).get("uid") or "") or None)
            ok, message, version, latency = await asyncio.to_thread(_probe, rtm, name, spec, cache)
            status.consecutive_failures = 0 if ok else status.consecutive_failures + 1
            healthy = ok or (last_state is True and status.consecutive_failures < spec.failure_threshold)
            registry.set_health(
                name, cluster=cache.get("cluster") if ok or healthy else None, healthy=healthy, message=message
            )
            metrics.TARGET_UP.labels(name).set(1 if healthy else 0)
            if latency is not None:
                metrics.TARGET_LATENCY.labels(name).set(latency)
            if healthy != last_state:
                rtm.triggers.wake_all()  # policies using it re-plan now, not at their next poll
                if healthy:
                    kopf.info(body, reason="TargetReady", message=f"{name} is reachable ({version})")
                else:
                    kopf.warn(
                        body,
                        reason="TargetUnavailable",
                        message=f"{name} is unavailable: {message}; policies stop placing replicas on it",
                    )
                last_state = healthy
            woken = registry.get(name)
            if ok and woken is not None and woken.view is not None and not woken.view.ready:
                woken.view.retry_now()  # it answers: watches waiting out a backoff resume now (blip or outage)
            if ok and cache.get("cluster") is not None:
                await levels.keep(body, cache["cluster"], spec)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            status.kubernetes_version = version or status.kubernetes_version
            status.latency_ms = latency
            status.last_probe_time = now
            handle = registry.get(name)
            status.replicas_in_use = registry.usage(name)
            status.view_synced = handle.view.ready if handle and handle.view else None
            prev = next((c for c in status.conditions if c.type == "Ready"), None)
            state = "True" if healthy else "False"
            status.conditions = [
                Condition(
                    type="Ready",
                    status=state,
                    reason="ProbeSucceeded" if ok else "ProbeFailed",
                    message=message,
                    last_transition_time=prev.last_transition_time if prev and prev.status == state else now,
                )
            ]
            current = status.model_dump(by_alias=True, mode="json")
            cause = cadence.target_write_cause(current, written, time.monotonic() - written_at)
            if cause and await _target_status(rtm, name, current):
                metrics.STATUS_WRITES.labels("target", cause).inc()
                written, written_at = current, time.monotonic()
            await stopped.wait(spec.probe_interval_seconds)
    finally:
        registry.remove(name)


class _Levels:
    """Keeps the Pod Security labels of the namespaces Overspill created in one target at its level: at once when
    the level changes, else every ALIGN_EVERY seconds (adapters/namespaces.py)."""

    def __init__(self) -> None:
        self.wanted: dict[str, str] | None = None
        self.at = 0.0
        self.every = ALIGN_EVERY
        self.problem: str | None = None

    async def keep(self, body: kopf.Body, cluster: Cluster, spec: BurstTargetSpec) -> None:
        wanted = pod_security_labels(spec)
        if wanted == self.wanted and time.monotonic() - self.at < self.every:
            return
        try:
            done = await asyncio.to_thread(align_pod_security, cluster, wanted)
        except Exception as err:  # a slow or failing target: checked again at the next probe, never a dead daemon
            _log.debug("BurstTarget %s: namespace levels not checked: %s", body.get("metadata", {}).get("name"), err)
            return
        self.wanted, self.at = wanted, time.monotonic()
        level = spec.pod_security.value
        for ns in done.corrected:
            kopf.warn(
                body,
                reason="PodSecurityRestored",
                message=f"namespace {ns} (created by Overspill) was below the target's Pod Security level "
                f"{level}: its labels were raised to it",
            )
        if done.problem and done.problem != self.problem:
            # no Event: a target whose namespaces are pre-created by its administrator grants no namespace rights,
            # and nothing of Overspill's is there to keep
            _log.info("BurstTarget %s: %s", body.get("metadata", {}).get("name"), done.problem)
        self.problem = done.problem
        self.every = ALIGN_EVERY if done.problem is None else ALIGN_REFUSED_EVERY


# ---- BurstPolicy ---------------------------------------------------------------------------------------------


def shard_labels(selector: str | None) -> dict[str, str] | None:
    """OVERSPILL_POLICY_SELECTOR ("shard=a" or "a=b,c=d"): this operator handles only the policies it selects.

    Beside Kopf's --namespace, the way to split a thousand policies over several operator processes (sharding,
    docs/operations.md). Equality terms only: what Kopf's label filters take.
    """
    if not selector:
        return None
    pairs = [t.split("=", 1) for t in selector.split(",") if t.strip()]
    if any(len(p) != 2 or not p[0].strip() or p[0].strip().endswith("!") for p in pairs):
        raise ValueError(f"OVERSPILL_POLICY_SELECTOR={selector!r}: use key=value[,key=value]")
    return {k.strip(): v.strip() for k, v in pairs}


SHARD = shard_labels(os.environ.get("OVERSPILL_POLICY_SELECTOR"))


@kopf.index(GROUP, VERSION, POLICIES, labels=SHARD)
def policies_by_workload(
    *, namespace: str | None, name: str, uid: str, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> dict[tuple[str, str, str], tuple[str, str, str]]:
    ref = spec.get("workloadRef") or {}
    key = (namespace or "", str(ref.get("kind", "Deployment")), str(ref.get("name", "")))
    return {key: (str(meta.get("creationTimestamp", "")), name, uid)}


def _conflict(index: kopf.Index[Any, Any], namespace: str, spec: dict[str, Any], uid: str) -> str | None:
    ref = spec.get("workloadRef") or {}
    key = (namespace, str(ref.get("kind", "Deployment")), str(ref.get("name", "")))
    owners = sorted(index.get(key, []))
    if owners and owners[0][2] != uid:
        return (
            f"BurstPolicy {owners[0][1]} already manages {key[1]} {namespace}/{key[2]}; this policy is refused "
            "and changes nothing: delete one of the two"
        )
    return None


async def _tick(
    rtm: runtime.Runtime, ref: PolicyRef, body: kopf.Body, prev: BurstPolicyStatus, index: kopf.Index[Any, Any]
) -> tuple[Outcome, int]:
    reconciler = rtm.reconciler
    raw = dict(body.get("spec") or {})
    generation = body.get("metadata", {}).get("generation")
    try:
        spec = parse_policy_spec(raw)
    except SpecError as err:
        return reconciler.failure(
            prev,
            generation,
            Reason.INVALID_SPEC.value,
            "; ".join(err.messages) + " (nothing is scaled until the spec is fixed)",
        ), 10
    conflict = _conflict(index, ref.namespace, raw, ref.uid)
    if conflict:
        return reconciler.failure(
            prev, generation, Reason.CONFLICT.value, conflict
        ), spec.behavior.poll_interval_seconds
    outcome = await asyncio.to_thread(reconciler.reconcile, ref, spec, prev, generation)
    return outcome, spec.behavior.poll_interval_seconds


MIN_TICK_GAP = 1.0  # a burst of watch events costs one tick, not one per event
PRIMARY_SYNC_WAIT = 60.0


def _poll_interval(body: kopf.Body) -> float:
    behavior = (body.get("spec") or {}).get("behavior") or {}
    try:
        return float(behavior.get("pollIntervalSeconds", 10))
    except (TypeError, ValueError):
        return 10.0


def _predictive(body: kopf.Body) -> bool:
    return bool(((body.get("spec") or {}).get("behavior") or {}).get("predictive"))


def _status_interval(body: kopf.Body) -> float:
    behavior = (body.get("spec") or {}).get("behavior") or {}
    try:
        return float(behavior.get("statusIntervalSeconds", 30))
    except (TypeError, ValueError):
        return 30.0


async def _rest(stopped: kopf.DaemonStopped, woken: asyncio.Event, interval: float) -> None:
    """Sleep until the next poll, until a watch event that concerns this policy wakes it, or until the daemon is
    stopped (the policy deleted, the operator stopping): Kopf would otherwise wait out its cancellation timeout
    for each of a thousand daemons, and hold a deleted policy's finalizer meanwhile."""
    if interval > 0:
        waits = [asyncio.ensure_future(woken.wait()), asyncio.ensure_future(stopped.wait(interval))]
        try:
            await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
    woken.clear()


@kopf.daemon(GROUP, VERSION, POLICIES, cancellation_timeout=10, labels=SHARD)
async def burstpolicy_loop(
    *,
    namespace: str | None,
    name: str,
    uid: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    memo: Any,
    logger: Log,
    **_: Any,
) -> None:
    rtm = rt(memo)
    index: kopf.Index[Any, Any] = _["policies_by_workload"]  # Kopf passes each index by its handler's name
    ns = namespace or ""
    ref = PolicyRef(namespace=ns, name=name, uid=uid)
    writer = rtm.status_writer
    loop = asyncio.get_running_loop()
    offset = cadence.phase(uid)
    # found while the operator starts (its view not yet listed): the first tick takes the policy's slot in the
    # coming interval, so a thousand policies do not all tick at once, now and every interval after
    starting = not rtm.primary_view.ready
    # registered inside the try: a daemon cancelled while it waits below leaves nothing behind (policy churn)
    try:
        slot = writer.slot(uid, dict(body.get("status") or {}))
        prev = BurstPolicyStatus.model_validate(slot.baseline)
        woken = rtm.triggers.register(uid)
        # the first tick waits (bounded) for the primary's view: acting on a half-listed cluster is acting blind
        await asyncio.to_thread(rtm.primary_view.wait_ready, PRIMARY_SYNC_WAIT)
        due = loop.time()
        if starting:
            due = cadence.first_slot(due, _poll_interval(body), offset)
            await _rest(stopped, woken, max(0.0, due - loop.time()))
        while not stopped:
            started = loop.time()
            regular = started >= due  # the poll's tick, not one woken early by an event
            if regular:
                metrics.POLL_LATENESS.observe(started - due)
            if slot.gone:  # a status write answered 404: the policy is deleted, nothing more is done for it
                return
            try:
                outcome, interval = await _tick(rtm, ref, body, prev, index)
            except Exception as err:  # keep the loop alive; the next tick retries
                logger.exception("reconcile failed")
                kopf.warn(body, reason="ReconcileError", message=_error_summary(err))
                await stopped.wait(10)
                due = loop.time()
                continue
            for etype, reason, message in outcome.events:
                kopf.event(body, type=etype, reason=reason, message=message)
            cause = cadence.write_cause(
                outcome.status,
                slot.baseline,
                started - slot.baseline_at,
                _status_interval(body),
                exact_samples=_predictive(body),
            )
            if cause:  # written by the status writer's own threads: the next decision never waits for a report
                writer.submit(
                    uid, functools.partial(_patch_status, rtm, POLICIES, ns, name), outcome.status, started, cause
                )
            prev = BurstPolicyStatus.model_validate(outcome.status)
            if regular:  # a tick woken by an event is an extra one: the poll's schedule stands
                due = cadence.next_slot(started, interval, offset)
            await _rest(stopped, woken, max(0.0, due - loop.time()))
            gap = MIN_TICK_GAP - (loop.time() - started)
            if gap > 0:
                await asyncio.sleep(gap)
    finally:
        rtm.triggers.unregister(uid)
        # what it handed over is written only when the operator exits (its cleanup drains it); deleted, paused
        # for another operator or moved to another shard, the policy's waiting status is dropped
        why: kopf.DaemonStoppingReason | None = getattr(stopped, "reason", None)
        writer.forget(uid, keep_pending=why is not None and bool(why & kopf.DaemonStoppingReason.OPERATOR_EXITING))
        metrics.forget_policy(ns, name)


def _error_summary(err: Exception) -> str:
    """The kind of an unexpected error (and its HTTP status): never its text, which may quote a response body."""
    status = f" (HTTP {err.status})" if isinstance(err, ApiException) else ""
    return f"{type(err).__name__}{status}; the next poll retries (details in the operator's log)"


CLEANUP_BACKOFF_CAP = 300.0  # seconds: a target away for hours is asked every 5 minutes, never given up on


def cleanup_delay(retry: int) -> float:
    return float(min(CLEANUP_BACKOFF_CAP, 5.0 * 2 ** min(retry, 10)))


def _routes(raw: dict[str, Any], body: kopf.Body) -> set[str]:
    """HTTPRoutes that may hold the policy's backendRefs: the one the spec names and those status.routes lists
    (named by an earlier spec, still draining)."""
    found = {str(r) for r in (body.get("status") or {}).get("routes") or [] if r}
    traffic = raw.get("traffic")
    ref = traffic.get("httpRouteRef") if isinstance(traffic, dict) else None
    if isinstance(ref, dict) and ref.get("name"):
        found.add(str(ref["name"]))
    return found


def _places(namespace: str, raw: dict[str, Any]) -> set[tuple[str, str]]:
    """(target, namespace) pairs the last spec placed mirrors in: their copies go even if the mirror is gone."""
    out = set()
    for t in raw.get("targets") or []:
        if isinstance(t, dict) and t.get("name"):
            out.add((str(t["name"]), str((t.get("overrides") or {}).get("namespace") or namespace)))
    return out


@kopf.on.delete(GROUP, VERSION, POLICIES, labels=SHARD)
async def burstpolicy_delete(
    *, namespace: str | None, name: str, uid: str, body: kopf.Body, retry: int, memo: Any, **_: Any
) -> None:
    """Remove everything of this policy's, found by its labels in every known target (not from its spec). Busy
    runners drain first. The finalizer never gives up on its own: an unreachable target is retried with a
    backoff capped at 5 minutes until it answers or its BurstTarget is deleted."""
    rtm = rt(memo)
    raw = dict(body.get("spec") or {})
    spec: BurstPolicySpec | None
    unreadable: str | None = None
    try:
        spec = parse_policy_spec(raw)
    except SpecError as err:
        # its busy rules cannot be read (an upgrade tightened a rule, or an edit the schema admits): every pod of
        # its mirrors counts as busy until the spec is fixed, unless the spec has no busy rules at all
        spec, unreadable = None, str(err)
    ref = PolicyRef(namespace=namespace or "", name=name, uid=uid)
    # traffic leaves first: the route's backendRefs of the policy go to weight 0 (and out, at the next attempt);
    # nothing that may still receive requests is removed before that, and a route that cannot be written keeps
    # everything (the finalizer retries)
    targets = {str(t.get("name")) for t in raw.get("targets") or [] if isinstance(t, dict)} | set(rtm.targets.names())
    try:
        step = await asyncio.to_thread(
            rtm.reconciler.serving.unroute,
            namespace or "",
            uid,
            _routes(raw, body),
            *raw_route_names(raw, targets),
            rtm.reconciler.clock(),
        )
    except Exception as err:
        why = f"the HTTPRoute named by spec.traffic.httpRouteRef could not be updated ({_error_summary(err)})"
        _cleanup_pending(body, {"primary": why}, retry)
    if step.waiting:
        poll = float(((raw.get("behavior") or {}).get("pollIntervalSeconds")) or 2)
        delay = max(1.0, step.left) if step.left > 0 else poll
        raise kopf.TemporaryError(
            f"traffic drains first: the route's weights to burst replicas are 0 now; removal in {delay:.0f}s",
            delay=delay,
        )
    unknown = await asyncio.to_thread(_unconnected_targets, rtm)
    if unknown:  # its mirrors there cannot be looked for yet: releasing now would orphan them
        _cleanup_pending(body, unknown, retry)
    busy_rules = raw.get("busy") is not None
    result = await asyncio.to_thread(
        rtm.reconciler.release, ref, spec, places=_places(namespace or "", raw), busy_rules=busy_rules
    )
    if result.pending:
        if unreadable is not None and busy_rules:
            result.pending["spec"] = (
                f"the stored spec no longer parses ({unreadable}), so its busy rules are unknown and every pod of "
                "its mirrors counts as busy: fix spec (kubectl edit burstpolicy) and the deletion goes on"
            )
        _cleanup_pending(body, result.pending, retry)
    # its room in every target's shared cap comes back (a write to the shared reservations: not on the event loop)
    await asyncio.to_thread(rtm.targets.ledger.release, uid)


def _unconnected_targets(rtm: runtime.Runtime) -> dict[str, str]:
    """BurstTargets that exist but are not in the registry yet (the operator is starting, or the target's spec is
    invalid): a policy's mirrors are found by label in every known target, so a deletion must wait for them."""
    try:
        items = cast(
            dict[str, Any],
            rtm.primary.custom.list_cluster_custom_object(GROUP, VERSION, TARGETS, _request_timeout=(3, 10)),
        )
    except ApiException as err:
        if err.status == 404:  # no BurstTarget kind at all: no target can hold mirrors
            return {}
        return {"primary": f"the BurstTargets could not be listed ({_error_summary(err)})"}
    except Exception as err:
        return {"primary": f"the BurstTargets could not be listed ({_error_summary(err)})"}
    out = {}
    for item in items.get("items") or []:
        target = str((item.get("metadata") or {}).get("name") or "")
        if target and rtm.targets.get(target) is None:
            out[target] = (
                f"BurstTarget {target} is not connected yet (the operator is starting, or its spec is invalid): "
                "its mirrors cannot be looked for"
            )
    return out


def _cleanup_pending(body: kopf.Body, pending: dict[str, str], retry: int) -> NoReturn:
    delay = cleanup_delay(retry)
    waiting = "; ".join(pending[t] for t in sorted(pending))
    kopf.warn(
        body,
        reason="MirrorCleanupPending",
        message=f"not yet removed: {waiting}; retrying in {delay:.0f}s (attempt {retry + 1}); the policy is "
        "kept until then. To release it by hand, see docs/operations.md (Releasing a policy by hand)",
    )
    raise kopf.TemporaryError(f"cleanup pending: {waiting}", delay=delay)

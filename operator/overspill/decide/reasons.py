"""Stable reason codes shared by status, Events, metrics and the simulator."""

from enum import StrEnum


class Reason(StrEnum):
    STEADY = "Steady"
    SCALE_UP = "ScaleUp"
    SCALE_DOWN = "ScaleDown"
    BURST_UP = "BurstUp"
    BURST_DOWN = "BurstDown"
    RETURN_TO_PRIMARY = "ReturnToPrimary"
    PRIMARY_AT_CAPACITY = "PrimaryAtCapacity"
    CAPACITY_EXHAUSTED = "CapacityExhausted"
    TARGET_AT_CAPACITY = "TargetAtCapacity"
    TARGET_UNAVAILABLE = "TargetUnavailable"
    METRIC_UNAVAILABLE_HOLD = "MetricUnavailableHold"
    METRIC_UNAVAILABLE_FALLBACK = "MetricUnavailableFallback"
    STABILIZATION_HOLD = "StabilizationHold"
    MIN_BURST_DURATION_HOLD = "MinBurstDurationHold"
    AWAITING_READY_REPLACEMENT = "AwaitingReadyReplacement"
    BUSY_REPLICAS_HOLD = "BusyReplicasHold"
    BUSY_UNKNOWN_HOLD = "BusyUnknownHold"
    WORKLOAD_MISSING = "WorkloadMissing"
    PAUSED = "Paused"
    INVALID_SPEC = "InvalidSpec"
    CONFLICT = "Conflict"

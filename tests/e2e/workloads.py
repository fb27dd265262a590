"""Workload manifests used by the end-to-end tests."""

from __future__ import annotations

from typing import Any


def gpu_deployment(name: str, replicas: int, gpus: int = 1, labels: dict[str, str] | None = None) -> dict[str, Any]:
    sel = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": sel},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": {**sel, **(labels or {})}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "server",
                            "image": "registry.k8s.io/pause:3.10",  # runs on kind too; KWOK never pulls it
                            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"cpu": "100m"}},
                        }
                    ],
                },
            },
        },
    }

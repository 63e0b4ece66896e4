"""Deployments: desired state, the local controller, rollouts, and the gateway link.

The service (:class:`DeploymentService`) validates and records desired state; the
controller (:class:`~modelyard.deploy._reconcile.DeploymentController`, inside
``modelyard server``) reconciles replicas towards it through a replica backend
(:mod:`modelyard.deploy._backend`; local processes today) and pushes routes to the
gateway (:mod:`modelyard.gateway`). Rollout steps (:func:`advance`) and the policy choice
(:func:`deployment_policy`) are pure functions.

Names load on first use: the replica zygote imports ``modelyard.deploy._zygote`` and must
not pay for the service's imports.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DeploymentService": "modelyard.deploy.service",
    "DeploymentView": "modelyard.deploy.service",
    "RolloutRequest": "modelyard.deploy.service",
    "RolloutStep": "modelyard.deploy._rollout",
    "RolloutView": "modelyard.deploy._rollout",
    "WindowStats": "modelyard.deploy._rollout",
    "advance": "modelyard.deploy._rollout",
    "judge": "modelyard.deploy._rollout",
    "deployment_policy": "modelyard.deploy._policy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard.deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

"""modelyard: a self-hosted ML platform from versioned data to autoscaled endpoints.

``import modelyard as my`` gives the tracking SDK (``my.start_run``, ``my.log_metric`` …),
loaded on first use so that importing modelyard stays cheap and side-effect free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typed for checkers; loaded on first use at run time
    from modelyard.pipelines import DatasetRef as DatasetRef
    from modelyard.pipelines import Pipeline as Pipeline
    from modelyard.pipelines import step as step

__version__ = "0.1.0"

_REGISTRY_SDK = ("get_version", "load_model", "log_model", "register_model", "set_alias")
_DATA_SDK = ("log_dataset", "use_dataset")
_PIPELINE_SDK = ("step", "Pipeline", "DatasetRef")
_TUNING_SDK = ("tune", "report", "TrialPruned", "uniform", "loguniform", "randint", "choice")
_DEPLOY_SDK = ("deploy", "get_deployment", "update_deployment", "set_traffic", "rollback",
               "delete_deployment")  # fmt: skip
_SDK = (
    "ActiveRun",
    "active_run",
    "end_run",
    "flush",
    "get_run",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
)

__all__ = [
    "__version__",
    *_SDK,
    *_REGISTRY_SDK,
    *_DATA_SDK,
    *_DEPLOY_SDK,
    *_PIPELINE_SDK,
    *_TUNING_SDK,
]


def __getattr__(name: str) -> Any:
    if name in _TUNING_SDK:
        value = getattr(importlib.import_module("modelyard.tuning"), name)
        globals()[name] = value
        return value
    if name in _PIPELINE_SDK:
        value = getattr(importlib.import_module("modelyard.pipelines"), name)
        globals()[name] = value
        return value
    if name in _SDK or name in _REGISTRY_SDK or name in _DATA_SDK or name in _DEPLOY_SDK:
        module = "modelyard.tracking.fluent" if name in _SDK else "modelyard.registry.fluent"
        module = "modelyard.data.fluent" if name in _DATA_SDK else module
        module = "modelyard.deploy.fluent" if name in _DEPLOY_SDK else module
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'modelyard' has no attribute {name!r}")

"""The inference runtime behind ``modelyard serve``.

Serves one model package over the Open Inference Protocol v2 (KServe / Triton REST
JSON), the MLflow scoring protocol (``/invocations``) and ``/predict``, with adaptive
batching and Prometheus metrics. See ``docs/serving.md``.

Heavy modules (uvicorn, the model flavors) are imported only when serving starts.
"""

from __future__ import annotations

from modelyard.serving._batching import (
    Decision,
    GapEstimate,
    LatencyModel,
    Pending,
    decide,
    runs_inline,
)
from modelyard.serving.options import RuntimeOptions, ServeOptions
from modelyard.serving.server import ResolvedModel, resolve, serve

__all__ = [
    "Decision",
    "GapEstimate",
    "LatencyModel",
    "Pending",
    "ResolvedModel",
    "RuntimeOptions",
    "ServeOptions",
    "decide",
    "resolve",
    "runs_inline",
    "serve",
]

"""The tags a pipeline run and its step runs carry (the record of a pipeline)."""

from __future__ import annotations

import enum

PIPELINE = "modelyard.pipeline"
PIPELINE_STATE = "modelyard.pipeline.state"
PIPELINE_GRAPH = "modelyard.pipeline.graph"
PIPELINE_TARGET = "modelyard.pipeline.target"
PIPELINE_SCHEDULE = "modelyard.pipeline.schedule"
PIPELINE_EXECUTOR = "modelyard.pipeline.executor"
PIPELINE_ERROR = "modelyard.pipeline.error"
PIPELINE_ROUNDS = "modelyard.pipeline.rounds"  # 1 + how many times it was resumed

STEP = "modelyard.step"
STEP_STATE = "modelyard.step.state"
STEP_CACHE_KEY = "modelyard.step.cache_key"
STEP_ATTEMPTS = "modelyard.step.attempts"
STEP_DURATION = "modelyard.step.duration_s"
STEP_OUTPUT = "modelyard.step.output"
STEP_CACHED_FROM = "modelyard.step.cached_from"
STEP_ERROR = "modelyard.step.error"
STEP_REASON = "modelyard.step.reason"
STEP_NODE = "modelyard.step.node"
STEP_ROUND = "modelyard.step.round"  # which round of the pipeline run made this step run

PARENT = "mlflow.parentRunId"

MAX_TEXT = 2000  # error messages are cut to this many characters


class PipelineState(enum.StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def clip(text: str) -> str:
    """A tag value short enough for the store."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"

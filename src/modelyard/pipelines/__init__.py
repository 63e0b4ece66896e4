"""Pipelines: a DAG of steps, cached by the digests of their code, inputs and params.

``@my.step`` makes a function a step; ``my.Pipeline([...])`` wires steps by parameter
names; ``pipeline.run(executor="local" | "ray" | "ray://host:port")`` runs ready steps
concurrently on the executor and records a parent run with one child run per step (see
``modelyard.pipelines.tags`` for the tags). A step's output is a dataset version (a
lineage edge) or a cloudpickled artifact verified by sha256 before it is loaded.
"""

from __future__ import annotations

from modelyard.data import DatasetRef
from modelyard.pipelines._graph import StepState
from modelyard.pipelines._outputs import StepOutput
from modelyard.pipelines._pipeline import Pipeline
from modelyard.pipelines._result import PipelineRun, StepFailed, StepResult, get_run
from modelyard.pipelines._step import Step, step
from modelyard.pipelines.tags import PipelineState

__all__ = [
    "DatasetRef",
    "Pipeline",
    "PipelineRun",
    "PipelineState",
    "Step",
    "StepFailed",
    "StepOutput",
    "StepResult",
    "StepState",
    "get_run",
    "step",
]

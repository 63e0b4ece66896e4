"""Executors: where tuning trials and pipeline steps run (local processes or Ray)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelyard.core.errors import InvalidInput
from modelyard.executors._base import (
    Executor,
    ExecutorUnavailable,
    Resources,
    WorkerLost,
)
from modelyard.executors._env import worker_env
from modelyard.executors._probe import probe

if TYPE_CHECKING:
    from modelyard.executors._ray import RayExecutor

__all__ = [
    "Executor",
    "ExecutorUnavailable",
    "Resources",
    "WorkerLost",
    "current_node",
    "open_executor",
    "worker_env",
]


def open_executor(
    spec: str | Executor, *, workers: int | None = None, env: Mapping[str, str] | None = None
) -> Executor:
    """Open the executor ``spec`` names.

    Args:
        spec: ``local`` (a process pool here); ``ray`` (join ``RAY_ADDRESS`` or a
            cluster started on this machine, else start Ray here); ``ray:auto`` or
            ``auto`` (an existing cluster only); ``ray://host:port`` (Ray Client). An
            ``Executor`` instance passes through unchanged (the caller keeps owning it).
        workers: tasks kept in flight; default the CPUs of the machine or cluster.
        env: set in every worker (the tracking URI, token and project of the caller).

    Raises:
        InvalidInput: an unknown spec or a malformed address, ``workers`` < 1.
        ExecutorUnavailable: the Ray address does not answer (checked with a 3 s TCP
            connect before anything else happens).
    """
    if not isinstance(spec, str):
        return spec
    if workers is not None and workers < 1:
        raise InvalidInput(f"workers must be >= 1, got {workers}")
    if spec == "local":
        from modelyard.executors._local import LocalExecutor

        return LocalExecutor(workers, env)
    if spec == "ray":
        return _open_ray(None, "ray", workers, env)
    if spec in ("auto", "ray:auto"):
        return _open_ray("auto", "ray", workers, env)
    if spec.startswith("ray://"):
        return _open_ray(spec, spec, workers, env)
    raise InvalidInput(
        f"executor: unknown executor {spec!r}: expected 'local', 'ray', 'ray:auto' "
        "or 'ray://host:port'"
    )


def _open_ray(
    address: str | None, name: str, workers: int | None, env: Mapping[str, str] | None
) -> RayExecutor:
    # An address the caller named must answer, even if this process is connected
    # already; RAY_ADDRESS matters only when ray.init is about to read it.
    ray = sys.modules.get("ray")
    connected = ray is not None and ray.is_initialized()
    explicit = address if address != "auto" else None
    if explicit is None and not connected:
        explicit = os.environ.get("RAY_ADDRESS") or None
    if explicit is not None and explicit not in ("auto", "local"):
        probe(explicit)
    from modelyard.executors._ray import RayExecutor

    return RayExecutor(address, name=name, workers=workers, env=env)


def current_node() -> str:
    """Where this code runs: the Ray node id inside a Ray task, else the hostname."""
    from modelyard.executors._ray import current_node as _current_node

    return _current_node()

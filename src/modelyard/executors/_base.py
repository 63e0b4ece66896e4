"""The executor contract: where tuning trials and pipeline steps run.

An executor runs a picklable function with arguments somewhere else (a local worker
process, a Ray task on any node of a cluster) and hands back a
:class:`concurrent.futures.Future`. Callers (``modelyard.tuning``, ``modelyard.pipelines``)
never see processes or Ray: they submit, wait on futures, and close.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from modelyard.core.errors import InvalidInput, ModelyardError, Unavailable

T = TypeVar("T")


class ExecutorUnavailable(Unavailable):
    """The executor cannot run anything: e.g. a Ray address that does not answer."""


class WorkerLost(ModelyardError):
    """The process or node running a task died before the task finished."""


@dataclass(frozen=True)
class Resources:
    """What one task needs: CPUs (may be fractional on Ray), GPUs, memory in MiB."""

    cpu: float = 1.0
    gpu: float = 0.0
    memory_mb: int | None = None

    def __post_init__(self) -> None:
        if self.cpu <= 0:
            raise InvalidInput(f"resources.cpu must be > 0, got {self.cpu}")
        if self.gpu < 0:
            raise InvalidInput(f"resources.gpu must be >= 0, got {self.gpu}")
        if self.memory_mb is not None and self.memory_mb <= 0:
            raise InvalidInput(f"resources.memory_mb must be > 0, got {self.memory_mb}")

    @classmethod
    def of(cls, value: Resources | Mapping[str, Any] | None) -> Resources:
        """Accept ``Resources``, ``{"cpu": 1, "gpu": 0, "memory_mb": 512}`` or None."""
        if value is None:
            return cls()
        if isinstance(value, Resources):
            return value
        unknown = sorted(set(value) - {"cpu", "gpu", "memory_mb"})
        if unknown:
            raise InvalidInput(f"unknown resource {unknown[0]!r}: expected cpu, gpu, memory_mb")
        try:
            return cls(
                cpu=float(value.get("cpu", 1.0)),
                gpu=float(value.get("gpu", 0.0)),
                memory_mb=None if value.get("memory_mb") is None else int(value["memory_mb"]),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"invalid resources {dict(value)!r}: {exc}") from None


@runtime_checkable
class Executor(Protocol):
    """Runs functions elsewhere. Implementations: ``local`` (processes), ``ray``."""

    @property
    def name(self) -> str:
        """``local``, ``ray`` or ``ray://host:port`` — for logs and run tags."""
        ...

    @property
    def slots(self) -> int:
        """How many tasks can run at once (what a driver keeps in flight)."""
        ...

    def submit(
        self, fn: Callable[..., T], /, *args: Any, resources: Resources | None = None
    ) -> Future[T]:
        """Run ``fn(*args)`` in a worker; the future raises ``WorkerLost`` if it died."""
        ...

    def close(self) -> None:
        """Stop what this executor started (idempotent); leaves shared clusters running."""
        ...

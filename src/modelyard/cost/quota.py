"""Project quotas: how many replicas (and how much CPU, memory, GPU) a project may run.

Pure functions; the deployment service calls :func:`check_deployment` before it writes
a deployment, and the controller calls :func:`cap_scale_up` before it starts replicas.

What counts is every *active* replica of the project's deployments (starting, ready or
draining, standby ones included) with the CPU, memory and GPU its revision requests.
A quota only ever holds back new replicas: :func:`cap_scale_up` never asks for fewer
replicas than are running, so lowering a quota below what runs stops further
scale-ups and leaves serving replicas alone.

Amounts are compared in integer milli-units (millicores, MiB, milli-GPUs), so ``3 x 0.1``
vCPU fits a 0.3 vCPU quota exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Protocol

from modelyard.core.deployments import RuntimeSettings
from modelyard.core.errors import InvalidInput, QuotaExceeded

__all__ = [
    "Cap",
    "Quota",
    "ReplicaSize",
    "Usage",
    "cap_scale_up",
    "check_deployment",
    "quota_of",
    "room",
    "usage_of",
]

#: The largest limit accepted (replicas, vCPU, GB or GPUs).
MAX_LIMIT: Final = 1_000_000.0


def _milli(value: float) -> int:
    return round(value * 1000)


def _mib(gb: float) -> int:
    return round(gb * 1024)


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Quota:
    """A project's limits; None means no limit on that resource.

    Attributes:
        max_replicas: active replicas over all the project's deployments.
        max_cpu: vCPU requested by those replicas.
        max_memory_gb: GB (GiB) of memory requested by them.
        max_gpu: GPUs requested by them.
    """

    max_replicas: int | None = None
    max_cpu: float | None = None
    max_memory_gb: float | None = None
    max_gpu: float | None = None

    def __post_init__(self) -> None:
        if self.max_replicas is not None and (
            isinstance(self.max_replicas, bool)
            or not isinstance(self.max_replicas, int)
            or not 0 <= self.max_replicas <= MAX_LIMIT
        ):
            raise InvalidInput(
                f"max_replicas must be a whole number in [0, {MAX_LIMIT:g}], "
                f"got {self.max_replicas!r}"
            )
        for name in ("max_cpu", "max_memory_gb", "max_gpu"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and 0 <= value <= MAX_LIMIT):
                raise InvalidInput(f"{name} must be in [0, {MAX_LIMIT:g}], got {value!r}")

    @property
    def empty(self) -> bool:
        """No limit at all."""
        return all(
            v is None for v in (self.max_replicas, self.max_cpu, self.max_memory_gb, self.max_gpu)
        )


class _Limits(Protocol):
    """Anything with a quota's four limits (the store's ``QuotaRecord``)."""

    @property
    def max_replicas(self) -> int | None: ...
    @property
    def max_cpu(self) -> float | None: ...
    @property
    def max_memory_gb(self) -> float | None: ...
    @property
    def max_gpu(self) -> float | None: ...


class _Requests(Protocol):
    """Anything with a usage's four sums (the store's ``ProjectUsage``)."""

    @property
    def replicas(self) -> int: ...
    @property
    def cpu(self) -> float: ...
    @property
    def memory_gb(self) -> float: ...
    @property
    def gpu(self) -> float: ...


def quota_of(limits: _Limits) -> Quota:
    """The :class:`Quota` of a stored quota."""
    return Quota(limits.max_replicas, limits.max_cpu, limits.max_memory_gb, limits.max_gpu)


@dataclass(frozen=True)
class ReplicaSize:
    """What one replica requests (from its revision's runtime settings)."""

    cpu: float
    memory_gb: float
    gpu: float = 0.0

    @classmethod
    def of(cls, settings: RuntimeSettings) -> ReplicaSize:
        return cls(settings.cpu, settings.memory_mb / 1024, settings.gpu)


@dataclass(frozen=True)
class Usage:
    """What a project's active replicas request together."""

    replicas: int = 0
    cpu: float = 0.0
    memory_gb: float = 0.0
    gpu: float = 0.0

    def plus(self, count: int, size: ReplicaSize) -> Usage:
        """This usage with ``count`` more replicas of ``size``."""
        return Usage(
            self.replicas + count,
            self.cpu + count * size.cpu,
            self.memory_gb + count * size.memory_gb,
            self.gpu + count * size.gpu,
        )

    def minus(self, other: Usage) -> Usage:
        """This usage without ``other`` (never below zero)."""
        return Usage(
            max(0, self.replicas - other.replicas),
            max(0.0, self.cpu - other.cpu),
            max(0.0, self.memory_gb - other.memory_gb),
            max(0.0, self.gpu - other.gpu),
        )


def usage_of(requests: _Requests) -> Usage:
    """The :class:`Usage` of the store's sums."""
    return Usage(requests.replicas, requests.cpu, requests.memory_gb, requests.gpu)


def _dimensions(
    quota: Quota, usage: Usage, size: ReplicaSize
) -> list[tuple[str, int, int, int, str]]:
    """(limit name, limit, used, per replica, unit) in integer units, limited ones only."""
    dims: list[tuple[str, int, int, int, str]] = []
    if quota.max_replicas is not None:
        dims.append(("max_replicas", quota.max_replicas, usage.replicas, 1, "replicas"))
    if quota.max_cpu is not None:
        dims.append(("max_cpu", _milli(quota.max_cpu), _milli(usage.cpu), _milli(size.cpu), "vCPU"))
    if quota.max_memory_gb is not None:
        dims.append(
            (
                "max_memory_gb",
                _mib(quota.max_memory_gb),
                _mib(usage.memory_gb),
                _mib(size.memory_gb),
                "GB",
            )
        )
    if quota.max_gpu is not None:
        dims.append(("max_gpu", _milli(quota.max_gpu), _milli(usage.gpu), _milli(size.gpu), "GPU"))
    return dims


def room(quota: Quota, usage: Usage, size: ReplicaSize) -> tuple[int | None, str | None]:
    """How many more replicas of ``size`` fit beside ``usage``, and the limit that binds.

    Returns:
        ``(None, None)`` when nothing limits them; else the count (0 when the project is
        at or over its quota) and the name of the tightest limit.
    """
    best: int | None = None
    binding: str | None = None
    for name, limit, used, per, _ in _dimensions(quota, usage, size):
        if per <= 0:
            continue  # a replica requesting none of this resource adds nothing to it
        fits = max(0, (limit - used) // per)
        if best is None or fits < best:
            best, binding = fits, name
    return best, binding


@dataclass(frozen=True)
class Cap:
    """The controller's scale-up after the quota.

    Attributes:
        replicas: how many replicas the revision may have (never fewer than ``current``
            when more were wanted).
        wanted: what the autoscaler (or the minimum) asked for.
        limit: the quota limit that held the scale-up back; None when it did not.
        message: one line for the deployment's events (empty when not limited).
    """

    replicas: int
    wanted: int
    limit: str | None = None
    message: str = ""

    @property
    def limited(self) -> bool:
        return self.limit is not None


def cap_scale_up(
    quota: Quota, usage: Usage, size: ReplicaSize, *, current: int, desired: int
) -> Cap:
    """Cap a revision's scale-up from ``current`` to ``desired`` replicas at the quota.

    Args:
        quota: the project's quota.
        usage: what the project's active replicas request now (``current`` included).
        size: what one replica of this revision requests.
        current: the revision's active replicas.
        desired: what the autoscaler (or the deployment's minimum) asks for.

    Returns:
        ``desired`` when it is not a scale-up or it fits; else ``current`` plus as many
        replicas as fit (possibly none). Never fewer than ``current``.
    """
    if desired <= current:
        return Cap(desired, desired)
    fits, limit = room(quota, usage, size)
    if fits is None or current + fits >= desired:
        return Cap(desired, desired)
    allowed = current + fits
    detail = _limit_text(quota, usage, size, limit)
    message = (
        f"project quota {detail}: scaling to {allowed} replica(s) instead of {desired}"
        if fits
        else f"project quota {detail}: not starting replicas (wanted {desired}, running {current})"
    )
    return Cap(allowed, desired, limit, message)


def _limit_text(quota: Quota, usage: Usage, size: ReplicaSize, limit: str | None) -> str:
    for name, lim, used, per, unit in _dimensions(quota, usage, size):
        if name != limit:
            continue
        scale = 1 if name == "max_replicas" else (1024 if name == "max_memory_gb" else 1000)
        return (
            f"{name} {_fmt(lim / scale)} {unit} ({_fmt(used / scale)} in use, "
            f"{_fmt(per / scale)} per replica)"
        )
    return "reached"


def check_deployment(
    quota: Quota,
    others: Usage,
    size: ReplicaSize,
    *,
    project: str,
    deployment: str,
    max_replicas: int,
    start_replicas: int,
) -> None:
    """Refuse a deployment the quota cannot hold.

    Args:
        quota: the project's quota.
        others: what the project's other active replicas request (for an update:
            everything but what must fit for this deployment).
        size: what one replica of the deployment requests.
        project: the project's name (for the message).
        deployment: the deployment's name (for the message).
        max_replicas: the deployment's maximum: refused when even the whole quota
            could not hold that many replicas.
        start_replicas: replicas that must be able to start now (the minimum, and at
            least the one replica a new revision starts with): refused when they do
            not fit beside ``others``.

    Raises:
        QuotaExceeded: naming the limit, the usage and the request.
    """
    whole, limit = room(quota, Usage(), size)
    if whole is not None and whole < max_replicas:
        per = _limit_text(quota, Usage(), size, limit)
        raise QuotaExceeded(
            f"project {project!r} quota {per}: deployment {deployment!r} asks for up to "
            f"{max_replicas} replica(s) and the quota holds at most {whole} even with "
            f"nothing else running; lower max_replicas or raise the quota "
            f"(modelyard quota set)"
        )
    if start_replicas <= 0:
        return
    fits, limit = room(quota, others, size)
    if fits is not None and fits < start_replicas:
        used = _limit_text(quota, others, size, limit)
        raise QuotaExceeded(
            f"project {project!r} quota {used}: deployment {deployment!r} needs "
            f"{start_replicas} replica(s) now and only {fits} fit; stop other replicas, "
            f"lower min_replicas or raise the quota (modelyard quota set)"
        )

"""Right-sizing: what a revision's replicas really use against what they request (pure).

The rule, per revision, over the usage samples of a window (every monitor pass reads
each local replica's CPU time and resident memory, see :mod:`._usage`):

- observed CPU: the 95th percentile (nearest rank) of the cores a replica kept busy
  per sample; observed memory: the peak resident memory;
- suggested CPU: observed x 1.3 (30 % headroom), rounded *up* to a multiple of 0.25
  vCPU, at least 0.25; suggested memory: peak x 1.2 (20 % headroom), rounded up to a
  multiple of 64 MiB, at least 128 MiB; GPUs are left as requested (not observed);
- the saving per month: ``((requested - suggested) vCPU x provisioned.cpu +
  (requested - suggested) GiB x provisioned.memory) x 730 h x average replicas``;
  negative when the replicas need more than they request;
- fewer than 30 samples (five minutes at the default 10 s interval): no data.

Applying a hint (:func:`plan_resize`, behind ``cost rightsize --apply``) takes only an
over- or under-provisioned verdict: the new requests are the suggestion snapped to whole
millicores (what a Kubernetes quantity can say) and whole MiB, GPUs as requested. "no
data" and "right-sized" are refused with :class:`~modelyard.core.errors.Conflict`: the
deployment is not in a state where resizing means anything, and nothing is changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

from modelyard.core.cost_facts import UsageSample
from modelyard.core.errors import Conflict
from modelyard.cost.prices import MONTH_S, PriceCatalog

CPU_HEADROOM = 1.3
MEMORY_HEADROOM = 1.2
CPU_STEP = 0.25
MEMORY_STEP_MB = 64
CPU_FLOOR = 0.25
MEMORY_FLOOR_MB = 128
CPU_QUANTILE = 0.95
MIN_SAMPLES = 30

Verdict = Literal["over-provisioned", "under-provisioned", "right-sized", "no data"]


@dataclass(frozen=True)
class SizeHint:
    """The hint for one revision (``suggested_*`` and ``saving_per_month`` are None when
    there is no data)."""

    revision: int
    verdict: Verdict
    reason: str
    samples: int
    requested_cpu: float
    requested_memory_mb: int
    requested_gpu: float
    replicas_avg: float
    cpu_p95: float | None = None
    memory_peak_mb: float | None = None
    suggested_cpu: float | None = None
    suggested_memory_mb: int | None = None
    saving_per_month: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of a non-empty sequence (one of its values)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def round_up(value: float, step: float) -> float:
    """The smallest multiple of ``step`` that is >= ``value`` (in float arithmetic)."""
    steps = math.ceil(value / step)
    if steps > 0 and (steps - 1) * step >= value:
        steps -= 1
    while steps * step < value:
        steps += 1
    return steps * step


def suggest(cpu_p95: float, memory_peak_mb: float) -> tuple[float, int]:
    """The suggested (vCPU, MiB) for this observed use (see the module's rule)."""
    cpu = max(CPU_FLOOR, round_up(cpu_p95 * CPU_HEADROOM, CPU_STEP))
    memory = max(MEMORY_FLOOR_MB, int(round_up(memory_peak_mb * MEMORY_HEADROOM, MEMORY_STEP_MB)))
    return cpu, memory


def monthly_saving(
    catalog: PriceCatalog,
    *,
    requested: tuple[float, int],
    suggested: tuple[float, int],
    replicas_avg: float,
) -> float:
    """What running ``replicas_avg`` replicas at ``suggested`` instead of ``requested``
    (vCPU, MiB) saves in a month (negative: costs more)."""
    per_second = (requested[0] - suggested[0]) * catalog.cpu_second + (
        requested[1] - suggested[1]
    ) / 1024 * catalog.gib_second
    return per_second * MONTH_S * replicas_avg


def rightsize(
    revision: int,
    samples: Sequence[UsageSample],
    *,
    requested_cpu: float,
    requested_memory_mb: int,
    requested_gpu: float = 0.0,
    replicas_avg: float,
    catalog: PriceCatalog,
    min_samples: int = MIN_SAMPLES,
) -> SizeHint:
    """The hint for ``revision`` from its usage samples (others are ignored)."""
    mine = [s for s in samples if s.revision == revision]
    base = SizeHint(
        revision=revision,
        verdict="no data",
        reason="",
        samples=len(mine),
        requested_cpu=requested_cpu,
        requested_memory_mb=requested_memory_mb,
        requested_gpu=requested_gpu,
        replicas_avg=replicas_avg,
    )
    if len(mine) < min_samples:
        return replace(
            base,
            reason=f"{len(mine)} usage samples in the window; right-sizing needs {min_samples} "
            "(the server's monitor loop reads local replicas every pass)",
        )
    cpu_p95 = quantile([s.cpu_cores for s in mine], CPU_QUANTILE)
    peak = max(s.rss_mb for s in mine)
    cpu, memory = suggest(cpu_p95, peak)
    saving = monthly_saving(
        catalog,
        requested=(requested_cpu, requested_memory_mb),
        suggested=(cpu, memory),
        replicas_avg=replicas_avg,
    )
    verdict: Verdict
    if cpu > requested_cpu or memory > requested_memory_mb:
        verdict = "under-provisioned"
    elif cpu < requested_cpu or memory < requested_memory_mb:
        verdict = "over-provisioned"
    else:
        verdict = "right-sized"
    reason = (
        f"p95 CPU {cpu_p95:.3g} cores x {CPU_HEADROOM:g}, peak memory {peak:.0f} MiB x "
        f"{MEMORY_HEADROOM:g}, over {len(mine)} samples"
    )
    return replace(
        base,
        verdict=verdict,
        reason=reason,
        cpu_p95=cpu_p95,
        memory_peak_mb=peak,
        suggested_cpu=cpu,
        suggested_memory_mb=memory,
        saving_per_month=saving,
    )


@dataclass(frozen=True)
class Resize:
    """What applying a hint changes: one revision's requests before and after.

    ``gpu`` is the same on both sides: GPU use is not observed, so it is never resized.
    """

    revision: int
    verdict: Verdict
    cpu_before: float
    memory_mb_before: int
    cpu_after: float
    memory_mb_after: int
    gpu: float

    def to_json(self) -> dict[str, object]:
        """``before`` / ``after`` as the API shows them (``cpu``, ``memory_mb``, ``gpu``)."""
        return {
            "revision": self.revision,
            "verdict": self.verdict,
            "before": {"cpu": self.cpu_before, "memory_mb": self.memory_mb_before, "gpu": self.gpu},
            "after": {"cpu": self.cpu_after, "memory_mb": self.memory_mb_after, "gpu": self.gpu},
        }


def whole_millicores(cpu: float) -> float:
    """``cpu`` in vCPU snapped to the nearest whole millicore (never below one).

    Why: a request must be sayable as a Kubernetes quantity (``750m``) and compare equal
    after a JSON round trip; the suggestion grid (0.25 vCPU) is already exact in binary,
    so this only removes float noise from a hand-made hint.
    """
    return max(1, round(cpu * 1000)) / 1000


def plan_resize(hint: SizeHint, *, deployment: str) -> Resize:
    """The requests a revision gets when its hint is applied.

    Raises:
        Conflict: the verdict is "no data" or "right-sized" (the message names it and
            why), so there is nothing to apply; or a hint without a suggestion.
    """
    where = f"deployment {deployment!r} revision {hint.revision}"
    if hint.verdict == "no data":
        raise Conflict(
            f"{where}: right-sizing verdict is 'no data' ({hint.reason}); nothing to apply"
        )
    if hint.verdict == "right-sized":
        raise Conflict(
            f"{where}: right-sizing verdict is 'right-sized' (requests {hint.requested_cpu:g} "
            f"vCPU, {hint.requested_memory_mb} MB match the suggestion); nothing to apply"
        )
    if hint.suggested_cpu is None or hint.suggested_memory_mb is None:
        raise Conflict(f"{where}: the {hint.verdict} hint has no suggested size; nothing to apply")
    return Resize(
        revision=hint.revision,
        verdict=hint.verdict,
        cpu_before=hint.requested_cpu,
        memory_mb_before=hint.requested_memory_mb,
        cpu_after=whole_millicores(hint.suggested_cpu),
        memory_mb_after=max(1, int(hint.suggested_memory_mb)),
        gpu=hint.requested_gpu,
    )


__all__ = [
    "CPU_FLOOR",
    "CPU_HEADROOM",
    "CPU_STEP",
    "MEMORY_FLOOR_MB",
    "MEMORY_HEADROOM",
    "MEMORY_STEP_MB",
    "MIN_SAMPLES",
    "Resize",
    "SizeHint",
    "monthly_saving",
    "plan_resize",
    "quantile",
    "rightsize",
    "round_up",
    "suggest",
    "whole_millicores",
]

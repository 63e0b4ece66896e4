"""The cost ledger: a period's facts priced with the catalog, and roll-ups (pure).

What is billed (``[start, end)`` is the period; "now" caps what still runs):

- a **replica** from ``max(start, started)`` to ``min(end, stopped or now)``, for the
  vCPU, memory and GPU it requested: ``cpu x s x provisioned.cpu + GiB x s x
  provisioned.memory + gpu x s x provisioned.gpu``;
- a **run** the same way over its duration, for ``runs.cpu`` / ``runs.memory_gb`` /
  ``runs.gpu`` of the catalog unless its tags ``cost.cpu`` / ``cost.memory_gb`` /
  ``cost.gpu`` say otherwise;
- **stored bytes** of the artifact index, from their creation to ``min(end, now)``:
  ``bytes x s / 2**30 x storage.artifacts``;
- **traffic** costs nothing by itself: it carries the requests a deployment answered
  (per minute bucket) and the ready-replica time the idle share is measured on.

Only the overlap of a fact with the period counts, so periods that touch add up: the
integer quantities (replica-, run- and byte-milliseconds, requests) exactly, money to
the last bits of a float. Sums use :func:`math.fsum`, which is exact before its one
rounding and so independent of order: recomputing a period gives identical numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from modelyard.core.cost_facts import CostFacts, Tags
from modelyard.core.errors import InvalidInput
from modelyard.cost.prices import GIB, HOUR_S, MONTH_S, PriceCatalog

Kind = Literal["replica", "run", "storage", "traffic"]
RollupBy = Literal["deployment", "project", "tag", "run", "revision"]
ROLLUPS: tuple[str, ...] = ("deployment", "project", "tag", "run")
#: Tag keys that never allocate cost: MLflow's and modelyard's own, and the run
#: capacity tags (``cost.cpu`` …), which say what to bill rather than to whom.
RESERVED_TAG_PREFIXES = ("mlflow.", "modelyard.", "cost.")
RUN_CAPACITY_TAGS = {"cpu": "cost.cpu", "memory_gb": "cost.memory_gb", "gpu": "cost.gpu"}
UNTAGGED = "(untagged)"
NO_DEPLOYMENT = "(runs and storage)"
NO_RUN = "(not a run)"
UNATTRIBUTED = "(unattributed)"


@dataclass(frozen=True)
class LineItem:
    """What one owner (a deployment revision, a run, a project's or a namespace's
    storage) cost in the period, with the quantities billed.

    ``*_ms`` quantities are unit-milliseconds: ``cpu_ms`` is vCPU-milliseconds,
    ``gib_ms`` GiB-milliseconds, ``byte_ms`` byte-milliseconds.
    """

    kind: Kind
    project: str
    deployment: str
    deployment_id: int | None
    revision: int | None
    run_id: str
    run_name: str
    tags: tuple[tuple[str, str], ...]
    cost: float = 0.0
    replica_ms: int = 0
    run_ms: int = 0
    cpu_ms: float = 0.0
    gib_ms: float = 0.0
    gpu_ms: float = 0.0
    byte_ms: int = 0
    requests: int = 0
    sampled_replica_s: float = 0.0
    idle_replica_s: float = 0.0


@dataclass(frozen=True)
class Group:
    """A roll-up of line items (or the ledger's total).

    Attributes:
        key: the group's name as shown (a deployment, project, ``key=value``, run id).
        project: the project when the grouping is within one ("" otherwise).
        cost: money in the catalog's currency; ``cost_by_kind`` splits it.
        serving_cost: the part billed to deployments (replicas, prediction logs).
        requests: requests the group's deployments answered.
        name: a run's name, for a group by run.
    """

    key: str
    project: str
    cost: float
    cost_by_kind: Mapping[str, float]
    serving_cost: float
    replica_ms: int
    run_ms: int
    cpu_ms: float
    gib_ms: float
    gpu_ms: float
    byte_ms: int
    requests: int
    sampled_replica_s: float
    idle_replica_s: float
    name: str = ""

    @property
    def cost_per_1k(self) -> float | None:
        """Serving cost per 1,000 answered requests (None without requests)."""
        return self.serving_cost / self.requests * 1000 if self.requests else None

    @property
    def idle_share(self) -> float | None:
        """Share of sampled ready-replica time in intervals that answered no request."""
        if self.sampled_replica_s <= 0:
            return None
        return min(1.0, self.idle_replica_s / self.sampled_replica_s)

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "name": self.name,
            "project": self.project,
            "cost": self.cost,
            "cost_by_kind": dict(self.cost_by_kind),
            "serving_cost": self.serving_cost,
            "replica_hours": self.replica_ms / 1000 / HOUR_S,
            "run_hours": self.run_ms / 1000 / HOUR_S,
            "vcpu_hours": self.cpu_ms / 1000 / HOUR_S,
            "gb_hours": self.gib_ms / 1000 / HOUR_S,
            "gpu_hours": self.gpu_ms / 1000 / HOUR_S,
            "stored_gb_months": self.byte_ms / 1000 / GIB / MONTH_S,
            "requests": self.requests,
            "cost_per_1k": self.cost_per_1k,
            "idle_share": self.idle_share,
        }


@dataclass(frozen=True)
class Ledger:
    """Line items of ``[start_ms, end_ms)`` in ``currency``; ``warnings`` name facts
    billed with a fallback (a run's unreadable capacity tag)."""

    start_ms: int
    end_ms: int
    currency: str
    items: tuple[LineItem, ...]
    warnings: tuple[str, ...] = ()

    @property
    def total(self) -> Group:
        return summarize("total", "", self.items)

    def rollup(self, by: str, *, tag_key: str | None = None) -> list[Group]:
        """Groups by ``deployment``, ``project``, ``tag``, ``run`` (or ``revision``),
        biggest cost first.

        Every item falls in exactly one group (so the groups sum to :attr:`total`),
        except ``by="tag"`` without ``tag_key``: an item with several tags counts in
        each of their ``key=value`` groups. Items without a deployment, run, tag or
        project gather in one group named for that (``(runs and storage)`` …).

        Raises:
            InvalidInput: an unknown ``by``.
        """
        keys = _grouping(by, tag_key)
        grouped: dict[tuple[str, str], list[LineItem]] = {}
        for item in self.items:
            for key in keys(item):
                grouped.setdefault(key, []).append(item)
        groups = [
            summarize(label, project, items, name=items[0].run_name if by == "run" else "")
            for (project, label), items in grouped.items()
        ]
        return sorted(groups, key=lambda g: (-g.cost, g.project, g.key))


def _grouping(by: str, tag_key: str | None) -> Callable[[LineItem], list[tuple[str, str]]]:
    if by == "deployment":
        return lambda i: [(i.project, i.deployment or NO_DEPLOYMENT)]
    if by == "project":
        return lambda i: [("", i.project or UNATTRIBUTED)]
    if by == "run":
        return lambda i: [(i.project, i.run_id or NO_RUN)]
    if by == "revision":
        return lambda i: [(i.project, str(i.revision) if i.revision is not None else "-")]
    if by == "tag":
        if tag_key:
            return lambda i: [("", _tag_label(tag_key, dict(i.tags).get(tag_key)))]
        return lambda i: [("", f"{k}={v}") for k, v in i.tags] or [("", UNTAGGED)]
    raise InvalidInput(f"by: unknown roll-up {by!r} (use {', '.join(ROLLUPS)})")


def _tag_label(key: str, value: str | None) -> str:
    return UNTAGGED if value is None else f"{key}={value}"


def summarize(key: str, project: str, items: Sequence[LineItem], *, name: str = "") -> Group:
    """The sums of ``items`` (money and float quantities with :func:`math.fsum`)."""

    def fsum(get: Callable[[LineItem], float], of: Iterable[LineItem] = items) -> float:
        return math.fsum(get(i) for i in of)

    by_kind = {
        kind: fsum(lambda i: i.cost, [i for i in items if i.kind == kind])
        for kind in ("replica", "run", "storage")
    }
    return Group(
        key=key,
        project=project,
        cost=fsum(lambda i: i.cost),
        cost_by_kind=by_kind,
        serving_cost=fsum(lambda i: i.cost, [i for i in items if i.deployment]),
        replica_ms=sum(i.replica_ms for i in items),
        run_ms=sum(i.run_ms for i in items),
        cpu_ms=fsum(lambda i: i.cpu_ms),
        gib_ms=fsum(lambda i: i.gib_ms),
        gpu_ms=fsum(lambda i: i.gpu_ms),
        byte_ms=sum(i.byte_ms for i in items),
        requests=sum(i.requests for i in items),
        sampled_replica_s=fsum(lambda i: i.sampled_replica_s),
        idle_replica_s=fsum(lambda i: i.idle_replica_s),
        name=name,
    )


# ---- building ---------------------------------------------------------------------------

_LineKey = tuple[Kind, str, str, int | None, int | None, str]


class _Acc:
    """Quantities of one line being gathered (floats summed with fsum at the end)."""

    def __init__(self) -> None:
        self.replica_ms = 0
        self.run_ms = 0
        self.byte_ms = 0
        self.requests = 0
        self.cpu: list[float] = []
        self.gib: list[float] = []
        self.gpu: list[float] = []
        self.sampled: list[float] = []
        self.idle: list[float] = []


def build_ledger(facts: CostFacts, catalog: PriceCatalog, start_ms: int, end_ms: int) -> Ledger:
    """Price ``facts`` over ``[start_ms, end_ms)``.

    Raises:
        InvalidInput: ``end_ms`` is not after ``start_ms``.
    """
    if end_ms <= start_ms:
        raise InvalidInput(f"until must be after since ({start_ms} >= {end_ms} ms)")
    open_end = min(end_ms, facts.now_ms)
    lines: dict[_LineKey, _Acc] = {}
    warnings: list[str] = []

    def line(key: _LineKey) -> _Acc:
        return lines.setdefault(key, _Acc())

    for r in facts.replicas:
        lo = max(start_ms, r.started_ms)
        hi = min(end_ms, r.stopped_ms) if r.stopped_ms is not None else open_end
        if hi > lo:
            acc = line(("replica", r.project, r.deployment, r.deployment_id, r.revision, ""))
            acc.replica_ms += hi - lo
            acc.cpu.append(r.cpu * (hi - lo))
            acc.gib.append(r.memory_mb / 1024 * (hi - lo))
            acc.gpu.append(r.gpu * (hi - lo))
    for run in facts.runs:
        lo = max(start_ms, run.start_ms)
        hi = min(end_ms, run.end_ms) if run.end_ms is not None else open_end
        if hi > lo:
            info = facts.runs_info.get(run.run_id)
            cap = run_capacity(catalog, info.tags if info else {}, run.run_id, warnings)
            acc = line(("run", run.project, "", None, None, run.run_id))
            acc.run_ms += hi - lo
            acc.cpu.append(cap["cpu"] * (hi - lo))
            acc.gib.append(cap["memory_gb"] * (hi - lo))
            acc.gpu.append(cap["gpu"] * (hi - lo))
    for f in facts.storage:
        lo, hi = max(start_ms, f.created_ms), open_end
        if hi > lo and f.bytes > 0:
            key: _LineKey = ("storage", f.project, f.deployment, f.deployment_id, None, f.run_id)
            line(key).byte_ms += f.bytes * (hi - lo)
    for t in facts.traffic:
        if start_ms <= t.bucket_ms < end_ms:
            acc = line(("traffic", t.project, t.deployment, t.deployment_id, None, ""))
            acc.requests += t.requests
            acc.sampled.append(t.replica_s)
            acc.idle.append(t.idle_replica_s)
    items = tuple(_item(k, acc, facts, catalog) for k, acc in sorted(lines.items(), key=_order))
    return Ledger(start_ms, end_ms, catalog.currency, items, tuple(dict.fromkeys(warnings)))


def _order(entry: tuple[_LineKey, _Acc]) -> tuple[object, ...]:
    kind, project, deployment, dep_id, revision, run_id = entry[0]
    return (kind, project, deployment, dep_id or 0, revision or 0, run_id)


def _item(key: _LineKey, acc: _Acc, facts: CostFacts, catalog: PriceCatalog) -> LineItem:
    kind, project, deployment, dep_id, revision, run_id = key
    cpu_ms, gib_ms, gpu_ms = math.fsum(acc.cpu), math.fsum(acc.gib), math.fsum(acc.gpu)
    if kind == "storage":
        cost = acc.byte_ms / 1000 / GIB * catalog.rate("storage.artifacts")
    else:
        cost = math.fsum(
            (
                cpu_ms / 1000 * catalog.cpu_second,
                gib_ms / 1000 * catalog.gib_second,
                gpu_ms / 1000 * catalog.gpu_second,
            )
        )
    info = facts.runs_info.get(run_id) if run_id else None
    return LineItem(
        kind=kind,
        project=project,
        deployment=deployment,
        deployment_id=dep_id,
        revision=revision,
        run_id=run_id,
        run_name=info.name if info is not None else "",
        tags=item_tags(facts, project, dep_id, run_id),
        cost=cost,
        replica_ms=acc.replica_ms,
        run_ms=acc.run_ms,
        cpu_ms=cpu_ms,
        gib_ms=gib_ms,
        gpu_ms=gpu_ms,
        byte_ms=acc.byte_ms,
        requests=acc.requests,
        sampled_replica_s=math.fsum(acc.sampled),
        idle_replica_s=math.fsum(acc.idle),
    )


def item_tags(
    facts: CostFacts, project: str, deployment_id: int | None, run_id: str
) -> tuple[tuple[str, str], ...]:
    """The tags a line is allocated by: the project's, overridden by the deployment's
    (for a deployment's lines) or by the run's (for a run's lines); reserved keys
    (:data:`RESERVED_TAG_PREFIXES`) left out."""
    merged: dict[str, str] = dict(facts.project_tags.get(project, {}))
    if deployment_id is not None:
        merged.update(facts.deployment_tags.get(deployment_id, {}))
    if run_id:
        info = facts.runs_info.get(run_id)
        merged.update(info.tags if info is not None else {})
    return tuple(sorted((k, v) for k, v in merged.items() if not is_reserved_tag(k)))


def is_reserved_tag(key: str) -> bool:
    return key.startswith(RESERVED_TAG_PREFIXES)


def run_capacity(
    catalog: PriceCatalog, tags: Tags, run_id: str, warnings: list[str]
) -> dict[str, float]:
    """vCPU, GB and GPUs a run is billed for: its ``cost.*`` tags, else the catalog's
    ``runs.*``; an unreadable tag falls back to the catalog and adds a warning."""
    capacity = {}
    for name, tag in RUN_CAPACITY_TAGS.items():
        default = catalog.number(f"runs.{name}")
        text = tags.get(tag)
        value = default
        if text is not None:
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not (math.isfinite(value) and value >= 0):
                warnings.append(
                    f"run {run_id}: tag {tag}={text!r} is not a number >= 0; "
                    f"billed as {default:g} (runs.{name})"
                )
                value = default
        capacity[name] = value
    return capacity


def ledger_json(ledger: Ledger, groups: Sequence[Group]) -> dict[str, object]:
    """The common shape of a report: its period, currency, groups and total."""
    return {
        "start_ms": ledger.start_ms,
        "end_ms": ledger.end_ms,
        "currency": ledger.currency,
        "groups": [g.to_json() for g in groups],
        "total": ledger.total.to_json(),
        "warnings": list(ledger.warnings),
    }


__all__ = [
    "ROLLUPS",
    "Group",
    "Ledger",
    "LineItem",
    "RollupBy",
    "build_ledger",
    "item_tags",
    "ledger_json",
    "run_capacity",
    "summarize",
]

"""Summaries of simulation results: the numbers, JSON, a Markdown table and a plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from modelyard.autoscale.simulator import SimResult
from modelyard.autoscale.traces import FloatArray
from modelyard.core.errors import InvalidInput

# The keys of each policy in ``--json``; scripts depend on exactly these.
SUMMARY_KEYS = (
    "requests",
    "slo_violation_pct",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "dropped",
    "replica_seconds",
    "cost_usd",
    "scale_events",
    "cold_starts",
    "max_replicas",
)


@dataclass(frozen=True)
class Slo:
    """A latency SLO, or a queueing-delay SLO (``includes_service=False``)."""

    seconds: float
    includes_service: bool = True

    def missed(self, result: SimResult) -> np.ndarray:
        """Which requests missed it; a dropped request always did."""
        end = result.finish_s if self.includes_service else result.start_s
        delay = np.where(np.isnan(end), np.inf, end - result.arrival_s)
        return np.asarray(delay > self.seconds + 1e-9)

    def describe(self) -> str:
        what = "latency" if self.includes_service else "queueing delay"
        return f"{what} <= {self.seconds * 1000:g} ms"


@dataclass(frozen=True)
class PolicySummary:
    """One policy's row; the field names are the ``--json`` keys."""

    requests: int
    slo_violation_pct: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    dropped: int
    replica_seconds: float
    cost_usd: float
    scale_events: int
    cold_starts: int
    max_replicas: int


def summarize(result: SimResult, slo: Slo, price_usd_per_replica_hour: float) -> PolicySummary:
    """The per-policy numbers of a simulation."""
    latency = (result.finish_s - result.arrival_s)[~np.isnan(result.finish_s)]
    p50, p95, p99 = (
        (round(float(v) * 1000, 1) for v in np.percentile(latency, [50, 95, 99]))
        if latency.size
        else (None, None, None)
    )
    n = int(result.arrival_s.size)
    return PolicySummary(
        requests=n,
        slo_violation_pct=round(float(slo.missed(result).sum()) * 100.0 / max(n, 1), 3),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        dropped=result.dropped,
        replica_seconds=round(result.replica_seconds, 1),
        cost_usd=round(result.replica_seconds / 3600.0 * price_usd_per_replica_hour, 4),
        scale_events=result.scale_events,
        cold_starts=result.cold_starts,
        max_replicas=result.max_replicas,
    )


def report_json(
    settings: Mapping[str, object],
    requests: int,
    duration_s: float,
    summaries: Mapping[str, PolicySummary],
) -> dict[str, object]:
    """``{"settings", "trace": {"requests", "duration_s"}, "policies": {name: {...}}}``."""
    return {
        "settings": dict(settings),
        "trace": {"requests": requests, "duration_s": round(duration_s, 3)},
        "policies": {name: asdict(summary) for name, summary in summaries.items()},
    }


def cell(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"
    return f"{value:,}"


TABLE_HEADERS = (
    "policy",
    "SLO miss %",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "dropped",
    "replica-s",
    "cost $",
    "scalings",
    "cold starts",
    "max repl.",
)


def table_rows(summaries: Mapping[str, PolicySummary]) -> list[list[str]]:
    """One row of display strings per policy, in ``TABLE_HEADERS`` order."""
    rows = []
    for name, s in summaries.items():
        rows.append(
            [
                name,
                f"{s.slo_violation_pct:.2f}",
                cell(s.p50_ms),
                cell(s.p95_ms),
                cell(s.p99_ms),
                cell(s.dropped),
                f"{s.replica_seconds:,.0f}",
                f"{s.cost_usd:.2f}",
                cell(s.scale_events),
                cell(s.cold_starts),
                cell(s.max_replicas),
            ]
        )
    return rows


def markdown_grid(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report_head(
    title: str, settings: Mapping[str, object], requests: int, duration_s: float
) -> list[str]:
    """The first lines of a replay's Markdown report: title, settings, the trace."""
    parts = [f"# {title}", "", "## Settings", ""]
    parts += [f"- `{key}`: {value}" for key, value in settings.items()]
    return [*parts, "", f"Trace: {requests:,} requests over {duration_s:,.1f} s.", ""]


def markdown_table(summaries: Mapping[str, PolicySummary]) -> str:
    return markdown_grid(TABLE_HEADERS, table_rows(summaries))


def markdown_report(
    settings: Mapping[str, object],
    requests: int,
    duration_s: float,
    summaries: Mapping[str, PolicySummary],
    plot_name: str | None = None,
) -> str:
    """A Markdown page: settings, the trace, the table, and the plot if there is one."""
    parts = report_head("Autoscaling simulation", settings, requests, duration_s)
    parts += ["## Results", "", markdown_table(summaries), ""]
    if plot_name:
        parts += [f"![arrivals, replicas and p99 latency over time]({plot_name})", ""]
    return "\n".join(parts)


def bucket_s(duration_s: float) -> float:
    return max(1.0, duration_s / 600.0)


def per_bucket_p99_ms(result: SimResult, edges: FloatArray) -> FloatArray:
    served = ~np.isnan(result.finish_s)
    arrival = result.arrival_s[served]
    latency = (result.finish_s - result.arrival_s)[served] * 1000.0
    index = np.searchsorted(edges, arrival, side="right") - 1
    out = np.full(edges.size - 1, np.nan)
    order = np.argsort(index, kind="stable")
    index, latency = index[order], latency[order]
    bounds = np.searchsorted(index, np.arange(edges.size))
    for b in range(edges.size - 1):
        chunk = latency[bounds[b] : bounds[b + 1]]
        if chunk.size:
            out[b] = np.percentile(chunk, 99)
    return out


def plot_results(path: Path, results: Sequence[SimResult], slo: Slo) -> None:
    """Arrivals per second, replicas and p99 latency over time for each policy (PNG).

    Raises:
        InvalidInput: matplotlib (the ``plot`` extra) is not installed.
    """
    try:
        import matplotlib  # lazy: keeps ``modelyard --help`` fast; optional (``plot`` extra)
    except ImportError:
        raise InvalidInput("plotting needs matplotlib: pip install 'modelyard[plot]'") from None

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    end = max(max(r.end_s for r in results), 1.0)
    bucket = bucket_s(end)
    edges = np.arange(0.0, end + bucket, bucket)
    arrivals = results[0].arrival_s
    counts, _ = np.histogram(arrivals, bins=edges)
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    try:
        axes[0].plot(edges[:-1], counts / bucket, color="black", linewidth=0.8)
        axes[0].set_ylabel("arrivals / s")
        for result in results:
            times = [t for t, _ in result.timeline] + [end]
            counts_r = [n for _, n in result.timeline] + [result.timeline[-1][1]]
            axes[1].step(times, counts_r, where="post", label=result.policy, linewidth=1.0)
            p99 = per_bucket_p99_ms(result, edges)
            axes[2].plot(edges[:-1], p99, label=result.policy, linewidth=0.8)
        axes[1].set_ylabel("replicas")
        axes[1].legend(loc="upper right", fontsize="small", ncol=3)
        if slo.includes_service:
            axes[2].axhline(slo.seconds * 1000, color="red", linestyle="--", linewidth=0.8)
        axes[2].set_yscale("log")
        axes[2].set_ylabel(f"p99 latency ms ({bucket:.3g} s buckets)")
        axes[2].set_xlabel("time s")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)

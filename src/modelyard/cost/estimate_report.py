"""``cost estimate`` output: the JSON document, table rows, a Markdown page and a plot.

The JSON document (``--json``) is::

    {
      "settings": {...every option the estimate ran with...},
      "trace": {"source": str, "requests": int, "duration_s": float},
      "currency": "USD",
      "options": {"<option>": {<OPTION_KEYS>}, ...},     # in the order asked
      "recommendation": {"option": str | null, "within_budget": bool,
                         "max_slo_miss_pct": float, "reason": str},
      "notes": [str, ...]
    }

Scripts depend on exactly these keys (see :data:`OPTION_KEYS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.autoscale.report import (
    Slo,
    bucket_s,
    cell,
    markdown_grid,
    per_bucket_p99_ms,
    report_head,
)
from modelyard.autoscale.simulator import SimResult
from modelyard.autoscale.traces import FloatArray
from modelyard.core.errors import InvalidInput
from modelyard.cost.estimate import Estimate, OptionResult, format_money

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The keys of each option in ``--json`` (``OptionResult``'s fields, less ``name``).
OPTION_KEYS = tuple(f.name for f in fields(OptionResult) if f.name != "name")
#: Significant digits kept in ``--json`` (sums of tiny prices need them, not decimals).
_DIGITS = {"cost": 9, "cost_per_1k": 9, "slo_miss_pct": 6, "replica_hours": 9, "gib_seconds": 9}


def _rounded(row: OptionResult) -> dict[str, object]:
    out = asdict(row)
    del out["name"]
    for key, digits in _DIGITS.items():
        if isinstance(out[key], float):
            out[key] = float(f"{out[key]:.{digits}g}")
    return out


def estimate_json(
    settings: Mapping[str, object],
    source: str,
    duration_s: float,
    result: Estimate,
    max_slo_miss_pct: float,
) -> dict[str, object]:
    """The ``--json`` document (see the module docstring)."""
    requests = result.options[0].requests if result.options else 0
    return {
        "settings": dict(settings),
        "trace": {"source": source, "requests": requests, "duration_s": round(duration_s, 3)},
        "currency": result.currency,
        "options": {row.name: _rounded(row) for row in result.options},
        "recommendation": {
            "option": result.recommendation.option,
            "within_budget": result.recommendation.within_budget,
            "max_slo_miss_pct": max_slo_miss_pct,
            "reason": result.recommendation.reason,
        },
        "notes": list(result.notes),
    }


def table_headers(currency: str) -> tuple[str, ...]:
    return (
        "option",
        f"cost {currency}",
        f"{currency}/1k req",
        "SLO miss %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "cold starts",
        "failures",
        "max inst.",
        "usage",
    )


def _failures(row: OptionResult) -> str:
    parts = [
        f"{count:,} {what}"
        for count, what in (
            (row.throttled, "throttled"),
            (row.timed_out, "timed out"),
            (row.dropped, "dropped"),
        )
        if count
    ]
    return f"{row.failures:,} ({', '.join(parts)})" if parts else "0"


def _usage(row: OptionResult) -> str:
    if row.replica_hours is not None:
        hours = row.replica_hours
        return f"{hours:,.1f} replica-h" if hours >= 100 else f"{hours:.2f} replica-h"
    return f"{row.gib_seconds or 0.0:,.0f} GB-s"


def table_rows(result: Estimate) -> list[list[str]]:
    """One row of display strings per option, in :func:`table_headers` order."""
    return [
        [
            row.label,
            format_money(row.cost),
            format_money(row.cost_per_1k),
            f"{row.slo_miss_pct:.2f}",
            cell(row.p50_ms),
            cell(row.p95_ms),
            cell(row.p99_ms),
            f"{row.cold_starts:,}",
            _failures(row),
            f"{row.max_instances:,}",
            _usage(row),
        ]
        for row in result.options
    ]


def markdown_table(result: Estimate) -> str:
    return markdown_grid(table_headers(result.currency), table_rows(result))


def markdown_report(
    settings: Mapping[str, object],
    requests: int,
    duration_s: float,
    result: Estimate,
    plot_name: str | None = None,
) -> str:
    """A Markdown page: settings, the trace, the table, the recommendation, the notes."""
    parts = report_head("Cost estimate", settings, requests, duration_s)
    parts += ["## Results", "", markdown_table(result), ""]
    parts += [f"**Recommendation: {result.recommendation.reason}**", ""]
    if result.notes:
        parts += ["Notes:", ""] + [f"- {note}" for note in result.notes] + [""]
    if plot_name:
        parts += [f"![cost per option, instances and p99 latency over time]({plot_name})", ""]
    return "\n".join(parts)


def _shared(result: Estimate) -> list[tuple[str, SimResult]]:
    """One (label, run) per distinct replay: options on the same run share a line."""
    labels: dict[int, list[str]] = {}
    runs: dict[int, SimResult] = {}
    for row in result.options:
        run = result.runs[row.name]
        labels.setdefault(id(run), []).append(row.label)
        runs[id(run)] = run
    return [(" = ".join(labels[key]), runs[key]) for key in runs]


def plot_estimate(path: Path, result: Estimate, slo: Slo, max_slo_miss_pct: float) -> None:
    """Cost per option (bars; red when over the SLO budget), busy replicas or instances
    over time, and p99 latency over time, as a PNG.

    Raises:
        InvalidInput: matplotlib (the ``plot`` extra) is not installed.
    """
    try:
        import matplotlib  # lazy: keeps ``modelyard --help`` fast; optional (``plot`` extra)
    except ImportError:
        raise InvalidInput("plotting needs matplotlib: pip install 'modelyard[plot]'") from None

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    lines = _shared(result)
    end = max(max((run.end_s for _, run in lines), default=1.0), 1.0)
    hours = end > 6 * 3600
    scale, unit = (3600.0, "h") if hours else (1.0, "s")
    bucket = bucket_s(end)
    edges = np.arange(0.0, end + bucket, bucket)
    fig, axes = plt.subplots(3, 1, figsize=(11, 10), gridspec_kw={"height_ratios": [1, 1, 1]})
    try:
        _cost_bars(axes[0], result.options, result.currency, max_slo_miss_pct)
        for label, run in lines:
            x = edges[:-1] / scale
            axes[1].plot(x, _bucket_mean(run.timeline, edges), label=label, linewidth=1.0)
            axes[2].plot(x, per_bucket_p99_ms(run, edges), label=label, linewidth=0.8)
        axes[1].set_ylabel("replicas / busy instances\n(mean per bucket)")
        axes[1].legend(loc="upper right", fontsize="small", ncol=2)
        if slo.includes_service:
            axes[2].axhline(slo.seconds * 1000, color="red", linestyle="--", linewidth=0.8)
        axes[2].set_yscale("log")
        axes[2].set_ylabel(f"p99 latency ms ({bucket:.3g} s buckets)")
        axes[2].set_xlabel(f"time {unit}")
        axes[1].sharex(axes[2])
        fig.tight_layout()
        _save_small_png(fig, path)
    finally:
        plt.close(fig)


def _save_small_png(fig: Figure, path: Path) -> None:
    """Save with a 256-colour palette: a third of the bytes of a full-colour PNG, small
    enough to keep next to a report or in docs, and a line plot loses nothing visible."""
    import io

    from PIL import Image  # matplotlib's own dependency

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)


def _bucket_mean(timeline: Sequence[tuple[float, int]], edges: FloatArray) -> FloatArray:
    """The time-average of a step function ``(t, value)`` over each bucket: what is
    billed, so a serverless platform's brief bursts and idle gaps average out."""
    import numpy as np

    times = np.asarray([t for t, _ in timeline], dtype=np.float64)
    values = np.asarray([v for _, v in timeline], dtype=np.float64)
    area = np.concatenate([[0.0], np.cumsum(values[:-1] * np.diff(times))])
    at = np.clip(np.searchsorted(times, edges, side="right") - 1, 0, None)
    cumulative = area[at] + values[at] * (edges - times[at])
    return np.asarray(np.diff(cumulative) / np.diff(edges), dtype=np.float64)


def _cost_bars(
    axis: Axes, rows: Sequence[OptionResult], currency: str, max_slo_miss_pct: float
) -> None:
    labels = [row.label for row in rows]
    costs = [row.cost for row in rows]
    colors = ["tab:blue" if row.slo_miss_pct <= max_slo_miss_pct else "tab:red" for row in rows]
    bars = axis.bar(labels, costs, color=colors)
    for bar, row in zip(bars, rows, strict=True):
        axis.annotate(
            f"{format_money(row.cost)} {currency}\n{row.slo_miss_pct:.2f}% missed",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize="small",
        )
    axis.set_ylabel(f"cost {currency} (red: over {max_slo_miss_pct:g}% SLO misses)")
    axis.margins(y=0.25)

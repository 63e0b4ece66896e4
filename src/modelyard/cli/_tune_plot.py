"""The parallel-coordinates plot of ``modelyard tune show --plot``.

Drawn with matplotlib (the optional ``plot`` extra) on an Agg canvas (no pyplot, no
global backend): one vertical axis per param and one for the objective, every axis with
its own scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.errors import InvalidInput
from modelyard.tuning.study_report import ParamSpec, ParamValue, StudyView, categories_of, is_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class _Axis:
    label: str
    scale: str  # linear | log | categorical
    low: float
    high: float
    categories: tuple[ParamValue, ...] = ()

    def position(self, value: ParamValue) -> float:
        """Where ``value`` sits on this axis, 0 (bottom) to 1 (top); NaN when absent."""
        if self.scale == "categorical":
            keys = [repr(c) for c in self.categories]
            x = float(keys.index(repr(value))) if repr(value) in keys else math.nan
        else:
            x = float(value) if is_number(value) else math.nan
        low, high = self.low, self.high
        if self.scale == "log":
            x, low, high = math.log10(x) if x > 0 else math.nan, math.log10(low), math.log10(high)
        return 0.5 if high == low else (x - low) / (high - low)

    def limits(self) -> tuple[float, float]:
        """The axis' data limits: ``low`` at the bottom, ``high`` at the top; a flat
        axis is widened around its one value, which :meth:`position` puts at 0.5."""
        if self.high > self.low:
            return self.low, self.high
        if self.scale == "log":
            return self.low / 10, self.low * 10
        return self.low - 1, self.low + 1


def _param_axis(name: str, spec: ParamSpec | None, seen: list[ParamValue]) -> _Axis:
    categories = categories_of(spec, seen)
    if categories is not None:
        return _Axis(name, "categorical", 0.0, len(categories) - 1.0, tuple(categories))
    numbers = [float(v) for v in seen if is_number(v)] or [0.0]
    low, high = min(numbers), max(numbers)
    if spec is not None and spec.low is not None and spec.high is not None:
        low, high = min(low, spec.low), max(high, spec.high)
    log = spec is not None and spec.log and low > 0
    return _Axis(f"{name} (log)" if log else name, "log" if log else "linear", low, high)


def parallel_coordinates(study: StudyView) -> Figure:
    """A parallel-coordinates figure of the complete trials (Agg canvas, no pyplot).

    One vertical axis per param (log params on a log axis, categorical params as evenly
    spaced ticks) and one for the objective; lines coloured by value, best trial in red.

    Raises:
        InvalidInput: the study has no complete trial to draw, or matplotlib (the
            ``plot`` extra) is not installed.
    """
    try:  # optional: the ``plot`` extra
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
    except ImportError:
        raise InvalidInput("--plot needs matplotlib: pip install 'modelyard[plot]'") from None

    trials = study.scored()
    if not trials:
        raise InvalidInput(f"study {study.name!r} has no complete trial to plot")
    names = list(dict.fromkeys([*study.space, *(n for t in trials for n in t.params)]))
    axes = [
        _param_axis(n, study.space.get(n), [t.params.get(n) for t in trials if n in t.params])
        for n in names
    ]
    values = [t.value or 0.0 for t in trials]
    axes.append(
        _Axis(f"{study.metric or 'value'} ({study.mode})", "linear", min(values), max(values))
    )
    fig = Figure(figsize=(max(6.0, 1.8 * len(axes)), 4.8), dpi=100)
    FigureCanvasAgg(fig)
    left, right, bottom, height = 0.08, 0.86, 0.12, 0.74
    xs = [i / max(len(axes) - 1, 1) for i in range(len(axes))] if len(axes) > 1 else [0.5]
    host = fig.add_axes((left, bottom, right - left, height))
    host.set_xlim(0, 1)
    host.set_ylim(0, 1)
    host.axis("off")
    norm = Normalize(min(values), max(values) if max(values) > min(values) else min(values) + 1)
    cmap = colormaps["viridis" if study.mode == "max" else "viridis_r"]
    best = study.best
    for t in trials:
        ys = [a.position(t.params.get(n)) for a, n in zip(axes[:-1], names, strict=True)]
        ys.append(axes[-1].position(t.value))
        is_best = best is not None and t.number == best.number
        host.plot(
            xs,
            ys,
            color="red" if is_best else cmap(norm(t.value or 0.0)),
            linewidth=2.8 if is_best else 1.2,
            alpha=1.0 if is_best else 0.75,
            zorder=3 if is_best else 2,
            label=f"best: trial {t.number}" if is_best else None,
        )
    for x, axis in zip(xs, axes, strict=True):
        ax = fig.add_axes((left + x * (right - left), bottom, 1e-4, height))
        for side in ("right", "top", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_xticks([])
        ax.set_title(axis.label, fontsize=9, pad=8)
        ax.set_ylim(*axis.limits())
        if axis.scale == "log":
            ax.set_yscale("log")
        elif axis.scale == "categorical":
            ax.set_yticks(range(len(axis.categories)), [str(c) for c in axis.categories])
    colour = fig.add_axes((0.9, bottom, 0.02, height))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=colour, label=study.metric or "value")
    if best is not None and best in trials:
        host.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), frameon=False, fontsize=8)
    fig.suptitle(f"study {study.name}: {len(trials)} complete trials", fontsize=11)
    return fig


def write_parallel_coordinates(study: StudyView, path: Path) -> Path:
    """Draw :func:`parallel_coordinates` of ``study`` into the PNG file ``path``.

    Raises:
        InvalidInput: the folder of ``path`` does not exist, nothing to plot, or no
            matplotlib (the ``plot`` extra).
    """
    if not path.parent.is_dir():
        raise InvalidInput(f"--plot: folder {str(path.parent)!r} does not exist")
    figure = parallel_coordinates(study)
    partial = path.with_name(f".{path.name}.partial")
    try:  # a reader never sees half a PNG under the name asked for
        figure.savefig(partial, format="png")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path

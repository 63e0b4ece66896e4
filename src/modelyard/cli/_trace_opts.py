"""The trace-replay options ``autoscale simulate`` and ``cost estimate`` share, and the
one way both turn them into a loaded trace, service times and an SLO."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelyard.cli._output import fail

if TYPE_CHECKING:
    from modelyard.autoscale.report import Slo
    from modelyard.autoscale.traces import ServiceTime, Trace


class TraceFormat(enum.StrEnum):
    timestamps = "timestamps"
    counts = "counts"


TraceOpt = Annotated[Path, typer.Option("--trace", help="The trace file.")]
FormatOpt = Annotated[
    TraceFormat,
    typer.Option(
        "--format", help="timestamps: CSV, one row per request; counts: requests per interval."
    ),
]
TimeColumnOpt = Annotated[
    str | None, typer.Option(help="CSV column with arrival times (ISO 8601 or epoch seconds).")
]
ServiceTimeColumnOpt = Annotated[
    str | None, typer.Option(help="CSV column with each request's service time in seconds.")
]
IntervalOpt = Annotated[float, typer.Option(help="Seconds per count (--format counts).")]
TimeScaleOpt = Annotated[
    float, typer.Option(help="Compress time K-fold: K times the arrival rate.")
]
ServiceTimeMsOpt = Annotated[
    str | None,
    typer.Option(
        help="Service time: a constant in ms (40) or 'lognormal:MEAN_MS,SIGMA'. "
        "Default 40 unless --service-time-column is given."
    ),
]
SloMsOpt = Annotated[
    float | None,
    typer.Option(help="Latency SLO in ms: a request slower than this misses (default 250)."),
]
SloWaitMsOpt = Annotated[
    float | None,
    typer.Option(
        help="Instead of --slo-ms: an SLO on queueing delay (latency minus service time), "
        "for traces whose service times are long."
    ),
]
TargetConcurrencyOpt = Annotated[
    int, typer.Option(help="Requests one replica serves at once; the policies' target.")
]
ColdStartOpt = Annotated[
    float, typer.Option(help="Seconds from starting a replica until it serves.")
]
QueueLimitOpt = Annotated[
    int, typer.Option(help="Requests the gateway queue holds; more are dropped.")
]
SeedOpt = Annotated[int, typer.Option(help="Seed for sampled service times and counts traces.")]
JsonOutOpt = Annotated[
    str | None,
    typer.Option("--json", help="Write the results as JSON to this file ('-': stdout)."),
]


@dataclass(frozen=True)
class TraceInput:
    """What the trace options resolve to."""

    trace: Trace
    service_s: Any  # a float64 array, one service time per request
    model: ServiceTime | None
    slo: Slo
    settings: dict[str, object]


def load_trace_input(
    trace: Path,
    fmt: TraceFormat,
    *,
    time_column: str | None,
    service_time_column: str | None,
    interval_s: float,
    time_scale: float,
    service_time_ms: str | None,
    slo_ms: float | None,
    slo_wait_ms: float | None,
    seed: int,
) -> TraceInput:
    """Load and time-scale the trace, draw service times, build the SLO.

    Call it inside ``user_errors()``: a bad file or option raises ``InvalidInput``.
    """
    from modelyard.autoscale import experiment as ex  # heavy (numpy): only when replaying
    from modelyard.autoscale.report import Slo
    from modelyard.autoscale.traces import load_trace, parse_service_time

    if slo_ms is not None and slo_wait_ms is not None:
        fail("give either --slo-ms or --slo-wait-ms, not both", 2)
    loaded = load_trace(
        trace,
        fmt=fmt.value,
        time_column=time_column,
        service_time_column=service_time_column,
        interval_s=interval_s,
        seed=seed,
    ).scaled(time_scale)
    if service_time_ms is None and service_time_column is None:
        service_time_ms = "40"
    model = parse_service_time(service_time_ms) if service_time_ms is not None else None
    slo = (
        Slo(slo_wait_ms / 1000.0, includes_service=False)
        if slo_wait_ms is not None
        else Slo((slo_ms if slo_ms is not None else 250.0) / 1000.0)
    )
    settings: dict[str, object] = {
        "trace": str(trace),
        "format": fmt.value,
        "time_column": time_column,
        "service_time_column": service_time_column,
        "interval_s": interval_s if fmt is TraceFormat.counts else None,
        "time_scale": time_scale,
        "service_time": model.describe() if model is not None else service_time_column,
        "slo_ms": slo.seconds * 1000 if slo.includes_service else None,
        "slo_wait_ms": None if slo.includes_service else slo.seconds * 1000,
    }
    service_s = ex.service_times(loaded, model, seed)
    return TraceInput(loaded, service_s, model, slo, settings)

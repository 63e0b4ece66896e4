"""``modelyard autoscale simulate``: replay a request trace against autoscaling policies."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._output import console, fail, user_errors

autoscale_app = typer.Typer(
    help="Judge autoscaling policies by replaying request traces.", no_args_is_help=True
)


class TraceFormat(enum.StrEnum):
    timestamps = "timestamps"
    counts = "counts"


@autoscale_app.command("simulate")
def simulate_cmd(
    trace: Annotated[Path, typer.Option("--trace", help="The trace file.")],
    fmt: Annotated[
        TraceFormat,
        typer.Option(
            "--format",
            help="timestamps: CSV, one row per request; counts: requests per interval.",
        ),
    ] = TraceFormat.timestamps,
    time_column: Annotated[
        str | None,
        typer.Option(help="CSV column with arrival times (ISO 8601 or epoch seconds)."),
    ] = None,
    service_time_column: Annotated[
        str | None, typer.Option(help="CSV column with each request's service time in seconds.")
    ] = None,
    interval_s: Annotated[float, typer.Option(help="Seconds per count (--format counts).")] = 1.0,
    time_scale: Annotated[
        float, typer.Option(help="Compress time K-fold: K times the arrival rate.")
    ] = 1.0,
    service_time_ms: Annotated[
        str | None,
        typer.Option(
            help="Service time: a constant in ms (40) or 'lognormal:MEAN_MS,SIGMA'. "
            "Default 40 unless --service-time-column is given."
        ),
    ] = None,
    cold_start_s: Annotated[
        float, typer.Option(help="Seconds from starting a replica until it serves.")
    ] = 2.0,
    target_concurrency: Annotated[
        int, typer.Option(help="Requests one replica serves at once; the policies' target.")
    ] = 4,
    slo_ms: Annotated[
        float | None,
        typer.Option(help="Latency SLO in ms: a request slower than this misses (default 250)."),
    ] = None,
    slo_wait_ms: Annotated[
        float | None,
        typer.Option(
            help="Instead of --slo-ms: an SLO on queueing delay (latency minus service time), "
            "for traces whose service times are long."
        ),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(help="Comma-separated policies: default, kpa, hpa, ray, oracle, fixed:N."),
    ] = "default,kpa,hpa,ray,oracle",
    price_usd_per_replica_hour: Annotated[
        float, typer.Option(help="Price of one replica-hour, for the cost column.")
    ] = 0.10,
    max_replicas: Annotated[int, typer.Option(help="Upper bound for every policy.")] = 100,
    queue_limit: Annotated[
        int, typer.Option(help="Requests the gateway queue holds; more are dropped.")
    ] = 1000,
    seed: Annotated[
        int, typer.Option(help="Seed for sampled service times and counts traces.")
    ] = 0,
    report: Annotated[
        Path | None, typer.Option(help="Write a Markdown report (table and plot link) here.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG: arrivals, replicas and p99 over time.")
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("--json", help="Write the results as JSON to this file ('-': stdout)."),
    ] = None,
) -> None:
    """Replay a trace through each policy; print SLO misses, latency and replica-seconds."""
    from modelyard.autoscale import _experiment as ex  # heavy (numpy): only for this command
    from modelyard.autoscale import _report as rp
    from modelyard.autoscale._registry import parse_policy_list
    from modelyard.autoscale._traces import load_counts, load_timestamps, parse_service_time

    if slo_ms is not None and slo_wait_ms is not None:
        fail("give either --slo-ms or --slo-wait-ms, not both", 2)
    with user_errors():
        names = parse_policy_list(policy)
        if fmt is TraceFormat.timestamps:
            if not time_column:
                fail("--format timestamps needs --time-column", 2)
            loaded = load_timestamps(
                trace, time_column=time_column, service_time_column=service_time_column
            )
        else:
            if service_time_column:
                fail("--service-time-column needs --format timestamps", 2)
            loaded = load_counts(trace, interval_s=interval_s, seed=seed)
        scaled = loaded.scaled(time_scale)
        if service_time_ms is None and service_time_column is None:
            service_time_ms = "40"
        model = parse_service_time(service_time_ms) if service_time_ms is not None else None
        service_s = ex.service_times(scaled, model, seed)
        slo = (
            rp.Slo(slo_wait_ms / 1000.0, includes_service=False)
            if slo_wait_ms is not None
            else rp.Slo((slo_ms if slo_ms is not None else 250.0) / 1000.0)
        )
        experiment = ex.Experiment(
            target_concurrency,
            cold_start_s,
            slo,
            max_replicas=max_replicas,
            queue_limit=queue_limit,
            price_usd_per_replica_hour=price_usd_per_replica_hour,
        )
        results = ex.run_policies(scaled, service_s, names, experiment)
    summaries = ex.summaries(results, experiment)
    settings: dict[str, object] = {
        "trace": str(trace),
        "format": fmt.value,
        "time_column": time_column,
        "service_time_column": service_time_column,
        "interval_s": interval_s if fmt is TraceFormat.counts else None,
        "time_scale": time_scale,
        "service_time": model.describe() if model is not None else service_time_column,
        "cold_start_s": cold_start_s,
        "target_concurrency": target_concurrency,
        "slo_ms": slo.seconds * 1000 if slo.includes_service else None,
        "slo_wait_ms": None if slo.includes_service else slo.seconds * 1000,
        "policies": names,
        "price_usd_per_replica_hour": price_usd_per_replica_hour,
        "max_replicas": max_replicas,
        "queue_limit": queue_limit,
        "seed": seed,
    }
    duration_s = max((r.end_s for r in results.values()), default=0.0)
    if plot is not None:
        rp.plot_results(plot, list(results.values()), slo)
    if report is not None:
        plot_ref = None
        if plot is not None:
            plot_ref = plot.name if plot.parent.resolve() == report.parent.resolve() else str(plot)
        report.write_text(
            rp.markdown_report(settings, scaled.requests, duration_s, summaries, plot_ref),
            encoding="utf-8",
        )
    if json_path is not None:
        document = rp.report_json(settings, scaled.requests, duration_s, summaries)
        text = json.dumps(document, indent=2)
        if json_path == "-":
            typer.echo(text)
            return
        Path(json_path).write_text(text + "\n", encoding="utf-8")
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{scaled.requests:,} requests over {duration_s:,.0f} s, SLO {slo.describe()}",
        header_style="bold",
    )
    for header in rp.TABLE_HEADERS:
        left = header == "policy"
        table.add_column(header, justify="left" if left else "right", no_wrap=left)
    for row in rp.table_rows(summaries):
        table.add_row(*row)
    # Piped output (files, CI logs) is not squeezed to 80 columns.
    (console.rich if console.is_terminal else Console(width=150)).print(table)

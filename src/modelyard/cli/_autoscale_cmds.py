"""``modelyard autoscale simulate``: replay a request trace against autoscaling policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from modelyard.cli._output import console, user_errors
from modelyard.cli._trace_opts import (
    ColdStartOpt,
    FormatOpt,
    IntervalOpt,
    JsonOutOpt,
    QueueLimitOpt,
    SeedOpt,
    ServiceTimeColumnOpt,
    ServiceTimeMsOpt,
    SloMsOpt,
    SloWaitMsOpt,
    TargetConcurrencyOpt,
    TimeColumnOpt,
    TimeScaleOpt,
    TraceFormat,
    TraceOpt,
    load_trace_input,
)

autoscale_app = typer.Typer(
    help="Judge autoscaling policies by replaying request traces.", no_args_is_help=True
)


@autoscale_app.command("simulate")
def simulate_cmd(
    trace: TraceOpt,
    fmt: FormatOpt = TraceFormat.timestamps,
    time_column: TimeColumnOpt = None,
    service_time_column: ServiceTimeColumnOpt = None,
    interval_s: IntervalOpt = 1.0,
    time_scale: TimeScaleOpt = 1.0,
    service_time_ms: ServiceTimeMsOpt = None,
    cold_start_s: ColdStartOpt = 2.0,
    target_concurrency: TargetConcurrencyOpt = 4,
    slo_ms: SloMsOpt = None,
    slo_wait_ms: SloWaitMsOpt = None,
    policy: Annotated[
        str,
        typer.Option(help="Comma-separated policies: default, kpa, hpa, ray, oracle, fixed:N."),
    ] = "default,kpa,hpa,ray,oracle",
    price_usd_per_replica_hour: Annotated[
        float, typer.Option(help="Price of one replica-hour, for the cost column.")
    ] = 0.10,
    max_replicas: Annotated[int, typer.Option(help="Upper bound for every policy.")] = 100,
    queue_limit: QueueLimitOpt = 1000,
    seed: SeedOpt = 0,
    report: Annotated[
        Path | None, typer.Option(help="Write a Markdown report (table and plot link) here.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG: arrivals, replicas and p99 over time.")
    ] = None,
    json_path: JsonOutOpt = None,
) -> None:
    """Replay a trace through each policy; print SLO misses, latency and replica-seconds."""
    from modelyard.autoscale import experiment as ex  # heavy (numpy): only for this command
    from modelyard.autoscale import report as rp
    from modelyard.autoscale.registry import parse_policy_list

    with user_errors():
        names = parse_policy_list(policy)
        replay = load_trace_input(
            trace,
            fmt,
            time_column=time_column,
            service_time_column=service_time_column,
            interval_s=interval_s,
            time_scale=time_scale,
            service_time_ms=service_time_ms,
            slo_ms=slo_ms,
            slo_wait_ms=slo_wait_ms,
            seed=seed,
        )
        scaled, service_s, slo = replay.trace, replay.service_s, replay.slo
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
        **replay.settings,
        "cold_start_s": cold_start_s,
        "target_concurrency": target_concurrency,
        "policies": names,
        "price_usd_per_replica_hour": price_usd_per_replica_hour,
        "max_replicas": max_replicas,
        "queue_limit": queue_limit,
        "seed": seed,
    }
    duration_s = max((r.end_s for r in results.values()), default=0.0)
    if plot is not None:
        with user_errors():  # no matplotlib (the ``plot`` extra)
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

"""``modelyard cost prices`` and ``modelyard cost estimate`` (issue 16).

Both run locally, without a server: ``prices`` shows the price catalog in effect,
``estimate`` replays a request trace for provisioned, autoscaled, spot and serverless
options and prices each (see ``docs/cost-estimate.md``). Only typer is imported here;
the estimator (numpy, matplotlib) loads when the command runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelyard.cli._context import settings_of
from modelyard.cli._output import JSON_OPTION, console, fail, print_json, user_errors
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

if TYPE_CHECKING:
    from modelyard.cost import PriceCatalog
    from modelyard.cost.estimate import Estimate

PricesOpt = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        help="Price file overriding the defaults (else MODELYARD_PRICES, else "
        "$MODELYARD_HOME/prices.toml if it exists).",
    ),
]


def _catalog(ctx: typer.Context, prices: Path | None) -> PriceCatalog:
    """The catalog in effect: ``--prices``, else the settings' file, over the defaults."""
    from modelyard.cost import catalog_path, load_catalog

    if prices is not None:
        return load_catalog(prices)
    settings = settings_of(ctx)
    return load_catalog(catalog_path(settings.home, settings.prices))


def prices_cmd(ctx: typer.Context, prices: PricesOpt = None, as_json: bool = JSON_OPTION) -> None:
    """Show the price catalog in effect, then the serverless and run limits.

    Each price as written, its rate per base unit and where it came from (default or
    file:line).
    """
    from modelyard.cost.prices import NUMBER_KEYS, PRICE_KEYS, plain_number

    with user_errors():
        catalog = _catalog(ctx, prices)
    if as_json:
        print_json(catalog.to_json())
        return
    from rich.table import Table

    cur = catalog.currency
    table = Table(title=f"Prices ({cur}; from {', '.join(catalog.sources)})", header_style="bold")
    for header in ("key", "price", "rate", "from", "meaning"):
        table.add_column(header)
    for key, price in catalog.prices.items():
        rate = plain_number(float(f"{price.rate:.6g}"))
        table.add_row(key, price.text(cur), f"{rate} {cur} per {price.base}", price.origin,
                      PRICE_KEYS[key][1])  # fmt: skip
    limits = Table(title="Limits and defaults", header_style="bold")
    for header in ("key", "value", "from", "meaning"):
        limits.add_column(header)
    for key, number in catalog.numbers.items():
        limits.add_row(key, f"{number.value:g}", number.origin, NUMBER_KEYS[key][2])
    from rich.console import Console

    # Piped output (files, CI logs) is not squeezed to 80 columns.
    out = console.rich if console.is_terminal else Console(width=160)
    out.print(table)
    out.print(limits)


def _writable(option: str, path: Path | None) -> None:
    if path is not None and not path.parent.is_dir():
        fail(f"{option}: the directory {path.parent} does not exist", 2)


def estimate_cmd(
    ctx: typer.Context,
    trace: TraceOpt,
    fmt: FormatOpt = TraceFormat.timestamps,
    time_column: TimeColumnOpt = None,
    service_time_column: ServiceTimeColumnOpt = None,
    interval_s: IntervalOpt = 1.0,
    time_scale: TimeScaleOpt = 1.0,
    service_time_ms: ServiceTimeMsOpt = None,
    memory_gb: Annotated[
        float, typer.Option(help="Memory of a replica or serverless instance, GB.")
    ] = 2.0,
    cpu: Annotated[float, typer.Option(help="vCPU of a replica.")] = 1.0,
    gpu: Annotated[float, typer.Option(help="GPUs of a replica or serverless instance.")] = 0.0,
    options: Annotated[
        str,
        typer.Option(
            help="Comma-separated options: provisioned:N, provisioned:auto, "
            "autoscaled[:POLICY], spot, spot:N, serverless."
        ),
    ] = "provisioned:auto,autoscaled:default,serverless,spot",
    slo_ms: SloMsOpt = None,
    slo_wait_ms: SloWaitMsOpt = None,
    max_slo_miss_pct: Annotated[
        float, typer.Option(help="SLO misses (failures included) an option may have, in %.")
    ] = 1.0,
    target_concurrency: TargetConcurrencyOpt = 4,
    cold_start_s: ColdStartOpt = 2.0,
    max_replicas: Annotated[
        int, typer.Option(help="Upper bound for autoscaled options and provisioned:auto.")
    ] = 100,
    queue_limit: QueueLimitOpt = 1000,
    serverless_cold_start_s: Annotated[
        float | None, typer.Option(help="Serverless start-up time (default: the catalog's).")
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(help="Serverless instances busy at once before throttling (catalog)."),
    ] = None,
    max_execution_s: Annotated[
        float | None, typer.Option(help="Serverless time limit per request (catalog).")
    ] = None,
    keep_alive_s: Annotated[
        float | None, typer.Option(help="How long an idle serverless instance stays warm.")
    ] = None,
    bill_cold_start: Annotated[
        bool, typer.Option(help="Bill a serverless cold start's start-up time (AWS does).")
    ] = True,
    prices: PricesOpt = None,
    seed: SeedOpt = 0,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG: cost per option, instances and p99.")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write a Markdown report here.")] = None,
    json_path: JsonOutOpt = None,
) -> None:
    """Price serving options on a request trace; recommend the cheapest within the SLO."""
    for flag, ok in (
        ("--target-concurrency must be >= 1", target_concurrency >= 1),
        ("--max-replicas must be >= 1", max_replicas >= 1),
        ("--queue-limit must be >= 0", queue_limit >= 0),
        ("--cold-start-s must be a finite number >= 0", 0 <= cold_start_s < math.inf),
    ):
        if not ok:
            fail(flag, 2)
    for option, path in (("--plot", plot), ("--report", report)):
        _writable(option, path)
    if json_path not in (None, "-"):
        _writable("--json", Path(json_path))
    from modelyard.autoscale import experiment as ex  # heavy (numpy): only for this command
    from modelyard.cost import estimate as es
    from modelyard.cost import estimate_report as er
    from modelyard.cost.serverless import ServerlessConfig

    with user_errors():
        specs = es.parse_options(options)
        resources = es.Resources(cpu, memory_gb, gpu)
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
        loaded, service_s, slo = replay.trace, replay.service_s, replay.slo
        catalog = _catalog(ctx, prices)
        serverless = ServerlessConfig.from_catalog(
            catalog,
            memory_gib=memory_gb,
            gpu=gpu,
            max_concurrency=max_concurrency,
            max_execution_s=max_execution_s,
            cold_start_s=serverless_cold_start_s,
            keep_alive_s=keep_alive_s,
            bill_cold_start=bill_cold_start,
        )
        experiment = ex.Experiment(
            target_concurrency,
            cold_start_s,
            slo,
            max_replicas=max_replicas,
            queue_limit=queue_limit,
        )
        result = es.estimate(
            loaded,
            service_s,
            specs,
            experiment=experiment,
            resources=resources,
            serverless=serverless,
            catalog=catalog,
            max_slo_miss_pct=max_slo_miss_pct,
        )
    settings: dict[str, object] = {
        **replay.settings,
        "cpu": cpu,
        "memory_gb": memory_gb,
        "gpu": gpu,
        "options": [spec.name for spec in specs],
        "max_slo_miss_pct": max_slo_miss_pct,
        "target_concurrency": target_concurrency,
        "cold_start_s": cold_start_s,
        "max_replicas": max_replicas,
        "queue_limit": queue_limit,
        "serverless": {
            "max_concurrency": serverless.max_concurrency,
            "max_execution_s": serverless.max_execution_s,
            "cold_start_s": serverless.cold_start_s,
            "keep_alive_s": serverless.keep_alive_s,
            "bill_cold_start": serverless.bill_cold_start,
        },
        "prices": list(catalog.sources),
        "seed": seed,
    }
    duration_s = max((run.end_s for run in result.runs.values()), default=0.0)
    try:
        if plot is not None:
            with user_errors():  # no matplotlib (the ``plot`` extra)
                er.plot_estimate(plot, result, slo, max_slo_miss_pct)
        if report is not None:
            plot_ref = None
            if plot is not None:
                same = plot.parent.resolve() == report.parent.resolve()
                plot_ref = plot.name if same else str(plot)
            text = er.markdown_report(settings, loaded.requests, duration_s, result, plot_ref)
            report.write_text(text, encoding="utf-8")
        document = er.estimate_json(settings, str(trace), duration_s, result, max_slo_miss_pct)
        if json_path == "-":
            typer.echo(json.dumps(document, indent=2))
            return
        if json_path is not None:
            Path(json_path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write the output: {exc}", 1)
    _print_table(result, er.table_headers(result.currency), er.table_rows(result), loaded.requests,
                 duration_s, slo.describe())  # fmt: skip


def _print_table(
    result: Estimate,
    headers: tuple[str, ...],
    rows: list[list[str]],
    requests: int,
    duration_s: float,
    slo: str,
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"{requests:,} requests over {duration_s:,.0f} s, SLO {slo}", header_style="bold"
    )
    for header in headers:
        left = header == "option"
        table.add_column(header, justify="left" if left else "right", no_wrap=left)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    # Piped output (files, CI logs) is not squeezed to 80 columns.
    out = console.rich if console.is_terminal else Console(width=160)
    out.print(table)
    verdict = "Recommendation" if result.recommendation.within_budget else "No recommendation"
    out.print(f"[bold]{verdict}:[/] {escape(result.recommendation.reason)}", highlight=False)
    for note in result.notes:
        out.print(f"note: {escape(note)}", highlight=False)


def register_estimate(app: typer.Typer) -> None:
    """Add ``prices`` and ``estimate`` to the ``cost`` group."""
    app.command("prices")(prices_cmd)
    app.command("estimate")(estimate_cmd)

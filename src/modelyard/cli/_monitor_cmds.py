"""``modelyard monitor show|drift|feedback|quality|config|export`` (the alert commands are
in :mod:`modelyard.cli._alerts_cmds`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli._context import ProjectOpt, client_of, project_of
from modelyard.cli._output import (
    JSON_OPTION,
    console,
    fail,
    fmt_time,
    print_json,
    print_table,
    user_errors,
)

monitor_app = typer.Typer(
    help="Monitoring: live metrics, drift against the training data, model quality, exports.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The deployment's name.")]


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def _window(text: str) -> float:
    from modelyard.monitor.rules import parse_duration

    return parse_duration(text)


# ---- monitor ------------------------------------------------------------------------


@monitor_app.command("show")
def show(
    ctx: typer.Context,
    name: NameArg,
    minutes: Annotated[float, typer.Option(min=0.1, help="Minutes of history to show.")] = 15,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Live req/s, p50/p99, errors, replicas, drift per feature and alert states."""
    with user_errors(), client_of(ctx) as client:
        view = client.monitor_show(project_of(ctx, project), name, minutes=minutes)
    if as_json:
        print_json(view)
        return
    live = view.get("live") or {}
    console.print(
        f"[bold]{view['deployment']}[/] ({view['project']})  {fmt_time(view['time_ms'] / 1000)} UTC"
    )
    if live:
        console.print(
            f"  req/s {_num(live.get('rps'))}   p50 {_num(live.get('p50_ms'))} ms   "
            f"p99 {_num(live.get('p99_ms'))} ms   errors {_num(live.get('error_rate'))}   "
            f"replicas {_num(live.get('replicas'))}   in flight {_num(live.get('in_flight'))}"
        )
    else:
        console.print("  no live samples yet (the server's monitor loop samples every 10 s)")
    series = view.get("series") or []
    if len(series) > 1:
        rps = [s.get("rps") or 0.0 for s in series]
        console.print(f"  req/s over {len(series)} samples: {_spark(rps)}")
    log = view["log"]
    console.print(
        f"  prediction log: {log['rows']} rows in {log['segments']} segments "
        f"({log['bytes'] / 1e6:.1f} MB)"
    )
    drift = view.get("drift")
    if drift is None:
        console.print("  drift: not computed yet (modelyard monitor drift NAME)")
    else:
        _print_drift(drift)
    alerts = view.get("alerts") or []
    if alerts:
        print_table(
            alerts,
            [
                ("id", lambda r: r["id"]),
                ("rule", lambda r: r["rule"]),
                ("state", lambda r: (r["state"] or {}).get("status", "inactive")),
                ("value", lambda r: _num((r["state"] or {}).get("last_value"))),
            ],
            as_json=False,
        )


def _spark(values: list[float]) -> str:
    bars = "▁▂▃▄▅▆▇█"
    top = max(values) or 1.0
    return "".join(bars[min(len(bars) - 1, int(v / top * (len(bars) - 1)))] for v in values[-60:])


def _print_drift(drift: dict[str, Any]) -> None:
    verdict = "[red]DRIFT[/]" if drift["dataset_drift"] else "[green]no dataset drift[/]"
    console.print(
        f"  drift vs {drift['reference']} over {drift['rows']} rows "
        f"({fmt_time(drift['window_start_ms'] / 1000)} to "
        f"{fmt_time(drift['window_end_ms'] / 1000)}): share {drift['drift_share']:.2f}: {verdict}"
    )
    features = drift["report"].get("features", [])
    print_table(
        features,
        [
            ("feature", lambda f: f["column"]),
            ("kind", lambda f: f.get("kind", "")),
            ("test", lambda f: f.get("test", "")),
            ("statistic", lambda f: _num(f.get("statistic"), 4)),
            ("p-value", lambda f: _num(f.get("p_value"), 4)),
            ("threshold", lambda f: _num(f.get("threshold"), 3)),
            ("drifted", lambda f: "yes" if f.get("drifted") else "no"),
        ],
        as_json=False,
    )


@monitor_app.command("drift")
def drift(
    ctx: typer.Context,
    name: NameArg,
    window: Annotated[
        str | None, typer.Option(help="Traffic window, e.g. 15m, 1h (default: its setting).")
    ] = None,
    stattest: Annotated[
        str | None,
        typer.Option(help="ks, wasserstein, chisquare, z, jensenshannon or psi for every feature."),
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", "-f", help="Only these features.")
    ] = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Per-feature drift of logged traffic against the training dataset version."""
    with user_errors(), client_of(ctx) as client:
        window_s = _window(window) if window else None
        result = client.drift(
            project_of(ctx, project),
            name,
            window_s=window_s,
            stattest=stattest,
            features=feature or (),
        )
    if as_json:
        print_json(result)
        return
    _print_drift(result)


@monitor_app.command("feedback")
def feedback(
    ctx: typer.Context,
    name: NameArg,
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Parquet, CSV or JSON with request_id, label (and row) columns.",
        ),
    ],
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Send ground-truth labels, joined to logged predictions by request id."""
    suffix = file.suffix.lower()
    content_type = {
        ".parquet": "application/vnd.apache.parquet",
        ".csv": "text/csv",
        ".json": "application/json",
    }.get(suffix)
    if content_type is None:
        fail(f"{file}: use a .parquet, .csv or .json file")
    with user_errors(), client_of(ctx) as client:
        result = client.send_feedback(
            project_of(ctx, project), name, file.read_bytes(), content_type
        )
    if as_json:
        print_json(result)
        return
    console.print(f"{result['rows']} labels, {result['matched']} matched a logged prediction")
    quality = result.get("quality") or {}
    if quality:
        console.print(
            "  "
            + "  ".join(f"{k} {_num(v, 4)}" for k, v in quality.items() if k not in ("start_ms",))
        )


@monitor_app.command("quality")
def quality(
    ctx: typer.Context,
    name: NameArg,
    bucket: Annotated[str, typer.Option(help="Time bucket, e.g. 1h, 1d.")] = "1h",
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Accuracy/AUC (or MAE/RMSE) over time, from the labels sent so far."""
    with user_errors(), client_of(ctx) as client:
        rows = client.quality(project_of(ctx, project), name, bucket_s=_window(bucket))
    keys = sorted({k for r in rows for k in r if k not in ("start_ms", "rows")})
    columns: list[tuple[str, Callable[[Any], object]]] = [
        ("from", lambda r: fmt_time(r["start_ms"] / 1000)),
        ("rows", lambda r: r["rows"]),
    ]
    columns += [(k, _metric_column(k)) for k in keys]
    print_table(rows, columns, as_json=as_json)


def _metric_column(key: str) -> Callable[[Any], object]:
    return lambda r: _num(r.get(key), 4)


@monitor_app.command("config")
def config(
    ctx: typer.Context,
    name: NameArg,
    sample_rate: Annotated[
        float | None, typer.Option(min=0.0001, max=1.0, help="Share of requests logged.")
    ] = None,
    max_bytes_per_s: Annotated[
        int | None, typer.Option(min=1024, help="Per-replica byte budget of the log.")
    ] = None,
    retention_mb: Annotated[
        int | None, typer.Option(min=1, help="Log kept per deployment.")
    ] = None,
    retention_days: Annotated[float | None, typer.Option(min=0.001, help="Log age kept.")] = None,
    reference: Annotated[
        str | None, typer.Option(help="Compare with this dataset version (NAME@vN).")
    ] = None,
    drift_window: Annotated[str | None, typer.Option(help="Window of the periodic check.")] = None,
    drift_interval: Annotated[
        str | None, typer.Option(help="How often drift is recomputed (0s: off).")
    ] = None,
    stattest: Annotated[str | None, typer.Option(help="Test for every feature.")] = None,
    drift_threshold: Annotated[float | None, typer.Option(min=0.0)] = None,
    drift_share: Annotated[float | None, typer.Option(min=0.0001, max=1.0)] = None,
    min_rows: Annotated[int | None, typer.Option(min=1)] = None,
    project: ProjectOpt = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show, or change, how a deployment is monitored."""
    changes = {
        "log_sample_rate": sample_rate,
        "log_max_bytes_per_s": max_bytes_per_s,
        "log_retention_mb": retention_mb,
        "log_retention_days": retention_days,
        "reference": reference,
        "stattest": stattest,
        "drift_threshold": drift_threshold,
        "drift_share": drift_share,
        "min_rows": min_rows,
    }
    with user_errors(), client_of(ctx) as client:
        if drift_window is not None:
            changes["drift_window_s"] = _window(drift_window)
        if drift_interval is not None:
            changes["drift_interval_s"] = _window(drift_interval)
        changes = {k: v for k, v in changes.items() if v is not None}
        proj = project_of(ctx, project)
        result = (
            client.set_monitor_config(proj, name, changes)
            if changes
            else client.monitor_config(proj, name)
        )
    if as_json:
        print_json(result)
        return
    for key, value in sorted(result.items()):
        console.print(f"{key:22} {value}")


@monitor_app.command("export")
def export(
    ctx: typer.Context,
    prometheus_rules: Annotated[
        Path | None, typer.Option("--prometheus-rules", help="Write alerting rules (YAML) here.")
    ] = None,
    grafana: Annotated[
        Path | None, typer.Option("--grafana", help="Write a Grafana dashboard (JSON) here.")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Prometheus alerting rules from the alert rules, and a Grafana dashboard."""
    if prometheus_rules is None and grafana is None:
        fail("give --prometheus-rules FILE and/or --grafana FILE")
    with user_errors(), client_of(ctx) as client:
        result = client.monitor_export(project_of(ctx, project))
    if prometheus_rules is not None:
        prometheus_rules.write_text(result["prometheus_rules"])
        console.print(
            f"wrote {prometheus_rules} (check it with: promtool check rules {prometheus_rules})"
        )
    if grafana is not None:
        grafana.write_text(json.dumps(result["grafana_dashboard"], indent=2, sort_keys=True))
        console.print(f"wrote {grafana} (import it in Grafana: Dashboards → New → Import)")

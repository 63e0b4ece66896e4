"""What the quickstart shows: step headers, tables, the live traffic view, next steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from modelyard.quickstart._result import STEP_TITLES, QuickstartResult, RunSummary, TuneSummary

LINEAGE_ORDER = ("dataset_version", "run", "model_version", "deployment")

if TYPE_CHECKING:
    from modelyard.data import AddResult
    from modelyard.quickstart._data import TableProfile
    from modelyard.quickstart._traffic import LoadSnapshot


def step_title(step: int) -> str:
    return f"[bold cyan]{step}/{len(STEP_TITLES)}[/] [bold]{STEP_TITLES[step - 1]}[/]"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def dataset_table(added: AddResult, profile: TableProfile | None) -> RenderableType:
    """The new version, what was uploaded, and a few column statistics from its profile."""
    version = added.version
    stored = version.file_count - added.uploaded_files
    head = Text.from_markup(
        f"[bold green]{version.ref}[/]  {version.file_count} files, {version.total_size:,} "
        f"bytes; uploaded {added.uploaded_files} new blob(s), {stored} already stored"
    )
    if profile is None:
        return head
    table = Table(
        title=f"profile: {profile.rows} rows x {profile.columns} columns",
        title_justify="left",
        header_style="bold",
    )
    for column in ("column", "kind", "nulls", "min", "max", "mean", "std"):
        table.add_column(column, justify="left" if column in ("column", "kind") else "right")
    for c in profile.shown:
        table.add_row(
            c.name, c.kind, str(c.null_count), _num(c.min), _num(c.max), _num(c.mean), _num(c.std)
        )
    return Group(head, table)


def runs_table(runs: list[RunSummary], best_run_id: str | None = None) -> Table:
    """The candidates side by side; the best (by ROC AUC) in green."""
    table = Table(
        title="candidates, scored on a held-out 25 % (best by roc_auc: ★)",
        title_justify="left",
        header_style="bold",
    )
    for column in ("run", "model", "accuracy", "f1", "roc_auc", "fit", "run id"):
        table.add_column(
            column, justify="right" if column in ("accuracy", "f1", "roc_auc", "fit") else "left"
        )
    for r in runs:
        style = "bold green" if r.run_id == best_run_id else None
        table.add_row(
            r.name + (" ★" if r.run_id == best_run_id else ""),
            r.model,
            f"{r.metrics['accuracy']:.4f}",
            f"{r.metrics['f1']:.4f}",
            f"{r.metrics['roc_auc']:.4f}",
            f"{r.fit_s:.2f} s",
            r.run_id[:8],
            style=style,
        )
    return table


def tune_table(summary: TuneSummary) -> Table:
    """The sweep's best trial and what the second pipeline run took from the cache."""
    table = Table(
        title="tuning and pipelines", title_justify="left", header_style="bold", show_header=False
    )
    table.add_column("what")
    table.add_column("result")
    params = ", ".join(f"{k}={v}" for k, v in summary.best_params.items())
    best = f"{summary.trials} trials, best roc_auc {summary.best_value:.4f} ({params})"
    table.add_row(f"study {summary.study}", best)
    table.add_row("details", f"modelyard tune show {summary.study} --plot study.png")
    runs = zip(summary.pipeline_runs, summary.cached_steps, strict=True)
    for n, (run_id, cached) in enumerate(runs, 1):
        ran = summary.steps - cached
        what = f"{run_id[:8]}: {ran} steps ran, {cached} from the cache"
        table.add_row(f"pipeline run {n}", what)
    table.add_row("details", f"modelyard pipeline show {summary.pipeline_runs[-1]}")
    return table


def live_view(
    snap: LoadSnapshot,
    total_s: float,
    replicas: int,
    ready: int,
    max_replicas: int,
    desired: int | None,
) -> RenderableType:
    """The traffic panel: phase, progress, request rate, latency, replicas."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", justify="right")
    grid.add_column()
    workers = f"{snap.concurrency} concurrent" if snap.concurrency else "no traffic"
    grid.add_row("phase", f"[magenta]{snap.phase}[/] ({workers})")
    done_s = min(snap.elapsed_s, total_s)
    timeline = Table.grid(padding=(0, 1))
    timeline.add_row(
        ProgressBar(total=max(total_s, 1e-3), completed=done_s, width=30),
        f"{done_s:.0f} / {total_s:.0f} s",
    )
    grid.add_row("time", timeline)
    grid.add_row(
        "requests",
        f"{snap.sent:,} sent, "
        + (f"[red]{snap.failed:,} failed[/]" if snap.failed else "0 failed")
        + f", {snap.rate_per_s:,.0f} req/s",
    )
    grid.add_row("latency", f"p50 {_ms(snap.p50_ms)} · p99 {_ms(snap.p99_ms)} (last 5 s)")
    dots = "[green]●[/]" * ready + "[yellow]●[/]" * (replicas - ready)
    dots += "[dim]○[/]" * max(0, max_replicas - replicas)
    want = "" if desired is None else f", desired {desired}"
    grid.add_row("replicas", f"{dots}  {ready} ready, {replicas - ready} starting{want}")
    if snap.last_error:
        grid.add_row("last error", Text(snap.last_error, style="red"))
    return Panel(grid, title="traffic through the gateway", border_style="cyan", expand=False)


def event_line(event: dict[str, Any]) -> str | None:
    """One printed line for a scaling or replica event; None for other kinds."""
    kind, message = event["kind"], event["message"]
    if kind == "scale":
        data = event.get("data", {})
        desired, actual = data.get("desired", 0), data.get("actual", 0)
        if desired == actual:
            return f"  [dim]= scale {message}[/]"
        arrow = "⬆" if desired > actual else "⬇"
        return f"  [bold yellow]{arrow} scale[/] {message}"
    if kind == "replica":
        return f"  [dim]• {message}[/]"
    if kind in ("rollout", "revision"):
        return f"  [blue]•[/] {message}"
    return None


def summary_table(result: QuickstartResult) -> Table:
    """What was made, one row per step."""
    t = result.traffic
    best = next(r for r in result.runs if r.run_id == result.best_run_id)
    table = Table(
        title=f"modelyard quickstart: done in {result.wall_s:.0f} s",
        title_justify="left",
        header_style="bold",
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column()
    server = "started by the quickstart" if result.started_server else "already running"
    table.add_row("server", f"{result.tracking_uri} ({server})")
    table.add_row("dataset", result.dataset_ref)
    table.add_row(
        "runs",
        f"{len(result.runs)} in experiment quickstart; best {best.name} "
        f"(roc_auc {best.metrics['roc_auc']:.4f}, run {best.run_id})",
    )
    table.add_row("model", f"{result.model_name} v{result.model_version} @production")
    how = "rolled out (rolling update)" if result.rolled_out else "created"
    table.add_row("deployment", f"{result.deployment_name} {how}: {result.endpoint}")
    table.add_row(
        "traffic",
        f"{t.requests_sent:,} requests, {t.requests_failed:,} failed, "
        f"p50 {_ms(t.p50_ms)}, p99 {_ms(t.p99_ms)}",
    )
    zero = "yes" if t.scaled_to_zero else "[yellow]not yet[/]"
    table.add_row("scaling", f"up to {t.max_replicas_seen} replicas, back to zero: {zero}")
    m = result.monitoring
    fired = (
        f"fired after {m.fired_after_s:.0f} s" if m.fired_after_s is not None else "did not fire"
    )
    share = "-" if m.drift_share is None else f"{m.drift_share:.2f}"
    table.add_row(
        "monitoring",
        f"{m.rule}: {fired}; drift share {share} ({len(m.drifted_features)} features drifted)",
    )
    kinds = {n.kind for n in result.lineage}
    table.add_row("lineage", " → ".join(k for k in LINEAGE_ORDER if k in kinds))
    if result.manifests is not None:
        table.add_row(
            "kubernetes",
            f"{len(result.manifests.files)} manifests in {result.manifests.folder}/ (not applied)",
        )
    return table


def next_steps(result: QuickstartResult, project: str, *, server_stopped: bool) -> Panel:
    """Commands to try next (a stopped server has to be started again first)."""
    p = "" if project == "default" else f" --project {project}"
    port = result.tracking_uri.rsplit(":", 1)[-1]
    lines = [f"modelyard server --port {port} &   # the quickstart stopped the server it started"]
    lines = lines if server_stopped else []
    lines += [
        f"modelyard deploy events {result.deployment_name}{p}   # every scaling decision",
        f"modelyard deploy show {result.deployment_name}{p}",
        f"modelyard monitor show {result.deployment_name}{p}   # live metrics, drift, alerts",
        f"modelyard monitor drift {result.deployment_name} --window 5m{p}",
        f"modelyard alerts history {result.deployment_name}{p}",
        "modelyard runs ls --experiment quickstart --order-by 'metrics.roc_auc DESC'",
        f"modelyard runs show {result.best_run_id}",
        f"modelyard models show {result.model_name}",
        f"modelyard lineage model:{result.model_name}/{result.model_version}",
        f"modelyard data show {result.dataset_ref}",
        f"modelyard deploy render {result.deployment_name} --autoscaler knative -o k8s/{p}",
        f"export MLFLOW_TRACKING_URI={result.tracking_uri}   # MLflow code works unchanged",
        "export MLFLOW_TRACKING_TOKEN=<the token in $MODELYARD_HOME/credentials>",
        "modelyard user passwd admin   # then sign in to the web UI:",
        f"open {result.tracking_uri}/ui/",
    ]
    return Panel("\n".join(lines), title="try next", border_style="green", expand=False)

"""Step 7 of the quickstart: what the deployment cost, from the ledger."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from modelyard.client import ModelyardClient
from modelyard.quickstart._deploy import DEPLOYMENT
from modelyard.quickstart._result import CostSummary


def _num(value: object, digits: int = 4) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.{digits}g}"


def cost_report(client: ModelyardClient, project: str, console: Console) -> CostSummary:
    """``modelyard cost report quickstart-api`` over the last day, as a table."""
    report = client.cost_deployment(project, DEPLOYMENT, since="1d")
    currency = str(report.get("currency", ""))
    idle = report.get("idle_share")
    per_1k = report.get("cost_per_1k")
    summary = CostSummary(
        currency=currency,
        cost=float(report.get("cost", 0.0)),
        replica_hours=float(report.get("replica_hours", 0.0)),
        requests=int(report.get("requests", 0)),
        cost_per_1k=float(per_1k) if isinstance(per_1k, int | float) else None,
        idle_share=float(idle) if isinstance(idle, int | float) else None,
    )
    table = Table(title=f"{DEPLOYMENT}: cost at the catalog's prices ({currency})")
    for header in ("cost", "replica-hours", "requests", f"{currency} per 1k", "idle share"):
        table.add_column(header, justify="right")
    table.add_row(
        _num(summary.cost),
        _num(summary.replica_hours, 3),
        f"{summary.requests:,}",
        _num(summary.cost_per_1k),
        "-" if summary.idle_share is None else f"{summary.idle_share:.0%}",
    )
    console.print(table)
    console.print(
        "replicas are billed from start to stop for the cpu/memory they request; "
        "`modelyard cost prices` shows the catalog, `modelyard budget set` adds a budget",
        highlight=False,
    )
    return summary

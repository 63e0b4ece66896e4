"""``modelyard budget`` and ``modelyard quota`` (issue 16)."""

from __future__ import annotations

import typer

budget_app = typer.Typer(help="Monthly budgets per project, with alerts.", no_args_is_help=True)
quota_app = typer.Typer(help="Replica and CPU quotas per project.", no_args_is_help=True)

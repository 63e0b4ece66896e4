"""``modelyard cost``: what deployments, runs and stored data cost (issue 16)."""

from __future__ import annotations

import typer

cost_app = typer.Typer(
    help="What deployments, runs and stored data cost; estimate serving options on a trace.",
    no_args_is_help=True,
)

"""``modelyard cost prices`` and ``modelyard cost estimate`` (issue 16)."""

from __future__ import annotations

import typer


def register_estimate(app: typer.Typer) -> None:
    """Add ``prices`` and ``estimate`` to the ``cost`` group."""

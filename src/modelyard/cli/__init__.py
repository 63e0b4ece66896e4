"""The ``modelyard`` command (Typer + Rich)."""

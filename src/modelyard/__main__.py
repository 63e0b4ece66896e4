"""``python -m modelyard`` is the ``modelyard`` command."""

from __future__ import annotations

from modelyard.cli.main import main

main()

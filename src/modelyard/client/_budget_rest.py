"""REST calls of the cost API (issue 16)."""

from __future__ import annotations


class BudgetCalls:
    """Cost methods of :class:`~modelyard.client.ModelyardClient`."""

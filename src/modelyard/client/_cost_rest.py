"""REST calls of the cost API (issue 16)."""

from __future__ import annotations


class CostCalls:
    """Cost methods of :class:`~modelyard.client.ModelyardClient`."""

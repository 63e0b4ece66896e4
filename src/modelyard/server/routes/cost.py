"""/api/v1 cost routes (issue 16)."""

from __future__ import annotations

from modelyard.server._routing import ApiRouter

api = ApiRouter("/api/v1", tags=["cost"])

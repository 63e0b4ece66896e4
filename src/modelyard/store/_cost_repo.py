"""The cost ledger's facts (tags, replica usage) — built by issue 16."""

from __future__ import annotations

from modelyard.store._sql import SqlStore


class CostRepository:
    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

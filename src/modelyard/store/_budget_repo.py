"""Budgets, quotas and their alert state — built by issue 16."""

from __future__ import annotations

from modelyard.store._sql import SqlStore


class BudgetRepository:
    def __init__(self, sql: SqlStore) -> None:
        self._sql = sql

"""Compile parsed search filters and orderings into SQL over the tracking tables.

Filters become EXISTS sub-queries on ``latest_metrics``, ``params`` and ``run_tags``, so a
search runs as one SQL statement in the database, never in Python over all runs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, select
from sqlalchemy.orm import aliased

from modelyard.core.search import Comparison, Entity, OrderBy
from modelyard.store.schema import LatestMetricRow, ParamRow, RunRow, RunTagRow

_ATTRIBUTE_COLUMNS: dict[str, Any] = {
    "run_id": RunRow.id,
    "run_name": RunRow.name,
    "status": RunRow.status,
    "user_id": RunRow.user,
    "lifecycle_stage": RunRow.lifecycle_stage,
    "start_time": RunRow.start_time_ms,
    "end_time": RunRow.end_time_ms,
    "experiment_id": RunRow.experiment_id,
}


def _compare(column: Any, comparator: str, value: Any) -> ColumnElement[bool]:
    if comparator == "=":
        return column == value  # type: ignore[no-any-return]
    if comparator == "!=":
        return column != value  # type: ignore[no-any-return]
    if comparator == "<":
        return column < value  # type: ignore[no-any-return]
    if comparator == "<=":
        return column <= value  # type: ignore[no-any-return]
    if comparator == ">":
        return column > value  # type: ignore[no-any-return]
    if comparator == ">=":
        return column >= value  # type: ignore[no-any-return]
    if comparator == "LIKE":
        return column.like(value)  # type: ignore[no-any-return]
    if comparator == "ILIKE":
        return func.lower(column).like(func.lower(value))
    if comparator == "IN":
        return column.in_(value)  # type: ignore[no-any-return]
    if comparator == "NOT IN":
        return not_(column.in_(value))  # type: ignore[no-any-return]
    raise ValueError(f"unknown comparator {comparator}")  # the parser never produces one


def condition(c: Comparison) -> ColumnElement[bool]:
    """One filter clause as a SQL condition on ``runs``."""
    if c.entity is Entity.ATTRIBUTE:
        column = _ATTRIBUTE_COLUMNS[c.key]
        value: Any = c.value
        if c.key in ("start_time", "end_time", "experiment_id") and isinstance(value, float):
            # A float beyond int64 stays a float: the driver cannot bind such an int.
            value = int(value) if value.is_integer() and abs(value) < 2**63 else value
        return _compare(column, c.comparator, value)
    if c.entity is Entity.METRIC:
        m = aliased(LatestMetricRow)
        return exists().where(
            m.run_id == RunRow.id,
            m.key == c.key,
            m.is_nan.is_(False),
            _compare(m.value, c.comparator, c.value),
        )
    table = aliased(ParamRow) if c.entity is Entity.PARAM else aliased(RunTagRow)
    return exists().where(
        table.run_id == RunRow.id,
        table.key == c.key,
        _compare(table.value, c.comparator, c.value),
    )


def apply_order(query: Select[Any], order_by: list[OrderBy]) -> Select[Any]:
    """Order by each term (missing values last), then newest first, then by id."""
    for term in order_by:
        if term.entity is Entity.ATTRIBUTE:
            column: Any = _ATTRIBUTE_COLUMNS[term.key]
        else:
            table: Any = {
                Entity.METRIC: aliased(LatestMetricRow),
                Entity.PARAM: aliased(ParamRow),
                Entity.TAG: aliased(RunTagRow),
            }[term.entity]
            query = query.outerjoin(table, and_(table.run_id == RunRow.id, table.key == term.key))
            column = table.value
        query = query.order_by(column.is_(None), column.asc() if term.ascending else column.desc())
    return query.order_by(RunRow.start_time_ms.desc(), RunRow.id.asc())


def search_query(
    experiment_ids: list[int],
    comparisons: list[Comparison],
    order_by: list[OrderBy],
    lifecycle_stages: tuple[str, ...],
) -> Select[Any]:
    query = select(RunRow.id).where(
        RunRow.experiment_id.in_(experiment_ids), RunRow.lifecycle_stage.in_(lifecycle_stages)
    )
    for c in comparisons:
        query = query.where(condition(c))
    return apply_order(query, order_by)

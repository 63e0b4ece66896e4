"""Persistence of experiments, runs, params, tags and metrics."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from modelyard.core.errors import InvalidInput, NotFound
from modelyard.core.lineage import EdgeType, NodeKind
from modelyard.core.search import Comparison, OrderBy
from modelyard.core.tracking import (
    DatasetInput,
    DatasetRecord,
    Experiment,
    ExperimentDataset,
    LifecycleStage,
    LogBatch,
    Metric,
    Run,
    RunIO,
    RunStatus,
)
from modelyard.store._sql import SqlStore
from modelyard.store._tracking_query import search_query
from modelyard.store.schema import (
    DatasetRow,
    DatasetVersionRow,
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    LineageEdgeRow,
    LogBatchRow,
    MetricRow,
    MlflowDatasetRow,
    MlflowRunInputRow,
    MlflowRunModelRow,
    ParamRow,
    ProjectRow,
    RunRow,
    RunTagRow,
)


def upsert(s: Session, table: type[Any]) -> Any:
    """The dialect's INSERT … ON CONFLICT (SQLite and PostgreSQL share the interface)."""
    if s.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# An MLflow dataset named after a modelyard dataset version: ``<name>@v<N>`` or ``<name>@<N>``.
_VERSIONED_NAME = re.compile(r"^(?P<name>[^@]+)@v?(?P<version>[0-9]+)$")
MODEL_INPUT, MODEL_OUTPUT = "input", "output"


def _ms(clock_s: float) -> int:
    return int(clock_s * 1000)


def _metric_value(row: MetricRow | LatestMetricRow) -> float:
    return math.nan if row.is_nan else row.value


class TrackingRepository:
    """Rows of the tracking tables as frozen entities. One method, one transaction."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    # --- experiments --------------------------------------------------------------------

    def create_experiment(
        self,
        project: str,
        name: str,
        tags: dict[str, str] | None = None,
        *,
        experiment_id: int | None = None,
    ) -> Experiment:
        now = _ms(self._store.clock.now())
        with self._store.transaction(f"experiment {name!r} already exists") as s:
            p = self._project_row(s, project)
            row = ExperimentRow(
                project_id=p.id, name=name, creation_time_ms=now, last_update_time_ms=now
            )
            if experiment_id is not None:
                row.id = experiment_id
            s.add(row)
            s.flush()
            for key, value in (tags or {}).items():
                s.add(ExperimentTagRow(experiment_id=row.id, key=key, value=value))
            s.flush()
            return self._experiment(s, row, p.name)

    def get_experiment(self, experiment_id: int) -> Experiment:
        with self._store.read() as s:
            row = s.get(ExperimentRow, experiment_id)
            if row is None:
                raise NotFound(f"experiment {experiment_id} does not exist")
            return self._experiment(s, row)

    def find_experiment(self, project: str, name: str) -> Experiment | None:
        with self._store.read() as s:
            p = self._project_row(s, project)
            row = s.scalar(
                select(ExperimentRow).where(
                    ExperimentRow.project_id == p.id, ExperimentRow.name == name
                )
            )
            return None if row is None else self._experiment(s, row, p.name)

    def list_experiments(
        self,
        project: str,
        *,
        stages: tuple[str, ...] = (LifecycleStage.ACTIVE.value,),
        name_like: str | None = None,
        offset: int = 0,
        limit: int = 1000,
    ) -> list[Experiment]:
        with self._store.read() as s:
            p = self._project_row(s, project)
            query = (
                select(ExperimentRow)
                .where(ExperimentRow.project_id == p.id)
                .where(ExperimentRow.lifecycle_stage.in_(stages))
                .order_by(ExperimentRow.id)
                .offset(offset)
                .limit(limit)
            )
            if name_like is not None:
                query = query.where(ExperimentRow.name.like(name_like))
            return [self._experiment(s, r, p.name) for r in s.scalars(query)]

    def set_experiment_tag(self, experiment_id: int, key: str, value: str) -> None:
        with self._store.transaction() as s:
            self._experiment_row(s, experiment_id)
            row = s.get(ExperimentTagRow, (experiment_id, key))
            if row is None:
                s.add(ExperimentTagRow(experiment_id=experiment_id, key=key, value=value))
            else:
                row.value = value

    def update_experiment(
        self,
        experiment_id: int,
        *,
        name: str | None = None,
        lifecycle_stage: LifecycleStage | None = None,
    ) -> Experiment:
        with self._store.transaction("an experiment with that name already exists") as s:
            row = self._experiment_row(s, experiment_id)
            if name is not None:
                row.name = name
            if lifecycle_stage is not None:
                row.lifecycle_stage = lifecycle_stage.value
            row.last_update_time_ms = _ms(self._store.clock.now())
            s.flush()
            return self._experiment(s, row)

    def project_of_experiment(self, experiment_id: int) -> str:
        return self.get_experiment(experiment_id).project

    # --- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        *,
        run_id: str,
        experiment_id: int,
        name: str,
        user: str,
        start_time_ms: int,
        tags: dict[str, str],
        parent_run_id: str | None,
        params: dict[str, str] | None = None,
    ) -> Run:
        with self._store.transaction(f"run {run_id!r} already exists") as s:
            experiment = self._experiment_row(s, experiment_id)
            if experiment.lifecycle_stage != LifecycleStage.ACTIVE.value:
                raise InvalidInput(f"experiment {experiment_id} is deleted")
            if parent_run_id is not None:
                parent = self._run_row(s, parent_run_id)
                if parent.experiment_id != experiment_id:
                    raise InvalidInput("a child run must be in its parent's experiment")
            row = RunRow(
                id=run_id,
                experiment_id=experiment_id,
                name=name,
                status=RunStatus.RUNNING.value,
                start_time_ms=start_time_ms,
                user=user,
                parent_run_id=parent_run_id,
                lifecycle_stage=LifecycleStage.ACTIVE.value,
            )
            s.add(row)
            s.flush()
            for key, value in tags.items():
                s.add(RunTagRow(run_id=run_id, key=key, value=value))
            self._put_params(s, run_id, (params or {}).items())
            s.flush()
            return self._runs(s, [run_id])[0]

    def get_run(self, run_id: str) -> Run:
        with self._store.read() as s:
            self._run_row(s, run_id)
            return self._runs(s, [run_id])[0]

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time_ms: int | None = None,
        name: str | None = None,
        lifecycle_stage: LifecycleStage | None = None,
    ) -> Run:
        with self._store.transaction() as s:
            row = self._run_row(s, run_id)
            if status is not None:
                row.status = status.value
            if end_time_ms is not None:
                row.end_time_ms = end_time_ms
            if name is not None:
                row.name = name
                tag = s.get(RunTagRow, (run_id, "mlflow.runName"))
                if tag is not None:
                    tag.value = name
            if lifecycle_stage is not None:
                row.lifecycle_stage = lifecycle_stage.value
            s.flush()
            return self._runs(s, [run_id])[0]

    def project_of_run(self, run_id: str) -> str:
        with self._store.read() as s:
            row = s.execute(
                select(ProjectRow.name)
                .join(ExperimentRow, ExperimentRow.project_id == ProjectRow.id)
                .join(RunRow, RunRow.experiment_id == ExperimentRow.id)
                .where(RunRow.id == run_id)
            ).first()
            if row is None:
                raise NotFound(f"run {run_id!r} does not exist")
            return str(row[0])

    # --- logging ------------------------------------------------------------------------

    def log_batch(
        self, run_id: str, batch: LogBatch, *, end: tuple[RunStatus, int] | None = None
    ) -> bool:
        """Apply ``batch`` atomically; False if its ``batch_id`` was applied before.

        ``end`` = (status, end time ms) also ends the run in the same transaction.

        Raises:
            NotFound: no such run.
            InvalidInput: the run is deleted, or a param would change its value.
        """
        with self._store.transaction() as s:
            run = self._run_row(s, run_id)
            if run.lifecycle_stage != LifecycleStage.ACTIVE.value:
                raise InvalidInput(f"run {run_id} is deleted; it cannot be logged to")
            if batch.batch_id is not None:
                claimed = s.execute(
                    upsert(s, LogBatchRow)
                    .values(
                        run_id=run_id, batch_id=batch.batch_id, created_at=self._store.clock.now()
                    )
                    .on_conflict_do_nothing()
                    .returning(LogBatchRow.batch_id)
                ).first()
                if claimed is None:
                    return False
            self._put_params(s, run_id, batch.params)
            self._put_tags(s, run_id, batch.tags)
            if batch.metrics:
                self._put_metrics(s, run_id, batch.metrics)
            if end is not None:
                run.status, run.end_time_ms = end[0].value, end[1]
            return True

    def _put_params(self, s: Session, run_id: str, params: Iterable[tuple[str, str]]) -> None:
        wanted = dict(params)
        if not wanted:
            return
        s.execute(
            upsert(s, ParamRow)
            .values([{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items()])
            .on_conflict_do_nothing()
        )
        stored = s.execute(
            select(ParamRow.key, ParamRow.value).where(
                ParamRow.run_id == run_id, ParamRow.key.in_(wanted)
            )
        )
        for key, value in stored:
            if value != wanted[key]:
                raise InvalidInput(
                    f"param {key!r} of run {run_id} is already {value!r}; "
                    f"params are immutable, cannot set it to {wanted[key]!r}"
                )

    def _put_tags(self, s: Session, run_id: str, tags: Iterable[tuple[str, str]]) -> None:
        wanted = dict(tags)
        if not wanted:
            return
        statement = upsert(s, RunTagRow).values(
            [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items()]
        )
        s.execute(
            statement.on_conflict_do_update(
                index_elements=["run_id", "key"], set_={"value": statement.excluded.value}
            )
        )
        if "mlflow.runName" in wanted:
            run = s.get(RunRow, run_id)
            if run is not None:
                run.name = wanted["mlflow.runName"]

    def _put_metrics(self, s: Session, run_id: str, metrics: Sequence[Metric]) -> None:
        s.execute(
            insert(MetricRow),
            [
                {
                    "run_id": run_id,
                    "key": m.key,
                    "value": 0.0 if math.isnan(m.value) else m.value,
                    "is_nan": math.isnan(m.value),
                    "step": m.step,
                    "timestamp_ms": m.timestamp_ms,
                }
                for m in metrics
            ],
        )
        newest: dict[str, Metric] = {}
        for m in metrics:
            if m.key not in newest or _newer(m, newest[m.key]):
                newest[m.key] = m
        rows = [
            {
                "run_id": run_id,
                "key": key,
                "value": 0.0 if math.isnan(m.value) else m.value,
                "is_nan": math.isnan(m.value),
                "step": m.step,
                "timestamp_ms": m.timestamp_ms,
            }
            for key, m in newest.items()
        ]
        statement = upsert(s, LatestMetricRow).values(rows)
        new, old = statement.excluded, LatestMetricRow
        s.execute(
            statement.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={c: getattr(new, c) for c in ("value", "is_nan", "step", "timestamp_ms")},
                # MLflow's rule: the latest value is the one with the largest
                # (step, timestamp, value); concurrent writers race safely on it.
                where=tuple_(new.step, new.timestamp_ms, new.value)
                > tuple_(old.step, old.timestamp_ms, old.value),
            )
        )

    def metric_history(
        self, run_id: str, key: str, *, offset: int = 0, limit: int = 100_000
    ) -> list[Metric]:
        with self._store.read() as s:
            self._run_row(s, run_id)
            rows = s.scalars(
                select(MetricRow)
                .where(MetricRow.run_id == run_id, MetricRow.key == key)
                .order_by(MetricRow.step, MetricRow.timestamp_ms, MetricRow.id)
                .offset(offset)
                .limit(limit)
            )
            return [Metric(r.key, _metric_value(r), r.step, r.timestamp_ms) for r in rows]

    def count_metrics(self, run_id: str) -> int:
        with self._store.read() as s:
            rows = s.scalars(select(MetricRow.id).where(MetricRow.run_id == run_id)).all()
            return len(rows)

    def sampled_metric_history(
        self, run_id: str, keys: Sequence[str], max_points: int
    ) -> dict[str, list[Metric]]:
        """Each key's history by step, thinned in SQL to at most ``max_points`` + 1 points
        (every n-th point and the last), for charts: a long history never leaves the database.
        """
        m = MetricRow
        order = (m.step, m.timestamp_ms, m.id)
        numbered = (
            select(
                m.key,
                m.value,
                m.is_nan,
                m.step,
                m.timestamp_ms,
                func.row_number().over(partition_by=m.key, order_by=order).label("rn"),
                func.count().over(partition_by=m.key).label("n"),
            )
            .where(m.run_id == run_id, m.key.in_(list(keys)))
            .subquery()
        )
        c = numbered.c
        stride = (c.n + (max_points - 1)) // max_points
        out: dict[str, list[Metric]] = {key: [] for key in keys}
        with self._store.read() as s:
            self._run_row(s, run_id)
            rows = s.execute(
                select(c.key, c.value, c.is_nan, c.step, c.timestamp_ms)
                .where(or_((c.rn - 1) % stride == 0, c.rn == c.n))
                .order_by(c.key, c.rn)
            )
            for key, value, is_nan, step, ts in rows:
                out[key].append(Metric(key, math.nan if is_nan else value, step, ts))
        return out

    def run_stats(self, project: str) -> dict[int, tuple[int, int]]:
        """Per experiment of ``project`` that has active runs: (run count, newest start ms)."""
        with self._store.read() as s:
            rows = s.execute(
                select(RunRow.experiment_id, func.count(), func.max(RunRow.start_time_ms))
                .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
                .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
                .where(
                    ProjectRow.name == project,
                    RunRow.lifecycle_stage == LifecycleStage.ACTIVE.value,
                )
                .group_by(RunRow.experiment_id)
            )
            return {int(e): (int(n), int(newest)) for e, n, newest in rows}

    def delete_experiment_tag(self, experiment_id: int, key: str) -> None:
        """Remove one tag of an experiment.

        Raises:
            NotFound: no such experiment, or it has no tag ``key``.
        """
        with self._store.transaction() as s:
            self._experiment_row(s, experiment_id)
            row = s.get(ExperimentTagRow, (experiment_id, key))
            if row is None:
                raise NotFound(f"no tag with name {key!r} in experiment {experiment_id}")
            s.delete(row)

    def delete_run_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of an active run.

        Raises:
            NotFound: no such run, or it has no tag ``key``. InvalidInput: the run is deleted.
        """
        with self._store.transaction() as s:
            run = self._run_row(s, run_id)
            if run.lifecycle_stage != LifecycleStage.ACTIVE.value:
                raise InvalidInput(f"run {run_id} is deleted; its tags cannot change")
            row = s.get(RunTagRow, (run_id, key))
            if row is None:
                raise NotFound(f"no tag with name {key!r} in run {run_id}")
            s.delete(row)

    # --- MLflow inputs and outputs ------------------------------------------------------

    def log_run_io(
        self,
        run_id: str,
        *,
        datasets: Sequence[DatasetInput] = (),
        model_inputs: Sequence[str] = (),
        model_outputs: Sequence[tuple[str, int]] = (),
    ) -> list[int]:
        """Record what an active run read and wrote, in one transaction.

        A dataset is stored once per experiment, name and digest; one that names a
        modelyard dataset version of the run's project (``<name>@v<N>``, or ``<name>``
        with the digest a prefix of a version's manifest digest) also gets a lineage
        ``input`` edge from that version to the run. Recording the same input twice
        updates its tags.

        Returns:
            The ids of the modelyard dataset versions linked to the run.

        Raises:
            NotFound: no such run. InvalidInput: the run is deleted.
        """
        now = _ms(self._store.clock.now())
        linked: list[int] = []
        with self._store.transaction() as s:
            run = self._run_row(s, run_id)
            if run.lifecycle_stage != LifecycleStage.ACTIVE.value:
                raise InvalidInput(f"run {run_id} is deleted; it cannot be logged to")
            experiment = self._experiment_row(s, run.experiment_id)
            for item in datasets:
                dataset_id = _dataset_row_id(s, run.experiment_id, item.dataset)
                tags = json.dumps([list(t) for t in item.tags])
                link = s.get(MlflowRunInputRow, (run_id, dataset_id))
                if link is None:
                    s.add(
                        MlflowRunInputRow(
                            run_id=run_id, dataset_id=dataset_id, tags_json=tags, created_at_ms=now
                        )
                    )
                else:
                    link.tags_json = tags
                version_id = _modelyard_version(s, experiment.project_id, item.dataset)
                if version_id is not None and version_id not in linked:
                    _add_input_edge(s, version_id, run_id, now)
                    linked.append(version_id)
            for direction, models in (
                (MODEL_INPUT, [(m, 0) for m in model_inputs]),
                (MODEL_OUTPUT, list(model_outputs)),
            ):
                for model_id, step in models:
                    row = s.get(MlflowRunModelRow, (run_id, model_id, direction))
                    if row is None:
                        s.add(
                            MlflowRunModelRow(
                                run_id=run_id,
                                model_id=model_id,
                                direction=direction,
                                step=step,
                                created_at_ms=now,
                            )
                        )
                    else:
                        row.step = step
            return linked

    def run_io(self, run_ids: Sequence[str]) -> dict[str, RunIO]:
        """What each run read and wrote (runs with nothing recorded are left out)."""
        if not run_ids:
            return {}
        inputs: dict[str, list[DatasetInput]] = {}
        model_inputs: dict[str, list[str]] = {}
        model_outputs: dict[str, list[tuple[str, int]]] = {}
        with self._store.read() as s:
            for link, ds in s.execute(
                select(MlflowRunInputRow, MlflowDatasetRow)
                .join(MlflowDatasetRow, MlflowDatasetRow.id == MlflowRunInputRow.dataset_id)
                .where(MlflowRunInputRow.run_id.in_(run_ids))
                .order_by(MlflowRunInputRow.created_at_ms, MlflowDatasetRow.id)
            ):
                tags = tuple((str(k), str(v)) for k, v in json.loads(link.tags_json))
                record = DatasetRecord(
                    ds.name, ds.digest, ds.source_type, ds.source, ds.dataset_schema, ds.profile
                )
                inputs.setdefault(link.run_id, []).append(DatasetInput(record, tags))
            for row in s.scalars(
                select(MlflowRunModelRow)
                .where(MlflowRunModelRow.run_id.in_(run_ids))
                .order_by(MlflowRunModelRow.created_at_ms, MlflowRunModelRow.model_id)
            ):
                if row.direction == MODEL_INPUT:
                    model_inputs.setdefault(row.run_id, []).append(row.model_id)
                else:
                    model_outputs.setdefault(row.run_id, []).append((row.model_id, row.step))
        found = set(inputs) | set(model_inputs) | set(model_outputs)
        return {
            run_id: RunIO(
                tuple(inputs.get(run_id, ())),
                tuple(model_inputs.get(run_id, ())),
                tuple(model_outputs.get(run_id, ())),
            )
            for run_id in found
        }

    def experiment_datasets(
        self, experiment_ids: Sequence[int], limit: int = 1000
    ) -> list[ExperimentDataset]:
        """The distinct (experiment, name, digest, context) of datasets runs read."""
        seen: dict[tuple[int, str, str, str], None] = {}
        with self._store.read() as s:
            rows = s.execute(
                select(MlflowDatasetRow, MlflowRunInputRow.tags_json)
                .join(MlflowRunInputRow, MlflowRunInputRow.dataset_id == MlflowDatasetRow.id)
                .where(MlflowDatasetRow.experiment_id.in_(list(experiment_ids)))
                .order_by(MlflowDatasetRow.experiment_id, MlflowDatasetRow.id)
            )
            for ds, tags_json in rows:
                context = dict(json.loads(tags_json)).get("mlflow.data.context", "")
                seen.setdefault((ds.experiment_id, ds.name, ds.digest, str(context)), None)
        return [ExperimentDataset(*key) for key in list(seen)[:limit]]

    # --- search -------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: list[int],
        comparisons: list[Comparison],
        order_by: list[OrderBy],
        *,
        stages: tuple[str, ...] = (LifecycleStage.ACTIVE.value,),
        offset: int = 0,
        limit: int = 1000,
    ) -> list[Run]:
        with self._store.read() as s:
            query = search_query(experiment_ids, comparisons, order_by, stages)
            ids = list(s.scalars(query.offset(offset).limit(limit)))
            return self._runs(s, ids)

    # --- row helpers --------------------------------------------------------------------

    @staticmethod
    def _project_row(s: Session, name: str) -> ProjectRow:
        row = s.scalar(select(ProjectRow).where(ProjectRow.name == name))
        if row is None:
            raise NotFound(f"project {name!r} does not exist")
        return row

    @staticmethod
    def _experiment_row(s: Session, experiment_id: int) -> ExperimentRow:
        row = s.get(ExperimentRow, experiment_id)
        if row is None:
            raise NotFound(f"experiment {experiment_id} does not exist")
        return row

    @staticmethod
    def _run_row(s: Session, run_id: str) -> RunRow:
        row = s.get(RunRow, run_id)
        if row is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return row

    @staticmethod
    def _experiment(s: Session, row: ExperimentRow, project: str | None = None) -> Experiment:
        if project is None:
            p = s.get(ProjectRow, row.project_id)
            project = p.name if p else ""
        tags = {
            t.key: t.value
            for t in s.scalars(
                select(ExperimentTagRow).where(ExperimentTagRow.experiment_id == row.id)
            )
        }
        return Experiment(
            id=row.id,
            project=project,
            name=row.name,
            lifecycle_stage=LifecycleStage(row.lifecycle_stage),
            creation_time_ms=row.creation_time_ms,
            last_update_time_ms=row.last_update_time_ms,
            tags=tags,
        )

    @staticmethod
    def _runs(s: Session, ids: list[str]) -> list[Run]:
        """Full runs (with params, latest metrics, tags) in the order of ``ids``."""
        if not ids:
            return []
        rows = {
            r.id: (r, project)
            for r, project in s.execute(
                select(RunRow, ProjectRow.name)
                .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
                .join(ProjectRow, ProjectRow.id == ExperimentRow.project_id)
                .where(RunRow.id.in_(ids))
            )
        }
        # Plain column tuples, not ORM objects: a page of runs is thousands of rows.
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, Metric]] = {i: {} for i in ids}
        for run_id, key, value in s.execute(
            select(ParamRow.run_id, ParamRow.key, ParamRow.value).where(ParamRow.run_id.in_(ids))
        ):
            params[run_id][key] = value
        for run_id, key, value in s.execute(
            select(RunTagRow.run_id, RunTagRow.key, RunTagRow.value).where(
                RunTagRow.run_id.in_(ids)
            )
        ):
            tags[run_id][key] = value
        m = LatestMetricRow
        for run_id, key, number, is_nan, step, ts in s.execute(
            select(m.run_id, m.key, m.value, m.is_nan, m.step, m.timestamp_ms).where(
                m.run_id.in_(ids)
            )
        ):
            metrics[run_id][key] = Metric(key, math.nan if is_nan else number, step, ts)
        out = []
        for run_id in ids:
            row, project = rows[run_id]
            out.append(
                Run(
                    id=row.id,
                    experiment_id=row.experiment_id,
                    project=project,
                    name=row.name,
                    status=RunStatus(row.status),
                    start_time_ms=row.start_time_ms,
                    end_time_ms=row.end_time_ms,
                    user=row.user,
                    parent_run_id=row.parent_run_id,
                    lifecycle_stage=LifecycleStage(row.lifecycle_stage),
                    params=params[run_id],
                    metrics=metrics[run_id],
                    tags=tags[run_id],
                )
            )
        return out


def _newer(a: Metric, b: Metric) -> bool:
    """MLflow's rule for the latest value: the larger (step, timestamp, value)."""
    av = -math.inf if math.isnan(a.value) else a.value
    bv = -math.inf if math.isnan(b.value) else b.value
    return (a.step, a.timestamp_ms, av) > (b.step, b.timestamp_ms, bv)


def _dataset_row_id(s: Session, experiment_id: int, dataset: DatasetRecord) -> int:
    row = s.scalar(
        select(MlflowDatasetRow).where(
            MlflowDatasetRow.experiment_id == experiment_id,
            MlflowDatasetRow.name == dataset.name,
            MlflowDatasetRow.digest == dataset.digest,
        )
    )
    if row is None:
        row = MlflowDatasetRow(
            experiment_id=experiment_id,
            name=dataset.name,
            digest=dataset.digest,
            source_type=dataset.source_type,
            source=dataset.source,
            dataset_schema=dataset.schema,
            profile=dataset.profile,
        )
        s.add(row)
        s.flush()
    return row.id


def _modelyard_version(s: Session, project_id: str, dataset: DatasetRecord) -> int | None:
    """The modelyard dataset version an MLflow dataset names, if any (see ``log_run_io``)."""
    match = _VERSIONED_NAME.match(dataset.name)
    name = match["name"] if match else dataset.name
    found = s.scalar(
        select(DatasetRow).where(DatasetRow.project_id == project_id, DatasetRow.name == name)
    )
    if found is None:
        return None
    query = select(DatasetVersionRow.id).where(DatasetVersionRow.dataset_id == found.id)
    if match:
        query = query.where(DatasetVersionRow.version == int(match["version"]))
    elif dataset.digest:
        query = query.where(DatasetVersionRow.manifest_digest.startswith(dataset.digest))
    else:
        return None
    version_id = s.scalar(query.order_by(DatasetVersionRow.version.desc()).limit(1))
    return None if version_id is None else int(version_id)


def _add_input_edge(s: Session, version_id: int, run_id: str, now_ms: int) -> None:
    edge = {
        "src_kind": NodeKind.DATASET_VERSION.value,
        "src_id": str(version_id),
        "dst_kind": NodeKind.RUN.value,
        "dst_id": run_id,
        "edge_type": EdgeType.INPUT.value,
    }
    conditions = [getattr(LineageEdgeRow, k) == v for k, v in edge.items()]
    if s.scalar(select(LineageEdgeRow.id).where(*conditions)) is None:
        s.add(LineageEdgeRow(**edge, created_at_ms=now_ms))

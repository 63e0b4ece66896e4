"""Read a tuning study back from the tracking store: best trial, importance, plot.

A study is a parent run tagged ``modelyard.study`` and its trials are child runs tagged
``modelyard.trial`` (the layout ``my.tune`` writes). Everything here works from those
stored runs alone, so ``modelyard tune show`` reports a study from any machine, finished,
running or interrupted. Optuna and matplotlib are imported only by the functions that
need them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeGuard

from modelyard.core.errors import NotFound, PermissionDenied
from modelyard.core.tracking import Run, RunStatus
from modelyard.tuning._records import (
    STUDY,
    STUDY_BEST_TRIAL,
    STUDY_EXECUTOR,
    STUDY_METRIC,
    STUDY_MODE,
    STUDY_N_TRIALS,
    STUDY_PRUNER,
    STUDY_SAMPLER,
    STUDY_SPACE,
    STUDY_STATE,
    STUDY_STOP_REASON,
    TRIAL,
    TRIAL_ERROR,
    TRIAL_NODE,
    TRIAL_STATE,
    TRIAL_VALUE,
    trial_number,
    trial_params,
)

if TYPE_CHECKING:
    from modelyard.client import ModelyardClient

ParamValue = str | int | float | bool | None

FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")
_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_STATE_OF_STATUS = {
    RunStatus.FINISHED: "COMPLETE",
    RunStatus.FAILED: "FAIL",
    RunStatus.KILLED: "KILLED",
}


@dataclass(frozen=True)
class ParamSpec:
    """One dimension of the search space, as the ``modelyard.study.space`` tag says."""

    kind: str  # uniform | loguniform | randint | choice (or what a newer writer adds)
    low: float | None = None
    high: float | None = None
    values: tuple[ParamValue, ...] = ()
    step: float | None = None

    @property
    def log(self) -> bool:
        """Whether the dimension is searched on a log scale."""
        return self.kind == "loguniform" and self.low is not None and self.low > 0


@dataclass(frozen=True)
class TrialView:
    """One trial as stored: its child run's tags, params and times."""

    number: int
    run_id: str
    state: str  # COMPLETE | PRUNED | FAIL | RUNNING | KILLED
    value: float | None
    params: dict[str, ParamValue]
    start_time_ms: int
    end_time_ms: int | None
    node: str | None = None
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Wall time of the trial's run, None while it runs."""
        if self.end_time_ms is None:
            return None
        return (self.end_time_ms - self.start_time_ms) / 1000


@dataclass(frozen=True)
class StudyView:
    """A study read back from its parent run and trial runs (frozen; no live handles)."""

    name: str
    run_id: str
    experiment_id: int
    experiment: str
    state: str
    metric: str
    mode: str  # "min" | "max"
    sampler: str
    pruner: str
    executor: str
    n_trials: int | None
    start_time_ms: int
    end_time_ms: int | None
    space: dict[str, ParamSpec] = field(default_factory=dict)
    trials: tuple[TrialView, ...] = ()
    best_trial_number: int | None = None  # the driver's ``modelyard.study.best_trial``
    stop_reason: str | None = None

    @property
    def finished(self) -> int:
        """How many trials ended (complete, pruned or failed)."""
        return sum(t.state in FINISHED_STATES for t in self.trials)

    def scored(self) -> list[TrialView]:
        """The complete trials with a finite value, in trial order."""
        return [
            t
            for t in self.trials
            if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)
        ]

    @property
    def best(self) -> TrialView | None:
        """The best trial: the one the driver recorded, else the best complete trial."""
        by_number = {t.number: t for t in self.trials}
        if self.best_trial_number in by_number:
            return by_number[self.best_trial_number]
        scored = self.scored()
        if not scored:
            return None
        sign = -1.0 if self.mode == "max" else 1.0
        return min(scored, key=lambda t: (sign * (t.value or 0.0), t.number))


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _scalar(value: object) -> ParamValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True)  # lists, dicts: shown and compared as JSON


def parse_space(text: str | None) -> dict[str, ParamSpec]:
    """The ``modelyard.study.space`` JSON as specs; unreadable entries are left out."""
    try:
        raw = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    out: dict[str, ParamSpec] = {}
    for name, spec in raw.items() if isinstance(raw, dict) else ():
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            continue
        numbers = {k: spec.get(k) for k in ("low", "high", "step")}
        low, high, step = (
            float(v) if isinstance(v, int | float) else None for v in numbers.values()
        )
        values = spec.get("values")
        choices = tuple(_scalar(v) for v in values) if isinstance(values, list) else ()
        out[str(name)] = ParamSpec(spec["type"], low, high, choices, step)
    return out


def _trial_params(run: Run) -> dict[str, ParamValue]:
    raw = trial_params(run)
    if raw is not None:
        return {str(k): _scalar(v) for k, v in raw.items()}
    # No exact params: read the logged (string) params back as numbers where they are.
    parsed: dict[str, ParamValue] = {}
    for key, text in run.params.items():
        number = _float(text)
        parsed[key] = text if number is None else (_int(text) if text.isdigit() else number)
    return parsed


def trial_view(run: Run, metric: str) -> TrialView:
    """One trial from its child run (tags first, the run's own fields as fall-backs)."""
    number = trial_number(run)
    if number is None:
        number = _int(run.name.removeprefix("trial-")) or 0
    state = run.tags.get(TRIAL_STATE) or _STATE_OF_STATUS.get(run.status, "RUNNING")
    value = _float(run.tags.get(TRIAL_VALUE))
    if value is None and state == "COMPLETE" and metric in run.metrics:
        value = run.metrics[metric].value
    return TrialView(
        number=number,
        run_id=run.id,
        state=state,
        value=value,
        params=_trial_params(run),
        start_time_ms=run.start_time_ms,
        end_time_ms=run.end_time_ms,
        node=run.tags.get(TRIAL_NODE),
        error=run.tags.get(TRIAL_ERROR),
    )


def study_view(parent: Run, children: Sequence[Run], experiment: str) -> StudyView:
    """A study from its parent run and child runs (children without a trial tag ignored)."""
    tags = parent.tags
    metric = tags.get(STUDY_METRIC, "")
    trials = sorted(
        (trial_view(r, metric) for r in children if TRIAL in r.tags), key=lambda t: t.number
    )
    return StudyView(
        name=tags.get(STUDY, parent.name),
        run_id=parent.id,
        experiment_id=parent.experiment_id,
        experiment=experiment,
        state=tags.get(STUDY_STATE, parent.status.value),
        metric=metric,
        mode=tags.get(STUDY_MODE, "min"),
        sampler=tags.get(STUDY_SAMPLER, ""),
        pruner=tags.get(STUDY_PRUNER, ""),
        executor=tags.get(STUDY_EXECUTOR, ""),
        n_trials=_int(tags.get(STUDY_N_TRIALS)),
        start_time_ms=parent.start_time_ms,
        end_time_ms=parent.end_time_ms,
        space=parse_space(tags.get(STUDY_SPACE)),
        trials=tuple(trials),
        best_trial_number=_int(tags.get(STUDY_BEST_TRIAL)),
        stop_reason=tags.get(STUDY_STOP_REASON),
    )


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _search(
    client: ModelyardClient, experiment_ids: list[int], filter_string: str
) -> Iterator[Run]:
    token: str | None = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=filter_string, max_results=1000, page_token=token
        )
        yield from page.items
        token = page.next_page_token
        if not token:
            return


def _experiments(client: ModelyardClient, project: str) -> dict[int, str]:
    return {e.id: e.name for e in client.list_experiments(project)}


def load_study(client: ModelyardClient, project: str, study: str) -> StudyView:
    """The study named ``study`` (or whose parent run id it is) in ``project``.

    Raises:
        NotFound: no such study in the project (or the project does not exist).
    """
    experiments = _experiments(client, project)
    parent: Run | None = None
    if _RUN_ID_RE.match(study):
        try:
            run = client.get_run(study)
        except (NotFound, PermissionDenied):  # not a run id here: try it as a name
            run = None
        if run is not None and run.experiment_id in experiments and STUDY in run.tags:
            parent = run
    if parent is None and experiments:
        found = _search(client, list(experiments), f"tags.`{STUDY}` = {_quoted(study)}")
        # Newest first: a study name reused later shows the latest study.
        parent = next((r for r in found if TRIAL not in r.tags), None)
    if parent is None:
        raise NotFound(f"no study named {study!r} in project {project!r}")
    # Trials share the study's experiment as a rule; one query over every experiment of
    # the project costs the same and finds them wherever a writer put them.
    children = _search(
        client, list(experiments), f"tags.`mlflow.parentRunId` = {_quoted(parent.id)}"
    )
    return study_view(parent, list(children), experiments[parent.experiment_id])


def list_studies(
    client: ModelyardClient, project: str, experiment_id: int | None = None
) -> list[StudyView]:
    """Every study of ``project`` (or of one of its experiments), newest first."""
    experiments = _experiments(client, project)
    if experiment_id is not None:
        if experiment_id not in experiments:
            raise NotFound(f"experiment {experiment_id} does not exist in project {project!r}")
        experiments = {experiment_id: experiments[experiment_id]}
    if not experiments:
        return []
    ids = list(experiments)
    parents = [r for r in _search(client, ids, f"tags.`{STUDY}` LIKE '%'") if TRIAL not in r.tags]
    children: dict[str, list[Run]] = {}
    for run in _search(client, ids, f"tags.`{TRIAL}` LIKE '%'"):
        if run.parent_run_id is not None:
            children.setdefault(run.parent_run_id, []).append(run)
    return [study_view(p, children.get(p.id, []), experiments[p.experiment_id]) for p in parents]


# --- importance --------------------------------------------------------------------------


def is_number(value: ParamValue) -> TypeGuard[int | float]:
    """Whether a param value is a number (booleans are categories, not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def categories_of(spec: ParamSpec | None, seen: Sequence[ParamValue]) -> list[ParamValue] | None:
    """The categories of a param, the space's order first; None for a numeric param.

    Values are told apart by ``repr`` so that ``1``, ``1.0`` and ``True`` stay distinct.
    """
    known = list(spec.values) if spec is not None and spec.kind == "choice" else []
    if not known and all(is_number(v) for v in seen):
        return None
    by_repr = {repr(v): v for v in [*known, *seen]}
    return list(by_repr.values())


def _varying(trials: Sequence[TrialView]) -> dict[str, list[ParamValue]]:
    """Params present in every given trial that take two or more values, in first-seen order."""
    names = dict.fromkeys(n for t in trials for n in t.params)
    columns = {n: [t.params[n] for t in trials if n in t.params] for n in names}
    return {
        n: v for n, v in columns.items() if len(v) == len(trials) and len(set(map(repr, v))) > 1
    }


def param_importances(study: StudyView) -> dict[str, float] | None:
    """fANOVA importance of each varying param over the complete trials, most important first.

    The study is rebuilt in memory in Optuna from the stored params and values and scored
    with ``FanovaImportanceEvaluator(seed=0)``. Returns None when that cannot be done:
    fewer than two complete trials, or no param or objective that varies.
    """
    trials = study.scored()
    columns = _varying(trials)
    if len(trials) < 2 or not columns or len({t.value for t in trials}) < 2:
        return None
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    distributions: dict[str, BaseDistribution] = {}
    for name, seen in columns.items():
        spec = study.space.get(name)
        categories = categories_of(spec, seen)
        if categories is not None:
            distributions[name] = CategoricalDistribution(categories)
        else:
            numbers = [float(v) for v in seen if is_number(v)]
            log = spec is not None and spec.log and min(numbers) > 0
            distributions[name] = FloatDistribution(min(numbers), max(numbers), log=log)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    try:
        rebuilt = optuna.create_study(direction="maximize" if study.mode == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for t in trials:
        params = {
            n: t.params[n]
            if isinstance(d, CategoricalDistribution)
            else float(v)
            if is_number(v := t.params[n])
            else math.nan
            for n, d in distributions.items()
        }
        rebuilt.add_trial(
            optuna.trial.create_trial(params=params, distributions=distributions, value=t.value)
        )
    scores = get_param_importances(rebuilt, evaluator=FanovaImportanceEvaluator(seed=0))
    return {name: float(score) for name, score in scores.items()}
